"""Language ID with langdetect on a bounded prefix, made deterministic by seeding its factory."""

from __future__ import annotations

import re
from typing import Any

from scalelab.pipelines.config import LanguageConfig
from scalelab.pipelines.steps import Rejection

UNKNOWN = "unknown"

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
        from langdetect import DetectorFactory, detector_factory

        self.cfg = cfg
        # langdetect samples n-grams at random; a seed makes the result a function of the text.
        DetectorFactory.seed = cfg.seed
        detector_factory.init_factory()  # loads the profiles once per process
        self._factory = detector_factory._factory
        self._keep = set(cfg.keep)

    def detect(self, text: str) -> tuple[str, float]:
        from langdetect.lang_detect_exception import LangDetectException

        detector = self._factory.create()
        detector.append(detection_text(text[: self.cfg.prefix_chars]))
        try:
            best = detector.get_probabilities()[0]
        except (LangDetectException, IndexError):  # no letters to judge by
            return UNKNOWN, 0.0
        return best.lang, round(float(best.prob), 6)

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        lang, score = self.detect(doc["text"])
        doc["lang"], doc["lang_score"] = lang, score
        if self._keep and lang not in self._keep:
            return ("lang", lang)
        if score < self.cfg.min_score:
            return ("lang_low_score", f"{lang}:{score:.2f}")
        return None
