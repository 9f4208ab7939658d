"""Quality rules on real text: Shakespeare, the Debian handbook, the IANA crawl, and their corruptions."""

from __future__ import annotations

import gzip

import pytest

from scalelab.pipelines.config import C4Config, FineWebConfig, GopherQualityConfig, GopherRepetitionConfig
from scalelab.pipelines.steps.c4 import C4Filter, count_sentences
from scalelab.pipelines.steps.fineweb import FineWebFilter
from scalelab.pipelines.steps.gopher_quality import GopherQualityFilter
from scalelab.pipelines.steps.gopher_repetition import (
    GopherRepetitionFilter,
    duplicate_ngram_char_fraction,
    top_ngram_char_fraction,
)
from tests.conftest import SAMPLE

# Real prose: the opening of the Debian handbook's section on apt (en-US).
HANDBOOK = (
    "APT is a vast project, whose original plans included a graphical interface. It is based on a library "
    "which contains the core application, and apt-get is the first front end — command-line based — which was "
    "developed within the project. apt is a second command-line based front end provided by APT which overcomes "
    "some design mistakes of apt-get.\n"
    "Both tools are built on top of the same library and are thus very close, but the default behavior of apt "
    "has been improved for interactive use and to actually do what most users expect. The APT developers reserve "
    "the right to change the public interface of this tool to further improve it. Conversely, the public "
    "interface of apt-get is well defined and will not change in any backwards incompatible way. It is thus the "
    "tool that you want to use when you need to script package installation requests."
)


def doc(text: str, lang: str | None = "en") -> dict:
    return {"text": text, "lang": lang}


def hamlet() -> str:
    return gzip.open(SAMPLE / "texts" / "hamlet_gut.txt.gz", "rt", encoding="utf-8").read()


class TestGopherQuality:
    f = GopherQualityFilter(GopherQualityConfig())

    def test_keeps_real_prose(self):
        assert self.f(doc(HANDBOOK)) is None

    def test_short_document(self):
        assert self.f(doc("IANA — Number Resources. Contact us."))[0] == "gopher_short_doc"

    def test_long_document(self):
        small = GopherQualityFilter(GopherQualityConfig(max_words=100))
        assert small(doc(HANDBOOK))[0] == "gopher_long_doc"

    def test_stop_words_required_in_english_only(self):
        # The handbook text with every stop word removed: still fine words, but no function words.
        stop = {"the", "be", "to", "of", "and", "that", "have", "with"}
        stripped = " ".join(w for w in HANDBOOK.split() if w.lower() not in stop)
        assert self.f(doc(stripped)) == "gopher_stop_words"
        assert self.f(doc(stripped, lang="fr")) is None  # the rule is English-only by default

    def test_hash_symbols(self):
        tagged = " ".join(f"#{w}" for w in HANDBOOK.split()[:80])
        assert self.f(doc(tagged)) == "gopher_hash_ratio"

    def test_bullet_lines(self):
        lines = "\n".join(f"• {w} package manager entry" for w in HANDBOOK.split()[:60])
        assert self.f(doc(lines)) == "gopher_bullet_lines"

    def test_ellipsis_lines(self):
        lines = "\n".join(s.strip() + "..." for s in HANDBOOK.split(".") if s.strip())
        assert self.f(doc(lines)) in ("gopher_ellipsis_lines", "gopher_ellipsis_ratio")

    def test_numeric_tables_fail_alpha_rule(self):
        # The IANA statistics pages are mostly numbers.
        table = " ".join(f"{y}-{m:02d} {y * m * 7919} {m * 31}.5" for y in range(2000, 2015) for m in range(1, 4))
        assert self.f(doc(table + " the of and to")) == "gopher_alpha_words"

    def test_mean_word_length(self):
        assert self.f(doc(" ".join(["a b c d e the of and"] * 20)))[0] == "gopher_word_length"


class TestGopherRepetition:
    f = GopherRepetitionFilter(GopherRepetitionConfig())

    def test_keeps_a_real_play(self):
        # Hamlet repeats speaker names a lot, yet passes: the thresholds were set on real text.
        assert self.f(doc(hamlet()[20000:60000])) is None

    def test_repeated_lines(self):
        text = "\n".join(["Something is rotten in the state of Denmark."] * 4 + HANDBOOK.split(". ")[:4])
        assert self.f(doc(text)) in ("gopher_dup_para_char_frac", "gopher_dup_line_frac", "gopher_dup_line_char_frac")

    def test_repeated_paragraphs(self):
        paras = HANDBOOK.split("\n")
        text = "\n\n".join([paras[0], paras[0], paras[1], paras[0]])
        assert self.f(doc(text)) in ("gopher_dup_para_frac", "gopher_dup_para_char_frac")

    def test_top_ngram(self):
        words = HANDBOOK.split()[:60]
        text = " ".join(w + " apt-get install" for w in words)  # one bigram everywhere
        assert self.f(doc(text))[0] == "gopher_top_2gram"

    def test_duplicated_ngram_fraction_by_hand(self):
        words = "to be or not to be that is".split()
        # "to be" appears twice: words 0,1 and 4,5 are covered -> (2+2+2+2) / 21 chars
        total = sum(len(w) for w in words)
        assert duplicate_ngram_char_fraction(words, 2, total) == pytest.approx(8 / total)
        assert top_ngram_char_fraction(words, 2, total) == pytest.approx(4 * 2 / total)
        assert duplicate_ngram_char_fraction(words, 5, total) == 0.0


class TestC4:
    f = C4Filter(C4Config())

    def test_keeps_prose_and_drops_menu_lines(self):
        page = "Domains\nNumbers\nProtocols\nAbout IANA\n" + HANDBOOK + "\nPlease enable JavaScript to view this page.\n"
        d = doc(page)
        assert self.f(d) is None
        assert "Domains" not in d["text"] and "JavaScript" not in d["text"]
        assert d["text"].startswith("APT is a vast project")

    def test_citations_are_stripped(self):
        d = doc(HANDBOOK.replace("graphical interface.", "graphical interface.[1]").replace("apt-get.\n", "apt-get.[citation needed]\n"))
        assert self.f(d) is None
        assert "[1]" not in d["text"] and "[citation needed]" not in d["text"]

    def test_lorem_ipsum(self):
        assert self.f(doc(HANDBOOK + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.")) == "c4_lorem"

    def test_curly_bracket(self):
        assert self.f(doc(HANDBOOK + "\nfunction f() { return 1; }")) == "c4_curly_bracket"
        assert C4Filter(C4Config(drop_curly_bracket=False))(doc(HANDBOOK + "\nx { y }.")) is None

    def test_policy_lines(self):
        d = doc(HANDBOOK + "\nBy using this site you agree to our Privacy Policy and Terms of Use.")
        assert self.f(d) is None and "Privacy Policy" not in d["text"]

    def test_too_few_sentences(self):
        assert self.f(doc("Grml is a live CD. It has many tools. It is based on Debian."))[0] == "c4_too_few_sentences"

    def test_verse_without_terminal_punctuation_is_removed(self):
        verse = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
        d = doc(verse + HANDBOOK)
        assert self.f(d) is None and "nobler" not in d["text"]

    def test_sentence_count(self):
        assert count_sentences("One. Two! Three? Four.") == 4
        assert count_sentences("版本一。版本二。") == 2


class TestFineWeb:
    f = FineWebFilter(FineWebConfig())

    def test_keeps_real_prose(self):
        assert self.f(doc(HANDBOOK)) is None

    def test_navigation_page(self):
        nav = "\n".join(["Domains", "Numbers", "Protocols", "About IANA", "Contact", "Reports"] * 3)
        assert self.f(doc(nav))[0] in ("fineweb_line_punct", "fineweb_short_lines")

    def test_short_lines(self):
        lines = "\n".join(f"Item {i} is ready." for i in range(40)) + "\n" + HANDBOOK
        assert self.f(doc(lines))[0] == "fineweb_short_lines"

    def test_duplicate_lines(self):
        text = HANDBOOK + "\n" + HANDBOOK.split("\n")[0]
        assert self.f(doc(text))[0] == "fineweb_dup_lines"

    def test_newlines_per_word(self):
        # Long, unique, punctuated lines of three words each: only the newline rule objects.
        text = "\n".join(f"Administration{i} internationalization documentation." for i in range(30))
        assert self.f(doc(text)) == "fineweb_newlines"


def _reference_top(words, n):
    from collections import Counter

    total = sum(len(w) for w in words)
    counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    gram, count = counts.most_common(1)[0]
    return 0.0 if count < 2 else sum(len(w) for w in gram) * count / total


def _reference_duplicate(words, n):
    from collections import Counter

    total = sum(len(w) for w in words)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(words)
    for i, g in enumerate(grams):
        if counts[g] > 1:
            covered[i : i + n] = [True] * n
    return sum(len(w) for w, c in zip(words, covered) if c) / total


@pytest.mark.parametrize("name", ["hamlet_gut.txt.gz", "sonnets_gut.txt.gz", "macbeth_gut_f.txt.gz"])
def test_vectorized_ngrams_match_the_plain_definition(name):
    from scalelab.pipelines.steps.gopher_repetition import WordNgrams
    from scalelab.pipelines.steps.text_units import split_words

    words = split_words(gzip.open(SAMPLE / "texts" / name, "rt", encoding="utf-8").read())[:20000]
    grams = WordNgrams(words)
    for n in (2, 3, 4):
        assert grams.top_char_fraction(n) == pytest.approx(_reference_top(words, n), abs=1e-12)
    for n in range(5, 11):
        assert grams.duplicate_char_fraction(n) == pytest.approx(_reference_duplicate(words, n), abs=1e-12)


def test_long_ngrams_found_from_shorter_ones_match_the_plain_definition():
    """Repeated n-grams found among the positions where (n-1)-grams repeat equal a full count, on
    texts dense in repeats, asked in the rules' order, out of order, and with no shorter n known."""
    import random

    from scalelab.pipelines.steps.gopher_repetition import WordNgrams

    rng = random.Random(0)
    for trial in range(300):
        words = [rng.choice("ab cd efg h ij".split()) for _ in range(rng.randint(0, 60))]
        in_order, alone = WordNgrams(words), WordNgrams(words)
        for n in (2, 3, 4):
            assert in_order.top_char_fraction(n) == pytest.approx(_reference_top(words, n) if len(words) >= n else 0.0)
        for n in (10, 7, 5, 6, 9, 8) if trial % 2 else range(5, 11):
            expected = _reference_duplicate(words, n) if len(words) >= n else 0.0
            assert in_order.duplicate_char_fraction(n) == pytest.approx(expected), (words, n)
        n = rng.randint(5, 10)
        assert alone.duplicate_char_fraction(n) == pytest.approx(_reference_duplicate(words, n) if len(words) >= n else 0.0)
