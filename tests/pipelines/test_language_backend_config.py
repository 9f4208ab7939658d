"""`filters.language.backend`: a default config dumps as it did before the setting existed (so its
config hash, manifest and build.json keep their bytes and older builds still resume), a chosen
backend reaches the workers, and a wrong name is refused in one line."""

from __future__ import annotations

import pytest

from scalelab.core.config import ConfigError
from scalelab.pipelines.config import CorpusConfig, LanguageConfig, config_hash, load_corpus_config
from scalelab.pipelines.steps.language import LanguageId


def test_default_dumps_without_backend():
    assert "backend" not in LanguageConfig().model_dump(mode="json")
    dumped = CorpusConfig().model_dump(mode="json")["filters"]["language"]
    assert list(dumped) == ["enabled", "keep", "min_score", "prefix_chars", "seed"]


def test_a_chosen_backend_survives_the_round_trip_to_workers():
    for name in ("langdetect", "langdetect-rs", "fasttext"):
        cfg = CorpusConfig.model_validate({"filters": {"language": {"backend": name}}})
        again = CorpusConfig.model_validate_json(cfg.model_dump_json())  # as pipelines.build._steps_for
        assert again.filters.language.backend == name
        assert config_hash(cfg) != config_hash(CorpusConfig())
    assert CorpusConfig.model_validate_json(CorpusConfig().model_dump_json()).filters.language.backend == "auto"


def test_auto_runs_langdetect_rs_and_explicit_names_run_theirs():
    assert LanguageId(LanguageConfig()).backend.name == "langdetect-rs"
    assert LanguageId(LanguageConfig(backend="langdetect")).backend.name == "langdetect"


def test_unknown_backend_is_refused(tmp_path):
    p = tmp_path / "corpus.yaml"
    p.write_text("filters:\n  language:\n    backend: cld3\n")
    with pytest.raises(ConfigError, match=r"filters\.language\.backend"):
        load_corpus_config(p)
