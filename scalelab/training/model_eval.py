"""`scalelab eval MODEL --corpus DIR`: validation loss and bits per byte of any model on a corpus.

The corpus's validation windows are scored as a run scores them (trainer.evaluate): a causal model
on every next token, a masked one on BERT's selected tokens with the validation masks every run
uses. So a run and its export land on the same scale, and bits per byte compares them with runs
of other tokenizers. A causal model of another tokenizer (a public model) is scored on the same
validation text re-tokenized with its own tokenizer (retokenized.py): its bits per byte are
comparable, its loss per token is per its own tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from scalelab.training.config import EvalSpec
from scalelab.training.data import Corpus, DataError, ValidationWindows
from scalelab.training.families import MASKED_LM
from scalelab.training.loaded_model import LoadedModel, ModelError, open_model
from scalelab.training.masking import MaskingRule
from scalelab.training.objectives import CausalLM, MaskedLM, Objective
from scalelab.training.retokenized import score_text, tokenizers_differ, validation_documents
from scalelab.training.trainer import evaluate

DEFAULT_EVAL_TOKENS = EvalSpec().tokens


@dataclass(frozen=True)
class EvalResult:
    model: str
    corpus: str
    objective: str       # causal_lm: every next token; masked_lm: the selected tokens
    seq_len: int
    tokens: int          # tokens scored
    bytes: Optional[float]
    bpb_exact: bool
    loss: float          # nats per scored token
    bpb: Optional[float]
    retokenized: bool = False  # the model has another tokenizer: the validation text, re-tokenized with it


class Engine:
    """What `evaluate` calls: the model's logits, in eval mode, without gradients."""

    def __init__(self, model: LoadedModel):
        self.model = model

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.logits(ids)

    def eval(self) -> None:
        pass

    def train(self) -> None:
        pass


def objective_of(model: LoadedModel, corpus: Corpus) -> Objective:
    if model.objective != MASKED_LM:
        return CausalLM()
    if model.mask_id is None:
        raise ModelError(f"{model.source}: a masked LM without a mask token")
    # The seed keys training masks only; validation masks are the same for every run.
    return MaskedLM(MaskingRule(corpus.vocab_size, model.mask_id, (corpus.eod_id,)), seed=0)


def eval_model(path: str | Path, corpus_dir: str | Path, seq_len: Optional[int] = None,
               tokens: Optional[int] = None, batch_size: int = 8) -> EvalResult:
    model = open_model(path)
    try:
        corpus = Corpus(corpus_dir)
    except DataError as exc:
        raise ModelError(str(exc)) from None
    other_tokenizer = tokenizers_differ(model, corpus)
    if other_tokenizer is not None and model.objective == MASKED_LM:
        raise ModelError(f"{model.source}: a masked LM with another tokenizer than the corpus's (e.g. it gives "
                         f"{other_tokenizer!r} another id): its masks could not be the runs'; not supported")
    seq_len = seq_len or model.seq_len or min(model.context or 1024, 1024)
    if model.context is not None and seq_len > model.context:
        raise ModelError(f"--seq-len {seq_len} is longer than the model's context {model.context}")
    tokens = tokens or model.eval_tokens or DEFAULT_EVAL_TOKENS
    try:
        windows = ValidationWindows(corpus, seq_len, tokens, 0, 1)
    except DataError as exc:
        raise ModelError(str(exc)) from None
    if other_tokenizer is not None:
        text = score_text(model, validation_documents(corpus, windows), seq_len, batch_size)
        return EvalResult(model=model.source, corpus=str(corpus.folder), objective=CausalLM.name, seq_len=seq_len,
                          tokens=text.tokens, bytes=text.bytes, bpb_exact=True, loss=text.loss, bpb=text.bpb,
                          retokenized=True)
    objective = objective_of(model, corpus)
    scored = objective.scored(windows)
    with torch.no_grad():
        val = evaluate(Engine(model), windows, batch_size, torch.device("cpu"), objective, scored)
    return EvalResult(model=model.source, corpus=str(corpus.folder), objective=objective.name, seq_len=seq_len,
                      tokens=scored.tokens, bytes=scored.bytes, bpb_exact=windows.counter.exact, loss=val.loss,
                      bpb=val.bpb)
