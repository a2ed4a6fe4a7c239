/*
 * charts.c - gnuplot charts of a run directory. For each chart NAME, C writes the
 * data (chart_NAME.dat: whitespace-separated, strings double-quoted and stripped of
 * quotes and control characters) and a script NAME.gp that reads it and renders
 * NAME.png (pngcairo) and NAME.svg. Scripts contain only numbers computed here and
 * fixed text: no string from a suite or CSV file is ever part of gnuplot code, and
 * labels are drawn with `noenhanced` so no markup in a name is interpreted.
 *
 * Layout: every chart's key sits outside its plotting area (to the right), so no
 * point is ever under it. Charts with labelled points fix the plotting area on the
 * canvas (margins at screen fractions) and their axis ranges, so C knows where each
 * point lands in pixels and places each label beside its point where it covers no
 * other point and no other label (place_labels). The data files carry each label's
 * position; a user who changes a range in the script keeps labels near their points.
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

/* ---- files ---------------------------------------------------------------------------- */
/* a string for a .dat file: quoted, its quotes and control characters replaced; at most
 * max characters (UTF-8 sequences kept whole), longer ones end in "..." */
static void dat_str_max(FILE *f, const char *s, int max) {
    fputc('"', f);
    int n = 0;
    const char *p = s;
    for (; *p; p++) n += ((unsigned char)*p & 0xC0) != 0x80;
    int cut = max > 3 && n > max ? max - 3 : -1, k = 0;
    for (p = s; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80 && cut >= 0 && k++ == cut) { fputs("...", f); break; }
        fputc(*p == '"' ? '\'' : ((unsigned char)*p < 32 || *p == 127) ? ' ' : *p, f);
    }
    fputc('"', f);
}
static void dat_str(FILE *f, const char *s) { dat_str_max(f, s, 0); }

/* characters as drawn (UTF-8 continuation bytes not counted), capped as dat_str_max does */
static int text_len(const char *s, int max) {
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return max > 3 && n > max ? max : n;
}

static FILE *open_in(const char *dir, const char *name, char **path) {
    *path = xasprintf("%s/%s", dir, name);
    return fopen(*path, "w");
}

/* NAME.gp: the same body rendered to NAME.png, then NAME.svg */
static int gp_write(const char *dir, const char *name, int w, int h, const char *body) {
    char *pg, *gn = xasprintf("%s.gp", name);
    FILE *g = open_in(dir, gn, &pg);
    free(gn);
    if (!g) { free(pg); return -1; }
    fprintf(g, "# %s.gp - written by effbench; edit and re-run with: gnuplot %s.gp\n", name, name);
    fprintf(g, "set terminal pngcairo size %d,%d noenhanced font \"sans,11\"\nset output '%s.png'\n%s", w, h, name, body);
    fprintf(g, "set terminal svg size %d,%d noenhanced font \"sans,11\"\nset output '%s.svg'\n%s", w, h, name, body);
    fprintf(g, "unset output\n");
    int rc = fclose(g) ? -1 : 0;
    free(pg);
    return rc;
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

/* ---- layout: a plotting area fixed on the canvas --------------------------------------- */
#define KEY_X 0.675              /* left edge of the key, screen fraction: right of every plot */
#define LABEL_PT 9.0             /* point labels: font size */
#define LABEL_MAX 40             /* point labels: characters at most */
#define TITLE_MAX 44             /* key entries from data: characters at most */

typedef struct {
    int w, h;                    /* canvas, pixels */
    double l, r, b, t;           /* plotting area, screen fractions from the left and the bottom */
    double x0, x1, y0, y1;       /* axis ranges */
    int logx, logy;
} Frame;

static double axv(double v, int lg) { return lg ? log10(v) : v; }

static void frame_px(const Frame *F, double x, double y, double *px, double *py) {
    double fx = (axv(x, F->logx) - axv(F->x0, F->logx)) / (axv(F->x1, F->logx) - axv(F->x0, F->logx));
    double fy = (axv(y, F->logy) - axv(F->y0, F->logy)) / (axv(F->y1, F->logy) - axv(F->y0, F->logy));
    *px = (F->l + (F->r - F->l) * fx) * F->w;
    *py = (F->b + (F->t - F->b) * fy) * F->h;
}

static void frame_data(const Frame *F, double px, double py, double *x, double *y) {
    double fx = (px / F->w - F->l) / (F->r - F->l), fy = (py / F->h - F->b) / (F->t - F->b);
    double ax = axv(F->x0, F->logx) + fx * (axv(F->x1, F->logx) - axv(F->x0, F->logx));
    double ay = axv(F->y0, F->logy) + fy * (axv(F->y1, F->logy) - axv(F->y0, F->logy));
    *x = F->logx ? pow(10, ax) : ax;
    *y = F->logy ? pow(10, ay) : ay;
}

/* An axis range holding the finite (and, on a log axis, positive) values of v, widened
 * by lo and hi times the span on each side; a log axis spans at least two decades
 * (two labelled tics). */
static void frame_range(const double *v, int n, int lg, double lo, double hi, double *r0, double *r1) {
    double a = INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]) || (lg && !(v[i] > 0))) continue;
        double x = axv(v[i], lg);
        if (x < a) a = x;
        if (x > b) b = x;
    }
    if (!(a <= b)) { a = 0; b = 1; }
    double span = b - a;
    if (lg && span < 2) { a -= (2 - span) / 2; b += (2 - span) / 2; span = 2; }
    if (!lg && span <= 0) { span = fabs(b) > 0 ? fabs(b) * 0.2 : 1; a -= span / 2; b += span / 2; }
    a -= lo * span;
    b += hi * span;
    *r0 = lg ? pow(10, a) : a;
    *r1 = lg ? pow(10, b) : b;
}

/* the script lines that fix the plotting area and the ranges */
static void gp_frame(FILE *g, const Frame *F) {
    fprintf(g, "set lmargin at screen %.4f\nset rmargin at screen %.4f\nset bmargin at screen %.4f\nset tmargin at screen %.4f\n",
            F->l, F->r, F->b, F->t);
    fprintf(g, "%s\nset xrange [%.6g:%.6g]\nset yrange [%.6g:%.6g]\n",
            F->logx && F->logy ? "set logscale xy" : F->logx ? "set logscale x" : F->logy ? "set logscale y" : "unset logscale",
            F->x0, F->x1, F->y0, F->y1);
}

/* "plot A, B, ..." of the elements that are not NULL (and frees them). An element that
 * would have no point is left out rather than written: gnuplot 5.4 crashes on labels
 * whose every point is undefined. */
static void gp_plot(FILE *g, char **el, int n) {
    const char *sep = "plot ";
    for (int i = 0; i < n; i++) {
        if (!el[i]) continue;
        fprintf(g, "%s%s", sep, el[i]);
        sep = ", \\\n     ";
        free(el[i]);
    }
    fputc('\n', g);
}

/* the key outside the plotting area, to the right, top-aligned with it */
static void gp_key(FILE *g, double top) {
    fprintf(g, "set key at screen %.4f, screen %.4f left top Left reverse box noenhanced samplen 2 spacing 1.3\n", KEY_X, top);
}

/* ---- labels beside their points ------------------------------------------------------- */
typedef struct { double x0, y0, x1, y1; } Box;

static double overlap(Box a, Box b) {
    double w = fmin(a.x1, b.x1) - fmax(a.x0, b.x0), h = fmin(a.y1, b.y1) - fmax(a.y0, b.y0);
    return w > 0 && h > 0 ? w * h : 0;
}

/* Places a label of len[i] characters beside each of the n points (x[i], y[i]) of F:
 * the first of the candidate positions (right, left, above, below, then further out)
 * whose box covers no point, no label placed before, no stretch of the polyline `line`
 * (nline (x, y) pairs in data coordinates, e.g. the roof; may be NULL) and nothing
 * outside the plotting area; when none is free, the one that covers least. Character box: 0.8 x 1.5 times
 * the font size in pixels (pngcairo's sans, measured on these charts, rounded up).
 * lx, ly: each label's left end, vertically centred (gnuplot `with labels left`), in
 * data coordinates. Points with a non-finite coordinate get NaN. */
static void place_labels(const Frame *F, const double *x, const double *y, const int *len, int n, double point_r,
                         const double *line, int nline, double *lx, double *ly) {
    double cw = 0.8 * LABEL_PT, ch = 1.5 * LABEL_PT, g = point_r + 3;
    double *px = xcalloc((size_t)n + 1, sizeof *px), *py = xcalloc((size_t)n + 1, sizeof *py);
    Box *placed = xcalloc((size_t)n + 1, sizeof *placed);
    int np = 0;
    for (int i = 0; i < n; i++) {
        if (isfinite(x[i]) && isfinite(y[i])) frame_px(F, x[i], y[i], &px[i], &py[i]);
        else px[i] = py[i] = NAN;
    }
    Box area = { F->l * F->w, F->b * F->h, F->r * F->w, F->t * F->h };
    /* the polyline as samples every 2 pixels */
    int ns = 0, cap = 0;
    double *sx = NULL, *sy = NULL;
    for (int k = 0; k + 1 < nline; k++) {
        double ax, ay, bx, by;
        frame_px(F, line[2 * k], line[2 * k + 1], &ax, &ay);
        frame_px(F, line[2 * k + 2], line[2 * k + 3], &bx, &by);
        if (!isfinite(ax + ay + bx + by)) continue;
        int steps = (int)fmin(hypot(bx - ax, by - ay) / 2, 4000) + 1;
        for (int q = 0; q <= steps; q++) {
            if (ns == cap) { cap = cap ? 2 * cap : 256; sx = realloc(sx, sizeof *sx * cap); sy = realloc(sy, sizeof *sy * cap); }
            if (!sx || !sy) { fprintf(stderr, "effbench: out of memory\n"); exit(3); }
            sx[ns] = ax + (bx - ax) * q / steps;
            sy[ns++] = ay + (by - ay) * q / steps;
        }
    }
    for (int i = 0; i < n; i++) {
        lx[i] = ly[i] = NAN;
        if (!isfinite(px[i])) continue;
        double W = len[i] * cw, best = INFINITY, bx = 0, by = 0;
        /* candidates: horizontal side (0 right, 1 left, 2 centred) and rows of ch */
        static const struct { int side; double row; } cand[] = {
            { 0, 0 }, { 0, 0.8 }, { 0, -0.8 }, { 1, 0 }, { 1, 0.8 }, { 1, -0.8 }, { 2, 1 }, { 2, -1 },
            { 0, 1.6 }, { 0, -1.6 }, { 1, 1.6 }, { 1, -1.6 }, { 2, 2 }, { 2, -2 },
            { 0, 2.4 }, { 0, -2.4 }, { 1, 2.4 }, { 1, -2.4 }, { 2, 3 }, { 2, -3 },
        };
        for (size_t k = 0; k < sizeof cand / sizeof cand[0] && best > 0; k++) {
            double ax = px[i] + (cand[k].side == 0 ? g : cand[k].side == 1 ? -g - W : -W / 2);
            double ay = py[i] + (cand[k].side == 2 ? copysign(g + (fabs(cand[k].row) - 0.5) * ch, cand[k].row) : cand[k].row * ch);
            Box b = { ax, ay - ch / 2, ax + W, ay + ch / 2 };
            double cost = 2 * fmax((b.x1 - b.x0) * (b.y1 - b.y0) - overlap(b, area), 0);     /* outside the area */
            for (int j = 0; j < np; j++) cost += overlap(b, placed[j]);
            for (int j = 0; j < n; j++) {
                if (j == i || !isfinite(px[j])) continue;
                Box pb = { px[j] - point_r, py[j] - point_r, px[j] + point_r, py[j] + point_r };
                cost += overlap(b, pb);
            }
            for (int q = 0; q < ns; q++) cost += (sx[q] >= b.x0 && sx[q] <= b.x1 && sy[q] >= b.y0 && sy[q] <= b.y1) * 2 * ch;
            if (cost < 0.5) cost = 0;                  /* rounding, not a covered pixel */
            if (cost < best) { best = cost; bx = ax; by = ay; }
        }
        placed[np++] = (Box){ bx, by - ch / 2, bx + W, by + ch / 2 };
        frame_data(F, bx, by, &lx[i], &ly[i]);
    }
    free(px); free(py); free(placed); free(sx); free(sy);
}

/* ---- accuracy (accuracy.csv) ---------------------------------------------------------- */
/* the point kinds of the accuracy charts' data files */
enum { ACC_PUB_ESTIMATED = 0, ACC_PUB_PUBLISHED = 1, ACC_MEASURED = 2 };

typedef struct { char label[300]; double x, y, err, bytes; int kind; } Pt;

static int cmp_x(const void *a, const void *b) {
    const Pt *p = a, *q = b;
    return p->x < q->x ? -1 : p->x > q->x;
}

static void point_label(const Table *acc, int r, char *out, size_t len) {
    if (!strcmp(table_get(acc, r, "kind"), "measured"))
        snprintf(out, len, "%s: %s %s", table_get(acc, r, "model"), table_get(acc, r, "benchmark"), table_get(acc, r, "metric"));
    else snprintf(out, len, "%s", table_get(acc, r, "model"));
}

/* the rows of accuracy.csv with a positive value in column xcol */
static int acc_points(const Table *acc, const char *xcol, Pt **out) {
    Pt *p = xcalloc((size_t)acc->nrow + 1, sizeof *p);
    int n = 0;
    for (int r = 0; r < acc->nrow; r++) {
        double x = table_num(acc, r, xcol), y = table_num(acc, r, "score_pct");
        if (!(x > 0) || !isfinite(y)) continue;
        int measured = !strcmp(table_get(acc, r, "kind"), "measured");
        point_label(acc, r, p[n].label, sizeof p[n].label);
        p[n].x = x;
        p[n].y = y;
        p[n].err = measured && isfinite(table_num(acc, r, "stderr_pct")) ? table_num(acc, r, "stderr_pct") : 0;
        p[n].bytes = table_num(acc, r, "bytes_per_decode_token");
        p[n].kind = measured ? ACC_MEASURED : !strcmp(table_get(acc, r, "train_flops_from"), "published") ? ACC_PUB_PUBLISHED
                                                                                                            : ACC_PUB_ESTIMATED;
        n++;
    }
    *out = p;
    return n;
}

/* score (%) against training compute: measured evals of models whose training tokens
 * the suite gives (circles with their standard error), published scores (squares:
 * filled where the compute is published, open where effbench estimated it) and the
 * Pareto frontier of the published ones */
static int chart_accuracy(const char *dir, const Table *acc) {
    Pt *pts;
    int n = acc_points(acc, "train_flops", &pts);
    if (n == 0) { free(pts); return 0; }
    qsort(pts, (size_t)n, sizeof *pts, cmp_x);
    Frame F = { .w = 1280, .h = 720, .l = 0.07, .r = 0.66, .b = 0.10, .t = 0.91, .logx = 1 };
    double *xs = xcalloc((size_t)n * 4 + 1, sizeof *xs), *ys = xs + n, *lx = ys + n, *ly = lx + n;
    int *len = xcalloc((size_t)n + 1, sizeof *len);
    for (int i = 0; i < n; i++) {
        xs[i] = pts[i].x;
        ys[i] = pts[i].y;
        len[i] = text_len(pts[i].label, LABEL_MAX);
    }
    frame_range(xs, n, 1, 0.12, 0.35, &F.x0, &F.x1);
    frame_range(ys, n, 0, 0.15, 0.2, &F.y0, &F.y1);
    double *front = xcalloc((size_t)n * 2 + 1, sizeof *front), best = -INFINITY;    /* the frontier, as drawn */
    int nfront = 0, *fi = xcalloc((size_t)n + 1, sizeof *fi);
    for (int i = 0; i < n; i++)
        if (pts[i].kind != ACC_MEASURED && pts[i].y > best) {
            best = pts[i].y;
            fi[nfront] = i;
            front[2 * nfront] = pts[i].x;
            front[2 * nfront++ + 1] = pts[i].y;
        }
    place_labels(&F, xs, ys, len, n, 6.5, front, nfront, lx, ly);
    char *p1, *p2;
    FILE *d = open_in(dir, "chart_accuracy.dat", &p1), *fr = open_in(dir, "chart_frontier.dat", &p2);
    int rc = d && fr ? 1 : -1;
    if (rc > 0) {
        fprintf(d, "# label train_flops score label_x label_y stderr kind: 2 measured, 1 published (compute published), "
                   "0 published (compute estimated)\n");
        fprintf(fr, "# Pareto frontier of the published scores: no cheaper point scores as high\n");
        for (int i = 0; i < n; i++) {
            dat_str_max(d, pts[i].label, LABEL_MAX);
            fprintf(d, " %.6g %.6g %.6g %.6g %.6g %d\n", pts[i].x, pts[i].y, lx[i], ly[i], pts[i].err, pts[i].kind);
        }
        for (int i = 0; i < nfront; i++) {
            dat_str(fr, pts[fi[i]].label);
            fprintf(fr, " %.6g %.6g\n", pts[fi[i]].x, pts[fi[i]].y);
        }
    }
    if (d) fclose(d);
    if (fr) fclose(fr);
    free(p1); free(p2);
    if (rc > 0) {
        char *body = NULL;
        size_t bl;
        FILE *g = open_memstream(&body, &bl);
        fprintf(g, "set datafile separator whitespace\nset title \"Accuracy against training compute (published: MMLU, base "
                   "models; measured: evals.csv)\" noenhanced\nset xlabel \"Training compute (FLOPs, log scale)\" noenhanced\n"
                   "set ylabel \"score (%%)\" noenhanced\nset grid\nset format x \"%%.0e\"\n");
        gp_frame(g, &F);
        gp_key(g, F.t);
        int nk[3] = { 0, 0, 0 };
        for (int i = 0; i < n; i++) nk[pts[i].kind]++;
        char *el[6] = {
            nfront > 1 ? xstrdup("'chart_frontier.dat' using 2:3 with lines lw 1.5 dt 2 lc rgb '#2ca02c' "
                                 "title 'Pareto frontier of published scores'") : NULL,
            nk[ACC_MEASURED] ? xasprintf("'chart_accuracy.dat' using 2:($7==%d?$3:1/0):6 with yerrorbars pt 7 ps 1.6 "
                                         "lc rgb '#1f77b4' title 'measured here (evals.csv), +- stderr'", ACC_MEASURED) : NULL,
            nk[ACC_PUB_PUBLISHED] ? xasprintf("'chart_accuracy.dat' using 2:($7==%d?$3:1/0) with points pt 5 ps 1.6 "
                                              "lc rgb '#d62728' title 'published score, published compute'", ACC_PUB_PUBLISHED) : NULL,
            nk[ACC_PUB_ESTIMATED] ? xasprintf("'chart_accuracy.dat' using 2:($7==%d?$3:1/0) with points pt 4 ps 1.6 lw 2 "
                                              "lc rgb '#d62728' title 'published score, estimated compute'", ACC_PUB_ESTIMATED) : NULL,
            nk[ACC_MEASURED] ? xasprintf("'chart_accuracy.dat' using 4:($7==%d?$5:1/0):1 with labels left font ',9' "
                                         "tc rgb '#1f77b4' notitle", ACC_MEASURED) : NULL,
            n > nk[ACC_MEASURED] ? xasprintf("'chart_accuracy.dat' using 4:($7!=%d?$5:1/0):1 with labels left font ',9' "
                                             "tc rgb '#d62728' notitle", ACC_MEASURED) : NULL };
        gp_plot(g, el, 6);
        fclose(g);
        if (gp_write(dir, "accuracy_vs_compute", F.w, F.h, body)) rc = -1;
        free(body);
    }
    free(xs); free(len); free(pts); free(front); free(fi);
    return rc;
}

/* score (%) against inference cost: FLOPs per token and bytes read per decode token
 * (analytic, 4K context), measured (circles) and published (squares) side by side */
static int chart_acc_flops(const char *dir, const Table *acc) {
    Pt *pts;
    int n = acc_points(acc, "flops_per_token", &pts);
    if (n == 0) { free(pts); return 0; }
    Frame F1 = { .w = 1600, .h = 720, .l = 0.05, .r = 0.33, .b = 0.10, .t = 0.88, .logx = 1 }, F2 = F1;
    F2.l = 0.40; F2.r = 0.66;
    double *v = xcalloc((size_t)n * 7 + 1, sizeof *v), *xs = v, *bs = v + n, *ys = v + 2 * n, *lx1 = v + 3 * n, *ly1 = v + 4 * n,
           *lx2 = v + 5 * n, *ly2 = v + 6 * n;
    int *len = xcalloc((size_t)n + 1, sizeof *len);
    for (int i = 0; i < n; i++) {
        xs[i] = pts[i].x;
        bs[i] = pts[i].bytes;
        ys[i] = pts[i].y;
        len[i] = text_len(pts[i].label, LABEL_MAX);
    }
    frame_range(xs, n, 1, 0.12, 0.45, &F1.x0, &F1.x1);
    frame_range(bs, n, 1, 0.12, 0.45, &F2.x0, &F2.x1);
    frame_range(ys, n, 0, 0.15, 0.2, &F1.y0, &F1.y1);
    F2.y0 = F1.y0; F2.y1 = F1.y1;
    place_labels(&F1, xs, ys, len, n, 6.5, NULL, 0, lx1, ly1);
    place_labels(&F2, bs, ys, len, n, 6.5, NULL, 0, lx2, ly2);
    char *pd;
    FILE *d = open_in(dir, "chart_acc_flops.dat", &pd);
    int rc = d ? 1 : -1;
    if (d) {
        fprintf(d, "# label flops_per_token bytes_per_decode_token score stderr kind(2 measured, 1 published) "
                   "label_x1 label_y1 label_x2 label_y2\n");
        for (int i = 0; i < n; i++) {
            dat_str_max(d, pts[i].label, LABEL_MAX);
            fprintf(d, " %.6g %.6g %.6g %.6g %d %.6g %.6g %.6g %.6g\n", pts[i].x, pts[i].bytes, pts[i].y, pts[i].err,
                    pts[i].kind == ACC_MEASURED ? 2 : 1, lx1[i], ly1[i], lx2[i], ly2[i]);
        }
        fclose(d);
    }
    free(pd);
    if (rc > 0) {
        char *body = NULL;
        size_t bl;
        FILE *g = open_memstream(&body, &bl);
        fprintf(g, "set datafile separator whitespace\nset grid\nset format x \"%%.0e\"\n"
                   "set multiplot title \"Accuracy against inference compute and memory traffic (analytic, 4K context, BF16): "
                   "measured evals (circles) and published MMLU (squares)\" noenhanced\n"
                   "set ylabel \"score (%%)\" noenhanced\nset xlabel \"FLOPs per token (forward, log scale)\" noenhanced\n");
        gp_frame(g, &F1);
        gp_key(g, F1.t);
        /* x column, label columns */
        int nm = 0;
        for (int i = 0; i < n; i++) nm += pts[i].kind == ACC_MEASURED;
        for (int panel = 0; panel < 2; panel++) {
            int x = panel ? 3 : 2, lxc = panel ? 9 : 7;
            if (panel) {
                fprintf(g, "unset key\nset xlabel \"bytes read per decode token, batch 1 (log scale)\" noenhanced\n");
                gp_frame(g, &F2);
            }
            char *el[4] = {
                nm ? xasprintf("'chart_acc_flops.dat' using %d:($6==2?$4:1/0):5 with yerrorbars pt 7 ps 1.6 lc rgb '#1f77b4' "
                               "title 'measured here (evals.csv), +- stderr'", x) : NULL,
                n > nm ? xasprintf("'chart_acc_flops.dat' using %d:($6==1?$4:1/0) with points pt 5 ps 1.6 lc rgb '#d62728' "
                                   "title 'published (MMLU)'", x) : NULL,
                nm ? xasprintf("'chart_acc_flops.dat' using %d:($6==2?$%d:1/0):1 with labels left font ',9' tc rgb '#1f77b4' "
                               "notitle", lxc, lxc + 1) : NULL,
                n > nm ? xasprintf("'chart_acc_flops.dat' using %d:($6==1?$%d:1/0):1 with labels left font ',9' "
                                   "tc rgb '#d62728' notitle", lxc, lxc + 1) : NULL };
            gp_plot(g, el, 4);
        }
        fprintf(g, "unset multiplot\n");
        fclose(g);
        if (gp_write(dir, "accuracy_vs_flops_per_token", F1.w, F1.h, body)) rc = -1;
        free(body);
    }
    free(v); free(len); free(pts);
    return rc;
}

/* ---- lines per model (results.csv, kv.csv) --------------------------------------------- */
/* One data block per distinct value of column `key`, each with a header line naming it
 * (the key entry); a block with the same points as an earlier one says so in its name,
 * since its line lies exactly under the other. */
static int blocks(FILE *d, const Table *t, const char *key, const char *xcol, const char *ycol, double yscale,
                  const char *filter_col, const char *filter_val, double *xmin, double *xmax) {
    int nb = 0, *first = xcalloc((size_t)t->nrow + 1, sizeof *first);
    *xmin = INFINITY;
    *xmax = -INFINITY;
#define KEEP(r) (!filter_col || !strcmp(table_get(t, (r), filter_col), filter_val))
    for (int r = 0; r < t->nrow; r++) {
        const char *k = table_get(t, r, key);
        if (!KEEP(r)) continue;
        int seen = 0;
        for (int b = 0; b < nb && !seen; b++) seen = !strcmp(table_get(t, first[b], key), k);
        if (seen) continue;
        first[nb] = r;
        /* the same points as an earlier block? */
        const char *same = NULL;
        for (int b = 0; b < nb && !same; b++) {
            const char *k2 = table_get(t, first[b], key);
            int eq = 1, q1 = r, q2 = first[b];
            for (;;) {
                while (q1 < t->nrow && (!KEEP(q1) || strcmp(table_get(t, q1, key), k))) q1++;
                while (q2 < t->nrow && (!KEEP(q2) || strcmp(table_get(t, q2, key), k2))) q2++;
                if (q1 >= t->nrow || q2 >= t->nrow) { eq = q1 >= t->nrow && q2 >= t->nrow; break; }
                if (table_num(t, q1, xcol) != table_num(t, q2, xcol) || table_num(t, q1, ycol) != table_num(t, q2, ycol)) { eq = 0; break; }
                q1++; q2++;
            }
            if (eq) same = k2;
        }
        if (nb) fprintf(d, "\n\n");
        char *title = same ? xasprintf("%s (same as %s)", k, same) : xstrdup(k);
        dat_str_max(d, title, TITLE_MAX + (same ? 20 : 0));
        free(title);
        fprintf(d, " \"%s\" \"%s\"\n", xcol, ycol);
        for (int q = r; q < t->nrow; q++) {
            if (strcmp(table_get(t, q, key), k) || !KEEP(q)) continue;
            double x = table_num(t, q, xcol);
            fprintf(d, "\"\" %.6g %.6g\n", x, table_num(t, q, ycol) * yscale);
            if (x < *xmin) *xmin = x;
            if (x > *xmax) *xmax = x;
        }
        nb++;
    }
#undef KEEP
    free(first);
    return nb;
}

/* extra: script lines before the plot (log scales); x is on a log scale (the range is
 * the data's, widened by a fifth of it on each side) */
static int chart_lines(const char *dir, const Table *t, const char *name, const char *key, const char *xcol, const char *ycol,
                       double yscale, const char *filter_col, const char *filter_val, const char *title, const char *xl,
                       const char *yl, const char *extra) {
    if (!t->nrow) return 0;
    char *pd, *dn = xasprintf("chart_%s.dat", name);
    FILE *d = open_in(dir, dn, &pd);
    int rc = -1;
    if (d) {
        double x0, x1;
        int nb = blocks(d, t, key, xcol, ycol, yscale, filter_col, filter_val, &x0, &x1);
        rc = fclose(d) ? -1 : 0;
        if (nb && !rc) {
            char *body = NULL;
            size_t bl;
            FILE *g = open_memstream(&body, &bl);
            fprintf(g, "set datafile separator whitespace\nset title \"%s\" noenhanced\nset xlabel \"%s\" noenhanced\n"
                       "set ylabel \"%s\" noenhanced\nset grid\n%s\n", title, xl, yl, extra);
            fprintf(g, "set lmargin at screen 0.08\nset rmargin at screen 0.66\n");
            if (x1 > x0 && x0 > 0) fprintf(g, "set xrange [%.6g:%.6g]\n", x0 / pow(x1 / x0, 0.04), x1 * pow(x1 / x0, 0.04));
            gp_key(g, 0.91);
            /* open markers of different shapes and dashes, so lines that coincide stay visible */
            fprintf(g, "plot for [i=0:%d] '%s' index i using 2:3 with linespoints lw 2 dt 1+i%%5 pt (4+2*(i%%5)) ps 1.3 "
                       "title columnheader(1)\n", nb - 1, dn);
            fclose(g);
            rc = gp_write(dir, name, 1280, 720, body) ? -1 : 1;
            free(body);
        }
    }
    free(pd); free(dn);
    return rc;
}

/* ---- training cost (cost.csv) ----------------------------------------------------------- */
static int chart_cost(const char *dir, const Table *co) {
    if (!co->nrow) return 0;
    char *pd;
    FILE *d = open_in(dir, "chart_cost.dat", &pd);
    int rc = d ? 1 : -1;
    if (d) {
        fprintf(d, "# label gpu_hours_millions cost_usd_millions reported(1)_or_from_assumed_mfu(0)\n");
        for (int r = 0; r < co->nrow; r++) {
            dat_str_max(d, table_get(co, r, "label"), 30);
            fprintf(d, " %.6g %.6g %d\n", table_num(co, r, "gpu_hours") / 1e6, table_num(co, r, "cost_usd") / 1e6,
                    !strcmp(table_get(co, r, "gpu_hours_given"), "yes"));
        }
        if (fclose(d)) rc = -1;
    }
    free(pd);
    if (rc < 0) return rc;
    int nrep = 0;
    for (int r = 0; r < co->nrow; r++) nrep += !strcmp(table_get(co, r, "gpu_hours_given"), "yes");
    char *body = NULL;
    size_t bl;
    FILE *g = open_memstream(&body, &bl);
    fprintf(g, "set datafile separator whitespace\nset style fill solid 0.85 border -1\nset boxwidth 0.7\nset grid ytics\n"
               "set yrange [0:*]\nset offsets 0.6, 0.6, graph 0.08, 0\nset xtics nomirror rotate by -30 left noenhanced\n"
               "set bmargin at screen 0.30\nset tmargin at screen 0.88\n"
               "set multiplot title \"Training cost: GPU-hours and dollars (estimates; cost.csv)\" noenhanced\n");
    gp_key(g, 0.88);
    for (int panel = 0; panel < 2; panel++) {
        int c = panel ? 3 : 2;        /* column: GPU-hours, dollars */
        if (panel) fprintf(g, "unset key\nset title \"Cost\"\nset ylabel \"millions of USD\"\nset lmargin at screen 0.41\nset rmargin at screen 0.66\n");
        else fprintf(g, "set title \"GPU-hours\"\nset ylabel \"millions of GPU-hours\"\nset lmargin at screen 0.07\nset rmargin at screen 0.34\n");
        char *el[3] = {
            nrep ? xasprintf("'chart_cost.dat' using 0:($4==1?$%d:1/0) with boxes lc rgb '#1f77b4' title 'GPU-hours reported'", c) : NULL,
            nrep < co->nrow ? xasprintf("'chart_cost.dat' using 0:($4==0?$%d:1/0) with boxes lc rgb '#9ecae1' "
                                        "title 'GPU-hours from an assumed MFU'", c) : NULL,
            xasprintf("'chart_cost.dat' using 0:%d:(sprintf('%%.2f', $%d)):xtic(1) with labels offset 0,0.8 font ',9' notitle", c, c) };
        gp_plot(g, el, 3);
    }
    fprintf(g, "unset multiplot\n");
    fclose(g);
    rc = gp_write(dir, "training_cost", 1280, 720, body) ? -1 : 1;
    free(body);
    return rc;
}

/* ---- rooflines ------------------------------------------------------------------------- */
/* The frame of a roofline: x from the points' intensities and the ridge (peak / bw),
 * y from the points and the roof over that x range. */
static void roofline_frame(Frame *F, const double *x, const double *y, int n, double bw, double peak) {
    double *v = xcalloc((size_t)n + 2, sizeof *v);
    memcpy(v, x, sizeof *v * (size_t)n);
    v[n] = peak / bw;
    frame_range(v, n + 1, 1, 0.3, 0.45, &F->x0, &F->x1);
    memcpy(v, y, sizeof *v * (size_t)n);
    v[n] = peak;
    v[n + 1] = fmin(peak, bw * F->x0);
    frame_range(v, n + 2, 1, 0.08, 0.15, &F->y0, &F->y1);
    free(v);
}

/* A roofline plot: min(bw * x, peak), then the points of dat: nb blocks titled by their
 * header lines (nb > 0), or one block titled points_title (nb = 0); rows are
 * (label x y label_x label_y). The strings are this file's literals, never data. */
static void gp_roofline(FILE *g, const Frame *F, double bw, double peak, const char *roof_title, const char *dat, int nb,
                        const char *points_title) {
    gp_frame(g, F);
    gp_key(g, F->t);
    fprintf(g, "bw = %.6g\npeak = %.6g\nroof(x) = (bw * x < peak) ? bw * x : peak\nset samples 400\n"
               "plot roof(x) with lines lw 2 lc rgb '#444444' title sprintf('%s', bw, peak), \\\n", bw, peak, roof_title);
    if (nb > 0)
        fprintf(g, "     for [i=0:%d] '%s' index i using 2:3 with points pt (4+2*(i%%5)) ps 1.3 lw 2 lc i+2 title columnheader(1), \\\n"
                   "     for [i=0:%d] '%s' index i using 4:5:1 with labels left font ',%g' tc lt i+2 notitle\n", nb - 1, dat, nb - 1, dat,
                LABEL_PT);
    else
        fprintf(g, "     '%s' using 2:3 with points pt 7 ps 1.3 title '%s', \\\n"
                   "     '' using 4:5:1 with labels left font ',%g' notitle\n", dat, points_title, LABEL_PT);
}

/* the machine's roofline (results.csv): a point per measured cell, one colour per model,
 * labelled with its test */
static int chart_roofline(const char *dir, const Table *res) {
    double bw = 0, peak = 0;
    for (int r = 0; r < res->nrow; r++) {
        double b = table_num(res, r, "triad_gbs"), p = table_num(res, r, "peak_gflops");
        if (b > bw) bw = b;
        if (p > peak) peak = p;
    }
    if (!res->nrow || !(bw > 0) || !(peak > 0)) return 0;
    int n = res->nrow, multi_backend = 0;
    for (int r = 1; r < n; r++) multi_backend |= strcmp(table_get(res, r, "backend"), table_get(res, 0, "backend")) != 0;
    /* rows in model order (blocks), first appearance first */
    int *ord = xcalloc((size_t)n + 1, sizeof *ord), no = 0;
    unsigned char *used = xcalloc((size_t)n + 1, 1);
    for (int r = 0; r < n; r++) {
        if (used[r]) continue;
        for (int q = r; q < n; q++)
            if (!used[q] && !strcmp(table_get(res, q, "model"), table_get(res, r, "model"))) { used[q] = 1; ord[no++] = q; }
    }
    double *v = xcalloc((size_t)n * 4 + 1, sizeof *v), *xs = v, *ys = v + n, *lx = v + 2 * n, *ly = v + 3 * n;
    int *len = xcalloc((size_t)n + 1, sizeof *len);
    char (*lab)[200] = xcalloc((size_t)n + 1, sizeof *lab);
    for (int i = 0; i < n; i++) {
        int r = ord[i];
        xs[i] = table_num(res, r, "flops_per_step") / table_num(res, r, "bytes_per_step");
        ys[i] = table_num(res, r, "gflops");
        if (multi_backend) snprintf(lab[i], sizeof lab[i], "%s %s", table_get(res, r, "backend"), table_get(res, r, "test"));
        else snprintf(lab[i], sizeof lab[i], "%s", table_get(res, r, "test"));
        len[i] = text_len(lab[i], LABEL_MAX);
    }
    Frame F = { .w = 1280, .h = 720, .l = 0.07, .r = 0.66, .b = 0.10, .t = 0.91, .logx = 1, .logy = 1 };
    roofline_frame(&F, xs, ys, n, bw, peak);
    double roof[6] = { F.x0, bw * F.x0, peak / bw, peak, F.x1, peak };
    place_labels(&F, xs, ys, len, n, 5.5, roof, 3, lx, ly);
    char *pd;
    FILE *d = open_in(dir, "chart_roofline.dat", &pd);
    int rc = d ? 1 : -1, nb = 0;
    if (d) {
        fprintf(d, "# one block per model: label flops_per_byte achieved_gflops label_x label_y\n");
        for (int i = 0; i < n; i++) {
            const char *m = table_get(res, ord[i], "model");
            if (i == 0 || strcmp(m, table_get(res, ord[i - 1], "model"))) {
                if (nb++) fprintf(d, "\n\n");
                dat_str_max(d, m, TITLE_MAX);
                fprintf(d, " \"x\" \"y\" \"lx\" \"ly\"\n");
            }
            dat_str_max(d, lab[i], LABEL_MAX);
            fprintf(d, " %.6g %.6g %.6g %.6g\n", xs[i], ys[i], lx[i], ly[i]);
        }
        if (fclose(d)) rc = -1;
    }
    free(pd);
    if (rc > 0) {
        char *body = NULL;
        size_t bl;
        FILE *g = open_memstream(&body, &bl);
        fprintf(g, "set datafile separator whitespace\nset title \"Roofline of this machine with the measured cells\" noenhanced\n"
                   "set xlabel \"Arithmetic intensity (FLOPs per byte read, log scale)\" noenhanced\n"
                   "set ylabel \"GFLOP/s (log scale)\" noenhanced\nset grid\n");
        gp_roofline(g, &F, bw, peak, "roof: triad %.1f GB/s, SGEMM %.0f GFLOP/s", "chart_roofline.dat", nb, "");
        fclose(g);
        rc = gp_write(dir, "roofline", F.w, F.h, body) ? -1 : 1;
        free(body);
    }
    free(ord); free(used); free(v); free(len); free(lab);
    return rc;
}

/* The measured kernels of a profile (metrics.csv: one point per cell and op) under the
 * device's measured roofs: read bandwidth and the cuBLAS GEMM rate. */
int chart_kernel_roofline(const char *dir, const Table *t, double gbs, double gflops, Err *e) {
    int n = 0;
    double *v = xcalloc((size_t)t->nrow * 4 + 1, sizeof *v), *xs = v, *ys = v + t->nrow, *lx = v + 2 * t->nrow,
           *ly = v + 3 * t->nrow;
    int *len = xcalloc((size_t)t->nrow + 1, sizeof *len), *row = xcalloc((size_t)t->nrow + 1, sizeof *row);
    char (*lab)[600] = xcalloc((size_t)t->nrow + 1, sizeof *lab);
    for (int r = 0; r < t->nrow; r++) {
        double f = table_num(t, r, "flops"), b = table_num(t, r, "dram_bytes"), tf = table_num(t, r, "achieved_tflops");
        if (!(f > 0) || !(b > 0) || !(tf > 0)) continue;
        snprintf(lab[n], sizeof lab[n], "%s %s", table_get(t, r, "op"), table_get(t, r, "cell"));
        xs[n] = f / b;
        ys[n] = tf * 1e3;
        len[n] = text_len(lab[n], LABEL_MAX);
        row[n++] = r;
    }
    Frame F = { .w = 1280, .h = 720, .l = 0.07, .r = 0.66, .b = 0.10, .t = 0.91, .logx = 1, .logy = 1 };
    roofline_frame(&F, xs, ys, n, gbs, gflops);
    double roof[6] = { F.x0, gbs * F.x0, gflops / gbs, gflops, F.x1, gflops };
    place_labels(&F, xs, ys, len, n, 5.5, roof, 3, lx, ly);
    char *pd;
    FILE *d = open_in(dir, "chart_kernel_roofline.dat", &pd);
    int rc = d ? 0 : err_set(e, "%s: cannot write the kernel roofline chart", dir);
    if (d) {
        fprintf(d, "# label flops_per_byte achieved_gflops label_x label_y\n");
        for (int i = 0; i < n; i++) {
            dat_str_max(d, lab[i], LABEL_MAX);
            fprintf(d, " %.6g %.6g %.6g %.6g\n", xs[i], ys[i], lx[i], ly[i]);
        }
        if (fclose(d)) rc = err_set(e, "%s: cannot write the kernel roofline chart", dir);
    }
    free(pd);
    if (!rc) {
        char *body = NULL;
        size_t bl;
        FILE *g = open_memstream(&body, &bl);
        fprintf(g, "set datafile separator whitespace\nset title \"GPU roofline with the engine's ops (range profiler counters)\" "
                   "noenhanced\nset xlabel \"Arithmetic intensity (FLOPs per DRAM byte, log scale)\" noenhanced\n"
                   "set ylabel \"GFLOP/s (log scale)\" noenhanced\nset grid\n");
        gp_roofline(g, &F, gbs, gflops, "roof: read %.0f GB/s, cuBLAS %.0f GFLOP/s", "chart_kernel_roofline.dat", 0,
                    "ops (measured)");
        fclose(g);
        if (gp_write(dir, "kernel_roofline", F.w, F.h, body)) rc = err_set(e, "%s: cannot write the kernel roofline chart", dir);
        free(body);
    }
    if (!rc && n) {
        int r = render(dir, "kernel_roofline");
        if (r == -2) fprintf(stderr, "effbench: gnuplot not found: %s/kernel_roofline.gp written, not rendered\n", dir);
        else if (r) rc = err_set(e, "%s/kernel_roofline.gp: gnuplot failed", dir);
    }
    free(v); free(len); free(row); free(lab);
    return rc;
}

/* ---- all charts of a run directory ------------------------------------------------------- */
int charts_write(const char *dir, Err *e) {
    enum { RES, ACC, CO, KV, NT };
    static const char *files[NT] = { "results.csv", "accuracy.csv", "cost.csv", "kv.csv" };
    Table t[NT];
    int nt = 0;
    for (; nt < NT; nt++)
        if (csv_table_read_opt(dir, files[nt], &t[nt], e)) break;
    if (nt < NT) {
        for (int i = 0; i < nt; i++) table_free(&t[i]);
        return -1;
    }
    const char *names[6] = { "accuracy_vs_compute", "decode_vs_batch", "kv_vs_context", "training_cost", "roofline",
                             "accuracy_vs_flops_per_token" };
    int made[6];
    made[0] = chart_accuracy(dir, &t[ACC]);
    /* decode cells are the rows with latency percentiles */
    made[1] = chart_lines(dir, &t[RES], "decode_vs_batch", "model", "batch", "tokens_per_s", 1.0, "percentile_method",
                          "nearest rank over all decode steps", "Decode throughput against batch size (measured on this machine)",
                          "batch size (sequences, log scale)", "tokens/s (all sequences)", "set logscale x 2");
    made[2] = chart_lines(dir, &t[KV], "kv_vs_context", "model", "ctx", "kv_gib_per_sequence", 1.0, NULL, NULL,
                          "KV-cache size of one sequence against context length (BF16 cache)", "context length (tokens, log scale)",
                          "GiB per sequence (log scale)", "set logscale xy");
    made[3] = chart_cost(dir, &t[CO]);
    made[4] = chart_roofline(dir, &t[RES]);
    made[5] = chart_acc_flops(dir, &t[ACC]);
    int rendered = 0, missing = 0, failed = 0;
    for (int i = 0; i < 6; i++) {
        if (made[i] < 0) { failed++; fprintf(stderr, "effbench: cannot write the %s chart in %s\n", names[i], dir); }
        if (made[i] <= 0) continue;
        int r = render(dir, names[i]);
        if (r == 0) rendered++;
        else if (r == -2) missing = 1;
        else { failed++; fprintf(stderr, "effbench: gnuplot failed on %s/%s.gp\n", dir, names[i]); }
    }
    if (missing) fprintf(stderr, "effbench: gnuplot not found: chart scripts written to %s, not rendered (apt-get install gnuplot-nox)\n", dir);
    for (int i = 0; i < NT; i++) table_free(&t[i]);
    if (failed) return err_set(e, "%s: %d chart(s) failed to render", dir, failed);
    return rendered;
}
