"""JSON that every parser reads: NaN and ±Infinity (which Python's json writes by default) become null.

A fit can produce non-finite numbers honestly (Kaplan's D_c is infinite when α_D = 0; R² is
undefined on constant data); JSON has no spelling for them, so they are written as null.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def finite(value: Any) -> Any:
    """A copy of `value` with non-finite floats replaced by None and numpy scalars/arrays made plain."""
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return [finite(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(finite(value), allow_nan=False, **kwargs)
