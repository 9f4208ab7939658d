"""Write-then-rename, so a reader never sees half a file and a crash leaves no partial output."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


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
