"""The `scalelab` command: one CLI for corpus builds (and, as they land, training and sweeps)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from scalelab.config_errors import ConfigError

app = typer.Typer(help="scalelab: how does loss fall as the model gets more data?", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
corpus_app = typer.Typer(help="Build, inspect and check pretraining corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

# Piped into a log or a file, rich would assume 80 columns and squeeze the tables; allow wider lines.
console = Console() if sys.stdout.isatty() else Console(width=140)
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    # Messages quote user input ("models=[foo]"): escape it so rich doesn't read it as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@corpus_app.command("build")
def corpus_build(
    config: Optional[Path] = typer.Argument(None, help="Corpus config YAML (see configs/corpus/)."),
    input: List[str] = typer.Option([], "--input", "-i", help="Input path, glob or URI (repeatable); replaces the config's inputs."),
    input_type: Optional[str] = typer.Option(None, "--input-type", help="Force the source type of --input: warc, html, jsonl, parquet, text, paths."),
    set_: List[str] = typer.Option([], "--set", help="Override a config field: dotted.key=value (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: output.dir, else out/NAME)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join ('auto' for the local one); default: start an embedded Ray."),
) -> None:
    """Read, extract, clean, filter and deduplicate documents into OUT/documents/*.parquet."""
    from pipelines.build import build_corpus
    from pipelines.config import SOURCE_TYPES, InputSpec, load_corpus_config
    from pipelines.inputs import InputError
    from pipelines.report import print_shards, print_stats
    from pipelines.shards.build_shards import ShardsError

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
        result = build_corpus(cfg, out_dir=out, address=address)
    except (ConfigError, InputError, ShardsError) as exc:
        fail(str(exc))
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
        shards = f", {result.out_dir}/shards ({len(m['shards'])} shards, scales {', '.join(m['scales'])})"
    console.print(f"wrote {result.out_dir}/documents ({result.num_partitions} partitions){shards} "
                  f"from {result.num_inputs} input files in {result.seconds:.1f}s")


@corpus_app.command("stats")
def corpus_stats(out: Path = typer.Argument(..., help="A build's output folder.")) -> None:
    """Print where every document of a build went: kept, or dropped at which stage and why."""
    from pipelines.report import print_stats
    from pipelines.stats import read_stats

    try:
        stats = read_stats(out)
    except FileNotFoundError as exc:
        fail(str(exc))
        return
    print_stats(stats, console, title=str(out))
    shards = Path(out) / "stats" / "shards.json"
    if shards.is_file():
        import json

        from pipelines.report import print_shards

        print_shards(json.loads(shards.read_text()), console)


@corpus_app.command("verify")
def corpus_verify(out: Path = typer.Argument(..., help="A build's output folder.")) -> None:
    """Recompute the shards' checksums, token and document counts against manifest.json."""
    from pipelines.shards.manifest import read_manifest, verify

    try:
        manifest = read_manifest(out)
        problems = verify(out)
    except FileNotFoundError as exc:
        fail(str(exc))
        return
    if problems:
        for p in problems:
            err_console.print(f"[red]✗[/] {p}", highlight=False, soft_wrap=True)
        fail(f"{len(problems)} problem(s) in {out}", code=1)
    files = len(manifest["shards"]) + 1
    console.print(f"[green]✓[/] {out}: {files} shard files, {sum(s['tokens'] for s in manifest['shards']):,} training "
                  f"and {manifest['validation']['tokens']:,} validation tokens, {len(manifest['scales'])} scales: all match")


@app.command("train")
def train(
    config: Path = typer.Argument(..., help="Run config YAML (see configs/train/)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes to start on this machine (one per GPU, or CPU workers)."),
    deepspeed: Optional[Path] = typer.Option(None, "--deepspeed", help="DeepSpeed JSON (default: the config's `deepspeed`)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint in the output folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: the config's `output`)."),
    set_: List[str] = typer.Option([], "--set", help="Override a config field: dotted.key=value (repeatable)."),
) -> None:
    """Train one GPT on one data scale of a corpus with DeepSpeed, starting NPROC processes with torchrun."""
    from training.config import load_train_config
    from training.launch import run_local
    from training.report import print_summary
    from training.trainer import TrainError

    overrides = list(set_)
    if deepspeed is not None:
        overrides.append(f"deepspeed={deepspeed}")
    if out is not None:
        overrides.append(f"output={out}")
    try:
        cfg = load_train_config(config, overrides)
        summary = run_local(cfg, nproc=nproc, resume=resume)
    except (ConfigError, TrainError) as exc:
        fail(str(exc))
        return
    print_summary(summary, console)
    console.print(f"wrote {summary['exported'] or cfg.output}, curves.parquet and summary.json in "
                  f"{Path(summary['exported']).parent if summary['exported'] else cfg.output}")


@app.command("sweep")
def sweep(
    config: Path = typer.Argument(..., help="Sweep config YAML (see configs/sweep/)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the runs (N, D, tokens, epochs, FLOPs) and stop."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join; default: start an embedded Ray."),
    backend: str = typer.Option("ray", "--backend", help="ray (Ray Train) or deepspeed (the deepspeed launcher)."),
    hostfile: Optional[Path] = typer.Option(None, "--hostfile", help="With --backend deepspeed: 'HOST slots=N' lines."),
    set_: List[str] = typer.Option([], "--set", help="Override a config field: dotted.key=value (repeatable)."),
) -> None:
    """Train every (data scale × model size × seed) of a sweep; results in OUTPUT/runs.parquet and curves.parquet."""
    from orchestrator.plan import SweepError, plan_sweep
    from orchestrator.sweep import run_sweep
    from orchestrator.sweep_config import load_sweep_config
    from orchestrator.tables import plan_table, status_table

    try:
        cfg = load_sweep_config(config, list(set_))
        if dry_run:
            runs = plan_sweep(cfg, str(config))
            console.print(plan_table(runs, f"sweep {cfg.name}: {len(runs)} runs on {cfg.resources.workers} workers each"))
            return
        result = run_sweep(cfg, str(config), address=address, backend=backend,
                           hostfile=str(hostfile) if hostfile else None, console=console)
    except (ConfigError, SweepError) as exc:
        fail(str(exc))
        return
    if console.is_terminal is False:
        console.print(status_table(result.runs, f"sweep {cfg.name}"))
    console.print(f"reports: {result.report_dir}/runs.parquet, curves.parquet ({result.seconds:.0f}s)")
    if result.failed:
        fail(f"{len(result.failed)} run(s) failed: {', '.join(result.failed)}; rerun to retry them", code=1)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
