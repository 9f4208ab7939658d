"""`scalelab train`: one run on this machine under torchrun."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from scalelab.cli.common import console, fail
from scalelab.core.config import ConfigError
from scalelab.core.output_folder import OutputFolderError

# The domain packages load torch, DeepSpeed and Ray: they are imported inside each command, so
# `scalelab --help` and a mistyped flag answer at once.


def train(
    config: Path = typer.Argument(..., help="Run config YAML (see configs/train/)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes to start on this machine (one per GPU, or CPU workers)."),
    deepspeed: Optional[str] = typer.Option(None, "--deepspeed", help="A shipped DeepSpeed JSON by name (zero0 ... zero3-offload) or a path (default: the config's `deepspeed`)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint in the output folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: the config's `output`)."),
    set_: List[str] = typer.Option([], "--set", help="Override a config field: dotted.key=value (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Train into a non-empty folder scalelab did not create (only the run's own files are replaced)."),
) -> None:
    """Train one GPT on one data scale of a corpus with DeepSpeed, starting NPROC processes with torchrun."""
    from scalelab.training.config import load_train_config
    from scalelab.training.launch import run_local
    from scalelab.training.report import print_summary
    from scalelab.training.trainer import TrainError

    overrides = list(set_)
    if deepspeed is not None:
        overrides.append(f"deepspeed={deepspeed}")
    if out is not None:
        overrides.append(f"output={out}")
    try:
        cfg = load_train_config(config, overrides)
        summary = run_local(cfg, nproc=nproc, resume=resume, overwrite=overwrite)
    except (ConfigError, TrainError, OutputFolderError) as exc:
        fail(str(exc))
        return
    print_summary(summary, console)
    console.print(f"wrote {summary['exported'] or cfg.output}, curves.parquet and summary.json in "
                  f"{Path(summary['exported']).parent if summary['exported'] else cfg.output}")
