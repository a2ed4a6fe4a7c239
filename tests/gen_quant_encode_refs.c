/*
 * gen_quant_encode_refs.c - writes the ggml encoding references: float32 inputs and the
 * blocks llama.cpp's own reference quantizers (quantize_row_*_ref in ggml-quants.c) make
 * of them, for Q8_0, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K.
 *
 * Not part of the build (CI has no llama.cpp); run once, and the outputs are committed:
 *
 *   G=/path/to/llama.cpp/ggml      # the one vendored by llama-cpp-python 0.3.36 was used
 *   cc -std=gnu11 -O2 -ffp-contract=off -DNDEBUG -I$G/include -I$G/src \
 *      tests/gen_quant_encode_refs.c $G/src/ggml-quants.c -lm -o /tmp/gen_quant_encode_refs
 *   /tmp/gen_quant_encode_refs tests/data/quants
 *
 * -ffp-contract=off: no fused multiply-adds (kernels/quant.c switches them off too; a
 * build that fuses would give other bytes now and then). -DNDEBUG: as in release builds,
 * where nearest_int's range assertion is off (the huge inputs below pass NaN through it).
 * Run on x86-64: for the 1e-44 sub-block a scale's inverse overflows and ggml's float to
 * int8 conversion is then the machine's (x86-64 gives 0; kernels/quant.c does the same).
 *
 * Writes into DIR:
 *   enc_input.f32  N_SB * 256 float32 values, little-endian (the input of every type)
 *   enc_TYPE.bin   quantize_row_TYPE_ref of the whole input, packed blocks
 * The input is seeded (SEED) and the same on every run. Super-blocks of 256, each made
 * to reach an awkward path (the 32-element blocks of Q8_0/Q4_0/Q4_1 see the same values):
 *   0  all zeros
 *   1  all equal (0.37)
 *   2  negative only
 *   3  huge magnitudes: sub-blocks of normals at 1e4, 1e8, 1e19 (x^2 overflows), 1e30,
 *      1e37, and constant sub-blocks of 3e37, -1e37, 1e19
 *   4  tiny magnitudes: 1e-3, 1e-8, 1e-15, 1e-20, 1e-30, 1e-38 (subnormal), 1e-44, 0
 *   5  one sub-block each: zeros, 2.5 everywhere, -1 everywhere, a single spike, normals,
 *      positive only, 100 + small noise, alternating +-1
 *   6-9 weight-like: normals with standard deviations 0.003 to 0.3, 1% outliers at 8x
 */
#include "ggml.h"
#include "ggml-quants.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20240612u
#define N_SB 10                     /* super-blocks of 256 */
#define QK 256

/* ggml-quants.c refers to these; nothing the reference quantizers reach calls them. */
void ggml_abort(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ggml_abort %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}
size_t ggml_type_size(enum ggml_type type) { (void)type; abort(); }
size_t ggml_row_size(enum ggml_type type, int64_t ne) { (void)type; (void)ne; abort(); }
const char *ggml_type_name(enum ggml_type type) { (void)type; return "?"; }

/* ---- a seeded generator: splitmix64, normals by Box-Muller in double -------------------- */
static uint64_t rng_state = SEED;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_uniform(void) { return ((rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }  /* (0,1) */
static double rng_normal(void) {
    return sqrt(-2.0 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform());
}

static void make_input(float *x) {
    memset(x, 0, sizeof(float) * N_SB * QK);
    float *b;
    /* 0: all zeros (left as is) */
    b = x + 1 * QK;                                           /* 1: all equal */
    for (int i = 0; i < QK; i++) b[i] = 0.37f;
    b = x + 2 * QK;                                           /* 2: negative only */
    for (int i = 0; i < QK; i++) b[i] = (float)(-fabs(rng_normal()) * 0.05 - 0.001);
    b = x + 3 * QK;                                           /* 3: huge */
    static const double huge[5] = { 1e4, 1e8, 1e19, 1e30, 1e37 };
    for (int j = 0; j < 5; j++)
        for (int i = 0; i < 32; i++) b[32 * j + i] = (float)(rng_normal() * huge[j]);
    for (int i = 0; i < 32; i++) { b[160 + i] = 3e37f; b[192 + i] = -1e37f; b[224 + i] = 1e19f; }
    b = x + 4 * QK;                                           /* 4: tiny */
    static const double tiny[8] = { 1e-3, 1e-8, 1e-15, 1e-20, 1e-30, 1e-38, 1e-44, 0 };
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 32; i++) b[32 * j + i] = (float)(rng_normal() * tiny[j]);
    b = x + 5 * QK;                                           /* 5: one kind per sub-block */
    for (int i = 0; i < 32; i++) {
        b[i] = 0.0f;
        b[32 + i] = 2.5f;
        b[64 + i] = -1.0f;
        b[96 + i] = i == 7 ? 3.0f : 0.0f;
        b[128 + i] = (float)(rng_normal() * 0.02);
        b[160 + i] = (float)(fabs(rng_normal()) * 0.1);
        b[192 + i] = (float)(100.0 + rng_normal() * 0.01);
        b[224 + i] = i & 1 ? -1.0f : 1.0f;
    }
    for (int k = 6; k < N_SB; k++) {                          /* 6-9: weight-like */
        double sigma = 0.003 * pow(100.0, (k - 6) / 3.0);
        b = x + k * QK;
        for (int i = 0; i < QK; i++) {
            double v = rng_normal() * sigma;
            if (rng_uniform() < 0.01) v *= 8;
            b[i] = (float)v;
        }
    }
}

static void write_file(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) { perror(path); exit(1); }
    printf("%-14s %6zu bytes\n", name, n);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s OUTDIR\n", argv[0]); return 2; }
    const uint16_t one = 1;
    if (*(const uint8_t *)&one != 1) { fprintf(stderr, "needs a little-endian machine\n"); return 2; }
    static float x[N_SB * QK];
    static uint8_t out[N_SB * QK * 2];
    const int64_t n = N_SB * QK;
    make_input(x);
    write_file(argv[1], "enc_input.f32", x, sizeof x);
    quantize_row_q8_0_ref(x, (block_q8_0 *)out, n); write_file(argv[1], "enc_Q8_0.bin", out, n / QK8_0 * sizeof(block_q8_0));
    quantize_row_q4_0_ref(x, (block_q4_0 *)out, n); write_file(argv[1], "enc_Q4_0.bin", out, n / QK4_0 * sizeof(block_q4_0));
    quantize_row_q4_1_ref(x, (block_q4_1 *)out, n); write_file(argv[1], "enc_Q4_1.bin", out, n / QK4_1 * sizeof(block_q4_1));
    quantize_row_q4_K_ref(x, (block_q4_K *)out, n); write_file(argv[1], "enc_Q4_K.bin", out, n / QK_K * sizeof(block_q4_K));
    quantize_row_q5_K_ref(x, (block_q5_K *)out, n); write_file(argv[1], "enc_Q5_K.bin", out, n / QK_K * sizeof(block_q5_K));
    quantize_row_q6_K_ref(x, (block_q6_K *)out, n); write_file(argv[1], "enc_Q6_K.bin", out, n / QK_K * sizeof(block_q6_K));
    return 0;
}
