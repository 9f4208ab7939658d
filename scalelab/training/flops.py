"""Training FLOPs and model FLOPs utilization (MFU), as PaLM (Chowdhery et al. 2022, app. B) counts them.

FLOPs per token = 6·N + 12·L·H·Q·T: 6N for the forward and backward matmuls over the weights, and
12·L·H·Q·T for attention scores and values (H heads of size Q over a context of T). N here is every
weight a token is multiplied by: all parameters but the position embeddings (the token embedding
counts once, as the output layer). MFU = achieved FLOP/s / the device's peak dense bf16 FLOP/s.

The same count for each family: BERT attends both ways over the whole window, which is the same
12·L·H·Q·T (PaLM's term counts the full score matrix for causal models too), and its MLM head is in
N; the loss covers only the masked tokens, but the forward computes every position's logits. The
LSTM has no attention term: 6·N, N being its gate matrices, biases and the (tied) output layer.
"""

from __future__ import annotations

from typing import Optional, Union

from scalelab.training.model import ModelConfig
from scalelab.training.model_bert import BertConfig
from scalelab.training.model_lstm import LSTMConfig
from scalelab.training.model_sizes import count_params

# Dense bf16 peaks by device name (NVIDIA data sheets); no peak is claimed for CPUs.
PEAK_FLOPS: dict[str, float] = {"A100": 312e12, "H100": 989e12, "H200": 989e12}


def matmul_params(cfg: Union[ModelConfig, BertConfig, LSTMConfig]) -> int:
    positions = 0 if isinstance(cfg, LSTMConfig) else cfg.context * cfg.d_model
    return count_params(cfg)["total"] - positions


def flops_per_token(cfg: Union[ModelConfig, BertConfig, LSTMConfig], seq_len: int) -> float:
    if isinstance(cfg, LSTMConfig):
        return 6 * matmul_params(cfg)
    return 6 * matmul_params(cfg) + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * seq_len


def peak_flops(device_name: Optional[str]) -> Optional[float]:
    """The bf16 peak of one device from its name (`torch.cuda.get_device_name()`), None if unknown."""
    if not device_name:
        return None
    upper = device_name.upper()
    for key, peak in PEAK_FLOPS.items():
        if key in upper:
            return peak
    return None


def mfu(flops_per_tok: float, tokens_per_s: float, world_size: int, peak: Optional[float]) -> Optional[float]:
    """Fraction of the devices' peak that the run achieved; None where no peak is known."""
    if peak is None or tokens_per_s <= 0:
        return None
    return flops_per_tok * tokens_per_s / (peak * world_size)
