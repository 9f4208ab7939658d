"""Where a WARC's records start, so one large WARC can be read by several tasks at once.

The index walks the file with the same parser the reader uses (warcio, headers only: bodies are
skipped, about 140 MB/s), so a cut between two record starts is where the reader itself would see
a record begin. A file the walk cannot finish cleanly is not split at all: the reader, reading it
whole, then accounts for its broken parts exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from warcio.archiveiterator import ArchiveIterator

from scalelab.pipelines.readers.common import open_binary


@dataclass(frozen=True)
class ByteRange:
    """The records of a file that start in [start, end); `end` None runs to the file's end.
    `read_bytes` is their uncompressed size, what a task's work scales with."""

    start: int
    end: Optional[int]
    read_bytes: int


def record_starts(uri: str) -> Optional[list[tuple[int, int]]]:
    """(offset, uncompressed block bytes) of every record, or None if the walk breaks anywhere."""
    starts: list[tuple[int, int]] = []
    try:
        with open_binary(uri) as stream:
            it = ArchiveIterator(stream, arc2warc=True, check_digests=False)
            for record in it:
                starts.append((it.get_record_offset(), int(record.length or 0)))
    except Exception:  # any framing warcio rejects: leave the file whole
        return None
    return starts


def split_by_bytes(starts: list[tuple[int, int]], target_bytes: int) -> list[ByteRange]:
    """Consecutive runs of records of about `target_bytes` uncompressed each (at least one record)."""
    ranges: list[ByteRange] = []
    begin, filled = 0, 0
    for i, (offset, size) in enumerate(starts):
        if filled >= target_bytes:
            ranges.append(ByteRange(starts[begin][0], offset, filled))
            begin, filled = i, 0
        filled += size + 1  # headers count too; a record of an empty block is still work
    if starts:
        ranges.append(ByteRange(starts[begin][0] if ranges else 0, None, filled))
    return ranges
