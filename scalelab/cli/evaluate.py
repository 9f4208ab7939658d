"""`scalelab eval MODEL --corpus DIR`: validation loss and bits per byte of a run or a model folder."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from scalelab.cli.common import console, fail


def evaluate(
    model: Path = typer.Argument(..., help="A scalelab run folder, a folder of `scalelab export`, or a local transformers folder."),
    corpus: Path = typer.Option(..., "--corpus", help="A built corpus folder: its validation split is scored."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", min=2, help="Window length (default: the run's; else the model's context, at most 1024)."),
    tokens: Optional[int] = typer.Option(None, "--tokens", min=2, help="Validation tokens scored, a fixed prefix (default: the run's eval.tokens, else 65536)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Score MODEL on CORPUS's validation windows as a run scores itself (masked models on BERT's masks)."""
    from scalelab.training.hf_export import ExportError, quiet_transformers
    from scalelab.training.loaded_model import ModelError
    from scalelab.training.model_eval import eval_model

    quiet_transformers()
    try:
        result = eval_model(model, corpus, seq_len=seq_len, tokens=tokens, batch_size=batch_size)
    except (ModelError, ExportError) as exc:
        fail(str(exc))
        return
    if as_json:
        print(json.dumps(asdict(result), indent=1))
        return
    bpb = f"{result.bpb:.4f} bits per byte{'' if result.bpb_exact else ' (bytes estimated)'}" if result.bpb else "no bpb"
    what = "masked tokens" if result.objective == "masked_lm" else "tokens"
    console.print(f"{result.model} on {result.corpus}: loss {result.loss:.4f} nats per token, {bpb} "
                  f"({result.tokens:,} {what}, seq_len {result.seq_len})", highlight=False)
