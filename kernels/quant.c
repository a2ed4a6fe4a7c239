/*
 * quant.c - ggml weight types: names, block sizes, and decoding to float32.
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
 * form would give the same values, but the file does not rely on that.
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
