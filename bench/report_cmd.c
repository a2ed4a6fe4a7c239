/*
 * report_cmd.c - `effbench report DIR` (re-render summary.md and the charts from the
 * CSV files of a run) and `effbench compare A.csv B.csv` (for the cells two
 * results.csv files share, the ratio B/A of each figure).
 */
#include "cli.h"
#include "report.h"
#include "table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_report(const Opts *o) {
    if (o->n_args != 1) { fprintf(stderr, "effbench report: usage: effbench report DIR\n"); return -2; }
    Err e = { "" };
    if (report_render(o->args[0], &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    fprintf(stderr, "effbench: wrote %s/summary.md and charts\n", o->args[0]);
    return 0;
}

static const char *FIGS[] = { "tokens_per_s", "median_ms", "p99_ms", "gflops", "gbs", "of_roofline", "peak_rss_bytes" };
#define N_FIGS ((int)(sizeof FIGS / sizeof FIGS[0]))

int cmd_compare(const Opts *o) {
    if (o->n_args != 2) { fprintf(stderr, "effbench compare: usage: effbench compare A.csv B.csv\n"); return -2; }
    Table a, b;
    Err e = { "" };
    if (csv_table_read(o->args[0], &a, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    if (csv_table_read(o->args[1], &b, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); table_free(&a); return -1; }
    int rc = 0;
    /* a cell is known by model, workload and test; the backend may differ on purpose */
    const char *id[3] = { "model", "workload", "test" };
    for (int k = 0; k < 3 && !rc; k++)
        if (table_col(&a, id[k]) < 0 || table_col(&b, id[k]) < 0) {
            fprintf(stderr, "effbench compare: %s has no \"%s\" column (not a results.csv)\n",
                    table_col(&a, id[k]) < 0 ? o->args[0] : o->args[1], id[k]);
            rc = -1;
        }
    int shared = 0;
    if (!rc) {
        printf("| model | workload | test | figure | A | B | B/A |\n|---|---|---|---|---:|---:|---:|\n");
        for (int i = 0; i < a.nrow; i++)
            for (int j = 0; j < b.nrow; j++) {
                int same = 1;
                for (int k = 0; k < 3; k++) same &= !strcmp(table_get(&a, i, id[k]), table_get(&b, j, id[k]));
                if (!same) continue;
                shared++;
                for (int f = 0; f < N_FIGS; f++) {
                    double x = table_num(&a, i, FIGS[f]), y = table_num(&b, j, FIGS[f]);
                    if (!isfinite(x) || !isfinite(y)) continue;
                    char ratio[32];
                    if (x != 0) snprintf(ratio, sizeof ratio, "%.3f", y / x);
                    else snprintf(ratio, sizeof ratio, "n/a");
                    for (int k = 0; k < 3; k++) { fputs("| ", stdout); report_md(stdout, table_get(&a, i, id[k])); fputc(' ', stdout); }
                    printf("| %s | %.4g | %.4g | %s |\n", FIGS[f], x, y, ratio);
                }
                break;
            }
        fprintf(stderr, "effbench compare: %d cells in common (A: %s, %d rows; B: %s, %d rows)\n", shared, o->args[0], a.nrow,
                o->args[1], b.nrow);
        if (!shared) rc = -1;
    }
    table_free(&a); table_free(&b);
    return rc;
}
