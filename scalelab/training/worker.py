"""The process every launcher starts: `python -m scalelab.training.worker RUN_CONFIG [--resume]`.

torchrun and the deepspeed launcher both start it (the latter adds `--local_rank`, which the
environment also carries); Ray Train calls `scalelab.training.trainer.train` directly instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from scalelab.training.config import TrainConfig, load_train_config


def load_config(path: str) -> TrainConfig:
    if path.endswith(".json"):
        return TrainConfig.model_validate_json(Path(path).read_text())
    return load_train_config(path).resolve_paths()


def quiet_deepspeed() -> None:
    """In a worker process: DeepSpeed's info logs off, and torch's deprecation warning for the
    collectives DeepSpeed calls (one per call and rank would drown the log)."""
    warnings.filterwarnings("ignore", message=".*all_gather_into_tensor.*is deprecated", category=FutureWarning)
    from deepspeed.utils import logger as ds_logger

    ds_logger.setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scalelab.training.worker")
    parser.add_argument("config", help="run_config.json written by the launcher, or a run YAML")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    quiet_deepspeed()
    from scalelab.training.trainer import train

    train(load_config(args.config), resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
