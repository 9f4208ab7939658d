"""Named model shapes and the two parameter counts the scaling literature uses.

Kaplan et al. (2020) fit laws in N = non-embedding parameters (≈ 12·L·d²); Hoffmann et al. (2022)
count all parameters. Both are reported for every run so either fit can be made, for every family
(the formulas are checked against the modules in tests/training/test_families.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Union

from scalelab.training.model import ModelConfig
from scalelab.training.model_bert import BertConfig
from scalelab.training.model_lstm import LSTMConfig


@dataclass(frozen=True)
class Shape:
    n_layer: int
    n_head: int
    d_model: int
    context: int


PRESETS: dict[str, Shape] = {
    # Tiny shapes for CPU runs and tests (non-embedding parameters in the name's ballpark).
    "nano": Shape(n_layer=2, n_head=2, d_model=64, context=256),      # ~0.1M non-embedding
    "micro": Shape(n_layer=3, n_head=4, d_model=128, context=256),    # ~0.6M
    "mini": Shape(n_layer=4, n_head=4, d_model=256, context=512),     # ~3.2M
    "small": Shape(n_layer=6, n_head=6, d_model=384, context=1024),   # ~10.6M
    # GPT-2 (Radford et al. 2019) and GPT-3 XL (Brown et al. 2020) shapes.
    "gpt2-124m": Shape(n_layer=12, n_head=12, d_model=768, context=1024),
    "gpt2-350m": Shape(n_layer=24, n_head=16, d_model=1024, context=1024),
    "gpt2-774m": Shape(n_layer=36, n_head=20, d_model=1280, context=1024),
    "gpt2-1.5b": Shape(n_layer=48, n_head=25, d_model=1600, context=1024),
    "gpt3-1.3b": Shape(n_layer=24, n_head=16, d_model=2048, context=2048),
}


def padded_vocab(vocab_size: int, multiple: int) -> int:
    """Round the vocabulary up (GPT-2's 50257 -> 50304 at 64) so the output matmul tiles well."""
    return -(-vocab_size // multiple) * multiple if multiple > 1 else vocab_size


def count_params(cfg: Union[ModelConfig, BertConfig, LSTMConfig]) -> dict[str, int]:
    """Parameter counts by formula (tied embeddings counted once), for the config's family."""
    if isinstance(cfg, BertConfig):
        return _bert_params(cfg)
    if isinstance(cfg, LSTMConfig):
        return _lstm_params(cfg)
    return _gpt_params(cfg)


def _gpt_params(cfg: ModelConfig) -> dict[str, int]:
    """Parameter counts by formula (tied embeddings counted once).

    Per block: two LayerNorms (d weights, d biases each), attention 4d² weights + 4d biases,
    MLP 8d² weights + 5d biases. `non_embedding` leaves out the token and position embeddings.
    """
    d, L = cfg.d_model, cfg.n_layer
    norm = 2 * d if cfg.bias else d
    biases = (4 * d + 5 * d) if cfg.bias else 0
    block = 2 * norm + 12 * d * d + biases
    non_embedding = L * block + norm  # + the final LayerNorm
    embedding = cfg.vocab_size * d + cfg.context * d
    return {"total": non_embedding + embedding, "non_embedding": non_embedding}


def _bert_params(cfg: BertConfig) -> dict[str, int]:
    """A GPT block's parameters per layer; then the embedding LayerNorm, and the MLM head (a d×d dense
    layer, a LayerNorm and the output bias of one per token). Non-embedding leaves out the token and
    position embeddings, as for the GPT."""
    d, L, v = cfg.d_model, cfg.n_layer, cfg.vocab_size
    norm = 2 * d if cfg.bias else d
    block = 2 * norm + 12 * d * d + ((4 * d + 5 * d) if cfg.bias else 0)
    head = d * d + (d if cfg.bias else 0) + norm + (v if cfg.bias else 0)
    non_embedding = norm + L * block + head
    return {"total": non_embedding + v * d + cfg.context * d, "non_embedding": non_embedding}


def _lstm_params(cfg: LSTMConfig) -> dict[str, int]:
    """Per layer four gates, each with an input and a recurrent d×d matrix and two biases (PyTorch's
    b_ih and b_hh): 8d² + 8d. The embedding is the output layer (tied)."""
    d = cfg.d_model
    non_embedding = cfg.n_layer * (8 * d * d + 8 * d)
    return {"total": non_embedding + cfg.vocab_size * d, "non_embedding": non_embedding}
