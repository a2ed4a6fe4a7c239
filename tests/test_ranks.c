/*
 * test_ranks.c - one model split over ranks (layout.h) against the same model whole.
 * Run under mpirun: `mpirun -np N effbench-tests ranks` (tests/run.sh does, N = 2 and
 * 4). Every rank loads the whole model and its share of it and runs both:
 *   - the split logits equal the whole model's within 1e-5 (the all-reduces add the
 *     ranks' partial sums in another order: float32 rounding, ~1e-7 here) and the
 *     golden logits within 1e-4 (the goldens' own tolerance);
 *   - the routing (experts and weights) is the same, the 8 greedy tokens are the
 *     golden ones;
 *   - the bytes each rank's collectives counted equal layout_predict's for the routing
 *     of the step, exactly, kind by kind; and the prediction for a routing with one
 *     slot moved to another rank's expert differs (the comparison can fail).
 * A test fails on every rank when it failed on any (comm_sum_i64 of the failures).
 */
#include "test.h"
#include "comm.h"
#include "engine.h"
#include "backend.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

Comm *g_ranks;                   /* the group, set by `effbench-tests ranks` */

/* this test failed on some rank: say so on those that saw nothing */
static void agree(void) {
    int64_t f = t_failed() > 0;
    Err e = { "" };
    if (comm_sum_i64(g_ranks, &f, 1, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    if (f && !t_failed()) t_fail(__FILE__, __LINE__, "failed on %lld other rank(s) (their lines are on stderr)", (long long)f);
}

typedef struct {
    float *logits;               /* (n_prompt, V) */
    int *experts;                /* (L, n_prompt, K) */
    float *weights;
    int next[8];                 /* greedy continuation */
    CommStats prefill;           /* what the prefill's collectives counted */
    CommStats decode;            /* and one decode step's (the first) */
} Run;

static int run_model(Model *m, const Case *c, Run *r) {
    const ModelConfig *cf = &m->cfg;
    int n = c->n_prompt, K = cf->top_k > 0 ? cf->top_k : 1, V = cf->vocab;
    KVCache kv;
    Err e = { "" };
    if (kv_create(&kv, m, 1, 64, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return -1; }
    int *seq = calloc((size_t)n, sizeof(int)), *pos = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) pos[i] = i;
    r->logits = malloc(sizeof(float) * (size_t)n * V);
    r->experts = malloc(sizeof(int) * (size_t)cf->n_layers * n * K);
    r->weights = malloc(sizeof(float) * (size_t)cf->n_layers * n * K);
    Trace tr = { NULL, r->experts, r->weights };
    CommStats before = m->comm ? m->comm->st : (CommStats){ 0 };
    int rc = model_forward(m, &kv, n, c->prompt, seq, pos, NULL, r->logits, &tr, &e);
    if (m->comm) {
        for (int k = 0; k < CK_COUNT; k++) {
            r->prefill.sent[k] = m->comm->st.sent[k] - before.sent[k];
            r->prefill.recv[k] = m->comm->st.recv[k] - before.recv[k];
        }
    }
    float *row = malloc(sizeof(float) * (size_t)V);
    const float *last = r->logits + (size_t)(n - 1) * V;
    for (int i = 0; i < 8 && !rc; i++) {
        int best = 0;
        const float *l = i == 0 ? last : row;
        for (int v = 1; v < V; v++) if (l[v] > l[best]) best = v;
        r->next[i] = best;
        if (i == 7) break;
        int p = n + i, s0 = 0;
        before = m->comm ? m->comm->st : (CommStats){ 0 };
        rc = model_forward(m, &kv, 1, &best, &s0, &p, NULL, row, NULL, &e);
        if (m->comm && i == 0)
            for (int k = 0; k < CK_COUNT; k++) {
                r->decode.sent[k] = m->comm->st.sent[k] - before.sent[k];
                r->decode.recv[k] = m->comm->st.recv[k] - before.recv[k];
            }
    }
    if (rc) t_fail(__FILE__, __LINE__, "%s", e.msg);
    free(row); free(seq); free(pos);
    kv_free(&kv);
    return rc;
}

static void run_free(Run *r) { free(r->logits); free(r->experts); free(r->weights); }

/* measured (st) against predicted for this rank, kind by kind, exactly */
static int bytes_match(const CommStats *st, const double *sent, const double *recv, int rank, const char *what, int report) {
    int ok = 1;
    for (int k = 0; k < CK_CONTROL; k++) {
        double ps = sent[(size_t)rank * CK_COUNT + k], pr = recv[(size_t)rank * CK_COUNT + k];
        if (st->sent[k] != ps || st->recv[k] != pr) {
            ok = 0;
            if (report)
                t_fail(__FILE__, __LINE__, "rank %d %s %s: measured %.0f sent / %.0f received bytes, predicted %.0f / %.0f", rank, what,
                       comm_kind_name(k), st->sent[k], st->recv[k], ps, pr);
        }
    }
    return ok;
}

static void check_case(const char *rel, int tp, int ep) {
    Case c;
    if (case_load(rel, &c)) { agree(); return; }
    Comm *g = g_ranks;
    LoadOpts whole = { 0 }, split = { .ranks = g->size, .rank = g->rank, .tp = tp, .ep = ep };
    Model mw, ms;
    Err e = { "" };
    if (model_load(&mw, c.dir, &whole, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); case_free(&c); agree(); return; }
    int bad = model_load(&ms, c.dir, &split, &e);
    if (bad) t_fail(__FILE__, __LINE__, "%s", e.msg);
    if (comm_agree(g, bad, &e)) { if (!bad) model_free(&ms); model_free(&mw); case_free(&c); agree(); return; }
    ms.comm = g;
    const ModelConfig *cf = &mw.cfg;
    int n = c.n_prompt, V = cf->vocab, K = cf->top_k > 0 ? cf->top_k : 1;
    Run rw = { 0 }, rs = { 0 };
    if (!run_model(&mw, &c, &rw) && !run_model(&ms, &c, &rs)) {
        size_t w;
        float d = max_abs_diff(rs.logits, rw.logits, (size_t)n * V, &w);
        CHECK(d <= 1e-5f, "%s: split logits differ from the whole model's by %g at %zu (tolerance 1e-5)", rel, d, w);
        size_t ng;
        char gp[1100];
        snprintf(gp, sizeof gp, "%s/logits.f32", c.dir);
        float *gl = read_f32(gp, &ng);
        if (gl && ng == (size_t)n * V) {
            float dg = max_abs_diff(rs.logits, gl, ng, &w);
            CHECK(dg <= 1e-4f, "%s: split logits differ from the golden ones by %g at %zu (tolerance 1e-4)", rel, dg, w);
        } else CHECK(0, "%s: cannot read %s", rel, gp);
        free(gl);
        /* the same experts; weights within 1e-6 (softmax/sigmoid of router logits that the split
           model computes from hidden states differing by ~1e-7: a few float32 ulps) */
        int nr = cf->n_routed ? cf->n_layers * n * K : 0, same = 1;
        for (int i = 0; i < nr; i++) same &= rs.experts[i] == rw.experts[i] && fabsf(rs.weights[i] - rw.weights[i]) <= 1e-6f;
        CHECK(same, "%s: the split model routes otherwise than the whole one", rel);
        for (int i = 0; i < c.n_cont && i < 8; i++)
            CHECK(rs.next[i] == c.cont[i], "%s: greedy token %d is %d, golden %d", rel, i, rs.next[i], c.cont[i]);
        /* bytes: prefill (n tokens, n logits rows), then a decode step (1 token) */
        size_t cells = (size_t)g->size * CK_COUNT;
        double *ps = calloc(cells, sizeof(double)), *pr = calloc(cells, sizeof(double));
        layout_predict(cf, &ms.sh, n, n, cf->n_routed ? rs.experts : NULL, ps, pr);
        bytes_match(&rs.prefill, ps, pr, g->rank, "prefill", 1);
        if (cf->n_routed && ms.sh.ep > 1) {
            /* the tester tested: one slot of the first MoE layer moved to the next rank's expert */
            int *moved = malloc(sizeof(int) * (size_t)nr);
            memcpy(moved, rs.experts, sizeof(int) * (size_t)nr);
            int l = cf->first_k_dense, per = cf->n_routed / g->size;
            int *slot = moved + (size_t)l * n * K;
            slot[0] = (slot[0] + per) % cf->n_routed;
            double *qs = calloc(cells, sizeof(double)), *qr = calloc(cells, sizeof(double));
            layout_predict(cf, &ms.sh, n, n, moved, qs, qr);
            int differs = 0;
            for (size_t i = 0; i < cells; i++) differs |= qs[i] != ps[i] || qr[i] != pr[i];
            CHECK(differs, "%s: moving a slot to another rank's expert left the predicted bytes unchanged", rel);
            free(moved); free(qs); free(qr);
        }
        /* decode: the routing of the step is not traced; dense or TP-only layouts are
         * routing-free, and EP layers are checked through their gather, all-reduces and head */
        layout_predict(cf, &ms.sh, 1, 1, NULL, ps, pr);
        if (!(cf->n_routed && ms.sh.ep > 1)) bytes_match(&rs.decode, ps, pr, g->rank, "decode step", 1);
        else {
            int r = g->rank;
            CHECK(rs.decode.sent[CK_GATHER] == ps[(size_t)r * CK_COUNT + CK_GATHER] &&
                  rs.decode.recv[CK_HEAD] == pr[(size_t)r * CK_COUNT + CK_HEAD] &&
                  rs.decode.sent[CK_ATTN] == ps[(size_t)r * CK_COUNT + CK_ATTN],
                  "%s decode step: gather %.0f / head %.0f / attention %.0f bytes, predicted %.0f / %.0f / %.0f", rel,
                  rs.decode.sent[CK_GATHER], rs.decode.recv[CK_HEAD], rs.decode.sent[CK_ATTN], ps[(size_t)r * CK_COUNT + CK_GATHER],
                  pr[(size_t)r * CK_COUNT + CK_HEAD], ps[(size_t)r * CK_COUNT + CK_ATTN]);
        }
        free(ps); free(pr);
    }
    run_free(&rw); run_free(&rs);
    model_free(&ms);
    model_free(&mw);
    case_free(&c);
    agree();
}

static void t_v3(void) { check_case("deepseek/v3-tiny", 0, 0); }
static void t_v3_ep_only(void) { check_case("deepseek/v3-tiny", 1, 0); }
static void t_v3_tp_only(void) { check_case("deepseek/v3-tiny", 0, 1); }
static void t_v3_yarn(void) { check_case("deepseek/v3-tiny-yarn", 0, 0); }
static void t_v2(void) { check_case("deepseek/v2-lite-tiny", 0, 0); }
static void t_llama(void) { check_case("dense/llama-tiny", 0, 0); }
static void t_qwen2(void) { check_case("dense/qwen2-tiny", 0, 0); }
static void t_mixtral(void) { check_case("dense/mixtral-tiny", 0, 0); }
static void t_mixtral_tp(void) { check_case("dense/mixtral-tiny", 0, 1); }

/* a layout that cannot split the model is refused with the dimension that does not divide */
static void t_refused(void) {
    Case c;
    if (case_load("deepseek/v3-tiny", &c)) { agree(); return; }
    LoadOpts o = { .ranks = 3, .rank = 0 };
    Model m;
    Err e = { "" };
    int rc = model_load(&m, c.dir, &o, &e);
    CHECK(rc != 0 && strstr(e.msg, "experts do not divide"), "3 ranks over 8 experts: rc %d, \"%s\"", rc, e.msg);
    if (!rc) model_free(&m);
    case_free(&c);
    agree();
}

/* A rank that does not answer: the others' wait ends at the deadline with a line naming
 * the collective (rank 1 joins late, so the group stays usable for the tests after). */
static void t_timeout(void) {
    Comm *g = g_ranks;
    if (g->size < 2) { t_skip("needs two ranks or more"); agree(); return; }
    double keep = g->timeout;
    float x[4] = { 1, 2, 3, 4 };
    Err e = { "" };
    if (g->rank == 0) {
        g->timeout = 0.3;
        double t0 = now_sec();
        int rc = comm_allreduce(g, CK_CONTROL, x, 4, &e);
        double dt = now_sec() - t0;
        CHECK(rc != 0 && strstr(e.msg, "no answer") && strstr(e.msg, "all-reduce"), "rc %d after %.2f s: \"%s\"", rc, dt, e.msg);
        CHECK(dt < 1.2, "the wait took %.2f s with a 0.3 s deadline", dt);
    } else {
        struct timespec ts = { 1, 500000000 };
        nanosleep(&ts, NULL);
        CHECK(comm_allreduce(g, CK_CONTROL, x, 4, &e) == 0, "%s", e.msg);
    }
    g->timeout = keep;
    agree();
}

#ifdef EFFBENCH_CUDA
/* Every rank has a GPU of its own (NCCL refuses two ranks on one GPU; the emulator gives
 * each process its own emulated GPU). why: the reason when not. */
static int gpus_for_all(char *why, size_t len) {
    int have = cuda_available(why, len);
#ifndef EFFBENCH_EMU
    int n = have ? cuda_device_count() : 0;
    if (have && comm_local_rank(g_ranks) >= n) {
        snprintf(why, len, "%d GPU(s) on the host for more ranks than that", n);
        have = 0;
    }
#endif
    int64_t all = have;
    Err e = { "" };
    comm_sum_i64(g_ranks, &all, 1, &e);
    return all == g_ranks->size;
}

/* The GPU step split over the ranks (one GPU each; on the CUDA emulator, several
 * emulated GPUs whose NCCL calls travel over MPI): golden logits within 1e-4 (the
 * emulated GPU tests' tolerance), the whole CPU model's routing, the golden greedy
 * tokens, and the bytes the NCCL collectives counted equal layout_predict's exactly. */
static void gpu_case(const char *rel) {
    Case c;
    char why[256] = "";
    Err e = { "" };
    if (!gpus_for_all(why, sizeof why)) { t_skip("no GPU for every rank (%s)", why); agree(); return; }
    if (case_load(rel, &c)) { agree(); return; }
    Comm *g = g_ranks;
    LoadOpts split = { .ranks = g->size, .rank = g->rank }, whole = { 0 };
    Model ms, mw;
    if (model_load(&mw, c.dir, &whole, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); case_free(&c); agree(); return; }
    int bad = model_load(&ms, c.dir, &split, &e);
    if (bad) t_fail(__FILE__, __LINE__, "%s", e.msg);
    if (comm_agree(g, bad, &e)) { if (!bad) model_free(&ms); model_free(&mw); case_free(&c); agree(); return; }
    ms.comm = g;
    Run rw = { 0 };
    run_model(&mw, &c, &rw);
    const ModelConfig *cf = &ms.cfg;
    int n = c.n_prompt, V = cf->vocab, K = cf->top_k > 0 ? cf->top_k : 1, L = cf->n_layers;
    EngineOpts eo = { .backend = BACKEND_CUDA, .gpu_dtype = DT_F32 };
    Engine *en = NULL;
    int rc = engine_open(&en, &ms, &eo, 1, 64, 16, &e);
    if (rc) t_fail(__FILE__, __LINE__, "rank %d: %s", g->rank, e.msg);
    if (comm_agree(g, rc, &e) == 0) {
        float *lg = malloc(sizeof(float) * (size_t)n * V);
        int *ex = malloc(sizeof(int) * (size_t)L * n * K);
        float *wt = malloc(sizeof(float) * (size_t)L * n * K);
        int *seq = calloc((size_t)n, sizeof(int)), *pos = malloc(sizeof(int) * (size_t)n);
        for (int i = 0; i < n; i++) pos[i] = i;
        Trace tr = { NULL, ex, wt };
        CommStats before = g->st;
        rc = engine_step(en, n, c.prompt, seq, pos, NULL, lg, NULL, &tr, &e);
        CHECK(!rc, "rank %d: %s", g->rank, e.msg);
        if (!rc) {
            char gp[1100];
            size_t ng, w;
            snprintf(gp, sizeof gp, "%s/logits.f32", c.dir);
            float *gl = read_f32(gp, &ng);
            float d = gl && ng == (size_t)n * V ? max_abs_diff(lg, gl, ng, &w) : INFINITY;
            CHECK(d <= 1e-4f, "%s: split GPU logits differ from the golden ones by %g (tolerance 1e-4)", rel, d);
            free(gl);
            int same = 1;
            for (int i = 0; cf->n_routed && i < L * n * K; i++) same &= ex[i] == rw.experts[i];
            CHECK(same, "%s: the split GPU step routes otherwise than the whole CPU model", rel);
            CommStats got = { 0 };
            for (int k = 0; k < CK_COUNT; k++) { got.sent[k] = g->st.sent[k] - before.sent[k]; got.recv[k] = g->st.recv[k] - before.recv[k]; }
            size_t cells = (size_t)g->size * CK_COUNT;
            double *ps = calloc(cells, sizeof(double)), *pr = calloc(cells, sizeof(double));
            layout_predict(cf, &ms.sh, n, n, cf->n_routed ? ex : NULL, ps, pr);
            bytes_match(&got, ps, pr, g->rank, "GPU prefill", 1);
            free(ps); free(pr);
            /* greedy continuation, token by token through the paged cache */
            int next = 0, p = n, s0 = 0;
            int last = 0;
            for (int v = 1; v < V; v++) if (lg[(size_t)(n - 1) * V + v] > lg[(size_t)(n - 1) * V + last]) last = v;
            next = last;
            for (int i = 0; i < 8 && i < c.n_cont && !rc; i++) {
                CHECK(next == c.cont[i], "%s: GPU greedy token %d is %d, golden %d", rel, i, next, c.cont[i]);
                if (i == 7) break;
                int tok = next;
                rc = engine_step(en, 1, &tok, &s0, &p, NULL, NULL, &next, NULL, &e);
                CHECK(!rc, "rank %d: %s", g->rank, e.msg);
                p++;
            }
        }
        free(lg); free(ex); free(wt); free(seq); free(pos);
    }
    engine_close(en);
    run_free(&rw);
    model_free(&ms);
    model_free(&mw);
    case_free(&c);
    agree();
}
/* The NCCL group's collectives on device buffers, against the values each rank can
 * compute for itself: an all-reduce, an all-gather of unequal parts, an all-to-all
 * with counts that differ by pair (rank i sends rank j (i + 2j + 1) floats). */
static void t_nccl(void) {
    char why[256] = "";
    Err e = { "" };
    if (!gpus_for_all(why, sizeof why)) { t_skip("no GPU for every rank (%s)", why); agree(); return; }
    Comm *g = g_ranks, *nc = NULL;
    int N = g->size, r = g->rank;
    int rc = cuda_set_device(comm_local_rank(g)) || comm_nccl_open(&nc, g, &e);
    CHECK(!rc, "rank %d: %s %s", r, e.msg, cuda_error());
    if (comm_agree(g, rc, &e)) { comm_close(nc); agree(); return; }
    enum { M = 64 };
    size_t nsend = 0, nrecv = 0, sb[64], rb[64], gb[64], ng = 0;
    for (int j = 0; j < N; j++) {
        sb[j] = sizeof(float) * (size_t)(r + 2 * j + 1); nsend += sb[j];
        rb[j] = sizeof(float) * (size_t)(j + 2 * r + 1); nrecv += rb[j];
        gb[j] = sizeof(float) * (size_t)(j + 1); ng += gb[j];
    }
    float *h = malloc(nsend + nrecv + ng + sizeof(float) * M), *want = malloc(nrecv + ng + sizeof(float) * M);
    float *d = cuda_malloc(sizeof(float) * M), *ds = cuda_malloc(nsend), *dr = cuda_malloc(nrecv), *dg = cuda_malloc(ng);
    /* all-reduce: element i of rank j is j * 100 + i */
    for (int i = 0; i < M; i++) { h[i] = (float)(r * 100 + i); want[i] = (float)(N * (N - 1) / 2 * 100 + N * i); }
    rc = cuda_to_device(d, h, sizeof(float) * M) || comm_allreduce(nc, CK_CONTROL, d, M, &e) || cuda_to_host(h, d, sizeof(float) * M);
    for (int i = 0; !rc && i < M; i++) CHECK(h[i] == want[i], "rank %d all-reduce [%d]: %g, want %g", r, i, h[i], want[i]);
    /* all-to-all: the k-th float rank i sends rank j is 1000 i + 10 j + k */
    float *hs = h, *hr = h + nsend / sizeof(float);
    for (int j = 0, o = 0; j < N; j++) for (size_t k = 0; k < sb[j] / sizeof(float); k++) hs[o++] = (float)(1000 * r + 10 * j + (int)k);
    rc = rc || cuda_to_device(ds, hs, nsend) || comm_alltoallv(nc, CK_DISPATCH, ds, sb, dr, rb, &e) || cuda_to_host(hr, dr, nrecv);
    for (int j = 0, o = 0; !rc && j < N; j++)
        for (size_t k = 0; k < rb[j] / sizeof(float); k++, o++)
            CHECK(hr[o] == (float)(1000 * j + 10 * r + (int)k), "rank %d all-to-all from %d [%zu]: %g", r, j, k, hr[o]);
    /* all-gather: rank j gives j + 1 floats of value j */
    size_t mine = 0;
    for (int j = 0; j < r; j++) mine += gb[j];
    for (size_t k = 0; k < gb[r] / sizeof(float); k++) h[k] = (float)r;
    rc = rc || cuda_to_device((char *)dg + mine, h, gb[r]) || comm_allgatherv(nc, CK_GATHER, (char *)dg + mine, dg, gb, &e) ||
         cuda_to_host(h, dg, ng);
    for (int j = 0, o = 0; !rc && j < N; j++)
        for (size_t k = 0; k < gb[j] / sizeof(float); k++, o++) CHECK(h[o] == (float)j, "rank %d all-gather part %d: %g", r, j, h[o]);
    CHECK(!rc, "rank %d: %s %s", r, e.msg, cuda_error());
    cuda_free(d); cuda_free(ds); cuda_free(dr); cuda_free(dg);
    free(h); free(want);
    comm_close(nc);
    agree();
}

#else
static void gpu_case(const char *rel) { (void)rel; t_skip("built without the CUDA backend"); agree(); }
static void t_nccl(void) { t_skip("built without the CUDA backend"); agree(); }
#endif

static void t_gpu_v3(void) { gpu_case("deepseek/v3-tiny"); }
static void t_gpu_llama(void) { gpu_case("dense/llama-tiny"); }
static void t_gpu_mixtral(void) { gpu_case("dense/mixtral-tiny"); }
static void t_gpu_qwen2(void) { gpu_case("dense/qwen2-tiny"); }

const TestDef rank_tests[] = {
    { "ranks: v3-tiny, default layout (tp N, ep N)", t_v3 },
    { "ranks: v3-tiny, --tp 1 (experts split only)", t_v3_ep_only },
    { "ranks: v3-tiny, --ep 1 (every expert split by columns)", t_v3_tp_only },
    { "ranks: v3-tiny-yarn", t_v3_yarn },
    { "ranks: v2-lite-tiny", t_v2 },
    { "ranks: llama-tiny (GQA heads split)", t_llama },
    { "ranks: qwen2-tiny (biases, tied embeddings)", t_qwen2 },
    { "ranks: mixtral-tiny (ep N)", t_mixtral },
    { "ranks: mixtral-tiny, --ep 1", t_mixtral_tp },
    { "ranks: an undividable layout refused", t_refused },
    { "ranks: GPU, NCCL collectives on device buffers", t_nccl },
    { "ranks: GPU step, v3-tiny (tp N, ep N over NCCL)", t_gpu_v3 },
    { "ranks: GPU step, llama-tiny (tp N)", t_gpu_llama },
    { "ranks: GPU step, mixtral-tiny (ep N)", t_gpu_mixtral },
    { "ranks: GPU step, qwen2-tiny (tied embeddings, vocabulary split)", t_gpu_qwen2 },
    { "ranks: a rank that does not answer ends the wait", t_timeout },
};
const int n_rank_tests = sizeof rank_tests / sizeof *rank_tests;
