/* MinHash signatures of word n-gram shingles, for scalelab's near-duplicate stage.
 *
 * Input: documents as one UTF-8 buffer with offsets, and a table mapping each code point to its
 * lowercase when that is a word character (else 0). For each document: each lowercased word is
 * hashed (64-bit FNV-1a, then the MurmurHash3 64-bit finalizer), each n-gram of words gets a
 * 64-bit hash rolled from its word hashes, and for every permutation k the signature keeps the
 * min over shingles of
 *     (a_k * h + b_k) mod (2^61 - 1)
 * computed exactly: with a 128-bit product and Mersenne folding in scalar code, and from 32-bit
 * products in the AVX2 / AVX-512 kernels (the same values; see min_perms_avx512).
 * Documents with fewer than n words have one shingle: all their words.
 * Plain C with no Python API: loaded through ctypes. */
#include <stdint.h>
#include <stddef.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SCALELAB_SIMD 1
#endif

#define MERSENNE61 ((uint64_t)0x1FFFFFFFFFFFFFFFULL)

/* signatures.KERNEL_VERSION: raised whenever a function's arguments or results change. */
int scalelab_kernel_version(void) { return 2; }

static inline uint64_t fmix64(uint64_t k) {
    k ^= k >> 33; k *= 0xFF51AFD7ED558CCDULL;
    k ^= k >> 33; k *= 0xC4CEB9FE1A85EC53ULL;
    k ^= k >> 33;
    return k;
}

/* x < 2^123 (a, h, b < 2^61): x = hi * 2^61 + lo with hi < 2^62, and 2^61 = 1 (mod p). */
static inline uint64_t mod_mersenne61(unsigned __int128 x) {
    uint64_t r = ((uint64_t)x & MERSENNE61) + (uint64_t)(x >> 61);   /* < 2^63 */
    r = (r & MERSENNE61) + (r >> 61);                                  /* < 2^61 + 4 */
    return r >= MERSENNE61 ? r - MERSENNE61 : r;
}

/* Decode the UTF-8 code point at s[*i] (valid UTF-8, surrogates allowed) and advance *i. */
static inline uint32_t next_code_point(const uint8_t *s, size_t len, size_t *i, size_t *width) {
    uint8_t c = s[*i];
    uint32_t cp;
    size_t w;
    if (c < 0x80) { cp = c; w = 1; }
    else if ((c >> 5) == 0x6) { cp = c & 0x1F; w = 2; }
    else if ((c >> 4) == 0xE) { cp = c & 0x0F; w = 3; }
    else { cp = c & 0x07; w = 4; }
    for (size_t j = 1; j < w && *i + j < len; j++) cp = (cp << 6) | (s[*i + j] & 0x3F);
    *width = w;
    return cp;
}

static inline uint64_t fnv1a_byte(uint64_t h, uint8_t byte) { return (h ^ byte) * 0x100000001B3ULL; }

/* Word hashes of one document; returns the number of words (<= capacity).
 * word_lower[cp] is the lowercase of code point cp (str.lower of that one character) when that is
 * a letter or digit (str.isalnum), else 0. A word is a maximal run of code points with an entry;
 * its hash is FNV-1a over the UTF-8 bytes of their lowercase forms, then fmix64: the words of
 * normalize() in signatures.py, lowered here rather than by str.lower, which costs more than all
 * of this. (The two characters str.lower does not map one to one, U+0130 and the context-dependent
 * capital sigma, are lowered by the caller first; lowering is idempotent, so that is the same.) */
static size_t hash_words(const uint8_t *s, size_t len, const uint32_t *word_lower, uint64_t *out, size_t capacity) {
    size_t n = 0, i = 0, w;
    int in_word = 0;
    uint64_t h = 0;
    while (i < len) {
        uint32_t cp;
        if (s[i] < 0x80) { cp = s[i]; w = 1; }
        else cp = next_code_point(s, len, &i, &w);
        uint32_t low = word_lower[cp];
        if (low) {
            if (!in_word) { h = 0xCBF29CE484222325ULL; in_word = 1; }
            if (low < 0x80) h = fnv1a_byte(h, (uint8_t)low);
            else if (low == cp) for (size_t j = 0; j < w && i + j < len; j++) h = fnv1a_byte(h, s[i + j]);
            else if (low < 0x800) {
                h = fnv1a_byte(h, (uint8_t)(0xC0 | (low >> 6)));
                h = fnv1a_byte(h, (uint8_t)(0x80 | (low & 0x3F)));
            } else if (low < 0x10000) {
                h = fnv1a_byte(h, (uint8_t)(0xE0 | (low >> 12)));
                h = fnv1a_byte(h, (uint8_t)(0x80 | ((low >> 6) & 0x3F)));
                h = fnv1a_byte(h, (uint8_t)(0x80 | (low & 0x3F)));
            } else {
                h = fnv1a_byte(h, (uint8_t)(0xF0 | (low >> 18)));
                h = fnv1a_byte(h, (uint8_t)(0x80 | ((low >> 12) & 0x3F)));
                h = fnv1a_byte(h, (uint8_t)(0x80 | ((low >> 6) & 0x3F)));
                h = fnv1a_byte(h, (uint8_t)(0x80 | (low & 0x3F)));
            }
        } else if (in_word) {
            if (n < capacity) out[n++] = fmix64(h);
            in_word = 0;
        }
        i += w;
    }
    if (in_word && n < capacity) out[n++] = fmix64(h);
    return n;
}

/* The 64-bit hash of shingle i (words i .. i+n-1). */
static inline uint64_t shingle_hash(const uint64_t *words, size_t i, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL;
    for (size_t j = 0; j < n; j++) h = (h ^ words[i + j]) * 0x100000001B3ULL + (uint64_t)j;
    return fmix64(h);
}

/* Shingle hashes of every document into `hashes` (capacity >= total words + docs);
 * shingle_offsets[d] .. shingle_offsets[d+1] are document d's. words_scratch holds one
 * document's word hashes (capacity >= its byte length / 2 + 1). */
void scalelab_shingle_hashes(const uint8_t *text, const int64_t *offsets, int64_t num_docs, int64_t ngram,
                             const uint32_t *word_lower, uint64_t *words_scratch, int64_t scratch_capacity,
                             uint64_t *hashes, int64_t *shingle_offsets) {
    int64_t out = 0;
    for (int64_t d = 0; d < num_docs; d++) {
        shingle_offsets[d] = out;
        size_t nw = hash_words(text + offsets[d], (size_t)(offsets[d + 1] - offsets[d]), word_lower,
                               words_scratch, (size_t)scratch_capacity);
        if (nw == 0) continue;
        size_t n = (size_t)ngram < nw ? (size_t)ngram : nw;
        for (size_t i = 0; i + n <= nw; i++) hashes[out++] = shingle_hash(words_scratch, i, n);
    }
    shingle_offsets[num_docs] = out;
}

/* signatures[d * num_perm + k] = min over document d's shingle hashes h of (a_k h + b_k) mod p.
 * A document without shingles keeps the all-ones sentinel (MERSENNE61). */
/* The vector kernels compute (a h + b) mod p from 32-bit products (vector units have no
 * 64 x 64 -> 128 multiply). Split a = a1 2^31 + a0 and h = h1 2^30 + h0 (a0 < 2^31, a1 < 2^30,
 * h0 < 2^30, h1 < 2^31); with 2^61 = 1 (mod p):
 *   a h = a1 h1 2^61 + 2^30 X + a0 h0,   X = 2 a1 h0 + a0 h1 < 2^63
 *       = a1 h1 + a0 h0 + (X >> 31) + ((X mod 2^31) << 30)                         (mod p)
 * Every term is < 2^61 (X >> 31 < 2^32), so s = that sum + b < 2^64; one folding
 * (s & p) + (s >> 61) leaves r < p + 5, and min(r, r - p) (unsigned) is r mod p.
 * Needs h < 2^61 (scalelab_reduce61) and a, b < p, as the permutations are. Four products,
 * twelve simple operations and two mins per value (against ~28 operations in the 32-bit-halves
 * form before), checked against the exact 128-bit scalar loop by the tests. */
#define MASK30 ((1ULL << 30) - 1)
#define MASK31 ((1ULL << 31) - 1)

#ifdef SCALELAB_SIMD
/* Four permutations at a time over all of a document's shingles, eight shingles per step. */
__attribute__((target("avx512f")))
static void min_perms_avx512(const uint64_t *h, int64_t n, const uint64_t *a, const uint64_t *b, uint64_t *out) {
    const __m512i P = _mm512_set1_epi64((long long)MERSENNE61);
    const __m512i M30 = _mm512_set1_epi64((long long)MASK30);
    __m512i a0[4], a1[4], a1x2[4], bb[4], m[4];
    for (int j = 0; j < 4; j++) {
        a0[j] = _mm512_set1_epi64((long long)(a[j] & MASK31));
        a1[j] = _mm512_set1_epi64((long long)(a[j] >> 31));
        a1x2[j] = _mm512_set1_epi64((long long)((a[j] >> 31) << 1));
        bb[j] = _mm512_set1_epi64((long long)b[j]);
        m[j] = P;
    }
    for (int64_t s = 0; s < n; s += 8) {
        __mmask8 live = n - s >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n - s)) - 1);
        __m512i hv = _mm512_maskz_loadu_epi64(live, h + s);
        __m512i h0 = _mm512_and_si512(hv, M30), h1 = _mm512_srli_epi64(hv, 30);
        for (int j = 0; j < 4; j++) {
            __m512i x = _mm512_add_epi64(_mm512_mul_epu32(a1x2[j], h0), _mm512_mul_epu32(a0[j], h1));
            __m512i t = _mm512_add_epi64(_mm512_mul_epu32(a1[j], h1), _mm512_mul_epu32(a0[j], h0));
            t = _mm512_add_epi64(t, bb[j]);
            t = _mm512_add_epi64(t, _mm512_srli_epi64(x, 31));
            t = _mm512_add_epi64(t, _mm512_and_si512(_mm512_slli_epi64(x, 30), P));
            __m512i r = _mm512_add_epi64(_mm512_and_si512(t, P), _mm512_srli_epi64(t, 61));
            r = _mm512_min_epu64(r, _mm512_sub_epi64(r, P));
            m[j] = _mm512_mask_min_epu64(m[j], live, m[j], r);
        }
    }
    for (int j = 0; j < 4; j++) out[j] = _mm512_reduce_min_epu64(m[j]);
}

/* Two permutations at a time, four shingles per step; values stay below 2^62, so signed 64-bit
 * compares order them. The tail of fewer than four shingles takes the exact scalar path. */
__attribute__((target("avx2")))
static void min_perms_avx2(const uint64_t *h, int64_t n, const uint64_t *a, const uint64_t *b, uint64_t *out) {
    const __m256i P = _mm256_set1_epi64x((long long)MERSENNE61);
    const __m256i M30 = _mm256_set1_epi64x((long long)MASK30);
    __m256i a0[2], a1[2], a1x2[2], bb[2], m[2];
    for (int j = 0; j < 2; j++) {
        a0[j] = _mm256_set1_epi64x((long long)(a[j] & MASK31));
        a1[j] = _mm256_set1_epi64x((long long)(a[j] >> 31));
        a1x2[j] = _mm256_set1_epi64x((long long)((a[j] >> 31) << 1));
        bb[j] = _mm256_set1_epi64x((long long)b[j]);
        m[j] = P;
    }
    int64_t s = 0;
    for (; s + 3 < n; s += 4) {
        __m256i hv = _mm256_loadu_si256((const __m256i *)(h + s));
        __m256i h0 = _mm256_and_si256(hv, M30), h1 = _mm256_srli_epi64(hv, 30);
        for (int j = 0; j < 2; j++) {
            __m256i x = _mm256_add_epi64(_mm256_mul_epu32(a1x2[j], h0), _mm256_mul_epu32(a0[j], h1));
            __m256i t = _mm256_add_epi64(_mm256_mul_epu32(a1[j], h1), _mm256_mul_epu32(a0[j], h0));
            t = _mm256_add_epi64(t, bb[j]);
            t = _mm256_add_epi64(t, _mm256_srli_epi64(x, 31));
            t = _mm256_add_epi64(t, _mm256_and_si256(_mm256_slli_epi64(x, 30), P));
            __m256i r = _mm256_add_epi64(_mm256_and_si256(t, P), _mm256_srli_epi64(t, 61));
            /* r mod p: r - p where that is not negative (its sign bit picks the lane) */
            __m256i d = _mm256_sub_epi64(r, P);
            r = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(d), _mm256_castsi256_pd(r),
                                                     _mm256_castsi256_pd(d)));
            m[j] = _mm256_blendv_epi8(m[j], r, _mm256_cmpgt_epi64(m[j], r));
        }
    }
    for (int j = 0; j < 2; j++) {
        uint64_t lanes[4];
        _mm256_storeu_si256((__m256i *)lanes, m[j]);
        uint64_t best = lanes[0];
        for (int i = 1; i < 4; i++) best = lanes[i] < best ? lanes[i] : best;
        for (int64_t t = s; t < n; t++) {
            uint64_t v = mod_mersenne61((unsigned __int128)a[j] * h[t] + b[j]);
            best = v < best ? v : best;
        }
        out[j] = best;
    }
}

static int detected_level(void) {  /* 2: AVX-512F, 1: AVX2, 0: neither */
    return __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
}

static int simd_level = -1;

static int cpu_level(void) {
    if (simd_level < 0) simd_level = detected_level();
    return simd_level;
}
#endif

/* The vector path scalelab_minhash takes (2: AVX-512, 1: AVX2, 0: scalar). `cap` >= 0 caps it,
 * so the tests can check every path on one machine; -1 only reports it. */
int scalelab_simd_level(int cap) {
#ifdef SCALELAB_SIMD
    int level = cpu_level();
    if (cap >= 0) simd_level = level = cap < detected_level() ? cap : detected_level();
    return level;
#else
    (void)cap;
    return 0;
#endif
}

void scalelab_minhash(const uint64_t *hashes, const int64_t *shingle_offsets, int64_t num_docs,
                      const uint64_t *a, const uint64_t *b, int64_t num_perm, uint64_t *signatures) {
#ifdef SCALELAB_SIMD
    int level = cpu_level();
    if (level > 0) {
        int block = level == 2 ? 4 : 2;  /* permutations per pass over a document's shingles */
        for (int64_t d = 0; d < num_docs; d++) {
            const uint64_t *h = hashes + shingle_offsets[d];
            int64_t n = shingle_offsets[d + 1] - shingle_offsets[d];
            uint64_t *sig = signatures + d * num_perm;
            int64_t k = 0;
            for (; n && k + block <= num_perm; k += block) {
                if (level == 2) min_perms_avx512(h, n, a + k, b + k, sig + k);
                else min_perms_avx2(h, n, a + k, b + k, sig + k);
            }
            for (; k < num_perm; k++) {  /* permutations left over, or no shingles */
                uint64_t best = MERSENNE61;
                for (int64_t t = 0; t < n; t++) {
                    uint64_t v = mod_mersenne61((unsigned __int128)a[k] * h[t] + b[k]);
                    best = v < best ? v : best;
                }
                sig[k] = best;
            }
        }
        return;
    }
#endif
    for (int64_t d = 0; d < num_docs; d++) {
        const uint64_t *h = hashes + shingle_offsets[d];
        int64_t n = shingle_offsets[d + 1] - shingle_offsets[d];
        uint64_t *sig = signatures + d * num_perm;
        /* Permutations outside, shingles inside: the running minimum stays in a register and
         * iterations are independent, so the multiplier pipeline stays full. Hashes are < 2^61
         * already (reduced by the caller's loop below on first use). */
        for (int64_t k = 0; k < num_perm; k++) {
            const uint64_t ak = a[k], bk = b[k];
            uint64_t m0 = MERSENNE61, m1 = MERSENNE61;
            int64_t s = 0;
            for (; s + 1 < n; s += 2) {
                uint64_t v0 = mod_mersenne61((unsigned __int128)ak * h[s] + bk);
                uint64_t v1 = mod_mersenne61((unsigned __int128)ak * h[s + 1] + bk);
                m0 = v0 < m0 ? v0 : m0;
                m1 = v1 < m1 ? v1 : m1;
            }
            if (s < n) {
                uint64_t v = mod_mersenne61((unsigned __int128)ak * h[s] + bk);
                m0 = v < m0 ? v : m0;
            }
            sig[k] = m0 < m1 ? m0 : m1;
        }
    }
}

/* Reduce hashes below 2^61 in place (the permutations' domain). */
void scalelab_reduce61(uint64_t *hashes, int64_t n) {
    for (int64_t i = 0; i < n; i++) hashes[i] %= MERSENNE61;
}

/* Exact Jaccard similarity of the shingle sets of document pairs. Pair i compares document
 * index_a[i] of a (hashes_a[ranges_a[d] .. ranges_a[d + 1]]) with document index_b[i] of b; a hash
 * repeated in a document counts once. Both documents' hashes go into one open-addressing table,
 * tagged by side (1: a, 2: b, 3: both), which gives the union and the intersection in time linear
 * in the two documents: no sorting. `keys` and `tags` hold `capacity` slots, a power of two at
 * least twice the largest pair's hash count. Shingle hashes are mixed already, so their low bits
 * index the table. out[i] = intersection / union (0 for two empty documents). */
void scalelab_pair_jaccard(const uint64_t *hashes_a, const int64_t *ranges_a, const int64_t *index_a,
                           const uint64_t *hashes_b, const int64_t *ranges_b, const int64_t *index_b,
                           int64_t num_pairs, uint64_t *keys, uint8_t *tags, int64_t capacity, double *out) {
    for (int64_t i = 0; i < num_pairs; i++) {
        const uint64_t *a = hashes_a + ranges_a[index_a[i]], *b = hashes_b + ranges_b[index_b[i]];
        int64_t na = ranges_a[index_a[i] + 1] - ranges_a[index_a[i]];
        int64_t nb = ranges_b[index_b[i] + 1] - ranges_b[index_b[i]];
        uint64_t size = 2;
        while (size < (uint64_t)(2 * (na + nb)) && size < (uint64_t)capacity) size <<= 1;
        const uint64_t mask = size - 1;
        for (uint64_t s = 0; s < size; s++) tags[s] = 0;
        int64_t uni = 0, inter = 0;
        for (int64_t j = 0; j < na; j++) {
            uint64_t slot = a[j] & mask;
            while (tags[slot] && keys[slot] != a[j]) slot = (slot + 1) & mask;
            if (!tags[slot]) { keys[slot] = a[j]; tags[slot] = 1; uni++; }
        }
        for (int64_t j = 0; j < nb; j++) {
            uint64_t slot = b[j] & mask;
            while (tags[slot] && keys[slot] != b[j]) slot = (slot + 1) & mask;
            if (!tags[slot]) { keys[slot] = b[j]; tags[slot] = 2; uni++; }
            else if (tags[slot] == 1) { tags[slot] = 3; inter++; }
        }
        out[i] = uni ? (double)inter / (double)uni : 0.0;
    }
}
