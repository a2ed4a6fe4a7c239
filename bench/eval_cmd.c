/*
 * eval_cmd.c - `effbench eval` (a task on a model), `effbench eval-compare` (a paired
 * test of two models' samples on one task) and `effbench kl` (next-token KL divergence
 * against a reference run's logits). The tokenizer is the model's own (tok_for_model:
 * a .gguf file's metadata, else tokenizer.json in or beside --model).
 */
#include "cli.h"
#include "eval.h"
#include "measure.h"
#include "table.h"

#include <omp.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef EFFBENCH_COMMIT
#define EFFBENCH_COMMIT "unknown"
#endif

/* 1 when some item of t is text (needs the tokenizer to run at all) */
static int task_has_text(const Task *t) {
    if (t->type == TASK_GEN) return 1;
    for (int i = 0; i < t->n_items; i++)
        if (t->items[i].context || t->items[i].text || t->items[i].choices) return 1;
    return 0;
}

/* The model's tokenizer (tok_for_model). Without one, NULL and no error when every item
 * is token ids; a refused tokenizer, or none for a text task, is an error (*bad). */
static Tokenizer *model_tokenizer(const Opts *o, const Task *t, Err *e, int *bad) {
    *bad = 0;
    if (!tok_model_has_tokenizer(o->model) && !task_has_text(t)) return NULL;
    Tokenizer *tok = tok_for_model(o->model, e);
    *bad = tok == NULL;
    return tok;
}

/* evals.csv in dir: one row per (model, task, metric), replaced when run again */
static int write_evals_csv(const char *dir, const Opts *o, const Model *m, const Task *t, const EvalResult *r, Err *e) {
    static const char *cols[] = { "model", "task", "type", "metric", "value", "stderr", "n", "note", "params_total",
                                  "flops_per_token", "weights", "dtype", "threads", "commit", "date", "source" };
    char *p = xasprintf("%s/evals.csv", dir);
    Table old, t2;
    int have = access(p, F_OK) == 0;
    if (have && csv_table_read(p, &old, e)) { free(p); return -1; }
    table_init(&t2, 16, cols);
    const char *types[] = { "multiple_choice", "perplexity", "generation" };
    for (int i = 0; have && i < old.nrow; i++) {
        if (!strcmp(table_get(&old, i, "model"), o->model) && !strcmp(table_get(&old, i, "task"), t->name)) continue;
        const char *row[16];
        for (int c = 0; c < 16; c++) row[c] = table_get(&old, i, cols[c]);
        table_add(&t2, row);
    }
    if (have) table_free(&old);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    for (int k = 0; k < r->n_metrics; k++) {
        const Metric *mt = &r->m[k];
        char *v[16] = { xstrdup(o->model), xstrdup(t->name), xstrdup(types[t->type]), xstrdup(mt->name), xasprintf("%.6g", mt->value),
                        mt->stderr_ >= 0 ? xasprintf("%.6g", mt->stderr_) : xstrdup(""), xasprintf("%d", mt->n), xstrdup(mt->note),
                        xasprintf("%llu", (unsigned long long)m->n_params), xasprintf("%.6g", model_flops_per_token(m, 512)),
                        xstrdup(o->load.dummy ? "dummy" : "checkpoint"), xstrdup(dtype_name(m->wdtype)),
                        xasprintf("%d", omp_get_max_threads()), xstrdup(EFFBENCH_COMMIT), xstrdup(date), xstrdup("measured") };
        table_add(&t2, (const char *const *)v);
        for (int c = 0; c < 16; c++) free(v[c]);
    }
    int rc = csv_table_write(p, &t2, e);
    table_free(&t2);
    free(p);
    return rc;
}

int cmd_eval(const Opts *o) {
    if (!o->task) { fprintf(stderr, "effbench eval: --task FILE is required\n"); return -2; }
    Task t;
    Err e = { "" };
    if (task_load(o->task, &t, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    if (o->eval_bos) {                  /* lm-eval's add_bos_token: None, True, False */
        if (!strcmp(o->eval_bos, "auto")) t.bos = TASK_BOS_AUTO;
        else if (!strcmp(o->eval_bos, "on")) t.bos = TASK_BOS_ON;
        else if (!strcmp(o->eval_bos, "off")) t.bos = TASK_BOS_OFF;
        else { fprintf(stderr, "effbench eval: --bos is auto, on or off, got \"%s\"\n", o->eval_bos); task_free(&t); return -2; }
    }
    if (o->max_length) {                /* lm-eval's max_length model argument */
        if (o->max_length < 2) { fprintf(stderr, "effbench eval: --max-length must be at least 2\n"); task_free(&t); return -2; }
        t.window = o->max_length;
    }
    if (o->out) {                       /* the output must be writable before measuring */
        mkdir(o->out, 0755);
        char *probe = xasprintf("%s/.effbench-write-test", o->out);
        int bad = write_file_atomic(probe, "", 0, &e);
        unlink(probe);
        free(probe);
        if (bad) { cli_agree(-1, e.msg); task_free(&t); return -1; }
    }
    FILE *samples = NULL;
    char *stmp = NULL;
    if (o->samples) {
        stmp = xasprintf("%s.tmp.%d", o->samples, (int)getpid());
        if (!(samples = fopen(stmp, "w"))) {
            snprintf(e.msg, sizeof e.msg, "%s: cannot create", o->samples);
            cli_agree(-1, e.msg);
            free(stmp);
            task_free(&t);
            return -1;
        }
    }
    int tok_bad, rc = -1;
    Tokenizer *tok = model_tokenizer(o, &t, &e, &tok_bad);
    Model m;
    if (tok_bad) fprintf(stderr, "effbench: %s\n", e.msg);
    else if (cli_load_model(o, &m) == 0) {
        EvalResult r;
        double t0 = now_sec();
        if (eval_run(&m, tok, &t, samples, &r, &e)) fprintf(stderr, "effbench: %s\n", e.msg);
        else {
            rc = 0;
            double dt = now_sec() - t0;
            if (o->json) {
                printf("{\"model\": \"%s\", \"task\": \"%s\", \"items\": %d, \"seconds\": %.3f, \"metrics\": [", o->model, t.name, t.n_items, dt);
                for (int k = 0; k < r.n_metrics; k++)
                    printf("%s{\"name\": \"%s\", \"value\": %.6g, \"stderr\": %.6g, \"note\": \"%s\"}", k ? ", " : "", r.m[k].name,
                           r.m[k].value, r.m[k].stderr_, r.m[k].note);
                printf("]}\n");
            } else {
                printf("| task | metric | value | stderr | n | note |\n|---|---|---:|---:|---:|---|\n");
                for (int k = 0; k < r.n_metrics; k++) {
                    char se[32] = "";
                    if (r.m[k].stderr_ >= 0) snprintf(se, sizeof se, "%.4f", r.m[k].stderr_);
                    printf("| %s | %s | %.4f | %s | %d | %s |\n", t.name, r.m[k].name, r.m[k].value, se, r.m[k].n, r.m[k].note);
                }
                fprintf(stderr, "effbench: %d items, %.0f tokens scored in %.1f s (model length %d, BOS %s)\n", t.n_items, r.tokens_scored, dt,
                        eval_max_length(&m, &t), t.bos == TASK_BOS_ON ? "on" : t.bos == TASK_BOS_OFF ? "off" : "as the tokenizer adds it");
            }
            if (o->out && write_evals_csv(o->out, o, &m, &t, &r, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); rc = -1; }
            eval_result_free(&r);
        }
        model_free(&m);
    }
    tok_free(tok);
    task_free(&t);
    if (samples) {
        int bad = fclose(samples) != 0;
        if (rc == 0 && !bad && rename(stmp, o->samples) == 0) fprintf(stderr, "effbench: samples in %s\n", o->samples);
        else { unlink(stmp); if (rc == 0) { fprintf(stderr, "effbench: %s: write failed\n", o->samples); rc = -1; } }
        free(stmp);
    }
    return rc;
}

/* per-item scores of a samples file: acc, exact_match, or loglikelihood (perplexity) */
static int read_scores(const char *path, double **out, int *n, const char **kind) {
    Err e;
    size_t len;
    char *buf = read_file(path, 1u << 30, &len, &e);
    if (!buf) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    int cap = 256, k = 0, line = 0;
    double *v = xmalloc(sizeof(double) * (size_t)cap);
    for (char *p = buf, *nl; p < buf + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(buf + len - p));
        if (!nl) nl = buf + len;
        line++;
        if (nl == p) continue;
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
        const cJSON *x = cJSON_GetObjectItem(j, "acc");
        *kind = "acc";
        if (!x) { x = cJSON_GetObjectItem(j, "exact_match"); *kind = "exact_match"; }
        if (!x) { x = cJSON_GetObjectItem(j, "loglikelihood"); *kind = "loglikelihood"; }
        if (!x || (!cJSON_IsBool(x) && !cJSON_IsNumber(x))) {
            fprintf(stderr, "effbench: %s: line %d: not a samples line (no acc, exact_match or loglikelihood)\n", path, line);
            cJSON_Delete(j); free(v); free(buf);
            return -1;
        }
        if (k == cap) { cap *= 2; v = realloc(v, sizeof(double) * (size_t)cap); if (!v) exit(3); }
        v[k++] = cJSON_IsBool(x) ? cJSON_IsTrue(x) : x->valuedouble;
        cJSON_Delete(j);
    }
    free(buf);
    *out = v;
    *n = k;
    return 0;
}

int cmd_eval_compare(const Opts *o) {
    if (o->n_args != 2) { fprintf(stderr, "effbench eval-compare: usage: effbench eval-compare A.samples.jsonl B.samples.jsonl\n"); return -2; }
    double *a, *b;
    int na, nb;
    const char *ka, *kb;
    if (read_scores(o->args[0], &a, &na, &ka)) return -1;
    if (read_scores(o->args[1], &b, &nb, &kb)) { free(a); return -1; }
    int rc = 0;
    if (na != nb || strcmp(ka, kb)) {
        fprintf(stderr, "effbench eval-compare: the files differ (%d %s items against %d %s): not the same task\n", na, ka, nb, kb);
        rc = -1;
    } else {
        double ma = 0, mb = 0, lo, hi;
        int only_a = 0, only_b = 0;
        for (int i = 0; i < na; i++) { ma += a[i]; mb += b[i]; only_a += a[i] > b[i]; only_b += b[i] > a[i]; }
        double p = paired_bootstrap(a, b, na, 10000, 1, &lo, &hi);
        printf("| metric | A | B | B - A | 95%% CI (paired bootstrap) | p (paired bootstrap) |");
        if (strcmp(ka, "loglikelihood")) printf(" A only right | B only right | p (exact McNemar) |");
        printf("\n|---|---:|---:|---:|---|---:|%s\n", strcmp(ka, "loglikelihood") ? "---:|---:|---:|" : "");
        printf("| %s (%d items) | %.4f | %.4f | %+.4f | [%+.4f, %+.4f] | %.4f |", ka, na, ma / na, mb / na, (mb - ma) / na, lo, hi, p);
        if (strcmp(ka, "loglikelihood")) printf(" %d | %d | %.4f |", only_a, only_b, mcnemar_p(only_a, only_b));
        printf("\n");
    }
    free(a); free(b);
    return rc;
}

int cmd_kl(const Opts *o) {
    if (!o->ref) { fprintf(stderr, "effbench kl: --ref LOGITS.f32 is required\n"); return -2; }
    Tokenizer *tk;
    int *tok, n, trc = cli_tokens(o, "kl", &tk, &tok, &n);
    if (trc) return trc;
    tok_free(tk);
    Err e = { "" };
    size_t len;
    char *ref = read_file(o->ref, 1u << 31, &len, &e);
    if (!ref) { fprintf(stderr, "effbench: %s\n", e.msg); free(tok); return -1; }
    Model m;
    int rc = -1;
    if (cli_load_model(o, &m) == 0) {
        int V = m.cfg.vocab;
        if (len != sizeof(float) * (size_t)n * V) {
            fprintf(stderr, "effbench: %s: %zu bytes, but %d tokens x %d vocabulary float32 logits are %zu\n", o->ref, len, n, V,
                    sizeof(float) * (size_t)n * V);
        } else {
            KVCache kv;
            float *lg = xmalloc(sizeof(float) * (size_t)n * V);
            int *seq = xcalloc((size_t)n, sizeof(int)), *pos = xmalloc(sizeof(int) * (size_t)n);
            for (int i = 0; i < n; i++) pos[i] = i;
            int frc = kv_create(&kv, &m, 1, n, &e);
            if (!frc && o->decode)      /* token by token through the cache, as decode runs */
                for (int i = 0; i < n && !frc; i++)
                    frc = model_forward(&m, &kv, 1, tok + i, seq + i, pos + i, NULL, lg + (size_t)i * V, NULL, &e);
            else if (!frc) frc = model_forward(&m, &kv, n, tok, seq, pos, NULL, lg, NULL, &e);
            if (frc)
                fprintf(stderr, "effbench: %s\n", e.msg);
            else {
                KlStats k;
                kl_stats((const float *)ref, lg, n, V, &k);
                printf("{\"positions\": %d, \"kl_mean\": %.6g, \"kl_p99\": %.6g, \"kl_max\": %.6g, \"same_top_rate\": %.6g, "
                       "\"kv_dtype\": \"%s\", \"kv_bytes_per_token\": %llu, \"reference\": \"%s\"}\n", k.n, k.mean, k.p99, k.max,
                       k.same_top, dtype_name(kv.dt), (unsigned long long)kv_bytes_per_token(&kv), o->ref);
                rc = 0;
                kv_free(&kv);
            }
            free(lg); free(seq); free(pos);
        }
        model_free(&m);
    }
    free(ref); free(tok);
    return rc;
}
