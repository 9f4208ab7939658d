"""LSH banding: split each signature into b bands of r rows; documents sharing a band's key are candidates.

Two documents with Jaccard similarity s share at least one band with probability 1 - (1 - s^r)^b.
Two ways to choose (b, r) from the threshold, or set them explicitly:

- balanced (verification off): minimize the weighted false-positive and false-negative areas under
  that curve, exactly as datasketch's MinHashLSH does. Candidates are the answer, so both errors count.
- recall (verification on): every candidate's true Jaccard is checked, so a false candidate costs only
  its check while a missed pair is lost for good. Take the most rows per band (fewest false
  candidates) for which num_perm // rows bands still find a pair at the threshold with the asked
  probability.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_C = np.uint64(0x100000001B3)


class Banding(NamedTuple):
    bands: int
    rows: int


def choose_bands(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                 false_negative_weight: float = 0.5) -> Banding:
    """The balanced choice, as datasketch makes it."""
    from datasketch.lsh import _optimal_param

    return Banding(*_optimal_param(threshold, num_perm, false_positive_weight, false_negative_weight))


def bands_for_recall(threshold: float, num_perm: int, recall: float) -> Banding:
    """The most rows per band whose num_perm // rows bands find a pair at `threshold` with
    probability >= `recall`. ValueError when even one row per band cannot."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if collision_probability(threshold, bands, rows) >= recall:
            return Banding(bands, rows)
    raise ValueError(f"{num_perm} permutations find a pair at Jaccard {threshold} with probability "
                     f"{float(collision_probability(threshold, num_perm, 1)):.4f} at most, under {recall}: "
                     f"raise num_perm or lower recall_at_threshold")


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
