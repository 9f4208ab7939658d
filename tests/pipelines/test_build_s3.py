"""Corpus builds in S3-compatible object storage, against a real S3 server on loopback (moto in
server mode, reached over HTTP by s3fs and by every Ray worker): inputs read from s3://, a build
written to s3:// equal byte for byte to a local build of the same data, the CLI's status, stats
and verify on a URL, the claim rules on a prefix, and resume after a failed unit. (The layer
itself: tests/test_storage.py; a cluster sharing a bucket: test_build_cluster_s3.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalelab.cli import app
from scalelab.core.build_units import BuildError, Phase
from scalelab.core.storage import Location
from scalelab.pipelines import build_outputs
from scalelab.pipelines.build import build_corpus
from scalelab.pipelines.config import CorpusConfig
from tests.conftest import REPO, SAMPLE
from tests.pipelines.test_build import sample_config
from tests.pipelines.test_build_resume import texts_config
from tests.s3_server import S3Server, local_s3

runner = CliRunner()
SAME = ("documents", "stats", "shards")
# The user's objects in the output prefix (as in tests/test_safety.py), some beside the build's own.
USER_FILES = {"paper.tex": "\\documentclass{article}", "documents/notes.txt": "my notes",
              "documents/part-x.parquet": "not a partition of a build", "shards/README": "my shards"}


@pytest.fixture(scope="module")
def s3():
    with local_s3() as server:
        yield server


@pytest.fixture(scope="module")
def ray_s3(s3):
    """A local Ray started after the S3 variables are set, so its workers reach the server too."""
    import ray

    from scalelab.core.ray_session import quiet_ray_data

    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    quiet_ray_data()
    yield s3
    ray.shutdown()


def upload_sample(s3: S3Server) -> None:
    """The sample's inputs under s3://BUCKET/data/sample/, as they lie under data/sample/."""
    for path in [SAMPLE / "handbook.warc.gz", SAMPLE / "iana.warc.gz", *sorted((SAMPLE / "texts").glob("*.txt.gz"))]:
        s3.upload(path, f"data/{path.relative_to(SAMPLE.parent)}")


def on_s3(cfg: CorpusConfig, s3: S3Server) -> CorpusConfig:
    """The config with each input read from the bucket instead of the repository."""
    inputs = [i.model_copy(update={"path": s3.url("data/" + str(Path(i.path).relative_to(SAMPLE.parent)))})
              for i in cfg.inputs]
    return cfg.model_copy(update={"inputs": inputs})


def objects(out: str, folder: str) -> dict[str, bytes]:
    """The files a build wrote in OUT/folder (on S3 or local), by name."""
    return {p.name: p.read_bytes() for p in (Location.of(out) / folder).files()
            if build_outputs.is_build_file(folder, p.name)}


def without_inputs(manifest: bytes) -> dict:
    """A manifest less what names the inputs' location (the config, and its hash)."""
    return {k: v for k, v in json.loads(manifest).items() if k not in ("config", "config_hash")}


def test_the_cli_builds_from_s3_into_a_users_prefix_the_bytes_of_a_local_build(sample_corpus, ray_s3, tmp_path,
                                                                              monkeypatch):
    """`corpus build CONFIG --input s3://... --out s3://...`: refused in a prefix holding the user's
    objects, written beside them with --overwrite, equal byte for byte to a local build; then
    verified, inspected and resumed where it lies."""
    s3 = ray_s3
    upload_sample(s3)
    out = s3.url("builds/sample")
    for name, text in USER_FILES.items():
        (Location.of(out) / name).write_text(text)
    inputs = [a for i in on_s3(sample_config(), s3).inputs for a in ("--input", i.path)]
    build = ["corpus", "build", str(REPO / "configs/corpus/sample.yaml"), *inputs, "--out", out]
    monkeypatch.chdir(tmp_path)  # nothing of the build may land in the working directory

    res = runner.invoke(app, build)
    assert res.exit_code != 0 and "not created by scalelab" in res.output and "--overwrite" in res.output
    res = runner.invoke(app, [*build, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert list(tmp_path.iterdir()) == []
    for name, text in USER_FILES.items():
        assert (Location.of(out) / name).read_text() == text, name
    for folder in SAME:
        assert objects(out, folder) and objects(out, folder) == objects(str(sample_corpus), folder), folder
    remote, local = Location.of(out), Location.of(sample_corpus)
    assert (remote / "tokenizer.json").read_bytes() == (local / "tokenizer.json").read_bytes()
    assert without_inputs((remote / "manifest.json").read_bytes()) == without_inputs((local / "manifest.json").read_bytes())

    res = runner.invoke(app, ["corpus", "verify", out])
    assert res.exit_code == 0 and "all match" in res.output, res.output
    res = runner.invoke(app, ["corpus", "status", out])
    assert res.exit_code == 0 and "finished" in res.output, res.output
    res = runner.invoke(app, ["corpus", "stats", out])
    assert res.exit_code == 0 and "training tokens per scale" in res.output, res.output

    # A rerun finds every unit done in the bucket and changes nothing.
    before = {folder: objects(out, folder) for folder in SAME}
    again = build_corpus(on_s3(sample_config(), s3), out, log=lambda m: None)
    assert again.resumed_units == {p: len(Phase(out, p).units()) for p in again.resumed_units}
    assert {folder: objects(out, folder) for folder in SAME} == before


def test_a_failed_unit_in_s3_keeps_finished_units_and_a_rerun_completes(ray_s3, tmp_path):
    """Units finished in the bucket stay done when another fails; the rerun does the rest and
    gives the bytes of a local build that never stopped."""
    import ray

    texts = tmp_path / "texts"
    shutil.copytree(REPO / "data/sample/texts", texts)
    quick = ("shards.enabled=false", "dedup.minhash.enabled=false")
    reference = tmp_path / "reference"
    build_corpus(texts_config(texts, *quick), reference, log=lambda m: None)

    out = ray_s3.url("builds/resumed")
    ray.shutdown()  # workers read the fault hook from their environment
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"SCALELAB_PIPELINE_FAULT": "exact_dedup:part-00001:enospc"}})
    try:
        with pytest.raises(BuildError, match=r"exact_dedup unit part-00001 failed: OSError: .*No space left"):
            build_corpus(texts_config(texts, *quick), out, log=lambda m: None)
    finally:
        ray.shutdown()
    assert Phase(out, "process").complete() and not Phase(out, "exact_dedup").complete()
    exact_done = len((Location.of(out) / "phase" / "exact_dedup").glob("*.done.json"))

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    result = build_corpus(texts_config(texts, *quick), out, log=lambda m: None)
    assert result.resumed_units["process"] == len(Phase(out, "process").units())
    assert result.resumed_units["exact_dedup"] == exact_done
    for folder in ("documents", "stats"):
        assert objects(out, folder) and objects(out, folder) == objects(str(reference), folder), folder
