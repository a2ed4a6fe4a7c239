/*
 * engine_bench.c - `effbench bench`: prefill and decode speed of one model on the
 * CPU, beside the two limits measured in the same run:
 *   memory bandwidth, a STREAM triad a = b + s*c (24 bytes per element counted, as
 *     STREAM does; best of the repetitions, as STREAM reports);
 *   the BLAS library's own SGEMM rate on this model's prefill shapes.
 * Decode roofline: bytes one step must read (weights touched + KV cache) divided by
 * the triad bandwidth. Prefill reference: the model's matmul FLOPs at the SGEMM
 * rate. Times are CLOCK_MONOTONIC; warm-up runs are not timed; medians reported.
 */
#include "cli.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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

/* Read-only bandwidth: a parallel sum over an array, best of reps. Decode only reads
 * weights, and on some machines reads alone reach less than the triad. */
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

/* SGEMM GFLOP/s of M x (rows, cols)^T for each distinct weight shape of the model,
 * with the BLAS library's own threading (the engine runs it single-threaded inside
 * its OpenMP slices; this is the reference it is held to). */
static double sgemm_gflops(const Model *m, int M, int reps) {
    openblas_set_num_threads(omp_get_max_threads());
    const ModelConfig *c = &m->cfg;
    int64_t shapes[8][2];
    int ns = 0;
    const Layer *ly = &m->layers[c->n_layers - 1];
    const Attn *a = &ly->attn;
    const Mat *mats[8] = { c->is_mla ? (c->q_lora_rank ? &a->q_b : &a->q) : &a->q, &a->o,
                           c->is_mla ? &a->kv_a : &a->k,
                           ly->is_moe ? &ly->moe.experts[0].gate : &ly->mlp.gate,
                           ly->is_moe ? &ly->moe.experts[0].down : &ly->mlp.down,
                           ly->is_moe && ly->moe.has_shared ? &ly->moe.shared.gate : NULL, NULL, NULL };
    for (int i = 0; i < 8; i++)
        if (mats[i] && mats[i]->data) { shapes[ns][0] = mats[i]->rows; shapes[ns][1] = mats[i]->cols; ns++; }
    double flops = 0, secs = 0;
    for (int s = 0; s < ns; s++) {
        int64_t R = shapes[s][0], C = shapes[s][1];
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
        secs += median(t, nr);
        flops += 2.0 * M * R * C;
        free(x); free(w); free(y);
    }
    openblas_set_num_threads(1);
    return flops / secs / 1e9;
}

/* ---- what a token costs ------------------------------------------------------------- */
static uint64_t mat_bytes(const Mat *w) {
    if (!w->data) return 0;
    uint64_t b = (uint64_t)w->rows * (uint64_t)w->cols * dtype_size(w->dt);
    if (w->scale) b += sizeof(float) * (uint64_t)((w->rows + 127) / 128) * (uint64_t)((w->cols + 127) / 128);
    return b;
}
static uint64_t mlp_bytes(const Mlp *p) { return mat_bytes(&p->gate) + mat_bytes(&p->up) + mat_bytes(&p->down); }
static double mat_flops(const Mat *w) { return w->data ? 2.0 * (double)w->rows * (double)w->cols : 0; }
static double mlp_flops(const Mlp *p) { return mat_flops(&p->gate) + mat_flops(&p->up) + mat_flops(&p->down); }

/* Matmul FLOPs per token (K routed experts active) plus attention at context ctx. */
static double flops_per_token(const Model *m, double ctx) {
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

/* Expected distinct experts touched by b tokens choosing K of E uniformly. */
static double experts_touched(int E, int K, int b) {
    return E * (1.0 - pow(1.0 - (double)K / E, b));
}

/* Bytes one decode step of b sequences at context ctx reads: every non-expert weight,
 * the experts touched, the embedding rows, and the KV cache of each sequence. */
static double bytes_per_step(const Model *m, const KVCache *kv, int b, double ctx) {
    const ModelConfig *c = &m->cfg;
    double by = (double)mat_bytes(&m->lm_head) + b * (double)c->dim * dtype_size(m->embed.dt);
    for (int l = 0; l < c->n_layers; l++) {
        const Layer *ly = &m->layers[l];
        const Attn *a = &ly->attn;
        by += (double)(mat_bytes(&a->q) + mat_bytes(&a->q_a) + mat_bytes(&a->q_b) + mat_bytes(&a->kv_a)
                     + mat_bytes(&a->o) + mat_bytes(&a->k) + mat_bytes(&a->v));
        if (a->kv_b.data) by += 4.0 * (double)a->kv_b.rows * (double)a->kv_b.cols;   /* read as kv_b_f32 */
        if (ly->is_moe) {
            by += (double)mat_bytes(&ly->moe.router) + experts_touched(c->n_routed, c->top_k, b) * (double)mlp_bytes(&ly->moe.experts[0]);
            if (ly->moe.has_shared) by += (double)mlp_bytes(&ly->moe.shared);
        } else {
            by += (double)mlp_bytes(&ly->mlp);
        }
    }
    by += b * ctx * (double)kv_bytes_per_token(kv);
    return by;
}

/* ---- the benchmark ------------------------------------------------------------------ */
typedef struct {
    char kind;                   /* 'p' prefill, 'g' decode */
    int p, b, d, n;              /* prefill length; batch, depth, steps */
    double tps, ms;              /* tokens/s; ms per step (a prefill is one step) */
    double flops, bytes, secs;   /* per step; median step time */
} Row;
static void fill_prompt(int *tok, int n, int vocab, int salt) {
    for (int i = 0; i < n; i++) tok[i] = (int)((1103515245u * (unsigned)(i + 7 * salt) + 12345u) % (unsigned)vocab);
}

int cmd_bench(const Opts *o) {
    int *pp = NULL, *bb = NULL, *dd = NULL, np = 0, nb = 0, nd = 0;
    if (parse_int_list(o->prefill ? o->prefill : "512", &pp, &np) ||
        parse_int_list(o->batches ? o->batches : "1,16", &bb, &nb) ||
        parse_int_list(o->depths ? o->depths : "1024", &dd, &nd)) {
        fprintf(stderr, "effbench bench: -p, -b and -d take comma-separated positive integers\n");
        return -2;
    }
    for (int i = 0; i < np; i++) if (pp[i] < 1) { fprintf(stderr, "effbench bench: -p values must be >= 1\n"); return -2; }
    for (int i = 0; i < nb; i++) if (bb[i] < 1) { fprintf(stderr, "effbench bench: -b values must be >= 1\n"); return -2; }
    for (int i = 0; i < nd; i++) if (dd[i] < 0) { fprintf(stderr, "effbench bench: -d values must be >= 0\n"); return -2; }
    int ngen = o->n_gen > 0 ? o->n_gen : 32, reps = o->reps;
    Model m;
    double t0 = now_sec();
    if (cli_load_model(o, &m)) return -1;
    fprintf(stderr, "effbench: loaded %s (%s, %d layers, %s weights, %.2f GB) in %.1f s\n", o->model,
            m.cfg.model_type, m.cfg.n_layers, dtype_name(m.wdtype), m.weight_bytes / 1e9, now_sec() - t0);
    int threads = omp_get_max_threads();
    /* machine limits: measured before the model runs and again after; the best of the
     * two is the roofline (noise on a shared machine only ever lowers a figure) */
    int maxp = 0;
    for (int i = 0; i < np; i++) if (pp[i] > maxp) maxp = pp[i];
    double bw = stream_triad_gbs((size_t)o->stream_mib, 5);
    double rbw = read_gbs((size_t)o->stream_mib, 5);
    int mroof = maxp > 512 ? maxp : 512;     /* compute roof: a large M, whatever the prefill */
    double gemm = sgemm_gflops(&m, maxp, reps), peak = mroof == maxp ? gemm : sgemm_gflops(&m, mroof, reps);
    Row rows[256];
    int nrows = 0;
    Err e = { "" };
    int rc = 0;
    double peak_kv = 0;
    /* prefill */
    for (int i = 0; i < np && !rc; i++) {
        int p = pp[i];
        KVCache kv;
        if (kv_create(&kv, &m, 1, p, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); rc = -1; break; }
        int *tok = xmalloc(sizeof(int) * (size_t)p), *seq = xcalloc((size_t)p, sizeof(int)), *pos = xmalloc(sizeof(int) * (size_t)p);
        unsigned char *want = xcalloc((size_t)p, 1);
        want[p - 1] = 1;
        fill_prompt(tok, p, m.cfg.vocab, 0);
        for (int j = 0; j < p; j++) pos[j] = j;
        float *lg = xmalloc(sizeof(float) * (size_t)m.cfg.vocab);
        double t[64];
        int nr = reps < 64 ? reps : 64;
        for (int r = -o->warmup; r < nr && !rc; r++) {
            kv.len[0] = 0;
            double s0 = now_sec();
            rc = model_forward(&m, &kv, p, tok, seq, pos, want, lg, NULL, &e);
            if (r >= 0) t[r] = now_sec() - s0;
        }
        if (rc) { fprintf(stderr, "effbench: %s\n", e.msg); }
        else {
            double med = median(t, nr), fl = 0;
            for (int j = 0; j < p; j++) fl += flops_per_token(&m, j + 1) - mat_flops(&m.lm_head);
            fl += mat_flops(&m.lm_head);
            Row r = { .kind = 'p', .p = p, .tps = p / med, .ms = 1e3 * med, .flops = fl, .secs = med };
            if (nrows < 256) rows[nrows++] = r;
        }
        free(tok); free(seq); free(pos); free(want); free(lg);
        kv_free(&kv);
    }
    /* decode */
    for (int di = 0; di < nd && !rc; di++) {
        int d = dd[di];
        for (int bi = 0; bi < nb && !rc; bi++) {
            int b = bb[bi];
            KVCache kv;
            if (kv_create(&kv, &m, b, d + ngen + 1, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); rc = -1; break; }
            double kvb = (double)kv_bytes_per_token(&kv) * b * kv.max_pos;
            if (kvb > peak_kv) peak_kv = kvb;
            /* context: one real prefill of d tokens, copied to every sequence */
            if (d > 0) {
                int *tok = xmalloc(sizeof(int) * (size_t)d), *seq = xcalloc((size_t)d, sizeof(int)), *pos = xmalloc(sizeof(int) * (size_t)d);
                fill_prompt(tok, d, m.cfg.vocab, 1);
                for (int j = 0; j < d; j++) pos[j] = j;
                unsigned char *want = xcalloc((size_t)d, 1);
                rc = model_forward(&m, &kv, d, tok, seq, pos, want, NULL, NULL, &e);
                free(tok); free(seq); free(pos); free(want);
                size_t per = (size_t)kv.row * (size_t)d;
                for (int l = 0; l < kv.n_layers; l++)
                    for (int s = 1; s < b; s++)
                        memcpy(kv.data + (((size_t)l * b + s) * kv.max_pos) * kv.row,
                               kv.data + ((size_t)l * b * kv.max_pos) * kv.row, per * sizeof(float));
            }
            int *tok = xmalloc(sizeof(int) * (size_t)b), *seq = xmalloc(sizeof(int) * (size_t)b), *pos = xmalloc(sizeof(int) * (size_t)b);
            float *lg = xmalloc(sizeof(float) * (size_t)b * m.cfg.vocab);
            double t[64];
            int nr = reps < 64 ? reps : 64;
            for (int r = -o->warmup; r < nr && !rc; r++) {
                for (int s = 0; s < b; s++) { kv.len[s] = d; seq[s] = s; tok[s] = (7 * s + 3) % m.cfg.vocab; }
                double s0 = now_sec();
                for (int g = 0; g < ngen && !rc; g++) {
                    for (int s = 0; s < b; s++) pos[s] = d + g;
                    rc = model_forward(&m, &kv, b, tok, seq, pos, NULL, lg, NULL, &e);
                    for (int s = 0; s < b; s++) {       /* greedy, as a real decode would */
                        const float *row = lg + (int64_t)s * m.cfg.vocab;
                        int best = 0;
                        for (int v = 1; v < m.cfg.vocab; v++) if (row[v] > row[best]) best = v;
                        tok[s] = best;
                    }
                }
                if (r >= 0) t[r] = (now_sec() - s0) / ngen;
            }
            if (rc) fprintf(stderr, "effbench: %s\n", e.msg);
            else {
                double step = median(t, nr), ctx = d + ngen / 2.0;
                double by = bytes_per_step(&m, &kv, b, ctx);
                double fl = b * flops_per_token(&m, ctx);
                Row r = { .kind = 'g', .b = b, .d = d, .n = ngen, .tps = b / step, .ms = 1e3 * step, .flops = fl,
                          .bytes = by, .secs = step };
                if (nrows < 256) rows[nrows++] = r;
            }
            free(tok); free(seq); free(pos); free(lg);
            kv_free(&kv);
        }
    }
    if (!rc) {
        double bw2 = stream_triad_gbs((size_t)o->stream_mib, 5), rbw2 = read_gbs((size_t)o->stream_mib, 5);
        double gemm2 = sgemm_gflops(&m, maxp, reps), peak2 = mroof == maxp ? gemm2 : sgemm_gflops(&m, mroof, reps);
        fprintf(stderr, "effbench: limits before/after: triad %.2f/%.2f GB/s, read %.2f/%.2f GB/s, SGEMM %.1f/%.1f GFLOP/s "
                "(M=%d), %.1f/%.1f (M=%d)\n", bw, bw2, rbw, rbw2, gemm, gemm2, maxp, peak, peak2, mroof);
        if (bw2 > bw) bw = bw2;
        if (rbw2 > rbw) rbw = rbw2;
        if (gemm2 > gemm) gemm = gemm2;
        if (peak2 > peak) peak = peak2;
    }
    printf("model %s, %d layers%s, weights %s %.3f GB, threads %d, backend cpu, %s\n\n",
           m.cfg.model_type, m.cfg.n_layers, o->load.layers ? " (cut)" : "", dtype_name(m.wdtype),
           m.weight_bytes / 1e9, threads, m.cfg.is_mla ? (o->load.naive_mla ? "naive MLA" : "absorbed MLA") : "dense attention");
    printf("machine: STREAM triad %.2f GB/s, read-only %.2f GB/s (best of 5, %d MiB arrays); "
           "OpenBLAS SGEMM on this model's shapes (its own threads) %.1f GFLOP/s at M=%d, %.1f at M=%d\n\n",
           bw, rbw, o->stream_mib, gemm, maxp, peak, mroof);
    printf("| test | tokens/s | ms/step | GFLOP/s | GB/s | bound | roofline tokens/s | of roofline | of read-only BW |\n");
    printf("|---|---:|---:|---:|---:|---|---:|---:|---:|\n");
    for (int i = 0; i < nrows; i++) {
        const Row *r = &rows[i];
        if (r->kind == 'p') {
            double gf = r->flops / r->secs / 1e9;
            printf("| pp%d | %.1f | %.2f | %.1f | | compute | %.1f | %.0f%% | |\n", r->p, r->tps, r->ms, gf,
                   r->p / (r->flops / (gemm * 1e9)), 100 * gf / gemm);
        } else {
            double gbs = r->bytes / r->secs / 1e9;
            double tmem = r->bytes / (bw * 1e9), tcomp = r->flops / (peak * 1e9), troof = tmem > tcomp ? tmem : tcomp;
            printf("| tg%d b%d @ d%d | %.1f | %.2f | %.1f | %.2f | %s | %.1f | %.0f%% | %.0f%% |\n", r->n, r->b, r->d, r->tps,
                   r->ms, r->flops / r->secs / 1e9, gbs, tmem > tcomp ? "memory" : "compute", r->b / troof,
                   100 * troof / r->secs, 100 * gbs / rbw);
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\npeak RSS %.3f GB; weights %.3f GB + float32 kv_b %.3f GB + largest KV cache %.3f GB.\n"
           "Prefill roofline: SGEMM at M = prefill length. Decode roofline time per step = max(bytes read / STREAM triad, FLOPs / SGEMM at M=%d); bytes read = weights touched "
           "(all but the unselected experts; expected distinct experts for a batch) + KV cache; medians of %d runs after %d warm-up.\n",
           ru.ru_maxrss / 1e6 * 1.024, m.weight_bytes / 1e9, m.derived_bytes / 1e9, peak_kv / 1e9, mroof, reps, o->warmup);
    free(pp); free(bb); free(dd);
    model_free(&m);
    return rc;
}
