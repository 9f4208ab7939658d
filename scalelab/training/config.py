"""The run config (`configs/train/*.yaml`): what one training run is.

The experiment lives here: corpus and scale, model shape, batch, optimizer, schedule, length,
seed. How DeepSpeed executes it (ZeRO stage, offload, precision, communication) lives in the
DeepSpeed JSON named by `deepspeed`; the fields of the JSON that define the experiment (batch
sizes, learning rate, clipping) are written as "auto" there and filled from this config.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import BeforeValidator, Field, field_validator, model_validator

from scalelab.core.config_fields import Section, parse_token_count
from scalelab.core.config import load_model
from scalelab.core.storage import is_url
from scalelab.training.families import FAMILIES, ModelShape
from scalelab.training.model import ModelConfig
from scalelab.training.model_bert import BertConfig
from scalelab.training.model_lstm import LSTMConfig
from scalelab.training.model_sizes import PRESETS, padded_vocab

REPO = Path(__file__).resolve().parents[2]  # the source checkout (tests and the repo's configs/ use it)
DEFAULT_DEEPSPEED = "zero2"


def shipped_deepspeed(name: str) -> Path:
    """The DeepSpeed JSON shipped in the package as `name` (zero0 ... zero3-offload), read from package data."""
    return Path(str(resources.files("scalelab.configs") / "deepspeed" / f"{name}.json"))


def is_shipped_deepspeed(value: str) -> bool:
    """A bare name (no folder, no .json) names a shipped DeepSpeed JSON; anything else is a path."""
    return "/" not in value and not value.endswith(".json") and shipped_deepspeed(value).is_file()


# 200000, "200k", "4M": counts of tokens as users write them.
TokenCount = Annotated[int, BeforeValidator(parse_token_count), Field(ge=1)]


class ModelSpec(Section):
    """A preset name, or a shape; a preset's fields can be overridden one by one.

    `family` picks the architecture (training/families.py): gpt (the default), bert (masked LM) or
    lstm (which uses a preset's n_layer and d_model, and has no heads and no context limit).
    """

    family: Literal[FAMILIES] = "gpt"  # type: ignore[valid-type]
    preset: Optional[str] = None
    n_layer: Optional[int] = Field(None, ge=1)
    n_head: Optional[int] = Field(None, ge=1)
    d_model: Optional[int] = Field(None, ge=1)
    context: Optional[int] = Field(None, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    bias: bool = True
    pad_vocab_to: int = Field(64, ge=1)

    @field_validator("preset")
    @classmethod
    def _known(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v not in PRESETS:
            raise ValueError(f"unknown preset {v!r}; known: {', '.join(PRESETS)}")
        return v

    @model_validator(mode="after")
    def _shape(self) -> "ModelSpec":
        if self.family == "lstm":
            if self.preset is None and None in (self.n_layer, self.d_model):
                raise ValueError("give a preset, or n_layer and d_model (family lstm)")
            return self
        if self.preset is None and None in (self.n_layer, self.n_head, self.d_model):
            raise ValueError("give a preset, or n_layer, n_head and d_model")
        d, h = self.resolved("d_model"), self.resolved("n_head")
        if d % h:
            raise ValueError(f"d_model {d} is not divisible by n_head {h}")
        return self

    def resolved(self, field: str) -> int:
        value = getattr(self, field)
        return value if value is not None else getattr(PRESETS[self.preset], field)

    def build(self, vocab_size: int, seq_len: int) -> ModelShape:
        """The shape for a corpus of `vocab_size` tokens. BERT's vocabulary has one more, [MASK] (id
        `vocab_size`), before padding."""
        layers, width = self.resolved("n_layer"), self.resolved("d_model")
        if self.family == "lstm":
            return LSTMConfig(n_layer=layers, d_model=width, vocab_size=padded_vocab(vocab_size, self.pad_vocab_to),
                              dropout=self.dropout)
        context = self.context if self.context is not None else (
            PRESETS[self.preset].context if self.preset else seq_len)
        if self.family == "bert":
            return BertConfig(n_layer=layers, n_head=self.resolved("n_head"), d_model=width,
                              vocab_size=padded_vocab(vocab_size + 1, self.pad_vocab_to), context=context,
                              mask_id=vocab_size, dropout=self.dropout, bias=self.bias)
        return ModelConfig(n_layer=layers, n_head=self.resolved("n_head"), d_model=width,
                           vocab_size=padded_vocab(vocab_size, self.pad_vocab_to),
                           context=context, dropout=self.dropout, bias=self.bias)

    @property
    def name(self) -> str:
        prefix = "" if self.family == "gpt" else f"{self.family}-"
        shape = ("n_layer", "d_model") if self.family == "lstm" else ("n_layer", "n_head", "d_model")
        if self.preset and all(getattr(self, f) is None for f in shape):
            return prefix + self.preset
        if self.family == "lstm":
            return f"{prefix}L{self.resolved('n_layer')}-D{self.resolved('d_model')}"
        return f"{prefix}L{self.resolved('n_layer')}-H{self.resolved('n_head')}-D{self.resolved('d_model')}"


class DataSpec(Section):
    corpus: str = Field(..., description="A built corpus folder (holds manifest.json), or its URL (s3://...).")
    scale: str = Field(..., description="A scale named in the manifest: the data-size axis.")
    seq_len: int = Field(128, ge=8)
    verify_checksums: bool = True  # sha256 of every shard before starting (once, by the launcher)


class BatchSpec(Section):
    micro_batch_size: int = Field(8, ge=1, description="Windows per rank per forward pass.")
    grad_accum: int = Field(1, ge=1)


class OptimizerSpec(Section):
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)  # not applied to biases, LayerNorms, embeddings
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0)
    grad_clip: float = Field(1.0, ge=0, description="Global gradient-norm clip; 0 turns it off.")


class ScheduleSpec(Section):
    warmup_steps: Optional[int] = Field(None, ge=0)
    warmup_tokens: Optional[TokenCount] = Field(None, description="Warmup as tokens (Porian et al. 2024: "
                                                "about N); used when warmup_steps is not set.")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="Used when neither warmup_steps nor "
                                   "warmup_tokens is set.")
    decay: Literal["cosine", "linear", "constant"] = "cosine"
    min_lr_ratio: float = Field(0.1, ge=0, le=1)


class EarlyStopSpec(Section):
    """Train until validation loss stops improving (training/early_stop.py says how)."""

    min_improvement: float = Field(0.005, ge=0, lt=1, description="Relative improvement over a window "
                                   "that counts as still improving.")
    window_fraction: float = Field(0.1, gt=0, le=0.5, description="The window, as a fraction of the steps so far.")
    min_evals: int = Field(4, ge=1, description="The window spans at least this many evaluations.")
    patience_steps: int = Field(0, ge=0, description="Before the cooldown, the window spans at least this "
                                "many steps: a short run's 10% is too few steps to tell slow learning from none.")
    cooldown_fraction: float = Field(0.2, ge=0, le=1, description="Cooldown length, as a fraction of the "
                                     "steps before it.")
    rewind: bool = Field(True, description="Start the cooldown from the weights of the best evaluation so far "
                         "(kept as a checkpoint at each new best) rather than from the last ones.")


class LengthSpec(Section):
    """How long to train: exactly one of steps, tokens or epochs (over the scale).

    With `early_stop`, that length is the cap: the run stops earlier once validation loss plateaus,
    and the learning rate follows warmup-stable-decay instead of `schedule.decay`.
    """

    steps: Optional[int] = Field(None, ge=1)
    tokens: Optional[TokenCount] = None
    epochs: Optional[float] = Field(None, gt=0)
    early_stop: Optional[EarlyStopSpec] = None

    @model_validator(mode="after")
    def _one(self) -> "LengthSpec":
        given = [f for f in ("steps", "tokens", "epochs") if getattr(self, f) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of steps, tokens, epochs (got {', '.join(given)})")
        if not given:
            self.epochs = 1.0
        return self


class EvalSpec(Section):
    every_steps: int = Field(50, ge=1, description="Steps between evaluations (at most, with every_epochs).")
    every_epochs: Optional[float] = Field(None, gt=0, description="Evaluate every this many passes over the "
                                          "scale, but at least every `every_steps` steps.")
    tokens: Optional[TokenCount] = Field(65536, description="Validation tokens scored (a fixed prefix); null: all.")
    micro_batch_size: Optional[int] = Field(None, ge=1)


class CheckpointSpec(Section):
    every_steps: int = Field(100, ge=1)
    keep: int = Field(2, ge=1, description="Checkpoints kept; older ones are deleted.")
    export: bool = True  # final fp32 weights as model.pt, loadable without DeepSpeed


class TrainConfig(Section):
    name: str = "run"
    seed: int = Field(0, ge=0)  # numpy's generators refuse negative seeds
    data: DataSpec
    model: ModelSpec
    batch: BatchSpec = BatchSpec()
    optimizer: OptimizerSpec = OptimizerSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    train: LengthSpec = LengthSpec()
    eval: EvalSpec = EvalSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    deepspeed: str = Field(DEFAULT_DEEPSPEED, description="A shipped DeepSpeed JSON by name (zero0, zero1, zero2, "
                           "zero2-offload, zero3, zero3-offload) or the path of one.")
    output: str = Field("out/train/run", description="Run folder: checkpoints, curves, summary.")
    log_every_steps: int = Field(1, ge=1)

    def deepspeed_json(self) -> Path:
        """The DeepSpeed JSON file: a shipped one by name, else the path as written."""
        return shipped_deepspeed(self.deepspeed) if is_shipped_deepspeed(self.deepspeed) else Path(self.deepspeed)

    def resolve_paths(self, base: Path | None = None) -> "TrainConfig":
        """Absolute paths, so workers started elsewhere (Ray, the deepspeed launcher) find the same files."""
        base = base or Path.cwd()

        def absolute(p: str) -> str:
            if is_url(p):  # a corpus in object storage: the same URL everywhere
                return p
            path = Path(p).expanduser()
            return str(path if path.is_absolute() else (base / path).resolve())

        deepspeed = str(self.deepspeed_json()) if is_shipped_deepspeed(self.deepspeed) else absolute(self.deepspeed)
        return self.model_copy(update={
            "data": self.data.model_copy(update={"corpus": absolute(self.data.corpus)}),
            "deepspeed": deepspeed, "output": absolute(self.output)})

    def experiment_hash(self) -> str:
        """Hash of what determines the results: not the output folder, nor logging."""
        fields = self.model_dump(mode="json", exclude={"output", "log_every_steps", "name"})
        fields["data"].pop("verify_checksums")
        if fields["model"]["family"] == "gpt":  # GPT runs keep the hashes (and run ids) they had before families
            fields["model"].pop("family")
        fields["data"]["corpus"] = Path(fields["data"]["corpus"]).name
        ds = self.deepspeed_json()
        fields["deepspeed"] = json.loads(ds.read_text()) if ds.is_file() else self.deepspeed
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    return load_model(TrainConfig, path, overrides)
