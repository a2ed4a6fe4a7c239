/*
 * layout.c - the split of a model over ranks (layout.h) and the bytes it sends.
 */
#include "layout.h"

#include <stdio.h>

static int part_lo(int64_t total, int n, int r) { return (int)(total * r / n); }

void layout_vocab_range(int V, int n, int r, int *v0, int *v1) {
    int blocks = (V + 127) / 128, a = 128 * part_lo(blocks, n, r), b = 128 * part_lo(blocks, n, r + 1);
    *v0 = a < V ? a : V;
    *v1 = b < V ? b : V;
}

void layout_token_range(int T, int n, int r, int *t0, int *t1) {
    *t0 = part_lo(T, n, r);
    *t1 = part_lo(T, n, r + 1);
}

int layout_plan(const ModelConfig *c, int n, int rank, int tp, int ep, Shard *s, Err *e) {
    memset(s, 0, sizeof *s);
    if (n < 1 || rank < 0 || rank >= n) return err_set(e, "layout: rank %d of %d", rank, n);
    int moe = c->n_routed > 0;
    if (tp < 0 || ep < 0) return err_set(e, "layout: --tp and --ep take a rank count");
    if (!ep) ep = moe ? n : 1;
    if (!tp) tp = !moe || (c->n_heads % n == 0 && c->inter % n == 0 && (ep > 1 || c->moe_inter % n == 0)) ? n : 1;
    if ((tp != 1 && tp != n) || (ep != 1 && ep != n))
        return err_set(e, "layout: with %d ranks, --tp and --ep are each 1 or %d (got --tp %d --ep %d)", n, n, tp, ep);
    if (ep > 1 && !moe) return err_set(e, "layout: --ep %d: %s has no routed experts", ep, c->model_type);
    if (n > 1 && tp == 1 && ep == 1)
        return err_set(e, "layout: with %d ranks, --tp 1 --ep 1 splits nothing (every rank would compute the same)", n);
    s->rank = rank; s->n = n; s->tp = tp; s->ep = ep;
    int H = c->n_heads;
    s->h0 = 0; s->nh = H;
    s->g0 = 0; s->ng = c->is_mla ? H : c->n_kv_heads;
    if (tp > 1) {
        if (H % tp) return err_set(e, "layout: --tp %d: the %d attention heads do not divide among %d ranks", tp, H, tp);
        s->nh = H / tp;
        s->h0 = rank * s->nh;
        if (c->is_mla) { s->g0 = s->h0; s->ng = s->nh; }
        else {
            int Hkv = c->n_kv_heads, grp = H / Hkv;
            if (Hkv % tp && tp % Hkv)
                return err_set(e, "layout: --tp %d: %d KV heads and %d ranks (one must divide the other)", tp, Hkv, tp);
            s->g0 = s->h0 / grp;
            s->ng = (s->h0 + s->nh - 1) / grp - s->g0 + 1;
        }
    }
    s->i0 = 0; s->ni = c->inter;
    if (tp > 1 && c->inter) {
        if (c->inter % tp) return err_set(e, "layout: --tp %d: intermediate_size %d does not divide", tp, c->inter);
        s->ni = c->inter / tp;
        s->i0 = rank * s->ni;
    }
    s->e0 = 0; s->ne = c->n_routed;
    s->m0 = 0; s->nm = c->moe_inter;
    int sh = c->n_shared * c->moe_inter;
    s->s0 = 0; s->ns = sh;
    if (moe && ep > 1) {
        if (c->n_routed % ep) return err_set(e, "layout: --ep %d: the %d routed experts do not divide", ep, c->n_routed);
        s->ne = c->n_routed / ep;
        s->e0 = rank * s->ne;
    } else if (moe && tp > 1) {
        if (c->moe_inter % tp || sh % tp)
            return err_set(e, "layout: --tp %d with --ep 1: moe_intermediate_size %d does not divide", tp, c->moe_inter);
        s->nm = c->moe_inter / tp; s->m0 = rank * s->nm;
        s->ns = sh / tp; s->s0 = rank * s->ns;
    }
    int v1;
    layout_vocab_range(c->vocab, n, rank, &s->v0, &v1);
    s->nv = v1 - s->v0;
    return 0;
}

void layout_describe(const ModelConfig *c, const Shard *s, char *out, size_t len) {
    if (s->n <= 1) { snprintf(out, len, "one rank"); return; }
    int o = snprintf(out, len, "%d ranks: --tp %d --ep %d (", s->n, s->tp, s->ep);
    if (s->tp > 1)
        o += snprintf(out + o, len - (size_t)o, "%d heads per rank, FFN split by columns; ", s->nh);
    else
        o += snprintf(out + o, len - (size_t)o, "attention and dense FFN replicated; ");
    if (c->n_routed && s->ep > 1)
        o += snprintf(out + o, len - (size_t)o, "%d routed experts per rank, gate and shared experts replicated; ", s->ne);
    else if (c->n_routed)
        o += snprintf(out + o, len - (size_t)o, "every expert split by columns; ");
    snprintf(out + o, len - (size_t)o, "vocabulary split)");
}

int layout_dispatch(const int *ex, int T, int K, int n, int r, int per, size_t row, int *cnt, int *sidx, int *spos,
                    size_t *sb, size_t *rb, int *exl, int *sent) {
    int t0, t1, fill = 0, R = 0;
    layout_token_range(T, n, r, &t0, &t1);
    memset(cnt, 0, sizeof(int) * (size_t)n * n);
    for (int i = 0; i < n; i++) {                /* every rank's counts */
        int a, b;
        layout_token_range(T, n, i, &a, &b);
        for (int t = a; t < b; t++)
            for (int k = 0; k < K; k++) {
                int e = ex[t * K + k];
                cnt[i * n + e / per]++;
                if (e / per == r) exl[R++] = e - r * per;
            }
    }
    for (int j = 0; j < n; j++) {
        for (int t = t0; t < t1; t++)
            for (int k = 0; k < K; k++)
                if (ex[t * K + k] / per == j) { sidx[fill] = t; spos[(t - t0) * K + k] = fill++; }
        sb[j] = (size_t)cnt[r * n + j] * row;
        rb[j] = (size_t)cnt[j * n + r] * row;
    }
    *sent = fill;
    return R;
}

void layout_predict(const ModelConfig *c, const Shard *s, int T, int nw, const int *experts, double *sent, double *recv) {
    int n = s->n, D = c->dim, K = c->top_k;
    double row = 4.0 * D, ar = comm_allreduce_bytes(4.0 * T * D, n);
    memset(sent, 0, sizeof(double) * (size_t)n * CK_COUNT);
    memset(recv, 0, sizeof(double) * (size_t)n * CK_COUNT);
    if (n <= 1) return;
    int per = s->ep > 1 ? c->n_routed / n : 0;
    for (int r = 0; r < n; r++) {
        double *S = sent + (size_t)r * CK_COUNT, *R = recv + (size_t)r * CK_COUNT;
        int t0, t1;
        layout_token_range(T, n, r, &t0, &t1);
        for (int l = 0; l < c->n_layers; l++) {
            if (s->tp > 1) { S[CK_ATTN] += ar; R[CK_ATTN] += ar; }
            int is_moe = config_is_moe_layer(c, l);
            if (!is_moe || s->ep == 1) {
                if (s->tp > 1) { S[CK_FFN] += ar; R[CK_FFN] += ar; }
                continue;
            }
            double out = 0, in = 0;          /* rows this rank sends to / receives from others */
            if (experts) {
                const int *ex = experts + (size_t)l * T * K;
                for (int t = 0; t < T; t++)
                    for (int k = 0; k < K; k++) {
                        int owner = ex[t * K + k] / per, mine = t >= t0 && t < t1;
                        if (mine && owner != r) out++;
                        if (!mine && owner == r) in++;
                    }
            } else {
                out = (double)(t1 - t0) * K * (n - 1) / n;
                in = (double)(T - (t1 - t0)) * K / n;
            }
            S[CK_DISPATCH] += out * row; R[CK_DISPATCH] += in * row;
            S[CK_COMBINE] += in * row;   R[CK_COMBINE] += out * row;
            S[CK_GATHER] += (double)(t1 - t0) * row * (n - 1);
            R[CK_GATHER] += (double)(T - (t1 - t0)) * row;
        }
        int v0, v1;
        layout_vocab_range(c->vocab, n, r, &v0, &v1);
        int nv = v1 - v0;
        S[CK_HEAD] += 4.0 * nw * nv * (n - 1);
        R[CK_HEAD] += 4.0 * nw * (double)(c->vocab - nv);
    }
}
