/*
 * test_cuda.c - every CUDA op against its CPU twin, the goldens through the CUDA
 * engine, and the CUPTI Host API's metric checks (which need no GPU). Without a usable
 * GPU the GPU tests are reported as skipped, with the reason, never as passed.
 *
 * Tolerances (relative to max(1, |CPU value|) unless said), each with its reason:
 *   exact  embedding (a copy and a shift), argmax (lowest index on ties), row gather
 *          and strided copy, permutation (a stable sort both sides), routing experts
 *          (the same function, route.h), graph replay against the eager run.
 *   1e-6   residual add: one float32 addition of the same operands both sides.
 *   1e-5   RMSNorm and SwiGLU (float32 both sides; sqrtf/expf differ by ulps, and the
 *          CPU sums squares in double); routing weights (expf by ulps); the batched
 *          per-head products (K <= 24: a few ulps in another summation order).
 *   1e-4   RoPE at angles up to 30000 rad (sinf/cosf argument reduction); linear() F32
 *          (cuBLAS vs OpenBLAS, K = 1000: ~sqrt(K) ulps of the operands' magnitude);
 *          attention with a float32 cache (exp and sums in another order).
 *   2e-4   BF16 products against the CPU on the same BF16-rounded operands (products
 *          of BF16 values are exact in float32; only the summation order differs); the
 *          grouped expert products in F32 too (K <= 72 but summed in tiles of 32 and
 *          across warps) and the MoE combine of their outputs; attention against a CPU
 *          cache holding the same BF16 values.
 *   5e-3   the MLA tensor-core kernel, which rounds queries and softmax weights to BF16
 *          (beside its test).
 *   1e-3   an engine on the GPU (F32) against the CPU on the same model: every product
 *          and attention sums in another order, through 2-3 layers and a vocabulary-wide
 *          head (measured on the emulator: below 1e-5; a wrong op moves logits by O(1)).
 *   Goldens: F32 engine 1e-4 max abs (the goldens' stated bound for float32). BF16
 *   engine: within 2% of the largest |logit| of the CPU engine on the same BF16
 *   weights, because the GPU also rounds every product's activations (and the cache)
 *   to BF16: up to 2^-8 relative each, about twenty products on the path of a 3-layer
 *   model, adding up to about 1% (measured on the emulator: 0.4-0.8%); and the same
 *   greedy tokens where the CPU's margin between the best two exceeds twice that bound.
 */
#include "backend.h"
#include "cupti_host.h"
#include "engine.h"
#include "measure.h"
#include "profile.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static void t_cuda_probe(void) {
    char why[256] = "";
    int ok = cuda_available(why, sizeof why);
    /* either a device, described, or one line saying why not */
    if (ok) CHECK(why[0] && !strchr(why, '\n'), "device description: \"%s\"", why);
    else CHECK((!strncmp(why, "no usable CUDA device: ", 23) || strstr(why, "built without the CUDA backend")) && !strchr(why, '\n'),
               "reason: \"%s\"", why);
}

#ifdef EFFBENCH_CUDA
static int need_gpu(void) {
    char why[256];
    if (cuda_available(why, sizeof why)) return 1;
    t_skip("%s", why);
    return 0;
}

static void *up(const void *h, size_t n) {
    void *d = cuda_malloc(n);
    if (d) cuda_to_device(d, h, n);
    return d;
}

static float rel_err(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]) / fmaxf(1.0f, fabsf(b[i]));
        if (!(d <= m)) m = d;
    }
    return m;
}

static void t_cuda_rmsnorm_swiglu(void) {
    if (!need_gpu()) return;
    const int T = 5, n = 1000;
    float *x = xmalloc(sizeof(float) * T * n), *w = xmalloc(sizeof(float) * n), *cpu = xmalloc(sizeof(float) * T * n), *gpu = xmalloc(sizeof(float) * T * n);
    for (int i = 0; i < T * n; i++) x[i] = sinf(0.37f * i) * 3;
    for (int i = 0; i < n; i++) w[i] = 1 + 0.1f * cosf((float)i);
    rmsnorm(cpu, n, x, n, T, n, w, 1e-6f);
    float *dx = up(x, sizeof(float) * T * n), *dw = up(w, sizeof(float) * n), *dout = cuda_malloc(sizeof(float) * T * n);
    CHECK(cuda_rmsnorm(dout, n, dx, n, T, n, dw, 1e-6f) == 0 && cuda_to_host(gpu, dout, sizeof(float) * T * n) == 0, "%s", cuda_error());
    CHECK(rel_err(gpu, cpu, (size_t)T * n) < 1e-5f, "rmsnorm: %g", rel_err(gpu, cpu, (size_t)T * n));
    /* SwiGLU on x (gate) and w-tiled (up) */
    float *u = xmalloc(sizeof(float) * T * n);
    for (int i = 0; i < T * n; i++) u[i] = w[i % n];
    memcpy(cpu, x, sizeof(float) * T * n);
    swiglu(cpu, u, (int64_t)T * n);
    float *du = up(u, sizeof(float) * T * n);
    CHECK(cuda_swiglu(dx, du, (int64_t)T * n) == 0 && cuda_to_host(gpu, dx, sizeof(float) * T * n) == 0, "%s", cuda_error());
    CHECK(rel_err(gpu, cpu, (size_t)T * n) < 1e-5f, "swiglu: %g", rel_err(gpu, cpu, (size_t)T * n));
    cuda_free(dx); cuda_free(dw); cuda_free(dout); cuda_free(du);
    free(x); free(w); free(cpu); free(gpu); free(u);
}

static void t_cuda_rope(void) {
    if (!need_gpu()) return;
    const int T = 7, H = 3, stride = 24, d = 16;
    float inv[8], *x = xmalloc(sizeof(float) * T * H * stride), *cpu = xmalloc(sizeof(float) * T * H * stride), *gpu = xmalloc(sizeof(float) * T * H * stride);
    int pos[7] = { 0, 1, 5, 100, 4095, 4096, 30000 };
    for (int i = 0; i < 8; i++) inv[i] = powf(10000.0f, -2.0f * i / d);
    for (int mode = 0; mode < 2; mode++) {
        for (int i = 0; i < T * H * stride; i++) x[i] = cosf(0.21f * i);
        memcpy(cpu, x, sizeof(float) * T * H * stride);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                float *v = cpu + (t * H + h) * stride;
                if (mode) rope_interleaved(v, d, pos[t], inv, 0.9f); else rope_half(v, d, pos[t], inv, 0.9f);
            }
        float *dx = up(x, sizeof(float) * T * H * stride), *dinv = up(inv, sizeof inv);
        int *dpos = up(pos, sizeof pos);
        CHECK(cuda_rope(dx, T, H, stride, d, dpos, dinv, 0.9f, mode) == 0 && cuda_to_host(gpu, dx, sizeof(float) * T * H * stride) == 0,
              "%s", cuda_error());
        /* large angles: both sides reduce pos*inv_freq in float32; 1e-4 allows the
         * different argument reductions of sinf/cosf at 30000 radians */
        CHECK(rel_err(gpu, cpu, (size_t)T * H * stride) < 1e-4f, "rope %s: %g", mode ? "interleaved" : "half", rel_err(gpu, cpu, (size_t)T * H * stride));
        cuda_free(dx); cuda_free(dinv); cuda_free(dpos);
    }
    free(x); free(cpu); free(gpu);
}

static void t_cuda_embed_argmax(void) {
    if (!need_gpu()) return;
    const int V = 300, D = 70, T = 4;
    uint16_t *tb = xmalloc(2 * V * D);
    float *tf = xmalloc(sizeof(float) * V * D), *cpu = xmalloc(sizeof(float) * T * D), *gpu = xmalloc(sizeof(float) * T * D);
    for (int i = 0; i < V * D; i++) { tf[i] = sinf(0.01f * i); tb[i] = f32_to_bf16(tf[i]); }
    int tok[4] = { 0, 299, 17, 17 };
    for (int bf = 0; bf < 2; bf++) {
        Mat m = { bf ? DT_BF16 : DT_F32, bf ? (const void *)tb : (const void *)tf, NULL, V, D };
        for (int t = 0; t < T; t++) mat_rows_f32(&m, tok[t], 1, cpu + t * D);
        void *dt = up(m.data, (size_t)V * D * (bf ? 2 : 4));
        int *dtok = up(tok, sizeof tok);
        float *dout = cuda_malloc(sizeof(float) * T * D);
        CHECK(cuda_embed(dout, dt, bf, dtok, T, D) == 0 && cuda_to_host(gpu, dout, sizeof(float) * T * D) == 0, "%s", cuda_error());
        CHECK(memcmp(gpu, cpu, sizeof(float) * T * D) == 0, "embed %s differs", bf ? "BF16" : "F32");
        cuda_free(dt); cuda_free(dtok); cuda_free(dout);
    }
    /* argmax with ties: rows whose maximum appears twice */
    float x[3 * 1000];
    for (int i = 0; i < 3000; i++) x[i] = sinf(0.7f * i);
    x[100] = x[900] = 5;                  /* row 0: tie, lowest index wins */
    x[1000 + 999] = 7;                    /* row 1: last element */
    int want[3], got[3];
    for (int r = 0; r < 3; r++) { int b = 0; for (int i = 1; i < 1000; i++) if (x[r * 1000 + i] > x[r * 1000 + b]) b = i; want[r] = b; }
    float *dx = up(x, sizeof x);
    int *dg = cuda_malloc(sizeof got);
    CHECK(cuda_argmax(dg, dx, 3, 1000) == 0 && cuda_to_host(got, dg, sizeof got) == 0, "%s", cuda_error());
    CHECK(got[0] == want[0] && got[1] == want[1] && got[2] == want[2], "argmax %d %d %d, want %d %d %d", got[0], got[1], got[2],
          want[0], want[1], want[2]);
    cuda_free(dx); cuda_free(dg);
    free(tb); free(tf); free(cpu); free(gpu);
}


static float *rnd(size_t n, float amp, unsigned seed) {
    float *v = xmalloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = amp * ((float)(seed >> 8) / 8388608.0f - 1.0f);
    }
    return v;
}
static uint16_t *to_bf(const float *x, size_t n) {
    uint16_t *b = xmalloc(2 * n);
    for (size_t i = 0; i < n; i++) b[i] = f32_to_bf16(x[i]);
    return b;
}
static void round_bf(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = bf16_to_f32(f32_to_bf16(x[i])); }

static void t_cuda_rows(void) {
    if (!need_gpu()) return;
    /* rmsnorm in place on a strided slice (MLA's latent: first 48 of 56 columns) */
    const int T = 6, ld = 56, n = 48;
    float *x = rnd((size_t)T * ld, 2, 1), *w = rnd(n, 1, 2), *cpu = xmalloc(sizeof(float) * T * ld), *gpu = xmalloc(sizeof(float) * T * ld);
    memcpy(cpu, x, sizeof(float) * T * ld);
    rmsnorm(cpu, ld, cpu, ld, T, n, w, 1e-6f);
    float *dx = up(x, sizeof(float) * T * ld), *dw = up(w, sizeof(float) * n);
    CHECK(cuda_rmsnorm(dx, ld, dx, ld, T, n, dw, 1e-6f) == 0 && cuda_to_host(gpu, dx, sizeof(float) * T * ld) == 0, "%s", cuda_error());
    CHECK(rel_err(gpu, cpu, (size_t)T * ld) < 1e-5f, "rmsnorm strided in place: %g", rel_err(gpu, cpu, (size_t)T * ld));
    /* add, gather (with a divisor), copy2d */
    float *y = rnd((size_t)T * ld, 1, 3), *dy = up(y, sizeof(float) * T * ld);
    for (int i = 0; i < T * ld; i++) cpu[i] += y[i];
    CHECK(cuda_add(dx, dy, (int64_t)T * ld) == 0 && cuda_to_host(gpu, dx, sizeof(float) * T * ld) == 0, "%s", cuda_error());
    CHECK(rel_err(gpu, cpu, (size_t)T * ld) < 1e-6f, "add: %g", rel_err(gpu, cpu, (size_t)T * ld));
    int idx[5] = { 11, 0, 5, 5, 3 }, *didx = up(idx, sizeof idx);
    float *g = xmalloc(sizeof(float) * 5 * n), *dg = cuda_malloc(sizeof(float) * 5 * n);
    CHECK(cuda_gather_rows(dg, dx, ld, didx, 2, 5, n) == 0 && cuda_to_host(g, dg, sizeof(float) * 5 * n) == 0, "%s", cuda_error());
    int bad = 0;
    for (int r = 0; r < 5; r++) bad += memcmp(g + r * n, gpu + (idx[r] / 2) * ld, sizeof(float) * n) != 0;
    CHECK(!bad, "gather_rows: %d rows differ", bad);
    CHECK(cuda_copy2d(dg, n, dx + 8, ld, 5, 16) == 0 && cuda_to_host(g, dg, sizeof(float) * 5 * n) == 0, "%s", cuda_error());
    for (int r = 0; r < 5; r++) bad += memcmp(g + r * n, gpu + r * ld + 8, sizeof(float) * 16) != 0;
    CHECK(!bad, "copy2d: %d rows differ", bad);
    cuda_free(dx); cuda_free(dw); cuda_free(dy); cuda_free(didx); cuda_free(dg);
    free(x); free(w); free(cpu); free(gpu); free(y); free(g);
}

static void t_cuda_linear(void) {
    if (!need_gpu()) return;
    const int T = 9, N = 70, K = 1000, ldx = 1010, ldy = 80;
    float *x = rnd((size_t)T * ldx, 1, 4), *w = rnd((size_t)N * K, 0.1f, 5), *b = rnd(N, 1, 6);
    float *cpu = xcalloc((size_t)T * ldy, sizeof(float)), *gpu = xcalloc((size_t)T * ldy, sizeof(float));
    float *scratch = xmalloc(sizeof(float) * linear_scratch_floats(K));
    for (int bf = 0; bf < 2; bf++) {
        uint16_t *wb = to_bf(w, (size_t)N * K);
        float *xr = xmalloc(sizeof(float) * (size_t)T * ldx);
        memcpy(xr, x, sizeof(float) * (size_t)T * ldx);
        if (bf) round_bf(xr, (size_t)T * ldx);            /* the GPU rounds x to BF16 */
        Mat m = { bf ? DT_BF16 : DT_F32, bf ? (const void *)wb : (const void *)w, NULL, N, K };
        linear(cpu, ldy, xr, ldx, T, &m, 0, N, b, scratch);
        void *dw = up(m.data, (size_t)N * K * (bf ? 2 : 4));
        float *dx = up(x, sizeof(float) * T * ldx), *db = up(b, sizeof(float) * N), *dy = up(gpu, sizeof(float) * T * ldy);
        CHECK(cuda_linear(dy, ldy, dx, ldx, T, dw, bf, N, K, db) == 0 && cuda_to_host(gpu, dy, sizeof(float) * T * ldy) == 0,
              "%s", cuda_error());
        float err = rel_err(gpu, cpu, (size_t)T * ldy);
        CHECK(err < (bf ? 2e-4f : 1e-4f), "linear %s: %g", bf ? "BF16" : "F32", err);
        cuda_free(dw); cuda_free(dx); cuda_free(db); cuda_free(dy);
        free(wb); free(xr);
    }
    /* batched per-head products, both forms (MLA's absorption and its output) */
    const int H = 3, Dn = 8, Dc = 24, Dv = 6, n = 5, qk = 12;
    float *kvb = rnd((size_t)H * (Dn + Dv) * Dc, 0.3f, 7), *q = rnd((size_t)n * H * qk, 1, 8), *lat = rnd((size_t)n * H * Dc, 1, 9);
    float *c1 = xcalloc((size_t)n * H * Dc, sizeof(float)), *g1 = xcalloc((size_t)n * H * Dc, sizeof(float));
    float *c2 = xcalloc((size_t)n * H * Dv, sizeof(float)), *g2 = xcalloc((size_t)n * H * Dv, sizeof(float));
    for (int h = 0; h < H; h++) {
        matmul_nn(c1 + h * Dc, H * Dc, q + h * qk, H * qk, n, kvb + (size_t)h * (Dn + Dv) * Dc, Dn, Dc);
        Mat wuv = { DT_F32, kvb + ((size_t)h * (Dn + Dv) + Dn) * Dc, NULL, Dv, Dc };
        linear(c2 + h * Dv, H * Dv, lat + h * Dc, H * Dc, n, &wuv, 0, Dv, NULL, scratch);
    }
    float *dk = up(kvb, sizeof(float) * H * (Dn + Dv) * Dc), *dq = up(q, sizeof(float) * n * H * qk), *dl = up(lat, sizeof(float) * n * H * Dc);
    float *d1 = cuda_malloc(sizeof(float) * n * H * Dc), *d2 = cuda_malloc(sizeof(float) * n * H * Dv);
    CHECK(cuda_gemm_batched(d1, H * Dc, Dc, dq, H * qk, qk, dk, Dc, (int64_t)(Dn + Dv) * Dc, 0, n, Dc, Dn, H) == 0 &&
          cuda_gemm_batched(d2, H * Dv, Dv, dl, H * Dc, Dc, dk + Dn * Dc, Dc, (int64_t)(Dn + Dv) * Dc, 1, n, Dv, Dc, H) == 0 &&
          cuda_to_host(g1, d1, sizeof(float) * n * H * Dc) == 0 && cuda_to_host(g2, d2, sizeof(float) * n * H * Dv) == 0, "%s", cuda_error());
    CHECK(rel_err(g1, c1, (size_t)n * H * Dc) < 1e-5f, "batched NN: %g", rel_err(g1, c1, (size_t)n * H * Dc));
    CHECK(rel_err(g2, c2, (size_t)n * H * Dv) < 1e-5f, "batched NT: %g", rel_err(g2, c2, (size_t)n * H * Dv));
    cuda_free(dk); cuda_free(dq); cuda_free(dl); cuda_free(d1); cuda_free(d2);
    free(kvb); free(q); free(lat); free(c1); free(g1); free(c2); free(g2);
    free(x); free(w); free(b); free(cpu); free(gpu); free(scratch);
}

static void t_cuda_moe(void) {
    if (!need_gpu()) return;
    const int T = 37, E = 16, K = 4, D = 72, I = 40;
    /* routing: softmax greedy; sigmoid + bias, noaux_tc groups; softmax group max (V2) */
    RouteParams rps[3] = {
        { E, K, 0, 1, 1, 0, 1, 1, 1.0f },
        { E, K, 1, 4, 2, 2, 1, 1, 2.5f },
        { E, K, 0, 4, 2, 1, 0, 0, 16.0f },
    };
    float *logits = rnd((size_t)T * E, 3, 10), *bias = rnd(E, 0.1f, 11);
    for (int v = 0; v < 3; v++) {
        float *lc = xmalloc(sizeof(float) * T * E), *wt = xmalloc(sizeof(float) * T * K), *gw = xmalloc(sizeof(float) * T * K);
        int *ex = xmalloc(sizeof(int) * T * K), *gx = xmalloc(sizeof(int) * T * K);
        memcpy(lc, logits, sizeof(float) * T * E);
        moe_route(&rps[v], v == 1 ? bias : NULL, lc, T, ex, wt);
        float *dl = up(logits, sizeof(float) * T * E), *db = up(bias, sizeof(float) * E), *dwt = cuda_malloc(sizeof(float) * T * K);
        int *dex = cuda_malloc(sizeof(int) * T * K);
        CudaRoute r = { rps[v].E, rps[v].K, rps[v].sigmoid, rps[v].n_group, rps[v].topk_group, rps[v].method, rps[v].renorm,
                        rps[v].scale_after_renorm, rps[v].routed_scale };
        CHECK(cuda_moe_route(dex, dwt, dl, v == 1 ? db : NULL, T, &r) == 0 && cuda_to_host(gx, dex, sizeof(int) * T * K) == 0 &&
              cuda_to_host(gw, dwt, sizeof(float) * T * K) == 0, "%s", cuda_error());
        CHECK(memcmp(gx, ex, sizeof(int) * T * K) == 0, "route variant %d: experts differ", v);
        CHECK(rel_err(gw, wt, (size_t)T * K) < 1e-5f, "route variant %d: weights %g", v, rel_err(gw, wt, (size_t)T * K));
        if (v == 1) {   /* permutation, grouped products, combine on this routing */
            int *off = xmalloc(sizeof(int) * (E + 1)), *order = xmalloc(sizeof(int) * T * K), *where = xmalloc(sizeof(int) * T * K);
            int *goff = xmalloc(sizeof(int) * (E + 1)), *gorder = xmalloc(sizeof(int) * T * K), *gwhere = xmalloc(sizeof(int) * T * K);
            moe_permute(off, order, where, ex, T * K, E);
            int *doff = cuda_malloc(sizeof(int) * (E + 1)), *dord = cuda_malloc(sizeof(int) * T * K), *dwh = cuda_malloc(sizeof(int) * T * K);
            CHECK(cuda_moe_permute(doff, dord, dwh, dex, T * K, E) == 0 && cuda_to_host(goff, doff, sizeof(int) * (E + 1)) == 0 &&
                  cuda_to_host(gorder, dord, sizeof(int) * T * K) == 0 && cuda_to_host(gwhere, dwh, sizeof(int) * T * K) == 0, "%s", cuda_error());
            CHECK(!memcmp(goff, off, sizeof(int) * (E + 1)) && !memcmp(gorder, order, sizeof(int) * T * K) &&
                  !memcmp(gwhere, where, sizeof(int) * T * K), "permutation differs");
            for (int bf = 0; bf < 2; bf++) {
                float *x = rnd((size_t)T * K * D, 1, 12), *ycpu = xcalloc((size_t)T * K * I, sizeof(float)), *ygpu = xmalloc(sizeof(float) * T * K * I);
                if (bf) round_bf(x, (size_t)T * K * D);
                float **w = xmalloc(sizeof(float *) * E);
                void **dws = xmalloc(sizeof(void *) * E);
                float *scratch = xmalloc(sizeof(float) * linear_scratch_floats(D));
                for (int e2 = 0; e2 < E; e2++) {
                    w[e2] = rnd((size_t)I * D, 0.2f, 100 + e2);
                    if (bf) round_bf(w[e2], (size_t)I * D);
                    uint16_t *wb = to_bf(w[e2], (size_t)I * D);
                    dws[e2] = bf ? up(wb, 2 * (size_t)I * D) : up(w[e2], sizeof(float) * I * D);
                    free(wb);
                    Mat m = { DT_F32, w[e2], NULL, I, D };
                    if (off[e2 + 1] > off[e2]) linear(ycpu + (size_t)off[e2] * I, I, x + (size_t)off[e2] * D, D, off[e2 + 1] - off[e2], &m, 0, I, NULL, scratch);
                }
                void **dptr = up(dws, sizeof(void *) * E);
                float *dx = up(x, sizeof(float) * T * K * D), *dy = cuda_malloc(sizeof(float) * T * K * I);
                CHECK(cuda_grouped_linear(dy, dx, (const void *const *)dptr, bf, doff, E, T * K, I, D) == 0 &&
                      cuda_to_host(ygpu, dy, sizeof(float) * T * K * I) == 0, "%s", cuda_error());
                CHECK(rel_err(ygpu, ycpu, (size_t)T * K * I) < 2e-4f, "grouped %s: %g", bf ? "BF16" : "F32", rel_err(ygpu, ycpu, (size_t)T * K * I));
                if (!bf) {      /* combine the rows back (as if D = I) with a shared-expert term */
                    float *add = rnd((size_t)T * I, 1, 13), *oc = xmalloc(sizeof(float) * T * I), *og = xmalloc(sizeof(float) * T * I);
                    moe_combine(oc, ycpu, wt, where, add, T, K, I);
                    float *da = up(add, sizeof(float) * T * I), *dout = cuda_malloc(sizeof(float) * T * I);
                    float *dwt2 = up(wt, sizeof(float) * T * K);
                    CHECK(cuda_moe_combine(dout, dy, dwt2, dwh, da, T, K, I) == 0 && cuda_to_host(og, dout, sizeof(float) * T * I) == 0, "%s", cuda_error());
                    CHECK(rel_err(og, oc, (size_t)T * I) < 2e-4f, "combine: %g", rel_err(og, oc, (size_t)T * I));
                    cuda_free(da); cuda_free(dout); cuda_free(dwt2);
                    free(add); free(oc); free(og);
                }
                for (int e2 = 0; e2 < E; e2++) { free(w[e2]); cuda_free(dws[e2]); }
                cuda_free(dptr); cuda_free(dx); cuda_free(dy);
                free(w); free(dws); free(scratch); free(x); free(ycpu); free(ygpu);
            }
            cuda_free(doff); cuda_free(dord); cuda_free(dwh);
            free(off); free(order); free(where); free(goff); free(gorder); free(gwhere);
        }
        cuda_free(dl); cuda_free(db); cuda_free(dwt); cuda_free(dex);
        free(lc); free(wt); free(gw); free(ex); free(gx);
    }
    free(logits); free(bias);
}


/* grouped expert products on chosen row counts: none, a few, exactly GV (8: the last
 * the matrix-vector kernel takes), one more (the first the tiled kernel takes), and
 * more than a 64-row tile; K a multiple of 8 (16-byte weight loads) and not */
static void t_cuda_grouped(void) {
    if (!need_gpu()) return;
    const int E = 5, N = 50, rows[5] = { 0, 3, 8, 9, 70 };
    int off[6] = { 0 };
    for (int e = 0; e < E; e++) off[e + 1] = off[e] + rows[e];
    const int R = off[E];
    int *doff = up(off, sizeof off);
    for (int K = 64; K >= 62; K -= 2)
        for (int bf = 0; bf < 2; bf++) {
            float *x = rnd((size_t)R * K, 1, 70 + K), *cpu = xcalloc((size_t)R * N, sizeof(float)), *gpu = xmalloc(sizeof(float) * R * N);
            float *scratch = xmalloc(sizeof(float) * linear_scratch_floats(K));
            if (bf) round_bf(x, (size_t)R * K);
            void *dw[5];
            for (int e = 0; e < E; e++) {
                float *w = rnd((size_t)N * K, 0.3f, 80 + e);
                uint16_t *wb = to_bf(w, (size_t)N * K);
                if (bf) round_bf(w, (size_t)N * K);
                Mat m = { DT_F32, w, NULL, N, K };
                if (rows[e]) linear(cpu + (size_t)off[e] * N, N, x + (size_t)off[e] * K, K, rows[e], &m, 0, N, NULL, scratch);
                dw[e] = bf ? up(wb, 2 * (size_t)N * K) : up(w, sizeof(float) * N * K);
                free(w); free(wb);
            }
            void **dptr = up(dw, sizeof dw);
            float *dx = up(x, sizeof(float) * R * K), *dy = cuda_malloc(sizeof(float) * R * N);
            CHECK(cuda_grouped_linear(dy, dx, (const void *const *)dptr, bf, doff, E, R, N, K) == 0 &&
                  cuda_to_host(gpu, dy, sizeof(float) * R * N) == 0, "%s", cuda_error());
            float err = rel_err(gpu, cpu, (size_t)R * N);
            CHECK(err < 2e-4f, "grouped K=%d %s: %g", K, bf ? "BF16" : "F32", err);
            for (int e = 0; e < E; e++) cuda_free(dw[e]);
            cuda_free(dptr); cuda_free(dx); cuda_free(dy);
            free(x); free(cpu); free(gpu); free(scratch);
        }
    cuda_free(doff);
}

/* Paged attention against the CPU's contiguous one: a mixed step (a 70-token prefill
 * chunk of sequence 0 from position 30, one decode token of sequence 1 at 1500, which
 * splits) over a block table that interleaves the sequences' blocks. */
static void attention_case(int mla, int bf16) {
    const int S = 2, P = 1600, BL = CUDA_KV_BLOCK, MB = P / BL + 1;
    int H = mla ? 16 : 8, Hkv = mla ? 1 : 2, dk = mla ? 72 : 64, dv = mla ? 64 : 64;
    int row = mla ? dk : 2 * Hkv * dk;
    const int T = 71;
    int seq[71], pos[71];
    for (int t = 0; t < 70; t++) { seq[t] = 0; pos[t] = 30 + t; }
    seq[70] = 1; pos[70] = 1500;
    float *cache = rnd((size_t)S * P * row, 1, 20 + mla);      /* contiguous (S, P, row) */
    if (bf16) round_bf(cache, (size_t)S * P * row);
    float *q = rnd((size_t)T * H * dk, 1, 30 + mla), *cpu = xcalloc((size_t)T * H * dv, sizeof(float)), *gpu = xmalloc(sizeof(float) * T * H * dv);
    AttnArgs aa = {
        .T = T, .seq = seq, .pos = pos, .q = q, .ldq = H * dk, .cache = cache, .seq_stride = (int64_t)P * row, .row = row,
        .k_off = 0, .k_head_stride = mla ? 0 : dk, .v_off = mla ? 0 : Hkv * dk, .v_head_stride = mla ? 0 : dk,
        .dk = dk, .dv = dv, .H = H, .Hkv = Hkv, .scale = 0.125f, .out = cpu, .ldo = H * dv, .max_pos = P,
    };
    attention(&aa);
    /* the paged pool: block b of sequence s is physical block 2*b + (1-s), written by kv_write */
    int *table = xmalloc(sizeof(int) * S * MB);
    for (int s = 0; s < S; s++) for (int b = 0; b < MB; b++) table[s * MB + b] = 2 * b + (1 - s);
    size_t es = bf16 ? 2 : 4;
    void *pool = cuda_malloc((size_t)2 * MB * BL * row * es);
    int *dtab = up(table, sizeof(int) * S * MB);
    for (int s = 0; s < S; s++) {
        int *ps = xmalloc(sizeof(int) * P), *ss = xmalloc(sizeof(int) * P);
        for (int p = 0; p < P; p++) { ps[p] = p; ss[p] = s; }
        int *dps = up(ps, sizeof(int) * P), *dss = up(ss, sizeof(int) * P);
        float *src = up(cache + (size_t)s * P * row, sizeof(float) * P * row);
        CHECK(cuda_kv_write(pool, bf16, row, dtab, MB, src, row, row, 0, dss, dps, P) == 0, "%s", cuda_error());
        cuda_free(dps); cuda_free(dss); cuda_free(src);
        free(ps); free(ss);
    }
    int *dseq = up(seq, sizeof seq), *dpos = up(pos, sizeof pos);
    float *dq = up(q, sizeof(float) * T * H * dk), *dout = cuda_malloc(sizeof(float) * T * H * dv);
    size_t wf = cuda_attention_work(T, H, dv, P);
    float *work = cuda_malloc(sizeof(float) * (wf ? wf : 1));
    CudaAttn ca = {
        .T = T, .seq = dseq, .pos = dpos, .q = dq, .ldq = H * dk, .cache = pool, .bf16 = bf16, .row = row, .table = dtab,
        .max_blocks = MB, .k_off = aa.k_off, .k_head_stride = aa.k_head_stride, .v_off = aa.v_off,
        .v_head_stride = aa.v_head_stride, .dk = dk, .dv = dv, .H = H, .Hkv = Hkv, .scale = 0.125f, .out = dout,
        .ldo = H * dv, .max_len = 1501, .work = work, .work_floats = wf,
    };
    CHECK(cuda_attention(&ca) == 0 && cuda_to_host(gpu, dout, sizeof(float) * T * H * dv) == 0, "%s", cuda_error());
    float err = rel_err(gpu, cpu, (size_t)T * H * dv);
    CHECK(err < (bf16 ? 2e-4f : 1e-4f), "attention %s %s cache: %g", mla ? "MLA" : "GQA", bf16 ? "BF16" : "F32", err);
    /* and one decode token alone (the split-K path, long context) */
    ca.T = 1; ca.seq = dseq + 70; ca.pos = dpos + 70; ca.q = dq + (size_t)70 * H * dk; ca.out = dout;
    CHECK(cuda_attention_splits(1, H, Hkv, 1501) > 1, "a lone decode token should split its context");
    CHECK(cuda_attention(&ca) == 0 && cuda_to_host(gpu, dout, sizeof(float) * H * dv) == 0, "%s", cuda_error());
    err = rel_err(gpu, cpu + (size_t)70 * H * dv, (size_t)H * dv);
    CHECK(err < (bf16 ? 2e-4f : 1e-4f), "attention split-K %s: %g", mla ? "MLA" : "GQA", err);
    cuda_free(pool); cuda_free(dtab); cuda_free(dseq); cuda_free(dpos); cuda_free(dq); cuda_free(dout); cuda_free(work);
    free(cache); free(q); free(cpu); free(gpu); free(table);
}

static void t_cuda_attention(void) {
    if (!need_gpu()) return;
    for (int mla = 0; mla < 2; mla++)
        for (int bf = 0; bf < 2; bf++) attention_case(mla, bf);
}


/* MLA's real shape on a BF16 cache takes the tensor-core kernel: 16 heads a block (20
 * heads: a full group and a part one), 576 key / 512 value dims, tiles of whole cache
 * blocks; tokens at a block's last and first position, a long context that splits,
 * and a short one. Tolerance 5e-3 (of max(1, |value|)): the kernel rounds the scaled
 * queries and the softmax weights to BF16 (up to 2^-8 relative each) before the products;
 * an output is a weighted mean of values of magnitude ~1 (measured on the emulator:
 * 1.6e-3). */
static void t_cuda_attention_mla_wmma(void) {
    if (!need_gpu()) return;
    const int S = 3, P = 1100, MB = (P + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK, dk = 576, dv = 512, T = 4;
    int seq[4] = { 0, 0, 1, 2 }, pos[4] = { 63, 64, 1090, 5 };
    float *cache = rnd((size_t)S * P * dk, 1, 60);
    round_bf(cache, (size_t)S * P * dk);
    int *table = xmalloc(sizeof(int) * S * MB);
    for (int s = 0; s < S; s++) for (int b = 0; b < MB; b++) table[s * MB + b] = b * S + (S - 1 - s);
    void *pool = cuda_malloc((size_t)S * MB * CUDA_KV_BLOCK * dk * 2);
    int *dtab = up(table, sizeof(int) * S * MB);
    int *ps = xmalloc(sizeof(int) * P), *ss = xmalloc(sizeof(int) * P);
    for (int p = 0; p < P; p++) ps[p] = p;
    for (int s = 0; s < S; s++) {
        for (int p = 0; p < P; p++) ss[p] = s;
        int *dps = up(ps, sizeof(int) * P), *dss = up(ss, sizeof(int) * P);
        float *src = up(cache + (size_t)s * P * dk, sizeof(float) * P * dk);
        CHECK(cuda_kv_write(pool, 1, dk, dtab, MB, src, dk, dk, 0, dss, dps, P) == 0, "%s", cuda_error());
        cuda_free(dps); cuda_free(dss); cuda_free(src);
    }
    for (int H = 16; H <= 20; H += 4) {
        float *q = rnd((size_t)T * H * dk, 0.5f, 61 + H), *cpu = xcalloc((size_t)T * H * dv, sizeof(float)), *gpu = xmalloc(sizeof(float) * T * H * dv);
        AttnArgs aa = {
            .T = T, .seq = seq, .pos = pos, .q = q, .ldq = H * dk, .cache = cache, .seq_stride = (int64_t)P * dk, .row = dk,
            .dk = dk, .dv = dv, .H = H, .Hkv = 1, .scale = 0.07f, .out = cpu, .ldo = H * dv, .max_pos = P,
        };
        attention(&aa);
        int *dseq = up(seq, sizeof seq), *dpos = up(pos, sizeof pos);
        float *dq = up(q, sizeof(float) * T * H * dk), *dout = cuda_malloc(sizeof(float) * T * H * dv);
        size_t wf = cuda_attention_work(T, H, dv, P);
        float *work = cuda_malloc(sizeof(float) * (wf ? wf : 1));
        CudaAttn ca = {
            .T = T, .seq = dseq, .pos = dpos, .q = dq, .ldq = H * dk, .cache = pool, .bf16 = 1, .row = dk, .table = dtab,
            .max_blocks = MB, .dk = dk, .dv = dv, .H = H, .Hkv = 1, .scale = 0.07f, .out = dout, .ldo = H * dv,
            .max_len = 1091, .work = work, .work_floats = wf,
        };
        CHECK(cuda_attention(&ca) == 0 && cuda_to_host(gpu, dout, sizeof(float) * T * H * dv) == 0, "%s", cuda_error());
        float err = rel_err(gpu, cpu, (size_t)T * H * dv);
        CHECK(err < 5e-3f, "MLA tensor-core attention, %d heads: %g", H, err);
        if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "MLA tensor-core attention, %d heads: max error %g\n", H, err);
        cuda_free(dseq); cuda_free(dpos); cuda_free(dq); cuda_free(dout); cuda_free(work);
        free(q); free(cpu); free(gpu);
    }
    cuda_free(pool); cuda_free(dtab);
    free(cache); free(table); free(ps); free(ss);
}

static void t_cuda_graph(void) {
    if (!need_gpu()) return;
    const int T = 4, n = 300;
    float *x = rnd((size_t)T * n, 1, 40), *w = rnd(n, 1, 41), *a = xmalloc(sizeof(float) * T * n), *b = xmalloc(sizeof(float) * T * n);
    float *dx = up(x, sizeof(float) * T * n), *dw = up(w, sizeof(float) * n), *d1 = cuda_malloc(sizeof(float) * T * n);
    void *exec = NULL;
    CHECK(cuda_rmsnorm(d1, n, dx, n, T, n, dw, 1e-6f) == 0 && cuda_swiglu(d1, dx, (int64_t)T * n) == 0 &&
          cuda_to_host(a, d1, sizeof(float) * T * n) == 0, "%s", cuda_error());
    cuda_memset(d1, 0, sizeof(float) * T * n);
    CHECK(cuda_graph_begin() == 0 && cuda_rmsnorm(d1, n, dx, n, T, n, dw, 1e-6f) == 0 && cuda_swiglu(d1, dx, (int64_t)T * n) == 0 &&
          cuda_graph_end(&exec) == 0 && cuda_graph_launch(exec) == 0 && cuda_to_host(b, d1, sizeof(float) * T * n) == 0, "%s", cuda_error());
    CHECK(memcmp(a, b, sizeof(float) * T * n) == 0, "graph replay differs from the eager run");
    cuda_graph_free(exec);
    cuda_free(dx); cuda_free(dw); cuda_free(d1);
    free(x); free(w); free(a); free(b);
}

/* ---- the engine on the GPU ------------------------------------------------------------ */
static const char *GCASES[] = { "deepseek/v3-tiny", "deepseek/v3-tiny-yarn", "deepseek/v2-lite-tiny",
                                "dense/llama-tiny", "dense/qwen2-tiny", "dense/mixtral-tiny" };

static int argmax_row(const float *v, int n) { int b = 0; for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i; return b; }


/* A copy of a golden checkpoint in dir: 2-D weights as BF16 (bf16) or F32 with the
 * first element of the first 2-D weight moved by 0.02 (perturb); vectors stay F32. */
static int variant(const char *src_dir, const char *dir, int bf16, int perturb) {
    char src[1200], p[1300];
    snprintf(src, sizeof src, "%s/model.safetensors", src_dir);
    make_dir(dir);
    StSet s = { 0 };
    Err e = { "" };
    if (st_open_file(src, &s, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return -1; }
    WTensor *w = xcalloc((size_t)s.n, sizeof *w);
    void **bufs = xcalloc((size_t)s.n, sizeof *bufs);
    int moved = 0;
    for (int i = 0; i < s.n; i++) {
        StTensor *t = &s.t[i];
        int64_t el = 1;
        for (int d = 0; d < t->ndim; d++) el *= t->shape[d];
        w[i] = (WTensor){ t->name, DT_F32, t->ndim, { 0 }, t->data };
        memcpy(w[i].shape, t->shape, sizeof w[i].shape);
        if (t->ndim != 2) continue;
        if (bf16) {
            uint16_t *h = to_bf(t->data, (size_t)el);
            bufs[i] = h;
            w[i].dtype = DT_BF16;
            w[i].data = h;
        } else if (perturb && !moved) {
            float *f = xmalloc(sizeof(float) * (size_t)el);
            memcpy(f, t->data, sizeof(float) * (size_t)el);
            f[0] += 0.02f;
            bufs[i] = f;
            w[i].data = f;
            moved = 1;
        }
    }
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int rc = st_write(p, w, s.n);
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/config.json", src_dir);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (!rc) rc = copy_file(cfg, p);
    for (int i = 0; i < s.n; i++) free(bufs[i]);
    free(bufs); free(w);
    st_close(&s);
    if (rc) t_fail(__FILE__, __LINE__, "cannot write %s", dir);
    return rc;
}

/* prefill then greedy continuation; logits (n + nc - 1 rows) and tokens */
static int run_case(Model *m, const EngineOpts *eo, const Case *c, float *lg, float *cont, int *toks, Err *e) {
    Engine *g;
    int n = c->n_prompt, nc = c->n_cont, V = m->cfg.vocab;
    if (engine_open(&g, m, eo, 1, n + nc, n, e)) return -1;
    int seq[64] = { 0 }, pos[64];
    for (int i = 0; i < n; i++) pos[i] = i;
    int rc = engine_step(g, n, c->prompt, seq, pos, NULL, lg, NULL, NULL, e);
    if (!rc) memcpy(cont, lg + (size_t)(n - 1) * V, sizeof(float) * V);
    int tok = rc ? 0 : argmax_row(cont, V);
    toks[0] = tok;
    for (int i = 1; i < nc && !rc; i++) {
        int p = n + i - 1;
        rc = engine_step(g, 1, &tok, seq, &p, NULL, cont + (size_t)i * V, NULL, NULL, e);
        tok = toks[i] = argmax_row(cont + (size_t)i * V, V);
    }
    engine_close(g);
    return rc;
}

static void t_cuda_golden(void) {
    if (!need_gpu()) return;
    for (int k = 0; k < 6; k++) {
        Case c;
        if (case_load(GCASES[k], &c)) continue;
        Model m;
        LoadOpts lo = { .dtype = DT_F32, .seed = 1 };
        Err e = { "" };
        if (model_load(&m, c.dir, &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); case_free(&c); continue; }
        int n = c.n_prompt, nc = c.n_cont, V = m.cfg.vocab;
        float *lg = xmalloc(sizeof(float) * n * V), *cont = xmalloc(sizeof(float) * nc * V);
        float *clg = xmalloc(sizeof(float) * n * V), *ccont = xmalloc(sizeof(float) * nc * V);
        int toks[64], ctoks[64];
        char p[1200];
        size_t nref, ncr;
        snprintf(p, sizeof p, "%s/logits.f32", c.dir);
        float *ref = read_f32(p, &nref);
        snprintf(p, sizeof p, "%s/continuation_logits.f32", c.dir);
        float *cref = read_f32(p, &ncr);
        EngineOpts f32 = { .backend = BACKEND_CUDA, .gpu_dtype = DT_F32 };
        if (run_case(&m, &f32, &c, lg, cont, toks, &e)) t_fail(__FILE__, __LINE__, "%s F32: %s", GCASES[k], e.msg);
        else if (ref && cref && nref == (size_t)n * V && ncr == (size_t)nc * V) {
            size_t w;
            float d1 = max_abs_diff(lg, ref, nref, &w), d2 = max_abs_diff(cont, cref, ncr, &w);
            CHECK(d1 <= 1e-4f && d2 <= 1e-4f, "%s CUDA F32: prefill %.3g, continuation %.3g > 1e-4", GCASES[k], d1, d2);
            for (int i = 0; i < nc; i++) CHECK(toks[i] == c.cont[i], "%s CUDA F32: token %d is %d, want %d", GCASES[k], i, toks[i], c.cont[i]);
        } else t_fail(__FILE__, __LINE__, "%s: reference logits missing", GCASES[k]);
        /* BF16: the CPU and the GPU engine on the same BF16 checkpoint */
        char dir[1400];
        snprintf(dir, sizeof dir, "%s/bf16-%d", g_tmp, k);
        Model mb;
        EngineOpts bf = { .backend = BACKEND_CUDA }, cpu = { .backend = BACKEND_CPU };
        if (variant(c.dir, dir, 1, 0) == 0 && model_load(&mb, dir, &lo, &e) == 0) {
            if (run_case(&mb, &cpu, &c, clg, ccont, ctoks, &e) || run_case(&mb, &bf, &c, lg, cont, toks, &e))
                t_fail(__FILE__, __LINE__, "%s BF16: %s", GCASES[k], e.msg);
            else {
                float scale = 0;
                for (size_t i = 0; i < (size_t)n * V; i++) scale = fmaxf(scale, fabsf(clg[i]));
                size_t w;
                float d1 = max_abs_diff(lg, clg, (size_t)n * V, &w), d2 = max_abs_diff(cont, ccont, (size_t)nc * V, &w);
                CHECK(d1 <= 0.02f * scale && d2 <= 0.02f * scale, "%s CUDA BF16: %.3g / %.3g > 2%% of %.3g", GCASES[k], d1, d2, scale);
                if (getenv("EFFBENCH_TEST_VERBOSE"))
                    fprintf(stderr, "%s BF16: GPU vs CPU %.3g (prefill), %.3g (continuation), largest logit %.3g\n", GCASES[k], d1, d2, scale);
                for (int i = 0; i < nc; i++) {
                    const float *r = ccont + (size_t)i * V;
                    int b = argmax_row(r, V);
                    float second = -INFINITY;
                    for (int v = 0; v < V; v++) if (v != b && r[v] > second) second = r[v];
                    if (r[b] - second > 0.04f * scale) CHECK(toks[i] == ctoks[i], "%s CUDA BF16: token %d is %d, CPU %d", GCASES[k], i, toks[i], ctoks[i]);
                    if (toks[i] != ctoks[i]) break;      /* later steps see other inputs */
                }
            }
            model_free(&mb);
        } else if (e.msg[0]) t_fail(__FILE__, __LINE__, "%s", e.msg);
        /* a deliberately wrong model must fail the F32 comparison */
        snprintf(dir, sizeof dir, "%s/wrong-%d", g_tmp, k);
        Model mw;
        if (variant(c.dir, dir, 0, 1) == 0 && model_load(&mw, dir, &lo, &e) == 0) {
            if (run_case(&mw, &f32, &c, lg, cont, toks, &e) == 0 && ref && nref == (size_t)n * V) {
                size_t w;
                CHECK(max_abs_diff(lg, ref, nref, &w) > 1e-4f, "%s: a weight moved by 0.02 still passes 1e-4", GCASES[k]);
            }
            model_free(&mw);
        }
        free(ref); free(cref); free(lg); free(cont); free(clg); free(ccont);
        model_free(&m);
        case_free(&c);
    }
}

/* dummy models of every family: a mixed batch on the GPU equals the CPU, and decode
 * steps replayed as graphs give the same tokens as eager ones */
static void t_cuda_engine(void) {
    if (!need_gpu()) return;
#ifdef EFFBENCH_EMU      /* the emulator: the goldens' tiny shapes of every family (real ones take minutes) */
    char cfgs[6][1200];
    for (int k = 0; k < 6; k++) snprintf(cfgs[k], sizeof cfgs[k], "%s/%s/config.json", g_golden, GCASES[k]);
    const int ncfg = 6;
#else
    const char *cfgs[] = { "suites/configs/deepseek-v2-lite.json", "suites/configs/deepseek-v3.json", "suites/configs/llama-3.1-8b.json",
                           "suites/configs/mixtral-8x7b.json", "suites/configs/qwen2.5-7b.json" };
    const int ncfg = 5;
#endif
    for (int k = 0; k < ncfg; k++) {
        Model m;
        LoadOpts lo = { .dtype = DT_F32, .seed = 3, .dummy = 1, .layers = 2 };
        Err e = { "" };
        if (model_load(&m, cfgs[k], &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); continue; }
        int V = m.cfg.vocab;
        const int n = 9;
        int tok[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, seq[9] = { 0, 0, 0, 0, 0, 1, 1, 1, 1 }, pos[9] = { 0, 1, 2, 3, 4, 0, 1, 2, 3 };
        float *a = xmalloc(sizeof(float) * n * V), *b = xmalloc(sizeof(float) * n * V);
        EngineOpts cpu = { .backend = BACKEND_CPU }, gpu = { .backend = BACKEND_CUDA, .gpu_dtype = DT_F32 };
        Engine *gc, *gg;
        if (engine_open(&gc, &m, &cpu, 2, 64, 16, &e) || engine_open(&gg, &m, &gpu, 2, 64, 16, &e)) {
            t_fail(__FILE__, __LINE__, "%s: %s", cfgs[k], e.msg);
            model_free(&m);
            free(a); free(b);
            continue;
        }
        CHECK(engine_step(gc, n, tok, seq, pos, NULL, a, NULL, NULL, &e) == 0 && engine_step(gg, n, tok, seq, pos, NULL, b, NULL, NULL, &e) == 0,
              "%s", e.msg);
        float err = rel_err(b, a, (size_t)n * V);
        CHECK(err < 1e-3f, "%s: GPU vs CPU mixed batch %g", cfgs[k], err);
        if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "%s: GPU vs CPU mixed batch %g\n", cfgs[k], err);
        /* 12 greedy steps of both sequences, graphs on the GPU, against the CPU */
        int tc[2] = { 11, 12 }, tg[2] = { 11, 12 }, s2[2] = { 0, 1 }, p2[2];
        for (int i = 0; i < 12; i++) {
            p2[0] = 5 + i; p2[1] = 4 + i;
            if (engine_step(gc, 2, tc, s2, p2, NULL, NULL, tc, NULL, &e) || engine_step(gg, 2, tg, s2, p2, NULL, NULL, tg, NULL, &e)) {
                t_fail(__FILE__, __LINE__, "%s", e.msg);
                break;
            }
            CHECK(tc[0] == tg[0] && tc[1] == tg[1], "%s: step %d tokens CPU %d,%d GPU %d,%d", cfgs[k], i, tc[0], tc[1], tg[0], tg[1]);
            if (tc[0] != tg[0] || tc[1] != tg[1]) break;
        }
        engine_close(gc);
        engine_close(gg);
        free(a); free(b);
        model_free(&m);
    }
}

/* the cache operations the benchmarks use: a context repeated past its prefill, copied
 * to other sequences, rewound; then one decode step of each, GPU against CPU */
static void t_cuda_cache_ops(void) {
    if (!need_gpu()) return;
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/deepseek/v2-lite-tiny/config.json", g_golden);
    Model m;
    LoadOpts lo = { .dtype = DT_F32, .seed = 5, .dummy = 1 };
    Err e = { "" };
    if (access(cfg, R_OK)) { t_skip("no golden config at %s", cfg); return; }
    if (model_load(&m, cfg, &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    int V = m.cfg.vocab;
    EngineOpts eo[2] = { { .backend = BACKEND_CPU }, { .backend = BACKEND_CUDA, .gpu_dtype = DT_F32 } };
    float *lg[2] = { xmalloc(sizeof(float) * 3 * V), xmalloc(sizeof(float) * 3 * V) };
    int tok[64], seq[64] = { 0 }, pos[64];
    for (int i = 0; i < 64; i++) { tok[i] = (i * 37 + 5) % V; pos[i] = i; }
    for (int b = 0; b < 2; b++) {
        Engine *g;
        int rc = engine_open(&g, &m, &eo[b], 3, 300, 64, &e);
        if (!rc) rc = engine_step(g, 64, tok, seq, pos, NULL, NULL, NULL, NULL, &e);
        if (!rc) rc = engine_repeat_context(g, 0, 64, 200, &e);
        if (!rc) rc = engine_copy_seq(g, 1, 0, 200, &e);
        if (!rc) rc = engine_copy_seq(g, 2, 0, 130, &e);
        if (!rc) rc = engine_set_len(g, 1, 150, &e);
        int t3[3] = { 3, 4, 5 }, s3[3] = { 0, 1, 2 }, p3[3] = { 200, 150, 130 };
        if (!rc) rc = engine_step(g, 3, t3, s3, p3, NULL, lg[b], NULL, NULL, &e);
        CHECK(rc == 0, "%s: %s", b ? "cuda" : "cpu", e.msg);
        if (b && !rc) {   /* the measuring code on this engine: a decode cell with a copied context */
            Cell c;
            CHECK(measure_decode(g, 2, 70, 3, 1, 1, &c, &e) == 0 && c.tokens_per_s > 0 && !strcmp(c.backend, "cuda"), "measure_decode: %s", e.msg);
            CHECK(measure_prefill(g, 40, 1, 0, &c, &e) == 0 && c.tokens_per_s > 0, "measure_prefill: %s", e.msg);
        }
        engine_close(g);
    }
    float err = rel_err(lg[1], lg[0], (size_t)3 * V);
    CHECK(err < 1e-3f, "after repeat, copy and rewind: GPU vs CPU logits %g", err);
    free(lg[0]); free(lg[1]);
    model_free(&m);
}

/* A small model with MLA's real latent shape (576/512) in BF16: on the GPU its
 * attention takes the tensor-core kernel inside the whole engine, graphs included.
 * Against the CPU on the same weights: 2% of the largest logit, as the BF16 goldens. */
static const char MLA576[] =
    "{\"model_type\": \"deepseek_v2\", \"vocab_size\": 300, \"hidden_size\": 256, \"intermediate_size\": 384,"
    " \"moe_intermediate_size\": 64, \"num_hidden_layers\": 2, \"first_k_dense_replace\": 1, \"num_attention_heads\": 20,"
    " \"num_key_value_heads\": 20, \"kv_lora_rank\": 512, \"q_lora_rank\": null, \"qk_nope_head_dim\": 32,"
    " \"qk_rope_head_dim\": 64, \"v_head_dim\": 32, \"n_routed_experts\": 8, \"n_shared_experts\": 1,"
    " \"num_experts_per_tok\": 2, \"moe_layer_freq\": 1, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-06,"
    " \"max_position_embeddings\": 4096, \"n_group\": 1, \"topk_group\": 1, \"scoring_func\": \"softmax\","
    " \"topk_method\": \"greedy\", \"norm_topk_prob\": false, \"routed_scaling_factor\": 1.0, \"tie_word_embeddings\": false}";

static void t_cuda_engine_mla576(void) {
    if (!need_gpu()) return;
    Model m;
    LoadOpts lo = { .dtype = DT_BF16, .seed = 9, .dummy = 1, .config_text = MLA576 };
    Err e = { "" };
    if (model_load(&m, "mla576.json", &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    int V = m.cfg.vocab, n = 70;
    int *tok = xmalloc(sizeof(int) * n), *seq = xcalloc((size_t)n, sizeof(int)), *pos = xmalloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) { tok[i] = (i * 13 + 1) % V; pos[i] = i; }
    unsigned char *want = xcalloc((size_t)n, 1);
    want[n - 1] = 1;
    EngineOpts eo[2] = { { .backend = BACKEND_CPU }, { .backend = BACKEND_CUDA } };
    float *lg[2] = { xmalloc(sizeof(float) * 8 * V), xmalloc(sizeof(float) * 8 * V) };
    int next[2][8];
    for (int b = 0; b < 2; b++) {
        Engine *g;
        int rc = engine_open(&g, &m, &eo[b], 1, 128, n, &e);
        if (!rc) rc = engine_step(g, n, tok, seq, pos, want, lg[b], NULL, NULL, &e);
        int t = rc ? 0 : argmax_row(lg[b], V);
        for (int i = 1; i < 8 && !rc; i++) {       /* greedy decode; steps 3.. replay a graph on the GPU */
            int p = n + i - 1, s0 = 0;
            next[b][i - 1] = t;
            rc = engine_step(g, 1, &t, &s0, &p, NULL, NULL, &t, NULL, &e);
        }
        CHECK(rc == 0, "%s: %s", b ? "cuda" : "cpu", e.msg);
        if (b) CHECK(!strcmp(engine_dtype(g), "BF16"), "the GPU should hold BF16 weights, holds %s", engine_dtype(g));
        engine_close(g);
    }
    float scale = 0;
    for (int v = 0; v < V; v++) scale = fmaxf(scale, fabsf(lg[0][v]));
    size_t w;
    float d = max_abs_diff(lg[1], lg[0], (size_t)V, &w);
    CHECK(d <= 0.02f * scale, "MLA 576/512 BF16 engine: prefill logits differ by %.3g (> 2%% of %.3g)", d, scale);
    const float *r = lg[0];
    int best = argmax_row(r, V);
    float second = -INFINITY;
    for (int v = 0; v < V; v++) if (v != best && r[v] > second) second = r[v];
    if (r[best] - second > 0.04f * scale) CHECK(next[0][0] == next[1][0], "first greedy token: CPU %d, GPU %d", next[0][0], next[1][0]);
    free(lg[0]); free(lg[1]); free(tok); free(seq); free(pos); free(want);
    model_free(&m);
}

/* Rows past a grid's 65535 y-blocks (the kernels that put rows or tokens in grid.y
 * stride over the rest): each op on 65536 + 37 rows of a narrow width against a plain
 * loop, exact (copies; the combine sums the same terms in the same order both sides). */
static void t_cuda_rows_past_grid_y(void) {
    if (!need_gpu()) return;
    const int R = 65536 + 37, W = 3, V = 50;
    int *idx = xmalloc(sizeof(int) * R);
    float *src = rnd((size_t)V * W, 1, 21), *out = xmalloc(sizeof(float) * R * W), *ref = xmalloc(sizeof(float) * R * W);
    for (int r = 0; r < R; r++) idx[r] = (r * 7 + 3) % V;
    int *didx = up(idx, sizeof(int) * R);
    float *dsrc = up(src, sizeof(float) * V * W), *dout = cuda_malloc(sizeof(float) * R * W);
    /* gather (idx / 1) and embed (tok = idx) of rows of src */
    for (int r = 0; r < R; r++) memcpy(ref + (size_t)r * W, src + (size_t)idx[r] * W, sizeof(float) * W);
    CHECK(cuda_gather_rows(dout, dsrc, W, didx, 1, R, W) == 0 && cuda_to_host(out, dout, sizeof(float) * R * W) == 0, "%s", cuda_error());
    CHECK(!memcmp(out, ref, sizeof(float) * R * W), "gather_rows past 65535 rows differs");
    memset(out, 0, sizeof(float) * R * W);
    CHECK(cuda_embed(dout, dsrc, 0, didx, R, W) == 0 && cuda_to_host(out, dout, sizeof(float) * R * W) == 0, "%s", cuda_error());
    CHECK(!memcmp(out, ref, sizeof(float) * R * W), "embed past 65535 tokens differs");
    /* combine with K = 1, weight 1 and no shared term: row where[t] of y for each token */
    float *one = xmalloc(sizeof(float) * R);
    for (int r = 0; r < R; r++) one[r] = 1.0f;
    float *done = up(one, sizeof(float) * R);
    int *where = xmalloc(sizeof(int) * R);
    for (int r = 0; r < R; r++) where[r] = R - 1 - r;
    int *dwhere = up(where, sizeof(int) * R);
    float *y = rnd((size_t)R * W, 1, 22), *dy = up(y, sizeof(float) * R * W);
    moe_combine(ref, y, one, where, NULL, R, 1, W);
    CHECK(cuda_moe_combine(dout, dy, done, dwhere, NULL, R, 1, W) == 0 && cuda_to_host(out, dout, sizeof(float) * R * W) == 0,
          "%s", cuda_error());
    CHECK(!memcmp(out, ref, sizeof(float) * R * W), "moe_combine past 65535 tokens differs");
    /* kv_write of R tokens, one sequence of R positions, F32 cache rows of W */
    int nb = (R + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK, *table = xmalloc(sizeof(int) * nb), *seq = xcalloc((size_t)R, sizeof(int));
    for (int b = 0; b < nb; b++) table[b] = nb - 1 - b;
    int *pos = xmalloc(sizeof(int) * R);
    for (int r = 0; r < R; r++) pos[r] = r;
    int *dtable = up(table, sizeof(int) * nb), *dseq = up(seq, sizeof(int) * R), *dpos = up(pos, sizeof(int) * R);
    float *dcache = cuda_malloc(sizeof(float) * (size_t)nb * CUDA_KV_BLOCK * W), *cache = xmalloc(sizeof(float) * (size_t)nb * CUDA_KV_BLOCK * W);
    CHECK(cuda_kv_write(dcache, 0, W, dtable, nb, dy, W, W, 0, dseq, dpos, R) == 0 &&
          cuda_to_host(cache, dcache, sizeof(float) * (size_t)nb * CUDA_KV_BLOCK * W) == 0, "%s", cuda_error());
    int bad = 0;
    for (int r = 0; r < R; r++)
        bad += memcmp(cache + ((size_t)table[r / CUDA_KV_BLOCK] * CUDA_KV_BLOCK + r % CUDA_KV_BLOCK) * W, y + (size_t)r * W, sizeof(float) * W) != 0;
    CHECK(!bad, "kv_write past 65535 tokens: %d rows differ", bad);
    cuda_free(didx); cuda_free(dsrc); cuda_free(dout); cuda_free(done); cuda_free(dwhere); cuda_free(dy);
    cuda_free(dtable); cuda_free(dseq); cuda_free(dpos); cuda_free(dcache);
    free(idx); free(src); free(out); free(ref); free(one); free(where); free(y); free(table); free(seq); free(pos); free(cache);
}

/* A MoE model (MLA, 8 experts, all 8 taken per token) with one step of 8256 tokens:
 * 129 sequences of a 64-token prefill each, so the attention stays short while the
 * expert rows (tokens x top-k = 66048) pass a grid's 65535 y-blocks, as a prefill of
 * 8192 tokens does on DeepSeek-V3 and one of 10923 on V2-Lite. The last token of each
 * sequence against the CPU engine (tolerance as the engine test's). */
static const char WIDE_MOE[] =
    "{\"model_type\": \"deepseek_v2\", \"vocab_size\": 64, \"hidden_size\": 16, \"intermediate_size\": 16,"
    " \"moe_intermediate_size\": 8, \"num_hidden_layers\": 1, \"first_k_dense_replace\": 0, \"num_attention_heads\": 2,"
    " \"num_key_value_heads\": 2, \"kv_lora_rank\": 16, \"q_lora_rank\": null, \"qk_nope_head_dim\": 8,"
    " \"qk_rope_head_dim\": 8, \"v_head_dim\": 8, \"n_routed_experts\": 8, \"n_shared_experts\": 1,"
    " \"num_experts_per_tok\": 8, \"moe_layer_freq\": 1, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-06,"
    " \"max_position_embeddings\": 4096, \"n_group\": 1, \"topk_group\": 1, \"scoring_func\": \"softmax\","
    " \"topk_method\": \"greedy\", \"norm_topk_prob\": false, \"routed_scaling_factor\": 1.0, \"tie_word_embeddings\": false}";

static void t_cuda_engine_past_grid_y(void) {
    if (!need_gpu()) return;
    Model m;
    LoadOpts lo = { .dtype = DT_F32, .seed = 6, .dummy = 1, .config_text = WIDE_MOE };
    Err e = { "" };
    if (model_load(&m, "wide-moe.json", &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    const int S = 129, P = 64, n = S * P, V = m.cfg.vocab;
    CHECK((int64_t)n * m.cfg.top_k > 65535, "the step must pass 65535 expert rows: %d x %d", n, m.cfg.top_k);
    int *tok = xmalloc(sizeof(int) * n), *seq = xmalloc(sizeof(int) * n), *pos = xmalloc(sizeof(int) * n);
    unsigned char *want = xcalloc((size_t)n, 1);
    for (int i = 0; i < n; i++) { tok[i] = (i * 29 + 5) % V; seq[i] = i / P; pos[i] = i % P; want[i] = i % P == P - 1; }
    EngineOpts eo[2] = { { .backend = BACKEND_CPU }, { .backend = BACKEND_CUDA, .gpu_dtype = DT_F32 } };
    float *lg[2] = { xmalloc(sizeof(float) * S * V), xmalloc(sizeof(float) * S * V) };
    for (int b = 0; b < 2; b++) {
        Engine *g = NULL;
        int rc = engine_open(&g, &m, &eo[b], S, P, n, &e);
        if (!rc) rc = engine_step(g, n, tok, seq, pos, want, lg[b], NULL, NULL, &e);
        CHECK(rc == 0, "%s: a step of %d tokens: %s", b ? "cuda" : "cpu", n, e.msg);
        engine_close(g);
    }
    if (!t_failed()) CHECK(rel_err(lg[1], lg[0], (size_t)S * V) < 1e-3f, "GPU vs CPU: %g", rel_err(lg[1], lg[0], (size_t)S * V));
    free(lg[0]); free(lg[1]); free(tok); free(seq); free(pos); free(want);
    model_free(&m);
}

/* ---- the step a profiler replays is the step a cell times ------------------------------ */
static int step_marks[OP_COUNT], step_counting;
static void count_ops(int op, int begin, void *ctx) {
    (void)ctx;
    if (begin && step_counting && op >= 0 && op < OP_COUNT) step_marks[op]++;
}
static void count_window(int begin, void *ctx) { (void)ctx; step_counting = begin; }

/* The ops marked in a cell's timed step and in its CellStep (which the range profiler
 * replays, and whose op count sizes its range budget) are the same, op by op: a
 * prefill of 300 tokens computes the logits of its last position only (one LM_HEAD
 * pass, where all 300 rows would take two of 256), a decode step those of its batch. */
static void t_cuda_cell_step(void) {
    if (!need_gpu()) return;
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/deepseek/v2-lite-tiny/config.json", g_golden);
    if (access(cfg, R_OK)) { t_skip("no golden config at %s", cfg); return; }
    Model m;
    LoadOpts lo = { .dtype = DT_F32, .seed = 4, .dummy = 1 };
    Err e = { "" };
    if (model_load(&m, cfg, &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    EngineOpts eo = { .backend = BACKEND_CUDA, .gpu_dtype = DT_F32, .no_graphs = 1 };
    Engine *g = NULL;
    if (engine_open(&g, &m, &eo, 1, 1, 1, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); model_free(&m); return; }
    cuda_set_op_hook(count_ops, NULL);
    for (int k = 0; k < 2; k++) {
        Cell c;
        int timed[OP_COUNT];
        memset(step_marks, 0, sizeof step_marks);
        measure_hook = count_window;
        int rc = k == 0 ? measure_prefill(g, 300, 1, 0, &c, &e) : measure_decode(g, 3, 70, 1, 1, 0, &c, &e);
        measure_hook = NULL;
        CHECK(rc == 0, "%s", e.msg);
        memcpy(timed, step_marks, sizeof timed);
        CellStep st;
        memset(step_marks, 0, sizeof step_marks);
        rc = cell_step_open(g, &c, &st, &e);
        if (!rc) rc = cell_step_reset(g, &st, &e);
        step_counting = 1;
        if (!rc) rc = cell_step_run(g, &st, &e);
        step_counting = 0;
        CHECK(rc == 0, "%s", e.msg);
        int total = 0;
        for (int op = 0; op < OP_COUNT; op++) {
            total += step_marks[op];
            CHECK(step_marks[op] == timed[op], "%s: op %s marked %d times in the replayed step, %d in the timed one", k ? "decode" : "prefill",
                  cuda_op_name(op), step_marks[op], timed[op]);
        }
        CHECK(step_marks[OP_LM_HEAD] == 1 && total > 10, "%s: %d LM_HEAD passes, %d ops", k ? "decode" : "prefill", step_marks[OP_LM_HEAD], total);
        cell_step_close(&st);
    }
    cuda_set_op_hook(NULL, NULL);
    engine_close(g);
    model_free(&m);
}

#ifdef EFFBENCH_EMU
/* ---- op marks on error paths (the emulator fails a kernel when told to) ------------ */
static int mark_depth, mark_begins, mark_unbalanced;
static void count_marks(int op, int begin, void *ctx) {
    (void)op; (void)ctx;
    if (begin) { mark_begins++; if (mark_depth++ > 0) mark_unbalanced = 1; }      /* the engine's ops never nest */
    else if (--mark_depth < 0) mark_unbalanced = 1;
}

/* A kernel that fails between an op's begin and end marks (the expert rows' gather,
 * inside the permute op; then the RoPE inside its op; then the sampling): the step
 * fails and every begun op is ended, so a profiler's external correlation or range is
 * never left pushed; the failed step gives back the cache blocks it took, so the same
 * step runs after it. */
static void t_cuda_marks_on_failure(void) {
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/deepseek/v2-lite-tiny/config.json", g_golden);
    if (access(cfg, R_OK)) { t_skip("no golden config at %s", cfg); return; }
    Model m;
    LoadOpts lo = { .dtype = DT_F32, .seed = 4, .dummy = 1 };
    Err e = { "" };
    if (model_load(&m, cfg, &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    EngineOpts eo = { .backend = BACKEND_CUDA, .gpu_dtype = DT_F32, .no_graphs = 1 };   /* as traced steps run */
    Engine *g = NULL;
    if (engine_open(&g, &m, &eo, 1, 16, 4, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); model_free(&m); return; }
    const char *fail[] = { "gather_kernel", "rope_kernel", "argmax_kernel", "" };
    int tok[4] = { 3, 4, 5, 6 }, seq[4] = { 0 }, pos[4] = { 0, 1, 2, 3 }, next[4];
    cuda_set_op_hook(count_marks, NULL);
    for (int k = 0; k < 4; k++) {
        mark_depth = mark_begins = mark_unbalanced = 0;
        setenv("EFFBENCH_EMU_FAIL_KERNEL", fail[k], 1);
        int rc = engine_step(g, 4, tok, seq, pos, NULL, NULL, next, NULL, &e);
        unsetenv("EFFBENCH_EMU_FAIL_KERNEL");
        if (fail[k][0]) CHECK(rc != 0 && strstr(e.msg, "cudaErrorLaunchFailure"), "%s failing: the step should fail (%s)", fail[k], e.msg);
        else CHECK(rc == 0, "the step without a failure: %s", e.msg);
        CHECK(mark_begins > 0 && mark_depth == 0 && !mark_unbalanced, "%s: %d ops begun, %d left open%s", fail[k][0] ? fail[k] : "no failure",
              mark_begins, mark_depth, mark_unbalanced ? ", marks unbalanced" : "");
    }
    cuda_set_op_hook(NULL, NULL);
    engine_close(g);
    model_free(&m);
}

/* A device that refuses graph capture (the emulator, told to): the engine says so once
 * and decodes eagerly, with the CPU's greedy tokens. */
static void t_cuda_capture_refused(void) {
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/deepseek/v2-lite-tiny/config.json", g_golden);
    if (access(cfg, R_OK)) { t_skip("no golden config at %s", cfg); return; }
    Model m;
    LoadOpts lo = { .dtype = DT_F32, .seed = 4, .dummy = 1 };
    Err e = { "" };
    if (model_load(&m, cfg, &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    setenv("EFFBENCH_EMU_REFUSE_CAPTURE", "1", 1);
    EngineOpts eo[2] = { { .backend = BACKEND_CPU }, { .backend = BACKEND_CUDA, .gpu_dtype = DT_F32 } };
    int toks[2][6];
    for (int b = 0; b < 2; b++) {
        Engine *g;
        int rc = engine_open(&g, &m, &eo[b], 1, 16, 1, &e), t = 7, s0 = 0;
        for (int p = 0; p < 6 && !rc; p++) {       /* the same shape each step: a graph from the second on */
            rc = engine_step(g, 1, &t, &s0, &p, NULL, NULL, &t, NULL, &e);
            toks[b][p] = t;
        }
        CHECK(rc == 0, "%s: %s", b ? "cuda" : "cpu", e.msg);
        engine_close(g);
    }
    unsetenv("EFFBENCH_EMU_REFUSE_CAPTURE");
    CHECK(!memcmp(toks[0], toks[1], sizeof toks[0]), "eager decoding after a refused capture differs from the CPU");
    model_free(&m);
}
#endif
#endif /* EFFBENCH_CUDA */

/* ---- CUPTI Host API: no GPU needed --------------------------------------------------- */
static void t_cupti_host(void) {
    char why[200];
    if (!cupti_host_usable(why, sizeof why)) { t_skip("%s", why); return; }
    Err e = { "" };
    CuptiHost *h;
    size_t passes = 0;
    CHECK(cupti_host_open(&h, "GH100", NULL, ROOFLINE_METRICS, N_ROOFLINE_METRICS, &e) == 0, "roofline set on GH100: %s", e.msg);
    if (!t_failed()) {
        CHECK(cupti_host_config(h, NULL, NULL, &passes, &e) == 0, "%s", e.msg);
        CHECK(passes == 2, "roofline set: %zu passes on GH100, expected 2 (hardware counters and SASS counters)", passes);
        char d[512];
        CHECK(cupti_host_describe(h, "dram__bytes_read.sum", d, sizeof d, &e) == 0 && strstr(d, "byte"), "describe: %s", e.msg);
        cupti_host_close(h);
    }
    const char *one[] = { "sm__throughput.avg.pct_of_peak_sustained_elapsed" };
    CHECK(cupti_host_open(&h, "GH100", NULL, one, 1, &e) == 0, "%s", e.msg);
    if (!t_failed()) {
        CHECK(cupti_host_config(h, NULL, NULL, &passes, &e) == 0 && passes == 8, "sm__throughput alone: %zu passes, expected 8", passes);
        cupti_host_close(h);
    }
    const char *bad[] = { "dram__bytes_read.sum", "dram__bytes_raed.sum" };
    CHECK(cupti_host_open(&h, "GH100", NULL, bad, 2, &e) != 0 && strstr(e.msg, "dram__bytes_raed.sum") && strstr(e.msg, "INVALID_METRIC_NAME"),
          "a misspelled metric must be named: \"%s\"", e.msg);
    CHECK(cupti_host_open(&h, "NOSUCHCHIP", NULL, ROOFLINE_METRICS, 1, &e) != 0, "an unknown chip must fail");
    char **names;
    int n;
    CHECK(cupti_metric_names("roofline", &names, &n) == 0 && n == N_ROOFLINE_METRICS, "roofline list");
    cupti_names_free(names, n);
    CHECK(cupti_metric_names("a.sum,b.sum", &names, &n) == 0 && n == 2 && !strcmp(names[1], "b.sum"), "list of two");
    cupti_names_free(names, n);
    CHECK(cupti_metric_names("a.sum,,b", &names, &n) != 0 && cupti_metric_names("", &names, &n) != 0, "empty names refused");
    CHECK(cupti_metric_names("roofline,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum", &names, &n) == 0 &&
          n == N_ROOFLINE_METRICS + 1, "roofline plus one more, without repeats: %d names", n);
    cupti_names_free(names, n);
}

/* ---- the arithmetic of metrics.csv: no GPU needed ------------------------------------ */
/* The tensor counter's calibration: 2 x 8192^3 FLOPs counted once per FLOP (factor 1)
 * or once per multiply-add (2), within 10%; anything else, and nothing counted, refused.
 * Then the per-op figures: rates on the Activity time base, FLOP figures left out
 * (NAN) when tensor ops were counted without a factor, ratios only against known roofs. */
static void t_profile_arithmetic(void) {
    const double F = 2.0 * 8192.0 * 8192.0 * 8192.0;
    double m;
    char why[256];
    CHECK(profile_tensor_factor(F, F, &m, why, sizeof why) == 1 && fabs(m - 1) < 1e-12, "counting FLOPs: factor 1, measured %g", m);
    CHECK(profile_tensor_factor(F / 2, F, &m, why, sizeof why) == 2 && fabs(m - 2) < 1e-12, "counting multiply-adds: factor 2");
    CHECK(profile_tensor_factor(F / 2 * 1.05, F, &m, why, sizeof why) == 2, "5%% more counted (%g): still 2", m);
    CHECK(profile_tensor_factor(F * 0.93, F, &m, why, sizeof why) == 1, "7%% fewer counted (%g): still 1", m);
    CHECK(profile_tensor_factor(F / 4, F, &m, why, sizeof why) == 0 && strstr(why, "refused"), "factor 4 refused: %s", why);
    CHECK(profile_tensor_factor(F / 1.5, F, &m, why, sizeof why) == 0, "factor 1.5 refused (%g)", m);
    CHECK(profile_tensor_factor(0, F, &m, why, sizeof why) == 0 && isnan(m), "nothing counted refused: %s", why);
    CHECK(profile_tensor_factor(NAN, F, &m, why, sizeof why) == 0, "a NaN count refused");
    /* an op of 1 ms: 2 GB of DRAM, 1e9 FFMA + 1e8 FADD, 5e11 tensor ops counted per multiply-add */
    OpCounters in = { .time_ns = 1e6, .dram_read = 1.5e9, .dram_write = 0.5e9, .ffma = 1e9, .fadd = 1e8, .fmul = 0,
                      .tensor_ops = 5e11, .factor = 2, .gbs = 4000, .tflops = 800, .ds_gbs = 4800, .ds_tflops = 989.4 };
    OpRates o;
    profile_op_rates(&in, &o);
    CHECK(o.dram_bytes == 2e9 && fabs(o.gbs - 2000) < 1e-9 && fabs(o.of_read_bw - 0.5) < 1e-12, "bytes %g, %g GB/s, %g of read",
          o.dram_bytes, o.gbs, o.of_read_bw);
    CHECK(o.fp32_flops == 2.1e9 && o.tensor_flops == 1e12 && o.flops == 1e12 + 2.1e9, "FLOPs %g + %g = %g", o.fp32_flops, o.tensor_flops, o.flops);
    CHECK(fabs(o.tflops - 1002.1) < 1e-9 && fabs(o.of_gemm_peak - 1002.1 / 800) < 1e-12 && fabs(o.of_ds_hbm - 2000.0 / 4800) < 1e-12,
          "%g TFLOP/s, %g of the GEMM peak", o.tflops, o.of_gemm_peak);
    in.factor = 1;
    profile_op_rates(&in, &o);
    CHECK(o.tensor_flops == 5e11, "factor 1: %g tensor FLOPs", o.tensor_flops);
    in.factor = 0;                       /* uncalibrated: no FLOP figure at all, bytes still */
    profile_op_rates(&in, &o);
    CHECK(isnan(o.tensor_flops) && isnan(o.flops) && isnan(o.tflops) && isnan(o.of_gemm_peak) && isnan(o.of_ds_bf16) &&
          fabs(o.gbs - 2000) < 1e-9, "refused factor: FLOPs %g, TFLOP/s %g, GB/s %g", o.flops, o.tflops, o.gbs);
    in.tensor_ops = -1;                  /* not measured: FP32 FLOPs alone */
    profile_op_rates(&in, &o);
    CHECK(isnan(o.tensor_flops) && o.flops == 2.1e9, "no tensor counter: %g FLOPs", o.flops);
    in.time_ns = 0;                      /* no kernel time: no rates */
    in.ds_gbs = 0;
    profile_op_rates(&in, &o);
    CHECK(isnan(o.gbs) && isnan(o.tflops) && isnan(o.of_read_bw) && isnan(o.of_ds_hbm) && o.dram_bytes == 2e9, "no time: rates %g %g",
          o.gbs, o.tflops);
}

#ifndef EFFBENCH_CUDA
static void t_cuda_none(void) {
    char why[256];
    cuda_available(why, sizeof why);
    t_skip("%s", why);
}
#endif

const TestDef cuda_tests[] = {
    { "cuda probe: a device or one line why not", t_cuda_probe },
    { "cupti host API: metric names and passes on GH100 (no GPU needed)", t_cupti_host },
    { "cupti metrics: tensor counter calibration and per-op rates (no GPU needed)", t_profile_arithmetic },
#ifdef EFFBENCH_CUDA
    { "cuda rmsnorm, swiglu vs CPU twins", t_cuda_rmsnorm_swiglu },
    { "cuda rope (half, interleaved) vs CPU twins", t_cuda_rope },
    { "cuda embedding and argmax vs CPU twins", t_cuda_embed_argmax },
    { "cuda add, gather, copy, strided norm vs CPU twins", t_cuda_rows },
    { "cuda linear (F32, BF16) and batched products vs CPU twins", t_cuda_linear },
    { "cuda MoE route, permute, grouped products, combine vs CPU twins", t_cuda_moe },
    { "cuda grouped expert products: matrix-vector and tiled kernels", t_cuda_grouped },
    { "cuda paged attention (MLA, GQA; F32, BF16 cache) vs CPU twin", t_cuda_attention },
    { "cuda MLA tensor-core attention (576/512, BF16 cache) vs CPU twin", t_cuda_attention_mla_wmma },
    { "cuda graph replay equals the eager run", t_cuda_graph },
    { "cuda engine: goldens (F32 1e-4; BF16 vs CPU on BF16 weights)", t_cuda_golden },
    { "cuda engine: every family vs CPU, graphs vs eager decode", t_cuda_engine },
    { "cuda engine: context repeat, sequence copy, rewind vs CPU", t_cuda_cache_ops },
    { "cuda engine: MLA 576/512 in BF16 (tensor-core attention) vs CPU", t_cuda_engine_mla576 },
    { "cuda gather, embed, MoE combine, kv_write past 65535 grid rows", t_cuda_rows_past_grid_y },
    { "cuda engine: one step of 8256 tokens x 8 experts (66048 rows) vs CPU", t_cuda_engine_past_grid_y },
    { "cuda cells: the step a profiler replays marks the timed step's ops", t_cuda_cell_step },
#ifdef EFFBENCH_EMU
    { "cuda engine: graph capture refused, eager decode", t_cuda_capture_refused },
    { "cuda engine: a kernel failing inside an op leaves no op mark open", t_cuda_marks_on_failure },
#endif
#else
    { "cuda ops, goldens and engine (not built)", t_cuda_none },
#endif
};
const int n_cuda_tests = sizeof cuda_tests / sizeof cuda_tests[0];
