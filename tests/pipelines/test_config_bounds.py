"""Every count, size and threshold of the corpus, crawl, run and sweep configs has its bound: a
real config file with a bad value is refused with one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from scalelab.pipelines.config import load_corpus_config
from scalelab.pipelines.crawl.config import load_crawl_config
from scalelab.cli import app
from scalelab.core.config import ConfigError
from scalelab.training.config import load_train_config
from scalelab.orchestrator.sweep_config import load_sweep_config
from tests.conftest import REPO


def nested(dotted: str, value) -> dict:
    out: dict = {}
    node = out
    keys = dotted.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return out


def write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


CORPUS_BAD = [
    ("seed", -1), ("extract.timeout_s", 0), ("extract.max_bytes", -5),
    ("filters.language.min_score", 1.5), ("filters.language.prefix_chars", 0), ("filters.language.seed", -3),
    ("filters.gopher_quality.min_words", 0), ("filters.gopher_quality.min_words", -5),
    ("filters.gopher_quality.max_words", 0), ("filters.gopher_quality.max_words", -1),
    ("filters.gopher_quality.min_mean_word_length", -1), ("filters.gopher_quality.max_mean_word_length", 0),
    ("filters.gopher_quality.max_symbol_word_ratio", 2), ("filters.gopher_quality.min_stop_words", -1),
    ("filters.gopher_repetition.max_dup_line_frac", -0.1), ("filters.gopher_repetition.top_ngram_max_char_frac", {0: 0.2}),
    ("filters.gopher_repetition.dup_ngram_max_char_frac", {5: 1.5}),
    ("filters.c4.max_word_length", 0), ("filters.c4.min_words_per_line", -1),
    ("filters.c4.min_sentences", 0), ("filters.c4.min_sentences", -2),
    ("filters.fineweb.min_line_punct_ratio", 3), ("filters.fineweb.short_line_length", 0),
    ("filters.fineweb.max_newline_word_ratio", -0.3),
    ("dedup.minhash.threshold", 0.0 - 1), ("dedup.minhash.ngram", 0), ("dedup.minhash.num_perm", -128),
    ("dedup.minhash.seed", -1), ("dedup.minhash.driver_max_edges", 0), ("dedup.minhash.num_partitions", 0),
    ("shards.tokenizer.vocab_size", 100), ("shards.tokenizer.train_documents", 0),
    ("shards.validation.tokens", -5), ("shards.validation.tokens", 0), ("shards.validation.tokens", "-2k"),
    ("shards.validation.documents", 0), ("shards.decontamination.ngram", 0),
    ("shards.scales", {"tiny": -5}), ("shards.scales", {"tiny": 0}), ("shards.scales", {"tiny": "0k"}),
    ("shards.shard_tokens", -5), ("shards.shard_tokens", 0), ("shards.batch_tokens", 0), ("shards.seed", -1),
    ("shards.tokenize_workers", 0),
    ("output.num_partitions", 0), ("output.partition_input_mb", 0), ("output.batch_size", -1),
    ("output.unit_input_mb", 0),
]


@pytest.mark.parametrize("field,value", CORPUS_BAD, ids=[f"{f}={v}" for f, v in CORPUS_BAD])
def test_corpus_config_bounds(tmp_path, field, value):
    path = write(tmp_path, "corpus.yaml", {"inputs": [{"path": "x"}], **nested(field, value)})
    with pytest.raises(ConfigError) as err:
        load_corpus_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {field}") and "\n" not in message, message


def test_a_negative_scale_names_the_scale(tmp_path):
    path = write(tmp_path, "corpus.yaml", {"shards": {"scales": {"20k": "20k", "tiny": -5}}})
    with pytest.raises(ConfigError, match=r"shards.scales: .*tiny: -5: must be greater than 0"):
        load_corpus_config(path)


def test_ranges_that_drop_every_document(tmp_path):
    path = write(tmp_path, "corpus.yaml", {"filters": {"gopher_quality": {"min_words": 500, "max_words": 100}}})
    with pytest.raises(ConfigError, match=rf"{path}: filters.gopher_quality: max_words 100 is below min_words 500"):
        load_corpus_config(path)


def test_good_bounds_still_load():
    cfg = load_corpus_config(REPO / "configs" / "corpus" / "sample.yaml",
                             ["filters.c4.min_words_per_line=0", "filters.gopher_quality.min_stop_words=0"])
    assert cfg.filters.c4.min_words_per_line == 0 and cfg.shards.scales["150k"] == 150_000


CRAWL_BAD = [
    ("limits.max_page_bytes", 0), ("limits.max_page_bytes", -1), ("limits.max_page_bytes", "-5M"),
    ("limits.max_total_bytes", 0), ("limits.max_total_bytes", -100), ("limits.max_pages", 0),
    ("limits.max_depth", -1), ("limits.max_redirects", -1), ("limits.timeout_s", 0), ("limits.connect_timeout_s", -1),
    ("politeness.delay_s", -1), ("politeness.max_connections_per_host", 0), ("politeness.max_crawl_delay_s", 0),
    ("warc.max_file_mb", 0), ("ray.num_actors", 0), ("ray.cpus_per_actor", 0), ("ray.fetch_threads", 0),
    ("ray.batch_size", 0),
]


@pytest.mark.parametrize("field,value", CRAWL_BAD, ids=[f"{f}={v}" for f, v in CRAWL_BAD])
def test_crawl_config_bounds(tmp_path, field, value):
    path = write(tmp_path, "crawl.yaml", nested(field, value))
    with pytest.raises(ConfigError) as err:
        load_crawl_config(path)
    assert str(err.value).startswith(f"{path}: {field}"), str(err.value)


TRAIN_BAD = [
    ("seed", -1), ("optimizer.betas", [0.9, 1.5]), ("optimizer.betas", [-0.1, 0.95]), ("optimizer.lr", 0),
    ("data.seq_len", 0), ("batch.micro_batch_size", 0), ("train.steps", 0), ("train.tokens", -5),
    ("eval.tokens", 0), ("checkpoint.keep", 0),
]


@pytest.mark.parametrize("field,value", TRAIN_BAD, ids=[f"{f}={v}" for f, v in TRAIN_BAD])
def test_train_config_bounds(tmp_path, field, value):
    data = yaml.safe_load((REPO / "configs" / "train" / "sample.yaml").read_text())
    top, _, rest = field.partition(".")
    if rest:
        data.setdefault(top, {}).pop("epochs", None) if top == "train" else None
        data[top] = {**data.get(top, {}), rest: value}
    else:
        data[top] = value
    path = write(tmp_path, "run.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_train_config(path)
    assert str(err.value).startswith(f"{path}: {field}"), str(err.value)


def test_sweep_seeds_are_not_negative(tmp_path):
    path = write(tmp_path, "sweep.yaml", {"corpus": "c", "models": ["nano"], "seeds": [0, -1]})
    with pytest.raises(ConfigError, match=rf"{path}: seeds\[1\]: Input should be greater than or equal to 0"):
        load_sweep_config(path)


class TestSweepDryRun:
    runner = CliRunner()

    def test_unknown_backend_is_refused_at_dry_run(self, tmp_path):
        sweep = REPO / "configs" / "sweep" / "sample.yaml"
        res = self.runner.invoke(app, ["sweep", str(sweep), "--dry-run", "--backend", "slurm"])
        assert res.exit_code == 2 and "--backend slurm: must be one of ray, deepspeed" in res.output
        res = self.runner.invoke(app, ["sweep", str(sweep), "--dry-run", "--backend", "deepspeed"])
        assert res.exit_code == 2 and "needs --hostfile" in res.output

    def test_a_run_length_in_train_is_refused_at_dry_run(self, tmp_path):
        sweep = REPO / "configs" / "sweep" / "sample.yaml"
        res = self.runner.invoke(app, ["sweep", str(sweep), "--dry-run", "--set", "train.train.steps=0"])
        assert res.exit_code == 2, res.output
        assert f"{sweep}: train.train: a sweep sets each run's length from `tokens:`" in " ".join(res.output.split())

    def test_bad_numbers_name_the_file_and_field(self, tmp_path):
        path = write(tmp_path, "sweep.yaml", {"corpus": "c", "models": ["nano"], "concurrency": 0,
                                              "tokens": {"policy": "fixed", "value": -5}})
        res = self.runner.invoke(app, ["sweep", str(path), "--dry-run"])
        assert res.exit_code == 2
        assert f"{path}: tokens.value" in res.output and f"{path}: concurrency" in res.output
