"""Scoring a causal model of another tokenizer (a public model, say) on a corpus's validation text.

Token losses can't be compared across tokenizers, bits per byte can. The corpus's validation
prefix (the tokens a run scores) is decoded back to text, document by document (split at the
end-of-document marker), encoded with the model's own tokenizer (documents joined by its eos), and
scored in windows of seq_len + 1 tokens that overlap by one, so every token after the first is
predicted once. bpb = Σ nats / (ln 2 · UTF-8 bytes of the text those tokens stand for: all of it
but the first token's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from scalelab.training.data import Corpus, ValidationWindows
from scalelab.training.loaded_model import LoadedModel


@dataclass(frozen=True)
class TextScore:
    nats: float
    tokens: int       # the model's tokens predicted
    bytes: int        # UTF-8 bytes of the text they stand for

    @property
    def loss(self) -> float:
        return self.nats / self.tokens

    @property
    def bpb(self) -> float:
        return self.nats / (math.log(2) * self.bytes)


def validation_documents(corpus: Corpus, windows: ValidationWindows) -> list[str]:
    """The text of the tokens a run's validation windows cover, as documents."""
    stream = windows.reader.window(0, windows.num_windows * windows.seq_len + 1).astype(np.int64)
    cuts = np.flatnonzero(stream == corpus.eod_id)
    pieces = np.split(stream, cuts)
    tokenizer = Tokenizer.from_file(str(corpus.folder / "tokenizer.json"))
    docs = [tokenizer.decode([int(t) for t in p if t != corpus.eod_id]) for p in pieces]
    return [d for d in docs if d]


def model_stream(model: LoadedModel, docs: list[str]) -> tuple[list[int], int]:
    """The documents in the model's token ids, joined by its eos; and the bytes its predicted tokens
    stand for (the text's, less the first token's)."""
    tokenizer = Tokenizer.from_file(str(model.tokenizer_json))
    ids: list[int] = []
    for i, doc in enumerate(docs):
        if i and model.eod_id is not None:
            ids.append(model.eod_id)
        ids += tokenizer.encode(doc, add_special_tokens=False).ids
    text_bytes = sum(len(d.encode("utf-8")) for d in docs)
    first = len(tokenizer.decode(ids[:1], skip_special_tokens=True).encode("utf-8"))
    return ids, text_bytes - first


def score_text(model: LoadedModel, docs: list[str], seq_len: int, batch_size: int) -> TextScore:
    ids, predicted_bytes = model_stream(model, docs)
    if len(ids) < 2:
        raise ValueError("the validation text is shorter than two of the model's tokens")
    stream = torch.tensor(ids)
    starts = list(range(0, len(ids) - 1, seq_len))
    full = [s for s in starts if s + seq_len + 1 <= len(ids)]
    nats = 0.0
    with torch.no_grad():
        for i in range(0, len(full), batch_size):
            block = torch.stack([stream[s : s + seq_len + 1] for s in full[i : i + batch_size]])
            nats += _nats(model, block)
        for s in starts[len(full):]:  # the last, shorter window
            nats += _nats(model, stream[s:][None])
    return TextScore(nats, len(ids) - 1, predicted_bytes)


def _nats(model: LoadedModel, block: torch.Tensor) -> float:
    logits = model.logits(block[:, :-1])
    return float(F.cross_entropy(logits.float().transpose(1, 2), block[:, 1:], reduction="sum").double())


def tokenizers_differ(model: LoadedModel, corpus: Corpus) -> Optional[str]:
    """None when every corpus token has the same id in the model's tokenizer; else an example token."""
    theirs = Tokenizer.from_file(str(model.tokenizer_json)).get_vocab(with_added_tokens=True)
    ours = Tokenizer.from_file(str(corpus.folder / "tokenizer.json")).get_vocab(with_added_tokens=True)
    return next((t for t, i in ours.items() if theirs.get(t) != i), None)
