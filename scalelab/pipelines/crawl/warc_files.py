"""WARC files as a crawl writes them: gzip per record, a warcinfo record first, each fetch as a
request and a response record, rotated past a size.

A file being written is named `*.warc.gz.open`, so a corpus build never reads half of one. How far
each file is committed lives in the crawl's journal (`journal.py`); `finalize_warcs` cuts every file
back to its committed length and gives it its final name. With gzip per record a cut at a record
boundary leaves a valid WARC, and records of pages that were not committed (to be fetched again
on resume) are gone rather than duplicated.
"""

from __future__ import annotations

from scalelab import __version__

import io
import os
import re
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from scalelab.pipelines.crawl.fetch import Fetched
from scalelab.pipelines.crawl.urls import host_key, request_target

OPEN_SUFFIX = ".open"
# PREFIX-ACTOR-INCARNATION-SEQ.warc.gz (host_fetcher.py, RotatingWarcWriter): only files named so
# are ever cut, renamed or removed; other WARCs in the folder are the user's.
_CRAWL_WARC = re.compile(r".+-\d{3,}-s\d{2,}[0-9a-f]{6}-\d{5,}\.warc\.gz(\.open)?")


def is_crawl_warc(name: str) -> bool:
    return _CRAWL_WARC.fullmatch(name) is not None


def warc_date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RotatingWarcWriter:
    """Writes one actor's WARC files; not thread-safe (the actor holds a lock around `write`)."""
    def __init__(self, folder: Path, stem: str, max_bytes: int, info: dict[str, str]):
        self.folder, self.stem, self.max_bytes, self.info = folder, stem, max_bytes, info
        self.seq = 0
        self.name: Optional[str] = None
        self._fh: Optional[io.BufferedWriter] = None
        self._writer: Optional[WARCWriter] = None
        folder.mkdir(parents=True, exist_ok=True)

    def _open(self) -> WARCWriter:
        if self._writer is None:
            self.seq += 1
            self.name = f"{self.stem}-{self.seq:05d}.warc.gz"
            path = self.folder / (self.name + OPEN_SUFFIX)
            if path.parent != self.folder or "/" in self.name:  # the config checks the prefix; this is the backstop
                raise ValueError(f"WARC file name {self.name!r} would leave {self.folder}")
            self._fh = open(path, "wb")
            self._writer = WARCWriter(self._fh, gzip=True)
            self._writer.write_record(self._writer.create_warcinfo_record(self.name, self.info))
        return self._writer

    def write(self, page: Fetched) -> str:
        """Write the request and response records of a fetch; return the file's name."""
        writer = self._open()
        date = warc_date(page.started)
        request = writer.create_warc_record(
            page.url, "request", payload=io.BytesIO(b""),
            http_headers=StatusAndHeaders(f"GET {request_target(page.url)} {page.http_version}",
                                          [("Host", host_key(page.url))] + page.request_headers, is_http_request=True),
            warc_headers_dict={"WARC-Date": date},
        )
        response = writer.create_warc_record(
            page.url, "response", payload=io.BytesIO(page.body), length=len(page.body),
            http_headers=StatusAndHeaders(f"{page.status} {page.reason}".strip(), page.headers, protocol=page.http_version),
            warc_headers_dict={"WARC-Date": date},
        )
        request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
        writer.write_record(request)
        writer.write_record(response)
        assert self.name is not None
        return self.name

    def commit_point(self) -> Optional[tuple[str, int]]:
        """Flush to disk and return (file, length) to journal; None if nothing is open."""
        if self._fh is None or self.name is None:
            return None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return self.name, self._fh.tell()

    def rotate_if_full(self) -> None:
        if self._fh is not None and self._fh.tell() >= self.max_bytes:
            self.close()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._fh = self._writer = None


def warcinfo(cfg_name: str, user_agent: str, robots: bool) -> dict[str, str]:

    return {"software": f"scalelab/{__version__} (warcio)", "hostname": socket.gethostname(),
            "http-header-user-agent": user_agent, "robots": "obey" if robots else "ignore",
            "isPartOf": cfg_name, "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"}


def finalize_warcs(folder: Path, committed: dict[str, int]) -> None:
    """Cut every file to its committed length (dropping files with nothing committed), then
    name it final. Safe to run again: a finalized file is already at its committed length."""
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if not is_crawl_warc(path.name):
            continue
        name = path.name.removesuffix(OPEN_SUFFIX)
        length = committed.get(name, 0)
        if length == 0:
            path.unlink()
            continue
        if path.stat().st_size > length:
            with open(path, "r+b") as fh:
                fh.truncate(length)
        if path.name != name:
            os.replace(path, folder / name)
