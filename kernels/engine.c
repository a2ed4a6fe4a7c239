/*
 * engine.c - the backend switch: CPU steps go to model_forward over a KVCache, CUDA
 * steps to the GPU engine. Also the op marks the GPU forward pass sets for profilers.
 */
#include "engine.h"
#include "qdot.h"
#include "cuda/backend.h"

#include <stdio.h>
#include <stdlib.h>

struct Engine {
    Backend backend;
    Model *m;
    KVCache kv;                  /* CPU */
    GpuEngine *gpu;              /* CUDA */
    char device[256];
    float *lg;                   /* CPU: logits of a step asked only for its greedy tokens */
    size_t lg_cap;               /* floats lg holds (grown, never shrunk: decode allocates nothing) */
};

int engine_open(Engine **out, Model *m, const EngineOpts *o, int n_seq, int max_pos, int max_tokens, Err *e) {
    Engine *g = xcalloc(1, sizeof *g);
    g->backend = o->backend;
    g->m = m;
    int rc;
    if (o->backend == BACKEND_CUDA && m->opts.kv_dtype != DT_F32) {
        free(g);
        *out = NULL;
        return err_set(e, "--kv-dtype %s: the CUDA backend keeps its own cache (float32, or BF16 with BF16 weights via --gpu-dtype); "
                          "a BF16 or FP8 cache runs on --backend cpu", m->opts.kv_dtype == DT_BF16 ? "bf16" : "fp8");
    }
    if (o->backend == BACKEND_CUDA) rc = gpu_open(&g->gpu, m, o, n_seq, max_pos, max_tokens, e);
    else {
        rc = kv_create(&g->kv, m, n_seq, max_pos, e);
        if (rc) memset(&g->kv, 0, sizeof g->kv);
        cpu_model_name(g->device, sizeof g->device);
    }
    if (rc) { free(g); *out = NULL; return rc; }
    *out = g;
    return 0;
}

int engine_reserve(Engine *g, int n_seq, int max_pos, int max_tokens, Err *e) {
    if (g->backend == BACKEND_CUDA) return gpu_reserve(g->gpu, n_seq, max_pos, max_tokens, e);
    (void)max_tokens;
    kv_free(&g->kv);
    memset(&g->kv, 0, sizeof g->kv);
    return kv_create(&g->kv, g->m, n_seq, max_pos, e);
}

Model *engine_model(const Engine *g) { return g->m; }

void engine_close(Engine *g) {
    if (!g) return;
    if (g->backend == BACKEND_CUDA) gpu_close(g->gpu);
    else kv_free(&g->kv);
    free(g->lg);
    free(g);
}

int engine_step(Engine *g, int n, const int *tok, const int *seq, const int *pos, const unsigned char *want,
                float *logits, int *next, Trace *tr, Err *e) {
    if (g->backend == BACKEND_CUDA) return gpu_step(g->gpu, n, tok, seq, pos, want, logits, next, tr, e);
    int V = g->m->cfg.vocab, nw = 0;
    for (int i = 0; i < n; i++) nw += !want || want[i];
    float *lg = logits;
    if (!lg && next && nw) {
        if ((size_t)nw * V > g->lg_cap) {
            free(g->lg);
            g->lg_cap = (size_t)nw * V;
            g->lg = xmalloc(sizeof(float) * g->lg_cap);
        }
        lg = g->lg;
    }
    int rc = model_forward(g->m, &g->kv, n, tok, seq, pos, want, lg, tr, e);
    if (!rc && next)
        for (int r = 0; r < nw; r++) {
            const float *row = lg + (int64_t)r * V;
            int best = 0;
            for (int v = 1; v < V; v++) if (row[v] > row[best]) best = v;
            next[r] = best;
        }
    return rc;
}

int engine_set_len(Engine *g, int s, int len, Err *e) {
    if (g->backend == BACKEND_CUDA) return gpu_set_len(g->gpu, s, len, e);
    if (s < 0 || s >= g->kv.n_seq || len < 0 || len > g->kv.max_pos) return err_set(e, "set_len: sequence %d, length %d out of range", s, len);
    g->kv.len[s] = len;
    return 0;
}

int engine_copy_seq(Engine *g, int dst, int src, int len, Err *e) {
    if (g->backend == BACKEND_CUDA) return gpu_copy_seq(g->gpu, dst, src, len, e);
    KVCache *kv = &g->kv;
    if (dst < 0 || dst >= kv->n_seq || src < 0 || src >= kv->n_seq || len < 0 || len > kv->len[src])
        return err_set(e, "copy_seq: %d <- %d, %d positions: out of range", dst, src, len);
    if (dst != src) kv_copy_rows(kv, dst, 0, src, 0, len);
    kv->len[dst] = len;
    return 0;
}

int engine_repeat_context(Engine *g, int s, int have, int len, Err *e) {
    if (g->backend == BACKEND_CUDA) return gpu_repeat_context(g->gpu, s, have, len, e);
    KVCache *kv = &g->kv;
    if (s < 0 || s >= kv->n_seq || have <= 0 || have % 64 || have > kv->len[s] || len > kv->max_pos)
        return err_set(e, "repeat_context: sequence %d, %d of %d positions: out of range", s, have, len);
    for (int p = have; p < len; p += have) kv_copy_rows(kv, s, p, s, 0, len - p < have ? len - p : have);
    if (len > kv->len[s]) kv->len[s] = len;
    return 0;
}

uint64_t engine_kv_bytes_per_token(const Engine *g) {
    return g->backend == BACKEND_CUDA ? gpu_kv_bytes_per_token(g->gpu) : kv_bytes_per_token(&g->kv);
}
const char *engine_backend(const Engine *g) { return g->backend == BACKEND_CUDA ? "cuda" : "cpu"; }
const char *engine_device(const Engine *g) { return g->backend == BACKEND_CUDA ? gpu_device(g->gpu) : g->device; }
/* the weights' type; "Q4_K/q8" when decode multiplies it with 8-bit activations, "BF16/bf16"
 * or "F16/bf16" when prefill multiplies it with BF16 activations (--products low) */
const char *engine_dtype(const Engine *g) {
    static const char *q8[DT_COUNT] = {
        [DT_Q8_0] = "Q8_0/q8", [DT_Q4_0] = "Q4_0/q8", [DT_Q4_1] = "Q4_1/q8",
        [DT_Q4_K] = "Q4_K/q8", [DT_Q5_K] = "Q5_K/q8", [DT_Q6_K] = "Q6_K/q8",
    };
    if (g->backend == BACKEND_CUDA) return gpu_dtype(g->gpu);
    DType dt = g->m->wdtype;
    if (qdot_int8_products() && dt == DT_BF16 && qgemm_ok(dt)) return "BF16/bf16";   /* prefill: BF16 activations */
    if (qdot_int8_products() && dt == DT_F16 && qgemm_panel_ok(dt)) return "F16/bf16";
    return qdot_int8_products() && qdot_int_type(dt) ? q8[dt] : dtype_name(dt);
}

/* ---- op marks ------------------------------------------------------------------------ */
static const char *op_names[OP_COUNT] = {
    "embed", "norm", "q_proj", "kv_proj", "rope", "kv_write", "absorb", "attention", "attn_out", "o_proj", "residual",
    "router", "route", "permute", "experts", "combine", "shared_expert", "mlp", "lm_head", "sample",
};
static CudaOpHook op_hook;
static void *op_ctx;

const char *cuda_op_name(int op) { return op >= 0 && op < OP_COUNT ? op_names[op] : "?"; }
void cuda_set_op_hook(CudaOpHook hook, void *ctx) { op_hook = hook; op_ctx = ctx; }
void cuda_op_mark(int op, int begin) { if (op_hook) op_hook(op, begin, op_ctx); }
