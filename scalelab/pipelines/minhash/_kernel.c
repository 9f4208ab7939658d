/* MinHash signatures of word n-gram shingles, for scalelab's near-duplicate stage.
 *
 * Input: lowercased documents as one UTF-8 buffer with offsets, and a table of the code points
 * that are word characters. For each document: each word is hashed (64-bit FNV-1a,
 * then the MurmurHash3 64-bit finalizer), each n-gram of words gets a 64-bit hash rolled from its
 * word hashes, and for every permutation k the signature keeps min over shingles of
 *     (a_k * h + b_k) mod (2^61 - 1)
 * computed exactly with a 128-bit product and Mersenne folding. numpy cannot form the 122-bit
 * product, and splitting it into 32-bit halves costs ~20 array passes; here it is one multiply.
 * Documents with fewer than n words have one shingle: all their words.
 * Plain C with no Python API: loaded through ctypes.
 */
#include <stdint.h>
#include <stddef.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SCALELAB_AVX2 1
#endif

#define MERSENNE61 ((uint64_t)0x1FFFFFFFFFFFFFFFULL)

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

/* Word hashes of one lowercased document; returns the number of words (<= capacity).
 * A word is a maximal run of code points marked in `word_char` (Python's str.isalnum, so the
 * words are exactly those of normalize() in signatures.py); its hash is FNV-1a over its UTF-8
 * bytes, then fmix64. */
static size_t hash_words(const uint8_t *s, size_t len, const uint8_t *word_char, uint64_t *out, size_t capacity) {
    size_t n = 0, i = 0, w;
    int in_word = 0;
    uint64_t h = 0;
    while (i < len) {
        uint32_t cp = s[i] < 0x80 ? s[i] : next_code_point(s, len, &i, &w);
        if (s[i] < 0x80) w = 1;
        if (word_char[cp]) {
            if (!in_word) { h = 0xCBF29CE484222325ULL; in_word = 1; }
            for (size_t j = 0; j < w; j++) { h ^= s[i + j]; h *= 0x100000001B3ULL; }
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
                             const uint8_t *word_char, uint64_t *words_scratch, int64_t scratch_capacity,
                             uint64_t *hashes, int64_t *shingle_offsets) {
    int64_t out = 0;
    for (int64_t d = 0; d < num_docs; d++) {
        shingle_offsets[d] = out;
        size_t nw = hash_words(text + offsets[d], (size_t)(offsets[d + 1] - offsets[d]), word_char,
                               words_scratch, (size_t)scratch_capacity);
        if (nw == 0) continue;
        size_t n = (size_t)ngram < nw ? (size_t)ngram : nw;
        for (size_t i = 0; i + n <= nw; i++) hashes[out++] = shingle_hash(words_scratch, i, n);
    }
    shingle_offsets[num_docs] = out;
}

/* signatures[d * num_perm + k] = min over document d's shingle hashes h of (a_k h + b_k) mod p.
 * A document without shingles keeps the all-ones sentinel (MERSENNE61). */
#ifdef SCALELAB_AVX2
/* min over s of (ak * h[s] + bk) mod p, four shingles per step. With a = a1 2^32 + a0 and
 * h = h1 2^32 + h0 (a1, h1 < 2^29), and 2^61 = 1 (mod p):
 *   a h = a1 h1 2^64 + (a0 h1 + a1 h0) 2^32 + a0 h0
 *       = 8 a1 h1 + (mid >> 29) + ((mid & (2^29 - 1)) << 32) + (lo & p) + (lo >> 61)   (mod p)
 * where every term is < 2^61, so the sum (plus b) fits in 64 bits before the final folding.
 * Values stay below 2^62, so signed 64-bit compares order them correctly. */
__attribute__((target("avx2")))
static uint64_t min_perm_avx2(const uint64_t *h, int64_t n, uint64_t ak, uint64_t bk) {
    const __m256i P = _mm256_set1_epi64x((long long)MERSENNE61);
    const __m256i MASK29 = _mm256_set1_epi64x((1LL << 29) - 1);
    const __m256i a0 = _mm256_set1_epi64x((long long)(ak & 0xFFFFFFFFULL));
    const __m256i a1 = _mm256_set1_epi64x((long long)(ak >> 32));
    const __m256i b = _mm256_set1_epi64x((long long)bk);
    __m256i m = P;
    int64_t s = 0;
    for (; s + 3 < n; s += 4) {
        __m256i hv = _mm256_loadu_si256((const __m256i *)(h + s));
        __m256i h1 = _mm256_srli_epi64(hv, 32);
        __m256i lo = _mm256_mul_epu32(a0, hv);
        __m256i mid = _mm256_add_epi64(_mm256_mul_epu32(a0, h1), _mm256_mul_epu32(a1, hv));
        __m256i hi = _mm256_mul_epu32(a1, h1);
        __m256i r = _mm256_add_epi64(_mm256_and_si256(lo, P), _mm256_srli_epi64(lo, 61));
        r = _mm256_add_epi64(r, _mm256_slli_epi64(hi, 3));
        r = _mm256_add_epi64(r, _mm256_srli_epi64(mid, 29));
        r = _mm256_add_epi64(r, _mm256_slli_epi64(_mm256_and_si256(mid, MASK29), 32));
        r = _mm256_add_epi64(r, b);
        r = _mm256_add_epi64(_mm256_and_si256(r, P), _mm256_srli_epi64(r, 61));
        r = _mm256_add_epi64(_mm256_and_si256(r, P), _mm256_srli_epi64(r, 61));
        /* r < 2^61 + 1 now; r == p means 0 */
        __m256i is_p = _mm256_cmpeq_epi64(r, P);
        r = _mm256_andnot_si256(is_p, r);
        __m256i greater = _mm256_cmpgt_epi64(m, r);
        m = _mm256_blendv_epi8(m, r, greater);
    }
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, m);
    uint64_t best = lanes[0];
    for (int i = 1; i < 4; i++) best = lanes[i] < best ? lanes[i] : best;
    for (; s < n; s++) {
        uint64_t v = mod_mersenne61((unsigned __int128)ak * h[s] + bk);
        best = v < best ? v : best;
    }
    return best;
}

static int has_avx2(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2") ? 1 : 0;
    return cached;
}
#endif

void scalelab_minhash(const uint64_t *hashes, const int64_t *shingle_offsets, int64_t num_docs,
                      const uint64_t *a, const uint64_t *b, int64_t num_perm, uint64_t *signatures) {
#ifdef SCALELAB_AVX2
    if (has_avx2()) {
        for (int64_t d = 0; d < num_docs; d++) {
            const uint64_t *h = hashes + shingle_offsets[d];
            int64_t n = shingle_offsets[d + 1] - shingle_offsets[d];
            for (int64_t k = 0; k < num_perm; k++)
                signatures[d * num_perm + k] = n ? min_perm_avx2(h, n, a[k], b[k]) : MERSENNE61;
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
