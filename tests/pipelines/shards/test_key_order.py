"""The corpus's key order across sorted token files: a merge that matches one global sort, refuses a
file out of order, and reads only as far as it is asked."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalelab.pipelines.shards.key_order import (
    KeyOrderError,
    document_key,
    in_key_order,
    sorted_by_key,
)


def token_table(ids: list[str], seed: int = 0) -> pa.Table:
    """Each document's tokens follow from its id, so any file may hold it."""
    lists = [[int(i.split("-")[1]) + j for j in range(int(i.split("-")[1]) % 5 + 1)] for i in ids]
    offsets = np.r_[0, np.cumsum([len(t) for t in lists])].astype(np.int64)
    flat = np.array([t for toks in lists for t in toks], dtype=np.uint32)
    return pa.table({
        "key": pa.array([document_key(seed, i) for i in ids], pa.uint64()),
        "id": pa.array(ids, pa.string()),
        "tokens": pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat)),
    })


def write_files(folder: Path, parts: list[list[str]], sort: bool = True) -> list[str]:
    files = []
    for n, ids in enumerate(parts):
        table = token_table(ids)
        path = folder / f"part-{n}.parquet"
        pq.write_table(sorted_by_key(table) if sort else table, path, row_group_size=7)
        files.append(str(path))
    return files


def test_merge_of_sorted_files_is_the_global_sort(tmp_path):
    ids = [f"doc-{n}" for n in range(3000)]
    random.Random(1).shuffle(ids)
    files = write_files(tmp_path, [ids[:1500], ids[1500:1501], ids[1501:], []])
    merged = [(rows.columns["id"][i], rows.tokens(i).tolist()) for rows, i in in_key_order(files, ["tokens"])]
    whole = sorted_by_key(token_table(ids))
    expected = list(zip(whole["id"].to_pylist(), whole["tokens"].to_pylist()))
    assert merged == expected


def test_a_file_out_of_key_order_is_refused_by_name(tmp_path):
    files = write_files(tmp_path, [[f"doc-{n}" for n in range(50)]], sort=False)
    with pytest.raises(KeyOrderError, match="part-0.parquet.*not in key order"):
        list(in_key_order(files, []))


def test_the_merge_reads_lazily(tmp_path):
    """Taking the first rows (the validation set) never reads a file to its end: a file whose later
    batches are out of order is not noticed."""
    ordered = sorted_by_key(token_table([f"doc-{n}" for n in range(5000)]))
    tail_reversed = pa.concat_tables([ordered.slice(0, 2048), ordered.slice(2048).take(np.arange(2951, -1, -1))])
    path = tmp_path / "part-0.parquet"
    pq.write_table(tail_reversed, path, row_group_size=1024)
    stream = in_key_order([str(path)], [])
    first = [next(stream)[0].columns["id"][0] for _ in range(1)]
    assert first == [ordered["id"][0].as_py()]
    with pytest.raises(KeyOrderError):
        list(stream)
