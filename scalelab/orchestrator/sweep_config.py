"""The sweep config (`configs/sweep/*.yaml`): data scales × model sizes × seeds, and how to run them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from scalelab.orchestrator.isoflop_config import IsoFlopSpec
from scalelab.core.config_fields import Section
from scalelab.core.config import load_model
from scalelab.core.corpus_cache import cache_home
from scalelab.core.storage import Location, is_url
from scalelab.training.config import EarlyStopSpec
from scalelab.training.families import FAMILIES
from scalelab.training.model_sizes import PRESETS


class ModelEntry(Section):
    """A model size of the sweep: a preset, or a named shape, of a family (gpt, bert or lstm)."""

    name: str
    family: Literal[FAMILIES] = "gpt"  # type: ignore[valid-type]
    preset: Optional[str] = None
    n_layer: Optional[int] = Field(None, ge=1)
    n_head: Optional[int] = Field(None, ge=1)
    d_model: Optional[int] = Field(None, ge=1)
    context: Optional[int] = Field(None, ge=1)

    def as_model_spec(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"}, exclude_none=True)


class TokensPolicy(Section):
    """How many tokens each run trains on.

    early_stop: repeat the run's scale until validation loss stops improving, at most `value`
    epochs (the data-limited regime a data-scaling law measures; training/early_stop.py);
    epochs: `value` passes over the run's scale (1 = each unique token once);
    per_param: `value` × N tokens, N = all parameters (Chinchilla's ~20 is compute-optimal);
    fixed: `value` tokens for every run;
    isoflop: the run's compute budget buys its tokens (the sweep's `isoflop` section; `value` unused).
    """

    policy: Literal["early_stop", "epochs", "per_param", "fixed", "isoflop"] = "early_stop"
    value: float = Field(64.0, gt=0)
    early_stop: EarlyStopSpec = EarlyStopSpec()


class LearningRateRule(Section):
    """The peak learning rate of each model size, from one tuned size.

    inverse_width: lr = base_lr × base_width / d_model, the Adam rule of μP for hidden matrices
    (Yang et al. 2022, Tensor Programs V, table 3), applied here to every parameter: a simple,
    published rule that keeps wider models from diverging and narrower ones from crawling.
    constant: base_lr for every size.
    """

    rule: Literal["inverse_width", "constant"] = "inverse_width"
    base_lr: float = Field(..., gt=0)
    base_width: int = Field(64, ge=1)

    def lr_for(self, d_model: int) -> float:
        return self.base_lr * self.base_width / d_model if self.rule == "inverse_width" else self.base_lr


class Resources(Section):
    workers: int = Field(2, ge=1, description="Ray Train workers (processes) per run.")
    cpus_per_worker: float = Field(1, gt=0)
    use_gpu: bool = False
    gpus_per_worker: float = Field(1, ge=0)
    gpu_type: Optional[str] = Field(None, description="e.g. H100: its peak gives the GPU-hour estimate.")


class SweepConfig(Section):
    name: str = "sweep"
    corpus: str = Field(..., description="A built corpus folder (holds manifest.json), or its URL (s3://...).")
    scales: list[str] = Field(default_factory=list, description="Scales of the manifest; empty: all of them.")
    models: list[Union[str, ModelEntry]] = Field(..., min_length=1, description="Presets (GPTs), or entries "
                                                 "{name, family, preset or n_layer/n_head/d_model}; families may mix.")
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    tokens: TokensPolicy = TokensPolicy()
    learning_rate: Optional[LearningRateRule] = Field(None, description="Peak lr per model size; "
                                                      "default: the run config's optimizer.lr for all.")
    base: Optional[str] = Field(None, description="A run config YAML every run starts from (configs/train/).")
    train: dict[str, Any] = Field(default_factory=dict, description="Run config fields set on top of `base`.")
    deepspeed: Optional[str] = Field(None, description="DeepSpeed JSON; default: the base's, else zero2.")
    resources: Resources = Resources()
    concurrency: int = Field(2, ge=1, description="Runs in flight at once, at most.")
    pack_runs: bool = Field(False, description="Ray: split the runs into `concurrency` lanes of equal work, each "
                            "one Ray Train job that trains its runs one after another, so tiny runs don't each "
                            "pay a job's start-up.")
    retries: int = Field(2, ge=0, description="Restarts of a failed run from its last checkpoint.")
    output: str = Field("out/sweeps/sweep", description="Report folder: runs.parquet, curves.parquet; a folder "
                        "or an object-store URL (s3://bucket/sweeps/x).")
    storage: Optional[str] = Field(None, description="Run folders and checkpoints, on storage every node "
                                                     "reaches; default: OUTPUT/runs. With an object-store output: "
                                                     "the runs' local working folders (default: in the cache).")
    assumed_mfu: float = Field(0.4, gt=0, le=1, description="MFU assumed for the GPU-hour estimate.")
    isoflop: Optional[IsoFlopSpec] = Field(None, description="Budgets and sizes of `tokens: {policy: isoflop}`.")

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

    @field_validator("storage")
    @classmethod
    def _on_a_filesystem(cls, storage: Optional[str]) -> Optional[str]:
        # Training memory-maps and checkpoints in its run folder: that needs a filesystem.
        if storage is not None and is_url(storage):
            raise ValueError(f"{storage}: runs train in a folder on a filesystem; for results in object "
                             f"storage set output: s3://... (each run's files are uploaded there when it ends)")
        return storage

    @model_validator(mode="after")
    def _isoflop_section(self) -> "SweepConfig":
        # The policy and its section come together: one without the other is a half-edited config.
        if (self.tokens.policy == "isoflop") != (self.isoflop is not None):
            raise ValueError("tokens.policy isoflop and the isoflop section (budgets, ...) go together: "
                             "give both or neither")
        return self

    def model_entries(self) -> list[ModelEntry]:
        return [ModelEntry(name=m, preset=m) if isinstance(m, str) else m for m in self.models]

    @property
    def output_is_url(self) -> bool:
        return is_url(self.output)

    def storage_dir(self) -> Path:
        """Where runs train. An object-store output has no folder to train in: a local one per output URL."""
        if self.storage:
            return Path(self.storage)
        if self.output_is_url:
            key = hashlib.sha256(Location.of(self.output).url.encode()).hexdigest()[:16]
            return cache_home() / "sweeps" / key / "runs"
        return Path(self.output) / "runs"

    @property
    def runs_on_one_node(self) -> bool:
        """A run's working folder is local to a node (object-store output, no shared `storage`): its workers
        must share that node, for DeepSpeed's checkpoint shards, the final export and resuming."""
        return self.output_is_url and self.storage is None

    def results_dir(self) -> Optional[Location]:
        """Where the runs' files end up when that is not where they train: OUTPUT/runs in the object store."""
        return Location.of(self.output) / "runs" if self.output_is_url else None


def load_sweep_config(path: str | Path, overrides: list[str] | None = None) -> SweepConfig:
    return load_model(SweepConfig, path, overrides)
