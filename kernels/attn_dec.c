/*
 * attn_dec.c - decode attention's two products over cached rows, float32 arithmetic.
 *
 * A decode step scores one token's queries (the `group` heads that share a KV head)
 * against every cached key and sums the values with the probabilities. Its matrices
 * are thin (group is 1-8 rows where they are used, a head 64-256 elements), and a BF16
 * cache would have to be widened into memory for SGEMM. These kernels read the cache
 * rows where they are (F32, or BF16 widened in registers: exact, the code is the
 * float's upper half) and keep the sums in registers:
 *   scores: sixteen positions a pass, each query's sixteen dot products summed
 *           across lanes together (sum16);
 *   values: four positions a pass, each 16-column chunk of the four rows loaded once
 *           and added into every query's output row.
 * Products are float32 and exact (the operands are float32 or widen to it exactly);
 * only the summation order differs from the plain C twins, which sum in double.
 */
#include "qdot.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define ATTN_DEC_AVX512 1
#include <immintrin.h>
#endif

void attn_dec_scores_ref(DType dt, const void *k, int64_t ldk, int n, int dk, const float *q, int group, float scale,
                         float *s, int lds) {
    for (int j = 0; j < n; j++)
        for (int x = 0; x < group; x++) {
            double acc = 0;
            for (int i = 0; i < dk; i++) {
                float kv = dt == DT_BF16 ? bf16_to_f32(((const uint16_t *)k)[(int64_t)j * ldk + i])
                                         : ((const float *)k)[(int64_t)j * ldk + i];
                acc += (double)q[(int64_t)x * dk + i] * kv;
            }
            s[(int64_t)x * lds + j] = (float)(acc * scale);
        }
}

void attn_dec_pv_ref(DType dt, const void *v, int64_t ldv, int n, int dv, const float *p, int ldp, int group,
                     float *o) {
    for (int x = 0; x < group; x++)
        for (int c = 0; c < dv; c++) {
            double acc = o[(int64_t)x * dv + c];
            for (int j = 0; j < n; j++) {
                float vv = dt == DT_BF16 ? bf16_to_f32(((const uint16_t *)v)[(int64_t)j * ldv + c])
                                         : ((const float *)v)[(int64_t)j * ldv + c];
                acc += (double)p[(int64_t)x * ldp + j] * vv;
            }
            o[(int64_t)x * dv + c] = (float)acc;
        }
}

#ifdef ATTN_DEC_AVX512
/* 16 elements of a row from column c (m: the lanes to load) as float32 */
static inline __attribute__((always_inline)) __m512 ld16(DType dt, const void *row, int c, __mmask16 m) {
    if (dt == DT_BF16) {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    return _mm512_maskz_loadu_ps(m, (const float *)row + c);
}

/* the sums of a[0..16) lane by lane, as one vector: lane j = sum of a[j]'s 16 lanes.
 * Pairs are interleaved and added (VUNPCKLPS/HPS, then VUNPCKLPD/HPD) to four vectors
 * whose 128-bit blocks hold four inputs' partial sums, and those blocks are transposed
 * and added (VSHUFF32X4): 45 instructions for 16 sums, none waiting on a long chain. */
static inline __attribute__((always_inline)) __m512 sum16(const __m512 *a) {
    __m512 t[8], u[4];
    for (int i = 0; i < 8; i++)
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++) {
        __m512d x = _mm512_castps_pd(t[2 * i]), y = _mm512_castps_pd(t[2 * i + 1]);
        u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    __m512 w0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88), _mm512_shuffle_f32x4(u[0], u[1], 0xdd));
    __m512 w1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88), _mm512_shuffle_f32x4(u[2], u[3], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w0, w1, 0x88), _mm512_shuffle_f32x4(w0, w1, 0xdd));
}

/* one query's scores against nj <= 16 key rows rb bytes apart from r0, times vs; J: nj
 * where it is 16 (the loops unrolled, the sums in registers), else 0 */
static inline __attribute__((always_inline)) __m512 dots16(DType dt, const char *r0, int64_t rb, int nj, const float *qx,
                                                          int full, __mmask16 tail, const int J) {
    __m512 acc[16];
    for (int j = 0; j < 16; j++) acc[j] = _mm512_setzero_ps();
    for (int c = 0; c <= full; c++) {
        __mmask16 m = c < full ? 0xffff : tail;
        if (!m) break;
        __m512 qc = _mm512_maskz_loadu_ps(m, qx + 16 * c);
        if (J == 16) {
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(qc, ld16(dt, r0 + j * rb, 16 * c, m), acc[j]);
        } else
            for (int j = 0; j < nj; j++) acc[j] = _mm512_fmadd_ps(qc, ld16(dt, r0 + j * rb, 16 * c, m), acc[j]);
    }
    return sum16(acc);
}

#define ATTN_DEC_WIDE 256       /* BF16 keys up to this wide are widened a tile at a time */
/* Sixteen positions a pass: for each query, one vector of partial products per
 * position (the tile's keys read from L1 after the first query), then sum16. */
void attn_dec_scores(DType dt, const void *k, int64_t ldk, int n, int dk, const float *q, int group, float scale,
                     float *s, int lds) {
    if (dt != DT_F32 && dt != DT_BF16) { attn_dec_scores_ref(dt, k, ldk, n, dk, q, group, scale, s, lds); return; }
    const int64_t rb = ldk * (dt == DT_BF16 ? 2 : 4);
    const __mmask16 tail = (__mmask16)((1u << (dk % 16)) - 1);
    const int full = dk / 16, ldt = (dk + 15) & ~15;
    const __m512 vs = _mm512_set1_ps(scale);
    float tile[16 * ATTN_DEC_WIDE] __attribute__((aligned(64)));   /* BF16: the tile's keys widened once for all queries */
    const int widen = dt == DT_BF16 && dk <= ATTN_DEC_WIDE;          /* longer keys: widened per query as read */
    for (int j0 = 0; j0 < n; j0 += 16) {
        const int nj = n - j0 < 16 ? n - j0 : 16;
        const char *r0 = (const char *)k + j0 * rb;
        int64_t trb = rb;
        DType tdt = dt;
        if (widen) {
            for (int j = 0; j < nj; j++)
                for (int c = 0; c <= full; c++) {
                    __mmask16 m = c < full ? 0xffff : tail;
                    if (m) _mm512_store_ps(tile + j * ldt + 16 * c, ld16(DT_BF16, r0 + j * rb, 16 * c, m));
                }
            r0 = (const char *)tile;
            trb = ldt * 4;
            tdt = DT_F32;
        }
        for (int x = 0; x < group; x++) {
            __m512 d = nj == 16 ? (tdt == DT_F32 ? dots16(DT_F32, r0, trb, 16, q + (int64_t)x * dk, full, tail, 16)
                                                 : dots16(DT_BF16, r0, trb, 16, q + (int64_t)x * dk, full, tail, 16))
                                : dots16(tdt, r0, trb, nj, q + (int64_t)x * dk, full, tail, 0);
            _mm512_mask_storeu_ps(s + (int64_t)x * lds + j0, (__mmask16)(nj == 16 ? 0xffff : (1u << nj) - 1), _mm512_mul_ps(d, vs));
        }
    }
}

void attn_dec_pv(DType dt, const void *v, int64_t ldv, int n, int dv, const float *p, int ldp, int group, float *o) {
    if (dt != DT_F32 && dt != DT_BF16) { attn_dec_pv_ref(dt, v, ldv, n, dv, p, ldp, group, o); return; }
    const int64_t rb = ldv * (dt == DT_BF16 ? 2 : 4);
    const char *base = v;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const char *r0 = base + j * rb, *r1 = r0 + rb, *r2 = r1 + rb, *r3 = r2 + rb;
        for (int c = 0; c < dv; c += 16) {
            __mmask16 m = dv - c >= 16 ? 0xffff : (__mmask16)((1u << (dv - c)) - 1);
            __m512 v0 = ld16(dt, r0, c, m), v1 = ld16(dt, r1, c, m), v2 = ld16(dt, r2, c, m), v3 = ld16(dt, r3, c, m);
            for (int x = 0; x < group; x++) {
                const float *px = p + (int64_t)x * ldp + j;
                float *ox = o + (int64_t)x * dv + c;
                __m512 acc = _mm512_maskz_loadu_ps(m, ox);
                acc = _mm512_fmadd_ps(_mm512_set1_ps(px[0]), v0, acc);
                acc = _mm512_fmadd_ps(_mm512_set1_ps(px[1]), v1, acc);
                acc = _mm512_fmadd_ps(_mm512_set1_ps(px[2]), v2, acc);
                acc = _mm512_fmadd_ps(_mm512_set1_ps(px[3]), v3, acc);
                _mm512_mask_storeu_ps(ox, m, acc);
            }
        }
    }
    for (; j < n; j++) {
        const char *r0 = base + j * rb;
        for (int c = 0; c < dv; c += 16) {
            __mmask16 m = dv - c >= 16 ? 0xffff : (__mmask16)((1u << (dv - c)) - 1);
            __m512 v0 = ld16(dt, r0, c, m);
            for (int x = 0; x < group; x++) {
                float *ox = o + (int64_t)x * dv + c;
                _mm512_mask_storeu_ps(ox, m, _mm512_fmadd_ps(_mm512_set1_ps(p[(int64_t)x * ldp + j]), v0, _mm512_maskz_loadu_ps(m, ox)));
            }
        }
    }
}
#else
/* without AVX-512 (BW, VL): the same products in plain float32 loops */
static inline float elem_f(DType dt, const void *r, int64_t i) {
    return dt == DT_BF16 ? bf16_to_f32(((const uint16_t *)r)[i]) : ((const float *)r)[i];
}
void attn_dec_scores(DType dt, const void *k, int64_t ldk, int n, int dk, const float *q, int group, float scale,
                     float *s, int lds) {
    for (int j = 0; j < n; j++)
        for (int x = 0; x < group; x++) {
            float acc = 0;
            for (int i = 0; i < dk; i++) acc += q[(int64_t)x * dk + i] * elem_f(dt, k, (int64_t)j * ldk + i);
            s[(int64_t)x * lds + j] = acc * scale;
        }
}
void attn_dec_pv(DType dt, const void *v, int64_t ldv, int n, int dv, const float *p, int ldp, int group, float *o) {
    for (int j = 0; j < n; j++)
        for (int x = 0; x < group; x++) {
            float px = p[(int64_t)x * ldp + j];
            for (int c = 0; c < dv; c++) o[(int64_t)x * dv + c] += px * elem_f(dt, v, (int64_t)j * ldv + c);
        }
}
#endif
