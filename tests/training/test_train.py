"""Real DeepSpeed on CPU (gloo), two processes under torchrun, a tiny GPT over the sample corpus."""

from __future__ import annotations

import math
import shutil

import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from scalelab.cli import app
from scalelab.training import checkpoint
from scalelab.training.config import REPO, load_train_config
from scalelab.training.data import Corpus, ValidationWindows
from scalelab.training.launch import run_local
from scalelab.training.metrics import CURVE_SCHEMA, read_summary
from scalelab.training.model_sizes import count_params
from scalelab.training.trainer import TrainError, evaluate

SAMPLE = REPO / "configs" / "train" / "sample.yaml"


def config(corpus, out, *overrides):
    return load_train_config(SAMPLE, [f"data.corpus={corpus}", f"output={out}", "data.scale=40k",
                                      "train={steps: 16}", "batch.grad_accum=2", "eval.every_steps=4",
                                      "eval.tokens=4k", "checkpoint.every_steps=6", *overrides])


def curve(out) -> list[dict]:
    return pq.read_table(out / "curves.parquet").to_pylist()


class Plain:
    """Just enough of a DeepSpeed engine for `evaluate` on one process without DeepSpeed."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x):
        return self.model(x)

    def eval(self):
        self.model.eval()

    def train(self):
        pass


def exported_val_loss(path, corpus, seq_len=128, tokens=4096) -> float:
    import torch.distributed as dist

    model = checkpoint.load_exported(path)
    if not dist.is_initialized():  # evaluate all-reduces; a world of one in this process
        from scalelab.training.distributed import free_port

        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    return evaluate(Plain(model), ValidationWindows(Corpus(corpus), seq_len, tokens, 0, 1), 8, torch.device("cpu")).loss


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_loss_falls_and_resume_after_a_fault_is_bitwise(sample_corpus, tmp_path, stage):
    ds = f"deepspeed={stage}"
    whole = run_local(config(sample_corpus, tmp_path / "whole", ds), nproc=2)
    with pytest.raises(TrainError, match="training failed"):
        run_local(config(sample_corpus, tmp_path / "cut", ds), nproc=2, env={"SCALELAB_FAULT_AT_STEP": "9"})
    assert checkpoint.latest_tag(tmp_path / "cut") == "step00000006"
    assert max(r["step"] for r in curve(tmp_path / "cut")) == 6  # steps 7-9 were lost with the fault
    resumed = run_local(config(sample_corpus, tmp_path / "cut", ds), nproc=2, resume=True)

    a, b = curve(tmp_path / "whole"), curve(tmp_path / "cut")
    assert [r["step"] for r in a] == list(range(1, 17))
    for key in ("train_loss", "val_loss", "lr", "grad_norm", "tokens_seen", "epochs"):
        assert [r[key] for r in a] == [r[key] for r in b], key  # bitwise on CPU
    assert whole["final_val_loss"] == resumed["final_val_loss"]

    # It learns: from ln(4096) ≈ 8.3 at the start to clearly lower.
    assert a[0]["train_loss"] > 8.0 and a[-1]["train_loss"] < a[0]["train_loss"] - 0.5
    vals = [r["val_loss"] for r in a if r["val_loss"] is not None]
    assert len(vals) == 4 and vals == sorted(vals, reverse=True)
    assert all(r["grad_norm"] > 0 and r["tokens_per_s"] > 0 and r["mfu"] is None for r in a)
    assert pq.read_schema(tmp_path / "whole" / "curves.parquet").equals(CURVE_SCHEMA)

    # The summary: D from the manifest, N both ways, tokens and epochs from the loader.
    manifest = Corpus(sample_corpus).manifest
    model = load_train_config(SAMPLE).model.build(4096, 128)
    assert whole["unique_tokens"] == manifest.scales["40k"].tokens == 40_000
    assert (whole["params"], whole["params_non_embedding"]) == tuple(count_params(model).values())
    assert whole["tokens_seen"] == 16 * (8 * 2 * 2) * 128
    assert whole["epochs"] == pytest.approx(16 * 32 / ((40_000 - 1) // 128))
    assert (whole["world_size"], whole["zero_stage"], whole["precision"]) == (2, int(stage[-1]), "fp32")
    assert whole["val_tokens"] == 31 * 128 and whole["best_val_loss"] == min(vals)

    # The export loads into a plain GPT, without DeepSpeed, and scores what the run scored.
    assert exported_val_loss(whole["exported"], sample_corpus) == pytest.approx(whole["final_val_loss"], rel=1e-5)


def test_early_stopped_run_resumes_exactly_and_reports_bits_per_byte(sample_corpus, tmp_path):
    """A run that stops at a plateau: killed part way, resumed, it makes the same decisions bitwise;
    resumed again after it finished, it trains nothing more."""
    early = ["data.scale=20k", "train={epochs: 200, early_stop: {min_evals: 3}}", "schedule.warmup_steps=4",
             "eval.every_steps=2", "eval.tokens=4k", "checkpoint.every_steps=4", "model.dropout=0.0"]
    whole = run_local(config(sample_corpus, tmp_path / "whole", *early), nproc=2)
    assert whole["stopped_by"] == "early_stop" and whole["converged"] is True
    assert 20 < whole["steps"] < whole["steps_cap"]
    with pytest.raises(TrainError, match="training failed"):
        run_local(config(sample_corpus, tmp_path / "cut", *early), nproc=2, env={"SCALELAB_FAULT_AT_STEP": "18"})
    resumed = run_local(config(sample_corpus, tmp_path / "cut", *early), nproc=2, resume=True)
    a, b = curve(tmp_path / "whole"), curve(tmp_path / "cut")
    for key in ("step", "train_loss", "val_loss", "val_bpb", "lr"):
        assert [r[key] for r in a] == [r[key] for r in b], key
    assert (resumed["steps"], resumed["best_val_loss"], resumed["best_val_bpb"]) == \
        (whole["steps"], whole["best_val_loss"], whole["best_val_bpb"])
    again = run_local(config(sample_corpus, tmp_path / "cut", *early), nproc=2, resume=True)
    assert again["steps"] == whole["steps"] and len(curve(tmp_path / "cut")) == len(a)

    # The lr: warmup, constant, then the cooldown falls linearly once the plateau was seen.
    lrs = [r["lr"] for r in a]
    assert lrs[3] == max(lrs) and lrs[-1] < 0.5 * max(lrs)
    # Bits per byte: the validation text's bytes come from the manifest, exactly (byte-level BPE).
    assert whole["bpb_exact"] is True and whole["val_bytes"] > whole["val_tokens"]
    best = min((r for r in a if r["val_loss"] is not None), key=lambda r: r["val_loss"])
    assert whole["best_val_loss"] == best["val_loss"] and whole["best_val_bpb"] == best["val_bpb"]
    assert whole["best_val_bpb"] == pytest.approx(
        whole["best_val_loss"] * whole["val_tokens"] / (math.log(2) * whole["val_bytes"]), rel=1e-12)


def test_cli_single_process_zero0_and_offload(sample_corpus, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(SAMPLE), "--nproc", "1", "--deepspeed", "zero0",
                                 "--out", str(tmp_path / "z0"), "--set", f"data.corpus={sample_corpus}",
                                 "--set", "train={steps: 6}", "--set", "eval.tokens=2k"])
    assert result.exit_code == 0, result.output
    assert "run sample-nano" in result.output and "ZeRO-0" in result.output
    summary = read_summary(tmp_path / "z0")
    assert (summary["zero_stage"], summary["world_size"], summary["unique_tokens"]) == (0, 1, 80_000)
    rows = curve(tmp_path / "z0")
    assert len(rows) == 6 and all(r["grad_norm"] is not None and r["grad_norm"] > 0 for r in rows)
    # The export of a ZeRO-0 run comes straight from the module.
    assert exported_val_loss(tmp_path / "z0" / "model.pt", sample_corpus, tokens=2048) == pytest.approx(
        rows[-1]["val_loss"], rel=1e-5)

    offload = run_local(config(sample_corpus, tmp_path / "off", "deepspeed=zero3-offload",
                               "train={steps: 4}"), nproc=2)
    assert offload["zero_stage"] == 3 and offload["steps"] == 4


def test_bad_input_is_refused_before_training(sample_corpus, tmp_path):
    def refused(*overrides, corpus=sample_corpus, out=tmp_path / "run", resume=False):
        with pytest.raises(TrainError) as err:
            run_local(config(corpus, out, *overrides), nproc=2, resume=resume)
        assert not (out / "curves.parquet").exists()
        return str(err.value)

    assert "no scale '9M'; the manifest has 20k, 40k, 80k, 150k" in refused("data.scale=9M")
    assert "data.seq_len 512 is longer than the model's context 256" in refused("data.seq_len=512")
    (tmp_path / "ds.json").write_text('{"train_batch_size": 12, "zero_optimization": {"stage": 2}}')
    assert "train_batch_size: 12, but micro_batch_size 8 × grad_accum 2 × 2 processes gives 32" in refused(
        f"deepspeed={tmp_path / 'ds.json'}")
    (tmp_path / "file").write_text("not a folder")
    assert f"output {tmp_path / 'file' / 'run'}: not writable" in refused(out=tmp_path / "file" / "run")

    broken = tmp_path / "broken"
    shutil.copytree(sample_corpus / "shards", broken / "shards")
    shutil.copy(sample_corpus / "manifest.json", broken)
    shutil.copy(sample_corpus / "tokenizer.json", broken)
    shard = broken / "shards" / "train-00000.arrow"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    message = refused(corpus=broken)
    assert "the files don't match the manifest" in message and "train-00000.arrow: sha256 differs" in message

    (tmp_path / "old" / "checkpoints").mkdir(parents=True)
    (tmp_path / "old" / "checkpoints" / "latest").write_text("step00000004")
    assert "holds checkpoints of an earlier run; pass --resume" in refused(out=tmp_path / "old")
