"""The GPU path's configuration, checked without a GPU: GPT-124M under ZeRO-2 and ZeRO-3 resolves to
bf16 with DeepSpeed's Adam, its FLOPs are counted as the trainer counts them, and bench/train.py's
--dry-run builds it as on a GPU. (Speed and MFU need a GPU; none is assumed here.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from scalelab.training.config import REPO, TrainConfig
from scalelab.training.deepspeed_config import resolve_deepspeed_config
from scalelab.training.flops import flops_per_token, mfu, peak_flops
from scalelab.training.model_sizes import count_params


def gpt124m(stage: str) -> TrainConfig:
    return TrainConfig.model_validate({"data": {"corpus": "out/sample", "scale": "80k", "seq_len": 1024},
                                       "model": {"preset": "gpt2-124m"},
                                       "batch": {"micro_batch_size": 16, "grad_accum": 2}, "deepspeed": stage})


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_gpt124m_resolves_to_bf16_on_a_gpu(stage):
    ds = resolve_deepspeed_config(gpt124m(stage), world_size=1, on_gpu=True, bf16_ok=True)
    assert ds["bf16"]["enabled"] is True and ds["optimizer"]["params"]["torch_adam"] is False
    assert ds["zero_optimization"]["stage"] == int(stage[-1])
    assert (ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"]) == (32, 16)
    # The same JSON on a CPU: fp32 and torch's AdamW.
    cpu = resolve_deepspeed_config(gpt124m(stage), world_size=1, on_gpu=False, bf16_ok=False)
    assert cpu["bf16"]["enabled"] is False and cpu["optimizer"]["params"]["torch_adam"] is True


def test_gpt124m_flops_and_mfu_as_counted():
    shape = gpt124m("zero2").model.build(50257, 1024)
    n = count_params(shape)["total"] - 1024 * 768  # every weight a token meets: not the position table
    assert flops_per_token(shape, 1024) == 6 * n + 12 * 12 * 12 * 64 * 1024
    assert peak_flops("NVIDIA H200") == peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    # 45% MFU on one H200 is this many tokens/s, and back.
    rate = 0.45 * 989e12 / flops_per_token(shape, 1024)
    assert mfu(flops_per_token(shape, 1024), rate, 1, peak_flops("NVIDIA H200")) == pytest.approx(0.45)


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_bench_dry_run_builds_the_gpu_plan(sample_corpus, stage):
    out = subprocess.run([sys.executable, str(REPO / "bench" / "train.py"), "--corpus", str(sample_corpus),
                          "--preset", "gpt2-124m", "--vocab-size", "50257", "--seq-len", "1024", "--micro-batch", "16",
                          "--deepspeed", stage, "--dry-run"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"124.48M params, seq_len 1024, 16,384 tokens/step, ZeRO-{stage[-1]}, bf16, DeepSpeed Adam" in out.stdout
