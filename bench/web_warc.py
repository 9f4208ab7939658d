"""A web-sized WARC made of real pages: the shared corpora's Debian handbook (1,270 HTML pages in
ten languages, 26 MB), written as HTTP response records, copy after copy.

Records carry `WARC-Identified-Payload-Type` as Common Crawl's do. Copy 0 is the pages as they
are. Every later copy is a mirror: another host, and each page lightly edited (its title and one
added sentence name the mirror), so exact dedup keeps the copies and near-dedup has real work to
do, as on the web. Deterministic: the same arguments give the same bytes.

    python bench/web_warc.py OUT.warc.gz --copies 10
"""

from __future__ import annotations

import argparse
import glob
import io
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
DATE = "2026-11-01T00:00:00Z"


def handbook_pages(corpora: Path = CORPORA) -> list[tuple[str, bytes]]:
    """(LANG/PAGE.html, HTML bytes) of every handbook page, sorted."""
    pages = sorted(glob.glob(str(corpora / "html/debian-handbook/*/*.html")))
    if not pages:
        raise SystemExit(f"no handbook pages under {corpora}/html/debian-handbook")
    return [("/".join(Path(p).parts[-2:]), Path(p).read_bytes()) for p in pages]


def mirrored(html: bytes, copy: int) -> bytes:
    """The page as mirror `copy` serves it: the title and one sentence differ, nothing else."""
    if copy == 0:
        return html
    note = f"<p>This page is served by mirror {copy} of the handbook, refreshed weekly.</p>".encode()
    html = html.replace(b"</title>", f" (mirror {copy})</title>".encode(), 1)
    at = html.find(b"<body")
    close = html.find(b">", at) + 1 if at >= 0 else 0
    return html[:close] + note + html[close:]


def write_web_warc(out: Path, copies: int, corpora: Path = CORPORA) -> int:
    """Write `copies` copies of the handbook as one gzipped WARC; returns the HTML bytes in it."""
    pages = handbook_pages(corpora)
    out.parent.mkdir(parents=True, exist_ok=True)
    html_bytes = 0
    with open(out, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for copy in range(copies):
            host = "debian-handbook.info" if copy == 0 else f"mirror{copy}.debian-handbook.info"
            for name, html in pages:
                body = mirrored(html, copy)
                html_bytes += len(body)
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                                   ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
                record = writer.create_warc_record(f"https://{host}/browse/{name}", "response",
                                                   payload=io.BytesIO(body), http_headers=http,
                                                   warc_headers_dict={"WARC-Date": DATE,
                                                                      "WARC-Identified-Payload-Type": "text/html"})
                # warcio stamps a random record id; a fixed one keeps the file deterministic.
                record.rec_headers.replace_header("WARC-Record-ID", f"<urn:uuid:scalelab-{copy:04d}-{name}>")
                writer.write_record(record)
    return html_bytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--copies", type=int, default=10)
    args = ap.parse_args()
    html = write_web_warc(args.out, args.copies)
    print(f"{args.out}: {args.copies} copies, {html / 1e6:.1f} MB of HTML, {args.out.stat().st_size / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
