"""Bits per byte: validation loss that does not depend on the tokenizer.

Nats per token can't be compared across tokenizers: a vocabulary that packs more text into a token
has a higher loss per token for the same model quality. Bits per UTF-8 byte of the text scored can
(nanochat, Marin and OLMo report it): bpb = Σ nats / (ln 2 · Σ bytes of the predicted tokens).

The bytes of each predicted token come from the tokenizer: for byte-level BPE (what the build trains,
and GPT-2's `tokenizer.json`) every token is an exact byte string, so the byte count of any window
of the validation stream is exact. The manifest records the validation text's UTF-8 bytes, and the
table is checked against it: when they disagree (a tokenizer that is not byte-level) the scored
tokens' bytes are estimated from the file's average bytes per token, and the run says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

LN2 = math.log(2.0)


@lru_cache(maxsize=1)
def _byte_level_decoding() -> dict[str, int]:
    """GPT-2's printable stand-ins for the 256 byte values, inverted (character -> byte)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def token_byte_lengths(tokenizer_json: str | Path, vocab_size: int) -> Optional[np.ndarray]:
    """Bytes each token id stands for, for a byte-level BPE `tokenizer.json`; None for other kinds.

    Special tokens (the end-of-document marker) stand for no text: 0 bytes.
    """
    spec = json.loads(Path(tokenizer_json).read_text())
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        return None
    to_byte = _byte_level_decoding()
    lengths = np.zeros(vocab_size, dtype=np.int64)
    for token, token_id in model.get("vocab", {}).items():
        if token_id < vocab_size:
            if not all(ch in to_byte for ch in token):
                return None
            lengths[token_id] = len(token)  # one stand-in character per byte
    for added in spec.get("added_tokens", []):
        if added["id"] < vocab_size and added.get("special", False):
            lengths[added["id"]] = 0
    return lengths


@dataclass(frozen=True)
class ByteCounter:
    """Counts the UTF-8 bytes of predicted tokens: exactly from a table, or by the file's average."""

    table: Optional[np.ndarray]       # bytes per token id; None: use `bytes_per_token`
    bytes_per_token: Optional[float]  # the validation file's average; None when the manifest lacks bytes

    @property
    def exact(self) -> bool:
        return self.table is not None

    def count(self, targets: np.ndarray) -> Optional[float]:
        if self.table is not None:
            return float(self.table[targets].sum())
        if self.bytes_per_token is not None:
            return float(targets.size) * self.bytes_per_token
        return None


def byte_counter(tokenizer_json: Path, vocab_size: int, validation_tokens: np.ndarray,
                 validation_bytes: Optional[int]) -> ByteCounter:
    """A table when it reproduces the manifest's byte count of the validation text, else the average."""
    table = token_byte_lengths(tokenizer_json, vocab_size) if tokenizer_json.is_file() else None
    if validation_bytes is None:
        return ByteCounter(table, None)
    if table is not None and int(table[validation_tokens].sum()) == int(validation_bytes):
        return ByteCounter(table, validation_bytes / max(1, validation_tokens.size))
    return ByteCounter(None, validation_bytes / max(1, validation_tokens.size))


def bits_per_byte(total_nats: float, total_bytes: Optional[float]) -> Optional[float]:
    if not total_bytes:
        return None
    return total_nats / (LN2 * total_bytes)
