"""Turn the config's inputs (paths, globs, folders, URIs, list-of-paths files) into input files.

All of this runs in the driver before any Ray work starts, so a path that does not exist or a
file that is not of its declared type is an error up front, not a failed task an hour in.
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import zlib
from dataclasses import asdict, dataclass
from typing import Any, Optional

import fsspec

from scalelab.pipelines.config import InputSpec
from scalelab.pipelines.text_encoding import bom_encoding, wide_without_bom

_EXTENSION_TYPES = [
    # longest first: ".warc.wet.gz" must win over ".gz"
    (".paths.gz", "paths"), (".paths", "paths"),
    (".warc.gz", "warc"), (".warc", "warc"), (".wet.gz", "warc"), (".wet", "warc"),
    (".arc.gz", "warc"), (".arc", "warc"),
    (".jsonl.gz", "jsonl"), (".jsonl.zst", "jsonl"), (".jsonl", "jsonl"),
    (".json.gz", "jsonl"), (".json.zst", "jsonl"), (".json", "jsonl"),
    (".ndjson", "jsonl"), (".ndjson.gz", "jsonl"), (".ndjson.zst", "jsonl"),
    (".parquet", "parquet"),
    (".html", "html"), (".htm", "html"), (".xhtml", "html"), (".html.gz", "html"),
    (".txt", "text"), (".text", "text"), (".md", "text"), (".txt.gz", "text"),
]
_EXTENSION_TYPES.sort(key=lambda kv: -len(kv[0]))
_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """An input that cannot be read as configured; raised before the build starts."""


@dataclass(frozen=True)
class InputFile:
    """One file a read task will open. `key` names it stably across machines (no absolute paths)."""

    index: int
    uri: str
    type: str
    key: str
    size: int
    mtime: float
    text_field: str = "text"
    id_field: Optional[str] = None
    url_field: Optional[str] = None
    date_field: Optional[str] = None
    metadata: bool = True
    # A part of a large WARC (readers/warc_index.py): the records starting in [start, end), and
    # their uncompressed bytes; the whole file when end is None and start is 0.
    start: int = 0
    end: Optional[int] = None
    read_bytes: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputFile":
        return cls(**d)


def infer_type(path: str) -> Optional[str]:
    name = path.lower().rstrip("/")
    for ext, kind in _EXTENSION_TYPES:
        if name.endswith(ext):
            return kind
    return None


def _has_scheme(path: str) -> bool:
    return "://" in path


def _glob_base(path: str) -> str:
    """The folder part of a path before its first glob character."""
    parts = path.split(os.sep)
    base: list[str] = []
    for p in parts:
        if _GLOB_CHARS & set(p):
            break
        base.append(p)
    return os.sep.join(base) or "."


def _local_files(spec_path: str) -> tuple[list[str], str]:
    """Files a local spec names, sorted, and the folder their keys are relative to."""
    path = os.path.expanduser(spec_path)
    if _GLOB_CHARS & set(path):
        files = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        if not files:
            raise InputError(f"input {spec_path!r}: the glob matches no file")
        base = _glob_base(path)
    elif os.path.isdir(path):
        files = sorted(
            os.path.join(root, f)
            for root, dirs, names in os.walk(path)
            for f in names
            if not f.startswith(".")
        )
        if not files:
            raise InputError(f"input {spec_path!r}: the folder is empty")
        base = path
    elif os.path.isfile(path):
        files, base = [path], os.path.dirname(path) or "."
    else:
        raise InputError(f"input {spec_path!r}: no such file or folder")
    return files, os.path.dirname(os.path.abspath(base))


def _remote_files(spec_path: str) -> tuple[list[tuple[str, int, float]], Optional[str]]:
    """Files a URL names, sorted, and the folder their keys are relative to: in object storage the
    one above the spec's, as for local paths (a corpus copied to a bucket keeps its document ids);
    none for web URLs (the key is the URL less its scheme)."""
    try:
        fs, root = fsspec.core.url_to_fs(spec_path)
    except (ImportError, ValueError) as exc:
        raise InputError(f"input {spec_path!r}: cannot open this URI scheme: {exc}") from exc
    protocol = fs.protocol[0] if isinstance(fs.protocol, (list, tuple)) else fs.protocol
    try:
        if _GLOB_CHARS & set(root):
            names, base = sorted(fs.glob(root)), _glob_base(root)
        elif fs.isdir(root):
            names, base = sorted(fs.find(root)), root
        elif fs.exists(root):
            names, base = [root], posixpath.dirname(root)
        else:
            names, base = [], root
    except OSError as exc:
        raise InputError(f"input {spec_path!r}: cannot list: {exc}") from exc
    if not names:
        raise InputError(f"input {spec_path!r}: no such file (or the glob matches nothing)")
    out = []
    for name in names:
        info = fs.info(name)
        uri = name if protocol in ("file", "local") else f"{protocol}://{name}"
        out.append((uri, int(info.get("size") or 0), float(info.get("mtime") or 0.0)))
    key_base = None if protocol in ("http", "https") else posixpath.dirname(base.rstrip("/"))
    return out, key_base


def file_head(uri: str, n: int = 4096) -> bytes:
    """The first bytes of a file, decompressed if it is gzip or zstd (a prefix decompresses fine)."""
    with fsspec.open(uri, "rb") as f:
        head = f.read(n)
    try:
        if head[:2] == b"\x1f\x8b":
            return zlib.decompressobj(wbits=31).decompress(head, n)
        if head[:4] == b"\x28\xb5\x2f\xfd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(head)[:n]
    except (zlib.error, ValueError):
        return b""  # corrupt from the first byte: let the reader count it as unreadable
    return head


def check_type(uri: str, kind: str, text_field: Optional[str] = None) -> None:
    """Look at the first bytes of a local file and refuse it if it is not of `kind`."""
    head = file_head(uri)
    if kind == "warc":
        if not (head.startswith(b"WARC/") or head.startswith(b"filedesc://") or not head.strip()):
            raise InputError(f"{uri}: not a WARC or ARC file (it starts with {head[:20]!r})")
    elif kind == "parquet":
        with open(uri, "rb") as f:
            start = f.read(4)
            f.seek(-4, os.SEEK_END)
            end = f.read(4)
        if start != b"PAR1" or end != b"PAR1":
            raise InputError(f"{uri}: not a Parquet file (no PAR1 magic)")
        if text_field is not None:
            import pyarrow.parquet as pq

            names = pq.read_schema(uri).names
            if text_field not in names:
                raise InputError(f"{uri}: no column {text_field!r} (text_field); columns: {', '.join(names)}")
    elif kind == "jsonl":
        _check_jsonl(uri, head, len(head) >= 4096)
    elif kind in ("html", "text"):
        if b"\x00" in head[:1024] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise InputError(f"{uri}: looks binary, not {kind}")


JSONL_PROBE_LINES = 20  # lines of the head that may show the file is JSON Lines


def _json_object_error(line: str) -> Optional[str]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        return str(exc)
    return None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"


def _check_jsonl(uri: str, head: bytes, truncated: bool) -> None:
    """Refuse a file that is not JSON Lines as a whole; one bad line (the first too) in a file whose
    other lines are JSON objects is the reader's to count as unreadable."""
    if wide_without_bom(head):
        raise InputError(f"{uri}: UTF-16 or UTF-32 without a byte-order mark; save it as UTF-8 "
                         "(or with a byte-order mark) to read it")
    text = head.decode(bom_encoding(head) or "utf-8", errors="replace")
    lines = text.split("\n")
    if truncated:
        lines = lines[:-1]  # the last one is cut by the head's end
    lines = [ln for ln in lines if ln.strip()][:JSONL_PROBE_LINES]
    if not lines:
        return  # empty, or a first line longer than the head: cannot judge, let the reader count it
    errors = [_json_object_error(ln) for ln in lines]
    if all(errors):
        raise InputError(f"{uri}: not JSON Lines (none of its first {len(lines)} lines is a JSON object; "
                         f"line 1: {errors[0]})")


def _read_paths_list(uri: str, prefix: str) -> list[str]:
    with fsspec.open(uri, "rt", compression="infer", encoding="utf-8") as f:
        lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    out = []
    for ln in lines:
        if _has_scheme(ln) or os.path.isabs(ln):
            out.append(ln)
        elif prefix:
            out.append(prefix.rstrip("/") + "/" + ln)
        else:
            out.append(os.path.join(os.path.dirname(uri), ln))
    return out


def _key_for(uri: str, key_base: Optional[str]) -> str:
    if key_base is None:
        return uri.split("://", 1)[-1]
    if _has_scheme(uri):
        return posixpath.relpath(uri.split("://", 1)[1], key_base or ".")
    return os.path.relpath(os.path.abspath(uri), key_base).replace(os.sep, "/")


def resolve_inputs(specs: list[InputSpec], check: bool = True, skipped: Optional[list[str]] = None) -> list[InputFile]:
    """Expand every spec into input files, in a deterministic order, checking each local file.

    Files of no known type inside a folder or glob are not read; their paths go to `skipped`
    so the build can report them.
    """
    if not specs:
        raise InputError("no inputs: give `inputs:` in the config or --input on the command line")
    files: list[InputFile] = []
    seen: set[str] = set()
    for spec in specs:
        count_before = len(files)
        entries: list[tuple[str, int, float, Optional[str]]] = []  # uri, size, mtime, key base
        if _has_scheme(spec.path) and not spec.path.startswith("file://"):
            remote, key_base = _remote_files(spec.path)
            entries = [(u, s, m, key_base) for u, s, m in remote]
        else:
            local = spec.path[len("file://"):] if spec.path.startswith("file://") else spec.path
            paths, key_base = _local_files(local)
            for p in paths:
                st = os.stat(p)
                entries.append((os.path.abspath(p), st.st_size, st.st_mtime, key_base))

        for uri, size, mtime, key_base in entries:
            kind = spec.type or infer_type(uri)
            if kind is None:
                if len(entries) > 1 and spec.type is None:
                    if skipped is not None:  # a folder may hold other files; only a named file must be readable
                        skipped.append(uri)
                    continue
                raise InputError(
                    f"input {spec.path!r}: cannot tell the type of {uri} from its extension; "
                    f"set `type` (one of warc, html, jsonl, parquet, text, paths) or --input-type"
                )
            if kind == "paths":
                listed = _read_paths_list(uri, spec.prefix)
                listed_spec_type = spec.listed_type
                for lp in listed:
                    sub = InputSpec(
                        path=lp, type=listed_spec_type, text_field=spec.text_field,
                        id_field=spec.id_field, url_field=spec.url_field, date_field=spec.date_field,
                        metadata=spec.metadata,
                    )
                    for f in resolve_inputs([sub], check=check, skipped=skipped):
                        if f.uri not in seen:
                            seen.add(f.uri)
                            files.append(f)
                continue
            if check and not _has_scheme(uri):
                check_type(uri, kind, spec.text_field)
            if uri in seen:
                continue
            seen.add(uri)
            files.append(
                InputFile(
                    index=0, uri=uri, type=kind, key=_key_for(uri, key_base), size=size, mtime=mtime,
                    text_field=spec.text_field, id_field=spec.id_field,
                    url_field=spec.url_field, date_field=spec.date_field, metadata=spec.metadata,
                )
            )
        if len(files) == count_before and not entries:
            raise InputError(f"input {spec.path!r}: nothing to read")
        if len(files) == count_before and spec.type is None and all(infer_type(e[0]) is None for e in entries):
            raise InputError(
                f"input {spec.path!r}: no file of a known type (warc, html, jsonl, parquet, text); set `type`"
            )
    keys = [f.key for f in files]
    if len(set(keys)) != len(keys):
        # Two inputs with the same relative key would give documents the same ids.
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise InputError(f"two input files share the key {dupes[0]!r}; give them distinct folder names")
    return [InputFile(**{**f.to_dict(), "index": i}) for i, f in enumerate(files)]
