"""`scalelab corpus build | status | stats | verify`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from scalelab.cli.common import console, err_console, fail
from scalelab.core.config import ConfigError
from scalelab.core.output_folder import OutputFolderError

# The domain packages load torch, DeepSpeed and Ray: they are imported inside each command, so
# `scalelab --help` and a mistyped flag answer at once.

corpus_app = typer.Typer(help="Build, inspect and check pretraining corpora.", no_args_is_help=True)


@corpus_app.command("build")
def build(
    config: Optional[Path] = typer.Argument(None, help="Corpus config YAML (see configs/corpus/)."),
    input: List[str] = typer.Option([], "--input", "-i", help="Input path, glob or URI (repeatable); replaces the config's inputs."),
    input_type: Optional[str] = typer.Option(None, "--input-type", help="Force the source type of --input: warc, html, jsonl, parquet, text, paths."),
    set_: List[str] = typer.Option([], "--set", help="Override a config field: dotted.key=value (repeatable)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Output folder or object-storage URL, e.g. s3://bucket/prefix (default: output.dir, else out/NAME)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join ('auto' for the local one); default: start an embedded Ray."),
    force: bool = typer.Option(False, "--force", help="Start over in an output folder that holds another (or a changed) build."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Build into a non-empty folder scalelab did not create (only the build's own files are replaced)."),
) -> None:
    """Read, extract, clean, filter and deduplicate documents into OUT/documents/*.parquet.

    A stopped build resumes: rerun the same command and finished units are skipped."""
    from scalelab.pipelines.build import build_corpus, output_dir
    from scalelab.pipelines.build_status import stopped_build_message
    from scalelab.pipelines.config import SOURCE_TYPES, InputSpec, load_corpus_config
    from scalelab.pipelines.inputs import InputError
    from scalelab.pipelines.report import print_shards, print_stats
    from scalelab.pipelines.shards.build_shards import ShardsError
    from scalelab.core.build_units import BuildError

    if config is None and not input:
        fail("give a CONFIG file or at least one --input")
    if input_type is not None and input_type not in SOURCE_TYPES:
        fail(f"--input-type {input_type}: must be one of {', '.join(SOURCE_TYPES)}")
    overrides = list(set_)
    try:
        cfg = load_corpus_config(config, overrides)
        if input:
            cfg = cfg.model_copy(update={"inputs": [
                InputSpec(path=p, type=input_type) for p in input
            ]})
        result = build_corpus(cfg, out_dir=out, address=address, force=force, overwrite=overwrite,
                              log=lambda msg: err_console.print(f"[dim]{escape(msg)}[/]", highlight=False))
    except (ConfigError, InputError, ShardsError, BuildError, OutputFolderError) as exc:
        fail(str(exc))
        return
    except KeyboardInterrupt:
        fail(stopped_build_message(output_dir(cfg, out)), code=130)
        return
    print_stats(result.stats, console, title=cfg.name)
    if result.shards is not None:
        print_shards(result.shards.summary, console)
    if result.skipped_files:
        err_console.print(f"[yellow]not read[/] ({len(result.skipped_files)} files of no known type; set `type` "
                          f"to read them): " + ", ".join(result.skipped_files[:5]) + (" ..." if len(result.skipped_files) > 5 else ""))
    shards = ""
    if result.shards is not None:
        m = result.shards.manifest
        shards = f", {result.out_dir}/shards ({len(m.shards)} shards, scales {', '.join(m.scales)})"
    console.print(f"wrote {result.out_dir}/documents ({result.num_partitions} partitions){shards} "
                  f"from {result.num_inputs} input files in {result.seconds:.1f}s")


@corpus_app.command("status")
def status(out: str = typer.Argument(..., help="A build's output folder or URL.")) -> None:
    """Show which phases of a build are done, and how many units are done, started and left."""
    from scalelab.pipelines.build_status import build_status

    try:
        status = build_status(out)
    except FileNotFoundError as exc:
        fail(str(exc))
        return
    table = Table(title=f"{out}: {status['state']}", header_style="bold")
    for col in ("phase", "state", "units", "done", "started", "left"):
        table.add_column(col, justify="left" if col in ("phase", "state") else "right")
    for s in status["phases"]:
        table.add_row(s["phase"], s["state"], *("" if s[k] is None else str(s[k]) for k in ("units", "done", "started", "left")))
    console.print(table)


@corpus_app.command("stats")
def stats(out: str = typer.Argument(..., help="A build's output folder or URL.")) -> None:
    """Print where every document of a build went: kept, or dropped at which stage and why."""
    from scalelab.core.storage import Location
    from scalelab.pipelines.report import print_stats
    from scalelab.pipelines.stats import read_stats

    try:
        stats = read_stats(out)
    except FileNotFoundError as exc:
        fail(str(exc))
        return
    print_stats(stats, console, title=str(out))
    shards = Location.of(out) / "stats" / "shards.json"
    if shards.is_file():
        from scalelab.pipelines.report import print_shards

        print_shards(json.loads(shards.read_text()), console)


@corpus_app.command("verify")
def verify_corpus(out: str = typer.Argument(..., help="A build's output folder or URL.")) -> None:
    """Recompute the shards' checksums, token and document counts against manifest.json."""
    from scalelab.core.manifest import ManifestError, read_manifest, verify

    try:
        manifest = read_manifest(out)
        problems = verify(out)
    except (FileNotFoundError, ManifestError) as exc:
        fail(str(exc))
        return
    if problems:
        for p in problems:
            err_console.print(f"[red]✗[/] {p}", highlight=False, soft_wrap=True)
        fail(f"{len(problems)} problem(s) in {out}", code=1)
    files = len(manifest.shards) + 1
    console.print(f"[green]✓[/] {out}: {files} shard files, {manifest.train_tokens():,} training "
                  f"and {manifest.validation.tokens:,} validation tokens, {len(manifest.scales)} scales: all match")
