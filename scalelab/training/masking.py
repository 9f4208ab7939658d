"""BERT's masked-language-model corruption (Devlin et al. 2019, §3.1) and its loss.

Of a window's tokens, 15% are selected (each independently; the end-of-document marker never);
of those, 80% become [MASK], 10% a random token of the corpus's vocabulary, 10% stay as they were.
The loss is the cross-entropy of the original token at the selected positions only.

Each window's choices come from its own generator, keyed by what identifies the window: training
windows by (seed, position in the run's window stream), so the masks don't depend on the number of
ranks, a resumed run draws the same ones, and a window seen again in a later epoch is masked afresh
(dynamic masking, as RoBERTa); validation windows by their index alone, so every run of a corpus
and seq_len is scored on the same selected tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

SELECT_RATE = 0.15
MASK_SHARE, RANDOM_SHARE = 0.8, 0.1  # of the selected; the rest (10%) are kept
IGNORE = -100                        # label of an unselected position (F.cross_entropy's ignore_index)
TRAIN_KEY, VALIDATION_KEY = 1, 2     # keep the training and validation generators apart


@dataclass(frozen=True)
class MaskedWindow:
    inputs: np.ndarray   # the window with the selected tokens corrupted
    labels: np.ndarray   # the original token where selected, IGNORE elsewhere


@dataclass(frozen=True)
class MaskingRule:
    vocab_size: int      # the corpus's tokens: random replacements are drawn from these
    mask_id: int
    never_select: tuple[int, ...] = ()  # special tokens (the end-of-document marker)

    def window(self, tokens: np.ndarray, key: Sequence[int]) -> MaskedWindow:
        rng = np.random.default_rng(list(key))
        tokens = tokens.astype(np.int64)  # shards hold uint16/uint32: IGNORE must not wrap around
        n = tokens.size
        selected = rng.random(n) < SELECT_RATE
        if self.never_select:
            selected &= ~np.isin(tokens, self.never_select)
        action = rng.random(n)
        replacements = rng.integers(0, self.vocab_size, n)
        masked = selected & (action < MASK_SHARE)
        randomized = selected & (action >= MASK_SHARE) & (action < MASK_SHARE + RANDOM_SHARE)
        inputs = np.where(masked, self.mask_id, np.where(randomized, replacements, tokens))
        return MaskedWindow(inputs, np.where(selected, tokens, IGNORE))

    def batch(self, windows: torch.Tensor, keys: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, time) token ids and a key per row -> (inputs, labels) tensors."""
        rows = [self.window(w, k) for w, k in zip(windows.numpy(), keys)]
        return (torch.from_numpy(np.stack([r.inputs for r in rows])),
                torch.from_numpy(np.stack([r.labels for r in rows])))


def train_key(seed: int, stream_position: int) -> tuple[int, int, int]:
    return (TRAIN_KEY, seed, stream_position)


def validation_key(window_index: int) -> tuple[int, int]:
    return (VALIDATION_KEY, window_index)


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats over the selected positions, in fp32 (0 when none is selected)."""
    selected = (labels != IGNORE).sum()
    total = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE,
                            reduction="sum")
    return total / selected.clamp(min=1)
