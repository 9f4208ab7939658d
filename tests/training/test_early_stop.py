"""Early stopping, the convergence flag and bits per byte, on synthetic curves and a real tokenizer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tokenizers import Tokenizer

from scalelab.training.bits_per_byte import bits_per_byte, byte_counter, token_byte_lengths
from scalelab.training.config import EarlyStopSpec
from scalelab.training.convergence import converged, last_window_improvement
from scalelab.training.early_stop import EarlyStopper

from tests.conftest import REPO

GPT2 = REPO.parent / "shared" / "corpora" / "tokenizers" / "gpt2" / "tokenizer.json"


def run_stopper(curve, every: int = 10, warmup: int = 0, cap: int = 10_000,
                spec: EarlyStopSpec = EarlyStopSpec()) -> tuple[EarlyStopper, int]:
    """Feed curve(step, lr factor so far) to a stopper until it stops or the cap; return it and the last step."""
    stopper = EarlyStopper(spec, warmup, every, min_lr_ratio=0.1)
    step = 0
    while step < cap and not stopper.stopped:
        step += every
        stopper.observe(step, curve(step))
    return stopper, step


def test_stops_after_a_plateau_a_cooldown_and_a_second_plateau():
    stopper, step = run_stopper(lambda s: 3.0 + 2.0 * math.exp(-s / 200))
    s = stopper.state
    assert stopper.stopped and s.phase == "stopped"
    assert s.cooldown_start is not None and s.cooldown_steps == max(10, int(0.2 * s.cooldown_start))
    assert step >= s.cooldown_start + s.cooldown_steps  # the cooldown ran whole before the stop
    # a stopped run passes the convergence check by construction
    assert converged([(a, b) for a, b in s.evals], step)


def test_lr_factor_is_warmup_then_constant_then_linear_cooldown():
    stopper = EarlyStopper(EarlyStopSpec(), warmup_steps=10, eval_every=10, min_lr_ratio=0.1)
    assert stopper.lr_factor(0) == pytest.approx(0.1) and stopper.lr_factor(9) == 1.0
    assert stopper.lr_factor(500) == 1.0
    stopper.state.phase, stopper.state.cooldown_start, stopper.state.cooldown_steps = "cooldown", 100, 50
    assert stopper.lr_factor(100) == 1.0
    assert stopper.lr_factor(125) == pytest.approx(0.55)
    assert stopper.lr_factor(150) == pytest.approx(0.1) and stopper.lr_factor(900) == pytest.approx(0.1)


def test_a_still_falling_curve_never_stops_before_the_cap():
    stopper, step = run_stopper(lambda s: 10.0 / (1 + s / 50), cap=2000)
    assert not stopper.stopped and step == 2000 and stopper.state.phase == "stable"


def test_patience_keeps_a_slowly_learning_run_from_cooling_down_early():
    """0.3% better every 50 steps until step 1000, then flat: 10% of the steps so far (or four
    evaluations) sees less than the 0.5% threshold; a 200-step patience sees 1.2% and waits."""
    def slow(s):
        return 4.0 * (1 - 0.003 * min(s, 1000) / 50)

    hasty, _ = run_stopper(slow)
    patient, _ = run_stopper(slow, spec=EarlyStopSpec(patience_steps=200))
    assert hasty.state.cooldown_start < 200
    assert 1000 <= patient.state.cooldown_start <= 1000 + 200 + 10
    assert patient.stopped  # the final plateau test runs without the patience


def test_an_overfitting_run_cools_down_from_its_best_evaluation():
    """Val loss bottoms out near step 290 and rises: the cooldown starts once the plateau is seen,
    from the weights of the lowest evaluation (rewind), the last one kept."""
    def overfit(s):
        return 3.0 + 2.0 * math.exp(-s / 60) + 0.0005 * max(0, s - 300)

    stopper = EarlyStopper(EarlyStopSpec(patience_steps=100), warmup_steps=0, eval_every=10, min_lr_ratio=0.1)
    kept, rewinds = [], []
    step = 0
    while not stopper.stopped and step < 5000:
        step += 10
        stopper.observe(step, overfit(step))
        kept += [step] if stopper.improved else []
        rewinds += [step] if stopper.rewind_due else []
    s = stopper.state
    lowest = min(range(10, s.cooldown_start + 1, 10), key=overfit)
    assert 250 <= lowest <= 300 and s.best_step == lowest == s.rewound_to == kept[-1]
    assert rewinds == [s.cooldown_start] and s.cooldown_start > lowest
    plain, _ = run_stopper(overfit, spec=EarlyStopSpec(patience_steps=100, rewind=False))
    assert plain.state.rewound_to is None


def test_state_round_trips_and_resumed_decisions_match():
    curve = lambda s: 3.0 + 2.0 * math.exp(-s / 150) + 0.0002 * s  # noqa: E731  (overfits late)
    whole, end = run_stopper(curve)
    half = EarlyStopper(EarlyStopSpec(), 0, 10, 0.1)
    for step in range(10, end // 2 + 1, 10):
        half.observe(step, curve(step))
    resumed = EarlyStopper(EarlyStopSpec(), 0, 10, 0.1)
    resumed.load_state_dict(half.state_dict())
    step = end // 2 - (end // 2) % 10
    while not resumed.stopped:
        step += 10
        resumed.observe(step, curve(step))
    assert resumed.state_dict() == whole.state_dict()


def test_convergence_flag_on_synthetic_curves():
    flat = [(s, 3.0 + 1.0 * math.exp(-s / 20)) for s in range(10, 1001, 10)]
    falling = [(s, 5.0 - 0.002 * s) for s in range(10, 1001, 10)]
    assert converged(flat, 1000) is True
    assert converged(falling, 1000) is False
    # improvement over the last 10%: from the loss at step 900 to the best after it
    assert last_window_improvement(falling, 1000) == pytest.approx((3.2 - 3.0) / 3.2)
    assert converged([(1000, 3.0)], 1000) is None  # nothing before the window: can't tell


def test_bits_per_byte_against_a_hand_computation():
    # 1000 nats over 500 bytes: 1000 / (ln 2 × 500) bits per byte
    assert bits_per_byte(1000.0, 500) == pytest.approx(2.0 / math.log(2))
    assert bits_per_byte(1000.0, None) is None


@pytest.mark.skipif(not GPT2.is_file(), reason="the shared GPT-2 tokenizer is not beside the checkout")
def test_token_bytes_of_a_real_byte_level_tokenizer_sum_to_the_text():
    tok = Tokenizer.from_file(str(GPT2))
    text = "Naïve café owners — 日本語 and ASCII text, with ünïcödé in the middle.\n\nTo be, or not to be."
    ids = np.array(tok.encode(text).ids)
    table = token_byte_lengths(GPT2, tok.get_vocab_size())
    assert table is not None and int(table[ids].sum()) == len(text.encode("utf-8"))
    counter = byte_counter(GPT2, tok.get_vocab_size(), ids, len(text.encode("utf-8")))
    assert counter.exact and counter.count(ids[3:10]) == int(table[ids[3:10]].sum())
    # a byte count that the table doesn't reproduce: fall back to the file's average
    approx = byte_counter(GPT2, tok.get_vocab_size(), ids, 2 * len(text.encode("utf-8")))
    assert not approx.exact and approx.count(ids[:10]) == pytest.approx(10 * 2 * len(text.encode()) / len(ids))
