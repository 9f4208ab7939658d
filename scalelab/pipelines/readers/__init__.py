"""Readers: one per source type, each turning an input file into a stream of documents.

A reader never raises on bad content: what it cannot read becomes a document dropped
as `unreadable_record` (stage `read`), so the accounting still adds up.
"""

from __future__ import annotations

from typing import Callable, Iterator

from scalelab.pipelines.config import ExtractConfig
from scalelab.pipelines.schema import Document
from scalelab.pipelines.inputs import InputFile
from scalelab.pipelines.readers.files import read_html_file, read_text_file
from scalelab.pipelines.readers.jsonl import read_jsonl
from scalelab.pipelines.readers.parquet import read_parquet
from scalelab.pipelines.readers.warc import read_warc

Reader = Callable[[InputFile, ExtractConfig], Iterator[Document]]

READERS: dict[str, Reader] = {
    "warc": read_warc,
    "html": read_html_file,
    "text": read_text_file,
    "jsonl": read_jsonl,
    "parquet": read_parquet,
}


def read_input(f: InputFile, cfg: ExtractConfig) -> Iterator[Document]:
    return READERS[f.type](f, cfg)
