"""The near-duplicate stage inside real builds: accounting, clusters, paths, accuracy on real data."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scalelab.pipelines.build import build_corpus
from scalelab.pipelines.minhash.signatures import shingles
from tests.pipelines.test_build import folder_bytes, sample_config


def near_rejected(out: Path) -> list[dict]:
    files = sorted((out / "rejected").glob("near-*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def accuracy_build(ray_local, tmp_path_factory):
    """The sample with exact dedup off (so every copy reaches this stage) and the filters off
    (so the Shakespeare modern/Folio pairs, hard negatives, are there too)."""
    out = tmp_path_factory.mktemp("accuracy")
    cfg = sample_config("output.write_rejected=true", "dedup.exact.enabled=false", "filters.c4.enabled=false",
                        "filters.gopher_quality.enabled=false", "filters.gopher_repetition.enabled=false",
                        "filters.fineweb.enabled=false", "dedup.minhash.num_partitions=3")
    return build_corpus(cfg, out), out


def test_accounting_and_clusters(accuracy_build):
    result, out = accuracy_build
    assert result.stats.balanced()
    drops = {(d["stage"], d["reason"]): d["documents"] for d in result.stats.drops}
    dups = near_rejected(out)
    assert drops[("near_dedup", "near_duplicate")] == len(dups) > 10
    kept = {r["id"] for r in pq.read_table(out / "documents").to_pylist()}
    for r in dups:
        # Each duplicate names the survivor of its cluster, which is kept and has the smallest id.
        assert r["cluster_id"] in kept and r["cluster_id"] < r["id"] and r["id"] not in kept


def test_precision_and_recall_on_real_near_duplicates(accuracy_build):
    _, out = accuracy_build
    docs = pq.read_table(out / "documents").to_pylist() + near_rejected(out)
    sets = {d["id"]: set(shingles(d["text"], 5)) for d in docs}
    truly_duplicated = set()
    for a, b in itertools.combinations(sets, 2):
        sa, sb = sets[a], sets[b]
        if sa and sb and len(sa & sb) / len(sa | sb) >= 0.8:
            truly_duplicated |= {a, b}
    found = {r["id"] for r in near_rejected(out)} | {r["cluster_id"] for r in near_rejected(out)}
    precision = len(found & truly_duplicated) / len(found)
    recall = len(found & truly_duplicated) / len(truly_duplicated)
    assert len(truly_duplicated) > 20
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    # The hard negatives: a play in modern and in First Folio spelling is not a near-duplicate.
    folio = {d["id"] for d in docs if d["source"] and d["source"].endswith("_gut_f.txt.gz")}
    assert folio and not folio & found


def test_component_statistics_in_the_build_summary(accuracy_build):
    result, out = accuracy_build
    stats = json.loads((out / "build.json").read_text())["near_dedup"]["components"]
    assert stats == result.near_dedup.components
    assert sum(stats["size_histogram"].values()) == stats["components"] >= result.near_dedup.clusters > 0
    assert stats["largest"] >= 2 and stats["members"] >= 2 * stats["components"]
    assert stats["checked"] <= stats["components"] and stats["members_split_off"] >= stats["split"] >= 0
    # Every member that left its component's keeper is kept or dropped under another keeper.
    dropped = len(near_rejected(out))
    assert dropped == result.near_dedup.duplicates <= stats["members"] - stats["components"]


def test_driver_and_distributed_components_agree(ray_local, tmp_path):
    base = ["output.write_rejected=true", "dedup.minhash.num_partitions=3"]
    build_corpus(sample_config(*base), tmp_path / "driver")
    build_corpus(sample_config(*base, "dedup.minhash.driver_max_edges=1"), tmp_path / "cluster")
    for folder in ("documents", "rejected", "stats"):
        assert folder_bytes(tmp_path / "driver", folder) == folder_bytes(tmp_path / "cluster", folder), folder
    # A finished build keeps its phase records, not the intermediate documents.
    assert not [p for p in (tmp_path / "driver" / "phase").rglob("*.parquet") if not p.name.endswith(".stats.parquet")]


def test_keep_longest_policy(ray_local, tmp_path):
    build_corpus(sample_config("output.write_rejected=true", "dedup.minhash.keep=longest"), tmp_path / "long")
    kept = {r["id"]: r for r in pq.read_table(tmp_path / "long" / "documents").to_pylist()}
    dups = near_rejected(tmp_path / "long")
    assert dups
    for r in dups:
        assert len(kept[r["cluster_id"]]["text"]) >= len(r["text"])


def test_switched_off(ray_local, tmp_path):
    result = build_corpus(sample_config("dedup.minhash.enabled=false"), tmp_path / "off")
    assert result.near_dedup is None
    assert not any(d["stage"] == "near_dedup" for d in result.stats.drops)
