"""Where a result came from: scalelab's version and, when run from a git checkout, its revision."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Optional

from scalelab import __version__

REPO = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def git_revision() -> Optional[str]:
    """HEAD of the checkout scalelab runs from (with '-dirty' if it has changes), else None."""
    if not (REPO / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def provenance() -> dict[str, Optional[str]]:
    return {"scalelab_version": __version__, "git_revision": git_revision()}
