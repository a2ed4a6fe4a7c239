/*
 * charts.c - gnuplot charts of a run directory. For each chart NAME, C writes the
 * data (chart_NAME.dat: whitespace-separated, strings double-quoted and stripped of
 * quotes and control characters) and a script NAME.gp that reads it and renders
 * NAME.png (pngcairo) and NAME.svg. Scripts contain only numbers computed here and
 * fixed text: no string from a suite or CSV file is ever part of gnuplot code, and
 * labels are drawn with `noenhanced` so no markup in a name is interpreted.
 */
#define _GNU_SOURCE
#include "report.h"
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void dat_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) fputc(*s == '"' ? '\'' : ((unsigned char)*s < 32 || *s == 127) ? ' ' : *s, f);
    fputc('"', f);
}

static FILE *open_in(const char *dir, const char *name, char **path) {
    *path = xasprintf("%s/%s", dir, name);
    return fopen(*path, "w");
}

/* script prologue and epilogue: PNG, then the same plot as SVG */
static void gp_begin(FILE *f, const char *name, const char *title, const char *xl, const char *yl) {
    fprintf(f, "# %s.gp - written by effbench; edit and re-run with: gnuplot %s.gp\n", name, name);
    fprintf(f, "set terminal pngcairo size 1100,720 noenhanced font \"sans,11\"\nset output '%s.png'\n", name);
    fprintf(f, "set datafile separator whitespace\nset title \"%s\" noenhanced\nset xlabel \"%s\" noenhanced\n"
               "set ylabel \"%s\" noenhanced\nset grid\nset key inside bottom right box opaque noenhanced\n", title, xl, yl);
}
static void gp_end(FILE *f, const char *name) {
    fprintf(f, "set terminal svg size 1100,720 noenhanced font \"sans,11\"\nset output '%s.svg'\nreplot\nunset output\n", name);
}

static int render(const char *dir, const char *name) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(126);
        char *gp = xasprintf("%s.gp", name);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) { dup2(devnull, 1); }
        execlp("gnuplot", "gnuplot", gp, (char *)NULL);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) return -2;    /* no gnuplot */
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}


/* ---- the charts --------------------------------------------------------------------- */
typedef struct { char label[160]; double x, y; int kind; } Pt;

static int cmp_x(const void *a, const void *b) {
    const Pt *p = a, *q = b;
    return p->x < q->x ? -1 : p->x > q->x;
}

/* MMLU (the benchmark every published model here reports) against training compute,
 * with measured evals of models whose training tokens the suite gives (kind 2) */
static int chart_accuracy(const char *dir, const Table *pu, const Table *co, const Table *ev, Err *e) {
    (void)e;
    Pt pts[256];
    int n = 0;
    for (int r = 0; r < ev->nrow && n < 256; r++) {
        double x = table_num(ev, r, "train_flops");
        if (!(x > 0) || (r > 0 && !strcmp(table_get(ev, r, "key"), table_get(ev, r - 1, "key")))) continue;
        snprintf(pts[n].label, sizeof pts[n].label, "%s: %s %s (measured)", table_get(ev, r, "model"), table_get(ev, r, "task"),
                 table_get(ev, r, "metric"));
        pts[n].x = x;
        pts[n].y = 100 * table_num(ev, r, "value");
        pts[n].kind = 2;
        n++;
    }
    const char *bench = "MMLU";
    for (int r = 0; r < pu->nrow && n < 256; r++) {
        if (strcmp(table_get(pu, r, "kind"), "score") || strcmp(table_get(pu, r, "benchmark"), bench)) continue;
        const char *m = table_get(pu, r, "model");
        double x = NAN;
        int kind = 0;
        for (int q = 0; q < pu->nrow; q++)
            if (!strcmp(table_get(pu, q, "kind"), "training") && !strcmp(table_get(pu, q, "model"), m) &&
                isfinite(table_num(pu, q, "train_flops"))) { x = table_num(pu, q, "train_flops"); kind = 1; break; }
        for (int q = 0; q < co->nrow && !isfinite(x); q++)
            if (!strcmp(table_get(co, q, "model"), m)) x = table_num(co, q, "train_flops");
        if (!isfinite(x) || !(x > 0)) continue;
        snprintf(pts[n].label, sizeof pts[n].label, "%s", m);
        pts[n].x = x;
        pts[n].y = table_num(pu, r, "value");
        pts[n].kind = kind;
        n++;
    }
    if (n == 0) return 0;
    qsort(pts, (size_t)n, sizeof *pts, cmp_x);
    char *p1, *p2, *p3;
    FILE *d = open_in(dir, "chart_accuracy.dat", &p1), *fr = open_in(dir, "chart_frontier.dat", &p2);
    FILE *g = open_in(dir, "accuracy_vs_compute.gp", &p3);
    int rc = (d && fr && g) ? 1 : -1;
    if (rc > 0) {
        fprintf(d, "# label train_flops score compute_is_published(1)_or_estimated(0)\n");
        fprintf(fr, "# Pareto frontier: no cheaper point scores as high\n");
        double best = -INFINITY;
        for (int i = 0; i < n; i++) {
            dat_str(d, pts[i].label);
            fprintf(d, " %.6g %.6g %d\n", pts[i].x, pts[i].y, pts[i].kind);
            if (pts[i].kind != 2 && pts[i].y > best) {       /* the frontier of published scores */
                best = pts[i].y;
                dat_str(fr, pts[i].label);
                fprintf(fr, " %.6g %.6g\n", pts[i].x, pts[i].y);
            }
        }
        gp_begin(g, "accuracy_vs_compute", "Accuracy against training compute (published MMLU 5-shot of base models; measured evals)",
                 "Training compute (FLOPs, log scale)", "score (%)");
        fprintf(g, "set logscale x\nset format x \"%%.0e\"\nset offsets graph 0.1, graph 0.25, graph 0.05, graph 0.05\n"
                   "plot 'chart_accuracy.dat' using 2:($4==0?$3:1/0) with points pt 7 ps 1.6 lc rgb '#1f77b4' "
                   "title 'published score, compute estimated (effbench cost)', \\\n"
                   "     '' using 2:($4==1?$3:1/0) with points pt 5 ps 1.6 lc rgb '#d62728' title 'published score, published compute', \\\n"
                   "     '' using 2:($4==2?$3:1/0) with points pt 9 ps 1.8 lc rgb '#9467bd' title 'measured here (evals.csv), training compute estimated', \\\n"
                   "     '' using 2:3:1 with labels offset char 1,0.8 left notitle, \\\n"
                   "     'chart_frontier.dat' using 2:3 with linespoints lw 2 pt 6 ps 2.8 lc rgb '#2ca02c' title 'Pareto frontier (no cheaper model scores higher)'\n");
        gp_end(g, "accuracy_vs_compute");
    }
    if (d) fclose(d);
    if (fr) fclose(fr);
    if (g) fclose(g);
    free(p1); free(p2); free(p3);
    return rc;
}

/* one data block per distinct value of column `key`, each with a header line naming it */
static int blocks(FILE *d, const Table *t, const char *key, const char *xcol, const char *ycol, double yscale,
                  const char *filter_col, const char *filter_val) {
    int nb = 0;
    for (int r = 0; r < t->nrow; r++) {
        const char *k = table_get(t, r, key);
        if (filter_col && strcmp(table_get(t, r, filter_col), filter_val)) continue;
        int seen = 0;
        for (int q = 0; q < r && !seen; q++)
            seen = !strcmp(table_get(t, q, key), k) && (!filter_col || !strcmp(table_get(t, q, filter_col), filter_val));
        if (seen) continue;
        if (nb) fprintf(d, "\n\n");
        dat_str(d, k);
        fprintf(d, " \"%s\" \"%s\"\n", xcol, ycol);
        for (int q = r; q < t->nrow; q++) {
            if (strcmp(table_get(t, q, key), k) || (filter_col && strcmp(table_get(t, q, filter_col), filter_val))) continue;
            fprintf(d, "\"\" %.6g %.6g\n", table_num(t, q, xcol), table_num(t, q, ycol) * yscale);
        }
        nb++;
    }
    return nb;
}

static int chart_lines(const char *dir, const Table *t, const char *name, const char *key, const char *xcol, const char *ycol,
                       double yscale, const char *filter_col, const char *filter_val, const char *title, const char *xl,
                       const char *yl, const char *extra) {
    if (!t->nrow) return 0;
    char *pd, *pg, *dn = xasprintf("chart_%s.dat", name);
    FILE *d = open_in(dir, dn, &pd), *g = NULL;
    int rc = -1;
    if (d) {
        int nb = blocks(d, t, key, xcol, ycol, yscale, filter_col, filter_val);
        fclose(d);
        rc = 0;
        char *gn = xasprintf("%s.gp", name);
        if (nb && (g = open_in(dir, gn, &pg))) {
            gp_begin(g, name, title, xl, yl);
            fprintf(g, "%s\nplot for [i=0:%d] '%s' index i using 2:3 with linespoints lw 2 pt 7 title columnheader(1)\n", extra, nb - 1, dn);
            gp_end(g, name);
            fclose(g);
            rc = 1;
        }
        if (nb) free(pg);
        free(gn);
    }
    free(pd); free(dn);
    return rc;
}

static int chart_cost(const char *dir, const Table *co) {
    if (!co->nrow) return 0;
    char *pd, *pg;
    FILE *d = open_in(dir, "chart_cost.dat", &pd), *g = open_in(dir, "training_cost.gp", &pg);
    int rc = d && g ? 1 : -1;
    if (rc > 0) {
        fprintf(d, "# label gpu_hours_millions cost_usd_millions reported(1)_or_from_assumed_mfu(0)\n");
        for (int r = 0; r < co->nrow; r++) {
            dat_str(d, table_get(co, r, "label"));
            fprintf(d, " %.6g %.6g %d\n", table_num(co, r, "gpu_hours") / 1e6, table_num(co, r, "cost_usd") / 1e6,
                    !strcmp(table_get(co, r, "gpu_hours_given"), "yes"));
        }
        fprintf(g, "# training_cost.gp - written by effbench; edit and re-run with: gnuplot training_cost.gp\n"
                   "set terminal pngcairo size 1100,720 noenhanced font \"sans,11\"\nset output 'training_cost.png'\n");
        const char *body =
            "set datafile separator whitespace\nset style data histograms\nset style histogram clustered gap 1\n"
            "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset grid ytics\nset yrange [0:*]\nset xtics rotate by -25 noenhanced\n"
            "set key noenhanced top left\nset multiplot layout 1,2 title \"Training cost: GPU-hours and dollars (estimates; "
            "GPU-hours reported where marked in cost.csv)\" noenhanced\n"
            "set title \"GPU-hours\"\nset ylabel \"millions of GPU-hours\"\n"
            "plot 'chart_cost.dat' using 2:xtic(1) lc rgb '#1f77b4' title 'GPU-hours'\n"
            "set title \"Cost\"\nset ylabel \"millions of USD\"\n"
            "plot 'chart_cost.dat' using 3:xtic(1) lc rgb '#ff7f0e' title 'USD'\nunset multiplot\n";
        fputs(body, g);
        fprintf(g, "set terminal svg size 1100,720 noenhanced font \"sans,11\"\nset output 'training_cost.svg'\n%s", body);
    }
    if (d) fclose(d);
    if (g) fclose(g);
    free(pd); free(pg);
    return rc;
}

/* A roofline plot: min(bw * x, peak) and the labelled points of dat (label x y). The
 * strings are this file's literals, never data. */
static void gp_roofline(FILE *g, double bw, double peak, const char *xrange, const char *roof_title, const char *dat,
                        const char *points_title) {
    fprintf(g, "set logscale xy\nbw = %.6g\npeak = %.6g\nroof(x) = (bw * x < peak) ? bw * x : peak\nset xrange [%s]\n"
               "set samples 400\n"
               "plot roof(x) with lines lw 2 lc rgb '#444444' title sprintf('%s', bw, peak), \\\n"
               "     '%s' using 2:3 with points pt 7 ps 1.3 title '%s', \\\n"
               "     '' using 2:3:1 with labels offset char 1,0.6 left font ',8' notitle\n",
            bw, peak, xrange, roof_title, dat, points_title);
}

static int chart_roofline(const char *dir, const Table *res) {
    double bw = 0, peak = 0;
    int n = 0;
    for (int r = 0; r < res->nrow; r++) {
        double b = table_num(res, r, "triad_gbs"), p = table_num(res, r, "peak_gflops");
        if (b > bw) bw = b;
        if (p > peak) peak = p;
        n++;
    }
    if (!n || !(bw > 0) || !(peak > 0)) return 0;
    char *pd, *pg;
    FILE *d = open_in(dir, "chart_roofline.dat", &pd), *g = open_in(dir, "roofline.gp", &pg);
    int rc = d && g ? 1 : -1;
    if (rc > 0) {
        fprintf(d, "# label flops_per_byte achieved_gflops\n");
        for (int r = 0; r < res->nrow; r++) {
            char lab[300];
            snprintf(lab, sizeof lab, "%s %s", table_get(res, r, "model"), table_get(res, r, "test"));
            dat_str(d, lab);
            fprintf(d, " %.6g %.6g\n", table_num(res, r, "flops_per_step") / table_num(res, r, "bytes_per_step"),
                    table_num(res, r, "gflops"));
        }
        gp_begin(g, "roofline", "Roofline of this machine with the measured cells",
                 "Arithmetic intensity (FLOPs per byte read, log scale)", "GFLOP/s (log scale)");
        gp_roofline(g, bw, peak, "0.05:2000", "roof: STREAM triad %.1f GB/s, SGEMM %.0f GFLOP/s", "chart_roofline.dat",
                    "measured cells");
        gp_end(g, "roofline");
    }
    if (d) fclose(d);
    if (g) fclose(g);
    free(pd); free(pg);
    return rc;
}

/* The measured kernels of a profile (metrics.csv: one point per cell and op) under the
 * device's measured roofs: read bandwidth and the cuBLAS GEMM rate. */
int chart_kernel_roofline(const char *dir, const Table *t, double gbs, double gflops, Err *e) {
    char *pd, *pg;
    FILE *d = open_in(dir, "chart_kernel_roofline.dat", &pd), *g = open_in(dir, "kernel_roofline.gp", &pg);
    int rc = d && g ? 0 : err_set(e, "%s: cannot write the kernel roofline chart", dir);
    int n = 0;
    if (!rc) {
        fprintf(d, "# label flops_per_byte achieved_gflops\n");
        for (int r = 0; r < t->nrow; r++) {
            double f = table_num(t, r, "flops"), b = table_num(t, r, "dram_bytes"), tf = table_num(t, r, "achieved_tflops");
            if (!(f > 0) || !(b > 0) || !(tf > 0)) continue;
            char lab[600];
            snprintf(lab, sizeof lab, "%s %s", table_get(t, r, "op"), table_get(t, r, "cell"));
            dat_str(d, lab);
            fprintf(d, " %.6g %.6g\n", f / b, tf * 1e3);
            n++;
        }
        gp_begin(g, "kernel_roofline", "GPU roofline with the engine's ops (range profiler counters)",
                 "Arithmetic intensity (FLOPs per DRAM byte, log scale)", "GFLOP/s (log scale)");
        gp_roofline(g, gbs, gflops, "0.01:10000", "roof: read %.0f GB/s, cuBLAS %.0f GFLOP/s", "chart_kernel_roofline.dat",
                    "ops (measured)");
        gp_end(g, "kernel_roofline");
    }
    if (d) fclose(d);
    if (g) fclose(g);
    if (!rc && n) {
        int r = render(dir, "kernel_roofline");
        if (r == -2) fprintf(stderr, "effbench: gnuplot not found: %s/kernel_roofline.gp written, not rendered\n", dir);
        else if (r) rc = err_set(e, "%s/kernel_roofline.gp: gnuplot failed", dir);
    }
    free(pd); free(pg);
    return rc;
}

/* accuracy against FLOPs per token: measured evals (evals.csv, first metric of each
 * model and task) and published scores at the analytic FLOPs of their models */
static int chart_acc_flops(const char *dir, const Table *ev, const Table *pu, const Table *an) {
    char *pd, *pg;
    FILE *d = open_in(dir, "chart_acc_flops.dat", &pd);
    int n = 0, rc = d ? 0 : -1;
    if (d) {
        fprintf(d, "# label flops_per_token value measured(0)_or_published(1) bytes_per_decode_token\n");
        for (int r = 0; r < ev->nrow; r++) {
            if (r > 0 && !strcmp(table_get(ev, r, "key"), table_get(ev, r - 1, "key"))) continue;   /* first metric only */
            char lab[300];
            snprintf(lab, sizeof lab, "%s: %s %s", table_get(ev, r, "model"), table_get(ev, r, "task"), table_get(ev, r, "metric"));
            dat_str(d, lab);
            double v = table_num(ev, r, "value");
            fprintf(d, " %.6g %.6g 0 %.6g\n", table_num(ev, r, "flops_per_token"), strcmp(table_get(ev, r, "type"), "perplexity") ? 100 * v : v,
                    table_num(ev, r, "bytes_per_decode_token"));
            n++;
        }
        for (int r = 0; r < pu->nrow; r++) {
            if (strcmp(table_get(pu, r, "kind"), "score") || strcmp(table_get(pu, r, "benchmark"), "MMLU")) continue;
            for (int q = 0; q < an->nrow; q++)
                if (!strcmp(table_get(an, q, "model"), table_get(pu, r, "model"))) {
                    char lab[300];
                    snprintf(lab, sizeof lab, "%s: MMLU", table_get(pu, r, "model"));
                    dat_str(d, lab);
                    fprintf(d, " %.6g %.6g 1 %.6g\n", table_num(an, q, "flops_per_token"), table_num(pu, r, "value"),
                            table_num(an, q, "bytes_per_decode_token"));
                    n++;
                    break;
                }
        }
        fclose(d);
    }
    if (n && (rc = 1) && (d = open_in(dir, "accuracy_vs_flops_per_token.gp", &pg))) {
        fprintf(d, "# accuracy_vs_flops_per_token.gp - written by effbench; edit and re-run with: gnuplot accuracy_vs_flops_per_token.gp\n");
        const char *body =
            "set datafile separator whitespace\nset grid\nset logscale x\nset format x \"%.0e\"\n"
            "set key inside bottom right box opaque noenhanced\nset offsets graph 0.1, graph 0.35, graph 0.08, graph 0.08\n"
            "set multiplot layout 1,2 title \"Accuracy against inference compute and memory traffic: measured evals (circles) "
            "and published MMLU at analytic figures (squares)\" noenhanced\n"
            "set xlabel \"FLOPs per token (forward, log scale)\"\nset ylabel \"score (%)\"\n"
            "plot 'chart_acc_flops.dat' using 2:($4==0?$3:1/0) with points pt 7 ps 1.6 lc rgb '#1f77b4' title 'measured here', \\\n"
            "     '' using 2:($4==1?$3:1/0) with points pt 5 ps 1.6 lc rgb '#d62728' title 'published', \\\n"
            "     '' using 2:3:1 with labels offset char 1,0.8 left font ',8' notitle\n"
            "set xlabel \"bytes read per decode token, batch 1 (log scale)\"\n"
            "plot 'chart_acc_flops.dat' using 5:($4==0?$3:1/0) with points pt 7 ps 1.6 lc rgb '#1f77b4' title 'measured here', \\\n"
            "     '' using 5:($4==1?$3:1/0) with points pt 5 ps 1.6 lc rgb '#d62728' title 'published', \\\n"
            "     '' using 5:3:1 with labels offset char 1,0.8 left font ',8' notitle\nunset multiplot\n";
        fprintf(d, "set terminal pngcairo size 1400,700 noenhanced font \"sans,11\"\nset output 'accuracy_vs_flops_per_token.png'\n%s", body);
        fprintf(d, "set terminal svg size 1400,700 noenhanced font \"sans,11\"\nset output 'accuracy_vs_flops_per_token.svg'\n%s", body);
        fclose(d);
        free(pg);
    }
    free(pd);
    return n ? rc : 0;
}

int charts_write(const char *dir, Err *e) {
    Table res, pu, co, kv, ev, an;
    if (csv_table_read_opt(dir, "results.csv", &res, e)) return -1;
    if (csv_table_read_opt(dir, "published.csv", &pu, e) || csv_table_read_opt(dir, "cost.csv", &co, e) || csv_table_read_opt(dir, "kv.csv", &kv, e) ||
        csv_table_read_opt(dir, "evals.csv", &ev, e) || csv_table_read_opt(dir, "analytic.csv", &an, e)) {
        table_free(&res); table_free(&pu); table_free(&co); table_free(&kv); table_free(&ev);
        return -1;
    }
    const char *names[6] = { "accuracy_vs_compute", "decode_vs_batch", "kv_vs_context", "training_cost", "roofline",
                             "accuracy_vs_flops_per_token" };
    int made[6];
    made[0] = chart_accuracy(dir, &pu, &co, &ev, e);
    /* decode cells are the rows with latency percentiles */
    made[1] = chart_lines(dir, &res, "decode_vs_batch", "model", "batch", "tokens_per_s", 1.0, "percentile_method",
                          "nearest rank over all decode steps", "Decode throughput against batch size (measured on this machine)",
                          "batch size (sequences, log scale)", "tokens/s (all sequences)", "set logscale x 2");
    made[2] = chart_lines(dir, &kv, "kv_vs_context", "model", "ctx", "kv_gib_per_sequence", 1.0, NULL, NULL,
                          "KV-cache size of one sequence against context length (BF16 cache)", "context length (tokens, log scale)",
                          "GiB per sequence (log scale)", "set logscale xy");
    made[3] = chart_cost(dir, &co);
    made[4] = chart_roofline(dir, &res);
    made[5] = ev.nrow ? chart_acc_flops(dir, &ev, &pu, &an) : 0;
    int rendered = 0, missing = 0, failed = 0;
    for (int i = 0; i < 6; i++) {
        if (made[i] <= 0) continue;
        int r = render(dir, names[i]);
        if (r == 0) rendered++;
        else if (r == -2) missing = 1;
        else { failed++; fprintf(stderr, "effbench: gnuplot failed on %s/%s.gp\n", dir, names[i]); }
    }
    if (missing) fprintf(stderr, "effbench: gnuplot not found: chart scripts written to %s, not rendered (apt-get install gnuplot-nox)\n", dir);
    table_free(&res); table_free(&pu); table_free(&co); table_free(&kv); table_free(&ev); table_free(&an);
    if (failed) return err_set(e, "%s: %d chart(s) failed to render", dir, failed);
    return rendered;
}
