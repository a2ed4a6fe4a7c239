/*
 * test_cuda.c - every CUDA op against its CPU twin. Without a usable GPU each test is
 * reported as skipped, with the reason, never as passed.
 *
 * Tolerances: 1e-5 relative for RMSNorm, SwiGLU and RoPE (float32 on both sides; the
 * GPU's rsqrtf/expf/sincos differ from libm by a few ulp), exact for the embedding
 * (a copy and a shift) and for argmax (ties resolved to the lowest index on both).
 */
#include "backend.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

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

static void t_cuda_probe(void) {
    char why[256] = "";
    int ok = cuda_available(why, sizeof why);
    /* either a device, described, or one line saying why not */
    if (ok) CHECK(why[0] && !strchr(why, '\n'), "device description: \"%s\"", why);
    else CHECK((!strncmp(why, "no usable CUDA device: ", 23) || strstr(why, "built without the CUDA backend")) && !strchr(why, '\n'),
               "reason: \"%s\"", why);
}

static void t_cuda_rmsnorm_swiglu(void) {
    if (!need_gpu()) return;
    const int T = 5, n = 1000;
    float *x = xmalloc(sizeof(float) * T * n), *w = xmalloc(sizeof(float) * n), *cpu = xmalloc(sizeof(float) * T * n), *gpu = xmalloc(sizeof(float) * T * n);
    for (int i = 0; i < T * n; i++) x[i] = sinf(0.37f * i) * 3;
    for (int i = 0; i < n; i++) w[i] = 1 + 0.1f * cosf((float)i);
    rmsnorm(cpu, n, x, n, T, n, w, 1e-6f);
    float *dx = up(x, sizeof(float) * T * n), *dw = up(w, sizeof(float) * n), *dout = cuda_malloc(sizeof(float) * T * n);
    CHECK(cuda_rmsnorm(dout, dx, dw, T, n, 1e-6f) == 0 && cuda_to_host(gpu, dout, sizeof(float) * T * n) == 0, "%s", cuda_error());
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

const TestDef cuda_tests[] = {
    { "cuda probe: a device or one line why not", t_cuda_probe },
    { "cuda rmsnorm, swiglu vs CPU twins", t_cuda_rmsnorm_swiglu },
    { "cuda rope (half, interleaved) vs CPU twins", t_cuda_rope },
    { "cuda embedding and argmax vs CPU twins", t_cuda_embed_argmax },
};
const int n_cuda_tests = sizeof cuda_tests / sizeof cuda_tests[0];
