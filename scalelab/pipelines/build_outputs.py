"""What a corpus build writes, by name: a fresh build clears exactly these files, nothing else.

The output folder may also hold the user's files (with `--overwrite`, or beside a crawl); a build
never removes a file unless a build would have written it under that name (or its temporary name,
`atomic_path`'s `.NAME.tmp-XXXXXXXX`), and removes a folder only once it is empty.
"""

from __future__ import annotations

import re
from pathlib import Path

from scalelab.core.build_units import PHASE_ROOT, PHASES
from scalelab.core.storage import Location

_UNIT_FILE = r"plan\.json|.+\.done\.json|.+\.started|.+\.parquet"
# Folder (relative to OUT) -> the names a build writes there.
BUILD_FILES: dict[str, str] = {
    ".": r"manifest\.json|tokenizer\.json|build\.json",
    "documents": r"part-\d{5,}\.parquet",
    "rejected": r"(part|near)-\d{5,}\.parquet",
    "stats": r"drops\.parquet|summary\.json|shards\.json|decontaminated\.parquet",
    "shards": r"(train-\d{5,}|validation)(\.idx)?\.arrow",
    PHASE_ROOT: r"build_config\.json|driver\.json|finished\.json",
    # "exact_kept" holds the documents exact dedup kept when near-dedup follows (minhash/near_dedup.py).
    **{f"{PHASE_ROOT}/{name}": _UNIT_FILE for name in (*PHASES, "exact_kept")},
}
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.tmp-[0-9a-f]{8}")


def is_build_file(folder: str, name: str) -> bool:
    pattern = BUILD_FILES.get(folder)
    if pattern is None:
        return False
    temporary = _TEMPORARY.fullmatch(name)
    return re.fullmatch(pattern, temporary.group("name") if temporary else name) is not None


def clear(out: Path | Location, folders: tuple[str, ...] = tuple(BUILD_FILES)) -> None:
    """Remove the build's files from `folders` of OUT, then those folders if nothing else is left."""
    out = Location.of(out)
    for folder in folders:
        for path in (out / folder).files():
            if is_build_file(folder, path.name):
                path.unlink()
    # Deepest first, so phase/process goes before phase; OUT itself stays.
    for folder in sorted((f for f in folders if f != "."), key=lambda f: -f.count("/")):
        try:
            (out / folder).rmdir()
        except OSError:
            pass  # not there, or it holds something a build did not write
