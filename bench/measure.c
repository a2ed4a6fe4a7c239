/*
 * measure.c - see measure.h.
 */
#include "measure.h"
#include "backend.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

volatile int measure_stop;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* nearest rank on sorted v */
static double pct_sorted(const double *v, int n, double p) {
    int r = (int)ceil(p / 100.0 * n);
    if (r < 1) r = 1;
    if (r > n) r = n;
    return v[r - 1];
}

static void summarize(double *t, int n, Cell *c) {
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) sum += t[i];
    double mean = sum / n;
    for (int i = 0; i < n; i++) sq += (t[i] - mean) * (t[i] - mean);
    c->sd = n > 1 ? sqrt(sq / (n - 1)) : 0;
    c->med = median_of(t, n);
    c->min = t[0];
    c->max = t[n - 1];
    c->reps = n;
}

/* ---- machine limits ----------------------------------------------------------------- */
static double stream_triad_gbs(size_t mib, int reps) {
    size_t n = mib * (1u << 20) / sizeof(double);
    double *a = xmalloc(n * sizeof *a), *b = xmalloc(n * sizeof *b), *c = xmalloc(n * sizeof *c);
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) { a[i] = 0; b[i] = 1.0; c[i] = 2.0; }
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now_sec();
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
        double dt = now_sec() - t0;
        if (r > 0 && dt < best) best = dt;       /* first pass is the warm-up */
    }
    volatile double sink = a[n / 2];
    (void)sink;
    free(a); free(b); free(c);
    return 3.0 * sizeof(double) * (double)n / best / 1e9;
}

static double read_gbs(size_t mib, int reps) {
    size_t n = mib * (1u << 20) / sizeof(uint64_t);
    uint64_t *a = xmalloc(n * sizeof *a);
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = i;
    double best = 1e30;
    uint64_t tot = 0;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now_sec();
        uint64_t s = 0;
        #pragma omp parallel for schedule(static) reduction(+:s)
        for (size_t i = 0; i < n; i++) s += a[i];
        double dt = now_sec() - t0;
        tot += s;
        if (r > 0 && dt < best) best = dt;
    }
    volatile uint64_t sink = tot;
    (void)sink;
    free(a);
    return (double)n * sizeof(uint64_t) / best / 1e9;
}

/* SGEMM GFLOP/s of M x (rows, cols)^T over the model's distinct weight shapes, with
 * the BLAS library's own threading: the reference the engine is held to. */
static double sgemm_gflops(const Model *m, int M, int reps) {
    const ModelConfig *c = &m->cfg;
    const Layer *ly = &m->layers[c->n_layers - 1];
    const Attn *a = &ly->attn;
    const Mat *mats[6] = { c->is_mla ? (c->q_lora_rank ? &a->q_b : &a->q) : &a->q, &a->o,
                           c->is_mla ? &a->kv_a : &a->k,
                           ly->is_moe ? &ly->moe.experts[0].gate : &ly->mlp.gate,
                           ly->is_moe ? &ly->moe.experts[0].down : &ly->mlp.down,
                           ly->is_moe && ly->moe.has_shared ? &ly->moe.shared.gate : NULL };
    openblas_set_num_threads(omp_get_max_threads());
    double flops = 0, secs = 0;
    for (int s = 0; s < 6; s++) {
        if (!mats[s] || !mats[s]->rows) continue;
        int64_t R = mats[s]->rows, C = mats[s]->cols;
        float *x = xmalloc(sizeof(float) * (size_t)(M * C)), *w = xmalloc(sizeof(float) * (size_t)(R * C));
        float *y = xmalloc(sizeof(float) * (size_t)(M * R));
        for (int64_t i = 0; i < M * C; i++) x[i] = 0.001f * (float)(i % 997);
        for (int64_t i = 0; i < R * C; i++) w[i] = 0.001f * (float)(i % 991);
        double t[16];
        int nr = reps < 16 ? reps : 16;
        for (int r = 0; r <= nr; r++) {
            double t0 = now_sec();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, (int)R, (int)C, 1.0f, x, (int)C, w, (int)C, 0.0f, y, (int)R);
            if (r) t[r - 1] = now_sec() - t0;
        }
        secs += median_of(t, nr);
        flops += 2.0 * M * R * C;
        free(x); free(w); free(y);
    }
    openblas_set_num_threads(1);
    return secs > 0 ? flops / secs / 1e9 : 0;
}

int limits_measure_for(const Model *m, const EngineOpts *eo, int m_prefill, int reps, size_t stream_mib, Limits *out,
                       Err *e) {
    if (eo->backend != BACKEND_CUDA) { limits_measure(m, m_prefill, reps, stream_mib, out); return 0; }
#ifdef EFFBENCH_CUDA
    memset(out, 0, sizeof *out);
    int bf16 = eo->gpu_dtype == DT_BF16 || (eo->gpu_dtype == 0 && m->wdtype == DT_BF16);
    double gbs = 0, tflops = 0;
    if (cuda_measure_limits(&gbs, &tflops, bf16, NULL, NULL)) return err_set(e, "GPU limits: %s", cuda_error());
    out->triad_gbs = out->read_gbs = gbs;
    out->sgemm_gflops = out->peak_gflops = tflops * 1e3;
    out->m_prefill = out->m_peak = 8192;
    return 0;
#else
    return err_set(e, "%s", cuda_error());
#endif
}

void limits_measure(const Model *m, int m_prefill, int reps, size_t stream_mib, Limits *out) {
    out->m_prefill = m_prefill;
    out->m_peak = m_prefill > 512 ? m_prefill : 512;
    out->triad_gbs = stream_triad_gbs(stream_mib, 5);
    out->read_gbs = read_gbs(stream_mib, 5);
    out->sgemm_gflops = sgemm_gflops(m, m_prefill, reps);
    out->peak_gflops = out->m_peak == m_prefill ? out->sgemm_gflops : sgemm_gflops(m, out->m_peak, reps);
}

void limits_best(Limits *a, const Limits *b) {
    if (b->triad_gbs > a->triad_gbs) a->triad_gbs = b->triad_gbs;
    if (b->read_gbs > a->read_gbs) a->read_gbs = b->read_gbs;
    if (b->sgemm_gflops > a->sgemm_gflops) a->sgemm_gflops = b->sgemm_gflops;
    if (b->peak_gflops > a->peak_gflops) a->peak_gflops = b->peak_gflops;
}

double cell_roofline_s(const Cell *c, const Limits *l, int *memory_bound) {
    double roof = c->kind == 'p' ? l->sgemm_gflops : l->peak_gflops;
    double tc = c->flops / (roof * 1e9), tm = c->kind == 'p' ? 0 : c->bytes / (l->triad_gbs * 1e9);
    if (memory_bound) *memory_bound = tm > tc;
    return tm > tc ? tm : tc;
}

/* ---- what a token costs ------------------------------------------------------------- */
static uint64_t mat_bytes(const Mat *w) {
    if (!w->rows) return 0;
    uint64_t b = (uint64_t)w->rows * dtype_bytes(w->dt, w->cols);
    if (w->scale) b += sizeof(float) * (uint64_t)((w->rows + 127) / 128) * (uint64_t)((w->cols + 127) / 128);
    return b;
}
static uint64_t mlp_bytes(const Mlp *p) { return mat_bytes(&p->gate) + mat_bytes(&p->up) + mat_bytes(&p->down); }
static double mat_flops(const Mat *w) { return 2.0 * (double)w->rows * (double)w->cols; }
static double mlp_flops(const Mlp *p) { return mat_flops(&p->gate) + mat_flops(&p->up) + mat_flops(&p->down); }

double model_flops_per_token(const Model *m, double ctx) {
    const ModelConfig *c = &m->cfg;
    double f = mat_flops(&m->lm_head);
    for (int l = 0; l < c->n_layers; l++) {
        const Layer *ly = &m->layers[l];
        const Attn *a = &ly->attn;
        f += mat_flops(&a->q) + mat_flops(&a->q_a) + mat_flops(&a->q_b) + mat_flops(&a->kv_a) + mat_flops(&a->o)
           + mat_flops(&a->k) + mat_flops(&a->v);
        if (c->is_mla) {
            if (m->opts.naive_mla) f += mat_flops(&a->kv_b);
            else f += 2.0 * c->n_heads * (double)(c->qk_nope + c->v_head) * c->kv_lora_rank;  /* absorbed W_UK, W_UV */
            int dk = m->opts.naive_mla ? c->qk_nope + c->qk_rope : c->kv_lora_rank + c->qk_rope;
            int dv = m->opts.naive_mla ? c->v_head : c->kv_lora_rank;
            f += 2.0 * c->n_heads * (double)(dk + dv) * ctx;
        } else {
            f += 2.0 * c->n_heads * 2.0 * c->head_dim * ctx;
        }
        if (ly->is_moe) {
            f += mat_flops(&ly->moe.router) + c->top_k * mlp_flops(&ly->moe.experts[0]);
            if (ly->moe.has_shared) f += mlp_flops(&ly->moe.shared);
        } else {
            f += mlp_flops(&ly->mlp);
        }
    }
    return f;
}

/* expected distinct experts touched by b tokens choosing K of E uniformly */
static double experts_touched(int E, int K, int b) {
    return E * (1.0 - pow(1.0 - (double)K / E, b));
}

double model_bytes_per_step(const Model *m, uint64_t kv_bytes_per_token, int b, double ctx) {
    const ModelConfig *c = &m->cfg;
    double by = (double)mat_bytes(&m->lm_head) + b * (double)dtype_bytes(m->embed.dt, c->dim);
    for (int l = 0; l < c->n_layers; l++) {
        const Layer *ly = &m->layers[l];
        const Attn *a = &ly->attn;
        by += (double)(mat_bytes(&a->q) + mat_bytes(&a->q_a) + mat_bytes(&a->q_b) + mat_bytes(&a->kv_a)
                     + mat_bytes(&a->o) + mat_bytes(&a->k) + mat_bytes(&a->v));
        if (a->kv_b.rows) by += (double)mla_absorb_bytes(m, a);   /* W_UK^T and W_UV as read */
        if (ly->is_moe) {
            by += (double)mat_bytes(&ly->moe.router) + experts_touched(c->n_routed, c->top_k, b) * (double)mlp_bytes(&ly->moe.experts[0]);
            if (ly->moe.has_shared) by += (double)mlp_bytes(&ly->moe.shared);
        } else {
            by += (double)mlp_bytes(&ly->mlp);
        }
    }
    return by + b * ctx * (double)kv_bytes_per_token;
}

/* ---- cells -------------------------------------------------------------------------- */
static void fill_prompt(int *tok, int n, int vocab, int salt) {
    for (int i = 0; i < n; i++) tok[i] = (int)((1103515245u * (unsigned)(i + 7 * salt) + 12345u) % (unsigned)vocab);
}

#define MAX_REPS 1000
/* A decode cell's context: a real prefill of up to this many positions; a deeper
 * context repeats them (the same bytes to read per step, without a 32K-token prefill
 * in every cell; the attention then sees repeated keys, which does not change its cost). */
#define PREFILL_CHUNK 2048

void (*measure_hook)(int begin, void *ctx);
void *measure_hook_ctx;

static void cell_source(Cell *c, const Engine *g) {
    snprintf(c->backend, sizeof c->backend, "%s", engine_backend(g));
    snprintf(c->device, sizeof c->device, "%s", engine_device(g));
    snprintf(c->dtype, sizeof c->dtype, "%s", engine_dtype(g));
}

/* ---- where the time goes -------------------------------------------------------------- */
/* The CPU engine tallies its ops into Model.ops while set: on for the timed repetitions. */
static void ops_on(Engine *g, OpStats *st, int on) {
    Model *m = engine_model(g);
    if (strcmp(engine_backend(g), "cpu")) return;
    if (on && !m->ops) memset(st, 0, sizeof *st);
    m->ops = on ? st : NULL;
}

static void ops_store(Cell *c, const OpStats *st) {
    if (st->steps < 1) return;
    c->has_ops = 1;
    for (int k = 0; k < OPK_COUNT; k++) {
        c->op_sec[k] = st->sec[k] / (double)st->steps;
        c->op_bytes[k] = st->bytes[k] / (double)st->steps;
        c->op_flops[k] = st->flops[k] / (double)st->steps;
    }
}

/* ---- the step of a cell --------------------------------------------------------------- */
static void decode_tokens(int *tok, int b, int vocab) {
    for (int s = 0; s < b; s++) tok[s] = (7 * s + 3) % vocab;
}

int cell_step_open(Engine *g, const Cell *c, CellStep *st, Err *e) {
    Model *m = engine_model(g);
    memset(st, 0, sizeof *st);
    int pre = c->kind == 'p';
    if (pre ? c->p < 1 : c->b < 1 || c->d < 0 || c->n < 1) return err_set(e, "a cell of no step");
    st->b = pre ? 1 : c->b;
    st->d = pre ? 0 : c->d;
    st->n = pre ? c->p : c->b;
    int chunk = st->d < PREFILL_CHUNK ? st->d : PREFILL_CHUNK;
    int rc = pre ? engine_reserve(g, 1, c->p, c->p, e) : engine_reserve(g, st->b, st->d + c->n + 1, chunk > st->b ? chunk : st->b, e);
    if (m->comm && m->sh.n > 1) {               /* split: a cell runs on every rank or on none */
        int64_t worst = rc == -1 ? 2 : rc == -2 ? 1 : 0;   /* a failure outranks a skip */
        Err ce = { "" };
        if (comm_max_i64(m->comm, &worst, 1, &ce)) return err_set(e, "%s", ce.msg);
        if (worst && !rc) err_set(e, "the cell %s on another rank", worst == 2 ? "failed" : "does not fit");
        if (worst) rc = worst == 2 ? -1 : -2;
    }
    if (rc) return rc;
    if (!pre && st->d > 0) {   /* context: a real prefill (of PREFILL_CHUNK positions at most, then repeated), copied to every sequence */
        int *tok = xmalloc(sizeof(int) * (size_t)chunk), *seq = xcalloc((size_t)chunk, sizeof(int)), *pos = xmalloc(sizeof(int) * (size_t)chunk);
        unsigned char *want = xcalloc((size_t)chunk, 1);
        fill_prompt(tok, chunk, m->cfg.vocab, 1);
        for (int j = 0; j < chunk; j++) pos[j] = j;
        rc = engine_step(g, chunk, tok, seq, pos, want, NULL, NULL, NULL, e);
        if (!rc && st->d > chunk) rc = engine_repeat_context(g, 0, chunk, st->d, e);
        free(tok); free(seq); free(pos); free(want);
        for (int s = 1; s < st->b && !rc; s++) rc = engine_copy_seq(g, s, 0, st->d, e);
        if (rc) return rc;
    }
    st->tok = xmalloc(sizeof(int) * (size_t)st->n);
    st->seq = xcalloc((size_t)st->n, sizeof(int));
    st->pos = xmalloc(sizeof(int) * (size_t)st->n);
    st->next = xmalloc(sizeof(int) * (size_t)st->n);
    if (pre) {                 /* the prompt; only the last position's logits (time to first token) */
        fill_prompt(st->tok, st->n, m->cfg.vocab, 0);
        for (int j = 0; j < st->n; j++) st->pos[j] = j;
        st->want = xcalloc((size_t)st->n, 1);
        st->want[st->n - 1] = 1;
    } else {                   /* the first greedy step of every sequence at depth d */
        decode_tokens(st->tok, st->b, m->cfg.vocab);
        for (int s = 0; s < st->b; s++) { st->seq[s] = s; st->pos[s] = st->d; }
    }
    return 0;
}

int cell_step_reset(Engine *g, const CellStep *st, Err *e) {
    for (int s = 0; s < st->b; s++)
        if (engine_set_len(g, s, st->d, e)) return -1;
    return 0;
}

int cell_step_run(Engine *g, CellStep *st, Err *e) {
    return engine_step(g, st->n, st->tok, st->seq, st->pos, st->want, NULL, st->next, NULL, e);
}

void cell_step_close(CellStep *st) {
    free(st->tok); free(st->seq); free(st->pos); free(st->next); free(st->want);
    memset(st, 0, sizeof *st);
}

int measure_prefill(Engine *g, int p, int reps, int warmup, Cell *c, Err *e) {
    Model *m = engine_model(g);
    memset(c, 0, sizeof *c);
    c->kind = 'p';
    c->p = p;
    if (reps < 1 || reps > MAX_REPS) return err_set(e, "repetitions must be 1..%d", MAX_REPS);
    CellStep st;
    int rc = cell_step_open(g, c, &st, e);
    if (rc) return rc;
    cell_source(c, g);
    c->kv_bytes = engine_kv_bytes_per_token(g) * (uint64_t)p;
    double *t = xmalloc(sizeof(double) * (size_t)reps);
    OpStats ops;
    for (int r = -warmup; r < reps && !rc; r++) {
        if (measure_stop) { rc = err_set(e, "interrupted"); break; }
        if ((rc = cell_step_reset(g, &st, e))) break;
        if (r >= 0 && measure_hook) measure_hook(1, measure_hook_ctx);
        ops_on(g, &ops, r >= 0);
        double s0 = now_sec();
        rc = cell_step_run(g, &st, e);
        if (r >= 0) t[r] = now_sec() - s0;
        ops_on(g, &ops, 0);
        if (r >= 0 && measure_hook) measure_hook(0, measure_hook_ctx);
    }
    if (!rc) {
        ops_store(c, &ops);
        summarize(t, reps, c);
        for (int j = 0; j < p; j++) c->flops += model_flops_per_token(m, j + 1) - mat_flops(&m->lm_head);
        c->flops += mat_flops(&m->lm_head);          /* logits of the last position only */
        c->bytes = model_bytes_per_step(m, 0, 1, 0) + (double)c->kv_bytes;
        c->tokens_per_s = p / c->med;
        c->p50 = c->p90 = c->p99 = c->med;           /* time to first token */
    }
    cell_step_close(&st);
    free(t);
    return rc;
}

int measure_decode(Engine *g, int b, int d, int n, int reps, int warmup, Cell *c, Err *e) {
    Model *m = engine_model(g);
    memset(c, 0, sizeof *c);
    c->kind = 'g';
    c->b = b; c->d = d; c->n = n;
    if (reps < 1 || reps > MAX_REPS) return err_set(e, "repetitions must be 1..%d", MAX_REPS);
    int max_pos = d + n + 1;
    CellStep st;
    int rc = cell_step_open(g, c, &st, e);
    if (rc) return rc;
    cell_source(c, g);
    c->kv_bytes = engine_kv_bytes_per_token(g) * (uint64_t)b * (uint64_t)max_pos;
    int *tok = st.next;                /* the greedy tokens feed the next step; step 0 is the cell's step (st) */
    int *pos = xmalloc(sizeof(int) * (size_t)b);
    double *t = xmalloc(sizeof(double) * (size_t)reps), *steps = xmalloc(sizeof(double) * (size_t)reps * n);
    int ns = 0;
    OpStats ops;
    for (int r = -warmup; r < reps && !rc; r++) {
        rc = cell_step_reset(g, &st, e);
        if (r >= 0 && measure_hook) measure_hook(1, measure_hook_ctx);
        ops_on(g, &ops, r >= 0);
        double s0 = now_sec();
        for (int k = 0; k < n && !rc; k++) {
            if (measure_stop) { rc = err_set(e, "interrupted"); break; }
            double g0 = now_sec();
            if (k == 0) rc = cell_step_run(g, &st, e);
            else {
                for (int s = 0; s < b; s++) pos[s] = d + k;
                rc = engine_step(g, b, tok, st.seq, pos, NULL, NULL, tok, NULL, e);   /* greedy, as a real decode would */
            }
            if (r >= 0) steps[ns++] = now_sec() - g0;
        }
        if (r >= 0) t[r] = (now_sec() - s0) / n;
        ops_on(g, &ops, 0);
        if (r >= 0 && measure_hook) measure_hook(0, measure_hook_ctx);
    }
    if (!rc) {
        ops_store(c, &ops);
        summarize(t, reps, c);
        qsort(steps, (size_t)ns, sizeof *steps, cmp_double);
        c->p50 = pct_sorted(steps, ns, 50);
        c->p90 = pct_sorted(steps, ns, 90);
        c->p99 = pct_sorted(steps, ns, 99);
        double ctx = d + n / 2.0;
        c->flops = b * model_flops_per_token(m, ctx);
        c->bytes = model_bytes_per_step(m, engine_kv_bytes_per_token(g), b, ctx);
        c->tokens_per_s = b / c->med;
    }
    cell_step_close(&st);
    free(pos); free(t); free(steps);
    return rc;
}

int measure_comm(Engine *g, Cell *c, Err *e) {
    Model *m = engine_model(g);
    Comm *cm = m->comm;
    if (!cm || m->sh.n <= 1) return 0;
    CellStep st;
    int rc = cell_step_open(g, c, &st, e);
    if (!rc) rc = cell_step_reset(g, &st, e);
    CommStats before = cm->st;
    double t0 = now_sec();
    if (!rc) rc = cell_step_run(g, &st, e);
    c->step_sec = now_sec() - t0;
    int N = cm->size, nw = 0;
    for (int i = 0; i < st.n; i++) nw += !st.want || st.want[i];
    double mine[3 * CK_COUNT], *all = xcalloc((size_t)N * 3 * CK_COUNT, sizeof(double));   /* sent, received, seconds */
    c->comm_sec = 0;
    for (int k = 0; k < CK_COUNT; k++) {
        mine[3 * k] = cm->st.sent[k] - before.sent[k];
        mine[3 * k + 1] = cm->st.recv[k] - before.recv[k];
        mine[3 * k + 2] = cm->st.sec[k] - before.sec[k];
        if (k != CK_CONTROL) c->comm_sec += mine[3 * k + 2];
    }
    size_t *bytes = xcalloc((size_t)N, sizeof(size_t));
    for (int i = 0; i < N; i++) bytes[i] = sizeof mine;
    if (!rc) rc = comm_allgatherv(cm, CK_CONTROL, mine, all, bytes, e);
    double *ps = xcalloc((size_t)N * CK_COUNT, sizeof(double)), *pr = xcalloc((size_t)N * CK_COUNT, sizeof(double));
    layout_predict(&m->cfg, &m->sh, st.n, nw, NULL, ps, pr);
    c->ranks = N;
    free(c->comm_detail);
    c->comm_detail = xcalloc((size_t)N * CK_COUNT * 5, sizeof(double));
    for (int k = 0; k < CK_COUNT; k++) {
        c->comm_sent[k] = c->comm_pred[k] = 0;
        for (int i = 0; i < N; i++) {
            const double *a = all + (size_t)i * 3 * CK_COUNT + 3 * k;
            double *d = c->comm_detail + ((size_t)i * CK_COUNT + (size_t)k) * 5;
            d[0] = a[0]; d[1] = a[1]; d[2] = ps[(size_t)i * CK_COUNT + k]; d[3] = pr[(size_t)i * CK_COUNT + k]; d[4] = a[2];
            c->comm_sent[k] += a[0];
            c->comm_pred[k] += d[2];
        }
    }
    free(all); free(bytes); free(ps); free(pr);
    cell_step_close(&st);
    return rc;
}
