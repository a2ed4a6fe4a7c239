/*
 * gguf.h - GGUF files (versions 2 and 3), the format llama.cpp keeps models in.
 *
 * Layout (little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata
 * count (u32 counts in version 1, which is refused); metadata key/value pairs (key: u64
 * length + bytes; u32 value type; value); tensor infos (name, u32 n_dims <= 4, u64
 * ne[n_dims] innermost first, u32 ggml type, u64 offset into the data section); then,
 * at the next multiple of general.alignment (default 32), the data section.
 *
 * Opening checks every count, length, size and offset before use: strings and arrays
 * inside the file, element counts whose byte size does not overflow, tensor offsets
 * aligned, inside the data section and not overlapping, shapes whose row length is a
 * whole number of quantization blocks. Errors name the file and the problem. The data
 * is mmapped and never copied; strings point into the mapping (not NUL-terminated).
 */
#ifndef EFFBENCH_GGUF_H
#define EFFBENCH_GGUF_H

#include "common.h"

typedef enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12, GGUF_NTYPES
} GgufType;

typedef struct { const char *s; uint64_t n; } GgufStr;     /* into the mapping */

typedef struct {
    GgufStr key;
    GgufType type;
    /* scalars: read with the gguf_get_* helpers below */
    union { uint64_t u; int64_t i; double f; GgufStr str; } v;
    /* arrays: element type (never ARRAY: nested arrays are refused), count, and the
     * elements: numbers at data (little-endian, packed), strings in strs */
    GgufType arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;
    GgufStr *strs;               /* owned; arr_n entries when arr_type is STRING */
} GgufKV;

typedef struct {
    GgufStr name;
    int n_dims;
    int64_t ne[4];               /* ne[0] innermost (a weight (rows, cols) is ne = {cols, rows}) */
    int type;                    /* ggml type, see quant.h */
    uint64_t offset;             /* in the data section */
    const uint8_t *data;         /* into the mapping */
    uint64_t nbytes;
} GgufTensor;

typedef struct {
    char *path;
    const uint8_t *map;          /* whole file (NULL for gguf_parse on a caller's buffer) */
    size_t size;
    uint32_t version;
    GgufKV *kv;
    int64_t n_kv;
    GgufTensor *t;
    int64_t n_t;
    uint64_t alignment, data_off;
    int mapped;
} Gguf;

/* 1 when the file at path starts with the GGUF magic (used to tell a .gguf from a directory). */
int gguf_is_gguf(const char *path);
/* Maps and validates path. 0, or -1 with e naming the file and the problem. */
int gguf_open(const char *path, Gguf *g, Err *e);
/* Validates a GGUF image held in memory (the fuzz target's entry); name for messages. */
int gguf_parse(const uint8_t *buf, size_t size, const char *name, Gguf *g, Err *e);
void gguf_close(Gguf *g);

const GgufKV *gguf_find(const Gguf *g, const char *key);
const GgufTensor *gguf_tensor(const Gguf *g, const char *name);

/* Typed getters: 1 found (value stored), 0 absent, -1 present with a type that does
 * not convert (e set: file, key, type). Integers accept any integer type whose value
 * fits; floats accept F32 and F64; strings are copied NUL-terminated into out. */
int gguf_get_int(const Gguf *g, const char *key, int64_t *out, Err *e);
int gguf_get_float(const Gguf *g, const char *key, double *out, Err *e);
int gguf_get_bool(const Gguf *g, const char *key, int *out, Err *e);
int gguf_get_str(const Gguf *g, const char *key, char *out, size_t cap, Err *e);
/* Array of given element type (STRING, or a numeric type): 1 found, 0 absent, -1 other type. */
int gguf_get_arr(const Gguf *g, const char *key, GgufType elem, const GgufKV **kv, Err *e);
/* Element i of an integer (or bool) array as int64. */
int64_t gguf_arr_int(const GgufKV *kv, uint64_t i);


#endif
