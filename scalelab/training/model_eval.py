"""`scalelab eval MODEL --corpus DIR`: validation loss and bits per byte of any model on a corpus.

The corpus's validation windows are scored as a run scores them (trainer.evaluate): a causal model
on every next token, a masked one on BERT's selected tokens with the validation masks every run
uses. So a run, its export, and a public model that reads the same token ids land on the same
scale, and bits per byte compares them with runs of other tokenizers. The model must read the
corpus's token ids: its tokenizer must give every token of the corpus's tokenizer the same id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from tokenizers import Tokenizer

from scalelab.training.config import EvalSpec
from scalelab.training.data import Corpus, DataError, ValidationWindows
from scalelab.training.families import MASKED_LM
from scalelab.training.loaded_model import LoadedModel, ModelError, open_model
from scalelab.training.masking import MaskingRule
from scalelab.training.objectives import CausalLM, MaskedLM, Objective
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


def check_same_ids(model: LoadedModel, corpus: Corpus) -> None:
    """Every token of the corpus's tokenizer has the same id in the model's."""
    theirs = Tokenizer.from_file(str(model.tokenizer_json)).get_vocab(with_added_tokens=True)
    ours = Tokenizer.from_file(str(corpus.folder / "tokenizer.json")).get_vocab(with_added_tokens=True)
    differ = [t for t, i in ours.items() if theirs.get(t) != i]
    if differ:
        raise ModelError(f"{model.source}: its tokenizer gives {len(differ)} of the corpus's {len(ours)} tokens "
                         f"other ids (e.g. {differ[0]!r}); eval scores the corpus's token ids, so the model must "
                         f"read them (a model of another tokenizer is not supported yet)")


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
    check_same_ids(model, corpus)
    seq_len = seq_len or model.seq_len or min(model.context or 1024, 1024)
    if model.context is not None and seq_len > model.context:
        raise ModelError(f"--seq-len {seq_len} is longer than the model's context {model.context}")
    tokens = tokens or model.eval_tokens or DEFAULT_EVAL_TOKENS
    try:
        windows = ValidationWindows(corpus, seq_len, tokens, 0, 1)
    except DataError as exc:
        raise ModelError(str(exc)) from None
    objective = objective_of(model, corpus)
    scored = objective.scored(windows)
    with torch.no_grad():
        val = evaluate(Engine(model), windows, batch_size, torch.device("cpu"), objective, scored)
    return EvalResult(model=model.source, corpus=str(corpus.folder), objective=objective.name, seq_len=seq_len,
                      tokens=scored.tokens, bytes=scored.bytes, bpb_exact=windows.counter.exact, loss=val.loss,
                      bpb=val.bpb)
