/*
 * safetensors.c - see safetensors.h. The rules follow the reference Rust crate
 * (huggingface/safetensors): header at most 100 MB, offsets contiguous from 0 to the
 * end of the data region, byte length = elements x dtype size.
 */
#define _GNU_SOURCE
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u << 20)

typedef struct { uint64_t begin, end; int idx; } Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static int st_dtype(const char *s, DType *t) {
    if (!strcmp(s, "F32")) { *t = DT_F32; return 0; }
    if (!strcmp(s, "BF16")) { *t = DT_BF16; return 0; }
    if (!strcmp(s, "F16")) { *t = DT_F16; return 0; }
    if (!strcmp(s, "F8_E4M3")) { *t = DT_F8_E4M3; return 0; }
    return -1;
}

/* exact non-negative integer from a JSON number (doubles hold up to 2^53 exactly) */
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

int st_parse_header(const char *json, size_t json_len, uint64_t data_len, const char *name,
                    int file_idx, const uint8_t *data, StSet *s, Err *e) {
    cJSON *root = cJSON_ParseWithLength(json, json_len);
    if (!root) return err_set(e, "%s: header is not valid JSON", name);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(e, "%s: header is not a JSON object", name);
    }
    int n = 0;
    for (cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__")) n++;
    Span *spans = xcalloc((size_t)n + 1, sizeof *spans);
    int base = s->n, k = 0, rc = 0;
    s->t = realloc(s->t, sizeof *s->t * (size_t)(s->n + n + 1));
    if (!s->t) { fprintf(stderr, "effbench: out of memory\n"); exit(3); }
    for (cJSON *it = root->child; it && rc == 0; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it)) rc = err_set(e, "%s: __metadata__ is not an object", name);
            continue;
        }
        const char *tn = it->string;
        if (!cJSON_IsObject(it)) { rc = err_set(e, "%s: tensor \"%s\": entry is not an object", name, tn); break; }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        StTensor t;
        memset(&t, 0, sizeof t);
        if (!cJSON_IsString(dt)) { rc = err_set(e, "%s: tensor \"%s\": missing dtype", name, tn); break; }
        if (st_dtype(dt->valuestring, &t.dtype)) {
            rc = err_set(e, "%s: tensor \"%s\": unsupported dtype \"%s\" (supported: F32, BF16, F16, F8_E4M3)",
                         name, tn, dt->valuestring);
            break;
        }
        if (!cJSON_IsArray(sh)) { rc = err_set(e, "%s: tensor \"%s\": missing shape", name, tn); break; }
        int nd = cJSON_GetArraySize(sh);
        if (nd > ST_MAX_DIMS) { rc = err_set(e, "%s: tensor \"%s\": %d dimensions, at most %d supported", name, tn, nd, ST_MAX_DIMS); break; }
        t.ndim = nd;
        uint64_t elems = 1;
        int i = 0;
        for (const cJSON *d = sh->child; d; d = d->next, i++) {
            uint64_t v;
            if (json_u64(d, &v)) { rc = err_set(e, "%s: tensor \"%s\": shape[%d] is not a non-negative integer", name, tn, i); break; }
            t.shape[i] = (int64_t)v;
            if (v && elems > UINT64_MAX / v) { rc = err_set(e, "%s: tensor \"%s\": element count overflows 64 bits", name, tn); break; }
            elems *= v;
        }
        if (rc) break;
        uint64_t esz = dtype_size(t.dtype);
        if (elems > UINT64_MAX / esz) { rc = err_set(e, "%s: tensor \"%s\": byte size overflows 64 bits", name, tn); break; }
        uint64_t b, en;
        if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || json_u64(of->child, &b) || json_u64(of->child->next, &en)) {
            rc = err_set(e, "%s: tensor \"%s\": data_offsets must be two non-negative integers", name, tn);
            break;
        }
        if (en < b) { rc = err_set(e, "%s: tensor \"%s\": data_offsets [%llu, %llu] end before they begin", name, tn, (unsigned long long)b, (unsigned long long)en); break; }
        if (en > data_len) {
            rc = err_set(e, "%s: tensor \"%s\": data_offsets end at %llu, past the %llu data bytes of the file (truncated?)",
                         name, tn, (unsigned long long)en, (unsigned long long)data_len);
            break;
        }
        if (en - b != elems * esz) {
            rc = err_set(e, "%s: tensor \"%s\": shape needs %llu bytes but data_offsets span %llu",
                         name, tn, (unsigned long long)(elems * esz), (unsigned long long)(en - b));
            break;
        }
        t.name = xstrdup(tn);
        t.data = data ? data + b : NULL;
        t.nbytes = en - b;
        t.file = file_idx;
        s->t[s->n++] = t;
        spans[k].begin = b; spans[k].end = en; spans[k].idx = s->n - 1;
        k++;
        s->total_bytes += t.nbytes;
    }
    if (rc == 0) {
        qsort(spans, (size_t)k, sizeof *spans, span_cmp);
        uint64_t at = 0;
        for (int i = 0; i < k && rc == 0; i++) {
            if (spans[i].begin < at)
                rc = err_set(e, "%s: tensor \"%s\" overlaps the tensor before it", name, s->t[spans[i].idx].name);
            else if (spans[i].begin > at)
                rc = err_set(e, "%s: gap of %llu bytes before tensor \"%s\" in the data region", name,
                             (unsigned long long)(spans[i].begin - at), s->t[spans[i].idx].name);
            at = spans[i].end;
        }
        if (rc == 0 && at != data_len)
            rc = err_set(e, "%s: %llu bytes after the last tensor (header and data disagree)", name,
                         (unsigned long long)(data_len - at));
    }
    if (rc) {                        /* drop what this header added */
        for (int i = base; i < s->n; i++) free(s->t[i].name);
        s->n = base;
    }
    free(spans);
    cJSON_Delete(root);
    return rc;
}

int st_open_file(const char *path, StSet *s, Err *e) {
    void *map;
    size_t size;
    if (map_file(path, &map, &size, e)) return -1;
    if (size < 8) {
        if (size) munmap(map, size);
        return err_set(e, "%s: truncated: %zu bytes, shorter than the 8-byte header length", path, size);
    }
    uint64_t hlen = 0;
    memcpy(&hlen, map, 8);                 /* little-endian hosts only (x86-64, arm64) */
    if (hlen > ST_MAX_HEADER) {
        munmap(map, size);
        return err_set(e, "%s: header length %llu exceeds the 100 MB limit", path, (unsigned long long)hlen);
    }
    if (hlen > size - 8) {
        munmap(map, size);
        return err_set(e, "%s: header length %llu runs past the end of the %zu-byte file (truncated?)",
                       path, (unsigned long long)hlen, size);
    }
    int idx = s->n_files;
    s->files = realloc(s->files, sizeof *s->files * (size_t)(idx + 1));
    if (!s->files) { fprintf(stderr, "effbench: out of memory\n"); exit(3); }
    s->files[idx].path = xstrdup(path);
    s->files[idx].map = map;
    s->files[idx].size = size;
    s->n_files++;
    const uint8_t *data = (const uint8_t *)map + 8 + hlen;
    if (st_parse_header((const char *)map + 8, (size_t)hlen, size - 8 - hlen, path, idx, data, s, e)) {
        munmap(map, size);
        free(s->files[idx].path);
        s->n_files--;
        return -1;
    }
    madvise(map, size, MADV_WILLNEED);
    return 0;
}

static int open_index(const char *dir, const char *ipath, StSet *s, Err *e) {
    char *txt = read_file(ipath, 64u << 20, NULL, e);
    if (!txt) return -1;
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    if (!root) return err_set(e, "%s: malformed JSON", ipath);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return err_set(e, "%s: no \"weight_map\" object", ipath);
    }
    /* distinct shard names, in first-seen order */
    int rc = 0, nsh = 0, cap = 16;
    char **shards = xmalloc(sizeof *shards * (size_t)cap);
    for (const cJSON *it = wm->child; it && !rc; it = it->next) {
        if (!cJSON_IsString(it)) { rc = err_set(e, "%s: weight_map[\"%s\"] is not a file name", ipath, it->string); break; }
        const char *f = it->valuestring;
        if (!*f || strchr(f, '/') || !strcmp(f, "..")) { rc = err_set(e, "%s: weight_map[\"%s\"] names \"%s\", not a file beside the index", ipath, it->string, f); break; }
        int seen = 0;
        for (int i = 0; i < nsh; i++) if (!strcmp(shards[i], f)) { seen = 1; break; }
        if (!seen) {
            if (nsh == cap) { cap *= 2; shards = realloc(shards, sizeof *shards * (size_t)cap); }
            shards[nsh++] = xstrdup(f);
        }
    }
    for (int i = 0; i < nsh && !rc; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, shards[i]);
        rc = st_open_file(p, s, e);
    }
    if (!rc) rc = st_finalize(s, e);
    /* every tensor the index names must be in the shard it names */
    for (const cJSON *it = wm->child; it && !rc; it = it->next) {
        StTensor *t = st_find(s, it->string);
        if (!t) { rc = err_set(e, "%s: tensor \"%s\" is listed but missing from %s", ipath, it->string, it->valuestring); break; }
        const char *fp = s->files[t->file].path, *slash = strrchr(fp, '/');
        if (strcmp(slash ? slash + 1 : fp, it->valuestring))
            rc = err_set(e, "%s: tensor \"%s\" is listed in %s but found in %s", ipath, it->string, it->valuestring, fp);
    }
    if (!rc && cJSON_GetArraySize(wm) != s->n)
        rc = err_set(e, "%s: the shards hold %d tensors but the index lists %d", ipath, s->n, cJSON_GetArraySize(wm));
    for (int i = 0; i < nsh; i++) free(shards[i]);
    free(shards);
    cJSON_Delete(root);
    return rc;
}

int st_open_dir(const char *dir, StSet *s, Err *e) {
    memset(s, 0, sizeof *s);
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    int rc;
    if (access(p, F_OK) == 0) rc = open_index(dir, p, s, e);
    else {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        rc = st_open_file(p, s, e);
        if (!rc) rc = st_finalize(s, e);
    }
    if (rc) st_close(s);
    return rc;
}

static int tensor_cmp(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

int st_finalize(StSet *s, Err *e) {
    if (s->n > 1) qsort(s->t, (size_t)s->n, sizeof *s->t, tensor_cmp);
    for (int i = 1; i < s->n; i++)
        if (!strcmp(s->t[i].name, s->t[i - 1].name))
            return err_set(e, "%s: tensor \"%s\" appears twice", s->files[s->t[i].file].path, s->t[i].name);
    s->sorted = 1;
    return 0;
}

StTensor *st_find(StSet *s, const char *name) {
    if (s->n == 0) return NULL;
    if (s->sorted) {
        StTensor key = { .name = (char *)name };
        return bsearch(&key, s->t, (size_t)s->n, sizeof *s->t, tensor_cmp);
    }
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    return NULL;
}

void st_close(StSet *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].name);
    for (int i = 0; i < s->n_files; i++) {
        if (s->files[i].map) munmap(s->files[i].map, s->files[i].size);
        free(s->files[i].path);
    }
    free(s->t);
    free(s->files);
    memset(s, 0, sizeof *s);
}
