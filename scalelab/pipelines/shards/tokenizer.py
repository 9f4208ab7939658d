"""The build's tokenizer: a given tokenizer.json, or a byte-level BPE trained on a seeded sample."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from scalelab.pipelines.config import TokenizerConfig


def train_bpe(texts: Iterable[str], vocab_size: int, eod_token: str) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[eod_token], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(cfg: TokenizerConfig) -> Tokenizer:
    path = Path(cfg.path) if cfg.path else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"shards.tokenizer.path: no tokenizer file at {cfg.path}")
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    return tok


def eod_id(tok: Tokenizer, eod_token: str) -> int:
    token_id = tok.token_to_id(eod_token)
    if token_id is None:
        raise ValueError(f"shards.tokenizer.eod_token: {eod_token!r} is not in the tokenizer's vocabulary")
    return token_id


