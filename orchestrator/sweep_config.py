"""The sweep config (`configs/sweep/*.yaml`): data scales × model sizes × seeds, and how to run them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, field_validator

from pipelines.config import Section
from scalelab.config_errors import load_model
from training.model_sizes import PRESETS


class ModelEntry(Section):
    """A model size of the sweep: a preset, or a named shape."""

    name: str
    preset: Optional[str] = None
    n_layer: Optional[int] = Field(None, ge=1)
    n_head: Optional[int] = Field(None, ge=1)
    d_model: Optional[int] = Field(None, ge=1)
    context: Optional[int] = Field(None, ge=1)

    def as_model_spec(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"}, exclude_none=True)


class TokensPolicy(Section):
    """How many tokens each run trains on.

    epochs: `value` passes over the run's scale (1 = each unique token once);
    per_param: `value` × N tokens, N = all parameters (Chinchilla's ~20 is compute-optimal);
    fixed: `value` tokens for every run.
    """

    policy: Literal["epochs", "per_param", "fixed"] = "epochs"
    value: float = Field(1.0, gt=0)


class Resources(Section):
    workers: int = Field(2, ge=1, description="Ray Train workers (processes) per run.")
    cpus_per_worker: float = Field(1, gt=0)
    use_gpu: bool = False
    gpus_per_worker: float = Field(1, ge=0)
    gpu_type: Optional[str] = Field(None, description="e.g. H100: its peak gives the GPU-hour estimate.")


class SweepConfig(Section):
    name: str = "sweep"
    corpus: str = Field(..., description="A built corpus folder (holds manifest.json).")
    scales: list[str] = Field(default_factory=list, description="Scales of the manifest; empty: all of them.")
    models: list[Union[str, ModelEntry]] = Field(..., min_length=1)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    tokens: TokensPolicy = TokensPolicy()
    base: Optional[str] = Field(None, description="A run config YAML every run starts from (configs/train/).")
    train: dict[str, Any] = Field(default_factory=dict, description="Run config fields set on top of `base`.")
    deepspeed: Optional[str] = Field(None, description="DeepSpeed JSON; default: the base's, else zero2.")
    resources: Resources = Resources()
    concurrency: int = Field(2, ge=1, description="Runs in flight at once, at most.")
    retries: int = Field(2, ge=0, description="Restarts of a failed run from its last checkpoint.")
    output: str = Field("out/sweeps/sweep", description="Report folder: runs.parquet, curves.parquet.")
    storage: Optional[str] = Field(None, description="Run folders and checkpoints, on storage every node "
                                                     "reaches; default: OUTPUT/runs.")
    assumed_mfu: float = Field(0.4, gt=0, le=1, description="MFU assumed for the GPU-hour estimate.")

    @field_validator("models")
    @classmethod
    def _known(cls, models: list) -> list:
        names = []
        for m in models:
            if isinstance(m, str) and m not in PRESETS:
                raise ValueError(f"unknown preset {m!r}; known: {', '.join(PRESETS)} (or give name, n_layer, n_head, d_model)")
            names.append(m if isinstance(m, str) else m.name)
        if len(set(names)) != len(names):
            raise ValueError(f"model names repeat: {names}")
        return models

    @field_validator("scales", "seeds")
    @classmethod
    def _distinct(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError(f"values repeat: {values}")
        return values

    def model_entries(self) -> list[ModelEntry]:
        return [ModelEntry(name=m, preset=m) if isinstance(m, str) else m for m in self.models]

    def storage_dir(self) -> Path:
        return Path(self.storage) if self.storage else Path(self.output) / "runs"


def load_sweep_config(path: str | Path, overrides: list[str] | None = None) -> SweepConfig:
    return load_model(SweepConfig, path, overrides)
