"""`scalelab train`: check everything that can be checked once, then start N processes with torchrun.

The checks run in the launching process, before any worker exists, so a bad manifest, scale, batch
configuration or output folder is one clear message instead of N tracebacks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import torch

from scalelab.core.manifest import verify
from scalelab.core.output_folder import OutputFolderError, claim
from scalelab.training import checkpoint
from scalelab.training.config import TrainConfig
from scalelab.training.data import Corpus, DataError, ScaleTokens, TrainBatches, ValidationWindows
from scalelab.training.deepspeed_config import DeepSpeedConfigError, resolve_deepspeed_config
from scalelab.training.families import context_limit
from scalelab.training.metrics import read_summary
from scalelab.training.trainer import TrainError

RUN_CONFIG_FILE = "run_config.json"
RUN_KIND = "training run"


def preflight(cfg: TrainConfig, world_size: int, resume: bool, on_gpu: Optional[bool] = None,
              overwrite: bool = False) -> None:
    """Raise TrainError naming the first thing that would stop this run; return if it can start."""
    try:
        corpus = Corpus(cfg.data.corpus)
        corpus.scale_tokens(cfg.data.scale)
        if cfg.data.verify_checksums:
            problems = verify(corpus.folder)
            if problems:
                raise DataError(f"{corpus.folder}: the files don't match the manifest:\n  " + "\n  ".join(problems))
        context = context_limit(cfg.model.build(corpus.vocab_size, cfg.data.seq_len))
        if context is not None and cfg.data.seq_len > context:
            raise TrainError(f"data.seq_len {cfg.data.seq_len} is longer than the model's context "
                             f"{context} (model.context)")
        TrainBatches(ScaleTokens(corpus, cfg.data.scale), cfg.data.seq_len, cfg.batch.micro_batch_size,
                     cfg.batch.grad_accum, 0, world_size, cfg.seed)
        ValidationWindows(corpus, cfg.data.seq_len, cfg.eval.tokens, 0, world_size)
        if on_gpu is None:
            on_gpu = torch.cuda.is_available()
        resolve_deepspeed_config(cfg, world_size, on_gpu, on_gpu)
    except (DataError, DeepSpeedConfigError) as exc:
        raise TrainError(str(exc)) from None

    out = Path(cfg.output)
    try:
        # Runs from before the folder marker are recognized by the files a run writes first.
        claim(out, RUN_KIND, overwrite, legacy=(RUN_CONFIG_FILE, "summary.json", "curves.parquet", "attempts.jsonl",
                                                "checkpoints/latest"))
    except OutputFolderError as exc:
        raise TrainError(str(exc)) from None
    try:
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise TrainError(f"output {out}: not writable ({exc.strerror or exc})") from None
    if not resume and checkpoint.latest_tag(out) is not None:
        raise TrainError(f"output {out}: holds checkpoints of an earlier run; pass --resume to continue it, "
                         f"or choose another output")


def write_run_config(cfg: TrainConfig) -> Path:
    path = Path(cfg.output) / RUN_CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
    return path


def run_local(cfg: TrainConfig, nproc: int = 1, resume: bool = False,
              env: Optional[dict[str, str]] = None, overwrite: bool = False) -> dict[str, Any]:
    """Run one training run on this machine with `nproc` processes under torchrun; return its summary."""
    cfg = cfg.resolve_paths()
    preflight(cfg, nproc, resume, overwrite=overwrite)
    config_path = write_run_config(cfg)
    child_env = {**os.environ, **(env or {})}
    # torchrun would give each process one thread; split this machine's cores between them instead.
    child_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", f"--nproc_per_node={nproc}",
           "-m", "scalelab.training.worker", str(config_path)] + (["--resume"] if resume else [])
    result = subprocess.run(cmd, env=child_env)
    if result.returncode != 0:
        raise TrainError(f"training failed (exit {result.returncode}); the workers' output is above. "
                         f"Checkpoints in {cfg.output}/checkpoints: rerun with --resume to continue.")
    summary = read_summary(cfg.output)
    if summary is None:
        raise TrainError(f"{cfg.output}: the workers exited without writing summary.json")
    return summary
