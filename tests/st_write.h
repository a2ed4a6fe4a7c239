/*
 * st_write.h - writes safetensors files and checkpoint copies for the tests: the
 * golden models re-encoded in other dtypes or shards, and deliberately broken files.
 */
#ifndef EFFBENCH_ST_WRITE_H
#define EFFBENCH_ST_WRITE_H

#include "safetensors.h"

typedef struct {
    const char *name;
    DType dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;            /* element bytes in dtype */
} WTensor;

/* Writes tensors in the given order with a valid header. Returns 0 or -1. */
int st_write(const char *path, const WTensor *t, int n);
/* Writes raw bytes: an 8-byte length, the header text, then data_len bytes of data. */
int st_write_raw(const char *path, uint64_t hlen_field, const char *header, const void *data, size_t data_len);
/* Copies a file. */
int copy_file(const char *src, const char *dst);
/* Makes dir (and parents); returns 0 or -1. */
int make_dir(const char *dir);

#endif
