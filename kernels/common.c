/*
 * common.c - see common.h.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int err_set(Err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int err_prefix(Err *e, const char *fmt, ...) {
    if (e) {
        char pre[512], old[sizeof e->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pre, sizeof pre, fmt, ap);
        va_end(ap);
        snprintf(old, sizeof old, "%s", e->msg);
        snprintf(e->msg, sizeof e->msg, "%.400s: %.600s", pre, old);     /* both fit: no truncation warning */
    }
    return -1;
}

static _Atomic uint64_t n_alloc;     /* calls of the x*alloc wrappers (alloc_count) */

uint64_t alloc_count(void) { return atomic_load_explicit(&n_alloc, memory_order_relaxed); }

void *xmalloc(size_t n) {
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    void *p = malloc(n ? n : 1);
    if (!p) {
        char b[32];
        fprintf(stderr, "effbench: out of memory allocating %s\n", fmt_bytes(n, b, sizeof b));
        exit(3);
    }
    return p;
}

void *xrealloc(void *p, size_t n) {
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        char b[32];
        fprintf(stderr, "effbench: out of memory allocating %s\n", fmt_bytes((uint64_t)n, b, sizeof b));
        exit(3);
    }
    return q;
}

void *xcalloc(size_t n, size_t sz) {
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        char b[32];
        fprintf(stderr, "effbench: out of memory allocating %s\n", fmt_bytes((uint64_t)n * sz, b, sizeof b));
        exit(3);
    }
    return p;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

char *read_file(const char *path, size_t max_bytes, size_t *len, Err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) { err_set(e, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        err_set(e, "%s: not a regular file", path);
        return NULL;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        err_set(e, "%s: file is %lld bytes, more than the %zu allowed", path, (long long)st.st_size, max_bytes);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = xmalloc(n + 1);
    if (n && fread(buf, 1, n, f) != n) {
        fclose(f);
        free(buf);
        err_set(e, "%s: read failed", path);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int map_file(const char *path, void **map, size_t *size, Err *e) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    void *m = n ? mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (n && m == MAP_FAILED) return err_set(e, "%s: cannot map: %s", path, strerror(errno));
    *map = m;
    *size = n;
    return 0;
}

static int writes_files = 1;
void set_writes_files(int on) { writes_files = on; }
int writes_files_on(void) { return writes_files; }

int write_file_atomic(const char *path, const void *data, size_t len, Err *e) {
    char tmp[4096];
    if (!writes_files) return 0;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return err_set(e, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return err_set(e, "%s: cannot create: %s", path, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int er = errno;
            close(fd); unlink(tmp);
            return err_set(e, "%s: write failed: %s", path, strerror(er));
        }
        p += w; left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int er = errno;
        unlink(tmp);
        return err_set(e, "%s: write failed: %s", path, strerror(er));
    }
    if (rename(tmp, path) != 0) {
        int er = errno;
        unlink(tmp);
        return err_set(e, "%s: cannot rename into place: %s", path, strerror(er));
    }
    return 0;
}

uint64_t mem_available(void) {
    const char *lim = getenv("EFFBENCH_MEM_LIMIT");
    if (lim && *lim) return strtoull(lim, NULL, 10);
    FILE *f = fopen("/proc/meminfo", "r");
    uint64_t kb = 0;
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %lu kB", &kb) == 1) break;
        fclose(f);
    }
    if (!kb) {
        long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : UINT64_MAX;
    }
    return kb * 1024;
}

const char *fmt_bytes(uint64_t n, char *buf, size_t len) {
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) { v /= 1024; i++; }
    if (i == 0) snprintf(buf, len, "%llu B", (unsigned long long)n);
    else snprintf(buf, len, "%.1f %s", v, u[i]);
    return buf;
}

double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- number formats ---------------------------------------------------------------- */
/* name, elements per block, bytes per block, ggml type number */
static const struct { const char *name; int block, bytes, ggml; } dtypes[DT_COUNT] = {
    [DT_F32] = { "F32", 1, 4, 0 },         [DT_BF16] = { "BF16", 1, 2, 30 },   [DT_F16] = { "F16", 1, 2, 1 },
    [DT_F8_E4M3] = { "F8_E4M3", 1, 1, -1 },
    [DT_Q8_0] = { "Q8_0", 32, 34, 8 },     [DT_Q4_0] = { "Q4_0", 32, 18, 2 },  [DT_Q4_1] = { "Q4_1", 32, 20, 3 },
    [DT_Q4_K] = { "Q4_K", 256, 144, 12 },  [DT_Q5_K] = { "Q5_K", 256, 176, 13 }, [DT_Q6_K] = { "Q6_K", 256, 210, 14 },
};

const char *dtype_name(DType t) { return t < DT_COUNT ? dtypes[t].name : "?"; }
size_t dtype_size(DType t) { return t < DT_COUNT && dtypes[t].block == 1 ? (size_t)dtypes[t].bytes : 0; }
int dtype_block(DType t) { return t < DT_COUNT ? dtypes[t].block : 1; }
uint64_t dtype_bytes(DType t, int64_t n) {
    return t < DT_COUNT ? (uint64_t)n / (uint64_t)dtypes[t].block * (uint64_t)dtypes[t].bytes : 0;
}
double dtype_bits(DType t) { return t < DT_COUNT ? 8.0 * dtypes[t].bytes / dtypes[t].block : 0; }
int dtype_ggml(DType t) { return t < DT_COUNT ? dtypes[t].ggml : -1; }
int dtype_from_ggml(int ggml_type, DType *t) {
    for (int i = 0; i < DT_COUNT; i++)
        if (dtypes[i].ggml == ggml_type) { *t = (DType)i; return 0; }
    return -1;
}

int dtype_parse(const char *s, DType *t) {
    for (int i = 0; i < DT_COUNT; i++)
        if (!strcasecmp(s, dtypes[i].name)) { *t = (DType)i; return 0; }
    if (!strcasecmp(s, "fp8")) { *t = DT_F8_E4M3; return 0; }
    if (!strcasecmp(s, "float32")) { *t = DT_F32; return 0; }
    if (!strcasecmp(s, "bfloat16")) { *t = DT_BF16; return 0; }
    if (!strcasecmp(s, "float16")) { *t = DT_F16; return 0; }
    return -1;
}

float f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, ex = (h >> 10) & 0x1f, m = h & 0x3ff;
    union { uint32_t u; float f; } v;
    if (ex == 0) {
        float f = ldexpf((float)m, -24);
        return s ? -f : f;
    }
    if (ex == 31) v.u = s | 0x7f800000u | (m << 13);
    else v.u = s | ((ex + 112) << 23) | (m << 13);
    return v.f;
}

uint16_t f32_to_f16(float f) {
    union { float f; uint32_t u; } v = { f };
    uint16_t s = (uint16_t)((v.u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f)) return s | 0x7e00;
    if (a >= 65520.0f) return s | 0x7c00;
    if (a < 6.103515625e-05f) {                       /* subnormal: multiples of 2^-24 */
        return s | (uint16_t)lrintf(a * 16777216.0f);
    }
    int ex;
    float m = frexpf(a, &ex);                         /* a = m * 2^ex, m in [0.5,1) */
    uint32_t mant = (uint32_t)lrintf(m * 2048.0f);    /* 11 significant bits, rne */
    if (mant == 2048) { mant = 1024; ex++; }
    return s | (uint16_t)(((uint32_t)(ex + 14) << 10) | (mant - 1024));
}

float f8e4m3_to_f32(uint8_t b) {
    int s = b >> 7, ex = (b >> 3) & 0xf, m = b & 7;
    float v;
    if (ex == 15 && m == 7) return NAN;
    if (ex == 0) v = ldexpf((float)m, -9);            /* subnormal: m/8 * 2^-6 */
    else v = ldexpf(1.0f + (float)m / 8.0f, ex - 7);
    return s ? -v : v;
}

uint8_t f32_to_f8e4m3(float f) {
    if (isnan(f)) return 0x7f;
    uint8_t s = signbit(f) ? 0x80 : 0;
    float a = fabsf(f);
    if (a >= 448.0f) return s | 0x7e;
    /* pick the nearest of the 127 non-negative finite codes, ties to even code */
    uint8_t best = 0;
    float bd = INFINITY;
    for (int c = 0; c < 0x7f; c++) {
        float d = fabsf(f8e4m3_to_f32((uint8_t)c) - a);
        if (d < bd || (d == bd && (c & 1) == 0)) { bd = d; best = (uint8_t)c; }
    }
    return s | best;
}

void cpu_model_name(char *out, size_t len) {
    snprintf(out, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ') c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(out, len, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

const char *exe_dir(void) {
    static char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) return ".";
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    return dir;
}

const char *shipped_path(const char *rel, char *buf, size_t len) {
    snprintf(buf, len, "%s/suites/%s", exe_dir(), rel);
    if (access(buf, R_OK) != 0) snprintf(buf, len, "suites/%s", rel);
    return buf;
}
