/*
 * runner.c - `effbench run [SUITE.json] [-o DIR] [--resume]`: every cell of a suite.
 *
 * A cell is (measured model, workload, backend, test): one prefill length, or one
 * decode batch size. Before measuring, the output directory is created and probed
 * for writing, and the tables that need no measuring are written: analytic.csv and
 * kv.csv (every model through the analytic model), cost.csv (the training-cost
 * scenarios), published.csv (published.json as rows) and skipped.csv (optional models
 * whose checkpoint is missing). Each finished cell is appended to results.csv by
 * rewriting it atomically (temporary file, fsync, rename), so a run killed at any
 * point keeps every finished cell and no partial row; --resume reads results.csv back
 * and runs only the missing cells. SIGINT stops at the next repetition boundary and
 * says what was kept. Then the suite's evals go to evals.csv, the points of the
 * accuracy charts to accuracy.csv, and the report (summary.md and charts) is rendered
 * from the CSV files alone: every figure it shows is computed here.
 *
 * Ranks (mpirun -np N, srun -n N: cli_comm has N ranks). Rank 0 alone reads and writes
 * the output directory (no file system is assumed shared but rank 0's): it reads
 * results.csv and evals.csv for --resume and sends every rank which cells and evals are
 * done; it alone prints (progress, failures, the closing line); ranks > 0 print nothing
 * on stdout and keep their messages for rank 0. The suite's "ranks" says how the cells
 * use the ranks:
 *   spread (default)  each model with work goes whole to one rank (the least loaded, in
 *                     suite order, counting its cells and evals), which loads it once
 *                     (LoadOpts.ranks 0, Model.comm NULL) and runs its cells and its evals.
 *                     After each unit (a model's load and limits, a cell, an eval) the
 *                     ranks meet in a round: ranks > 0 send their new rows, machine.csv
 *                     rows, messages and counts; rank 0 writes them (atomically, as its
 *                     own) and says the messages, naming the rank. A rank whose units are
 *                     done keeps meeting the others until all are. Ranks sharing a host
 *                     share its cores and memory bandwidth: each row is one rank's figures.
 *   split             every cell and eval runs on all ranks together: each loads its
 *                     share (LoadOpts.ranks N, the model's "tp"/"ep"), Model.comm is the
 *                     group, and each step that may fail on some ranks (a load, a cell's
 *                     engine, its measurement, an eval) is agreed: a failure anywhere
 *                     skips the cell on all, rank 0 saying the lowest failing rank's reason.
 *                     Rank 0 writes the rows: its step time (the ranks step together),
 *                     the model's parameters, what rank 0 holds (weight and KV bytes,
 *                     memory) and its own limits; the FLOP, byte and roofline columns are
 *                     left empty (a rank's share is not the step's work), in evals.csv
 *                     too; the columns ranks and layout ("tp2 ep2") say the split, and
 *                     comm_* the step's collectives (measure_comm: the step once more,
 *                     counted), each rank's by kind in comm.csv beside the prediction.
 * One rank (no mpirun) runs as always; its rows say ranks 1, layout "whole" (not "-",
 * which the CSV writer's formula guard would store as "'-"); --resume reads a results.csv
 * from before these columns as rows of one rank, and writes it back with them. Every wait
 * is a comm_* collective with comm.h's deadline (EFFBENCH_COMM_TIMEOUT, 300 s): in spread
 * mode a round waits for the longest unit running on another rank, which must stay under
 * it. SIGINT/SIGTERM: spread ranks stop at the next repetition and all stop at the next
 * round; split ranks finish the cell (a rank leaving a step alone would strand the
 * others in its collectives), then stop together. --profile traces rank 0's cells only.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "backend.h"
#include "profile.h"
#include "analytic.h"
#include "cost.h"
#include "eval.h"
#include "measure.h"
#include "report.h"
#include "suite.h"
#include "table.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef EFFBENCH_COMMIT
#define EFFBENCH_COMMIT "unknown"
#endif
#ifndef EFFBENCH_CFLAGS
#define EFFBENCH_CFLAGS ""
#endif

static volatile sig_atomic_t interrupted, split_signals;
/* SIGINT/SIGTERM: one rank, or spread: the cell running stops at its next repetition
 * boundary. Split: the cell runs to its end on every rank (a rank leaving a step alone
 * would leave the others waiting in its collectives); the ranks then agree to stop. */
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
    if (!split_signals) measure_stop = 1;
}

/* ---- the tables that need no measuring ------------------------------------------------ */
/* A model's config: its config.json with the suite's overrides, or a GGUF file's
 * metadata (through the engine's loader, shapes only: no weights read). */
static int model_config(const SuiteModel *sm, ModelConfig *c, Err *e) {
    if (sm->gguf) {
        Model m;
        LoadOpts lo = { .dummy = 1, .shapes_only = 1 };
        if (model_load(&m, sm->checkpoint, &lo, e)) return -1;
        *c = m.cfg;
        model_free(&m);
        return 0;
    }
    char *txt = suite_model_config_json(sm, e);
    if (!txt) return -1;
    int rc = config_parse(txt, sm->config, c, e);
    free(txt);
    return rc;
}

/* writes t to dir/name; frees t */
static int put_table(const char *dir, const char *name, Table *t, Err *e) {
    char *p = xasprintf("%s/%s", dir, name);
    int rc = csv_table_write(p, t, e);
    free(p);
    table_free(t);
    return rc;
}

/* adds a row of n strings and frees them */
static void add_owned(Table *t, char **v, int n) {
    table_add(t, (const char *const *)v);
    for (int i = 0; i < n; i++) free(v[i]);
}

#define CTX_REF 4096.0           /* context of the per-token figures in analytic.csv */
#define CTX_LONG 131072.0        /* context of the summary's KV-cache column */

/* analytic.csv (every model present) and kv.csv (the real models: no scaled_from) */
static int write_analytic(const Suite *s, const ModelConfig *cfg, const char *dir, Err *e) {
    static const char *cols[] = { "model", "scaled_from", "model_type", "params_total", "params_active", "params_embedding",
                                  "kv_bytes_per_token", "kv_dtype", "ctx", "flops_per_token", "attn_flops_per_token_per_ctx",
                                  "bytes_per_decode_token", "weight_dtype", "moe_layers", "kv_gib_per_sequence_at_128k",
                                  "config", "source" };
    enum { NC = sizeof cols / sizeof cols[0] };
    static const char *kcols[] = { "model", "ctx", "kv_bytes_per_sequence", "kv_gib_per_sequence" };
    Table t, k;
    table_init(&t, NC, cols);
    table_init(&k, 4, kcols);
    for (int i = 0; i < s->n_models; i++) {
        const SuiteModel *sm = &s->models[i];
        if (sm->missing) continue;
        const ModelConfig *c = &cfg[i];
        Analytic a;
        analytic_compute(c, &a);
        double kv = a.kv_elems_per_token * 2;          /* BF16 cache */
        char *v[NC] = {
            xstrdup(sm->name), xstrdup(sm->scaled_from), xstrdup(c->model_type), xasprintf("%.0f", a.params_total),
            xasprintf("%.0f", a.params_active), xasprintf("%.0f", a.params_embedding), xasprintf("%.0f", kv), xstrdup("BF16"),
            xasprintf("%.0f", CTX_REF), xasprintf("%.6g", analytic_flops_per_token(&a, CTX_REF)),
            xasprintf("%.6g", a.attn_flops_per_ctx), xasprintf("%.6g", analytic_bytes_per_decode_token(&a, c, CTX_REF, 2, 2)),
            xstrdup("BF16"), xasprintf("%d", a.n_moe_layers), xasprintf("%.6g", kv * CTX_LONG / 1073741824.0),
            xstrdup(sm->gguf ? sm->checkpoint : sm->config),
            xstrdup(sm->gguf ? "analytic (from the GGUF metadata)" : "analytic (from config.json)") };
        add_owned(&t, v, NC);
        if (sm->scaled_from[0]) continue;               /* the chart shows the real models */
        for (int j = 0; j < s->n_ctx; j++) {
            double b = kv * s->ctx_lengths[j];
            char *r[4] = { xstrdup(sm->name), xasprintf("%.0f", s->ctx_lengths[j]), xasprintf("%.0f", b),
                           xasprintf("%.6g", b / 1073741824.0) };
            add_owned(&k, r, 4);
        }
    }
    int rc = put_table(dir, "analytic.csv", &t, e);
    if (rc) { table_free(&k); return rc; }
    return put_table(dir, "kv.csv", &k, e);
}

/* cost.csv: each scenario whose model is present */
static int write_cost(const Suite *s, const ModelConfig *cfg, const char *dir, Err *e) {
    static const char *cols[] = { "label", "model", "tokens", "seq_len", "gpu", "precision", "peak_flops", "train_flops",
                                  "gpu_hours", "gpu_hours_given", "mfu", "mfu_given", "gpus", "days", "usd_per_gpu_hour",
                                  "cost_usd", "source" };
    enum { NC = sizeof cols / sizeof cols[0] };
    Table t;
    table_init(&t, NC, cols);
    for (int i = 0; i < s->n_cost; i++) {
        const CostScenario *cs = &s->cost[i];
        int mi = -1;
        for (int j = 0; j < s->n_models; j++) if (!strcmp(s->models[j].name, cs->model)) mi = j;
        if (mi < 0 || s->models[mi].missing) continue;     /* suite_load checked the name */
        Analytic a;
        analytic_compute(&cfg[mi], &a);
        const Gpu *g = hw_find(s->gpus, s->n_gpus, cs->gpu);
        CostIn in = { cs->tokens, cs->seq_len, cs->fp8, cs->mfu, cs->gpu_hours, cs->gpus, cs->price };
        CostOut r;
        if (cost_estimate(&a, g, &in, &r, e)) { table_free(&t); return err_prefix(e, "%s: cost[%d]", s->path, i); }
        char *v[NC] = {
            xstrdup(cs->label[0] ? cs->label : cs->model), xstrdup(cs->model), xasprintf("%.6g", cs->tokens),
            xasprintf("%.0f", cs->seq_len), xstrdup(g->name), xstrdup(cs->fp8 ? "fp8" : "bf16"), xasprintf("%.6g", r.peak_flops),
            xasprintf("%.6g", r.train_flops), xasprintf("%.6g", r.gpu_hours), xstrdup(cs->gpu_hours > 0 ? "yes" : "no"),
            xasprintf("%.4f", r.mfu), xstrdup(cs->mfu > 0 ? "yes" : "no"), xasprintf("%d", cs->gpus),
            cs->gpus ? xasprintf("%.1f", r.days) : xstrdup(""), xasprintf("%.2f", r.price), xasprintf("%.6g", r.cost_usd),
            xstrdup(cs->source) };
        add_owned(&t, v, NC);
    }
    return put_table(dir, "cost.csv", &t, e);
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}
static char *jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? xasprintf("%.6g", v->valuedouble) : xstrdup("");
}

/* published.csv: the suite's published.json as rows, each labelled "published" */
static int write_published(const Suite *s, const char *dir, Err *e) {
    static const char *cols[] = { "kind", "model", "variant", "benchmark", "metric", "shots", "value", "tokens", "gpu",
                                  "gpu_hours", "train_flops", "cost_usd", "label", "source" };
    enum { NC = sizeof cols / sizeof cols[0] };
    Table t;
    table_init(&t, NC, cols);
    int rc = 0;
    if (s->published[0]) {
        char *txt = read_file(s->published, 16u << 20, NULL, e);
        cJSON *root = txt ? cJSON_Parse(txt) : NULL;
        free(txt);
        if (!root) { table_free(&t); return txt ? err_set(e, "%s: malformed JSON", s->published) : -1; }
        const char *kinds[2] = { "scores", "training" };
        for (int k = 0; k < 2 && !rc; k++) {
            const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, kinds[k]);
            int i = 0;
            for (const cJSON *x = arr ? arr->child : NULL; x && !rc; x = x->next, i++) {
                if (!cJSON_IsObject(x) || !*jstr(x, "model") || !*jstr(x, "source")) {
                    rc = err_set(e, "%s: %s[%d]: needs \"model\" and \"source\"", s->published, kinds[k], i);
                    break;
                }
                if (k == 0 && (!cJSON_IsNumber(cJSON_GetObjectItem(x, "value")) || !*jstr(x, "benchmark"))) {
                    rc = err_set(e, "%s: scores[%d]: needs \"benchmark\" and a numeric \"value\"", s->published, i);
                    break;
                }
                char *v[NC] = { xstrdup(k ? "training" : "score"), xstrdup(jstr(x, "model")), xstrdup(jstr(x, "variant")),
                                xstrdup(jstr(x, "benchmark")), xstrdup(jstr(x, "metric")), jnum(x, "shots"), jnum(x, "value"),
                                jnum(x, "tokens"), xstrdup(jstr(x, "gpu")), jnum(x, "gpu_hours"), jnum(x, "train_flops"),
                                jnum(x, "cost_usd"), xstrdup("published"), xstrdup(jstr(x, "source")) };
                add_owned(&t, v, NC);
            }
        }
        cJSON_Delete(root);
    }
    if (rc) { table_free(&t); return rc; }
    return put_table(dir, "published.csv", &t, e);
}

/* A path for messages: "a/b/../c" as "a/c" (lexically; the path itself is used as given). */
static void path_display(const char *p, char *out, size_t len) {
    char buf[4096], *seg[512];
    int n = 0, abs = p[0] == '/';
    snprintf(buf, sizeof buf, "%s", p);
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < 512; t = strtok_r(NULL, "/", &save)) {
        if (!strcmp(t, ".")) continue;
        if (!strcmp(t, "..") && n > 0 && strcmp(seg[n - 1], "..")) { n--; continue; }
        seg[n++] = t;
    }
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(out + k, len - k, "%s%s", i || abs ? "/" : "", seg[i]);
        if (w < 0 || (size_t)w >= len - k) break;
        k += (size_t)w;
    }
    if (!n) snprintf(out, len, "%s", abs ? "/" : ".");
}

/* skipped.csv: the optional models whose file is missing (removed when there are none),
 * each said once on stderr */
static int write_skipped(const Suite *s, const char *dir, Err *e) {
    static const char *cols[] = { "model", "missing_file", "reason", "fetch_hint" };
    Table t;
    table_init(&t, 4, cols);
    for (int i = 0; i < s->n_models; i++) {
        const SuiteModel *sm = &s->models[i];
        if (!sm->missing) continue;
        char path[4096];
        path_display(suite_model_file(sm), path, sizeof path);
        fprintf(stderr, "effbench: model \"%s\" skipped: %s not found (%s)\n", sm->name, path,
                sm->fetch_hint[0] ? sm->fetch_hint : "an optional model of the suite");
        const char *v[4] = { sm->name, path, "optional; its file is missing", sm->fetch_hint };
        table_add(&t, v);
    }
    if (!t.nrow) {
        char *p = xasprintf("%s/skipped.csv", dir);
        unlink(p);
        free(p);
        table_free(&t);
        return 0;
    }
    return put_table(dir, "skipped.csv", &t, e);
}

static int write_static(const Suite *s, const char *dir, Err *e) {
    ModelConfig *cfg = xcalloc((size_t)s->n_models + 1, sizeof *cfg);
    int rc = 0;
    for (int i = 0; i < s->n_models && !rc; i++)
        if (!s->models[i].missing && model_config(&s->models[i], &cfg[i], e)) rc = err_prefix(e, "model %s", s->models[i].name);
    if (!rc) rc = write_analytic(s, cfg, dir, e);
    if (!rc) rc = write_cost(s, cfg, dir, e);
    if (!rc) rc = write_published(s, dir, e);
    if (!rc) rc = write_skipped(s, dir, e);
    free(cfg);
    return rc;
}

/* ---- cells -------------------------------------------------------------------------- */
typedef struct {
    int model, work, backend;
    char kind;                   /* 'p' or 'g' */
    int batch;
    char key[512], test[64];
} CellDef;

static int build_cells(const Suite *s, CellDef **out) {
    int cap = 16, n = 0;
    CellDef *c = xmalloc(sizeof *c * (size_t)cap);
    for (int m = 0; m < s->n_models; m++) {
        if (!s->models[m].measure || s->models[m].missing) continue;
        for (int w = 0; w < s->n_work; w++)
            for (int b = 0; b < s->n_backends; b++) {
                const Workload *wl = &s->work[w];
                int parts = (wl->prefill ? 1 : 0) + (wl->decode ? wl->n_batch : 0);
                for (int k = 0; k < parts; k++) {
                    if (n == cap) { cap *= 2; c = realloc(c, sizeof *c * (size_t)cap); }
                    CellDef *d = &c[n++];
                    memset(d, 0, sizeof *d);
                    d->model = m; d->work = w; d->backend = b;
                    if (wl->prefill && k == 0) {
                        d->kind = 'p';
                        snprintf(d->test, sizeof d->test, "pp%d", wl->prefill);
                    } else {
                        d->kind = 'g';
                        d->batch = wl->batch[k - (wl->prefill ? 1 : 0)];
                        snprintf(d->test, sizeof d->test, "tg%d b%d @ d%d", wl->decode, d->batch, wl->depth);
                    }
                    snprintf(d->key, sizeof d->key, "%s|%s|%s|%s", s->models[m].name, wl->name, s->backends[b], d->test);
                }
            }
    }
    *out = c;
    return n;
}

static const char *RESULT_COLS[] = {
    "key", "suite", "model", "scaled_from", "workload", "backend", "test", "prompt", "depth", "batch", "steps",
    "reps", "warmup", "tokens_per_s", "median_ms", "min_ms", "max_ms", "sd_ms", "ttft_ms", "tpot_ms", "p50_ms",
    "p90_ms", "p99_ms", "percentile_method", "gflops", "gbs", "flops_per_step", "bytes_per_step",
    "roofline_tokens_per_s", "of_roofline", "bound", "triad_gbs", "read_gbs", "sgemm_gflops", "peak_gflops",
    "params", "weight_bytes", "kv_bytes", "kv_bytes_per_token", "peak_rss_bytes", "weights", "dtype", "threads",
    "ranks", "layout", "comm_bytes_per_step", "comm_predicted_bytes", "comm_share", "kv_dtype", "device", "commit",
    "build_flags", "date", "status"
};
#define N_RESULT_COLS ((int)(sizeof RESULT_COLS / sizeof RESULT_COLS[0]))

/* the weights column: dummy, checkpoint (safetensors) or "gguf TYPE" (as stored in the
 * file; the engine widens quantized types at load) */
static char *weights_kind(const SuiteModel *sm, const Model *m) {
    if (sm->gguf) return xasprintf("gguf %s", m->stored[0] ? m->stored : "?");
    return xstrdup(sm->checkpoint[0] ? "checkpoint" : "dummy");
}

/* removes t's rows whose key is key */
static void drop_rows(Table *t, const char *key) {
    Table k;
    table_init(&k, t->ncol, (const char *const *)t->head);
    const char **row = xmalloc(sizeof *row * (size_t)t->ncol);
    for (int i = 0; i < t->nrow; i++) {
        if (!strcmp(table_get(t, i, "key"), key)) continue;
        for (int c = 0; c < t->ncol; c++) row[c] = table_get(t, i, t->head[c]);
        table_add(&k, row);
    }
    free(row);
    table_free(t);
    *t = k;
}

/* comm.csv: a split cell's step, each rank's collectives by kind, measured beside
 * layout_predict's bytes for uniform routing */
static const char *COMM_COLS[] = { "key", "model", "test", "ranks", "layout", "rank", "kind", "sent_bytes", "received_bytes",
                                   "predicted_sent_bytes", "predicted_received_bytes", "seconds", "step_seconds" };
#define N_COMM_COLS ((int)(sizeof COMM_COLS / sizeof COMM_COLS[0]))

static void add_comm_rows(Table *t, const Suite *s, const CellDef *d, const Cell *c, const char *layout) {
    if (!c->comm_detail) return;
    drop_rows(t, d->key);                        /* a cell measured again (--resume after its row was deleted) */
    for (int r = 0; r < c->ranks; r++)
        for (int k = 0; k < CK_CONTROL; k++) {
            const double *x = c->comm_detail + ((size_t)r * CK_COUNT + (size_t)k) * 5;
            if (x[0] == 0 && x[1] == 0 && x[2] == 0 && x[3] == 0) continue;
            char *v[N_COMM_COLS];
            int n = 0;
            v[n++] = xstrdup(d->key); v[n++] = xstrdup(s->models[d->model].name); v[n++] = xstrdup(d->test);
            v[n++] = xasprintf("%d", c->ranks); v[n++] = xstrdup(layout); v[n++] = xasprintf("%d", r);
            v[n++] = xstrdup(comm_kind_name(k));
            for (int j = 0; j < 4; j++) v[n++] = xasprintf("%.0f", x[j]);
            v[n++] = xasprintf("%.6g", x[4]); v[n++] = xasprintf("%.6g", c->step_sec);
            table_add(t, (const char *const *)v);
            for (int j = 0; j < n; j++) free(v[j]);
        }
}

static void add_row(Table *t, const Suite *s, const CellDef *d, const Model *m, const Cell *c, const Limits *l,
                    const char *device, int ranks, const char *layout) {
    const SuiteModel *sm = &s->models[d->model];
    const Workload *wl = &s->work[d->work];
    int mem;
    double troof = cell_roofline_s(c, l, &mem);
    int ntok = c->kind == 'p' ? c->p : c->b;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    uint64_t kv_per_token = c->kv_bytes / (c->kind == 'p' ? (uint64_t)c->p : (uint64_t)c->b * (uint64_t)(c->d + c->n + 1));
    char *v[N_RESULT_COLS];
    int k = 0;
#define S(x) v[k++] = xstrdup(x)
#define F(...) v[k++] = xasprintf(__VA_ARGS__)
    S(d->key); S(s->name); S(sm->name); S(sm->scaled_from); S(wl->name); S(s->backends[d->backend]); S(d->test);
    F("%d", c->p); F("%d", c->kind == 'g' ? c->d : 0); F("%d", c->kind == 'g' ? c->b : 1); F("%d", c->n);
    F("%d", c->reps); F("%d", wl->warmup);
    F("%.6g", c->tokens_per_s); F("%.6g", 1e3 * c->med); F("%.6g", 1e3 * c->min); F("%.6g", 1e3 * c->max);
    F("%.6g", 1e3 * c->sd);
    if (c->kind == 'p') { F("%.6g", 1e3 * c->med); S(""); S(""); S(""); S(""); }
    else { S(""); F("%.6g", 1e3 * c->med); F("%.6g", 1e3 * c->p50); F("%.6g", 1e3 * c->p90); F("%.6g", 1e3 * c->p99); }
    S(c->kind == 'g' ? "nearest rank over all decode steps" : "");
    if (ranks > 1) {             /* split: FLOPs and bytes are not one rank's work, the time is all ranks' */
        S(""); S(""); S(""); S(""); S(""); S(""); S("");
    } else {
        F("%.6g", c->flops / c->med / 1e9); F("%.6g", c->bytes / c->med / 1e9); F("%.6g", c->flops); F("%.6g", c->bytes);
        F("%.6g", ntok / troof); F("%.4f", troof / c->med); S(mem ? "memory" : "compute");
    }
    F("%.4g", l->triad_gbs); F("%.4g", l->read_gbs); F("%.4g", l->sgemm_gflops); F("%.4g", l->peak_gflops);
    F("%llu", (unsigned long long)m->n_params); F("%llu", (unsigned long long)m->weight_bytes);
    F("%llu", (unsigned long long)c->kv_bytes); F("%llu", (unsigned long long)kv_per_token);
    F("%.0f", ru.ru_maxrss * 1024.0);
    v[k++] = weights_kind(sm, m); S(c->dtype[0] ? c->dtype : dtype_name(m->wdtype)); F("%d", omp_get_max_threads());
    F("%d", ranks); S(layout);
    if (ranks > 1 && c->ranks > 1) {             /* the step's collectives (measure_comm): all ranks' bytes sent */
        double cs = 0, cp = 0;
        for (int j = 0; j < CK_CONTROL; j++) { cs += c->comm_sent[j]; cp += c->comm_pred[j]; }
        F("%.0f", cs); F("%.0f", cp); F("%.4f", c->step_sec > 0 ? c->comm_sec / c->step_sec : 0.0);
    } else { S(""); S(""); S(""); }
    S(!strcmp(c->backend, "cuda") ? c->dtype : dtype_name(m->opts.kv_dtype));   /* the GPU's cache follows its weights */
    S(device); S(EFFBENCH_COMMIT); S(EFFBENCH_CFLAGS); S(date); S("ok");
#undef S
#undef F
    table_add(t, (const char *const *)v);
    for (int i = 0; i < k; i++) free(v[i]);
}

/* ---- evals -------------------------------------------------------------------------- */
static const char *EVAL_COLS[] = { "key", "model", "scaled_from", "task", "type", "metric", "value", "stderr", "n", "note",
                                   "flops_per_token", "bytes_per_decode_token", "train_flops", "weights", "dtype", "commit", "date",
                                   "source" };
#define N_EVAL_COLS ((int)(sizeof EVAL_COLS / sizeof EVAL_COLS[0]))

/* The tokenizer of a suite model: the suite's "tokenizer" file, else the checkpoint's
 * own (a GGUF file's metadata, or tokenizer.json in its directory). *tok stays NULL,
 * without an error, for dummy models and checkpoints that hold none: tasks of token
 * ids need none, and a text task then says it needs one. */
static int model_tokenizer(const SuiteModel *sm, Tokenizer **tok, Err *e) {
    *tok = NULL;
    if (sm->tokenizer[0]) return (*tok = tok_load(sm->tokenizer, e)) ? 0 : -1;
    if (!sm->checkpoint[0] || !tok_model_has_tokenizer(sm->checkpoint)) return 0;
    return (*tok = tok_for_model(sm->checkpoint, e)) ? 0 : -1;
}

/* ---- accuracy.csv: the points of the accuracy charts ----------------------------------- */
/* Measured points: the first metric of each (model, task) of evals.csv, perplexity
 * tasks left out (not a score). Published points: the MMLU scores of published.csv (the
 * benchmark every published model here reports). Each with its training FLOPs
 * (measured: the estimate from the suite's train_tokens; published: the published
 * figure, else the estimate of the model's first cost scenario) and the analytic FLOPs
 * and bytes per decode token of its model at 4K context (analytic.csv). */
static int write_accuracy(const char *dir, const Table *ev, Err *e) {
    static const char *cols[] = { "kind", "model", "scaled_from", "benchmark", "metric", "shots", "score_pct", "stderr_pct", "n",
                                  "train_flops", "train_flops_from", "flops_per_token", "bytes_per_decode_token", "ctx", "weights",
                                  "source" };
    enum { NC = sizeof cols / sizeof cols[0] };
    Table an, co, pu, t;
    if (csv_table_read_opt(dir, "analytic.csv", &an, e)) return -1;
    if (csv_table_read_opt(dir, "cost.csv", &co, e)) { table_free(&an); return -1; }
    if (csv_table_read_opt(dir, "published.csv", &pu, e)) { table_free(&an); table_free(&co); return -1; }
    table_init(&t, NC, cols);
    for (int r = 0; r < ev->nrow; r++) {
        if (r > 0 && !strcmp(table_get(ev, r, "key"), table_get(ev, r - 1, "key"))) continue;     /* first metric */
        if (!strcmp(table_get(ev, r, "type"), "perplexity")) continue;
        const char *m = table_get(ev, r, "model");
        int a = -1;
        for (int q = 0; q < an.nrow && a < 0; q++) if (!strcmp(table_get(&an, q, "model"), m)) a = q;
        double tf = table_num(ev, r, "train_flops"), se = table_num(ev, r, "stderr");
        char *v[NC] = {
            xstrdup("measured"), xstrdup(m), xstrdup(table_get(ev, r, "scaled_from")), xstrdup(table_get(ev, r, "task")),
            xstrdup(table_get(ev, r, "metric")), xstrdup(""), xasprintf("%.6g", 100 * table_num(ev, r, "value")),
            isfinite(se) ? xasprintf("%.6g", 100 * se) : xstrdup(""), xstrdup(table_get(ev, r, "n")),
            tf > 0 ? xasprintf("%.6g", tf) : xstrdup(""),
            xstrdup(tf > 0 ? "estimated: 6 x active params x train_tokens + attention" : ""),
            xstrdup(a >= 0 ? table_get(&an, a, "flops_per_token") : table_get(ev, r, "flops_per_token")),
            xstrdup(a >= 0 ? table_get(&an, a, "bytes_per_decode_token") : table_get(ev, r, "bytes_per_decode_token")),
            xstrdup(a >= 0 ? table_get(&an, a, "ctx") : "512"),
            xasprintf("%s %s", table_get(ev, r, "weights"), table_get(ev, r, "dtype")), xstrdup("measured (evals.csv)") };
        add_owned(&t, v, NC);
    }
    for (int r = 0; r < pu.nrow; r++) {
        if (strcmp(table_get(&pu, r, "kind"), "score") || strcmp(table_get(&pu, r, "benchmark"), "MMLU")) continue;
        const char *m = table_get(&pu, r, "model");
        double tf = NAN;
        char *from = NULL;
        for (int q = 0; q < pu.nrow && !from; q++)
            if (!strcmp(table_get(&pu, q, "kind"), "training") && !strcmp(table_get(&pu, q, "model"), m) &&
                table_num(&pu, q, "train_flops") > 0) { tf = table_num(&pu, q, "train_flops"); from = xstrdup("published"); }
        for (int q = 0; q < co.nrow && !from; q++)
            if (!strcmp(table_get(&co, q, "model"), m) && table_num(&co, q, "train_flops") > 0) {
                tf = table_num(&co, q, "train_flops");
                from = xasprintf("estimated: cost.csv \"%s\"", table_get(&co, q, "label"));
            }
        int a = -1;
        for (int q = 0; q < an.nrow && a < 0; q++) if (!strcmp(table_get(&an, q, "model"), m)) a = q;
        if (!from && a < 0) continue;                   /* nowhere to draw it */
        char *v[NC] = {
            xstrdup("published"), xstrdup(m), xstrdup(""), xstrdup("MMLU"), xstrdup(table_get(&pu, r, "metric")),
            xstrdup(table_get(&pu, r, "shots")), xstrdup(table_get(&pu, r, "value")), xstrdup(""), xstrdup(""),
            from ? xasprintf("%.6g", tf) : xstrdup(""), from ? from : xstrdup(""),
            xstrdup(a >= 0 ? table_get(&an, a, "flops_per_token") : ""), xstrdup(a >= 0 ? table_get(&an, a, "bytes_per_decode_token") : ""),
            xstrdup(a >= 0 ? table_get(&an, a, "ctx") : ""), xstrdup(""), xstrdup(table_get(&pu, r, "source")) };
        add_owned(&t, v, NC);
    }
    table_free(&an); table_free(&co); table_free(&pu);
    return put_table(dir, "accuracy.csv", &t, e);
}

/* ---- comparison.csv: measured scores beside published ones ---------------------------- */
/* A benchmark name compared as letters and digits only, case ignored ("ARC-Challenge"
 * = "arc_challenge", "MMLU" = "mmlu") */
static int same_benchmark(const char *a, const char *b) {
    for (;;) {
        while (*a && !isalnum((unsigned char)*a)) a++;
        while (*b && !isalnum((unsigned char)*b)) b++;
        if (!*a || !*b) return !*a && !*b;
        if (tolower((unsigned char)*a++) != tolower((unsigned char)*b++)) return 0;
    }
}

/* For every measured score (evals.csv: a model, a task, its first metric when that is a proportion) whose
 * model and task have a published score (published.csv: the same model, a benchmark of
 * the task's name), one row: both in percent, the difference, and whether it lies within
 * the measured standard error. Written even when empty (the header alone). */
static int write_comparison(const char *dir, const Table *ev, Err *e) {
    static const char *cols[] = { "model", "task", "metric", "measured_pct", "stderr_pct", "n", "published_benchmark",
                                  "published_metric", "shots", "published_pct", "difference_pct", "within_stderr", "source" };
    enum { NC = sizeof cols / sizeof cols[0] };
    static const char *const proportions[] = { "acc", "acc_norm", "exact_match", "greedy" };
    Table pu, t;
    if (csv_table_read_opt(dir, "published.csv", &pu, e)) return -1;
    table_init(&t, NC, cols);
    for (int r = 0; r < ev->nrow; r++) {
        if (r > 0 && !strcmp(table_get(ev, r, "key"), table_get(ev, r - 1, "key"))) continue;     /* the task's first metric */
        const char *metric = table_get(ev, r, "metric");
        int prop = 0;
        for (size_t k = 0; k < sizeof proportions / sizeof *proportions; k++)
            prop |= !strcmp(metric, proportions[k]) || !strncmp(metric, "exact_match,", 12);
        if (!prop) continue;
        for (int q = 0; q < pu.nrow; q++) {
            if (strcmp(table_get(&pu, q, "kind"), "score") || strcmp(table_get(&pu, q, "model"), table_get(ev, r, "model")) ||
                !same_benchmark(table_get(&pu, q, "benchmark"), table_get(ev, r, "task")))
                continue;
            double m = 100 * table_num(ev, r, "value"), se = 100 * table_num(ev, r, "stderr"), p = table_num(&pu, q, "value");
            char *v[NC] = { xstrdup(table_get(ev, r, "model")), xstrdup(table_get(ev, r, "task")), xstrdup(metric),
                            xasprintf("%.6g", m), isfinite(se) ? xasprintf("%.6g", se) : xstrdup(""), xstrdup(table_get(ev, r, "n")),
                            xstrdup(table_get(&pu, q, "benchmark")), xstrdup(table_get(&pu, q, "metric")),
                            xstrdup(table_get(&pu, q, "shots")), xasprintf("%.6g", p), xasprintf("%.6g", m - p),
                            xstrdup(!isfinite(se) ? "" : fabs(m - p) <= se ? "yes" : "no"), xstrdup(table_get(&pu, q, "source")) };
            add_owned(&t, v, NC);
        }
    }
    table_free(&pu);
    return put_table(dir, "comparison.csv", &t, e);
}

/* ---- the command -------------------------------------------------------------------- */
static int probe_dir(const char *dir, Err *e) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *q = p + 1; *q; q++)
        if (*q == '/') { *q = 0; mkdir(p, 0755); *q = '/'; }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return err_set(e, "%s: cannot create the output directory: %s", dir, strerror(errno));
    char *probe = xasprintf("%s/.effbench-write-test", dir);
    int rc = write_file_atomic(probe, "ok\n", 3, e);
    unlink(probe);
    free(probe);
    if (rc) return err_prefix(e, "%s: the output directory is not writable", dir);
    return 0;
}

/* Temporary files of a killed earlier run (NAME.tmp.PID, the PID gone): never read as
 * results, removed so the directory holds only complete files. */
static void remove_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *t = strstr(de->d_name, ".tmp.");
        if (!t) continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if (*end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
}

static void progress(int done, int total, const char *what, double t0) {
    if (!isatty(2)) return;
    double el = now_sec() - t0, eta = done ? el / done * (total - done) : 0;
    int w = 24, f = total ? done * w / total : w;
    char bar[32];
    for (int i = 0; i < w; i++) bar[i] = i < f ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\r\033[K[%s] %d/%d  %-40.40s  %4.0fs elapsed, ~%.0fs left", bar, done, total, what, el, eta);
}

/* ---- ranks -------------------------------------------------------------------------- */
typedef enum { MODE_ONE, MODE_SPREAD, MODE_SPLIT } RunMode;

/* A growing byte string of NUL-terminated fields: what a rank sends to rank 0 at a round. */
typedef struct { char *p; size_t n, cap; } Buf;
static void buf_put(Buf *b, const char *s) {
    size_t k = strlen(s) + 1;
    if (b->n + k > b->cap) {
        b->cap = (b->n + k) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { fprintf(stderr, "effbench: out of memory\n"); exit(3); }
    }
    memcpy(b->p + b->n, s, k);
    b->n += k;
}
static void buf_int(Buf *b, long long v) {
    char t[32];
    snprintf(t, sizeof t, "%lld", v);
    buf_put(b, t);
}
static void buf_table(Buf *b, const Table *t) {
    buf_int(b, t->nrow);
    for (int r = 0; r < t->nrow; r++)
        for (int c = 0; c < t->ncol; c++) {
            const char *v = t->cell[(size_t)r * (size_t)t->ncol + (size_t)c];
            buf_put(b, v ? v : "");
        }
}
/* reading one rank's part back; a short or unterminated part reads as empty fields */
typedef struct { const char *p, *end; int bad; } Rd;
static const char *rd_str(Rd *r) {
    const char *z = r->bad || r->p >= r->end ? NULL : memchr(r->p, 0, (size_t)(r->end - r->p));
    if (!z) { r->bad = 1; return ""; }
    const char *s = r->p;
    r->p = z + 1;
    return s;
}
static long long rd_int(Rd *r) { return strtoll(rd_str(r), NULL, 10); }
/* appends the part's next table of t's columns to t; returns the index of its first row */
static int rd_table(Rd *r, Table *t) {
    long long n = rd_int(r);
    int first = t->nrow;
    const char **row = xmalloc(sizeof *row * (size_t)t->ncol);
    for (long long i = 0; i < n && !r->bad; i++) {
        for (int c = 0; c < t->ncol; c++) row[c] = rd_str(r);
        if (!r->bad) table_add(t, row);
    }
    free(row);
    return first;
}

/* One `effbench run`: the suite, its files and cells, and this process's place among
 * the ranks. */
typedef struct {
    const Opts *o;
    Suite s; int have_suite;
    char dir[4096];
    char *rpath, *epath, *cpath;
    Table comm;                  /* rank 0: comm.csv as it stands (split cells' collectives) */
    Table res, evt;              /* rank 0: results.csv and evals.csv as they stand; spread, ranks > 0:
                                    this rank's rows not yet sent */
    Table mach;                  /* spread, ranks > 0: machine.csv rows not yet sent */
    Buf msgs;                    /* spread, ranks > 0: message lines not yet sent */
    int have_tables;
    CellDef *cells; int nc, todo;
    unsigned char *done;         /* (nc) cells in results.csv */
    unsigned char *evdone;       /* (n_models x n_evals) evals in evals.csv */
    int *owner;                  /* spread: the rank that runs each model (-1: nothing to run) */
    char device[256];
    double t0;
    int ndone, nfail, rc;        /* rank 0: the run's; spread, ranks > 0: since the last round */
    Profiler *prof;
    Comm *c; int rank, size;
    RunMode mode;
    int stop;                    /* agreed by all ranks: stop after this unit */
    int all_finished;            /* spread: every rank has run all its units */
} Run;

/* the stop flag every loop reads: split ranks act only on the agreed one */
static int stopping(const Run *r) { return r->mode == MODE_SPLIT ? r->stop : interrupted || r->stop; }

/* A line for stderr ("effbench: " and fmt): rank 0 says it (after a newline when a
 * progress bar may be on the line and nl is set); a spread rank > 0 keeps it for rank 0;
 * a split rank > 0 drops it (rank 0 says the ranks' agreed failures). */
static void say(Run *r, int nl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(Run *r, int nl, const char *fmt, ...) {
    char m[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (r->rank == 0) fprintf(stderr, "%seffbench: %s\n", nl && isatty(2) ? "\n" : "", m);
    else if (r->mode == MODE_SPREAD && m[0]) buf_put(&r->msgs, m);
}

/* a collective that failed (a rank stopped answering): this rank says so and every rank ends */
static void comm_fatal(Run *r, const Err *e) {
    fprintf(stderr, "%seffbench: %s\n", r->rank == 0 && isatty(2) ? "\n" : "", e->msg);
    comm_abort(r->c, 1);
}

/* Every rank's rc of a step that may fail on some of them; returns how many failed. On
 * rank 0, e then holds the lowest failing rank's message ("rank R of N: ..." for R > 0).
 * Collective whenever the run has several ranks and `all` is set; else this rank alone. */
static int agree_all(Run *r, int all, int rc, Err *e) {
    if (r->size == 1 || !all) return rc != 0;
    Err ce = { "" };
    int bad = comm_agree(r->c, rc, &ce);
    if (bad < 0) comm_fatal(r, &ce);
    if (bad == 0) return 0;
    int64_t first = rc ? r->size - r->rank : 0;           /* the lowest failing rank */
    if (comm_max_i64(r->c, &first, 1, &ce)) comm_fatal(r, &ce);
    int who = r->size - (int)first;
    char msg[sizeof e->msg];
    memcpy(msg, e->msg, sizeof msg);
    if (comm_bcast(r->c, msg, sizeof msg, who, &ce)) comm_fatal(r, &ce);
    msg[sizeof msg - 1] = 0;
    if (who == 0) snprintf(e->msg, sizeof e->msg, "%s", msg);
    else snprintf(e->msg, sizeof e->msg, "rank %d of %d: %.900s", who, r->size, msg);
    return bad;
}
/* the same for the steps of a cell, model or eval: collective in split mode only */
static int agree(Run *r, int rc, Err *e) { return agree_all(r, r->mode == MODE_SPLIT, rc, e); }

/* rank 0's value of v on every rank */
static void bcast_i64(Run *r, int64_t *v, size_t n) {
    Err ce = { "" };
    if (r->size > 1 && comm_bcast(r->c, v, n * sizeof *v, 0, &ce)) comm_fatal(r, &ce);
}

/* ---- machine.csv ---------------------------------------------------------------------- */
static const char *MACHINE_COLS[] = { "device", "measured_before", "triad_gbs", "read_gbs", "sgemm_gflops", "sgemm_m",
                                      "peak_gflops", "peak_m", "commit", "date" };
#define N_MACHINE_COLS ((int)(sizeof MACHINE_COLS / sizeof MACHINE_COLS[0]))

static void machine_row(Table *t, const char *device, const char *model, const Limits *l) {
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    char *v[N_MACHINE_COLS] = { xstrdup(device), xstrdup(model), xasprintf("%.4g", l->triad_gbs), xasprintf("%.4g", l->read_gbs),
                                xasprintf("%.4g", l->sgemm_gflops), xasprintf("%d", l->m_prefill), xasprintf("%.4g", l->peak_gflops),
                                xasprintf("%d", l->m_peak), xstrdup(EFFBENCH_COMMIT), xstrdup(date) };
    add_owned(t, v, N_MACHINE_COLS);
}

/* appends rows to dir/machine.csv, written atomically */
static void append_machine(const char *dir, const Table *rows) {
    char *p = xasprintf("%s/machine.csv", dir);
    Table t;
    Err e;
    if (access(p, F_OK) != 0 || csv_table_read(p, &t, &e) != 0 || t.ncol != N_MACHINE_COLS) {
        if (access(p, F_OK) == 0 && t.head) table_free(&t);
        table_init(&t, N_MACHINE_COLS, MACHINE_COLS);
    }
    const char **row = xmalloc(sizeof *row * N_MACHINE_COLS);
    for (int r = 0; r < rows->nrow; r++) {
        for (int c = 0; c < N_MACHINE_COLS; c++) row[c] = rows->cell[(size_t)r * N_MACHINE_COLS + (size_t)c];
        table_add(&t, row);
    }
    free(row);
    if (csv_table_write(p, &t, &e)) fprintf(stderr, "effbench: %s\n", e.msg);
    table_free(&t);
    free(p);
}

/* machine.csv: this machine's limits as measured before each model's cells (the SGEMM
 * figures depend on the model's shapes). Rank 0 appends its own row at once; a spread
 * rank > 0 sends its rows at the next round; a split rank > 0 keeps none (the row
 * says rank 0's limits, which its cells' rows use). */
static void record_machine(Run *r, const char *device, const char *model, const Limits *l) {
    if (r->rank == 0) {
        Table t;
        table_init(&t, N_MACHINE_COLS, MACHINE_COLS);
        machine_row(&t, device, model, l);
        append_machine(r->dir, &t);
        table_free(&t);
    } else if (r->mode == MODE_SPREAD) {
        machine_row(&r->mach, device, model, l);
    }
}

/* ---- rounds (spread) -------------------------------------------------------------------- */
/* After each unit of work (a model's load, a cell, an eval) every rank meets the others:
 * ranks > 0 send their new rows, messages and counts, rank 0 writes them into the files
 * and decides whether to go on (a rank interrupted, or a file that cannot be written,
 * stops them all), and all learn whether every rank has finished. A rank with no units
 * left keeps meeting the others until all have finished. A round waits at most for the
 * longest unit running on another rank, under comm.h's deadline. */
static void round_sync(Run *r, int finished) {
    if (r->mode != MODE_SPREAD) return;
    Err e = { "" };
    Buf b = { 0 };
    buf_int(&b, finished);
    buf_int(&b, interrupted);
    buf_int(&b, r->rank ? r->ndone : 0);
    buf_int(&b, r->rank ? r->nfail : 0);
    if (r->rank) {
        buf_table(&b, &r->res);
        buf_table(&b, &r->mach);
        buf_table(&b, &r->evt);
        for (size_t k = 0; k < r->msgs.n; k += strlen(r->msgs.p + k) + 1) buf_put(&b, r->msgs.p + k);
    }
    buf_put(&b, "");                                        /* the messages end */
    int N = r->size;
    int64_t *len = xcalloc((size_t)N, sizeof *len);
    len[r->rank] = (int64_t)b.n;
    if (comm_sum_i64(r->c, len, (size_t)N, &e)) comm_fatal(r, &e);
    size_t *bytes = xcalloc((size_t)N, sizeof *bytes), total = 0;
    for (int q = 0; q < N; q++) { bytes[q] = (size_t)len[q]; total += bytes[q]; }
    char *all = xmalloc(total + 1);
    if (comm_allgatherv(r->c, CK_CONTROL, b.p, all, bytes, &e)) comm_fatal(r, &e);
    int64_t dec[2] = { 0, 0 };                              /* stop, all finished */
    if (r->rank == 0) {
        int fin = 1, stop = interrupted || r->rc != 0, new_rows = 0, new_evals = 0;
        Table mach;
        table_init(&mach, N_MACHINE_COLS, MACHINE_COLS);
        size_t off = 0;
        for (int q = 0; q < N; q++) {
            Rd rd = { all + off, all + off + bytes[q], 0 };
            off += bytes[q];
            fin &= rd_int(&rd) != 0;
            stop |= rd_int(&rd) != 0;
            r->ndone += (int)rd_int(&rd);
            r->nfail += (int)rd_int(&rd);
            if (q == 0) continue;
            int first = rd_table(&rd, &r->res);
            for (int i = first; i < r->res.nrow; i++) {
                new_rows++;
                for (int j = 0; j < r->nc; j++)
                    if (!strcmp(r->cells[j].key, table_get(&r->res, i, "key"))) { r->done[j] = 1; break; }
            }
            rd_table(&rd, &mach);
            int ev0 = r->evt.nrow;
            rd_table(&rd, &r->evt);
            new_evals += r->evt.nrow - ev0;
            for (const char *m = rd_str(&rd); *m; m = rd_str(&rd)) fprintf(stderr, "%seffbench: rank %d: %s\n", isatty(2) ? "\n" : "", q, m);
        }
        if (new_rows && r->rc == 0 && csv_table_write(r->rpath, &r->res, &e)) {
            say(r, 1, "%s", e.msg);
            r->rc = -1;
            interrupted = 1;
            stop = 1;
        }
        if (mach.nrow) append_machine(r->dir, &mach);
        table_free(&mach);
        if (new_evals && csv_table_write(r->epath, &r->evt, &e)) { say(r, 0, "%s", e.msg); r->nfail++; }
        dec[0] = stop;
        dec[1] = fin;
    }
    free(all); free(bytes); free(len); free(b.p);
    bcast_i64(r, dec, 2);
    r->stop |= dec[0] != 0;
    r->all_finished = dec[1] != 0;
    if (r->rank) {                                          /* sent: start afresh */
        table_free(&r->res); table_init(&r->res, N_RESULT_COLS, RESULT_COLS);
        table_free(&r->mach); table_init(&r->mach, N_MACHINE_COLS, MACHINE_COLS);
        table_free(&r->evt); table_init(&r->evt, N_EVAL_COLS, EVAL_COLS);
        r->msgs.n = 0;
        r->ndone = r->nfail = 0;
    } else if (!r->all_finished) {
        progress(r->ndone, r->todo, finished ? "(the other ranks)" : "", r->t0);
    }
}

/* Split: after each unit the ranks agree whether to stop (any rank interrupted, or
 * rank 0 could not write). */
static void sync_stop(Run *r) {
    if (r->mode != MODE_SPLIT) return;
    Err e = { "" };
    int64_t f = interrupted || r->rc != 0;
    if (comm_max_i64(r->c, &f, 1, &e)) comm_fatal(r, &e);
    r->stop |= f != 0;
}

static void unit_end(Run *r) {
    round_sync(r, 0);
    sync_stop(r);
}

/* ---- a model's units -------------------------------------------------------------------- */
typedef struct {
    Model m;
    int maxp;
    Limits lim, glim;
    int have_glim;
    Engine *eng[4];              /* one per suite backend, opened on first use */
    int ranks;                   /* the rows' ranks column */
    char layout[32];             /* and layout: "tp2 ep2", or "whole" on one rank */
} Walk;

/* the model's load and this machine's limits; -1 when it failed (its cells are counted
 * failed, and said once) */
static int walk_load(Run *r, int mi, Walk *w) {
    const SuiteModel *sm = &r->s.models[mi];
    memset(w, 0, sizeof *w);
    LoadOpts lo = { .dtype = sm->dtype, .layers = sm->layers, .seed = sm->seed, .dummy = !sm->checkpoint[0],
                    .kv_dtype = sm->kv_dtype_set ? sm->kv_dtype : r->o->load.kv_dtype };
    if (r->mode == MODE_SPLIT) { lo.ranks = r->size; lo.rank = r->rank; lo.tp = sm->tp; lo.ep = sm->ep; }
    Err e = { "" };
    char *cfg = NULL;
    if (lo.dummy) {
        cfg = suite_model_config_json(sm, &e);
        lo.config_text = cfg;
    }
    if (r->rank == 0) progress(r->ndone, r->todo, sm->name, r->t0);
    int rc = (lo.dummy && !cfg) || model_load(&w->m, lo.dummy ? sm->config : sm->checkpoint, &lo, &e) ? -1 : 0;
    free(cfg);
    if (agree(r, rc, &e)) {
        say(r, 1, "model %s: %s (its cells are skipped)", sm->name, e.msg);
        if (!rc) model_free(&w->m);
        for (int i = 0; i < r->nc; i++) if (r->cells[i].model == mi && !r->done[i]) { r->nfail++; r->ndone++; }
        return -1;
    }
    w->ranks = 1;
    snprintf(w->layout, sizeof w->layout, "whole");
    if (r->mode == MODE_SPLIT) {
        w->m.comm = r->c;
        w->ranks = w->m.sh.n;
        snprintf(w->layout, sizeof w->layout, "tp%d ep%d", w->m.sh.tp, w->m.sh.ep);
        char d[256];
        layout_describe(&w->m.cfg, &w->m.sh, d, sizeof d);
        say(r, 1, "model %s: %s", sm->name, d);
    }
    w->maxp = 1;
    for (int i = 0; i < r->nc; i++)
        if (r->cells[i].model == mi && r->cells[i].kind == 'p' && r->s.work[r->cells[i].work].prefill > w->maxp)
            w->maxp = r->s.work[r->cells[i].work].prefill;
    limits_measure(&w->m, w->maxp, 3, (size_t)r->s.stream_mib, &w->lim);
    record_machine(r, r->device, sm->name, &w->lim);
    return 0;
}

static void walk_close(Walk *w) {
    for (int b = 0; b < 4; b++) engine_close(w->eng[b]);
    model_free(&w->m);
}

/* one cell: a row in results.csv (rank 0 writes it at once; a spread rank > 0 sends it
 * at the next round), or a failure said and counted */
static void run_cell(Run *r, Walk *w, int i) {
    const CellDef *d = &r->cells[i];
    const SuiteModel *sm = &r->s.models[d->model];
    const Workload *wl = &r->s.work[d->work];
    char what[256];
    snprintf(what, sizeof what, "%s %s", sm->name, d->test);
    if (r->rank == 0) progress(r->ndone, r->todo, what, r->t0);
    const char *be = r->s.backends[d->backend];
    EngineOpts eo;
    Err e = { "" };
    int rc = 0;
    if (engine_opts_for(be, r->o, &eo, &e) || (!strcmp(be, "cuda") && eo.backend != BACKEND_CUDA)) rc = -1;
    if (!rc && eo.backend == BACKEND_CUDA && !w->have_glim) {
        if (limits_measure_for(&w->m, &eo, w->maxp, 3, (size_t)r->s.stream_mib, &w->glim, &e)) rc = -1;
        else {
            w->have_glim = 1;
            char gdev[300];
            cuda_available(gdev, sizeof gdev);           /* the device's name, capability and memory */
            record_machine(r, gdev, sm->name, &w->glim);
        }
    }
    if (!rc && !w->eng[d->backend] && engine_open(&w->eng[d->backend], &w->m, &eo, 1, 1, 1, &e)) rc = -1;
    if (agree(r, rc, &e)) {
        say(r, 1, "cell %s: %s (skipped)", d->key, e.msg);
        r->nfail++; r->ndone++;
        return;
    }
    Engine *g = w->eng[d->backend];
    Cell c;
    memset(&c, 0, sizeof c);
    Profiler *cp = eo.backend == BACKEND_CUDA ? r->prof : NULL;     /* only GPU cells have kernels to trace */
    profiler_cell(cp, d->key);
    rc = d->kind == 'p' ? measure_prefill(g, wl->prefill, wl->reps, wl->warmup, &c, &e)
                        : measure_decode(g, d->batch, wl->depth, wl->decode, wl->reps, wl->warmup, &c, &e);
    if (!rc) rc = profiler_cell_done(cp, &c, g, &e);
    if (w->ranks > 1 && !agree(r, rc, &e)) rc = measure_comm(g, &c, &e);   /* all ranks ran the cell: its step once more, counted */
    if (agree(r, rc, &e)) {
        if (r->mode == MODE_SPLIT || !interrupted) { say(r, 1, "cell %s: %s", d->key, e.msg); r->nfail++; r->ndone++; }
        free(c.comm_detail);
        return;
    }
    const Limits *cl = eo.backend == BACKEND_CUDA ? &w->glim : &w->lim;
    char gdev[300];
    if (eo.backend == BACKEND_CUDA) snprintf(gdev, sizeof gdev, "%s (CUDA graphs %s)", c.device, eo.no_graphs ? "off" : "on");
    if (r->rank == 0 || r->mode == MODE_SPREAD)
        add_row(&r->res, &r->s, d, &w->m, &c, cl, eo.backend == BACKEND_CUDA ? gdev : r->device, w->ranks, w->layout);
    if (r->rank == 0 && w->ranks > 1) add_comm_rows(&r->comm, &r->s, d, &c, w->layout);
    free(c.comm_detail);
    if (r->rank == 0 && (csv_table_write(r->rpath, &r->res, &e) || (w->ranks > 1 && csv_table_write(r->cpath, &r->comm, &e)))) {
        say(r, 1, "%s", e.msg);
        r->rc = -1;
        interrupted = 1;
        return;
    }
    r->done[i] = 1;
    r->ndone++;
}

/* one eval of the suite on model mi, unless evals.csv holds it (resume). Its rows go
 * to evals.csv as the cells' rows go to results.csv. */
static void run_eval(Run *r, int mi, int k, Model *m) {
    const SuiteModel *sm = &r->s.models[mi];
    const SuiteEval *se = &r->s.evals[k];
    Err e = { "" };
    Task t;
    int rc = task_load(se->task, &t, &e);
    if (agree(r, rc, &e)) {
        say(r, 0, "eval %s: %s", sm->name, e.msg);
        r->nfail++;
        if (!rc) task_free(&t);
        return;
    }
    char key[4300];                       /* model|task file: exact, so resume can match it */
    snprintf(key, sizeof key, "%s|%s", sm->name, se->task);
    if (r->evdone[mi * r->s.n_evals + k]) { task_free(&t); return; }
    Tokenizer *tok;
    rc = model_tokenizer(sm, &tok, &e);
    if (agree(r, rc, &e)) {
        say(r, 0, "eval %s: %s", sm->name, e.msg);
        if (!rc) tok_free(tok);
        task_free(&t);
        r->nfail++;
        return;
    }
    EvalResult res;
    rc = eval_run(m, tok, &t, NULL, &res, &e);
    if (agree(r, rc, &e)) {
        say(r, 0, "eval %s on %s: %s", sm->name, t.name, e.msg);
        if (!rc) eval_result_free(&res);
        r->nfail++;
    } else {
        static const char *types[] = { "multiple_choice", "perplexity", "generation" };
        time_t now = time(NULL);
        char date[64];
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        double ctx = 512, train = 0;
        if (sm->train_tokens > 0) {       /* training FLOPs of this model's config, 4096-token sequences */
            Analytic an;
            analytic_compute(&m->cfg, &an);
            train = analytic_train_flops(&an, sm->train_tokens, 4096);
        }
        int split = m->sh.n > 1;          /* a rank's share: its FLOPs and bytes per token are left out */
        for (int q = 0; q < res.n_metrics && (r->rank == 0 || r->mode == MODE_SPREAD); q++) {
            const Metric *mt = &res.m[q];
            char *v[N_EVAL_COLS] = {
                xstrdup(key), xstrdup(sm->name), xstrdup(sm->scaled_from), xstrdup(t.name), xstrdup(types[t.type]),
                xstrdup(mt->name), xasprintf("%.6g", mt->value), mt->stderr_ >= 0 ? xasprintf("%.6g", mt->stderr_) : xstrdup(""),
                xasprintf("%d", mt->n), xstrdup(mt->note), split ? xstrdup("") : xasprintf("%.6g", model_flops_per_token(m, ctx)),
                split ? xstrdup("") : xasprintf("%.6g", model_bytes_per_step(m, kv_row_bytes(m->opts.kv_dtype, kv_row_floats(m)) * (uint64_t)m->cfg.n_layers, 1, ctx)),
                train > 0 ? xasprintf("%.6g", train) : xstrdup(""), weights_kind(sm, m), xstrdup(dtype_name(m->wdtype)), xstrdup(EFFBENCH_COMMIT),
                xstrdup(date), xstrdup("measured") };
            add_owned(&r->evt, v, N_EVAL_COLS);
        }
        eval_result_free(&res);
        for (int k2 = 0; k2 < r->s.n_evals; k2++)           /* the same task listed twice runs once */
            if (!strcmp(r->s.evals[k2].task, se->task)) r->evdone[mi * r->s.n_evals + k2] = 1;
        if (r->rank == 0 && csv_table_write(r->epath, &r->evt, &e)) { say(r, 0, "%s", e.msg); r->nfail++; }
    }
    tok_free(tok);
    task_free(&t);
}

static int eval_applies(const Suite *s, int k, int mi) {
    int applies = s->evals[k].n_models == 0;
    for (int j = 0; j < s->evals[k].n_models; j++) applies |= !strcmp(s->evals[k].models[j], s->models[mi].name);
    return applies && s->models[mi].measure;
}

/* cells and evals of model mi still to run */
static int model_work(const Run *r, int mi) {
    int n = 0;
    for (int i = 0; i < r->nc; i++) n += r->cells[i].model == mi && !r->done[i];
    for (int k = 0; k < r->s.n_evals; k++) n += eval_applies(&r->s, k, mi) && !r->evdone[mi * r->s.n_evals + k];
    return n;
}

/* ---- resume and setup -------------------------------------------------------------------- */
/* results.csv of an effbench from before the ranks, layout, communication and KV cache
 * type columns: the same rows, each as measured on one rank */
static const char *RESULT_COLS_ADDED[] = { "ranks", "layout", "comm_bytes_per_step", "comm_predicted_bytes", "comm_share",
                                           "kv_dtype" };
static const char *RESULT_COLS_ADDED_DEFAULT[] = { "1", "whole", "", "", "", "" };   /* kv_dtype: not recorded then */
#define N_ADDED ((int)(sizeof RESULT_COLS_ADDED / sizeof *RESULT_COLS_ADDED))
static int added_col(const char *name) {
    for (int k = 0; k < N_ADDED; k++) if (!strcmp(name, RESULT_COLS_ADDED[k])) return k;
    return -1;
}

static int read_results(const char *rpath, Table *res, Err *e) {
    Table t;
    if (csv_table_read(rpath, &t, e)) return -1;
    int added = 0;
    for (int k = 0; k < N_ADDED; k++) added += table_col(&t, RESULT_COLS_ADDED[k]) < 0;
    int known = table_col(&t, "key") == 0 && t.ncol + added == N_RESULT_COLS && (added == 0 || added == N_ADDED);
    for (int c = 0; c < N_RESULT_COLS && known; c++)
        known = table_col(&t, RESULT_COLS[c]) >= 0 || (added_col(RESULT_COLS[c]) >= 0 && added);
    if (!known) { table_free(&t); return err_set(e, "%s: not a results file of this effbench (columns differ)", rpath); }
    if (!added) { *res = t; return 0; }
    table_init(res, N_RESULT_COLS, RESULT_COLS);
    const char **row = xmalloc(sizeof *row * N_RESULT_COLS);
    for (int i = 0; i < t.nrow; i++) {
        for (int c = 0; c < N_RESULT_COLS; c++) {
            int k = added_col(RESULT_COLS[c]);
            row[c] = k >= 0 ? RESULT_COLS_ADDED_DEFAULT[k] : table_get(&t, i, RESULT_COLS[c]);
        }
        table_add(res, row);
    }
    free(row);
    table_free(&t);
    return 0;
}

/* FNV-1a of what every rank must agree on: the mode, the cells and the evals */
static uint64_t suite_digest(const Run *r) {
    uint64_t h = 1469598103934665603ull;
    char head[64];
    snprintf(head, sizeof head, "%d|%d|%d|%d", (int)r->mode, r->nc, r->s.n_models, r->s.n_evals);
    const char *parts[2] = { head, NULL };
    for (int i = -1; i < r->nc + r->s.n_evals; i++) {
        parts[1] = i < 0 ? "" : i < r->nc ? r->cells[i].key : r->s.evals[i - r->nc].task;
        for (int p = i < 0 ? 0 : 1; p < 2; p++)
            for (const unsigned char *q = (const unsigned char *)parts[p]; *q; q++) { h ^= *q; h *= 1099511628211ull; }
        h ^= 0xff; h *= 1099511628211ull;
    }
    return h;
}

/* A table of the run: path's rows when resuming and it exists (its columns checked),
 * else empty. 0, or -1 after saying why. */
static int resume_table(const char *path, int resume, Table *t, int ncol, const char *const *cols, const char *what) {
    Err e = { "" };
    if (!resume || access(path, F_OK) != 0) { table_init(t, ncol, cols); return 0; }
    memset(t, 0, sizeof *t);
    if (csv_table_read(path, t, &e) || t->ncol != ncol) {
        fprintf(stderr, "effbench: %s: %s%s%s\n", path, e.msg[0] ? e.msg : "not an ", e.msg[0] ? "" : what,
                e.msg[0] ? "" : " file of this effbench");
        if (t->head) table_free(t);
        return -1;
    }
    return 0;
}

/* Rank 0: the output directory, the rows a --resume keeps, and the tables that need no
 * measuring. 0, or -1 after saying why. */
static int open_output(Run *r) {
    const Opts *o = r->o;
    Err e = { "" };
    if (probe_dir(r->dir, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    remove_stale_tmp(r->dir);
    if (access(r->rpath, F_OK) == 0) {
        if (!o->resume) {
            fprintf(stderr, "effbench: %s exists: --resume to run only the missing cells, or choose another -o DIR\n", r->rpath);
            return -1;
        }
        if (read_results(r->rpath, &r->res, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    } else {
        table_init(&r->res, N_RESULT_COLS, RESULT_COLS);
    }
    if (resume_table(r->epath, o->resume, &r->evt, N_EVAL_COLS, EVAL_COLS, "evals")) { table_free(&r->res); return -1; }
    if (resume_table(r->cpath, o->resume, &r->comm, N_COMM_COLS, COMM_COLS, "comm")) {
        table_free(&r->res);
        table_free(&r->evt);
        return -1;
    }
    r->have_tables = 1;
    if (write_static(&r->s, r->dir, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    return 0;
}

static void run_free(Run *r) {
    if (r->have_tables) { table_free(&r->res); table_free(&r->evt); table_free(&r->comm); }
    if (r->mach.head) table_free(&r->mach);
    free(r->msgs.p);
    free(r->done); free(r->evdone); free(r->owner); free(r->cells);
    free(r->rpath); free(r->epath); free(r->cpath);
    if (r->have_suite) suite_free(&r->s);
}

/* Every rank ends with rank 0's status. */
static int run_end(Run *r, int rc) {
    int64_t v = rc;
    bcast_i64(r, &v, 1);
    run_free(r);
    return (int)v;
}

int cmd_run(const Opts *o) {
    Run run, *r = &run;
    memset(r, 0, sizeof *r);
    r->o = o;
    r->c = cli_comm;                       /* NULL (no group set up): one rank */
    r->rank = r->c ? r->c->rank : 0;
    r->size = r->c ? r->c->size : 1;
    if (o->n_args > 1) {
        if (r->rank == 0) fprintf(stderr, "effbench run: one suite at most, got \"%s\" too\n", o->args[1]);
        return -2;
    }
    if (r->rank > 0) {                     /* rank 0 alone prints and writes */
        fflush(stdout);
        if (!freopen("/dev/null", "w", stdout)) return -1;
        set_writes_files(0);
    }
    char spath[4096];
    if (o->n_args) snprintf(spath, sizeof spath, "%s", o->args[0]);
    else shipped_path("default.json", spath, sizeof spath);
    Err e = { "" };
    int rc = suite_load(spath, &r->s, &e);
    r->have_suite = rc == 0;
    if (agree_all(r, 1, rc, &e)) {
        if (r->rank == 0) fprintf(stderr, "effbench: %s\n", e.msg);
        return run_end(r, -1);
    }
    r->mode = r->size == 1 ? MODE_ONE : r->s.ranks_split ? MODE_SPLIT : MODE_SPREAD;
    if (r->mode == MODE_SPREAD) {
        /* the ranks meet after each unit, which may be a whole eval: the waits between
           rounds get their own deadline (EFFBENCH_ROUND_TIMEOUT, seconds; default a week) */
        const char *rt = getenv("EFFBENCH_ROUND_TIMEOUT");
        r->c->timeout = rt && atof(rt) > 0 ? atof(rt) : 7 * 86400.0;
    }
    for (int b = 0; r->size > 1 && b < r->s.n_backends; b++)   /* GPU cells: each rank its own GPU */
        if (strcmp(r->s.backends[b], "cpu")) { cuda_set_device(comm_local_rank(r->c)); break; }
    if (o->out) snprintf(r->dir, sizeof r->dir, "%s", o->out);
    else snprintf(r->dir, sizeof r->dir, "out/%.127s", r->s.name);
    r->rpath = xasprintf("%s/results.csv", r->dir);
    r->epath = xasprintf("%s/evals.csv", r->dir);
    r->cpath = xasprintf("%s/comm.csv", r->dir);
    rc = r->rank == 0 ? open_output(r) : 0;
    if (r->rank > 0) {                     /* the rows this rank has not yet sent */
        table_init(&r->res, N_RESULT_COLS, RESULT_COLS);
        table_init(&r->evt, N_EVAL_COLS, EVAL_COLS);
        table_init(&r->mach, N_MACHINE_COLS, MACHINE_COLS);
        r->have_tables = 1;
    }
    if (agree_all(r, 1, rc, &e)) return run_end(r, -1);     /* rank 0 said why */
    r->nc = build_cells(&r->s, &r->cells);
    int ne = r->s.n_models * r->s.n_evals;
    r->done = xcalloc((size_t)r->nc + 1, 1);
    r->evdone = xcalloc((size_t)ne + 1, 1);
    if (r->size > 1) {                     /* every rank must run the same suite, its file byte for byte */
        int64_t dg = (int64_t)suite_digest(r), d0;
        size_t flen = 0;
        Err fe = { "" };
        char *text = read_file(spath, 64u << 20, &flen, &fe);
        for (size_t q = 0; text && q < flen; q++) { dg ^= (unsigned char)text[q]; dg = (int64_t)((uint64_t)dg * 1099511628211ull); }
        free(text);
        d0 = dg;
        bcast_i64(r, &d0, 1);
        if (dg != d0) err_set(&e, "%s: the suite differs from rank 0's (its file, cells, evals or \"ranks\")", spath);
        if (agree_all(r, 1, dg != d0 ? -1 : 0, &e)) {
            if (r->rank == 0) fprintf(stderr, "effbench: %s\n", e.msg);
            return run_end(r, -1);
        }
    }
    if (r->rank == 0) {                    /* what results.csv and evals.csv already hold */
        for (int i = 0; i < r->nc; i++)
            for (int q = 0; q < r->res.nrow && !r->done[i]; q++) r->done[i] = !strcmp(table_get(&r->res, q, "key"), r->cells[i].key);
        for (int mi = 0; mi < r->s.n_models; mi++)
            for (int k = 0; k < r->s.n_evals; k++) {
                char key[4300];
                snprintf(key, sizeof key, "%s|%s", r->s.models[mi].name, r->s.evals[k].task);
                for (int q = 0; q < r->evt.nrow && !r->evdone[mi * r->s.n_evals + k]; q++)
                    r->evdone[mi * r->s.n_evals + k] = !strcmp(table_get(&r->evt, q, "key"), key);
            }
    }
    {   /* rows kept from another rank count (split over N, against one rank) would be mixed
           with this run's under the same keys: refused */
        int want = r->mode == MODE_SPLIT ? r->size : 1, bad = 0;
        for (int q = 0; r->rank == 0 && q < r->res.nrow && !bad; q++)
            if (atoi(table_get(&r->res, q, "ranks")) != want) {
                bad = err_set(&e, "%s holds cells measured on %s ranks; this run measures on %d: use another -o DIR", r->rpath,
                              table_get(&r->res, q, "ranks"), want);
            }
        if (agree_all(r, 1, bad, &e)) {
            if (r->rank == 0) fprintf(stderr, "effbench: %s\n", e.msg);
            return run_end(r, -1);
        }
    }
    if (r->size > 1) {
        Err ce = { "" };
        if (comm_bcast(r->c, r->done, (size_t)r->nc + 1, 0, &ce) || comm_bcast(r->c, r->evdone, (size_t)ne + 1, 0, &ce))
            comm_fatal(r, &ce);
    }
    for (int i = 0; i < r->nc; i++) r->todo += !r->done[i];
    if (r->rank == 0 && o->resume && r->res.nrow)
        fprintf(stderr, "effbench: resuming %s: %d of %d cells done, %d to run\n", r->dir, r->nc - r->todo, r->nc, r->todo);
    if (r->mode == MODE_SPREAD) {          /* each model with work to the least loaded rank */
        r->owner = xcalloc((size_t)r->s.n_models + 1, sizeof *r->owner);
        int64_t *load = xcalloc((size_t)r->size, sizeof *load);
        for (int mi = 0; mi < r->s.n_models; mi++) {
            int w = r->s.models[mi].missing ? 0 : model_work(r, mi);
            r->owner[mi] = -1;
            if (!w) continue;
            int best = 0;
            for (int q = 1; q < r->size; q++) if (load[q] < load[best]) best = q;
            r->owner[mi] = best;
            load[best] += w + 1;           /* + its load */
        }
        free(load);
    }
    char cpu[200];
    cpu_model_name(cpu, sizeof cpu);
    snprintf(r->device, sizeof r->device, "%s, %d threads", cpu, omp_get_max_threads());
    split_signals = r->mode == MODE_SPLIT;
    struct sigaction sa = { 0 }, old;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    sigaction(SIGTERM, &sa, NULL);
    r->t0 = now_sec();
    if ((o->profile || o->metrics) && r->mode == MODE_SPLIT) {   /* its replays of a cell would run on rank 0 alone */
        if (r->rank == 0) fprintf(stderr, "effbench: --profile and --metrics trace one process: not with \"ranks\": \"split\"\n");
        return run_end(r, -1);
    }
    rc = r->rank == 0 && (o->profile || o->metrics) ? profiler_open(&r->prof, o->profile ? o->profile : "profile", o->metrics, &e) : 0;
    if (agree_all(r, 1, rc, &e)) {
        if (r->rank == 0) fprintf(stderr, "effbench: %s\n", e.msg);
        sigaction(SIGINT, &old, NULL);
        signal(SIGTERM, SIG_DFL);
        return run_end(r, -1);
    }
    for (int mi = 0; mi < r->s.n_models && !stopping(r); mi++) {
        if (r->s.models[mi].missing) continue;              /* said once, in skipped.csv */
        if (r->mode == MODE_SPREAD ? r->owner[mi] != r->rank : !model_work(r, mi)) continue;
        Walk w;
        int lrc = walk_load(r, mi, &w);
        unit_end(r);
        if (lrc) continue;
        for (int i = 0; i < r->nc && !stopping(r); i++) {
            if (r->cells[i].model != mi || r->done[i]) continue;
            run_cell(r, &w, i);
            unit_end(r);
        }
        for (int k = 0; k < r->s.n_evals && !stopping(r); k++) {
            if (!eval_applies(&r->s, k, mi)) continue;
            run_eval(r, mi, k, &w.m);
            unit_end(r);
        }
        walk_close(&w);
    }
    while (r->mode == MODE_SPREAD && !r->stop && !r->all_finished) round_sync(r, 1);
    rc = r->rc;
    if (r->rank == 0) {
        progress(r->ndone, r->todo, "done", r->t0);
        if (isatty(2)) fputc('\n', stderr);
        if (r->prof && profiler_close(r->prof, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); rc = -1; }
    }
    sigaction(SIGINT, &old, NULL);
    signal(SIGTERM, SIG_DFL);
    if (r->rank == 0) {
        int kept = 0;
        for (int i = 0; i < r->nc; i++) kept += r->done[i];
        if ((interrupted || r->stop) && rc == 0) {
            fprintf(stderr, "effbench: interrupted: %s holds %d of %d cells; run again with --resume to finish\n", r->rpath, kept, r->nc);
            rc = -3;
        } else if (rc == 0) {
            if (write_accuracy(r->dir, &r->evt, &e) || write_comparison(r->dir, &r->evt, &e) || report_render(r->dir, &e)) {
                fprintf(stderr, "effbench: %s\n", e.msg);
                rc = -1;
            } else fprintf(stderr, "effbench: %d of %d cells in %s; %d failed; report in %s/summary.md\n", kept, r->nc, r->rpath, r->nfail, r->dir);
            if (r->nfail && rc == 0) rc = -1;
        }
    }
    return run_end(r, rc);
}
