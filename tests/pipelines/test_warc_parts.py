"""A large WARC read in parts, by several tasks, gives exactly the documents it gives read whole."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from scalelab.pipelines.config import ExtractConfig
from scalelab.pipelines.inputs import InputFile
from scalelab.pipelines.readers import read_input
from scalelab.pipelines.readers.warc_index import record_starts, split_by_bytes
from scalelab.pipelines.unit_plan import plan_read_units
from tests.conftest import DATA, REPO

SAMPLE_WARCS = [REPO / "data/sample/handbook.warc.gz", REPO / "data/sample/iana.warc.gz",
                DATA / "warc/at.warc", DATA / "warc/example.arc.gz"]


def warc_file(path: Path, index: int = 0) -> InputFile:
    st = path.stat()
    return InputFile(index=index, uri=str(path), type="warc", key=path.name, size=st.st_size, mtime=st.st_mtime)


def documents(f: InputFile) -> list[tuple]:
    cfg = ExtractConfig()
    return [(d["id"], d["raw_bytes"], d["drop_reason"], d["drop_detail"], d["raw"]) for d in read_input(f, cfg)]


def parts_of(f: InputFile, target: int) -> list[InputFile]:
    starts = record_starts(f.uri)
    assert starts is not None
    return [replace(f, start=r.start, end=r.end, read_bytes=r.read_bytes) for r in split_by_bytes(starts, target)]


@pytest.mark.parametrize("path", SAMPLE_WARCS, ids=lambda p: p.name)
def test_parts_read_exactly_the_whole_file(path):
    f = warc_file(path)
    parts = parts_of(f, target=1)  # a part a record: every cut is tried
    assert len(parts) > 1 and parts[0].start == 0 and parts[-1].end is None
    assert all(a.end == b.start for a, b in zip(parts, parts[1:]))
    assert [d for p in parts for d in documents(p)] == documents(f)


def test_a_file_cut_short_splits_and_keeps_its_accounting(tmp_path):
    cut = tmp_path / "cut.warc.gz"
    data = (REPO / "data/sample/iana.warc.gz").read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    f = warc_file(cut)
    whole = documents(f)
    assert any(d[2] == "unreadable_record" for d in whole)  # the cut record, or the cut tail
    starts = record_starts(f.uri)
    if starts is None:  # warcio could not walk past the cut: the file stays whole, nothing to compare
        pytest.skip("warcio stops at this cut")
    parts = [replace(f, start=r.start, end=r.end) for r in split_by_bytes(starts, 20_000)]
    assert len(parts) > 1
    assert [d for p in parts for d in documents(p)] == whole


def test_an_unwalkable_file_is_not_split():
    assert record_starts(str(DATA / "warc/example-bad.warc.gz.bad")) is None


def test_units_balance_parts_and_keep_file_order():
    f = warc_file(REPO / "data/sample/handbook.warc.gz")
    parts = [replace(p, index=0) for p in parts_of(f, target=50_000)]
    units = plan_read_units(parts, num_units=3)
    assert len(units) == 3
    assert sorted((p.start for u in units for p in u)) == [p.start for p in parts]
    for u in units:
        assert [p.start for p in u] == sorted(p.start for p in u)
