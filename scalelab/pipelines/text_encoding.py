"""Telling a text file's encoding from its first bytes: a byte-order mark names it; NUL bytes
without one mean UTF-16 or UTF-32 that cannot be decoded safely (so the file is refused whole)."""

from __future__ import annotations

from typing import Optional

# Longest first: UTF-32 LE's mark starts with UTF-16 LE's.
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"), (b"\xef\xbb\xbf", "utf-8-sig"))
# Same byte counts whatever the byte order; used to count a decoded line's bytes as read.
WIDTH_CODEC = {"utf-16": "utf-16-le", "utf-32": "utf-32-le", "utf-8-sig": "utf-8"}


def bom_encoding(head: bytes) -> Optional[str]:
    """The codec a byte-order mark at the start of `head` names (it consumes the mark), or None."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    return None


def wide_without_bom(head: bytes) -> bool:
    """UTF-16/32 text with no byte-order mark: ASCII characters leave NUL bytes between them."""
    sample = head[:256]
    return bom_encoding(sample) is None and len(sample) >= 4 and sample.count(0) >= len(sample) // 4
