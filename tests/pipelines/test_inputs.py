"""Input resolution: types, globs, folders, URIs and list-of-paths files, with errors up front."""

from __future__ import annotations

import gzip

import pytest

from scalelab.pipelines.config import InputSpec
from scalelab.pipelines.inputs import InputError, infer_type, resolve_inputs
from tests.conftest import DATA, SAMPLE


@pytest.mark.parametrize("name,kind", [
    ("CC-MAIN-x.warc.gz", "warc"), ("x.warc.wet.gz", "warc"), ("x.arc", "warc"), ("x.jsonl.zst", "jsonl"),
    ("x.json.gz", "jsonl"), ("x.parquet", "parquet"), ("page.HTML", "html"), ("book.txt.gz", "text"),
    ("warc.paths.gz", "paths"), ("x.bin", None),
])
def test_infer_type(name, kind):
    assert infer_type(name) == kind


def test_glob_and_folder_are_sorted_with_relative_keys():
    files = resolve_inputs([InputSpec(path=str(SAMPLE / "texts" / "*.txt.gz"))])
    assert [f.key for f in files] == sorted(f.key for f in files)
    assert all(f.key.startswith("texts/") and f.type == "text" for f in files)
    assert [f.index for f in files] == list(range(len(files)))


def test_file_uri():
    files = resolve_inputs([InputSpec(path=f"file://{DATA / 'warc' / 'example.warc.gz'}")])
    assert len(files) == 1 and files[0].type == "warc"


def test_missing_path_is_an_error():
    with pytest.raises(InputError, match="no such file"):
        resolve_inputs([InputSpec(path="/nonexistent/crawl.warc.gz")])


def test_glob_matching_nothing_is_an_error():
    with pytest.raises(InputError, match="matches no file"):
        resolve_inputs([InputSpec(path=str(DATA / "*.nothing"))])


def test_type_that_does_not_match_the_file_is_an_error():
    with pytest.raises(InputError, match="not a WARC"):
        resolve_inputs([InputSpec(path=str(DATA / "handbook" / "en-US--sect.apt-get.html"), type="warc")])
    with pytest.raises(InputError, match="not a Parquet"):
        resolve_inputs([InputSpec(path=str(DATA / "warc" / "example.warc"), type="parquet")])
    with pytest.raises(InputError, match="not JSON Lines"):
        resolve_inputs([InputSpec(path=str(DATA / "warc" / "example.warc"), type="jsonl")])


def test_unknown_extension_needs_a_type():
    with pytest.raises(InputError, match="cannot tell the type"):
        resolve_inputs([InputSpec(path=str(DATA / "warc" / "example-bad.warc.gz.bad"))])
    assert resolve_inputs([InputSpec(path=str(DATA / "warc" / "example-bad.warc.gz.bad"), type="warc")])


def test_paths_list_like_common_crawl(tmp_path):
    listing = tmp_path / "warc.paths.gz"
    with gzip.open(listing, "wt") as f:
        f.write("example.warc.gz\nexample.arc.gz\n")
    files = resolve_inputs([InputSpec(path=str(listing), prefix=str(DATA / "warc"))])
    assert [f.key for f in files] == ["warc/example.warc.gz", "warc/example.arc.gz"]
    (tmp_path / "bad.paths").write_text("missing.warc.gz\n")
    with pytest.raises(InputError, match="no such file"):
        resolve_inputs([InputSpec(path=str(tmp_path / "bad.paths"))])


def test_no_inputs():
    with pytest.raises(InputError, match="no inputs"):
        resolve_inputs([])
