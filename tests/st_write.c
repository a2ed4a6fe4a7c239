/*
 * st_write.c - see st_write.h.
 */
#include "st_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int st_write_raw(const char *path, uint64_t hlen_field, const char *header, const void *data, size_t data_len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(&hlen_field, 8, 1, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len) fwrite(data, 1, data_len, f);
    return fclose(f) ? -1 : 0;
}

int st_write(const char *path, const WTensor *t, int n) {
    size_t cap = 4096 + (size_t)n * 256, len = 0;
    char *h = xmalloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t el = 1;
        for (int d = 0; d < t[i].ndim; d++) el *= (uint64_t)t[i].shape[d];
        uint64_t nb = el * dtype_size(t[i].dtype);
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                (unsigned long long)(off + nb));
        off += nb;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';          /* data aligned to 8 bytes, as writers do */
    h[len] = 0;
    FILE *f = fopen(path, "wb");
    if (!f) { free(h); return -1; }
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, len, f);
    for (int i = 0; i < n; i++) {
        uint64_t el = 1;
        for (int d = 0; d < t[i].ndim; d++) el *= (uint64_t)t[i].shape[d];
        fwrite(t[i].data, 1, el * dtype_size(t[i].dtype), f);
    }
    free(h);
    return fclose(f) ? -1 : 0;
}

int copy_file(const char *src, const char *dst) {
    Err e;
    size_t n;
    char *b = read_file(src, (size_t)1 << 31, &n, &e);
    if (!b) return -1;
    FILE *f = fopen(dst, "wb");
    if (!f) { free(b); return -1; }
    fwrite(b, 1, n, f);
    free(b);
    return fclose(f) ? -1 : 0;
}

int make_dir(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') { *s = 0; mkdir(p, 0755); *s = '/'; }
    }
    return (mkdir(p, 0755) == 0 || errno == EEXIST) ? 0 : -1;
}
