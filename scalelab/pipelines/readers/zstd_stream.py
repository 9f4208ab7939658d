"""A zstd reader that notices a cut file, as Python's gzip does.

zstandard's own stream reader returns what it has when the input ends inside a frame, so a
truncated `.jsonl.zst` would look complete. This one raises EOFError there instead, so the
readers count the lost rest of the file (see `readers/__init__.py`).
"""

from __future__ import annotations

import io

import zstandard

CHUNK = 1 << 20


class ZstdStream(io.RawIOBase):
    """Frames one after another (like `zstd -d`); EOFError if the input ends mid-frame."""

    def __init__(self, raw: io.BufferedIOBase):
        self.raw = raw
        self.frame = zstandard.ZstdDecompressor().decompressobj()
        self.in_frame = False  # input given to the current frame and its end not yet seen
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self.pending:
            data = self.raw.read(CHUNK)
            if not data:
                if self.in_frame:
                    raise EOFError("zstd stream ended before the end of its frame (file cut short?)")
                return 0
            self._feed(data)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n

    def _feed(self, data: bytes) -> None:
        while data:
            if self.frame.eof:
                self.frame = zstandard.ZstdDecompressor().decompressobj()
            self.pending += self.frame.decompress(data)
            self.in_frame = not self.frame.eof
            data = self.frame.unused_data if self.frame.eof else b""

    def close(self) -> None:
        self.raw.close()
        super().close()
