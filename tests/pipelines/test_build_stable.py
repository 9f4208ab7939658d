"""The same config builds the same bytes: two builds of the sample config's texts (one of them
written to another folder, with the scales listed in another order and other output-only settings)
give identical shards, tokenizer, stats and manifest.json, so a sweep's run ids (which hash the
manifest) stay the same for the same corpus."""

from __future__ import annotations

import json
from pathlib import Path

from scalelab.core.manifest import FORMAT_VERSION
from scalelab.pipelines.build import build_corpus
from tests.conftest import REPO
from tests.pipelines.test_build import folder_bytes, sample_config

# Small enough to take seconds: five texts, a small vocabulary, no near-dedup.
SMALL = ["dedup.minhash.enabled=false", "shards.tokenizer.vocab_size=512", "shards.validation.documents=1",
         "shards.shard_tokens=4k", "output.num_partitions=2"]


def texts_only(*overrides: str):
    cfg = sample_config(*SMALL, *overrides)
    texts = cfg.inputs[2].model_copy(update={"path": str(REPO / "data/sample/texts/*_gut.txt.gz")})
    return cfg.model_copy(update={"inputs": [texts]})


def test_two_builds_give_identical_shards_and_manifest(ray_local, tmp_path):
    first = build_corpus(texts_only("shards.scales={5k: 5k, 10k: 10k}"), tmp_path / "a", log=lambda m: None)
    second = build_corpus(texts_only("shards.scales={10k: 10k, 5k: 5k}", "output.dir=elsewhere",
                                     "output.keep_phase_data=true", "output.unit_input_mb=1",
                                     "shards.tokenize_workers=1"),
                          tmp_path / "b", log=lambda m: None)
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("manifest.json", "tokenizer.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for folder in ("shards", "stats", "documents"):
        assert folder_bytes(a, folder) == folder_bytes(b, folder), folder
    manifest = json.loads((a / "manifest.json").read_text())
    # Every split has its count, in a fixed order; scales smallest first; nothing of where or when.
    assert next(iter(manifest)) == "format_version" and manifest["format_version"] == FORMAT_VERSION
    assert list(manifest["documents"]) == ["in", "validation", "train", "decontaminated"]
    assert list(manifest["scales"]) == ["5k", "10k"]
    assert "dir" not in manifest["config"]["output"] and "tokenize_workers" not in manifest["config"]["shards"]
    assert "unit_input_mb" not in manifest["config"]["output"]
    text = (a / "manifest.json").read_text()
    assert str(tmp_path) not in text and "elsewhere" not in text
    assert first.shards.manifest == second.shards.manifest
