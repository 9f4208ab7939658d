"""A small web site on 127.0.0.1 (or another loopback address) for the crawler's tests: pages
that link to each other and outward, a robots.txt with a disallowed folder, a redirect, a 404,
a 500, a slow page, a huge page, a binary file, a gzip-encoded page, a chain of pages deeper
than the crawl goes, and `/goto?URL`, a redirect to any URL.

Page text is Milton's Paradise Regained (public domain, from data/sample), so a corpus build
of the crawl keeps real documents. Every request is recorded with its arrival time, and every
TCP connection accepted is counted.
"""

from __future__ import annotations

import gzip
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SLOW_S = 3.0


def _paragraphs() -> list[str]:
    lines = gzip.open(REPO / "data/sample/texts/paradise_regained_gut.txt.gz", "rt", encoding="utf-8").read().splitlines()
    lines = [re.sub(r"\s+\d+$", "", ln).strip() for ln in lines[150:1500]]
    lines = [ln for ln in lines if ln]
    chunks = [" ".join(lines[i:i + 30]) for i in range(0, len(lines) - 30, 30)]
    # End each paragraph on a full stop: C4's rules drop lines that end mid-sentence.
    return [c[:max(c.rfind(". "), c.rfind("! "), c.rfind("? ")) + 1] for c in chunks]


TEXT = _paragraphs()


def page(title: str, links: list[str], n: int) -> bytes:
    body = "".join(f'<p><a href="{h}">link {i}</a></p>' for i, h in enumerate(links))
    text = f"<p>{TEXT[n % len(TEXT)]}</p><p>{TEXT[(n + 7) % len(TEXT)]}</p>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{text}{body}</body></html>").encode()


ROBOTS = b"User-agent: *\nDisallow: /private/\nAllow: /private/open.html\n\nUser-agent: otherbot\nDisallow: /\n"

PAGES = {
    "/": ["/a.html", "/b.html", "/private/secret.html", "/private/open.html", "http://outside.invalid/page",
          "/a.html#top", "mailto:someone@example.com", "/nofollow.html"],
    "/a.html": ["/b.html", "/redirect", "/missing", "/slow", "/huge", "/data.bin", "/gz.html",
                "/deep/1.html", "/a.html?utm_source=news", "/error", "./b.html"],
    "/b.html": ["/", "/a.html", "/c.html"],
    "/c.html": ["/b.html"],
    "/private/open.html": ["/private/secret.html"],
    "/deep/1.html": ["/deep/2.html"],
    "/deep/2.html": ["/deep/3.html"],
    "/deep/3.html": ["/deep/4.html"],
    "/gz.html": ["/c.html"],
}
NOFOLLOW_PAGE = ('<html><head><meta name="robots" content="nofollow"></head><body><p>'
                 + TEXT[3] + '</p><a href="/never-followed.html">x</a></body></html>').encode()

# With seeds "/" and max_depth 2 on the default scope, these are the pages fetched with a response.
FETCHED = {"/", "/a.html", "/b.html", "/private/open.html", "/nofollow.html", "/redirect", "/missing",
           "/gz.html", "/deep/1.html", "/error", "/c.html"}


@dataclass
class Site:
    server: ThreadingHTTPServer
    requests: list[tuple[float, str, str]] = field(default_factory=list)  # (time, path, user agent)
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0          # requests being answered now
    most_active: int = 0     # the most at once: the crawler's connections to this host
    connections: int = 0     # TCP connections accepted, whether a request came or not

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    @property
    def host(self) -> str:
        address, port = self.server.server_address[:2]
        return f"{address}:{port}"

    def paths(self) -> list[str]:
        with self.lock:
            return [p for _, p, _ in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", extra=()) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            with site.lock:
                site.requests.append((time.time(), self.path, self.headers.get("User-Agent", "")))
                site.active += 1
                site.most_active = max(site.most_active, site.active)
            try:
                self._answer(self.path)
            finally:
                with site.lock:
                    site.active -= 1

        def _answer(self, path: str) -> None:
            n = sum(ord(c) for c in path)
            if path == "/robots.txt":
                self._send(200, ROBOTS, "text/plain")
            elif path.startswith("/goto?"):
                self._send(302, b"moved", extra=[("Location", path.removeprefix("/goto?"))])
            elif path == "/redirect":
                self._send(302, b"moved", extra=[("Location", "/c.html")])
            elif path == "/slow":
                time.sleep(SLOW_S)
                self._send(200, page("slow", [], n))
            elif path == "/huge":
                # Announced honestly here; the chunked variant below tests the streaming cap.
                self._send(200, b"<html><body>" + b"x" * 2_000_000 + b"</body></html>")
            elif path == "/huge-chunked":
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"y" * 65536
                for _ in range(40):
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            elif path.startswith("/pause/"):
                time.sleep(0.3)
                self._send(200, page(path, [], n))
            elif path == "/data.bin":
                self._send(200, bytes(range(256)) * 10, "application/octet-stream")
            elif path == "/error":
                self._send(500, b"<html><body>server error</body></html>")
            elif path == "/gz.html":
                self._send(200, gzip.compress(page("gzip", PAGES[path], n)), extra=[("Content-Encoding", "gzip")])
            elif path == "/nofollow.html":
                self._send(200, NOFOLLOW_PAGE)
            elif path in PAGES:
                self._send(200, page(path, PAGES[path], n))
            else:
                self._send(404, b"<html><body>not found</body></html>")

    return Handler


def start_site(address: str = "127.0.0.1") -> Site:
    server = ThreadingHTTPServer((address, 0), None)  # type: ignore[arg-type]
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # a crawler hanging up on /slow is expected
    site = Site(server)

    def count(request, client_address) -> bool:  # called for every accepted connection
        with site.lock:
            site.connections += 1
        return True

    server.verify_request = count  # type: ignore[method-assign]
    server.RequestHandlerClass = _handler(site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return site
