"""`scalelab crawl`: seed URLs into WARC files, politely and resumably."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from scalelab.cli.common import console, fail
from scalelab.core.config import ConfigError
from scalelab.core.output_folder import OutputFolderError

# The domain packages load torch, DeepSpeed and Ray: they are imported inside each command, so
# `scalelab --help` and a mistyped flag answer at once.


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
