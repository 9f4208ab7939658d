from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
SAMPLE = REPO / "data" / "sample"


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray per test module: start-ups cost seconds each."""
    import ray

    from scalelab.ray_session import quiet_ray_data

    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    quiet_ray_data()
    yield ray
    ray.shutdown()
