/*
 * qdot_int.c - block-type rows times activations rounded to 8 bits, in integer dot
 * products (qdot.h: qdot_act_quant, qdot_row_int), as llama.cpp computes its quantized
 * products on the CPU.
 *
 * Activations: each token's row in blocks of 32, q = round(x / dx) with dx = amax / 127
 * (llama.cpp's quantize_row_q8_0), kept with dx, sx = dx * sum(q) per 32 and per 16;
 * for Q4_K and Q5_K instead in blocks of 256, qk = round(x / dk) with dk = amax / 127
 * (llama.cpp's Q8_K), kept with dk and bk = sum(qk) per 32 (integers).
 * A weight block's integer levels u (unsigned: Q4 0..15, Q5 0..31, Q6 0..63, Q8 q+128)
 * meet q in VPDPBUSD (AVX-512 VNNI: 64 byte products summed into 16 int32 lanes per
 * instruction); each lane's sum is converted once and scaled by its sub-block's
 * (weight scale x dx); what the offset of u contributes (-8 for Q4_0, +128 for Q8_0,
 * -32 for Q6_K, the min of Q4_1) comes from the precomputed sums, per block:
 *
 *   Q8_0  d (u - 128)             sum = d dx dot(u, q) - 128 d sx
 *   Q4_0  d (u - 8)               sum = d dx dot(u, q) - 8 d sx
 *   Q4_1  d u + m                 sum = d dx dot(u, q) + m sx
 *   Q6_K  (d sc) (u - 32)         per sub-block of 16: (d sc) dx dot - 32 (d sc) sx16
 *   Q4_K  sc u - mn (times d, dmin)  per super-block: d dk sum_j sc_j dot_j(u, qk)
 *                                    - dmin dk sum_j mn_j bk_j, both sums integers;  Q5_K alike
 *
 * The integer sums are exact, so the result differs from the float32 product of the
 * decoded weights only by the rounding of the activations (at most dx/2 or dk/2 per
 * element) and float32 summation order. The plain C twin computes the same integer sums
 * with scalar code (qdot_row_int_ref).
 */
#include "qdot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__F16C__)
#define HAVE_VNNI 1
#include <immintrin.h>
#endif

/* ---- activations -------------------------------------------------------------------------- */
size_t qdot_act_bytes(int T, int64_t cols) {   /* the larger of the two forms: per 32 */
    return (size_t)T * ((size_t)cols + sizeof(float) * (size_t)(cols / 32 * 2 + cols / 16)) + 64;
}

/* q[0..n) = round(x / d) with d = amax / 127 over the n values; returns d. Rounding
 * is roundf's (halves away from zero, as llama.cpp's quantize_row_q8_0_ref). With
 * AVX-512 and n a multiple of 16, in vectors with the same operations in the same order
 * (the maximum ignores NaN as fmaxf does; round: truncate, then one step away from zero
 * where the exact remainder is at least a half), so both give the same bytes; the
 * scalar form cost a libm call per element. */
static float round_block(const float *x, int n, int8_t *q) {
#if defined(HAVE_VNNI)
    if (n % 16 == 0) {
        const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
        __m512 am = _mm512_setzero_ps();
        for (int i = 0; i < n; i += 16)      /* max(a, b) gives b when a is NaN */
            am = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + i), absmask), am);
        float d = _mm512_reduce_max_ps(am) / 127, id = d ? 1.0f / d : 0;
        const __m512 vid = _mm512_set1_ps(id), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
        for (int i = 0; i < n; i += 16) {
            __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), vid);
            __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __mmask16 up = _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_sub_ps(v, t), absmask), half, _CMP_GE_OQ);
            __m512 step = _mm512_or_ps(one, _mm512_andnot_ps(absmask, v));          /* +-1, v's sign */
            t = _mm512_mask_add_ps(t, up, t, step);
            _mm_storeu_si128((__m128i *)(void *)(q + i), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(t)));
        }
        return d;
    }
#endif
    float amax = 0;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127, id = d ? 1.0f / d : 0;
    for (int i = 0; i < n; i++) q[i] = (int8_t)(int)roundf(x[i] * id);
    return d;
}

static int per256(DType dt) { return dt == DT_Q4_K || dt == DT_Q5_K; }

void qdot_act_quant(DType dt, const float *x, int64_t ldx, int T, int64_t cols, void *buf, QAct *a) {
    int64_t nb = cols / 32;
    memset(a, 0, sizeof *a);
    a->T = T;
    a->cols = cols;
    if (per256(dt)) {                    /* llama.cpp's Q8_K: a scale per 256, integer sums per 32 */
        a->qk = buf;
        a->dk = (float *)(void *)((int8_t *)buf + (((size_t)T * (size_t)cols + 63) & ~(size_t)63));
        a->bk = (int32_t *)(void *)(a->dk + T * (cols / 256));
        for (int t = 0; t < T; t++) {
            int8_t *q = a->qk + t * cols;
            for (int64_t b = 0; b < cols / 256; b++) a->dk[t * (cols / 256) + b] = round_block(x + t * ldx + 256 * b, 256, q + 256 * b);
            for (int64_t b = 0; b < nb; b++) {
                int32_t s = 0;
                for (int i = 0; i < 32; i++) s += q[32 * b + i];
                a->bk[t * nb + b] = s;
            }
        }
        return;
    }
    a->q = buf;                          /* llama.cpp's Q8_0: a scale per 32 */
    a->dx = (float *)(void *)((int8_t *)buf + (((size_t)T * (size_t)cols + 15) & ~(size_t)15));
    a->sx = a->dx + T * nb;
    a->sx16 = a->sx + T * nb;
    #pragma omp parallel for schedule(static) if (T >= 32)
    for (int t = 0; t < T; t++) {
        const float *xt = x + t * ldx;
        int8_t *q = a->q + t * cols;
        for (int64_t b = 0; b < nb; b++) {
            float d = round_block(xt + 32 * b, 32, q + 32 * b);
            int s0 = 0, s1 = 0;
            for (int i = 0; i < 16; i++) { s0 += q[32 * b + i]; s1 += q[32 * b + 16 + i]; }
            a->dx[t * nb + b] = d;
            a->sx[t * nb + b] = d * (float)(s0 + s1);
            a->sx16[t * 2 * nb + 2 * b] = d * (float)s0;
            a->sx16[t * 2 * nb + 2 * b + 1] = d * (float)s1;
        }
    }
}

int qdot_int_type(DType dt) {
    switch (dt) {
    case DT_Q8_0: case DT_Q4_0: case DT_Q4_1: case DT_Q4_K: case DT_Q5_K: case DT_Q6_K: return 1;
    default: return 0;
    }
}

/* ---- the plain C twin ---------------------------------------------------------------------- */
static float f16(const uint8_t *p) { return f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* integer levels u[256 or 32] of one block, as the table at the top defines them */
static void levels(DType dt, const uint8_t *b, uint8_t *u) {
    switch (dt) {
    case DT_Q8_0: for (int l = 0; l < 32; l++) u[l] = (uint8_t)(b[2 + l] ^ 0x80); break;
    case DT_Q4_0: for (int l = 0; l < 16; l++) { u[l] = b[2 + l] & 0x0F; u[l + 16] = b[2 + l] >> 4; } break;
    case DT_Q4_1: for (int l = 0; l < 16; l++) { u[l] = b[4 + l] & 0x0F; u[l + 16] = b[4 + l] >> 4; } break;
    case DT_Q4_K:
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++) { u[64 * g + l] = b[16 + 32 * g + l] & 0x0F; u[64 * g + 32 + l] = b[16 + 32 * g + l] >> 4; }
        break;
    case DT_Q5_K:
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++) {
                const uint8_t qs = b[48 + 32 * g + l], qh = b[16 + l];
                u[64 * g + l] = (uint8_t)((qs & 0x0F) | ((qh >> (2 * g)) & 1) << 4);
                u[64 * g + 32 + l] = (uint8_t)((qs >> 4) | ((qh >> (2 * g + 1)) & 1) << 4);
            }
        break;
    case DT_Q6_K:
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            uint8_t *o = u + 128 * h;
            for (int l = 0; l < 32; l++) {
                o[l]      = (uint8_t)((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4);
                o[l + 32] = (uint8_t)((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4);
                o[l + 64] = (uint8_t)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4);
                o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
            }
        }
        break;
    default: break;
    }
}

/* Q4_K / Q5_K: the 6-bit scales and mins as integers */
void qdot_k_scales(const void *block, uint8_t sc[8], uint8_t mn[8]) {
    const uint8_t *s = (const uint8_t *)block + 4;
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 0x3F;
        mn[j] = s[j + 4] & 0x3F;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
        mn[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
    }
}

void qdot_sub_levels(DType dt, const void *block, uint8_t *u, float *a, float *b) {
    const uint8_t *p = block;
    levels(dt, p, u);
    float d = f16(p);
    switch (dt) {
    case DT_Q8_0: a[0] = d, b[0] = -128 * d; break;
    case DT_Q4_0: a[0] = d, b[0] = -8 * d; break;
    case DT_Q4_1: a[0] = d, b[0] = f16(p + 2); break;
    case DT_Q4_K: case DT_Q5_K: {
        uint8_t sc[8], mn[8];
        float dmin = f16(p + 2);
        qdot_k_scales(p, sc, mn);
        for (int j = 0; j < 8; j++) a[j] = d * (float)sc[j], b[j] = -dmin * (float)mn[j];
        break;
    }
    case DT_Q6_K: {                      /* per 16: (d sc) (u - 32) */
        const int8_t *sc = (const int8_t *)(p + 192);
        float d6 = f16(p + 208);
        for (int j = 0; j < 16; j++) a[j] = d6 * (float)sc[j], b[j] = -32 * d6 * (float)sc[j];
        break;
    }
    default: break;
    }
}

static float row_ref_one(DType dt, const uint8_t *row, int64_t cols, const QAct *a, int t) {
    const int8_t *q = NULL;               /* the per-32 form; Q4_K and Q5_K take the per-256 one below */
    const float *dx = NULL, *sx = NULL, *sx16 = NULL;
    if (a->q) {
        q = a->q + t * a->cols;
        dx = a->dx + t * (a->cols / 32), sx = a->sx + t * (a->cols / 32), sx16 = a->sx16 + t * (a->cols / 16);
    }
    int blk = dtype_block(dt);
    int64_t bb = (int64_t)dtype_bytes(dt, blk);
    double acc = 0;
    uint8_t u[256];
    for (int64_t i = 0; i < cols / blk; i++) {
        const uint8_t *b = row + i * bb;
        levels(dt, b, u);
        int64_t c0 = i * blk, x0 = c0 / 32;
        if (blk == 32) {
            int dot = 0;
            for (int l = 0; l < 32; l++) dot += u[l] * q[c0 + l];
            float d = f16(b);
            if (dt == DT_Q8_0) acc += d * dx[x0] * (float)dot - 128 * d * sx[x0];
            else if (dt == DT_Q4_0) acc += d * dx[x0] * (float)dot - 8 * d * sx[x0];
            else acc += d * dx[x0] * (float)dot + f16(b + 2) * sx[x0];
        } else if (dt == DT_Q6_K) {
            const int8_t *sc = (const int8_t *)(b + 192);
            float d = f16(b + 208);
            for (int j = 0; j < 16; j++) {
                int dot = 0;
                for (int l = 0; l < 16; l++) dot += u[16 * j + l] * q[c0 + 16 * j + l];
                float ds = d * (float)sc[j];
                acc += ds * dx[x0 + j / 2] * (float)dot - 32 * ds * sx16[c0 / 16 + j];
            }
        } else {                                 /* Q4_K, Q5_K: per-256 activations, integer sums */
            const int8_t *qk = a->qk + t * a->cols;
            const int32_t *bk = a->bk + t * (a->cols / 32);
            uint8_t sc[8], mn[8];
            qdot_k_scales(b, sc, mn);
            int64_t isum = 0, msum = 0;
            for (int j = 0; j < 8; j++) {
                int dot = 0;
                for (int l = 0; l < 32; l++) dot += u[32 * j + l] * qk[c0 + 32 * j + l];
                isum += (int64_t)sc[j] * dot;
                msum += (int64_t)mn[j] * bk[x0 + j];
            }
            float dk = a->dk[t * (a->cols / 256) + i];
            acc += f16(b) * dk * (double)isum - f16(b + 2) * dk * (double)msum;
        }
    }
    return (float)acc;
}

void qdot_row_int_ref(DType dt, const void *row, const QAct *a, int T, float *acc) {
    for (int t = 0; t < T; t++) acc[t] = row_ref_one(dt, row, a->cols, a, t);
}

/* ---- VNNI ------------------------------------------------------------------------------------ */
#ifdef HAVE_VNNI
#define INLINE static inline __attribute__((always_inline))

static float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }   /* F16C */
/* lanes 0-7 a, lanes 8-15 b */
static inline __m512 two(float a, float b) { return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1); }
static inline __m256i nib_lo(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0F)); }
static inline __m256i nib_hi(__m256i v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F)); }
static inline __m512i cat(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

/* The row loops prefetch the weights ROW_AHEAD bytes ahead, non-temporal. Without it,
 * rows longer than about 4096 columns streamed from memory ever slower (one thread,
 * Q8_0: 18.3 GB/s at 4096 columns, 9.6 at 14336, an FFN's down product on Llama-8B),
 * though such rows run at full speed from cache; with it 12.7 at 14336 (two threads:
 * 18.4 to 25.4) and 5-19% more at 4096 (README, "--products low"). */
#define ROW_AHEAD 4096
INLINE void ahead(const uint8_t *p, const int lines) {
    for (int k = 0; k < lines; k++) _mm_prefetch((const char *)(p + ROW_AHEAD + 64 * k), _MM_HINT_NTA);
}

/* The levels of 64 consecutive weights (two 32-blocks, or one K group) as bytes in
 * element order, with their lanes' scales; T rows of activations at x + t * ldq. */
typedef struct {
    const int8_t *q; int64_t ldq;
    __m512 acc[4];
    float corr[4];
} Acc;

INLINE void dot64(Acc *s, const int T, __m512i u, int64_t c, __m512 scale, const float *dxa, int64_t ldd) {
    for (int t = 0; t < T; t++) {
        __m512i xq = _mm512_loadu_si512((const void *)(s->q + t * s->ldq + c));
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, xq);
        __m512 sc = _mm512_mul_ps(scale, two(dxa[t * ldd], dxa[t * ldd + 1]));
        s->acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sc, s->acc[t]);
    }
}

/* as dot64, the lanes' weight scales being wa (lanes 0-7) and wb (8-15) */
INLINE void dot64_2(Acc *s, const int T, __m512i u, int64_t c, float wa, float wb, const float *dxa, int64_t ldd) {
    for (int t = 0; t < T; t++) {
        __m512i xq = _mm512_loadu_si512((const void *)(s->q + t * s->ldq + c));
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, xq);
        s->acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), two(wa * dxa[t * ldd], wb * dxa[t * ldd + 1]), s->acc[t]);
    }
}

/* levels of blocks b0 and b1 (of a 32-block type) as 64 bytes in element order */
INLINE __m512i levels64(DType dt, const uint8_t *b0, const uint8_t *b1) {
    if (dt == DT_Q8_0) {
        __m512i u = cat(_mm256_loadu_si256((const __m256i *)(b0 + 2)), _mm256_loadu_si256((const __m256i *)(b1 + 2)));
        return _mm512_xor_si512(u, _mm512_set1_epi8((char)0x80));
    }
    int off = dt == DT_Q4_0 ? 2 : 4;
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + off))),
                                        _mm_loadu_si128((const __m128i *)(b1 + off)), 1);
    /* [lo0 lo1 hi0 hi1] to element order [lo0 hi0 lo1 hi1] */
    return _mm512_shuffle_i64x2(cat(nib_lo(v), nib_hi(v)), cat(nib_lo(v), nib_hi(v)), _MM_SHUFFLE(3, 1, 2, 0));
}

/* One pair of 32-blocks (levels u, 64 bytes; hw: the halves d0, d1, o0, o1 widened) against
 * T rows of per-32 activations at blocks i, i+1: lanes 0-1 of hw x (dx0, dx1, sx0, sx1)
 * are the blocks' scales, spread over their lanes; lanes 2-3, o0 sx0 and o1 sx1, go to
 * the offsets' correction in one fused step (its rounding feeds the next layer's int8
 * rounding: a separate product and sum moved SmolLM2's worst-position KL). */
INLINE void pair_dot(Acc *s, const int T, __m512i u, __m128 hw, const QAct *a, int64_t i, __m128 corr[]) {
    const int64_t nbx = a->cols / 32;
    const __m512i xidx = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi32(1), 1);
    for (int t = 0; t < T; t++) {
        __m128d dx2 = _mm_load_sd((const double *)(const void *)(a->dx + t * nbx + i));
        __m128d sx2 = _mm_load_sd((const double *)(const void *)(a->sx + t * nbx + i));
        const __m128 xs = _mm_castpd_ps(_mm_unpacklo_pd(dx2, sx2));
        __m512 sc = _mm512_permutexvar_ps(xidx, _mm512_castps128_ps512(_mm_mul_ps(hw, xs)));
        __m512i xq = _mm512_loadu_si512((const void *)(s->q + t * s->ldq + 32 * i));
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, xq);
        s->acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sc, s->acc[t]);
        corr[t] = _mm_fmadd_ps(hw, xs, corr[t]);
    }
}
static inline float lanes23(__m128 v) {
    __m128 hi = _mm_movehl_ps(v, v);
    return _mm_cvtss_f32(hi) + _mm_cvtss_f32(_mm_movehdup_ps(hi));
}

/* Q4_0 and Q4_1, two blocks (64 weights) a step from one masked 64-byte load of the
 * pair (36 or 40 bytes; masked bytes are not read): VPERMB lays the 16 bytes of each
 * block's levels out twice, VPSRLVW and a mask take low nibbles in the first copy and
 * high in the second (element order); one VPERMW on the low 256 bits gathers the two
 * scales d and the offsets' factors (Q4_1: m; Q4_0: d, times -8 once per row) into four
 * halves, widened together and multiplied by dx and sx of the two blocks in one 128-bit
 * product, whose first two lanes VPERMPS spreads over the lanes of their blocks. No
 * scalar work per block. Returns the blocks done (even); run32 takes an odd last one. */
INLINE int64_t run4_pairs(DType dt, const uint8_t *row, int64_t nb, Acc *s, const int T, const QAct *a) {
#if !defined(__AVX512VBMI__)                 /* VPERMB */
    (void)dt; (void)row; (void)nb; (void)s; (void)T; (void)a;
    return 0;
#else
    const int bb = dt == DT_Q4_0 ? 18 : 20;
    const __mmask64 live = dt == DT_Q4_0 ? 0xFFFFFFFFFull : 0xFFFFFFFFFFull;
    /* bytes: levels of block 0 twice, of block 1 twice */
    static const uint8_t q40[64] = { 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
        2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
        20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
        20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35 };
    static const uint8_t q41[64] = { 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
        4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
        24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
        24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39 };
    /* words d0, d1 and the offsets' factors of blocks 0 and 1 */
    static const uint16_t h40[16] = { 0, 9, 0, 9 }, h41[16] = { 0, 10, 1, 11 };
    const int q1 = dt == DT_Q4_1;
    const __m512i qperm = _mm512_loadu_si512(q1 ? q41 : q40);
    const __m256i hidx = _mm256_loadu_si256((const __m256i *)(const void *)(q1 ? h41 : h40));
    const __m512i shift = _mm512_setr_epi32(0, 0, 0, 0, 0x40004, 0x40004, 0x40004, 0x40004, 0, 0, 0, 0, 0x40004, 0x40004, 0x40004, 0x40004);
    __m128 corr[4];
    for (int t = 0; t < T; t++) corr[t] = _mm_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        ahead(row + i * bb, 1);
        const __m512i raw = _mm512_maskz_loadu_epi8(live, row + i * bb);
        __m512i u = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi8(qperm, raw), shift), _mm512_set1_epi8(0x0F));
        const __m128 hw = _mm_cvtph_ps(_mm256_castsi256_si128(_mm256_permutexvar_epi16(hidx, _mm512_castsi512_si256(raw))));
        pair_dot(s, T, u, hw, a, i, corr);
    }
    const float f = dt == DT_Q4_0 ? -8.0f : 1.0f;
    for (int t = 0; t < T; t++) s->corr[t] += f * lanes23(corr[t]);
    return i;
#endif
}

/* Q8_0, two blocks (64 weights) a step: levels from two 32-byte loads, the two scales d
 * widened together and multiplied by dx and sx of the two blocks in one 128-bit
 * product (as run4_pairs). Returns the blocks done (even). */
INLINE int64_t run8_pairs(const uint8_t *row, int64_t nb, Acc *s, const int T, const QAct *a) {
    __m128 corr[4];
    for (int t = 0; t < T; t++) corr[t] = _mm_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const uint8_t *b0 = row + i * 34;
        ahead(b0, 2);
        uint16_t h0, h1;
        memcpy(&h0, b0, 2);
        memcpy(&h1, b0 + 34, 2);
        __m128 hw = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | (uint32_t)h1 << 16)));
        hw = _mm_movelh_ps(hw, hw);                          /* d0, d1, d0, d1 */
        __m512i u = _mm512_xor_si512(cat(_mm256_loadu_si256((const __m256i *)(b0 + 2)), _mm256_loadu_si256((const __m256i *)(b0 + 36))),
                                     _mm512_set1_epi8((char)0x80));
        pair_dot(s, T, u, hw, a, i, corr);
    }
    for (int t = 0; t < T; t++) s->corr[t] -= 128 * lanes23(corr[t]);
    return i;
}

/* 32-block types, two blocks (64 weights) at a time; an odd last block alone */
INLINE void run32(DType dt, const uint8_t *row, int64_t nb, Acc *s, const int T, const QAct *a) {
    const int64_t bb = dt == DT_Q8_0 ? 34 : dt == DT_Q4_0 ? 18 : 20, nbx = a->cols / 32;
    int64_t i0 = dt == DT_Q8_0 ? run8_pairs(row, nb, s, T, a) : run4_pairs(dt, row, nb, s, T, a);
    for (int64_t i = i0; i < nb; i += 2) {
        const uint8_t *b0 = row + i * bb, *b1 = i + 1 < nb ? b0 + bb : b0;
        float d0 = h2f(b0), d1 = i + 1 < nb ? h2f(b1) : 0.0f;
        __m512i u = levels64(dt, b0, b1);
        if (i + 1 >= nb) u = _mm512_maskz_mov_epi32(0x00FF, u);      /* no second block */
        dot64_2(s, T, u, 32 * i, d0, d1, a->dx + i, nbx);
        for (int t = 0; t < T; t++) {
            const float *sx = a->sx + t * nbx + i;
            float c0 = sx[0], c1 = i + 1 < nb ? sx[1] : 0.0f;
            if (dt == DT_Q8_0) s->corr[t] -= 128 * (d0 * c0 + d1 * c1);
            else if (dt == DT_Q4_0) s->corr[t] -= 8 * (d0 * c0 + d1 * c1);
            else s->corr[t] += h2f(b0 + 2) * c0 + (i + 1 < nb ? h2f(b1 + 2) * c1 : 0.0f);
        }
    }
}

/* A Q4_K / Q5_K super-block's eight 6-bit scales (bytes 0-7) and mins (8-15) from its
 * first 16 bytes (d, dmin, the 12-byte packing), as llama.cpp's get_scale_min_k4 reads
 * them: j < 4: sc = q[j] & 63, mn = q[j+4] & 63; j >= 4: sc = (q[j+4] & 15) | (q[j-4]
 * >> 6) << 4, mn = (q[j+4] >> 4) | (q[j] >> 6) << 4. Two byte shuffles gather q[j+4] or
 * q[j] (p) and the bytes whose top bits complete j >= 4 (h); the 16-bit shifts' bits
 * from the neighbouring byte fall outside the masks. */
static inline __m128i k_scales_mins(__m128i raw) {
    const __m128i ip = _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i ih = _mm_setr_epi8(0, 0, 0, 0, 4, 5, 6, 7, 0, 0, 0, 0, 8, 9, 10, 11);
    const __m128i p = _mm_shuffle_epi8(raw, ip), h = _mm_shuffle_epi8(raw, ih);
    const __m128i f = _mm_set1_epi8(0x0F);
    __m128i lo4 = _mm_and_si128(_mm_mask_blend_epi8(0xF000, p, _mm_srli_epi16(p, 4)), f);
    __m128i hi = _mm_or_si128(lo4, _mm_and_si128(_mm_srli_epi16(h, 2), _mm_set1_epi8(0x30)));
    return _mm_mask_blend_epi8(0xF0F0, _mm_and_si128(p, _mm_set1_epi8(0x3F)), hi);
}

/* Q4_K / Q5_K against per-256 activations (qk, dk; bk: sums of qk per 32), as llama.cpp's
 * q4_K x q8_K product: a super-block's eight 6-bit scales and mins unpacked together
 * (k_scales_mins); per 64 weights
 * VPMADDUBSW multiplies levels and activations into 16-bit pair sums and VPDPWSSD
 * multiplies those by the two sub-blocks' scales into int32 sums; the block's sum is
 * converted once and scaled by d * dk; the mins' correction dmin * dk * sum(mn * bk) is
 * a vector sum reduced once per row. */
INLINE void run_k(DType dt, const uint8_t *row, int64_t nb, Acc *s, const int T, const QAct *a) {
    const int64_t bb = dt == DT_Q4_K ? 144 : 176, nbx = a->cols / 32, nbk = a->cols / 256;
    __m512i pick[4];                                            /* 16-bit lanes 0-15: scale 2g, 16-31: 2g+1 */
    for (int g = 0; g < 4; g++)
        pick[g] = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * g)), _mm256_set1_epi16((short)(2 * g + 1)), 1);
    __m256 corr[4];
    for (int t = 0; t < T; t++) corr[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b = row + i * bb, *qs = b + (dt == DT_Q4_K ? 16 : 48);
        ahead(b, 3);
        const __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)b);
        const __m128i v = k_scales_mins(raw);
        __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(v));
        __m256i mn32 = _mm256_cvtepu8_epi32(_mm_srli_si128(v, 8));
        const __m128 dd = _mm_cvtph_ps(raw);                   /* d, dmin */
        const float d = _mm_cvtss_f32(dd), dmin = _mm_cvtss_f32(_mm_movehdup_ps(dd));
        __m256i hb = dt == DT_Q5_K ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
        __m512i isum[4];
        for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
        for (int g = 0; g < 4; g++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(qs + 32 * g)), lo = nib_lo(w), hi = nib_hi(w);
            if (dt == DT_Q5_K) {
                __m256i one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * g), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * g + 1), one), 4));
            }
            __m512i u = cat(lo, hi), scg = _mm512_permutexvar_epi16(pick[g], sc16);
            int64_t c = 256 * i + 64 * g;
            for (int t = 0; t < T; t++) {
                __m512i xq = _mm512_loadu_si512((const void *)(a->qk + t * a->cols + c));
                isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(u, xq), scg);
            }
        }
        for (int t = 0; t < T; t++) {
            const float dk = a->dk[t * nbk + i];
            s->acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(d * dk), s->acc[t]);
            __m256i bk = _mm256_loadu_si256((const __m256i *)(const void *)(a->bk + t * nbx + 8 * i));
            corr[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(mn32, bk)), _mm256_set1_ps(dmin * dk), corr[t]);
        }
    }
    for (int t = 0; t < T; t++) {
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(corr[t]), _mm256_extractf128_ps(corr[t], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        s->corr[t] -= _mm_cvtss_f32(h);
    }
}

INLINE void run_q6k(const uint8_t *row, int64_t nb, Acc *s, const int T, const QAct *a) {
    const int64_t nbx = a->cols / 32;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    /* lane l of a 64-weight vector covers elements 4l..4l+3: sub-block of 16 j0 + l / 4 */
    __m512i rep4[4];
    for (int k = 0; k < 4; k++)
        rep4[k] = _mm512_add_epi32(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0), _mm512_set1_epi32(4 * k));
    __m512 corr[4];                                  /* sum over sub-blocks of (d sc) sx16, per lane */
    for (int t = 0; t < T; t++) corr[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b = row + 210 * i;
        ahead(b, 4);
        /* the sixteen sub-blocks' scales d * sc, in one vector */
        const __m512 dsc = _mm512_mul_ps(_mm512_set1_ps(h2f(b + 208)),
                                         _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 192)))));
        for (int t = 0; t < T; t++)
            corr[t] = _mm512_fmadd_ps(dsc, _mm512_loadu_ps(a->sx16 + t * 2 * nbx + 16 * i), corr[t]);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            __m256i A = _mm256_loadu_si256((const __m256i *)ql), B = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i H = _mm256_loadu_si256((const __m256i *)qh);
            __m256i e0 = _mm256_or_si256(_mm256_and_si256(A, m4), _mm256_slli_epi16(_mm256_and_si256(H, m3), 4));
            __m256i e1 = _mm256_or_si256(_mm256_and_si256(B, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 2), m3), 4));
            __m256i e2 = _mm256_or_si256(nib_hi(A), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 4), m3), 4));
            __m256i e3 = _mm256_or_si256(nib_hi(B), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 6), m3), 4));
            for (int k = 0; k < 2; k++) {            /* elements 64k .. 64k+63 of the half */
                __m512i u = k ? cat(e2, e3) : cat(e0, e1);
                int64_t c = 256 * i + 128 * h + 64 * k;
                dot64(s, T, u, c, _mm512_permutexvar_ps(rep4[2 * h + k], dsc), a->dx + c / 32, nbx);
            }
        }
    }
    for (int t = 0; t < T; t++) s->corr[t] -= 32 * _mm512_reduce_add_ps(corr[t]);
}

INLINE void run_row_int(DType dt, const uint8_t *row, const QAct *a, const int T, float *out) {
    Acc s;
    s.q = a->q;
    s.ldq = a->cols;
    for (int t = 0; t < 4; t++) { s.acc[t] = _mm512_setzero_ps(); s.corr[t] = 0; }
    int64_t nb = a->cols / dtype_block(dt);
    switch (dt) {
    case DT_Q8_0: run32(DT_Q8_0, row, nb, &s, T, a); break;
    case DT_Q4_0: run32(DT_Q4_0, row, nb, &s, T, a); break;
    case DT_Q4_1: run32(DT_Q4_1, row, nb, &s, T, a); break;
    case DT_Q4_K: run_k(DT_Q4_K, row, nb, &s, T, a); break;
    case DT_Q5_K: run_k(DT_Q5_K, row, nb, &s, T, a); break;
    case DT_Q6_K: run_q6k(row, nb, &s, T, a); break;
    default: break;
    }
    for (int t = 0; t < T; t++) out[t] = _mm512_reduce_add_ps(s.acc[t]) + s.corr[t];
}

/* batch 1, four rows: each row's sums as run_row_int's, the four reductions at the end
 * together (independent chains), no per-row call */
static void rows4_1(DType dt, const uint8_t *const rows[4], const QAct *a, float *out) {
    Acc s[4];
    int64_t nb = a->cols / dtype_block(dt);
    for (int r = 0; r < 4; r++) {
        s[r].q = a->q;
        s[r].ldq = a->cols;
        s[r].acc[0] = _mm512_setzero_ps();
        s[r].corr[0] = 0;
        switch (dt) {
        case DT_Q8_0: run32(DT_Q8_0, rows[r], nb, &s[r], 1, a); break;
        case DT_Q4_0: run32(DT_Q4_0, rows[r], nb, &s[r], 1, a); break;
        case DT_Q4_1: run32(DT_Q4_1, rows[r], nb, &s[r], 1, a); break;
        case DT_Q4_K: run_k(DT_Q4_K, rows[r], nb, &s[r], 1, a); break;
        case DT_Q5_K: run_k(DT_Q5_K, rows[r], nb, &s[r], 1, a); break;
        case DT_Q6_K: run_q6k(rows[r], nb, &s[r], 1, a); break;
        default: break;
        }
    }
    for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(s[r].acc[0]) + s[r].corr[0];
}

#define ROW_T(N) static void row_##N(DType dt, const uint8_t *row, const QAct *a, float *out) { run_row_int(dt, row, a, N, out); }
ROW_T(1)
ROW_T(2)
ROW_T(3)
ROW_T(4)
#endif

void qdot_row_int(DType dt, const void *row, const QAct *a, int T, float *acc) {
#ifdef HAVE_VNNI
    for (int t0 = 0; t0 < T; t0 += 4) {
        int n = T - t0 < 4 ? T - t0 : 4;
        QAct sub = *a;                       /* activation rows t0 .. t0+n-1 */
        int64_t nbx = a->cols / 32;
        if (a->q) {
            sub.q = a->q + t0 * a->cols;
            sub.dx = a->dx + t0 * nbx;
            sub.sx = a->sx + t0 * nbx;
            sub.sx16 = a->sx16 + t0 * 2 * nbx;
        }
        if (a->qk) {
            sub.qk = a->qk + t0 * a->cols;
            sub.dk = a->dk + t0 * (a->cols / 256);
            sub.bk = a->bk + t0 * nbx;
        }
        switch (n) {
        case 1: row_1(dt, row, &sub, acc + t0); break;
        case 2: row_2(dt, row, &sub, acc + t0); break;
        case 3: row_3(dt, row, &sub, acc + t0); break;
        default: row_4(dt, row, &sub, acc + t0); break;
        }
    }
#else
    qdot_row_int_ref(dt, row, a, T, acc);
#endif
}

void qdot_rows4_int(DType dt, const void *const rows[4], const QAct *a, float *out) {
#ifdef HAVE_VNNI
    rows4_1(dt, (const uint8_t *const *)rows, a, out);
#else
    for (int r = 0; r < 4; r++) qdot_row_int_ref(dt, rows[r], a, 1, out + r);
#endif
}

static int products = -1;       /* -1: not decided yet */

int qdot_int8_products(void) {
    if (products < 0) {
        const char *e = getenv("EFFBENCH_PRODUCTS");
        products = e && (!strcmp(e, "q8") || !strcmp(e, "low"));
    }
    return products;
}

void qdot_set_products(int mode) { products = mode < 0 ? -1 : mode != 0; }

const char *qdot_int_isa(void) {
#ifdef HAVE_VNNI
    return "avx512-vnni";
#else
    return "c";
#endif
}
