"""A BERT: bidirectional Transformer encoder with a masked-language-model head (Devlin et al. 2019).

The layout is BERT's, so that `scalelab export` maps it one to one onto Hugging Face's
`BertForMaskedLM`: post-LayerNorm blocks (ε 1e-12), exact-erf GELU, learned positions, an
embedding LayerNorm, and the MLM head (dense, GELU, LayerNorm, then the output layer tied to the
token embedding, with a bias of its own). No token-type embeddings: windows are one segment
(the export writes a zero one). Masking, and the loss on the selected tokens, are in masking.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYER_NORM_EPS = 1e-12  # BERT's


@dataclass(frozen=True)
class BertConfig:
    family: ClassVar[str] = "bert"
    n_layer: int
    n_head: int
    d_model: int
    vocab_size: int       # the corpus's tokens, [MASK] and padding
    context: int
    mask_id: int          # the [MASK] token: the first id after the corpus's vocabulary
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if not 0 <= self.mask_id < self.vocab_size:
            raise ValueError(f"mask_id {self.mask_id} is outside the vocabulary of {self.vocab_size}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


class BidirectionalSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in self.qkv(x).split(c, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=False,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, c))


class EncoderLayer(nn.Module):
    """Post-LN: x = LN(x + attention(x)); x = LN(x + MLP(x))."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attn = BidirectionalSelfAttention(cfg)
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=LAYER_NORM_EPS, bias=cfg.bias)
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=LAYER_NORM_EPS, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.drop(self.attn(x)))
        return self.ln2(x + self.drop(self.proj(F.gelu(self.fc(x)))))


class Bert(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.context, cfg.d_model)
        self.ln_emb = nn.LayerNorm(cfg.d_model, eps=LAYER_NORM_EPS, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layer))
        self.mlm_dense = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.mlm_ln = nn.LayerNorm(cfg.d_model, eps=LAYER_NORM_EPS, bias=cfg.bias)
        # Tied as GPT's is (a module of its own sharing the embedding's Parameter, for ZeRO-3).
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=cfg.bias)
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # BERT's: N(0, 0.02) for weights and embeddings, zero biases, LayerNorms at identity.
        if isinstance(module, nn.Linear):
            if module is not self.lm_head:
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (batch, time), some replaced by [MASK] -> logits (batch, time, vocab) at every position."""
        t = idx.shape[1]
        if t > self.cfg.context:
            raise ValueError(f"sequence of {t} tokens is longer than the model's context {self.cfg.context}")
        pos = torch.arange(t, device=idx.device)
        x = self.drop(self.ln_emb(self.wte(idx) + self.wpe(pos)))
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.mlm_ln(F.gelu(self.mlm_dense(x))))
