"""Gopher repetition rules (Rae et al. 2021, table A1): repeated lines, paragraphs and n-grams."""

from __future__ import annotations

from typing import Any

import numpy as np

from scalelab.pipelines.config import GopherRepetitionConfig
from scalelab.pipelines.steps import Rejection
from scalelab.pipelines.steps.text_units import duplicate_stats, split_lines, split_paragraphs, split_words


class WordNgrams:
    """Counts of every word n-gram of a document, computed with numpy.

    Each word gets an integer id; an n-gram's key is a 64-bit polynomial hash of its ids,
    extended from the (n-1)-gram keys, so all n from 2 to 10 cost a few vector passes each.
    (A 64-bit collision would merge two n-grams; at document sizes that chance is ~1e-11.)
    Call with n increasing, as the rules do: `repeated` builds on the n-grams one shorter.
    """

    _MULT = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, words: list[str]):
        # ids from 1 in order of first occurrence; map() keeps the per-word work in C
        ids = {w: i for i, w in enumerate(dict.fromkeys(words), start=1)}
        self.ids = np.fromiter(map(ids.__getitem__, words), dtype=np.uint64, count=len(words))
        self.lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        self.total_chars = int(self.lengths.sum())
        self._n = 1
        self._keys = self.ids.copy()
        self._char_csum = np.concatenate([[0], np.cumsum(self.lengths)])
        self._repeated: dict[int, np.ndarray] = {}  # n -> whether each position's n-gram repeats

    def keys(self, n: int) -> np.ndarray:
        """Hash keys of the n-grams starting at each position 0 .. len-n."""
        if n < self._n:
            self._n, self._keys = 1, self.ids.copy()
        with np.errstate(over="ignore"):
            while self._n < n:
                self._keys = self._keys[:-1] * self._MULT + self.ids[self._n :]
                self._n += 1
        return self._keys

    def top_char_fraction(self, n: int) -> float:
        """Characters in all occurrences of the most frequent n-gram, over all word characters."""
        if len(self.ids) < n or self.total_chars == 0:
            return 0.0
        keys = self.keys(n)
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        self._repeated[n] = counts[inverse] > 1
        top = int(counts.max())
        if top < 2:
            return 0.0
        # Among equally frequent n-grams, the one that occurs first (as Counter.most_common picks).
        start = int(first[counts == top].min())
        gram_chars = int(self._char_csum[start + n] - self._char_csum[start])
        return gram_chars * top / self.total_chars

    def duplicate_char_fraction(self, n: int) -> float:
        """Characters of words covered by any n-gram occurring more than once (each word once)."""
        if len(self.ids) < n or self.total_chars == 0:
            return 0.0
        starts = np.flatnonzero(self.repeated(n))
        if starts.size == 0:
            return 0.0
        cover = np.zeros(len(self.ids) + 1, dtype=np.int64)
        np.add.at(cover, starts, 1)
        np.add.at(cover, starts + n, -1)
        covered = np.cumsum(cover[:-1]) > 0
        return int(self.lengths[covered].sum()) / self.total_chars

    def repeated(self, n: int) -> np.ndarray:
        """Whether the n-gram at each position occurs more than once.

        An n-gram repeats only where the (n-1)-grams at its position and the next one both repeat,
        so once the shorter n-grams are known only those candidates are sorted: in ordinary prose
        few are, and the longer n-grams cost almost nothing."""
        keys = self.keys(n)
        shorter = self._repeated.get(n - 1)
        if shorter is None:
            _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
            mask = counts[inverse] > 1
        else:
            candidates = np.flatnonzero(shorter[:-1] & shorter[1:])
            _, inverse, counts = np.unique(keys[candidates], return_inverse=True, return_counts=True)
            mask = np.zeros(len(keys), bool)
            mask[candidates[counts[inverse] > 1]] = True
        self._repeated[n] = mask
        return mask


def top_ngram_char_fraction(words: list[str], n: int, total_chars: int | None = None) -> float:
    return WordNgrams(words).top_char_fraction(n)


def duplicate_ngram_char_fraction(words: list[str], n: int, total_chars: int | None = None) -> float:
    return WordNgrams(words).duplicate_char_fraction(n)


class GopherRepetitionFilter:
    stage = "gopher_repetition"

    def __init__(self, cfg: GopherRepetitionConfig):
        self.cfg = cfg

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        c = self.cfg
        text = doc["text"]
        chars = len(text)

        for unit, split, max_frac, max_char_frac in (
            ("para", split_paragraphs, c.max_dup_para_frac, c.max_dup_para_char_frac),
            ("line", split_lines, c.max_dup_line_frac, c.max_dup_line_char_frac),
        ):
            items = split(text)
            if items:
                dup, dup_chars = duplicate_stats(items)
                if dup / len(items) > max_frac:
                    return f"gopher_dup_{unit}_frac"
                if dup_chars / chars > max_char_frac:
                    return f"gopher_dup_{unit}_char_frac"

        grams = WordNgrams(split_words(text))
        for n, limit in sorted(c.top_ngram_max_char_frac.items()):
            frac = grams.top_char_fraction(n)
            if frac > limit:
                return (f"gopher_top_{n}gram", f"{frac:.3f}")
        for n, limit in sorted(c.dup_ngram_max_char_frac.items()):
            frac = grams.duplicate_char_fraction(n)
            if frac > limit:
                return (f"gopher_dup_{n}gram", f"{frac:.3f}")
        return None
