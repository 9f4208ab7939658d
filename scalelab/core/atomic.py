"""Write-then-rename, so a reader never sees half a file and a crash leaves no partial output.

The one implementation of atomic writes: `atomic_path` for any writer that takes a path, and
`write_json` / `write_parquet` for the two formats scalelab writes most.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def atomic_path(final: str | Path) -> Iterator[str]:
    """Yield a temporary path beside `final`; rename it into place only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield str(tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | Path, value: Any, *, dumps: Callable[..., str] = json.dumps, **dumps_kwargs: Any) -> Path:
    """`value` as JSON plus a newline at `path`, atomically; `dumps_kwargs` (indent, sort_keys) go to `dumps`."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(dumps(value, **dumps_kwargs) + "\n")
    return Path(path)


def write_parquet(path: str | Path, table: pa.Table, **write_kwargs: Any) -> Path:
    """`table` as Parquet at `path`, atomically; `write_kwargs` go to `pyarrow.parquet.write_table`."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **write_kwargs)
    return Path(path)
