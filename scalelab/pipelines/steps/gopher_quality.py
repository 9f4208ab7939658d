"""Gopher quality rules (Rae et al. 2021, appendix A): length, word shape, symbols, stop words."""

from __future__ import annotations

from collections import Counter
from typing import Any

from scalelab.pipelines.config import GopherQualityConfig
from scalelab.pipelines.steps import Rejection
from scalelab.pipelines.steps.text_units import ELLIPSES, is_punctuation, split_lines, split_words

BULLETS = ("\u2022", "-", "*", "\u2023", "\u2043", "\u25e6", "\u25aa", "\u25cf")


class GopherQualityFilter:
    stage = "gopher_quality"

    def __init__(self, cfg: GopherQualityConfig):
        self.cfg = cfg
        self._stop_words = {w.lower() for w in cfg.stop_words}
        self._stop_langs = set(cfg.stop_words_languages) if cfg.stop_words_languages is not None else None

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        c = self.cfg
        text = doc["text"]
        # Each distinct word once: pages repeat their words, and every rule below is a sum over words.
        words = {w: k for w, k in Counter(split_words(text)).items() if not is_punctuation(w)}
        n = sum(words.values())
        if n < c.min_words:
            return ("gopher_short_doc", str(n))
        if n > c.max_words:
            return ("gopher_long_doc", str(n))
        mean_len = sum(len(w) * k for w, k in words.items()) / n
        if not c.min_mean_word_length <= mean_len <= c.max_mean_word_length:
            return ("gopher_word_length", f"{mean_len:.2f}")
        if text.count("#") / n > c.max_symbol_word_ratio:
            return "gopher_hash_ratio"
        if sum(text.count(e) for e in ELLIPSES) / n > c.max_symbol_word_ratio:
            return "gopher_ellipsis_ratio"
        lines = split_lines(text)
        if lines:
            if sum(ln.startswith(BULLETS) for ln in lines) / len(lines) > c.max_bullet_lines_ratio:
                return "gopher_bullet_lines"
            if sum(ln.endswith(ELLIPSES) for ln in lines) / len(lines) > c.max_ellipsis_lines_ratio:
                return "gopher_ellipsis_lines"
        if sum(k for w, k in words.items() if any(map(str.isalpha, w))) / n < c.min_alpha_words_ratio:
            return "gopher_alpha_words"
        if self._stop_langs is None or doc.get("lang") in self._stop_langs or doc.get("lang") is None:
            # Occurrences, as datatrove counts them (the paper's wording allows either reading).
            if sum(k for w, k in words.items() if w.lower() in self._stop_words) < c.min_stop_words:
                return "gopher_stop_words"
        return None
