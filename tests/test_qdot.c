/*
 * test_qdot.c - the stored-type row products (kernels/qdot.h) against their plain C
 * twins, on awkward sizes, and the engine's linear() on every type against a float64
 * product of the decoded weights.
 *
 * Widening is bit-exact: every decoded value is one rounding of the same exact product
 * in both (the SIMD kernels fuse q*d + m, but d*q is exact in float32 for every type
 * whose decode adds: 11-bit f16 scales times 6-bit integers at most), so the vectors
 * must be identical. Products differ only in float32 summation order; the bound is
 * 1e-5 of sum |w_i x_i| (float32 rounding, 6e-8 per add, over vector lanes and
 * two accumulators: the error grows far slower than the worst case n * 6e-8).
 */
#include "test.h"

#include "qdot.h"
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float frnd(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; }   /* about [-1, 1) */

static void put_f16(uint8_t *p, float f) { uint16_t h = f32_to_f16(f); p[0] = (uint8_t)h; p[1] = (uint8_t)(h >> 8); }

/* A row of cols elements of type dt: random codes, sane scales (block types: d, dmin
 * written as f16 of a small magnitude, everything else random bytes). */
static uint8_t *make_row(DType dt, int64_t cols, float **srow) {
    uint64_t nb = dtype_bytes(dt, cols);
    uint8_t *r = malloc(nb + 64);
    for (uint64_t i = 0; i < nb; i++) r[i] = (uint8_t)rnd();
    *srow = NULL;
    switch (dt) {
    case DT_F32: for (int64_t i = 0; i < cols; i++) { float f = frnd(); memcpy(r + 4 * i, &f, 4); } break;
    case DT_BF16: for (int64_t i = 0; i < cols; i++) { uint16_t h = f32_to_bf16(frnd()); memcpy(r + 2 * i, &h, 2); } break;
    case DT_F16: for (int64_t i = 0; i < cols; i++) put_f16(r + 2 * i, frnd()); break;
    case DT_F8_E4M3: {
        for (int64_t i = 0; i < cols; i++) if ((r[i] & 0x7f) == 0x7f) r[i] &= 0xfe;    /* no NaN codes */
        *srow = malloc(sizeof(float) * (size_t)((cols + 127) / 128));
        for (int64_t i = 0; i < (cols + 127) / 128; i++) (*srow)[i] = 0.01f * (1 + (float)i);
        break;
    }
    case DT_Q8_0: for (int64_t b = 0; b < cols / 32; b++) put_f16(r + 34 * b, 0.01f * frnd()); break;
    case DT_Q4_0: for (int64_t b = 0; b < cols / 32; b++) put_f16(r + 18 * b, 0.1f * frnd()); break;
    case DT_Q4_1: for (int64_t b = 0; b < cols / 32; b++) { put_f16(r + 20 * b, 0.1f * frnd()); put_f16(r + 20 * b + 2, frnd()); } break;
    case DT_Q4_K: for (int64_t b = 0; b < cols / 256; b++) { put_f16(r + 144 * b, 0.01f * frnd()); put_f16(r + 144 * b + 2, 0.01f * frnd()); } break;
    case DT_Q5_K: for (int64_t b = 0; b < cols / 256; b++) { put_f16(r + 176 * b, 0.01f * frnd()); put_f16(r + 176 * b + 2, 0.01f * frnd()); } break;
    case DT_Q6_K: for (int64_t b = 0; b < cols / 256; b++) put_f16(r + 210 * b + 208, 0.001f * frnd()); break;
    default: break;
    }
    return r;
}

static const DType all_types[] = { DT_F32, DT_BF16, DT_F16, DT_F8_E4M3, DT_Q8_0, DT_Q4_0, DT_Q4_1, DT_Q4_K, DT_Q5_K, DT_Q6_K };
#define N_TYPES (int)(sizeof all_types / sizeof all_types[0])

/* column counts: plain types any, block types whole blocks (1, 3, 5, 17 of them) */
static int sizes(DType dt, int64_t *out) {
    int blk = dtype_block(dt), n = 0;
    if (blk == 1) {
        static const int64_t plain[] = { 1, 7, 15, 16, 17, 31, 33, 100, 129, 257, 1000, 4099 };
        for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) out[n++] = plain[i];
    } else {
        static const int64_t mult[] = { 1, 3, 5, 17 };
        for (size_t i = 0; i < sizeof mult / sizeof mult[0]; i++) out[n++] = mult[i] * blk;
    }
    return n;
}

static void test_widen_exact(void) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        DType dt = all_types[ti];
        int64_t cs[16];
        int ns = sizes(dt, cs);
        for (int si = 0; si < ns; si++) {
            int64_t cols = cs[si];
            float *srow, *a = malloc(sizeof(float) * (size_t)cols), *b = malloc(sizeof(float) * (size_t)cols);
            uint8_t *r = make_row(dt, cols, &srow);
            qdot_widen(dt, r, srow, cols, a);
            qdot_widen_ref(dt, r, srow, cols, b);
            int64_t bad = -1;
            for (int64_t i = 0; i < cols && bad < 0; i++) if (memcmp(&a[i], &b[i], 4)) bad = i;
            CHECK(bad < 0, "%s cols %lld (%s): element %lld widened to %.9g, the C twin gives %.9g", dtype_name(dt),
                  (long long)cols, qdot_isa(), (long long)bad, bad < 0 ? 0.0 : a[bad], bad < 0 ? 0.0 : b[bad]);
            free(a); free(b); free(r); free(srow);
        }
    }
}

/* |got - want| within 1e-5 of sum |w x| (see the top) */
static int close_enough(float got, float want, double mag) { return fabs((double)got - want) <= 1e-5 * mag + 1e-30; }

static void test_dot_twin(void) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        DType dt = all_types[ti];
        int64_t cs[16];
        int ns = sizes(dt, cs);
        for (int si = 0; si < ns; si++) {
            int64_t cols = cs[si], ldx = cols + 3;
            float *srow, *w = malloc(sizeof(float) * (size_t)cols), *x = malloc(sizeof(float) * (size_t)(ldx * QDOT_MAX_T));
            uint8_t *r = make_row(dt, cols, &srow);
            qdot_widen_ref(dt, r, srow, cols, w);
            for (int64_t i = 0; i < ldx * QDOT_MAX_T; i++) x[i] = frnd();
            for (int T = 1; T <= QDOT_MAX_T; T++) {
                float got[QDOT_MAX_T], want[QDOT_MAX_T];
                qdot_row(dt, r, srow, cols, x, ldx, T, got);
                qdot_row_ref(dt, r, srow, cols, x, ldx, T, want);
                for (int t = 0; t < T; t++) {
                    double mag = 0, exact = 0;
                    for (int64_t i = 0; i < cols; i++) {
                        mag += fabs((double)w[i] * x[t * ldx + i]);
                        exact += (double)w[i] * x[t * ldx + i];
                    }
                    CHECK(close_enough(got[t], want[t], mag), "%s cols %lld T %d row %d (%s): %.9g, the C twin gives %.9g (sum |wx| %.3g)",
                          dtype_name(dt), (long long)cols, T, t, qdot_isa(), got[t], want[t], mag);
                    CHECK(close_enough(want[t], (float)exact, mag), "%s cols %lld T %d row %d: the C twin gives %.9g, float64 %.9g",
                          dtype_name(dt), (long long)cols, T, t, want[t], exact);
                }
            }
            free(w); free(x); free(r); free(srow);
        }
    }
}

/* four rows at once (batch-1 decode) give exactly what four single-row calls give */
static void test_rows4_exact(void) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        DType dt = all_types[ti];
        int64_t cs[16];
        int ns = sizes(dt, cs);
        for (int si = 0; si < ns; si++) {
            int64_t cols = cs[si];
            uint8_t *r[4];
            float *sr[4], *x = malloc(sizeof(float) * (size_t)cols), got[4], want[4];
            for (int k = 0; k < 4; k++) r[k] = make_row(dt, cols, &sr[k]);
            for (int64_t i = 0; i < cols; i++) x[i] = frnd();
            const void *rows[4] = { r[0], r[1], r[2], r[3] };
            const float *srows[4] = { sr[0], sr[1], sr[2], sr[3] };
            qdot_rows4(dt, rows, srows, cols, x, got);
            for (int k = 0; k < 4; k++) qdot_row(dt, r[k], sr[k], cols, x, cols, 1, &want[k]);
            CHECK(!memcmp(got, want, sizeof got), "%s cols %lld: four rows at once %.9g %.9g %.9g %.9g, one at a time %.9g %.9g %.9g %.9g",
                  dtype_name(dt), (long long)cols, got[0], got[1], got[2], got[3], want[0], want[1], want[2], want[3]);
            for (int k = 0; k < 4; k++) { free(r[k]); free(sr[k]); }
            free(x);
        }
    }
}

/* the comparison must catch a wrong kernel: one changed scale moves the product */
static void test_dot_detects_error(void) {
    int caught = 0, tried = 0;
    for (int ti = 0; ti < N_TYPES; ti++) {
        DType dt = all_types[ti];
        if (dtype_block(dt) == 1) continue;
        int64_t cols = 3 * dtype_block(dt);
        float *srow, *x = malloc(sizeof(float) * (size_t)cols), got, want, w[768];
        uint8_t *r = make_row(dt, cols, &srow);
        for (int64_t i = 0; i < cols; i++) x[i] = 1.0f + 0.5f * frnd();      /* same sign: no cancellation */
        qdot_row(dt, r, srow, cols, x, cols, 1, &got);
        size_t off = dt == DT_Q6_K ? 208 : 0;                          /* the block's d */
        put_f16(r + off, 2.0f * f16_to_f32((uint16_t)(r[off] | r[off + 1] << 8)) + 0.25f);
        qdot_row_ref(dt, r, srow, cols, x, cols, 1, &want);
        qdot_widen_ref(dt, r, srow, cols, w);
        double mag = 0;
        for (int64_t i = 0; i < cols; i++) mag += fabs((double)w[i] * x[i]);
        tried++;
        caught += !close_enough(got, want, mag);
        free(x); free(r); free(srow);
    }
    CHECK(caught == tried, "a changed block scale went unnoticed in %d of %d types", tried - caught, tried);
}

/* linear(): rows split among threads, any row count, T on both sides of the row path */
static void test_linear_types(void) {
    int64_t rows_list[] = { 1, 5, 37 };
    int Ts[] = { 1, 3, 6, 7, 19, 40, 1100 };   /* 1100: BF16 and F16 only, the panels' chunks of tokens */
    for (int ti = 0; ti < N_TYPES; ti++) {
        DType dt = all_types[ti];
        int64_t cols = dtype_block(dt) == 1 ? 300 : 2 * dtype_block(dt) * (dt == DT_Q8_0 ? 5 : 1);
        for (size_t ri = 0; ri < 3; ri++) {
            int64_t rows = rows_list[ri], rb = (int64_t)dtype_bytes(dt, cols);
            uint8_t *data = malloc((size_t)(rb * rows));
            float *sc = NULL, *wf = malloc(sizeof(float) * (size_t)(rows * cols));
            if (dt == DT_F8_E4M3) {
                sc = malloc(sizeof(float) * (size_t)(((rows + 127) / 128) * ((cols + 127) / 128)));
                for (int64_t i = 0; i < ((rows + 127) / 128) * ((cols + 127) / 128); i++) sc[i] = 0.02f;
            }
            for (int64_t r = 0; r < rows; r++) {
                float *srow;
                uint8_t *one = make_row(dt, cols, &srow);
                memcpy(data + r * rb, one, (size_t)rb);
                qdot_widen_ref(dt, one, sc ? sc + (r / 128) * ((cols + 127) / 128) : NULL, cols, wf + r * cols);
                free(one); free(srow);
            }
            Mat W = { dt, data, sc, rows, cols };
            float *scratch = malloc(sizeof(float) * linear_scratch_floats(cols));
            for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) {
                int T = Ts[k];
                if (T > 40 && dt != DT_BF16 && dt != DT_F16) continue;
                float *x = malloc(sizeof(float) * (size_t)(T * cols)), *y = malloc(sizeof(float) * (size_t)(T * rows));
                for (int64_t i = 0; i < T * cols; i++) x[i] = frnd();
                for (int mode = 0; mode < 2; mode++) {
                    qdot_set_products(mode);
                    /* 8-bit activations (block types: decode; prefill but Q6_K): each x within
                     * dx/2 of its rounding */
                    int q8 = mode && qdot_int_type(dt) && (T <= 6 || qgemm_int_ok(dt));
                    /* BF16 activations (BF16 weights: prefill, and decode of one token; F16
                     * prefill from QGEMM_PANEL_MIN_T tokens): each x within 2^-8 of itself */
                    int bfx = mode && ((T > 6 && (qgemm_ok(dt) || (T >= QGEMM_PANEL_MIN_T && qgemm_panel_ok(dt)))) ||
                                       (T == 1 && qgemm_ok(dt)));
                    linear(y, (int)rows, x, (int)cols, T, &W, 0, rows, NULL, scratch);
                    double worst = 0;
                    for (int t = 0; t < T; t++)
                        for (int64_t r = 0; r < rows; r++) {
                            double exact = 0, mag = 0, round = 0;
                            for (int64_t i = 0; i < cols; i++) {
                                exact += (double)wf[r * cols + i] * x[t * cols + i];
                                mag += fabs((double)wf[r * cols + i] * x[t * cols + i]);
                                if (q8) {
                                    /* per 256 (Q8_K) in Q4_K/Q5_K decode, else per 32 (Q8_0) */
                                    int64_t bl = T <= 6 && (dt == DT_Q4_K || dt == DT_Q5_K) ? 256 : 32;
                                    float amax = 0;
                                    for (int64_t j = i / bl * bl; j < i / bl * bl + bl; j++) amax = fmaxf(amax, fabsf(x[t * cols + j]));
                                    round += fabs((double)wf[r * cols + i]) * amax / 127 / 2;
                                }
                                if (bfx) round += fabs((double)wf[r * cols + i] * x[t * cols + i]) * 0x1p-8;
                            }
                            double d = (fabs(y[t * rows + r] - exact) - round) / (mag + 1e-30);
                            if (d > worst) worst = d;
                        }
                    CHECK(worst <= 1e-5, "linear %s rows %lld cols %lld T %d (%s products): error beyond the activations' rounding %.3g of sum |wx|",
                          dtype_name(dt), (long long)rows, (long long)cols, T, q8 ? "int8" : bfx ? "bf16" : "float", worst);
                }
                qdot_set_products(-1);
                free(x); free(y);
            }
            free(scratch); free(data); free(sc); free(wf);
        }
    }
}

/* ggml_quant_fast: the same format, errors close to the reference encoders' own. Bound:
 * its RMS error at most 1.3x the reference's (it keeps the reference's first fit and
 * drops only the search that refines it), measured 1.00-1.08x on uniform data of mixed scales. */
static void test_fast_encoders(void) {
    const int types[] = { GGML_Q8_0, GGML_Q4_0, GGML_Q4_1, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K };
    int64_t n = 256 * 64;
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    uint8_t *b = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) x[i] = frnd() * (1.0f + (float)(i / 256 % 7));
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        double e[2];
        for (int fast = 0; fast < 2; fast++) {
            if (fast) ggml_quant_fast(types[k], x, b, n);
            else ggml_quant(types[k], x, b, n);
            ggml_dequant(types[k], b, y, n);
            double ss = 0;
            for (int64_t i = 0; i < n; i++) ss += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            e[fast] = sqrt(ss / (double)n);
        }
        if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    %s: RMS error fast %.4g, reference %.4g\n", ggml_type_name(types[k]), e[1], e[0]);
        CHECK(e[1] <= 1.3 * e[0] && e[1] > 0, "%s: fast encoding RMS error %.4g against the reference's %.4g", ggml_type_name(types[k]), e[1], e[0]);
    }
    free(x); free(y); free(b);
}

/* --dtype with a checkpoint: its matrices re-encoded at load. Against the float32
 * checkpoint, next-token KL must be small for Q8_0 (8-bit: measured ~1e-5 on v3-tiny)
 * and clearly larger for Q4_0 (4-bit: ~2e-3; bounds 1e-4 and 0.05, 10-25x the measured
 * values, and Q4_0 at least 10x Q8_0, 200x measured), and the matrices must hold the
 * new type. */
static void kl_rows(const float *a, const float *b, int n, int V, double *mean) {
    double tot = 0;
    for (int t = 0; t < n; t++) {
        const float *p = a + (size_t)t * V, *q = b + (size_t)t * V;
        double mp = -INFINITY, mq = -INFINITY, zp = 0, zq = 0, kl = 0;
        for (int v = 0; v < V; v++) { if (p[v] > mp) mp = p[v]; if (q[v] > mq) mq = q[v]; }
        for (int v = 0; v < V; v++) { zp += exp(p[v] - mp); zq += exp(q[v] - mq); }
        for (int v = 0; v < V; v++) {
            double lp = p[v] - mp - log(zp), lq = q[v] - mq - log(zq);
            kl += exp(lp) * (lp - lq);
        }
        tot += kl;
    }
    *mean = tot / n;
}

static int logits_of(const char *dir, int recode, DType dt, const int *tok, int n, float *out, DType *odt) {
    Model m;
    Err e = { "" };
    LoadOpts o = { .dtype = dt, .recode = recode };
    if (model_load(&m, dir, &o, &e)) { t_fail(__FILE__, __LINE__, "load %s: %s", dir, e.msg); return -1; }
    KVCache kv;
    int rc = kv_create(&kv, &m, 1, n, &e);
    int seq[64] = { 0 }, pos[64];
    for (int i = 0; i < n; i++) pos[i] = i;
    if (!rc) rc = model_forward(&m, &kv, n, tok, seq, pos, NULL, out, NULL, &e);
    if (rc) t_fail(__FILE__, __LINE__, "%s: %s", dir, e.msg);
    *odt = m.layers[0].attn.o.dt;
    kv_free(&kv);
    model_free(&m);
    return rc;
}

static void test_recode_checkpoint(void) {
    const char *cases[] = { "deepseek/v3-tiny", "dense/llama-tiny" };
    for (int i = 0; i < 2; i++) {
        Case c;
        if (case_load(cases[i], &c)) return;
        int n = c.n_prompt;
        Model probe;
        Err e = { "" };
        LoadOpts so = { .dummy = 1, .shapes_only = 1 };
        char cfg[1100];
        snprintf(cfg, sizeof cfg, "%s/config.json", c.dir);
        if (model_load(&probe, cfg, &so, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); case_free(&c); return; }
        int V = probe.cfg.vocab;
        model_free(&probe);
        float *ref = malloc(sizeof(float) * (size_t)n * V), *q8 = malloc(sizeof(float) * (size_t)n * V),
              *q4 = malloc(sizeof(float) * (size_t)n * V);
        DType d0, d8, d4;
        if (!logits_of(c.dir, 0, DT_F32, c.prompt, n, ref, &d0) && !logits_of(c.dir, 1, DT_Q8_0, c.prompt, n, q8, &d8) &&
            !logits_of(c.dir, 1, DT_Q4_0, c.prompt, n, q4, &d4)) {
            double k8, k4;
            kl_rows(ref, q8, n, V, &k8);
            kl_rows(ref, q4, n, V, &k4);
            CHECK(d0 == DT_F32 && d8 == DT_Q8_0 && d4 == DT_Q4_0, "%s: o_proj held as %s / %s / %s", cases[i], dtype_name(d0),
                  dtype_name(d8), dtype_name(d4));
            CHECK(k8 > 0 && k8 < 1e-4, "%s: Q8_0 re-encoding: mean KL %.3g against float32 (expected 0 < KL < 1e-4)", cases[i], k8);
            CHECK(k4 > 10 * k8 && k4 < 0.05, "%s: Q4_0 re-encoding: mean KL %.3g (Q8_0 %.3g)", cases[i], k4, k8);
            if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    %s: KL vs F32: Q8_0 %.3g, Q4_0 %.3g\n", cases[i], k8, k4);
        }
        free(ref); free(q8); free(q4);
        case_free(&c);
    }
}

/* the integer products against their C twin (the same integer sums), awkward block
 * counts (odd counts take the single-block tail), T 1-8; and against float64 within
 * the activations' rounding: |sum w x - result| <= sum |w_i| dx_i / 2 (+ float32 sums),
 * dx the scale of the activation's block: per 32, or per 256 for Q4_K and Q5_K */
static void test_int_twin(void) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        DType dt = all_types[ti];
        if (!qdot_int_type(dt)) continue;
        int64_t cs[16];
        int ns = sizes(dt, cs);
        for (int si = 0; si < ns; si++) {
            int64_t cols = cs[si];
            float *srow, *w = malloc(sizeof(float) * (size_t)cols), *x = malloc(sizeof(float) * (size_t)(cols * QDOT_MAX_T));
            uint8_t *r = make_row(dt, cols, &srow), *buf = malloc(qdot_act_bytes(QDOT_MAX_T, cols) + 64);
            qdot_widen_ref(dt, r, srow, cols, w);
            for (int64_t i = 0; i < cols * QDOT_MAX_T; i++) x[i] = frnd() * (1 + (float)(i % 7));
            QAct qa;
            qdot_act_quant(dt, x, cols, QDOT_MAX_T, cols, buf, &qa);
            for (int T = 1; T <= QDOT_MAX_T; T++) {
                float got[QDOT_MAX_T], want[QDOT_MAX_T];
                qdot_row_int(dt, r, &qa, T, got);
                qdot_row_int_ref(dt, r, &qa, T, want);
                for (int t = 0; t < T; t++) {
                    double mag = 0, exact = 0, round = 0;
                    for (int64_t i = 0; i < cols; i++) {
                        mag += fabs((double)w[i] * x[t * cols + i]);
                        exact += (double)w[i] * x[t * cols + i];
                        int k256 = dt == DT_Q4_K || dt == DT_Q5_K;   /* per-256 activations (Q8_K) */
                        round += fabs((double)w[i]) * (k256 ? qa.dk[t * (cols / 256) + i / 256] : qa.dx[t * (cols / 32) + i / 32]) / 2;
                    }
                    CHECK(close_enough(got[t], want[t], mag), "%s cols %lld T %d row %d (%s): %.9g, the C twin gives %.9g",
                          dtype_name(dt), (long long)cols, T, t, qdot_int_isa(), got[t], want[t]);
                    CHECK(fabs(want[t] - exact) <= round + 1e-5 * mag, "%s cols %lld T %d: int8 product %.9g, float64 %.9g, beyond the rounding bound %.3g",
                          dtype_name(dt), (long long)cols, T, want[t], exact, round);
                }
            }
            free(w); free(x); free(r); free(srow); free(buf);
        }
    }
}

/* linear_group (decode's shared-input products: q/k/v, gate/up) equals one linear()
 * per weight bit for bit: row counts 5, 7, 1100 (shares that cross the weights), with
 * biases, T 1, 3 and 9 (9: past the row path, separate calls), both product modes,
 * every type; and a group of mixed types (separate calls). linear_group_xs (an input
 * per weight: a MoE token's experts' down products) the same, two weights sharing an
 * input and the third its own, without biases, T up to 8. */
static void test_linear_group(void) {
    const int64_t rows[3] = { 5, 7, 1100 };          /* 1112 x 256: two threads at T 1 */
    const int Ts[3] = { 1, 3, 9 };
    for (int ti = 0; ti <= N_TYPES; ti++) {
        int mixed = ti == N_TYPES;
        DType dts[3];
        for (int i = 0; i < 3; i++) dts[i] = mixed ? all_types[i % N_TYPES] : all_types[ti];
        int64_t cols = 256;
        Mat W[3];
        float *b[3], *y1[3], *y2[3], *scs[3];
        for (int i = 0; i < 3; i++) {
            int64_t rb = (int64_t)dtype_bytes(dts[i], cols);
            uint8_t *data = malloc((size_t)(rb * rows[i]));
            float *sc = NULL;
            if (dts[i] == DT_F8_E4M3) {
                sc = malloc(sizeof(float) * (size_t)(((rows[i] + 127) / 128) * 2));
                for (int64_t k = 0; k < ((rows[i] + 127) / 128) * 2; k++) sc[k] = 0.02f;
            }
            for (int64_t r = 0; r < rows[i]; r++) {
                float *srow;
                uint8_t *one = make_row(dts[i], cols, &srow);
                memcpy(data + r * rb, one, (size_t)rb);
                free(one); free(srow);
            }
            W[i] = (Mat){ dts[i], data, sc, rows[i], cols };
            scs[i] = sc;
            b[i] = malloc(sizeof(float) * (size_t)rows[i]);
            for (int64_t r = 0; r < rows[i]; r++) b[i][r] = frnd();
            y1[i] = malloc(sizeof(float) * (size_t)(9 * rows[i]));
            y2[i] = malloc(sizeof(float) * (size_t)(9 * rows[i]));
        }
        float *x = malloc(sizeof(float) * (size_t)(9 * cols)), *scratch = malloc(sizeof(float) * linear_scratch_floats(cols));
        for (int64_t i = 0; i < 9 * cols; i++) x[i] = frnd();
        const Mat *const ws[3] = { &W[0], &W[1], &W[2] };
        const float *const bs[3] = { b[0], NULL, b[2] };
        const int ld[3] = { (int)rows[0], (int)rows[1], (int)rows[2] };
        for (int k = 0; k < 3; k++)
            for (int mode = 0; mode < 2; mode++) {
                qdot_set_products(mode);
                for (int i = 0; i < 3; i++) linear(y1[i], ld[i], x, (int)cols, Ts[k], &W[i], 0, rows[i], bs[i], scratch);
                float *const ys[3] = { y2[0], y2[1], y2[2] };
                linear_group(3, ys, ld, x, (int)cols, Ts[k], ws, bs, scratch);
                int same = 1;
                for (int i = 0; i < 3; i++) same &= !memcmp(y1[i], y2[i], sizeof(float) * (size_t)(Ts[k] * rows[i]));
                CHECK(same, "%s T %d products %s: linear_group differs from one linear() per weight",
                      mixed ? "mixed types" : dtype_name(dts[0]), Ts[k], mode ? "low" : "f32");
                /* an input per weight (the first two share one), no biases */
                const float *const xs[3] = { x + cols, x + cols, x };
                for (int i = 0; i < 3; i++) linear(y1[i], ld[i], xs[i], (int)cols, Ts[k] < 8 ? Ts[k] : 8, &W[i], 0, rows[i], NULL, scratch);
                linear_group_xs(3, ys, ld, xs, (int)cols, Ts[k] < 8 ? Ts[k] : 8, ws, NULL, scratch);
                same = 1;
                for (int i = 0; i < 3; i++) same &= !memcmp(y1[i], y2[i], sizeof(float) * (size_t)((Ts[k] < 8 ? Ts[k] : 8) * rows[i]));
                CHECK(same, "%s T %d products %s: linear_group_xs differs from one linear() per weight and input",
                      mixed ? "mixed types" : dtype_name(dts[0]), Ts[k], mode ? "low" : "f32");
            }
        qdot_set_products(-1);
        for (int i = 0; i < 3; i++) { free((void *)W[i].data); free(scs[i]); free(b[i]); free(y1[i]); free(y2[i]); }
        free(x); free(scratch);
    }
}

/* Attention's BF16 kernels (qgemm.c) against their plain C twins on awkward sizes.
 * qgemm_rows_ld: keys rows of a wider cache row (ld 3 x cols + 5): as test_qgemm_twin,
 * 1e-5 of sum |k q|. attn_pv_bf16: positions 1, 2, 7, 255 and 256 (odd ones pair the last
 * with zero), value widths 32, 96, 512 and 40 (a tail past the 32-column passes), heads
 * 1, 3, 8, 9 and 16 (passes of 8 and a remainder), values ld = dv + 24 apart, onto an
 * output already holding values: float32 sums of n pairs against the twin's float64,
 * within n x 2^-23 of sum |p v| (the worst case of n float32 roundings). A product that
 * drops the last position must fail that bound. */
static void test_attn_bf16_twins(void) {
    if (!qgemm_ok(DT_BF16)) { t_skip("no AVX-512 BF16 in this build: the kernels are their C twins"); return; }
    {
        int64_t cols = 100, ld = 3 * cols + 5, rows = 9;
        int T = 16, ldxb = 128;
        uint16_t *w = malloc(2 * (size_t)(rows * ld)), *xb = malloc(2 * (size_t)(T * ldxb));
        float *x = malloc(sizeof(float) * (size_t)(T * cols)), *y = malloc(sizeof(float) * (size_t)(T * rows)),
              *yr = malloc(sizeof(float) * (size_t)(T * rows));
        for (int64_t i = 0; i < rows * ld; i++) w[i] = f32_to_bf16(frnd());
        for (int64_t i = 0; i < T * cols; i++) x[i] = frnd();
        qgemm_act_bf16(x, cols, T, cols, xb, ldxb);
        qgemm_rows_ld(w + 7, ld, rows, cols, xb, ldxb, T, y, rows);
        qgemm_rows_ld_ref(w + 7, ld, rows, cols, xb, ldxb, T, yr, rows);
        double worst = 0;
        for (int t = 0; t < T; t++)
            for (int64_t r = 0; r < rows; r++) {
                double mag = 0;
                for (int64_t i = 0; i < cols; i++) mag += fabs((double)bf16_to_f32(w[7 + r * ld + i]) * bf16_to_f32(xb[t * ldxb + i]));
                double d = fabs(y[t * rows + r] - yr[t * rows + r]) / (mag + 1e-30);
                if (d > worst) worst = d;
            }
        CHECK(worst <= 1e-5, "qgemm_rows_ld over rows %lld apart: %.3g of sum |kq| from the C twin", (long long)ld, worst);
        free(w); free(xb); free(x); free(y); free(yr);
    }
    const int ns[] = { 1, 2, 7, 255, 256 }, dvs[] = { 32, 96, 512, 40 }, groups[] = { 1, 3, 8, 9, 16 };
    int caught = 0, tried = 0;
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
        for (size_t di = 0; di < sizeof dvs / sizeof dvs[0]; di++)
            for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
                int n = ns[ni], dv = dvs[di], group = groups[gi], ldv = dv + 24, ldp = (n + 2) & ~1;
                uint16_t *v = malloc(2 * (size_t)(n * ldv)), *pb = calloc((size_t)(group * ldp), 2);
                float *o = malloc(sizeof(float) * (size_t)(group * dv)), *or = malloc(sizeof(float) * (size_t)(group * dv)),
                      *oc = malloc(sizeof(float) * (size_t)(group * dv));
                for (int64_t i = 0; i < (int64_t)n * ldv; i++) v[i] = f32_to_bf16(frnd());
                for (int x = 0; x < group; x++)
                    for (int p = 0; p < n; p++) pb[x * ldp + p] = f32_to_bf16(0.5f + 0.5f * frnd());
                for (int i = 0; i < group * dv; i++) o[i] = or[i] = oc[i] = frnd();
                attn_pv_bf16(v, ldv, n, dv, pb, ldp, group, o, dv);
                attn_pv_bf16_ref(v, ldv, n, dv, pb, ldp, group, or, dv);
                attn_pv_bf16(v, ldv, n - 1, dv, pb, ldp, group, oc, dv);      /* the deliberate error */
                double worst = 0;
                int bad_cut = 0;
                for (int x = 0; x < group; x++)
                    for (int c = 0; c < dv; c++) {
                        double mag = 0;
                        for (int p = 0; p < n; p++) mag += fabs((double)bf16_to_f32(pb[x * ldp + p]) * bf16_to_f32(v[p * ldv + c]));
                        double d = fabs(o[x * dv + c] - or[x * dv + c]) / (mag * n * 0x1p-23 + 1e-30);
                        if (d > worst) worst = d;
                        if (fabs(oc[x * dv + c] - or[x * dv + c]) > mag * n * 0x1p-23) bad_cut = 1;
                    }
                CHECK(worst <= 1, "attn_pv_bf16 n %d dv %d group %d: %.3g of the bound from the C twin", n, dv, group, worst);
                tried++;
                caught += bad_cut;
                free(v); free(pb); free(o); free(or); free(oc);
            }
    CHECK(caught == tried, "a value product that dropped its last position passed in %d of %d cases", tried - caught, tried);
}

/* Decode attention's float32 kernels (attn_dec.c) against their double-summing C twins,
 * over F32 and BF16 rows: key widths 64, 128 and 576 (whole vectors) and 40, 100 and 7
 * (a masked tail), positions 1, 15, 16, 17 and 300 (whole tiles of 16 and a remainder),
 * heads 1, 3, 4 and 16, rows ld = width + 24 elements apart. The products are exact, so
 * each result is within its count of float32 roundings of sum |terms|: n_terms x 2^-24
 * of it, with 2^-24 more for the score's scale and the output's prior value. A kernel
 * that skips one position must fail that bound. */
static void test_attn_dec_twins(void) {
    const int ws[] = { 64, 128, 576, 40, 100, 7 }, ns[] = { 1, 15, 16, 17, 300 }, groups[] = { 1, 3, 4, 16 };
    const DType dts[] = { DT_F32, DT_BF16 };
    double worst_s = 0, worst_o = 0;
    int caught = 0, tried = 0;
    for (size_t di = 0; di < 2; di++)
        for (size_t wi = 0; wi < sizeof ws / sizeof ws[0]; wi++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
                for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
                    DType dt = dts[di];
                    int w = ws[wi], n = ns[ni], group = groups[gi], ld = w + 24, lds = n + 3;
                    size_t esz = dt == DT_BF16 ? 2 : 4;
                    void *rows = malloc(esz * (size_t)n * ld);
                    float *fr = malloc(sizeof(float) * (size_t)n * ld);    /* the rows' values */
                    for (int64_t i = 0; i < (int64_t)n * ld; i++) {
                        float v = frnd();
                        if (dt == DT_BF16) { ((uint16_t *)rows)[i] = f32_to_bf16(v); fr[i] = bf16_to_f32(((uint16_t *)rows)[i]); }
                        else ((float *)rows)[i] = fr[i] = v;
                    }
                    float *q = malloc(sizeof(float) * (size_t)group * w), *p = malloc(sizeof(float) * (size_t)group * lds);
                    float *s = malloc(sizeof(float) * (size_t)group * lds), *sr = malloc(sizeof(float) * (size_t)group * lds);
                    float *o = malloc(sizeof(float) * (size_t)group * w), *or = malloc(sizeof(float) * (size_t)group * w),
                          *oc = malloc(sizeof(float) * (size_t)group * w);
                    for (int i = 0; i < group * w; i++) { q[i] = frnd(); o[i] = or[i] = oc[i] = frnd(); }
                    for (int i = 0; i < group * lds; i++) p[i] = 0.5f + 0.5f * frnd();
                    const float scale = 0.125f;
                    attn_dec_scores(dt, rows, ld, n, w, q, group, scale, s, lds);
                    attn_dec_scores_ref(dt, rows, ld, n, w, q, group, scale, sr, lds);
                    attn_dec_pv(dt, rows, ld, n, w, p, lds, group, o);
                    attn_dec_pv_ref(dt, rows, ld, n, w, p, lds, group, or);
                    attn_dec_pv(dt, rows, ld, n - 1, w, p, lds, group, oc);           /* the deliberate error */
                    int bad_cut = 0;
                    for (int x = 0; x < group; x++) {
                        for (int j = 0; j < n; j++) {
                            double mag = 0;
                            for (int i = 0; i < w; i++) mag += fabs((double)q[x * w + i] * fr[(int64_t)j * ld + i]);
                            double d = fabs(s[x * lds + j] - sr[x * lds + j]) / ((w + 1) * 0x1p-24 * mag * scale + 1e-30);
                            if (d > worst_s) worst_s = d;
                        }
                        for (int c = 0; c < w; c++) {
                            double mag = fabs(or[x * w + c]);
                            for (int j = 0; j < n; j++) mag += fabs((double)p[x * lds + j] * fr[(int64_t)j * ld + c]);
                            double bound = (n + 1) * 0x1p-24 * mag + 1e-30;
                            double d = fabs(o[x * w + c] - or[x * w + c]) / bound;
                            if (d > worst_o) worst_o = d;
                            if (fabs(oc[x * w + c] - or[x * w + c]) > bound) bad_cut = 1;
                        }
                    }
                    tried++;
                    caught += bad_cut;
                    free(rows); free(fr); free(q); free(p); free(s); free(sr); free(o); free(or); free(oc);
                }
    printf("      scores %.3g, values %.3g of their bounds (worst over %d cases)\n", worst_s, worst_o, tried);
    CHECK(worst_s <= 1, "attn_dec_scores: %.3g of the bound from the C twin", worst_s);
    CHECK(worst_o <= 1, "attn_dec_pv: %.3g of the bound from the C twin", worst_o);
    CHECK(caught == tried, "a value sum that dropped its last position passed in %d of %d cases", tried - caught, tried);
}

/* linear_heads equals one linear() per head bit for bit: every type, both product modes,
 * T 1 and 3 (one parallel region over all heads' rows) and 9 (one linear() per head),
 * heads of 7 rows (a thread's share ends inside a head) and of 130 (two threads), each
 * head's rows at h*w_head + w_off of a taller weight, inputs and outputs spaced apart. */
static void test_linear_heads(void) {
    const struct { int H; int64_t nr, w_head, w_off; } shapes[2] = { { 5, 7, 9, 2 }, { 16, 130, 131, 1 } };
    const int Ts[3] = { 1, 3, 9 };
    const int64_t cols = 256;
    for (int ti = 0; ti < N_TYPES; ti++) {
        DType dt = all_types[ti];
        for (int si = 0; si < 2; si++) {
            int H = shapes[si].H;
            int64_t nr = shapes[si].nr, wh = shapes[si].w_head, wo = shapes[si].w_off, rows = H * wh;
            int64_t rb = (int64_t)dtype_bytes(dt, cols), xh = cols + 3, yh = nr + 2;
            uint8_t *data = malloc((size_t)(rb * rows));
            float *sc = NULL;
            if (dt == DT_F8_E4M3) {
                sc = malloc(sizeof(float) * (size_t)(((rows + 127) / 128) * 2));
                for (int64_t k = 0; k < ((rows + 127) / 128) * 2; k++) sc[k] = 0.01f * (float)(k + 1);
            }
            for (int64_t r = 0; r < rows; r++) {
                float *srow;
                uint8_t *one = make_row(dt, cols, &srow);
                memcpy(data + r * rb, one, (size_t)rb);
                free(one); free(srow);
            }
            Mat W = { dt, data, sc, rows, cols };
            float *x = malloc(sizeof(float) * (size_t)(9 * H * xh)), *scratch = malloc(sizeof(float) * linear_scratch_floats(cols));
            float *y1 = malloc(sizeof(float) * (size_t)(9 * H * yh)), *y2 = malloc(sizeof(float) * (size_t)(9 * H * yh));
            for (int64_t i = 0; i < 9 * H * xh; i++) x[i] = frnd();
            for (int k = 0; k < 3; k++)
                for (int mode = 0; mode < 2; mode++) {
                    qdot_set_products(mode);
                    for (int64_t i = 0; i < 9 * H * yh; i++) y1[i] = y2[i] = -1;
                    for (int h = 0; h < H; h++)
                        linear(y1 + h * yh, (int)(H * yh), x + h * xh, (int)(H * xh), Ts[k], &W, h * wh + wo, nr, NULL, scratch);
                    linear_heads(H, y2, (int)(H * yh), yh, x, (int)(H * xh), xh, Ts[k], &W, wh, wo, nr, scratch);
                    CHECK(!memcmp(y1, y2, sizeof(float) * (size_t)(9 * H * yh)),
                          "%s, %d heads of %lld rows, T %d, products %s: linear_heads differs from one linear() per head",
                          dtype_name(dt), H, (long long)nr, Ts[k], mode ? "low" : "f32");
                }
            qdot_set_products(-1);
            free(data); free(sc); free(x); free(scratch); free(y1); free(y2);
        }
    }
}

/* Batch-1 int8 products four rows a call (linear's decode path) equal one row at a
 * time bit for bit and the C twin within 1e-5 of sum |w x|, every block type, block
 * counts 1, 3, 5, 17 (Q4_0 and Q4_1: pairs of blocks and an odd last one). A changed
 * scale in one block of the third row must show in that row alone. */
static void test_rows4_int(void) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        DType dt = all_types[ti];
        if (!qdot_int_type(dt)) continue;
        int64_t cs[16];
        int ns = sizes(dt, cs);
        for (int si = 0; si < ns; si++) {
            int64_t cols = cs[si];
            uint8_t *r[4], *buf = malloc(qdot_act_bytes(1, cols) + 64);
            float *sr[4], *x = malloc(sizeof(float) * (size_t)cols), got[4], one[4], twin[4];
            for (int k = 0; k < 4; k++) r[k] = make_row(dt, cols, &sr[k]);
            for (int64_t i = 0; i < cols; i++) x[i] = frnd() * (1 + (float)(i % 3));
            QAct qa;
            qdot_act_quant(dt, x, cols, 1, cols, buf, &qa);
            const void *rows[4] = { r[0], r[1], r[2], r[3] };
            qdot_rows4_int(dt, rows, &qa, got);
            for (int k = 0; k < 4; k++) { qdot_row_int(dt, r[k], &qa, 1, &one[k]); qdot_row_int_ref(dt, r[k], &qa, 1, &twin[k]); }
            CHECK(!memcmp(got, one, sizeof got), "%s cols %lld: four rows a call %.9g %.9g %.9g %.9g, one at a time %.9g %.9g %.9g %.9g",
                  dtype_name(dt), (long long)cols, got[0], got[1], got[2], got[3], one[0], one[1], one[2], one[3]);
            for (int k = 0; k < 4; k++) {
                float *w = malloc(sizeof(float) * (size_t)cols);
                double mag = 0;
                qdot_widen_ref(dt, r[k], sr[k], cols, w);
                for (int64_t i = 0; i < cols; i++) mag += fabs((double)w[i] * x[i]);
                CHECK(close_enough(got[k], twin[k], mag), "%s cols %lld row %d: %.9g, the C twin %.9g", dtype_name(dt),
                      (long long)cols, k, got[k], twin[k]);
                free(w);
            }
            size_t off = dt == DT_Q6_K ? 208 : 0;                  /* row 2's first block's d, doubled */
            put_f16(r[2] + off, 2.0f * f16_to_f32((uint16_t)(r[2][off] | r[2][off + 1] << 8)) + 0.25f);
            float bad[4];
            qdot_rows4_int(dt, rows, &qa, bad);
            CHECK(bad[0] == got[0] && bad[1] == got[1] && bad[3] == got[3] && bad[2] != got[2],
                  "%s cols %lld: a changed scale in row 2 gave %.9g %.9g %.9g %.9g (before %.9g %.9g %.9g %.9g)", dtype_name(dt),
                  (long long)cols, bad[0], bad[1], bad[2], bad[3], got[0], got[1], got[2], got[3]);
            for (int k = 0; k < 4; k++) { free(r[k]); free(sr[k]); }
            free(x); free(buf);
        }
    }
}

/* The activations' 8-bit codes against llama.cpp's quantize_row_q8_0_ref, written out
 * here: per block of 32 (Q8_0 form) or 256 (Q8_K form, for Q4_K), d = amax / 127 and
 * q = roundf(x / d) by the reciprocal, bit for bit, with the scales and the integer
 * sums. A block of amax 127 (d = 1) holds halves, which roundf takes away from zero,
 * and values a hair under a half; rounding halves to even instead must be caught. */
static void test_act_quant_exact(void) {
    enum { T = 3, COLS = 512 };
    float *x = malloc(sizeof(float) * T * COLS);
    uint8_t *buf = malloc(qdot_act_bytes(T, COLS) + 64);
    const float ties[] = { 127, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -126.5f, 0.49999997f, -0.49999997f, 3.5000002f };
    for (int i = 0; i < T * COLS; i++) x[i] = frnd() * (1 + (float)(i % 5)) * (i % 64 == 7 ? 40 : 1);
    for (int i = 0; i < 256; i++) x[COLS + i] = 5 * frnd();        /* token 1: amax 127 in its first 256 too */
    for (int k = 0; k < (int)(sizeof ties / sizeof ties[0]); k++) x[COLS + 32 + k] = ties[k];   /* token 1, block 1 */
    x[2 * COLS + 300] = NAN;                                                                /* ignored by the maximum */
    for (int form = 0; form < 2; form++) {
        DType dt = form ? DT_Q4_K : DT_Q8_0;
        int bs = form ? 256 : 32, bad = 0, even_differs = 0;
        QAct qa;
        qdot_act_quant(dt, x, COLS, T, COLS, buf, &qa);
        for (int t = 0; t < T; t++)
            for (int b = 0; b < COLS / bs; b++) {
                const float *xb = x + t * COLS + b * bs;
                float amax = 0;
                for (int i = 0; i < bs; i++) amax = fmaxf(amax, fabsf(xb[i]));
                float d = amax / 127, id = d ? 1.0f / d : 0;
                float got_d = form ? qa.dk[t * (COLS / 256) + b] : qa.dx[t * (COLS / 32) + b];
                const int8_t *q = (form ? qa.qk : qa.q) + t * COLS + b * bs;
                if (got_d != d) bad++;
                for (int i = 0; i < bs; i++) {
                    if (isnan(xb[i])) continue;
                    int want = (int)roundf(xb[i] * id);
                    if (q[i] != want) bad++;
                    if ((int)rintf(xb[i] * id) != q[i]) even_differs++;
                }
                for (int h = 0; h < bs / 32; h++) {       /* sums per 32 (Q8_K: integers) */
                    int s = 0;
                    for (int i = 0; i < 32; i++) s += q[32 * h + i];
                    if (form ? qa.bk[t * (COLS / 32) + b * 8 + h] != s : qa.sx[t * (COLS / 32) + b] != d * (float)s) bad++;
                }
            }
        CHECK(bad == 0, "%s activations: %d codes, scales or sums differ from quantize_row_q8_0_ref's", form ? "Q8_K" : "Q8_0", bad);
        CHECK(even_differs > 0, "%s activations: halves rounded to even were not told apart", form ? "Q8_K" : "Q8_0");
    }
    free(x); free(buf);
}

/* Logits of n tokens fed one at a time (decode: the products take the row path), from
 * a model path (dtype: re-encoding when recode), products f32 (0) or q8 (1). */
static int decode_logits(const char *path, int recode, DType dt, int products, const int *tok, int n, float *out, int *V) {
    Model m;
    Err e = { "" };
    LoadOpts o = { .dtype = dt, .recode = recode };
    if (model_load(&m, path, &o, &e)) { t_fail(__FILE__, __LINE__, "load %s: %s", path, e.msg); return -1; }
    *V = m.cfg.vocab;
    KVCache kv;
    int rc = kv_create(&kv, &m, 1, n, &e), seq = 0;
    qdot_set_products(products);
    for (int i = 0; i < n && !rc; i++)
        rc = model_forward(&m, &kv, 1, tok + i, &seq, &i, NULL, out ? out + (size_t)i * m.cfg.vocab : NULL, NULL, &e);
    qdot_set_products(-1);
    if (rc) t_fail(__FILE__, __LINE__, "%s: %s", path, e.msg);
    kv_free(&kv);
    model_free(&m);
    return rc;
}

/* --products q8 against f32 in decode: its cost is the activations' rounding alone.
 * Bounds from measurement, with room: v3-tiny re-encoded Q8_0, mean KL 7e-6 (bound
 * 1e-3); SmolLM2-135M Q4_1 as shipped, 4.1e-3 over 77 positions and 6.2e-3 over the
 * 12 here (bound 2e-2: its
 * activations have outlier dimensions, so a block's other 31 values round coarsely).
 * KL > 0 shows the integer path ran. */
static void test_q8_products_cost(void) {
    int tok[24];
    for (int i = 0; i < 24; i++) tok[i] = (int)((37u * (unsigned)i + 11u) % 400u);
    const char *paths[2] = { NULL, "models/SmolLM2-135M-Instruct.Q4_1.gguf" };
    const char *env = getenv("EFFBENCH_SMOLLM2");
    if (env && *env) paths[1] = env;
    Case c;
    if (case_load("deepseek/v3-tiny", &c)) return;
    paths[0] = c.dir;
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(paths[k], "rb");
        if (!f && k == 1) { if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    no %s: SmolLM2 part not run\n", paths[1]); break; }
        if (f) fclose(f);
        int V = 0, n = k ? 12 : 16;
        if (decode_logits(paths[k], !k, DT_Q8_0, 0, tok, 1, NULL, &V)) break;
        float *a = malloc(sizeof(float) * (size_t)n * V), *b = malloc(sizeof(float) * (size_t)n * V);
        if (!decode_logits(paths[k], !k, DT_Q8_0, 0, tok, n, a, &V) && !decode_logits(paths[k], !k, DT_Q8_0, 1, tok, n, b, &V)) {
            double kl;
            kl_rows(a, b, n, V, &kl);
            double bound = k ? 2e-2 : 1e-3;
            CHECK(kl > 0 && kl < bound, "%s: q8 products' mean KL against f32 products %.3g (expected 0 < KL < %.0e)", paths[k], kl, bound);
            if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    %s: q8 products, mean KL %.3g\n", paths[k], kl);
        }
        free(a); free(b);
    }
    case_free(&c);
}

/* --products low in BF16 decode: one token's activations rounded to BF16 and the rows
 * multiplied as stored in VDPBF16PS. v3-tiny and llama-tiny re-encoded BF16, 16 tokens
 * one at a time, against float32 activations on the same weights: bound 1e-4, as for
 * BF16 prefill (each product moves by up to 2^-8 of its terms); KL > 0 shows the path
 * ran. */
static void test_bf16_decode_cost(void) {
    if (!qgemm_ok(DT_BF16)) { t_skip("no AVX-512 BF16 in this build"); return; }
    const char *cases[] = { "deepseek/v3-tiny", "dense/llama-tiny" };
    int tok[16];
    for (int i = 0; i < 16; i++) tok[i] = (int)((37u * (unsigned)i + 11u) % 200u);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Case c;
        if (case_load(cases[k], &c)) continue;
        int V = 0;
        if (decode_logits(c.dir, 1, DT_BF16, 0, tok, 1, NULL, &V)) { case_free(&c); continue; }
        float *a = malloc(sizeof(float) * 16 * (size_t)V), *b = malloc(sizeof(float) * 16 * (size_t)V);
        if (!decode_logits(c.dir, 1, DT_BF16, 0, tok, 16, a, &V) && !decode_logits(c.dir, 1, DT_BF16, 1, tok, 16, b, &V)) {
            double kl;
            kl_rows(a, b, 16, V, &kl);
            CHECK(kl > 0 && kl < 1e-4, "%s BF16 decode: low products' mean KL against float32 activations %.3g (expected 0 < KL < 1e-4)",
                  cases[k], kl);
            if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    %s BF16, 16 tokens: low products in decode, mean KL %.3g\n", cases[k], kl);
        }
        free(a); free(b);
        case_free(&c);
    }
}

/* BF16 prefill tiles (qgemm.c) against their plain C twin and float64 on awkward sizes:
 * tokens not a multiple of the 6-token tile or the 72-token block, rows not a multiple
 * of 4, columns not a multiple of the 32-element step. The rounding of the activations
 * to BF16 is bit-exact against the C twin (both round to nearest even). Both products
 * take the same BF16 operands, so they differ by float32 summation order alone: 1e-5 of
 * sum |w x| (as above; VDPBF16PS adds pairs before each lane's sum, one more rounding).
 * A product that drops its last column must fail that bound. */
static void test_qgemm_twin(void) {
    if (!qgemm_ok(DT_BF16)) { t_skip("no AVX-512 BF16 in this build: qgemm_rows is its C twin"); return; }
    int Ts[] = { 1, 5, 6, 7, 13, 73, 150 };
    int64_t rows_list[] = { 1, 3, 4, 9 }, cols_list[] = { 1, 31, 32, 33, 100, 4099 };
    int caught = 0, tried = 0;
    for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++) {
        int64_t cols = cols_list[ci], ldxb = (cols + 31) / 32 * 32 + 32 * (ci & 1);   /* padded rows too */
        for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
            int64_t rows = rows_list[ri];
            uint16_t *w = malloc(2 * (size_t)(rows * cols));
            for (int64_t i = 0; i < rows * cols; i++) w[i] = f32_to_bf16(frnd());
            int bad_cut = 0;                     /* over every T: some sum must notice */
            for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) {
                int T = Ts[k];
                float *x = malloc(sizeof(float) * (size_t)(T * cols)), *y = malloc(sizeof(float) * (size_t)(T * rows)),
                      *yr = malloc(sizeof(float) * (size_t)(T * rows)), *yc = malloc(sizeof(float) * (size_t)(T * rows));
                uint16_t *xb = malloc(2 * (size_t)(T * ldxb)), *xr = malloc(2 * (size_t)(T * ldxb));
                for (int64_t i = 0; i < T * cols; i++) x[i] = frnd() * (i % 7 == 0 ? 100.0f : 1.0f);
                memset(xb, 0xff, 2 * (size_t)(T * ldxb));
                qgemm_act_bf16(x, cols, T, cols, xb, ldxb);
                qgemm_act_bf16_ref(x, cols, T, cols, xr, ldxb);
                CHECK(!memcmp(xb, xr, 2 * (size_t)(T * ldxb)), "BF16 rounding of %d x %lld activations differs from the C twin",
                      T, (long long)cols);
                qgemm_rows(w, rows, cols, xb, ldxb, T, y, rows);
                qgemm_rows_ref(w, rows, cols, xr, ldxb, T, yr, rows);
                if (cols > 1) qgemm_rows(w, rows, cols - 1, xb, ldxb, T, yc, rows);  /* the deliberate error */
                double worst = 0, worst_ref = 0;
                for (int t = 0; t < T; t++)
                    for (int64_t r = 0; r < rows; r++) {
                        double exact = 0, mag = 0;
                        for (int64_t i = 0; i < cols; i++) {
                            double p = (double)bf16_to_f32(w[r * cols + i]) * bf16_to_f32(xr[t * ldxb + i]);
                            exact += p;
                            mag += fabs(p);
                        }
                        double d = fabs(y[t * rows + r] - yr[t * rows + r]) / (mag + 1e-30);
                        double dr = fabs(yr[t * rows + r] - exact) / (mag + 1e-30);
                        if (d > worst) worst = d;
                        if (dr > worst_ref) worst_ref = dr;
                        if (cols > 1 && fabs(yc[t * rows + r] - yr[t * rows + r]) > 1e-5 * mag) bad_cut = 1;
                    }
                CHECK(worst <= 1e-5, "qgemm T %d rows %lld cols %lld: %.3g of sum |wx| from the C twin", T, (long long)rows,
                      (long long)cols, worst);
                CHECK(worst_ref <= 1e-5, "qgemm C twin T %d rows %lld cols %lld: %.3g of sum |wx| from float64", T,
                      (long long)rows, (long long)cols, worst_ref);
                free(x); free(y); free(yr); free(yc); free(xb); free(xr);
            }
            if (cols > 1) { tried++; caught += bad_cut; }
            free(w);
        }
    }
    CHECK(tried > 0 && caught == tried, "a product that dropped its last column passed in %d of %d cases", tried - caught, tried);
}

/* the int8 roundings' bound for each (token, row) of the F16 panels (0 for BF16), from
 * the weights and float activations, with the scales the packing takes (max / 127 per
 * 128 columns) */
static double *lo_bounds(DType dt, const uint16_t *w, int64_t rows, int64_t cols, const float *x, int T) {
    double *e = calloc((size_t)(T * rows), sizeof(double));
    if (dt != DT_F16) return e;
    for (int t = 0; t < T; t++)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c0 = 0; c0 < cols; c0 += 128) {
                int64_t c1 = c0 + 128 < cols ? c0 + 128 : cols;
                double lmax = 0, xmax = 0;
                for (int64_t i = c0; i < c1; i++) {
                    float f = f16_to_f32(w[r * cols + i]);
                    lmax = fmax(lmax, fabs(f - bf16_to_f32(f32_to_bf16(f))));
                    xmax = fmax(xmax, fabs(x[(int64_t)t * cols + i]));
                }
                double s = lmax / 127, d = xmax / 127;
                for (int64_t i = c0; i < c1; i++) {
                    float f = f16_to_f32(w[r * cols + i]);
                    double l = fabs(f - bf16_to_f32(f32_to_bf16(f))), xa = fabs(x[(int64_t)t * cols + i]);
                    e[(int64_t)t * rows + r] += l * (xa / 256 + d / 2) + s / 2 * (xa + d / 2);
                }
            }
    return e;
}

/* BF16 and F16 prefill panels (qgemm.c) against their plain C twin and float64 on
 * awkward sizes: tokens not a multiple of the 12-token tile (32, 37, 150), rows not a
 * multiple of the 32-row panel (1, 17, 33, 70), columns odd, short of one 16-column
 * chunk or one 128-column block, and past the 2048-column slab (2049, 4099: slabs add
 * into y). The packed activations equal the C twin's bit for bit (both round to nearest
 * even). Kernel and twin take the same BF16 activations, the same high parts and the
 * same int8 remainders and activations (F16), so they differ by float32 summation order
 * alone: 1e-5 of sum |w x|, as above. Against float64 with the weights exact, F16 also
 * carries the int8 roundings, bounded per column by |l| (2^-8 |x| + d/2) + s/2 (|x| + d/2)
 * (l the remainder, s and d the block's int8 scales of remainders and activations; the
 * reference multiplies l by x rounded to BF16, within 2^-8 of x, where the int8
 * activations stand for x itself): that bound is added. Deliberate errors that must fail
 * these bounds: activations whose last column was dropped, and F16 weights multiplied as
 * their rounded BF16 parts alone. */
static void test_qgemm_panel_twin(void) {
    if (!qgemm_panel_ok(DT_BF16)) { t_skip("no AVX-512 BF16 in this build: qgemm_rows_panel is its C twin"); return; }
    int Ts[] = { 32, 37, 150 };
    int64_t rows_list[] = { 1, 17, 33, 70 }, cols_list[] = { 2, 31, 100, 2049, 4099 };
    DType dts[] = { DT_BF16, DT_F16 };
    int caught = 0, tried = 0, caught_h = 0, tried_h = 0;
    for (size_t di = 0; di < 2; di++)
        for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++)
            for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
                DType dt = dts[di];
                int64_t cols = cols_list[ci], rows = rows_list[ri];
                uint16_t *w = malloc(2 * (size_t)(rows * cols)), *wh = malloc(2 * (size_t)(rows * cols));
                for (int64_t i = 0; i < rows * cols; i++) {
                    float f = frnd() * (i % 5 == 0 ? 8.0f : 1.0f);
                    w[i] = dt == DT_F16 ? f32_to_f16(f) : f32_to_bf16(f);
                    wh[i] = f32_to_bf16(dt == DT_F16 ? f16_to_f32(w[i]) : f);
                }
                void *panel = aligned_alloc(64, (qgemm_panel_bytes(dt, cols) + 63) / 64 * 64);
                int cut = 0, high = 0;
                for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) {
                    int T = Ts[k];
                    size_t xpb = qgemm_act_packed_bytes(dt, T, cols);
                    float *x = malloc(sizeof(float) * (size_t)(T * cols)), *y = malloc(sizeof(float) * (size_t)(T * rows)),
                          *yr = malloc(sizeof(float) * (size_t)(T * rows)), *yc = malloc(sizeof(float) * (size_t)(T * rows)),
                          *yh = malloc(sizeof(float) * (size_t)(T * rows));
                    uint32_t *xp = aligned_alloc(64, (xpb + 63) / 64 * 64), *xr = aligned_alloc(64, (xpb + 63) / 64 * 64),
                             *xc = aligned_alloc(64, (xpb + 63) / 64 * 64);
                    for (int64_t i = 0; i < T * cols; i++) x[i] = frnd() * (i % 7 == 0 ? 100.0f : 1.0f);
                    memset(xp, 0, xpb), memset(xr, 0, xpb);
                    qgemm_pack_act(dt, x, cols, 0, T / 3, T, cols, xp);     /* two ranges, as two threads pack */
                    qgemm_pack_act(dt, x, cols, T / 3, T, T, cols, xp);
                    qgemm_pack_act_ref(dt, x, cols, 0, T, T, cols, xr);
                    CHECK(!memcmp(xp, xr, xpb), "packed %s activations (%d x %lld) differ from the C twin's", dtype_name(dt), T,
                          (long long)cols);
                    double *lob = lo_bounds(dt, w, rows, cols, x, T);     /* before the deliberate error */
                    for (int t = 0; t < T; t++) x[(int64_t)t * cols + cols - 1] = 0;   /* the deliberate error */
                    qgemm_pack_act(dt, x, cols, 0, T, T, cols, xc);
                    qgemm_rows_panel(dt, w, rows, cols, xp, T, y, rows, panel);
                    qgemm_rows_panel_ref(dt, w, rows, cols, xr, T, yr, rows);
                    qgemm_rows_panel(dt, w, rows, cols, xc, T, yc, rows, panel);
                    if (dt == DT_F16) qgemm_rows_panel(DT_BF16, wh, rows, cols, xp, T, yh, rows, panel);
                    double worst = 0, worst_ref = 0;
                    for (int t = 0; t < T; t++)
                        for (int64_t r = 0; r < rows; r++) {
                            double exact = 0, mag = 0;
                            for (int64_t i = 0; i < cols; i++) {
                                uint32_t v = xr[(int64_t)(t / 12) * ((cols + 15) / 16 * 8) * 12 + (i / 2) * 12 + t % 12];
                                double wi = dt == DT_F16 ? f16_to_f32(w[r * cols + i]) : bf16_to_f32(w[r * cols + i]);
                                double p = wi * bf16_to_f32((uint16_t)(i & 1 ? v >> 16 : v));
                                exact += p;
                                mag += fabs(p);
                            }
                            int64_t o = (int64_t)t * rows + r;
                            if (fabs(y[o] - yr[o]) / (mag + 1e-30) > worst) worst = fabs(y[o] - yr[o]) / (mag + 1e-30);
                            double tol = 1e-5 * mag + lob[o];
                            if (fabs(yr[o] - exact) / (tol + 1e-30) > worst_ref) worst_ref = fabs(yr[o] - exact) / (tol + 1e-30);
                            if (fabs(yc[o] - exact) > tol) cut = 1;
                            if (dt == DT_F16 && fabs(yh[o] - exact) > tol) high = 1;
                        }
                    CHECK(worst <= 1e-5, "qgemm panels %s T %d rows %lld cols %lld: %.3g of sum |wx| from the C twin", dtype_name(dt),
                          T, (long long)rows, (long long)cols, worst);
                    CHECK(worst_ref <= 1, "qgemm panels' C twin %s T %d rows %lld cols %lld: %.3g of its bound from float64",
                          dtype_name(dt), T, (long long)rows, (long long)cols, worst_ref);
                    free(lob);
                    free(x); free(y); free(yr); free(yc); free(yh); free(xp); free(xr); free(xc);
                }
                tried++, caught += cut;
                if (dt == DT_F16) tried_h++, caught_h += high;
                free(w); free(wh); free(panel);
            }
    CHECK(caught == tried, "a product that dropped its last column passed in %d of %d cases", tried - caught, tried);
    CHECK(caught_h == tried_h, "F16 multiplied as its BF16 high parts alone passed in %d of %d cases", tried_h - caught_h, tried_h);
}

/* Block-type prefill tiles (qgemm_int.c) against their plain C twin and float64 on
 * awkward sizes: tokens not a multiple of the 6-token tile, rows not a multiple of the
 * 32-row panel (1, 17, 33, 70), 1, 3 and 17 blocks of columns. Both products take the
 * same integer levels and per-32 activations, so they differ by float32 summation order
 * alone (1e-5 of sum |w x|, as above); the twin stays within the activations' rounding
 * of the float64 product of the decoded weights (sum |w_i| dx_i / 2, per 32). A product
 * over one block fewer (a shorter row stride too) must fail the first bound. */
static void test_qgemm_int_twin(void) {
    static const DType types[] = { DT_Q8_0, DT_Q4_0, DT_Q4_1, DT_Q4_K, DT_Q5_K, DT_Q6_K };
    static const int Ts[] = { 1, 5, 7, 13 };
    static const int64_t rows_list[] = { 1, 17, 33, 70 }, mult[] = { 1, 3, 17 };
    if (!qgemm_int_ok(DT_Q8_0)) { t_skip("no AVX-512 VNNI in this build: qgemm_int_rows is its C twin"); return; }
    int caught = 0, tried = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        DType dt = types[ti];
        int blk = dtype_block(dt);
        for (size_t ci = 0; ci < sizeof mult / sizeof mult[0]; ci++) {
            int64_t cols = mult[ci] * blk, rb = (int64_t)dtype_bytes(dt, cols);
            if (cols > 1024 && dt != DT_Q4_K && dt != DT_Q8_0) continue;     /* the long rows: two types suffice */
            void *panel = aligned_alloc(64, (qgemm_int_panel_bytes(cols) + 63) / 64 * 64);
            for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
                int64_t rows = rows_list[ri];
                uint8_t *w = malloc((size_t)(rows * rb));
                float *wf = malloc(sizeof(float) * (size_t)(rows * cols));
                for (int64_t r = 0; r < rows; r++) {
                    float *srow;
                    uint8_t *one = make_row(dt, cols, &srow);
                    memcpy(w + r * rb, one, (size_t)rb);
                    qdot_widen_ref(dt, one, srow, cols, wf + r * cols);
                    free(one); free(srow);
                }
                int bad_cut = 0;
                for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) {
                    int T = Ts[k];
                    float *x = malloc(sizeof(float) * (size_t)(T * cols)), *y = malloc(sizeof(float) * (size_t)(T * rows)),
                          *yr = malloc(sizeof(float) * (size_t)(T * rows)), *yc = malloc(sizeof(float) * (size_t)(T * rows));
                    void *buf = malloc(qdot_act_bytes(T, cols) + 64);
                    for (int64_t i = 0; i < T * cols; i++) x[i] = frnd() * (i % 7 == 0 ? 30.0f : 1.0f);
                    QAct qa;
                    qdot_act_quant(DT_Q8_0, x, cols, T, cols, buf, &qa);
                    qgemm_int_rows(dt, w, rows, cols, &qa, y, rows, panel);
                    qgemm_int_rows_ref(dt, w, rows, cols, &qa, yr, rows);
                    if (cols > blk) qgemm_int_rows(dt, w, rows, cols - blk, &qa, yc, rows, panel);   /* the deliberate error */
                    double worst = 0, worst_ref = 0;
                    for (int t = 0; t < T; t++)
                        for (int64_t r = 0; r < rows; r++) {
                            double exact = 0, mag = 0, round = 0;
                            for (int64_t i = 0; i < cols; i++) {
                                double wi = wf[r * cols + i];
                                exact += wi * x[t * cols + i];
                                mag += fabs(wi * x[t * cols + i]);
                                round += fabs(wi) * qa.dx[t * (cols / 32) + i / 32] / 2;
                            }
                            double d = fabs(y[t * rows + r] - yr[t * rows + r]) / (mag + 1e-30);
                            double dr = fabs(yr[t * rows + r] - exact) / (round + 1e-5 * mag + 1e-30);
                            if (d > worst) worst = d;
                            if (dr > worst_ref) worst_ref = dr;
                            if (cols > blk && fabs(yc[t * rows + r] - yr[t * rows + r]) > 1e-5 * mag) bad_cut = 1;
                        }
                    CHECK(worst <= 1e-5, "%s int8 tiles T %d rows %lld cols %lld: %.3g of sum |wx| from the C twin",
                          dtype_name(dt), T, (long long)rows, (long long)cols, worst);
                    CHECK(worst_ref <= 1, "%s int8 C twin T %d rows %lld cols %lld: %.3g of the rounding bound from float64",
                          dtype_name(dt), T, (long long)rows, (long long)cols, worst_ref);
                    free(x); free(y); free(yr); free(yc); free(buf);
                }
                if (cols > blk) { tried++; caught += bad_cut; }
                free(w); free(wf);
            }
            free(panel);
        }
    }
    CHECK(tried > 0 && caught == tried, "an int8 product over one block fewer passed in %d of %d cases", tried - caught, tried);
}

/* --products low in prefill: its cost is the activations' rounding. v3-tiny and
 * llama-tiny re-encoded, n tokens at once, against the same weights with float32
 * activations. BF16 weights (qgemm.c: activations to BF16; 16 tokens take the tiles, 40
 * the panels) and F16 weights (40 tokens, panels, the remainders past BF16 in int8):
 * bound 1e-4, 50x the 1.9e-6 measured on v3-tiny (4.8e-7 on llama-tiny; F16 3.0e-6 and
 * 5.5e-7); BF16 keeps 8 significant bits, so
 * each product moves by about 2^-9 of its terms' magnitudes. Q8_0 and Q4_1 weights
 * (qgemm_int.c: activations to int8 per 32): bound 1e-3, as for decode above; measured
 * (v3-tiny, llama-tiny) Q8_0 2.3e-6 and 3.9e-6, Q4_1 2.3e-6 and 4.2e-6. The goldens'
 * widths are not multiples of 256, so Q4_K would fall back to Q4_1 here: the weights'
 * type as held is checked, so that a fallback cannot pass unnoticed. KL > 0 shows the
 * low path ran. */
static void products_cost(DType dt, double bound, int n) {
    const char *cases[] = { "deepseek/v3-tiny", "dense/llama-tiny" };
    int tok[64];
    for (int i = 0; i < n; i++) tok[i] = (int)((53u * (unsigned)i + 7u) % 200u);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Case c;
        if (case_load(cases[k], &c)) continue;
        DType odt;
        float *a = NULL, *b = NULL;
        int V = 0;
        {
            Model m;
            Err e = { "" };
            LoadOpts o = { .dtype = dt, .recode = 1 };
            if (model_load(&m, c.dir, &o, &e)) { t_fail(__FILE__, __LINE__, "load %s: %s", c.dir, e.msg); case_free(&c); continue; }
            V = m.cfg.vocab;
            model_free(&m);
        }
        a = malloc(sizeof(float) * (size_t)n * (size_t)V);
        b = malloc(sizeof(float) * (size_t)n * (size_t)V);
        qdot_set_products(0);
        int rc = logits_of(c.dir, 1, dt, tok, n, a, &odt);
        qdot_set_products(1);
        if (!rc) rc = logits_of(c.dir, 1, dt, tok, n, b, &odt);
        qdot_set_products(-1);
        if (!rc) {
            double kl;
            kl_rows(a, b, n, V, &kl);
            CHECK(odt == dt, "%s: o_proj held as %s, not %s", cases[k], dtype_name(odt), dtype_name(dt));
            CHECK(kl > 0 && kl < bound, "%s %s, %d tokens: low products' mean KL against float32 activations in prefill %.3g (expected 0 < KL < %.0e)",
                  cases[k], dtype_name(dt), n, kl, bound);
            if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    %s %s, %d tokens: low products in prefill, mean KL %.3g\n", cases[k], dtype_name(dt), n, kl);
        }
        free(a); free(b);
        case_free(&c);
    }
}

static void test_bf16_products_cost(void) {
    if (!qgemm_ok(DT_BF16)) { t_skip("no AVX-512 BF16 in this build"); return; }
    products_cost(DT_BF16, 1e-4, 16);
    products_cost(DT_BF16, 1e-4, 40);
    products_cost(DT_F16, 1e-4, 40);
}

static void test_int8_prefill_cost(void) {
    if (!qgemm_int_ok(DT_Q8_0)) { t_skip("no AVX-512 VNNI in this build"); return; }
    products_cost(DT_Q8_0, 1e-3, 16);
    products_cost(DT_Q4_1, 1e-3, 16);
}

const TestDef qdot_tests[] = {
    { "qdot widening is bit-exact against the C twin, every type", test_widen_exact },
    { "qdot products match the C twin and float64, every type, T 1-8", test_dot_twin },
    { "qdot comparison catches a changed block scale", test_dot_detects_error },
    { "qdot four rows at once equal four single-row products bit for bit", test_rows4_exact },
    { "linear() on every stored type against float64", test_linear_types },
    { "fast encoders: errors within 1.3x the reference encoders'", test_fast_encoders },
    { "int8 products match the C twin, and float64 within the activations' rounding", test_int_twin },
    { "linear_group (one input or one per weight) equals one linear() per weight, every type, both product modes", test_linear_group },
    { "linear_heads equals one linear() per head, every type, both product modes", test_linear_heads },
    { "attention's BF16 kernels (keys over strided rows, values in pairs) vs C twins", test_attn_bf16_twins },
    { "decode attention's float32 kernels over F32/BF16 rows vs C twins", test_attn_dec_twins },
    { "int8 products four rows a call equal one row at a time, and the C twin", test_rows4_int },
    { "int8 activations: codes, scales and sums bit for bit as llama.cpp's reference rounding", test_act_quant_exact },
    { "q8 products' cost in decode: KL against f32 products, goldens and SmolLM2", test_q8_products_cost },
    { "BF16 prefill tiles match the C twin and float64; a dropped column is caught", test_qgemm_twin },
    { "BF16 and F16 prefill panels match the C twin and float64; a dropped column is caught", test_qgemm_panel_twin },
    { "bf16 activations' cost in BF16 decode: KL against float32 activations, goldens", test_bf16_decode_cost },
    { "block-type int8 prefill tiles match the C twin and float64; a dropped block is caught", test_qgemm_int_twin },
    { "bf16 activations' cost in prefill, BF16 and F16 weights: KL against float32 activations, goldens", test_bf16_products_cost },
    { "int8 activations' cost in block-type prefill: KL against float32 activations, goldens", test_int8_prefill_cost },
    { "checkpoint re-encoded at load: KL against float32 small for Q8_0, larger for Q4_0", test_recode_checkpoint },
};
const int n_qdot_tests = (int)(sizeof qdot_tests / sizeof qdot_tests[0]);
