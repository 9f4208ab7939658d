"""Cleaning skips ftfy where it cannot change the text, and its output is byte-identical to running
ftfy on everything: on every page of the Debian handbook in the shared corpora (ten languages,
when the corpora are beside the checkout), the committed pages, the books, and the same texts
broken by a wrong decode, which must still take the full path and come out the same."""

from __future__ import annotations

import glob
from pathlib import Path

import ftfy
import pytest

from scalelab.pipelines.config import CleanConfig, ExtractConfig
from scalelab.pipelines.schema import new_document
from scalelab.pipelines.steps.clean import _MOJIBAKE_ONLY, Clean, fix_mojibake
from scalelab.pipelines.steps.extract import Extract
from tests.conftest import DATA, REPO

CORPORA = REPO.parent / "shared" / "corpora"
PREFIX = 6000  # characters of each text: the whole of most pages, a bounded cost for the books


def extracted_texts() -> list[tuple[str, str]]:
    pages = sorted(glob.glob(str(CORPORA / "html/debian-handbook/*/*.html"))) + sorted(map(str, (DATA / "handbook").glob("*.html")))
    extract = Extract(ExtractConfig())
    texts = []
    for p in pages:
        raw = Path(p).read_bytes()
        d = new_document(id=p, source=p, content_type="text/html", raw=raw, raw_bytes=len(raw))
        if extract(d) is None:  # extraction only: Clean's input as a build gives it
            texts.append(("/".join(Path(p).parts[-2:]), d["text"][:PREFIX]))
    books = sorted(glob.glob(str(CORPORA / "text/*/*.txt")))[:40]
    texts += [(Path(p).name, Path(p).read_text(encoding="utf-8", errors="replace")[:PREFIX]) for p in books]
    return texts


def full_clean(cfg: CleanConfig, text: str) -> str:
    """Clean as it was before the fast path: ftfy on every text, then the rest of the step."""
    rest = Clean(cfg.model_copy(update={"fix_mojibake": False}))
    return rest.clean(ftfy.fix_text(text, _MOJIBAKE_ONLY))


@pytest.fixture(scope="module")
def texts():
    found = extracted_texts()
    assert len(found) >= 20
    return found


def test_clean_text_takes_the_fast_path_with_identical_output(texts):
    cfg = CleanConfig()
    differ = [name for name, text in texts if Clean(cfg).clean(text) != full_clean(cfg, text)]
    assert not differ, differ[:10]
    assert all(fix_mojibake(t) == ftfy.fix_text(t, _MOJIBAKE_ONLY) for _, t in texts)


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_mojibake_still_gets_repaired_identically(texts, encoding):
    cfg = CleanConfig()
    checked = 0
    for name, text in texts[::25]:
        try:
            broken = text[:800].encode("utf-8").decode(encoding)
        except UnicodeDecodeError:
            continue
        if broken == text[:800]:
            continue  # ASCII: nothing to break
        assert Clean(cfg).clean(broken) == full_clean(cfg, broken), (name, encoding)
        checked += 1
    assert checked >= 10


def test_the_split_regex_decides_exactly_as_ftfys_regex():
    """Cut into alternatives with their required characters, ftfy's badness regex still matches
    exactly where it matches whole (per line), on random strings dense in the characters it names."""
    import random
    import re

    from ftfy.badness import BADNESS_RE

    from scalelab.pipelines.steps.clean import _ALTERNATIVES, _may_hold_mojibake

    assert len(_ALTERNATIVES) > 30 and all(a.needs for a in _ALTERNATIVES)
    per_line = re.compile(BADNESS_RE.pattern, BADNESS_RE.flags | re.MULTILINE)
    named = sorted({c for a in _ALTERNATIVES for needs in a.needs for c in needs})
    pool = named + list("aeiouAZ xy.,?!'\n") + ["\xa0", "°", "é", "а", "Ђ"]
    rng = random.Random(0)
    matched = 0
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(2, 12)))
        expected = bool(per_line.search(text))
        assert _may_hold_mojibake(text) == expected, repr(text)
        matched += expected
    assert 1000 < matched < 19000  # both answers were exercised


def per_line_whitespace(text: str) -> str:
    """The whitespace rule as first written: each line's runs of spaces made one, the line stripped."""
    import re

    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(re.sub(r"[^\S\n]+", " ", ln).strip() for ln in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def test_whole_text_whitespace_rule_equals_the_per_line_one(texts):
    """Collapsing whitespace in passes over the whole text gives what stripping line by line gave, on
    real pages and on random strings dense in every kind of whitespace."""
    import random

    cfg = CleanConfig(fix_mojibake=False, unicode_form="none")
    assert all(Clean(cfg).clean(t) == per_line_whitespace(t) for _, t in texts)
    pool = list(" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000ab.")
    rng = random.Random(0)
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 14)))
        assert Clean(cfg).clean(text) == per_line_whitespace(text), repr(text)
