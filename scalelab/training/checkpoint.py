"""Checkpoints through DeepSpeed, plus what DeepSpeed doesn't keep per rank, and the final export.

`RUN/checkpoints/stepNNNNNNNN/` is DeepSpeed's own layout (model and optimizer state, sharded as the
ZeRO stage shards them, and our `client_state`: step, loader position, best validation loss).
Beside it each rank writes `rng-rankNNNNN.pt` with its torch RNG states. DeepSpeed's `latest` file
names the newest tag; it is written last, so a crash mid-save leaves the previous one in force.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path
from typing import Any, Optional

import torch

from scalelab.core.atomic import atomic_path
from scalelab.training.distributed import barrier
from scalelab.training.families import build_model, shape_from_dict

CHECKPOINTS = "checkpoints"
EXPORT_FILE = "model.pt"
BEST_TAG = "best"  # early stopping's rewind point (not a step tag: rotation and `latest` ignore it)


def tag_for(step: int) -> str:
    return f"step{step:08d}"


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def latest_tag(run_dir: Path) -> Optional[str]:
    latest = Path(run_dir) / CHECKPOINTS / "latest"
    return latest.read_text().strip() if latest.is_file() else None


def save(engine, run_dir: Path, step: int, client_state: dict[str, Any], rank: int, keep: int) -> None:
    """Every rank calls this (DeepSpeed gathers and writes collectively)."""
    root = Path(run_dir) / CHECKPOINTS
    tag = tag_for(step)
    # The RNG file goes in first: `latest` (written by save_checkpoint) must never name a tag without it.
    (root / tag).mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), root / tag / f"rng-rank{rank:05d}.pt")
    barrier()
    engine.save_checkpoint(str(root), tag=tag, client_state=client_state)
    barrier()
    if rank == 0:
        tags = sorted(p.name for p in root.glob("step" + "[0-9]" * 8) if p.is_dir())  # only our own tags
        for old in tags[:-keep]:
            shutil.rmtree(root / old, ignore_errors=True)
    barrier()


def save_best(engine, run_dir: Path) -> None:
    """The weights and optimizer state of the best evaluation so far, which early stopping rewinds to
    before its cooldown. Every rank calls this. `latest` keeps naming the newest periodic checkpoint."""
    barrier()
    engine.save_checkpoint(str(Path(run_dir) / CHECKPOINTS), tag=BEST_TAG, save_latest=False)
    barrier()


def rewind_to_best(engine, run_dir: Path) -> None:
    """Load the weights and optimizer state `save_best` kept; the lr schedule and the data order go on."""
    root = Path(run_dir) / CHECKPOINTS
    path, _ = engine.load_checkpoint(str(root), tag=BEST_TAG, load_optimizer_states=True,
                                     load_lr_scheduler_states=False)
    if path is None:
        raise RuntimeError(f"{root / BEST_TAG}: DeepSpeed could not load the best checkpoint to rewind to")


def drop_best(run_dir: Path) -> None:
    shutil.rmtree(Path(run_dir) / CHECKPOINTS / BEST_TAG, ignore_errors=True)


def load_latest(engine, run_dir: Path, rank: int) -> Optional[dict[str, Any]]:
    """Restore the newest checkpoint into `engine`; return its client state (None: no checkpoint)."""
    root = Path(run_dir) / CHECKPOINTS
    tag = latest_tag(run_dir)
    if tag is None:
        return None
    path, client_state = engine.load_checkpoint(str(root), tag=tag, load_optimizer_states=True,
                                                load_lr_scheduler_states=True)
    if path is None:
        raise RuntimeError(f"{root / tag}: DeepSpeed could not load this checkpoint")
    rng_file = root / tag / f"rng-rank{rank:05d}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
    return client_state


def export_fp32(engine, run_dir: Path, header: dict[str, Any], stage: int, rank: int) -> Optional[Path]:
    """Write the final weights as one fp32 file any torch process loads (no DeepSpeed needed), after
    `header` (families.saved_header: the model config, and the family of a non-GPT model).

    With ZeRO (or half precision) the authoritative fp32 weights are the optimizer's partitioned
    master copy, so they are consolidated from the final checkpoint; without, the module holds them.
    """
    out = Path(run_dir) / EXPORT_FILE
    if rank == 0:
        if stage > 0 or engine.bfloat16_enabled() or engine.fp16_enabled():
            from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # it narrates every file
                state = get_fp32_state_dict_from_zero_checkpoint(str(Path(run_dir) / CHECKPOINTS),
                                                                 tag=latest_tag(run_dir))
        else:
            state = engine.module.state_dict()
        state = {k: v.detach().float().cpu().clone() for k, v in state.items()}
        with atomic_path(out) as tmp:
            torch.save({**header, "state_dict": state}, tmp)
    barrier()
    return out


def load_exported(path: str | Path):
    """The exported model as a plain module of its family (`GPT`, `Bert`, `LSTMLM`) in eval mode."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(shape_from_dict(blob.get("family", "gpt"), blob["model_config"]))
    missing, unexpected = model.load_state_dict(blob["state_dict"], strict=False)
    # The tied output weight may be stored under either name.
    if set(missing) - {"lm_head.weight", "wte.weight"} or unexpected:
        raise RuntimeError(f"{path}: weights don't match the model: missing {missing}, unexpected {unexpected}")
    return model.eval()
