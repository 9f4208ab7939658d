"""Training and validation data over a corpus's token shards (see scalelab/core/shard_format.py).

A data scale is a prefix of the train token stream. It is cut into non-overlapping windows of
`seq_len + 1` tokens (inputs and their next-token targets share `seq_len` of them). The order of
windows is a permutation seeded by (seed, epoch), and the loader's whole state is one number: how
many windows all ranks together have consumed. The stream of windows therefore does not depend on
the number of ranks, a run resumes exactly from that number, and past the end of the scale the
next epoch starts with a fresh permutation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalelab.core.corpus_cache import local_corpus
from scalelab.core.shard_format import ShardReader
from scalelab.core.manifest import SHARDS_FOLDER, ManifestError, read_manifest
from scalelab.training.bits_per_byte import ByteCounter, byte_counter


class DataError(ValueError):
    """The corpus can't serve this run (missing scale, files that don't match the manifest, too small)."""


class Corpus:
    """A built corpus folder (or URL, read from a local copy: core/corpus_cache.py): its manifest, and
    cheap checks that the files are the ones it names."""

    def __init__(self, folder: str | Path):
        try:
            self.folder = local_corpus(folder)
            self.manifest = read_manifest(self.folder)
        except (OSError, ManifestError) as exc:
            raise DataError(str(exc)) from None
        self.manifest_sha256 = hashlib.sha256((self.folder / "manifest.json").read_bytes()).hexdigest()
        self.vocab_size = self.manifest.tokenizer.vocab_size
        self.eod_id = self.manifest.tokenizer.eod_id

    def scale_tokens(self, scale: str) -> int:
        if scale not in self.manifest.scales:
            raise DataError(f"{self.folder}: no scale {scale!r}; the manifest has "
                            f"{', '.join(self.manifest.scales) or 'none'}")
        return self.manifest.scales[scale].tokens

    def shard_path(self, name: str) -> Path:
        return self.folder / SHARDS_FOLDER / name

    def open(self, name: str, expected_tokens: int) -> ShardReader:
        path = self.shard_path(name)
        if not path.is_file():
            raise DataError(f"{path}: missing (the manifest lists it)")
        reader = ShardReader(path)
        if reader.num_tokens != expected_tokens:
            raise DataError(f"{path}: {reader.num_tokens} tokens, the manifest says {expected_tokens}")
        return reader


class ScaleTokens:
    """The first `tokens` train tokens of a scale, memory-mapped across its shards."""

    def __init__(self, corpus: Corpus, scale: str):
        self.num_tokens = corpus.scale_tokens(scale)
        by_name = {s.path: s for s in corpus.manifest.shards}
        self._readers: list[ShardReader] = []
        self._starts: list[int] = []
        pos = 0
        for name in corpus.manifest.scales[scale].shards:
            self._readers.append(corpus.open(name, by_name[name].tokens))
            self._starts.append(pos)
            pos += by_name[name].tokens

    def window(self, start: int, length: int) -> np.ndarray:
        if start < 0 or start + length > self.num_tokens:
            raise IndexError(f"tokens {start}..{start + length} outside the scale's 0..{self.num_tokens}")
        parts, pos, end = [], start, start + length
        i = int(np.searchsorted(self._starts, start, side="right")) - 1
        while pos < end:
            reader, first = self._readers[i], self._starts[i]
            take = min(end, first + reader.num_tokens) - pos
            parts.append(reader.window(pos - first, take))
            pos += take
            i += 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def to_batch(windows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of seq_len + 1 tokens -> (inputs, targets), each (batch, seq_len) int64."""
    block = torch.from_numpy(np.stack(windows).astype(np.int64))
    return block[:, :-1], block[:, 1:]


class TrainBatches:
    """Per optimizer step, this rank's `grad_accum` micro-batches of `micro_batch` windows.

    Within a step of G = micro_batch × grad_accum × world windows, micro-step m of rank r takes
    windows [m·world + r]·micro_batch ... + micro_batch: the ranks' slices are disjoint and together
    cover the step's windows.
    """

    def __init__(self, tokens: ScaleTokens, seq_len: int, micro_batch: int, grad_accum: int,
                 rank: int, world_size: int, seed: int):
        self.tokens, self.seq_len, self.seed = tokens, seq_len, seed
        self.micro_batch, self.grad_accum, self.rank, self.world = micro_batch, grad_accum, rank, world_size
        self.num_windows = (tokens.num_tokens - 1) // seq_len
        if self.num_windows < 1:
            raise DataError(f"the scale holds {tokens.num_tokens} tokens: not one window of seq_len {seq_len} + 1")
        self.windows_per_step = micro_batch * grad_accum * world_size
        self.consumed = 0  # windows taken by all ranks together: the loader's state
        self._perm_epoch, self._perm = -1, np.empty(0, np.int64)

    @property
    def epochs(self) -> float:
        return self.consumed / self.num_windows

    def window_index(self, g: int) -> int:
        """The g-th window of the run's stream: epoch g // n, position g % n of that epoch's permutation."""
        epoch, pos = divmod(g, self.num_windows)
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_windows)
            self._perm_epoch = epoch
        return int(self._perm[pos])

    def rank_slice(self, step_start: int, micro_step: int) -> list[int]:
        """Stream positions of this rank's micro-batch `micro_step` in the step starting at `step_start`."""
        first = step_start + (micro_step * self.world + self.rank) * self.micro_batch
        return list(range(first, first + self.micro_batch))

    def step_positions(self) -> list[list[int]]:
        """The stream positions of the coming step's micro-batches on this rank (what BERT's masks are keyed by)."""
        return [self.rank_slice(self.consumed, m) for m in range(self.grad_accum)]

    def next_step(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        batches = []
        for positions in self.step_positions():
            windows = [self.tokens.window(self.window_index(g) * self.seq_len, self.seq_len + 1) for g in positions]
            batches.append(to_batch(windows))
        self.consumed += self.windows_per_step
        return batches

    def state_dict(self) -> dict[str, Any]:
        return {"consumed": self.consumed, "seed": self.seed, "seq_len": self.seq_len,
                "num_windows": self.num_windows, "windows_per_step": self.windows_per_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "seq_len", "num_windows", "windows_per_step"):
            if state[key] != getattr(self, key):
                raise DataError(f"the checkpoint's loader has {key}={state[key]}, this run {getattr(self, key)}: "
                                f"resume with the configuration that wrote the checkpoint")
        self.consumed = int(state["consumed"])


class ValidationWindows:
    """A fixed prefix of the validation file, the same for every run of a corpus and seq_len.

    `bytes` is the UTF-8 size of the text its targets stand for, the denominator of bits per byte
    (None for corpora whose manifest doesn't record the validation text's bytes).
    """

    def __init__(self, corpus: Corpus, seq_len: int, max_tokens: int | None, rank: int, world_size: int):
        entry = corpus.manifest.validation
        reader = corpus.open(entry.path, entry.tokens)
        usable = reader.num_tokens if max_tokens is None else min(max_tokens, reader.num_tokens)
        count = (usable - 1) // seq_len
        if count < 1:
            raise DataError(f"the validation file holds {reader.num_tokens} tokens: not one window of seq_len {seq_len} + 1")
        self.num_windows, self.tokens = count, count * seq_len
        self.reader, self.seq_len, self.world = reader, seq_len, world_size
        self.mine = list(range(rank, count, world_size))  # each rank scores every world-th window
        stream = reader.window(0, reader.num_tokens)  # read once: the byte check and the targets' bytes
        self.counter: ByteCounter = byte_counter(corpus.folder / "tokenizer.json", corpus.vocab_size,
                                                 stream, entry.bytes)
        self.bytes = self.counter.count(stream[1 : count * seq_len + 1])  # every window's targets

    def batches(self, batch_size: int):
        """(inputs, targets, real): every rank yields the same number of batches (ZeRO-3 gathers
        weights collectively, so ranks must run the same forwards); rows past `real` are padding."""
        for _, x, y, real in self.indexed_batches(batch_size):
            yield x, y, real

    def indexed_batches(self, batch_size: int):
        """As `batches`, each with the window indices of its rows first (BERT's masks are keyed by them)."""
        per_rank = -(-self.num_windows // self.world)
        for i in range(0, per_rank, batch_size):
            real = self.mine[i : i + batch_size]
            pad = [self.mine[0] if self.mine else 0] * (min(batch_size, per_rank - i) - len(real))
            x, y = to_batch([self.reader.window(w * self.seq_len, self.seq_len + 1) for w in real + pad])
            yield real + pad, x, y, len(real)

    def window_tokens(self, index: int) -> np.ndarray:
        """Validation window `index`: its seq_len + 1 tokens."""
        return self.reader.window(index * self.seq_len, self.seq_len + 1)
