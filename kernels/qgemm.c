/*
 * qgemm.c - prefill products of BF16 and F16 weights with activations rounded to BF16,
 * in VDPBF16PS (qdot.h: qgemm_rows, qgemm_rows_panel; --products low). VDPBF16PS
 * multiplies 32 pairs of BF16 per instruction into 16 float32 sums, twice the
 * multiply-adds of a float32 FMA; the activations are rounded to BF16 once per call (to
 * nearest even, relative error at most 2^-9 each), which is what this way costs in
 * accuracy (measured in the README).
 *
 * Panels, from QGEMM_PANEL_MIN_T tokens (qgemm_rows_panel). As in qgemm_int.c, 32 weight
 * rows at a time are repacked into a panel whose 32-bit lanes are rows: per 16 columns,
 * 8 steps x 2 vectors of 16 rows x one BF16 pair (1 KiB), 2048 columns at most (128 KiB;
 * longer rows go in slabs, each adding to y). The activations are packed too, once per
 * call: per 12 tokens, per pair of columns, the 12 tokens' BF16 pairs side by side, so a
 * tile reads both operands as two sequential streams. A tile is 12 tokens x 32 rows:
 * per step two weight vectors, 12 broadcast activation pairs and 24 VDPBF16PS into 24
 * vector sums, with no reduction across lanes at the end (a token's 32 sums are its 32
 * outputs). Measured on Llama-8B's shapes at 512 tokens: 390-420 GFLOP/s on 2 cores
 * against 280-330 for the tiles below, and a VDPBF16PS peak of 457.
 *
 * F16 weights go in panels too, kept exact: each weight w is split into h = bf16(w) and
 * l = bf16(w - h). F16 holds 11 significant bits, h the first 8 (rounded), so w - h
 * needs at most 4 and l = w - h exactly; the panel holds h's 16 columns, then l's, and
 * a tile takes both into the same sums. That is as many multiply-adds per instruction
 * as a float32 FMA, at the panels' efficiency, with the activations rounded to BF16.
 *
 * Tiles over rows as stored, for fewer tokens (qgemm_rows; BF16 only, where packing
 * would cost more than it saves): y (T, nr) = x (T, K) . W^T with both operands along K,
 * a tile of RM = 6 tokens x RN = 4 weight rows keeps 24 vector sums, loads 6 activation
 * vectors and 4 weight vectors per step of 32 K-elements, and reduces each sum across
 * its lanes once at the end, the order llama.cpp's tinyBLAS uses. Tokens go in blocks of
 * 72 (576 KiB of activations at K = 4096, within L2). Edge tiles of both kinds have
 * their own compile-time shapes. Without AVX-512 BF16 qgemm_ok() and qgemm_panel_ok()
 * say no and linear() keeps float32 activations and SGEMM.
 */
#include "qdot.h"

#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512BF16__) && defined(__F16C__)
#include <immintrin.h>
#include "qpanel.h"
#define QG 1
#endif

#define PR 32                        /* rows of a panel */
#define PM 12                        /* tokens of a panel tile */
#define SLAB 2048                    /* columns of a panel */
#define CHB (8 * PR * 4)             /* bytes of 16 columns of a panel: 8 steps x 32 rows x a BF16 pair */
static int parts(DType dt) { return dt == DT_F16 ? 2 : 1; }   /* F16: high parts, then remainders */
static int64_t steps(int64_t cols) { return (cols + 15) / 16 * 8; }   /* pairs of a token's packed row */

/* ---- the plain C twin --------------------------------------------------------------------- */
void qgemm_act_bf16_ref(const float *x, int64_t ldx, int T, int64_t cols, uint16_t *xb, int64_t ldxb) {
    for (int t = 0; t < T; t++) {
        int64_t i = 0;
        for (; i < cols; i++) xb[(int64_t)t * ldxb + i] = f32_to_bf16(x[(int64_t)t * ldx + i]);
        for (; i < ldxb; i++) xb[(int64_t)t * ldxb + i] = 0;
    }
}

void qgemm_rows_ld_ref(const void *w, int64_t ldw, int64_t nr, int64_t cols, const uint16_t *xb, int64_t ldxb, int T,
                       float *y, int64_t ldy) {
    const uint8_t *p = w;
    for (int64_t r = 0; r < nr; r++)
        for (int t = 0; t < T; t++) {
            float s = 0;
            for (int64_t i = 0; i < cols; i++) {
                uint16_t h = (uint16_t)(p[2 * (r * ldw + i)] | p[2 * (r * ldw + i) + 1] << 8);
                s += bf16_to_f32(h) * bf16_to_f32(xb[(int64_t)t * ldxb + i]);
            }
            y[(int64_t)t * ldy + r] = s;
        }
}
void qgemm_rows_ref(const void *w, int64_t nr, int64_t cols, const uint16_t *xb, int64_t ldxb, int T, float *y,
                    int64_t ldy) {
    qgemm_rows_ld_ref(w, cols, nr, cols, xb, ldxb, T, y, ldy);
}

void attn_pv_bf16_ref(const uint16_t *v, int64_t ldv, int n, int dv, const uint16_t *pb, int ldp, int group, float *o,
                      int ldo) {
    for (int x = 0; x < group; x++)
        for (int c = 0; c < dv; c++) {
            double s = 0;
            for (int p = 0; p < n; p++) s += (double)bf16_to_f32(pb[(int64_t)x * ldp + p]) * bf16_to_f32(v[(int64_t)p * ldv + c]);
            o[(int64_t)x * ldo + c] += (float)s;
        }
}

/* the panel path's twin reads the packed activations; weights exact (BF16 or F16) */
static uint32_t packed(const uint32_t *xp, int64_t cols, int t, int64_t s) {
    return xp[(int64_t)(t / PM) * steps(cols) * PM + s * PM + t % PM];
}
void qgemm_pack_act_ref(const float *x, int64_t ldx, int t0, int t1, int64_t cols, uint32_t *xp) {
    const int64_t S = steps(cols);
    for (int t = t0; t < t1; t++)
        for (int64_t s = 0; s < S; s++) {
            uint32_t lo = 2 * s < cols ? f32_to_bf16(x[(int64_t)t * ldx + 2 * s]) : 0;
            uint32_t hi = 2 * s + 1 < cols ? f32_to_bf16(x[(int64_t)t * ldx + 2 * s + 1]) : 0;
            xp[(int64_t)(t / PM) * S * PM + s * PM + t % PM] = lo | hi << 16;
        }
}
void qgemm_rows_panel_ref(DType dt, const void *w, int64_t nr, int64_t cols, const uint32_t *xp, int T, float *y,
                          int64_t ldy) {
    const uint16_t *p = w;
    for (int64_t r = 0; r < nr; r++)
        for (int t = 0; t < T; t++) {
            float s = 0;
            for (int64_t i = 0; i < cols; i++) {
                uint16_t h = p[r * cols + i];
                uint32_t v = packed(xp, cols, t, i / 2);
                s += (dt == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h)) * bf16_to_f32((uint16_t)(i & 1 ? v >> 16 : v));
            }
            y[(int64_t)t * ldy + r] = s;
        }
}

#ifdef QG
#define INLINE static inline __attribute__((always_inline))
#define RM 6
#define RN 4
#define TOKEN_BLOCK 72          /* tokens whose activations stay in L2 while the rows pass over them */

/* y[i*ldy + j] = the lane sum of acc[i][j]; four rows at once through a transpose */
INLINE __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512 s = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}
INLINE void store_sums(const int rm, const int rn, __m512 acc[][RN], float *y, int64_t ldy) {
    for (int i = 0; i < rm; i++) {
        if (rn == 4) {
            __m128 v = sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
            _mm_storeu_ps(y + i * ldy, v);
        } else
            for (int j = 0; j < rn; j++) y[i * ldy + j] = _mm512_reduce_add_ps(acc[i][j]);
    }
}

/* rm tokens x rn rows (compile-time): activations of ldxb elements a row, BF16 weights */
INLINE void tile_dp(const int rm, const int rn, const uint8_t *w, int64_t ldw, int64_t cols,
                    const uint16_t *xb, int64_t ldxb, float *y, int64_t ldy) {
    __m512 acc[RM][RN];
    for (int i = 0; i < rm; i++)
        for (int j = 0; j < rn; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        __m512bh xv[RM];
        for (int i = 0; i < rm; i++) xv[i] = (__m512bh)_mm512_loadu_si512(xb + i * ldxb + c);
        for (int j = 0; j < rn; j++) {
            __m512bh wv = (__m512bh)_mm512_loadu_si512(w + j * ldw + 2 * c);
            for (int i = 0; i < rm; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv, xv[i]);
        }
    }
    if (c < cols) {
        __mmask32 m = (__mmask32)((1ull << (cols - c)) - 1);
        __m512bh xv[RM];
        for (int i = 0; i < rm; i++) xv[i] = (__m512bh)_mm512_maskz_loadu_epi16(m, xb + i * ldxb + c);
        for (int j = 0; j < rn; j++) {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w + j * ldw + 2 * c);
            for (int i = 0; i < rm; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv, xv[i]);
        }
    }
    store_sums(rm, rn, acc, y, ldy);
}

/* One function per tile shape, so that every loop bound above is a constant. */
typedef void (*TileFn)(const uint8_t *w, int64_t ldw, int64_t cols, const uint16_t *xb, int64_t ldxb, float *y,
                       int64_t ldy);
#define TF(M, N)                                                                                          \
    static void tile_##M##_##N(const uint8_t *w, int64_t ldw, int64_t cols, const uint16_t *xb, int64_t ldxb, \
                               float *y, int64_t ldy) {                                                    \
        tile_dp(M, N, w, ldw, cols, xb, ldxb, y, ldy);                                                     \
    }
#define TF_ROW(M) TF(M, 1) TF(M, 2) TF(M, 3) TF(M, 4)
TF_ROW(1)
TF_ROW(2)
TF_ROW(3)
TF_ROW(4)
TF_ROW(5)
TF_ROW(6)
#define TAB(M) { tile_##M##_1, tile_##M##_2, tile_##M##_3, tile_##M##_4 }
static const TileFn tiles[RM][RN] = { TAB(1), TAB(2), TAB(3), TAB(4), TAB(5), TAB(6) };

/* ---- panels ------------------------------------------------------------------------------- */
/* rows [0, n) (n <= 32) of w (ldw elements a row), columns c0 .. c0 + nc, into the panel:
 * per 16 columns and part, CHB bytes; zeros past n rows and past nc columns */
static void pack_w(DType dt, const uint16_t *w, int64_t ldw, int n, int64_t c0, int64_t nc, uint8_t *panel) {
    _Alignas(64) uint16_t lev[2][16 * 128];
    const int np = parts(dt);
    for (int g = 0; g < PR / 16; g++)
        for (int64_t c = 0; c < nc; c += 128) {
            const int64_t m = nc - c < 128 ? nc - c : 128;
            for (int rr = 0; rr < 16; rr++) {
                uint16_t *h = lev[0] + 128 * rr, *l = lev[1] + 128 * rr;
                int64_t valid = 16 * g + rr < n ? m : 0, k = 0;
                const uint16_t *src = valid ? w + (16 * g + rr) * ldw + c0 + c : NULL;
                if (dt == DT_BF16) {
                    if (valid) memcpy(h, src, 2 * (size_t)valid);
                    k = valid;
                } else
                    for (; k < valid; k += 16) {      /* h = bf16(w), l = bf16(w - h), exact */
                        __mmask16 mk = (__mmask16)(valid - k >= 16 ? 0xFFFF : (1u << (valid - k)) - 1);
                        __m512 f = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, src + k));
                        __m256i hb = (__m256i)_mm512_cvtneps_pbh(f);
                        __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(hb), 16));
                        _mm256_storeu_si256((__m256i *)(void *)(h + k), hb);
                        _mm256_storeu_si256((__m256i *)(void *)(l + k), (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(f, hf)));
                    }
                for (; k < 128; k++) h[k] = l[k] = 0;
            }
            for (int q = 0; q < np; q++)
                for (int j = 0; j < 8 && c + 16 * j < nc; j++)
                    transpose16((const uint8_t *)lev[q], 32 * j, panel + ((c / 16 + j) * np + q) * CHB + 64 * g);
        }
}

/* rm tokens x the panel's 32 rows (np parts; both compile-time) over nch chunks of 16
 * columns; n valid rows stored, added to y when add */
INLINE void ptile(const int rm, const int np, const uint8_t *panel, int64_t nch, const uint32_t *xs, float *y,
                  int64_t ldy, int n, int add) {
    __m512 acc[PM][2];
    const __mmask16 m0 = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
    const __mmask16 m1 = (__mmask16)(n >= 32 ? 0xFFFF : n > 16 ? (1u << (n - 16)) - 1 : 0);
    for (int i = 0; i < rm; i++) {
        acc[i][0] = add ? _mm512_maskz_loadu_ps(m0, y + i * ldy) : _mm512_setzero_ps();
        acc[i][1] = add ? _mm512_maskz_loadu_ps(m1, y + i * ldy + 16) : _mm512_setzero_ps();
    }
    for (int64_t j = 0; j < nch; j++) {
        const uint8_t *p = panel + j * np * CHB;
        const uint32_t *xj = xs + j * 8 * PM;
        for (int s = 0; s < 8; s++) {
            __m512bh w0 = (__m512bh)_mm512_load_si512(p + 128 * s), w1 = (__m512bh)_mm512_load_si512(p + 128 * s + 64);
            __m512bh l0 = w0, l1 = w1;
            if (np == 2) {
                l0 = (__m512bh)_mm512_load_si512(p + CHB + 128 * s);
                l1 = (__m512bh)_mm512_load_si512(p + CHB + 128 * s + 64);
            }
            for (int i = 0; i < rm; i++) {
                __m512bh b = (__m512bh)_mm512_set1_epi32((int)xj[PM * s + i]);
                acc[i][0] = _mm512_dpbf16_ps(acc[i][0], w0, b);
                acc[i][1] = _mm512_dpbf16_ps(acc[i][1], w1, b);
                if (np == 2) {
                    acc[i][0] = _mm512_dpbf16_ps(acc[i][0], l0, b);
                    acc[i][1] = _mm512_dpbf16_ps(acc[i][1], l1, b);
                }
            }
        }
    }
    for (int i = 0; i < rm; i++) {
        _mm512_mask_storeu_ps(y + i * ldy, m0, acc[i][0]);
        _mm512_mask_storeu_ps(y + i * ldy + 16, m1, acc[i][1]);
    }
}
typedef void (*PTileFn)(const uint8_t *panel, int64_t nch, const uint32_t *xs, float *y, int64_t ldy, int n, int add);
#define PF(M)                                                                                                     \
    static void ptile_##M(const uint8_t *p, int64_t nch, const uint32_t *xs, float *y, int64_t ldy, int n, int add) { \
        ptile(M, 1, p, nch, xs, y, ldy, n, add);                                                                  \
    }                                                                                                             \
    static void ptile2_##M(const uint8_t *p, int64_t nch, const uint32_t *xs, float *y, int64_t ldy, int n, int add) { \
        ptile(M, 2, p, nch, xs, y, ldy, n, add);                                                                  \
    }
PF(1) PF(2) PF(3) PF(4) PF(5) PF(6) PF(7) PF(8) PF(9) PF(10) PF(11) PF(12)
static const PTileFn ptiles[2][PM] = {
    { ptile_1, ptile_2, ptile_3, ptile_4, ptile_5, ptile_6, ptile_7, ptile_8, ptile_9, ptile_10, ptile_11, ptile_12 },
    { ptile2_1, ptile2_2, ptile2_3, ptile2_4, ptile2_5, ptile2_6, ptile2_7, ptile2_8, ptile2_9, ptile2_10, ptile2_11,
      ptile2_12 },
};
#endif

int qgemm_ok(DType dt) {
#ifdef QG
    return dt == DT_BF16;
#else
    (void)dt;
    return 0;
#endif
}

void qgemm_act_bf16(const float *x, int64_t ldx, int T, int64_t cols, uint16_t *xb, int64_t ldxb) {
#ifdef QG
    for (int t = 0; t < T; t++) {
        const float *xt = x + (int64_t)t * ldx;
        uint16_t *o = xb + (int64_t)t * ldxb;
        int64_t i = 0;
        for (; i + 16 <= cols; i += 16)
            _mm256_storeu_si256((__m256i *)(o + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(xt + i)));
        for (; i < cols; i++) o[i] = f32_to_bf16(xt[i]);
        for (; i < ldxb; i++) o[i] = 0;
    }
#else
    qgemm_act_bf16_ref(x, ldx, T, cols, xb, ldxb);
#endif
}

void qgemm_rows(const void *w, int64_t nr, int64_t cols, const uint16_t *xb, int64_t ldxb, int T, float *y,
                int64_t ldy) {
    qgemm_rows_ld(w, cols, nr, cols, xb, ldxb, T, y, ldy);
}

void qgemm_rows_ld(const void *w, int64_t ldw_el, int64_t nr, int64_t cols, const uint16_t *xb, int64_t ldxb, int T,
                   float *y, int64_t ldy) {
#ifdef QG
    const int64_t ldw = 2 * ldw_el;
    const uint8_t *p = w;
    for (int64_t t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
        int64_t t1 = t0 + TOKEN_BLOCK < T ? t0 + TOKEN_BLOCK : T;
        for (int64_t r = 0; r < nr; r += RN) {
            int n = nr - r < RN ? (int)(nr - r) : RN;
            for (int64_t t = t0; t < t1; t += RM) {
                int m = t1 - t < RM ? (int)(t1 - t) : RM;
                tiles[m - 1][n - 1](p + r * ldw, ldw, cols, xb + t * ldxb, ldxb, y + t * ldy + r, ldy);
            }
        }
    }
#else
    qgemm_rows_ld_ref(w, ldw_el, nr, cols, xb, ldxb, T, y, ldy);
#endif
}

#ifdef QG
/* nh heads (compile-time) x 32 columns from c: accumulators per head over position pairs,
 * in the lane order the unpacks leave, put back in column order as they are added to o */
INLINE void pv_tile(const int nh, const uint16_t *v, int64_t ldv, int n, const uint16_t *pb, int ldp, float *o, int ldo,
                    int c) {
    __m512 lo[8], hi[8];
    for (int x = 0; x < nh; x++) lo[x] = hi[x] = _mm512_setzero_ps();
    int p = 0;
    for (; p + 2 <= n; p += 2) {
        __m512i v0 = _mm512_loadu_si512(v + (int64_t)p * ldv + c), v1 = _mm512_loadu_si512(v + (int64_t)(p + 1) * ldv + c);
        __m512bh a = (__m512bh)_mm512_unpacklo_epi16(v0, v1), b = (__m512bh)_mm512_unpackhi_epi16(v0, v1);
        for (int x = 0; x < nh; x++) {
            uint32_t pr;
            memcpy(&pr, pb + (int64_t)x * ldp + p, 4);
            __m512bh w = (__m512bh)_mm512_set1_epi32((int)pr);
            lo[x] = _mm512_dpbf16_ps(lo[x], a, w);
            hi[x] = _mm512_dpbf16_ps(hi[x], b, w);
        }
    }
    if (p < n) {                                     /* the odd last position, its pair's other half 0 */
        __m512i v0 = _mm512_loadu_si512(v + (int64_t)p * ldv + c), z = _mm512_setzero_si512();
        __m512bh a = (__m512bh)_mm512_unpacklo_epi16(v0, z), b = (__m512bh)_mm512_unpackhi_epi16(v0, z);
        for (int x = 0; x < nh; x++) {
            __m512bh w = (__m512bh)_mm512_set1_epi32((int)pb[(int64_t)x * ldp + p]);
            lo[x] = _mm512_dpbf16_ps(lo[x], a, w);
            hi[x] = _mm512_dpbf16_ps(hi[x], b, w);
        }
    }
    /* lane 4L + j of lo holds column 8L + j, of hi column 8L + 4 + j */
    const __m512i i0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i i1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int x = 0; x < nh; x++) {
        float *ox = o + (int64_t)x * ldo + c;
        _mm512_storeu_ps(ox, _mm512_add_ps(_mm512_loadu_ps(ox), _mm512_permutex2var_ps(lo[x], i0, hi[x])));
        _mm512_storeu_ps(ox + 16, _mm512_add_ps(_mm512_loadu_ps(ox + 16), _mm512_permutex2var_ps(lo[x], i1, hi[x])));
    }
}
typedef void (*PvFn)(const uint16_t *v, int64_t ldv, int n, const uint16_t *pb, int ldp, float *o, int ldo, int c);
#define PV(H) static void pv_##H(const uint16_t *v, int64_t ldv, int n, const uint16_t *pb, int ldp, float *o, int ldo, int c) \
    { pv_tile(H, v, ldv, n, pb, ldp, o, ldo, c); }
PV(1) PV(2) PV(3) PV(4) PV(5) PV(6) PV(7) PV(8)
static const PvFn pv_fns[8] = { pv_1, pv_2, pv_3, pv_4, pv_5, pv_6, pv_7, pv_8 };
#endif

void attn_pv_bf16(const uint16_t *v, int64_t ldv, int n, int dv, const uint16_t *pb, int ldp, int group, float *o,
                  int ldo) {
#ifdef QG
    int c = 0;
    for (; c + 32 <= dv; c += 32)
        for (int x = 0; x < group; x += 8) {
            int nh = group - x < 8 ? group - x : 8;
            pv_fns[nh - 1](v, ldv, n, pb + (int64_t)x * ldp, ldp, o + (int64_t)x * ldo, ldo, c);
        }
    if (c < dv) attn_pv_bf16_ref(v + c, ldv, n, dv - c, pb, ldp, group, o + c, ldo);
#else
    attn_pv_bf16_ref(v, ldv, n, dv, pb, ldp, group, o, ldo);
#endif
}

/* ---- panels: the entry points ------------------------------------------------------------- */
int qgemm_panel_ok(DType dt) {
#ifdef QG
    return dt == DT_BF16 || dt == DT_F16;
#else
    (void)dt;
    return 0;
#endif
}

size_t qgemm_panel_bytes(DType dt, int64_t cols) {
    return (size_t)((cols < SLAB ? cols : SLAB) + 15) / 16 * CHB * (size_t)parts(dt);
}

size_t qgemm_act_packed_bytes(int T, int64_t cols) {
    return (size_t)((T + PM - 1) / PM * PM) * (size_t)steps(cols) * sizeof(uint32_t);
}

void qgemm_pack_act(const float *x, int64_t ldx, int t0, int t1, int64_t cols, uint32_t *xp) {
#ifdef QG
    const int64_t S = steps(cols);
    for (int t = t0; t < t1; t++) {
        uint32_t *o = xp + (int64_t)(t / PM) * S * PM + t % PM;
        const float *xt = x + (int64_t)t * ldx;
        _Alignas(64) uint32_t v[16];
        for (int64_t s = 0; s < S; s += 16) {        /* 32 columns: masked past cols, zeros */
            int64_t c = 2 * s, m = cols - c;
            __mmask16 k0 = (__mmask16)(m >= 16 ? 0xFFFF : m > 0 ? (1u << m) - 1 : 0);
            __mmask16 k1 = (__mmask16)(m >= 32 ? 0xFFFF : m > 16 ? (1u << (m - 16)) - 1 : 0);
            __m512 a = _mm512_maskz_loadu_ps(k0, xt + c), b = _mm512_maskz_loadu_ps(k1, xt + c + 16);
            _mm512_store_si512(v, (__m512i)_mm512_cvtne2ps_pbh(b, a));
            int64_t n = S - s < 16 ? S - s : 16;
            for (int64_t j = 0; j < n; j++) o[(s + j) * PM] = v[j];
        }
    }
#else
    qgemm_pack_act_ref(x, ldx, t0, t1, cols, xp);
#endif
}

void qgemm_rows_panel(DType dt, const void *w, int64_t nr, int64_t cols, const uint32_t *xp, int T, float *y,
                      int64_t ldy, void *panel) {
#ifdef QG
    const int np = parts(dt);
    const int64_t S = steps(cols);
    /* slabs outermost: every panel of the rows passes over one slab's activations (2 MiB
     * at 512 tokens) before the next slab, where rows first read all of a long row's
     * activations per panel (Llama-8B's down product, 14336 columns at 512 tokens: 14
     * MiB); the same sums, added in the same slab order. Paired in one process on that
     * shape (two threads): 421-424 GFLOP/s against 382-405; at 4096 columns within 1%. */
    for (int64_t c0 = 0; c0 < cols; c0 += SLAB) {
        int64_t nc = cols - c0 < SLAB ? cols - c0 : SLAB;
        for (int64_t r = 0; r < nr; r += PR) {
            int n = nr - r < PR ? (int)(nr - r) : PR;
            pack_w(dt, (const uint16_t *)w + r * cols, cols, n, c0, nc, panel);
            for (int t = 0; t < T; t += PM) {
                int m = T - t < PM ? T - t : PM;
                ptiles[np - 1][m - 1](panel, (nc + 15) / 16, xp + (int64_t)(t / PM) * S * PM + c0 / 2 * PM,
                                      y + (int64_t)t * ldy + r, ldy, n, c0 > 0);
            }
        }
    }
#else
    (void)panel;
    qgemm_rows_panel_ref(dt, w, nr, cols, xp, T, y, ldy);
#endif
}
