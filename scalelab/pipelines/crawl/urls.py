"""URL normalization, so one page is one URL however a site spells its links.

Lower-case scheme and host, the default port dropped, an empty path made "/", dot segments
resolved, percent-escapes of unreserved characters decoded and others upper-cased, the fragment
removed, tracker parameters dropped. `host_key` is what politeness is counted per: host:port.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Optional
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

from scalelab.pipelines.crawl.config import UrlsConfig

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


class BadUrl(ValueError):
    """A string that is not an http(s) URL a crawler can fetch."""


def _normalize_escapes(part: str) -> str:
    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    return _ESCAPE.sub(fix, part)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 ("/a/./b/../c" is "/a/c"); repeated slashes are kept, servers may mean them."""
    if not path:
        return "/"
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    cleaned = "/".join(out)
    return cleaned if cleaned.startswith("/") else "/" + cleaned


def _clean_query(query: str, cfg: UrlsConfig) -> str:
    """Drop tracker parameters (and optionally sort) without decoding values: "%e2" stays as sent."""
    pairs = [p for p in query.split("&") if p and not any(
        fnmatch.fnmatchcase(unquote_plus(p.split("=", 1)[0]), pat) for pat in cfg.drop_query_params)]
    if cfg.sort_query:
        pairs.sort()
    return _normalize_escapes("&".join(pairs))


def normalize_url(url: str, cfg: UrlsConfig, base: Optional[str] = None) -> str:
    """The canonical form of `url` (resolved against `base` when relative); BadUrl if unusable."""
    url = url.strip()
    if base is not None:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadUrl(f"{url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BadUrl(f"{url!r}: not an http(s) URL")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BadUrl(f"{url!r}: no host")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BadUrl(f"{url!r}: host is not a valid name") from None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _normalize_escapes(_remove_dot_segments(parts.path))
    query = _clean_query(parts.query, cfg) if parts.query else ""
    return urlunsplit((scheme, netloc, path, query, ""))


def host_key(url: str) -> str:
    """host:port of a normalized URL: the unit of politeness and of actor assignment."""
    return urlsplit(url).netloc


def hostname(url: str) -> str:
    return urlsplit(url).hostname or ""


def request_target(url: str) -> str:
    """The path and query as sent in the request line."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
