"""Tokenize the built corpus and cut it into token shards at named scales, with a held-out validation set.

    documents/*.parquet ─► tokenize (Ray Data actors, tokenizer loaded once each; seeded key per document)
                        ─► tokens per file (phase/tokenize/, checkpointed units)
                        ─► validation: smallest keys up to shards.validation.tokens (by hash, not by worker)
                        ─► document frequency of each validation 13-gram over the corpus (boilerplate: frequent)
                        ─► mark: validation / decontaminated (half of its rarer 13-grams are validation's) / train
                        ─► training stream in key order ─► shards/train-NNNNN.arrow (+ .idx.arrow)
                        ─► scales = prefixes of that stream ─► manifest.json, stats/shards.json

Everything is ordered by a seeded hash of the document id, so the shards are byte-identical whatever the
number of workers, and a smaller scale is always a prefix of a larger one.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
from ray.data.aggregate import Count, Sum
from tokenizers import Tokenizer

from scalelab import __version__
from scalelab.core.atomic import atomic_path, write_json, write_parquet
from scalelab.core.build_units import Phase, run_units
from scalelab.pipelines import build_outputs
from scalelab.pipelines.fault_hooks import maybe_fail
from scalelab.pipelines.config import CorpusConfig, DecontaminationConfig, config_hash, output_config
from scalelab.pipelines.shards.decontamination import (
    DecontaminationReport,
    ValidationNgrams,
    is_contaminated,
    ngram_hashes,
    overlap,
    validation_ngram_counts,
)
from scalelab.core.shard_format import ShardWriter, token_dtype
from scalelab.core.manifest import SHARDS_FOLDER, Manifest, ScaleEntry, ShardEntry, TokenizerEntry
from scalelab.core.checksums import file_sha256
from scalelab.core.storage import Location, parquet_file
from scalelab.pipelines.shards.tokenizer import eod_id, load_tokenizer, train_bpe

ALL_SCALE = "all"


class ShardsError(ValueError):
    """The corpus cannot give what the shards section asks (say how many tokens exist)."""


@dataclass
class ShardsResult:
    manifest: Manifest
    summary: dict[str, Any]
    resumed_units: dict[str, int] = field(default_factory=dict)


def document_key(seed: int, doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\0{doc_id}".encode(), digest_size=8).digest(), "big")


def _flat(batch: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The `tokens` list column as (flat values, offsets)."""
    col = batch.column("tokens").combine_chunks()
    return col.values.to_numpy(zero_copy_only=False), col.offsets.to_numpy()


class Tokenize:
    """Ray Data actor: the tokenizer is built once per actor, then `encode_batch` per batch."""

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


def _read_documents(paths: pa.Table) -> Iterator[pa.Table]:
    for path in paths.column("path").to_pylist():
        for batch in parquet_file(Location.of(path)).iter_batches(batch_size=1024, columns=["id", "text", "lang"]):
            yield pa.Table.from_batches([batch])


def _mark(batch: pa.Table, validation_ids: list[str], ngrams: ValidationNgrams | None,
          cfg: DecontaminationConfig) -> pa.Table:
    """Each document's split (validation / decontaminated / train) and its overlap with validation:
    `matched` of its `counted` n-grams (0 and 0 when decontamination is off)."""
    ids = batch.column("id")
    is_val = pc.is_in(ids, value_set=pa.array(validation_ids, pa.string())).to_numpy(zero_copy_only=False)
    flat, offsets = _flat(batch)
    split, matched, counted = [], [], []
    for i in range(batch.num_rows):
        o = overlap(flat[offsets[i] : offsets[i + 1] - 1], ngrams, cfg.ngram) if ngrams and not is_val[i] else None
        split.append("validation" if is_val[i] else "decontaminated" if o and is_contaminated(o, cfg) else "train")
        matched.append(o.matched if o else 0)
        counted.append(o.counted if o else 0)
    return (batch.append_column("split", pa.array(split, pa.string()))
            .append_column("matched", pa.array(matched, pa.int64()))
            .append_column("counted", pa.array(counted, pa.int64()))
            .append_column("overlapping", pa.array([int(m > 0) for m in matched], pa.int64())))


def _validation_ngrams(tokenized, validation: np.ndarray, cfg: DecontaminationConfig) -> ValidationNgrams:
    """The validation n-grams split by how many documents of the whole corpus hold them."""
    counts = tokenized.map_batches(validation_ngram_counts, batch_format="pyarrow",
                                   fn_kwargs={"validation": validation, "n": cfg.ngram})
    frequency = np.zeros(len(validation), np.int64)
    for batch in counts.iter_batches(batch_format="pyarrow", batch_size=None):
        np.add.at(frequency, batch.column("index").to_numpy(), batch.column("documents").to_numpy())
    return ValidationNgrams.split(validation, frequency, cfg.max_ngram_doc_frequency)


def _decontaminated_rows(batch: pa.Table) -> pa.Table:
    rows = batch.filter(pc.equal(batch.column("split"), "decontaminated"))
    return rows.select(["id", "n_tokens", "matched", "counted"])


def _write_decontaminated(marked, path: Location) -> None:
    """stats/decontaminated.parquet: each removed document, its tokens and its overlap, by id."""
    tables = list(marked.map_batches(_decontaminated_rows, batch_format="pyarrow").iter_batches(
        batch_format="pyarrow", batch_size=None))
    schema = pa.schema([("id", pa.string()), ("n_tokens", pa.int64()), ("matched", pa.int64()), ("counted", pa.int64())])
    table = pa.concat_tables([t.cast(schema) for t in tables]) if tables else schema.empty_table()
    table = table.take(pc.sort_indices(table, sort_keys=[("id", "ascending")]))
    table = table.append_column("overlap", pc.divide(pc.cast(table["matched"], pa.float64()), table["counted"]))
    write_parquet(path, table)


# Arrow-native filters: Ray's row-wise filter would turn the token lists into pickled objects.
def _rows_with_ids(batch: pa.Table, ids: list[str]) -> pa.Table:
    return batch.filter(pc.is_in(batch.column("id"), value_set=pa.array(ids, pa.string())))


def _train_rows(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.equal(batch.column("split"), "train"))


def _sorted_batches(ds) -> Iterator[pa.Table]:
    yield from ds.sort(["key", "id"]).iter_batches(batch_format="pyarrow", batch_size=1024)


def _train_tokenizer(cfg: CorpusConfig, docs, num_docs: int):
    """Byte-level BPE on a seeded sample: the documents with the smallest keys (about train_documents)."""
    tc, seed = cfg.shards.tokenizer, cfg.shards.seed
    share = min(1.0, 1.5 * tc.train_documents / max(1, num_docs))
    cutoff = int(share * (2**64 - 1))

    def pick(batch: pa.Table) -> pa.Table:
        keys = [document_key(seed, i) for i in batch.column("id").to_pylist()]
        mask = pa.array([k <= cutoff for k in keys])
        return batch.append_column("key", pa.array(keys, pa.uint64())).filter(mask)

    sample = docs.map_batches(pick, batch_format="pyarrow").take_all()
    sample.sort(key=lambda r: (r["key"], r["id"]))
    return train_bpe((r["text"] for r in sample[: tc.train_documents]), tc.vocab_size, tc.eod_token)


def tokenize_unit(unit: dict, out_dir: str, tokenizer_json: str, eod: int, seed: int) -> int:
    """One documents file tokenized (a unit of the `tokenize` phase)."""
    phase = Phase(out_dir, "tokenize")
    phase.mark_started(unit["name"])
    tokenize = Tokenize(tokenizer_json, eod, seed)
    paths = pa.table({"path": [unit["path"]]})
    tables = [tokenize(batch) for batch in _read_documents(paths)]
    table = pa.concat_tables(tables) if tables else None
    with atomic_path(phase.output(unit["name"])) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        maybe_fail("tokenize", unit["name"])
    phase.finish(unit["name"], documents=table.num_rows)
    return table.num_rows


def _read_tokens(paths: pa.Table) -> Iterator[pa.Table]:
    for path in paths.column("path").to_pylist():
        for batch in parquet_file(Location.of(path)).iter_batches(batch_size=1024):
            yield pa.Table.from_batches([batch])


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
    tokenized, resumed["tokenize"] = _tokenize(cfg, out, phases.tokenize, tokens, tok.to_str(), log)
    resumed["shards"] = 0
    phases.shards.mark_started("shards")
    manifest, summary = _write_shards(cfg, out, tokenized, tokens)
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
    docs = ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files)).map_batches(
        _read_documents, batch_size=1, batch_format="pyarrow")
    tok = load_tokenizer(sc.tokenizer) if sc.tokenizer.path else _train_tokenizer(cfg, docs, num_docs)
    with atomic_path(tok_path) as tmp:
        tok.save(tmp)
    phase.finish("tokenizer", sha256=file_sha256(tok_path))
    return tok, 0


def _tokenize(cfg: CorpusConfig, out: Location, phase: Phase, tokens: _TokenizedCorpus, tok_json: str,
              log) -> tuple[ray.data.Dataset, int]:
    """The `tokenize` phase (a Ray task per documents file), read back as one materialized dataset."""
    sc = cfg.shards
    task = ray.remote(max_retries=3)(tokenize_unit)
    resumed = run_units(phase, lambda u: task.remote(u, str(out.resolve()), tok_json, tokens.eod, sc.seed),
                        log, max_in_flight=sc.tokenize_workers)
    token_files = [str(phase.output(u)) for u in phase.units()]
    tokenized = ray.data.from_items([{"path": f} for f in token_files], override_num_blocks=len(token_files)).map_batches(
        _read_tokens, batch_size=1, batch_format="pyarrow").materialize()
    return tokenized, resumed


def _write_shards(cfg: CorpusConfig, out: Location, tokenized: ray.data.Dataset,
                  tokens: _TokenizedCorpus) -> tuple[Manifest, dict[str, Any]]:
    """The `shards` phase: validation, decontamination, the training stream, the manifest."""
    sc = cfg.shards
    shard_dir = out / SHARDS_FOLDER
    build_outputs.clear(out, (SHARDS_FOLDER,))  # a stopped unit's shards; never another file there
    shard_dir.mkdir()
    validation_ids, held = _choose_validation(tokenized, sc)
    val_entry, val_ngrams = _write_validation(tokenized, validation_ids, shard_dir, sc, tokens.dtype)
    split = _split(tokenized, validation_ids, val_ngrams, sc.decontamination)
    _write_decontaminated(split.marked, out / "stats" / "decontaminated.parquet")
    scales = _scales(sc, split.train_tokens, held)
    stream = _write_training_stream(split.marked, scales, shard_dir, sc, tokens.dtype)
    manifest = _manifest(cfg, out, tokens, stream.shards, val_entry, scales, split)
    manifest.save(out)
    summary = _shards_summary(tokens, manifest, split, stream, scales)
    write_json(out / "stats" / "shards.json", summary, indent=2, sort_keys=True)
    return manifest, summary


def _choose_validation(tokenized: ray.data.Dataset, sc) -> tuple[list[str], int]:
    """The smallest keys, whole documents, until the budget (tokens or documents) is met."""
    by_documents = sc.validation.documents is not None

    def filled(docs_held: int, tokens_held: int) -> bool:
        return docs_held >= sc.validation.documents if by_documents else tokens_held >= sc.validation.tokens

    validation_ids: list[str] = []
    held = 0
    for batch in _sorted_batches(tokenized.select_columns(["key", "id", "n_tokens"])):
        for doc_id, n in zip(batch.column("id").to_pylist(), batch.column("n_tokens").to_pylist()):
            if filled(len(validation_ids), held):
                break
            validation_ids.append(doc_id)
            held += n
        if filled(len(validation_ids), held):
            break
    totals = tokenized.aggregate(Count(), Sum("n_tokens"))  # one pass for both
    total_docs, total_tokens = int(totals["count()"]), int(totals["sum(n_tokens)"])
    if not filled(len(validation_ids), held) or len(validation_ids) >= total_docs:
        asked = (f"shards.validation.documents: {sc.validation.documents:,} documents" if by_documents
                 else f"shards.validation.tokens: {sc.validation.tokens:,} tokens")
        raise ShardsError(f"{asked} asked, but the corpus has {total_docs:,} documents and {total_tokens:,} tokens "
                          f"in all; lower it (and leave room for training)")
    return validation_ids, held


def _write_validation(tokenized: ray.data.Dataset, validation_ids: list[str], shard_dir: Location, sc,
                      dtype: np.dtype) -> tuple[dict[str, Any], np.ndarray]:
    """shards/validation.arrow, its entry (with the text's UTF-8 bytes) and its distinct n-gram hashes."""
    validation = tokenized.map_batches(_rows_with_ids, batch_format="pyarrow", fn_kwargs={"ids": validation_ids})
    writer = ShardWriter(shard_dir, "validation", None, sc.batch_tokens, dtype)
    val_ngrams = []
    val_bytes = 0
    for batch in _sorted_batches(validation):
        flat, offsets = _flat(batch)
        val_bytes += pc.sum(batch.column("n_bytes")).as_py() or 0
        for i, doc_id in enumerate(batch.column("id").to_pylist()):
            toks = flat[offsets[i] : offsets[i + 1]]
            writer.add(doc_id, toks)
            val_ngrams.append(ngram_hashes(toks[:-1], sc.decontamination.ngram))
    val_entry = writer.close()[0]
    val_entry["bytes"] = val_bytes  # UTF-8 bytes of the validation text: the denominator of bits per byte
    return val_entry, np.unique(np.concatenate(val_ngrams)) if val_ngrams else np.empty(0, np.uint64)


@dataclass(frozen=True)
class _Split:
    """Every document marked validation, decontaminated or train, with the counts the manifest records."""

    marked: ray.data.Dataset
    docs_by_split: dict[str, int]
    train_tokens: int
    decontamination: DecontaminationReport


def _split(tokenized: ray.data.Dataset, validation_ids: list[str], val_ngrams: np.ndarray,
           dc: DecontaminationConfig) -> _Split:
    ngrams = _validation_ngrams(tokenized, val_ngrams, dc) if dc.enabled and len(val_ngrams) else None
    marked = tokenized.map_batches(
        _mark, batch_format="pyarrow",
        fn_kwargs={"validation_ids": validation_ids, "ngrams": ngrams, "cfg": dc},
    ).materialize()
    by_split = {r["split"]: r for r in marked.groupby("split").aggregate(
        Count(), Sum("n_tokens"), Sum("overlapping")).take_all()}
    # Fixed keys in a fixed order: the groupby's row order is Ray's and must not reach the manifest.
    docs_by_split = {split: int(by_split[split]["count()"]) if split in by_split else 0
                     for split in ("validation", "train", "decontaminated")}

    def split_sum(split: str, column: str) -> int:
        return int(by_split.get(split, {}).get(f"sum({column})", 0) or 0)

    report = DecontaminationReport(
        enabled=dc.enabled, ngram=dc.ngram, min_overlap_fraction=dc.min_overlap_fraction,
        max_ngram_doc_frequency=dc.max_ngram_doc_frequency, documents=docs_by_split["decontaminated"],
        tokens=split_sum("decontaminated", "n_tokens"), documents_overlapping_kept=split_sum("train", "overlapping"),
        validation_ngrams=len(val_ngrams), frequent_ngrams=len(ngrams.frequent) if ngrams else 0)
    return _Split(marked=marked, docs_by_split=docs_by_split, train_tokens=split_sum("train", "n_tokens"),
                  decontamination=report)


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


def _write_training_stream(marked: ray.data.Dataset, scales: dict[str, int], shard_dir: Location, sc,
                           dtype: np.dtype) -> _TrainingStream:
    """The training documents in key order into fixed-size shards; tokens per language per scale on the way."""
    writer = ShardWriter(shard_dir, "train", sc.shard_tokens, sc.batch_tokens, dtype)
    position = 0
    stream = _TrainingStream(shards=[], scale_languages={name: Counter() for name in scales}, scale_documents=Counter())
    for batch in _sorted_batches(marked.map_batches(_train_rows, batch_format="pyarrow")):
        flat, offsets = _flat(batch)
        for i, (doc_id, lang) in enumerate(zip(batch.column("id").to_pylist(), batch.column("lang").to_pylist())):
            toks = flat[offsets[i] : offsets[i + 1]]
            for name, budget in scales.items():
                if position < budget:
                    stream.scale_languages[name][lang or "unknown"] += min(len(toks), budget - position)
                    stream.scale_documents[name] += 1
            writer.add(doc_id, toks)
            position += len(toks)
    stream.shards = writer.close()
    return stream


def _manifest(cfg: CorpusConfig, out: Location, tokens: _TokenizedCorpus, shards: list[dict[str, Any]],
              val_entry: dict[str, Any], scales: dict[str, int], split: _Split) -> Manifest:
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


def _shards_summary(tokens: _TokenizedCorpus, manifest: Manifest, split: _Split, stream: _TrainingStream,
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
