"""A build on a three-node Ray cluster whose nodes share only an S3 bucket (a real S3 server on
loopback) gives the same bytes as a local build: inputs read from s3://, every phase's units,
documents, stats, shards and manifest written to s3://."""

from __future__ import annotations

import pytest

from scalelab.core.storage import Location
from scalelab.pipelines.build import build_corpus
from tests.pipelines.test_build import sample_config
from tests.pipelines.test_build_s3 import SAME, objects, on_s3, upload_sample, without_inputs
from tests.s3_server import local_s3


@pytest.fixture(scope="module")
def s3_and_three_nodes():
    """The S3 server first, then the cluster: each node's processes inherit the S3 variables,
    as nodes configured for a shared bucket would have them."""
    import ray
    from ray.cluster_utils import Cluster

    with local_s3() as s3:
        if ray.is_initialized():
            ray.shutdown()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        try:
            yield s3, cluster
        finally:
            ray.shutdown()
            cluster.shutdown()


@pytest.mark.slow
def test_three_nodes_sharing_a_bucket_match_a_local_build(sample_corpus, s3_and_three_nodes, tmp_path, monkeypatch):
    import ray

    s3, cluster = s3_and_three_nodes
    upload_sample(s3)
    out = s3.url("cluster/sample")
    monkeypatch.chdir(tmp_path)
    result = build_corpus(on_s3(sample_config(), s3), out, address=cluster.address, log=lambda m: None)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 3
    assert result.stats.balanced() and list(tmp_path.iterdir()) == []
    for folder in SAME:
        assert objects(out, folder) and objects(out, folder) == objects(str(sample_corpus), folder), folder
    remote, local = Location.of(out), Location.of(sample_corpus)
    assert (remote / "tokenizer.json").read_bytes() == (local / "tokenizer.json").read_bytes()
    assert without_inputs((remote / "manifest.json").read_bytes()) == without_inputs((local / "manifest.json").read_bytes())
