"""One HTTP GET with the crawl's limits: a deadline on the whole fetch, a cap on the body,
only allowed content types downloaded. Never raises: failures come back as an `error`.

Redirects are not followed here: the crawler schedules the target like any other link, so
scope, robots.txt, the per-host limits and the address check (`addresses.py`) apply to it too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import urllib3

from scalelab.pipelines.crawl.addresses import AddressPolicy, PrivateAddress, pool_manager
from scalelab.pipelines.crawl.config import LimitsConfig

CHUNK = 64 * 1024
# Hop-by-hop framing that urllib3 has already undone; the body stored in the WARC is de-chunked,
# so keeping the header would tell readers to de-chunk it again.
_FRAMING_HEADERS = {"transfer-encoding"}


@dataclass
class Fetched:
    url: str
    started: float                       # epoch seconds the request was sent
    seconds: float = 0.0
    status: Optional[int] = None
    reason: str = ""
    http_version: str = "HTTP/1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    error: Optional[str] = None           # timeout, connection, too_large, content_type, private_address
    detail: str = ""
    request_headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), "")

    @property
    def content_type(self) -> str:
        return self.header("Content-Type").split(";", 1)[0].strip().lower()


def new_pool(num_connections: int, policy: AddressPolicy = AddressPolicy()) -> urllib3.PoolManager:
    """Connections that reach only the addresses `policy` allows (by default: public ones)."""
    return pool_manager(num_connections, policy)


def _version(v: int) -> str:
    return {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(v, "HTTP/1.1")


def fetch(pool: urllib3.PoolManager, url: str, user_agent: str, limits: LimitsConfig,
          content_types: Optional[list[str]] = None) -> Fetched:
    """GET `url`. `content_types` None downloads any type (robots.txt)."""
    request_headers = [("User-Agent", user_agent), ("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"),
                       ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive")]
    started = time.time()
    deadline = time.monotonic() + limits.timeout_s
    out = Fetched(url=url, started=started, request_headers=request_headers)
    resp = None
    try:
        resp = pool.request(
            "GET", url, headers=dict(request_headers), redirect=False, preload_content=False, decode_content=False,
            timeout=urllib3.Timeout(connect=min(limits.connect_timeout_s, limits.timeout_s), read=limits.timeout_s),
        )
        out.status, out.reason = resp.status, resp.reason or ""
        out.http_version = _version(resp.version)
        out.headers = [(k, v) for k, v in resp.headers.items() if k.lower() not in _FRAMING_HEADERS]
        allowed = content_types is None or out.status >= 300 or any(
            out.content_type == t.lower() for t in content_types)
        if not allowed:
            out.error, out.detail = "content_type", out.content_type or "(none)"
            return out
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limits.max_page_bytes:
            out.error, out.detail = "too_large", f"Content-Length {declared}"
            return out
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                out.error, out.detail = "timeout", f"body not complete after {limits.timeout_s}s"
                return out
            # read1: one receive at most, so a server trickling bytes is caught by the deadline
            # (each receive is bounded by the read timeout).
            chunk = resp.read1(CHUNK, decode_content=False)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limits.max_page_bytes:
                out.error, out.detail = "too_large", f">{limits.max_page_bytes} bytes"
                return out
        out.body = b"".join(chunks)
        return out
    except PrivateAddress as exc:  # refused before any connection was opened
        out.error, out.detail = "private_address", str(exc)[:300]
    except urllib3.exceptions.NewConnectionError as exc:  # a subclass of ConnectTimeoutError, but refused
        out.error, out.detail = "connection", f"{type(exc).__name__}: {exc}"[:300]
    except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
        out.error, out.detail = "timeout", str(exc)[:300]
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        out.error, out.detail = "connection", f"{type(exc).__name__}: {exc}"[:300]
    finally:
        out.seconds = time.time() - started
        if resp is not None:
            # An abandoned body would leave the connection mid-response; close it rather than
            # returning it to the pool.
            if out.error is None:
                resp.release_conn()
            else:
                resp.close()
    return out

