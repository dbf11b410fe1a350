/* curate.native._kernels: the per-byte and per-word text passes, compiled.
 *
 * Each function here has a numpy/Polars reference in the library (named in its docstring) that
 * computes the same result; curate uses the compiled one when this module is built and the
 * reference otherwise, and tests/native/test_kernels.py checks that the two agree bit for bit. Inputs are
 * buffers (Arrow string data and offsets, numpy arrays); outputs go into buffers the caller
 * allocates. No Python object is touched inside a loop, so every loop runs without the GIL and
 * threads calling these run in parallel.
 */
#define _GNU_SOURCE /* memmem */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define K_ROLL 0x9E3779B97F4A7C15ULL /* dedup: shingle rolling multiplier, exact-key power, word fold */
#define M1 0xBF58476D1CE4E5B9ULL
#define M2 0x94D049BB133111EBULL
#define EXACT_LEN 0xD6E8FEB86659FD93ULL
#define NGRAM_B 1000003ULL /* readability: n-gram key base */
#define LONG_WORD 64
#define EMPTY32 0xFFFFFFFFu

static inline uint64_t fmix(uint64_t x) {
    x ^= x >> 30;
    x *= M1;
    x ^= x >> 27;
    x *= M2;
    x ^= x >> 31;
    return x;
}

/* Little-endian load of n <= 8 bytes, zero-padded. */
static inline uint64_t load(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    memcpy(&v, p, n);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* load(d + s, n) for n <= 8, as one unaligned 8-byte load masked to n bytes where the buffer (d_len
 * bytes) has 8 bytes from s: a memcpy of a variable length per word or token was a call each. */
static inline uint64_t load_in(const uint8_t *d, int64_t d_len, int64_t s, int64_t n) {
    if (s + 8 > d_len) return load(d + s, (size_t)n);
    uint64_t v = load(d + s, 8);
    return n == 8 ? v : v & ((1ULL << (8 * n)) - 1);
}

/* Word byte: [0-9A-Za-z_] and every byte >= 0x80 (dedup.words.classify). */
static uint8_t IS_WORD[256];

static void init_tables(void) {
    for (int b = 0; b < 256; b++) {
        int letter = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z');
        IS_WORD[b] = letter || (b >= '0' && b <= '9') || b == '_' || b >= 0x80;
    }
}

/* Eight bytes with the ASCII capitals lowercased (SWAR: no byte loop; other bytes unchanged). */
static inline uint64_t lower8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t low7 = x & ~high;
    uint64_t at_least_a = (low7 + (0x80 - 'A') * ones) & high;
    uint64_t past_z = (low7 + (0x80 - 'Z' - 1) * ones) & high;
    return x | ((at_least_a & ~past_z & ~x & high) >> 2);
}

/* dedup.words.hash_words for one word w[0..len) (lowercased here), 0 < len <= LONG_WORD. */
static inline uint64_t word_hash(const uint8_t *w, size_t len) {
    if (len <= 8) return lower8(load(w, len));
    uint64_t h = lower8(load(w, 8));
    for (size_t k = 8; k < len; k += 8) {
        size_t take = len - k < 8 ? len - k : 8;
        h = fmix((h * K_ROLL) ^ lower8(load(w + k, take)));
    }
    return fmix(h ^ (uint64_t)len);
}

typedef struct {
    Py_buffer data, offsets;
} Texts;

static int get_texts(PyObject *data, PyObject *offsets, Texts *t, Py_ssize_t *n) {
    if (PyObject_GetBuffer(data, &t->data, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (PyObject_GetBuffer(offsets, &t->offsets, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&t->data);
        return -1;
    }
    Py_ssize_t m = t->offsets.len / 8;
    if (t->offsets.itemsize != 8 || m < 1) {
        PyErr_SetString(PyExc_ValueError, "offsets: int64, at least one entry");
        goto fail;
    }
    const int64_t *o = (const int64_t *)t->offsets.buf;
    for (Py_ssize_t i = 0; i < m; i++) {
        if (o[i] < 0 || o[i] > t->data.len || (i && o[i] < o[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "offsets: not increasing within the data");
            goto fail;
        }
    }
    *n = m - 1;
    return 0;
fail:
    PyBuffer_Release(&t->data);
    PyBuffer_Release(&t->offsets);
    return -1;
}

static void release_texts(Texts *t) {
    PyBuffer_Release(&t->data);
    PyBuffer_Release(&t->offsets);
}

static int get_out(PyObject *o, Py_buffer *b, Py_ssize_t need, const char *name) {
    if (PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) return -1;
    if (b->len < need) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, %zd needed", name, b->len, need);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* dedup: word hashes, then shingles -> one-permutation-hashing bins and exact keys                */

PyDoc_STRVAR(hash_words_doc,
             "hash_words(data, offsets, out_hashes, out_counts) -> (n_words, long_words)\n\n"
             "dedup.words.hash_words: every maximal run of word bytes of each text, lowercased and hashed.\n"
             "Words over 64 bytes get hash 0 here and are listed in long_words as (index, start, end) in data\n"
             "for the caller to hash with xxh3. out_hashes: uint64, len(data) // 2 + n + 1 entries.");

/* Words over LONG_WORD bytes: (index, start, end) triples for the caller, grown as needed. */
typedef struct {
    int64_t *at;
    int64_t n, cap;
} LongWords;

/* Hash the word d[s..e) as word number n_words: 0 when it ran out of memory for a long word. */
static inline int add_word(const uint8_t *d, int64_t d_len, int64_t s, int64_t e, uint64_t *h, int64_t n_words,
                           LongWords *lw) {
    int64_t len = e - s;
    if (len <= 8) { /* word_hash's short case, with one load */
        h[n_words] = lower8(load_in(d, d_len, s, len));
        return 1;
    }
    if (len <= LONG_WORD) {
        h[n_words] = word_hash(d + s, (size_t)len);
        return 1;
    }
    if (lw->n == lw->cap) {
        int64_t cap = lw->cap ? 2 * lw->cap : 16;
        int64_t *grown = realloc(lw->at, (size_t)cap * 3 * sizeof(int64_t));
        if (!grown) return 0;
        lw->at = grown;
        lw->cap = cap;
    }
    lw->at[3 * lw->n] = n_words;
    lw->at[3 * lw->n + 1] = s;
    lw->at[3 * lw->n + 2] = e;
    lw->n++;
    h[n_words] = 0;
    return 1;
}

#if defined(__SSE2__) && !defined(CURATE_SCALAR) /* -DCURATE_SCALAR: the byte loops, to test them on x86 */
#define CURATE_SSE2 1
#include <emmintrin.h>
/* IS_WORD of 16 bytes as bits: [0-9A-Za-z_] or >= 0x80 (signed compares: those bytes are negative). */
static inline uint64_t word_bits16(const uint8_t *p) {
    __m128i x = _mm_loadu_si128((const __m128i *)p);
    __m128i high = _mm_cmplt_epi8(x, _mm_setzero_si128());
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
    __m128i low = _mm_or_si128(x, _mm_set1_epi8(0x20)); /* capitals -> small letters; nothing else lands in a-z */
    __m128i letter =
        _mm_and_si128(_mm_cmpgt_epi8(low, _mm_set1_epi8('a' - 1)), _mm_cmplt_epi8(low, _mm_set1_epi8('z' + 1)));
    __m128i under = _mm_cmpeq_epi8(x, _mm_set1_epi8('_'));
    return (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(high, digit), _mm_or_si128(letter, under)));
}

/* The 64 bytes at d[p..): in place, or near the buffer's end (d_len) copied into tail and padded with
 * zero bytes (neither word bytes nor any byte scanned for), so a scan never reads past the buffer. */
static inline const uint8_t *block64(const uint8_t *d, int64_t d_len, int64_t p, uint8_t tail[64]) {
    if (p + 64 <= d_len) return d + p;
    memset(tail, 0, 64);
    memcpy(tail, d + p, (size_t)(d_len - p));
    return tail;
}

/* IS_WORD of the 64 bytes at d[p..), as bits; bytes at or past d_len read as non-word. */
static inline uint64_t word_bits64(const uint8_t *d, int64_t d_len, int64_t p) {
    uint8_t tail[64];
    const uint8_t *q = block64(d, d_len, p, tail);
    return word_bits16(q) | word_bits16(q + 16) << 16 | word_bits16(q + 32) << 32 | word_bits16(q + 48) << 48;
}

/* Which of the 64 bytes at d[p..) equal c (c != 0), as bits; bytes at or past d_len are not c. */
static inline uint64_t byte_bits64(const uint8_t *d, int64_t d_len, int64_t p, uint8_t c) {
    uint8_t tail[64];
    const uint8_t *q = block64(d, d_len, p, tail);
    __m128i cc = _mm_set1_epi8((char)c);
    uint64_t bits = 0;
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(q + 16 * k));
        bits |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, cc)) << (16 * k);
    }
    return bits;
}
#endif

static PyObject *hash_words(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *data_o, *off_o, *hash_o, *count_o;
    if (!PyArg_ParseTuple(args, "OOOO", &data_o, &off_o, &hash_o, &count_o)) return NULL;
    Texts t;
    Py_ssize_t n;
    if (get_texts(data_o, off_o, &t, &n) < 0) return NULL;
    Py_buffer hb, cb;
    if (get_out(hash_o, &hb, (t.data.len / 2 + n + 1) * 8, "out_hashes") < 0) {
        release_texts(&t);
        return NULL;
    }
    if (get_out(count_o, &cb, n * 8, "out_counts") < 0) {
        PyBuffer_Release(&hb);
        release_texts(&t);
        return NULL;
    }
    const uint8_t *d = (const uint8_t *)t.data.buf;
    const int64_t *o = (const int64_t *)t.offsets.buf;
    const int64_t d_len = (int64_t)t.data.len;
    uint64_t *h = (uint64_t *)hb.buf;
    int64_t *counts = (int64_t *)cb.buf;
    int64_t n_words = 0;
    LongWords lw = {NULL, 0, 0};
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < n && ok; i++) {
        int64_t p = o[i], end = o[i + 1], before = n_words;
#ifdef CURATE_SSE2
        /* 64 bytes at a time: where words start and end are bit operations on the block's word bits, so
         * no branch depends on each byte (the byte loop below mispredicted at every word's two ends). */
        int64_t ws = -1; /* the start of a word still open at the block's end */
        for (; p < end && ok; p += 64) {
            uint64_t m = word_bits64(d, d_len, p);
            if (end - p < 64) m &= (1ULL << (end - p)) - 1;
            uint64_t before_bits = (m << 1) | (ws >= 0);
            uint64_t edges = (m & ~before_bits) | (~m & before_bits); /* word starts, and first bytes after words */
            while (edges && ok) {
                int k = __builtin_ctzll(edges);
                edges &= edges - 1;
                if ((m >> k) & 1) {
                    ws = p + k;
                } else {
                    ok = add_word(d, d_len, ws, p + k, h, n_words++, &lw);
                    ws = -1;
                }
            }
        }
        if (ws >= 0 && ok) ok = add_word(d, d_len, ws, end, h, n_words++, &lw);
#else
        while (p < end && ok) {
            while (p < end && !IS_WORD[d[p]]) p++;
            if (p >= end) break;
            int64_t s = p;
            while (p < end && IS_WORD[d[p]]) p++;
            ok = add_word(d, d_len, s, p, h, n_words++, &lw);
        }
#endif
        counts[i] = n_words - before;
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&hb);
    PyBuffer_Release(&cb);
    release_texts(&t);
    if (!ok) {
        free(lw.at);
        return PyErr_NoMemory();
    }
    PyObject *lst = PyList_New(lw.n);
    for (int64_t j = 0; lst && j < lw.n; j++) {
        PyObject *tup = Py_BuildValue("(LLL)", (long long)lw.at[3 * j], (long long)lw.at[3 * j + 1],
                                      (long long)lw.at[3 * j + 2]);
        if (!tup) {
            Py_CLEAR(lst);
            break;
        }
        PyList_SET_ITEM(lst, j, tup);
    }
    free(lw.at);
    if (!lst) return NULL;
    return Py_BuildValue("(LN)", (long long)n_words, lst);
}

PyDoc_STRVAR(oph_doc,
             "oph_bins(hashes, counts, num_perm, ngram, seed, out_sig, out_n_shingles, out_exact)\n\n"
             "dedup.minhash: shingle_hashes + the binning of _oph (before densification) + \n"
             "normalize.exact_keys_from_tokens, per document in one pass over its word hashes.\n"
             "out_sig: uint32 (n, num_perm); out_n_shingles: int64 (n); out_exact: uint64 (n).");

static PyObject *oph_bins(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *h_o, *c_o, *sig_o, *nsh_o, *ex_o;
    int num_perm, ngram;
    long long seed;
    if (!PyArg_ParseTuple(args, "OOiiLOOO", &h_o, &c_o, &num_perm, &ngram, &seed, &sig_o, &nsh_o, &ex_o))
        return NULL;
    if (num_perm < 1 || ngram < 1) {
        PyErr_SetString(PyExc_ValueError, "num_perm and ngram must be >= 1");
        return NULL;
    }
    Py_buffer hb, cb, sb, nb, eb;
    if (PyObject_GetBuffer(h_o, &hb, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(c_o, &cb, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&hb);
        return NULL;
    }
    Py_ssize_t n = cb.len / 8, n_tok = hb.len / 8;
    const int64_t *counts = (const int64_t *)cb.buf;
    int64_t total = 0;
    int negative = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        negative |= counts[i] < 0;
        total += counts[i];
    }
    if (negative || total != n_tok) {
        PyErr_SetString(PyExc_ValueError, "counts must be >= 0 and sum to len(hashes)");
        PyBuffer_Release(&hb);
        PyBuffer_Release(&cb);
        return NULL;
    }
    if (get_out(sig_o, &sb, n * num_perm * 4, "out_sig") < 0) goto fail0;
    if (get_out(nsh_o, &nb, n * 8, "out_n_shingles") < 0) goto fail1;
    if (get_out(ex_o, &eb, n * 8, "out_exact") < 0) goto fail2;
    const uint64_t *tok = (const uint64_t *)hb.buf;
    uint32_t *sig = (uint32_t *)sb.buf;
    int64_t *nsh = (int64_t *)nb.buf;
    uint64_t *exact = (uint64_t *)eb.buf;
    Py_BEGIN_ALLOW_THREADS;
    int pow2 = (num_perm & (num_perm - 1)) == 0;
    int m = 0;
    while ((1 << m) < num_perm) m++;
    uint64_t seed_mix = (uint64_t)seed * 0x9E3779B9ULL;
    uint64_t k_top = 1; /* K^(ngram-1): the weight of a full window's first word */
    for (int j = 1; j < ngram; j++) k_top *= K_ROLL;
    const uint64_t *t = tok;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t c = counts[i];
        uint32_t *row = sig + (size_t)i * num_perm;
        for (int b = 0; b < num_perm; b++) row[b] = EMPTY32;
        int64_t windows = c <= 0 ? 0 : (c >= ngram ? c - ngram + 1 : 1);
        nsh[i] = windows;
        /* exact key: sum t_j * K^(j+1), xor count * EXACT_LEN, then normalize._mix */
        uint64_t ex = 0, pw = K_ROLL;
        for (int64_t j = 0; j < c; j++) {
            ex += t[j] * pw;
            pw *= K_ROLL;
        }
        ex ^= (uint64_t)c * EXACT_LEN;
        ex ^= ex >> 31;
        ex *= M1;
        ex ^= ex >> 29;
        exact[i] = ex;
        int64_t len = c >= ngram ? ngram : c;
        uint64_t roll = 0; /* Horner over the window: sum t[w+j] * K^(len-1-j), rolled one word a step */
        for (int64_t j = 0; j < len && windows; j++) roll = roll * K_ROLL + t[j];
        for (int64_t w = 0; w < windows; w++) {
            if (w) roll = (roll - t[w - 1] * k_top) * K_ROLL + t[w + len - 1];
            uint64_t sh = fmix(roll);
            if (seed) sh = fmix(sh ^ seed_mix);
            int64_t bin;
            if (pow2)
                bin = m ? (int64_t)(sh >> (64 - m)) : 0;
            else
                bin = (int64_t)(((sh >> 32) * (uint64_t)num_perm) >> 32);
            uint32_t v = (uint32_t)sh;
            if (v > EMPTY32 - 1) v = EMPTY32 - 1;
            uint32_t cur = row[bin];
            row[bin] = v < cur ? v : cur; /* branch-free: about half the early shingles lower their bin */
        }
        t += c;
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&eb);
    PyBuffer_Release(&nb);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&cb);
    PyBuffer_Release(&hb);
    Py_RETURN_NONE;
fail2:
    PyBuffer_Release(&nb);
fail1:
    PyBuffer_Release(&sb);
fail0:
    PyBuffer_Release(&cb);
    PyBuffer_Release(&hb);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* readability: line statistics and repeated word n-grams of texts without CJK                     */

/* A 64-bit hash of a byte string, for equality only (lines, tokens; never stored): one finalizer for up
 * to 8 bytes (most tokens); a long string (a line) in four independent lanes of 8 bytes, so that the
 * multiplications of one 32-byte step overlap instead of each waiting on the last, then folded. */
static inline uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = (uint64_t)n * K_ROLL;
    size_t k = 0;
    if (n > 32) {
        uint64_t l0 = h, l1 = h ^ M1, l2 = h ^ M2, l3 = h ^ EXACT_LEN;
        for (; k + 32 < n; k += 32) {
            l0 = fmix(l0 ^ load(p + k, 8)) * K_ROLL;
            l1 = fmix(l1 ^ load(p + k + 8, 8)) * K_ROLL;
            l2 = fmix(l2 ^ load(p + k + 16, 8)) * K_ROLL;
            l3 = fmix(l3 ^ load(p + k + 24, 8)) * K_ROLL;
        }
        h = fmix(l0 ^ fmix(l1 ^ fmix(l2 ^ fmix(l3))));
    }
    for (; k + 8 < n; k += 8) h = fmix(h ^ load(p + k, 8)) * K_ROLL;
    return fmix(h ^ load(p + k, n - k));
}

/* hash_bytes(d + s, n), with one masked 8-byte load for a short string that is not at the buffer's end. */
static inline uint64_t hash_bytes_at(const uint8_t *d, int64_t d_len, int64_t s, int64_t n) {
    if (n > 8) return hash_bytes(d + s, (size_t)n);
    return fmix(((uint64_t)n * K_ROLL) ^ load_in(d, d_len, s, n)); /* hash_bytes' short case */
}

/* Number of bytes equal to c in p[0..n): a loop the compiler vectorizes. */
static inline int64_t count_byte(const uint8_t *p, int64_t n, uint8_t c) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += p[i] == c;
    return k;
}

/* The longest text, in bytes: per-text scratch arrays hold one entry per byte + 1. */
static int64_t longest_text(const int64_t *o, Py_ssize_t n) {
    int64_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (o[i + 1] - o[i] > m) m = o[i + 1] - o[i];
    return m + 1;
}

/* Counts distinct uint64 keys: open addressing, the table cleared per use (slot 0 means empty; key 0
 * is tracked apart). */
typedef struct {
    uint64_t *slots;
    size_t cap;
} KeySet;

static int keyset_reserve(KeySet *s, size_t items) {
    size_t cap = 16;
    while (cap < 2 * items) cap <<= 1;
    if (cap > s->cap) {
        uint64_t *grown = realloc(s->slots, cap * sizeof(uint64_t));
        if (!grown) return -1;
        s->slots = grown;
        s->cap = cap;
    }
    return 0;
}

static int64_t count_distinct(KeySet *s, const uint64_t *keys, int64_t n) {
    size_t cap = 16;
    int bits = 4;
    while (cap < 2 * (size_t)n) {
        cap <<= 1;
        bits++;
    }
    memset(s->slots, 0, cap * sizeof(uint64_t));
    size_t mask = cap - 1;
    int64_t distinct = 0;
    int zero = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t k = keys[i];
        if (k == 0) {
            distinct += !zero;
            zero = 1;
            continue;
        }
        size_t at = (size_t)((k * K_ROLL) >> (64 - bits));
        while (s->slots[at] && s->slots[at] != k) at = (at + 1) & mask;
        if (!s->slots[at]) {
            s->slots[at] = k;
            distinct++;
        }
    }
    return distinct;
}

/* Rust's char::is_whitespace (Polars' strip_chars()), for a code point. */
static inline int is_ws(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* The code point starting at p (valid UTF-8: Arrow strings are), and its length in bytes. */
static inline uint32_t decode(const uint8_t *p, int *len) {
    uint8_t b = p[0];
    if (b < 0x80) {
        *len = 1;
        return b;
    }
    if (b < 0xE0) {
        *len = 2;
        return ((uint32_t)(b & 0x1F) << 6) | (p[1] & 0x3F);
    }
    if (b < 0xF0) {
        *len = 3;
        return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
}

/* The code point ending just before e (s <= start of it), and its length. */
static inline uint32_t decode_back(const uint8_t *s, const uint8_t *e, int *len) {
    const uint8_t *p = e - 1;
    while (p > s && (*p & 0xC0) == 0x80 && e - p < 4) p--;
    return decode(p, len);
}

PyDoc_STRVAR(line_stats_doc,
             "line_stats(data, offsets, min_chars, out_longest, out_total, out_repeat)\n\n"
             "quality.readability._line_stats for texts without CJK: per text, over its lines (split at\n"
             "\\n), the most and the total words (spaces + 1 per non-empty line) and the share of lines\n"
             "whose stripped form has >= min_chars characters that repeat an earlier such line.\n"
             "out_longest, out_total: int32 (n); out_repeat: float64 (n).");

static PyObject *line_stats(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *data_o, *off_o, *lo_o, *to_o, *re_o;
    Py_ssize_t min_chars;
    if (!PyArg_ParseTuple(args, "OOnOOO", &data_o, &off_o, &min_chars, &lo_o, &to_o, &re_o)) return NULL;
    Texts t;
    Py_ssize_t n;
    if (get_texts(data_o, off_o, &t, &n) < 0) return NULL;
    Py_buffer lb, tb, rb;
    if (get_out(lo_o, &lb, n * 4, "out_longest") < 0) goto fail0;
    if (get_out(to_o, &tb, n * 4, "out_total") < 0) goto fail1;
    if (get_out(re_o, &rb, n * 8, "out_repeat") < 0) goto fail2;
    const uint8_t *d = (const uint8_t *)t.data.buf;
    const int64_t *o = (const int64_t *)t.offsets.buf;
    int32_t *longest = (int32_t *)lb.buf, *total = (int32_t *)tb.buf;
    double *repeat = (double *)rb.buf;
    int64_t max_lines = longest_text(o, n);
    KeySet set = {NULL, 0};
    uint64_t *keys = malloc((size_t)max_lines * sizeof(uint64_t));
    int oom = !keys || keyset_reserve(&set, (size_t)max_lines) < 0;
    if (!oom) {
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t p = o[i], end = o[i + 1], nk = 0, best = 0, sum = 0;
            for (;;) { /* one line: [p, q) */
                const uint8_t *nl = memchr(d + p, '\n', (size_t)(end - p));
                int64_t q = nl ? nl - d : end;
                int64_t w = count_byte(d + p, q - p, ' ') + (q > p);
                if (w > best) best = w;
                sum += w;
                const uint8_t *a = d + p, *b = d + q;
                int len;
                while (a < b && is_ws(decode(a, &len))) a += len;
                while (b > a && is_ws(decode_back(a, b, &len))) b -= len;
                int64_t chars = 0;
                for (const uint8_t *c = a; c < b && chars < min_chars; c++) chars += (*c & 0xC0) != 0x80;
                if (chars >= min_chars) keys[nk++] = hash_bytes(a, (size_t)(b - a));
                if (q >= end) break;
                p = q + 1;
            }
            longest[i] = (int32_t)best;
            total[i] = (int32_t)sum;
            repeat[i] = nk ? 1.0 - (double)count_distinct(&set, keys, nk) / (double)nk : 0.0;
        }
        Py_END_ALLOW_THREADS;
    }
    free(keys);
    free(set.slots);
    PyBuffer_Release(&rb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&lb);
    release_texts(&t);
    if (oom) return PyErr_NoMemory();
    Py_RETURN_NONE;
fail2:
    PyBuffer_Release(&tb);
fail1:
    PyBuffer_Release(&lb);
fail0:
    release_texts(&t);
    return NULL;
}

PyDoc_STRVAR(ngram_doc,
             "ngram_repeat(data, offsets, n, out_frac)\n\n"
             "quality.readability._ngram_repeat for texts without CJK: tokens are the pieces between single\n"
             "spaces (empty ones included); per text, the share of its n-token windows that already\n"
             "occurred earlier in it (0.0 with no window). out_frac: float64 (n_texts).");

static PyObject *ngram_repeat(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *data_o, *off_o, *fr_o;
    Py_ssize_t gram;
    if (!PyArg_ParseTuple(args, "OOnO", &data_o, &off_o, &gram, &fr_o)) return NULL;
    if (gram < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 1");
        return NULL;
    }
    Texts t;
    Py_ssize_t n;
    if (get_texts(data_o, off_o, &t, &n) < 0) return NULL;
    Py_buffer fb;
    if (get_out(fr_o, &fb, n * 8, "out_frac") < 0) {
        release_texts(&t);
        return NULL;
    }
    const uint8_t *d = (const uint8_t *)t.data.buf;
    const int64_t *o = (const int64_t *)t.offsets.buf;
    const int64_t d_len = (int64_t)t.data.len;
    double *frac = (double *)fb.buf;
    int64_t max_tok = longest_text(o, n);
    /* B^(gram-1) and the inverse of B modulo 2^64 (B is odd; Newton's iteration), for rolling keys */
    uint64_t top = 1, inv = NGRAM_B;
    for (Py_ssize_t k = 1; k < gram; k++) top *= NGRAM_B;
    for (int k = 0; k < 6; k++) inv *= 2 - NGRAM_B * inv;
    KeySet set = {NULL, 0};
    uint64_t *tok = malloc((size_t)max_tok * sizeof(uint64_t));
    int oom = !tok || keyset_reserve(&set, (size_t)max_tok) < 0;
    if (!oom) {
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t p = o[i], end = o[i + 1], nt = 0;
#ifdef CURATE_SSE2
            for (int64_t b = p; b < end; b += 64) { /* the spaces of 64 bytes at a time, as bits */
                uint64_t sp = byte_bits64(d, d_len, b, ' ');
                if (end - b < 64) sp &= (1ULL << (end - b)) - 1;
                for (; sp; sp &= sp - 1) {
                    int64_t q = b + __builtin_ctzll(sp);
                    tok[nt++] = hash_bytes_at(d, d_len, p, q - p);
                    p = q + 1;
                }
            }
            tok[nt++] = hash_bytes_at(d, d_len, p, end - p);
#else
            for (;;) {
                int64_t q = p;
                while (q < end && d[q] != ' ') q++;
                tok[nt++] = hash_bytes_at(d, d_len, p, q - p);
                if (q >= end) break;
                p = q + 1;
            }
#endif
            int64_t windows = nt - gram + 1;
            if (windows <= 0) {
                frac[i] = 0.0;
                continue;
            }
            /* window keys sum(h[w+k] * B^k) mod 2^64, rolled: drop h[w], divide by B, add h[w+gram] *
             * B^(gram-1); written over the token hashes in place (window w+1 still needs tok[w]) */
            uint64_t g = 0;
            for (Py_ssize_t k = gram - 1; k >= 0; k--) g = g * NGRAM_B + tok[k];
            for (int64_t w = 0; w < windows; w++) {
                uint64_t next = w + 1 < windows ? (g - tok[w]) * inv + tok[w + gram] * top : 0;
                tok[w] = g;
                g = next;
            }
            frac[i] = 1.0 - (double)count_distinct(&set, tok, windows) / (double)windows;
        }
        Py_END_ALLOW_THREADS;
    }
    free(tok);
    free(set.slots);
    PyBuffer_Release(&fb);
    release_texts(&t);
    if (oom) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------- */
/* lang: the cleaning of plain-ASCII texts before segmentation                                       */

/* Rust regex's \s on ASCII (White_Space: \t \n \v \f \r and space). */
static inline int ascii_ws(uint8_t c) { return (c >= 0x09 && c <= 0x0D) || c == ' '; }

/* The first occurrence of needle in [p, end) at or after p, or end. */
static inline const uint8_t *find(const uint8_t *p, const uint8_t *end, const char *needle, size_t n) {
    while (p + n <= end) {
        const uint8_t *hit = memchr(p, needle[0], (size_t)(end - p - (ptrdiff_t)n + 1));
        if (!hit) return end;
        if (memcmp(hit, needle, n) == 0) return hit;
        p = hit + 1;
    }
    return end;
}

static inline int starts(const uint8_t *p, const uint8_t *end, const char *lit, size_t n) {
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* The first byte in [p, end) equal to a or b, or end. */
static inline const uint8_t *find2(const uint8_t *p, const uint8_t *end, uint8_t a, uint8_t b) {
    while (p < end && *p != a && *p != b) p++;
    return p;
}

/* _patterns.STRIP_BLOCKS without its [ \t]* prefix, at q: the end of the block that starts there, or
 * NULL. Alternatives in the pattern's order; the first that matches wins (leftmost-first). */
static const uint8_t *block_at(const uint8_t *q, const uint8_t *end) {
    const uint8_t *f;
    switch (*q) {
    case '`':
        if (starts(q, end, "```", 3)) { /* ```.*?(?:```|\z) */
            f = find(q + 3, end, "```", 3);
            return f == end ? end : f + 3;
        }
        f = find2(q + 1, end, '`', '\n'); /* `[^`\n]*` */
        return f < end && *f == '`' ? f + 1 : NULL;
    case '$':
        if (starts(q, end, "$$", 2)) { /* \$\$.*?\$\$ */
            f = find(q + 2, end, "$$", 2);
            if (f < end) return f + 2;
        }
        /* \$[^\s$](?:[^$\n]*?[^\s$\\])?\$ : up to the first $ of the line, whose previous byte is
         * the opening character or neither a space nor a backslash */
        if (q + 1 >= end || ascii_ws(q[1]) || q[1] == '$') return NULL;
        f = find2(q + 2, end, '$', '\n');
        if (f >= end || *f != '$') return NULL;
        if (f == q + 2 || !(ascii_ws(f[-1]) || f[-1] == '\\')) return f + 1;
        return NULL;
    case '\\':
        if (starts(q, end, "\\[", 2)) {
            f = find(q + 2, end, "\\]", 2);
            return f < end ? f + 2 : NULL;
        }
        if (starts(q, end, "\\(", 2)) {
            f = find(q + 2, end, "\\)", 2);
            return f < end ? f + 2 : NULL;
        }
        if (starts(q, end, "\\begin{", 7)) { /* \\begin\{[^}]*\}.*?\\end\{[^}]*\} */
            const uint8_t *close = memchr(q + 7, '}', (size_t)(end - q - 7));
            if (!close) return NULL;
            f = find(close + 1, end, "\\end{", 5);
            if (f >= end) return NULL;
            close = memchr(f + 5, '}', (size_t)(end - f - 5));
            return close ? close + 1 : NULL;
        }
        return NULL;
    case '<': /* <<[^>\n]*>> */
        if (!starts(q, end, "<<", 2)) return NULL;
        f = find2(q + 2, end, '>', '\n');
        return f + 1 < end && f[0] == '>' && f[1] == '>' ? f + 2 : NULL;
    case '[': /* \[asy\].*?\[/asy\] */
        if (!starts(q, end, "[asy]", 5)) return NULL;
        f = find(q + 5, end, "[/asy]", 6);
        return f < end ? f + 6 : NULL;
    case 'h': { /* https?://\S+ */
        const uint8_t *p = q;
        if (starts(p, end, "https://", 8))
            p += 8;
        else if (starts(p, end, "http://", 7))
            p += 7;
        else
            return NULL;
        if (p >= end || ascii_ws(*p)) return NULL;
        while (p < end && !ascii_ws(*p)) p++;
        return p;
    }
    default:
        return NULL;
    }
}

/* _patterns.STRIP_TOKENS's character class on ASCII: \p{S}, \p{Nd} and the listed punctuation */
static uint8_t TOKEN_CLASS[256];

static void init_token_class(void) {
    const char *cls = "$+0123456789<=>^`|~_*/%#@&()[]{},";
    for (const char *c = cls; *c; c++) TOKEN_CLASS[(uint8_t)*c] = 1;
}

static inline int is_letter(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

/* STRIP_TOKENS without its prefix, at q: \\[A-Za-z]+ | [class]+ */
static const uint8_t *token_at(const uint8_t *q, const uint8_t *end) {
    if (*q == '\\') {
        const uint8_t *p = q + 1;
        while (p < end && is_letter(*p)) p++;
        return p > q + 1 ? p : NULL;
    }
    if (!TOKEN_CLASS[*q]) return NULL;
    const uint8_t *p = q + 1;
    while (p < end && TOKEN_CLASS[*p]) p++;
    return p;
}

/* Bytes an alternative of X can start with (the [ \t]* prefix is found by looking back). */
static uint8_t BLOCK_START[256], TOKEN_START[256], SENTENCE_START[256];

static void init_starts(void) {
    const char *block = "`$\\<[h", *token = "\\$+0123456789<=>^`|~_*/%#@&()[]{},", *sentence = ".!?;:<";
    for (const char *c = block; *c; c++) BLOCK_START[(uint8_t)*c] = 1;
    for (const char *c = token; *c; c++) TOKEN_START[(uint8_t)*c] = 1;
    for (const char *c = sentence; *c; c++) SENTENCE_START[(uint8_t)*c] = 1;
}

enum { BLOCKS, TOKENS, SENTENCES }; /* which of the three start sets above */

#ifdef CURATE_SSE2
/* The bytes of q[0..16) that may start a match of `kind`, as bits (q[16] is read too). The sets as
 * compares: BLOCK_START and SENTENCE_START byte by byte, TOKEN_START as its ASCII ranges; an 'h' counts
 * only before a 't' (https?:// is the only block that starts with it, and "h" is common in English). */
static inline uint32_t start_bits16(const uint8_t *q, int kind) {
    __m128i x = _mm_loadu_si128((const __m128i *)q), m;
#define EQ(c) _mm_cmpeq_epi8(x, _mm_set1_epi8((char)(c)))
#define IN(lo, hi) \
    _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8((char)((lo)-1))), _mm_cmplt_epi8(x, _mm_set1_epi8((char)((hi) + 1))))
    if (kind == BLOCKS) {
        __m128i next_t = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(q + 1)), _mm_set1_epi8('t'));
        m = _mm_or_si128(_mm_or_si128(_mm_or_si128(EQ('`'), EQ('$')), _mm_or_si128(EQ('\\'), EQ('<'))),
                         _mm_or_si128(EQ('['), _mm_and_si128(EQ('h'), next_t)));
    } else if (kind == TOKENS) { /* # $ % &  ( ) * + ,  / 0-9  < = >  @  [ \ ] ^ _ `  { | } ~ */
        m = _mm_or_si128(
            _mm_or_si128(_mm_or_si128(IN(0x23, 0x26), IN(0x28, 0x2C)), _mm_or_si128(IN(0x2F, 0x39), IN(0x3C, 0x3E))),
            _mm_or_si128(_mm_or_si128(EQ(0x40), IN(0x5B, 0x60)), IN(0x7B, 0x7E)));
    } else {
        m = _mm_or_si128(_mm_or_si128(_mm_or_si128(EQ('.'), EQ('!')), _mm_or_si128(EQ('?'), EQ(';'))),
                         _mm_or_si128(EQ(':'), EQ('<')));
    }
#undef EQ
#undef IN
    return (uint32_t)_mm_movemask_epi8(m);
}
#endif

/* The first byte at or after q that may start a match of `kind` (start: its table), or end. 16 bytes
 * at a time where SSE2 is at hand (the byte loop was half of this pass's time on 4k traces). */
static inline const uint8_t *next_start(const uint8_t *q, const uint8_t *end, const uint8_t *start, int kind) {
#ifdef CURATE_SSE2
    for (; q + 17 <= end; q += 16) {
        uint32_t m = start_bits16(q, kind);
        if (m) return q + __builtin_ctz(m);
    }
#else
    (void)kind;
#endif
    while (q < end && !start[*q]) q++;
    return q;
}

/* replace_all(pattern, "") for a pattern [ \t]*(?:X) where no alternative of X starts with a space or
 * a tab: every match of X also loses the run of spaces and tabs just before it, back to the end of
 * the previous match at most (where the regex's scan resumed). Writes to out, returns its end. */
static uint8_t *strip_with_spaces(const uint8_t *p, const uint8_t *end, uint8_t *out, const uint8_t *start, int kind,
                                  const uint8_t *(*at)(const uint8_t *, const uint8_t *)) {
    const uint8_t *last = p, *q = p;
    for (;;) {
        q = next_start(q, end, start, kind);
        if (q >= end) break;
        const uint8_t *e = at(q, end);
        if (!e) {
            q++;
            continue;
        }
        const uint8_t *cut = q;
        while (cut > last && (cut[-1] == ' ' || cut[-1] == '\t')) cut--;
        memmove(out, last, (size_t)(cut - last));
        out += cut - last;
        last = q = e;
    }
    memmove(out, last, (size_t)(end - last));
    return out + (end - last);
}

/* SENTENCE_END = [.!?;:]+(?:\s|\z)|</?think>  ->  "\n" */
static inline int sentence_punct(uint8_t c) { return c == '.' || c == '!' || c == '?' || c == ';' || c == ':'; }

static uint8_t *cut_sentences(const uint8_t *p, const uint8_t *end, uint8_t *out) {
    const uint8_t *q = p, *last = p; /* [last, q) is copied when the next match is found */
    for (;;) {
        q = next_start(q, end, SENTENCE_START, SENTENCES);
        if (q >= end) break;
        const uint8_t *e = NULL;
        if (*q != '<') {
            const uint8_t *r = q + 1;
            while (r < end && sentence_punct(*r)) r++;
            if (r == end || ascii_ws(*r))
                e = r == end ? r : r + 1;
            else
                q = r; /* no match starts inside the run either */
        } else if (starts(q, end, "<think>", 7)) {
            e = q + 7;
        } else if (starts(q, end, "</think>", 8)) {
            e = q + 8;
        } else {
            q++;
        }
        if (e) {
            memmove(out, last, (size_t)(q - last));
            out += q - last;
            *out++ = '\n';
            last = q = e;
        }
    }
    memmove(out, last, (size_t)(end - last));
    return out + (end - last);
}

PyDoc_STRVAR(clean_doc,
             "clean_latin(data, offsets, out_data, out_offsets)\n\n"
             "quality.language._clean_segments before its split, for plain-ASCII texts: STRIP_BLOCKS and\n"
             "STRIP_TOKENS removed (with the spaces before each match), then every SENTENCE_END match\n"
             "replaced by a newline, each pass over the previous one's output as the regexes run.\n"
             "out_data: uint8, len(data) bytes; out_offsets: int64 (n + 1).");

static PyObject *clean_latin(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *data_o, *off_o, *od_o, *oo_o;
    if (!PyArg_ParseTuple(args, "OOOO", &data_o, &off_o, &od_o, &oo_o)) return NULL;
    Texts t;
    Py_ssize_t n;
    if (get_texts(data_o, off_o, &t, &n) < 0) return NULL;
    Py_buffer db, ob;
    if (get_out(od_o, &db, t.data.len, "out_data") < 0) goto fail0;
    if (get_out(oo_o, &ob, (n + 1) * 8, "out_offsets") < 0) goto fail1;
    const uint8_t *d = (const uint8_t *)t.data.buf;
    const int64_t *o = (const int64_t *)t.offsets.buf;
    uint8_t *out = (uint8_t *)db.buf;
    int64_t *oo = (int64_t *)ob.buf;
    int64_t longest = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (o[i + 1] - o[i] > longest) longest = o[i + 1] - o[i];
    uint8_t *a = malloc((size_t)longest + 1), *b = malloc((size_t)longest + 1);
    int oom = !a || !b;
    if (!oom) {
        Py_BEGIN_ALLOW_THREADS;
        uint8_t *w = out;
        oo[0] = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            const uint8_t *s = d + o[i], *e = d + o[i + 1];
            uint8_t *ae = strip_with_spaces(s, e, a, BLOCK_START, BLOCKS, block_at);
            uint8_t *be = strip_with_spaces(a, ae, b, TOKEN_START, TOKENS, token_at);
            w = cut_sentences(b, be, w);
            oo[i + 1] = w - out;
        }
        Py_END_ALLOW_THREADS;
    }
    free(a);
    free(b);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&db);
    release_texts(&t);
    if (oom) return PyErr_NoMemory();
    Py_RETURN_NONE;
fail1:
    PyBuffer_Release(&db);
fail0:
    release_texts(&t);
    return NULL;
}

PyDoc_STRVAR(segments_doc,
             "split_segments(data, offsets, out_data, out_offsets, out_rows) -> n_segments\n\n"
             "quality.language.language_segments' cut of cleaned texts: each text split at newlines, each\n"
             "piece stripped of whitespace (Rust's char::is_whitespace, as Polars' strip_chars), empty pieces\n"
             "dropped; the pieces in order with the number of the text they came from. out_data: uint8,\n"
             "len(data) bytes; out_offsets: int64, newlines + n + 1 entries; out_rows: uint32, one fewer.");

static PyObject *split_segments(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *data_o, *off_o, *od_o, *oo_o, *or_o;
    if (!PyArg_ParseTuple(args, "OOOOO", &data_o, &off_o, &od_o, &oo_o, &or_o)) return NULL;
    Texts t;
    Py_ssize_t n;
    if (get_texts(data_o, off_o, &t, &n) < 0) return NULL;
    Py_buffer db, ob, rb;
    Py_ssize_t most = 0; /* pieces: at most one per line */
    for (Py_ssize_t j = 0; j < t.data.len; j++) most += ((const uint8_t *)t.data.buf)[j] == '\n';
    most += n;
    int got = 0;
    if (get_out(od_o, &db, t.data.len, "out_data") < 0) goto done;
    got = 1;
    if (get_out(oo_o, &ob, (most + 1) * 8, "out_offsets") < 0) goto done;
    got = 2;
    if (get_out(or_o, &rb, most * 4, "out_rows") < 0) goto done;
    got = 3;
    const uint8_t *d = (const uint8_t *)t.data.buf;
    const int64_t *o = (const int64_t *)t.offsets.buf;
    uint8_t *out = (uint8_t *)db.buf;
    int64_t *oo = (int64_t *)ob.buf;
    uint32_t *rows = (uint32_t *)rb.buf;
    int64_t k = 0, w = 0;
    Py_BEGIN_ALLOW_THREADS;
    oo[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *p = d + o[i], *end = d + o[i + 1];
        while (p <= end) {
            const uint8_t *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
            const uint8_t *q = nl ? nl : end, *a = p, *z = q;
            int len;
            while (a < z && (*a < 0x80 ? ascii_ws(*a) : is_ws(decode(a, &len)))) a += *a < 0x80 ? 1 : len;
            while (z > a && (z[-1] < 0x80 ? ascii_ws(z[-1]) : is_ws(decode_back(a, z, &len)))) z -= z[-1] < 0x80 ? 1 : len;
            if (z > a) {
                memcpy(out + w, a, (size_t)(z - a));
                w += z - a;
                rows[k] = (uint32_t)i;
                oo[++k] = w;
            }
            if (!nl) break;
            p = nl + 1;
        }
    }
    Py_END_ALLOW_THREADS;
done:
    if (got >= 3) PyBuffer_Release(&rb);
    if (got >= 2) PyBuffer_Release(&ob);
    if (got >= 1) PyBuffer_Release(&db);
    release_texts(&t);
    if (got < 3) return NULL;
    return PyLong_FromLongLong(k);
}

/* ---------------------------------------------------------------------------------------------- */
/* readability: junk runs                                                                            */

/* The code points whose long runs are junk (readability._PRINTABLE): ASCII 0x21-0x7E and a few. */
static inline int junk_char(uint32_t c) {
    return (c >= 0x21 && c <= 0x7E) || c == 0x2026 || c == 0x3002 || c == 0x2014 || c == 0x2500 || c == 0x2550 ||
           c == 0x30FB || c == 0xFF0C;
}

/* 1 for ASCII whitespace and for every byte of a multi-byte character (decoded to tell). */
static uint8_t WS_OR_WIDE[256];

static void init_ws(void) {
    for (int b = 0; b < 256; b++) WS_OR_WIDE[b] = ascii_ws((uint8_t)b) || b >= 0x80;
}

static inline int blob_byte(uint8_t c) { return is_letter(c) || (c >= '0' && c <= '9') || c == '+' || c == '/'; }

/* The longest kept junk match in [p, end) (a token without whitespace), or best if longer. Matches are
 * found left to right without overlap; at each position the runs are tried before the blob. */
static int64_t junk_in_token(const uint8_t *p, const uint8_t *end, Py_ssize_t min_run, Py_ssize_t blob_min,
                             int64_t best) {
    while (p < end) {
        int len;
        uint32_t c = decode(p, &len);
        int64_t run = 0; /* a run of c, in characters */
        const uint8_t *r = p;
        if (junk_char(c) && len == 1) { /* ASCII: a byte compare, not a memcmp call per character */
            while (r < end && *r == *p) r++;
            run = r - p;
        } else if (junk_char(c)) {
            while (r + len <= end && memcmp(r, p, (size_t)len) == 0) {
                r += len;
                run++;
            }
        }
        if (run >= min_run) {
            if (run < blob_min && run > best) best = run; /* one repeated character: never a letter and a digit */
            p = r;
            continue;
        }
        const uint8_t *b = p; /* a blob */
        int letter = 0, digit = 0;
        while (b < end && blob_byte(*b)) {
            letter |= is_letter(*b);
            digit |= !is_letter(*b);
            b++;
        }
        if (b - p >= blob_min) {
            int64_t m = b - p;
            for (int eq = 0; eq < 2 && b < end && *b == '='; eq++) {
                b++;
                m++;
            }
            if ((m < blob_min || (letter && digit)) && m > best) best = m;
            p = b;
            continue;
        }
        p += len;
    }
    return best;
}

/* Whether [p, end) is plain ASCII (a loop the compiler vectorizes). */
static int plain_ascii(const uint8_t *p, const uint8_t *end) {
    uint8_t hi = 0;
    for (; p < end; p++) hi |= *p;
    return hi < 0x80;
}

/* junk_runs on a plain-ASCII text when tokens shorter than 31 bytes never matter: a token of 31 bytes or
 * more contains a whole 16-byte block (counted from the text's start) without whitespace, so blocks
 * with whitespace are skipped 16 bytes at a time and a token is read only around a block without. */
/* Whether q[0..16) holds ASCII whitespace (space, \t..\r). */
static inline int ws16(const uint8_t *q) {
#ifdef CURATE_SSE2
    __m128i x = _mm_loadu_si128((const __m128i *)q);
    __m128i ctl = _mm_sub_epi8(x, _mm_set1_epi8(9)); /* \t..\r -> 0..4, unsigned */
    __m128i in = _mm_cmpeq_epi8(_mm_min_epu8(ctl, _mm_set1_epi8(4)), ctl);
    return _mm_movemask_epi8(_mm_or_si128(in, _mm_cmpeq_epi8(x, _mm_set1_epi8(' ')))) != 0;
#else
    int ws = 0;
    for (int k = 0; k < 16; k++) ws |= (q[k] == 0x20) | ((uint8_t)(q[k] - 9) < 5);
    return ws;
#endif
}

static int64_t junk_blocks(const uint8_t *s, const uint8_t *end, Py_ssize_t min_run, Py_ssize_t blob_min,
                           Py_ssize_t shortest) {
    int64_t best = 0;
    const uint8_t *q = s, *done = s; /* done: end of the last token read */
    while (q + 16 <= end) {
        if (ws16(q)) {
            q += 16;
            continue;
        }
        const uint8_t *p = q, *r = q + 16;
        while (p > done && !ascii_ws(p[-1])) p--;
        while (r < end && !ascii_ws(*r)) r++;
        if (r - p >= shortest) best = junk_in_token(p, r, min_run, blob_min, best);
        done = r;
        q = s + ((r - s + 15) / 16) * 16;
    }
    return best;
}

PyDoc_STRVAR(junk_doc,
             "junk_runs(data, offsets, min_run, blob_min, out_longest)\n\n"
             "readability._junk_runs: per text, the longest match of the junk pattern (one printable\n"
             "character repeated >= min_run times, tried first, or a [A-Za-z0-9+/]{blob_min,}={0,2} blob),\n"
             "matches found left to right without overlap, a match of blob_min characters or more kept only\n"
             "with a letter and a digit, + or / in it; 0 when none. out_longest: int32 (n).");

static PyObject *junk_runs(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *data_o, *off_o, *lo_o;
    Py_ssize_t min_run, blob_min;
    if (!PyArg_ParseTuple(args, "OOnnO", &data_o, &off_o, &min_run, &blob_min, &lo_o)) return NULL;
    if (min_run < 1 || blob_min < 1) {
        PyErr_SetString(PyExc_ValueError, "min_run and blob_min must be >= 1");
        return NULL;
    }
    Texts t;
    Py_ssize_t n;
    if (get_texts(data_o, off_o, &t, &n) < 0) return NULL;
    Py_buffer lb;
    if (get_out(lo_o, &lb, n * 4, "out_longest") < 0) {
        release_texts(&t);
        return NULL;
    }
    const uint8_t *d = (const uint8_t *)t.data.buf;
    const int64_t *o = (const int64_t *)t.offsets.buf;
    int32_t *longest = (int32_t *)lb.buf;
    Py_ssize_t shortest = min_run < blob_min ? min_run : blob_min;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *q = d + o[i], *text_end = d + o[i + 1];
        int64_t best = 0;
        if (shortest >= 31 && plain_ascii(q, text_end)) {
            best = junk_blocks(q, text_end, min_run, blob_min, shortest);
            longest[i] = (int32_t)best;
            continue;
        }
        const uint8_t *p = q; /* the token being read: [p, q) */
        while (q < text_end) {
            /* Every match is a stretch without whitespace: only tokens of >= shortest bytes are scanned. */
            while (q < text_end && !WS_OR_WIDE[*q]) q++;
            int len = 1;
            if (q < text_end && *q >= 0x80 && !is_ws(decode(q, &len))) {
                q += len;
                continue;
            }
            if (q - p >= shortest) best = junk_in_token(p, q, min_run, blob_min, best);
            q += len; /* past the whitespace */
            p = q;
        }
        if (q - p >= shortest) best = junk_in_token(p, q, min_run, blob_min, best);
        longest[i] = (int32_t)best;
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&lb);
    release_texts(&t);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------- */
/* checks.text: reasoning and answer                                                                 */

PyDoc_STRVAR(think_doc,
             "think_split(data, offsets, out_reasoning, out_r_offsets, out_answer, out_a_offsets, out_closed)\n\n"
             "checks.text.reasoning_expr / answer_expr: per text, out_closed[i] = 1 when it has a </think>;\n"
             "then the reasoning is what comes before the last one, leading whitespace and then one <think>\n"
             "taken off, and the answer what comes after it (both empty when there is none). Outputs: uint8\n"
             "buffers of len(data) bytes, int64 offsets (n + 1), uint8 (n).");

static PyObject *think_split(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *data_o, *off_o, *r_o, *ro_o, *a_o, *ao_o, *c_o;
    if (!PyArg_ParseTuple(args, "OOOOOOO", &data_o, &off_o, &r_o, &ro_o, &a_o, &ao_o, &c_o)) return NULL;
    Texts t;
    Py_ssize_t n;
    if (get_texts(data_o, off_o, &t, &n) < 0) return NULL;
    Py_buffer rb, rob, ab, aob, cb;
    int got = 0;
    if (get_out(r_o, &rb, t.data.len, "out_reasoning") < 0) goto done;
    got = 1;
    if (get_out(ro_o, &rob, (n + 1) * 8, "out_r_offsets") < 0) goto done;
    got = 2;
    if (get_out(a_o, &ab, t.data.len, "out_answer") < 0) goto done;
    got = 3;
    if (get_out(ao_o, &aob, (n + 1) * 8, "out_a_offsets") < 0) goto done;
    got = 4;
    if (get_out(c_o, &cb, n, "out_closed") < 0) goto done;
    got = 5;
    const uint8_t *d = (const uint8_t *)t.data.buf;
    const int64_t *o = (const int64_t *)t.offsets.buf;
    uint8_t *r = (uint8_t *)rb.buf, *a = (uint8_t *)ab.buf, *closed = (uint8_t *)cb.buf;
    int64_t *ro = (int64_t *)rob.buf, *ao = (int64_t *)aob.buf;
    Py_BEGIN_ALLOW_THREADS;
    int64_t rw = 0, aw = 0;
    ro[0] = ao[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *s = d + o[i], *e = d + o[i + 1], *last = NULL;
        for (const uint8_t *p = s; (p = (const uint8_t *)memmem(p, (size_t)(e - p), "</think>", 8)) != NULL; p += 8)
            last = p;
        closed[i] = last != NULL;
        if (last) {
            const uint8_t *b = s;
            int len;
            while (b < last && is_ws(decode(b, &len))) b += len;
            if (last - b >= 7 && memcmp(b, "<think>", 7) == 0) b += 7;
            memcpy(r + rw, b, (size_t)(last - b));
            rw += last - b;
            memcpy(a + aw, last + 8, (size_t)(e - last - 8));
            aw += e - last - 8;
        }
        ro[i + 1] = rw;
        ao[i + 1] = aw;
    }
    Py_END_ALLOW_THREADS;
done:
    if (got >= 5) PyBuffer_Release(&cb);
    if (got >= 4) PyBuffer_Release(&aob);
    if (got >= 3) PyBuffer_Release(&ab);
    if (got >= 2) PyBuffer_Release(&rob);
    if (got >= 1) PyBuffer_Release(&rb);
    release_texts(&t);
    if (got < 5) return NULL;
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------- */
/* checks.format                                                                                     */

/* format.SPECIAL_TOKEN_PATTERN at q (a '<' or a '['): <|[A-Za-z0-9_]{1,40}|>, <｜[^｜>]{1,40}｜>, </s>,
 * [INST], [/INST]. */
static int special_at(const uint8_t *q, const uint8_t *end) {
    static const char FW_BAR[] = "\xEF\xBD\x9C"; /* U+FF5C FULLWIDTH VERTICAL LINE */
    if (*q == '[') return starts(q, end, "[INST]", 6) || starts(q, end, "[/INST]", 7);
    if (starts(q, end, "</s>", 4)) return 1;
    if (starts(q, end, "<|", 2)) {
        const uint8_t *p = q + 2;
        while (p < end && p - q - 2 < 41 && (is_letter(*p) || (*p >= '0' && *p <= '9') || *p == '_')) p++;
        int64_t run = p - q - 2;
        return run >= 1 && run <= 40 && starts(p, end, "|>", 2);
    }
    if (starts(q, end, "<" "\xEF\xBD\x9C", 4)) {
        const uint8_t *p = q + 4;
        for (int chars = 0; p < end; chars++) {
            if (starts(p, end, FW_BAR, 3) || *p == '>') return chars >= 1 && starts(p, end, "\xEF\xBD\x9C>", 4);
            if (chars == 40) return 0;
            int len;
            decode(p, &len);
            p += len;
        }
    }
    return 0;
}

/* format.CONTROL_CHAR_PATTERNS: C0 controls but tab, newline and CR; DEL; U+FFFD (from its first byte).
 * FORMAT_BYTE: those, and the first bytes of the think tags and of the special tokens. */
static inline int control_byte(uint8_t c) { return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F; }
static uint8_t FORMAT_BYTE[256];

static void init_format(void) {
    for (int b = 0; b < 256; b++) FORMAT_BYTE[b] = control_byte((uint8_t)b) || b == '<' || b == '[' || b == 0xEF;
}

/* The first FORMAT_BYTE at or after p, or e: 16 bytes at a time where SSE2 is at hand. */
static inline const uint8_t *next_format_byte(const uint8_t *p, const uint8_t *e) {
#ifdef CURATE_SSE2
    for (; p + 16 <= e; p += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        __m128i c0 = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1F)), x); /* < 0x20 */
        __m128i tab = _mm_cmpeq_epi8(x, _mm_set1_epi8('\t')), nl = _mm_cmpeq_epi8(x, _mm_set1_epi8('\n'));
        __m128i ok_ws = _mm_or_si128(_mm_or_si128(tab, nl), _mm_cmpeq_epi8(x, _mm_set1_epi8('\r')));
        __m128i m = _mm_or_si128(_mm_andnot_si128(ok_ws, c0), _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7F)));
        m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('<')), _mm_cmpeq_epi8(x, _mm_set1_epi8('['))));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8((char)0xEF)));
        uint32_t bits = (uint32_t)_mm_movemask_epi8(m);
        if (bits) return p + __builtin_ctz(bits);
    }
#endif
    while (p < e && !FORMAT_BYTE[*p]) p++;
    return p;
}

PyDoc_STRVAR(format_doc,
             "format_scan(data, offsets, out_open, out_close, out_starts_open, out_answer_chars, out_special,\n"
             "            out_control)\n\n"
             "checks.format.FormatCheck's per-text features with the default special-token pattern: counts of\n"
             "<think> and </think>, whether the text starts with <think> after leading whitespace, the\n"
             "characters of what follows the first </think> stripped of whitespace (-1: no </think>), whether a\n"
             "special token and a control character occur. int32, int32, uint8, int32, uint8, uint8 (n).");

static PyObject *format_scan(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *data_o, *off_o, *outs[6];
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &data_o, &off_o, &outs[0], &outs[1], &outs[2], &outs[3], &outs[4],
                          &outs[5]))
        return NULL;
    Texts t;
    Py_ssize_t n;
    if (get_texts(data_o, off_o, &t, &n) < 0) return NULL;
    static const char *names[6] = {"out_open", "out_close", "out_starts_open", "out_answer_chars", "out_special",
                                   "out_control"};
    static const int sizes[6] = {4, 4, 1, 4, 1, 1};
    Py_buffer b[6];
    int got = 0;
    for (; got < 6; got++)
        if (get_out(outs[got], &b[got], n * sizes[got], names[got]) < 0) break;
    if (got == 6) {
        const uint8_t *d = (const uint8_t *)t.data.buf;
        const int64_t *o = (const int64_t *)t.offsets.buf;
        int32_t *n_open = b[0].buf, *n_close = b[1].buf, *answer = b[3].buf;
        uint8_t *starts_open = b[2].buf, *special = b[4].buf, *control = b[5].buf;
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t i = 0; i < n; i++) {
            const uint8_t *s = d + o[i], *e = d + o[i + 1];
            /* one pass over the bytes, stopping only at those a feature starts with */
            int32_t opens = 0, closes = 0;
            int sp = 0, ctl = 0;
            const uint8_t *close = NULL, *p = s;
            for (;;) {
                p = next_format_byte(p, e);
                if (p >= e) break;
                uint8_t c = *p;
                if (c == '<') {
                    if (starts(p, e, "<think>", 7)) {
                        opens++;
                        p += 7;
                        continue;
                    }
                    if (starts(p, e, "</think>", 8)) {
                        closes++;
                        if (!close) close = p;
                        p += 8;
                        continue;
                    }
                    sp = sp || special_at(p, e);
                } else if (c == '[') {
                    sp = sp || special_at(p, e);
                } else if (c == 0xEF) {
                    ctl = ctl || starts(p, e, "\xEF\xBF\xBD", 3);
                } else {
                    ctl = 1;
                }
                p++;
            }
            n_open[i] = opens;
            n_close[i] = closes;
            int len;
            p = s;
            while (p < e && is_ws(decode(p, &len))) p += len;
            starts_open[i] = starts(p, e, "<think>", 7);
            if (close) {
                const uint8_t *a = close + 8, *z = e;
                while (a < z && is_ws(decode(a, &len))) a += len;
                while (z > a && is_ws(decode_back(a, z, &len))) z -= len;
                int64_t chars = 0;
                for (const uint8_t *q = a; q < z; q++) chars += (*q & 0xC0) != 0x80;
                answer[i] = (int32_t)chars;
            } else {
                answer[i] = -1;
            }
            special[i] = (uint8_t)sp;
            control[i] = (uint8_t)ctl;
        }
        Py_END_ALLOW_THREADS;
    }
    for (int k = 0; k < got; k++) PyBuffer_Release(&b[k]);
    release_texts(&t);
    if (got < 6) return NULL;
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------- */
/* io.jsonl: the keys of every line                                                                  */

PyDoc_STRVAR(top_keys_doc,
             "json_top_keys(data, out_starts, out_lens) -> n\n\n"
             "io.jsonl.read_block_frame: the distinct keys of the top-level objects of NDJSON bytes (one object\n"
             "per line, blank lines skipped), as spans of their raw, still escaped, text in data, in order of\n"
             "first appearance. -1 when a non-blank line is not one balanced object, -2 when there are more\n"
             "distinct keys than out_starts holds (at most 1023), -3 when an object at any depth names a key\n"
             "twice (Polars keeps the first value, json and orjson the last) or cannot be told not to: a nested\n"
             "key with an escape in it, nesting deeper than 64 or more than 512 keys open at once. Structure\n"
             "only: the parser validates the JSON; this assumes it is valid. out_starts, out_lens: int64.");

#define KEY_SLOTS 2048
#define NEST_DEPTH 64  /* containers open at once below the top-level object */
#define NEST_KEYS 512  /* keys of the nested objects open at once */

static inline int json_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\r'; }

/* The scan itself (no Python objects): n distinct keys, or -1 / -2 as above. */
static Py_ssize_t scan_top_keys(const uint8_t *p, const uint8_t *end, int64_t *starts, int64_t *lens, Py_ssize_t cap) {
    const uint8_t *base = p;
    int32_t slot[KEY_SLOTS];
    int64_t last_line[KEY_SLOTS / 2]; /* per distinct key: the last object that named it */
    memset(slot, 0xFF, sizeof slot);
    Py_ssize_t n = 0;
    int64_t line = 0;
    while (p < end) {
        while (p < end && json_ws(*p)) p++;
        if (p == end) break;
        if (*p == '\n') {
            p++;
            continue;
        }
        if (*p != '{') return -1;
        p++;
        line++;
        int64_t depth = 1;
        int want_key = 1;
        /* Nested objects: per open container, whether it is an object, whether a key comes next, and where
         * its keys start in nkey_*; a repeated key is compared raw (equal bytes), so one with an escape in
         * it (two spellings of one key) is answered "cannot tell". */
        uint8_t is_obj[NEST_DEPTH + 2], want[NEST_DEPTH + 2];
        int32_t first[NEST_DEPTH + 2], top = 0;
        int64_t nkey_start[NEST_KEYS], nkey_len[NEST_KEYS];
        while (depth > 0) {
            if (p >= end) return -1;
            uint8_t c = *p;
            if (c == '"') {
                const uint8_t *s = ++p;
                for (;;) { /* the closing quote: one with an even run of backslashes before it */
                    const uint8_t *q = (const uint8_t *)memchr(p, '"', (size_t)(end - p));
                    if (!q) return -1;
                    const uint8_t *b = q;
                    while (b > s && b[-1] == '\\') b--;
                    p = q + 1;
                    if (((q - b) & 1) == 0) break;
                }
                if (depth == 1 && want_key) {
                    size_t len = (size_t)(p - 1 - s);
                    uint64_t h = 0xCBF29CE484222325ULL; /* FNV-1a; equal keys are then compared byte for byte */
                    for (size_t k = 0; k < len; k++) h = (h ^ s[k]) * 0x100000001B3ULL;
                    size_t at = (size_t)fmix(h) & (KEY_SLOTS - 1);
                    for (;; at = (at + 1) & (KEY_SLOTS - 1)) {
                        int32_t i = slot[at];
                        if (i < 0) {
                            if (n >= cap) return -2;
                            slot[at] = (int32_t)n;
                            last_line[n] = line;
                            starts[n] = s - base;
                            lens[n++] = (int64_t)len;
                            break;
                        }
                        if ((size_t)lens[i] == len && memcmp(base + starts[i], s, len) == 0) {
                            if (last_line[i] == line) return -3;
                            last_line[i] = line;
                            break;
                        }
                    }
                    want_key = 0;
                } else if (depth > 1 && is_obj[depth] && want[depth]) {
                    int64_t len = p - 1 - s;
                    if (memchr(s, '\\', (size_t)len)) return -3;
                    for (int32_t i = first[depth]; i < top; i++)
                        if (nkey_len[i] == len && memcmp(base + nkey_start[i], s, (size_t)len) == 0) return -3;
                    if (top == NEST_KEYS) return -3;
                    nkey_start[top] = s - base;
                    nkey_len[top++] = len;
                    want[depth] = 0;
                }
                continue;
            }
            if (c == '{' || c == '[') {
                if (++depth > NEST_DEPTH) return -3;
                is_obj[depth] = c == '{';
                want[depth] = 1;
                first[depth] = top;
            } else if (c == '}' || c == ']') {
                if (depth > 1 && is_obj[depth]) top = first[depth];
                depth--;
            } else if (c == ',') {
                if (depth == 1)
                    want_key = 1;
                else
                    want[depth] = 1;
            } else if (c == '\n')
                return -1;
            p++;
        }
        while (p < end && json_ws(*p)) p++;
        if (p < end && *p++ != '\n') return -1;
    }
    return n;
}

static PyObject *json_top_keys(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *data_o, *s_o, *l_o;
    if (!PyArg_ParseTuple(args, "OOO", &data_o, &s_o, &l_o)) return NULL;
    Py_buffer d, sb, lb;
    if (PyObject_GetBuffer(data_o, &d, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (get_out(s_o, &sb, 8, "out_starts") < 0) {
        PyBuffer_Release(&d);
        return NULL;
    }
    if (get_out(l_o, &lb, sb.len, "out_lens") < 0) {
        PyBuffer_Release(&sb);
        PyBuffer_Release(&d);
        return NULL;
    }
    Py_ssize_t cap = sb.len / 8, n;
    if (cap > KEY_SLOTS / 2 - 1) cap = KEY_SLOTS / 2 - 1;
    const uint8_t *p = (const uint8_t *)d.buf;
    Py_BEGIN_ALLOW_THREADS;
    n = scan_top_keys(p, p + d.len, (int64_t *)sb.buf, (int64_t *)lb.buf, cap);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&lb);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&d);
    return PyLong_FromSsize_t(n);
}

static PyMethodDef methods[] = {
    {"hash_words", hash_words, METH_VARARGS, hash_words_doc},
    {"oph_bins", oph_bins, METH_VARARGS, oph_doc},
    {"line_stats", line_stats, METH_VARARGS, line_stats_doc},
    {"ngram_repeat", ngram_repeat, METH_VARARGS, ngram_doc},
    {"clean_latin", clean_latin, METH_VARARGS, clean_doc},
    {"split_segments", split_segments, METH_VARARGS, segments_doc},
    {"junk_runs", junk_runs, METH_VARARGS, junk_doc},
    {"think_split", think_split, METH_VARARGS, think_doc},
    {"format_scan", format_scan, METH_VARARGS, format_doc},
    {"json_top_keys", json_top_keys, METH_VARARGS, top_keys_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "curate.native._kernels",
    "Compiled text passes (dedup word hashes and MinHash bins; readability line and n-gram statistics;\n"
    "the lang check's cleaning of ASCII texts).",
    -1,
    methods, NULL, NULL, NULL, NULL,
};

/* Bumped with every change to a function's arguments or results: curate.native refuses a build whose
 * VERSION differs (an editable install not rebuilt after a pull) and runs the references instead. */
#define KERNELS_VERSION 4

PyMODINIT_FUNC PyInit__kernels(void) {
    init_tables();
    init_token_class();
    init_starts();
    init_ws();
    init_format();
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "VERSION", KERNELS_VERSION) < 0) Py_CLEAR(m);
    return m;
}
