"""Loading YAML into typed config objects, with errors that name the file and the field.

Every config in scalelab (corpus, crawl, run and sweep configs) goes through `load_model`, so users always see `FILE: dotted.field: message`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config problem, already phrased for the user (`file: field: message`)."""


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _message(err: dict[str, Any]) -> str:
    msg = err["msg"]
    # pydantic prefixes messages raised by our own validators; the prefix adds nothing for users.
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    return msg


def format_validation_error(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: {_field_path(e['loc'])}: {_message(e)}" for e in exc.errors()]
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of fields, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `dotted.key=value` overrides; the value is parsed as a YAML scalar or list."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected dotted.key=value")
        key, raw = item.split("=", 1)
        keys = [k for k in key.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"--set {item}: empty key")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item}: value is not valid YAML: {exc}") from exc
        node = data
        for k in keys[:-1]:
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item}: {k} is not a section")
            node = child
        node[keys[-1]] = value
    return data


def validate(model: type[M], data: dict[str, Any], source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_model(model: type[M], path: str | Path | None, overrides: list[str] | None = None) -> M:
    """Read `path` (or start from defaults when None), apply overrides, validate into `model`."""
    data = read_yaml(path) if path is not None else {}
    overrides = overrides or []
    if overrides:
        data = apply_overrides(data, overrides)
    source = str(path) if path is not None else "(defaults)"
    try:
        return validate(model, data, source)
    except ConfigError:
        if not overrides:
            raise
    # Say which --set caused it: validate the file alone, then each override on top.
    validate(model, read_yaml(path) if path is not None else {}, source)
    for item in overrides:
        base = read_yaml(path) if path is not None else {}
        validate(model, apply_overrides(base, [item]), f"--set {item}")
    return validate(model, data, f"{source} with --set " + " ".join(overrides))


def changed_fields(old: Any, new: Any, allowed: tuple[str, ...] = ()) -> list[str]:
    """Dotted names of the settings that differ between two dumped configs (for "resume with a
    different config" errors), leaving out `allowed` names and the fields under them."""
    return [f for f in _differing(old, new, "") if not any(f == a or f.startswith(a + ".") for a in allowed)]


def _differing(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differing(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]
