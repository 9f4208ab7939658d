"""Ctrl-C on `scalelab corpus build` prints one line: where the build stopped, and that rerunning
the same command resumes it; no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO


def test_ctrl_c_says_where_it_stopped_and_how_to_resume(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "scalelab.cli", "corpus", "build", "configs/corpus/sample.yaml", "--out", str(out)]
    # A terminal's Ctrl-C reaches a process whose SIGINT is at its default; a test runner started in
    # the background (`make test &`) would hand down SIGINT ignored, and Python would then never raise.
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "RAY_ADDRESS": ""}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300
        while not (out / "phase" / "process" / "plan.json").is_file() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C sends the driver
        _, err = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the embedded Ray, if anything of it is left
        except ProcessLookupError:
            pass
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err[-3000:]
    assert f"stopped in phase process (" in errors[0] and f"units done) in {out}; rerun the same command to resume" \
        in errors[0], errors[0]
