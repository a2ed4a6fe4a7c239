/*
 * forward.c - one step of the model over a batch of tokens from several sequences.
 *
 * Block:   x += o_proj(attn(rmsnorm(x))); x += ffn(rmsnorm(x)); logits = lm_head(norm(x)).
 * MLA (DeepSeek-V2 paper, sec. 2.1; DeepSeek-V3 inference/model.py):
 *   q = W_q x or W_qb norm(W_qa x)   -> per head [q_nope (Dn) | q_pe (Dr)], RoPE on q_pe
 *   [c | k_pe] = W_kva x; c = norm(c); RoPE on k_pe (one rotary key shared by all heads)
 *   absorbed (default): cache [c | k_pe]; q_abs = W_UK^T q_nope (Dc);
 *     score_j = (q_abs . c_j + q_pe . k_pe_j) * scale; o = W_UV (sum_j p_j c_j)
 *   naive (reference): k = [W_UK c | k_pe], v = W_UV c cached per head; plain MHA.
 * Cache rows are written through kv_store, which encodes them in the cache's type
 * (float32, BF16, or FP8 E4M3 with a scale per 128 elements: model.h); attention()
 * reads float32 rows in place and decodes the others block by block.
 * DeepSeekMoE gate (HF modeling_deepseek MoEGate, model.py Gate):
 *   s = softmax(W_g x) or sigmoid(W_g x); selection on s + bias;
 *   group-limited: keep topk_group groups ranked by max (group_limited_greedy) or
 *   sum of top 2 (noaux_tc); top-K; weights from unbiased s, renormalised if
 *   norm_topk_prob; times routed_scaling_factor (V2: only when not renormalised).
 * Dense: GQA with rotate-half RoPE, qwen2 q/k/v biases; Mixtral: softmax top-K,
 *   renormalised.
 *
 * Memory: a step allocates nothing once the model's work area holds its shape. Every
 * buffer of a step lives in one allocation (StepWork below) sized for the largest step
 * so far and grown only when a step needs more (more tokens, a longer cache, more
 * threads), as llm.c sizes its activations once.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- work area ---------------------------------------------------------------------- */
/* The buffers of one step. T tokens in the step, S sequences in the cache; floats
 * unless said. The area lives in the Model rather than in an engine: model_forward is
 * called on a bare Model by the evals and the bench as well as through engines, and a
 * Model already runs one forward at a time (its linear() scratch). */
enum {
    W_X, W_H, W_O,               /* (T, D): residual, normed input, block output */
    W_Q,                         /* (T, H*(Dn+Dr)) MLA or (T, H*hd) dense queries */
    W_QA,                        /* (T, q_lora_rank) */
    W_K, W_V,                    /* (T, Hkv*hd) dense keys and values */
    W_KV,                        /* (T, Dc+Dr) MLA: latent and rotary key */
    W_KVB,                       /* (T, H*(Dn+Dv)) naive MLA: expanded keys and values */
    W_QC,                        /* (T, H*(Dc+Dr)) absorbed MLA: queries in latent space */
    W_LAT,                       /* (T, H*Dc) absorbed MLA: outputs in latent space */
    W_ATT,                       /* (T, H*Dv) or (T, H*hd): attention outputs */
    W_ATTN,                      /* attention_work_floats(T, ...): split-K partials, score rows,
                                    decoded cache blocks (BF16, FP8 cache) */
    W_ROW,                       /* (row) one cache row assembled before kv_store encodes it */
    W_G, W_U,                    /* (T, I) MLP intermediates, I the widest MLP; an expert gets
                                    at most T rows (a token's K experts are distinct) */
    W_SC,                        /* (T, E) router logits, then scores */
    W_WT,                        /* (T, K) routing weights */
    W_ROUTE,                     /* moe_route_scratch_floats() */
    W_XIN, W_Y,                  /* (T*K, D) expert inputs and outputs, grouped by expert */
    W_Z,                         /* (T, D) shared experts' output */
    W_EX,                        /* (T, K) ints: routed experts */
    W_OFF,                       /* (E+1) ints: first row of each expert */
    W_ORDER, W_WHERE,            /* (T*K) ints: slots grouped by expert; row of each slot */
    W_LEN,                       /* (S) ints: the cache's fill after the step */
    /* split over ranks (layout.h) */
    W_LOGP,                      /* (nw, V) logits as gathered: each rank's vocabulary slice */
    W_XS, W_YS,                  /* (T*K, D) expert parallel: rows sent to experts; the received rows
                                    grouped by expert, then the outputs that come back */
    W_EXL,                       /* (T*K) ints: the local expert of each received row */
    W_SIDX,                      /* (T*K) ints: the token of each row sent */
    W_SPOS,                      /* (T*K) ints: row of each own (token, slot) in the send order */
    W_CNT,                       /* (N*N) ints: rows rank i sends rank j in a dispatch */
    W_BYTES,                     /* (2N) size_t: byte counts of a collective */
    W_COUNT
};

struct StepWork {
    void *mem;                   /* one allocation holding every buffer */
    size_t bytes;
    size_t cap[W_COUNT];         /* bytes each buffer holds */
    void *buf[W_COUNT];          /* W_* -> its place in mem */
};

/* Bytes of each buffer for a step of T tokens over kv. */
static void work_sizes(const Model *m, const KVCache *kv, int T, size_t *sz) {
    const ModelConfig *c = &m->cfg;
    const Shard *sh = &m->sh;
    size_t t = (size_t)T, D = (size_t)c->dim, H = (size_t)sh->nh, F = sizeof(float), I = 0;
    size_t E = c->n_routed > 0 ? (size_t)c->n_routed : 0, K = E ? (size_t)c->top_k : 0;
    for (int l = 0; l < c->n_layers; l++) {
        const Layer *ly = &m->layers[l];
        size_t r = ly->is_moe ? (size_t)ly->moe.experts[0].gate.rows : (size_t)ly->mlp.gate.rows;
        if (ly->is_moe && ly->moe.has_shared && (size_t)ly->moe.shared.gate.rows > r) r = (size_t)ly->moe.shared.gate.rows;
        if (r > I) I = r;
    }
    memset(sz, 0, sizeof(size_t) * W_COUNT);
    sz[W_X] = sz[W_H] = sz[W_O] = F * t * D;
    if (c->is_mla) {
        size_t Dn = (size_t)c->qk_nope, Dr = (size_t)c->qk_rope, Dv = (size_t)c->v_head, Dc = (size_t)c->kv_lora_rank;
        sz[W_Q] = F * t * H * (Dn + Dr);
        sz[W_QA] = F * t * (size_t)c->q_lora_rank;
        sz[W_KV] = F * t * (Dc + Dr);
        sz[W_ATT] = F * t * H * Dv;
        if (m->opts.naive_mla) {
            sz[W_KVB] = F * t * H * (Dn + Dv);
            sz[W_ATTN] = F * attention_work_floats(T, sh->nh, sh->nh, c->qk_nope + c->qk_rope, c->v_head, kv->max_pos, kv->dt);
        } else {
            sz[W_QC] = F * t * H * (Dc + Dr);
            sz[W_LAT] = F * t * H * Dc;
            sz[W_ATTN] = F * attention_work_floats(T, sh->nh, 1, c->kv_lora_rank + c->qk_rope, c->kv_lora_rank, kv->max_pos, kv->dt);
        }
    } else {
        size_t hd = (size_t)c->head_dim;
        sz[W_Q] = sz[W_ATT] = F * t * H * hd;
        sz[W_K] = sz[W_V] = F * t * (size_t)sh->ng * hd;
        sz[W_ATTN] = F * attention_work_floats(T, sh->nh, sh->ng, c->head_dim, c->head_dim, kv->max_pos, kv->dt);
    }
    sz[W_G] = sz[W_U] = F * t * I;
    for (int l = 0; l < c->n_layers; l++)      /* one token's K experts side by side (moe) */
        if (m->layers[l].is_moe && sz[W_G] < F * K * (size_t)m->layers[l].moe.experts[0].gate.rows)
            sz[W_G] = sz[W_U] = F * K * (size_t)m->layers[l].moe.experts[0].gate.rows;
    if (E) {
        RouteParams rp;
        route_params(c, &rp);
        sz[W_SC] = F * t * E;
        sz[W_WT] = F * t * K;
        sz[W_ROUTE] = F * moe_route_scratch_floats(&rp);
        sz[W_XIN] = sz[W_Y] = F * t * K * D;
        sz[W_Z] = F * t * D;
        sz[W_EX] = sz[W_ORDER] = sz[W_WHERE] = sizeof(int) * t * K;
        sz[W_OFF] = sizeof(int) * (E + 1);
    }
    sz[W_ROW] = F * (size_t)kv->row;
    sz[W_LEN] = sizeof(int) * (size_t)kv->n_seq;
    if (sh->n > 1) {
        size_t N = (size_t)sh->n;
        sz[W_LOGP] = F * t * (size_t)c->vocab;
        if (E && sh->ep > 1) {
            sz[W_XS] = sz[W_YS] = F * t * K * D;
            sz[W_EXL] = sz[W_SPOS] = sz[W_SIDX] = sizeof(int) * t * K;
        }
        sz[W_CNT] = sizeof(int) * N * N;
        sz[W_BYTES] = sizeof(size_t) * 2 * N;
    }
}

/* Makes m's work area hold a step of T tokens over kv: when some buffer needs more than
 * it holds, all are laid out again in one allocation, each at the larger of its old and
 * new size; otherwise nothing is allocated. 0, or -1 with e set when the area would not
 * fit in available memory. */
static int work_reserve(Model *m, const KVCache *kv, int T, Err *e) {
    size_t need[W_COUNT];
    work_sizes(m, kv, T, need);
    if (!m->work) m->work = xcalloc(1, sizeof *m->work);
    StepWork *w = m->work;
    int grow = 0;
    for (int i = 0; i < W_COUNT; i++) grow |= need[i] > w->cap[i];
    if (!grow) return 0;
    size_t bytes = 0;
    for (int i = 0; i < W_COUNT; i++) {
        if (w->cap[i] > need[i]) need[i] = w->cap[i];
        bytes += (need[i] + 63) & ~(size_t)63;          /* each buffer 64-byte aligned in mem */
    }
    uint64_t avail = mem_available();
    if (bytes > avail) {
        char x[32], y[32];
        return err_set(e, "a step of %d tokens needs %s of work buffers but only %s of memory is available (use shorter chunks)",
                       T, fmt_bytes(bytes, x, sizeof x), fmt_bytes(avail, y, sizeof y));
    }
    free(w->mem);
    w->mem = xmalloc(bytes);
    w->bytes = bytes;
    char *p = w->mem;
    for (int i = 0; i < W_COUNT; i++) {
        w->cap[i] = need[i];
        w->buf[i] = p;
        p += (need[i] + 63) & ~(size_t)63;
    }
    return 0;
}

void model_work_free(Model *m) {
    if (m->work) free(m->work->mem);
    free(m->work);
    m->work = NULL;
}

typedef struct {
    Model *m;
    KVCache *kv;
    int n;
    const int *seq, *pos;
    float *scratch;              /* linear() scratch */
    void **w;                    /* the work area's buffers, by W_* */
    double t;                    /* Model.ops: when the op now running began */
    Comm *comm;                  /* split over ranks: the group; NULL for one rank */
    int rc;                      /* a collective failed (the step's Err holds why) */
    Err *e;
} Step;

/* ---- where the time goes (Model.ops) ---------------------------------------------------- */
const char *opk_name(int k) {
    static const char *names[OPK_COUNT] = {
        "embedding", "norms", "attention in-projections", "attention", "attention out-projection", "router",
        "routed experts", "shared experts", "dense FFN", "residual adds", "lm_head", "communication",
    };
    return k >= 0 && k < OPK_COUNT ? names[k] : "?";
}

/* The op of kind k ends now: the time since the last mark is its, and it read bytes. */
static void mark2(Step *s, int k, double bytes, double flops) {
    OpStats *o = s->m->ops;
    if (!o) return;
    double t = now_sec();
    o->sec[k] += t - s->t;
    o->bytes[k] += bytes;
    o->flops[k] += flops;
    s->t = t;
}
static void mark(Step *s, int k, double bytes) { mark2(s, k, bytes, 0); }

/* multiply-adds x 2 of a weight applied to n tokens */
static double mat_flops(const Mat *w, int n) { return 2.0 * (double)w->rows * (double)w->cols * n; }

/* attention's score and value products: each token against its positions 0..pos */
static double attn_flops(const Step *s, int H, int dk, int dv) {
    double rows = 0;
    for (int t = 0; t < s->n; t++) rows += s->pos[t] + 1;
    return 2.0 * rows * H * (dk + dv);
}

static double mat_bytes(const Mat *w) {
    double b = (double)w->rows * (double)dtype_bytes(w->dt, w->cols);
    if (w->dt == DT_F8_E4M3) b += 4.0 * (double)((w->rows + 127) / 128) * (double)((w->cols + 127) / 128);
    return b;
}

/* cache bytes the step's attention reads, as stored (codes and scales): each token its
 * sequence's rows 0..pos */
static double cache_read_bytes(const Step *s) {
    double rows = 0;
    for (int t = 0; t < s->n; t++) rows += s->pos[t] + 1;
    return rows * (double)kv_row_bytes(s->kv->dt, s->kv->row);
}

static void lin(Step *s, float *y, int ldy, const float *x, int ldx, int T, const Mat *W) {
    linear(y, ldy, x, ldx, T, W, 0, W->rows, NULL, s->scratch);
}

/* attention's view of layer l of the cache */
static void cache_args(const Step *s, int l, AttnArgs *aa) {
    const KVCache *kv = s->kv;
    aa->dt = kv->dt;
    aa->seq_stride = (int64_t)kv->max_pos * kv->row;
    aa->row = kv->row;
    if (kv->dt == DT_F32) aa->cache = kv_codes(kv, l, 0, 0);
    else aa->codes = kv_codes(kv, l, 0, 0);
    aa->scales = kv_scales(kv, l, 0, 0);
    aa->sc_seq_stride = (int64_t)kv->max_pos * kv->n_scales;
    aa->sc_row = kv->n_scales;
}

/* ---- between ranks ------------------------------------------------------------------ */
/* Sums the ranks' partial (n, D) outputs of a tensor-parallel op in place. */
static void reduce(Step *s, int kind, float *y, int n) {
    if (!s->comm || s->rc) return;
    if (comm_allreduce(s->comm, kind, y, (size_t)n * (size_t)s->m->cfg.dim, s->e)) s->rc = -1;
    mark(s, OPK_COMM, 0);
}

/* ---- attention ---------------------------------------------------------------------- */
/* RoPE of more tokens than this goes over the threads (a prefill's tokens are independent) */
#define ROPE_THREADS_MIN_T 16

static void attn_dense(Step *s, int l, const float *h, float *out) {
    const ModelConfig *c = &s->m->cfg;
    const Attn *a = &s->m->layers[l].attn;
    int n = s->n, H = s->m->sh.nh, Hkv = s->m->sh.ng, hd = c->head_dim, kvd = Hkv * hd;   /* this rank's heads */
    float *q = s->w[W_Q], *k = s->w[W_K], *v = s->w[W_V], *o = s->w[W_ATT];
    {
        float *const ys[3] = { q, k, v };
        const int ld[3] = { H * hd, kvd, kvd };
        const Mat *const ws[3] = { &a->q, &a->k, &a->v };
        const float *const bs[3] = { a->bq, a->bk, a->bv };
        linear_group(3, ys, ld, h, c->dim, n, ws, bs, s->scratch);
    }
    mark2(s, OPK_QKV, mat_bytes(&a->q) + mat_bytes(&a->k) + mat_bytes(&a->v), mat_flops(&a->q, n) + mat_flops(&a->k, n) + mat_flops(&a->v, n));
    #pragma omp parallel for schedule(static) if (n > ROPE_THREADS_MIN_T)
    for (int t = 0; t < n; t++) {
        rope_heads(1, q + (int64_t)t * H * hd, H, hd, hd, s->pos[t], s->m->inv_freq, s->m->rope_mscale);
        rope_heads(1, k + (int64_t)t * kvd, Hkv, hd, hd, s->pos[t], s->m->inv_freq, s->m->rope_mscale);
    }
    for (int t = 0; t < n; t++) {
        float *row = s->w[W_ROW];
        memcpy(row, k + (int64_t)t * kvd, sizeof(float) * (size_t)kvd);
        memcpy(row + kvd, v + (int64_t)t * kvd, sizeof(float) * (size_t)kvd);
        kv_store(s->kv, l, s->seq[t], s->pos[t], row);
    }
    AttnArgs aa = {
        .T = n, .seq = s->seq, .pos = s->pos, .q = q, .ldq = H * hd,
        .k_off = 0, .k_head_stride = hd, .v_off = kvd, .v_head_stride = hd,
        .dk = hd, .dv = hd, .H = H, .Hkv = Hkv, .scale = s->m->attn_scale, .out = o, .ldo = H * hd,
        .max_pos = s->kv->max_pos, .work = s->w[W_ATTN],
    };
    cache_args(s, l, &aa);
    attention(&aa);
    mark2(s, OPK_ATTN, cache_read_bytes(s), attn_flops(s, H, hd, hd));
    lin(s, out, c->dim, o, H * hd, n, &a->o);
    mark2(s, OPK_O, mat_bytes(&a->o), mat_flops(&a->o, n));
    if (s->m->sh.tp > 1) reduce(s, CK_ATTN, out, n);
}

static void attn_mla(Step *s, int l, const float *h, float *out) {
    Model *m = s->m;
    const ModelConfig *c = &m->cfg;
    const Attn *a = &m->layers[l].attn;
    int n = s->n, H = m->sh.nh, Dn = c->qk_nope, Dr = c->qk_rope, Dv = c->v_head, Dc = c->kv_lora_rank;   /* this rank's heads */
    int qk = Dn + Dr;
    float *q = s->w[W_Q], *kv = s->w[W_KV];
    {                                /* the products of h: q (or its low-rank a) and kv_a */
        int R = c->q_lora_rank;
        float *const ys[2] = { R ? s->w[W_QA] : q, kv };
        const int ld[2] = { R ? R : H * qk, Dc + Dr };
        const Mat *const ws[2] = { R ? &a->q_a : &a->q, &a->kv_a };
        const float *const bs[2] = { NULL, NULL };
        linear_group(2, ys, ld, h, c->dim, n, ws, bs, s->scratch);
        if (R) {
            rmsnorm(s->w[W_QA], R, s->w[W_QA], R, n, R, a->q_a_norm, c->rms_eps);
            lin(s, q, H * qk, s->w[W_QA], R, n, &a->q_b);
        }
    }
    rmsnorm(kv, Dc + Dr, kv, Dc + Dr, n, Dc, a->kv_a_norm, c->rms_eps);   /* latent only */
    mark2(s, OPK_QKV, (c->q_lora_rank ? mat_bytes(&a->q_a) + mat_bytes(&a->q_b) : mat_bytes(&a->q)) + mat_bytes(&a->kv_a),
          (c->q_lora_rank ? mat_flops(&a->q_a, n) + mat_flops(&a->q_b, n) : mat_flops(&a->q, n)) + mat_flops(&a->kv_a, n));
    #pragma omp parallel for schedule(static) if (n > ROPE_THREADS_MIN_T)
    for (int t = 0; t < n; t++) {
        rope_heads(0, q + (int64_t)t * H * qk + Dn, H, qk, Dr, s->pos[t], m->inv_freq, m->rope_mscale);
        rope_heads(0, kv + (int64_t)t * (Dc + Dr) + Dc, 1, Dc + Dr, Dr, s->pos[t], m->inv_freq, m->rope_mscale);
    }
    float *o = s->w[W_ATT];
    AttnArgs aa = {
        .T = n, .seq = s->seq, .pos = s->pos,
        .H = H, .scale = m->attn_scale, .max_pos = s->kv->max_pos, .work = s->w[W_ATTN],
    };
    cache_args(s, l, &aa);
    const float *wkvb = a->kv_b_f32;                 /* (H*(Dn+Dv), Dc) */
    if (m->opts.naive_mla) {
        /* cache row: K per head [k_nope | k_pe] (H*qk), then V per head (H*Dv) */
        float *kvb = s->w[W_KVB];
        Mat wf = { DT_F32, wkvb, NULL, a->kv_b.rows, Dc };
        lin(s, kvb, H * (Dn + Dv), kv, Dc + Dr, n, &wf);
        for (int t = 0; t < n; t++) {
            float *row = s->w[W_ROW];
            const float *kpe = kv + (int64_t)t * (Dc + Dr) + Dc;
            for (int x = 0; x < H; x++) {
                const float *src = kvb + ((int64_t)t * H + x) * (Dn + Dv);
                memcpy(row + (int64_t)x * qk, src, sizeof(float) * (size_t)Dn);
                memcpy(row + (int64_t)x * qk + Dn, kpe, sizeof(float) * (size_t)Dr);
                memcpy(row + (int64_t)H * qk + (int64_t)x * Dv, src + Dn, sizeof(float) * (size_t)Dv);
            }
            kv_store(s->kv, l, s->seq[t], s->pos[t], row);
        }
        aa.q = q; aa.ldq = H * qk;
        aa.k_off = 0; aa.k_head_stride = qk; aa.v_off = H * qk; aa.v_head_stride = Dv;
        aa.dk = qk; aa.dv = Dv; aa.Hkv = H;
        aa.out = o; aa.ldo = H * Dv;
        attention(&aa);
    } else {
        for (int t = 0; t < n; t++)
            kv_store(s->kv, l, s->seq[t], s->pos[t], kv + (int64_t)t * (Dc + Dr));
        /* qc (n, H, Dc+Dr) = [q_nope W_UK | q_pe] per head */
        int qd = Dc + Dr;
        float *qc = s->w[W_QC], *lat = s->w[W_LAT];
        if (a->uk_t.data) {          /* rows of W_UK^T as stored, every head in one call */
            linear_heads(H, qc, H * qd, qd, q, H * qk, qk, n, &a->uk_t, Dc, 0, Dc, s->scratch);
        } else {
            /* few tokens: one head per thread (each head's product alone is too small to
             * split, and kv_b is read at memory speed only by both cores at once) */
            #pragma omp parallel for schedule(static) if (n <= 6)
            for (int x = 0; x < H; x++) {
                const float *wuk = wkvb + (int64_t)x * (Dn + Dv) * Dc;        /* (Dn, Dc) */
                matmul_nn(qc + (int64_t)x * qd, H * qd, q + (int64_t)x * qk, H * qk, n, wuk, Dn, Dc);
            }
        }
        for (int t = 0; t < n; t++)
            for (int x = 0; x < H; x++)
                memcpy(qc + ((int64_t)t * H + x) * qd + Dc, q + ((int64_t)t * H + x) * qk + Dn, sizeof(float) * (size_t)Dr);
        aa.q = qc; aa.ldq = H * qd;
        aa.k_off = 0; aa.k_head_stride = 0; aa.v_off = 0; aa.v_head_stride = 0;
        aa.dk = qd; aa.dv = Dc; aa.Hkv = 1;
        aa.out = lat; aa.ldo = H * Dc;
        attention(&aa);
        linear_heads(H, o, H * Dv, Dv, lat, H * Dc, Dc, n, &a->uv, a->uv_head, a->uv_off, Dv, s->scratch);
    }
    /* and kv_b: expanded per token (naive) or absorbed into q and the output */
    mark2(s, OPK_ATTN, cache_read_bytes(s) + (double)mla_absorb_bytes(m, a),
          (m->opts.naive_mla ? attn_flops(s, H, qk, Dv) : attn_flops(s, H, Dc + Dr, Dc)) + 2.0 * n * (double)a->kv_b.rows * Dc);
    lin(s, out, c->dim, o, H * Dv, n, &a->o);
    mark2(s, OPK_O, mat_bytes(&a->o), mat_flops(&a->o, n));
    if (m->sh.tp > 1) reduce(s, CK_ATTN, out, n);
}

/* ---- feed-forward ------------------------------------------------------------------- */
/* y (n, D) = down(silu(gate x) * up x) */
static void mlp(Step *s, const Mlp *p, const float *x, int n, float *y) {
    int D = s->m->cfg.dim;
    int64_t ni = p->gate.rows;      /* intermediate width */
    float *g = s->w[W_G], *u = s->w[W_U];
    float *const ys[2] = { g, u };
    const int ld[2] = { (int)ni, (int)ni };
    const Mat *const ws[2] = { &p->gate, &p->up };
    const float *const bs[2] = { NULL, NULL };
    linear_group(2, ys, ld, x, D, n, ws, bs, s->scratch);
    swiglu(g, u, n * ni);
    lin(s, y, D, g, (int)ni, n, &p->down);
}

void route_params(const ModelConfig *c, RouteParams *p) {
    *p = (RouteParams){
        .E = c->n_routed, .K = c->top_k, .sigmoid = c->score != SCORE_SOFTMAX, .n_group = c->n_group,
        .topk_group = c->topk_group,
        .method = c->topk_method == TOPK_GREEDY ? 0 : c->topk_method == TOPK_NOAUX_TC ? 2 : 1,
        .renorm = c->norm_topk_prob, .scale_after_renorm = c->arch != ARCH_DEEPSEEK_V2, .routed_scale = c->routed_scale,
    };
}

/* Expert parallel (layout.h): the MoE block of a rank holding experts [e0, e0+ne) of
 * a step whose routing (ex, wt: (T, K)) every rank computed. This rank owns tokens
 * [t0, t1): it sends their rows to their experts' ranks, runs its experts on the rows
 * it receives, returns the outputs, combines its tokens, and the ranks all-gather the
 * combined rows into out (T, D). */
static void moe_ep(Step *s, const Moe *mo, const float *h, float *out, const int *ex, const float *wt) {
    const Shard *sh = &s->m->sh;
    int N = sh->n, r = sh->rank, n = s->n, K = s->m->cfg.top_k, D = s->m->cfg.dim, per = sh->ne;
    size_t row = sizeof(float) * (size_t)D;
    int *cnt = s->w[W_CNT], *spos = s->w[W_SPOS], *exl = s->w[W_EXL], *sidx = s->w[W_SIDX];   /* cnt (N, N) */
    int *off = s->w[W_OFF], *order = s->w[W_ORDER], *where = s->w[W_WHERE];
    size_t *sb = s->w[W_BYTES], *rb = sb + N;
    float *xs = s->w[W_XS], *xr = s->w[W_XIN], *xg = s->w[W_YS], *y = s->w[W_Y], *ys = s->w[W_YS];
    int t0, t1, fill;
    layout_token_range(n, N, r, &t0, &t1);
    int R = layout_dispatch(ex, n, K, N, r, per, row, cnt, sidx, spos, sb, rb, exl, &fill);
    for (int j = 0; j < fill; j++) memcpy(xs + (int64_t)j * D, h + (int64_t)sidx[j] * D, row);
    mark(s, OPK_EXPERTS, 0);
    if (comm_alltoallv(s->comm, CK_DISPATCH, xs, sb, xr, rb, s->e)) { s->rc = -1; return; }
    mark(s, OPK_COMM, 0);
    moe_permute(off, order, where, exl, R, sh->ne);  /* the received rows by local expert */
    for (int j = 0; j < R; j++) memcpy(xg + (int64_t)j * D, xr + (int64_t)order[j] * D, row);
    double eb = 0, ef = 0;
    for (int x = 0; x < sh->ne; x++) {
        int rows = off[x + 1] - off[x];
        if (!rows) continue;
        const Mlp *p = &mo->experts[sh->e0 + x];
        mlp(s, p, xg + (int64_t)off[x] * D, rows, y + (int64_t)off[x] * D);
        eb += mat_bytes(&p->gate) + mat_bytes(&p->up) + mat_bytes(&p->down);
        ef += mat_flops(&p->gate, rows) + mat_flops(&p->up, rows) + mat_flops(&p->down, rows);
    }
    for (int j = 0; j < R; j++) memcpy(xr + (int64_t)j * D, y + (int64_t)where[j] * D, row);   /* back in received order */
    mark2(s, OPK_EXPERTS, eb, ef);
    if (comm_alltoallv(s->comm, CK_COMBINE, xr, rb, ys, sb, s->e)) { s->rc = -1; return; }
    mark(s, OPK_COMM, 0);
    float *z = NULL;
    if (mo->has_shared) {                        /* replicated: each rank its own tokens */
        z = s->w[W_Z];
        mlp(s, &mo->shared, h + (int64_t)t0 * D, t1 - t0, z);
        mark2(s, OPK_SHARED, mat_bytes(&mo->shared.gate) + mat_bytes(&mo->shared.up) + mat_bytes(&mo->shared.down),
              mat_flops(&mo->shared.gate, t1 - t0) + mat_flops(&mo->shared.up, t1 - t0) + mat_flops(&mo->shared.down, t1 - t0));
    }
    moe_combine(out + (int64_t)t0 * D, ys, wt + (int64_t)t0 * K, spos, z, t1 - t0, K, D);
    mark(s, OPK_EXPERTS, 0);
    for (int i = 0; i < N; i++) {
        int a, b;
        layout_token_range(n, N, i, &a, &b);
        sb[i] = (size_t)(b - a) * row;
    }
    if (comm_allgatherv(s->comm, CK_GATHER, out + (int64_t)t0 * D, out, sb, s->e)) { s->rc = -1; return; }
    mark(s, OPK_COMM, 0);
}

static void moe(Step *s, int l, const float *h, float *out, Trace *tr) {
    const ModelConfig *c = &s->m->cfg;
    const Moe *mo = &s->m->layers[l].moe;
    int n = s->n, E = c->n_routed, K = c->top_k, D = c->dim;
    float *sc = s->w[W_SC], *wt = s->w[W_WT];
    int *ex = s->w[W_EX];
    lin(s, sc, E, h, D, n, &mo->router);
    RouteParams rp;
    route_params(c, &rp);
    moe_route_with_scratch(&rp, mo->bias, sc, n, ex, wt, s->w[W_ROUTE]);
    mark2(s, OPK_ROUTER, mat_bytes(&mo->router), mat_flops(&mo->router, n));
    if (tr && tr->experts) {
        memcpy(tr->experts + (int64_t)l * n * K, ex, sizeof(int) * (size_t)n * K);
        memcpy(tr->weights + (int64_t)l * n * K, wt, sizeof(float) * (size_t)n * K);
    }
    if (s->m->sh.ep > 1) { moe_ep(s, mo, h, out, ex, wt); return; }
    int *off = s->w[W_OFF], *order = s->w[W_ORDER], *where = s->w[W_WHERE];
    float *xin = s->w[W_XIN], *y = s->w[W_Y];
    double eb = 0, ef = 0;
    if (n == 1 && 2 * K <= LINEAR_GROUP_MAX) {
        /* one token: its K experts' gate and up products in one group on the token's row,
         * their down products in another, each expert on its own hidden row (each group
         * one parallel region, the activations rounded once per input) */
        int64_t ni = mo->experts[ex[0]].gate.rows;
        float *g = s->w[W_G], *u = s->w[W_U];
        float *ys[LINEAR_GROUP_MAX];
        const float *xs[LINEAR_GROUP_MAX];
        const Mat *ws[LINEAR_GROUP_MAX];
        int ld[LINEAR_GROUP_MAX];
        for (int k = 0; k < K; k++) {
            const Mlp *p = &mo->experts[ex[k]];
            ys[2 * k] = g + k * ni; ys[2 * k + 1] = u + k * ni;
            ws[2 * k] = &p->gate; ws[2 * k + 1] = &p->up;
            ld[2 * k] = ld[2 * k + 1] = (int)ni;
            eb += mat_bytes(&p->gate) + mat_bytes(&p->up) + mat_bytes(&p->down);
            ef += mat_flops(&p->gate, 1) + mat_flops(&p->up, 1) + mat_flops(&p->down, 1);
        }
        linear_group(2 * K, ys, ld, h, D, 1, ws, NULL, s->scratch);
        swiglu(g, u, K * ni);
        for (int k = 0; k < K; k++) {
            ys[k] = y + (int64_t)k * D;
            xs[k] = g + k * ni;
            ws[k] = &mo->experts[ex[k]].down;
            ld[k] = D;
            where[k] = k;
        }
        linear_group_xs(K, ys, ld, xs, (int)ni, 1, ws, NULL, s->scratch);
    } else {
        /* group the (token, slot) pairs by expert, run each expert once over its rows */
        moe_permute(off, order, where, ex, n * K, E);
        for (int j = 0; j < n * K; j++) memcpy(xin + (int64_t)j * D, h + (int64_t)(order[j] / K) * D, sizeof(float) * (size_t)D);
        for (int x = 0; x < E; x++)
            if (off[x + 1] > off[x]) {
                const Mlp *p = &mo->experts[x];
                mlp(s, p, xin + (int64_t)off[x] * D, off[x + 1] - off[x], y + (int64_t)off[x] * D);
                eb += mat_bytes(&p->gate) + mat_bytes(&p->up) + mat_bytes(&p->down);
                int r = off[x + 1] - off[x];
                ef += mat_flops(&p->gate, r) + mat_flops(&p->up, r) + mat_flops(&p->down, r);
            }
    }
    mark2(s, OPK_EXPERTS, eb, ef);
    float *z = NULL;
    if (mo->has_shared) {
        z = s->w[W_Z];
        mlp(s, &mo->shared, h, n, z);
        mark2(s, OPK_SHARED, mat_bytes(&mo->shared.gate) + mat_bytes(&mo->shared.up) + mat_bytes(&mo->shared.down),
              mat_flops(&mo->shared.gate, n) + mat_flops(&mo->shared.up, n) + mat_flops(&mo->shared.down, n));
    }
    moe_combine(out, y, wt, where, z, n, K, D);
    mark(s, OPK_EXPERTS, 0);
    if (s->m->sh.tp > 1) reduce(s, CK_FFN, out, n);  /* every expert split by columns: partial sums */
}

/* ---- step --------------------------------------------------------------------------- */
int forward_check_batch(const ModelConfig *c, int n_seq, int max_pos, int *len, int n, const int *tok, const int *seq,
                        const int *pos, Err *e) {
    for (int i = 0; i < n; i++) {
        if (tok[i] < 0 || tok[i] >= c->vocab)
            return err_set(e, "token %d at index %d is outside the vocabulary (0..%d)", tok[i], i, c->vocab - 1);
        if (seq[i] < 0 || seq[i] >= n_seq)
            return err_set(e, "sequence %d at index %d: the cache holds %d sequences", seq[i], i, n_seq);
        if (pos[i] < 0 || pos[i] >= max_pos)
            return err_set(e, "position %d at index %d: the cache holds %d positions", pos[i], i, max_pos);
        if (pos[i] > len[seq[i]])
            return err_set(e, "position %d of sequence %d skips ahead of its cache (%d filled)", pos[i], seq[i], len[seq[i]]);
        len[seq[i]] = pos[i] + 1;
    }
    return 0;
}

int model_forward(Model *m, KVCache *kv, int n, const int *tok, const int *seq, const int *pos,
                  const unsigned char *want, float *logits, Trace *tr, Err *e) {
    const ModelConfig *c = &m->cfg;
    int D = c->dim;
    if (n <= 0) return 0;
    if (!m->embed.data) return err_set(e, "%s: model was loaded for its shapes only", m->path);
    /* the work area first (it holds the copy of the fill the check updates); refuses,
     * before allocating, a step whose buffers exceed the memory available */
    if (work_reserve(m, kv, n, e)) return -1;
    if (m->sh.n > 1 && (!m->comm || m->comm->size != m->sh.n))
        return err_set(e, "%s: the model is split over %d ranks but has no group of that size", m->path, m->sh.n);
    Step s = { m, kv, n, seq, pos, m->scratch, m->work->buf, m->ops ? now_sec() : 0, m->sh.n > 1 ? m->comm : NULL, 0, e };
    /* validate the batch against the cache before touching anything */
    int *len = s.w[W_LEN];
    memcpy(len, kv->len, sizeof(int) * (size_t)kv->n_seq);
    if (forward_check_batch(c, kv->n_seq, kv->max_pos, len, n, tok, seq, pos, e)) return -1;
    float *x = s.w[W_X], *h = s.w[W_H], *o = s.w[W_O];
    for (int i = 0; i < n; i++) mat_rows_f32(&m->embed, tok[i], 1, x + (int64_t)i * D);
    mark(&s, OPK_EMBED, (double)n * (double)dtype_bytes(m->embed.dt, D));
    if (tr && tr->hidden) memcpy(tr->hidden, x, sizeof(float) * (size_t)n * D);
    if (tr && tr->experts)
        for (int64_t i = 0; i < (int64_t)c->n_layers * n * (c->top_k > 0 ? c->top_k : 0); i++) { tr->experts[i] = -1; tr->weights[i] = 0; }
    for (int l = 0; l < c->n_layers; l++) {
        const Layer *ly = &m->layers[l];
        rmsnorm(h, D, x, D, n, D, ly->attn_norm, c->rms_eps);
        mark(&s, OPK_NORM, 0);
        if (c->is_mla) attn_mla(&s, l, h, o);
        else attn_dense(&s, l, h, o);
        add_inplace(x, o, (int64_t)n * D);
        mark(&s, OPK_RESID, 0);
        rmsnorm(h, D, x, D, n, D, ly->ffn_norm, c->rms_eps);
        mark(&s, OPK_NORM, 0);
        if (ly->is_moe) moe(&s, l, h, o, tr);
        else {
            mlp(&s, &ly->mlp, h, n, o);
            mark2(&s, OPK_MLP, mat_bytes(&ly->mlp.gate) + mat_bytes(&ly->mlp.up) + mat_bytes(&ly->mlp.down),
                  mat_flops(&ly->mlp.gate, n) + mat_flops(&ly->mlp.up, n) + mat_flops(&ly->mlp.down, n));
            if (m->sh.tp > 1) reduce(&s, CK_FFN, o, n);
        }
        if (s.rc) return -1;
        add_inplace(x, o, (int64_t)n * D);
        mark(&s, OPK_RESID, 0);
        if (tr && tr->hidden) memcpy(tr->hidden + (int64_t)(l + 1) * n * D, x, sizeof(float) * (size_t)n * D);
    }
    memcpy(kv->len, len, sizeof(int) * (size_t)kv->n_seq);
    /* final norm and lm_head on the wanted rows */
    int nw = 0;
    for (int i = 0; i < n; i++)
        if (!want || want[i]) { rmsnorm(h + (int64_t)nw * D, D, x + (int64_t)i * D, D, 1, D, m->norm, c->rms_eps); nw++; }
    mark(&s, OPK_NORM, 0);
    int rc = 0;
    if (nw && logits && s.comm) {               /* each rank its vocabulary slice, then gathered */
        const Shard *sh = &m->sh;
        float *all = s.w[W_LOGP], *part;
        size_t *bytes = s.w[W_BYTES];
        int64_t off = 0;                        /* this rank's slice, where the gather puts it */
        for (int i = 0; i < sh->n; i++) {
            int a, b;
            layout_vocab_range(c->vocab, sh->n, i, &a, &b);
            bytes[i] = sizeof(float) * (size_t)nw * (size_t)(b - a);
            if (i == sh->rank) off = (int64_t)nw * a;
        }
        part = all + off;
        lin(&s, part, sh->nv, h, D, nw, &m->lm_head);
        mark2(&s, OPK_HEAD, mat_bytes(&m->lm_head), mat_flops(&m->lm_head, nw));
        if (comm_allgatherv(s.comm, CK_HEAD, part, all, bytes, e)) return -1;
        mark(&s, OPK_COMM, 0);
        /* (rank, row, column of the slice) -> (row, vocabulary) */
        for (int i = 0; i < sh->n; i++) {
            int a, b;
            layout_vocab_range(c->vocab, sh->n, i, &a, &b);
            const float *src = all + (int64_t)nw * a;
            for (int r = 0; r < nw; r++) memcpy(logits + (int64_t)r * c->vocab + a, src + (int64_t)r * (b - a), sizeof(float) * (size_t)(b - a));
        }
    }
    if (nw && logits) {
        if (!s.comm) lin(&s, logits, c->vocab, h, D, nw, &m->lm_head);
        int64_t nonfinite = 0;
        for (int64_t i = 0; i < (int64_t)nw * c->vocab; i++) nonfinite += !isfinite(logits[i]);
        if (nonfinite) rc = err_set(e, "%s: forward pass produced %lld NaN/Inf logits", m->path, (long long)nonfinite);
        if (!s.comm) mark2(&s, OPK_HEAD, mat_bytes(&m->lm_head), mat_flops(&m->lm_head, nw));
    }
    if (m->ops) m->ops->steps++;
    return rc;
}
