"""Early stopping with a warmup-stable-decay schedule: train until validation loss stops improving.

A data-scaling point must come from a run that has learned what its data can teach (Kaplan et al.
2020, §3.2, trained each data size until validation loss stopped improving). Its length is therefore
not known in advance, and a cosine schedule, which needs the length, can't be used. The schedule
here is warmup, then a constant rate, then a linear cooldown to `min_lr_ratio` that starts when the
loss has plateaued (warmup-stable-decay: Hu et al. 2024; Hägele et al. 2024 show a cooldown of ~20%
of the run matches a cosine schedule of the same length):

1. stable: after each evaluation, if the best loss of the last window (the larger of
   `window_fraction` of the steps so far, `min_evals` evaluations and `patience_steps`) is not
   better than the loss before the window by more than `min_improvement` (relative), the cooldown
   starts. The patience matters for the smallest scales: a run that has seen its 50k tokens ten
   times in 250 steps may still be learning slowly, and 10% of 250 steps can't show it;
   With `rewind`, the cooldown starts from the weights of the best evaluation so far (kept as a
   checkpoint), not from where the plateau was noticed: a run that has begun to overfit its
   small scale would otherwise cool down from worse weights, and only the scales that never
   overfit would get the cooldown's gain (early stopping's "restore the best weights");
2. cooldown: `cooldown_fraction` × the steps so far, the rate falling linearly;
3. final: after the cooldown, the plateau test at the low rate (without the patience: the
   question now is only whether the cooldown's gains have levelled off) decides the stop.

The run also stops at its length cap (`train.steps/tokens/epochs`). The state is a few numbers,
saved in every checkpoint, so a resumed run makes the same decisions as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional

Phase = Literal["stable", "cooldown", "final", "stopped"]


@dataclass
class EarlyStopState:
    phase: Phase = "stable"
    cooldown_start: Optional[int] = None  # the step the cooldown began after
    cooldown_steps: Optional[int] = None
    evals: list[list[float]] = field(default_factory=list)  # [step, validation loss] per evaluation
    best_step: Optional[int] = None       # the best evaluation of the stable phase ...
    best_loss: Optional[float] = None
    rewound_to: Optional[int] = None      # ... which the cooldown started from, when it was not the last


class EarlyStopper:
    def __init__(self, spec, warmup_steps: int, eval_every: int, min_lr_ratio: float):
        self.spec, self.warmup, self.eval_every, self.floor = spec, warmup_steps, eval_every, min_lr_ratio
        self.state = EarlyStopState()
        self.improved = False      # the last evaluation is the stable phase's best: keep its weights
        self.rewind_due = False    # the cooldown starts now, from the kept weights

    @property
    def stopped(self) -> bool:
        return self.state.phase == "stopped"

    def lr_factor(self, i: int) -> float:
        """The factor on the peak rate for optimizer step i + 1 (LambdaLR's convention)."""
        if i < self.warmup:
            return (i + 1) / self.warmup
        s = self.state
        if s.phase == "stable" or s.cooldown_start is None:
            return 1.0
        progress = min(1.0, (i - s.cooldown_start) / max(1, s.cooldown_steps))
        return 1.0 - (1.0 - self.floor) * progress

    def plateaued(self, step: int, patience: int = 0) -> bool:
        """No relative improvement above `min_improvement` over the last window of evaluations."""
        window = max(int(self.spec.window_fraction * step), self.spec.min_evals * self.eval_every, patience)
        before = [v for s, v in self.state.evals if s <= step - window]
        inside = [v for s, v in self.state.evals if s > step - window]
        if not before or not inside:
            return False
        reference = before[-1]
        return (reference - min(inside)) / reference <= self.spec.min_improvement

    def observe(self, step: int, val_loss: float) -> bool:
        """Record an evaluation after `step`; True when the run should stop now."""
        s = self.state
        s.evals.append([step, val_loss])
        self.improved = self.rewind_due = False
        if s.phase == "stable" and (s.best_loss is None or val_loss < s.best_loss):
            s.best_step, s.best_loss, self.improved = step, val_loss, True
        if s.phase == "stable" and step > self.warmup and self.plateaued(step, self.spec.patience_steps):
            s.phase, s.cooldown_start = "cooldown", step
            s.cooldown_steps = max(self.eval_every, int(self.spec.cooldown_fraction * step))
            if self.spec.rewind and s.best_step is not None and s.best_step < step:
                s.rewound_to, self.rewind_due = s.best_step, True
        elif s.phase == "cooldown" and step >= s.cooldown_start + s.cooldown_steps:
            s.phase = "final"
        elif s.phase == "final" and self.plateaued(step):
            s.phase = "stopped"
        return self.stopped

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = EarlyStopState(**state)
