"""MinHash signatures of word n-gram shingles, a batch of documents at a time.

Fast mode (default): text normalized (lowercase, punctuation to space, whitespace folded), word
5-grams hashed to 64 bits, and per permutation k the minimum of (a_k h + b_k) mod (2^61 - 1), with
a_k, b_k from a seeded generator. The work runs in a small C kernel (`_kernel.c`, built at install);
where it is missing, an exact numpy version gives the same bits, slower.

datasketch mode: the shingles hashed and permuted exactly as `datasketch.MinHash(num_perm, seed)`
does by default (sha1-based 32-bit hash, its "affine32" permutations), so signatures equal
`MinHash(...).update_batch(shingles).hashvalues` bit for bit.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import struct
import warnings
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np


class Shingles(NamedTuple):
    """The 64-bit shingle hashes of several documents, concatenated; document i's are
    hashes[ranges[i]:ranges[i + 1]]."""

    hashes: np.ndarray
    ranges: np.ndarray

MERSENNE61 = np.uint64((1 << 61) - 1)


class _WordCharTable(dict):
    """str.translate table: letters and digits map to themselves, everything else to a space.

    Filled on first sight of each character (`__missing__`), then a C-level dict lookup: the
    same result as re.sub(r"[\\W_]+", " ") at a fifth of the cost.
    """

    def __missing__(self, code: int) -> int:
        value = code if chr(code).isalnum() else 32
        self[code] = value
        return value


_WORD_CHARS = _WordCharTable()


def normalize(text: str) -> str:
    """Lowercase, punctuation and symbols to space, whitespace folded to single spaces."""
    return " ".join(text.lower().translate(_WORD_CHARS).split())


def words_of(text: str) -> list[str]:
    return normalize(text).split(" ") if text.strip() else []


def shingles(text: str, ngram: int) -> list[str]:
    """Word n-grams joined by spaces; a document shorter than n words is one shingle."""
    words = [w for w in words_of(text) if w]
    if not words:
        return []
    n = min(ngram, len(words))
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, int(MERSENNE61), num_perm, dtype=np.uint64)
    b = rng.integers(0, int(MERSENNE61), num_perm, dtype=np.uint64)
    return a, b


# ---------------------------------------------------------------- the compiled kernel
# What _kernel.c's scalelab_kernel_version returns; raised whenever a function's meaning changes,
# so that a stale build (a checkout updated without rebuilding) is refused, not misread.
KERNEL_VERSION = 2


@lru_cache(maxsize=1)
def _kernel() -> ctypes.CDLL | None:
    here = Path(__file__).parent
    for path in sorted(here.glob("_kernel*.so")) + sorted(here.glob("_kernel*.pyd")):
        lib = ctypes.CDLL(str(path))
        if not hasattr(lib, "scalelab_kernel_version") or lib.scalelab_kernel_version() != KERNEL_VERSION:
            warnings.warn(f"{path}: a MinHash kernel from another scalelab version (rebuild it: pip install -e ., "
                          "or build_ext --inplace); using the exact numpy version, several times slower",
                          RuntimeWarning, stacklevel=3)
            return None
        u64p, i64p, u8p = (ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_int64),
                           ctypes.POINTER(ctypes.c_uint8))
        lib.scalelab_shingle_hashes.argtypes = [u8p, i64p, ctypes.c_int64, ctypes.c_int64,
                                                ctypes.POINTER(ctypes.c_uint32), u64p,
                                                ctypes.c_int64, u64p, i64p]
        lib.scalelab_minhash.argtypes = [u64p, i64p, ctypes.c_int64, u64p, u64p, ctypes.c_int64, u64p]
        lib.scalelab_reduce61.argtypes = [u64p, ctypes.c_int64]
        lib.scalelab_pair_jaccard.argtypes = [u64p, i64p, i64p, u64p, i64p, i64p, ctypes.c_int64, u64p, u8p,
                                              ctypes.c_int64, ctypes.POINTER(ctypes.c_double)]
        lib.scalelab_simd_level.argtypes = [ctypes.c_int]
        lib.scalelab_simd_level.restype = ctypes.c_int
        return lib
    warnings.warn("scalelab's MinHash kernel is not built (reinstall with a C compiler); "
                  "using the exact numpy version, several times slower", RuntimeWarning, stacklevel=3)
    return None


def kernel_available() -> bool:
    return _kernel() is not None


def simd_level(cap: int = -1) -> int:
    """The kernel's vector path: 2 AVX-512, 1 AVX2, 0 scalar. `cap` >= 0 caps it for this process
    (the tests check every path the machine has); -1 only reports it."""
    lib = _kernel()
    return 0 if lib is None else int(lib.scalelab_simd_level(cap))


def _ptr(arr: np.ndarray, ctype: type) -> ctypes._Pointer:
    return arr.ctypes.data_as(ctypes.POINTER(ctype))


# str.lower maps these differently from the table: U+0130 to two characters, capital sigma to a
# final or a medial form by its neighbours. Documents holding one are lowered by str.lower first.
_CAPITAL_I_DOT, _CAPITAL_SIGMA = "\u0130", "\u03a3"


def _lower_if_contextual(text: str) -> str:
    return text.lower() if _CAPITAL_I_DOT in text or _CAPITAL_SIGMA in text else text


@lru_cache(maxsize=1)
def word_lower_table() -> np.ndarray:
    """For every code point, its lowercase (str.lower of the one character) where that is a letter
    or digit (str.isalnum), else 0: the kernel lowers and splits words with it, so its words are
    exactly those of normalize(). Built once per process, from one str.lower and one regex pass
    over all code points (re's \\w is isalnum or "_")."""
    everything = np.arange(0x110000, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    lowered = re.sub(r"[\W_]", "\0", everything.replace(_CAPITAL_I_DOT, "\0").lower())
    return np.frombuffer(lowered.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _encode(texts: Sequence[str], prepare=normalize) -> tuple[np.ndarray, np.ndarray]:
    encoded = [prepare(t).encode("utf-8", "surrogatepass") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    buf = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
    return buf, offsets


def shingle_hashes(texts: Sequence[str], ngram: int) -> Shingles:
    """64-bit hashes of every document's shingles, and each document's range in them."""
    lib = _kernel()
    if lib is None:
        return _shingle_hashes_numpy(*_encode(texts), ngram)
    # The kernel lowers, splits and hashes words by the table; str.lower runs only where it must.
    buf, offsets = _encode(texts, _lower_if_contextual)
    table = word_lower_table()
    total = int(offsets[-1])
    longest = int(np.diff(offsets).max()) if len(texts) else 0
    scratch = np.empty(longest // 2 + 2, dtype=np.uint64)
    hashes = np.empty(total // 2 + len(texts) + 1, dtype=np.uint64)
    ranges = np.empty(len(texts) + 1, dtype=np.int64)
    lib.scalelab_shingle_hashes(_ptr(buf, ctypes.c_uint8), _ptr(offsets, ctypes.c_int64), len(texts), ngram,
                                _ptr(table, ctypes.c_uint32), _ptr(scratch, ctypes.c_uint64), len(scratch),
                                _ptr(hashes, ctypes.c_uint64), _ptr(ranges, ctypes.c_int64))
    return Shingles(hashes[: ranges[-1]], ranges)


def minhash_signatures(texts: Sequence[str], num_perm: int = 128, ngram: int = 5, seed: int = 42) -> np.ndarray:
    """(len(texts), num_perm) uint64 signatures; a text without words gets all (2^61 - 1)."""
    hashes, ranges = shingle_hashes(texts, ngram)
    return signatures_of_hashes(hashes, ranges, num_perm, seed)


def signatures_of_hashes(hashes: np.ndarray, ranges: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """Signatures from `shingle_hashes` output (for callers that also need the shingles)."""
    a, b = permutations(num_perm, seed)
    lib = _kernel()
    if lib is None:
        return _minhash_numpy(hashes, ranges, a, b)
    reduced = np.ascontiguousarray(hashes, dtype=np.uint64).copy()
    lib.scalelab_reduce61(_ptr(reduced, ctypes.c_uint64), len(reduced))
    ranges = np.ascontiguousarray(ranges, dtype=np.int64)
    sigs = np.empty((len(ranges) - 1, num_perm), dtype=np.uint64)
    lib.scalelab_minhash(_ptr(reduced, ctypes.c_uint64), _ptr(ranges, ctypes.c_int64), len(ranges) - 1,
                         _ptr(a, ctypes.c_uint64), _ptr(b, ctypes.c_uint64), num_perm, _ptr(sigs, ctypes.c_uint64))
    return sigs


# ---------------------------------------------------------------- exact numpy fallback
_FNV_OFFSET, _FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
_MASK64 = (1 << 64) - 1


def _fmix64(k: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        k = k ^ (k >> np.uint64(33))
        k = k * np.uint64(0xFF51AFD7ED558CCD)
        k = k ^ (k >> np.uint64(33))
        k = k * np.uint64(0xC4CEB9FE1A85EC53)
        return k ^ (k >> np.uint64(33))


def _fnv1a(word: bytes) -> int:
    h = _FNV_OFFSET
    for byte in word:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return h


def _shingle_hashes_numpy(buf: np.ndarray, offsets: np.ndarray, ngram: int) -> Shingles:
    data = buf.tobytes()
    out: list[np.ndarray] = []
    ranges = [0]
    cache: dict[bytes, int] = {}
    for d in range(len(offsets) - 1):
        words = [w for w in data[offsets[d] : offsets[d + 1]].split(b" ") if w]
        if not words:
            ranges.append(ranges[-1])
            continue
        wh = _fmix64(np.array([cache.setdefault(w, _fnv1a(w)) for w in words], dtype=np.uint64))
        n = min(ngram, len(wh))
        count = len(wh) - n + 1
        h = np.full(count, 0x9E3779B97F4A7C15, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(n):
                h = (h ^ wh[j : j + count]) * np.uint64(_FNV_PRIME) + np.uint64(j)
        out.append(_fmix64(h))
        ranges.append(ranges[-1] + count)
    hashes = np.concatenate(out) if out else np.empty(0, dtype=np.uint64)
    return Shingles(hashes, np.array(ranges, dtype=np.int64))


def _mulmod61(a: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(a * h) mod (2^61 - 1) for a, h < 2^61, exactly, from 32-bit halves (broadcasts)."""
    m32, p = np.uint64(0xFFFFFFFF), MERSENNE61
    a_hi, a_lo = a >> np.uint64(32), a & m32
    h_hi, h_lo = h >> np.uint64(32), h & m32
    lo = a_lo * h_lo                                      # < 2^64
    mid = a_hi * h_lo + a_lo * h_hi                       # < 2^62
    hi = a_hi * h_hi                                      # < 2^58; weight 2^64 = 8 (mod p)
    r = (lo & p) + (lo >> np.uint64(61))
    r = r + ((mid & np.uint64((1 << 29) - 1)) << np.uint64(32)) + (mid >> np.uint64(29))
    r = r + (hi << np.uint64(3))
    r = (r & p) + (r >> np.uint64(61))
    r = (r & p) + (r >> np.uint64(61))
    return np.where(r >= p, r - p, r)


def _minhash_numpy(hashes: np.ndarray, ranges: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sigs = np.full((len(ranges) - 1, len(a)), MERSENNE61, dtype=np.uint64)
    h = hashes % MERSENNE61
    for d in range(len(ranges) - 1):
        part = h[ranges[d] : ranges[d + 1]]
        if part.size:
            v = _mulmod61(a[None, :], part[:, None]) + b[None, :]
            v = (v & MERSENNE61) + (v >> np.uint64(61))
            v = np.where(v >= MERSENNE61, v - MERSENNE61, v)
            sigs[d] = v.min(axis=0)
    return sigs


# ---------------------------------------------------------------- datasketch compatibility
def datasketch_signatures(texts: Sequence[str], num_perm: int = 128, ngram: int = 5, seed: int = 1) -> np.ndarray:
    """Signatures equal to datasketch 2.0's default MinHash over the same shingles (uint32)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    sigs = np.full((len(texts), num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    for d, text in enumerate(texts):
        grams = shingles(text, ngram)
        if not grams:
            continue
        hv = np.array([struct.unpack("<I", hashlib.sha1(g.encode("utf-8")).digest()[:4])[0] for g in grams],
                      dtype=np.uint32)
        with np.errstate(over="ignore"):
            hv = hv ^ (hv >> np.uint32(16))
            hv = hv * np.uint32(0x85EBCA6B)
            hv = hv ^ (hv >> np.uint32(13))
            hv = hv * np.uint32(0xC2B2AE35)
            hv = hv ^ (hv >> np.uint32(16))
            sigs[d] = (hv[:, None] * a[None, :] + b[None, :]).min(axis=0)
    return sigs
