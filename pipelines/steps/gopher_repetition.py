"""Gopher repetition rules (Rae et al. 2021, table A1): repeated lines, paragraphs and n-grams."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pipelines.config import GopherRepetitionConfig
from pipelines.steps import Rejection
from pipelines.steps.text_units import duplicate_stats, split_lines, split_paragraphs, split_words


def top_ngram_char_fraction(words: list[str], n: int, total_chars: int) -> float:
    """Characters in all occurrences of the most frequent n-gram, over all word characters."""
    if len(words) < n or total_chars == 0:
        return 0.0
    counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    gram, count = counts.most_common(1)[0]
    if count < 2:
        return 0.0
    return sum(len(w) for w in gram) * count / total_chars


def duplicate_ngram_char_fraction(words: list[str], n: int, total_chars: int) -> float:
    """Characters of words covered by any n-gram that occurs more than once (each word counted once)."""
    if len(words) < n or total_chars == 0:
        return 0.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = bytearray(len(words))
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[i : i + n] = b"\x01" * n
    return sum(len(w) for w, c in zip(words, covered) if c) / total_chars


class GopherRepetitionFilter:
    stage = "gopher_repetition"

    def __init__(self, cfg: GopherRepetitionConfig):
        self.cfg = cfg

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        c = self.cfg
        text = doc["text"]
        chars = len(text)

        paragraphs = split_paragraphs(text)
        if paragraphs:
            dup, dup_chars = duplicate_stats(paragraphs)
            if dup / len(paragraphs) > c.max_dup_para_frac:
                return "gopher_dup_para_frac"
            if dup_chars / chars > c.max_dup_para_char_frac:
                return "gopher_dup_para_char_frac"

        lines = split_lines(text)
        if lines:
            dup, dup_chars = duplicate_stats(lines)
            if dup / len(lines) > c.max_dup_line_frac:
                return "gopher_dup_line_frac"
            if dup_chars / chars > c.max_dup_line_char_frac:
                return "gopher_dup_line_char_frac"

        words = split_words(text)
        word_chars = sum(len(w) for w in words)
        for n, limit in sorted(c.top_ngram_max_char_frac.items()):
            frac = top_ngram_char_fraction(words, n, word_chars)
            if frac > limit:
                return (f"gopher_top_{n}gram", f"{frac:.3f}")
        for n, limit in sorted(c.dup_ngram_max_char_frac.items()):
            frac = duplicate_ngram_char_fraction(words, n, word_chars)
            if frac > limit:
                return (f"gopher_dup_{n}gram", f"{frac:.3f}")
        return None
