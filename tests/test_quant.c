/*
 * test_quant.c - ggml weight-type decoding (kernels/quant.c) against the gguf package.
 *
 * tests/data/quants/TYPE.bin holds blocks of each supported type and TYPE.f32 what
 * gguf.quants.dequantize (gguf 0.19.0) made of them (tests/gen_quant_refs.py). The
 * decoders must agree bit for bit: no tolerance, since both sides do the same float32
 * operations in the same order; float bit patterns are compared, so the sign of a zero
 * and a NaN's payload count. Also: one call against row-by-row calls, the type table
 * (names, sizes, refusals), and a corrupted block that the comparison must catch.
 */
#include "test.h"
#include "quant.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

static const int supported[] = { GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0, GGML_Q4_1,
                                 GGML_Q4_K, GGML_Q5_K, GGML_Q6_K };
#define N_SUPPORTED ((int)(sizeof supported / sizeof supported[0]))

/* One type's reference: raw blocks and gguf's float32 values. */
typedef struct {
    uint8_t *raw;                /* nbytes: whole blocks */
    size_t nbytes;
    float *want;                 /* n values */
    int64_t n;
} QuantRef;

static void ref_free(QuantRef *r) { free(r->raw); free(r->want); memset(r, 0, sizeof *r); }

/* Reads tests/data/quants/TYPE.{bin,f32}; 0, or -1 after a failed check. */
static int ref_load(int type, QuantRef *r) {
    memset(r, 0, sizeof *r);
    char p[256];
    Err e;
    size_t nf;
    snprintf(p, sizeof p, "tests/data/quants/%s.bin", ggml_type_name(type));
    r->raw = (uint8_t *)read_file(p, 64u << 20, &r->nbytes, &e);
    CHECK(r->raw, "%s", e.msg);
    snprintf(p, sizeof p, "tests/data/quants/%s.f32", ggml_type_name(type));
    r->want = read_f32(p, &nf);
    CHECK(r->want, "%s: cannot read", p);
    if (!r->raw || !r->want) { ref_free(r); return -1; }
    r->n = (int64_t)nf;
    int64_t rb = ggml_row_bytes(type, r->n);
    CHECK(rb == (int64_t)r->nbytes, "%s: %" PRId64 " values need %" PRId64 " bytes, the .bin has %zu",
          ggml_type_name(type), r->n, rb, r->nbytes);
    if (rb != (int64_t)r->nbytes) { ref_free(r); return -1; }
    return 0;
}

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* Index of the first element whose float bits differ, or -1 when all n agree. */
static int64_t first_mismatch(const float *got, const float *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (bits(got[i]) != bits(want[i])) return i;
    return -1;
}

/* CHECKs got == want bit for bit, naming the first differing element. */
static void check_same(const char *what, const float *got, const float *want, int64_t n) {
    int64_t i = first_mismatch(got, want, n);
    CHECK(i < 0, "%s: element %" PRId64 " of %" PRId64 ": got %.9g (0x%08x), want %.9g (0x%08x)", what, i, n,
          i < 0 ? 0.0 : (double)got[i], i < 0 ? 0u : bits(got[i]),
          i < 0 ? 0.0 : (double)want[i], i < 0 ? 0u : bits(want[i]));
}

/* ---- against gguf.quants ------------------------------------------------------------- */
static void check_reference(int type) {
    QuantRef r;
    if (ref_load(type, &r)) return;
    float *got = xmalloc((size_t)r.n * sizeof(float));
    ggml_dequant(type, r.raw, got, r.n);
    check_same(ggml_type_name(type), got, r.want, r.n);
    free(got);
    ref_free(&r);
}

static void t_quant_ref_f32(void)  { check_reference(GGML_F32); }
static void t_quant_ref_f16(void)  { check_reference(GGML_F16); }
static void t_quant_ref_bf16(void) { check_reference(GGML_BF16); }
static void t_quant_ref_q8_0(void) { check_reference(GGML_Q8_0); }
static void t_quant_ref_q4_0(void) { check_reference(GGML_Q4_0); }
static void t_quant_ref_q4_1(void) { check_reference(GGML_Q4_1); }
static void t_quant_ref_q4_k(void) { check_reference(GGML_Q4_K); }
static void t_quant_ref_q5_k(void) { check_reference(GGML_Q5_K); }
static void t_quant_ref_q6_k(void) { check_reference(GGML_Q6_K); }

/* ---- one call against one call per row ------------------------------------------------ */
static void t_quant_rows(void) {
    for (int k = 0; k < N_SUPPORTED; k++) {
        int type = supported[k], be, bb;
        QuantRef r;
        if (ref_load(type, &r)) continue;
        ggml_block(type, &be, &bb);
        /* rows of 2 blocks (odd block counts end with a shorter row) */
        int64_t row = 2 * (int64_t)be;
        float *all = xmalloc((size_t)r.n * sizeof(float)), *byrow = xmalloc((size_t)r.n * sizeof(float));
        ggml_dequant(type, r.raw, all, r.n);
        for (int64_t i = 0; i < r.n; i += row) {
            int64_t len = r.n - i < row ? r.n - i : row;
            ggml_dequant(type, r.raw + ggml_row_bytes(type, i), byrow + i, len);
        }
        char what[64];
        snprintf(what, sizeof what, "%s one call vs rows of %" PRId64, ggml_type_name(type), row);
        check_same(what, byrow, all, r.n);
        free(all); free(byrow);
        ref_free(&r);
    }
}

/* ---- the type table ------------------------------------------------------------------ */
static void t_quant_types(void) {
    /* (number, name, block elements, block bytes) from gguf 0.19.0's GGMLQuantizationType
     * and GGML_QUANT_SIZES */
    static const struct { int type; const char *name; int be, bb; } known[] = {
        { 0, "F32", 1, 4 }, { 1, "F16", 1, 2 }, { 2, "Q4_0", 32, 18 }, { 3, "Q4_1", 32, 20 },
        { 6, "Q5_0", 32, 22 }, { 7, "Q5_1", 32, 24 }, { 8, "Q8_0", 32, 34 }, { 9, "Q8_1", 32, 40 },
        { 10, "Q2_K", 256, 84 }, { 11, "Q3_K", 256, 110 }, { 12, "Q4_K", 256, 144 },
        { 13, "Q5_K", 256, 176 }, { 14, "Q6_K", 256, 210 }, { 15, "Q8_K", 256, 292 },
        { 16, "IQ2_XXS", 256, 66 }, { 17, "IQ2_XS", 256, 74 }, { 18, "IQ3_XXS", 256, 98 },
        { 19, "IQ1_S", 256, 50 }, { 20, "IQ4_NL", 32, 18 }, { 21, "IQ3_S", 256, 110 },
        { 22, "IQ2_S", 256, 82 }, { 23, "IQ4_XS", 256, 136 }, { 24, "I8", 1, 1 }, { 25, "I16", 1, 2 },
        { 26, "I32", 1, 4 }, { 27, "I64", 1, 8 }, { 28, "F64", 1, 8 }, { 29, "IQ1_M", 256, 56 },
        { 30, "BF16", 1, 2 }, { 34, "TQ1_0", 256, 54 }, { 35, "TQ2_0", 256, 66 },
        { 39, "MXFP4", 32, 17 }, { 40, "NVFP4", 64, 36 }, { 41, "Q1_0", 128, 18 },
        { 42, "Q2_0", 64, 18 },            /* newer than gguf 0.19.0: ggml.h, ggml-common.h */
    };
    int n_known = (int)(sizeof known / sizeof known[0]);
    for (int i = 0; i < n_known; i++) {
        int be = -1, bb = -1;
        const char *nm = ggml_type_name(known[i].type);
        ggml_block(known[i].type, &be, &bb);
        CHECK(nm && !strcmp(nm, known[i].name), "type %d: name %s, want %s", known[i].type, nm ? nm : "NULL",
              known[i].name);
        CHECK(be == known[i].be && bb == known[i].bb, "%s: block (%d, %d), want (%d, %d)", known[i].name, be, bb,
              known[i].be, known[i].bb);
        CHECK(ggml_row_bytes(known[i].type, 3 * (int64_t)known[i].be) == 3 * (int64_t)known[i].bb,
              "%s: row bytes of 3 blocks", known[i].name);
        if (known[i].be > 1)
            CHECK(ggml_row_bytes(known[i].type, known[i].be + 1) == -1, "%s: a part block has a size", known[i].name);
    }
    /* supported: exactly these */
    int n_sup = 0;
    for (int t = -2; t < GGML_TYPE_LIMIT + 2; t++) {
        int want = 0;
        for (int k = 0; k < N_SUPPORTED; k++) want |= supported[k] == t;
        n_sup += ggml_type_supported(t);
        CHECK(ggml_type_supported(t) == want, "type %d (%s): supported %d, want %d", t,
              ggml_type_name(t) ? ggml_type_name(t) : "unknown", ggml_type_supported(t), want);
    }
    CHECK(n_sup == N_SUPPORTED, "%d supported types, want %d", n_sup, N_SUPPORTED);
    /* a few refused by name */
    static const struct { int type; const char *name; } refused[] = {
        { 16, "IQ2_XXS" }, { GGML_Q5_0, "Q5_0" }, { 39, "MXFP4" }, { GGML_Q2_K, "Q2_K" }, { 28, "F64" },
    };
    for (int i = 0; i < (int)(sizeof refused / sizeof refused[0]); i++) {
        const char *nm = ggml_type_name(refused[i].type);
        CHECK(nm && !strcmp(nm, refused[i].name) && !ggml_type_supported(refused[i].type),
              "type %d: want the name %s and no decoder", refused[i].type, refused[i].name);
    }
    /* numbers no type has, and lengths that are not whole blocks */
    static const int unknown[] = { -1, 4, 5, 31, 32, 33, 36, 37, 38, 63, GGML_TYPE_LIMIT, 1000 };
    for (int i = 0; i < (int)(sizeof unknown / sizeof unknown[0]); i++) {
        int be = -1, bb = -1, t = unknown[i];
        ggml_block(t, &be, &bb);
        CHECK(!ggml_type_name(t) && be == 0 && bb == 0 && ggml_row_bytes(t, 256) == -1 && !ggml_type_supported(t),
              "type %d: no type has this number", t);
    }
    CHECK(ggml_row_bytes(GGML_Q4_K, 255) == -1 && ggml_row_bytes(GGML_Q4_K, 257) == -1 &&
          ggml_row_bytes(GGML_Q8_0, 48) == -1 && ggml_row_bytes(GGML_Q4_0, -32) == -1,
          "lengths that are not whole blocks");
    CHECK(ggml_row_bytes(GGML_Q4_K, 0) == 0 && ggml_row_bytes(GGML_F16, 7) == 14 && ggml_row_bytes(GGML_Q6_K, 4096) == 16 * 210,
          "row bytes");
}

/* ---- testing the tester ---------------------------------------------------------------- */
/* Flips bit 0 of the first payload byte of the last block (one gguf encoded from
 * real-looking data, so its scales are not zero): the first element of that block
 * changes and the comparison must name exactly it. */
static void t_quant_broken(void) {
    static const struct { int type, qs_off; } cases[] = {
        { GGML_Q8_0, 2 }, { GGML_Q4_0, 2 }, { GGML_Q4_1, 4 }, { GGML_Q4_K, 16 }, { GGML_Q5_K, 48 }, { GGML_Q6_K, 0 },
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        int type = cases[k].type, be, bb;
        QuantRef r;
        if (ref_load(type, &r)) continue;
        ggml_block(type, &be, &bb);
        int64_t last = r.n / be - 1;
        float *got = xmalloc((size_t)r.n * sizeof(float));
        ggml_dequant(type, r.raw, got, r.n);
        CHECK(first_mismatch(got, r.want, r.n) == -1, "%s: the intact data should match", ggml_type_name(type));
        r.raw[last * bb + cases[k].qs_off] ^= 1;
        ggml_dequant(type, r.raw, got, r.n);
        int64_t i = first_mismatch(got, r.want, r.n);
        CHECK(i == last * be, "%s: a flipped bit in block %" PRId64 " should show at element %" PRId64 ", found %" PRId64,
              ggml_type_name(type), last, last * be, i);
        free(got);
        ref_free(&r);
    }
    /* the comparison sees -0.0 against 0.0 and one NaN payload against another */
    float a[3] = { 1.0f, 0.0f, NAN }, b[3] = { 1.0f, -0.0f, NAN };
    CHECK(first_mismatch(a, b, 3) == 1, "-0.0 and 0.0 should differ");
    uint32_t qnan = 0x7fc00001u;
    memcpy(&b[1], &a[1], 4);
    memcpy(&b[2], &qnan, 4);
    CHECK(first_mismatch(a, b, 3) == 2, "NaN payloads should differ");
}

const TestDef quant_tests[] = {
    { "quant_types", t_quant_types },
    { "quant_ref_f32", t_quant_ref_f32 },
    { "quant_ref_f16", t_quant_ref_f16 },
    { "quant_ref_bf16", t_quant_ref_bf16 },
    { "quant_ref_q8_0", t_quant_ref_q8_0 },
    { "quant_ref_q4_0", t_quant_ref_q4_0 },
    { "quant_ref_q4_1", t_quant_ref_q4_1 },
    { "quant_ref_q4_k", t_quant_ref_q4_k },
    { "quant_ref_q5_k", t_quant_ref_q5_k },
    { "quant_ref_q6_k", t_quant_ref_q6_k },
    { "quant_rows", t_quant_rows },
    { "quant_broken", t_quant_broken },
};
const int n_quant_tests = (int)(sizeof quant_tests / sizeof quant_tests[0]);
