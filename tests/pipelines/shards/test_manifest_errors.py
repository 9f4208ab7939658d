"""A corpus whose manifest.json is not JSON, or lacks what training reads, is one line naming the
file, for `scalelab corpus verify` and `scalelab train` alike, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalelab.cli import app
from scalelab.core.manifest import FORMAT_VERSION, Manifest
from tests.conftest import REPO

runner = CliRunner()
GOOD_ENTRY = {"path": "train-00000.arrow", "index": "train-00000.idx.arrow", "tokens": 10, "documents": 1,
              "sha256": "0" * 64, "index_sha256": "0" * 64}
GOOD = {"tokenizer": {"sha256": "0" * 64, "vocab_size": 300, "eod_id": 0}, "shards": [GOOD_ENTRY],
        "validation": {**GOOD_ENTRY, "path": "validation.arrow", "index": "validation.idx.arrow"},
        "scales": {"10": {"tokens": 10, "shards": ["train-00000.arrow"], "last_shard_tokens": 10}}}
BROKEN = {
    "not json": "{\"tokenizer\": ",
    "empty": "",
    "a list": "[1, 2]",
    "no scales": json.dumps({k: v for k, v in GOOD.items() if k != "scales"}),
    "no vocab size": json.dumps({**GOOD, "tokenizer": {"sha256": "0" * 64, "eod_id": 0}}),
    "a shard without sha256": json.dumps({**GOOD, "shards": [{k: v for k, v in GOOD_ENTRY.items() if k != "sha256"}]}),
    "tokens as text": json.dumps({**GOOD, "scales": {"10": {**GOOD["scales"]["10"], "tokens": "ten"}}}),
}
FIELD = {"no scales": "scales", "no vocab size": "tokenizer.vocab_size", "a shard without sha256": "shards.0.sha256",
         "tokens as text": "scales.10.tokens"}


def corpus(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "manifest.json").write_text(text)
    return folder


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_corpus_verify_names_the_file(tmp_path, case):
    folder = corpus(tmp_path, BROKEN[case])
    res = runner.invoke(app, ["corpus", "verify", str(folder)])
    assert res.exit_code == 2
    line = " ".join(one_line(res.output).split())
    assert line.startswith(f"error: {folder / 'manifest.json'}: ")
    if case in FIELD:
        assert f"manifest.json: {FIELD[case]}: " in line


@pytest.mark.parametrize("case", ["not json", "no scales", "no vocab size"])
def test_train_names_the_file(tmp_path, case):
    folder = corpus(tmp_path, BROKEN[case])
    res = runner.invoke(app, ["train", str(REPO / "configs" / "train" / "sample.yaml"), "--out", str(tmp_path / "run"),
                              "--set", f"data.corpus={folder}"])
    assert res.exit_code == 2
    assert " ".join(one_line(res.output).split()).startswith(f"error: {folder / 'manifest.json'}: ")
    assert not (tmp_path / "run").exists()


def test_a_manifest_from_a_newer_scalelab_is_one_line(tmp_path):
    folder = corpus(tmp_path, json.dumps({**GOOD, "format_version": FORMAT_VERSION + 1}))
    res = runner.invoke(app, ["corpus", "verify", str(folder)])
    assert res.exit_code == 2
    line = " ".join(one_line(res.output).split())
    assert f"format_version {FORMAT_VERSION + 1}" in line and "upgrade scalelab" in line


def test_a_manifest_without_format_version_is_format_0_and_migrates(tmp_path):
    """Corpora built before the version existed have the same fields: they load as the current format."""
    folder = corpus(tmp_path, json.dumps(GOOD))
    manifest = Manifest.load(folder)
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.scales["10"].tokens == 10 and manifest.validation.path == "validation.arrow"
