/*
 * forward_gpu.c - the model's step on the GPU: the same block as kernels/forward.c,
 * queued op by op on the backend's stream (backend.h), with the weights uploaded once
 * and a paged KV cache.
 *
 * Weights: F32 when the checkpoint is F32/F16/FP8 (widened, dequantised) or asked for;
 * BF16 when stored so or asked for. Norms, biases and MLA's kv_b (absorbed products)
 * stay float32, as on the CPU. The cache is float32 with F32 weights, BF16 with BF16.
 * MLA runs absorbed: the cache holds [latent | rotary key] (Dc + Dr) per position.
 *
 * Paged cache: a pool of blocks of CUDA_KV_BLOCK positions for all layers; a sequence
 * takes a free block when it reaches a new one, and its table row lists them. Inputs
 * go up before the step; only the wanted logits, or the greedy tokens, come back.
 *
 * Graphs: a step of n tokens with nw wanted rows and a given attention split is run
 * eagerly the first time and captured on the second; later steps of that shape replay
 * the graph (the kernels read tokens, positions and tables from device memory).
 *
 * Split over ranks (layout.h, one GPU per rank: its local rank modulo the host's GPUs): the
 * model's share is uploaded as the CPU binds it, the collectives go through an NCCL
 * group (kernels/cuda/comm_nccl.c) at the same points as kernels/forward.c, and an
 * expert-parallel MoE layer brings the routing to the host to lay out the dispatch
 * (counts, send order, grouping), so split steps run eagerly, never as graphs.
 */
#include "engine.h"
#include "backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define LOGIT_ROWS 256           /* lm_head rows per pass (logits buffer) */
#define N_GRAPHS 16

typedef struct { void *w; int bf16; int rows, cols; } DMat;
typedef struct { DMat gate, up, down; } DMlp;

typedef struct {
    float *attn_norm, *ffn_norm;
    DMat q, q_a, q_b, kv_a, k, v, o;
    float *q_a_norm, *kv_a_norm, *kv_b;           /* kv_b: float32 (H*(Dn+Dv), Dc) */
    float *bq, *bk, *bv;
    int is_moe;
    DMlp mlp;
    DMat router;
    float *bias;
    void **gate_p, **up_p, **down_p;              /* (device) E expert pointers each */
    int has_shared;
    DMlp shared;
} GLayer;

typedef struct { int n, nw, key; void *exec; int seen; uint64_t used; } Graph;

struct GpuEngine {
    Model *m;
    int bf16, n_seq, max_pos, max_tokens, use_graphs;
    char device[300];
    DMat embed, lm_head;
    float *norm, *inv_freq;
    GLayer *layers;
    void **ptrs; int n_ptrs;                      /* the weights' device allocations */
    void **bptrs; int n_bptrs;                    /* the cache's and step buffers' (gpu_reserve) */
    /* cache */
    void *cache;
    int row, max_blocks, n_blocks;
    size_t layer_elems;
    int *table, *table_d, *len, *free_blocks, n_free, table_dirty;
    /* step buffers */
    float *x, *h, *o, *q, *qa, *kv, *k, *v, *qc, *lat, *ao, *g, *u, *logits, *sc, *wt, *xin, *y, *z, *work;
    size_t work_floats;
    int *ex, *off, *order, *where, *in_d, *next_d, *pairs_d;
    int *stage;                                   /* pinned: tok, seq, pos, rows */
    /* split over ranks */
    Comm *nccl;                                   /* the ranks' NCCL group (sh.n > 1) */
    float *xs, *logp, *logg;                      /* (device) EP send rows; lm_head slice (LOGIT_ROWS, nv); gathered */
    int *idx_d, *spos_d;                          /* (device) (N*K) gather indices; own slots' rows in the send order */
    int *hex, *hidx, *hspos, *hexl, *hoff, *horder, *hwhere, *hcnt;   /* host twins of the dispatch layout */
    size_t *hbytes;                               /* (2 * ranks) */
    Graph graphs[N_GRAPHS];
    uint64_t clock;
    int open_op;                                  /* the op begun and not yet ended, + 1 (0: none) */
};

/* a device allocation recorded in list (the weights' or the step's), freed with it */
static void *alloc_in(void ***list, int *n, size_t bytes, Err *e) {
    void *p = cuda_malloc(bytes);
    if (!p) { err_set(e, "GPU: %s", cuda_error()); return NULL; }
    if (*n % 64 == 0) *list = xrealloc(*list, sizeof(void *) * (size_t)(*n + 64));
    (*list)[(*n)++] = p;
    return p;
}
static void *dalloc(GpuEngine *g, size_t bytes, Err *e) { return alloc_in(&g->ptrs, &g->n_ptrs, bytes, e); }
static void *balloc(GpuEngine *g, size_t bytes, Err *e) { return alloc_in(&g->bptrs, &g->n_bptrs, bytes, e); }

/* ---- upload ------------------------------------------------------------------------- */
static void *staging;
#define STAGE_BYTES (64u << 20)

static int put(void *dst, const void *src, size_t bytes, Err *e) {
    if (!staging && !(staging = cuda_host_alloc(STAGE_BYTES))) return err_set(e, "GPU: %s", cuda_error());
    for (size_t at = 0; at < bytes; at += STAGE_BYTES) {
        size_t n = bytes - at < STAGE_BYTES ? bytes - at : STAGE_BYTES;
        memcpy(staging, (const char *)src + at, n);
        if (cuda_to_device((char *)dst + at, staging, n)) return err_set(e, "GPU upload: %s", cuda_error());
    }
    return 0;
}

static int up_mat(GpuEngine *g, DMat *d, const Mat *w, Err *e) {
    d->rows = (int)w->rows;
    d->cols = (int)w->cols;
    d->bf16 = g->bf16;
    size_t es = g->bf16 ? 2 : 4, bytes = (size_t)w->rows * w->cols * es;
    if (!(d->w = dalloc(g, bytes, e))) return -1;
    if ((g->bf16 && w->dt == DT_BF16) || (!g->bf16 && w->dt == DT_F32)) return put(d->w, w->data, bytes, e);
    int64_t chunk = (int64_t)(4u << 20) / (w->cols > 0 ? w->cols : 1);
    if (chunk < 1) chunk = 1;
    float *f = xmalloc(sizeof(float) * (size_t)(chunk * w->cols));
    uint16_t *b = g->bf16 ? xmalloc(sizeof(uint16_t) * (size_t)(chunk * w->cols)) : NULL;
    int rc = 0;
    for (int64_t r = 0; r < w->rows && !rc; r += chunk) {
        int64_t n = w->rows - r < chunk ? w->rows - r : chunk;
        mat_rows_f32(w, r, n, f);
        if (b) {
            for (int64_t i = 0; i < n * w->cols; i++) b[i] = f32_to_bf16(f[i]);
            rc = put((char *)d->w + (size_t)r * w->cols * 2, b, (size_t)(n * w->cols) * 2, e);
        } else {
            rc = put((char *)d->w + (size_t)r * w->cols * 4, f, (size_t)(n * w->cols) * 4, e);
        }
    }
    free(f);
    free(b);
    return rc;
}

static float *up_vec(GpuEngine *g, const float *v, size_t n, Err *e) {
    if (!v) return NULL;
    float *d = dalloc(g, n * sizeof(float), e);
    if (d && put(d, v, n * sizeof(float), e)) return NULL;
    return d;
}

static int up_mlp(GpuEngine *g, DMlp *d, const Mlp *p, Err *e) {
    return up_mat(g, &d->gate, &p->gate, e) || up_mat(g, &d->up, &p->up, e) || up_mat(g, &d->down, &p->down, e);
}

#define UPV(dst, src, n) do { if ((src) && !((dst) = up_vec(g, (src), (size_t)(n), e))) return -1; } while (0)

static int up_layer(GpuEngine *g, int l, Err *e) {
    const ModelConfig *c = &g->m->cfg;
    const Layer *ly = &g->m->layers[l];
    const Attn *a = &ly->attn;
    GLayer *d = &g->layers[l];
    UPV(d->attn_norm, ly->attn_norm, c->dim);
    UPV(d->ffn_norm, ly->ffn_norm, c->dim);
    if (c->is_mla) {
        if (c->q_lora_rank) {
            if (up_mat(g, &d->q_a, &a->q_a, e) || up_mat(g, &d->q_b, &a->q_b, e)) return -1;
            UPV(d->q_a_norm, a->q_a_norm, c->q_lora_rank);
        } else if (up_mat(g, &d->q, &a->q, e)) return -1;
        if (up_mat(g, &d->kv_a, &a->kv_a, e)) return -1;
        UPV(d->kv_a_norm, a->kv_a_norm, c->kv_lora_rank);
        if (a->kv_b_f32) UPV(d->kv_b, a->kv_b_f32, a->kv_b.rows * a->kv_b.cols);
        else {                                   /* the CPU path reads W_UK^T and W_UV as stored */
            float *f = xmalloc(sizeof(float) * (size_t)(a->kv_b.rows * a->kv_b.cols));
            mat_rows_f32(&a->kv_b, 0, a->kv_b.rows, f);
            d->kv_b = up_vec(g, f, (size_t)(a->kv_b.rows * a->kv_b.cols), e);
            free(f);
            if (!d->kv_b) return -1;
        }
    } else {
        if (up_mat(g, &d->q, &a->q, e) || up_mat(g, &d->k, &a->k, e) || up_mat(g, &d->v, &a->v, e)) return -1;
        UPV(d->bq, a->bq, a->q.rows);
        UPV(d->bk, a->bk, a->k.rows);
        UPV(d->bv, a->bv, a->v.rows);
    }
    if (up_mat(g, &d->o, &a->o, e)) return -1;
    d->is_moe = ly->is_moe;
    if (!ly->is_moe) return up_mlp(g, &d->mlp, &ly->mlp, e);
    const Moe *mo = &ly->moe;
    if (up_mat(g, &d->router, &mo->router, e)) return -1;
    UPV(d->bias, mo->bias, c->n_routed);
    int E = g->m->sh.ne, e0 = g->m->sh.e0;        /* the experts this rank holds */
    void **hp[3];
    for (int i = 0; i < 3; i++) hp[i] = xmalloc(sizeof(void *) * (size_t)E);
    int rc = 0;
    for (int x = 0; x < E && !rc; x++) {
        DMlp em;
        rc = up_mlp(g, &em, &mo->experts[e0 + x], e);
        hp[0][x] = em.gate.w; hp[1][x] = em.up.w; hp[2][x] = em.down.w;
    }
    void ***dp[3] = { &d->gate_p, &d->up_p, &d->down_p };
    for (int i = 0; i < 3 && !rc; i++)
        rc = !(*dp[i] = dalloc(g, sizeof(void *) * (size_t)E, e)) || put(*dp[i], hp[i], sizeof(void *) * (size_t)E, e);
    for (int i = 0; i < 3; i++) free(hp[i]);
    if (rc) return -1;
    d->has_shared = mo->has_shared;
    return mo->has_shared ? up_mlp(g, &d->shared, &mo->shared, e) : 0;
}

/* ---- open / close --------------------------------------------------------------------- */
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static uint64_t weight_bytes_on_gpu(const Model *m, int bf16) {
    uint64_t n = m->n_params;
    if (m->sh.n > 1) {                            /* this rank's share: what it bound */
        n = 0;
        for (int i = 0; i < m->n_mats; i++) n += (uint64_t)m->mats[i].w.rows * (uint64_t)m->mats[i].w.cols;
    }
    uint64_t kvb = 0;                             /* MLA's kv_b, uploaded in float32 besides */
    for (int l = 0; l < m->cfg.n_layers; l++) kvb += 4 * (uint64_t)m->layers[l].attn.kv_b.rows * (uint64_t)m->layers[l].attn.kv_b.cols;
    return n * (bf16 ? 2u : 4u) + kvb;
}

/* frees the cache and step buffers (not the weights), and the graphs that use them */
static void release_step(GpuEngine *g) {
    cuda_sync();
    for (int i = 0; i < N_GRAPHS; i++) { cuda_graph_free(g->graphs[i].exec); g->graphs[i] = (Graph){ 0 }; }
    for (int i = 0; i < g->n_bptrs; i++) cuda_free(g->bptrs[i]);
    g->n_bptrs = 0;
    cuda_host_free(g->stage);
    g->stage = NULL;
    free(g->table); free(g->len); free(g->free_blocks);
    g->table = g->len = g->free_blocks = NULL;
    free(g->hex); free(g->hidx); free(g->hspos); free(g->hexl); free(g->horder); free(g->hwhere); free(g->hoff); free(g->hcnt);
    free(g->hbytes);
    g->hex = g->hidx = g->hspos = g->hexl = g->horder = g->hwhere = g->hoff = g->hcnt = NULL;
    g->hbytes = NULL;
    g->cache = NULL;
}

/* The cache for n_seq sequences of max_pos positions and the buffers of steps of up
 * to max_tokens tokens; -2 when they do not fit beside the weights. */
int gpu_reserve(GpuEngine *g, int n_seq, int max_pos, int max_tokens, Err *e) {
    const Model *m = g->m;
    const ModelConfig *c = &m->cfg;
    release_step(g);
    g->n_seq = n_seq;
    g->max_pos = max_pos;
    g->max_tokens = max_tokens;
    const Shard *sh = &m->sh;
    int L = c->n_layers, D = c->dim, H = sh->nh, V = c->vocab, N = max_tokens;   /* this rank's heads */
    g->row = kv_row_floats(m);
    g->max_blocks = (max_pos + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK;
    g->n_blocks = n_seq * g->max_blocks;
    g->layer_elems = (size_t)g->n_blocks * CUDA_KV_BLOCK * g->row;
    size_t es = g->bf16 ? 2 : 4;
    uint64_t cache_bytes = (uint64_t)g->layer_elems * L * es;
    int64_t qk = c->is_mla ? c->qk_nope + c->qk_rope : c->head_dim, Dc = c->kv_lora_rank, Dr = c->qk_rope;
    int64_t kvd = (int64_t)sh->ng * c->head_dim, K = c->top_k > 0 ? c->top_k : 0, E = c->n_routed;
    int64_t dv = c->is_mla ? Dc : c->head_dim;
    int64_t ffn = max64(sh->ni, max64(sh->ns, K * sh->nm)), split = sh->n > 1, ep = sh->ep > 1;
    g->work_floats = cuda_attention_work(N, H, (int)dv, max_pos);
    struct { float **p; int64_t n; } bufs[] = {
        { &g->x, N * D }, { &g->h, N * D }, { &g->o, N * D }, { &g->q, N * H * qk }, { &g->qa, N * max64(c->q_lora_rank, 1) },
        { &g->kv, N * max64(Dc + Dr, 1) }, { &g->k, N * max64(kvd, 1) }, { &g->v, N * max64(kvd, 1) },
        { &g->qc, c->is_mla ? N * H * (Dc + Dr) : 1 }, { &g->lat, c->is_mla ? N * H * Dc : 1 },
        { &g->ao, N * H * max64(dv, c->v_head) }, { &g->g, N * ffn }, { &g->u, N * ffn },
        { &g->logits, (int64_t)LOGIT_ROWS * V }, { &g->sc, N * max64(E, 1) }, { &g->wt, N * max64(K, 1) },
        { &g->xin, E ? N * K * D : 1 }, { &g->y, E ? N * K * D : 1 }, { &g->z, N * D }, { &g->work, (int64_t)g->work_floats },
        { &g->xs, ep ? N * K * D : 1 }, { &g->logp, split ? (int64_t)LOGIT_ROWS * sh->nv : 1 },
        { &g->logg, split ? (int64_t)LOGIT_ROWS * V : 1 },
    };
    struct { int **p; int64_t n; } ibufs[] = {
        { &g->ex, N * max64(K, 1) }, { &g->off, E + 1 }, { &g->order, N * max64(K, 1) }, { &g->where, N * max64(K, 1) },
        { &g->in_d, 4 * (int64_t)N }, { &g->next_d, N }, { &g->table_d, (int64_t)n_seq * g->max_blocks },
        { &g->pairs_d, 2 * (int64_t)g->max_blocks }, { &g->idx_d, ep ? N * K : 1 }, { &g->spos_d, ep ? N * K : 1 },
    };
    uint64_t need = cache_bytes;
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) need += 4 * (uint64_t)max64(bufs[i].n, 1);
    for (size_t i = 0; i < sizeof ibufs / sizeof *ibufs; i++) need += 4 * (uint64_t)max64(ibufs[i].n, 1);
    uint64_t avail = cuda_mem_free();
    if (need + (256u << 20) > avail) {          /* cuBLAS and the routing scratch take some too */
        char a[32], b[32], f[32];
        err_set(e, "%d sequences of %d positions: %s of KV cache and %s of step buffers do not fit in the %s the GPU has free",
                n_seq, max_pos, fmt_bytes(cache_bytes, a, sizeof a), fmt_bytes(need - cache_bytes, b, sizeof b),
                fmt_bytes(avail, f, sizeof f));
        return -2;
    }
    int rc = !(g->cache = balloc(g, (size_t)cache_bytes, e));
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs && !rc; i++)
        rc = !(*bufs[i].p = balloc(g, sizeof(float) * (size_t)max64(bufs[i].n, 1), e));
    for (size_t i = 0; i < sizeof ibufs / sizeof *ibufs && !rc; i++)
        rc = !(*ibufs[i].p = balloc(g, sizeof(int) * (size_t)max64(ibufs[i].n, 1), e));
    if (ep) {
        size_t tk = (size_t)N * (size_t)K, R = (size_t)sh->n;
        g->hex = xmalloc(sizeof(int) * tk); g->hidx = xmalloc(sizeof(int) * tk); g->hspos = xmalloc(sizeof(int) * tk);
        g->hexl = xmalloc(sizeof(int) * tk); g->horder = xmalloc(sizeof(int) * tk); g->hwhere = xmalloc(sizeof(int) * tk);
        g->hoff = xmalloc(sizeof(int) * (size_t)(E + 1)); g->hcnt = xmalloc(sizeof(int) * R * R);
    }
    if (split) g->hbytes = xmalloc(sizeof(size_t) * 2 * (size_t)sh->n);
    g->table = xcalloc((size_t)n_seq * g->max_blocks, sizeof(int));     /* unused entries name block 0 */
    g->len = xcalloc((size_t)n_seq, sizeof(int));
    g->free_blocks = xmalloc(sizeof(int) * (size_t)g->n_blocks);
    for (int i = 0; i < g->n_blocks; i++) g->free_blocks[i] = g->n_blocks - 1 - i;   /* taken from the end: 0, 1, ... */
    g->n_free = g->n_blocks;
    g->table_dirty = 1;
    if (!rc && !(g->stage = cuda_host_alloc(sizeof(int) * (4 * (size_t)N + 2 * (size_t)g->max_blocks))))
        rc = err_set(e, "GPU: %s", cuda_error());
    /* grow the scratch of cuBLAS's BF16 inputs and of routing now, never inside a graph */
    int64_t widest = max64(max64(D, ffn), max64(H * max64(qk, dv), max64(c->q_lora_rank, c->v_head * H)));
    if (!rc && (cuda_gemm_reserve((size_t)(N * widest)) || (E && cuda_moe_route_reserve(N, (int)E, c->n_group))))
        rc = err_set(e, "GPU: %s", cuda_error());
    if (rc) release_step(g);
    return rc;
}

/* What must hold before anything is put on the GPU: 0, or -1 with e. */
static int gpu_can_open(Model *m, const EngineOpts *o, int *bf16, char *dev, size_t devlen, Err *e) {
    char why[256];
    if (m->sh.n > 1 && cuda_set_device(comm_local_rank(m->comm))) return err_set(e, "rank %d: %s", m->sh.rank, cuda_error());
    if (!cuda_available(why, sizeof why)) return err_set(e, "%s", why);
    if (!m->embed.data) return err_set(e, "%s: model was loaded for its shapes only", m->path);
    if (m->opts.naive_mla) return err_set(e, "the CUDA backend runs MLA absorbed only (drop --naive-mla)");
    if (o->gpu_dtype && o->gpu_dtype != DT_BF16 && o->gpu_dtype != DT_F32)
        return err_set(e, "the CUDA backend holds weights as F32 or BF16, not %s", dtype_name((DType)o->gpu_dtype));
    *bf16 = o->gpu_dtype == DT_BF16 || (o->gpu_dtype == 0 && m->wdtype == DT_BF16);
    if (cuda_device_name(dev, devlen)) return err_set(e, "%s", cuda_error());
    uint64_t wbytes = weight_bytes_on_gpu(m, *bf16), avail = cuda_mem_free();
    if (wbytes > avail) {
        char a[32], f[32];
        return err_set(e, "%s: %s of weights do not fit in the %s the GPU has free", m->path, fmt_bytes(wbytes, a, sizeof a),
                       fmt_bytes(avail, f, sizeof f));
    }
    return 0;
}

int gpu_open(GpuEngine **out, Model *m, const EngineOpts *o, int n_seq, int max_pos, int max_tokens, Err *e) {
    *out = NULL;
    if (m->sh.n > 1 && !m->comm) return err_set(e, "%s: split over %d ranks without their group", m->path, m->sh.n);
    const ModelConfig *c = &m->cfg;
    int bf16 = 0;
    char dev[256] = "";
    int rc0 = gpu_can_open(m, o, &bf16, dev, sizeof dev, e);
    if (m->sh.n > 1) {                            /* the ranks open NCCL together, or none does */
        Err ce = { "" };
        int bad = comm_agree(m->comm, rc0, &ce);
        if (bad < 0) return err_set(e, "%s", ce.msg);
        if (bad && !rc0) return err_set(e, "another rank cannot open its GPU engine");
    }
    if (rc0) return -1;
    GpuEngine *g = xcalloc(1, sizeof *g);
    g->m = m;
    g->bf16 = bf16;
    g->use_graphs = !o->no_graphs && m->sh.n == 1;
    if (m->sh.n > 1 && comm_nccl_open(&g->nccl, m->comm, e)) { free(g); return -1; }
    snprintf(g->device, sizeof g->device, "%s", dev);
    int L = c->n_layers, D = c->dim;
    int rc = 0;
    if (m->lm_head.data == m->embed.data && m->lm_head.rows == m->embed.rows) {   /* tied, and not split */
        rc = up_mat(g, &g->embed, &m->embed, e);
        g->lm_head = g->embed;
    } else {
        rc = up_mat(g, &g->embed, &m->embed, e) || up_mat(g, &g->lm_head, &m->lm_head, e);
    }
    if (!rc && !(g->norm = up_vec(g, m->norm, (size_t)D, e))) rc = -1;
    int rd = c->is_mla ? c->qk_rope : c->head_dim;
    if (!rc && !(g->inv_freq = up_vec(g, m->inv_freq, (size_t)(rd / 2), e))) rc = -1;
    g->layers = xcalloc((size_t)L, sizeof *g->layers);
    for (int l = 0; l < L && !rc; l++) {
        rc = up_layer(g, l, e);
        if (isatty(2)) fprintf(stderr, "\reffbench: uploading layer %d/%d", l + 1, L);
    }
    if (isatty(2)) fprintf(stderr, "\n");
    if (!rc) rc = gpu_reserve(g, n_seq, max_pos, max_tokens, e);
    if (rc) { gpu_close(g); return rc; }
    *out = g;
    return 0;
}

void gpu_close(GpuEngine *g) {
    if (!g) return;
    release_step(g);
    for (int i = 0; i < g->n_ptrs; i++) cuda_free(g->ptrs[i]);
    free(g->ptrs);
    free(g->bptrs);
    free(g->layers);
    comm_close(g->nccl);
    free(g);
}

/* ---- the cache's blocks --------------------------------------------------------------- */
static int ensure_blocks(GpuEngine *g, int s, int len, Err *e) {
    int have = (g->len[s] + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK, need = (len + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK;
    for (int b = have; b < need; b++) {
        if (!g->n_free) {                         /* none taken by this call stays taken */
            for (int k = b - 1; k >= have; k--) {
                g->free_blocks[g->n_free++] = g->table[(size_t)s * g->max_blocks + k];
                g->table[(size_t)s * g->max_blocks + k] = 0;
            }
            return err_set(e, "GPU KV cache: no free block for sequence %d", s);
        }
        g->table[(size_t)s * g->max_blocks + b] = g->free_blocks[--g->n_free];
        g->table_dirty = 1;
    }
    return 0;
}

static void release_blocks(GpuEngine *g, int s, int len) {
    int keep = (len + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK, have = (g->len[s] + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK;
    for (int b = have - 1; b >= keep; b--) {
        g->free_blocks[g->n_free++] = g->table[(size_t)s * g->max_blocks + b];
        g->table[(size_t)s * g->max_blocks + b] = 0;
        g->table_dirty = 1;
    }
}

/* A failed step gives back the blocks it took for sequences [0, upto) growing from
 * g->len to len, so the cache is as before the step. */
static void undo_blocks(GpuEngine *g, const int *len, int upto) {
    for (int s = 0; s < upto; s++)
        if (len[s] > g->len[s]) {
            int old = g->len[s];
            g->len[s] = len[s];
            release_blocks(g, s, old);
            g->len[s] = old;
        }
}

int gpu_set_len(GpuEngine *g, int s, int len, Err *e) {
    if (s < 0 || s >= g->n_seq || len < 0 || len > g->max_pos) return err_set(e, "set_len: sequence %d, length %d out of range", s, len);
    if (len < g->len[s]) release_blocks(g, s, len);
    else if (ensure_blocks(g, s, len, e)) return -1;
    g->len[s] = len;
    return 0;
}

int gpu_copy_seq(GpuEngine *g, int dst, int src, int len, Err *e) {
    if (dst < 0 || dst >= g->n_seq || src < 0 || src >= g->n_seq || len < 0 || len > g->len[src])
        return err_set(e, "copy_seq: %d <- %d, %d positions: out of range", dst, src, len);
    if (gpu_set_len(g, dst, 0, e) || ensure_blocks(g, dst, len, e)) return -1;
    int nb = (len + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK;
    for (int b = 0; b < nb; b++) {
        g->stage[4 * g->max_tokens + 2 * b] = g->table[(size_t)src * g->max_blocks + b];
        g->stage[4 * g->max_tokens + 2 * b + 1] = g->table[(size_t)dst * g->max_blocks + b];
    }
    size_t es = g->bf16 ? 2 : 4;
    if (cuda_to_device(g->pairs_d, g->stage + 4 * g->max_tokens, sizeof(int) * 2 * (size_t)nb) ||
        cuda_copy_blocks(g->cache, g->layer_elems * es, g->m->cfg.n_layers, (size_t)CUDA_KV_BLOCK * g->row * es, g->pairs_d, nb))
        return err_set(e, "GPU: %s", cuda_error());
    g->len[dst] = len;
    return cuda_sync() ? err_set(e, "GPU: %s", cuda_error()) : 0;
}

int gpu_repeat_context(GpuEngine *g, int s, int have, int len, Err *e) {
    if (s < 0 || s >= g->n_seq || have <= 0 || have % CUDA_KV_BLOCK || have > g->len[s] || len > g->max_pos)
        return err_set(e, "repeat_context: sequence %d, %d of %d positions: out of range", s, have, len);
    if (len <= g->len[s]) return 0;
    int from = (g->len[s] + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK, hb = have / CUDA_KV_BLOCK;
    if (g->len[s] % CUDA_KV_BLOCK) return err_set(e, "repeat_context: sequence %d ends inside a block", s);
    if (ensure_blocks(g, s, len, e)) return -1;
    int nb = (len + CUDA_KV_BLOCK - 1) / CUDA_KV_BLOCK;
    size_t es = g->bf16 ? 2 : 4;
    for (int b0 = from; b0 < nb; b0 += g->max_blocks) {      /* the pairs buffer holds max_blocks pairs */
        int k = 0;
        for (int b = b0; b < nb && k < g->max_blocks; b++, k++) {
            g->stage[4 * g->max_tokens + 2 * k] = g->table[(size_t)s * g->max_blocks + b % hb];
            g->stage[4 * g->max_tokens + 2 * k + 1] = g->table[(size_t)s * g->max_blocks + b];
        }
        if (cuda_to_device(g->pairs_d, g->stage + 4 * g->max_tokens, sizeof(int) * 2 * (size_t)k) ||
            cuda_copy_blocks(g->cache, g->layer_elems * es, g->m->cfg.n_layers, (size_t)CUDA_KV_BLOCK * g->row * es, g->pairs_d, k) ||
            cuda_sync())
            return err_set(e, "GPU: %s", cuda_error());
    }
    g->len[s] = len;
    return 0;
}

uint64_t gpu_kv_bytes_per_token(const GpuEngine *g) {
    return (uint64_t)g->m->cfg.n_layers * g->row * (g->bf16 ? 2 : 4);
}
const char *gpu_device(const GpuEngine *g) { return g->device; }
const char *gpu_dtype(const GpuEngine *g) { return g->bf16 ? "BF16" : "F32"; }


/* ---- the step ------------------------------------------------------------------------ */
typedef struct {
    GpuEngine *g;
    int n, nw, max_len;
    const int *tok, *seq, *pos, *rows;            /* (device) */
} Q;

/* Op marks (backend.h): a profiler's hook pushes an external correlation id or a range
 * at an op's begin and pops it at its end. A failure between the two returns through
 * TRY; gpu_step then ends the open op (op_close), so nothing stays pushed on any exit. */
static void op_begin(GpuEngine *g, int op) { cuda_op_mark(op, 1); g->open_op = op + 1; }
static void op_end(GpuEngine *g, int op) { g->open_op = 0; cuda_op_mark(op, 0); }
static void op_close(GpuEngine *g) { if (g->open_op) op_end(g, g->open_op - 1); }

#define TRY(call) do { if (call) return -1; } while (0)
#define OP(op, body) do { op_begin(g, op); int rc_ = (body); op_end(g, op); if (rc_) return -1; } while (0)

/* Sums the ranks' partial (n, D) outputs of a tensor-parallel op in place (NCCL). */
static int reduce(GpuEngine *g, int kind, float *y, int n) {
    Err e = { "" };
    if (comm_allreduce(g->nccl, kind, y, (size_t)n * (size_t)g->m->cfg.dim, &e)) return cuda_fail_msg(e.msg);
    return 0;
}

static int lin(float *y, int ldy, const float *x, int ldx, int T, const DMat *w, const float *b) {
    return cuda_linear(y, ldy, x, ldx, T, w->w, w->bf16, w->rows, w->cols, b);
}

static int mlp(const Q *q, const DMlp *p, const float *x, int n, float *y) {
    GpuEngine *g = q->g;
    int D = g->m->cfg.dim, I = p->gate.rows;
    TRY(lin(g->g, I, x, D, n, &p->gate, NULL));
    TRY(lin(g->u, I, x, D, n, &p->up, NULL));
    TRY(cuda_swiglu(g->g, g->u, (int64_t)n * I));
    return lin(y, D, g->g, I, n, &p->down, NULL);
}

static void *layer_cache(const GpuEngine *g, int l) {
    return (char *)g->cache + (size_t)l * g->layer_elems * (g->bf16 ? 2 : 4);
}

static int attn_mla(const Q *q, int l) {
    GpuEngine *g = q->g;
    const ModelConfig *c = &g->m->cfg;
    const GLayer *a = &g->layers[l];
    int n = q->n, D = c->dim, H = g->m->sh.nh, Dn = c->qk_nope, Dr = c->qk_rope, Dv = c->v_head, Dc = c->kv_lora_rank;
    int qk = Dn + Dr, qd = Dc + Dr, R = c->q_lora_rank;
    op_begin(g, OP_Q_PROJ);
    if (R) {
        TRY(lin(g->qa, R, g->h, D, n, &a->q_a, NULL));
        TRY(cuda_rmsnorm(g->qa, R, g->qa, R, n, R, a->q_a_norm, c->rms_eps));
        TRY(lin(g->q, H * qk, g->qa, R, n, &a->q_b, NULL));
    } else {
        TRY(lin(g->q, H * qk, g->h, D, n, &a->q, NULL));
    }
    op_end(g, OP_Q_PROJ);
    op_begin(g, OP_KV_PROJ);
    TRY(lin(g->kv, qd, g->h, D, n, &a->kv_a, NULL));
    TRY(cuda_rmsnorm(g->kv, qd, g->kv, qd, n, Dc, a->kv_a_norm, c->rms_eps));     /* the latent only */
    op_end(g, OP_KV_PROJ);
    op_begin(g, OP_ROPE);
    TRY(cuda_rope(g->q + Dn, n, H, qk, Dr, q->pos, g->inv_freq, g->m->rope_mscale, 1));
    TRY(cuda_rope(g->kv + Dc, n, 1, qd, Dr, q->pos, g->inv_freq, g->m->rope_mscale, 1));
    op_end(g, OP_ROPE);
    void *cache = layer_cache(g, l);
    OP(OP_KV_WRITE, cuda_kv_write(cache, g->bf16, g->row, g->table_d, g->max_blocks, g->kv, qd, qd, 0, q->seq, q->pos, n));
    /* qc (n, H, Dc+Dr) = [q_nope W_UK | q_pe] per head */
    op_begin(g, OP_ABSORB);
    TRY(cuda_gemm_batched(g->qc, H * qd, qd, g->q, H * qk, qk, a->kv_b, Dc, (int64_t)(Dn + Dv) * Dc, 0, n, Dc, Dn, H));
    TRY(cuda_copy2d(g->qc + Dc, qd, g->q + Dn, qk, n * H, Dr));
    op_end(g, OP_ABSORB);
    CudaAttn at = {
        .T = n, .seq = q->seq, .pos = q->pos, .q = g->qc, .ldq = H * qd, .cache = cache, .bf16 = g->bf16, .row = g->row,
        .table = g->table_d, .max_blocks = g->max_blocks, .dk = qd, .dv = Dc, .H = H, .Hkv = 1,
        .scale = g->m->attn_scale, .out = g->lat, .ldo = H * Dc, .max_len = q->max_len, .work = g->work,
        .work_floats = g->work_floats,
    };
    OP(OP_ATTENTION, cuda_attention(&at));
    /* o_h (n, Dv) = lat_h (n, Dc) . W_UV_h^T */
    OP(OP_ATTN_OUT, cuda_gemm_batched(g->ao, H * Dv, Dv, g->lat, H * Dc, Dc, a->kv_b + (int64_t)Dn * Dc, Dc,
                                      (int64_t)(Dn + Dv) * Dc, 1, n, Dv, Dc, H));
    OP(OP_O_PROJ, lin(g->o, D, g->ao, H * Dv, n, &a->o, NULL));
    if (g->m->sh.tp > 1) TRY(reduce(g, CK_ATTN, g->o, n));
    return 0;
}

static int attn_dense(const Q *q, int l) {
    GpuEngine *g = q->g;
    const ModelConfig *c = &g->m->cfg;
    const GLayer *a = &g->layers[l];
    int n = q->n, D = c->dim, H = g->m->sh.nh, Hkv = g->m->sh.ng, hd = c->head_dim, kvd = Hkv * hd;   /* this rank's heads */
    OP(OP_Q_PROJ, lin(g->q, H * hd, g->h, D, n, &a->q, a->bq));
    op_begin(g, OP_KV_PROJ);
    TRY(lin(g->k, kvd, g->h, D, n, &a->k, a->bk));
    TRY(lin(g->v, kvd, g->h, D, n, &a->v, a->bv));
    op_end(g, OP_KV_PROJ);
    op_begin(g, OP_ROPE);
    TRY(cuda_rope(g->q, n, H, hd, hd, q->pos, g->inv_freq, g->m->rope_mscale, 0));
    TRY(cuda_rope(g->k, n, Hkv, hd, hd, q->pos, g->inv_freq, g->m->rope_mscale, 0));
    op_end(g, OP_ROPE);
    void *cache = layer_cache(g, l);
    op_begin(g, OP_KV_WRITE);
    TRY(cuda_kv_write(cache, g->bf16, g->row, g->table_d, g->max_blocks, g->k, kvd, kvd, 0, q->seq, q->pos, n));
    TRY(cuda_kv_write(cache, g->bf16, g->row, g->table_d, g->max_blocks, g->v, kvd, kvd, kvd, q->seq, q->pos, n));
    op_end(g, OP_KV_WRITE);
    CudaAttn at = {
        .T = n, .seq = q->seq, .pos = q->pos, .q = g->q, .ldq = H * hd, .cache = cache, .bf16 = g->bf16, .row = g->row,
        .table = g->table_d, .max_blocks = g->max_blocks, .k_off = 0, .k_head_stride = hd, .v_off = kvd,
        .v_head_stride = hd, .dk = hd, .dv = hd, .H = H, .Hkv = Hkv, .scale = g->m->attn_scale, .out = g->ao,
        .ldo = H * hd, .max_len = q->max_len, .work = g->work, .work_floats = g->work_floats,
    };
    OP(OP_ATTENTION, cuda_attention(&at));
    OP(OP_O_PROJ, lin(g->o, D, g->ao, H * hd, n, &a->o, NULL));
    if (g->m->sh.tp > 1) TRY(reduce(g, CK_ATTN, g->o, n));
    return 0;
}

/* Expert parallel (layout.h; kernels/forward.c's moe_ep, step for step): the routing
 * comes to the host, which lays out the dispatch; the rows move between GPUs by NCCL. */
static int moe_ep(const Q *q, const GLayer *a) {
    GpuEngine *g = q->g;
    const Shard *sh = &g->m->sh;
    int N = sh->n, r = sh->rank, n = q->n, D = g->m->cfg.dim, K = g->m->cfg.top_k, per = sh->ne, I = sh->nm;
    size_t row = sizeof(float) * (size_t)D, *sb = g->hbytes, *rb = sb + N;
    int *cnt = g->hcnt, *ex = g->hex;
    Err e = { "" };
    TRY(cuda_to_host(ex, g->ex, sizeof(int) * (size_t)n * K));
    int t0, t1, fill;
    layout_token_range(n, N, r, &t0, &t1);
    int R = layout_dispatch(ex, n, K, N, r, per, row, cnt, g->hidx, g->hspos, sb, rb, g->hexl, &fill);
    moe_permute(g->hoff, g->horder, g->hwhere, g->hexl, R, per);
    op_begin(g, OP_PERMUTE);
    if (fill) {
        TRY(cuda_to_device(g->idx_d, g->hidx, sizeof(int) * (size_t)fill));
        TRY(cuda_gather_rows(g->xs, g->h, D, g->idx_d, 1, fill, D));
    }
    op_end(g, OP_PERMUTE);
    if (comm_alltoallv(g->nccl, CK_DISPATCH, g->xs, sb, g->xin, rb, &e)) return cuda_fail_msg(e.msg);
    op_begin(g, OP_EXPERTS);
    if (R) {
        TRY(cuda_to_device(g->idx_d, g->horder, sizeof(int) * (size_t)R));
        TRY(cuda_to_device(g->off, g->hoff, sizeof(int) * (size_t)(per + 1)));
        TRY(cuda_gather_rows(g->xs, g->xin, D, g->idx_d, 1, R, D));            /* grouped by local expert */
        TRY(cuda_grouped_linear(g->g, g->xs, (const void *const *)a->gate_p, g->bf16, g->off, per, R, I, D));
        TRY(cuda_grouped_linear(g->u, g->xs, (const void *const *)a->up_p, g->bf16, g->off, per, R, I, D));
        TRY(cuda_swiglu(g->g, g->u, (int64_t)R * I));
        TRY(cuda_grouped_linear(g->y, g->g, (const void *const *)a->down_p, g->bf16, g->off, per, R, D, I));
        TRY(cuda_to_device(g->idx_d, g->hwhere, sizeof(int) * (size_t)R));
        TRY(cuda_gather_rows(g->xin, g->y, D, g->idx_d, 1, R, D));             /* back in the received order */
    }
    op_end(g, OP_EXPERTS);
    if (comm_alltoallv(g->nccl, CK_COMBINE, g->xin, rb, g->xs, sb, &e)) return cuda_fail_msg(e.msg);
    if (t1 > t0) {
        if (a->has_shared) OP(OP_SHARED_EXPERT, mlp(q, &a->shared, g->h + (int64_t)t0 * D, t1 - t0, g->z));
        TRY(cuda_to_device(g->spos_d, g->hspos, sizeof(int) * (size_t)(t1 - t0) * K));
        OP(OP_COMBINE, cuda_moe_combine(g->o + (int64_t)t0 * D, g->xs, g->wt + (int64_t)t0 * K, g->spos_d,
                                        a->has_shared ? g->z : NULL, t1 - t0, K, D));
    }
    for (int i = 0; i < N; i++) {
        int a0, a1;
        layout_token_range(n, N, i, &a0, &a1);
        sb[i] = (size_t)(a1 - a0) * row;
    }
    if (comm_allgatherv(g->nccl, CK_GATHER, g->o + (int64_t)t0 * D, g->o, sb, &e)) return cuda_fail_msg(e.msg);
    return 0;
}

static int moe(const Q *q, int l, Trace *tr) {
    GpuEngine *g = q->g;
    const ModelConfig *c = &g->m->cfg;
    const GLayer *a = &g->layers[l];
    int n = q->n, D = c->dim, E = c->n_routed, K = c->top_k, I = g->m->sh.nm;
    OP(OP_ROUTER, lin(g->sc, E, g->h, D, n, &a->router, NULL));
    RouteParams rp;
    route_params(c, &rp);
    CudaRoute r = { rp.E, rp.K, rp.sigmoid, rp.n_group, rp.topk_group, rp.method, rp.renorm, rp.scale_after_renorm,
                    rp.routed_scale };
    OP(OP_ROUTE, cuda_moe_route(g->ex, g->wt, g->sc, a->bias, n, &r));
    if (tr && tr->experts) {
        TRY(cuda_to_host(tr->experts + (int64_t)l * n * K, g->ex, sizeof(int) * (size_t)n * K));
        TRY(cuda_to_host(tr->weights + (int64_t)l * n * K, g->wt, sizeof(float) * (size_t)n * K));
    }
    if (g->m->sh.ep > 1) return moe_ep(q, a);
    op_begin(g, OP_PERMUTE);
    TRY(cuda_moe_permute(g->off, g->order, g->where, g->ex, n * K, E));
    TRY(cuda_gather_rows(g->xin, g->h, D, g->order, K, n * K, D));
    op_end(g, OP_PERMUTE);
    op_begin(g, OP_EXPERTS);
    TRY(cuda_grouped_linear(g->g, g->xin, (const void *const *)a->gate_p, g->bf16, g->off, E, n * K, I, D));
    TRY(cuda_grouped_linear(g->u, g->xin, (const void *const *)a->up_p, g->bf16, g->off, E, n * K, I, D));
    TRY(cuda_swiglu(g->g, g->u, (int64_t)n * K * I));
    TRY(cuda_grouped_linear(g->y, g->g, (const void *const *)a->down_p, g->bf16, g->off, E, n * K, D, I));
    op_end(g, OP_EXPERTS);
    if (a->has_shared) OP(OP_SHARED_EXPERT, mlp(q, &a->shared, g->h, n, g->z));
    OP(OP_COMBINE, cuda_moe_combine(g->o, g->y, g->wt, g->where, a->has_shared ? g->z : NULL, n, K, D));
    if (g->m->sh.tp > 1) TRY(reduce(g, CK_FFN, g->o, n));   /* every expert split by columns: partial sums */
    return 0;
}

/* Queues the step up to the final norm of the wanted rows (in h). */
static int queue_layers(const Q *q, Trace *tr) {
    GpuEngine *g = q->g;
    const ModelConfig *c = &g->m->cfg;
    int n = q->n, D = c->dim;
    OP(OP_EMBED, cuda_embed(g->x, g->embed.w, g->embed.bf16, q->tok, n, D));
    if (tr && tr->hidden) TRY(cuda_to_host(tr->hidden, g->x, sizeof(float) * (size_t)n * D));
    if (tr && tr->experts)
        for (int64_t i = 0; i < (int64_t)c->n_layers * n * (c->top_k > 0 ? c->top_k : 0); i++) { tr->experts[i] = -1; tr->weights[i] = 0; }
    for (int l = 0; l < c->n_layers; l++) {
        const GLayer *ly = &g->layers[l];
        OP(OP_NORM, cuda_rmsnorm(g->h, D, g->x, D, n, D, ly->attn_norm, c->rms_eps));
        TRY(c->is_mla ? attn_mla(q, l) : attn_dense(q, l));
        OP(OP_RESIDUAL, cuda_add(g->x, g->o, (int64_t)n * D));
        OP(OP_NORM, cuda_rmsnorm(g->h, D, g->x, D, n, D, ly->ffn_norm, c->rms_eps));
        if (ly->is_moe) TRY(moe(q, l, tr));
        else {
            OP(OP_MLP, mlp(q, &ly->mlp, g->h, n, g->o));
            if (g->m->sh.tp > 1) TRY(reduce(g, CK_FFN, g->o, n));
        }
        OP(OP_RESIDUAL, cuda_add(g->x, g->o, (int64_t)n * D));
        if (tr && tr->hidden) TRY(cuda_to_host(tr->hidden + (int64_t)(l + 1) * n * D, g->x, sizeof(float) * (size_t)n * D));
    }
    op_begin(g, OP_NORM);
    TRY(cuda_gather_rows(g->h, g->x, D, q->rows, 1, q->nw, D));
    TRY(cuda_rmsnorm(g->h, D, g->h, D, q->nw, D, g->norm, c->rms_eps));
    op_end(g, OP_NORM);
    return 0;
}

/* lm_head and greedy sampling of rows [r0, r0+nr) */
static int queue_head(const Q *q, int r0, int nr) {
    GpuEngine *g = q->g;
    int D = g->m->cfg.dim, V = g->m->cfg.vocab;
    if (g->nccl) {                                /* this rank's vocabulary slice, gathered into (nr, V) */
        const Shard *sh = &g->m->sh;
        size_t *bytes = g->hbytes;
        for (int i = 0; i < sh->n; i++) {
            int a0, a1;
            layout_vocab_range(V, sh->n, i, &a0, &a1);
            bytes[i] = sizeof(float) * (size_t)nr * (size_t)(a1 - a0);
        }
        OP(OP_LM_HEAD, lin(g->logp, sh->nv, g->h + (int64_t)r0 * D, D, nr, &g->lm_head, NULL));
        Err e = { "" };
        if (comm_allgatherv(g->nccl, CK_HEAD, g->logp, g->logg, bytes, &e)) return cuda_fail_msg(e.msg);
        for (int i = 0; i < sh->n; i++) {
            int a0, a1;
            layout_vocab_range(V, sh->n, i, &a0, &a1);
            if (a1 > a0) TRY(cuda_copy2d(g->logits + a0, V, g->logg + (int64_t)nr * a0, a1 - a0, nr, a1 - a0));
        }
        OP(OP_SAMPLE, cuda_argmax(g->next_d + r0, g->logits, nr, V));
        return 0;
    }
    OP(OP_LM_HEAD, lin(g->logits, V, g->h + (int64_t)r0 * D, D, nr, &g->lm_head, NULL));
    OP(OP_SAMPLE, cuda_argmax(g->next_d + r0, g->logits, nr, V));
    return 0;
}

static Graph *find_graph(GpuEngine *g, int n, int nw, int key) {
    Graph *lru = &g->graphs[0];
    for (int i = 0; i < N_GRAPHS; i++) {
        Graph *x = &g->graphs[i];
        if (x->seen && x->n == n && x->nw == nw && x->key == key) { x->used = ++g->clock; return x; }
        if (x->used < lru->used) lru = x;
    }
    cuda_graph_free(lru->exec);
    *lru = (Graph){ n, nw, key, NULL, 0, ++g->clock };
    return lru;
}

int gpu_step(GpuEngine *g, int n, const int *tok, const int *seq, const int *pos, const unsigned char *want,
             float *logits, int *next, Trace *tr, Err *e) {
    const ModelConfig *c = &g->m->cfg;
    if (n <= 0) return 0;
    if (n > g->max_tokens) return err_set(e, "a step of %d tokens: the GPU engine was opened for %d", n, g->max_tokens);
    int *len = xmalloc(sizeof(int) * (size_t)g->n_seq);
    memcpy(len, g->len, sizeof(int) * (size_t)g->n_seq);
    if (forward_check_batch(c, g->n_seq, g->max_pos, len, n, tok, seq, pos, e)) { free(len); return -1; }
    int max_len = 1, nw = 0;
    for (int i = 0; i < n; i++) {
        if (pos[i] + 1 > max_len) max_len = pos[i] + 1;
        if (!want || want[i]) g->stage[3 * n + nw++] = i;
    }
    for (int s = 0; s < g->n_seq; s++)
        if (len[s] > g->len[s] && ensure_blocks(g, s, len[s], e)) { undo_blocks(g, len, s); free(len); return -1; }
    memcpy(g->stage, tok, sizeof(int) * (size_t)n);
    memcpy(g->stage + n, seq, sizeof(int) * (size_t)n);
    memcpy(g->stage + 2 * n, pos, sizeof(int) * (size_t)n);
    int rc = 0;
    if (g->table_dirty) {
        rc = cuda_to_device(g->table_d, g->table, sizeof(int) * (size_t)g->n_seq * g->max_blocks);
        g->table_dirty = 0;
    }
    if (!rc) rc = cuda_to_device_async(g->in_d, g->stage, sizeof(int) * (size_t)(3 * n + nw));
    if (rc) { undo_blocks(g, len, g->n_seq); free(len); return err_set(e, "GPU: %s", cuda_error()); }
    Q q = { g, n, nw, max_len, g->in_d, g->in_d + n, g->in_d + 2 * n, g->in_d + 3 * n };
    CommStats before = g->nccl ? g->nccl->st : (CommStats){ 0 };
    int graphable = g->use_graphs && !logits && !tr && nw <= LOGIT_ROWS;
    Graph *gr = NULL;
    if (graphable) {
        int H = g->m->sh.nh, Hkv = c->is_mla ? 1 : g->m->sh.ng;
        gr = find_graph(g, n, nw, cuda_attention_splits(n, H, Hkv, max_len));
        if (gr->exec) rc = cuda_graph_launch(gr->exec);
        else if (gr->seen) {
            int crc = cuda_graph_begin();
            if (!crc) {
                int qrc = queue_layers(&q, NULL) || queue_head(&q, 0, nw);
                op_close(g);
                void *exec = NULL;
                crc = cuda_graph_end(&exec) || qrc;
                if (!crc) { gr->exec = exec; rc = cuda_graph_launch(exec); }
                else cuda_graph_free(exec);
            }
            if (crc) {                    /* capture refused: say so once, and run eagerly from now on */
                fprintf(stderr, "effbench: CUDA graph capture failed (%s); running without graphs\n", cuda_error());
                g->use_graphs = 0;
                graphable = 0;
                gr = NULL;
            }
        } else {
            gr->seen = 1;
            gr = NULL;                    /* first time: eagerly */
        }
    }
    if (!rc && (!graphable || !gr)) {
        rc = queue_layers(&q, tr);
        for (int r0 = 0; r0 < nw && !rc; r0 += LOGIT_ROWS) {
            int nr = nw - r0 < LOGIT_ROWS ? nw - r0 : LOGIT_ROWS;
            rc = queue_head(&q, r0, nr);
            if (!rc && logits) rc = cuda_to_host(logits + (int64_t)r0 * c->vocab, g->logits, sizeof(float) * (size_t)nr * c->vocab);
        }
        op_close(g);                      /* an op a failure left open */
    }
    if (!rc && next) rc = cuda_to_host(next, g->next_d, sizeof(int) * (size_t)nw);
    if (!rc) rc = cuda_sync();
    if (g->nccl && g->m->comm)                    /* what this step's collectives counted, on the model's group */
        for (int k = 0; k < CK_COUNT; k++) {
            g->m->comm->st.sent[k] += g->nccl->st.sent[k] - before.sent[k];
            g->m->comm->st.recv[k] += g->nccl->st.recv[k] - before.recv[k];
            g->m->comm->st.sec[k] += g->nccl->st.sec[k] - before.sec[k];
            g->m->comm->st.calls[k] += g->nccl->st.calls[k] - before.calls[k];
        }
    if (rc) { undo_blocks(g, len, g->n_seq); free(len); return err_set(e, "GPU: %s", cuda_error()); }
    memcpy(g->len, len, sizeof(int) * (size_t)g->n_seq);
    free(len);
    if (logits) {
        int64_t nonfinite = 0;
        for (int64_t i = 0; i < (int64_t)nw * c->vocab; i++) nonfinite += !isfinite(logits[i]);
        if (nonfinite) return err_set(e, "%s: forward pass produced %lld NaN/Inf logits", g->m->path, (long long)nonfinite);
    }
    return 0;
}
