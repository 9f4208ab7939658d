"""Readers on every real (and deliberately broken) archive, and on JSONL and Parquet files."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from scalelab.pipelines.config import ExtractConfig, InputSpec
from scalelab.pipelines.inputs import resolve_inputs
from scalelab.pipelines.readers import read_input
from tests.conftest import DATA, SAMPLE

WARCS = sorted(p.name for p in (DATA / "warc").iterdir())


def read_all(path, **spec) -> list[dict]:
    files = resolve_inputs([InputSpec(path=str(path), **spec)])
    return [d for f in files for d in read_input(f, ExtractConfig())]


@pytest.mark.parametrize("name", WARCS)
def test_every_archive_reads_through(name):
    docs = read_all(DATA / "warc" / name, type="warc")
    assert docs, name
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)), "ids must be unique within a file"
    for d in docs:
        # Each record is either a document for the steps, or already counted under a reason.
        assert (d["raw"] is not None) or d["drop_reason"] is not None or d["text"] is not None


def test_truncated_gzip_keeps_records_before_the_break():
    docs = read_all(DATA / "warc" / "example-bad.warc.gz.bad", type="warc")
    reasons = Counter(d["drop_reason"] for d in docs)
    assert reasons["unreadable_record"] == 1
    assert len(docs) >= 2  # the warcinfo record before the break, then the unreadable tail
    assert "gzip" in docs[-1]["drop_detail"].lower() or "record" in docs[-1]["drop_detail"].lower()


def test_arc_files_give_responses():
    docs = read_all(DATA / "warc" / "example.arc.gz")
    pages = [d for d in docs if d["drop_reason"] is None]
    assert pages and pages[0]["url"].startswith("http://") and pages[0]["date"]
    assert b"<html" in pages[0]["raw"].lower()


@pytest.mark.parametrize("name", ["bad_http_chunked_content.warc", "not_utf8_http_header.warc",
                                  "missing-status-text.warc", "long_url.warc"])
def test_malformed_http_still_gives_a_document_or_a_reason(name):
    docs = read_all(DATA / "warc" / name)
    assert len(docs) == 1
    d = docs[0]
    assert d["raw"] is not None or d["drop_reason"] in ("unreadable_record", "http_status")


def test_request_and_metadata_records_are_counted_not_lost():
    docs = read_all(DATA / "warc" / "example.warc.gz")
    reasons = Counter((d["drop_reason"], d["drop_detail"]) for d in docs)
    assert reasons[("not_a_document", "request")] >= 1
    assert reasons[("not_a_document", "warcinfo")] == 1


def test_ids_are_stable_and_independent_of_location(tmp_path):
    a = [d["id"] for d in read_all(DATA / "warc" / "example.warc.gz")]
    (tmp_path / "warc").mkdir()
    (tmp_path / "warc" / "example.warc.gz").write_bytes((DATA / "warc" / "example.warc.gz").read_bytes())
    b = [d["id"] for d in read_all(tmp_path / "warc" / "example.warc.gz")]
    assert a == b


def test_jsonl_plain_gzip_and_zstd(tmp_path):
    rows = [{"id": "a", "text": "first document", "url": "http://x/a"}, {"id": "b", "text": "second"},
            {"id": "c", "body": "no text field"}, {"id": "d", "text": 42}]
    lines = "\n".join(json.dumps(r) for r in rows) + "\nnot json at all\n\n[1, 2]\n"
    (tmp_path / "a.jsonl").write_text(lines)
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(lines)
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines.encode()))
    for name in ("a.jsonl", "b.jsonl.gz", "c.jsonl.zst"):
        docs = read_all(tmp_path / name, id_field="id", url_field="url")
        assert [d["source_id"] for d in docs[:2]] == ["a", "b"]
        assert docs[0]["text"] == "first document" and docs[0]["url"] == "http://x/a"
        reasons = Counter(d["drop_reason"] for d in docs)
        assert reasons == {None: 2, "unreadable_record": 4}, name


def test_truncated_jsonl_gzip_counts_the_tail(tmp_path):
    data = gzip.compress(("\n".join(json.dumps({"text": f"doc {i} " * 50}) for i in range(2000))).encode())
    (tmp_path / "t.jsonl.gz").write_bytes(data[: len(data) // 2])
    docs = read_all(tmp_path / "t.jsonl.gz")
    assert docs[-1]["drop_reason"] == "unreadable_record"
    assert sum(d["drop_reason"] is None for d in docs) > 100


def test_parquet_with_named_fields(tmp_path):
    table = pa.table({"content": ["one", "two", None], "doc_id": ["x1", "x2", "x3"], "n": [1, 2, 3]})
    pq.write_table(table, tmp_path / "d.parquet")
    docs = read_all(tmp_path / "d.parquet", text_field="content", id_field="doc_id")
    assert [(d["source_id"], d["text"], d["drop_reason"], d["metadata"]) for d in docs] == [
        ("x1", "one", None, '{"n":1}'), ("x2", "two", None, '{"n":2}'), ("x3", None, "unreadable_record", '{"n":3}')]


def test_html_and_text_files():
    docs = read_all(DATA / "handbook")
    assert len(docs) == len(list((DATA / "handbook").glob("*.html")))
    assert all(d["content_type"] == "text/html" and d["url"].startswith("handbook/") for d in docs)


def record_spans(path) -> list[tuple[int, int]]:
    """(offset, length) of every record of a whole archive, as warcio frames them."""
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as fh:
        it = ArchiveIterator(fh, arc2warc=True)
        spans = []
        for r in it:
            r.content_stream().read()
            spans.append((it.get_record_offset(), it.get_record_length()))
    return spans


def cut_in_half(src, tmp_path):
    """A copy of `src` with only its first half, in a folder of the same name (so the same key and ids)."""
    folder = tmp_path / src.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    data = src.read_bytes()
    (folder / src.name).write_bytes(data[: len(data) // 2])
    return folder / src.name, len(data) // 2


@pytest.mark.parametrize("name", ["iana.warc.gz", "at.warc.gz", "at.warc", "example.arc.gz"])
def test_a_record_cut_short_is_unreadable_and_the_records_before_it_are_kept(name, tmp_path):
    from scalelab.pipelines.readers.common import document_id

    src = SAMPLE / name if name == "iana.warc.gz" else DATA / "warc" / name
    whole = {d["id"]: d for d in read_all(src)}
    cut_path, cut = cut_in_half(src, tmp_path)
    docs = read_all(cut_path)
    key = resolve_inputs([InputSpec(path=str(cut_path))])[0].key
    spans = record_spans(src)
    before = [document_id(key, o) for o, n in spans if o + n <= cut]
    cut_record = next(document_id(key, o) for o, n in spans if o < cut < o + n)
    # Every whole record before the cut reads exactly as in the whole file ...
    assert [d["id"] for d in docs] == before + [cut_record]
    for d in docs[:-1]:
        assert (d["drop_reason"], d["raw"]) == (whole[d["id"]]["drop_reason"], whole[d["id"]]["raw"])
    # ... and the record the cut falls in is counted, not kept as a shorter document.
    last = docs[-1]
    assert last["drop_reason"] == "unreadable_record" and "missing (file cut short)" in last["drop_detail"]
    assert last["url"] == whole[cut_record]["url"]


def test_a_cut_gzip_text_file_is_one_unreadable_record(tmp_path):
    cut_path, _ = cut_in_half(SAMPLE / "texts" / "hamlet_gut.txt.gz", tmp_path)
    [doc] = read_all(cut_path)
    assert doc["drop_reason"] == "unreadable_record" and doc["raw"] is None
    assert "EOFError" in doc["drop_detail"] and doc["raw_bytes"] > 50_000   # what did decompress, counted


@pytest.mark.parametrize("suffix", ["gz", "zst"])
def test_a_cut_compressed_jsonl_keeps_whole_lines_and_counts_the_rest(suffix, tmp_path):
    lines = [json.dumps({"text": f"doc {i} " * 50}) for i in range(2000)]
    raw = "\n".join(lines).encode()
    data = gzip.compress(raw) if suffix == "gz" else zstandard.ZstdCompressor().compress(raw)
    (tmp_path / f"t.jsonl.{suffix}").write_bytes(data[: len(data) // 2])
    docs = read_all(tmp_path / f"t.jsonl.{suffix}")
    kept = [d for d in docs if d["drop_reason"] is None]
    assert [d["text"] for d in kept] == [json.loads(ln)["text"] for ln in lines[: len(kept)]]   # whole lines only
    assert docs[-1]["drop_reason"] == "unreadable_record" and "EOFError" in docs[-1]["drop_detail"]
    assert len(docs) == len(kept) + 1 and len(kept) > 100


def test_the_inputs_own_ids_and_other_fields_are_kept(tmp_path):
    import datetime as dt
    from decimal import Decimal

    rows = [{"id": 7, "text": "seven", "tags": ["a", "ü"], "meta": {"k": None}, "score": float("nan")},
            {"text": "no id", "url": "http://x/2"}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    a, b = read_all(tmp_path / "a.jsonl", url_field="url")
    assert (a["source_id"], a["metadata"]) == ("7", '{"meta":{"k":null},"score":null,"tags":["a","ü"]}')
    assert (b["source_id"], b["metadata"]) == (None, None)      # a field called `id` is the default id field
    assert a["id"] != "7" and len({a["id"], b["id"]}) == 2       # the build's id stays its own
    table = pa.table({"text": ["t"], "at": [dt.datetime(2024, 5, 1, 12, 0)], "price": pa.array([Decimal("1.50")]),
                      "blob": [b"\x00\xff"]})
    pq.write_table(table, tmp_path / "p.parquet")
    [p] = read_all(tmp_path / "p.parquet")
    assert json.loads(p["metadata"]) == {"at": "2024-05-01T12:00:00", "blob": "AP8=", "price": "1.50"}
    [off] = read_all(tmp_path / "p.parquet", metadata=False)
    assert off["metadata"] is None


def test_warc_record_ids_are_source_ids_and_arc_has_none():
    from warcio.archiveiterator import ArchiveIterator

    with open(DATA / "warc" / "example.warc.gz", "rb") as fh:
        record_ids = [r.rec_headers.get_header("WARC-Record-ID") for r in ArchiveIterator(fh)]
    docs = read_all(DATA / "warc" / "example.warc.gz")
    assert [d["source_id"] for d in docs] == record_ids
    response = next(d for d in docs if d["drop_reason"] is None)
    meta = json.loads(response["metadata"])
    assert meta["WARC-Type"] == "response" and "WARC-Record-ID" not in meta and "WARC-Payload-Digest" in meta
    # warcio makes up a random id for each ARC record: not the input's, so none is kept.
    arc = [read_all(DATA / "warc" / "example.arc.gz") for _ in range(2)]
    assert all(d["source_id"] is None for d in arc[0])
    assert [d["metadata"] for d in arc[0]] == [d["metadata"] for d in arc[1]]
