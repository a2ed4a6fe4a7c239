/*
 * table.h - tables of strings read and written as CSV with libcsv (RFC 4180 quoting:
 * commas, quotes and newlines in fields survive a round trip). Writing is atomic:
 * a temporary file in the same directory, synced, then renamed.
 *
 * Cells that a spreadsheet would read as a formula (starting with = + - @, tab or
 * carriage return, and not a number) are written with a leading apostrophe, as
 * OWASP advises; csv_table_read does not strip it.
 */
#ifndef EFFBENCH_TABLE_H
#define EFFBENCH_TABLE_H

#include "common.h"

typedef struct {
    int ncol, nrow, cap;
    char **head;                 /* (ncol) */
    char **cell;                 /* (nrow, ncol) row-major; NULL = empty */
} Table;

void table_init(Table *t, int ncol, const char *const *head);
void table_free(Table *t);
/* Appends a row of ncol strings (copied; NULL = empty). Returns the row index. */
int table_add(Table *t, const char *const *row);
int table_col(const Table *t, const char *name);              /* -1 when absent */
const char *table_get(const Table *t, int row, const char *col);  /* "" when absent */
double table_num(const Table *t, int row, const char *col);   /* NAN when empty or not a number */

int csv_table_write(const char *path, const Table *t, Err *e);
/* Reads a CSV with a header row; rows with a different field count are an error
 * naming the line. */
int csv_table_read(const char *path, Table *t, Err *e);

/* Reads dir/name if it exists; a missing file gives an empty table (no header). */
int csv_table_read_opt(const char *dir, const char *name, Table *t, Err *e);

/* printf into a fresh string (caller frees) */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
