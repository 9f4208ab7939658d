"""The corpus build as a real Ray Data job on a local Ray: accounting, determinism, dedup, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from scalelab.pipelines.build import build_corpus
from scalelab.pipelines.config import CorpusConfig, InputSpec, load_corpus_config
from scalelab.pipelines.inputs import resolve_inputs
from scalelab.pipelines.readers import read_input
from scalelab.pipelines.stats import read_stats
from scalelab.cli import app
from tests.conftest import DATA, REPO, SAMPLE

SAMPLE_CONFIG = REPO / "configs" / "corpus" / "sample.yaml"


def sample_config(*overrides: str) -> CorpusConfig:
    cfg = load_corpus_config(SAMPLE_CONFIG, list(overrides))
    # The config's relative paths are relative to the repository root.
    return cfg.model_copy(update={"inputs": [i.model_copy(update={"path": str(REPO / i.path)}) for i in cfg.inputs]})


def folder_bytes(out: Path, folder: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / folder).glob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sample_build(ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    result = build_corpus(sample_config("output.write_rejected=true"), out)
    return result, out


def test_accounting_identity_per_document(sample_build):
    result, out = sample_build
    stats = result.stats
    assert stats.balanced() and stats.documents_in > 400
    # Every id a reader produced is in exactly one of documents/ and rejected/.
    cfg = sample_config()
    read_ids = [d["id"] for f in resolve_inputs(cfg.inputs) for d in read_input(f, cfg.extract)]
    kept = pq.read_table(out / "documents").column("id").to_pylist()
    rejected = pq.read_table(out / "rejected").column("id").to_pylist()
    assert len(read_ids) == stats.documents_in == len(kept) + len(rejected)
    assert sorted(read_ids) == sorted(kept + rejected)
    assert not set(kept) & set(rejected)
    # The bytes balance too: each document's payload is counted once.
    assert stats.bytes_in == stats.bytes_kept + sum(d["bytes"] for d in stats.drops)


def test_drop_table_and_reasons(sample_build):
    _, out = sample_build
    drops = pq.read_table(out / "stats" / "drops.parquet")
    assert drops.schema.names == ["stage", "reason", "documents", "bytes"]
    reasons = {(r["stage"], r["reason"]) for r in drops.to_pylist()}
    assert ("read", "not_a_document") in reasons and ("exact_dedup", "exact_duplicate") in reasons
    assert ("extract", "unsupported_content_type") in reasons  # the IANA crawl's images and CSS
    rejected = pq.read_table(out / "rejected").to_pylist()
    by_reason = {}
    for r in rejected:
        by_reason.setdefault((r["drop_stage"], r["drop_reason"]), 0)
        by_reason[(r["drop_stage"], r["drop_reason"])] += 1
    assert by_reason == {(r["stage"], r["reason"]): r["documents"] for r in drops.to_pylist()}


def test_documents_schema_and_content(sample_build):
    _, out = sample_build
    docs = pq.read_table(out / "documents")
    assert {"id", "text", "url", "lang", "lang_score", "date", "source"} <= set(docs.schema.names)
    rows = docs.to_pylist()
    assert all(r["text"] and r["lang"] for r in rows)
    langs = {r["lang"] for r in rows}
    assert {"en", "fr", "ja", "ru", "zh-cn"} <= langs
    for f in (out / "documents").glob("*.parquet"):
        ids = pq.read_table(f).column("id").to_pylist()
        assert ids == sorted(ids)


def test_exact_duplicates_keep_the_smallest_id(sample_build):
    _, out = sample_build
    docs = {r["id"]: r for r in pq.read_table(out / "documents").to_pylist()}
    dupes = [r for r in pq.read_table(out / "rejected").to_pylist() if r["drop_reason"] == "exact_duplicate"]
    # The two Milton files are byte-identical; untranslated handbook pages repeat across languages.
    assert any(r["source"].endswith("paradise_regained_gut.txt.gz") or r["source"].endswith("paradiseregained.txt.gz")
               for r in dupes)
    for r in dupes:
        assert r["cluster_id"] in docs and r["cluster_id"] < r["id"]


def test_same_config_gives_identical_bytes(sample_build, tmp_path):
    result, out = sample_build
    again = build_corpus(sample_config("output.write_rejected=true"), tmp_path / "again")
    for folder in ("documents", "rejected", "stats", "shards"):
        assert folder_bytes(out, folder) == folder_bytes(tmp_path / "again", folder), folder
    assert again.stats.summary() == result.stats.summary()


def test_warcs_read_in_parts_give_identical_bytes(sample_build, tmp_path, monkeypatch):
    from scalelab.core.build_units import PHASE_ROOT
    from scalelab.pipelines import unit_plan

    _, out = sample_build
    monkeypatch.setattr(unit_plan, "MIN_PART_BYTES", 64 * 1024)  # the sample's WARCs are small
    build_corpus(sample_config("output.write_rejected=true"), tmp_path / "parts")
    plan = json.loads((tmp_path / "parts" / PHASE_ROOT / "process" / "plan.json").read_text())
    handbook = sorted((f for u in plan["units"] for f in u["files"] if f["key"].endswith("handbook.warc.gz")),
                      key=lambda f: f["start"])
    assert len(handbook) > 2 and handbook[0]["start"] == 0 and handbook[-1]["end"] is None
    for folder in ("documents", "rejected", "stats", "shards"):
        assert folder_bytes(out, folder) == folder_bytes(tmp_path / "parts", folder), folder


def test_every_malformed_archive_runs_through(ray_local, tmp_path):
    cfg = CorpusConfig(inputs=[InputSpec(path=str(DATA / "warc"), type="warc")], shards={"enabled": False})
    result = build_corpus(cfg, tmp_path / "warcs")
    stats = result.stats
    assert stats.balanced()
    drops = {(d["stage"], d["reason"]): d["documents"] for d in stats.drops}
    assert drops[("read", "unreadable_record")] >= 1
    assert result.num_inputs == len(list((DATA / "warc").iterdir()))


def test_cut_inputs_balance_and_each_cut_record_is_unreadable(ray_local, tmp_path):
    """A real WARC and a real gzip text, each cut in half: in = kept + dropped still holds, and
    the record each cut falls in is a read/unreadable_record, not a kept document."""
    from tests.pipelines.test_readers import cut_in_half

    warc, _ = cut_in_half(SAMPLE / "iana.warc.gz", tmp_path / "in")
    text, _ = cut_in_half(SAMPLE / "texts" / "hamlet_gut.txt.gz", tmp_path / "in")
    cfg = CorpusConfig(inputs=[InputSpec(path=str(warc)), InputSpec(path=str(text))], shards={"enabled": False},
                       output={"write_rejected": True})
    result = build_corpus(cfg, tmp_path / "out")
    read = [d for f in resolve_inputs(cfg.inputs) for d in read_input(f, cfg.extract)]
    assert result.stats.balanced() and result.stats.documents_in == len(read)
    assert result.stats.bytes_in == result.stats.bytes_kept + sum(d["bytes"] for d in result.stats.drops)
    drops = {(d["stage"], d["reason"]): d["documents"] for d in result.stats.drops}
    assert drops[("read", "unreadable_record")] == 2
    unreadable = [r for r in pq.read_table(tmp_path / "out" / "rejected").to_pylist() if r["drop_reason"] == "unreadable_record"]
    assert sorted(r["source"] for r in unreadable) == ["sample/iana.warc.gz", "texts/hamlet_gut.txt.gz"]
    assert not any(r["source"] == "texts/hamlet_gut.txt.gz" for r in pq.read_table(tmp_path / "out" / "documents").to_pylist())


def test_input_ids_and_fields_round_trip_to_the_documents(ray_local, tmp_path):
    """JSONL and Parquet rows with their own ids and extra fields: each kept document carries
    the row's id as source_id and every other field in metadata; a WARC's records carry their
    WARC-Record-ID."""
    import pyarrow as pa
    from warcio.archiveiterator import ArchiveIterator

    from tests.pipelines.crawl_site import TEXT  # real paragraphs (Milton), distinct from each other

    rows = [{"id": f"j-{i}", "text": TEXT[i], "tags": ["poem", i], "origin": {"book": "PR", "n": i}} for i in range(6)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.table({"doc_id": [f"p-{i}" for i in range(6, 12)], "body": TEXT[6:12],
                             "year": [1671 + i for i in range(6)]}), tmp_path / "in" / "b.parquet")
    warc = DATA / "warc" / "example.warc.gz"
    off = {"enabled": False}
    cfg = CorpusConfig(inputs=[InputSpec(path=str(tmp_path / "in" / "a.jsonl")),
                               InputSpec(path=str(tmp_path / "in" / "b.parquet"), text_field="body", id_field="doc_id"),
                               InputSpec(path=str(warc))],
                       filters={"gopher_quality": off, "gopher_repetition": off, "c4": off, "fineweb": off},
                       dedup={"minhash": off}, shards=off, output={"write_rejected": True})
    result = build_corpus(cfg, tmp_path / "out")
    docs = {r["source_id"]: r for r in pq.read_table(tmp_path / "out" / "documents").to_pylist()}
    for r in rows:
        assert docs[r["id"]]["text"].startswith(r["text"][:40])
        assert json.loads(docs[r["id"]]["metadata"]) == {"tags": r["tags"], "origin": r["origin"]}
    for i in range(6, 12):
        assert json.loads(docs[f"p-{i}"]["metadata"]) == {"year": 1665 + i}
    assert len({r["id"] for r in docs.values()}) == len(docs) == result.stats.documents_kept
    with open(warc, "rb") as fh:
        record_ids = {r.rec_headers.get_header("WARC-Record-ID") for r in ArchiveIterator(fh)}
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    from_warc = [r["source_id"] for r in list(docs.values()) + rejected if r["source"].endswith("example.warc.gz")]
    assert sorted(from_warc) == sorted(record_ids)


def test_folder_with_unknown_files_reports_them(ray_local, tmp_path):
    result = build_corpus(CorpusConfig(inputs=[InputSpec(path=str(DATA / "warc"))], shards={"enabled": False}),
                          tmp_path / "w")
    assert [Path(p).name for p in result.skipped_files] == ["example-bad.warc.gz.bad"]
    assert json.loads((tmp_path / "w" / "build.json").read_text())["skipped_files"] == result.skipped_files


def test_partitions_spread_documents(ray_local, tmp_path):
    result = build_corpus(sample_config("output.num_partitions=3", "dedup.exact.enabled=false"), tmp_path / "p3")
    files = sorted((tmp_path / "p3" / "documents").glob("part-*.parquet"))
    assert [f.name for f in files] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert ("exact_dedup", "exact_duplicate") not in {(d["stage"], d["reason"]) for d in result.stats.drops}
    assert result.stats.balanced()


class TestCli:
    runner = CliRunner()

    def test_build_with_input_and_set_then_stats(self, ray_local, tmp_path):
        out = tmp_path / "cli"
        res = self.runner.invoke(app, ["corpus", "build", "--input", str(DATA / "handbook"), "--out", str(out),
                                       "--set", "filters.c4.enabled=false", "--set", "filters.language.keep=[en]",
                                       "--set", "shards.enabled=false"])
        assert res.exit_code == 0, res.output
        assert "holds" in res.output
        stats = read_stats(out)
        assert stats.balanced() and stats.documents_in == len(list((DATA / "handbook").glob("*.html")))
        assert {d["reason"] for d in stats.drops} >= {"lang"}
        assert not any(d["stage"] == "c4" for d in stats.drops)
        res = self.runner.invoke(app, ["corpus", "stats", str(out)])
        assert res.exit_code == 0 and "where every document went" in res.output

    def test_errors_before_any_work(self, tmp_path):
        res = self.runner.invoke(app, ["corpus", "build", "--input", "/no/such/file.warc.gz", "--out", str(tmp_path / "x")])
        assert res.exit_code == 2 and "no such file" in res.output
        assert not (tmp_path / "x").exists()
        bad = tmp_path / "bad.yaml"
        bad.write_text("inputs: [{path: x}]\nfilters: {language: {min_score: 2}}\n")
        res = self.runner.invoke(app, ["corpus", "build", str(bad)])
        assert res.exit_code == 2 and f"{bad}: filters.language.min_score: must be between 0 and 1" in res.output
        res = self.runner.invoke(app, ["corpus", "build", "--input", str(DATA / "handbook" / "en-US--sect.apt-get.html"),
                                       "--input-type", "warc"])
        assert res.exit_code == 2 and "not a WARC" in res.output
        res = self.runner.invoke(app, ["corpus", "build"])
        assert res.exit_code == 2 and "give a CONFIG" in res.output
        res = self.runner.invoke(app, ["corpus", "stats", str(tmp_path / "missing")])
        assert res.exit_code == 2 and "no build statistics" in res.output
