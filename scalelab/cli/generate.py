"""`scalelab generate MODEL "prompt"`: sample a continuation from a causal model."""

from __future__ import annotations

from pathlib import Path

import typer

from scalelab.cli.common import fail


def generate(
    model: Path = typer.Argument(..., help="A scalelab run folder (gpt or lstm), a folder of `scalelab export`, or a transformers causal LM folder."),
    prompt: str = typer.Argument(..., help="The text to continue."),
    max_new_tokens: int = typer.Option(50, "--max-new-tokens", min=1),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0, help="0: greedy."),
    top_k: int = typer.Option(50, "--top-k", min=0, help="Sample from the k likeliest tokens; 0: all."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Print the prompt and its sampled continuation."""
    from scalelab.training.generation import Sampling, generate as sample
    from scalelab.training.hf_export import ExportError, quiet_transformers
    from scalelab.training.loaded_model import ModelError

    quiet_transformers()
    try:
        out = sample(model, prompt, Sampling(max_new_tokens, temperature, top_k, seed))
    except (ModelError, ExportError) as exc:
        fail(str(exc))
        return
    print(out.text)
