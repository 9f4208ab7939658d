"""The shard format: Arrow IPC files that memory-map, and a reader that takes any window of tokens.

`NAME.arrow`: one column `tokens` (uint16 when the vocabulary fits, else uint32) in record batches of
exactly `batch_tokens` tokens (the last may be shorter), so token i lives in batch i // batch_tokens.
Documents follow each other, each ended by the end-of-document token; a document may continue in
the next shard. `NAME.idx.arrow`: one row per document that starts in the shard (`start`, `tokens`
including its end-of-document token, `id`). Both are written under a temporary name and renamed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa

from scalelab.core.atomic import atomic_path
from scalelab.core.storage import Location, arrow_ipc_reader


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


class ShardWriter:
    """Streams documents into consecutive shards of exactly `shard_tokens` tokens (the last shorter)."""

    def __init__(self, folder: Path | Location, prefix: str, shard_tokens: Optional[int], batch_tokens: int, dtype: np.dtype):
        self.folder, self.prefix = folder, prefix
        self.shard_tokens = shard_tokens  # None: one file, whatever its size
        self.batch_tokens, self.dtype = batch_tokens, dtype
        self.files: list[dict] = []
        self._buf: list[np.ndarray] = []
        self._buffered = 0
        self._index: list[tuple[int, int, str]] = []
        self._in_shard = 0

    def add(self, doc_id: str, tokens: np.ndarray) -> None:
        self._index.append((self._in_shard, len(tokens), doc_id))
        pos = 0
        while pos < len(tokens):
            room = (self.shard_tokens - self._in_shard) if self.shard_tokens else len(tokens) - pos
            take = min(room, len(tokens) - pos)
            self._buf.append(tokens[pos : pos + take].astype(self.dtype, copy=False))
            self._buffered += take
            self._in_shard += take
            pos += take
            if self.shard_tokens and self._in_shard == self.shard_tokens:
                self._flush()

    def close(self) -> list[dict]:
        if self._buffered or self._index:
            self._flush()
        return self.files

    def _flush(self) -> None:
        name = f"{self.prefix}-{len(self.files):05d}" if self.shard_tokens else self.prefix
        tokens = np.concatenate(self._buf) if self._buf else np.empty(0, self.dtype)
        path = self.folder / f"{name}.arrow"
        schema = pa.schema([("tokens", pa.from_numpy_dtype(self.dtype))])
        with atomic_path(path) as tmp, pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for start in range(0, len(tokens), self.batch_tokens):
                writer.write_batch(pa.record_batch([pa.array(tokens[start : start + self.batch_tokens])], schema=schema))
        index = pa.table({"start": pa.array([s for s, _, _ in self._index], pa.int64()),
                          "tokens": pa.array([n for _, n, _ in self._index], pa.int64()),
                          "id": pa.array([i for _, _, i in self._index], pa.string())})
        with atomic_path(self.folder / f"{name}.idx.arrow") as tmp, pa.OSFile(tmp, "wb") as sink, \
                pa.ipc.new_file(sink, index.schema) as writer:
            writer.write_table(index)
        self.files.append({"path": f"{name}.arrow", "index": f"{name}.idx.arrow", "tokens": int(len(tokens)),
                           "documents": len(self._index)})
        self._buf, self._buffered, self._index, self._in_shard = [], 0, [], 0


class ShardReader:
    """Memory-mapped token access: `window(start, length)` without reading the rest of the file
    (on object storage, by range requests)."""

    def __init__(self, path: str | Path | Location):
        self._reader = arrow_ipc_reader(Location.of(path))
        self.num_batches = self._reader.num_record_batches
        first = self._reader.get_batch(0) if self.num_batches else None
        self.batch_tokens = first.num_rows if first is not None else 0
        self.num_tokens = sum(self._reader.get_batch(i).num_rows for i in range(self.num_batches))

    def _batch(self, i: int) -> np.ndarray:
        return self._reader.get_batch(i).column(0).to_numpy(zero_copy_only=True)

    def window(self, start: int, length: int) -> np.ndarray:
        if start < 0 or start + length > self.num_tokens:
            raise IndexError(f"tokens {start}..{start + length} outside 0..{self.num_tokens}")
        out, pos = [], start
        while pos < start + length:
            b, offset = divmod(pos, self.batch_tokens)
            chunk = self._batch(b)[offset : offset + (start + length - pos)]
            out.append(chunk)
            pos += len(chunk)
        return out[0] if len(out) == 1 else np.concatenate(out)

    def all_tokens(self) -> np.ndarray:
        return self.window(0, self.num_tokens)
