/*
 * qgemm_int.c - prefill products of block-type weights (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K,
 * Q6_K) with activations rounded to int8, in VPDPBUSD tiles (qdot.h: qgemm_int_rows;
 * --products low).
 *
 * The decode kernels (qdot_int.c) put 64 consecutive weights of one row in a vector, so
 * every (token, row) pair ends each 32-block with a float conversion and a scale of its
 * own: as many float operations as integer ones. Here the vector's 16 32-bit lanes are
 * 16 rows instead. A panel of 32 rows is repacked once per call into
 *
 *   per sub-block of 32 columns (1280 bytes; Q6_K 1536):
 *     8 steps x 2 groups x 16 rows x 4 bytes   the rows' integer levels u, columns 4s..4s+3
 *     float a[32], b[32]                        the rows' scales for this sub-block (Q6_K,
 *                                               whose scales are per 16: twice, one pair
 *                                               per half, each half's sums taken apart)
 *
 * so one VPDPBUSD multiplies 4 columns of 16 rows by the same 4 activation bytes of one
 * token (broadcast from memory) and adds them into that token's 16 row sums. After the 8
 * steps of a sub-block each lane holds a row's exact integer dot product, converted once
 * and scaled for 16 rows at a time:
 *
 *   y[t][r] += a[r] dx[t] dot(u_r, q_t) + b[r] sx[t]       (qdot_int.c's table, per 32)
 *
 * A tile is 6 tokens x 32 rows: 12 integer sums, 12 float sums and two weight vectors in
 * the 32 vector registers; 8 integer multiply-adds of 64 products per float update. The
 * panel (40 bytes per column: 160 KiB at 4096 columns) stays in L2 while every token of
 * the call passes over it. Rows past nr are packed as zeros and never stored.
 * Repacking decodes a block's levels with vector code (block_levels; Q6_K through the
 * scalar qdot_sub_levels) and moves 16 rows' 32-bit words into place with an 8 x 8
 * transpose per 256-bit half: for 1408 x 2048 Q8_0 or Q4_K weights it measured 0.3-0.7
 * ms on one thread, against 0.8-1.0 ms for the tiles over 48 tokens (an expert's share
 * of a 512-token prefill), a small part at 512.
 *
 * Accuracy: the integer sums are exact; the result differs from the float32 product of
 * the decoded weights by the activations' rounding (per 32, at most dx/2 each: finer than
 * llama.cpp's per-256 rounding for Q4_K and Q5_K) and float32 summation order.
 */
#include "qdot.h"

#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__F16C__)
#include <immintrin.h>
#include "qpanel.h"
#define QI 1
#endif

#define PR 32                        /* rows of a panel */
#define LEV_BYTES (8 * PR * 4)       /* a sub-block's levels; then its scales, a[32] and b[32] per
                                        16 columns (Q6_K) or per 32 (the others) */
static int sub_bytes(DType dt) { return LEV_BYTES + (dt == DT_Q6_K ? 4 : 2) * PR * 4; }

int qgemm_int_ok(DType dt) {
#ifdef QI
    return dt == DT_Q8_0 || dt == DT_Q4_0 || dt == DT_Q4_1 || dt == DT_Q4_K || dt == DT_Q5_K || dt == DT_Q6_K;
#else
    (void)dt;
    return 0;
#endif
}

size_t qgemm_int_panel_bytes(int64_t cols) { return (size_t)(cols / 32) * (size_t)sub_bytes(DT_Q6_K); }

/* ---- the plain C twin --------------------------------------------------------------------- */
void qgemm_int_rows_ref(DType dt, const void *w, int64_t nr, int64_t cols, const QAct *a, float *y, int64_t ldy) {
    int blk = dtype_block(dt);
    int64_t bb = (int64_t)dtype_bytes(dt, blk), nb = cols / 32;
    for (int64_t r = 0; r < nr; r++)
        for (int t = 0; t < a->T; t++) {
            const uint8_t *row = (const uint8_t *)w + r * (cols / blk) * bb;
            const int8_t *q = a->q + (int64_t)t * cols;
            float s = 0;
            const int sub = dt == DT_Q6_K ? 16 : 32;           /* the weights' scale blocks */
            const float *sx = sub == 16 ? a->sx16 + t * 2 * nb : a->sx + t * nb;
            for (int64_t i = 0; i < cols / blk; i++) {
                uint8_t u[256];
                float sa[16], sb[16];
                qdot_sub_levels(dt, row + i * bb, u, sa, sb);
                for (int j = 0; j < blk / sub; j++) {
                    int64_t c = i * blk + sub * j;
                    int32_t dot = 0;
                    for (int l = 0; l < sub; l++) dot += u[sub * j + l] * q[c + l];
                    s += sa[j] * a->dx[t * nb + c / 32] * (float)dot + sb[j] * sx[c / sub];
                }
            }
            y[(int64_t)t * ldy + r] = s;
        }
}

#ifdef QI
#define INLINE static inline __attribute__((always_inline))
#define RM 6                         /* tokens of a tile */

static inline float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }
static inline __m256i lo4(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0F)); }
static inline __m256i hi4(__m256i v) { return lo4(_mm256_srli_epi16(v, 4)); }
static inline __m256i bit4(__m256i qh, int k) {    /* bit k of each byte, moved to bit 4 */
    return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, k), _mm256_set1_epi8(1)), 4);
}

/* qdot_sub_levels in vectors: one block's levels u and per-32 scales a, b */
INLINE void block_levels(DType dt, const uint8_t *b, uint8_t *u, float *a, float *bs) {
    float d = h2f(b);
    if (dt == DT_Q8_0) {
        _mm256_store_si256((__m256i *)(void *)u, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(b + 2)),
                                                                   _mm256_set1_epi8((char)0x80)));
        a[0] = d, bs[0] = -128 * d;
    } else if (dt == DT_Q4_0 || dt == DT_Q4_1) {
        int off = dt == DT_Q4_0 ? 2 : 4;
        __m256i v = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(b + off)));
        __m128i l = _mm256_castsi256_si128(lo4(v)), h = _mm256_castsi256_si128(hi4(v));
        _mm256_store_si256((__m256i *)(void *)u, _mm256_inserti128_si256(_mm256_castsi128_si256(l), h, 1));
        a[0] = d, bs[0] = dt == DT_Q4_0 ? -8 * d : h2f(b + 2);
    } else {                                           /* Q4_K, Q5_K */
        int k5 = dt == DT_Q5_K;
        const uint8_t *qs = b + (k5 ? 48 : 16);
        __m256i qh = k5 ? _mm256_loadu_si256((const __m256i *)(const void *)(b + 16)) : _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * g)), l = lo4(v), h = hi4(v);
            if (k5) l = _mm256_or_si256(l, bit4(qh, 2 * g)), h = _mm256_or_si256(h, bit4(qh, 2 * g + 1));
            _mm256_store_si256((__m256i *)(void *)(u + 64 * g), l);
            _mm256_store_si256((__m256i *)(void *)(u + 64 * g + 32), h);
        }
        uint8_t sc[8], mn[8];
        float dmin = h2f(b + 2);
        qdot_k_scales(b, sc, mn);
        for (int j = 0; j < 8; j++) a[j] = d * (float)sc[j], bs[j] = -dmin * (float)mn[j];
    }
}

/* rows r0 .. r0+n-1 (n <= 32) into the panel layout above */
static void pack(DType dt, const uint8_t *w, int64_t r0, int64_t n, int64_t cols, uint8_t *panel) {
    const int blk = dtype_block(dt), spb = blk / 32, nh = dt == DT_Q6_K ? 2 : 1, sb_bytes = sub_bytes(dt);
    int64_t bb = (int64_t)dtype_bytes(dt, blk), rb = (cols / blk) * bb;
    _Alignas(64) uint8_t lev[16 * 256];
    for (int g = 0; g < PR / 16; g++) {
        int nv = (int)(n - 16 * g < 0 ? 0 : n - 16 * g > 16 ? 16 : n - 16 * g);   /* valid rows of this group */
        if (nv < 16) memset(lev, 0, sizeof lev);
        for (int64_t i = 0; i < cols / blk; i++) {
            uint8_t *p = panel + i * spb * sb_bytes;
            for (int rr = 0; rr < 16; rr++) {
                float ra[16] = { 0 }, rbs[16] = { 0 };     /* rows past n: zeros */
                if (rr < nv) {
                    const uint8_t *b = w + (r0 + 16 * g + rr) * rb + i * bb;
                    if (dt == DT_Q6_K) qdot_sub_levels(dt, b, lev + 256 * rr, ra, rbs);
                    else block_levels(dt, b, lev + 256 * rr, ra, rbs);
                }
                for (int j = 0; j < spb; j++)
                    for (int h = 0; h < nh; h++) {
                        float *sa = (float *)(void *)(p + j * sb_bytes + LEV_BYTES + h * 2 * PR * 4) + 16 * g;
                        sa[rr] = ra[nh * j + h];
                        sa[PR + rr] = rbs[nh * j + h];
                    }
            }
            for (int j = 0; j < spb; j++) transpose16(lev, 32 * j, p + j * sb_bytes + 64 * g);
        }
    }
}

/* rm tokens (compile-time) x 32 rows of the panel; n valid rows stored. h16: the scales
 * are per 16 columns (Q6_K), so each sub-block's integer sums are taken twice, after 4
 * steps and after 8, and the offset term reads the activations' sums per 16 (sx with
 * stride lds, two per sub-block). */
INLINE void tile(const int rm, const int h16, const uint8_t *panel, int64_t nsub, const int8_t *q, int64_t ldq,
                 const float *dx, int64_t ldd, const float *sx, int64_t lds, float *y, int64_t ldy, int n) {
    const int nh = h16 ? 2 : 1, sb_bytes = LEV_BYTES + 2 * nh * PR * 4;
    __m512 f[RM][2];
    for (int i = 0; i < rm; i++) f[i][0] = f[i][1] = _mm512_setzero_ps();
    for (int64_t j = 0; j < nsub; j++) {
        const uint8_t *p = panel + j * sb_bytes;
        const int8_t *qj = q + 32 * j;
        for (int h = 0; h < nh; h++) {
            __m512i acc[RM][2];
            for (int i = 0; i < rm; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
            for (int s = 8 / nh * h; s < 8 / nh * (h + 1); s++) {
                __m512i w0 = _mm512_load_si512(p + s * 128), w1 = _mm512_load_si512(p + s * 128 + 64);
                for (int i = 0; i < rm; i++) {
                    int32_t x4;
                    memcpy(&x4, qj + i * ldq + 4 * s, 4);
                    __m512i xv = _mm512_set1_epi32(x4);
                    acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], w0, xv);
                    acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], w1, xv);
                }
            }
            const float *sa = (const float *)(const void *)(p + LEV_BYTES + h * 2 * PR * 4), *sb = sa + PR;
            for (int g = 0; g < 2; g++) {
                __m512 va = _mm512_load_ps(sa + 16 * g), vb = _mm512_load_ps(sb + 16 * g);
                for (int i = 0; i < rm; i++) {
                    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i][g]), va);
                    f[i][g] = _mm512_fmadd_ps(v, _mm512_set1_ps(dx[i * ldd + j]), f[i][g]);
                    f[i][g] = _mm512_fmadd_ps(vb, _mm512_set1_ps(sx[i * lds + nh * j + h]), f[i][g]);
                }
            }
        }
    }
    for (int i = 0; i < rm; i++) {
        if (n == PR) {
            _mm512_storeu_ps(y + i * ldy, f[i][0]);
            _mm512_storeu_ps(y + i * ldy + 16, f[i][1]);
        } else {
            _mm512_mask_storeu_ps(y + i * ldy, (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1), f[i][0]);
            if (n > 16) _mm512_mask_storeu_ps(y + i * ldy + 16, (__mmask16)((1u << (n - 16)) - 1), f[i][1]);
        }
    }
}

typedef void (*TileFn)(const uint8_t *panel, int64_t nsub, const int8_t *q, int64_t ldq, const float *dx, int64_t ldd,
                       const float *sx, int64_t lds, float *y, int64_t ldy, int n);
#define TF(M)                                                                                                  \
    static void tile_##M(const uint8_t *panel, int64_t nsub, const int8_t *q, int64_t ldq, const float *dx,    \
                         int64_t ldd, const float *sx, int64_t lds, float *y, int64_t ldy, int n) {           \
        tile(M, 0, panel, nsub, q, ldq, dx, ldd, sx, lds, y, ldy, n);                                         \
    }                                                                                                         \
    static void tile16_##M(const uint8_t *panel, int64_t nsub, const int8_t *q, int64_t ldq, const float *dx,  \
                           int64_t ldd, const float *sx, int64_t lds, float *y, int64_t ldy, int n) {         \
        tile(M, 1, panel, nsub, q, ldq, dx, ldd, sx, lds, y, ldy, n);                                         \
    }
TF(1)
TF(2)
TF(3)
TF(4)
TF(5)
TF(6)
static const TileFn tiles[2][RM] = { { tile_1, tile_2, tile_3, tile_4, tile_5, tile_6 },
                                      { tile16_1, tile16_2, tile16_3, tile16_4, tile16_5, tile16_6 } };
#endif

void qgemm_int_rows(DType dt, const void *w, int64_t nr, int64_t cols, const QAct *a, float *y, int64_t ldy,
                    void *panel) {
#ifdef QI
    const int64_t nb = cols / 32;
    for (int64_t r = 0; r < nr; r += PR) {
        int n = nr - r < PR ? (int)(nr - r) : PR;
        pack(dt, w, r, n, cols, panel);
        for (int t = 0; t < a->T; t += RM) {
            int m = a->T - t < RM ? a->T - t : RM;
            if (dt == DT_Q6_K)
                tiles[1][m - 1](panel, nb, a->q + (int64_t)t * cols, cols, a->dx + t * nb, nb, a->sx16 + 2 * t * nb, 2 * nb,
                                y + (int64_t)t * ldy + r, ldy, n);
            else
                tiles[0][m - 1](panel, nb, a->q + (int64_t)t * cols, cols, a->dx + t * nb, nb, a->sx + t * nb, nb,
                                y + (int64_t)t * ldy + r, ldy, n);
        }
    }
#else
    (void)panel;
    qgemm_int_rows_ref(dt, w, nr, cols, a, y, ldy);
#endif
}
