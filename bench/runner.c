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

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; measure_stop = 1; }

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
    "device", "commit", "build_flags", "date", "status"
};
#define N_RESULT_COLS ((int)(sizeof RESULT_COLS / sizeof RESULT_COLS[0]))

/* the weights column: dummy, checkpoint (safetensors) or "gguf TYPE" (as stored in the
 * file; the engine widens quantized types at load) */
static char *weights_kind(const SuiteModel *sm, const Model *m) {
    if (sm->gguf) return xasprintf("gguf %s", m->stored[0] ? m->stored : "?");
    return xstrdup(sm->checkpoint[0] ? "checkpoint" : "dummy");
}

static void add_row(Table *t, const Suite *s, const CellDef *d, const Model *m, const Cell *c, const Limits *l,
                    const char *device) {
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
    F("%.6g", c->flops / c->med / 1e9); F("%.6g", c->bytes / c->med / 1e9); F("%.6g", c->flops); F("%.6g", c->bytes);
    F("%.6g", ntok / troof); F("%.4f", troof / c->med); S(mem ? "memory" : "compute");
    F("%.4g", l->triad_gbs); F("%.4g", l->read_gbs); F("%.4g", l->sgemm_gflops); F("%.4g", l->peak_gflops);
    F("%llu", (unsigned long long)m->n_params); F("%llu", (unsigned long long)m->weight_bytes);
    F("%llu", (unsigned long long)c->kv_bytes); F("%llu", (unsigned long long)kv_per_token);
    F("%.0f", ru.ru_maxrss * 1024.0);
    v[k++] = weights_kind(sm, m); S(c->dtype[0] ? c->dtype : dtype_name(m->wdtype)); F("%d", omp_get_max_threads());
    S(device); S(EFFBENCH_COMMIT); S(EFFBENCH_CFLAGS); S(date); S("ok");
#undef S
#undef F
    table_add(t, (const char *const *)v);
    for (int i = 0; i < k; i++) free(v[i]);
}

/* machine.csv: this machine's limits as measured before each model's cells (the
 * SGEMM figures depend on the model's shapes); appended, written atomically */
static void record_machine(const char *dir, const char *device, const char *model, const Limits *l) {
    static const char *cols[] = { "device", "measured_before", "triad_gbs", "read_gbs", "sgemm_gflops", "sgemm_m",
                                  "peak_gflops", "peak_m", "commit", "date" };
    char *p = xasprintf("%s/machine.csv", dir);
    Table t;
    Err e;
    if (access(p, F_OK) != 0 || csv_table_read(p, &t, &e) != 0 || t.ncol != 10) {
        if (access(p, F_OK) == 0 && t.head) table_free(&t);
        table_init(&t, 10, cols);
    }
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    char *v[10] = { xstrdup(device), xstrdup(model), xasprintf("%.4g", l->triad_gbs), xasprintf("%.4g", l->read_gbs),
                    xasprintf("%.4g", l->sgemm_gflops), xasprintf("%d", l->m_prefill), xasprintf("%.4g", l->peak_gflops),
                    xasprintf("%d", l->m_peak), xstrdup(EFFBENCH_COMMIT), xstrdup(date) };
    table_add(&t, (const char *const *)v);
    for (int i = 0; i < 10; i++) free(v[i]);
    if (csv_table_write(p, &t, &e)) fprintf(stderr, "effbench: %s\n", e.msg);
    table_free(&t);
    free(p);
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

/* runs the suite's evals that name model mi (or all measured models) into ev; a
 * (model, task) already in ev is kept (resume). Returns the number that failed. */
static int run_evals(const Suite *s, int mi, Model *m, Table *ev, const char *epath) {
    const SuiteModel *sm = &s->models[mi];
    int failed = 0;
    for (int k = 0; k < s->n_evals && !interrupted; k++) {
        const SuiteEval *se = &s->evals[k];
        int applies = se->n_models == 0;
        for (int j = 0; j < se->n_models; j++) applies |= !strcmp(se->models[j], sm->name);
        if (!applies) continue;
        Err e = { "" };
        Task t;
        if (task_load(se->task, &t, &e)) { fprintf(stderr, "effbench: eval %s: %s\n", sm->name, e.msg); failed++; continue; }
        char key[4300];                       /* model|task file: exact, so resume can match it */
        snprintf(key, sizeof key, "%s|%s", sm->name, se->task);
        int done = 0;
        for (int r = 0; r < ev->nrow && !done; r++) done = !strcmp(table_get(ev, r, "key"), key);
        if (done) { task_free(&t); continue; }
        Tokenizer *tok;
        if (model_tokenizer(sm, &tok, &e)) {
            fprintf(stderr, "effbench: eval %s: %s\n", sm->name, e.msg);
            task_free(&t);
            failed++;
            continue;
        }
        EvalResult res;
        if (eval_run(m, tok, &t, NULL, &res, &e)) {
            fprintf(stderr, "effbench: eval %s on %s: %s\n", sm->name, t.name, e.msg);
            failed++;
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
            for (int q = 0; q < res.n_metrics; q++) {
                const Metric *mt = &res.m[q];
                char *v[N_EVAL_COLS] = {
                    xstrdup(key), xstrdup(sm->name), xstrdup(sm->scaled_from), xstrdup(t.name), xstrdup(types[t.type]),
                    xstrdup(mt->name), xasprintf("%.6g", mt->value), mt->stderr_ >= 0 ? xasprintf("%.6g", mt->stderr_) : xstrdup(""),
                    xasprintf("%d", mt->n), xstrdup(mt->note), xasprintf("%.6g", model_flops_per_token(m, ctx)),
                    xasprintf("%.6g", model_bytes_per_step(m, kv_row_bytes(m->opts.kv_dtype, kv_row_floats(m)) * (uint64_t)m->cfg.n_layers, 1, ctx)),
                    train > 0 ? xasprintf("%.6g", train) : xstrdup(""), weights_kind(sm, m), xstrdup(dtype_name(m->wdtype)), xstrdup(EFFBENCH_COMMIT),
                    xstrdup(date), xstrdup("measured") };
                table_add(ev, (const char *const *)v);
                for (int c = 0; c < N_EVAL_COLS; c++) free(v[c]);
            }
            eval_result_free(&res);
            if (csv_table_write(epath, ev, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); failed++; }
        }
        tok_free(tok);
        task_free(&t);
    }
    return failed;
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

int cmd_run(const Opts *o) {
    if (o->n_args > 1) { fprintf(stderr, "effbench run: one suite at most, got \"%s\" too\n", o->args[1]); return -2; }
    char spath[4096];
    if (o->n_args) snprintf(spath, sizeof spath, "%s", o->args[0]);
    else shipped_path("default.json", spath, sizeof spath);
    Suite s;
    Err e = { "" };
    if (suite_load(spath, &s, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    char dir[4096];
    if (o->out) snprintf(dir, sizeof dir, "%s", o->out);
    else snprintf(dir, sizeof dir, "out/%s", s.name);
    if (probe_dir(dir, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); suite_free(&s); return -1; }
    remove_stale_tmp(dir);
    char *rpath = xasprintf("%s/results.csv", dir);
    Table res;
    int rc = 0;
    if (access(rpath, F_OK) == 0) {
        if (!o->resume) {
            fprintf(stderr, "effbench: %s exists: --resume to run only the missing cells, or choose another -o DIR\n", rpath);
            free(rpath); suite_free(&s);
            return -1;
        }
        if (csv_table_read(rpath, &res, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); free(rpath); suite_free(&s); return -1; }
        if (res.ncol != N_RESULT_COLS || table_col(&res, "key") != 0) {
            fprintf(stderr, "effbench: %s: not a results file of this effbench (columns differ)\n", rpath);
            table_free(&res); free(rpath); suite_free(&s);
            return -1;
        }
    } else {
        table_init(&res, N_RESULT_COLS, RESULT_COLS);
    }
    char *epath = xasprintf("%s/evals.csv", dir);
    Table evt;
    if (o->resume && access(epath, F_OK) == 0) {
        if (csv_table_read(epath, &evt, &e) || evt.ncol != N_EVAL_COLS) {
            fprintf(stderr, "effbench: %s: %s\n", epath, e.msg[0] ? e.msg : "not an evals file of this effbench");
            if (evt.head) table_free(&evt);
            table_free(&res); free(rpath); free(epath); suite_free(&s);
            return -1;
        }
    } else {
        table_init(&evt, N_EVAL_COLS, EVAL_COLS);
    }
    /* the tables that need no measuring */
    if (write_static(&s, dir, &e)) {
        fprintf(stderr, "effbench: %s\n", e.msg);
        table_free(&res); table_free(&evt); free(rpath); free(epath); suite_free(&s);
        return -1;
    }
    CellDef *cells;
    int nc = build_cells(&s, &cells), todo = 0;
    unsigned char *done = xcalloc((size_t)nc + 1, 1);
    for (int i = 0; i < nc; i++) {
        for (int r = 0; r < res.nrow; r++)
            if (!strcmp(table_get(&res, r, "key"), cells[i].key)) { done[i] = 1; break; }
        todo += !done[i];
    }
    if (o->resume && res.nrow) fprintf(stderr, "effbench: resuming %s: %d of %d cells done, %d to run\n", dir, nc - todo, nc, todo);
    char device[256], cpu[200];
    cpu_model_name(cpu, sizeof cpu);
    snprintf(device, sizeof device, "%s, %d threads", cpu, omp_get_max_threads());
    struct sigaction sa = { 0 }, old;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    sigaction(SIGTERM, &sa, NULL);
    double t0 = now_sec();
    int ndone = 0, nfail = 0;
    Profiler *prof = NULL;
    if ((o->profile || o->metrics) && profiler_open(&prof, o->profile ? o->profile : "profile", o->metrics, &e)) {
        fprintf(stderr, "effbench: %s\n", e.msg);
        free(done); free(cells); free(rpath); free(epath);
        table_free(&res); table_free(&evt); suite_free(&s);
        return -1;
    }
    for (int mi = 0; mi < s.n_models && !interrupted; mi++) {
        int any = 0;
        for (int i = 0; i < nc; i++) any |= cells[i].model == mi && !done[i];
        if (s.models[mi].missing) continue;                 /* said once, in skipped.csv */
        for (int k = 0; k < s.n_evals && s.models[mi].measure; k++) {
            int applies = s.evals[k].n_models == 0;
            for (int j = 0; j < s.evals[k].n_models; j++) applies |= !strcmp(s.evals[k].models[j], s.models[mi].name);
            char key[4300];
            snprintf(key, sizeof key, "%s|%s", s.models[mi].name, s.evals[k].task);
            int have = 0;
            for (int r = 0; r < evt.nrow && applies && !have; r++) have = !strcmp(table_get(&evt, r, "key"), key);
            any |= applies && !have;
        }
        if (!any) continue;
        const SuiteModel *sm = &s.models[mi];
        Model m;
        LoadOpts lo = { .dtype = sm->dtype, .layers = sm->layers, .seed = sm->seed, .dummy = !sm->checkpoint[0],
                        .kv_dtype = sm->kv_dtype_set ? sm->kv_dtype : o->load.kv_dtype };
        char *cfg = NULL;
        if (lo.dummy) {
            cfg = suite_model_config_json(sm, &e);
            lo.config_text = cfg;
        }
        progress(ndone, todo, sm->name, t0);
        if ((lo.dummy && !cfg) || model_load(&m, lo.dummy ? sm->config : sm->checkpoint, &lo, &e)) {
            fprintf(stderr, "%seffbench: model %s: %s (its cells are skipped)\n", isatty(2) ? "\n" : "", sm->name, e.msg);
            free(cfg);
            for (int i = 0; i < nc; i++) if (cells[i].model == mi && !done[i]) { nfail++; ndone++; }
            continue;
        }
        free(cfg);
        int maxp = 1;
        for (int i = 0; i < nc; i++)
            if (cells[i].model == mi && cells[i].kind == 'p' && s.work[cells[i].work].prefill > maxp) maxp = s.work[cells[i].work].prefill;
        Limits lim, glim;
        int have_glim = 0;
        Engine *eng[4] = { NULL, NULL, NULL, NULL };        /* one per suite backend, opened on first use */
        limits_measure(&m, maxp, 3, (size_t)s.stream_mib, &lim);
        record_machine(dir, device, sm->name, &lim);
        for (int i = 0; i < nc && !interrupted; i++) {
            const CellDef *d = &cells[i];
            if (d->model != mi || done[i]) continue;
            const Workload *wl = &s.work[d->work];
            char what[256];
            snprintf(what, sizeof what, "%s %s", sm->name, d->test);
            progress(ndone, todo, what, t0);
            const char *be = s.backends[d->backend];
            EngineOpts eo;
            if (engine_opts_for(be, o, &eo, &e) || (!strcmp(be, "cuda") && eo.backend != BACKEND_CUDA)) {
                fprintf(stderr, "%seffbench: cell %s: %s (skipped)\n", isatty(2) ? "\n" : "", d->key, e.msg);
                nfail++; ndone++;
                continue;
            }
            const Limits *cl = &lim;
            if (eo.backend == BACKEND_CUDA && !have_glim) {
                if (limits_measure_for(&m, &eo, maxp, 3, (size_t)s.stream_mib, &glim, &e)) {
                    fprintf(stderr, "%seffbench: cell %s: %s (skipped)\n", isatty(2) ? "\n" : "", d->key, e.msg);
                    nfail++; ndone++;
                    continue;
                }
                have_glim = 1;
                char gdev[300];
                cuda_available(gdev, sizeof gdev);           /* the device's name, capability and memory */
                record_machine(dir, gdev, sm->name, &glim);
            }
            if (eo.backend == BACKEND_CUDA) cl = &glim;
            if (!eng[d->backend] && engine_open(&eng[d->backend], &m, &eo, 1, 1, 1, &e)) {
                fprintf(stderr, "%seffbench: cell %s: %s (skipped)\n", isatty(2) ? "\n" : "", d->key, e.msg);
                nfail++; ndone++;
                continue;
            }
            Engine *g = eng[d->backend];
            Cell c;
            Profiler *cp = eo.backend == BACKEND_CUDA ? prof : NULL;     /* only GPU cells have kernels to trace */
            profiler_cell(cp, d->key);
            int r = d->kind == 'p' ? measure_prefill(g, wl->prefill, wl->reps, wl->warmup, &c, &e)
                                   : measure_decode(g, d->batch, wl->depth, wl->decode, wl->reps, wl->warmup, &c, &e);
            if (!r) r = profiler_cell_done(cp, &c, g, &e);
            if (r) {
                if (!interrupted) { fprintf(stderr, "%seffbench: cell %s: %s\n", isatty(2) ? "\n" : "", d->key, e.msg); nfail++; ndone++; }
                continue;
            }
            if (eo.backend == BACKEND_CUDA) {
                char gdev[300];
                snprintf(gdev, sizeof gdev, "%s (CUDA graphs %s)", c.device, eo.no_graphs ? "off" : "on");
                add_row(&res, &s, d, &m, &c, cl, gdev);
            } else {
                add_row(&res, &s, d, &m, &c, cl, device);
            }
            if (csv_table_write(rpath, &res, &e)) {
                fprintf(stderr, "%seffbench: %s\n", isatty(2) ? "\n" : "", e.msg);
                rc = -1;
                interrupted = 1;
                break;
            }
            done[i] = 1;
            ndone++;
        }
        for (int b = 0; b < 4; b++) engine_close(eng[b]);
        if (!interrupted) nfail += run_evals(&s, mi, &m, &evt, epath);
        model_free(&m);
    }
    progress(ndone, todo, "done", t0);
    if (isatty(2)) fputc('\n', stderr);
    if (prof && profiler_close(prof, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); rc = -1; }
    sigaction(SIGINT, &old, NULL);
    signal(SIGTERM, SIG_DFL);
    int kept = 0;
    for (int i = 0; i < nc; i++) kept += done[i];
    if (interrupted && rc == 0) {
        fprintf(stderr, "effbench: interrupted: %s holds %d of %d cells; run again with --resume to finish\n", rpath, kept, nc);
        rc = -3;
    } else if (rc == 0) {
        if (write_accuracy(dir, &evt, &e) || write_comparison(dir, &evt, &e) || report_render(dir, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); rc = -1; }
        else fprintf(stderr, "effbench: %d of %d cells in %s; %d failed; report in %s/summary.md\n", kept, nc, rpath, nfail, dir);
        if (nfail && rc == 0) rc = -1;
    }
    free(done); free(cells); free(rpath); free(epath);
    table_free(&res);
    table_free(&evt);
    suite_free(&s);
    return rc;
}
