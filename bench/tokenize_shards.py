"""Benchmark tokenization and shard reads, per core.

1. Raw `Tokenizer.encode_batch` against scalelab's tokenize-and-shard path (the `Tokenize` actor's work
   plus writing the stream into shards) on the same real text: tokens/s and the ratio (target >= 90%).
2. Random training windows of seq_len + 1 tokens from memory-mapped shards: tokens/s.

The tokenizers library parallelizes encode_batch over threads; RAYON_NUM_THREADS=1 keeps this per core.

    python bench/tokenize_shards.py [--tokenizer ../shared/corpora/tokenizers/gpt2/tokenizer.json]
"""

from __future__ import annotations

import os
import sys

# This file shares its name with the standard library's tokenize module, which numpy imports:
# keep its folder off the import path so it doesn't shadow it.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import argparse  # noqa: E402
import glob  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from scalelab.pipelines.shards.build_shards import Tokenize  # noqa: E402
from scalelab.pipelines.shards.key_order import token_lists  # noqa: E402
from scalelab.core.shard_format import ShardReader, ShardWriter, token_dtype  # noqa: E402
from scalelab.pipelines.shards.tokenizer import train_bpe  # noqa: E402


def load_texts(corpora: Path) -> list[str]:
    import gzip

    texts = [Path(p).read_text(encoding="utf-8", errors="replace") for p in sorted(glob.glob(str(corpora / "text/shakespeare/*.txt")))]
    texts += [Path(p).read_text(encoding="utf-8", errors="replace") for p in sorted(glob.glob(str(corpora / "text/milton/*.txt")))]
    if not texts:
        texts = [gzip.open(p, "rt").read() for p in sorted((REPO / "data/sample/texts").glob("*.gz"))]
    # Split books into page-sized documents, like web text.
    return [t[i : i + 4000] for t in texts for i in range(0, len(t), 4000)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpora", default=str(REPO.parent / "shared" / "corpora"))
    ap.add_argument("--tokenizer", default=str(REPO.parent / "shared/corpora/tokenizers/gpt2/tokenizer.json"))
    ap.add_argument("--seq-len", type=int, default=1024)
    args = ap.parse_args()
    texts = load_texts(Path(args.corpora))
    if Path(args.tokenizer).is_file():
        tok, name = Tokenizer.from_file(args.tokenizer), Path(args.tokenizer).parent.name
        eod = tok.token_to_id("<|endoftext|>")
    else:
        tok, name = train_bpe(texts[:2000], 8192, "<|endoftext|>"), "trained BPE 8192"
        eod = tok.token_to_id("<|endoftext|>")
    batches = [texts[i : i + 256] for i in range(0, len(texts), 256)]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"machine: {os.cpu_count()} CPU cores, RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}; "
          f"tokenizer {name}; {len(texts)} documents, {mb:.1f} MB")

    def raw() -> int:
        return sum(len(e.ids) for b in batches for e in tok.encode_batch(b, add_special_tokens=False))

    stage = Tokenize(tok.to_str(), eod, seed=0)
    tables = [pa.table({"id": [f"d{i}_{j}" for j in range(len(b))], "text": b, "lang": ["en"] * len(b)})
              for i, b in enumerate(batches)]

    def ours(folder: str) -> int:
        writer = ShardWriter(Path(folder), "train", 1_000_000, 65536, token_dtype(tok.get_vocab_size()))
        total = 0
        for t in tables:
            out = stage(t)
            flat, offsets = token_lists(out)
            for i, doc_id in enumerate(out.column("id").to_pylist()):
                writer.add(doc_id, flat[offsets[i] : offsets[i + 1]])
            total += len(flat)
        writer.close()
        return total

    raw()  # warm up
    t = time.perf_counter(); n_raw = raw(); t_raw = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        ours(tmp)
        t = time.perf_counter(); n_ours = ours(tmp); t_ours = time.perf_counter() - t
        print(f"raw encode_batch:             {n_raw / t_raw:>12,.0f} tokens/s per core")
        print(f"scalelab tokenize + shards:   {n_ours / t_ours:>12,.0f} tokens/s per core "
              f"({(n_ours / t_ours) / (n_raw / t_raw):.0%} of raw; it also adds an end-of-document token per document)")

        readers = [ShardReader(p) for p in sorted(Path(tmp).glob("train-*.arrow")) if ".idx" not in p.name]
        rng = np.random.default_rng(0)
        windows, length = 20_000, args.seq_len + 1
        t = time.perf_counter()
        for _ in range(windows):
            r = readers[rng.integers(len(readers))]
            start = int(rng.integers(0, r.num_tokens - length))
            r.window(start, length)
        t_read = time.perf_counter() - t
        print(f"random {length}-token windows from memory-mapped shards: {windows * length / t_read:,.0f} tokens/s "
              f"({windows / t_read:,.0f} windows/s)")


if __name__ == "__main__":
    main()
