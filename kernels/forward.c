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
 * DeepSeekMoE gate (HF modeling_deepseek MoEGate, model.py Gate):
 *   s = softmax(W_g x) or sigmoid(W_g x); selection on s + bias;
 *   group-limited: keep topk_group groups ranked by max (group_limited_greedy) or
 *   sum of top 2 (noaux_tc); top-K; weights from unbiased s, renormalised if
 *   norm_topk_prob; times routed_scaling_factor (V2: only when not renormalised).
 * Dense: GQA with rotate-half RoPE, qwen2 q/k/v biases; Mixtral: softmax top-K,
 *   renormalised.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    Model *m;
    KVCache *kv;
    int n;
    const int *seq, *pos;
    float *scratch;              /* linear() scratch */
} Step;

static void lin(Step *s, float *y, int ldy, const float *x, int ldx, int T, const Mat *W) {
    linear(y, ldy, x, ldx, T, W, 0, W->rows, NULL, s->scratch);
}

static float *cache_row(Step *s, int layer, int seq, int pos) {
    KVCache *kv = s->kv;
    return kv->data + (((int64_t)layer * kv->n_seq + seq) * kv->max_pos + pos) * kv->row;
}

/* ---- attention ---------------------------------------------------------------------- */
static void attn_dense(Step *s, int l, const float *h, float *out) {
    const ModelConfig *c = &s->m->cfg;
    const Attn *a = &s->m->layers[l].attn;
    int n = s->n, H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim, kvd = Hkv * hd;
    float *q = xmalloc(sizeof(float) * (size_t)n * H * hd);
    float *k = xmalloc(sizeof(float) * (size_t)n * kvd);
    float *v = xmalloc(sizeof(float) * (size_t)n * kvd);
    float *o = xmalloc(sizeof(float) * (size_t)n * H * hd);
    linear(q, H * hd, h, c->dim, n, &a->q, 0, a->q.rows, a->bq, s->scratch);
    linear(k, kvd, h, c->dim, n, &a->k, 0, a->k.rows, a->bk, s->scratch);
    linear(v, kvd, h, c->dim, n, &a->v, 0, a->v.rows, a->bv, s->scratch);
    for (int t = 0; t < n; t++) {
        for (int x = 0; x < H; x++) rope_half(q + ((int64_t)t * H + x) * hd, hd, s->pos[t], s->m->inv_freq, s->m->rope_mscale);
        for (int x = 0; x < Hkv; x++) rope_half(k + ((int64_t)t * Hkv + x) * hd, hd, s->pos[t], s->m->inv_freq, s->m->rope_mscale);
        float *row = cache_row(s, l, s->seq[t], s->pos[t]);
        memcpy(row, k + (int64_t)t * kvd, sizeof(float) * (size_t)kvd);
        memcpy(row + kvd, v + (int64_t)t * kvd, sizeof(float) * (size_t)kvd);
    }
    AttnArgs aa = {
        .T = n, .seq = s->seq, .pos = s->pos, .q = q, .ldq = H * hd,
        .cache = cache_row(s, l, 0, 0), .seq_stride = (int64_t)s->kv->max_pos * s->kv->row, .row = s->kv->row,
        .k_off = 0, .k_head_stride = hd, .v_off = kvd, .v_head_stride = hd,
        .dk = hd, .dv = hd, .H = H, .Hkv = Hkv, .scale = s->m->attn_scale, .out = o, .ldo = H * hd,
        .max_pos = s->kv->max_pos,
    };
    attention(&aa);
    lin(s, out, c->dim, o, H * hd, n, &a->o);
    free(q); free(k); free(v); free(o);
}

static void attn_mla(Step *s, int l, const float *h, float *out) {
    Model *m = s->m;
    const ModelConfig *c = &m->cfg;
    const Attn *a = &m->layers[l].attn;
    int n = s->n, H = c->n_heads, Dn = c->qk_nope, Dr = c->qk_rope, Dv = c->v_head, Dc = c->kv_lora_rank;
    int qk = Dn + Dr;
    float *q = xmalloc(sizeof(float) * (size_t)n * H * qk);
    if (c->q_lora_rank) {
        int R = c->q_lora_rank;
        float *qa = xmalloc(sizeof(float) * (size_t)n * R);
        lin(s, qa, R, h, c->dim, n, &a->q_a);
        rmsnorm(qa, R, qa, R, n, R, a->q_a_norm, c->rms_eps);
        lin(s, q, H * qk, qa, R, n, &a->q_b);
        free(qa);
    } else {
        lin(s, q, H * qk, h, c->dim, n, &a->q);
    }
    float *kv = xmalloc(sizeof(float) * (size_t)n * (Dc + Dr));
    lin(s, kv, Dc + Dr, h, c->dim, n, &a->kv_a);
    rmsnorm(kv, Dc + Dr, kv, Dc + Dr, n, Dc, a->kv_a_norm, c->rms_eps);   /* latent only */
    for (int t = 0; t < n; t++) {
        for (int x = 0; x < H; x++)
            rope_interleaved(q + ((int64_t)t * H + x) * qk + Dn, Dr, s->pos[t], m->inv_freq, m->rope_mscale);
        rope_interleaved(kv + (int64_t)t * (Dc + Dr) + Dc, Dr, s->pos[t], m->inv_freq, m->rope_mscale);
    }
    float *o = xmalloc(sizeof(float) * (size_t)n * H * Dv);
    AttnArgs aa = {
        .T = n, .seq = s->seq, .pos = s->pos,
        .cache = cache_row(s, l, 0, 0), .seq_stride = (int64_t)s->kv->max_pos * s->kv->row, .row = s->kv->row,
        .H = H, .scale = m->attn_scale, .max_pos = s->kv->max_pos,
    };
    const float *wkvb = a->kv_b_f32;                 /* (H*(Dn+Dv), Dc) */
    if (m->opts.naive_mla) {
        /* cache row: K per head [k_nope | k_pe] (H*qk), then V per head (H*Dv) */
        float *kvb = xmalloc(sizeof(float) * (size_t)n * H * (Dn + Dv));
        Mat wf = { DT_F32, wkvb, NULL, a->kv_b.rows, Dc };
        lin(s, kvb, H * (Dn + Dv), kv, Dc + Dr, n, &wf);
        for (int t = 0; t < n; t++) {
            float *row = cache_row(s, l, s->seq[t], s->pos[t]);
            const float *kpe = kv + (int64_t)t * (Dc + Dr) + Dc;
            for (int x = 0; x < H; x++) {
                const float *src = kvb + ((int64_t)t * H + x) * (Dn + Dv);
                memcpy(row + (int64_t)x * qk, src, sizeof(float) * (size_t)Dn);
                memcpy(row + (int64_t)x * qk + Dn, kpe, sizeof(float) * (size_t)Dr);
                memcpy(row + (int64_t)H * qk + (int64_t)x * Dv, src + Dn, sizeof(float) * (size_t)Dv);
            }
        }
        free(kvb);
        aa.q = q; aa.ldq = H * qk;
        aa.k_off = 0; aa.k_head_stride = qk; aa.v_off = H * qk; aa.v_head_stride = Dv;
        aa.dk = qk; aa.dv = Dv; aa.Hkv = H;
        aa.out = o; aa.ldo = H * Dv;
        attention(&aa);
    } else {
        for (int t = 0; t < n; t++)
            memcpy(cache_row(s, l, s->seq[t], s->pos[t]), kv + (int64_t)t * (Dc + Dr), sizeof(float) * (size_t)(Dc + Dr));
        /* qc (n, H, Dc+Dr) = [q_nope W_UK | q_pe] per head */
        int qd = Dc + Dr;
        float *qc = xmalloc(sizeof(float) * (size_t)n * H * qd);
        float *lat = xmalloc(sizeof(float) * (size_t)n * H * Dc);
        for (int x = 0; x < H; x++) {
            const float *wuk = wkvb + (int64_t)x * (Dn + Dv) * Dc;            /* (Dn, Dc) */
            matmul_nn(qc + (int64_t)x * qd, H * qd, q + (int64_t)x * qk, H * qk, n, wuk, Dn, Dc);
            for (int t = 0; t < n; t++)
                memcpy(qc + ((int64_t)t * H + x) * qd + Dc, q + ((int64_t)t * H + x) * qk + Dn, sizeof(float) * (size_t)Dr);
        }
        aa.q = qc; aa.ldq = H * qd;
        aa.k_off = 0; aa.k_head_stride = 0; aa.v_off = 0; aa.v_head_stride = 0;
        aa.dk = qd; aa.dv = Dc; aa.Hkv = 1;
        aa.out = lat; aa.ldo = H * Dc;
        attention(&aa);
        for (int x = 0; x < H; x++) {
            Mat wuv = { DT_F32, wkvb + ((int64_t)x * (Dn + Dv) + Dn) * Dc, NULL, Dv, Dc };   /* (Dv, Dc) */
            linear(o + (int64_t)x * Dv, H * Dv, lat + (int64_t)x * Dc, H * Dc, n, &wuv, 0, Dv, NULL, s->scratch);
        }
        free(qc);
        free(lat);
    }
    lin(s, out, c->dim, o, H * Dv, n, &a->o);
    free(q); free(kv); free(o);
}

/* ---- feed-forward ------------------------------------------------------------------- */
/* y (n, D) = down(silu(gate x) * up x) */
static void mlp(Step *s, const Mlp *p, const float *x, int n, float *y) {
    int D = s->m->cfg.dim;
    int64_t ni = p->gate.rows;      /* intermediate width */
    float *g = xmalloc(sizeof(float) * (size_t)(n * ni));
    float *u = xmalloc(sizeof(float) * (size_t)(n * ni));
    lin(s, g, (int)ni, x, D, n, &p->gate);
    lin(s, u, (int)ni, x, D, n, &p->up);
    swiglu(g, u, n * ni);
    lin(s, y, D, g, (int)ni, n, &p->down);
    free(g); free(u);
}

void route_params(const ModelConfig *c, RouteParams *p) {
    *p = (RouteParams){
        .E = c->n_routed, .K = c->top_k, .sigmoid = c->score != SCORE_SOFTMAX, .n_group = c->n_group,
        .topk_group = c->topk_group,
        .method = c->topk_method == TOPK_GREEDY ? 0 : c->topk_method == TOPK_NOAUX_TC ? 2 : 1,
        .renorm = c->norm_topk_prob, .scale_after_renorm = c->arch != ARCH_DEEPSEEK_V2, .routed_scale = c->routed_scale,
    };
}

static void moe(Step *s, int l, const float *h, float *out, Trace *tr) {
    const ModelConfig *c = &s->m->cfg;
    const Moe *mo = &s->m->layers[l].moe;
    int n = s->n, E = c->n_routed, K = c->top_k, D = c->dim;
    float *sc = xmalloc(sizeof(float) * (size_t)n * E);
    lin(s, sc, E, h, D, n, &mo->router);
    int *ex = xmalloc(sizeof(int) * (size_t)n * K);
    float *wt = xmalloc(sizeof(float) * (size_t)n * K);
    RouteParams rp;
    route_params(c, &rp);
    moe_route(&rp, mo->bias, sc, n, ex, wt);
    if (tr && tr->experts) {
        memcpy(tr->experts + (int64_t)l * n * K, ex, sizeof(int) * (size_t)n * K);
        memcpy(tr->weights + (int64_t)l * n * K, wt, sizeof(float) * (size_t)n * K);
    }
    /* group the (token, slot) pairs by expert, run each expert once over its rows */
    int *off = xmalloc(sizeof(int) * ((size_t)E + 1)), *order = xmalloc(sizeof(int) * (size_t)n * K);
    int *where = xmalloc(sizeof(int) * (size_t)n * K);
    moe_permute(off, order, where, ex, n * K, E);
    float *xin = xmalloc(sizeof(float) * (size_t)n * K * D), *y = xmalloc(sizeof(float) * (size_t)n * K * D);
    for (int j = 0; j < n * K; j++) memcpy(xin + (int64_t)j * D, h + (int64_t)(order[j] / K) * D, sizeof(float) * (size_t)D);
    for (int x = 0; x < E; x++)
        if (off[x + 1] > off[x]) mlp(s, &mo->experts[x], xin + (int64_t)off[x] * D, off[x + 1] - off[x], y + (int64_t)off[x] * D);
    float *z = NULL;
    if (mo->has_shared) {
        z = xmalloc(sizeof(float) * (size_t)n * D);
        mlp(s, &mo->shared, h, n, z);
    }
    moe_combine(out, y, wt, where, z, n, K, D);
    free(z); free(sc); free(ex); free(wt); free(off); free(order); free(where); free(xin); free(y);
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
    /* validate the batch against the cache before touching anything */
    int *len = xmalloc(sizeof(int) * (size_t)kv->n_seq);
    memcpy(len, kv->len, sizeof(int) * (size_t)kv->n_seq);
    int bad = forward_check_batch(c, kv->n_seq, kv->max_pos, len, n, tok, seq, pos, e);
    if (!bad && !m->embed.data) bad = err_set(e, "%s: model was loaded for its shapes only", m->path);
    if (bad) { free(len); return -1; }
    /* the step's largest buffers live at once: residual, norm and output (3 D), the
     * attention's queries, keys/values and outputs, the MLP's two intermediates, and
     * MoE routing; refuse before allocating when that exceeds what is available */
    {
        int64_t H = c->n_heads, att = c->is_mla ? H * (c->qk_nope + c->qk_rope + 2 * (int64_t)(c->kv_lora_rank + c->qk_rope) + c->v_head + c->qk_nope + c->v_head)
                                                : H * c->head_dim * 2 + 2 * (int64_t)c->n_kv_heads * c->head_dim;
        int64_t ffn = 2 * (int64_t)(c->inter > c->moe_inter * (c->n_shared > 1 ? c->n_shared : 1) ? c->inter : c->moe_inter * (c->n_shared > 1 ? c->n_shared : 1));
        uint64_t need = (uint64_t)n * sizeof(float) * (uint64_t)(3 * c->dim + att + ffn + 2 * c->n_routed + 2 * c->dim + 2 * (int64_t)c->top_k * c->dim);
        uint64_t avail = mem_available();
        if (need > avail) {
            char x[32], y[32];
            free(len);
            return err_set(e, "a step of %d tokens needs %s of work buffers but only %s of memory is available (use shorter chunks)",
                           n, fmt_bytes(need, x, sizeof x), fmt_bytes(avail, y, sizeof y));
        }
    }
    Step s = { m, kv, n, seq, pos, m->scratch };
    float *x = xmalloc(sizeof(float) * (size_t)n * D);
    float *h = xmalloc(sizeof(float) * (size_t)n * D);
    float *o = xmalloc(sizeof(float) * (size_t)n * D);
    for (int i = 0; i < n; i++) mat_rows_f32(&m->embed, tok[i], 1, x + (int64_t)i * D);
    if (tr && tr->hidden) memcpy(tr->hidden, x, sizeof(float) * (size_t)n * D);
    if (tr && tr->experts)
        for (int64_t i = 0; i < (int64_t)c->n_layers * n * (c->top_k > 0 ? c->top_k : 0); i++) { tr->experts[i] = -1; tr->weights[i] = 0; }
    for (int l = 0; l < c->n_layers; l++) {
        const Layer *ly = &m->layers[l];
        rmsnorm(h, D, x, D, n, D, ly->attn_norm, c->rms_eps);
        if (c->is_mla) attn_mla(&s, l, h, o);
        else attn_dense(&s, l, h, o);
        for (int64_t i = 0; i < (int64_t)n * D; i++) x[i] += o[i];
        rmsnorm(h, D, x, D, n, D, ly->ffn_norm, c->rms_eps);
        if (ly->is_moe) moe(&s, l, h, o, tr);
        else mlp(&s, &ly->mlp, h, n, o);
        for (int64_t i = 0; i < (int64_t)n * D; i++) x[i] += o[i];
        if (tr && tr->hidden) memcpy(tr->hidden + (int64_t)(l + 1) * n * D, x, sizeof(float) * (size_t)n * D);
    }
    memcpy(kv->len, len, sizeof(int) * (size_t)kv->n_seq);
    /* final norm and lm_head on the wanted rows */
    int nw = 0;
    for (int i = 0; i < n; i++)
        if (!want || want[i]) { rmsnorm(h + (int64_t)nw * D, D, x + (int64_t)i * D, D, 1, D, m->norm, c->rms_eps); nw++; }
    int rc = 0;
    if (nw && logits) {
        lin(&s, logits, c->vocab, h, D, nw, &m->lm_head);
        int64_t nonfinite = 0;
        for (int64_t i = 0; i < (int64_t)nw * c->vocab; i++) nonfinite += !isfinite(logits[i]);
        if (nonfinite) rc = err_set(e, "%s: forward pass produced %lld NaN/Inf logits", m->path, (long long)nonfinite);
    }
    free(len); free(x); free(h); free(o);
    return rc;
}
