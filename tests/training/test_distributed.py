"""scalelab.training.distributed: the one way into torch.distributed."""

from __future__ import annotations

import os
import subprocess
import sys

from scalelab.training.config import REPO

INIT_ONE = "from scalelab.training.distributed import init_distributed; d = init_distributed(); print('world', d.world_size)"


def test_init_ignores_a_stale_deepspeed_build_lock(tmp_path):
    """A worker killed while DeepSpeed compiled its shared-memory op leaves `lock` behind; DeepSpeed
    would wait on it forever at every later init. Ours never builds that op, so it starts at once."""
    extensions = tmp_path / "torch_extensions"
    stale = extensions / "deepspeed_shm_comm"
    stale.mkdir(parents=True)
    (stale / "lock").touch()
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(extensions), "PYTHONPATH": str(REPO)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", INIT_ONE], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "world 1" in done.stdout
    assert sorted(p.name for p in stale.iterdir()) == ["lock"]  # nothing was compiled
