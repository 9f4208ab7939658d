"""A plain (non-editable) install is the whole product: a wheel in a fresh venv, used from another
folder, builds a corpus and trains a model with the shipped defaults, and installs one top-level
name (`import pipelines` fails).

The fresh venv borrows this environment's dependencies through a .pth line (no downloads), which
adds the folder to sys.path without running its .pth files: the editable install's finder there
stays inactive, so only the wheel's `scalelab` can be imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE


def build_wheel(dest: Path) -> Path:
    src = dest / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "scalelab", src / "scalelab", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(dest / "wheels"), str(src)], check=True, capture_output=True, timeout=300)
    return next((dest / "wheels").glob("scalelab-*.whl"))


def fresh_venv(where: Path, wheel: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_borrowed_dependencies.pth").write_text("".join(p + "\n" for p in sorted(deps)))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return where / "bin"


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_builds_and_trains_with_the_shipped_defaults(tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", build_wheel(tmp_path))
    work = tmp_path / "elsewhere"
    (work / "texts").mkdir(parents=True)
    for name in ("hamlet_gut.txt.gz", "macbeth_gut.txt.gz", "sonnets_gut.txt.gz"):
        shutil.copy(SAMPLE / "texts" / name, work / "texts" / name)

    for name in ("pipelines", "training", "orchestrator"):
        gone = run(bin_dir, work, "python", "-c", f"import {name}")
        assert gone.returncode != 0 and f"No module named '{name}'" in gone.stderr
    where = run(bin_dir, work, "python", "-c", "import scalelab; print(scalelab.__file__)")
    assert where.stdout.strip().startswith(str(tmp_path / "venv")), where.stdout + where.stderr

    built = run(bin_dir, work, "scalelab", "corpus", "build", "--input", "texts/*.txt.gz", "--out", "corpus",
                "--set", "shards.scales={10k: 10k}", "--set", "shards.validation.tokens=3k",
                "--set", "shards.shard_tokens=8k", "--set", "shards.tokenizer.vocab_size=512")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    assert (work / "corpus" / "manifest.json").is_file()

    # No `deepspeed:` in the run config: the shipped zero2 JSON, found as package data.
    (work / "run.yaml").write_text("data: {corpus: corpus, scale: 10k, seq_len: 64}\nmodel: {preset: nano}\n"
                                   "train: {steps: 4}\neval: {every_steps: 2, tokens: 1k}\noutput: run\n")
    trained = run(bin_dir, work, "scalelab", "train", "run.yaml", "--nproc", "1")
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["steps"] == 4 and summary["zero_stage"] == 2
