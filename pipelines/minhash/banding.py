"""LSH banding: split each signature into b bands of r rows; documents sharing a band's key are candidates.

Two documents with Jaccard similarity s share at least one band with probability 1 - (1 - s^r)^b.
(b, r) come from the user's threshold by minimizing the weighted false-positive and false-negative
areas under that curve, exactly as datasketch's MinHashLSH chooses them, or are set explicitly.
"""

from __future__ import annotations

import numpy as np

_C = np.uint64(0x100000001B3)


def choose_bands(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                 false_negative_weight: float = 0.5) -> tuple[int, int]:
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, false_positive_weight, false_negative_weight)


def collision_probability(similarity: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    return 1.0 - (1.0 - np.asarray(similarity, dtype=float) ** rows) ** bands


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(docs, bands) uint64 keys: a hash of each band's rows, salted by the band index."""
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"bands × rows = {bands * rows} exceeds num_perm = {signatures.shape[1]}")
    view = signatures[:, : bands * rows].reshape(len(signatures), bands, rows)
    keys = np.broadcast_to(np.arange(bands, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15), view.shape[:2]).copy()
    with np.errstate(over="ignore"):
        for j in range(rows):
            keys = (keys ^ view[:, :, j]) * _C
        keys ^= keys >> np.uint64(33)
        keys *= np.uint64(0xFF51AFD7ED558CCD)
        keys ^= keys >> np.uint64(33)
    return keys
