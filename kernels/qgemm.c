/*
 * qgemm.c - prefill products of BF16 weights with activations rounded to BF16, in
 * VDPBF16PS tiles (qdot.h: qgemm_rows; --products low).
 *
 * y (T, nr) = x (T, K) . W^T with W (nr, K) as stored: both operands run along K, so a
 * tile of RM tokens x RN weight rows keeps RM*RN vector sums, one per (token, row),
 * loads RM activation vectors and RN weight vectors per step of 32 K-elements, and
 * reduces each sum across its lanes once at the end. Nothing is packed: a weight vector
 * serves RM tokens, an activation vector RN rows. VDPBF16PS multiplies 32 pairs of BF16
 * per instruction into 16 float32 sums, twice the multiply-adds of a float32 FMA; the
 * activations are rounded to BF16 once per call (to nearest even, relative error at
 * most 2^-9 each), which is what this way costs in accuracy (measured in the README).
 *
 * Tokens go in blocks of 72 (576 KiB of activations at K = 4096, within L2); for each
 * block, every group of RN = 4 weight rows passes over the block's tiles of RM = 6
 * tokens, the order llama.cpp's tinyBLAS uses. 24 sums, 6 activation vectors and one
 * weight vector fill the 32 vector registers; a tile's four rows are reduced together
 * through a transpose. Edge tiles have their own compile-time shapes. Without AVX-512
 * BF16 qgemm_ok() says no and linear() keeps float32 activations and SGEMM.
 */
#include "qdot.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512BF16__)
#include <immintrin.h>
#define QG 1
#endif

/* ---- the plain C twin --------------------------------------------------------------------- */
void qgemm_act_bf16_ref(const float *x, int64_t ldx, int T, int64_t cols, uint16_t *xb, int64_t ldxb) {
    for (int t = 0; t < T; t++) {
        int64_t i = 0;
        for (; i < cols; i++) xb[(int64_t)t * ldxb + i] = f32_to_bf16(x[(int64_t)t * ldx + i]);
        for (; i < ldxb; i++) xb[(int64_t)t * ldxb + i] = 0;
    }
}

void qgemm_rows_ref(const void *w, int64_t nr, int64_t cols, const uint16_t *xb, int64_t ldxb, int T, float *y,
                    int64_t ldy) {
    const uint8_t *p = w;
    for (int64_t r = 0; r < nr; r++)
        for (int t = 0; t < T; t++) {
            float s = 0;
            for (int64_t i = 0; i < cols; i++) {
                uint16_t h = (uint16_t)(p[2 * (r * cols + i)] | p[2 * (r * cols + i) + 1] << 8);
                s += bf16_to_f32(h) * bf16_to_f32(xb[(int64_t)t * ldxb + i]);
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
#ifdef QG
    const int64_t ldw = 2 * cols;
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
    qgemm_rows_ref(w, nr, cols, xb, ldxb, T, y, ldy);
#endif
}
