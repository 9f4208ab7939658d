"""A corpus in object storage, trained from a local copy: one per machine, keyed by its manifest.

Training memory-maps its shards, which needs local files. A corpus given as a URL
(`data.corpus: s3://bucket/corpora/sample`) is copied once into

    $SCALELAB_CACHE (default ~/.cache/scalelab)/corpora/<sha256 of manifest.json, 16 hex>/

The manifest names the sha256 of every file, so the same manifest means the same files: a cached
copy is reused as long as the manifest in the bucket is unchanged, and a rebuilt corpus gets a
new folder. Each file is checked against the manifest on the way down; the copy is made under a
temporary name and renamed into place complete, so ranks that fetch at the same time on one
machine, or a fetch that was killed, never leave a half corpus behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from scalelab.core.manifest import MANIFEST_FILE, SHARDS_FOLDER, Manifest, ManifestError
from scalelab.core.storage import Location

CACHE_ENV = "SCALELAB_CACHE"


def cache_home() -> Path:
    """scalelab's local cache: corpora fetched from object storage, working folders of runs."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "scalelab")


def cache_root() -> Path:
    return cache_home() / "corpora"


def local_corpus(corpus: str | Path) -> Path:
    """The corpus's local folder: the folder itself, or for a URL its cached copy (fetched if needed)."""
    where = Location.of(corpus)
    if where.is_local:
        return where.path
    try:
        manifest_bytes = (where / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}: no manifest.json (was the corpus built with shards enabled?)") from None
    folder = cache_root() / hashlib.sha256(manifest_bytes).hexdigest()[:16]
    if (folder / MANIFEST_FILE).is_file():
        return folder
    manifest = Manifest.load(where)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _fetch(where / manifest.tokenizer.path, tmp / manifest.tokenizer.path, manifest.tokenizer.sha256)
        for entry in manifest.shards + [manifest.validation]:
            _fetch(where / SHARDS_FOLDER / entry.path, tmp / SHARDS_FOLDER / entry.path, entry.sha256)
            _fetch(where / SHARDS_FOLDER / entry.index, tmp / SHARDS_FOLDER / entry.index, entry.index_sha256)
        (tmp / MANIFEST_FILE).write_bytes(manifest_bytes)  # last: a folder with a manifest is complete
        try:
            tmp.rename(folder)
        except OSError:
            if not (folder / MANIFEST_FILE).is_file():  # not another rank's finished copy: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _fetch(source: Location, target: Path, sha256: str) -> None:
    """Copy `source` to `target`, refusing it if its bytes are not the ones the manifest names."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with source.open("rb") as src, open(target, "wb") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
            dst.write(chunk)
    if digest.hexdigest() != sha256:
        raise ManifestError(f"{source}: sha256 differs from the manifest (corrupt or changed); rebuild the corpus")
