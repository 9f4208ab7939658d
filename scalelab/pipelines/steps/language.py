"""Language ID on a bounded prefix, by the backend the config names (see language_backends);
langdetect and langdetect-rs are made deterministic by a seed."""

from __future__ import annotations

import re
from typing import Any

from scalelab.pipelines.config import LanguageConfig
from scalelab.pipelines.steps import Rejection
from scalelab.pipelines.steps.language_backends import UNKNOWN, make_backend  # noqa: F401 (UNKNOWN: re-exported)

_CJK_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_LATIN_RE = re.compile("[A-Za-z\u00c0-\u024f]+")
# A Han, kana or Hangul character carries about as much as a short Latin word, so a page with
# a third as many of them as Latin letters is mostly CJK prose with embedded commands or names.
CJK_WEIGHT = 3


def detection_text(text: str) -> str:
    """The text langdetect should judge: CJK-dominant text without its Latin-script runs.

    langdetect samples character n-grams, so the Latin letters of commands and names embedded in
    Chinese or Japanese prose outvote the Han characters and the page is labelled `en`.
    """
    cjk = len(_CJK_RE.findall(text))
    if cjk and cjk * CJK_WEIGHT >= sum(len(m) for m in _LATIN_RE.findall(text)):
        return _LATIN_RE.sub(" ", text)
    return text


class LanguageId:
    stage = "language"

    def __init__(self, cfg: LanguageConfig):
        self.cfg = cfg
        self.backend = make_backend(cfg.backend, cfg.seed)  # loads profiles or model once per process
        self._keep = set(cfg.keep)

    def detect(self, text: str) -> tuple[str, float]:
        prefix = text[: self.cfg.prefix_chars]
        return self.backend.detect(detection_text(prefix) if self.backend.samples_ngrams else prefix)

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        lang, score = self.detect(doc["text"])
        doc["lang"], doc["lang_score"] = lang, score
        if self._keep and lang not in self._keep:
            return ("lang", lang)
        if score < self.cfg.min_score:
            return ("lang_low_score", f"{lang}:{score:.2f}")
        return None
