"""A model to evaluate or sample from, wherever it is: a scalelab run folder, a folder
`scalelab export` wrote, or any local `transformers` folder (a public model, say).

`open_model` gives one record: a function from token ids to logits, the family's objective, the
tokenizer the ids belong to, and, for scalelab's models, how the run scored them (seq_len, the
validation prefix), so that `scalelab eval` of an export reproduces the run's own evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from scalelab.core.manifest import read_manifest
from scalelab.training.checkpoint import EXPORT_FILE, load_exported
from scalelab.training.config import TrainConfig
from scalelab.training.families import CAUSAL_LM, MASKED_LM, OBJECTIVES, context_limit
from scalelab.training.hf_export import read_export_info, transformers_module
from scalelab.training.launch import RUN_CONFIG_FILE


class ModelError(ValueError):
    """MODEL is not a model scalelab can open (or can't do what was asked)."""


@dataclass(frozen=True)
class LoadedModel:
    source: str
    family: str                          # gpt, bert, lstm, or a transformers model_type
    objective: str                       # causal_lm or masked_lm
    logits: Callable[[torch.Tensor], torch.Tensor]  # token ids (batch, time) -> logits (batch, time, vocab)
    tokenizer_json: Path                 # the tokenizer the ids belong to
    eod_id: Optional[int]
    mask_id: Optional[int]               # masked LMs: the [MASK] id
    context: Optional[int]               # the longest window it takes (None: no limit)
    seq_len: Optional[int] = None        # how its run scored it
    eval_tokens: Optional[int] = None
    hf_model: object = None              # the transformers model, for its own generate()


def open_model(path: str | Path) -> LoadedModel:
    path = Path(path)
    if (path / RUN_CONFIG_FILE).is_file() and (path / EXPORT_FILE).is_file():
        return _run_folder(path)
    if (path / EXPORT_FILE).is_file() and read_export_info(path) is not None:
        return _scalelab_folder(path)
    if (path / "config.json").is_file():
        return _transformers_folder(path)
    raise ModelError(f"{path}: not a model: expected a finished scalelab run (run_config.json and model.pt), "
                     f"a folder of `scalelab export`, or a transformers folder (config.json)")


def _plain(module: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda ids: module(ids)


def _run_folder(path: Path) -> LoadedModel:
    cfg = TrainConfig.model_validate_json((path / RUN_CONFIG_FILE).read_text())
    model = load_exported(path / EXPORT_FILE)
    corpus = Path(cfg.data.corpus)
    tokenizer = read_manifest(corpus).tokenizer
    return LoadedModel(source=str(path), family=model.cfg.family, objective=OBJECTIVES[model.cfg.family],
                       logits=_plain(model), tokenizer_json=corpus / tokenizer.path, eod_id=tokenizer.eod_id,
                       mask_id=getattr(model.cfg, "mask_id", None), context=context_limit(model.cfg),
                       seq_len=cfg.data.seq_len, eval_tokens=cfg.eval.tokens)


def _scalelab_folder(path: Path) -> LoadedModel:
    """The LSTM's export: our model.pt and the tokenizer beside it."""
    info = read_export_info(path)
    model = load_exported(path / EXPORT_FILE)
    return LoadedModel(source=str(path), family=info.family, objective=info.objective, logits=_plain(model),
                       tokenizer_json=path / "tokenizer.json", eod_id=_token_id(path, info.eod_token),
                       mask_id=getattr(model.cfg, "mask_id", None), context=context_limit(model.cfg),
                       seq_len=info.seq_len, eval_tokens=info.eval_tokens)


def _transformers_folder(path: Path) -> LoadedModel:
    tf = transformers_module()
    config = json.loads((path / "config.json").read_text())
    masked = any(a.endswith("ForMaskedLM") for a in config.get("architectures") or [])
    auto = tf.AutoModelForMaskedLM if masked else tf.AutoModelForCausalLM
    try:
        model = auto.from_pretrained(path).eval()
    except (ValueError, OSError) as exc:
        raise ModelError(f"{path}: transformers can't open it as {auto.__name__}: {' '.join(str(exc).split())[:300]}") from None
    if not (path / "tokenizer.json").is_file():
        raise ModelError(f"{path}: no tokenizer.json (a fast tokenizer) beside the model")
    tok = tf.AutoTokenizer.from_pretrained(path)
    info = read_export_info(path)
    context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    return LoadedModel(source=str(path), family=config.get("model_type", "?"), objective=MASKED_LM if masked else CAUSAL_LM,
                       logits=lambda ids: model(input_ids=ids).logits, tokenizer_json=path / "tokenizer.json",
                       eod_id=tok.eos_token_id, mask_id=tok.mask_token_id if masked else None, context=context,
                       seq_len=info.seq_len if info else None, eval_tokens=info.eval_tokens if info else None,
                       hf_model=model)


def _token_id(folder: Path, token: str) -> Optional[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).token_to_id(token)
