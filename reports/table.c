/*
 * table.c - see table.h.
 */
#define _GNU_SOURCE
#include "table.h"

#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) { fprintf(stderr, "effbench: out of memory\n"); exit(3); }
    va_end(ap);
    return s;
}

void table_init(Table *t, int ncol, const char *const *head) {
    memset(t, 0, sizeof *t);
    t->ncol = ncol;
    t->head = xcalloc((size_t)ncol, sizeof *t->head);
    for (int i = 0; i < ncol; i++) t->head[i] = xstrdup(head[i] ? head[i] : "");
}

void table_free(Table *t) {
    for (int i = 0; i < t->ncol; i++) free(t->head[i]);
    for (int i = 0; i < t->nrow * t->ncol; i++) free(t->cell[i]);
    free(t->head);
    free(t->cell);
    memset(t, 0, sizeof *t);
}

int table_add(Table *t, const char *const *row) {
    if (t->nrow == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->cell = realloc(t->cell, sizeof *t->cell * (size_t)t->cap * (size_t)t->ncol);
        if (!t->cell) { fprintf(stderr, "effbench: out of memory\n"); exit(3); }
    }
    for (int i = 0; i < t->ncol; i++)
        t->cell[(size_t)t->nrow * t->ncol + i] = row[i] && *row[i] ? xstrdup(row[i]) : NULL;
    return t->nrow++;
}

int table_col(const Table *t, const char *name) {
    for (int i = 0; i < t->ncol; i++) if (!strcmp(t->head[i], name)) return i;
    return -1;
}

const char *table_get(const Table *t, int row, const char *col) {
    int c = table_col(t, col);
    if (c < 0 || row < 0 || row >= t->nrow) return "";
    const char *v = t->cell[(size_t)row * t->ncol + c];
    return v ? v : "";
}

double table_num(const Table *t, int row, const char *col) {
    const char *s = table_get(t, row, col);
    char *end;
    if (!*s) return NAN;
    double v = strtod(s, &end);
    return *end ? NAN : v;
}

/* ---- writing ------------------------------------------------------------------------ */
static int is_number(const char *s) {
    char *end;
    if (!*s) return 0;
    strtod(s, &end);
    return *end == 0;
}

/* a field as written: formula-looking text gets a leading apostrophe */
static void put_field(FILE *f, const char *s) {
    if (!s) s = "";
    if ((s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') && !is_number(s)) {
        char *q = xasprintf("'%s", s);
        csv_fwrite(f, q, strlen(q));
        free(q);
    } else {
        csv_fwrite(f, s, strlen(s));
    }
}

int csv_table_write(const char *path, const Table *t, Err *e) {
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) { err_set(e, "%s: cannot create: %s", path, strerror(errno)); free(tmp); return -1; }
    for (int i = 0; i < t->ncol; i++) { if (i) fputc(',', f); put_field(f, t->head[i]); }
    fputc('\n', f);
    for (int r = 0; r < t->nrow; r++) {
        for (int i = 0; i < t->ncol; i++) { if (i) fputc(',', f); put_field(f, t->cell[(size_t)r * t->ncol + i]); }
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) bad = 1;
    if (fclose(f) != 0) bad = 1;
    if (bad) { err_set(e, "%s: write failed: %s", path, strerror(errno)); unlink(tmp); free(tmp); return -1; }
    if (rename(tmp, path) != 0) { err_set(e, "%s: cannot rename into place: %s", path, strerror(errno)); unlink(tmp); free(tmp); return -1; }
    free(tmp);
    return 0;
}

/* ---- reading ------------------------------------------------------------------------ */
typedef struct {
    char **fields; int n, cap;
    Table *t;
    int line, bad;
    const char *path;
    Err *e;
} Reader;

static void on_field(void *s, size_t len, void *data) {
    Reader *r = data;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 32;
        r->fields = realloc(r->fields, sizeof *r->fields * (size_t)r->cap);
        if (!r->fields) { fprintf(stderr, "effbench: out of memory\n"); exit(3); }
    }
    char *v = xmalloc(len + 1);
    memcpy(v, s, len);
    v[len] = 0;
    r->fields[r->n++] = v;
}

static void on_row(int c, void *data) {
    (void)c;
    Reader *r = data;
    r->line++;
    if (!r->bad) {
        if (!r->t->head) {
            table_init(r->t, r->n, (const char *const *)r->fields);
        } else if (r->n != r->t->ncol) {
            r->bad = 1;
            err_set(r->e, "%s: row %d has %d fields, the header has %d", r->path, r->line, r->n, r->t->ncol);
        } else {
            table_add(r->t, (const char *const *)r->fields);
        }
    }
    for (int i = 0; i < r->n; i++) free(r->fields[i]);
    r->n = 0;
}

int csv_table_read(const char *path, Table *t, Err *e) {
    memset(t, 0, sizeof *t);
    size_t len;
    char *buf = read_file(path, 512u << 20, &len, e);
    if (!buf) return -1;
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) != 0) { free(buf); return err_set(e, "%s: csv_init failed", path); }
    Reader r = { .t = t, .path = path, .e = e };
    int rc = 0;
    if (csv_parse(&p, buf, len, on_field, on_row, &r) != len)
        rc = err_set(e, "%s: malformed CSV: %s", path, csv_strerror(csv_error(&p)));
    else if (csv_fini(&p, on_field, on_row, &r) != 0)
        rc = err_set(e, "%s: malformed CSV at the end: %s", path, csv_strerror(csv_error(&p)));
    if (!rc && r.bad) rc = -1;
    if (!rc && !t->head) rc = err_set(e, "%s: empty (no header row)", path);
    for (int i = 0; i < r.n; i++) free(r.fields[i]);
    free(r.fields);
    csv_free(&p);
    free(buf);
    if (rc) table_free(t);
    return rc;
}

int csv_table_read_opt(const char *dir, const char *name, Table *t, Err *e) {
    char *p = xasprintf("%s/%s", dir, name);
    int rc = 0;
    if (access(p, F_OK) == 0) rc = csv_table_read(p, t, e);
    else memset(t, 0, sizeof *t);
    free(p);
    return rc;
}
