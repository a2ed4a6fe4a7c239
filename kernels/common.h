/*
 * common.h - error reporting, allocation and number formats shared by the engine.
 *
 * Errors from loading and parsing travel up in an Err (one line: file and problem);
 * the command reports it and exits non-zero. Allocation failures that the user
 * cannot fix die at once through xmalloc with the size asked for.
 *
 * Number formats: weights may be F32, BF16, F16 or F8_E4M3 (with 128x128 block
 * scales). The scalar converters here are the reference for the block converters
 * in ops.c.
 */
#ifndef EFFBENCH_COMMON_H
#define EFFBENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char msg[1024];                  /* one line, no trailing newline; empty = no error */
} Err;

/* err_set: formats the message (printf-style) into e, if e is not NULL; returns -1. */
int err_set(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* err_prefix: puts "PREFIX: " before e's current message; returns -1. */
int err_prefix(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *xmalloc(size_t n);             /* dies with the size on failure */
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
/* Calls of xmalloc, xcalloc and xrealloc so far, all threads (a relaxed atomic count):
 * tests take the difference around a step to show it allocates nothing. */
uint64_t alloc_count(void);
/* The CPU's model name from /proc/cpuinfo, or "unknown CPU" */
void cpu_model_name(char *out, size_t len);
/* Directory of the running executable, or "." */
const char *exe_dir(void);
/* A shipped file: EXE_DIR/suites/REL if readable, else ./suites/REL; returns buf. */
const char *shipped_path(const char *rel, char *buf, size_t len);
char *xstrdup(const char *s);

/* Reads a whole file; returns a NUL-terminated buffer (caller frees) or NULL with e set.
 * Files over max_bytes are refused. */
char *read_file(const char *path, size_t max_bytes, size_t *len, Err *e);

/* Maps a regular file read-only: *map (NULL for an empty file) and *size; 0, or -1 with
 * e naming the file and the problem. Release with munmap(*map, *size) when *size > 0. */
int map_file(const char *path, void **map, size_t *size, Err *e);

/* Writes data to path atomically: path.tmp.PID, fsync, rename. Returns 0 or -1 with e set.
 * After set_writes_files(0) (ranks other than 0 of a split model) it writes nothing and
 * returns 0: one rank alone writes a command's files. */
int write_file_atomic(const char *path, const void *data, size_t len, Err *e);
void set_writes_files(int on);
int writes_files_on(void);

/* Bytes the system can give us now (MemAvailable), or the EFFBENCH_MEM_LIMIT override. */
uint64_t mem_available(void);
/* Formats a byte count as "12.3 GiB" into buf. */
const char *fmt_bytes(uint64_t n, char *buf, size_t len);

double now_sec(void);                /* CLOCK_MONOTONIC seconds */

/* ---- number formats ---------------------------------------------------------------- */
typedef enum {
    DT_F32 = 0,
    DT_BF16,
    DT_F16,
    DT_F8_E4M3,
    DT_Q8_0,                         /* ggml block types (quant.h): kept in their blocks in memory */
    DT_Q4_0,
    DT_Q4_1,
    DT_Q4_K,
    DT_Q5_K,
    DT_Q6_K,
    DT_COUNT
} DType;

const char *dtype_name(DType t);     /* safetensors / ggml spelling: "F32", "BF16", "Q4_K", ... */
int dtype_parse(const char *s, DType *t);   /* accepts those names in any case, and fp8, float32, ... */
size_t dtype_size(DType t);          /* bytes per element of a plain type; 0 for a block type */
int dtype_block(DType t);            /* elements per block: 1 (plain), 32 or 256 */
uint64_t dtype_bytes(DType t, int64_t n);   /* bytes of n elements (a whole number of blocks) */
double dtype_bits(DType t);          /* bits per weight, block scales included (Q4_K: 4.5) */
int dtype_ggml(DType t);             /* the ggml type number (quant.h); -1 for F8_E4M3 */
int dtype_from_ggml(int ggml_type, DType *t);   /* 0, or -1 when no DType holds it */

static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = { (uint32_t)h << 16 };
    return v.f;
}
static inline uint16_t f32_to_bf16(float f) {        /* round to nearest even */
    union { float f; uint32_t u; } v = { f };
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);  /* NaN */
    uint32_t r = 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)((v.u + r) >> 16);
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float f8e4m3_to_f32(uint8_t b);      /* OCP E4M3 "fn": bias 7, no Inf, 0x7f/0xff NaN, max 448 */
uint8_t f32_to_f8e4m3(float f);      /* round to nearest even, saturating at +-448 */

#endif
