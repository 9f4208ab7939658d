"""Links of an HTML page: <a href>, <area href>, <frame/iframe src>, resolved against <base href>.

`rel="nofollow"` links and pages with <meta name="robots" content="nofollow"> are left out
unless the scope asks to follow them. The standard library's parser is lenient with broken
markup, which web pages need more than speed (a crawl waits on the network anyway).
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Optional

_LINK_ATTRS = {"a": "href", "area": "href", "frame": "src", "iframe": "src"}


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: Optional[str] = None
        self.links: list[str] = []
        self.nofollow_links: list[str] = []
        self.page_nofollow = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and self.base is None and a.get("href"):
            self.base = a["href"]
        elif tag == "meta" and a.get("name", "").lower() in ("robots", "scalelab-crawler"):
            if "nofollow" in a.get("content", "").lower() or "none" in a.get("content", "").lower().split(","):
                self.page_nofollow = True
        elif tag in _LINK_ATTRS and a.get(_LINK_ATTRS[tag]):
            target = a[_LINK_ATTRS[tag]]
            rel = a.get("rel", "").lower().split()
            (self.nofollow_links if "nofollow" in rel else self.links).append(target)


def decode_html(body: bytes, content_type_header: str) -> str:
    charset = "utf-8"
    for part in content_type_header.split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == "charset" and v.strip():
            charset = v.strip().strip('"\'')
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def extract_links(html: str, follow_nofollow: bool = False) -> tuple[Optional[str], list[str]]:
    """(base href or None, link targets in page order, duplicates kept out)."""
    parser = _LinkParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # the parser is lenient, but a crawl must never stop on one page
        pass
    if parser.page_nofollow and not follow_nofollow:
        return parser.base, []
    found = parser.links + (parser.nofollow_links if follow_nofollow else [])
    return parser.base, list(dict.fromkeys(t.strip() for t in found if not t.strip().lower().startswith(
        ("javascript:", "mailto:", "tel:", "data:", "#"))))
