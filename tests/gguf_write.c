/*
 * gguf_write.c - see gguf_write.h. Metadata and tensors are kept in memory in the
 * order given and written in one pass: header, key/values, tensor infos, padding to
 * the alignment, then each tensor's bytes padded to the alignment.
 */
#include "gguf_write.h"
#include "common.h"
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *bytes; size_t n, cap; } Buf;

typedef struct { char *name; int type, n_dims; int64_t ne[4]; void *data; size_t nbytes; } WT;

struct GgufW {
    Buf kv;                      /* serialised key/values */
    int64_t n_kv;
    WT *t;
    int64_t n_t, cap_t;
};

static void put(Buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->bytes = xrealloc(b->bytes, b->cap);
    }
    memcpy(b->bytes + b->n, p, n);
    b->n += n;
}
static void put_u32(Buf *b, uint32_t x) { put(b, &x, 4); }
static void put_u64(Buf *b, uint64_t x) { put(b, &x, 8); }
static void put_str(Buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void key(GgufW *w, const char *k, GgufType t) { put_str(&w->kv, k); put_u32(&w->kv, (uint32_t)t); w->n_kv++; }

GgufW *gw_new(void) { return xcalloc(1, sizeof(GgufW)); }

void gw_free(GgufW *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_t; i++) { free(w->t[i].name); free(w->t[i].data); }
    free(w->t);
    free(w->kv.bytes);
    free(w);
}

void gw_str(GgufW *w, const char *k, const char *v) { key(w, k, GGUF_STRING); put_str(&w->kv, v); }
void gw_u32(GgufW *w, const char *k, uint32_t v) { key(w, k, GGUF_U32); put_u32(&w->kv, v); }
void gw_i32(GgufW *w, const char *k, int32_t v) { key(w, k, GGUF_I32); put(&w->kv, &v, 4); }
void gw_u64(GgufW *w, const char *k, uint64_t v) { key(w, k, GGUF_U64); put_u64(&w->kv, v); }
void gw_f32(GgufW *w, const char *k, float v) { key(w, k, GGUF_F32); put(&w->kv, &v, 4); }
void gw_bool(GgufW *w, const char *k, int v) { uint8_t b = v != 0; key(w, k, GGUF_BOOL); put(&w->kv, &b, 1); }

void gw_arr_str(GgufW *w, const char *k, const char *const *v, int64_t n) {
    key(w, k, GGUF_ARRAY);
    put_u32(&w->kv, GGUF_STRING);
    put_u64(&w->kv, (uint64_t)n);
    for (int64_t i = 0; i < n; i++) put_str(&w->kv, v[i]);
}
void gw_arr_i32(GgufW *w, const char *k, const int32_t *v, int64_t n) {
    key(w, k, GGUF_ARRAY);
    put_u32(&w->kv, GGUF_I32);
    put_u64(&w->kv, (uint64_t)n);
    put(&w->kv, v, sizeof *v * (size_t)n);
}
void gw_arr_f32(GgufW *w, const char *k, const float *v, int64_t n) {
    key(w, k, GGUF_ARRAY);
    put_u32(&w->kv, GGUF_F32);
    put_u64(&w->kv, (uint64_t)n);
    put(&w->kv, v, sizeof *v * (size_t)n);
}

void gw_tensor(GgufW *w, const char *name, int type, int n_dims, const int64_t *ne, const void *data, size_t nbytes) {
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t ? 2 * w->cap_t : 64;
        w->t = xrealloc(w->t, sizeof *w->t * (size_t)w->cap_t);
    }
    WT *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->type = type;
    t->n_dims = n_dims;
    for (int i = 0; i < 4; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
    t->data = xmalloc(nbytes ? nbytes : 1);
    if (nbytes) memcpy(t->data, data, nbytes);
    t->nbytes = nbytes;
}

static void pad(Buf *b, uint64_t align) {
    static const char zero[64];
    while (b->n % align) put(b, zero, (size_t)(align - b->n % align) < sizeof zero ? (size_t)(align - b->n % align) : sizeof zero);
}

int gw_write(GgufW *w, const char *path, uint32_t version, uint32_t alignment) {
    uint64_t align = alignment ? alignment : 32;
    Buf b = { 0 };
    put(&b, "GGUF", 4);
    put_u32(&b, version);
    put_u64(&b, (uint64_t)w->n_t);
    put_u64(&b, (uint64_t)w->n_kv + (alignment ? 1 : 0));
    if (alignment) {
        put_str(&b, "general.alignment");
        put_u32(&b, GGUF_U32);
        put_u32(&b, alignment);
    }
    put(&b, w->kv.bytes, w->kv.n);
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        WT *t = &w->t[i];
        put_str(&b, t->name);
        put_u32(&b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&b, (uint64_t)t->ne[d]);
        put_u32(&b, (uint32_t)t->type);
        put_u64(&b, off);
        off += (t->nbytes + align - 1) / align * align;
    }
    pad(&b, align);
    for (int64_t i = 0; i < w->n_t; i++) {
        put(&b, w->t[i].data, w->t[i].nbytes);
        pad(&b, align);
    }
    Err e;
    int rc = write_file_atomic(path, b.bytes, b.n, &e);
    if (rc) fprintf(stderr, "gw_write: %s\n", e.msg);
    free(b.bytes);
    return rc;
}
