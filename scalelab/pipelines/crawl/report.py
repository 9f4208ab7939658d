"""The totals a crawl prints at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_totals(totals: dict[str, Any], console: Console, title: str = "crawl") -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("URLs", justify="right")
    table.add_row("fetched (a response in the WARCs)", f"{totals['fetched']:,}")
    table.add_row("  2xx", f"{totals['fetched_ok']:,}")
    table.add_row("  redirects", f"{totals['redirects']:,}")
    table.add_row("  body bytes", f"{totals['bytes']:,}")
    table.add_row("skipped by robots.txt", f"{totals['skipped_robots']:,}")
    table.add_row("skipped: content type", f"{totals['skipped_content_type']:,}")
    table.add_row("refused: private address", f"{totals.get('refused_private_address', 0):,}")
    table.add_row("out of scope", f"{totals['out_of_scope']:,}")
    for reason, n in totals["out_of_scope_by_reason"].items():
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("failed", f"{totals['failed']:,}")
    for reason, n in totals["failed_by_reason"].items():
        table.add_row(f"  {reason}", f"{n:,}")
    if totals["invalid_seeds"]:
        table.add_row("seed lines that are not URLs", f"{totals['invalid_seeds']:,}")
    table.add_row("left in the frontier (limits)", f"{totals['left_in_frontier']:,}")
    console.print(table)
