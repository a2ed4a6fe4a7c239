/*
 * test_quant.c - ggml weight-type decoding (kernels/quant.c) against the gguf package.
 *
 * tests/data/quants/TYPE.bin holds blocks of each supported type and TYPE.f32 what
 * gguf.quants.dequantize (gguf 0.19.0) made of them (tests/gen_quant_refs.py). The
 * decoders must agree bit for bit: no tolerance, since both sides do the same float32
 * operations in the same order; float bit patterns are compared, so the sign of a zero
 * and a NaN's payload count. Also: one call against row-by-row calls, the type table
 * (names, sizes, refusals), and a corrupted block that the comparison must catch.
 *
 * Encoding (ggml_quant): tests/data/quants/enc_input.f32 encoded must equal, byte for
 * byte, enc_TYPE.bin, the blocks llama.cpp's own quantize_row_TYPE_ref made of it
 * (tests/gen_quant_encode_refs.c); decode(encode(x)) must stay within a stated bound of x
 * on seeded random data; and a flipped byte must fail both checks.
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


/* ---- encoding: against llama.cpp's reference quantizers ------------------------------- */
static const int encodable[] = { GGML_Q8_0, GGML_Q4_0, GGML_Q4_1, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K };
#define N_ENCODABLE ((int)(sizeof encodable / sizeof encodable[0]))

/* The shared input and one type's reference blocks. */
typedef struct {
    float *x;                    /* n values */
    int64_t n;
    uint8_t *want;               /* nbytes: quantize_row_TYPE_ref(x) */
    size_t nbytes;
} EncRef;

static void enc_ref_free(EncRef *r) { free(r->x); free(r->want); memset(r, 0, sizeof *r); }

/* Reads tests/data/quants/enc_input.f32 and enc_TYPE.bin; 0, or -1 after a failed check. */
static int enc_ref_load(int type, EncRef *r) {
    memset(r, 0, sizeof *r);
    char p[256];
    Err e;
    size_t nf;
    r->x = read_f32("tests/data/quants/enc_input.f32", &nf);
    CHECK(r->x, "tests/data/quants/enc_input.f32: cannot read");
    snprintf(p, sizeof p, "tests/data/quants/enc_%s.bin", ggml_type_name(type));
    r->want = (uint8_t *)read_file(p, 1u << 20, &r->nbytes, &e);
    CHECK(r->want, "%s", e.msg);
    if (!r->x || !r->want) { enc_ref_free(r); return -1; }
    r->n = (int64_t)nf;
    int64_t rb = ggml_row_bytes(type, r->n);
    CHECK(rb == (int64_t)r->nbytes, "%s: %" PRId64 " values need %" PRId64 " bytes, the .bin has %zu",
          ggml_type_name(type), r->n, rb, r->nbytes);
    if (rb != (int64_t)r->nbytes) { enc_ref_free(r); return -1; }
    return 0;
}

/* Index of the first differing byte, or -1 when all n agree. */
static int64_t first_byte_mismatch(const uint8_t *got, const uint8_t *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i]) return i;
    return -1;
}

/* CHECKs the encoded bytes equal the reference, naming the first differing byte by block
 * and offset within the block. */
static void check_same_bytes(int type, const char *what, const uint8_t *got, const uint8_t *want, int64_t n) {
    int be, bb;
    ggml_block(type, &be, &bb);
    int64_t i = first_byte_mismatch(got, want, n);
    CHECK(i < 0, "%s: byte %" PRId64 " of %" PRId64 " (block %" PRId64 ", offset %" PRId64 "): got 0x%02x, want 0x%02x",
          what, i, n, i < 0 ? 0 : i / bb, i < 0 ? 0 : i % bb, i < 0 ? 0u : got[i], i < 0 ? 0u : want[i]);
}

static void check_encode_reference(int type) {
    EncRef r;
    if (enc_ref_load(type, &r)) return;
    uint8_t *got = xmalloc(r.nbytes);
    memset(got, 0xA5, r.nbytes);                   /* every byte must be written */
    ggml_quant(type, r.x, got, r.n);
    char what[64];
    snprintf(what, sizeof what, "%s encoded", ggml_type_name(type));
    check_same_bytes(type, what, got, r.want, (int64_t)r.nbytes);
    free(got);
    enc_ref_free(&r);
}

static void t_quant_enc_q8_0(void) { check_encode_reference(GGML_Q8_0); }
static void t_quant_enc_q4_0(void) { check_encode_reference(GGML_Q4_0); }
static void t_quant_enc_q4_1(void) { check_encode_reference(GGML_Q4_1); }
static void t_quant_enc_q4_k(void) { check_encode_reference(GGML_Q4_K); }
static void t_quant_enc_q5_k(void) { check_encode_reference(GGML_Q5_K); }
static void t_quant_enc_q6_k(void) { check_encode_reference(GGML_Q6_K); }

/* Encoding in rows of one block each must give the bytes of one call (no state carried
 * from block to block); the type queries; misuse writes nothing. */
static void t_quant_enc_api(void) {
    for (int k = 0; k < N_ENCODABLE; k++) {
        int type = encodable[k], be, bb;
        EncRef r;
        if (enc_ref_load(type, &r)) continue;
        ggml_block(type, &be, &bb);
        uint8_t *byrow = xmalloc(r.nbytes);
        for (int64_t i = 0; i < r.n; i += be) ggml_quant(type, r.x + i, byrow + ggml_row_bytes(type, i), be);
        char what[64];
        snprintf(what, sizeof what, "%s encoded a block at a time", ggml_type_name(type));
        check_same_bytes(type, what, byrow, r.want, (int64_t)r.nbytes);
        /* a part block, or no whole number of blocks: nothing written */
        memset(byrow, 0xA5, r.nbytes);
        ggml_quant(type, r.x, byrow, be + 1);
        ggml_quant(type, r.x, byrow, -be);
        int64_t touched = -1;
        for (size_t i = 0; i < r.nbytes && touched < 0; i++)
            if (byrow[i] != 0xA5) touched = (int64_t)i;
        CHECK(touched < 0, "%s: a part block wrote byte %" PRId64, ggml_type_name(type), touched);
        free(byrow);
        enc_ref_free(&r);
    }
    int n_enc = 0;
    for (int t = -2; t < GGML_TYPE_LIMIT + 2; t++) {
        int want = 0;
        for (int k = 0; k < N_ENCODABLE; k++) want |= encodable[k] == t;
        n_enc += ggml_type_encodable(t);
        CHECK(ggml_type_encodable(t) == want, "type %d (%s): encodable %d, want %d", t,
              ggml_type_name(t) ? ggml_type_name(t) : "unknown", ggml_type_encodable(t), want);
    }
    CHECK(n_enc == N_ENCODABLE, "%d encodable types, want %d", n_enc, N_ENCODABLE);
    /* an unencodable type writes nothing */
    float x[32] = { 1.0f };
    uint8_t out[64];
    memset(out, 0xA5, sizeof out);
    ggml_quant(GGML_Q5_0, x, out, 32);
    ggml_quant(GGML_F16, x, out, 32);
    int untouched = 1;
    for (int i = 0; i < 64; i++) untouched &= out[i] == 0xA5;
    CHECK(untouched, "an unencodable type wrote bytes");
}

/* ---- encoding: round trip --------------------------------------------------------------
 * decode(encode(x)) against x, element by element, with a bound per block worked out from
 * the encoder (a = the block's largest |x|; f16 scales are rounded to 11 significant
 * bits, a relative error of at most 2^-11, times the largest level |q| they multiply;
 * 1e-5 relative slack for float32 rounding):
 *   Q8_0  d = a/127, q = round(x/d): half a step, plus the f16 error of d times |q| <= 127
 *         -> d * (0.5 + 127/2048)
 *   Q4_0  d = a/8 (the sign making the largest element q = 0, i.e. -8); the opposite end
 *         reaches +8 and clips to 7: a whole step there, half elsewhere; f16 error times
 *         |q-8| <= 8 -> d * (1 + 8/2048)
 *   Q4_1  d = (max - min)/15, q = floor((x - min)/d + 0.5): half a step; f16 errors of d
 *         (times q <= 15) and of the min m -> d * (0.5 + 15/2048) + |min|/2048
 *   Q4_K, Q5_K  one step of the super-block's widest sub-block, r/nmax with
 *         r = max_j (max x_j - min(min x_j, 0)) and nmax 15 or 31. Not a theorem: the
 *         weighted least-squares fit may clip the extremes, and scales and mins are
 *         rounded to 6 bits of the largest; measured worst here 0.58 (Q4_K) and 0.60
 *         (Q5_K) of a step, and 0.72 on other seeds.
 *   Q6_K  one step of the super-block's largest sub-block magnitude, a16/32 (levels
 *         -32..31, the largest element maps to -32); as above a fitted scale and 8-bit
 *         scales; measured worst here 0.52 of a step.
 * The first three are proven bounds and nearly reached here (0.94, 0.995, 0.99 of them).
 * A wrong level anywhere costs at least a step and packing errors cost many, so these
 * bounds catch real faults (t_quant_enc_broken checks that one does). The data: normal
 * values, standard deviations 0.02 to 2 (f16 scales stay normal), 1% outliers at 8x. */
static uint64_t rng_u64(uint64_t *s) {            /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return ((rng_u64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static void roundtrip_data(float *x, int64_t n, uint64_t seed) {
    for (int64_t b = 0; b < n / 256; b++) {
        double sd = 0.02 * pow(100.0, (double)(b % 9) / 8.0);
        for (int i = 0; i < 256; i++) {
            double g = sqrt(-2.0 * log(rng_unit(&seed))) * cos(6.283185307179586 * rng_unit(&seed));
            if (rng_unit(&seed) < 0.01) g *= 8;
            x[b * 256 + i] = (float)(g * sd);
        }
    }
}

/* The round-trip bound of element i's block (see above). */
static double roundtrip_bound(int type, const float *x, int64_t i) {
    int be;
    ggml_block(type, &be, NULL);
    const float *b = x + i / be * be;
    double amax = 0, min = INFINITY, max = -INFINITY;
    for (int l = 0; l < be; l++) {
        amax = fmax(amax, fabs(b[l]));
        min = fmin(min, b[l]);
        max = fmax(max, b[l]);
    }
    double bound = 0;
    if (type == GGML_Q8_0) bound = amax / 127 * (0.5 + 127.0 / 2048);
    else if (type == GGML_Q4_0) bound = amax / 8 * (1 + 8.0 / 2048);
    else if (type == GGML_Q4_1) bound = (max - min) / 15 * (0.5 + 15.0 / 2048) + fabs(min) / 2048;
    else if (type == GGML_Q4_K || type == GGML_Q5_K) {
        double r = 0;
        for (int j = 0; j < 8; j++) {
            double lo = 0, hi = -INFINITY;
            for (int l = 0; l < 32; l++) { lo = fmin(lo, b[32 * j + l]); hi = fmax(hi, b[32 * j + l]); }
            r = fmax(r, hi - lo);
        }
        bound = r / (type == GGML_Q4_K ? 15 : 31);
    } else if (type == GGML_Q6_K) bound = amax / 32;
    return bound * (1 + 1e-5) + 1e-30;
}

/* Worst |y - x| / bound over n elements (> 1: out of bound); *where its index. */
static double roundtrip_worst(int type, const float *x, const float *y, int64_t n, int64_t *where) {
    double worst = 0;
    *where = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)y[i] - (double)x[i]) / roundtrip_bound(type, x, i);
        if (!(e <= worst)) { worst = e; *where = i; }   /* NaN counts as worst */
    }
    return worst;
}

static void t_quant_enc_roundtrip(void) {
    const int64_t n = 64 * 256;                    /* 64 super-blocks, 512 blocks of 32 */
    float *x = xmalloc((size_t)n * sizeof(float)), *y = xmalloc((size_t)n * sizeof(float));
    uint8_t *q = xmalloc((size_t)n * 2);           /* 2 bytes per element is more than any type needs */
    roundtrip_data(x, n, 20240613u);
    for (int k = 0; k < N_ENCODABLE; k++) {
        int type = encodable[k];
        ggml_quant(type, x, q, n);
        ggml_dequant(type, q, y, n);
        int64_t i;
        double w = roundtrip_worst(type, x, y, n, &i);
        CHECK(w <= 1.0, "%s round trip: element %" PRId64 ": x %.9g, decoded %.9g, error %.3g times the bound %.3g",
              ggml_type_name(type), i, (double)x[i], (double)y[i], w, roundtrip_bound(type, x, i));
    }
    free(x); free(y); free(q);
}

/* ---- encoding: testing the tester ------------------------------------------------------ */
/* A byte flipped in the encoding of the reference input must be named by the byte
 * comparison; and the top bit of the first element's level flipped in a random block must
 * take the round trip out of its bound (that element moves by 8 steps for the 4-bit types,
 * 16 for Q5_K, 32 for Q6_K, 128 for Q8_0). */
static void t_quant_enc_broken(void) {
    /* (type, offset of a byte holding element 0's level, the bit that is its top bit) */
    static const struct { int type, qs_off, top; } cases[] = {
        { GGML_Q8_0, 2, 0x80 }, { GGML_Q4_0, 2, 0x08 }, { GGML_Q4_1, 4, 0x08 },
        { GGML_Q4_K, 16, 0x08 }, { GGML_Q5_K, 16, 0x01 }, { GGML_Q6_K, 128, 0x02 },
    };
    const int64_t n = 4 * 256;
    float *x = xmalloc((size_t)n * sizeof(float)), *y = xmalloc((size_t)n * sizeof(float));
    uint8_t *q = xmalloc((size_t)n * 2);
    roundtrip_data(x, n, 20240614u);
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        int type = cases[k].type, be, bb;
        ggml_block(type, &be, &bb);
        /* bytes: flip one in the last block of the reference encoding */
        EncRef r;
        if (enc_ref_load(type, &r) == 0) {
            uint8_t *got = xmalloc(r.nbytes);
            ggml_quant(type, r.x, got, r.n);
            CHECK(first_byte_mismatch(got, r.want, (int64_t)r.nbytes) == -1, "%s: the intact encoding should match",
                  ggml_type_name(type));
            int64_t at = (int64_t)r.nbytes - bb + cases[k].qs_off;
            got[at] ^= 0x10;
            int64_t i = first_byte_mismatch(got, r.want, (int64_t)r.nbytes);
            CHECK(i == at, "%s: a flipped byte at %" PRId64 " should be found, found %" PRId64, ggml_type_name(type), at, i);
            free(got);
            enc_ref_free(&r);
        }
        /* round trip: flip the top bit of element 0's level in block 1 */
        ggml_quant(type, x, q, n);
        ggml_dequant(type, q, y, n);
        int64_t i;
        CHECK(roundtrip_worst(type, x, y, n, &i) <= 1.0, "%s: the intact round trip should be within bounds",
              ggml_type_name(type));
        q[bb + cases[k].qs_off] ^= (uint8_t)cases[k].top;
        ggml_dequant(type, q, y, n);
        double w = roundtrip_worst(type, x, y, n, &i);
        CHECK(w > 1.0 && i == be, "%s: a flipped level bit should break the bound at element %d, worst %.3g at %" PRId64,
              ggml_type_name(type), be, w, i);
    }
    free(x); free(y); free(q);
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
    { "quant_enc_q8_0", t_quant_enc_q8_0 },
    { "quant_enc_q4_0", t_quant_enc_q4_0 },
    { "quant_enc_q4_1", t_quant_enc_q4_1 },
    { "quant_enc_q4_k", t_quant_enc_q4_k },
    { "quant_enc_q5_k", t_quant_enc_q5_k },
    { "quant_enc_q6_k", t_quant_enc_q6_k },
    { "quant_enc_api", t_quant_enc_api },
    { "quant_enc_roundtrip", t_quant_enc_roundtrip },
    { "quant_enc_broken", t_quant_enc_broken },
};
const int n_quant_tests = (int)(sizeof quant_tests / sizeof quant_tests[0]);
