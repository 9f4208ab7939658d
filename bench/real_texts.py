"""The real texts the benchmarks share: the shared corpora's Debian handbook pages, extracted and
cleaned by the build's own steps, and optionally the public-domain books; the repository's sample
texts when the shared corpora are absent."""

from __future__ import annotations

import glob
import gzip
from pathlib import Path

from scalelab.pipelines.config import CleanConfig, ExtractConfig
from scalelab.pipelines.schema import new_document
from scalelab.pipelines.steps.clean import Clean
from scalelab.pipelines.steps.extract import Extract

REPO = Path(__file__).resolve().parent.parent


def handbook_texts(corpora: Path, with_books: bool = False) -> list[str]:
    texts = []
    extract, clean = Extract(ExtractConfig()), Clean(CleanConfig())
    for p in sorted(glob.glob(str(corpora / "html/debian-handbook/*/*.html"))):
        raw = Path(p).read_bytes()
        d = new_document(id=p, source=p, content_type="text/html", raw=raw, raw_bytes=len(raw))
        if extract(d) is None and clean(d) is None:
            texts.append(d["text"])
    if with_books:
        texts += [Path(p).read_text(encoding="utf-8", errors="replace")
                  for p in sorted(glob.glob(str(corpora / "text/shakespeare/*.txt")))]
    if not texts:  # no shared corpora: the repository's sample
        texts = [gzip.open(p, "rt").read() for p in sorted((REPO / "data/sample/texts").glob("*.gz"))]
    return texts
