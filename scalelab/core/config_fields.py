"""The field types every config shares: `Section` (unknown fields are errors), bounded numbers,
plain names and token counts as users write them ("50k", "4M")."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _fraction(v: float) -> float:
    if not 0.0 <= v <= 1.0:
        raise ValueError("must be between 0 and 1")
    return v


def _positive(v: float) -> float:
    if not v > 0:  # written so that NaN fails too
        raise ValueError("must be greater than 0")
    return v


def _not_negative(v: float) -> float:
    if not v >= 0:
        raise ValueError("must be 0 or more")
    return v


# Every count, size and threshold of a config has one of these bounds: a value outside it would
# not fail, it would quietly build something else (a negative scale, every document "too long").
Fraction = Annotated[float, AfterValidator(_fraction)]
Positive = Annotated[float, AfterValidator(_positive)]
PositiveInt = Annotated[int, AfterValidator(_positive)]
NonNegative = Annotated[float, AfterValidator(_not_negative)]
NonNegativeInt = Annotated[int, AfterValidator(_not_negative)]
Seed = NonNegativeInt  # numpy's generators refuse negative seeds


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _plain_name(v: str) -> str:
    # Names that become file or folder names: one path component, so it stays inside OUT.
    if not _PLAIN_NAME.fullmatch(v):
        raise ValueError(f"{v!r} is not a plain name (letters, digits, '.', '_', '-', starting with a letter or "
                         "digit; no '/' or '..'): it names files inside the output folder")
    return v


PlainName = Annotated[str, AfterValidator(_plain_name)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def parse_token_count(value: int | str) -> int:
    """1000, "50k", "4M", "1.5B" -> a token count (a positive one: also used for byte sizes)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count (like 50000, 50k, 4M, 1.5B)")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value}: must be greater than 0")
        return value
    text = str(value).strip().replace("_", "")
    scale = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}.get(text[-1:].lower(), 1)
    number = text[:-1] if scale != 1 else text
    try:
        count = int(float(number) * scale)
    except ValueError:
        raise ValueError(f"{value!r} is not a token count (like 50000, 50k, 4M, 1.5B)") from None
    if count <= 0:
        raise ValueError(f"{value!r}: must be greater than 0")
    return count
