/*
 * safetensors.h - memory-mapped safetensors checkpoints, one file or shards listed in
 * model.safetensors.index.json.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the data. Opening validates everything the format
 * promises: header inside the file, known dtypes, shapes whose byte size does not
 * overflow and matches the offsets, tensors that tile the data region exactly (no
 * overlap, no gap, nothing past the end). Errors name the file and the tensor.
 * Tensor data is never copied: StTensor.data points into the mapping.
 */
#ifndef EFFBENCH_SAFETENSORS_H
#define EFFBENCH_SAFETENSORS_H

#include "common.h"

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    DType dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;        /* into the file's mapping */
    uint64_t nbytes;
    int file;                /* index into StSet.files */
    int used;                /* set by the model binder: every tensor must be used */
} StTensor;

typedef struct {
    char *path;
    void *map;
    size_t size;
} StFile;

typedef struct {
    StFile *files;
    int n_files;
    StTensor *t;
    int n;
    uint64_t total_bytes;    /* sum of tensor bytes */
    int sorted;              /* t[] sorted by name (after st_finalize) */
} StSet;

/* Opens dir/model.safetensors.index.json if present, else dir/model.safetensors.
 * Returns 0, or -1 with e naming the file and the problem. */
int st_open_dir(const char *dir, StSet *s, Err *e);
/* Opens one safetensors file into s (appending to any already open). */
int st_open_file(const char *path, StSet *s, Err *e);
/* Validates a header held in memory; data_len = bytes after the header. Used by the
 * file opener and the fuzz target. name is for messages. */
int st_parse_header(const char *json, size_t json_len, uint64_t data_len, const char *name,
                    int file_idx, const uint8_t *data, StSet *s, Err *e);
/* Sorts the table by name and rejects duplicate names; st_find is then a binary search. */
int st_finalize(StSet *s, Err *e);
StTensor *st_find(StSet *s, const char *name);
void st_close(StSet *s);

#endif
