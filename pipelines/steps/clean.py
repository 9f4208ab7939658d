"""Clean: repair mojibake, normalize Unicode, fold runs of whitespace (keeping line structure)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import ftfy

from pipelines.config import CleanConfig
from pipelines.steps import Rejection

_SPACES_RE = re.compile(r"[^\S\n]+")
# Only repair broken encodings; ftfy's other defaults would rewrite correct text (curly quotes,
# full-width punctuation, ligatures), and Unicode normalization is this step's own setting.
_MOJIBAKE_ONLY = ftfy.TextFixerConfig(
    unescape_html=False, uncurl_quotes=False, fix_latin_ligatures=False,
    fix_character_width=False, normalization=None, explain=False,
)
_BLANK_LINES_RE = re.compile(r"\n{3,}")


class Clean:
    stage = "clean"

    def __init__(self, cfg: CleanConfig):
        self.cfg = cfg

    def clean(self, text: str) -> str:
        if self.cfg.fix_mojibake:
            text = ftfy.fix_text(text, _MOJIBAKE_ONLY)
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
