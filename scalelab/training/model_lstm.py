"""An LSTM language model with tied input/output embeddings: the recurrent baseline that Kaplan et
al. (2020, fig. 7) set beside Transformers on the same data.

Embedding -> `n_layer` stacked LSTMs of width `d_model` -> the output layer, which is the token
embedding (Press & Wolf 2017; Inan et al. 2017), so the LSTM's width is the embedding's. Initialized
as PyTorch's word-language-model example (after Zaremba et al. 2014): embedding U(-0.1, 0.1), the
LSTM's own default U(-1/√d, 1/√d). No position embeddings and no context limit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn as nn

EMBEDDING_INIT_RANGE = 0.1


@dataclass(frozen=True)
class LSTMConfig:
    family: ClassVar[str] = "lstm"
    n_layer: int
    d_model: int
    vocab_size: int
    dropout: float = 0.0  # between layers and on the embedding and output

    def to_dict(self) -> dict:
        return asdict(self)


class LSTMLM(nn.Module):
    def __init__(self, cfg: LSTMConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.d_model, cfg.d_model, num_layers=cfg.n_layer, batch_first=True,
                            dropout=cfg.dropout if cfg.n_layer > 1 else 0.0)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        nn.init.uniform_(self.wte.weight, -EMBEDDING_INIT_RANGE, EMBEDDING_INIT_RANGE)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (batch, time) -> next-token logits (batch, time, vocab); each window starts from a zero state."""
        out, _ = self.lstm(self.drop(self.wte(idx)))
        return self.lm_head(self.drop(out))
