"""Tokenize the built corpus and cut it into token shards at named scales, with a held-out validation set.

    documents/*.parquet ─► tokenize (a Ray task per file; seeded key per document, the file sorted by it)
                        ─► tokens per file (phase/tokenize/, checkpointed units)
                        ─► validation: smallest keys up to shards.validation.tokens (by hash, not by worker)
                        ─► document frequency of each validation 13-gram over the corpus (boilerplate: frequent)
                        ─► mark: validation / decontaminated (half of its rarer 13-grams are validation's) / train
                           (a Ray task per file, shards/split.py)
                        ─► training stream in key order ─► shards/train-NNNNN.arrow (+ .idx.arrow)
                        ─► scales = prefixes of that stream ─► manifest.json, stats/shards.json

Everything is ordered by a seeded hash of the document id (shards/key_order.py), so the shards are
byte-identical whatever the number of workers, and a smaller scale is always a prefix of a larger one.
The passes in key order merge the sorted files, holding a batch of each: plain Ray tasks and
bounded memory, with no dataset engine in between.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
from tokenizers import Tokenizer

from scalelab import __version__
from scalelab.core.atomic import atomic_path, write_json
from scalelab.core.build_units import Phase, run_units
from scalelab.pipelines import build_outputs
from scalelab.pipelines.fault_hooks import maybe_fail
from scalelab.pipelines.config import CorpusConfig, config_hash, output_config
from scalelab.pipelines.shards.decontamination import ValidationNgrams, ngram_hashes
from scalelab.pipelines.shards.key_order import (
    BATCH_ROWS,
    KeyOrderError,
    document_key,
    in_key_order,
    sorted_by_key,
)
from scalelab.pipelines.shards.split import Split, ngram_frequency, split_corpus
from scalelab.core.shard_format import ShardWriter, token_dtype
from scalelab.core.manifest import SHARDS_FOLDER, Manifest, ScaleEntry, ShardEntry, TokenizerEntry
from scalelab.core.checksums import file_sha256
from scalelab.core.storage import Location, parquet_file
from scalelab.pipelines.shards.tokenizer import eod_id, load_tokenizer, train_bpe

ALL_SCALE = "all"
__all__ = ["ShardsError", "ShardsResult", "Tokenize", "build_shards", "document_key", "tokenize_unit"]


class ShardsError(ValueError):
    """The corpus cannot give what the shards section asks (say how many tokens exist)."""


@dataclass
class ShardsResult:
    manifest: Manifest
    summary: dict[str, Any]
    resumed_units: dict[str, int] = field(default_factory=dict)


class Tokenize:
    """The tokenizer built once, then `encode_batch` per batch of documents."""

    def __init__(self, tokenizer_json: str, eod: int, seed: int):
        self.tok = Tokenizer.from_str(tokenizer_json)
        self.eod, self.seed = eod, seed

    def __call__(self, batch: pa.Table) -> pa.Table:
        ids = batch.column("id").to_pylist()
        texts = batch.column("text").to_pylist()
        encoded = self.tok.encode_batch(texts, add_special_tokens=False)
        lengths = np.array([len(e.ids) + 1 for e in encoded], dtype=np.int64)
        flat = np.empty(int(lengths.sum()), dtype=np.uint32)
        pos = 0
        for e, n in zip(encoded, lengths):
            flat[pos : pos + n - 1] = e.ids
            flat[pos + n - 1] = self.eod
            pos += n
        offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        return pa.table({
            "key": pa.array([document_key(self.seed, i) for i in ids], pa.uint64()),
            "id": pa.array(ids, pa.string()),
            "lang": batch.column("lang"),
            "n_tokens": pa.array(lengths),
            "n_bytes": pa.array([len(t.encode("utf-8")) for t in texts], pa.int64()),  # for bits per byte
            "tokens": pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat)),
        })


def _read_documents(path: str, columns: list[str]) -> Iterator[pa.Table]:
    for batch in parquet_file(Location.of(path)).iter_batches(batch_size=BATCH_ROWS, columns=columns):
        yield pa.Table.from_batches([batch])


def _tokenizer_sample(path: str, seed: int, cutoff: int) -> list[tuple[int, str, str]]:
    """(key, id, text) of one documents file's documents whose key is at most `cutoff`."""
    picked = []
    for batch in _read_documents(path, ["id", "text"]):
        for doc_id, text in zip(batch.column("id").to_pylist(), batch.column("text").to_pylist()):
            if (key := document_key(seed, doc_id)) <= cutoff:
                picked.append((key, doc_id, text))
    return picked


def _train_tokenizer(cfg: CorpusConfig, files: list[str], num_docs: int) -> Tokenizer:
    """Byte-level BPE on a seeded sample: the documents with the smallest keys (about train_documents),
    picked by a task per documents file."""
    tc, seed = cfg.shards.tokenizer, cfg.shards.seed
    share = min(1.0, 1.5 * tc.train_documents / max(1, num_docs))
    cutoff = int(share * (2**64 - 1))
    task = ray.remote(max_retries=3)(_tokenizer_sample)
    sample = sorted(doc for part in ray.get([task.remote(f, seed, cutoff) for f in files]) for doc in part)
    return train_bpe((text for _, _, text in sample[: tc.train_documents]), tc.vocab_size, tc.eod_token)


def tokenize_unit(unit: dict, out_dir: str, tokenizer_json: str, eod: int, seed: int) -> int:
    """One documents file tokenized and sorted by key (a unit of the `tokenize` phase)."""
    phase = Phase(out_dir, "tokenize")
    phase.mark_started(unit["name"])
    tokenize = Tokenize(tokenizer_json, eod, seed)
    tables = [tokenize(batch) for batch in _read_documents(unit["path"], ["id", "text", "lang"])]
    table = sorted_by_key(pa.concat_tables(tables))
    with atomic_path(phase.output(unit["name"])) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=BATCH_ROWS)
        maybe_fail("tokenize", unit["name"])
    phase.finish(unit["name"], documents=table.num_rows, tokens=int(pc.sum(table["n_tokens"]).as_py() or 0))
    return table.num_rows


def build_shards(cfg: CorpusConfig, out_dir: str | Path | Location, num_docs: int, log=lambda msg: None) -> ShardsResult:
    """Three checkpointed phases: `tokenizer` (load or train, saved as OUT/tokenizer.json),
    `tokenize` (one unit per documents file) and `shards` (one unit: validation, decontamination,
    the training stream and the manifest; a stopped one is redone whole)."""
    out = Location.of(out_dir)
    files = _document_files(out)
    phases = _ShardPhases.planned(out, files)
    if phases.shards.complete():
        log("tokenizer, tokenize, shards: already done, skipped")
        return ShardsResult(manifest=Manifest.load(out), summary=phases.shards.done_record("shards")["summary"],
                            resumed_units={p.name: len(p.units()) for p in phases.all()})
    resumed: dict[str, int] = {}
    tok, resumed["tokenizer"] = _tokenizer(cfg, out, phases.tokenizer, files, num_docs, log)
    tokens = _TokenizedCorpus.of(tok, cfg.shards.tokenizer.eod_token)
    token_files, resumed["tokenize"] = _tokenize(cfg, out, phases.tokenize, tokens, tok.to_str(), log)
    resumed["shards"] = 0
    phases.shards.mark_started("shards")
    try:
        manifest, summary = _write_shards(cfg, out, phases, token_files, tokens)
    except KeyOrderError as exc:
        raise ShardsError(str(exc)) from None
    phases.shards.finish("shards", summary=summary)
    return ShardsResult(manifest=manifest, summary=summary, resumed_units=resumed)


def _document_files(out: Location) -> list[str]:
    files = sorted(str(p.resolve()) for p in (out / "documents").glob("part-*.parquet")
                   if build_outputs.is_build_file("documents", p.name))  # not a user's file beside them
    if not files:
        raise ShardsError("no documents survived the build: nothing to tokenize")
    return files


@dataclass(frozen=True)
class _ShardPhases:
    tokenizer: Phase
    tokenize: Phase
    shards: Phase

    @classmethod
    def planned(cls, out: Location, files: list[str]) -> "_ShardPhases":
        shards = Phase(out, "shards")
        shards.ensure_plan(lambda: {"units": [{"name": "shards"}]})
        tokenizer = Phase(out, "tokenizer")
        tokenizer.ensure_plan(lambda: {"units": [{"name": "tokenizer"}]})
        tokenize = Phase(out, "tokenize")
        tokenize.ensure_plan(lambda: {"units": [{"name": Location.of(f).stem, "path": f} for f in files]})
        return cls(tokenizer=tokenizer, tokenize=tokenize, shards=shards)

    def all(self) -> tuple[Phase, Phase, Phase]:
        return (self.tokenizer, self.tokenize, self.shards)


@dataclass(frozen=True)
class _TokenizedCorpus:
    """What the shards need to know of the tokenizer."""

    eod: int
    vocab: int
    dtype: np.dtype

    @classmethod
    def of(cls, tok: Tokenizer, eod_token: str) -> "_TokenizedCorpus":
        vocab = tok.get_vocab_size(with_added_tokens=True)
        return cls(eod=eod_id(tok, eod_token), vocab=vocab, dtype=token_dtype(vocab))


def _tokenizer(cfg: CorpusConfig, out: Location, phase: Phase, files: list[str], num_docs: int, log) -> tuple[Tokenizer, int]:
    """The `tokenizer` phase: the configured tokenizer.json, or a BPE trained on the documents."""
    tok_path = out / "tokenizer.json"
    if phase.complete():
        log("tokenizer: already done, skipped")
        return Tokenizer.from_str(tok_path.read_text()), 1
    phase.mark_started("tokenizer")
    sc = cfg.shards
    tok = load_tokenizer(sc.tokenizer) if sc.tokenizer.path else _train_tokenizer(cfg, files, num_docs)
    with atomic_path(tok_path) as tmp:
        tok.save(tmp)
    phase.finish("tokenizer", sha256=file_sha256(tok_path))
    return tok, 0


def _tokenize(cfg: CorpusConfig, out: Location, phase: Phase, tokens: _TokenizedCorpus, tok_json: str,
              log) -> tuple[list[str], int]:
    """The `tokenize` phase (a Ray task per documents file); its token files, each sorted by key."""
    sc = cfg.shards
    task = ray.remote(max_retries=3)(tokenize_unit)
    resumed = run_units(phase, lambda u: task.remote(u, str(out.resolve()), tok_json, tokens.eod, sc.seed),
                        log, max_in_flight=sc.tokenize_workers)
    return [str(phase.output(u)) for u in phase.units()], resumed


def _write_shards(cfg: CorpusConfig, out: Location, phases: _ShardPhases, token_files: list[str],
                  tokens: _TokenizedCorpus) -> tuple[Manifest, dict[str, Any]]:
    """The `shards` phase: validation, decontamination, the training stream, the manifest."""
    sc = cfg.shards
    shard_dir = out / SHARDS_FOLDER
    build_outputs.clear(out, (SHARDS_FOLDER,))  # a stopped unit's shards; never another file there
    shard_dir.mkdir()
    validation = _write_validation(token_files, shard_dir, sc, tokens.dtype, _corpus_totals(phases.tokenize))
    dc = sc.decontamination
    ngrams = (ValidationNgrams.split(validation.ngrams, ngram_frequency(token_files, validation.ngrams, dc.ngram),
                                     dc.max_ngram_doc_frequency)
              if dc.enabled and len(validation.ngrams) else None)
    train_files = [str(phases.shards.output(f"train-{Location.of(f).stem}")) for f in token_files]
    split = split_corpus(token_files, train_files, validation.ids, ngrams, dc, len(validation.ngrams),
                         out / "stats" / "decontaminated.parquet")
    scales = _scales(sc, split.train_tokens, validation.tokens)
    stream = _write_training_stream(split.train_files, scales, shard_dir, sc, tokens.dtype)
    for f in split.train_files:  # the stream's own scratch files, in the phase's folder
        Location.of(f).unlink()
    manifest = _manifest(cfg, out, tokens, stream.shards, validation.entry, scales, split)
    manifest.save(out)
    summary = _shards_summary(tokens, manifest, split, stream, scales)
    write_json(out / "stats" / "shards.json", summary, indent=2, sort_keys=True)
    return manifest, summary


@dataclass(frozen=True)
class _CorpusTotals:
    documents: int
    tokens: int


def _corpus_totals(tokenize: Phase) -> _CorpusTotals:
    """Documents and tokens of the whole tokenized corpus, from the tokenize units' done records."""
    documents = tokens = 0
    for unit in tokenize.units():
        record = tokenize.done_record(unit)
        documents += record["documents"]
        if "tokens" in record:
            tokens += record["tokens"]
        else:  # a unit done by a scalelab that did not record them
            n_tokens = parquet_file(tokenize.output(unit)).read(columns=["n_tokens"]).column("n_tokens")
            tokens += int(pc.sum(n_tokens).as_py() or 0)
    return _CorpusTotals(documents=documents, tokens=tokens)


@dataclass(frozen=True)
class _Validation:
    ids: list[str]
    tokens: int
    entry: dict[str, Any]  # the manifest's entry, with the text's UTF-8 bytes
    ngrams: np.ndarray  # its distinct n-gram hashes, sorted


def _write_validation(token_files: list[str], shard_dir: Location, sc, dtype: np.dtype,
                      totals: _CorpusTotals) -> _Validation:
    """shards/validation.arrow: the smallest keys, whole documents, until the budget (tokens or
    documents) is met. Only the first batches of each file are read."""
    by_documents = sc.validation.documents is not None

    def filled(docs_held: int, tokens_held: int) -> bool:
        return docs_held >= sc.validation.documents if by_documents else tokens_held >= sc.validation.tokens

    writer = ShardWriter(shard_dir, "validation", None, sc.batch_tokens, dtype)
    ids: list[str] = []
    held = val_bytes = 0
    ngrams = []
    for rows, i in in_key_order(token_files, ["n_bytes", "tokens"]):
        if filled(len(ids), held):
            break
        toks = rows.tokens(i)
        ids.append(rows.columns["id"][i])
        held += len(toks)
        val_bytes += rows.columns["n_bytes"][i]
        writer.add(ids[-1], toks)
        ngrams.append(ngram_hashes(toks[:-1], sc.decontamination.ngram))
    if not filled(len(ids), held) or len(ids) >= totals.documents:
        asked = (f"shards.validation.documents: {sc.validation.documents:,} documents" if by_documents
                 else f"shards.validation.tokens: {sc.validation.tokens:,} tokens")
        raise ShardsError(f"{asked} asked, but the corpus has {totals.documents:,} documents and "
                          f"{totals.tokens:,} tokens in all; lower it (and leave room for training)")
    entry = writer.close()[0]
    entry["bytes"] = val_bytes  # UTF-8 bytes of the validation text: the denominator of bits per byte
    return _Validation(ids=ids, tokens=held, entry=entry,
                       ngrams=np.unique(np.concatenate(ngrams)) if ngrams else np.empty(0, np.uint64))


def _scales(sc, train_tokens: int, held: int) -> dict[str, int]:
    scales = dict(sc.scales) if sc.scales else {ALL_SCALE: train_tokens}
    for name, budget in scales.items():
        if budget > train_tokens:
            raise ShardsError(f"shards.scales.{name}: {budget:,} tokens asked, but the training split has "
                              f"{train_tokens:,} tokens (after {held:,} validation tokens and decontamination)")
    return scales


@dataclass
class _TrainingStream:
    shards: list[dict[str, Any]]
    scale_languages: dict[str, Counter]
    scale_documents: Counter


def _write_training_stream(train_files: list[str], scales: dict[str, int], shard_dir: Location, sc,
                           dtype: np.dtype) -> _TrainingStream:
    """The training documents in key order into fixed-size shards; tokens per language per scale on the way."""
    writer = ShardWriter(shard_dir, "train", sc.shard_tokens, sc.batch_tokens, dtype)
    position = 0
    stream = _TrainingStream(shards=[], scale_languages={name: Counter() for name in scales}, scale_documents=Counter())
    for rows, i in in_key_order(train_files, ["lang", "tokens"]):
        toks, lang = rows.tokens(i), rows.columns["lang"][i]
        for name, budget in scales.items():
            if position < budget:
                stream.scale_languages[name][lang or "unknown"] += min(len(toks), budget - position)
                stream.scale_documents[name] += 1
        writer.add(rows.columns["id"][i], toks)
        position += len(toks)
    stream.shards = writer.close()
    return stream


def _manifest(cfg: CorpusConfig, out: Location, tokens: _TokenizedCorpus, shards: list[dict[str, Any]],
              val_entry: dict[str, Any], scales: dict[str, int], split: Split) -> Manifest:
    shard_dir = out / SHARDS_FOLDER
    for entry in shards + [val_entry]:
        entry["sha256"] = file_sha256(shard_dir / entry["path"])
        entry["index_sha256"] = file_sha256(shard_dir / entry["index"])
    sc = cfg.shards
    return Manifest(
        scalelab_version=__version__,
        config_hash=config_hash(cfg),
        config=output_config(cfg),
        tokenizer=TokenizerEntry(path="tokenizer.json", sha256=file_sha256(out / "tokenizer.json"),
                                 vocab_size=tokens.vocab, eod_token=sc.tokenizer.eod_token, eod_id=tokens.eod,
                                 trained=sc.tokenizer.path is None),
        dtype=tokens.dtype.name,
        batch_tokens=sc.batch_tokens,
        shard_tokens=sc.shard_tokens,
        seed=sc.seed,
        shards=[ShardEntry(**s) for s in shards],
        validation=ShardEntry(**val_entry),
        scales=_scale_entries(scales, shards),
        documents={"in": sum(split.docs_by_split.values()), **split.docs_by_split},
        decontamination=split.decontamination.as_dict(),
    )


def _scale_entries(scales: dict[str, int], shards: list[dict[str, Any]]) -> dict[str, ScaleEntry]:
    """Each scale a prefix of the stream: the shards it spans and how much of the last one."""
    cumulative = np.cumsum([s["tokens"] for s in shards])
    entries = {}
    for name, budget in scales.items():
        j = int(np.searchsorted(cumulative, budget))  # shards[j] holds the budget's last token
        before = int(cumulative[j - 1]) if j else 0
        entries[name] = ScaleEntry(tokens=budget, shards=[s["path"] for s in shards[: j + 1]],
                                   last_shard_tokens=budget - before)
    return entries


def _shards_summary(tokens: _TokenizedCorpus, manifest: Manifest, split: Split, stream: _TrainingStream,
                    scales: dict[str, int]) -> dict[str, Any]:
    """stats/shards.json: what `corpus stats` prints about the shards."""
    return {
        "tokenizer_vocab": tokens.vocab, "dtype": tokens.dtype.name,
        "documents": manifest.documents,
        "tokens": {"validation": manifest.validation.tokens, "train": split.train_tokens,
                   "decontaminated": split.decontamination.tokens},
        "decontamination": split.decontamination.as_dict(),
        "scales": {name: {"tokens": budget, "documents": stream.scale_documents[name],
                          "languages": dict(sorted(stream.scale_languages[name].items()))}
                   for name, budget in scales.items()},
    }
