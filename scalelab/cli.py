"""The `scalelab` command: one CLI for corpus builds (and, as they land, training and sweeps)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from scalelab.core.config import ConfigError
from scalelab.core.output_folder import OutputFolderError

app = typer.Typer(help="scalelab: how does loss fall as the model gets more data?", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
corpus_app = typer.Typer(help="Build, inspect and check pretraining corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
scaling_app = typer.Typer(help="Fit scaling laws, predict losses, plan compute.", no_args_is_help=True)
app.add_typer(scaling_app, name="scaling")

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
    force: bool = typer.Option(False, "--force", help="Start over in an output folder that holds another (or a changed) build."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Build into a non-empty folder scalelab did not create (only the build's own files are replaced)."),
) -> None:
    """Read, extract, clean, filter and deduplicate documents into OUT/documents/*.parquet.

    A stopped build resumes: rerun the same command and finished units are skipped."""
    from scalelab.pipelines.build import build_corpus, output_dir
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
        fail(_stopped_build(output_dir(cfg, out)), code=130)
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


def _stopped_build(out: Path) -> str:
    """One line for a build stopped by Ctrl-C: the stage it stopped in, and how to go on."""
    from scalelab.pipelines.build_status import build_status

    try:
        stages = build_status(out)["stages"]
    except FileNotFoundError:
        return f"stopped before the build of {out} began; rerun the same command to start it"
    current = next((s for s in stages if s["state"] != "done"), None)
    if current is None:
        where = "after its last stage"
    elif current["units"] is None:
        where = f"before stage {current['stage']}"
    else:
        where = f"in stage {current['stage']} ({current['done']} of {current['units']} units done)"
    return f"stopped {where} in {out}; rerun the same command to resume (finished units are kept)"


@corpus_app.command("status")
def corpus_status(out: Path = typer.Argument(..., help="A build's output folder.")) -> None:
    """Show which stages of a build are done, and how many units are done, started and left."""
    from rich.table import Table

    from scalelab.pipelines.build_status import build_status

    try:
        status = build_status(out)
    except FileNotFoundError as exc:
        fail(str(exc))
        return
    table = Table(title=f"{out}: {status['state']}", header_style="bold")
    for col in ("stage", "state", "units", "done", "started", "left"):
        table.add_column(col, justify="left" if col in ("stage", "state") else "right")
    for s in status["stages"]:
        table.add_row(s["stage"], s["state"], *("" if s[k] is None else str(s[k]) for k in ("units", "done", "started", "left")))
    console.print(table)


@corpus_app.command("stats")
def corpus_stats(out: Path = typer.Argument(..., help="A build's output folder.")) -> None:
    """Print where every document of a build went: kept, or dropped at which stage and why."""
    from scalelab.pipelines.report import print_stats
    from scalelab.pipelines.stats import read_stats

    try:
        stats = read_stats(out)
    except FileNotFoundError as exc:
        fail(str(exc))
        return
    print_stats(stats, console, title=str(out))
    shards = Path(out) / "stats" / "shards.json"
    if shards.is_file():
        import json

        from scalelab.pipelines.report import print_shards

        print_shards(json.loads(shards.read_text()), console)


@corpus_app.command("verify")
def corpus_verify(out: Path = typer.Argument(..., help="A build's output folder.")) -> None:
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
    files = len(manifest["shards"]) + 1
    console.print(f"[green]✓[/] {out}: {files} shard files, {sum(s['tokens'] for s in manifest['shards']):,} training "
                  f"and {manifest['validation']['tokens']:,} validation tokens, {len(manifest['scales'])} scales: all match")


@app.command("crawl")
def crawl(
    seeds: Path = typer.Argument(..., help="Seed URLs, one per line (# starts a comment)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: OUT/warc/*.warc.gz, OUT/crawl_log.parquet."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Crawl config YAML (see configs/crawl/); default: polite defaults."),
    set_: List[str] = typer.Option([], "--set", help="Override a config field: dotted.key=value (repeatable)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join ('auto' for the local one); default: start an embedded Ray."),
    force: bool = typer.Option(False, "--force", help="Start over in an output folder that holds another crawl."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Crawl into a non-empty folder scalelab did not create (only the crawl's own files are replaced)."),
) -> None:
    """Fetch pages from SEEDS politely (robots.txt, per-host delay and connections) into WARC files;
    rerun the same command to resume a stopped crawl."""
    from scalelab.pipelines.crawl.config import load_crawl_config
    from scalelab.pipelines.crawl.crawl import CrawlError, run_crawl
    from scalelab.pipelines.crawl.report import print_totals

    try:
        cfg = load_crawl_config(config, list(set_))
        result = run_crawl(cfg, seeds, out, address=address, force=force, overwrite=overwrite)
    except (ConfigError, CrawlError, OutputFolderError) as exc:
        fail(str(exc))
        return
    except KeyboardInterrupt:
        fail("stopped; rerun the same command to continue the crawl where it stopped", code=130)
        return
    print_totals(result.totals, console, title=cfg.name + (" (resumed)" if result.resumed else ""))
    console.print(f"wrote {len(result.warc_files)} WARC files to {out}/warc and {out}/crawl_log.parquet "
                  f"in {result.seconds:.1f}s; build a corpus with: scalelab corpus build -i {out}/warc")


@app.command("train")
def train(
    config: Path = typer.Argument(..., help="Run config YAML (see configs/train/)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes to start on this machine (one per GPU, or CPU workers)."),
    deepspeed: Optional[str] = typer.Option(None, "--deepspeed", help="A shipped DeepSpeed JSON by name (zero0 ... zero3-offload) or a path (default: the config's `deepspeed`)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint in the output folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: the config's `output`)."),
    set_: List[str] = typer.Option([], "--set", help="Override a config field: dotted.key=value (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Train into a non-empty folder scalelab did not create (only the run's own files are replaced)."),
) -> None:
    """Train one GPT on one data scale of a corpus with DeepSpeed, starting NPROC processes with torchrun."""
    from scalelab.training.config import load_train_config
    from scalelab.training.launch import run_local
    from scalelab.training.report import print_summary
    from scalelab.training.trainer import TrainError

    overrides = list(set_)
    if deepspeed is not None:
        overrides.append(f"deepspeed={deepspeed}")
    if out is not None:
        overrides.append(f"output={out}")
    try:
        cfg = load_train_config(config, overrides)
        summary = run_local(cfg, nproc=nproc, resume=resume, overwrite=overwrite)
    except (ConfigError, TrainError, OutputFolderError) as exc:
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
    overwrite: bool = typer.Option(False, "--overwrite", help="Write reports into a non-empty folder scalelab did not create (only the sweep's own files are replaced)."),
) -> None:
    """Train every (data scale × model size × seed) of a sweep; results in OUTPUT/runs.parquet and curves.parquet."""
    from scalelab.orchestrator.plan import SweepError, plan_sweep
    from scalelab.orchestrator.sweep import check_backend, run_sweep
    from scalelab.orchestrator.sweep_config import load_sweep_config
    from scalelab.orchestrator.tables import plan_table, status_table

    try:
        check_backend(backend, str(hostfile) if hostfile else None)
        cfg = load_sweep_config(config, list(set_))
        if dry_run and cfg.tokens.policy == "isoflop":
            from scalelab.orchestrator.isoflop_plan import plan_isoflop
            from scalelab.orchestrator.isoflop_table import isoflop_table

            iso = plan_isoflop(cfg, str(config))
            console.print(isoflop_table(iso, f"IsoFLOP sweep {cfg.name}: {len(iso)} runs on {cfg.resources.workers} "
                                             f"workers each; FLOPs = flops_per_token × tokens (attention and output layer included)"))
            return
        if dry_run:
            runs = plan_sweep(cfg, str(config))
            console.print(plan_table(runs, f"sweep {cfg.name}: {len(runs)} runs on {cfg.resources.workers} workers each"))
            return
        result = run_sweep(cfg, str(config), address=address, backend=backend,
                           hostfile=str(hostfile) if hostfile else None, console=console, overwrite=overwrite)
    except (ConfigError, SweepError, OutputFolderError) as exc:
        fail(str(exc))
        return
    if console.is_terminal is False:
        console.print(status_table(result.runs, f"sweep {cfg.name}"))
    console.print(f"reports: {result.report_dir}/runs.parquet, curves.parquet ({result.seconds:.0f}s)")
    if result.failed:
        fail(f"{len(result.failed)} run(s) failed: {', '.join(result.failed)}; rerun to retry them", code=1)


def _print_table(table, title: str = "") -> None:
    from rich.table import Table

    out = Table(title=title or None, title_justify="left")
    for name in table.column_names:
        out.add_column(name, justify="left" if str(table.schema.field(name).type) == "string" else "right")
    for row in table.to_pylist():
        out.add_row(*[f"{v:.6g}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row.values()])
    console.print(out)


@app.command("query")
def query_cmd(
    sql: str = typer.Argument(..., help="SQL over the tables runs, curves, fits and stats (no file access)."),
    reports: Path = typer.Option(Path("out/sweeps/demo"), "--reports", help="A sweep's report folder."),
    format: str = typer.Option("table", "--format", help="table, csv, json or parquet."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write here instead of printing (needed for parquet)."),
) -> None:
    """Run DuckDB SQL over a sweep's reports: `scalelab query "SELECT model, unique_tokens, final_val_loss FROM runs"`."""
    import json

    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from scalelab.orchestrator.scaling.query import QueryError, query

    if format not in ("table", "csv", "json", "parquet"):
        fail(f"--format {format}: must be table, csv, json or parquet")
    if format == "parquet" and out is None:
        fail("--format parquet needs --out FILE")
    try:
        table = query(sql, reports)
    except QueryError as exc:
        fail(str(exc))
        return
    if format == "table":
        _print_table(table)
        return
    if format == "parquet":
        pq.write_table(table, out)
    elif format == "csv":
        if out is None:
            pcsv.write_csv(table, sys.stdout.buffer)
        else:
            pcsv.write_csv(table, out)
    else:
        text = json.dumps(table.to_pylist(), indent=1, default=str)
        if out is None:
            print(text)
        else:
            out.write_text(text + "\n")
    if out is not None:
        console.print(f"wrote {table.num_rows} rows to {out}")


@scaling_app.command("fit")
def scaling_fit(
    table: Path = typer.Argument(..., help="A sweep's report folder or runs.parquet, or a CSV/Parquet with params, tokens, loss."),
    law: str = typer.Option("data", "--law", help="data (per model size), kaplan, chinchilla, kaplan-nd, data-constrained."),
    params: str = typer.Option("non_embedding", "--params", help="For runs.parquet: which N, non_embedding or all."),
    metric: str = typer.Option("bpb", "--metric", help="For runs.parquet: best validation loss in bpb (bits per byte) or nats (per token)."),
    bootstrap: int = typer.Option(100, "--bootstrap", min=0, help="Bootstrap resamples for the intervals."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the fitted constants as JSON."),
) -> None:
    """Fit a scaling law; in a sweep's report folder the fit is also written to fits.parquet."""
    from scalelab.orchestrator.scaling.finite_json import dumps
    from scalelab.orchestrator.scaling.fits import fit, fits_json, write_fits
    from scalelab.orchestrator.scaling.points import METRICS, PointsError, load_points

    def error(message: str) -> None:
        if as_json:  # a script reading stdout still gets JSON
            print(dumps({"error": message}))
        fail(message)

    if params not in ("non_embedding", "all"):
        error(f"--params {params}: must be non_embedding or all")
    if metric not in METRICS:
        error(f"--metric {metric}: must be one of {', '.join(METRICS)}")
    try:
        points = load_points(table, params=params, metric=metric)
        fits = fit(points, law, bootstrap=bootstrap, seed=seed)
        report_dir = table if table.is_dir() else table.parent
        if (report_dir / "runs.parquet").is_file() and (table.is_dir() or table.name == "runs.parquet"):
            write_fits(report_dir, fits)
    except PointsError as exc:
        error(str(exc))
        return
    if as_json:
        print(dumps(fits_json(fits), indent=1))
        return
    for f in fits:
        head = f"{f.law}" + (f", N = {f.group:.4g}" if f.group is not None else "")
        consts = ", ".join(f"{k} = {v:.4g}" + (f" [{f.ci[k][0]:.4g}, {f.ci[k][1]:.4g}]" if k in f.ci else "")
                           for k, v in f.constants.items())
        console.print(f"{head}: {consts}; R² (log loss) {f.r2:.4f}, {f.n_points} points", highlight=False)
        if f.backtest is not None:
            bt = f.backtest.to_json()
            console.print(f"  backtest: {f.backtest.rule}; relative error max {bt['max_rel_error']:.2%}, "
                          f"mean {bt['mean_rel_error']:.2%}", highlight=False)
        for note in f.notes:
            console.print(f"  note: {escape(note)}", highlight=False)


def _load_fit(fit_path: Optional[Path], published: Optional[str]) -> dict:
    """Constants (and bootstrap samples, if any) of a Chinchilla-type fit for predict / optimal."""
    import json

    from scalelab.orchestrator.scaling.optimal import BESIROGLU_2024, HOFFMANN_2022

    if published is not None:
        table = {"hoffmann": HOFFMANN_2022, "besiroglu": BESIROGLU_2024}
        if published not in table:
            fail(f"--published {published}: must be hoffmann or besiroglu")
        return {"law": "chinchilla", **table[published], "samples": []}
    if fit_path is None:
        fail("give --fit (a report folder with fits.json, or a fits.json) or --published hoffmann|besiroglu")
    path = fit_path / "fits.json" if fit_path.is_dir() else fit_path
    if not path.is_file():
        fail(f"{path}: not found (run `scalelab report` or `scalelab scaling fit` on the report folder first)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        fail(f"{path}: not readable JSON ({' '.join(str(exc).split())})")
    if not isinstance(doc, dict):
        fail(f"{path}: not a fits.json (expected an object of fits by law)")
    for law in ("chinchilla", "data-constrained"):
        entries = doc.get(law)
        if not entries:
            continue
        fit = entries[0] if isinstance(entries, list) and isinstance(entries[0], dict) else {}
        needed = ("E", "A", "B", "alpha", "beta") + (("R_star",) if law == "data-constrained" else ())
        bad = [k for k in needed if not isinstance(fit.get(k), (int, float)) or isinstance(fit.get(k), bool)]
        if bad:
            fail(f"{path}: the {law} fit lacks a numeric {', '.join(bad)}")
        samples = fit.get("samples") if isinstance(fit.get("samples"), list) else []
        fit["samples"] = [s for s in samples if isinstance(s, dict) and all(isinstance(s.get(k), (int, float)) for k in needed)]
        fit["law"] = law
        return fit
    fail(f"{path}: holds no chinchilla or data-constrained fit (fit one with --law chinchilla)")


@scaling_app.command("predict")
def scaling_predict(
    params: float = typer.Option(..., "--params", help="N, counted as the fit counted it."),
    tokens: float = typer.Option(..., "--tokens", help="D, unique training tokens."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over D (data-constrained fits)."),
    fit_path: Optional[Path] = typer.Option(None, "--fit", help="Report folder or fits.json."),
    published: Optional[str] = typer.Option(None, "--published", help="hoffmann or besiroglu constants instead of a fit."),
) -> None:
    """Loss at N parameters and D tokens, with the bootstrap interval of the fit."""
    import numpy as np

    from scalelab.orchestrator.scaling.laws import predict_loss

    if params <= 0 or tokens <= 0 or epochs <= 0:
        fail("--params, --tokens and --epochs must be positive")
    c = _load_fit(fit_path, published)
    law = c["law"]
    value = float(predict_loss(law, c, params, tokens, epochs))
    samples = [float(predict_loss(law, s, params, tokens, epochs)) for s in c.get("samples", [])]
    interval = ""
    if samples:
        lo, hi = np.percentile(samples, [2.5, 97.5])
        interval = f", 95% interval [{lo:.4f}, {hi:.4f}] from {len(samples)} bootstrap fits"
    console.print(f"{law}: loss at N = {params:.4g}, D = {tokens:.4g}: {value:.4f}{interval}")


@scaling_app.command("optimal")
def scaling_optimal(
    flops: float = typer.Option(..., "--flops", help="Training compute C (C ≈ 6ND)."),
    fit_path: Optional[Path] = typer.Option(None, "--fit", help="Report folder or fits.json."),
    published: Optional[str] = typer.Option(None, "--published", help="hoffmann or besiroglu constants instead of a fit."),
) -> None:
    """Compute-optimal N and D for a budget, from a Chinchilla fit."""
    from scalelab.orchestrator.scaling.optimal import compute_optimal

    if flops <= 0:
        fail("--flops must be positive")
    o = compute_optimal(_load_fit(fit_path, published), flops)
    console.print(f"C = {flops:.3g} FLOPs: N = {o['params']:.4g} parameters, D = {o['tokens']:.4g} tokens "
                  f"({o['tokens_per_param']:.1f} tokens per parameter), predicted loss {o['loss']:.4f}; "
                  f"N ∝ C^{o['n_exponent']:.3f}, D ∝ C^{o['d_exponent']:.3f}")


def _print_isoflop(rep) -> None:
    """Approach 2's minimum per budget (approach 3's beside it) and its power laws."""
    third = {r.budget: r for r in rep.comparison.rows} if rep.comparison else {}
    for b in rep.fit.budgets:
        ci = f" [{b.params_ci[0]:,.0f}, {b.params_ci[1]:,.0f}]" if b.params_ci else ""
        other = f"; approach 3: N = {third[b.budget].params_approach3:,.0f}" if b.budget in third else ""
        console.print(f"IsoFLOP C = {b.budget:.3g}: N* = {b.params_opt:,.0f}{ci}, D* = {b.tokens_opt:,.0f}, "
                      f"L* = {b.loss_opt:.4f}{' (extrapolated)' if b.extrapolated else ''}{other}")
    for name, law in (("N*", rep.fit.params_law), ("D*", rep.fit.tokens_law)):
        if law is not None:
            ci = f" [{law.exponent_ci[0]:.3f}, {law.exponent_ci[1]:.3f}]" if law.exponent_ci else ""
            console.print(f"IsoFLOP {name} = {law.coefficient:.4g}·C^{law.exponent:.3f}{ci}")
    for note in rep.fit.notes:
        console.print(f"note: IsoFLOP: {note}")


@app.command("report")
def report_cmd(
    reports: Path = typer.Argument(Path("out/sweeps/demo"), help="A sweep's report folder."),
    bootstrap: int = typer.Option(100, "--bootstrap", min=0),
    params: str = typer.Option("non_embedding", "--params", help="Which N: non_embedding or all."),
    metric: str = typer.Option("bpb", "--metric", help="Best validation loss in bpb (bits per byte) or nats (per token)."),
) -> None:
    """Fit L(D) (and L(N, D)), plot, and write REPORTS/report.html."""
    from scalelab.orchestrator.scaling.points import METRICS, PointsError
    from scalelab.orchestrator.scaling.report import make_report

    if metric not in METRICS:
        fail(f"--metric {metric}: must be one of {', '.join(METRICS)}")
    try:
        rep = make_report(reports, bootstrap=bootstrap, params=params, metric=metric)
    except PointsError as exc:
        fail(str(exc))
        return
    from rich.table import Table

    console.print("[bold]The answer[/bold]")
    for line in rep.answers:
        console.print(f"- {line}")
    table = Table(title="best validation loss by data size D and model size N", title_justify="left")
    for col in ("D (unique tokens)", f"N ({rep.points.n_kind.replace('_', '-')})", rep.points.loss_kind):
        table.add_column(col, justify="right")
    order = sorted(range(len(rep.points)), key=lambda i: (rep.points.params[i], rep.points.tokens[i]))
    for i in order:
        table.add_row(f"{rep.points.tokens[i]:,.0f}", f"{rep.points.params[i]:,.0f}", f"{rep.points.loss[i]:.4f}")
    console.print(table)
    for f in rep.data_fits:
        ci = f.ci
        console.print(f"L(D) at N = {f.group:,.0f}: E = {f.constants['E']:.3f}, B = {f.constants['B']:.4g}, "
                      f"beta = {f.constants['beta']:.3f}" + (f" [{ci['beta'][0]:.3f}, {ci['beta'][1]:.3f}]" if "beta" in ci else "")
                      + f", R² {f.r2:.4f}")
    if rep.isoflop:
        _print_isoflop(rep.isoflop)
    for note in rep.all_notes:
        console.print(f"note: {note}")
    for name, path in rep.plots.items():
        console.print(f"plot: {path}")
    console.print(f"report: {rep.html}")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
