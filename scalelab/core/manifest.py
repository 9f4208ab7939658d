"""`OUT/manifest.json`: what the shards are and how to check them (`scalelab corpus verify OUT`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field, ValidationError

from scalelab.core.atomic import write_json
from scalelab.core.shard_format import ShardReader
from scalelab.core.checksums import file_sha256

SHARDS_FOLDER = "shards"


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    # Key order is the builder's, fixed in code (scales smallest first); no time or host goes in:
    # the sweep's run ids hash these bytes.
    write_json(out_dir / "manifest.json", manifest, indent=2)


class ManifestError(ValueError):
    """A manifest.json that is not JSON or lacks what training and `corpus verify` read; one line."""


# What readers of the manifest rely on; other fields may come and go.
class _Entry(BaseModel):
    path: str
    index: str
    tokens: int = Field(ge=0)
    documents: int = Field(ge=0)
    sha256: str
    index_sha256: str


class _Tokenizer(BaseModel):
    sha256: str
    vocab_size: int = Field(ge=1)
    eod_id: int = Field(ge=0)


class _Scale(BaseModel):
    tokens: int = Field(ge=1)
    shards: list[str]
    last_shard_tokens: int = Field(ge=0)


class _Manifest(BaseModel):
    tokenizer: _Tokenizer
    shards: list[_Entry]
    validation: _Entry
    scales: dict[str, _Scale]


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{out_dir}: no manifest.json (was the corpus built with shards enabled?)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not JSON ({exc}); rebuild the corpus to rewrite it") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: not a corpus manifest (a JSON {type(manifest).__name__}, not an object)")
    try:
        _Manifest.model_validate(manifest)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ManifestError(f"{path}: {where}: {first['msg']}{more}; not a complete corpus manifest, "
                            "rebuild the corpus to rewrite it") from None
    return manifest


def verify(out_dir: str | Path) -> list[str]:
    """Recompute every checksum and count; return the problems found (empty: all good)."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    problems: list[str] = []
    tok_path = out_dir / "tokenizer.json"
    if not tok_path.is_file() or file_sha256(tok_path) != manifest["tokenizer"]["sha256"]:
        problems.append("tokenizer.json: missing or its sha256 differs from the manifest")
    for entry in manifest["shards"] + [manifest["validation"]]:
        for key, name in (("sha256", entry["path"]), ("index_sha256", entry["index"])):
            path = out_dir / SHARDS_FOLDER / name
            if not path.is_file():
                problems.append(f"{name}: missing")
            elif file_sha256(path) != entry[key]:
                problems.append(f"{name}: sha256 differs from the manifest (corrupt or changed)")
        try:
            tokens = ShardReader(out_dir / SHARDS_FOLDER / entry["path"]).num_tokens
            documents = pa.ipc.open_file(pa.memory_map(str(out_dir / SHARDS_FOLDER / entry["index"]))).read_all().num_rows
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"{entry['path']}: unreadable: {exc}")
            continue
        if tokens != entry["tokens"]:
            problems.append(f"{entry['path']}: {tokens} tokens, manifest says {entry['tokens']}")
        if documents != entry["documents"]:
            problems.append(f"{entry['index']}: {documents} documents, manifest says {entry['documents']}")
    total = sum(s["tokens"] for s in manifest["shards"])
    for name, scale in manifest["scales"].items():
        covered = sum(s["tokens"] for s in manifest["shards"][: len(scale["shards"]) - 1]) + scale["last_shard_tokens"]
        if covered != scale["tokens"] or scale["tokens"] > total:
            problems.append(f"scale {name}: its shards hold {covered} tokens, manifest says {scale['tokens']}")
    return problems
