"""Output folders scalelab may write into: ones it created, told apart by a marker file.

A corpus build, a crawl, a sweep's reports and a training run each clear or overwrite files in
their output folder. Pointed at a folder of the user's (`--out ~/data`), that would delete or
overwrite the user's files. So each of them first claims its folder:

- a new or empty folder is created and marked (`OUT/.scalelab.json`, naming what it holds);
- a marked folder is scalelab's, and reused: for the same kind of output as is, for another kind
  (a build into a crawl's folder) only with `--overwrite`;
- a folder holding a file that an earlier scalelab wrote before markers existed (`legacy`) is
  marked and reused;
- any other non-empty folder is refused, naming the folder and `--overwrite`. Even with it, the
  caller only ever removes files of the names it writes itself.

The same rules hold for a prefix in object storage (`s3://bucket/corpora/sample`, core/storage.py):
"empty" is no object under it, and the marker is an object like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

from scalelab.core.storage import Location

MARKER = ".scalelab.json"


class OutputFolderError(ValueError):
    """An output folder scalelab may not write into; the message names it and the override."""


def _kinds(folder: Location) -> list[str]:
    try:
        record = json.loads((folder / MARKER).read_text())
        return [str(k) for k in record["kinds"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise OutputFolderError(f"{folder / MARKER}: not a scalelab folder marker (unreadable); "
                                "remove it, or choose another output folder") from None


def _mark(folder: Location, kinds: list[str]) -> None:
    # No time or host in it: the marker is the same bytes for the same outputs.
    (folder / MARKER).write_text(json.dumps({"created_by": "scalelab", "kinds": sorted(set(kinds))}) + "\n")


def claim(folder: str | Path | Location, kind: str, overwrite: bool = False, legacy: tuple[str, ...] = ()) -> None:
    """Make `folder` an output folder of `kind`, or raise OutputFolderError (see the module doc)."""
    folder = Location.of(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise OutputFolderError(f"{folder}: is a file, not a folder; choose another output folder")
        folder.mkdir()
        if (folder / MARKER).is_file():
            kinds = _kinds(folder)
            if kind not in kinds:
                if not overwrite:
                    raise OutputFolderError(
                        f"{folder}: holds a scalelab {' and '.join(kinds)}, not a {kind}; choose another folder, "
                        f"or pass --overwrite to write the {kind} beside it")
                _mark(folder, kinds + [kind])
            return
        if any(folder.iterdir()) and not overwrite and not any((folder / name).is_file() for name in legacy):
            raise OutputFolderError(
                f"{folder}: is not empty and was not created by scalelab (no {MARKER}); choose a new or empty "
                f"folder, or pass --overwrite to write the {kind} there (only files a {kind} writes are replaced)")
        _mark(folder, [kind])
    except OSError as exc:
        raise OutputFolderError(f"output {folder}: not writable ({exc.strerror or exc})") from None
