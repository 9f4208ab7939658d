"""The model families scalelab trains on one corpus, side by side: what differs between them.

- gpt: the decoder-only Transformer (model.py), next-token loss;
- bert: the bidirectional encoder (model_bert.py), masked-token loss (masking.py);
- lstm: the recurrent baseline (model_lstm.py), next-token loss.

A family's shape is its own config dataclass (`ModelConfig`, `BertConfig`, `LSTMConfig`); each names
its family in a class attribute. Parameter counts are in model_sizes.py, FLOPs in flops.py.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import torch.nn as nn

from scalelab.training.model import GPT, ModelConfig
from scalelab.training.model_bert import Bert, BertConfig
from scalelab.training.model_lstm import LSTMConfig, LSTMLM

FAMILIES = ("gpt", "bert", "lstm")
ModelShape = Union[ModelConfig, BertConfig, LSTMConfig]

CAUSAL_LM, MASKED_LM = "causal_lm", "masked_lm"
OBJECTIVES = {"gpt": CAUSAL_LM, "bert": MASKED_LM, "lstm": CAUSAL_LM}
_CONFIGS = {"gpt": ModelConfig, "bert": BertConfig, "lstm": LSTMConfig}
_MODULES = {"gpt": GPT, "bert": Bert, "lstm": LSTMLM}


def build_model(cfg: ModelShape) -> nn.Module:
    return _MODULES[cfg.family](cfg)


def shape_from_dict(family: str, fields: dict[str, Any]) -> ModelShape:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return _CONFIGS[family](**fields)


def context_limit(cfg: ModelShape) -> Optional[int]:
    """The longest window the model takes: its position table; None for the LSTM (no limit)."""
    return getattr(cfg, "context", None)


def saved_header(cfg: ModelShape) -> dict[str, Any]:
    """What model.pt carries beside the weights. A GPT's header is as before families (no `family`)."""
    header: dict[str, Any] = {"model_config": cfg.to_dict()}
    if cfg.family != "gpt":
        header["family"] = cfg.family
    return header
