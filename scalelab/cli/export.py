"""`scalelab export RUN --to DIR`: a finished run as a folder transformers opens."""

from __future__ import annotations

from pathlib import Path

import typer

from scalelab.cli.common import console, fail
from scalelab.core.output_folder import OutputFolderError


def export(
    run: Path = typer.Argument(..., help="A finished run folder (holds run_config.json and model.pt)."),
    to: Path = typer.Option(..., "--to", help="The folder to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty folder scalelab did not create."),
) -> None:
    """GPT as GPT2LMHeadModel, BERT as BertForMaskedLM (each with the run's tokenizer), LSTM as a torch state dict."""
    from scalelab.training.hf_export import ExportError, export_run, quiet_transformers

    quiet_transformers()
    try:
        info = export_run(run, to, overwrite=overwrite)
    except (ExportError, OutputFolderError) as exc:
        fail(str(exc))
        return
    console.print(f"exported {info.run_id} ({info.family}, {info.objective}) to {to}: opens with {info.loads_with}",
                  highlight=False)
