"""Run config and DeepSpeed JSON: defaults filled, conflicts and mistakes named with file and field."""

from __future__ import annotations

import json

import pytest

from scalelab.core.config import ConfigError
from scalelab.training.config import REPO, load_train_config
from scalelab.training.deepspeed_config import DeepSpeedConfigError, resolve_deepspeed_config, zero_stage
from scalelab.training.schedule import lr_multiplier, warmup_steps

SAMPLE = REPO / "configs" / "train" / "sample.yaml"


def test_sample_config_and_every_shipped_deepspeed_json_resolve():
    cfg = load_train_config(SAMPLE)
    for path in sorted((REPO / "scalelab" / "configs" / "deepspeed").glob("*.json")):
        ds = resolve_deepspeed_config(cfg.model_copy(update={"deepspeed": str(path)}), 4, on_gpu=False, bf16_ok=False)
        assert ds["train_batch_size"] == 8 * 1 * 4 and ds["gradient_accumulation_steps"] == 1
        assert ds["gradient_clipping"] == 1.0 and ds["optimizer"]["params"]["lr"] == 3e-3
        assert ds["optimizer"]["params"]["torch_adam"] is True and ds["bf16"]["enabled"] is False
        gpu = resolve_deepspeed_config(cfg.model_copy(update={"deepspeed": str(path)}), 8, on_gpu=True, bf16_ok=True)
        assert gpu["bf16"]["enabled"] is True and gpu["optimizer"]["params"]["torch_adam"] is False
        assert zero_stage(ds) == int(path.stem[4])


def write(tmp_path, data) -> str:
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_batch_sizes_deepspeed_would_reject_are_named(tmp_path):
    cfg = load_train_config(SAMPLE, ["batch.grad_accum=2"])
    cfg = cfg.model_copy(update={"deepspeed": write(tmp_path, {"train_batch_size": 32, "zero_optimization": {"stage": 2}})})
    with pytest.raises(DeepSpeedConfigError) as err:
        resolve_deepspeed_config(cfg, 1, on_gpu=False, bf16_ok=False)
    assert str(err.value).startswith(f"{tmp_path / 'ds.json'}: train_batch_size: 32, but micro_batch_size 8 "
                                     f"× grad_accum 2 × 1 processes gives 16")
    assert resolve_deepspeed_config(cfg, 2, on_gpu=False, bf16_ok=False)["train_batch_size"] == 32


@pytest.mark.parametrize("data,message", [
    ({"scheduler": {"type": "WarmupLR"}}, "scheduler: the learning-rate schedule belongs to the run config"),
    ({"optimizer": {"type": "Lamb"}}, "optimizer.type: 'Lamb'"),
    ({"bf16": {"enabled": True}}, "half precision needs a GPU"),
    ({"zero_optimization": {"stage": 4}}, "zero_optimization.stage: 4"),
    ({"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}}, "parameter offload needs stage 3"),
    ({"gradient_clipping": 0.5}, "gradient_clipping: 0.5, but optimizer.grad_clip gives 1.0"),
])
def test_deepspeed_json_mistakes(tmp_path, data, message):
    cfg = load_train_config(SAMPLE).model_copy(update={"deepspeed": write(tmp_path, data)})
    with pytest.raises(DeepSpeedConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve_deepspeed_config(cfg, 1, on_gpu=False, bf16_ok=False)


def test_missing_or_broken_deepspeed_json(tmp_path):
    cfg = load_train_config(SAMPLE, [f"deepspeed={tmp_path / 'none.json'}"])
    with pytest.raises(DeepSpeedConfigError, match="none.json: DeepSpeed config not found"):
        resolve_deepspeed_config(cfg, 1, False, False)
    (tmp_path / "bad.json").write_text("{ nope")
    with pytest.raises(DeepSpeedConfigError, match="bad.json: not valid JSON"):
        resolve_deepspeed_config(cfg.model_copy(update={"deepspeed": str(tmp_path / "bad.json")}), 1, False, False)


@pytest.mark.parametrize("override,message", [
    ("model.preset=huge", "model.preset: unknown preset 'huge'"),
    ("model={n_layer: 2, n_head: 3, d_model: 64}", "model: d_model 64 is not divisible by n_head 3"),
    ("model={n_layer: 2}", "model: give a preset, or n_layer, n_head and d_model"),
    ("train={steps: 10, epochs: 2}", "train: give one of steps, tokens, epochs (got steps, epochs)"),
    ("batch.micro_batch_size=0", "batch.micro_batch_size: Input should be greater than or equal to 1"),
    ("optimizer.lrr=1", "optimizer.lrr: unknown field"),
])
def test_run_config_errors_name_the_field(override, message):
    with pytest.raises(ConfigError) as err:
        load_train_config(SAMPLE, [override])
    assert f"--set {override}: {message}" in str(err.value)


def test_token_counts_and_presets_resolve():
    cfg = load_train_config(SAMPLE, ["train={tokens: 200k}", "model.n_layer=3"])
    assert cfg.train.tokens == 200_000 and cfg.train.epochs is None
    model = cfg.model.build(vocab_size=4000, seq_len=128)
    assert (model.n_layer, model.n_head, model.d_model, model.vocab_size) == (3, 2, 64, 4032)
    assert cfg.model.name == "L3-H2-D64"
    assert load_train_config(SAMPLE).model.name == "nano"


def test_experiment_hash_ignores_where_results_go_but_not_what_they_are():
    a = load_train_config(SAMPLE)
    assert a.experiment_hash() == load_train_config(SAMPLE, ["output=/elsewhere", "name=x"]).experiment_hash()
    assert a.experiment_hash() != load_train_config(SAMPLE, ["seed=1"]).experiment_hash()
    assert a.experiment_hash() != load_train_config(SAMPLE, ["deepspeed=zero3"]).experiment_hash()


def test_schedule_warms_up_then_decays_to_the_floor():
    cfg = load_train_config(SAMPLE, ["schedule.warmup_steps=10"])
    f = lr_multiplier(cfg.schedule, 110)
    assert warmup_steps(cfg.schedule, 110) == 10
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(109) == pytest.approx(0.1)
    values = [f(i) for i in range(10, 110)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    linear = lr_multiplier(load_train_config(SAMPLE, ["schedule.decay=linear", "schedule.warmup_steps=0"]).schedule, 11)
    assert linear(5) == pytest.approx(0.55)
