"""The floor plan holds: `lint-imports` checks the contracts in pyproject.toml (cli > orchestrator >
pipelines | training > core), so CI fails on an import that points up a floor or across."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_layers_contract_is_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's scalelab, whatever is installed
    done = subprocess.run([str(lint_imports), "--config", str(REPO / "pyproject.toml"), "--no-cache"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
