/*
 * qgemm.c - prefill products of BF16 and F16 weights with activations rounded to BF16,
 * in VDPBF16PS (qdot.h: qgemm_rows, qgemm_rows_panel; --products low). VDPBF16PS
 * multiplies 32 pairs of BF16 per instruction into 16 float32 sums, twice the
 * multiply-adds of a float32 FMA; the activations are rounded to BF16 once per call (to
 * nearest even, relative error at most 2^-8 each), which is what this way costs in
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
 * F16 weights go in panels too: each weight w is split into h = bf16(w), taken as
 * above, and the remainder l = w - h, exact in float32 (F16 holds 11 significant bits, h
 * the first 8, rounded: |l| <= 2^-8 |w|). Per 128 columns of a row the remainders are
 * rounded to int8 on their largest (scale s = max |l| / 127) and multiplied by the
 * activations rounded to int8 per token on theirs (scale d; kept unsigned, + 128, the
 * offset taken out by a per-row term set at packing) in VPDPBUSD, 64 multiply-adds an
 * instruction: four columns where VDPBF16PS takes two. The high parts take half the
 * VDPBF16PS of two BF16 parts, so a tile of 6 tokens x 32 rows does 1.3x the
 * multiply-adds per instruction (measured, one core from L2: 76 against 58.5 GMAC/s).
 * What it costs, per column: the remainder's rounding s/2 |x| (s/2 about 2^-16 of the
 * block's largest |w|), the activation's |l| d/2 (|l| within 2^-8 of |w|, d/2 about
 * 2^-8 of the block's largest |x|); the BF16 rounding of the activations that every
 * low-products term takes is up to 2^-8 of the term itself. Bounds checked in
 * tests/test_qdot.c; the KL on SmolLM2 and the goldens in the README.
 *
 * Tiles over rows as stored, for fewer tokens (qgemm_rows; BF16 only, where packing
 * would cost more than it saves): y (T, nr) = x (T, K) . W^T with both operands along K,
 * a tile of RM = 6 tokens x RN = 4 weight rows keeps 24 vector sums, loads 6 activation
 * vectors and 4 weight vectors per step of 32 K-elements, and reduces each sum across
 * its lanes once at the end, the order llama.cpp's tinyBLAS uses. Tokens go in blocks of
 * 72 (576 KiB of activations at K = 4096, within L2). Edge tiles of both kinds have
 * their own compile-time shapes. Without AVX-512 BF16 and VNNI qgemm_ok() and
 * qgemm_panel_ok() say no and linear() keeps float32 activations and SGEMM.
 */
#include "qdot.h"

#include <math.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512BF16__) && defined(__AVX512VNNI__) && defined(__F16C__)
#include <immintrin.h>
#include "qpanel.h"
#define QG 1
#endif

#define PR 32                        /* rows of a panel */
#define PM 12                        /* tokens of a panel tile */
#define SLAB 2048                    /* columns of a panel */
#define CHB (8 * PR * 4)             /* bytes of 16 columns of a panel: 8 steps x 32 rows x a BF16 pair */
#define KB 128                       /* F16: columns of a block of int8 remainders */
#define LOB (KB / 4 * PR * 4)        /* bytes of a block's remainders: 32 quads x 32 rows x 4 */
#define F16B (KB / 16 * CHB + LOB + 2 * PR * 4)   /* an F16 panel block: high parts, remainders, scales, offsets */
static int64_t steps(int64_t cols) { return (cols + 15) / 16 * 8; }   /* pairs of a token's packed row */
static int64_t nblk(int64_t cols) { return (cols + KB - 1) / KB; }    /* F16: 128-column blocks of a row */
static int64_t groups(int T) { return (T + PM - 1) / PM; }

/* F16's packed activations after the BF16 pairs: per 12 tokens, per quad of columns, the
 * 12 tokens' unsigned int8 quads side by side; then per 12 tokens, per block, their
 * scales d */
static uint32_t *act_q(uint32_t *xp, int T, int64_t cols) { return xp + groups(T) * PM * steps(cols); }
static float *act_d(uint32_t *xp, int T, int64_t cols) {
    return (float *)(void *)(act_q(xp, T, cols) + groups(T) * PM * nblk(cols) * (KB / 4));
}

/* the int8 rounding both F16 sides take, on the largest |v| of a block: scale amax / 127 */
static float inv127(float amax) { return amax > 0 ? 127.0f / amax : 0.0f; }

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

/* the panel path's twins: the same packing and the same roundings, in plain loops */
static uint32_t packed(const uint32_t *xp, int64_t cols, int t, int64_t s) {
    return xp[(int64_t)(t / PM) * steps(cols) * PM + s * PM + t % PM];
}
void qgemm_pack_act_ref(DType dt, const float *x, int64_t ldx, int t0, int t1, int T, int64_t cols, uint32_t *xp) {
    const int64_t S = steps(cols), NB = nblk(cols);
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (int64_t)t * ldx;
        for (int64_t s = 0; s < S; s++) {
            uint32_t lo = 2 * s < cols ? f32_to_bf16(xt[2 * s]) : 0;
            uint32_t hi = 2 * s + 1 < cols ? f32_to_bf16(xt[2 * s + 1]) : 0;
            xp[(int64_t)(t / PM) * S * PM + s * PM + t % PM] = lo | hi << 16;
        }
        if (dt != DT_F16) continue;
        uint8_t *q = (uint8_t *)act_q(xp, T, cols);
        for (int64_t b = 0; b < NB; b++) {
            float amax = 0;
            for (int64_t i = KB * b; i < cols && i < KB * (b + 1); i++) amax = fmaxf(amax, fabsf(xt[i]));
            const float inv = inv127(amax);
            for (int64_t i = KB * b; i < KB * (b + 1); i++)
                q[((int64_t)(t / PM) * NB * (KB / 4) * PM + i / 4 * PM + t % PM) * 4 + i % 4] =
                    (uint8_t)(128 + (i < cols ? lrintf(xt[i] * inv) : 0));
            act_d(xp, T, cols)[(int64_t)(t / PM) * NB * PM + b * PM + t % PM] = amax / 127.0f;
        }
    }
}
void qgemm_rows_panel_ref(DType dt, const void *w, int64_t nr, int64_t cols, const uint32_t *xp, int T, float *y,
                          int64_t ldy) {
    const uint16_t *p = w;
    const int64_t NB = nblk(cols);
    const uint8_t *xq = (const uint8_t *)act_q((uint32_t *)xp, T, cols);
    const float *dx = act_d((uint32_t *)xp, T, cols);
    for (int64_t r = 0; r < nr; r++)
        for (int t = 0; t < T; t++) {
            float s = 0;
            for (int64_t b = 0; b < NB; b++) {
                float l[KB], amax = 0;
                int64_t c1 = cols < KB * (b + 1) ? cols : KB * (b + 1);
                for (int64_t i = KB * b; i < c1; i++) {
                    uint16_t v = p[r * cols + i];
                    float f = dt == DT_F16 ? f16_to_f32(v) : bf16_to_f32(v), h = bf16_to_f32(f32_to_bf16(f));
                    uint32_t xv = packed(xp, cols, t, i / 2);
                    s += h * bf16_to_f32((uint16_t)(i & 1 ? xv >> 16 : xv));
                    l[i - KB * b] = f - h;                          /* 0 for BF16 */
                    amax = fmaxf(amax, fabsf(f - h));
                }
                if (dt != DT_F16) continue;
                const float inv = inv127(amax);
                int32_t isum = 0;
                for (int64_t i = KB * b; i < c1; i++)
                    isum += (int32_t)lrintf(l[i - KB * b] * inv) *
                            ((int32_t)xq[((int64_t)(t / PM) * NB * (KB / 4) * PM + i / 4 * PM + t % PM) * 4 + i % 4] - 128);
                s += (float)isum * (amax / 127.0f * dx[(int64_t)(t / PM) * NB * PM + b * PM + t % PM]);
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
/* rows [0, n) (n <= 32) of BF16 w (ldw elements a row), columns c0 .. c0 + nc, into the
 * panel: per 16 columns, CHB bytes; zeros past n rows and past nc columns */
static void pack_w(const uint16_t *w, int64_t ldw, int n, int64_t c0, int64_t nc, uint8_t *panel) {
    _Alignas(64) uint16_t lev[16 * 128];
    for (int g = 0; g < PR / 16; g++)
        for (int64_t c = 0; c < nc; c += 128) {
            const int64_t m = nc - c < 128 ? nc - c : 128;
            for (int rr = 0; rr < 16; rr++) {
                uint16_t *h = lev + 128 * rr;
                int64_t valid = 16 * g + rr < n ? m : 0;
                if (valid) memcpy(h, w + (16 * g + rr) * ldw + c0 + c, 2 * (size_t)valid);
                for (int64_t k = valid; k < 128; k++) h[k] = 0;
            }
            for (int j = 0; j < 8 && c + 16 * j < nc; j++)
                transpose16((const uint8_t *)lev, 32 * j, panel + (c / 16 + j) * CHB + 64 * g);
        }
}

/* The same for F16 rows, per 128-column block (F16B bytes): the high parts h = bf16(w) as
 * BF16 panel chunks; the remainders w - h rounded to int8 on the row's largest in the
 * block, as 32 quad steps of 2 vectors of 16 rows x 4 bytes; the rows' scales, and their
 * offset terms -128 x (sum of the row's int8 remainders), which start the integer sums
 * (the activations are kept unsigned, + 128) */
static void pack_w16(const uint16_t *w, int64_t ldw, int n, int64_t c0, int64_t nc, uint8_t *panel) {
    _Alignas(64) uint16_t lev[16 * 128];
    _Alignas(64) int8_t lq[16 * 256];               /* rows 256 bytes apart, as transpose16 reads */
    for (int64_t c = 0; c < nc; c += KB) {
        const int64_t m = nc - c < KB ? nc - c : KB;
        uint8_t *blk = panel + c / KB * F16B;
        float *scale = (float *)(void *)(blk + KB / 16 * CHB + LOB);
        int32_t *off = (int32_t *)(void *)(scale + PR);
        for (int g = 0; g < PR / 16; g++) {
            for (int rr = 0; rr < 16; rr++) {
                uint16_t *h = lev + 128 * rr;
                int8_t *q = lq + 256 * rr;
                _Alignas(64) float l[KB];
                const int64_t valid = 16 * g + rr < n ? m : 0;
                const uint16_t *src = valid ? w + (16 * g + rr) * ldw + c0 + c : w;   /* not read when 0 */
                __m512 amax = _mm512_setzero_ps();
                for (int64_t k = 0; k < KB; k += 16) {
                    __mmask16 mk = (__mmask16)(valid - k >= 16 ? 0xFFFF : valid > k ? (1u << (valid - k)) - 1 : 0);
                    __m512 f = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, src + k));
                    __m256i hb = (__m256i)_mm512_cvtneps_pbh(f);
                    __m512 lk = _mm512_sub_ps(f, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(hb), 16)));
                    _mm256_store_si256((__m256i *)(void *)(h + k), hb);
                    _mm512_store_ps(l + k, lk);
                    amax = _mm512_max_ps(amax, _mm512_abs_ps(lk));
                }
                const float mx = _mm512_reduce_max_ps(amax);
                const __m512 inv = _mm512_set1_ps(inv127(mx));
                __m512i sum = _mm512_setzero_si512();
                for (int k = 0; k < KB; k += 16) {
                    __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_load_ps(l + k), inv));
                    sum = _mm512_add_epi32(sum, qi);
                    _mm_store_si128((__m128i *)(void *)(q + k), _mm512_cvtepi32_epi8(qi));
                }
                scale[16 * g + rr] = mx / 127.0f;
                off[16 * g + rr] = -128 * _mm512_reduce_add_epi32(sum);
            }
            for (int j = 0; j < 8 && c + 16 * j < nc; j++)
                transpose16((const uint8_t *)lev, 32 * j, blk + j * CHB + 64 * g);
            for (int j = 0; j < 4 && c + 32 * j < nc; j++)
                transpose16((const uint8_t *)lq, 32 * j, blk + KB / 16 * CHB + j * 8 * 128 + 64 * g);
        }
    }
}

/* a panel tile's sums, two vectors of 16 rows per token: the lanes of rows below n
 * (mask from row r0), started from y when add (later slabs) or 0, and stored back */
static inline __mmask16 rows_mask(int n, int r0) {
    return (__mmask16)(n - r0 >= 16 ? 0xFFFF : n > r0 ? (1u << (n - r0)) - 1 : 0);
}
INLINE void sums_start(const int rm, __m512 acc[][2], const float *y, int64_t ldy, __mmask16 m0, __mmask16 m1, int add) {
    for (int i = 0; i < rm; i++) {
        acc[i][0] = add ? _mm512_maskz_loadu_ps(m0, y + i * ldy) : _mm512_setzero_ps();
        acc[i][1] = add ? _mm512_maskz_loadu_ps(m1, y + i * ldy + 16) : _mm512_setzero_ps();
    }
}
INLINE void sums_store(const int rm, __m512 acc[][2], float *y, int64_t ldy, __mmask16 m0, __mmask16 m1) {
    for (int i = 0; i < rm; i++) {
        _mm512_mask_storeu_ps(y + i * ldy, m0, acc[i][0]);
        _mm512_mask_storeu_ps(y + i * ldy + 16, m1, acc[i][1]);
    }
}

/* rm tokens x the panel's 32 rows (BF16) over nch chunks of 16 columns; n valid rows
 * stored, added to y when add */
INLINE void ptile(const int rm, const uint8_t *panel, int64_t nch, const uint32_t *xs, float *y, int64_t ldy, int n,
                  int add) {
    __m512 acc[PM][2];
    const __mmask16 m0 = rows_mask(n, 0), m1 = rows_mask(n, 16);
    sums_start(rm, acc, y, ldy, m0, m1, add);
    for (int64_t j = 0; j < nch; j++) {
        const uint8_t *p = panel + j * CHB;
        const uint32_t *xj = xs + j * 8 * PM;
        for (int s = 0; s < 8; s++) {
            __m512bh w0 = (__m512bh)_mm512_load_si512(p + 128 * s), w1 = (__m512bh)_mm512_load_si512(p + 128 * s + 64);
            for (int i = 0; i < rm; i++) {
                __m512bh b = (__m512bh)_mm512_set1_epi32((int)xj[PM * s + i]);
                acc[i][0] = _mm512_dpbf16_ps(acc[i][0], w0, b);
                acc[i][1] = _mm512_dpbf16_ps(acc[i][1], w1, b);
            }
        }
    }
    sums_store(rm, acc, y, ldy, m0, m1);
}
typedef void (*PTileFn)(const uint8_t *panel, int64_t nch, const uint32_t *xs, float *y, int64_t ldy, int n, int add);
#define PF(M)                                                                                                     \
    static void ptile_##M(const uint8_t *p, int64_t nch, const uint32_t *xs, float *y, int64_t ldy, int n, int add) { \
        ptile(M, p, nch, xs, y, ldy, n, add);                                                                     \
    }
PF(1) PF(2) PF(3) PF(4) PF(5) PF(6) PF(7) PF(8) PF(9) PF(10) PF(11) PF(12)
static const PTileFn ptiles[PM] = { ptile_1, ptile_2, ptile_3, ptile_4, ptile_5, ptile_6,
                                    ptile_7, ptile_8, ptile_9, ptile_10, ptile_11, ptile_12 };

/* F16: rm (<= 6) tokens x the panel's 32 rows over nch chunks of 16 columns, block by
 * block: the high parts' VDPBF16PS into float sums, the remainders' VPDPBUSD into integer
 * sums that start at the rows' offset terms, converted once a block and added times s d.
 * xs, xq and dx: the tile's first token within its 12 (the packing's stride stays 12). */
INLINE void ptile16(const int rm, const uint8_t *panel, int64_t nch, const uint32_t *xs, const uint32_t *xq,
                    const float *dx, float *y, int64_t ldy, int n, int add) {
    __m512 acc[PM / 2][2];
    const __mmask16 m0 = rows_mask(n, 0), m1 = rows_mask(n, 16);
    sums_start(rm, acc, y, ldy, m0, m1, add);
    for (int64_t b = 0; 8 * b < nch; b++) {
        const int64_t ch = nch - 8 * b < 8 ? nch - 8 * b : 8;
        const uint8_t *p = panel + b * F16B, *pl = p + KB / 16 * CHB;
        const uint32_t *xj = xs + b * (KB / 2) * PM, *xk = xq + b * (KB / 4) * PM;
        for (int64_t s = 0; s < 8 * ch; s++) {
            __m512bh w0 = (__m512bh)_mm512_load_si512(p + 128 * s), w1 = (__m512bh)_mm512_load_si512(p + 128 * s + 64);
            for (int i = 0; i < rm; i++) {
                __m512bh v = (__m512bh)_mm512_set1_epi32((int)xj[PM * s + i]);
                acc[i][0] = _mm512_dpbf16_ps(acc[i][0], w0, v);
                acc[i][1] = _mm512_dpbf16_ps(acc[i][1], w1, v);
            }
        }
        const float *scale = (const float *)(const void *)(pl + LOB);
        const __m512i o0 = _mm512_load_si512(scale + 2 * 16), o1 = _mm512_load_si512(scale + 3 * 16);
        __m512i ia[PM / 2][2];
        for (int i = 0; i < rm; i++) ia[i][0] = o0, ia[i][1] = o1;
        for (int64_t s = 0; s < 4 * ch; s++) {
            __m512i w0 = _mm512_load_si512(pl + 128 * s), w1 = _mm512_load_si512(pl + 128 * s + 64);
            for (int i = 0; i < rm; i++) {
                __m512i v = _mm512_set1_epi32((int)xk[PM * s + i]);
                ia[i][0] = _mm512_dpbusd_epi32(ia[i][0], v, w0);
                ia[i][1] = _mm512_dpbusd_epi32(ia[i][1], v, w1);
            }
        }
        const __m512 s0 = _mm512_load_ps(scale), s1 = _mm512_load_ps(scale + 16);
        for (int i = 0; i < rm; i++) {
            const __m512 d = _mm512_set1_ps(dx[b * PM + i]);
            acc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[i][0]), _mm512_mul_ps(s0, d), acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[i][1]), _mm512_mul_ps(s1, d), acc[i][1]);
        }
    }
    sums_store(rm, acc, y, ldy, m0, m1);
}
typedef void (*PTile16Fn)(const uint8_t *panel, int64_t nch, const uint32_t *xs, const uint32_t *xq, const float *dx,
                          float *y, int64_t ldy, int n, int add);
#define PF16(M)                                                                                                   \
    static void ptile16_##M(const uint8_t *p, int64_t nch, const uint32_t *xs, const uint32_t *xq, const float *dx, \
                            float *y, int64_t ldy, int n, int add) {                                              \
        ptile16(M, p, nch, xs, xq, dx, y, ldy, n, add);                                                           \
    }
PF16(1) PF16(2) PF16(3) PF16(4) PF16(5) PF16(6)
static const PTile16Fn ptiles16[PM / 2] = { ptile16_1, ptile16_2, ptile16_3, ptile16_4, ptile16_5, ptile16_6 };
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
    const int64_t nc = cols < SLAB ? cols : SLAB;
    return dt == DT_F16 ? (size_t)nblk(nc) * F16B : (size_t)(nc + 15) / 16 * CHB;
}

size_t qgemm_act_packed_bytes(DType dt, int T, int64_t cols) {
    size_t tokens = (size_t)(groups(T) * PM), bytes = tokens * (size_t)steps(cols) * sizeof(uint32_t);
    if (dt == DT_F16) bytes += tokens * (size_t)nblk(cols) * (KB + sizeof(float));   /* int8 quads, scales */
    return bytes;
}

void qgemm_pack_act(DType dt, const float *x, int64_t ldx, int t0, int t1, int T, int64_t cols, uint32_t *xp) {
#ifdef QG
    const int64_t S = steps(cols), NB = nblk(cols);
    uint32_t *xq = act_q(xp, T, cols);
    float *dx = act_d(xp, T, cols);
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
        if (dt != DT_F16) continue;
        uint32_t *oq = xq + (int64_t)(t / PM) * NB * (KB / 4) * PM + t % PM;
        for (int64_t b = 0; b < NB; b++) {           /* 128 columns: int8 on their largest, + 128 */
            __m512 xv[KB / 16], amax = _mm512_setzero_ps();
            for (int k = 0; k < KB / 16; k++) {
                int64_t c = KB * b + 16 * k, m = cols - c;
                xv[k] = _mm512_maskz_loadu_ps((__mmask16)(m >= 16 ? 0xFFFF : m > 0 ? (1u << m) - 1 : 0), xt + c);
                amax = _mm512_max_ps(amax, _mm512_abs_ps(xv[k]));
            }
            const float mx = _mm512_reduce_max_ps(amax);
            const __m512 inv = _mm512_set1_ps(inv127(mx));
            for (int k = 0; k < KB / 16; k++) {
                __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(xv[k], inv)), _mm512_set1_epi32(128));
                _mm_store_si128((__m128i *)(void *)v, _mm512_cvtepi32_epi8(q));
                for (int j = 0; j < 4; j++) oq[(b * (KB / 4) + 4 * k + j) * PM] = v[j];
            }
            dx[(int64_t)(t / PM) * NB * PM + b * PM + t % PM] = mx / 127.0f;
        }
    }
#else
    qgemm_pack_act_ref(dt, x, ldx, t0, t1, T, cols, xp);
#endif
}

void qgemm_rows_panel(DType dt, const void *w, int64_t nr, int64_t cols, const uint32_t *xp, int T, float *y,
                      int64_t ldy, void *panel) {
#ifdef QG
    const int64_t S = steps(cols), NB = nblk(cols);
    const uint32_t *xq = act_q((uint32_t *)xp, T, cols);
    const float *dx = act_d((uint32_t *)xp, T, cols);
    /* slabs outermost: every panel of the rows passes over one slab's activations (2 MiB
     * at 512 tokens) before the next slab, where rows first read all of a long row's
     * activations per panel (Llama-8B's down product, 14336 columns at 512 tokens: 14
     * MiB); the same sums, added in the same slab order. Paired in one process on that
     * shape (two threads): 421-424 GFLOP/s against 382-405; at 4096 columns within 1%. */
    for (int64_t c0 = 0; c0 < cols; c0 += SLAB) {
        int64_t nc = cols - c0 < SLAB ? cols - c0 : SLAB;
        for (int64_t r = 0; r < nr; r += PR) {
            int n = nr - r < PR ? (int)(nr - r) : PR;
            const uint16_t *wr = (const uint16_t *)w + r * cols;
            if (dt == DT_F16) pack_w16(wr, cols, n, c0, nc, panel);
            else pack_w(wr, cols, n, c0, nc, panel);
            for (int t = 0; t < T; t += PM) {
                int m = T - t < PM ? T - t : PM;
                const uint32_t *xs = xp + (int64_t)(t / PM) * S * PM + c0 / 2 * PM;
                float *yt = y + (int64_t)t * ldy + r;
                if (dt != DT_F16) {
                    ptiles[m - 1](panel, (nc + 15) / 16, xs, yt, ldy, n, c0 > 0);
                    continue;
                }
                const uint32_t *xk = xq + (int64_t)(t / PM) * NB * (KB / 4) * PM + c0 / 4 * PM;
                const float *dk = dx + (int64_t)(t / PM) * NB * PM + c0 / KB * PM;
                for (int i0 = 0; i0 < m; i0 += PM / 2) {   /* two tiles of up to 6 tokens */
                    int rm = m - i0 < PM / 2 ? m - i0 : PM / 2;
                    ptiles16[rm - 1](panel, (nc + 15) / 16, xs + i0, xk + i0, dk + i0, yt + (int64_t)i0 * ldy, ldy, n,
                                     c0 > 0);
                }
            }
        }
    }
#else
    (void)panel;
    qgemm_rows_panel_ref(dt, w, nr, cols, xp, T, y, ldy);
#endif
}
