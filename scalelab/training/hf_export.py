"""`scalelab export RUN --to DIR`: a finished run's weights in a folder `transformers` opens.

- gpt  -> `GPT2LMHeadModel` (AutoModelForCausalLM): the same pre-LN blocks; GPT-2 stores its
  Linear weights transposed (Conv1D), and a model trained without biases gets zero ones;
- bert -> `BertForMaskedLM` (AutoModelForMaskedLM): the fused q/k/v split in three, a zero
  token-type embedding (windows are one segment), the MLM head's bias as the decoder's;
- lstm -> no transformers class: `model.pt` as the run writes it, opened with
  `scalelab.training.checkpoint.load_exported(DIR / "model.pt")`.

Each folder also holds the run's tokenizer as a `PreTrainedTokenizerFast` (the end-of-document
marker as its eos; BERT's [MASK] added at the id the model was trained with) and
`scalelab_export.json`: the run, family, objective, corpus and seq_len that `scalelab eval` uses
to score the model exactly as the run did. `transformers` is the optional extra `scalelab[hf]`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch

from scalelab.core.atomic import write_json
from scalelab.core.manifest import read_manifest
from scalelab.core.output_folder import claim
from scalelab.training.checkpoint import EXPORT_FILE
from scalelab.training.config import TrainConfig
from scalelab.training.families import OBJECTIVES, ModelShape, shape_from_dict
from scalelab.training.launch import RUN_CONFIG_FILE
from scalelab.training.model import ModelConfig
from scalelab.training.model_bert import LAYER_NORM_EPS, BertConfig

EXPORT_INFO = "scalelab_export.json"
EXPORT_KIND = "model export"
MASK_TOKEN = "[MASK]"
GPT_LAYER_NORM_EPS = 1e-5  # torch's default, which model.py's LayerNorms use


class ExportError(ValueError):
    """The run can't be exported (not finished, no weights, transformers missing)."""


@dataclass(frozen=True)
class ExportInfo:
    """scalelab_export.json: where the weights came from and how the run scored them."""

    run_id: str
    family: str
    objective: str
    loads_with: str      # AutoModelForCausalLM, AutoModelForMaskedLM, or scalelab's load_exported
    corpus: str
    seq_len: int
    eval_tokens: Optional[int]
    seed: int            # BERT's validation masks don't depend on it; recorded for provenance
    eod_token: str


@dataclass(frozen=True)
class RunWeights:
    cfg: TrainConfig
    shape: ModelShape
    state: dict[str, torch.Tensor]


def read_run(run_dir: Path) -> RunWeights:
    config_file, weights = run_dir / RUN_CONFIG_FILE, run_dir / EXPORT_FILE
    for path in (config_file, weights):
        if not path.is_file():
            raise ExportError(f"{path}: missing; export needs a finished run (with checkpoint.export: true)")
    cfg = TrainConfig.model_validate_json(config_file.read_text())
    blob = torch.load(weights, map_location="cpu", weights_only=False)
    return RunWeights(cfg, shape_from_dict(blob.get("family", "gpt"), blob["model_config"]), blob["state_dict"])


def transformers_module():
    try:
        import transformers
    except ImportError:
        raise ExportError("transformers is not installed: pip install 'scalelab[hf]'") from None
    return transformers


def quiet_transformers() -> None:
    """No progress bars or advice on loads and saves: the commands print their own one line."""
    try:
        from transformers.utils import logging as tf_logging
    except ImportError:
        return
    tf_logging.disable_progress_bar()
    tf_logging.set_verbosity_error()


def export_run(run_dir: str | Path, to: str | Path, overwrite: bool = False) -> ExportInfo:
    run_dir, to = Path(run_dir), Path(to)
    run = read_run(run_dir)
    corpus = Path(run.cfg.data.corpus)
    manifest = read_manifest(corpus)
    claim(to, EXPORT_KIND, overwrite)
    family = run.shape.family
    if family == "gpt":
        loads_with = "AutoModelForCausalLM"
        _gpt2(run.shape, run.state, manifest.tokenizer.eod_id).save_pretrained(to)
    elif family == "bert":
        loads_with = "AutoModelForMaskedLM"
        _bert(run.shape, run.state, manifest.tokenizer.eod_id).save_pretrained(to)
    else:
        loads_with = "scalelab.training.checkpoint.load_exported"
        torch.save({"family": family, "model_config": run.shape.to_dict(), "state_dict": run.state}, to / EXPORT_FILE)
    _tokenizer(corpus / manifest.tokenizer.path, manifest.tokenizer.eod_token, run.shape).save_pretrained(to)
    info = ExportInfo(run_id=run.cfg.name, family=family, objective=OBJECTIVES[family], loads_with=loads_with,
                      corpus=str(corpus), seq_len=run.cfg.data.seq_len, eval_tokens=run.cfg.eval.tokens,
                      seed=run.cfg.seed, eod_token=manifest.tokenizer.eod_token)
    write_json(to / EXPORT_INFO, asdict(info), indent=2)
    return info


def read_export_info(folder: Path) -> Optional[ExportInfo]:
    path = Path(folder) / EXPORT_INFO
    return ExportInfo(**json.loads(path.read_text())) if path.is_file() else None


def _tied_embedding(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return state["wte.weight"] if "wte.weight" in state else state["lm_head.weight"]


def _or_zeros(state: dict[str, torch.Tensor], key: str, size: int) -> torch.Tensor:
    """A bias or LayerNorm bias, zeros for a model trained without them."""
    return state[key] if key in state else torch.zeros(size)


def _gpt2(shape: ModelConfig, state: dict[str, torch.Tensor], eod_id: int):
    tf = transformers_module()
    config = tf.GPT2Config(vocab_size=shape.vocab_size, n_positions=shape.context, n_embd=shape.d_model,
                           n_layer=shape.n_layer, n_head=shape.n_head, activation_function="gelu_pytorch_tanh",
                           resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=GPT_LAYER_NORM_EPS,
                           bos_token_id=eod_id, eos_token_id=eod_id, pad_token_id=eod_id, tie_word_embeddings=True)
    d = shape.d_model
    mapped = {"transformer.wte.weight": _tied_embedding(state), "transformer.wpe.weight": state["wpe.weight"],
              "transformer.ln_f.weight": state["ln_f.weight"], "transformer.ln_f.bias": _or_zeros(state, "ln_f.bias", d)}
    for i in range(shape.n_layer):
        ours, theirs = f"blocks.{i}.", f"transformer.h.{i}."
        for a, b, width in (("ln1", "ln_1", d), ("ln2", "ln_2", d)):
            mapped[theirs + b + ".weight"] = state[ours + a + ".weight"]
            mapped[theirs + b + ".bias"] = _or_zeros(state, ours + a + ".bias", width)
        for a, b, width in (("attn.qkv", "attn.c_attn", 3 * d), ("attn.proj", "attn.c_proj", d),
                            ("mlp.fc", "mlp.c_fc", 4 * d), ("mlp.proj", "mlp.c_proj", d)):
            mapped[theirs + b + ".weight"] = state[ours + a + ".weight"].t().contiguous()  # Conv1D: (in, out)
            mapped[theirs + b + ".bias"] = _or_zeros(state, ours + a + ".bias", width)
    return _load(tf.GPT2LMHeadModel(config), mapped)


def _bert(shape: BertConfig, state: dict[str, torch.Tensor], eod_id: int):
    tf = transformers_module()
    config = tf.BertConfig(vocab_size=shape.vocab_size, hidden_size=shape.d_model, num_hidden_layers=shape.n_layer,
                           num_attention_heads=shape.n_head, intermediate_size=4 * shape.d_model, hidden_act="gelu",
                           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                           max_position_embeddings=shape.context, type_vocab_size=1, layer_norm_eps=LAYER_NORM_EPS,
                           pad_token_id=eod_id, tie_word_embeddings=True)
    d, v = shape.d_model, shape.vocab_size
    emb = "bert.embeddings."
    mapped = {emb + "word_embeddings.weight": _tied_embedding(state), emb + "position_embeddings.weight": state["wpe.weight"],
              emb + "token_type_embeddings.weight": torch.zeros(1, d),
              emb + "LayerNorm.weight": state["ln_emb.weight"], emb + "LayerNorm.bias": _or_zeros(state, "ln_emb.bias", d),
              "cls.predictions.transform.dense.weight": state["mlm_dense.weight"],
              "cls.predictions.transform.dense.bias": _or_zeros(state, "mlm_dense.bias", d),
              "cls.predictions.transform.LayerNorm.weight": state["mlm_ln.weight"],
              "cls.predictions.transform.LayerNorm.bias": _or_zeros(state, "mlm_ln.bias", d),
              "cls.predictions.bias": _or_zeros(state, "lm_head.bias", v),
              "cls.predictions.decoder.bias": _or_zeros(state, "lm_head.bias", v)}
    for i in range(shape.n_layer):
        ours, theirs = f"layers.{i}.", f"bert.encoder.layer.{i}."
        qkv_w = state[ours + "attn.qkv.weight"].split(d, dim=0)
        qkv_b = _or_zeros(state, ours + "attn.qkv.bias", 3 * d).split(d)
        for j, name in enumerate(("query", "key", "value")):
            mapped[f"{theirs}attention.self.{name}.weight"] = qkv_w[j].contiguous()
            mapped[f"{theirs}attention.self.{name}.bias"] = qkv_b[j].contiguous()
        for a, b, width in (("attn.proj", "attention.output.dense", d), ("ln1", "attention.output.LayerNorm", d),
                            ("fc", "intermediate.dense", 4 * d), ("proj", "output.dense", d),
                            ("ln2", "output.LayerNorm", d)):
            mapped[theirs + b + ".weight"] = state[ours + a + ".weight"]
            mapped[theirs + b + ".bias"] = _or_zeros(state, ours + a + ".bias", width)
    return _load(tf.BertForMaskedLM(config), mapped)


def _load(model, mapped: dict[str, torch.Tensor]):
    """Every weight of the HF model from the mapping (the tied output weight may be left to the tie)."""
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    untied = [k for k in missing if k not in ("lm_head.weight", "cls.predictions.decoder.weight")]
    if untied or unexpected:
        raise ExportError(f"the mapping to {type(model).__name__} is incomplete: missing {untied}, "
                          f"unexpected {unexpected}")
    return model.eval()


def _tokenizer(tokenizer_json: Path, eod_token: str, shape: ModelShape):
    tf = transformers_module()
    tok = tf.PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_json), eos_token=eod_token, bos_token=eod_token,
                                     pad_token=eod_token)
    if shape.family == "bert":
        tok.add_special_tokens({"mask_token": MASK_TOKEN})
        if tok.mask_token_id != shape.mask_id:
            raise ExportError(f"{tokenizer_json}: [MASK] would get id {tok.mask_token_id}, the model was trained "
                              f"with {shape.mask_id}")
    return tok


def hf_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """Logits of a transformers model for token ids (batch, time), without an attention mask (no padding)."""
    with torch.no_grad():
        return model(input_ids=ids).logits

