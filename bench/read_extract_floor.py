"""The floor of a web build: read a WARC and extract its pages' text, nothing else (fastwarc +
resiliparse, both C++). Runs in the side venv (bench/web_scale.py calls it):

    ../side-venv/bin/pip install fastwarc resiliparse
    ../side-venv/bin/python bench/read_extract_floor.py FILE.warc.gz

Prints one JSON line: cpu_s, HTML bytes read, documents extracted.
"""

from __future__ import annotations

import json
import sys
import time

from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding


def main() -> None:
    html_bytes = documents = 0
    t = time.process_time()
    with open(sys.argv[1], "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response, parse_http=True):
            body = record.reader.read()
            html_bytes += len(body)
            text = extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)
            documents += bool(text)
    print(json.dumps({"cpu_s": round(time.process_time() - t, 3), "html_bytes": html_bytes, "documents": documents}))


if __name__ == "__main__":
    main()
