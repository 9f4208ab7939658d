"""The GPT: parameter counts by hand and against published sizes, causality, context limit."""

from __future__ import annotations

import pytest
import torch

from scalelab.training.flops import flops_per_token, matmul_params, mfu, peak_flops
from scalelab.training.model import GPT, ModelConfig, lm_loss
from scalelab.training.model_sizes import PRESETS, count_params, padded_vocab


def built_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # shared (tied) parameters once


def test_nano_counts_by_hand():
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=64, vocab_size=4096, context=256)
    d = 64
    per_block = (2 * d) + (3 * d * d + 3 * d) + (d * d + d) + (2 * d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    non_embedding = 2 * per_block + 2 * d
    assert non_embedding == 100_096
    total = non_embedding + 4096 * d + 256 * d
    assert count_params(cfg) == {"total": total, "non_embedding": non_embedding}
    assert built_count(GPT(cfg)) == total


def test_gpt2_small_has_its_published_124m():
    # GPT-2 small with its unpadded 50,257-token vocabulary: 124,439,808 parameters (tied output).
    s = PRESETS["gpt2-124m"]
    cfg = ModelConfig(n_layer=s.n_layer, n_head=s.n_head, d_model=s.d_model, vocab_size=50257, context=s.context)
    assert count_params(cfg)["total"] == 124_439_808
    # Kaplan's N for it: about 12·L·d² = 84.9M.
    assert count_params(cfg)["non_embedding"] == 85_056_000
    assert padded_vocab(50257, 64) == 50304


@pytest.mark.parametrize("name", ["nano", "micro", "mini"])
def test_formula_matches_the_module_for_presets(name):
    s = PRESETS[name]
    cfg = ModelConfig(n_layer=s.n_layer, n_head=s.n_head, d_model=s.d_model, vocab_size=512, context=s.context)
    assert built_count(GPT(cfg)) == count_params(cfg)["total"]


def test_output_layer_is_tied_and_attention_is_causal():
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=32, vocab_size=100, context=16)
    model = GPT(cfg).eval()
    assert model.lm_head.weight is model.wte.weight
    x = torch.randint(0, 100, (1, 16))
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % 100  # change only the future of position 9
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[0, :10], b[0, :10])
    assert not torch.equal(a[0, 10:], b[0, 10:])
    # An untrained model predicts near-uniformly: loss ≈ ln(vocab).
    assert abs(float(lm_loss(a[:, :-1], x[:, 1:])) - torch.log(torch.tensor(100.0)).item()) < 0.5
    with pytest.raises(ValueError, match="longer than the model's context 16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_flops_per_token_and_mfu_by_hand():
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=64, vocab_size=4096, context=256)
    n = 378_624 - 256 * 64  # every weight a token meets: all but the position embeddings
    assert matmul_params(cfg) == n
    attention = 12 * 2 * 2 * 32 * 128  # 12 · L · H · Q · T
    assert flops_per_token(cfg, 128) == 6 * n + attention == 2_370_048
    # 8 H100s at 3e7 tokens/s: 2,370,048 × 3e7 / (8 × 989e12) ≈ 0.008987.
    assert mfu(2_370_048, 3e7, 8, peak_flops("NVIDIA H100 80GB HBM3")) == pytest.approx(2_370_048 * 3e7 / (8 * 989e12))
    assert peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops("NVIDIA H200") == 989e12
    assert peak_flops(None) is None and mfu(1e6, 1e4, 1, None) is None
