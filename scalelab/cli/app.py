"""The `scalelab` command: a thin top floor. Each command group is a module of this package that
parses flags, calls the Python API of the domain packages (which users can call too) and prints."""

from __future__ import annotations

import sys

import typer

from scalelab.cli import corpus, crawl, evaluate, export, generate, query, report, scaling, sweep, train

app = typer.Typer(help="scalelab: how does loss fall as the model gets more data?", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.command("crawl")(crawl.crawl)
app.command("train")(train.train)
app.command("sweep")(sweep.sweep)
app.command("export")(export.export)
app.command("eval")(evaluate.evaluate)
app.command("generate")(generate.generate)
app.command("query")(query.query)
app.command("report")(report.report)
app.add_typer(corpus.corpus_app, name="corpus")
app.add_typer(scaling.scaling_app, name="scaling")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
