/*
 * report.c - summary.md from the CSV files of a run directory. Every figure it shows is
 * read from a row (the runner computes them); this file only picks, formats and escapes.
 * It reads no suite, config or checkpoint, so `effbench report DIR` works on a copied
 * directory alone.
 */
#define _GNU_SOURCE
#include "report.h"
#include "table.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

/* a figure, or an empty cell when the field is empty (NaN) */
static void put_num(FILE *f, const char *fmt, double v) {
    if (isfinite(v)) fprintf(f, fmt, v);
}

static void put_cells(FILE *f, const Table *t, int r, const char *const *cols, int n) {
    for (int i = 0; i < n; i++) { fputs("| ", f); report_md(f, table_get(t, r, cols[i])); fputc(' ', f); }
}

static void sec_skipped(FILE *f, const Table *sk) {
    if (!sk->nrow) return;
    fprintf(f, "## Skipped models\n\nOptional models of the suite whose file is missing: they have no cells, evals, "
               "analytic rows or cost scenarios here; everything else was measured.\n\n"
               "| model | missing file | reason | to get it |\n|---|---|---|---|\n");
    static const char *cols[] = { "model", "missing_file", "reason", "fetch_hint" };
    for (int r = 0; r < sk->nrow; r++) { put_cells(f, sk, r, cols, 4); fputs("|\n", f); }
    fputc('\n', f);
}

static void sec_measured(FILE *f, const Table *res) {
    if (!res->nrow) return;
    fprintf(f, "## Measured on this machine\n\n");
    report_md(f, table_get(res, 0, "device"));
    fputs("; backend ", f); report_md(f, table_get(res, 0, "backend"));
    fputs("; commit ", f); report_md(f, table_get(res, 0, "commit"));
    fprintf(f, ".\n\n| model | stands for | weights | test | tokens/s | ms/step (median) | p99 ms | GFLOP/s | GB/s | bound | "
               "of roofline |\n|---|---|---|---|---:|---:|---:|---:|---:|---|---:|\n");
    for (int r = 0; r < res->nrow; r++) {
        static const char *cols[] = { "model", "scaled_from", "weights", "dtype", "test" };
        fputs("| ", f); report_md(f, table_get(res, r, cols[0])); fputs(" | ", f); report_md(f, table_get(res, r, cols[1]));
        fputs(" | ", f); report_md(f, table_get(res, r, cols[2])); fputc(' ', f); report_md(f, table_get(res, r, cols[3]));
        fputs(" | ", f); report_md(f, table_get(res, r, cols[4])); fputs(" | ", f);
        put_num(f, "%.1f", num(res, r, "tokens_per_s")); fputs(" | ", f);
        put_num(f, "%.2f", num(res, r, "median_ms")); fputs(" | ", f);
        put_num(f, "%.2f", num(res, r, "p99_ms")); fputs(" | ", f);
        put_num(f, "%.1f", num(res, r, "gflops")); fputs(" | ", f);
        put_num(f, "%.2f", num(res, r, "gbs")); fputs(" | ", f);
        report_md(f, table_get(res, r, "bound")); fputs(" | ", f);
        put_num(f, "%.0f%%", 100 * num(res, r, "of_roofline")); fputs(" |\n", f);
    }
    fprintf(f, "\nRoofline: max(bytes read / STREAM triad, FLOPs / OpenBLAS SGEMM), both measured on this machine before "
               "each model's cells (columns triad_gbs, sgemm_gflops, peak_gflops of results.csv).\n\n");
}

static void sec_evals(FILE *f, const Table *ev) {
    if (!ev->nrow) return;
    fprintf(f, "## Evals (measured here; dummy weights score as random weights do)\n\n"
               "| model | task | metric | value | stderr | n | FLOPs/token (ctx 512) | training FLOPs (estimated) | weights |\n"
               "|---|---|---|---:|---:|---:|---:|---:|---|\n");
    for (int r = 0; r < ev->nrow; r++) {
        static const char *cols[] = { "model", "task", "metric" };
        put_cells(f, ev, r, cols, 3);
        fputs("| ", f); put_num(f, "%.4f", num(ev, r, "value"));
        fputs(" | ", f); put_num(f, "%.4g", num(ev, r, "stderr"));
        fputs(" | ", f); put_num(f, "%.0f", num(ev, r, "n"));
        fputs(" | ", f); put_num(f, "%.3g", num(ev, r, "flops_per_token"));
        fputs(" | ", f); put_num(f, "%.3g", num(ev, r, "train_flops"));
        fputs(" | ", f); report_md(f, table_get(ev, r, "weights")); fputc(' ', f); report_md(f, table_get(ev, r, "dtype"));
        fputs(" |\n", f);
    }
    fprintf(f, "\nTraining FLOPs where the suite gives the model's train_tokens: 6 x active non-embedding parameters x tokens "
               "+ attention at the average causal context of 4096-token sequences.\n\n");
}

static void sec_analytic(FILE *f, const Table *an) {
    if (!an->nrow) return;
    fprintf(f, "## Analytic (from each model's config)\n\n| model | params total | params active | KV bytes/token (BF16) | "
               "KV GiB at 128K | GFLOP/token at 4K | decode bytes/token at 4K |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int r = 0; r < an->nrow; r++) {
        fputs("| ", f); report_md(f, table_get(an, r, "model"));
        fputs(" | ", f); put_num(f, "%.2f B", num(an, r, "params_total") / 1e9);
        fputs(" | ", f); put_num(f, "%.2f B", num(an, r, "params_active") / 1e9);
        fputs(" | ", f); put_num(f, "%.0f", num(an, r, "kv_bytes_per_token"));
        fputs(" | ", f); put_num(f, "%.2f", num(an, r, "kv_gib_per_sequence_at_128k"));
        fputs(" | ", f); put_num(f, "%.1f", num(an, r, "flops_per_token") / 1e9);
        fputs(" | ", f); put_num(f, "%.3g", num(an, r, "bytes_per_decode_token"));
        fputs(" |\n", f);
    }
    fputc('\n', f);
}

static void sec_cost(FILE *f, const Table *co) {
    if (!co->nrow) return;
    fprintf(f, "## Training cost (estimates)\n\n| scenario | tokens | GPU | train FLOPs | GPU-hours | MFU | cost USD | days |\n"
               "|---|---:|---|---:|---:|---:|---:|---:|\n");
    for (int r = 0; r < co->nrow; r++) {
        fputs("| ", f); report_md(f, table_get(co, r, "label"));
        fputs(" | ", f); put_num(f, "%.3g", num(co, r, "tokens"));
        fputs(" | ", f); report_md(f, table_get(co, r, "gpu")); fputc(' ', f); report_md(f, table_get(co, r, "precision"));
        fputs(" | ", f); put_num(f, "%.3g", num(co, r, "train_flops"));
        fputs(" | ", f); put_num(f, "%.4g", num(co, r, "gpu_hours"));
        fputs(!strcmp(table_get(co, r, "gpu_hours_given"), "yes") ? " (reported)" : "", f);
        fputs(" | ", f); put_num(f, "%.1f%%", 100 * num(co, r, "mfu"));
        fputs(!strcmp(table_get(co, r, "mfu_given"), "yes") ? " (assumed)" : " (implied)", f);
        fputs(" | ", f); put_num(f, "%.4g", num(co, r, "cost_usd"));
        fputs(" | ", f); report_md(f, table_get(co, r, "days"));
        fputs(" |\n", f);
    }
    fprintf(f, "\ntrain FLOPs = 6 x active non-embedding parameters x tokens + attention at the average causal context.\n\n");
}

static void sec_published(FILE *f, const Table *pu) {
    int any = 0;
    for (int r = 0; r < pu->nrow; r++) any |= !strcmp(table_get(pu, r, "kind"), "score");
    if (!any) return;
    fprintf(f, "## Published scores (not measured here)\n\n| model | benchmark | shots | value | source |\n|---|---|---:|---:|---|\n");
    for (int r = 0; r < pu->nrow; r++) {
        if (strcmp(table_get(pu, r, "kind"), "score")) continue;
        fputs("| ", f); report_md(f, table_get(pu, r, "model"));
        if (*table_get(pu, r, "variant")) { fputs(" (", f); report_md(f, table_get(pu, r, "variant")); fputc(')', f); }
        fputs(" | ", f); report_md(f, table_get(pu, r, "benchmark")); fputc(' ', f); report_md(f, table_get(pu, r, "metric"));
        fputs(" | ", f); put_num(f, "%.0f", num(pu, r, "shots"));
        fputs(" | ", f); put_num(f, "%.1f", num(pu, r, "value"));
        fputs(" | ", f); report_md(f, table_get(pu, r, "source"));
        fputs(" |\n", f);
    }
    fputc('\n', f);
}

/* measured scores beside published ones for the same model and benchmark (comparison.csv) */
static void sec_comparison(FILE *f, const Table *cm) {
    if (!cm->nrow) return;
    fprintf(f, "## Measured beside published (same model and benchmark)\n\n"
               "| model | task | metric | measured | stderr | published | difference | within stderr | source |\n"
               "|---|---|---|---:|---:|---|---:|---|---|\n");
    for (int r = 0; r < cm->nrow; r++) {
        static const char *cols[] = { "model", "task", "metric" };
        put_cells(f, cm, r, cols, 3);
        fputs(" | ", f); put_num(f, "%.1f", num(cm, r, "measured_pct"));
        fputs(" | ", f); put_num(f, "%.1f", num(cm, r, "stderr_pct"));
        fputs(" | ", f); put_num(f, "%.1f", num(cm, r, "published_pct"));
        fputc(' ', f); report_md(f, table_get(cm, r, "published_benchmark"));
        fputc(' ', f); report_md(f, table_get(cm, r, "published_metric"));
        fputs(", ", f); put_num(f, "%.0f", num(cm, r, "shots")); fputs("-shot", f);
        fputs(" | ", f); put_num(f, "%+.1f", num(cm, r, "difference_pct"));
        fputs(" | ", f); report_md(f, table_get(cm, r, "within_stderr"));
        fputs(" | ", f); report_md(f, table_get(cm, r, "source"));
        fputs(" |\n", f);
    }
    fprintf(f, "\nPublished scores may come from other prompts, shots or harnesses; the difference is measured minus "
               "published, in points.\n\n");
}

enum { T_RES, T_EV, T_AN, T_CO, T_PU, T_SK, T_CM, T_N };
static const char *const TABLE_FILES[T_N] = { "results.csv", "evals.csv", "analytic.csv", "cost.csv", "published.csv", "skipped.csv",
                                              "comparison.csv" };

int report_render(const char *dir, Err *e) {
    Table t[T_N];
    int n = 0, any = 0;
    for (; n < T_N; n++) {
        if (csv_table_read_opt(dir, TABLE_FILES[n], &t[n], e)) break;
        any |= t[n].head != NULL;
    }
    int rc = n < T_N ? -1 : 0;
    if (!rc && !any) rc = err_set(e, "%s: no results.csv, evals.csv, analytic.csv, cost.csv or published.csv to report", dir);
    char *p = xasprintf("%s/summary.md", dir), *tmp = xasprintf("%s/summary.md.tmp.%d", dir, (int)getpid());
    FILE *f = rc ? NULL : fopen(tmp, "w");
    if (!rc && !f) rc = err_set(e, "%s: cannot write: %s", p, strerror(errno));
    if (f) {
        fprintf(f, "# effbench summary\n\n");
        sec_skipped(f, &t[T_SK]);
        sec_measured(f, &t[T_RES]);
        sec_evals(f, &t[T_EV]);
        sec_comparison(f, &t[T_CM]);
        sec_analytic(f, &t[T_AN]);
        sec_cost(f, &t[T_CO]);
        sec_published(f, &t[T_PU]);
        fprintf(f, "Charts: accuracy_vs_compute and accuracy_vs_flops_per_token (measured evals as circles, published scores "
                   "as squares; points in accuracy.csv), decode_vs_batch, kv_vs_context, training_cost, roofline (.png, .svg; "
                   "scripts .gp beside their chart_*.dat data).\n");
        if (ferror(f) || fflush(f) || fsync(fileno(f))) rc = err_set(e, "%s: write failed", p);
        fclose(f);
        if (!rc && rename(tmp, p)) rc = err_set(e, "%s: cannot rename into place: %s", p, strerror(errno));
        if (rc) unlink(tmp);
    }
    free(p); free(tmp);
    for (int i = 0; i < n; i++) table_free(&t[i]);
    if (!rc && charts_write(dir, e) < 0) rc = -1;
    return rc;
}
