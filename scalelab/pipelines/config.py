"""Typed configuration of a corpus build (`configs/corpus/*.yaml`).

Defaults follow the published rules (Gopher, C4, FineWeb) so a config only names what it changes.
Unknown fields are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, Field, field_validator, model_serializer, model_validator

from scalelab.core.config import load_model
from scalelab.pipelines.minhash.banding import bands_for_recall
from scalelab.core.config_fields import (Fraction, NonNegative, NonNegativeInt, PlainName, Positive, PositiveInt,
                                         Seed, Section, parse_token_count)

SOURCE_TYPES = ("warc", "html", "jsonl", "parquet", "text", "paths")


def _auto_or_positive(n: int | str) -> int | str:
    if n != "auto" and n < 1:
        raise ValueError("must be 'auto' or at least 1")
    return n


# A number of hash partitions, or "auto": sized from the input (never from the cluster).
PartitionCount = Annotated[int | Literal["auto"], AfterValidator(_auto_or_positive)]


class InputSpec(Section):
    """One input: a path, glob, directory, URI (s3://, gs://, file://) or a list-of-paths file."""
    path: str
    type: Optional[Literal["warc", "html", "jsonl", "parquet", "text", "paths"]] = None
    # For `paths` lists (Common Crawl's warc.paths.gz): the type of the listed files and the
    # prefix that relative lines are joined to.
    listed_type: Optional[Literal["warc", "html", "jsonl", "parquet", "text"]] = None
    prefix: str = ""
    text_field: str = "text"
    # The input's own id (kept as `source_id`; default: a field called `id`, if any).
    id_field: Optional[str] = None
    url_field: Optional[str] = None
    date_field: Optional[str] = None
    # Carry the record's other fields (JSONL/Parquet) or WARC headers into `metadata` (JSON).
    metadata: bool = True


class ExtractConfig(Section):
    backend: Literal["resiliparse", "trafilatura"] = "resiliparse"
    main_content: bool = True
    timeout_s: Positive = 5.0
    # WARC responses with other content types are dropped as `unsupported_content_type`.
    content_types: list[str] = ["text/html", "application/xhtml+xml", "text/plain"]
    # Records larger than this are dropped as `too_large` before any parsing.
    max_bytes: PositiveInt = 10_000_000
    # HTTP responses with another status are dropped as `http_status`.
    http_ok_only: bool = True


class CleanConfig(Section):
    fix_mojibake: bool = True
    unicode_form: Literal["NFC", "NFKC", "none"] = "NFC"
    collapse_whitespace: bool = True


class LanguageConfig(Section):
    enabled: bool = True
    keep: list[str] = []  # empty: keep every language (and record it)
    min_score: Fraction = 0.0
    prefix_chars: PositiveInt = 2000
    seed: Seed = 0
    # auto: langdetect-rs when installed and verified identical to langdetect, else langdetect
    # (the same labels and scores). fasttext (lid.176) changes labels; see steps/language_backends.py.
    backend: Literal["auto", "langdetect", "langdetect-rs", "fasttext"] = "auto"

    @model_serializer(mode="wrap")
    def _omit_auto_backend(self, handler):
        # A default config dumps as before `backend` existed: its config hash, manifest and
        # build.json stay byte-identical, and builds started before it still resume.
        dumped = handler(self)
        if dumped.get("backend") == "auto":
            del dumped["backend"]
        return dumped


class FilterScope(Section):
    enabled: bool = True
    # Apply only to documents whose detected language is listed; None applies to all.
    languages: Optional[list[str]] = None


class GopherQualityConfig(FilterScope):
    min_words: PositiveInt = 50
    max_words: PositiveInt = 100_000
    min_mean_word_length: NonNegative = 3.0
    max_mean_word_length: Positive = 10.0
    max_symbol_word_ratio: Fraction = 0.1
    max_bullet_lines_ratio: Fraction = 0.9
    max_ellipsis_lines_ratio: Fraction = 0.3
    min_alpha_words_ratio: Fraction = 0.8
    min_stop_words: NonNegativeInt = 2
    stop_words: list[str] = ["the", "be", "to", "of", "and", "that", "have", "with"]
    # The stop-word rule is English; other languages skip it.
    stop_words_languages: Optional[list[str]] = ["en"]

    @model_validator(mode="after")
    def _ranges(self) -> "GopherQualityConfig":
        if self.max_words < self.min_words:
            raise ValueError(f"max_words {self.max_words} is below min_words {self.min_words}: every document would be dropped")
        if self.max_mean_word_length < self.min_mean_word_length:
            raise ValueError(f"max_mean_word_length {self.max_mean_word_length} is below min_mean_word_length "
                             f"{self.min_mean_word_length}: every document would be dropped")
        return self


class GopherRepetitionConfig(FilterScope):
    max_dup_line_frac: Fraction = 0.3
    max_dup_para_frac: Fraction = 0.3
    max_dup_line_char_frac: Fraction = 0.2
    max_dup_para_char_frac: Fraction = 0.2
    # {n: max fraction of characters in the most frequent n-gram}
    top_ngram_max_char_frac: dict[PositiveInt, Fraction] = {2: 0.20, 3: 0.18, 4: 0.16}
    # {n: max fraction of characters in duplicated n-grams}
    dup_ngram_max_char_frac: dict[PositiveInt, Fraction] = {
        5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10,
    }

    @field_validator("top_ngram_max_char_frac", "dup_ngram_max_char_frac")
    @classmethod
    def _by_n(cls, v: dict[int, float]) -> dict[int, float]:
        return dict(sorted(v.items()))  # the same config dump (and manifest) whatever the order written


class C4Config(FilterScope):
    max_word_length: PositiveInt = 1000
    remove_citations: bool = True
    require_terminal_punctuation: bool = True
    min_words_per_line: NonNegativeInt = 3
    drop_javascript_lines: bool = True
    drop_policy_lines: bool = True
    drop_lorem_ipsum: bool = True
    drop_curly_bracket: bool = True
    min_sentences: PositiveInt = 5


class FineWebConfig(FilterScope):
    min_line_punct_ratio: Fraction = 0.12
    short_line_length: PositiveInt = 30
    max_short_line_ratio: Fraction = 0.67
    max_dup_line_char_ratio: Fraction = 0.01
    max_newline_word_ratio: Positive = 0.3


class FiltersConfig(Section):
    language: LanguageConfig = LanguageConfig()
    gopher_repetition: GopherRepetitionConfig = GopherRepetitionConfig()
    gopher_quality: GopherQualityConfig = GopherQualityConfig()
    c4: C4Config = C4Config()
    fineweb: FineWebConfig = FineWebConfig()


class PiiConfig(Section):
    enabled: bool = True
    email: bool = True
    ip: bool = True
    phone: bool = True
    # Private, loopback, link-local and documentation addresses identify nobody.
    keep_non_public_ips: bool = True
    email_placeholder: str = "<EMAIL_ADDRESS>"
    ip_placeholder: str = "<IP_ADDRESS>"
    phone_placeholder: str = "<PHONE_NUMBER>"


class ExactDedupConfig(Section):
    enabled: bool = True
    # Hash casefolded text with punctuation removed and whitespace folded.
    normalize: bool = True


class MinHashConfig(Section):
    enabled: bool = True
    threshold: Fraction = 0.8  # Jaccard similarity of word n-gram sets
    ngram: PositiveInt = 5
    num_perm: PositiveInt = 128
    # Set both to override the (bands, rows) chosen from the threshold.
    bands: Optional[PositiveInt] = None
    rows: Optional[PositiveInt] = None
    seed: Seed = 42
    # Drop candidate pairs whose true Jaccard (from the shingles) is under the threshold.
    verify: bool = True
    # With verify on, bands × rows aim at recall: a pair at the threshold shares a band with at
    # least this probability (false candidates only cost a check). With verify off, the balanced
    # choice (datasketch's) is kept, since candidates are then the answer.
    recall_at_threshold: Fraction = 0.98
    # Which copy of a cluster survives: the smallest id, or the longest text.
    keep: Literal["smallest_id", "longest"] = "smallest_id"
    # Components of at least this many documents are checked member by member against the copy
    # kept (exact Jaccard >= threshold); those below split off into clusters of their own, so a
    # chain of pairs does not become one cluster (minhash/guard.py). A component of two is one
    # verified pair. None: components are clusters as they are.
    verify_component_size: Optional[PositiveInt] = 3
    # Components of graphs up to this many edges are found in the driver; larger ones on the cluster.
    driver_max_edges: PositiveInt = 200_000
    # Hash partitions of the bucket, verification and component steps. "auto": one per documents
    # file (so per `output.partition_input_mb` of input), at least 4; a task's share of signatures,
    # shingles and edges then stays bounded as the input grows. Outputs never depend on it.
    num_partitions: PartitionCount = "auto"

    @model_validator(mode="after")
    def _bands_rows(self) -> "MinHashConfig":
        if (self.bands is None) != (self.rows is None):
            raise ValueError("bands and rows: set both or neither")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands × rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        if self.verify and self.bands is None:

            bands_for_recall(self.threshold, self.num_perm, self.recall_at_threshold)  # raises when out of reach
        return self


class DedupConfig(Section):
    exact: ExactDedupConfig = ExactDedupConfig()
    minhash: MinHashConfig = MinHashConfig()


class TokenizerConfig(Section):
    # A tokenizer.json (HF tokenizers), e.g. GPT-2's; or None to train a byte-level BPE here.
    path: Optional[str] = None
    vocab_size: int = Field(8192, ge=257)  # when training: the 256 bytes, the end-of-document token, merges
    train_documents: PositiveInt = 20_000  # seeded sample of the cleaned corpus to train on
    eod_token: str = "<|endoftext|>"


class ValidationConfig(Section):
    # Held out first, by document hash: the smallest-key documents up to this many tokens,
    # or (when `documents` is set) exactly that many documents.
    tokens: int | str = "100k"
    documents: Optional[PositiveInt] = None

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, v: int | str) -> int:
        return parse_token_count(v)


def _share(v: float) -> float:
    if not 0.0 < v <= 1.0:
        raise ValueError("must be greater than 0 and at most 1")
    return v


def _doc_frequency_cap(v: int) -> int:
    if v < 2:
        raise ValueError("must be at least 2: a validation document and one training copy of it are 2 documents")
    return v


class DecontaminationConfig(Section):
    """A training document is removed when at least `min_overlap_fraction` of its distinct token
    n-grams occur in the validation set. N-grams found in more than `max_ngram_doc_frequency`
    documents of the corpus (navigation, licences, templates) are no evidence either way and are
    left out of both counts: shared boilerplate is not contamination."""
    enabled: bool = True
    ngram: PositiveInt = 13  # token n-grams shared with the validation set
    min_overlap_fraction: Annotated[float, AfterValidator(_share)] = 0.5
    max_ngram_doc_frequency: Annotated[int, AfterValidator(_doc_frequency_cap)] = 10


class ShardsConfig(Section):
    enabled: bool = True
    tokenizer: TokenizerConfig = TokenizerConfig()
    validation: ValidationConfig = ValidationConfig()
    decontamination: DecontaminationConfig = DecontaminationConfig()
    # Named token budgets; each is a prefix of the seeded training order, so smaller scales are
    # contained in larger ones.
    scales: dict[str, int | str] = {"1M": "1M"}
    shard_tokens: int | str = "1M"
    batch_tokens: PositiveInt = 65536  # tokens per Arrow record batch inside a shard
    seed: Seed = 0
    # Tokenization tasks at once (None: as many as the cluster allows). Outputs don't depend on it.
    tokenize_workers: Optional[PositiveInt] = None

    @field_validator("scales")
    @classmethod
    def _scales(cls, v: dict[str, int | str]) -> dict[str, int]:
        if not v:
            raise ValueError("give at least one scale")
        scales = {}
        for name, budget in v.items():
            try:
                scales[name] = parse_token_count(budget)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None  # say which scale
        # Smallest first, whatever the order written: the manifest (whose sha256 is in every run id)
        # is then the same bytes for the same scales.
        return dict(sorted(scales.items(), key=lambda kv: (kv[1], kv[0])))

    @field_validator("shard_tokens")
    @classmethod
    def _shard_tokens(cls, v: int | str) -> int:
        return parse_token_count(v)


class OutputConfig(Section):
    dir: Optional[str] = None
    # Hash partitions of the final shuffle, and so the number of document files.
    # "auto": one per `partition_input_mb` of input (uncompressed: a compressed file counts about
    # four times its size), so the dedup, rewrite and tokenize tasks grow
    # in number (not in size) with the input. Never depends on the cluster size, so outputs are
    # identical whatever the number of workers.
    num_partitions: PartitionCount = "auto"
    partition_input_mb: PositiveInt = 64
    write_rejected: bool = False
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    # Documents per block flowing between phases.
    batch_size: PositiveInt = 256
    # Input per unit of the process phase, uncompressed (a unit is checkpointed as a whole; a
    # stopped build redoes at most the units that were running). A task holds its unit's documents,
    # so this, not the size of the input, sets a worker's memory.
    unit_input_mb: PositiveInt = 32
    # Keep OUT/phase/'s intermediate documents and tokens after a finished build (for debugging).
    keep_phase_data: bool = False


class CorpusConfig(Section):
    name: PlainName = "corpus"  # also the default output folder, out/NAME
    seed: Seed = 0
    inputs: list[InputSpec] = Field(default_factory=list)
    extract: ExtractConfig = ExtractConfig()
    clean: CleanConfig = CleanConfig()
    filters: FiltersConfig = FiltersConfig()
    pii: PiiConfig = PiiConfig()
    dedup: DedupConfig = DedupConfig()
    shards: ShardsConfig = ShardsConfig()
    output: OutputConfig = OutputConfig()



def load_corpus_config(path: str | Path | None, overrides: list[str] | None = None) -> CorpusConfig:
    return load_model(CorpusConfig, path, overrides)


# Settings that may differ on a rerun: they change nothing in the output.
# The unit plan is saved when a build starts, and no output depends on it: unit_input_mb too.
RESUMABLE_CHANGES = ("output.dir", "output.keep_phase_data", "output.unit_input_mb", "shards.tokenize_workers")


def output_config(cfg: CorpusConfig) -> dict[str, Any]:
    """The config less the settings that cannot change the output (RESUMABLE_CHANGES): what the
    manifest records, so where and how a corpus was built never changes its bytes."""
    dumped = cfg.model_dump(mode="json")
    for dotted in RESUMABLE_CHANGES:
        section, name = dotted.split(".")
        dumped[section].pop(name)
    return dumped


def config_hash(cfg: CorpusConfig) -> str:
    canonical = json.dumps(output_config(cfg), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
