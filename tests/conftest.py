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

    from scalelab.core.ray_session import quiet_ray_data

    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    quiet_ray_data()
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory) -> Path:
    """The sample corpus built once per test session with its shards (training and sweeps read it).

    Treat it as read-only: copy it before changing a file. Inside a module that holds `ray_local`
    the build uses that Ray; otherwise it starts and stops one of its own.
    """
    import ray

    from scalelab.pipelines.build import build_corpus
    from tests.pipelines.test_build import sample_config

    out = tmp_path_factory.mktemp("sample_corpus")
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        build_corpus(sample_config(), out)
    finally:
        if started:
            ray.shutdown()
    return out
