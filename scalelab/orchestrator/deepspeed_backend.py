"""Runs through the `deepspeed` launcher and a hostfile, for clusters without Ray: one run at a time.

Each attempt is `deepspeed --hostfile FILE --module scalelab.training.worker RUN_CONFIG --resume`; a failed
attempt is retried (from its latest checkpoint) up to `retries` times. With only this machine in the
hostfile (localhost) the launcher starts the processes itself, without ssh; with several hosts it
reaches them with pdsh over passwordless ssh, as DeepSpeed always does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from scalelab.orchestrator.plan import RunSpec, SweepError
from scalelab.orchestrator.run_state import record_attempt
from scalelab.training.distributed import free_port
from scalelab.training.launch import write_run_config

LOCAL_HOSTS = {"localhost", "127.0.0.1", socket.gethostname()}


def read_hostfile(path: str | Path) -> list[tuple[str, int]]:
    """`host slots=N` lines (comments and blank lines ignored), as DeepSpeed reads them."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"--hostfile {path}: not found")
    hosts = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        slots = [p for p in parts[1:] if p.startswith("slots=")]
        if len(parts) != 2 or not slots or not slots[0][6:].isdigit() or int(slots[0][6:]) < 1:
            raise SweepError(f"--hostfile {path}: line {number}: expected 'HOST slots=N', got {line!r}")
        hosts.append((parts[0], int(slots[0][6:])))
    if not hosts:
        raise SweepError(f"--hostfile {path}: no hosts")
    return hosts


def launch_deepspeed(spec: RunSpec, hostfile: str | Path, env: dict[str, str]) -> None:
    """One attempt of one run; raises RuntimeError when the launcher exits non-zero."""
    hosts = read_hostfile(hostfile)
    local = all(h in LOCAL_HOSTS for h, _ in hosts)
    config_path = write_run_config(spec.config)
    record_attempt(spec.run_dir, "deepspeed")
    cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--hostfile", str(hostfile),
           "--master_port", str(free_port())]
    if local:  # no ssh to this machine: the launcher starts the processes itself
        cmd += ["--master_addr", "127.0.0.1", "--no_ssh_check"]
    cmd += ["--module", "scalelab.training.worker", str(config_path), "--resume"]
    slots = sum(s for h, s in hosts if h in LOCAL_HOSTS) or hosts[0][1]
    child_env = {**os.environ, **env}
    child_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // slots)))
    log = spec.run_dir / "launcher.log"  # every attempt's output, appended
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        code = subprocess.run(cmd, env=child_env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"deepspeed launcher exited {code} (output in {log}):\n{tail}")
