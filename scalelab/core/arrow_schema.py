"""Arrow schemas from typed records, so a record type and the Parquet it is written to never drift apart.

A field's Arrow type comes from its annotation: str, int, float, bool and bytes map to string,
int64, float64, bool and binary; `Optional[X]` is X (every column is nullable);
`Annotated[X, pa.large_string()]` says the Arrow type outright (large text, int32 counts, fixed-size
binary).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union

import pyarrow as pa

_PLAIN = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_(), bytes: pa.binary()}


def arrow_type(annotation: Any) -> pa.DataType:
    if typing.get_origin(annotation) is typing.Annotated:
        declared = [m for m in annotation.__metadata__ if isinstance(m, pa.DataType)]
        return declared[0] if declared else arrow_type(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            return arrow_type(inner[0])
    if annotation in _PLAIN:
        return _PLAIN[annotation]
    raise TypeError(f"no Arrow type for {annotation!r}: annotate it as Annotated[..., pa.<type>()]")


def arrow_schema(record: type, only: tuple[str, ...] | None = None) -> pa.Schema:
    """The schema of a NamedTuple, TypedDict or dataclass, in field order (or the order of `only`)."""
    hints = typing.get_type_hints(record, include_extras=True)
    names = only if only is not None else tuple(hints)
    return pa.schema([(name, arrow_type(hints[name])) for name in names])
