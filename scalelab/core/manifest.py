"""`OUT/manifest.json`: what the shards are and how to check them (`scalelab corpus verify OUT`).

The `Manifest` model is the contract between a corpus build (which saves it) and training and
sweeps (which load it). `format_version` says which layout a file has: a manifest without one is
format 0 (the same fields; migrated on load), one newer than this scalelab reads is an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scalelab.core.atomic import write_json
from scalelab.core.checksums import file_sha256
from scalelab.core.shard_format import ShardReader
from scalelab.core.storage import Location, arrow_ipc_reader

SHARDS_FOLDER = "shards"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


class ManifestError(ValueError):
    """A manifest.json that is not JSON or lacks what training and `corpus verify` read; one line."""


class _Record(BaseModel):
    # Fields a later format adds are kept as read; a typo in code still fails (attributes are typed).
    model_config = ConfigDict(extra="allow")


class ShardEntry(_Record):
    """One Arrow IPC token file and its document index."""

    path: str
    index: str
    tokens: int = Field(ge=0)
    documents: int = Field(ge=0)
    bytes: Optional[int] = Field(None, ge=0)  # validation only: UTF-8 bytes of its text (bits per byte)
    sha256: str
    index_sha256: str


class TokenizerEntry(_Record):
    path: str = "tokenizer.json"
    sha256: str
    vocab_size: int = Field(ge=1)
    eod_token: str = "<|endoftext|>"
    eod_id: int = Field(ge=0)
    trained: bool = False


class ScaleEntry(_Record):
    """A data scale: the first `tokens` training tokens, in `shards` (the last one in part)."""

    tokens: int = Field(ge=1)
    shards: list[str]
    last_shard_tokens: int = Field(ge=0)


class Manifest(_Record):
    format_version: int = FORMAT_VERSION
    scalelab_version: str = ""
    config_hash: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    tokenizer: TokenizerEntry
    dtype: str = "uint16"
    batch_tokens: int = 0
    shard_tokens: int = 0
    seed: int = 0
    shards: list[ShardEntry]
    validation: ShardEntry
    scales: dict[str, ScaleEntry]
    documents: dict[str, int] = Field(default_factory=dict)
    decontamination: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def load(cls, out_dir: str | Path | Location) -> "Manifest":
        path = Location.of(out_dir) / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{out_dir}: no manifest.json (was the corpus built with shards enabled?)")
        data = _read_json(path)
        version = data.get("format_version", 0)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ManifestError(f"{path}: format_version {version!r}, but this scalelab reads up to "
                                f"{FORMAT_VERSION}; upgrade scalelab or rebuild the corpus")
        try:
            return cls.model_validate(_migrate(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise ManifestError(f"{path}: {where}: {first['msg']}{more}; not a complete corpus manifest, "
                                "rebuild the corpus to rewrite it") from None

    def save(self, out_dir: str | Path | Location) -> Location:
        # Field order is fixed here (scales smallest first, as the builder gives them); no time or
        # host goes in: the sweep's run ids hash these bytes. Unset optional fields stay out.
        fields = self.model_dump(mode="json", exclude_unset=True)
        fields = {"format_version": self.format_version, **fields}  # first, and written even when defaulted
        return write_json(Location.of(out_dir) / MANIFEST_FILE, fields, indent=2)

    def train_tokens(self) -> int:
        return sum(s.tokens for s in self.shards)


def _read_json(path: Location) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not JSON ({exc}); rebuild the corpus to rewrite it") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: not a corpus manifest (a JSON {type(data).__name__}, not an object)")
    return data


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Format 0 (no format_version) has format 1's fields: only the version is new."""
    return {"format_version": FORMAT_VERSION, **{k: v for k, v in data.items() if k != "format_version"}}


def read_manifest(out_dir: str | Path | Location) -> Manifest:
    return Manifest.load(out_dir)


def verify(out_dir: str | Path | Location) -> list[str]:
    """Recompute every checksum and count; return the problems found (empty: all good)."""
    out_dir = Location.of(out_dir)
    manifest = Manifest.load(out_dir)
    problems = _tokenizer_problems(out_dir, manifest)
    for entry in manifest.shards + [manifest.validation]:
        problems += _entry_problems(out_dir / SHARDS_FOLDER, entry)
    total = manifest.train_tokens()
    for name, scale in manifest.scales.items():
        covered = sum(s.tokens for s in manifest.shards[: len(scale.shards) - 1]) + scale.last_shard_tokens
        if covered != scale.tokens or scale.tokens > total:
            problems.append(f"scale {name}: its shards hold {covered} tokens, manifest says {scale.tokens}")
    return problems


def _tokenizer_problems(out_dir: Location, manifest: Manifest) -> list[str]:
    tok_path = out_dir / "tokenizer.json"
    if not tok_path.is_file() or file_sha256(tok_path) != manifest.tokenizer.sha256:
        return ["tokenizer.json: missing or its sha256 differs from the manifest"]
    return []


def _entry_problems(folder: Location, entry: ShardEntry) -> list[str]:
    problems = []
    for expected, name in ((entry.sha256, entry.path), (entry.index_sha256, entry.index)):
        if not (folder / name).is_file():
            problems.append(f"{name}: missing")
        elif file_sha256(folder / name) != expected:
            problems.append(f"{name}: sha256 differs from the manifest (corrupt or changed)")
    try:
        tokens = ShardReader(folder / entry.path).num_tokens
        documents = arrow_ipc_reader(folder / entry.index).read_all().num_rows
    except (OSError, pa.ArrowException) as exc:
        return problems + [f"{entry.path}: unreadable: {exc}"]
    if tokens != entry.tokens:
        problems.append(f"{entry.path}: {tokens} tokens, manifest says {entry.tokens}")
    if documents != entry.documents:
        problems.append(f"{entry.index}: {documents} documents, manifest says {entry.documents}")
    return problems
