/*
 * gguf.c - see gguf.h. A cursor walks the header; every read is checked against the
 * bytes left, every count against the smallest size its items could take, every
 * product against overflow, before anything is allocated.
 */
#define _GNU_SOURCE
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 64          /* ggml's tensor name limit, NUL included */
#define GGUF_DEFAULT_ALIGN 32

static const char *type_names[GGUF_NTYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"
};
static const uint8_t type_size[GGUF_NTYPES] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

static const char *gguf_type_name(GgufType t) { return (unsigned)t < GGUF_NTYPES ? type_names[t] : "?"; }

typedef struct {
    const uint8_t *p;
    size_t size, off;
    const char *name;
    Err *e;
} Cur;

static int need(Cur *c, uint64_t n, const char *what) {
    if (n > c->size - c->off)
        return err_set(c->e, "%s: truncated: %s needs %llu bytes at offset %zu, %zu left", c->name, what,
                       (unsigned long long)n, c->off, c->size - c->off);
    return 0;
}
static int rd(Cur *c, void *out, size_t n, const char *what) {
    if (need(c, n, what)) return -1;
    memcpy(out, c->p + c->off, n);          /* the file is little-endian, as is every host we build for */
    c->off += n;
    return 0;
}
static int rd_str(Cur *c, GgufStr *s, const char *what) {
    uint64_t n;
    if (rd(c, &n, 8, what)) return -1;
    if (need(c, n, what)) return -1;
    s->s = (const char *)c->p + c->off;
    s->n = n;
    c->off += n;
    return 0;
}

static int str_eq(GgufStr a, const char *b) {
    size_t n = strlen(b);
    return a.n == n && !memcmp(a.s, b, n);
}

/* One value of type t (not an array) into kv's scalar slot. */
static int rd_scalar(Cur *c, GgufType t, GgufKV *kv, const char *what) {
    uint8_t b[8] = { 0 };
    if (t == GGUF_STRING) return rd_str(c, &kv->v.str, what);
    if (rd(c, b, type_size[t], what)) return -1;
    switch (t) {
    case GGUF_U8: kv->v.u = b[0]; break;
    case GGUF_I8: kv->v.i = (int8_t)b[0]; break;
    case GGUF_U16: { uint16_t x; memcpy(&x, b, 2); kv->v.u = x; break; }
    case GGUF_I16: { int16_t x; memcpy(&x, b, 2); kv->v.i = x; break; }
    case GGUF_U32: { uint32_t x; memcpy(&x, b, 4); kv->v.u = x; break; }
    case GGUF_I32: { int32_t x; memcpy(&x, b, 4); kv->v.i = x; break; }
    case GGUF_U64: { uint64_t x; memcpy(&x, b, 8); kv->v.u = x; break; }
    case GGUF_I64: { int64_t x; memcpy(&x, b, 8); kv->v.i = x; break; }
    case GGUF_F32: { float x; memcpy(&x, b, 4); kv->v.f = x; break; }
    case GGUF_F64: { double x; memcpy(&x, b, 8); kv->v.f = x; break; }
    case GGUF_BOOL:
        if (b[0] > 1) return err_set(c->e, "%s: %s: bool value %u", c->name, what, b[0]);
        kv->v.u = b[0];
        break;
    default: break;
    }
    return 0;
}

static int rd_kv(Cur *c, GgufKV *kv) {
    uint32_t t;
    if (rd_str(c, &kv->key, "metadata key")) return -1;
    char what[128];
    snprintf(what, sizeof what, "metadata \"%.*s\"", (int)(kv->key.n < 80 ? kv->key.n : 80), kv->key.s);
    if (kv->key.n == 0) return err_set(c->e, "%s: empty metadata key", c->name);
    if (rd(c, &t, 4, what)) return -1;
    if (t >= GGUF_NTYPES) return err_set(c->e, "%s: %s has unknown value type %u", c->name, what, t);
    kv->type = (GgufType)t;
    if (t != GGUF_ARRAY) return rd_scalar(c, kv->type, kv, what);
    uint32_t et;
    uint64_t n;
    if (rd(c, &et, 4, what) || rd(c, &n, 8, what)) return -1;
    if (et >= GGUF_NTYPES) return err_set(c->e, "%s: %s: array of unknown type %u", c->name, what, et);
    if (et == GGUF_ARRAY) return err_set(c->e, "%s: %s: nested arrays are not supported", c->name, what);
    kv->arr_type = (GgufType)et;
    kv->arr_n = n;
    if (et != GGUF_STRING) {
        if (n > (c->size - c->off) / type_size[et])
            return err_set(c->e, "%s: truncated: %s holds %llu %s values, more than the %zu bytes left", c->name, what,
                           (unsigned long long)n, gguf_type_name(kv->arr_type), c->size - c->off);
        kv->arr_data = c->p + c->off;
        c->off += n * type_size[et];
        if (et == GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (kv->arr_data[i] > 1) return err_set(c->e, "%s: %s: bool value %u", c->name, what, kv->arr_data[i]);
        return 0;
    }
    if (n > (c->size - c->off) / 8)        /* each string takes 8 bytes or more */
        return err_set(c->e, "%s: truncated: %s holds %llu strings, more than the %zu bytes left can", c->name, what,
                       (unsigned long long)n, c->size - c->off);
    kv->strs = malloc(sizeof *kv->strs * (n ? n : 1));
    if (!kv->strs) return err_set(c->e, "%s: %s: out of memory for %llu strings", c->name, what, (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        if (rd_str(c, &kv->strs[i], what)) return -1;
    return 0;
}

static int cmp_tensor_name(const void *a, const void *b) {
    const GgufTensor *x = a, *y = b;
    size_t n = x->name.n < y->name.n ? x->name.n : y->name.n;
    int r = memcmp(x->name.s, y->name.s, n);
    return r ? r : (x->name.n > y->name.n) - (x->name.n < y->name.n);
}
static int cmp_key(const void *a, const void *b) {
    const GgufKV *x = *(const GgufKV *const *)a, *y = *(const GgufKV *const *)b;
    size_t n = x->key.n < y->key.n ? x->key.n : y->key.n;
    int r = memcmp(x->key.s, y->key.s, n);
    return r ? r : (x->key.n > y->key.n) - (x->key.n < y->key.n);
}

static int rd_tensor(Cur *c, GgufTensor *t) {
    if (rd_str(c, &t->name, "tensor name")) return -1;
    if (t->name.n == 0 || t->name.n >= GGUF_MAX_NAME)
        return err_set(c->e, "%s: tensor name of %llu bytes (1..%d allowed)", c->name, (unsigned long long)t->name.n,
                       GGUF_MAX_NAME - 1);
    char what[96];
    snprintf(what, sizeof what, "tensor \"%.*s\"", (int)t->name.n, t->name.s);
    uint32_t nd, type;
    if (rd(c, &nd, 4, what)) return -1;
    if (nd < 1 || nd > GGUF_MAX_DIMS) return err_set(c->e, "%s: %s has %u dimensions (1..4 allowed)", c->name, what, nd);
    t->n_dims = (int)nd;
    for (int i = 0; i < 4; i++) t->ne[i] = 1;
    for (uint32_t i = 0; i < nd; i++) {
        uint64_t x;
        if (rd(c, &x, 8, what)) return -1;
        if (x > (uint64_t)INT64_MAX) return err_set(c->e, "%s: %s: dimension %u is %llu", c->name, what, i, (unsigned long long)x);
        t->ne[i] = (int64_t)x;
    }
    if (rd(c, &type, 4, what) || rd(c, &t->offset, 8, what)) return -1;
    int be, bb;
    ggml_block((int)type, &be, &bb);
    if (!be || !ggml_type_name((int)type)) return err_set(c->e, "%s: %s has unknown ggml type %u", c->name, what, type);
    t->type = (int)type;
    if (t->ne[0] % be)
        return err_set(c->e, "%s: %s: row of %lld elements is not a whole number of %s blocks of %d", c->name, what,
                       (long long)t->ne[0], ggml_type_name(t->type), be);
    /* bytes = ne0/be*bb * ne1 * ne2 * ne3, each step checked */
    uint64_t nb = (uint64_t)(t->ne[0] / be) * (uint64_t)bb;
    if (t->ne[0] / be > 0 && nb / (uint64_t)bb != (uint64_t)(t->ne[0] / be)) goto overflow;
    for (int i = 1; i < 4; i++) {
        if (t->ne[i] && nb > UINT64_MAX / (uint64_t)t->ne[i]) goto overflow;
        nb *= (uint64_t)t->ne[i];
    }
    t->nbytes = nb;
    return 0;
overflow:
    return err_set(c->e, "%s: %s: size [%lld, %lld, %lld, %lld] overflows", c->name, what, (long long)t->ne[0],
                   (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
}

int gguf_parse(const uint8_t *buf, size_t size, const char *name, Gguf *g, Err *e) {
    memset(g, 0, sizeof *g);
    g->path = xstrdup(name);
    g->map = buf;
    g->size = size;
    Cur c = { buf, size, 0, g->path, e };
    char magic[4];
    if (rd(&c, magic, 4, "magic")) goto fail;
    if (memcmp(magic, "GGUF", 4)) { err_set(e, "%s: not a GGUF file (no \"GGUF\" magic)", name); goto fail; }
    if (rd(&c, &g->version, 4, "version")) goto fail;
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0 && g->version)
            err_set(e, "%s: GGUF version %u looks byte-swapped (big-endian files are not supported)", name, g->version);
        else
            err_set(e, "%s: GGUF version %u is not supported (2 and 3 are)", name, g->version);
        goto fail;
    }
    uint64_t nt, nkv;
    if (rd(&c, &nt, 8, "tensor count") || rd(&c, &nkv, 8, "metadata count")) goto fail;
    /* a key/value takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8 */
    if (nkv > (size - c.off) / 14) { err_set(e, "%s: metadata count %llu is more than the file can hold", name, (unsigned long long)nkv); goto fail; }
    if (nt > (size - c.off) / 33) { err_set(e, "%s: tensor count %llu is more than the file can hold", name, (unsigned long long)nt); goto fail; }
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    if (!g->kv) { err_set(e, "%s: out of memory", name); goto fail; }
    for (uint64_t i = 0; i < nkv; i++) {
        g->n_kv = (int64_t)i + 1;
        if (rd_kv(&c, &g->kv[i])) goto fail;
    }
    if (nkv > 1) {                               /* duplicate keys: sorted, then neighbours */
        const GgufKV **by = malloc(sizeof *by * nkv);
        if (!by) { err_set(e, "%s: out of memory", name); goto fail; }
        for (uint64_t i = 0; i < nkv; i++) by[i] = &g->kv[i];
        qsort(by, nkv, sizeof *by, cmp_key);
        for (uint64_t i = 1; i < nkv; i++)
            if (!cmp_key(&by[i - 1], &by[i])) {
                err_set(e, "%s: metadata key \"%.*s\" appears twice", name, (int)(by[i]->key.n < 80 ? by[i]->key.n : 80),
                        by[i]->key.s);
                free(by);
                goto fail;
            }
        free(by);
    }
    g->alignment = GGUF_DEFAULT_ALIGN;
    const GgufKV *al = gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_U32) { err_set(e, "%s: general.alignment must be u32, not %s", name, gguf_type_name(al->type)); goto fail; }
        if (al->v.u == 0 || (al->v.u & (al->v.u - 1)) || al->v.u > (1u << 20)) {
            err_set(e, "%s: general.alignment %llu is not a power of two up to 1 MiB", name, (unsigned long long)al->v.u);
            goto fail;
        }
        g->alignment = al->v.u;
    }
    g->t = calloc(nt ? nt : 1, sizeof *g->t);
    if (!g->t) { err_set(e, "%s: out of memory", name); goto fail; }
    for (uint64_t i = 0; i < nt; i++) {
        g->n_t = (int64_t)i + 1;
        if (rd_tensor(&c, &g->t[i])) goto fail;
    }
    uint64_t data_off = (c.off + g->alignment - 1) / g->alignment * g->alignment;
    if (nt && data_off > size) { err_set(e, "%s: truncated: the data section would start at %llu, past the end (%zu)", name, (unsigned long long)data_off, size); goto fail; }
    g->data_off = data_off;
    uint64_t data_len = data_off <= size ? size - data_off : 0;
    for (int64_t i = 0; i < g->n_t; i++) {
        GgufTensor *t = &g->t[i];
        if (t->offset % g->alignment) {
            err_set(e, "%s: tensor \"%.*s\" at offset %llu is not aligned to %llu", name, (int)t->name.n, t->name.s,
                    (unsigned long long)t->offset, (unsigned long long)g->alignment);
            goto fail;
        }
        if (t->offset > data_len || t->nbytes > data_len - t->offset) {
            err_set(e, "%s: tensor \"%.*s\" (%llu bytes at offset %llu) runs past the end of the data (%llu bytes)", name,
                    (int)t->name.n, t->name.s, (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                    (unsigned long long)data_len);
            goto fail;
        }
        t->data = buf + data_off + t->offset;
    }
    /* the data section holds the tensors in file order, each padded to the alignment,
     * as ggml writes and reads it: no gaps, no overlap */
    uint64_t expect = 0;
    for (int64_t i = 0; i < g->n_t; i++) {
        GgufTensor *t = &g->t[i];
        if (t->offset != expect) {
            err_set(e, "%s: tensor \"%.*s\" has offset %llu, expected %llu (tensors must follow each other)", name,
                    (int)t->name.n, t->name.s, (unsigned long long)t->offset, (unsigned long long)expect);
            goto fail;
        }
        expect += (t->nbytes + g->alignment - 1) / g->alignment * g->alignment;   /* nbytes <= data_len: no overflow */
    }
    if (g->n_t > 1) {
        qsort(g->t, (size_t)g->n_t, sizeof *g->t, cmp_tensor_name);
        for (int64_t i = 1; i < g->n_t; i++)
            if (!cmp_tensor_name(&g->t[i - 1], &g->t[i])) {
                err_set(e, "%s: tensor \"%.*s\" appears twice", name, (int)g->t[i].name.n, g->t[i].name.s);
                goto fail;
            }
    }
    return 0;
fail:
    gguf_close(g);
    return -1;
}

int gguf_is_gguf(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    char m[4];
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, m, 4) == 4 && !memcmp(m, "GGUF", 4);
    close(fd);
    return ok;
}

int gguf_open(const char *path, Gguf *g, Err *e) {
    memset(g, 0, sizeof *g);
    void *map;
    size_t size;
    if (map_file(path, &map, &size, e)) return -1;
    if (gguf_parse(map, size, path, g, e)) {
        if (size) munmap(map, size);
        return -1;
    }
    g->mapped = 1;
    return 0;
}

void gguf_close(Gguf *g) {
    for (int64_t i = 0; i < g->n_kv; i++) free(g->kv[i].strs);
    free(g->kv);
    free(g->t);
    if (g->mapped && g->size) munmap((void *)g->map, g->size);
    free(g->path);
    memset(g, 0, sizeof *g);
}

const GgufKV *gguf_find(const Gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const GgufTensor *gguf_tensor(const Gguf *g, const char *name) {
    GgufTensor k = { .name = { name, strlen(name) } };
    return g->n_t ? bsearch(&k, g->t, (size_t)g->n_t, sizeof *g->t, cmp_tensor_name) : NULL;
}

static int bad_type(const Gguf *g, const char *key, const GgufKV *kv, const char *want, Err *e) {
    return err_set(e, "%s: metadata \"%s\" is %s, expected %s", g->path, key, gguf_type_name(kv->type), want);
}

int gguf_get_int(const Gguf *g, const char *key, int64_t *out, Err *e) {
    const GgufKV *kv = gguf_find(g, key);
    if (!kv) return 0;
    switch (kv->type) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64:
        if (kv->v.u > (uint64_t)INT64_MAX) return err_set(e, "%s: metadata \"%s\" is too large", g->path, key);
        *out = (int64_t)kv->v.u;
        return 1;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
        *out = kv->v.i;
        return 1;
    default: return bad_type(g, key, kv, "an integer", e);
    }
}

int gguf_get_float(const Gguf *g, const char *key, double *out, Err *e) {
    const GgufKV *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_F32 && kv->type != GGUF_F64) return bad_type(g, key, kv, "a float", e);
    *out = kv->v.f;
    return 1;
}

int gguf_get_bool(const Gguf *g, const char *key, int *out, Err *e) {
    const GgufKV *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_BOOL) return bad_type(g, key, kv, "a bool", e);
    *out = (int)kv->v.u;
    return 1;
}

int gguf_get_str(const Gguf *g, const char *key, char *out, size_t cap, Err *e) {
    const GgufKV *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_STRING) return bad_type(g, key, kv, "a string", e);
    if (memchr(kv->v.str.s, 0, kv->v.str.n)) return err_set(e, "%s: metadata \"%s\" holds a NUL byte", g->path, key);
    if (kv->v.str.n >= cap) return err_set(e, "%s: metadata \"%s\" is longer than %zu bytes", g->path, key, cap - 1);
    memcpy(out, kv->v.str.s, kv->v.str.n);
    out[kv->v.str.n] = 0;
    return 1;
}

int gguf_get_arr(const Gguf *g, const char *key, GgufType elem, const GgufKV **kvp, Err *e) {
    const GgufKV *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_ARRAY || kv->arr_type != elem)
        return err_set(e, "%s: metadata \"%s\" is %s%s%s, expected an array of %s", g->path, key, gguf_type_name(kv->type),
                       kv->type == GGUF_ARRAY ? " of " : "", kv->type == GGUF_ARRAY ? gguf_type_name(kv->arr_type) : "",
                       gguf_type_name(elem));
    *kvp = kv;
    return 1;
}

int64_t gguf_arr_int(const GgufKV *kv, uint64_t i) {
    const uint8_t *p = kv->arr_data + i * type_size[kv->arr_type];
    switch (kv->arr_type) {
    case GGUF_U8: case GGUF_BOOL: return p[0];
    case GGUF_I8: return (int8_t)p[0];
    case GGUF_U16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_I16: { int16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_U32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_I32: { int32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_U64: { uint64_t x; memcpy(&x, p, 8); return x > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)x; }
    case GGUF_I64: { int64_t x; memcpy(&x, p, 8); return x; }
    default: return 0;                     /* float arrays are not read as integers */
    }
}
