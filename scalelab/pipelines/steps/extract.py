"""Extract: decode the payload by its declared charset and turn HTML into plain text.

Charset order: the HTTP/`Content-Type` charset, then the HTML's own declaration and byte
statistics (resiliparse's detector), then UTF-8 and Windows-1252 as fallbacks.
Each document gets a wall-clock limit; one that hits it is dropped as `extract_timeout`
rather than hanging the task.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from scalelab.pipelines.config import ExtractConfig
from scalelab.pipelines.steps import Rejection

_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)


class ExtractTimeout(Exception):
    pass


def decode(payload: bytes, content_type: str | None) -> str:
    declared = _CHARSET_RE.search(content_type or "")
    encoding = declared.group(1) if declared else detect_encoding(payload)
    try:
        return bytes_to_str(payload, encoding)
    except LookupError:  # an unknown charset label in the header
        return bytes_to_str(payload, detect_encoding(payload))


def _resiliparse(html: str, main_content: bool) -> str:
    return extract_plain_text(html, preserve_formatting=True, main_content=main_content,
                              list_bullets=True, alt_texts=False, comments=False)


def _trafilatura(html: str, main_content: bool) -> str:
    import trafilatura

    return trafilatura.extract(html, include_comments=False, include_tables=True,
                               no_fallback=not main_content, favor_recall=not main_content) or ""


def run_with_timeout(fn: Callable[[], str], seconds: float) -> str:
    """Run `fn`, raising ExtractTimeout after `seconds`.

    In a main thread (where Ray runs task code) SIGALRM interrupts Python-level work such as
    trafilatura's. Elsewhere the call runs in a helper thread that is abandoned on timeout.
    """
    if threading.current_thread() is threading.main_thread():
        def on_alarm(signum: int, frame: Any) -> None:
            raise ExtractTimeout()

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        start = time.perf_counter()
        try:
            result = fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        # Native code cannot be interrupted; judge it by the time it took.
        if time.perf_counter() - start > seconds:
            raise ExtractTimeout()
        return result
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn).result(timeout=seconds)
    except FutureTimeout:
        raise ExtractTimeout() from None
    finally:
        pool.shutdown(wait=False)


class Extract:
    stage = "extract"

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self._extract = _resiliparse if cfg.backend == "resiliparse" else _trafilatura
        self._types = tuple(t.lower() for t in cfg.content_types)

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        payload = doc.pop("raw", None)
        doc["raw"] = None
        if payload is None:
            # Sources that carry text already (JSONL, Parquet).
            return None if doc["text"] is not None else "empty_text"
        content_type = (doc["content_type"] or "").split(";")[0].strip().lower()
        if content_type and not content_type.startswith(self._types):
            return ("unsupported_content_type", content_type)
        try:
            text = decode(payload, doc["content_type"])
            if content_type != "text/plain":
                text = run_with_timeout(lambda: self._extract(text, self.cfg.main_content), self.cfg.timeout_s)
        except ExtractTimeout:
            return ("extract_timeout", f">{self.cfg.timeout_s}s")
        except Exception as exc:  # parser errors on malformed markup
            return ("extract_failed", f"{type(exc).__name__}: {exc}"[:300])
        if not text.strip():
            return "empty_text"
        doc["text"] = text
        return None
