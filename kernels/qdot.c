/*
 * qdot.c - weight rows in their stored type times float32 activations (qdot.h).
 *
 * One row at a time, block by block: a block is decoded into float vectors in registers
 * (VL lanes: 16 with AVX-512, 8 with AVX2) and each vector is either multiplied into
 * the running sums of T activation rows (a product) or stored (a widening). The decoders
 * take the layouts quant.c documents; per vector:
 *
 *   BF16   the 16 bits shifted into the top of a float
 *   F16    vcvtph2ps
 *   F8     sign and the 7 other bits placed at bits 31 and 26..20 of a float, times
 *          2^120: exact for normals and subnormals alike (NaN codes never reach here:
 *          the loader refuses them); times the row's block scale
 *   Q8_0   int8 widened, converted, times d
 *   Q4_0   nibbles widened: (q - 8) * d        Q4_1   q * d + m
 *   Q4_K   q * (d*sc) - (dmin*mn) per sub-block of 32; Q5_K adds bit 4 from qh
 *   Q6_K   ((ql nibble | 2 bits of qh << 4) - 32) * (d*sc) per sub-block of 16
 *
 * Products keep two accumulators per activation row (vectors alternate between them)
 * so a batch-1 product is not bound by the latency of one chain of FMAs, and the number
 * of activation rows is a compile-time constant (1 to 4; more are done 4 at a time) so
 * the sums stay in registers.
 */
#include "qdot.h"
#include "quant.h"

#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__) && defined(__F16C__))
#include <immintrin.h>
#endif

/* ---- the plain C twins ------------------------------------------------------------------ */
static float elem(DType dt, const uint8_t *row, const float *srow, int64_t i) {
    switch (dt) {
    case DT_F32: { float f; memcpy(&f, row + 4 * i, 4); return f; }
    case DT_BF16: return bf16_to_f32((uint16_t)(row[2 * i] | row[2 * i + 1] << 8));
    case DT_F16: return f16_to_f32((uint16_t)(row[2 * i] | row[2 * i + 1] << 8));
    case DT_F8_E4M3: return f8e4m3_to_f32(row[i]) * srow[i / 128];
    default: return 0;
    }
}

void qdot_widen_ref(DType dt, const void *row, const float *srow, int64_t cols, float *dst) {
    if (dtype_block(dt) > 1) {
        ggml_dequant(dtype_ggml(dt), row, dst, cols);
        return;
    }
    for (int64_t i = 0; i < cols; i++) dst[i] = elem(dt, row, srow, i);
}

void qdot_row_ref(DType dt, const void *row, const float *srow, int64_t cols, const float *x, int64_t ldx, int T,
                  float *acc) {
    float buf[256];               /* a multiple of every block size and of the F8 scale blocks */
    for (int t = 0; t < T; t++) acc[t] = 0;
    for (int64_t c0 = 0; c0 < cols; c0 += 256) {
        int64_t n = cols - c0 < 256 ? cols - c0 : 256;
        qdot_widen_ref(dt, (const uint8_t *)row + dtype_bytes(dt, c0), srow ? srow + c0 / 128 : NULL, n, buf);
        for (int t = 0; t < T; t++) {
            const float *xt = x + t * ldx + c0;
            float s = 0;
            for (int64_t i = 0; i < n; i++) s += buf[i] * xt[i];
            acc[t] += s;
        }
    }
}

/* ---- vectors ------------------------------------------------------------------------------ */
#if defined(__AVX512F__)
#define ISA "avx512"
#define VL 16
typedef __m512 VF;
typedef __m512i VI;
static inline VI ld_u8(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }
static inline VI ld_i8(const uint8_t *p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)); }
static inline VI ld_u16(const uint8_t *p) { return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)); }
static inline VF ld_f16(const uint8_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
#define vi_and(a, k) _mm512_and_si512(a, _mm512_set1_epi32(k))
#define vi_or(a, b) _mm512_or_si512(a, b)
#define vi_srl(a, n) _mm512_srli_epi32(a, n)
#define vi_sll(a, n) _mm512_slli_epi32(a, n)
#define vi_sub(a, k) _mm512_sub_epi32(a, _mm512_set1_epi32(k))
#define vf_cvt(a) _mm512_cvtepi32_ps(a)
#define vf_cast(a) _mm512_castsi512_ps(a)
#define vf_set1(f) _mm512_set1_ps(f)
#define vf_zero() _mm512_setzero_ps()
#define vf_fma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define vf_mul(a, b) _mm512_mul_ps(a, b)
#define vf_add(a, b) _mm512_add_ps(a, b)
#define vf_load(p) _mm512_loadu_ps(p)
#define vf_store(p, a) _mm512_storeu_ps(p, a)
static inline float vf_sum(VF a) { return _mm512_reduce_add_ps(a); }
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define ISA "avx2"
#define VL 8
typedef __m256 VF;
typedef __m256i VI;
static inline VI ld_u8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
static inline VI ld_i8(const uint8_t *p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
static inline VI ld_u16(const uint8_t *p) { return _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)); }
static inline VF ld_f16(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
#define vi_and(a, k) _mm256_and_si256(a, _mm256_set1_epi32(k))
#define vi_or(a, b) _mm256_or_si256(a, b)
#define vi_srl(a, n) _mm256_srli_epi32(a, n)
#define vi_sll(a, n) _mm256_slli_epi32(a, n)
#define vi_sub(a, k) _mm256_sub_epi32(a, _mm256_set1_epi32(k))
#define vf_cvt(a) _mm256_cvtepi32_ps(a)
#define vf_cast(a) _mm256_castsi256_ps(a)
#define vf_set1(f) _mm256_set1_ps(f)
#define vf_zero() _mm256_setzero_ps()
#define vf_fma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define vf_mul(a, b) _mm256_mul_ps(a, b)
#define vf_add(a, b) _mm256_add_ps(a, b)
#define vf_load(p) _mm256_loadu_ps(p)
#define vf_store(p, a) _mm256_storeu_ps(p, a)
static inline float vf_sum(VF a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

#ifdef VL
#define INLINE static inline __attribute__((always_inline))

static inline VF ld_bf16(const uint8_t *p) { return vf_cast(vi_sll(ld_u16(p), 16)); }
static inline VF ld_f8(const uint8_t *p) {
    VI v = ld_u8(p);
    VI bits = vi_or(vi_sll(vi_and(v, 0x80), 24), vi_sll(vi_and(v, 0x7f), 20));
    return vf_mul(vf_cast(bits), vf_set1(0x1p120f));
}
static inline float rd_f16(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }   /* F16C */

/* Where decoded vectors go: T = 0 stores them to dst (widening); T = 1..4 multiplies
 * them into a[t][k] with activation row t (k: which of the two accumulators). */
typedef struct {
    const float *x;
    int64_t ldx;
    float *dst;
    VF a[4][2];
} Sink;

INLINE void put(Sink *s, const int T, VF w, int64_t c, int k) {
    if (T == 0) { vf_store(s->dst + c, w); return; }
    for (int t = 0; t < T; t++) s->a[t][k] = vf_fma(w, vf_load(s->x + t * s->ldx + c), s->a[t][k]);
}

/* Q4_K / Q5_K scales: d*sc[j] and -(dmin*mn[j]) for the 8 sub-blocks (quant.c's k_scales) */
INLINE void k_scales(const uint8_t *b, float dsc[8], float nmn[8]) {
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *s = b + 4;
    for (int j = 0; j < 4; j++) {
        dsc[j] = d * (float)(s[j] & 0x3F);
        nmn[j] = -(dmin * (float)(s[j + 4] & 0x3F));
        dsc[j + 4] = d * (float)((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
        nmn[j + 4] = -(dmin * (float)((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30)));
    }
}

INLINE void blk_q8_0(const uint8_t *b, int64_t c, Sink *s, const int T) {
    VF d = vf_set1(rd_f16(b));
    for (int l = 0; l < 32; l += VL) put(s, T, vf_mul(vf_cvt(ld_i8(b + 2 + l)), d), c + l, (l / VL) & 1);
}

INLINE void blk_q4_0(const uint8_t *b, int64_t c, Sink *s, const int T) {
    VF d = vf_set1(rd_f16(b));
    for (int l = 0; l < 16; l += VL) {
        VI q = ld_u8(b + 2 + l);
        put(s, T, vf_mul(vf_cvt(vi_sub(vi_and(q, 0x0F), 8)), d), c + l, 0);
        put(s, T, vf_mul(vf_cvt(vi_sub(vi_srl(q, 4), 8)), d), c + 16 + l, 1);
    }
}

INLINE void blk_q4_1(const uint8_t *b, int64_t c, Sink *s, const int T) {
    VF d = vf_set1(rd_f16(b)), m = vf_set1(rd_f16(b + 2));
    for (int l = 0; l < 16; l += VL) {
        VI q = ld_u8(b + 4 + l);
        put(s, T, vf_fma(vf_cvt(vi_and(q, 0x0F)), d, m), c + l, 0);
        put(s, T, vf_fma(vf_cvt(vi_srl(q, 4)), d, m), c + 16 + l, 1);
    }
}

INLINE void blk_q4_k(const uint8_t *b, int64_t c, Sink *s, const int T) {
    float dsc[8], nmn[8];
    k_scales(b, dsc, nmn);
    const uint8_t *qs = b + 16;
    for (int g = 0; g < 4; g++, qs += 32, c += 64) {
        VF d1 = vf_set1(dsc[2 * g]), m1 = vf_set1(nmn[2 * g]), d2 = vf_set1(dsc[2 * g + 1]), m2 = vf_set1(nmn[2 * g + 1]);
        for (int l = 0; l < 32; l += VL) {
            VI q = ld_u8(qs + l);
            put(s, T, vf_fma(vf_cvt(vi_and(q, 0x0F)), d1, m1), c + l, 0);
            put(s, T, vf_fma(vf_cvt(vi_srl(q, 4)), d2, m2), c + 32 + l, 1);
        }
    }
}

INLINE void blk_q5_k(const uint8_t *b, int64_t c, Sink *s, const int T) {
    float dsc[8], nmn[8];
    k_scales(b, dsc, nmn);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int g = 0; g < 4; g++, qs += 32, c += 64) {
        VF d1 = vf_set1(dsc[2 * g]), m1 = vf_set1(nmn[2 * g]), d2 = vf_set1(dsc[2 * g + 1]), m2 = vf_set1(nmn[2 * g + 1]);
        for (int l = 0; l < 32; l += VL) {
            VI q = ld_u8(qs + l), h = ld_u8(qh + l);
            VI q1 = vi_or(vi_and(q, 0x0F), vi_sll(vi_and(vi_srl(h, 2 * g), 1), 4));
            VI q2 = vi_or(vi_srl(q, 4), vi_sll(vi_and(vi_srl(h, 2 * g + 1), 1), 4));
            put(s, T, vf_fma(vf_cvt(q1), d1, m1), c + l, 0);
            put(s, T, vf_fma(vf_cvt(q2), d2, m2), c + 32 + l, 1);
        }
    }
}

INLINE void blk_q6_k(const uint8_t *b, int64_t c, Sink *s, const int T) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = rd_f16(b + 208);
    for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, c += 128) {
        for (int l = 0; l < 32; l += VL) {
            VI a = ld_u8(ql + l), bb = ld_u8(ql + 32 + l), hb = ld_u8(qh + l);
            int k = l >> 4;
            VI q0 = vi_sub(vi_or(vi_and(a, 0x0F), vi_sll(vi_and(hb, 0x03), 4)), 32);
            VI q1 = vi_sub(vi_or(vi_and(bb, 0x0F), vi_sll(vi_and(vi_srl(hb, 2), 0x03), 4)), 32);
            VI q2 = vi_sub(vi_or(vi_srl(a, 4), vi_sll(vi_and(vi_srl(hb, 4), 0x03), 4)), 32);
            VI q3 = vi_sub(vi_or(vi_srl(bb, 4), vi_sll(vi_srl(hb, 6), 4)), 32);
            put(s, T, vf_mul(vf_cvt(q0), vf_set1(d * (float)sc[k])), c + l, 0);
            put(s, T, vf_mul(vf_cvt(q1), vf_set1(d * (float)sc[k + 2])), c + 32 + l, 1);
            put(s, T, vf_mul(vf_cvt(q2), vf_set1(d * (float)sc[k + 4])), c + 64 + l, 0);
            put(s, T, vf_mul(vf_cvt(q3), vf_set1(d * (float)sc[k + 6])), c + 96 + l, 1);
        }
    }
}

/* Columns [0, cols) of a row: block types whole blocks, plain types whole vectors. */
INLINE void run_row(DType dt, const uint8_t *row, const float *srow, int64_t cols, Sink *s, const int T) {
    switch (dt) {
    case DT_Q8_0: for (int64_t i = 0; i < cols / 32; i++) blk_q8_0(row + 34 * i, 32 * i, s, T); break;
    case DT_Q4_0: for (int64_t i = 0; i < cols / 32; i++) blk_q4_0(row + 18 * i, 32 * i, s, T); break;
    case DT_Q4_1: for (int64_t i = 0; i < cols / 32; i++) blk_q4_1(row + 20 * i, 32 * i, s, T); break;
    case DT_Q4_K: for (int64_t i = 0; i < cols / 256; i++) blk_q4_k(row + 144 * i, 256 * i, s, T); break;
    case DT_Q5_K: for (int64_t i = 0; i < cols / 256; i++) blk_q5_k(row + 176 * i, 256 * i, s, T); break;
    case DT_Q6_K: for (int64_t i = 0; i < cols / 256; i++) blk_q6_k(row + 210 * i, 256 * i, s, T); break;
    /* plain types: two vectors a turn, one to each accumulator (the accumulator must be
     * a constant for the sums to stay in registers) */
#define PLAIN(LOAD)                                                       \
    {                                                                     \
        int64_t c = 0;                                                    \
        for (; c + 2 * VL <= cols; c += 2 * VL) {                         \
            put(s, T, LOAD(c), c, 0);                                     \
            put(s, T, LOAD(c + VL), c + VL, 1);                           \
        }                                                                 \
        if (c < cols) put(s, T, LOAD(c), c, 0);                           \
    }
#define LD_BF16(c) ld_bf16(row + 2 * (c))
#define LD_F16(c) ld_f16(row + 2 * (c))
#define LD_F8(c) vf_mul(ld_f8(row + (c)), vf_set1(srow[(c) / 128]))
#define LD_F32(c) vf_load((const float *)(const void *)(row + 4 * (c)))
    case DT_BF16: PLAIN(LD_BF16) break;
    case DT_F16: PLAIN(LD_F16) break;
    case DT_F8_E4M3: PLAIN(LD_F8) break;
    case DT_F32: PLAIN(LD_F32) break;
    default: break;
    }
}

#define DOT_T(N)                                                                                              \
    static void dot_##N(DType dt, const uint8_t *row, const float *srow, int64_t cols, const float *x,        \
                        int64_t ldx, float *acc) {                                                            \
        Sink s = { x, ldx, NULL, { { vf_zero(), vf_zero() } } };                                              \
        for (int t = 0; t < N; t++) s.a[t][0] = s.a[t][1] = vf_zero();                                        \
        run_row(dt, row, srow, cols, &s, N);                                                                  \
        for (int t = 0; t < N; t++) acc[t] = vf_sum(vf_add(s.a[t][0], s.a[t][1]));                            \
    }
DOT_T(1)
DOT_T(2)
DOT_T(3)
DOT_T(4)

/* Four rows, one activation row: the rows' blocks in turn, so each activation vector
 * loaded serves four rows (one row at a time reloads x from L2 for every row, and those
 * loads hold back the weight stream). Each row's sums are formed exactly as dot_1 forms
 * them. */
#define R4 4
INLINE void run_rows4(DType dt, const uint8_t *const *rows, const float *const *srows, int64_t cols, Sink *s) {
    switch (dt) {
#define BLOCKS(FN, BB, BE)                                                \
    {                                                                     \
        for (int64_t i = 0; i < cols / (BE); i++)                         \
            for (int k = 0; k < R4; k++) FN(rows[k] + (BB) * i, (BE) * i, &s[k], 1); \
    }
    case DT_Q8_0: BLOCKS(blk_q8_0, 34, 32) break;
    case DT_Q4_0: BLOCKS(blk_q4_0, 18, 32) break;
    case DT_Q4_1: BLOCKS(blk_q4_1, 20, 32) break;
    case DT_Q4_K: BLOCKS(blk_q4_k, 144, 256) break;
    case DT_Q5_K: BLOCKS(blk_q5_k, 176, 256) break;
    case DT_Q6_K: BLOCKS(blk_q6_k, 210, 256) break;
#undef BLOCKS
#define PLAIN4(LOAD)                                                      \
    {                                                                     \
        int64_t c = 0;                                                    \
        for (; c + 2 * VL <= cols; c += 2 * VL)                           \
            for (int k = 0; k < R4; k++) {                                \
                const uint8_t *row = rows[k];                             \
                const float *srow = srows[k];                             \
                (void)srow;                                               \
                put(&s[k], 1, LOAD(c), c, 0);                             \
                put(&s[k], 1, LOAD(c + VL), c + VL, 1);                   \
            }                                                             \
        if (c < cols)                                                     \
            for (int k = 0; k < R4; k++) {                                \
                const uint8_t *row = rows[k];                             \
                const float *srow = srows[k];                             \
                (void)srow;                                               \
                put(&s[k], 1, LOAD(c), c, 0);                             \
            }                                                             \
    }
    case DT_BF16: PLAIN4(LD_BF16) break;
    case DT_F16: PLAIN4(LD_F16) break;
    case DT_F8_E4M3: PLAIN4(LD_F8) break;
    case DT_F32: PLAIN4(LD_F32) break;
    default: break;
    }
}

static void dot_rows4(DType dt, const uint8_t *const *rows, const float *const *srows, int64_t cols, const float *x,
                      float *acc) {
    Sink s[R4];
    for (int k = 0; k < R4; k++) {
        s[k].x = x;
        s[k].ldx = 0;
        s[k].dst = NULL;
        s[k].a[0][0] = s[k].a[0][1] = vf_zero();
    }
    run_rows4(dt, rows, srows, cols, s);
    for (int k = 0; k < R4; k++) acc[k] = vf_sum(vf_add(s[k].a[0][0], s[k].a[0][1]));
}
#endif

/* ---- entry points --------------------------------------------------------------------------- */
void qdot_row(DType dt, const void *row, const float *srow, int64_t cols, const float *x, int64_t ldx, int T,
              float *acc) {
#ifdef VL
    const uint8_t *r = row;
    int64_t nv = dtype_block(dt) > 1 ? cols : cols / VL * VL;    /* plain types: the tail in C below */
    for (int t0 = 0; t0 < T; t0 += 4) {
        int n = T - t0 < 4 ? T - t0 : 4;
        const float *xt = x + t0 * ldx;
        float *at = acc + t0;
        switch (n) {
        case 1: dot_1(dt, r, srow, nv, xt, ldx, at); break;
        case 2: dot_2(dt, r, srow, nv, xt, ldx, at); break;
        case 3: dot_3(dt, r, srow, nv, xt, ldx, at); break;
        default: dot_4(dt, r, srow, nv, xt, ldx, at); break;
        }
        for (int t = 0; t < n; t++)
            for (int64_t i = nv; i < cols; i++) at[t] += elem(dt, r, srow, i) * xt[t * ldx + i];
    }
#else
    qdot_row_ref(dt, row, srow, cols, x, ldx, T, acc);
#endif
}

void qdot_rows4(DType dt, const void *const rows[4], const float *const srows[4], int64_t cols, const float *x,
                float acc[4]) {
#ifdef VL
    int64_t nv = dtype_block(dt) > 1 ? cols : cols / VL * VL;
    const uint8_t *r[4] = { rows[0], rows[1], rows[2], rows[3] };
    dot_rows4(dt, r, srows, nv, x, acc);
    for (int k = 0; k < 4; k++)
        for (int64_t i = nv; i < cols; i++) acc[k] += elem(dt, r[k], srows[k], i) * x[i];
#else
    for (int k = 0; k < 4; k++) qdot_row_ref(dt, rows[k], srows[k], cols, x, 0, 1, &acc[k]);
#endif
}

void qdot_widen(DType dt, const void *row, const float *srow, int64_t cols, float *dst) {
#ifdef VL
    const uint8_t *r = row;
    int64_t nv = dtype_block(dt) > 1 ? cols : cols / VL * VL;
    Sink s = { NULL, 0, dst, { { vf_zero(), vf_zero() } } };
    run_row(dt, r, srow, nv, &s, 0);
    for (int64_t i = nv; i < cols; i++) dst[i] = elem(dt, r, srow, i);
#else
    qdot_widen_ref(dt, row, srow, cols, dst);
#endif
}

int64_t qdot_block_nonfinite(DType dt, const void *data, int64_t n) {
    int blk = dtype_block(dt);
    if (blk == 1) return 0;
    int64_t bb = (int64_t)dtype_bytes(dt, blk), bad = 0;
    int off0 = dt == DT_Q6_K ? 208 : 0, two = dt == DT_Q4_1 || dt == DT_Q4_K || dt == DT_Q5_K;
    const uint8_t *p = data;
    #pragma omp parallel for reduction(+:bad) if (n > 1 << 22)
    for (int64_t b = 0; b < n / blk; b++) {
        const uint8_t *s = p + b * bb + off0;
        int inf = (s[1] & 0x7c) == 0x7c || (two && (s[3] & 0x7c) == 0x7c);
        bad += inf ? blk : 0;
    }
    return bad;
}

const char *qdot_isa(void) {
#ifdef VL
    return ISA;
#else
    return "c";
#endif
}
