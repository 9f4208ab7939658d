"""core/storage.py against a real S3 server on loopback: an object store behaves as a folder for
what scalelab does with one (write whole, read, list, remove), a failed write leaves nothing,
and the claim rules (never write into what scalelab did not create) hold for a prefix."""

from __future__ import annotations

import pyarrow as pa
import pytest

from scalelab.core.atomic import atomic_path, write_json, write_parquet
from scalelab.core.output_folder import MARKER, OutputFolderError, claim
from scalelab.core.storage import Location, read_parquet
from scalelab.pipelines import build_outputs
from tests.s3_server import local_s3


@pytest.fixture(scope="module")
def s3():
    with local_s3() as server:
        yield server


def test_local_and_url_locations_name_the_same_way(tmp_path):
    local, remote = Location.of(tmp_path / "out"), Location.of("s3://bucket/corpora/out/")
    assert remote.url == "s3://bucket/corpora/out" and not remote.is_local and local.is_local
    assert str(remote / "phase" / "plan.json") == "s3://bucket/corpora/out/phase/plan.json"
    assert (remote / "stats" / "summary.json").parent == remote / "stats"
    assert (local / "a.parquet").path == tmp_path / "out" / "a.parquet"
    assert Location.of(f"file://{tmp_path}") == Location.of(tmp_path)
    assert (remote / "part-00001.parquet").stem == "part-00001"


def test_an_object_store_reads_writes_lists_and_removes(s3):
    out = Location.of(s3.url("store/basic"))
    assert not out.exists() and not out.is_dir() and out.iterdir() == []
    write_json(out / "phase" / "plan.json", {"units": [1, 2]}, indent=1)
    write_parquet(out / "stats" / "drops.parquet", pa.table({"n": [3, 1, 2]}))
    (out / "phase" / "unit-1.started").write_text("host 1\n")
    assert out.is_dir() and (out / "phase").is_dir() and (out / "phase" / "plan.json").is_file()
    assert (out / "phase" / "plan.json").read_text() == '{\n "units": [\n  1,\n  2\n ]\n}\n'
    assert [p.name for p in out.iterdir()] == ["phase", "stats"]
    assert [p.name for p in out.files()] == []
    assert [p.name for p in (out / "phase").glob("*.started")] == ["unit-1.started"]
    assert read_parquet(out / "stats" / "drops.parquet").column("n").to_pylist() == [3, 1, 2]
    assert read_parquet([out / "stats" / "drops.parquet"], filters=[("n", ">", 1)]).num_rows == 2
    (out / "phase" / "unit-1.started").unlink()
    (out / "phase" / "unit-1.started").unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError):
        (out / "phase" / "unit-1.started").unlink()
    assert [p.name for p in (out / "phase").files()] == ["plan.json"]


def test_a_failed_write_leaves_no_object(s3):
    target = Location.of(s3.url("store/failed/part-00000.parquet"))
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            pa.parquet.write_table(pa.table({"n": [1]}), tmp)
            raise RuntimeError("the worker died here")
    assert not target.exists() and not target.parent.exists()
    with atomic_path(target) as tmp:
        pa.parquet.write_table(pa.table({"n": [1]}), tmp)
    assert target.is_file() and target.read_bytes()[:4] == b"PAR1"


def test_a_prefix_of_the_users_is_refused_and_with_overwrite_only_build_objects_go(s3):
    out = Location.of(s3.url("store/mine"))
    (out / "paper.tex").write_text("\\documentclass{article}")
    (out / "documents" / "notes.txt").write_text("my notes")
    with pytest.raises(OutputFolderError, match=r"s3://scalelab-test/store/mine: is not empty .*--overwrite"):
        claim(out, "corpus build")
    claim(out, "corpus build", overwrite=True)
    assert (out / MARKER).is_file()
    claim(out, "corpus build")  # now marked: reused without --overwrite
    with pytest.raises(OutputFolderError, match="holds a scalelab corpus build, not a crawl"):
        claim(out, "crawl")

    (out / "documents" / "part-00003.parquet").write_text("a stale partition")
    (out / "shards" / "train-00000.arrow").write_text("a stale shard")
    build_outputs.clear(out)
    assert (out / "paper.tex").read_text() == "\\documentclass{article}"
    assert (out / "documents" / "notes.txt").read_text() == "my notes"
    assert not (out / "documents" / "part-00003.parquet").exists() and not (out / "shards").exists()


def test_an_object_where_the_folder_should_be_is_refused(s3):
    Location.of(s3.url("store/a-file")).write_text("not a folder")
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        claim(s3.url("store/a-file"), "corpus build")
    with pytest.raises(OutputFolderError, match=r"s3://no-such-bucket-here/out: not writable"):
        claim("s3://no-such-bucket-here/out", "corpus build")
