"""`scalelab sweep`: scales × sizes × seeds on Ray Train or the deepspeed launcher."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from scalelab.cli.common import console, fail
from scalelab.core.config import ConfigError
from scalelab.core.output_folder import OutputFolderError

# The domain packages load torch, DeepSpeed and Ray: they are imported inside each command, so
# `scalelab --help` and a mistyped flag answer at once.


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
