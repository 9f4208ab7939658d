"""What every command shares: the consoles, `fail` (one line on stderr, then exit) and Arrow tables
printed as rich tables."""

from __future__ import annotations

import sys

import pyarrow as pa
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Piped into a log or a file, rich would assume 80 columns and squeeze the tables; allow wider lines.
console = Console() if sys.stdout.isatty() else Console(width=140)
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    # Messages quote user input ("models=[foo]"): escape it so rich doesn't read it as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_table(table: pa.Table, title: str = "") -> None:
    out = Table(title=title or None, title_justify="left")
    for name in table.column_names:
        out.add_column(name, justify="left" if str(table.schema.field(name).type) == "string" else "right")
    for row in table.to_pylist():
        out.add_row(*[f"{v:.6g}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row.values()])
    console.print(out)
