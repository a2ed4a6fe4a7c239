/*
 * report.c - the static tables (analytic, KV, cost, published) and summary.md.
 */
#define _GNU_SOURCE
#include "report.h"
#include "table.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- static tables ------------------------------------------------------------------ */
static int model_config(const SuiteModel *sm, ModelConfig *c, Err *e) {
    char *txt = suite_model_config_json(sm, e);
    if (!txt) return -1;
    int rc = config_parse(txt, sm->config, c, e);
    free(txt);
    return rc;
}

static int write_analytic(const Suite *s, const char *dir, Err *e) {
    static const char *cols[] = { "model", "scaled_from", "model_type", "params_total", "params_active", "params_embedding",
                                  "kv_bytes_per_token", "kv_dtype", "ctx", "flops_per_token", "attn_flops_per_token_per_ctx",
                                  "bytes_per_decode_token", "weight_dtype", "moe_layers", "config", "source" };
    static const char *kcols[] = { "model", "ctx", "kv_bytes_per_sequence", "kv_gib_per_sequence" };
    Table t, k;
    table_init(&t, 16, cols);
    table_init(&k, 4, kcols);
    int rc = 0;
    for (int i = 0; i < s->n_models && !rc; i++) {
        ModelConfig c;
        if ((rc = model_config(&s->models[i], &c, e))) break;
        Analytic a;
        analytic_compute(&c, &a);
        double ctx = 4096;
        char *v[16];
        v[0] = xstrdup(s->models[i].name);
        v[1] = xstrdup(s->models[i].scaled_from);
        v[2] = xstrdup(c.model_type);
        v[3] = xasprintf("%.0f", a.params_total);
        v[4] = xasprintf("%.0f", a.params_active);
        v[5] = xasprintf("%.0f", a.params_embedding);
        v[6] = xasprintf("%.0f", a.kv_elems_per_token * 2);
        v[7] = xstrdup("BF16");
        v[8] = xasprintf("%.0f", ctx);
        v[9] = xasprintf("%.6g", analytic_flops_per_token(&a, ctx));
        v[10] = xasprintf("%.6g", a.attn_flops_per_ctx);
        v[11] = xasprintf("%.6g", analytic_bytes_per_decode_token(&a, &c, ctx, 2, 2));
        v[12] = xstrdup("BF16");
        v[13] = xasprintf("%d", a.n_moe_layers);
        v[14] = xstrdup(s->models[i].config);
        v[15] = xstrdup("analytic (from config.json)");
        table_add(&t, (const char *const *)v);
        for (int j = 0; j < 16; j++) free(v[j]);
        if (s->models[i].scaled_from[0]) continue;      /* the chart shows the real models */
        for (int j = 0; j < s->n_ctx; j++) {
            double b = a.kv_elems_per_token * 2 * s->ctx_lengths[j];
            char *r[4] = { xstrdup(s->models[i].name), xasprintf("%.0f", s->ctx_lengths[j]), xasprintf("%.0f", b),
                           xasprintf("%.6g", b / 1073741824.0) };
            table_add(&k, (const char *const *)r);
            for (int q = 0; q < 4; q++) free(r[q]);
        }
    }
    char *p = xasprintf("%s/analytic.csv", dir), *pk = xasprintf("%s/kv.csv", dir);
    if (!rc) rc = csv_table_write(p, &t, e);
    if (!rc) rc = csv_table_write(pk, &k, e);
    free(p); free(pk);
    table_free(&t); table_free(&k);
    return rc;
}

static int write_cost(const Suite *s, const char *dir, Err *e) {
    static const char *cols[] = { "label", "model", "tokens", "seq_len", "gpu", "precision", "peak_flops", "train_flops",
                                  "gpu_hours", "gpu_hours_given", "mfu", "mfu_given", "gpus", "days", "usd_per_gpu_hour",
                                  "cost_usd", "source" };
    Table t;
    table_init(&t, 17, cols);
    int rc = 0;
    for (int i = 0; i < s->n_cost && !rc; i++) {
        const CostScenario *cs = &s->cost[i];
        const SuiteModel *sm = NULL;
        for (int j = 0; j < s->n_models; j++) if (!strcmp(s->models[j].name, cs->model)) sm = &s->models[j];
        ModelConfig c;
        if ((rc = model_config(sm, &c, e))) break;
        Analytic a;
        analytic_compute(&c, &a);
        const Gpu *g = hw_find(s->gpus, s->n_gpus, cs->gpu);
        CostIn in = { cs->tokens, cs->seq_len, cs->fp8, cs->mfu, cs->gpu_hours, cs->gpus, cs->price };
        CostOut r;
        if ((rc = cost_estimate(&a, g, &in, &r, e))) { rc = err_prefix(e, "%s: cost[%d]", s->path, i); break; }
        char *v[17] = {
            xstrdup(cs->label[0] ? cs->label : cs->model), xstrdup(cs->model), xasprintf("%.6g", cs->tokens),
            xasprintf("%.0f", cs->seq_len), xstrdup(g->name), xstrdup(cs->fp8 ? "fp8" : "bf16"), xasprintf("%.6g", r.peak_flops),
            xasprintf("%.6g", r.train_flops), xasprintf("%.6g", r.gpu_hours), xstrdup(cs->gpu_hours > 0 ? "yes" : "no"),
            xasprintf("%.4f", r.mfu), xstrdup(cs->mfu > 0 ? "yes" : "no"), xasprintf("%d", cs->gpus),
            cs->gpus ? xasprintf("%.1f", r.days) : xstrdup(""), xasprintf("%.2f", r.price), xasprintf("%.6g", r.cost_usd),
            xstrdup(cs->source) };
        table_add(&t, (const char *const *)v);
        for (int j = 0; j < 17; j++) free(v[j]);
    }
    char *p = xasprintf("%s/cost.csv", dir);
    if (!rc) rc = csv_table_write(p, &t, e);
    free(p);
    table_free(&t);
    return rc;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}
static char *jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? xasprintf("%.6g", v->valuedouble) : xstrdup("");
}

static int write_published(const Suite *s, const char *dir, Err *e) {
    static const char *cols[] = { "kind", "model", "variant", "benchmark", "metric", "shots", "value", "tokens", "gpu",
                                  "gpu_hours", "train_flops", "cost_usd", "label", "source" };
    Table t;
    table_init(&t, 14, cols);
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
                char *v[14] = { xstrdup(k ? "training" : "score"), xstrdup(jstr(x, "model")), xstrdup(jstr(x, "variant")),
                                xstrdup(jstr(x, "benchmark")), xstrdup(jstr(x, "metric")), jnum(x, "shots"), jnum(x, "value"),
                                jnum(x, "tokens"), xstrdup(jstr(x, "gpu")), jnum(x, "gpu_hours"), jnum(x, "train_flops"),
                                jnum(x, "cost_usd"), xstrdup("published"), xstrdup(jstr(x, "source")) };
                table_add(&t, (const char *const *)v);
                for (int j = 0; j < 14; j++) free(v[j]);
            }
        }
        cJSON_Delete(root);
    }
    char *p = xasprintf("%s/published.csv", dir);
    if (!rc) rc = csv_table_write(p, &t, e);
    free(p);
    table_free(&t);
    return rc;
}

int report_write_static(const Suite *s, const char *dir, Err *e) {
    if (write_analytic(s, dir, e) || write_cost(s, dir, e) || write_published(s, dir, e)) return -1;
    return 0;
}

/* ---- summary.md --------------------------------------------------------------------- */
/* a table cell: no newlines, pipes escaped, HTML and Markdown markup neutralised */
void report_md(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '|': fputs("\\|", f); break;
        case '\n': case '\r': fputc(' ', f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '`': case '*': case '_': case '[': case ']': case '\\': case '!': fputc('\\', f); fputc(*s, f); break;
        default: fputc(*s, f);
        }
    }
}


static double num(const Table *t, int r, const char *c) { return table_num(t, r, c); }

int report_render(const char *dir, Err *e) {
    Table res, an, co, pu, ev;
    if (csv_table_read_opt(dir, "evals.csv", &ev, e)) return -1;
    if (csv_table_read_opt(dir, "results.csv", &res, e)) { table_free(&ev); return -1; }
    if (csv_table_read_opt(dir, "analytic.csv", &an, e)) { table_free(&res); return -1; }
    if (csv_table_read_opt(dir, "cost.csv", &co, e)) { table_free(&res); table_free(&an); return -1; }
    if (csv_table_read_opt(dir, "published.csv", &pu, e)) { table_free(&res); table_free(&an); table_free(&co); return -1; }
    if (!res.head && !an.head && !co.head && !pu.head && !ev.head) {
        return err_set(e, "%s: no results.csv, evals.csv, analytic.csv, cost.csv or published.csv to report", dir);
    }
    char *p = xasprintf("%s/summary.md", dir), *tmp = xasprintf("%s/summary.md.tmp.%d", dir, (int)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) rc = err_set(e, "%s: cannot write: %s", p, strerror(errno));
    if (f) {
        fprintf(f, "# effbench summary\n\n");
        if (res.nrow) {
            fprintf(f, "## Measured on this machine\n\n%s; backend %s; commit %s; weights %s %s.\n\n", table_get(&res, 0, "device"),
                    table_get(&res, 0, "backend"), table_get(&res, 0, "commit"), table_get(&res, 0, "weights"), table_get(&res, 0, "dtype"));
            fprintf(f, "| model | stands for | test | tokens/s | ms/step (median) | p99 ms | GFLOP/s | GB/s | bound | of roofline |\n");
            fprintf(f, "|---|---|---|---:|---:|---:|---:|---:|---|---:|\n");
            for (int r = 0; r < res.nrow; r++) {
                fputs("| ", f); report_md(f, table_get(&res, r, "model")); fputs(" | ", f); report_md(f, table_get(&res, r, "scaled_from"));
                fputs(" | ", f); report_md(f, table_get(&res, r, "test"));
                char p99[32] = "";
                if (isfinite(num(&res, r, "p99_ms"))) snprintf(p99, sizeof p99, "%.2f", num(&res, r, "p99_ms"));
                fprintf(f, " | %.1f | %.2f | %s | %.1f | %.2f | %s | %.0f%% |\n", num(&res, r, "tokens_per_s"), num(&res, r, "median_ms"),
                        p99, num(&res, r, "gflops"), num(&res, r, "gbs"), table_get(&res, r, "bound"),
                        100 * num(&res, r, "of_roofline"));
            }
            fprintf(f, "\nRoofline: max(bytes read / STREAM triad, FLOPs / OpenBLAS SGEMM), both measured on this machine before "
                       "each model's cells (columns triad_gbs, sgemm_gflops, peak_gflops of results.csv).\n\n");
        }
        if (ev.nrow) {
            fprintf(f, "## Evals (measured here; dummy weights score as random weights do)\n\n| model | task | metric | value | "
                       "stderr (bootstrap) | n | FLOPs/token | weights |\n|---|---|---|---:|---:|---:|---:|---|\n");
            for (int r = 0; r < ev.nrow; r++) {
                fputs("| ", f); report_md(f, table_get(&ev, r, "model")); fputs(" | ", f); report_md(f, table_get(&ev, r, "task"));
                fputs(" | ", f); report_md(f, table_get(&ev, r, "metric"));
                fprintf(f, " | %.4f | %s | %s | %.3g | %s |\n", num(&ev, r, "value"), table_get(&ev, r, "stderr"), table_get(&ev, r, "n"),
                        num(&ev, r, "flops_per_token"), table_get(&ev, r, "weights"));
            }
            fputc('\n', f);
        }
        if (an.nrow) {
            fprintf(f, "## Analytic (from each config.json)\n\n| model | params total | params active | KV bytes/token (BF16) | "
                       "KV GiB at 128K | GFLOP/token at 4K | decode bytes/token at 4K |\n|---|---:|---:|---:|---:|---:|---:|\n");
            for (int r = 0; r < an.nrow; r++) {
                fputs("| ", f); report_md(f, table_get(&an, r, "model"));
                fprintf(f, " | %.2f B | %.2f B | %.0f | %.2f | %.1f | %.3g |\n", num(&an, r, "params_total") / 1e9,
                        num(&an, r, "params_active") / 1e9, num(&an, r, "kv_bytes_per_token"),
                        num(&an, r, "kv_bytes_per_token") * 131072 / 1073741824.0, num(&an, r, "flops_per_token") / 1e9,
                        num(&an, r, "bytes_per_decode_token"));
            }
            fputc('\n', f);
        }
        if (co.nrow) {
            fprintf(f, "## Training cost (estimates)\n\n| scenario | tokens | GPU | train FLOPs | GPU-hours | MFU | cost USD | days |\n"
                       "|---|---:|---|---:|---:|---:|---:|---:|\n");
            for (int r = 0; r < co.nrow; r++) {
                fputs("| ", f); report_md(f, table_get(&co, r, "label")); fprintf(f, " | %.3g | ", num(&co, r, "tokens"));
                report_md(f, table_get(&co, r, "gpu")); fprintf(f, " %s", table_get(&co, r, "precision"));
                fprintf(f, " | %.3g | %.4g%s | %.1f%%%s | %.4g | %s |\n", num(&co, r, "train_flops"), num(&co, r, "gpu_hours"),
                        !strcmp(table_get(&co, r, "gpu_hours_given"), "yes") ? " (reported)" : "", 100 * num(&co, r, "mfu"),
                        !strcmp(table_get(&co, r, "mfu_given"), "yes") ? " (assumed)" : " (implied)", num(&co, r, "cost_usd"),
                        table_get(&co, r, "days"));
            }
            fprintf(f, "\ntrain FLOPs = 6 x active non-embedding parameters x tokens + attention at the average causal context.\n\n");
        }
        if (pu.nrow) {
            fprintf(f, "## Published (not measured here)\n\n| model | benchmark | value | source |\n|---|---|---:|---|\n");
            for (int r = 0; r < pu.nrow; r++) {
                if (strcmp(table_get(&pu, r, "kind"), "score")) continue;
                fputs("| ", f); report_md(f, table_get(&pu, r, "model")); fputs(" (", f); report_md(f, table_get(&pu, r, "variant"));
                fputs(") | ", f); report_md(f, table_get(&pu, r, "benchmark")); fputs(" ", f); report_md(f, table_get(&pu, r, "metric"));
                fprintf(f, " | %.1f | ", num(&pu, r, "value")); report_md(f, table_get(&pu, r, "source")); fputs(" |\n", f);
            }
            fputc('\n', f);
        }
        fprintf(f, "Charts: accuracy_vs_compute, accuracy_vs_flops_per_token (with evals), decode_vs_batch, kv_vs_context, "
                   "training_cost, roofline (.png, .svg; "
                   "scripts .gp beside their chart_*.dat data).\n");
        if (ferror(f) || fflush(f) || fsync(fileno(f))) rc = err_set(e, "%s: write failed", p);
        fclose(f);
        if (!rc && rename(tmp, p)) rc = err_set(e, "%s: cannot rename into place: %s", p, strerror(errno));
        if (rc) unlink(tmp);
    }
    free(p); free(tmp);
    table_free(&res); table_free(&an); table_free(&co); table_free(&pu); table_free(&ev);
    if (!rc && charts_write(dir, e) < 0) rc = -1;
    return rc;
}
