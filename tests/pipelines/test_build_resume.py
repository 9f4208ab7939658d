"""Corpus builds that survive faults: a driver killed mid-phase resumes from its finished units,
a failed write leaves finished units intact, a changed config or input is refused, and a
resumed build is byte-identical to one that never stopped, with every document counted once."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalelab.pipelines.build import build_corpus
from scalelab.pipelines.build_status import build_status
from scalelab.pipelines.config import load_corpus_config
from scalelab.core.build_units import BuildError, Phase
from scalelab.cli import app
from scalelab.core.config import ConfigError
from tests.conftest import REPO
from tests.pipelines.test_build import folder_bytes

SAME = ("documents", "stats", "shards")


def texts_config(inputs: Path, *overrides: str):
    """A small build of its own: the sample's eight plays and poems, through every phase."""
    cfg = load_corpus_config(REPO / "configs/corpus/sample.yaml", [
        "shards.scales={10k: 10k, 20k: 20k}", "shards.validation.documents=1", "shards.shard_tokens=8k",
        "output.num_partitions=2", *overrides])
    return cfg.model_copy(update={"inputs": [cfg.inputs[0].model_copy(update={"path": str(inputs / "*.txt.gz")})]})


@pytest.fixture()
def texts(tmp_path) -> Path:
    folder = tmp_path / "texts"
    shutil.copytree(REPO / "data/sample/texts", folder)
    return folder


@pytest.fixture()
def ray_with_env():
    """A fresh local Ray whose workers see the given environment (fault hooks are read by workers)."""
    import ray

    started = []

    def start(env: dict[str, str]) -> None:
        if ray.is_initialized():
            ray.shutdown()
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": env})
        started.append(True)

    yield start
    ray.shutdown()


def _units_done(out: Path, phase: str) -> int:
    return len(list((out / "phase" / phase).glob("*.done.json")))


def _kill_with_descendants(proc: subprocess.Popen) -> None:
    """SIGKILL the driver and every process it started. Ray's workers leave the driver's process
    group, and one left running may finish a unit after the count is taken: stop them all first
    (so none starts another), then kill them and wait until each is gone."""
    import psutil

    driver = psutil.Process(proc.pid)
    family = [driver, *driver.children(recursive=True)]
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.suspend()
    family += [p for p in driver.children(recursive=True) if p not in family]
    os.killpg(proc.pid, signal.SIGKILL)
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    proc.wait()
    psutil.wait_procs(family, timeout=30)


def test_a_killed_driver_resumes_from_finished_units(sample_corpus, tmp_path, monkeypatch):
    """The CLI builds the sample corpus and is SIGKILLed (with its Ray) once some process units
    are done; the same command then skips them and gives the same bytes as an undisturbed build."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "scalelab.cli", "corpus", "build", "configs/corpus/sample.yaml", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "RAY_ADDRESS": ""}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while _units_done(out, "process") < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    _kill_with_descendants(proc)
    done_before = _units_done(out, "process")
    assert 2 <= done_before < 8

    status = build_status(out)
    assert status["state"].startswith("stopped")
    process = next(s for s in status["phases"] if s["phase"] == "process")
    assert process["done"] == done_before and process["units"] == 8 and process["state"] == "in progress"
    shown = CliRunner().invoke(app, ["corpus", "status", str(out)])
    assert shown.exit_code == 0 and "stopped" in shown.output and "not started" in shown.output

    import ray

    from scalelab.core.ray_session import ensure_ray

    monkeypatch.chdir(REPO)  # the config's inputs are relative to the repository, as for the CLI
    if not ray.is_initialized():
        ensure_ray()
    logged: list[str] = []
    result = build_corpus(load_corpus_config("configs/corpus/sample.yaml"), out, log=logged.append)
    assert result.resumed_units["process"] == done_before
    assert f"process: {done_before} of 8 units already done, skipped" in logged
    for folder in SAME:
        assert folder_bytes(out, folder) == folder_bytes(sample_corpus, folder), folder
    # The accounting after a resume: every document once, as in the undisturbed build.
    from scalelab.pipelines.stats import read_stats

    assert result.stats.balanced() and result.stats.summary() == read_stats(sample_corpus).summary()
    assert build_status(out)["state"] == "finished"
    again = build_corpus(load_corpus_config("configs/corpus/sample.yaml"), out, log=logged.append)
    assert set(again.resumed_units.values()) != {0} and again.resumed_units["tokenize"] == 4


def test_a_failed_write_keeps_finished_units_and_a_rerun_completes(ray_with_env, texts, tmp_path):
    reference = tmp_path / "reference"
    ray_with_env({})
    build_corpus(texts_config(texts), reference, log=lambda m: None)

    out = tmp_path / "out"
    ray_with_env({"SCALELAB_PIPELINE_FAULT": "exact_dedup:part-00001:enospc"})
    with pytest.raises(BuildError, match=r"exact_dedup unit part-00001 failed: OSError: .*No space left on device"):
        build_corpus(texts_config(texts), out, log=lambda m: None)
    assert Phase(out, "process").complete() and not Phase(out, "exact_dedup").complete()
    assert not list(out.rglob(".*.tmp-*"))  # no half-written file left behind

    exact_done = _units_done(out, "exact_dedup")
    ray_with_env({})
    result = build_corpus(texts_config(texts), out, log=lambda m: None)
    assert result.resumed_units["process"] == 8 and result.resumed_units["exact_dedup"] == exact_done
    for folder in SAME:
        assert folder_bytes(out, folder) == folder_bytes(reference, folder), folder


def test_a_killed_tokenize_worker_is_retried(ray_with_env, texts, tmp_path):
    marker = tmp_path / "fired"
    ray_with_env({"SCALELAB_PIPELINE_FAULT": "tokenize:part-00000:kill", "SCALELAB_PIPELINE_FAULT_MARKER": str(marker)})
    result = build_corpus(texts_config(texts), tmp_path / "out", log=lambda m: None)
    assert marker.exists() and result.stats.balanced() and result.shards is not None
    assert Phase(tmp_path / "out", "tokenize").complete()


def test_a_changed_config_or_input_is_refused(ray_with_env, texts, tmp_path):
    ray_with_env({})
    out = tmp_path / "out"
    quick = ("shards.enabled=false", "dedup.minhash.enabled=false")
    build_corpus(texts_config(texts, *quick), out, log=lambda m: None)
    with pytest.raises(ConfigError, match=r"other settings \(filters\.c4\.enabled, shards\.seed\).*--force"):
        build_corpus(texts_config(texts, *quick, "filters.c4.enabled=false", "shards.seed=7"), out, log=lambda m: None)
    # Settings that change nothing in the output may differ.
    build_corpus(texts_config(texts, *quick, "output.keep_phase_data=true"), out, log=lambda m: None)

    victim = sorted(texts.glob("*.txt.gz"))[0]
    with open(victim, "ab") as fh:
        fh.write(b"\x00")
    (texts / "sonnets_gut.txt.gz").unlink()
    with pytest.raises(BuildError) as err:
        build_corpus(texts_config(texts, *quick), out, log=lambda m: None)
    assert f"{victim.name} (size" in str(err.value) and "sonnets_gut.txt.gz (gone)" in str(err.value)
    victim.write_bytes(victim.read_bytes()[:-1])
    forced = build_corpus(texts_config(texts, *quick), out, force=True, log=lambda m: None)
    assert set(forced.resumed_units.values()) == {0} and forced.num_inputs == 7
