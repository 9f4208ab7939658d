"""FineWeb's own quality rules (Penedo et al. 2024): punctuation, short lines, repeats, newlines."""

from __future__ import annotations

from typing import Any

from scalelab.pipelines.config import FineWebConfig
from scalelab.pipelines.steps import Rejection
from scalelab.pipelines.steps.text_units import TERMINAL_PUNCTUATION, duplicate_stats, split_lines, split_words


class FineWebFilter:
    stage = "fineweb"

    def __init__(self, cfg: FineWebConfig):
        self.cfg = cfg

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        c = self.cfg
        text = doc["text"]
        lines = split_lines(text)
        if not lines:
            return "fineweb_empty"
        punct = sum(ln.endswith(TERMINAL_PUNCTUATION) for ln in lines) / len(lines)
        if punct < c.min_line_punct_ratio:
            return ("fineweb_line_punct", f"{punct:.3f}")
        short = sum(len(ln) <= c.short_line_length for ln in lines) / len(lines)
        if short > c.max_short_line_ratio:
            return ("fineweb_short_lines", f"{short:.3f}")
        _, dup_chars = duplicate_stats(lines)
        dup_ratio = dup_chars / max(1, len(text.replace("\n", "")))
        if dup_ratio > c.max_dup_line_char_ratio:
            return ("fineweb_dup_lines", f"{dup_ratio:.3f}")
        words = split_words(text)
        if text.count("\n") / max(1, len(words)) > c.max_newline_word_ratio:
            return "fineweb_newlines"
        return None
