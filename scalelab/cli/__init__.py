"""The command line (`scalelab ...`); `scalelab.cli.app` assembles the command groups."""

from scalelab.cli.app import app, main

__all__ = ["app", "main"]
