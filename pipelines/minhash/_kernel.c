/* MinHash signatures of word n-gram shingles, for scalelab's near-duplicate stage.
 *
 * Input: normalized documents as one UTF-8 buffer with offsets; words are separated by single
 * spaces (normalization guarantees it). For each document: each word is hashed (64-bit FNV-1a,
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

/* Word hashes of one document; returns the number of words (<= capacity). */
static size_t hash_words(const uint8_t *s, size_t len, uint64_t *out, size_t capacity) {
    size_t n = 0, i = 0;
    while (i < len && n < capacity) {
        while (i < len && s[i] == ' ') i++;
        if (i >= len) break;
        uint64_t h = 0xCBF29CE484222325ULL;
        while (i < len && s[i] != ' ') { h ^= s[i++]; h *= 0x100000001B3ULL; }
        out[n++] = fmix64(h);
    }
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
                             uint64_t *words_scratch, int64_t scratch_capacity,
                             uint64_t *hashes, int64_t *shingle_offsets) {
    int64_t out = 0;
    for (int64_t d = 0; d < num_docs; d++) {
        shingle_offsets[d] = out;
        size_t nw = hash_words(text + offsets[d], (size_t)(offsets[d + 1] - offsets[d]),
                               words_scratch, (size_t)scratch_capacity);
        if (nw == 0) continue;
        size_t n = (size_t)ngram < nw ? (size_t)ngram : nw;
        for (size_t i = 0; i + n <= nw; i++) hashes[out++] = shingle_hash(words_scratch, i, n);
    }
    shingle_offsets[num_docs] = out;
}

/* signatures[d * num_perm + k] = min over document d's shingle hashes h of (a_k h + b_k) mod p.
 * A document without shingles keeps the all-ones sentinel (MERSENNE61). */
void scalelab_minhash(const uint64_t *hashes, const int64_t *shingle_offsets, int64_t num_docs,
                      const uint64_t *a, const uint64_t *b, int64_t num_perm, uint64_t *signatures) {
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
