"""Clean: repair mojibake, normalize Unicode, fold runs of whitespace (keeping line structure)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import ftfy

from scalelab.pipelines.config import CleanConfig
from scalelab.pipelines.steps import Rejection

_SPACES_RE = re.compile(r"[^\S\n]+")
# Only repair broken encodings; ftfy's other defaults would rewrite correct text (curly quotes,
# full-width punctuation, ligatures), and Unicode normalization is this step's own setting.
_MOJIBAKE_ONLY = ftfy.TextFixerConfig(
    unescape_html=False, uncurl_quotes=False, fix_latin_ligatures=False,
    fix_character_width=False, normalization=None, explain=False,
)

# ftfy costs about a second per MB, and its own badness test half that, so it only sees text that
# shows a sign of mojibake: a UTF-8 lead byte decoded as cp1252/Latin-1 (Â..ô) or cp1251 (В..Я, а..п)
# followed by a decoded continuation byte, C1 control characters, or U+FFFD. Clean text in any
# script has none of these pairs, so it passes untouched at regex speed.
_CP1252_CONTINUATION = "\u0080-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178"
_CP1251_CONTINUATION = "\u0402-\u040f\u0452-\u045f\u0490\u0491\u0401\u0451\u0404\u0454\u0406\u0407\u0456\u0457\u0408\u0458\u0405\u0455\u2116\u2018-\u2026\u20ac\u2122\u00a0-\u00bb"
_MOJIBAKE_HINT_RE = re.compile(
    f"[\u00c2-\u00f4][{_CP1252_CONTINUATION}]|[\u0412-\u042f\u0430-\u043f][{_CP1251_CONTINUATION}]|[\u0080-\u009f\ufffd\x1b]"
)
_CONTROL_CHARS = {c: None for c in (*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, 0xFEFF)}
_LINE_BREAKS = {0x2028: "\n", 0x2029: "\n", 0x0085: "\n", 0x0C: "\n"}


def fix_mojibake(text: str) -> str:
    if _MOJIBAKE_HINT_RE.search(text):
        return ftfy.fix_text(text, _MOJIBAKE_ONLY)
    # What ftfy would still do to clean text: drop control characters, unify line breaks.
    return text.translate(_LINE_BREAKS).translate(_CONTROL_CHARS)
_BLANK_LINES_RE = re.compile(r"\n{3,}")


class Clean:
    stage = "clean"

    def __init__(self, cfg: CleanConfig):
        self.cfg = cfg

    def clean(self, text: str) -> str:
        if self.cfg.fix_mojibake:
            text = fix_mojibake(text)
        if self.cfg.unicode_form != "none":
            text = unicodedata.normalize(self.cfg.unicode_form, text)
        if self.cfg.collapse_whitespace:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            text = "\n".join(_SPACES_RE.sub(" ", ln).strip() for ln in text.split("\n"))
            text = _BLANK_LINES_RE.sub("\n\n", text).strip()
        return text

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        doc["text"] = self.clean(doc["text"])
        return None if doc["text"] else "empty_text"
