"""Per-document steps of a corpus build, applied in order inside each task of the `process` phase
(one Ray task per unit of input files).

A step looks at one document (a dict, see `scalelab.pipelines.schema`) and either returns None (keep,
possibly after changing `text`) or a rejection: a reason string, or (reason, detail). The
runner records the rejection on the document and skips the remaining steps for it.
"""

from __future__ import annotations

from typing import Optional, Protocol, Union

from scalelab.pipelines.config import CorpusConfig, FilterScope
from scalelab.pipelines.schema import Document

Rejection = Optional[Union[str, tuple[str, str]]]


class Step(Protocol):
    stage: str

    def __call__(self, doc: Document) -> Rejection: ...


class Scoped:
    """Runs a filter only on documents of the languages its config names."""

    def __init__(self, step: Step, scope: FilterScope):
        self.stage = step.stage
        self._step = step
        self._languages = set(scope.languages) if scope.languages is not None else None

    def __call__(self, doc: Document) -> Rejection:
        if self._languages is not None and doc.get("lang") not in self._languages:
            return None
        return self._step(doc)


def build_steps(cfg: CorpusConfig) -> list[Step]:
    """The enabled steps in pipeline order (FineWeb's order for the filters)."""
    # Imported here: each step module imports Step and Scoped from this package (a cycle at import time).
    from scalelab.pipelines.steps.c4 import C4Filter
    from scalelab.pipelines.steps.clean import Clean
    from scalelab.pipelines.steps.extract import Extract
    from scalelab.pipelines.steps.fineweb import FineWebFilter
    from scalelab.pipelines.steps.gopher_quality import GopherQualityFilter
    from scalelab.pipelines.steps.gopher_repetition import GopherRepetitionFilter
    from scalelab.pipelines.steps.language import LanguageId
    from scalelab.pipelines.steps.pii import PiiRedactor

    f = cfg.filters
    steps: list[Step] = [Extract(cfg.extract), Clean(cfg.clean)]
    if f.language.enabled:
        steps.append(LanguageId(f.language))
    for scope, make in (
        (f.gopher_repetition, GopherRepetitionFilter),
        (f.gopher_quality, GopherQualityFilter),
        (f.c4, C4Filter),
        (f.fineweb, FineWebFilter),
    ):
        if scope.enabled:
            steps.append(Scoped(make(scope), scope))
    if cfg.pii.enabled:
        steps.append(PiiRedactor(cfg.pii))
    return steps


def run_steps(docs: list[Document], steps: list[Step]) -> list[Document]:
    for doc in docs:
        if doc["drop_reason"] is not None:
            continue
        for step in steps:
            rejection = step(doc)
            if rejection is not None:
                reason, detail = rejection if isinstance(rejection, tuple) else (rejection, None)
                doc["drop_stage"], doc["drop_reason"], doc["drop_detail"] = step.stage, reason, detail
                break
    return docs
