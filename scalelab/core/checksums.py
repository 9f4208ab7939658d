"""sha256 of files, as the manifest records them for `corpus verify` and training's checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from scalelab.core.storage import Location


def file_sha256(path: str | Path | Location) -> str:
    h = hashlib.sha256()
    with Location.of(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
