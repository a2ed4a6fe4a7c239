/*
 * quant.c - ggml weight types: names, block sizes, decoding to float32, and encoding
 * Q8_0, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K from it.
 *
 * The decoders reproduce gguf.quants of the gguf Python package (0.19.0): NumPy float32
 * arithmetic, the same operations in the same order, each product and sum rounded to
 * float32 on its own. For a block of QK elements (f16 scales widened exactly first):
 *
 *   Q8_0  (32, 34 B)   d, int8 q[32]                       y = (float)q * d
 *   Q4_0  (32, 18 B)   d, nibbles q (low half first)       y = d * (float)(q - 8)
 *   Q4_1  (32, 20 B)   d, m, nibbles q                     y = d * (float)q + m
 *   Q4_K  (256, 144 B) d, dmin, 12 B of 6-bit scales sc[8] and mins mn[8], 4-bit q
 *                      per sub-block j of 32:              y = (d * sc[j]) * q - (dmin * mn[j])
 *   Q5_K  (256, 176 B) as Q4_K with a fifth bit of q from qh[32] (bit j for sub-block j)
 *   Q6_K  (256, 210 B) ql[128], qh[64], int8 sc[16], d; q = (ql | qh << 4) - 32
 *                      per sub-block j of 16:              y = (d * sc[j]) * q
 *   F16, BF16, F32     widened exactly (F16 via f16_to_f32, BF16 via bf16_to_f32; F32
 *                      copied as bytes, so NaN payloads survive)
 *
 * Contraction of a*b+c into one fused multiply-add is switched off for this file (the
 * pragmas below): NumPy rounds the product before the sum. With finite f16 scales every
 * product here is exact in float32 (at most 11 + 7 + 6 significant bits) so a fused
 * form would give the same values, but the file does not rely on that. The encoders do
 * rely on it: their sums of products (make_qkx2_quants, make_qx_quants) would round
 * differently fused, and ggml's reference quantizers are matched as built unfused.
 *
 * The encoders (section "encoders" below) port llama.cpp's reference quantizers,
 * quantize_row_*_ref in ggml-quants.c, with the same float32 operations in the same
 * order, so they write the same bytes (tests/gen_quant_encode_refs.c made the blocks they
 * are tested against); ggml's importance-matrix quantizers are not ported.
 *
 * Block layouts follow ggml (ggml-common.h); sizes of every type ggml defines are in the
 * table below (gguf's GGML_QUANT_SIZES, plus Q2_0 from ggml.h). Not done here: the
 * other quantized types (named, sized and refused), and NaN payloads where two NaN
 * operands meet (only reachable with NaN scales, which no encoder writes).
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant.h"
#include "common.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- the type table ------------------------------------------------------------------- */
typedef struct {
    const char *name;            /* ggml's spelling; NULL: no type has this number */
    int block_elems;             /* elements per block */
    int block_bytes;             /* bytes per block */
    int supported;               /* 1: ggml_dequant decodes it */
} TypeInfo;

#define QK_K 256

static const TypeInfo types[GGML_TYPE_LIMIT] = {
    [0]  = { "F32",     1,   4,                                  1 },
    [1]  = { "F16",     1,   2,                                  1 },
    [2]  = { "Q4_0",    32,  2 + 16,                             1 },
    [3]  = { "Q4_1",    32,  2 + 2 + 16,                         1 },
    [6]  = { "Q5_0",    32,  2 + 4 + 16,                         0 },
    [7]  = { "Q5_1",    32,  2 + 2 + 4 + 16,                     0 },
    [8]  = { "Q8_0",    32,  2 + 32,                             1 },
    [9]  = { "Q8_1",    32,  4 + 4 + 32,                         0 },
    [10] = { "Q2_K",    QK_K, 2 + 2 + QK_K / 16 + QK_K / 4,      0 },
    [11] = { "Q3_K",    QK_K, 2 + QK_K / 4 + QK_K / 8 + 12,      0 },
    [12] = { "Q4_K",    QK_K, 2 + 2 + QK_K / 2 + 12,             1 },
    [13] = { "Q5_K",    QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12,  1 },
    [14] = { "Q6_K",    QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16, 1 },
    [15] = { "Q8_K",    QK_K, 4 + QK_K + QK_K / 8,               0 },
    [16] = { "IQ2_XXS", QK_K, 2 + QK_K / 4,                      0 },
    [17] = { "IQ2_XS",  QK_K, 2 + QK_K / 4 + QK_K / 32,          0 },
    [18] = { "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8,           0 },
    [19] = { "IQ1_S",   QK_K, 2 + QK_K / 8 + QK_K / 16,          0 },
    [20] = { "IQ4_NL",  32,  2 + 16,                             0 },
    [21] = { "IQ3_S",   QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4, 0 },
    [22] = { "IQ2_S",   QK_K, 2 + QK_K / 4 + QK_K / 16,          0 },
    [23] = { "IQ4_XS",  QK_K, 2 + 2 + QK_K / 2 + QK_K / 64,      0 },
    [24] = { "I8",      1,   1,                                  0 },
    [25] = { "I16",     1,   2,                                  0 },
    [26] = { "I32",     1,   4,                                  0 },
    [27] = { "I64",     1,   8,                                  0 },
    [28] = { "F64",     1,   8,                                  0 },
    [29] = { "IQ1_M",   QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32,  0 },
    [30] = { "BF16",    1,   2,                                  1 },
    [34] = { "TQ1_0",   QK_K, 2 + 4 * 13,                        0 },
    [35] = { "TQ2_0",   QK_K, 2 + 64,                            0 },
    [39] = { "MXFP4",   32,  1 + 16,                             0 },
    [40] = { "NVFP4",   64,  4 + 32,                             0 },
    [41] = { "Q1_0",    128, 2 + 16,                             0 },
    [42] = { "Q2_0",    64,  2 + 16,                             0 },
};

static const TypeInfo *type_info(int type) {
    if (type < 0 || type >= GGML_TYPE_LIMIT || !types[type].name) return NULL;
    return &types[type];
}

const char *ggml_type_name(int type) {
    const TypeInfo *t = type_info(type);
    return t ? t->name : NULL;
}

int ggml_type_supported(int type) {
    const TypeInfo *t = type_info(type);
    return t ? t->supported : 0;
}

void ggml_block(int type, int *block_elems, int *block_bytes) {
    const TypeInfo *t = type_info(type);
    if (block_elems) *block_elems = t ? t->block_elems : 0;
    if (block_bytes) *block_bytes = t ? t->block_bytes : 0;
}

int64_t ggml_row_bytes(int type, int64_t n) {
    const TypeInfo *t = type_info(type);
    if (!t || n < 0 || n % t->block_elems) return -1;
    return n / t->block_elems * t->block_bytes;
}

/* ---- decoders: one block each; y gets the block's elements ------------------------------ */
static inline float rd_f16(const uint8_t *p) { return f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Q8_0: d, qs[32] */
static void dequant_q8_0(const uint8_t *b, float *y) {
    const float d = rd_f16(b);
    const int8_t *q = (const int8_t *)(b + 2);
    for (int l = 0; l < 32; l++) y[l] = (float)q[l] * d;
}

/* Q4_0: d, qs[16]; element l is the low nibble of qs[l], element l+16 the high one */
static void dequant_q4_0(const uint8_t *b, float *y) {
    const float d = rd_f16(b);
    const uint8_t *qs = b + 2;
    for (int l = 0; l < 16; l++) {
        y[l]      = d * (float)((qs[l] & 0x0F) - 8);
        y[l + 16] = d * (float)((qs[l] >> 4) - 8);
    }
}

/* Q4_1: d, m, qs[16] */
static void dequant_q4_1(const uint8_t *b, float *y) {
    const float d = rd_f16(b), m = rd_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int l = 0; l < 16; l++) {
        float p0 = d * (float)(qs[l] & 0x0F), p1 = d * (float)(qs[l] >> 4);
        y[l]      = p0 + m;
        y[l + 16] = p1 + m;
    }
}

/* The 12 bytes of 6-bit scales and mins of Q4_K/Q5_K (gguf's Q4_K.get_scale_min):
 * bytes 0-3 hold sc[0..3] in bits 0-5, bytes 4-7 mn[0..3]; sc[4..7] and mn[4..7] take
 * their low 4 bits from bytes 8-11 (low and high nibble) and their top 2 bits from bits
 * 6-7 of bytes 0-3 and 4-7. d*sc and dmin*mn are rounded to float32 here, as NumPy does. */
static void k_scales(const uint8_t *b, float dsc[8], float dmn[8]) {
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *s = b + 4;
    for (int j = 0; j < 4; j++) {
        int sc_lo = s[j] & 0x3F, mn_lo = s[j + 4] & 0x3F;
        int sc_hi = (s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30);
        int mn_hi = (s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30);
        dsc[j] = d * (float)sc_lo;     dmn[j] = dmin * (float)mn_lo;
        dsc[j + 4] = d * (float)sc_hi; dmn[j + 4] = dmin * (float)mn_hi;
    }
}

/* Q4_K: d, dmin, scales[12], qs[128]; group g of 64 elements reads qs[32g..32g+31]:
 * low nibbles are sub-block 2g, high nibbles sub-block 2g+1 */
static void dequant_q4_k(const uint8_t *b, float *y) {
    float dsc[8], dmn[8];
    k_scales(b, dsc, dmn);
    const uint8_t *qs = b + 16;
    for (int g = 0; g < 4; g++, qs += 32, y += 64) {
        const float d1 = dsc[2 * g], m1 = dmn[2 * g], d2 = dsc[2 * g + 1], m2 = dmn[2 * g + 1];
        for (int l = 0; l < 32; l++) {
            float p1 = d1 * (float)(qs[l] & 0x0F), p2 = d2 * (float)(qs[l] >> 4);
            y[l]      = p1 - m1;
            y[l + 32] = p2 - m2;
        }
    }
}

/* Q5_K: d, dmin, scales[12], qh[32], qs[128]; as Q4_K, and bit j of qh[l] is bit 4 of
 * element l of sub-block j */
static void dequant_q5_k(const uint8_t *b, float *y) {
    float dsc[8], dmn[8];
    k_scales(b, dsc, dmn);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int g = 0; g < 4; g++, qs += 32, y += 64) {
        const int j1 = 2 * g, j2 = 2 * g + 1;
        const float d1 = dsc[j1], m1 = dmn[j1], d2 = dsc[j2], m2 = dmn[j2];
        for (int l = 0; l < 32; l++) {
            int q1 = (qs[l] & 0x0F) | (((qh[l] >> j1) & 1) << 4);
            int q2 = (qs[l] >> 4) | (((qh[l] >> j2) & 1) << 4);
            float p1 = d1 * (float)q1, p2 = d2 * (float)q2;
            y[l]      = p1 - m1;
            y[l + 32] = p2 - m2;
        }
    }
}

/* Q6_K: ql[128], qh[64], scales[16] (int8), d. Half h (128 elements) reads ql[64h..64h+63]
 * and qh[32h..32h+31]; within it, for l = 0..31:
 *   element l       low nibble of ql[l],      bits 0-1 of qh[l]
 *   element l + 32  low nibble of ql[l + 32], bits 2-3 of qh[l]
 *   element l + 64  high nibble of ql[l],     bits 4-5 of qh[l]
 *   element l + 96  high nibble of ql[l + 32], bits 6-7 of qh[l]
 * and element i of the block uses scales[i / 16]. */
static void dequant_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = rd_f16(b + 208);
    float ds[16];
    for (int j = 0; j < 16; j++) ds[j] = d * (float)sc[j];
    for (int h = 0; h < 2; h++, ql += 64, qh += 32, y += 128) {
        const float *s = ds + 8 * h;
        for (int l = 0; l < 32; l++) {
            int q0 = ((ql[l]      & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q1 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q2 = ((ql[l]      >> 4)   | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q3 = ((ql[l + 32] >> 4)   | (((qh[l] >> 6) & 3) << 4)) - 32;
            int k = l >> 4;
            y[l]      = s[k]     * (float)q0;
            y[l + 32] = s[k + 2] * (float)q1;
            y[l + 64] = s[k + 4] * (float)q2;
            y[l + 96] = s[k + 6] * (float)q3;
        }
    }
}

/* ---- encoders: llama.cpp's reference quantizers ------------------------------------------
 * Ports of quantize_row_{q8_0,q4_0,q4_1,q4_K,q5_K,q6_K}_ref and their helpers
 * (nearest_int, make_qkx2_quants, make_qx_quants) from ggml-quants.c: the same float32
 * operations in the same order, so the bytes match. Each encoder takes one block of x and
 * writes one packed block at b; all scratch is on the stack. */

/* Round to the nearest integer, ties to even, by adding 1.5 * 2^23 and reading the low
 * mantissa bits (ggml's trick; exact for |v| <= 2^22, and for anything else it returns
 * whatever those bits say, as ggml does with assertions off, NaN giving 0). */
static inline int nearest_int(float v) {
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline void wr_f16(uint8_t *p, float f) {
    uint16_t h = f32_to_f16(f);                    /* round to nearest even, as ggml */
    p[0] = (uint8_t)(h & 0xFF);
    p[1] = (uint8_t)(h >> 8);
}

#define GROUP_MAX_EPS 1e-15f                        /* ggml: below this a group is all zero */

/* ggml's (int8_t)v for a float v: truncation toward zero. Out of int32 range (and NaN)
 * that is undefined in C; ggml's bytes there are what x86-64 does (cvttss2si gives
 * INT32_MIN, whose low byte is 0), and this does the same on purpose. Reached when a
 * block's scale is a float32 subnormal so 1/d overflows to infinity (|x| near 1e-43). */
static inline int8_t trunc_i8(float v) {
    int32_t i = v > -2147483904.f && v < 2147483648.f ? (int32_t)v : INT32_MIN;
    return (int8_t)(uint8_t)(i & 0xFF);
}

/* Q8_0: d = max|x| / 127, q = round(x / d) (half away from zero) */
static void quant_q8_0(const float *x, uint8_t *b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);   /* ggml's MAX */
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    int8_t *q = (int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) q[j] = trunc_i8(roundf(x[j] * id));
}

/* Q4_0: d = -m / 8 where m is the element of largest magnitude (the first one, on a tie),
 * q = min(15, trunc(x / d + 8.5)), so m itself maps to q = 0 exactly */
static void quant_q4_0(const float *x, uint8_t *b) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    for (int j = 0; j < 16; j++) {
        const float x0 = x[j] * id, x1 = x[16 + j] * id;
        const int8_t t0 = trunc_i8(x0 + 8.5f), t1 = trunc_i8(x1 + 8.5f);
        const uint8_t q0 = (uint8_t)(t0 < 15 ? t0 : 15), q1 = (uint8_t)(t1 < 15 ? t1 : 15);
        b[2 + j] = (uint8_t)(q0 | q1 << 4);
    }
}

/* Q4_1: m = min x, d = (max x - min x) / 15, q = min(15, trunc((x - m) / d + 0.5)) */
static void quant_q4_1(const float *x, uint8_t *b) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    wr_f16(b + 2, min);
    for (int j = 0; j < 16; j++) {
        const float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
        const int8_t t0 = trunc_i8(x0 + 0.5f), t1 = trunc_i8(x1 + 0.5f);
        const uint8_t q0 = (uint8_t)(t0 < 15 ? t0 : 15), q1 = (uint8_t)(t1 < 15 ? t1 : 15);
        b[4 + j] = (uint8_t)(q0 | q1 << 4);
    }
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ggml's make_qkx2_quants (use_mad false): fits x[n] ~ scale * L - min with L in 0..nmax,
 * minimising the weighted squared error. Starts from the min/max fit, then tries
 * nstep + 1 scales (nmax + rmin + rdelta*is) / (max - min), each refined by weighted least
 * squares for scale and min, keeping the best. Returns the scale, *the_min the (non-negative)
 * min; L gets the levels. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, float rmin, float rdelta, int nstep) {
    uint8_t Laux[32];
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)clampi(l, 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ggml's make_qx_quants with rmse_type 1 and no importance weights (the only use, Q6_K):
 * fits x[n] ~ scale * l with l in -nmax..nmax-1, weighting each element by x^2. Tries
 * iscale = -(nmax + 0.1*is) / m for is = -9..9 (m the element of largest magnitude), each
 * refined by least squares, keeping the best. Returns the scale; L gets l + nmax. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L, int sweep) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {                     /* all zero */
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9 && sweep; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q4_K and Q5_K (nmax 15 or 31): each sub-block j of 32 gets a scale and min from
 * make_qkx2_quants, weighted by sqrt(mean x^2) + |x|; the 8 scales and 8 mins are then
 * quantized to 6 bits against their largest (d = max_scale / 63, dmin = max_min / 63),
 * and the elements requantized with the rounded d*sc and dmin*mn (a sub-block whose d*sc
 * is 0 keeps its first levels). L gets the 256 levels; scales (12 bytes, the packing
 * k_scales reads) and d, dmin are written into b. */
static void quant_k_levels(const float *x, int nmax, float rmin, int nstep, uint8_t *b, uint8_t L[QK_K]) {
    float mins[8], scales[8], weights[32];
    float max_scale = 0, max_min = 0;             /* as the min is subtracted, scales are >= 0 */
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    uint8_t *s = b + 4;
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (uint8_t)((ls & 0xF) | (lm & 0xF) << 4);
            s[j - 4] |= (uint8_t)((ls >> 4) << 6);
            s[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    wr_f16(b, max_scale / 63.f);
    wr_f16(b + 2, max_min / 63.f);
    const float d_all = rd_f16(b), dmin_all = rd_f16(b + 2);
    for (int j = 0; j < 8; j++) {
        int sc, m;                                  /* get_scale_min_k4 */
        if (j < 4) { sc = s[j] & 63; m = s[j + 4] & 63; }
        else { sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4); m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
        const float d = d_all * sc;
        if (!d) continue;
        const float dm = dmin_all * m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] = (uint8_t)clampi(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
    }
}

/* Q4_K: levels as above (rmin -1, 21 steps); group g of 64 packs sub-block 2g in the low
 * nibbles of qs[32g..32g+31] and sub-block 2g+1 in the high ones */
static void quant_q4_k(const float *x, uint8_t *b, int fast) {
    uint8_t L[QK_K];
    memset(b, 0, 144);
    quant_k_levels(x, 15, -1.f, fast ? 0 : 20, b, L);
    uint8_t *q = b + 16;
    for (int j = 0; j < QK_K; j += 64, q += 32)
        for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
}

/* Q5_K: levels as above (rmin -0.5, 16 steps); the low 4 bits pack as Q4_K, bit 4 of
 * element l of sub-block j goes to bit j of qh[l] */
static void quant_q5_k(const float *x, uint8_t *b, int fast) {
    uint8_t L[QK_K];
    memset(b, 0, 176);
    quant_k_levels(x, 31, -0.5f, fast ? 0 : 15, b, L);
    uint8_t *qh = b + 16, *ql = b + 48;
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
            if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
            ql[j] = (uint8_t)(l1 | l2 << 4);
        }
    }
}

/* Q6_K: each sub-block of 16 gets a scale from make_qx_quants(nmax 32); the 16 scales are
 * quantized to int8 against the one of largest magnitude (d = -that / 128, so it maps to
 * -128 and the rest clip at 127), then the elements requantized to -32..31 with the
 * rounded d*sc (a sub-block whose d*sc is 0 keeps its first levels). A block whose scales
 * are all below GROUP_MAX_EPS is all zero bytes. Packing as dequant_q6_k reads it. */
static void quant_q6_k(const float *x, uint8_t *b, int fast) {
    int8_t L[QK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ib++) {
        const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, !fast);
        scales[ib] = scale;
        const float abs_scale = fabsf(scale);
        if (abs_scale > max_abs_scale) { max_abs_scale = abs_scale; max_scale = scale; }
    }
    memset(b, 0, 210);
    if (max_abs_scale < GROUP_MAX_EPS) return;      /* d = +0 too */
    uint8_t *ql = b, *qh = b + 128, *sc = b + 192;
    float iscale = -128.f / max_scale;
    wr_f16(b + 208, 1 / iscale);
    for (int ib = 0; ib < 16; ib++) {
        int v = nearest_int(iscale * scales[ib]);
        sc[ib] = (uint8_t)(int8_t)(v < 127 ? v : 127);
    }
    const float d_all = rd_f16(b + 208);
    for (int j = 0; j < 16; j++) {
        float d = d_all * (int8_t)sc[j];
        if (!d) continue;
        for (int ii = 0; ii < 16; ii++)
            L[16 * j + ii] = (int8_t)(clampi(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l] = (uint8_t)(q1 | q3 << 4);
            ql[l + 32] = (uint8_t)(q2 | q4 << 4);
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
        }
    }
}

int ggml_type_encodable(int type) {
    switch (type) {
    case GGML_Q8_0: case GGML_Q4_0: case GGML_Q4_1: case GGML_Q4_K: case GGML_Q5_K: case GGML_Q6_K: return 1;
    default: return 0;
    }
}

static void quant_blocks(int type, const float *src, void *dst, int64_t n, int fast) {
    uint8_t *p = dst;
    if (!ggml_type_encodable(type) || ggml_row_bytes(type, n) < 0) return;   /* misuse: nothing written */
    const int be = types[type].block_elems, bb = types[type].block_bytes;
    for (int64_t i = 0; i < n / be; i++) {
        const float *x = src + i * be;
        uint8_t *b = p + i * bb;
        switch (type) {
        case GGML_Q8_0: quant_q8_0(x, b); break;
        case GGML_Q4_0: quant_q4_0(x, b); break;
        case GGML_Q4_1: quant_q4_1(x, b); break;
        case GGML_Q4_K: quant_q4_k(x, b, fast); break;
        case GGML_Q5_K: quant_q5_k(x, b, fast); break;
        default: quant_q6_k(x, b, fast); break;
        }
    }
}

void ggml_quant(int type, const float *src, void *dst, int64_t n) { quant_blocks(type, src, dst, n, 0); }
void ggml_quant_fast(int type, const float *src, void *dst, int64_t n) { quant_blocks(type, src, dst, n, 1); }

/* ---- entry ----------------------------------------------------------------------------- */
void ggml_dequant(int type, const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    int64_t nbytes = ggml_row_bytes(type, n);
    if (nbytes < 0 || !ggml_type_supported(type)) {       /* misuse: make it visible */
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        return;
    }
    const TypeInfo *t = &types[type];
    int64_t nb = n / t->block_elems;
    switch (type) {
    case GGML_F32:
        memcpy(dst, p, (size_t)n * sizeof(float));
        return;
    case GGML_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = rd_f16(p + 2 * i);
        return;
    case GGML_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return;
    case GGML_Q8_0: for (int64_t i = 0; i < nb; i++) dequant_q8_0(p + i * 34, dst + i * 32); return;
    case GGML_Q4_0: for (int64_t i = 0; i < nb; i++) dequant_q4_0(p + i * 18, dst + i * 32); return;
    case GGML_Q4_1: for (int64_t i = 0; i < nb; i++) dequant_q4_1(p + i * 20, dst + i * 32); return;
    case GGML_Q4_K: for (int64_t i = 0; i < nb; i++) dequant_q4_k(p + i * 144, dst + i * QK_K); return;
    case GGML_Q5_K: for (int64_t i = 0; i < nb; i++) dequant_q5_k(p + i * 176, dst + i * QK_K); return;
    case GGML_Q6_K: for (int64_t i = 0; i < nb; i++) dequant_q6_k(p + i * 210, dst + i * QK_K); return;
    }
}
