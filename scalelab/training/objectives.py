"""What a family learns to predict, and how its loss is counted: next tokens, or masked tokens.

`CausalLM` (GPT, LSTM) predicts every next token of a window and is scored over all of them.
`MaskedLM` (BERT) predicts the selected tokens of its window (masking.py) and is scored over those
only: its validation loss is nats per selected token, and its bits per byte divide by the bytes of
the selected tokens' text. The two are different quantities; fits never mix them (the reports
group runs by family).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from scalelab.training.data import ValidationWindows
from scalelab.training.families import CAUSAL_LM, MASKED_LM, ModelShape, OBJECTIVES
from scalelab.training.masking import IGNORE, MaskingRule, masked_lm_loss, train_key, validation_key
from scalelab.training.model import lm_loss


@dataclass(frozen=True)
class Scored:
    """What a validation loss is averaged over: the same for every evaluation of a run."""

    tokens: int              # predicted tokens (all targets, or the selected ones)
    bytes: Optional[float]   # their UTF-8 bytes: the bits-per-byte denominator


class CausalLM:
    name = CAUSAL_LM

    def train_loss(self, model, x: torch.Tensor, y: torch.Tensor, positions: Sequence[int],
                   device: torch.device) -> torch.Tensor:
        return lm_loss(model(x.to(device)), y.to(device))

    def eval_nats(self, model, ids: Sequence[int], x: torch.Tensor, y: torch.Tensor, real: int,
                  device: torch.device) -> torch.Tensor:
        logits = model(x.to(device))
        nats = F.cross_entropy(logits.float().transpose(1, 2), y.to(device), reduction="none")
        return nats[:real].double().sum()

    def scored(self, windows: ValidationWindows) -> Scored:
        return Scored(windows.tokens, windows.bytes)


class MaskedLM:
    """The window's first seq_len tokens, corrupted; the loss on the selected ones."""

    name = MASKED_LM

    def __init__(self, rule: MaskingRule, seed: int):
        self.rule, self.seed = rule, seed

    def train_loss(self, model, x: torch.Tensor, y: torch.Tensor, positions: Sequence[int],
                   device: torch.device) -> torch.Tensor:
        inputs, labels = self.rule.batch(x, [train_key(self.seed, g) for g in positions])
        return masked_lm_loss(model(inputs.to(device)), labels.to(device))

    def eval_nats(self, model, ids: Sequence[int], x: torch.Tensor, y: torch.Tensor, real: int,
                  device: torch.device) -> torch.Tensor:
        inputs, labels = self.rule.batch(x, [validation_key(w) for w in ids])
        logits = model(inputs.to(device))
        nats = F.cross_entropy(logits.float().transpose(1, 2), labels.to(device), ignore_index=IGNORE,
                               reduction="none")  # 0 at unselected positions
        return nats[:real].double().sum()

    def scored(self, windows: ValidationWindows) -> Scored:
        """The selected tokens of every validation window (all ranks' together) and their bytes."""
        picked = [self._selected(windows, w) for w in range(windows.num_windows)]
        tokens = np.concatenate(picked) if picked else np.empty(0, np.int64)
        return Scored(int(tokens.size), windows.counter.count(tokens))

    def _selected(self, windows: ValidationWindows, index: int) -> np.ndarray:
        labels = self.rule.window(windows.window_tokens(index)[:-1], validation_key(index)).labels
        return labels[labels != IGNORE]


Objective = Union[CausalLM, MaskedLM]


def objective_for(shape: ModelShape, seed: int, eod_id: Optional[int]) -> Objective:
    if OBJECTIVES[shape.family] == MASKED_LM:
        corpus_vocab = shape.mask_id  # [MASK] is the first id after the corpus's vocabulary
        return MaskedLM(MaskingRule(corpus_vocab, shape.mask_id, () if eod_id is None else (eod_id,)), seed)
    return CausalLM()
