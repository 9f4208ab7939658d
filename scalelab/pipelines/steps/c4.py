"""C4 rules (Raffel et al. 2020, section 2.2): keep sentence-like lines, drop boilerplate pages.

Unlike the other filters this one edits the text: the lines it removes are gone from the output.
"""

from __future__ import annotations

import re
from typing import Any

from scalelab.pipelines.config import C4Config
from scalelab.pipelines.steps import Rejection
from scalelab.pipelines.steps.text_units import TERMINAL_PUNCTUATION

_CITATION_RE = re.compile(r"\[\d+\]|\[citation needed\]|\[edit\]|\[update\]", re.I)
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
# Latin sentence ends need a space (or the end) after them, so "3.14" and "apt-get.conf" don't count;
# CJK full stops are followed directly by the next sentence.
_SENTENCE_END_RE = re.compile(r"[.!?]+(?=\s|$|[\"'\u201d\u2019])|[\u3002\uff01\uff1f]+")


def count_sentences(text: str) -> int:
    return len(_SENTENCE_END_RE.findall(text))


class C4Filter:
    stage = "c4"

    def __init__(self, cfg: C4Config):
        self.cfg = cfg

    def keep_line(self, line: str) -> str | None:
        """The line as kept, or None if a line rule removes it."""
        c = self.cfg
        words = line.split()
        if words and max(map(len, words)) > c.max_word_length:
            return None
        if c.remove_citations:
            line = _CITATION_RE.sub("", line).strip()
        if c.require_terminal_punctuation and (not line.endswith(TERMINAL_PUNCTUATION) or line.endswith("...")):
            return None
        if len(line.split()) < c.min_words_per_line:
            return None
        lower = line.lower()
        if c.drop_javascript_lines and "javascript" in lower:
            return None
        if c.drop_policy_lines and any(p in lower for p in _POLICY):
            return None
        return line

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        c = self.cfg
        text = doc["text"]
        if c.drop_lorem_ipsum and "lorem ipsum" in text.lower():
            return "c4_lorem"
        if c.drop_curly_bracket and "{" in text:
            return "c4_curly_bracket"
        kept = [k for k in (self.keep_line(ln.strip()) for ln in text.split("\n") if ln.strip()) if k]
        new_text = "\n".join(kept)
        if count_sentences(new_text) < c.min_sentences:
            return ("c4_too_few_sentences", str(count_sentences(new_text)))
        doc["text"] = new_text
        return None
