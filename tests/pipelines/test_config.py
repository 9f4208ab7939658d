"""Corpus configs: every shipped example validates; errors name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.pipelines.config import CorpusConfig, load_corpus_config
from scalelab.core.config import ConfigError
from tests.conftest import REPO

EXAMPLES = sorted((REPO / "configs" / "corpus").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_configs_validate(path):
    cfg = load_corpus_config(path)
    assert cfg.inputs


def test_defaults_are_the_published_rules():
    cfg = CorpusConfig()
    assert cfg.filters.gopher_quality.min_words == 50 and cfg.filters.gopher_quality.max_words == 100_000
    assert cfg.filters.gopher_repetition.dup_ngram_max_char_frac[10] == 0.10
    assert cfg.filters.fineweb.min_line_punct_ratio == 0.12
    assert cfg.filters.c4.min_sentences == 5 and cfg.filters.language.keep == []


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "corpus.yaml"
    p.write_text(text)
    return p


def test_out_of_range_names_file_and_field(tmp_path):
    p = write(tmp_path, "inputs: [{path: x.warc}]\nfilters:\n  language:\n    min_score: 1.5\n")
    with pytest.raises(ConfigError) as err:
        load_corpus_config(p)
    assert str(err.value) == f"{p}: filters.language.min_score: must be between 0 and 1"


def test_unknown_field_is_an_error(tmp_path):
    p = write(tmp_path, "filters:\n  gopher_quality:\n    min_wrods: 10\n")
    with pytest.raises(ConfigError, match=r"filters\.gopher_quality\.min_wrods: unknown field"):
        load_corpus_config(p)


def test_wrong_type_and_bad_enum(tmp_path):
    p = write(tmp_path, "extract:\n  backend: lynx\n  timeout_s: soon\n")
    with pytest.raises(ConfigError) as err:
        load_corpus_config(p)
    assert "extract.backend" in str(err.value) and "extract.timeout_s" in str(err.value)


def test_list_field_index_in_path(tmp_path):
    p = write(tmp_path, "inputs:\n  - path: a.warc\n  - type: warc\n")
    with pytest.raises(ConfigError, match=r"inputs\[1\]\.path: Field required"):
        load_corpus_config(p)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_corpus_config(write(tmp_path, "inputs: [\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_corpus_config(tmp_path / "nope.yaml")


def test_set_overrides(tmp_path):
    p = write(tmp_path, "inputs: [{path: x.warc}]\n")
    cfg = load_corpus_config(p, ["filters.c4.enabled=false", "output.num_partitions=8", "filters.language.keep=[en, fr]"])
    assert cfg.filters.c4.enabled is False and cfg.output.num_partitions == 8
    assert cfg.filters.language.keep == ["en", "fr"]
    with pytest.raises(ConfigError, match=r"--set filters.c4.enabld=false: filters\.c4\.enabld: unknown field"):
        load_corpus_config(p, ["filters.c4.enabld=false"])


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "a/b", ".."])
def test_the_name_is_a_plain_name_because_it_is_the_default_output_folder(tmp_path, name):
    path = write(tmp_path, f"name: '{name}'\ninputs: [{{path: x}}]\n")
    with pytest.raises(ConfigError, match=rf"{path}: name: '.*' is not a plain name"):
        load_corpus_config(path)
