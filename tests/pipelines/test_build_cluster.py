"""The build on a three-node Ray cluster gives the same bytes as an embedded single-node build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalelab.pipelines.build import build_corpus
from tests.conftest import REPO
from tests.pipelines.test_build import folder_bytes, sample_config


@pytest.fixture(scope="module")
def three_nodes():
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.slow
def test_three_nodes_match_an_embedded_build(three_nodes, tmp_path):
    import ray

    overrides = ["output.num_partitions=4"]
    # Joins the cluster the way `--address` does, shipping scalelab's packages in the runtime env.
    result = build_corpus(sample_config(*overrides), tmp_path / "cluster", address=three_nodes.address)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 3
    assert result.stats.balanced()

    # The reference: the CLI with its own embedded Ray (one node, two workers), in a fresh process.
    env = {**os.environ, "RAY_ADDRESS": ""}
    cmd = [sys.executable, "-m", "scalelab.cli", "corpus", "build", str(REPO / "configs/corpus/sample.yaml"),
           "--out", str(tmp_path / "local")] + [a for o in overrides for a in ("--set", o)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for folder in ("documents", "stats", "shards"):
        assert folder_bytes(tmp_path / "cluster", folder) == folder_bytes(tmp_path / "local", folder), folder
    assert len(folder_bytes(tmp_path / "cluster", "documents")) == 4


def test_a_crawl_runs_on_a_cluster_one_actor_per_host(three_nodes, tmp_path):
    import pyarrow.parquet as pq

    from scalelab.pipelines.crawl.config import load_crawl_config
    from scalelab.pipelines.crawl.crawl import run_crawl
    from scalelab.pipelines.crawl.host_fetcher import owner_of
    from tests.pipelines.crawl_site import FETCHED, start_site

    sites = [start_site() for _ in range(3)]
    try:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text("".join(s.base + "/\n" for s in sites))
        cfg = load_crawl_config(None, ["scope.allow_private_networks=true", "politeness.delay_s=0.05", "limits.max_depth=2", "limits.timeout_s=1",
                                       "limits.max_page_bytes=100k", "ray.num_actors=3"])
        result = run_crawl(cfg, seeds, tmp_path / "crawl", address=three_nodes.address)
        assert result.totals["fetched"] == 3 * len(FETCHED)
        log = pq.read_table(tmp_path / "crawl" / "crawl_log.parquet").to_pylist()
        for s in sites:
            assert sorted(p for p in s.paths() if p in FETCHED) == sorted(FETCHED)   # each page once
            assert {r["actor"] for r in log if r["host"] == s.host and r["kind"] == "page"} == {owner_of(s.host, 3)}
    finally:
        for s in sites:
            s.close()


def test_a_worker_killed_in_the_filter_stage_changes_nothing(three_nodes, sample_corpus, tmp_path, monkeypatch):
    """A process-phase worker SIGKILLs itself with its unit's output half-written (a node dying):
    Ray retries the unit and the build's bytes are those of an undisturbed build."""
    import ray

    from scalelab.core.build_units import Phase

    marker = tmp_path / "fired"
    monkeypatch.setenv("SCALELAB_PIPELINE_FAULT", "process:unit-00002:kill")
    monkeypatch.setenv("SCALELAB_PIPELINE_FAULT_MARKER", str(marker))
    ray.shutdown()  # join again, so the fault hook travels to the workers in the runtime env
    try:
        result = build_corpus(sample_config(), tmp_path / "out", address=three_nodes.address, log=lambda m: None)
    finally:
        ray.shutdown()
    assert marker.exists() and "pid" in marker.read_text()
    assert Phase(tmp_path / "out", "process").is_done("unit-00002")
    assert result.stats.balanced()
    for folder in ("documents", "stats", "shards"):
        assert folder_bytes(tmp_path / "out", folder) == folder_bytes(sample_corpus, folder), folder


def test_every_node_gets_the_scalelab_the_driver_ships(three_nodes):
    """`ensure_ray(address)` ships this process's `scalelab` package in the runtime env (py_modules):
    each node unpacks the same code into Ray's runtime resources and puts it on its workers' path.
    (On one machine the driver's own path also reaches the workers; on separate machines, where
    the checkout does not exist, the shipped copy is the one imported.)"""
    import hashlib

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from scalelab.core.ray_session import ensure_ray

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    @ray.remote(num_cpus=1)
    def shipped() -> tuple[str, list[str]]:
        import sys

        copies = [Path(p) / "scalelab" / "pipelines" / "build.py" for p in sys.path if "py_modules" in p]
        return ray.get_runtime_context().get_node_id(), [digest(c) for c in copies if c.is_file()]

    ray.shutdown()
    try:
        ensure_ray(three_nodes.address)
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        found = ray.get([shipped.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
                         for n in nodes])
    finally:
        ray.shutdown()
    assert len(nodes) == 3 and sorted(node for node, _ in found) == sorted(nodes)
    ours = digest(REPO / "scalelab" / "pipelines" / "build.py")
    for node, digests in found:
        assert digests == [ours], node
