"""A folder in object storage worked on locally: its files fetched into a temporary folder, and
what the work wrote or changed put back, each file whole (one PUT, which is atomic per object).

`scalelab report s3://...` reads runs.parquet and curves.parquet and writes fits, plots and an HTML
page with code made for local files (pyarrow, matplotlib, the page's relative links to its plots):
staging keeps that code one for both kinds of folder. Only the folder's own files are fetched, not
its subfolders (a sweep's runs/ holds every run's checkpoints).
"""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from scalelab.core.storage import Location


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


@contextmanager
def staged(folder: Location, write_back: bool = True) -> Iterator[Path]:
    """A local copy of `folder`'s files, named as it is; new or changed files go back if the block succeeds."""
    with tempfile.TemporaryDirectory(prefix="scalelab-stage-") as tmp:
        local = Path(tmp) / folder.name
        local.mkdir()
        for remote in folder.files():
            (local / remote.name).write_bytes(remote.read_bytes())
        before = _digests(local)
        yield local
        if write_back:
            for name, digest in sorted(_digests(local).items()):
                if before.get(name) != digest:
                    (folder / name).upload(str(local / name))
