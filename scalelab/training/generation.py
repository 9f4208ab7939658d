"""`scalelab generate MODEL "prompt"`: sample a continuation from a causal model.

One loop for every kind of model (a scalelab run, an LSTM export, a transformers folder): the last
`context` tokens in, the next token out, until `max_new_tokens` or the end-of-document marker.
temperature 0 is greedy decoding; sampling is seeded, so the same call gives the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from scalelab.training.families import MASKED_LM
from scalelab.training.loaded_model import ModelError, open_model


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 50
    temperature: float = 1.0   # 0: greedy
    top_k: int = 50            # 0: the whole vocabulary
    seed: int = 0


@dataclass(frozen=True)
class Generated:
    prompt_ids: list[int]
    new_ids: list[int]
    text: str                  # the prompt and its continuation


def generate(path: str | Path, prompt: str, sampling: Sampling = Sampling()) -> Generated:
    model = open_model(path)
    if model.objective == MASKED_LM:
        raise ModelError(f"{model.source}: a masked LM ({model.family}) fills in masks; generate needs a causal "
                         f"model (gpt, lstm, or a transformers causal LM)")
    tokenizer = Tokenizer.from_file(str(model.tokenizer_json))
    prompt_ids = tokenizer.encode(prompt).ids
    if not prompt_ids:
        prompt_ids = [model.eod_id if model.eod_id is not None else 0]  # start from a document boundary
    ids = torch.tensor([prompt_ids])
    generator = torch.Generator().manual_seed(sampling.seed)
    with torch.no_grad():
        for _ in range(sampling.max_new_tokens):
            window = ids if model.context is None else ids[:, -model.context:]
            nxt = next_token(model.logits(window)[0, -1].float(), sampling, generator)
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
            if model.eod_id is not None and int(nxt) == model.eod_id:
                break
    new = ids[0, len(prompt_ids):].tolist()
    return Generated(prompt_ids, new, prompt + tokenizer.decode(new))


def next_token(logits: torch.Tensor, s: Sampling, generator: torch.Generator) -> torch.Tensor:
    if s.temperature == 0:
        return logits.argmax()
    logits = logits / s.temperature
    if s.top_k:
        kth = torch.topk(logits, min(s.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)[0]

