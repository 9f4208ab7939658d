"""Write-then-rename, so a reader never sees half a file and a crash leaves no partial output.

The one implementation of atomic writes: `atomic_path` for any writer that takes a path, and
`write_json` / `write_parquet` for the two formats scalelab writes most. On object storage there
is no rename: the file is written locally and uploaded whole, one PUT being atomic per object
(see core/storage.py).
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from scalelab.core.storage import Location


@contextmanager
def atomic_path(final: str | Path | Location) -> Iterator[str]:
    """Yield a temporary local path for `final`; put it in place only if the block succeeds."""
    final = Location.of(final)
    if not final.is_local:
        with tempfile.TemporaryDirectory(prefix="scalelab-upload-") as folder:
            tmp = os.path.join(folder, final.name)
            yield tmp
            final.upload(tmp)
        return
    path = final.path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield str(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | Path | Location, value: Any, *, dumps: Callable[..., str] = json.dumps,
               **dumps_kwargs: Any) -> Location:
    """`value` as JSON plus a newline at `path`, atomically; `dumps_kwargs` (indent, sort_keys) go to `dumps`."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(dumps(value, **dumps_kwargs) + "\n")
    return Location.of(path)


def write_parquet(path: str | Path | Location, table: pa.Table, **write_kwargs: Any) -> Location:
    """`table` as Parquet at `path`, atomically; `write_kwargs` go to `pyarrow.parquet.write_table`."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **write_kwargs)
    return Location.of(path)
