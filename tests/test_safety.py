"""Output folders scalelab did not create are never cleared or overwritten: a corpus build, a crawl,
a sweep and a training run pointed at a folder of the user's refuse it (naming the folder and
--overwrite), and with --overwrite, or on --force, only the files scalelab writes are replaced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalelab.orchestrator.sweep import run_sweep
from scalelab.orchestrator.sweep_config import load_sweep_config
from scalelab.pipelines import build_outputs
from scalelab.pipelines.crawl.config import load_crawl_config
from scalelab.pipelines.crawl.crawl import run_crawl
from scalelab.pipelines.crawl.warc_files import finalize_warcs
from scalelab.cli import app
from scalelab.core.output_folder import MARKER, OutputFolderError
from tests.conftest import DATA, REPO
from scalelab.training.config import load_train_config
from scalelab.training.launch import run_local
from scalelab.training.trainer import TrainError

runner = CliRunner()
# A small build of the nine handbook pages, through every phase to shards.
TINY = ["--set", "filters.c4.enabled=false", "--set", "filters.fineweb.enabled=false",
        "--set", "filters.gopher_quality.enabled=false", "--set", "filters.gopher_repetition.enabled=false",
        "--set", "shards.tokenizer.vocab_size=300", "--set", "shards.validation.documents=1",
        "--set", "shards.scales={2k: 2k}", "--set", "shards.shard_tokens=1k", "--set", "output.num_partitions=2"]
USER_FILES = {"documents/notes.txt": "my notes", "documents/part-x.parquet": "not a partition of a build",
              "stats/budget.csv": "a,b\n1,2\n", "shards/README": "my shards", "phase/todo.md": "- buy milk",
              "paper.tex": "\\documentclass{article}"}


def user_folder(path: Path) -> Path:
    for name, text in USER_FILES.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


def assert_user_files_intact(path: Path) -> None:
    for name, text in USER_FILES.items():
        assert (path / name).read_text() == text, name


def build_cli(out: Path, *extra: str):
    return runner.invoke(app, ["corpus", "build", "--input", str(DATA / "handbook"), "--out", str(out), *TINY, *extra])


@pytest.fixture(scope="module")
def overwritten(ray_local, tmp_path_factory) -> Path:
    """A build with --overwrite into a folder that holds the user's files."""
    out = user_folder(tmp_path_factory.mktemp("mine"))
    res = build_cli(out, "--overwrite")
    assert res.exit_code == 0, res.output
    return out


def test_a_build_refuses_a_folder_it_did_not_create(tmp_path):
    out = user_folder(tmp_path / "mine")
    res = build_cli(out)
    assert res.exit_code == 2
    message = " ".join(res.output.split())
    assert f"{out}: is not empty and was not created by scalelab" in message and "--overwrite" in message
    assert_user_files_intact(out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(USER_FILES)


def test_overwrite_writes_the_build_beside_the_users_files(overwritten):
    assert_user_files_intact(overwritten)
    assert (overwritten / MARKER).is_file()
    assert sorted(p.name for p in (overwritten / "documents").glob("part-*.parquet")) == [
        "part-00000.parquet", "part-00001.parquet", "part-x.parquet"]
    assert (overwritten / "manifest.json").is_file() and (overwritten / "shards" / "train-00000.arrow").is_file()
    # The folder is scalelab's now: the same command reruns (nothing left to do) without --overwrite.
    res = build_cli(overwritten)
    assert res.exit_code == 0, res.output
    assert_user_files_intact(overwritten)


def test_clearing_a_build_removes_only_what_a_build_writes(overwritten, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(overwritten, out)
    (out / "phase" / "process" / ".part-00000.parquet.tmp-0123abcd").write_text("a killed write")
    build_outputs.clear(out)
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert left == sorted([*USER_FILES, MARKER])
    assert_user_files_intact(out)


def test_a_crawl_refuses_a_folder_and_never_touches_other_warcs(tmp_path):
    out = tmp_path / "mine"
    (out / "warc").mkdir(parents=True)
    mine = out / "warc" / "my-archive.warc.gz"
    mine.write_bytes(b"my own crawl, from another tool")
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://127.0.0.1:9/\n")
    res = runner.invoke(app, ["crawl", str(seeds), "--out", str(out)])
    assert res.exit_code == 2 and f"{out}: is not empty and was not created by scalelab" in " ".join(res.output.split())
    assert mine.read_bytes() == b"my own crawl, from another tool"
    # What a crawl finalizes (cuts, renames, drops when uncommitted) is only its own files.
    own = out / "warc" / "crawl-000-s00abc123-00001.warc.gz.open"
    own.write_bytes(b"uncommitted")
    finalize_warcs(out / "warc", committed={})
    assert not own.exists() and mine.read_bytes() == b"my own crawl, from another tool"


def test_a_crawl_with_overwrite_and_force_keeps_other_files(ray_local, tmp_path):
    from tests.pipelines.crawl_site import start_site

    site = start_site()
    try:
        out = tmp_path / "mine"
        (out / "warc").mkdir(parents=True)
        (out / "warc" / "my-archive.warc.gz").write_bytes(b"mine")
        (out / "state").mkdir()
        (out / "state" / "notes.txt").write_text("mine")
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(f"{site.base}/\n")
        cfg = load_crawl_config(None, ["politeness.delay_s=0", "limits.max_pages=2", "limits.timeout_s=2",
                                       "ray.num_actors=1"])
        with pytest.raises(OutputFolderError, match="--overwrite"):
            run_crawl(cfg, seeds, out)
        first = run_crawl(cfg, seeds, out, overwrite=True)
        again = run_crawl(cfg, seeds, out, force=True)  # starting over clears the crawl's files only
        assert first.warc_files and again.warc_files
        assert (out / "warc" / "my-archive.warc.gz").read_bytes() == b"mine"
        assert (out / "state" / "notes.txt").read_text() == "mine"
    finally:
        site.close()


def test_a_sweep_and_a_run_refuse_a_folder_of_the_users(overwritten, tmp_path):
    reports = user_folder(tmp_path / "reports")
    cfg = load_sweep_config(REPO / "configs" / "sweep" / "sample.yaml", [
        f"corpus={overwritten}", f"output={reports}", "scales=[2k]", "models=[nano]",
        "base=null", "train={data: {seq_len: 16}}"])
    with pytest.raises(OutputFolderError, match=rf"{reports}: is not empty and was not created by scalelab.*--overwrite"):
        run_sweep(cfg)
    assert_user_files_intact(reports)
    assert not (reports / "runs").exists()

    run_dir = user_folder(tmp_path / "run")
    run_cfg = load_train_config(REPO / "configs" / "train" / "sample.yaml", [
        f"data.corpus={overwritten}", "data.scale=2k", "data.seq_len=16", "batch.micro_batch_size=2",
        "eval.tokens=null", f"output={run_dir}", "deepspeed=zero0"])
    with pytest.raises(TrainError, match=rf"{run_dir}: is not empty and was not created by scalelab.*--overwrite"):
        run_local(run_cfg, nproc=1)
    assert_user_files_intact(run_dir)
    assert not (run_dir / "run_config.json").exists()
