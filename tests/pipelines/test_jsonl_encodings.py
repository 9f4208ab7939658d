"""JSON Lines in UTF-16 or UTF-32 is decoded by its byte-order mark, refused as a whole without one,
and a malformed first line counts as one unreadable record when the rest of the file is JSONL."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from scalelab.pipelines.config import ExtractConfig, InputSpec
from scalelab.pipelines.inputs import InputError, InputFile, resolve_inputs
from scalelab.pipelines.readers import read_input

ROWS = [{"text": "Ærøskøbing ligger på Ærø.", "id": "a"}, {"text": "日本語のテキスト", "id": "b"},
        {"text": "line\u2028separator inside a string", "id": "c"}]


def jsonl(rows=ROWS) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def read(path: Path) -> list[dict]:
    files = resolve_inputs([InputSpec(path=str(path), id_field="id")])
    return [d for f in files for d in read_input(f, ExtractConfig())]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be-bom", "utf-32", "utf-8-sig"])
def test_a_byte_order_mark_names_the_encoding(tmp_path, codec):
    path = tmp_path / "docs.jsonl"
    if codec == "utf-16-be-bom":
        path.write_bytes(b"\xfe\xff" + jsonl().encode("utf-16-be"))
    else:
        path.write_bytes(jsonl().encode(codec))
    docs = read(path)
    # the input's own id is kept as source_id (the build gives every document an id of its own)
    assert [(d["source_id"], d["text"], d["drop_reason"]) for d in docs] == [(r["id"], r["text"], None) for r in ROWS]


def test_gzipped_utf16_and_windows_line_ends(tmp_path):
    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(jsonl().replace("\n", "\r\n").encode("utf-16"))
    assert [d["text"] for d in read(path)] == [r["text"] for r in ROWS]


def test_utf16_without_a_mark_is_refused_as_a_whole(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(jsonl().encode("utf-16-le"))
    with pytest.raises(InputError, match=rf"^{path}: UTF-16 or UTF-32 without a byte-order mark; save it as UTF-8"):
        resolve_inputs([InputSpec(path=str(path))])
    # A file the driver cannot check first (remote) is one unreadable record, not one per line.
    f = InputFile(index=0, uri=str(path), type="jsonl", key="docs.jsonl", size=path.stat().st_size, mtime=0.0)
    docs = list(read_input(f, ExtractConfig()))
    assert [(d["drop_reason"], d["drop_detail"]) for d in docs] == [
        ("unreadable_record", "UTF-16 or UTF-32 without a byte-order mark; save it as UTF-8")]


def test_a_malformed_first_line_is_one_unreadable_record(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "cut off in the mid\n' + jsonl(), encoding="utf-8")
    docs = read(path)
    assert docs[0]["drop_reason"] == "unreadable_record" and docs[0]["drop_detail"].startswith("line 1:")
    assert [d["text"] for d in docs[1:]] == [r["text"] for r in ROWS]


def test_a_file_with_no_json_object_line_is_still_refused(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("just some notes\nand more notes\n[1, 2]\n")
    with pytest.raises(InputError, match=rf"^{path}: not JSON Lines \(none of its first 3 lines is a JSON object"):
        resolve_inputs([InputSpec(path=str(path))])
