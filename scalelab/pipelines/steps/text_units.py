"""Words, lines and paragraphs as the quality rules count them."""

from __future__ import annotations

import re

# Han and kana are written without spaces: each character counts as a word.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD_RE = re.compile(rf"[{_UNSPACED}]|[^\s{_UNSPACED}]+")
_PARAGRAPH_RE = re.compile(r"\n\s*\n")

TERMINAL_PUNCTUATION = (".", "!", "?", '"', "\u201d", "\u3002", "\uff01", "\uff1f")
ELLIPSES = ("...", "\u2026")


# The words of the text split last, as one tuple (one assignment, so threads never see half of it):
# the Gopher repetition and quality rules run one after the other on the same text, and splitting
# it is a large part of their cost.
_last_split: tuple[str | None, list[str]] = (None, [])


def split_words(text: str) -> list[str]:
    """The text's words; the list may be shared with the previous caller, so it must not be changed."""
    global _last_split
    last_text, words = _last_split
    if text is not last_text:  # identity, not equality: a new text is never mistaken for the last
        words = _WORD_RE.findall(text)
        _last_split = (text, words)
    return words


_ALNUM_RE = re.compile(r"[^\W_]")


def is_punctuation(token: str) -> bool:
    """A token with no letter or digit: punctuation and symbols such as "—", "...", "#", "&"."""
    return _ALNUM_RE.search(token) is None


def split_lines(text: str) -> list[str]:
    """Non-empty lines, stripped."""
    return [ln.strip() for ln in text.split("\n") if ln.strip()]


def split_paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_RE.split(text) if p.strip()]


def duplicate_stats(items: list[str]) -> tuple[int, int]:
    """(number of items that repeat an earlier one, characters in those repeats)."""
    seen: set[str] = set()
    dup_items = dup_chars = 0
    for item in items:
        if item in seen:
            dup_items += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup_items, dup_chars
