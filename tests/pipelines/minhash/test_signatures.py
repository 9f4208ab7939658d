"""MinHash signatures: exact arithmetic, the compiled kernel against numpy, datasketch bit-equality."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from datasketch import MinHash

from scalelab.pipelines.minhash import signatures as S
from tests.conftest import DATA, SAMPLE


def texts() -> list[str]:
    plays = [gzip.open(p, "rt", encoding="utf-8").read()[:30000] for p in sorted((SAMPLE / "texts").glob("*.gz"))]
    pages = [p.read_text(encoding="utf-8")[:20000] for p in sorted((DATA / "handbook").glob("*.html"))]
    return plays + pages + ["", "   ", "one", "two words", "Hello, World! 3.14 naïve café_bar"]


def test_kernel_is_built():
    assert S.kernel_available(), "pip install -e . should have compiled pipelines/minhash/_kernel.c"


def test_normalize_matches_its_definition():
    for t in texts():
        assert S.normalize(t) == re.sub(r"[\W_]+", " ", t.lower()).strip()


def test_mulmod_is_exact():
    rng = np.random.default_rng(3)
    a = rng.integers(1, 2**61 - 1, 2000, dtype=np.uint64)
    h = rng.integers(0, 2**61 - 1, 2000, dtype=np.uint64)
    expected = np.array([(int(x) * int(y)) % (2**61 - 1) for x, y in zip(a, h)], dtype=np.uint64)
    assert np.array_equal(S._mulmod61(a, h), expected)


def test_kernel_matches_numpy_and_python_integers():
    docs = texts()
    sigs = S.minhash_signatures(docs, num_perm=64, ngram=5, seed=11)
    hashes, ranges = S.shingle_hashes(docs, 5)
    buf, offsets = S._encode(docs)
    np_hashes, np_ranges = S._shingle_hashes_numpy(buf, offsets, 5)
    assert np.array_equal(hashes, np_hashes) and np.array_equal(ranges, np_ranges)
    a, b = S.permutations(64, 11)
    assert np.array_equal(sigs, S._minhash_numpy(hashes, ranges, a, b))
    p = 2**61 - 1
    doc = hashes[ranges[0] : ranges[1]]
    by_hand = [min((int(a[k]) * (int(h) % p) + int(b[k])) % p for h in doc) for k in range(64)]
    assert [int(v) for v in sigs[0]] == by_hand
    empty = docs.index("")
    assert (sigs[empty] == S.MERSENNE61).all() and (sigs[docs.index("   ")] == S.MERSENNE61).all()


def test_short_documents_have_one_shingle():
    assert S.shingles("two words", 5) == ["two words"]
    _, ranges = S.shingle_hashes(["two words", "a b c d e f"], 5)
    assert list(np.diff(ranges)) == [1, 2]


@pytest.mark.parametrize("num_perm,seed", [(128, 1), (64, 7)])
def test_datasketch_mode_is_bit_equal(num_perm, seed):
    docs = texts()
    sigs = S.datasketch_signatures(docs, num_perm=num_perm, ngram=5, seed=seed)
    for text, sig in zip(docs, sigs):
        m = MinHash(num_perm=num_perm, seed=seed)
        grams = S.shingles(text, 5)
        if grams:
            m.update_batch([g.encode("utf-8") for g in grams])
        assert np.array_equal(m.hashvalues, sig)


def test_signature_agreement_estimates_jaccard():
    hamlet = gzip.open(SAMPLE / "texts" / "hamlet_gut.txt.gz", "rt", encoding="utf-8").read()[:40000]
    words = hamlet.split()
    edited = " ".join(w if i % 40 else "EDIT" for i, w in enumerate(words))
    a, b = set(S.shingles(hamlet, 5)), set(S.shingles(edited, 5))
    true_jaccard = len(a & b) / len(a | b)
    sigs = S.minhash_signatures([hamlet, edited], num_perm=256, ngram=5, seed=1)
    estimate = float((sigs[0] == sigs[1]).mean())
    assert abs(estimate - true_jaccard) < 0.06


def test_kernel_at_the_edges_of_the_modulus():
    # Hashes and coefficients next to 2^32 and 2^61 - 1, and more than one vector width of them.
    p = 2**61 - 1
    hashes = np.array([0, 1, p - 1, p - 2, 2**32 - 1, 2**32, 2**60 + 12345, 7, 2**61 - 9], dtype=np.uint64)
    ranges = np.array([0, len(hashes)], dtype=np.int64)
    lib = S._kernel()
    for seed in range(5):
        a, b = S.permutations(16, seed)
        a = a.copy()
        b = b.copy()
        a[:4], b[:4] = [1, p - 1, 2**32 - 1, 2**32 + 1], [0, p - 1, 5, 2**60]
        sigs = np.empty((1, 16), dtype=np.uint64)
        lib.scalelab_minhash(S._ptr(hashes, S.ctypes.c_uint64), S._ptr(ranges, S.ctypes.c_int64), 1,
                             S._ptr(a, S.ctypes.c_uint64), S._ptr(b, S.ctypes.c_uint64), 16,
                             S._ptr(sigs, S.ctypes.c_uint64))
        expected = [min((int(x) * int(h) + int(y)) % p for h in hashes) for x, y in zip(a, b)]
        assert [int(v) for v in sigs[0]] == expected


@pytest.mark.parametrize("level", [0, 1, 2])
def test_every_vector_path_is_exact(level):
    # The AVX-512, AVX2 and scalar paths of the kernel give the same bits as the numpy version.
    if S.simd_level() < level:
        pytest.skip(f"this CPU has no vector path {level}")
    docs = texts()
    hashes, ranges = S.shingle_hashes(docs, 5)
    a, b = S.permutations(67, 3)  # 67: permutations left over after the blocks of 2 and 4
    expected = S._minhash_numpy(hashes, ranges, a, b)
    detected = S.simd_level()
    try:
        assert S.simd_level(level) == level
        assert np.array_equal(S.signatures_of_hashes(hashes, ranges, 67, 3), expected)
    finally:
        S.simd_level(detected)


def test_kernel_lowercases_like_str_lower():
    # The kernel lowers through a table; str.lower maps U+0130 to two characters and capital sigma
    # by its neighbours (final form), so documents holding them go through str.lower first.
    docs = ["ΟΔΥΣΣΕΥΣ ΣΊΣΥΦΟΣ Σ ΑΣ. σΣ İstanbul DİYARBAKIR", "Ǆemal ǅ ẞ Straße ﬁnal Ⅻ K Å Ω ＡＢＣ 𐐀𐐨",
            "Ⱥ Ⱦ ⱥ ⱦ MiXeD cAsE ÀÉÎÕÜ", "lone \ud800 surrogate \udfff here"]
    for doc in docs:
        for word in [doc] + doc.split():
            kernel = S.shingle_hashes([word], 2)
            reference = S._shingle_hashes_numpy(*S._encode([word]), 2)
            assert all(np.array_equal(x, y) for x, y in zip(kernel, reference)), word
