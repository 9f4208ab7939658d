"""The model families: BERT's masking statistics, each family's parameter counts and FLOPs against
its module, and real DeepSpeed training (ZeRO-2, two gloo processes) of BERT and the LSTM with
falling loss and exact resume."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from scalelab.training import checkpoint
from scalelab.training.config import REPO, ModelSpec, load_train_config
from scalelab.training.data import Corpus, ValidationWindows
from scalelab.training.families import build_model
from scalelab.training.flops import flops_per_token
from scalelab.training.launch import run_local
from scalelab.training.masking import IGNORE, MaskingRule, masked_lm_loss, train_key, validation_key
from scalelab.training.model_bert import BertConfig
from scalelab.training.model_lstm import LSTMConfig
from scalelab.training.model_sizes import count_params
from scalelab.training.objectives import objective_for
from scalelab.training.trainer import TrainError, evaluate

SAMPLE = REPO / "configs" / "train" / "sample.yaml"


def test_masking_statistics_follow_bert():
    rule = MaskingRule(vocab_size=1000, mask_id=1000, never_select=(0,))
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 1000, size=(400, 256))
    tokens[:, ::50] = 0  # end-of-document markers are never selected
    windows = [rule.window(t, train_key(7, i)) for i, t in enumerate(tokens)]
    inputs = np.stack([w.inputs for w in windows])
    labels = np.stack([w.labels for w in windows])
    selected = labels != IGNORE
    eligible = tokens != 0
    assert not selected[~eligible].any()
    assert selected[eligible].mean() == pytest.approx(0.15, abs=0.003)   # 15% of ~100k tokens
    assert (labels[selected] == tokens[selected]).all()                  # the label is the original token
    assert (inputs[~selected] == tokens[~selected]).all()                # unselected tokens are untouched
    masked = inputs[selected] == 1000
    kept = inputs[selected] == tokens[selected]
    randomized = ~masked & ~kept
    assert masked.mean() == pytest.approx(0.8, abs=0.01)
    assert kept.mean() == pytest.approx(0.1 + 0.1 / 1000, abs=0.006)     # a random draw can equal the original
    assert randomized.mean() == pytest.approx(0.1, abs=0.006)
    assert (inputs[selected][randomized] < 1000).all()                   # replacements are corpus tokens
    # Keyed: the same window and key give the same masks; another key (a later epoch) others.
    again = rule.window(tokens[3], train_key(7, 3))
    assert np.array_equal(again.inputs, inputs[3]) and np.array_equal(again.labels, labels[3])
    assert not np.array_equal(rule.window(tokens[3], train_key(7, 403)).labels, labels[3])
    assert not np.array_equal(rule.window(tokens[3], validation_key(3)).labels, labels[3])


def test_masked_loss_counts_only_selected_positions():
    logits = torch.randn(2, 5, 11)
    labels = torch.full((2, 5), IGNORE)
    labels[0, 1], labels[1, 4] = 3, 7
    expected = (torch.nn.functional.cross_entropy(logits[0, 1:2], torch.tensor([3]))
                + torch.nn.functional.cross_entropy(logits[1, 4:5], torch.tensor([7]))) / 2
    assert masked_lm_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    assert masked_lm_loss(logits, torch.full((2, 5), IGNORE)).item() == 0.0


@pytest.mark.parametrize("cfg", [
    BertConfig(n_layer=2, n_head=2, d_model=32, vocab_size=130, context=16, mask_id=128),
    BertConfig(n_layer=3, n_head=4, d_model=64, vocab_size=130, context=32, mask_id=128, bias=False),
    LSTMConfig(n_layer=1, d_model=48, vocab_size=100),
    LSTMConfig(n_layer=3, d_model=32, vocab_size=100),
])
def test_parameter_formulas_match_the_modules(cfg):
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == count_params(cfg)["total"]  # tied: counted once
    assert model.lm_head.weight is model.wte.weight
    embedding = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("wte.", "wpe.")))
    assert count_params(cfg)["non_embedding"] == count_params(cfg)["total"] - embedding


def test_flops_per_token_by_family():
    d, L, v, t = 64, 2, 4096, 128
    lstm = ModelSpec(family="lstm", preset="nano").build(v, t)
    assert flops_per_token(lstm, t) == 6 * (L * (8 * d * d + 8 * d) + v * d)  # no attention term
    bert = ModelSpec(family="bert", preset="nano").build(v, t)
    assert (bert.vocab_size, bert.mask_id) == (4160, 4096)  # [MASK] after the corpus's tokens, then padding
    attention = 12 * L * 2 * 32 * t
    assert flops_per_token(bert, t) == 6 * (count_params(bert)["total"] - 256 * d) + attention


def test_family_in_config_names_and_hashes(tmp_path):
    base = ["data.corpus=out/sample", "data.scale=80k"]
    gpt = load_train_config(SAMPLE, base)
    assert load_train_config(SAMPLE, base + ["model.family=gpt"]).experiment_hash() == gpt.experiment_hash()
    bert = load_train_config(SAMPLE, base + ["model.family=bert"])
    assert bert.experiment_hash() != gpt.experiment_hash() and bert.model.name == "bert-nano"
    lstm = load_train_config(SAMPLE, base + ["model={family: lstm, n_layer: 2, d_model: 48}"])
    assert lstm.model.name == "lstm-L2-D48"
    from scalelab.core.config import ConfigError

    with pytest.raises(ConfigError, match="model.family"):
        load_train_config(SAMPLE, base + ["model.family=rnn"])
    with pytest.raises(ConfigError, match="n_layer and d_model"):
        load_train_config(SAMPLE, base + ["model={family: lstm, n_layer: 2}"])


def config(corpus, out, family, *overrides):
    return load_train_config(SAMPLE, [f"data.corpus={corpus}", f"output={out}", "data.scale=40k",
                                      "train={steps: 12}", "batch.grad_accum=2", "eval.every_steps=4",
                                      "eval.tokens=4k", "checkpoint.every_steps=4", f"model.family={family}",
                                      "deepspeed=zero2", *overrides])


def curve(out) -> list[dict]:
    return pq.read_table(out / "curves.parquet").to_pylist()


class Plain:
    """Just enough of an engine for `evaluate` without DeepSpeed."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x):
        return self.model(x)

    def eval(self):
        self.model.eval()

    def train(self):
        pass


def exported_validation(path, corpus, seed=0, seq_len=128, tokens=4096):
    import torch.distributed as dist

    model = checkpoint.load_exported(path)
    if not dist.is_initialized():
        from scalelab.training.distributed import free_port

        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    c = Corpus(corpus)
    return evaluate(Plain(model), ValidationWindows(c, seq_len, tokens, 0, 1), 8, torch.device("cpu"),
                    objective_for(model.cfg, seed, c.eod_id))


@pytest.mark.parametrize("family", ["bert", "lstm"])
def test_family_trains_under_zero2_and_resumes_exactly(sample_corpus, tmp_path, family):
    whole = run_local(config(sample_corpus, tmp_path / "whole", family), nproc=2)
    with pytest.raises(TrainError, match="training failed"):
        run_local(config(sample_corpus, tmp_path / "cut", family), nproc=2, env={"SCALELAB_FAULT_AT_STEP": "7"})
    assert checkpoint.latest_tag(tmp_path / "cut") == "step00000004"
    resumed = run_local(config(sample_corpus, tmp_path / "cut", family), nproc=2, resume=True)
    a, b = curve(tmp_path / "whole"), curve(tmp_path / "cut")
    assert [r["step"] for r in a] == list(range(1, 13))
    for key in ("train_loss", "val_loss", "val_bpb", "lr", "grad_norm", "tokens_seen"):
        assert [r[key] for r in a] == [r[key] for r in b], key  # bitwise on CPU: masks are keyed, not drawn
    assert whole["final_val_loss"] == resumed["final_val_loss"]

    # It learns: from about ln(vocab) to clearly lower, on the validation windows too.
    assert a[0]["train_loss"] > 8.0 and a[-1]["train_loss"] < a[0]["train_loss"] - 0.3
    vals = [r["val_loss"] for r in a if r["val_loss"] is not None]
    assert len(vals) == 3 and vals == sorted(vals, reverse=True)

    model = config(sample_corpus, tmp_path, family).model.build(4096, 128)
    assert whole["family"] == family and (whole["params"], whole["params_non_embedding"]) == tuple(
        count_params(model).values())
    assert whole["flops_per_token"] == flops_per_token(model, 128)
    if family == "bert":
        # Masked-token loss over the selected tokens only: about 15% of the 31 windows' 128 tokens.
        assert whole["objective"] == "masked_lm"
        assert 0.12 < whole["val_tokens"] / (31 * 128) < 0.18
    else:
        assert whole["objective"] == "causal_lm" and whole["val_tokens"] == 31 * 128
    assert whole["final_val_bpb"] == pytest.approx(
        whole["final_val_loss"] * whole["val_tokens"] / (math.log(2) * whole["val_bytes"]), rel=1e-12)
    # The export loads without DeepSpeed and scores what the run scored.
    val = exported_validation(whole["exported"], sample_corpus)
    assert val.loss == pytest.approx(whole["final_val_loss"], rel=1e-5)
    assert val.bpb == pytest.approx(whole["final_val_bpb"], rel=1e-5)
