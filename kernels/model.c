/*
 * model.c - building a Model: every weight the config implies is bound by its
 * Hugging Face name, either to a tensor of the mapped checkpoint (shape and dtype
 * checked, nothing copied but small vectors) or to seeded dummy values. One
 * enumeration (bind_model) serves both, so dummy and real models have the same
 * tensors. A checkpoint tensor nobody asked for is an error, except the MTP layers
 * of DeepSeek-V3 (num_nextn_predict_layers), which the engine does not run.
 */
#define _GNU_SOURCE
#include "model.h"
#include "qdot.h"
#include "gguf_model.h"
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

typedef enum { BIND_COUNT, BIND_FILE, BIND_DUMMY } BindMode;

typedef struct {
    BindMode mode;
    Model *m;
    Err *e;
    int bad;
    uint64_t bytes, params;      /* totals of what was bound */
    uint64_t owned_bytes;        /* what dummy binding will allocate */
    uint64_t tensor_idx;         /* dummy seeding: tensors in enumeration order */
    int copy;                    /* file weights: copied out of the mapping (copy_weights) */
    uint8_t *heap;               /* ...into this huge-page chunk, heap_left bytes still free */
    uint64_t heap_left;
    int extra;                   /* binding a loader-made companion (bind_extra): not a parameter,
                                    not recorded among the model's named weights */
} Binder;

void model_own(Model *m, void *p) {
    if (m->n_owned == m->cap_owned) {
        m->cap_owned = m->cap_owned ? 2 * m->cap_owned : 64;
        m->owned = realloc(m->owned, sizeof *m->owned * (size_t)m->cap_owned);
        if (!m->owned) { fprintf(stderr, "effbench: out of memory\n"); exit(3); }
    }
    m->owned[m->n_owned++] = p;
}
#define own model_own

static void record(Model *m, const char *name, Mat w) {
    if ((m->n_mats & (m->n_mats - 1)) == 0) m->mats = xrealloc(m->mats, sizeof *m->mats * (size_t)(m->n_mats ? 2 * m->n_mats : 64));
    NamedMat *nm = &m->mats[m->n_mats++];
    snprintf(nm->name, sizeof nm->name, "%s", name);
    nm->w = w;
}

void *model_alloc_weights(uint64_t nb) {
    size_t align = 2u << 20, n = (size_t)((nb + align - 1) / align * align);
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : align) != 0) {
        char b[32];
        fprintf(stderr, "effbench: out of memory allocating %s\n", fmt_bytes(nb, b, sizeof b));
        exit(3);
    }
    madvise(p, n ? n : align, MADV_HUGEPAGE);
    return p;
}

/* A matrix of a mapped file copied into anonymous memory in 2 MiB pages
 * (model_alloc_weights' chunks of at least 256 MiB, each matrix 64-byte aligned in them):
 * the file's pages are 4 KiB, and a decode step that streams every weight from them ran
 * at 70% of the bandwidth it reached on the same bytes in huge pages (Llama-8B-4L Q4_K:
 * 16-17 against 22-23 GB/s). The copied pages of the mapping are then released (MADV_DONTNEED: the
 * file's page cache keeps them, the process no longer counts them). A tensor bound
 * whole also points the StTensor at the copy, so later readers (check_finite) read it. */
#define HEAP_CHUNK (256ull << 20)
/* whether [p, p+n) lies in a file mapping (not in memory the loader made) */
static int in_mapping(const Model *m, const void *p, uint64_t n) {
    const uint8_t *a = p;
    if (m->from_gguf) return m->gguf.map && a >= m->gguf.map && a + n <= m->gguf.map + m->gguf.size;
    for (int i = 0; i < m->st.n_files; i++) {
        const uint8_t *f = m->st.files[i].map;
        if (f && a >= f && a + n <= f + m->st.files[i].size) return 1;
    }
    return 0;
}
static const void *copy_weights(Binder *b, StTensor *t, const uint8_t *src, uint64_t n) {
    Model *m = b->m;
    if (!in_mapping(m, src, n)) return src;  /* made by the loader, in huge pages where large */
    uint64_t need = (n + 63) & ~63ull;
    if (need > b->heap_left) {
        b->heap_left = need > HEAP_CHUNK ? (need + (2ull << 20) - 1) & ~((2ull << 20) - 1) : HEAP_CHUNK;
        b->heap = model_alloc_weights(b->heap_left);
        own(m, b->heap);
    }
    uint8_t *d = b->heap;
    b->heap += need;
    b->heap_left -= need;
    memcpy(d, src, n);
    m->copied_bytes += n;
    if (src == t->data && n == t->nbytes) t->data = d;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), lo = ((uintptr_t)src + pg - 1) & ~(pg - 1),
              hi = ((uintptr_t)src + n) & ~(pg - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    return d;
}

/* counter-based generator: the same values whatever the thread count */
static inline uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static inline float uniform_pm1(uint64_t seed, uint64_t i) {   /* in [-1, 1) */
    return (float)((int64_t)(splitmix(seed + i * 0xd1b54a32d192ed03ull) >> 40) - (1 << 23)) / (float)(1 << 23);
}

/* Dummy values are a function of (seed, r * cols + c) for element (r, c) of the whole
 * (rows, cols) matrix, so a rank's slice holds exactly the values of the same part of
 * the whole. The slice: rows [r0, r0+nr), columns [c0, c0+nc), packed (nr, nc). */
static void fill_dummy(void *dst, DType dt, int64_t r0, int64_t nr, int64_t cols, int64_t c0, int64_t nc, float amp,
                       uint64_t seed) {
    #pragma omp parallel for schedule(static) if (nr * nc > 262144)
    for (int64_t r = 0; r < nr; r++)
        for (int64_t j = 0; j < nc; j++) {
            uint64_t i = (uint64_t)((r0 + r) * cols + c0 + j);
            int64_t o = r * nc + j;
            float v = amp * uniform_pm1(seed, i);
            switch (dt) {
            case DT_F32: ((float *)dst)[o] = v; break;
            case DT_BF16: ((uint16_t *)dst)[o] = f32_to_bf16(v); break;
            case DT_F16: ((_Float16 *)dst)[o] = (_Float16)v; break;
            case DT_F8_E4M3: {
                /* codes of magnitude up to ~1 (exponent field <= 7); scales carry amp */
                uint8_t b = (uint8_t)(splitmix(seed + i * 0xd1b54a32d192ed03ull) & 0xbf);
                ((uint8_t *)dst)[o] = b;
                break;
            }
            default: break;
            }
        }
}

/* Block types: each row of the seeded float32 values above (the same values an F32
 * dummy holds) encoded with ggml_quant_fast (llama.cpp's reference quantizers with the
 * K types' scale searches cut short: load time, for random values). Blocks are encoded
 * independently, so a column slice on block boundaries equals those blocks of the whole. */
static void fill_dummy_blocks(uint8_t *dst, DType dt, int64_t r0, int64_t nr, int64_t cols, int64_t c0, int64_t nc, float amp,
                              uint64_t seed) {
    uint64_t rb = dtype_bytes(dt, nc);
    #pragma omp parallel if (nr * nc > 262144)
    {
        float *row = xmalloc(sizeof(float) * (size_t)nc);
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < nr; r++) {
            for (int64_t j = 0; j < nc; j++) row[j] = amp * uniform_pm1(seed, (uint64_t)((r0 + r) * cols + c0 + j));
            ggml_quant_fast(dtype_ggml(dt), row, dst + (uint64_t)r * rb, nc);
        }
        free(row);
    }
}

/* The type a dummy matrix of `cols` columns is stored in: a block type needs whole
 * blocks, so as llama.cpp's quantizer does, K types fall back to a 32-element type
 * (Q4_K to Q4_1, Q5_K and Q6_K to Q8_0) and a row of no whole 32-blocks to F16. */
static DType dummy_dtype(DType want, int64_t cols) {
    int blk = dtype_block(want);
    if (cols % blk == 0) return want;
    if (blk == 256 && cols % 32 == 0) return want == DT_Q4_K ? DT_Q4_1 : DT_Q8_0;
    return DT_F16;
}

/* A checkpoint's matrix re-encoded in the type a dummy of its shape gets (dummy_dtype);
 * rows decoded to float32 first, then encoded as the dummy fill encodes. */
static Mat recode(Model *m, Mat w, int64_t whole_cols) {
    DType dt = dummy_dtype(m->opts.dtype, whole_cols);
    if (dt == w.dt) return w;
    uint64_t rb = dtype_bytes(dt, w.cols);
    uint8_t *d = model_alloc_weights(rb * (uint64_t)w.rows);
    own(m, d);
    #pragma omp parallel if (w.rows * w.cols > 262144)
    {
        float *row = xmalloc(sizeof(float) * (size_t)w.cols);
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < w.rows; r++) {
            mat_rows_f32(&w, r, 1, row);
            uint8_t *o = d + (uint64_t)r * rb;
            if (dtype_block(dt) > 1) ggml_quant(dtype_ggml(dt), row, o, w.cols);
            else if (dt == DT_F32) memcpy(o, row, sizeof(float) * (size_t)w.cols);
            else if (dt == DT_BF16) for (int64_t i = 0; i < w.cols; i++) ((uint16_t *)(void *)o)[i] = f32_to_bf16(row[i]);
            else if (dt == DT_F16) for (int64_t i = 0; i < w.cols; i++) ((uint16_t *)(void *)o)[i] = f32_to_f16(row[i]);
        }
        free(row);
    }
    return (Mat){ dt, d, NULL, w.rows, w.cols };
}

/* the name a user knows a tensor by: the file's own (GGUF names for a GGUF file) */
static const char *shown(Binder *b, const char *name, char *buf, size_t cap) {
    buf[0] = 0;
    if (b->m->from_gguf) gguf_name_of(name, buf, cap);
    return buf[0] ? buf : name;
}

static void missing(Binder *b, const char *name) {
    char g[128];
    err_set(b->e, "%s: missing tensor \"%s\"", b->m->path, shown(b, name, g, sizeof g));
}

/* Which part of a (rows, cols) weight this rank holds (layout.h): all of it, rows
 * [lo, lo+n), columns [lo, lo+n), or none (an expert another rank holds: its shape is
 * still checked, nothing is read). */
typedef enum { PART_ALL, PART_ROWS, PART_COLS, PART_NONE } PartAxis;
typedef struct { PartAxis axis; int64_t lo, n; } Part;
static const Part ALL = { PART_ALL, 0, 0 };
static Part rows_part(int64_t lo, int64_t n) { return (Part){ PART_ROWS, lo, n }; }
static Part cols_part(int64_t lo, int64_t n) { return (Part){ PART_COLS, lo, n }; }
/* rows (or columns) [lo, lo+k) of `whole`: ALL when that is all of them */
static Part rows_of(int64_t lo, int64_t k, int64_t whole) { return k == whole ? ALL : rows_part(lo, k); }
static Part cols_of(int64_t lo, int64_t k, int64_t whole) { return k == whole ? ALL : cols_part(lo, k); }

/* A column slice of a block type must start and end on block boundaries (and F8_E4M3's
 * slices on its 128x128 scale blocks, rows included). 0, or -1 with e set. */
static int part_fits(Binder *b, const char *name, DType dt, int64_t rows, int64_t cols, Part p) {
    if (p.axis != PART_ROWS && p.axis != PART_COLS) return 0;
    int64_t blk = p.axis == PART_COLS ? dtype_block(dt) : 1, end = p.lo + p.n, whole = p.axis == PART_COLS ? cols : rows;
    if (dt == DT_F8_E4M3) blk = F8_BLOCK;
    if (p.lo % blk || (end != whole && end % blk)) {
        char g[128];
        b->bad = 1;
        return err_set(b->e, "%s: tensor \"%s\" (%s): this rank's %s [%lld, %lld) is not a whole number of %lld-element blocks "
                             "(use fewer ranks, or another --tp/--ep)", b->m->path, shown(b, name, g, sizeof g), dtype_name(dt),
                       p.axis == PART_COLS ? "columns" : "rows", (long long)p.lo, (long long)end, (long long)blk);
    }
    return 0;
}

/* NaN/Inf in the part a rank holds (its own check: a rank reads only its slice) */
static int mat_nonfinite(const Mat *w) {
    int64_t n = w->rows * w->cols;
    if (w->scale && count_nonfinite(DT_F32, w->scale, ((w->rows + 127) / 128) * ((w->cols + 127) / 128))) return 1;
    return dtype_block(w->dt) > 1 ? qdot_block_nonfinite(w->dt, w->data, n) > 0 : count_nonfinite(w->dt, w->data, n) > 0;
}

static Mat bind_part(Binder *b, const char *name, int64_t rows, int64_t cols, Part p) {
    Mat w = { DT_F32, NULL, NULL, rows, cols };
    if (b->bad) return w;
    if (!b->extra) b->params += (uint64_t)rows * (uint64_t)cols;
    b->tensor_idx++;
    Model *m = b->m;
    /* the held part: rows [r0, r0+nr), columns [c0, c0+nc) */
    int64_t r0 = 0, nr = rows, c0 = 0, nc = cols;
    if (p.axis == PART_ROWS) { r0 = p.lo; nr = p.n; }
    if (p.axis == PART_COLS) { c0 = p.lo; nc = p.n; }
    if (p.axis == PART_NONE) nr = 0;
    if (b->mode == BIND_COUNT || b->mode == BIND_DUMMY) {
        DType dt = dummy_dtype(m->opts.dtype, cols);
        if (part_fits(b, name, dt, rows, cols, p)) return w;
        w.rows = nr; w.cols = nc;
        if (p.axis == PART_NONE) { w.rows = rows; w.cols = cols; return w; }
        uint64_t nb = (uint64_t)nr * dtype_bytes(dt, nc);
        uint64_t sb = dt == DT_F8_E4M3 ? sizeof(float) * (uint64_t)((nr + 127) / 128) * (uint64_t)((nc + 127) / 128) : 0;
        b->bytes += nb + sb;
        b->owned_bytes += nb + sb;
        if (b->mode == BIND_COUNT) return w;
        w.dt = dt;
        void *d = model_alloc_weights(nb);
        own(m, d);
        float amp = (float)(1.0 / sqrt((double)cols));  /* keeps activations O(1) */
        uint64_t seed = splitmix(m->opts.seed * 0x100000001b3ull + b->tensor_idx);
        if (dtype_block(dt) > 1) fill_dummy_blocks(d, dt, r0, nr, cols, c0, nc, amp, seed);
        else fill_dummy(d, dt, r0, nr, cols, c0, nc, amp, seed);
        w.data = d;
        if (dt == DT_F8_E4M3) {
            int64_t ns = ((nr + 127) / 128) * ((nc + 127) / 128);
            float *sc = xmalloc(sizeof(float) * (size_t)ns);
            own(m, sc);
            for (int64_t i = 0; i < ns; i++) sc[i] = amp;
            w.scale = sc;
        }
        record(m, name, w);
        return w;
    }
    StTensor *t = st_find(&m->st, name);
    if (!t) {
        b->bad = 1;
        missing(b, name);
        return w;
    }
    const char *file = m->st.files[t->file].path;
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        b->bad = 1;
        char got[128] = "";
        int off = 0;
        for (int i = 0; i < t->ndim && off < 100; i++)
            off += snprintf(got + off, sizeof got - (size_t)off, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        char g[128];
        err_set(b->e, "%s: tensor \"%s\" has shape [%s], expected [%lld, %lld]", file, shown(b, name, g, sizeof g), got,
                (long long)rows, (long long)cols);
        return w;
    }
    t->used = 1;
    StTensor *s = NULL;
    if (t->dtype == DT_F8_E4M3) {
        char sn[512];
        snprintf(sn, sizeof sn, "%s_scale_inv", name);
        s = st_find(&m->st, sn);
        int64_t sr = (rows + 127) / 128, scn = (cols + 127) / 128;
        if (!s) {
            b->bad = 1;
            err_set(b->e, "%s: F8_E4M3 tensor \"%s\" has no \"%s\"", file, name, sn);
            return w;
        }
        if (s->dtype != DT_F32 || s->ndim != 2 || s->shape[0] != sr || s->shape[1] != scn) {
            b->bad = 1;
            err_set(b->e, "%s: \"%s\" must be F32 [%lld, %lld] (128x128 blocks)", m->st.files[s->file].path, sn,
                    (long long)sr, (long long)scn);
            return w;
        }
        s->used = 1;
    }
    if (p.axis == PART_NONE) return w;
    if (part_fits(b, name, t->dtype, rows, cols, p)) return w;
    w.dt = t->dtype;
    uint64_t rb = dtype_bytes(t->dtype, cols);
    int64_t scn = (cols + 127) / 128;
    if (p.axis != PART_COLS) {                  /* whole, or rows: a range of the mapping */
        w.data = (const uint8_t *)t->data + (uint64_t)r0 * rb;
        w.rows = nr;
        if (s) w.scale = (const float *)s->data + (r0 / 128) * scn;
    } else {                                    /* columns: each row's part copied */
        uint64_t pb = dtype_bytes(t->dtype, nc), ob = dtype_bytes(t->dtype, c0);
        uint8_t *d = model_alloc_weights(pb * (uint64_t)rows);
        own(m, d);
        for (int64_t r = 0; r < rows; r++) memcpy(d + (uint64_t)r * pb, (const uint8_t *)t->data + (uint64_t)r * rb + ob, pb);
        w.data = d;
        w.cols = nc;
        if (s) {
            int64_t sr = (rows + 127) / 128, pc = (nc + 127) / 128;
            float *sc = xmalloc(sizeof(float) * (size_t)(sr * pc));
            own(m, sc);
            for (int64_t r = 0; r < sr; r++) memcpy(sc + r * pc, (const float *)s->data + r * scn + c0 / 128, sizeof(float) * (size_t)pc);
            w.scale = sc;
        }
    }
    b->bytes += (uint64_t)w.rows * dtype_bytes(w.dt, w.cols);
    if (w.scale) b->bytes += sizeof(float) * (uint64_t)((w.rows + 127) / 128) * (uint64_t)((w.cols + 127) / 128);
    if (b->copy && p.axis != PART_COLS && !m->opts.recode) w.data = copy_weights(b, t, w.data, (uint64_t)w.rows * rb);
    if (m->sh.n > 1 && mat_nonfinite(&w)) {     /* whole models: check_finite, over the files */
        char g[128];
        b->bad = 1;
        err_set(b->e, "%s: tensor \"%s\" holds NaN/Inf values (in rank %d's part)", file, shown(b, name, g, sizeof g), m->sh.rank);
        return w;
    }
    if (m->opts.recode) {
        b->bytes -= (uint64_t)w.rows * dtype_bytes(w.dt, w.cols);
        if (w.scale) b->bytes -= sizeof(float) * (uint64_t)((w.rows + 127) / 128) * (uint64_t)((w.cols + 127) / 128);
        w = recode(m, w, cols);
        b->bytes += (uint64_t)w.rows * dtype_bytes(w.dt, w.cols);
    }
    if (!b->extra) record(m, name, w);
    return w;
}

static Mat bind_mat(Binder *b, const char *name, int64_t rows, int64_t cols) { return bind_part(b, name, rows, cols, ALL); }

/* A companion the loader put beside a checkpoint's own tensors (gguf_model.c: a GGUF's
 * attn_k_b and attn_v_b as stored, beside the kv_b_proj joined from them), bound as
 * bind_part binds (this rank's rows, copied into huge pages, its bytes counted) but
 * neither a parameter nor a named weight. Absent (any other source, or a checkpoint
 * re-encoded at load, whose kv_b the companion would no longer match): data NULL. */
static Mat bind_extra(Binder *b, const char *name, int64_t rows, int64_t cols, Part p) {
    Mat w = { DT_F32, NULL, NULL, 0, 0 };
    StTensor *t = b->mode == BIND_FILE && !b->bad && b->m->from_gguf ? st_find(&b->m->st, name) : NULL;
    if (!t) return w;
    if (b->m->opts.recode) { t->used = 1; return w; }
    b->extra = 1;
    w = bind_part(b, name, rows, cols, p);
    b->extra = 0;
    return w;
}

/* bytes a dummy vector counts per element: its dtype's, or float32 beside block types
 * (GGUF files keep norms and biases in F32) */
static uint64_t vec_elem_bytes(DType dt) { return dtype_block(dt) > 1 ? 4 : dtype_size(dt); }

/* A vector (norm weight, bias) as owned float32; fill is the dummy value (NAN = random).
 * Elements [lo, lo+k) of the n (a rank's part of a bias). */
static float *bind_vec_part(Binder *b, const char *name, int64_t n, float fill, int64_t lo, int64_t k) {
    if (b->bad) return NULL;
    b->params += (uint64_t)n;
    b->tensor_idx++;
    Model *m = b->m;
    if (b->mode == BIND_COUNT) { b->bytes += (uint64_t)k * vec_elem_bytes(m->opts.dtype); return NULL; }
    float *v = xmalloc(sizeof(float) * (size_t)(k > 0 ? k : 1));
    own(m, v);
    if (b->mode == BIND_DUMMY) {
        b->bytes += (uint64_t)k * vec_elem_bytes(m->opts.dtype);
        for (int64_t i = 0; i < k; i++)
            v[i] = isnan(fill) ? 0.05f * uniform_pm1(m->opts.seed + b->tensor_idx, (uint64_t)(lo + i)) : fill;
        record(m, name, (Mat){ DT_F32, v, NULL, 1, k });
        return v;
    }
    StTensor *t = st_find(&m->st, name);
    if (!t) {
        b->bad = 1;
        missing(b, name);
        return v;
    }
    if (t->ndim != 1 || t->shape[0] != n) {
        b->bad = 1;
        char g[128];
        err_set(b->e, "%s: tensor \"%s\" has %d dims (first %lld), expected [%lld]", m->st.files[t->file].path,
                shown(b, name, g, sizeof g), t->ndim, (long long)(t->ndim ? t->shape[0] : 0), (long long)n);
        return v;
    }
    if (t->dtype == DT_F8_E4M3) {
        b->bad = 1;
        err_set(b->e, "%s: vector \"%s\" in F8_E4M3 is not supported", m->st.files[t->file].path, name);
        return v;
    }
    t->used = 1;
    b->bytes += t->nbytes / (uint64_t)n * (uint64_t)k;
    Mat tmp = { t->dtype, (const uint8_t *)t->data + dtype_bytes(t->dtype, lo), NULL, 1, k };
    mat_rows_f32(&tmp, 0, 1, v);
    record(m, name, (Mat){ DT_F32, v, NULL, 1, k });
    return v;
}
static float *bind_vec(Binder *b, const char *name, int64_t n, float fill) { return bind_vec_part(b, name, n, fill, 0, n); }

/* gate and up rows [lo, lo+k) and the same columns of down (k = inter: whole; k = 0:
 * held by another rank) */
static Mlp bind_mlp(Binder *b, const char *pre, int inter, int dim, int mixtral, int lo, int k) {
    char n[512];
    Mlp p;
    Part in = k == 0 ? (Part){ PART_NONE, 0, 0 } : k == inter ? ALL : rows_part(lo, k);
    Part out = k == 0 ? (Part){ PART_NONE, 0, 0 } : k == inter ? ALL : cols_part(lo, k);
    snprintf(n, sizeof n, "%s.%s.weight", pre, mixtral ? "w1" : "gate_proj");
    p.gate = bind_part(b, n, inter, dim, in);
    snprintf(n, sizeof n, "%s.%s.weight", pre, mixtral ? "w3" : "up_proj");
    p.up = bind_part(b, n, inter, dim, in);
    snprintf(n, sizeof n, "%s.%s.weight", pre, mixtral ? "w2" : "down_proj");
    p.down = bind_part(b, n, dim, inter, out);
    return p;
}

static void bind_layer(Binder *b, int l, Layer *ly) {
    const ModelConfig *c = &b->m->cfg;
    char n[512], pre[128];
    snprintf(pre, sizeof pre, "model.layers.%d", l);
#define NAME(fmt, ...) (snprintf(n, sizeof n, "%s." fmt, pre, ##__VA_ARGS__), n)
    ly->attn_norm = bind_vec(b, NAME("input_layernorm.weight"), c->dim, 1.0f);
    ly->ffn_norm = bind_vec(b, NAME("post_attention_layernorm.weight"), c->dim, 1.0f);
    Attn *a = &ly->attn;
    const Shard *sh = &b->m->sh;
    int H = c->n_heads;
    if (c->is_mla) {
        int qk = c->qk_nope + c->qk_rope;
        if (c->q_lora_rank) {
            a->q_a = bind_mat(b, NAME("self_attn.q_a_proj.weight"), c->q_lora_rank, c->dim);
            a->q_a_norm = bind_vec(b, NAME("self_attn.q_a_layernorm.weight"), c->q_lora_rank, 1.0f);
            a->q_b = bind_part(b, NAME("self_attn.q_b_proj.weight"), (int64_t)H * qk, c->q_lora_rank, rows_of((int64_t)sh->h0 * qk, (int64_t)sh->nh * qk, (int64_t)H * qk));
        } else {
            a->q = bind_part(b, NAME("self_attn.q_proj.weight"), (int64_t)H * qk, c->dim, rows_of((int64_t)sh->h0 * qk, (int64_t)sh->nh * qk, (int64_t)H * qk));
        }
        a->kv_a = bind_mat(b, NAME("self_attn.kv_a_proj_with_mqa.weight"), c->kv_lora_rank + c->qk_rope, c->dim);
        a->kv_a_norm = bind_vec(b, NAME("self_attn.kv_a_layernorm.weight"), c->kv_lora_rank, 1.0f);
        int kvb = c->qk_nope + c->v_head;
        a->kv_b = bind_part(b, NAME("self_attn.kv_b_proj.weight"), (int64_t)H * kvb, c->kv_lora_rank,
                            rows_of((int64_t)sh->h0 * kvb, (int64_t)sh->nh * kvb, (int64_t)H * kvb));
        a->uv = a->kv_b;
        a->uv_head = kvb;
        a->uv_off = c->qk_nope;
        int64_t Dc = c->kv_lora_rank, Dv = c->v_head;
        a->uk_t = bind_extra(b, NAME(MLA_UK_T), (int64_t)H * Dc, c->qk_nope, rows_of((int64_t)sh->h0 * Dc, (int64_t)sh->nh * Dc, (int64_t)H * Dc));
        Mat uv = bind_extra(b, NAME(MLA_UV), (int64_t)H * Dv, Dc, rows_of((int64_t)sh->h0 * Dv, (int64_t)sh->nh * Dv, (int64_t)H * Dv));
        if (uv.data) { a->uv = uv; a->uv_head = Dv; a->uv_off = 0; }
        a->o = bind_part(b, NAME("self_attn.o_proj.weight"), c->dim, (int64_t)H * c->v_head,
                         cols_of((int64_t)sh->h0 * c->v_head, (int64_t)sh->nh * c->v_head, (int64_t)H * c->v_head));
    } else {
        int hd = c->head_dim, kvh = c->n_kv_heads;
        int64_t q0 = (int64_t)sh->h0 * hd, nq = (int64_t)sh->nh * hd, k0 = (int64_t)sh->g0 * hd, nk = (int64_t)sh->ng * hd;
        a->q = bind_part(b, NAME("self_attn.q_proj.weight"), (int64_t)H * hd, c->dim, rows_of(q0, nq, (int64_t)H * hd));
        a->k = bind_part(b, NAME("self_attn.k_proj.weight"), (int64_t)kvh * hd, c->dim, rows_of(k0, nk, (int64_t)kvh * hd));
        a->v = bind_part(b, NAME("self_attn.v_proj.weight"), (int64_t)kvh * hd, c->dim, rows_of(k0, nk, (int64_t)kvh * hd));
        if (c->qkv_bias) {
            a->bq = bind_vec_part(b, NAME("self_attn.q_proj.bias"), (int64_t)H * hd, NAN, q0, nq);
            a->bk = bind_vec_part(b, NAME("self_attn.k_proj.bias"), (int64_t)kvh * hd, NAN, k0, nk);
            a->bv = bind_vec_part(b, NAME("self_attn.v_proj.bias"), (int64_t)kvh * hd, NAN, k0, nk);
        }
        a->o = bind_part(b, NAME("self_attn.o_proj.weight"), c->dim, (int64_t)H * hd, cols_of(q0, nq, (int64_t)H * hd));
    }
    ly->is_moe = config_is_moe_layer(c, l);
    if (!ly->is_moe) {
        snprintf(n, sizeof n, "%s.mlp", pre);
        ly->mlp = bind_mlp(b, n, c->inter, c->dim, 0, sh->i0, sh->ni);
        return;
    }
    Moe *moe = &ly->moe;
    int mixtral = c->arch == ARCH_MIXTRAL;
    const char *blk = mixtral ? "block_sparse_moe" : "mlp";
    moe->router = bind_mat(b, NAME("%s.gate.weight", blk), c->n_routed, c->dim);
    if (c->topk_method == TOPK_NOAUX_TC)
        moe->bias = bind_vec(b, NAME("mlp.gate.e_score_correction_bias"), c->n_routed, 0.0f);
    moe->experts = xcalloc((size_t)c->n_routed, sizeof *moe->experts);
    own(b->m, moe->experts);
    for (int x = 0; x < c->n_routed && !b->bad; x++) {
        char p[256];
        snprintf(p, sizeof p, "%s.%s.experts.%d", pre, blk, x);
        int held = x >= sh->e0 && x < sh->e0 + sh->ne;
        moe->experts[x] = bind_mlp(b, p, c->moe_inter, c->dim, mixtral, sh->m0, held ? sh->nm : 0);
    }
    if (c->n_shared > 0) {
        moe->has_shared = 1;
        snprintf(n, sizeof n, "%s.mlp.shared_experts", pre);
        moe->shared = bind_mlp(b, n, c->n_shared * c->moe_inter, c->dim, 0, sh->s0, sh->ns);
    }
#undef NAME
}

static void bind_model(Binder *b) {
    Model *m = b->m;
    const ModelConfig *c = &m->cfg;
    const Shard *sh = &m->sh;
    m->embed = bind_mat(b, "model.embed_tokens.weight", c->vocab, c->dim);
    for (int l = 0; l < c->n_layers && !b->bad; l++) bind_layer(b, l, &m->layers[l]);
    m->norm = bind_vec(b, "model.norm.weight", c->dim, 1.0f);
    if (c->tie_embeddings) {                   /* rows [v0, v0+nv) of the embedding */
        m->lm_head = m->embed;
        if (m->embed.data) m->lm_head.data = (const uint8_t *)m->embed.data + (uint64_t)sh->v0 * dtype_bytes(m->embed.dt, c->dim);
        if (m->embed.scale) m->lm_head.scale = m->embed.scale + (sh->v0 / 128) * ((c->dim + 127) / 128);   /* v0: whole blocks */
        m->lm_head.rows = sh->nv;
    } else m->lm_head = bind_part(b, "lm_head.weight", c->vocab, c->dim, rows_of(sh->v0, sh->nv, c->vocab));
}

/* a tensor's name in its file (GGUF names for a GGUF file) */
static const char *file_name(Model *m, const char *hf) {
    static __thread char buf[160];
    buf[0] = 0;
    if (m->from_gguf) gguf_name_of(hf, buf, sizeof buf);
    return buf[0] ? buf : hf;
}

/* A checkpoint tensor the model does not use is an error, but for skipped MTP layers. */
static int check_unused(Model *m, Err *e) {
    for (int i = 0; i < m->st.n; i++) {
        StTensor *t = &m->st.t[i];
        if (t->used) continue;
        int l;
        if (sscanf(t->name, "model.layers.%d.", &l) == 1 && l >= m->cfg.n_layers &&
            l < m->cfg.n_layers + m->cfg.n_nextn_layers)
            continue;
        size_t nl = strlen(t->name);
        if (nl >= 19 && !strcmp(t->name + nl - 19, "rotary_emb.inv_freq")) continue;
        return err_set(e, "%s: unexpected tensor \"%s\" (not part of a %s model with this config)",
                       m->st.files[t->file].path, file_name(m, t->name), m->cfg.model_type);
    }
    return 0;
}

/* Split over ranks, each rank checked its own part of every matrix as it bound it
 * (bind_part): only vectors are left here. */
static int check_finite(Model *m, Err *e) {
    for (int i = 0; i < m->st.n; i++) {
        StTensor *t = &m->st.t[i];
        if (!t->used || (m->sh.n > 1 && t->ndim == 2)) continue;
        int64_t n = (int64_t)(t->nbytes / dtype_bytes(t->dtype, dtype_block(t->dtype))) * dtype_block(t->dtype);
        int64_t bad = dtype_block(t->dtype) > 1 ? qdot_block_nonfinite(t->dtype, t->data, n) : count_nonfinite(t->dtype, t->data, n);
        if (bad)
            return err_set(e, "%s: tensor \"%s\" holds %lld NaN/Inf values", m->st.files[t->file].path, file_name(m, t->name),
                           (long long)bad);
    }
    return 0;
}

static uint64_t mat_bytes(const Mat *w) {
    uint64_t b = (uint64_t)w->rows * dtype_bytes(w->dt, w->cols);
    if (w->scale) b += sizeof(float) * (uint64_t)((w->rows + 127) / 128) * (uint64_t)((w->cols + 127) / 128);
    return b;
}

/* the float32 kv_b: for naive MLA, and for an absorbed layer without W_UK^T */
static int kv_b_f32_needed(const Model *m, const Attn *a) { return m->opts.naive_mla || !a->uk_t.data; }

/* W_UK^T (H*Dc, Dn) of a layer from its kv_b, in kv_b's type, by moving elements (exact):
 * for BF16 and F16, and F8_E4M3 whose 128x128 scale blocks each fall in one head's W_UK
 * (Dn, Dc and Dn + Dv multiples of 128), the scale grid transposed with them. Not for
 * float32 (kv_b_f32 is kv_b itself) nor block types (a transpose would re-quantize). */
static int uk_t_able(const ModelConfig *c, DType kv_dt) {
    int64_t Dn = c->qk_nope, Dc = c->kv_lora_rank, S = Dn + c->v_head;
    return kv_dt == DT_BF16 || kv_dt == DT_F16 || (kv_dt == DT_F8_E4M3 && Dn % 128 == 0 && Dc % 128 == 0 && S % 128 == 0);
}
/* its bytes, codes and scales */
static uint64_t uk_t_bytes(const ModelConfig *c, const Mat *kv) {
    int64_t rows = kv->rows / (c->qk_nope + c->v_head) * c->kv_lora_rank;
    uint64_t b = (uint64_t)rows * dtype_bytes(kv->dt, c->qk_nope);
    if (kv->dt == DT_F8_E4M3) b += sizeof(float) * (uint64_t)(rows / 128) * (uint64_t)(c->qk_nope / 128);
    return b;
}
static void uk_t_make(Model *m, Attn *a) {
    const ModelConfig *c = &m->cfg;
    const Mat *kv = &a->kv_b;
    int64_t Dn = c->qk_nope, Dv = c->v_head, Dc = c->kv_lora_rank, S = Dn + Dv, H = kv->rows / S;
    Mat u = { kv->dt, NULL, NULL, H * Dc, Dn };
    if (kv->dt == DT_F8_E4M3) {                 /* (H*Dc/128, Dn/128) from kv_b's (H*S/128, Dc/128) */
        int64_t kr = Dc / 128, kc = Dn / 128, vc = Dc / 128;
        float *sc = xmalloc(sizeof(float) * (size_t)(H * kr * kc));
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < kr; i++)
                for (int64_t j = 0; j < kc; j++) sc[(h * kr + i) * kc + j] = kv->scale[(h * S / 128 + j) * vc + i];
        own(m, sc);
        u.scale = sc;
    }
    size_t es = dtype_size(kv->dt);
    uint8_t *d = model_alloc_weights((uint64_t)(H * Dc * Dn) * es);
    const uint8_t *src = kv->data;
    for (int64_t h = 0; h < H; h++)
        for (int64_t x = 0; x < Dc; x++)
            for (int64_t k = 0; k < Dn; k++)
                memcpy(d + ((h * Dc + x) * Dn + k) * es, src + ((h * S + k) * Dc + x) * es, es);
    own(m, d);
    u.data = d;
    a->uk_t = u;
}

uint64_t mla_absorb_bytes(const Model *m, const Attn *a) {
    const ModelConfig *c = &m->cfg;
    if (m->opts.naive_mla) return 4 * (uint64_t)a->kv_b.rows * (uint64_t)a->kv_b.cols;
    int64_t S = c->qk_nope + c->v_head, H = a->kv_b.rows / S, Dv = c->v_head;
    /* uk_t as made, or as it would be (a model of shapes only makes none) */
    uint64_t ukb = a->uk_t.data ? mat_bytes(&a->uk_t)
                 : uk_t_able(c, a->kv_b.dt) ? uk_t_bytes(c, &a->kv_b) : 4 * (uint64_t)(H * c->qk_nope) * (uint64_t)c->kv_lora_rank;
    Mat uv = a->uv;
    uv.rows = H * Dv;                           /* the W_UV rows of kv_b, or all of attn_v_b */
    return ukb + mat_bytes(&uv);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int model_load(Model *m, const char *path, const LoadOpts *o, Err *e) {
    memset(m, 0, sizeof *m);
    m->opts = *o;
    snprintf(m->path, sizeof m->path, "%s", path);
    char cfgp[1100];
    m->from_gguf = !o->config_text && !is_dir(path) && gguf_is_gguf(path);
    if (m->from_gguf) {
        if (gguf_open(path, &m->gguf, e) || gguf_model_config(&m->gguf, &m->cfg, e)) { model_free(m); return -1; }
        snprintf(m->stored, sizeof m->stored, "%s", gguf_bulk_type(&m->gguf));
    } else if (is_dir(path)) snprintf(cfgp, sizeof cfgp, "%s/config.json", path);
    else if (o->dummy) snprintf(cfgp, sizeof cfgp, "%s", path);
    else if (access(path, F_OK) == 0)
        return err_set(e, "%s: neither a checkpoint directory nor a GGUF file (a checkpoint is a directory with config.json and safetensors; use --dummy for a config alone)", path);
    else return err_set(e, "%s: no such file or directory", path);
    if (m->from_gguf) { /* config read above */ }
    else if (o->config_text) {
        if (!o->dummy) return err_set(e, "%s: a config text applies to dummy weights only", path);
        if (config_parse(o->config_text, path, &m->cfg, e)) return -1;
    } else if (config_load(cfgp, &m->cfg, e)) return -1;
    ModelConfig *c = &m->cfg;
    if (o->layers > 0) {
        if (!o->dummy) { err_set(e, "%s: --layers applies to dummy weights only", path); model_free(m); return -1; }
        if (o->layers < c->n_layers) c->n_layers = o->layers;
    }
    if (m->from_gguf && o->dummy) gguf_close(&m->gguf);   /* shapes only: no weights read */
    m->layers = xcalloc((size_t)c->n_layers, sizeof *m->layers);
    if (layout_plan(c, o->ranks > 1 ? o->ranks : 1, o->ranks > 1 ? o->rank : 0, o->tp, o->ep, &m->sh, e)) {
        err_prefix(e, "%s", path);
        model_free(m);
        return -1;
    }
    Binder b = { .mode = BIND_COUNT, .m = m, .e = e };
    bind_model(&b);
    if (b.bad) { model_free(m); return -1; }     /* a share that does not fit its blocks (bind_part) */
    m->n_params = b.params;
    if (o->dummy && o->shapes_only) {
        m->weight_bytes = b.bytes;
        m->wdtype = o->dtype;
    } else if (o->dummy) {
        uint64_t avail = mem_available();
        if (b.owned_bytes > avail) {
            char x[32], y[32];
            err_set(e, "%s: dummy %s weights need %s but only %s of memory is available (try --layers)", path,
                    dtype_name(o->dtype), fmt_bytes(b.owned_bytes, x, sizeof x), fmt_bytes(avail, y, sizeof y));
            model_free(m);
            return -1;
        }
        Binder d = { .mode = BIND_DUMMY, .m = m, .e = e };
        bind_model(&d);
        m->weight_bytes = d.bytes;
        m->wdtype = o->dtype;
    } else {
        if (m->from_gguf ? gguf_model_tensors(m, &m->gguf, &m->st, e) : st_open_dir(path, &m->st, e)) {
            model_free(m);
            return -1;
        }
        /* weights out of the mapping into huge pages, unless asked not to or they would
         * take more than 70% of the memory available (then the mapping serves) */
        uint64_t total = m->st.total_bytes;
        if (m->from_gguf)
            for (int64_t i = 0; i < m->gguf.n_t; i++) total += m->gguf.t[i].nbytes;
        uint64_t share = total / (uint64_t)(o->ranks > 1 ? o->ranks : 1);
        Binder f = { .mode = BIND_FILE, .m = m, .e = e, .copy = !o->mmap && share <= mem_available() / 10 * 7 };
        double t0 = now_sec();
        bind_model(&f);
        m->copy_sec = now_sec() - t0;
        m->copy_skipped = !o->mmap && !f.copy;
        if (f.bad || check_unused(m, e) || check_finite(m, e)) { model_free(m); return -1; }
        m->weight_bytes = f.bytes;
        if (m->from_gguf)
            for (int64_t i = 0; i < m->gguf.n_t; i++) m->file_bytes += m->gguf.t[i].nbytes;
        m->wdtype = m->embed.dt;
        for (int l = 0; l < c->n_layers; l++)       /* the bulk of the bytes decides */
            if (m->layers[l].attn.o.data) { m->wdtype = m->layers[l].attn.o.dt; break; }
    }
    /* W_UK^T per head for the absorbed q product, and float32 kv_b where it is still
     * needed (naive MLA; a layer without W_UK^T); counted against memory first */
    if (c->is_mla && !o->shapes_only) {
        uint64_t need = 0;
        for (int l = 0; l < c->n_layers; l++) {
            Attn *a = &m->layers[l].attn;
            int uk = 1;
            if (a->uk_t.data) {             /* a GGUF's attn_k_b: kv_b was joined from it in float32 */
                uint64_t jb = 4 * (uint64_t)a->kv_b.rows * (uint64_t)a->kv_b.cols;
                m->weight_bytes -= jb;
                m->derived_bytes += jb;
            } else if ((uk = !o->naive_mla && uk_t_able(c, a->kv_b.dt))) {
                need += uk_t_bytes(c, &a->kv_b);
            }
            if ((o->naive_mla || !uk) && a->kv_b.dt != DT_F32) need += (uint64_t)a->kv_b.rows * c->kv_lora_rank * 4;
        }
        if (need > mem_available()) {
            char x[32], y[32];
            err_set(e, "%s: W_UK transposed and float32 copies of kv_b_proj need %s but only %s is available", path,
                    fmt_bytes(need, x, sizeof x), fmt_bytes(mem_available(), y, sizeof y));
            model_free(m);
            return -1;
        }
        for (int l = 0; l < c->n_layers; l++) {
            Attn *a = &m->layers[l].attn;
            if (!a->uk_t.data && !o->naive_mla && uk_t_able(c, a->kv_b.dt)) {
                uk_t_make(m, a);
                m->derived_bytes += mat_bytes(&a->uk_t);
            }
            if (!kv_b_f32_needed(m, a)) continue;
            if (a->kv_b.dt == DT_F32) { a->kv_b_f32 = a->kv_b.data; continue; }
            float *f = xmalloc(sizeof(float) * (size_t)a->kv_b.rows * (size_t)a->kv_b.cols);
            own(m, f);
            mat_rows_f32(&a->kv_b, 0, a->kv_b.rows, f);
            a->kv_b_f32 = f;
            m->derived_bytes += sizeof(float) * (uint64_t)a->kv_b.rows * (uint64_t)a->kv_b.cols;
        }
    }
    if (!o->shapes_only) {
        int64_t maxcols = 0;
        for (int i = 0; i < m->st.n; i++)         /* widest weight of a checkpoint */
            if (m->st.t[i].ndim == 2 && m->st.t[i].shape[1] > maxcols) maxcols = m->st.t[i].shape[1];
        int64_t dims[] = { c->dim, c->inter, (int64_t)c->moe_inter * (c->n_shared > 1 ? c->n_shared : 1),
                           (int64_t)c->n_heads * (c->is_mla ? c->v_head : c->head_dim), c->q_lora_rank, c->kv_lora_rank };
        for (int i = 0; i < 6; i++) if (dims[i] > maxcols) maxcols = dims[i];
        m->scratch = xmalloc(sizeof(float) * linear_scratch_floats(maxcols));
    }
    int rd = config_rope_dim(c);
    m->inv_freq = xmalloc(sizeof(float) * (size_t)(rd / 2));
    config_rope_inv_freq(c, m->inv_freq);
    if (m->from_gguf && !o->dummy && gguf_rope_factors(&m->gguf, c, path, m->inv_freq, e)) { model_free(m); return -1; }
    m->rope_mscale = config_rope_mscale(c);
    m->attn_scale = config_softmax_scale(c);
    return 0;
}

void model_free(Model *m) {
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->inv_freq);
    free(m->scratch);
    model_work_free(m);
    free(m->mats);
    st_close(&m->st);
    gguf_close(&m->gguf);
    memset(m, 0, sizeof *m);
}

/* ---- KV cache ----------------------------------------------------------------------- */
int kv_row_floats(const Model *m) {
    const ModelConfig *c = &m->cfg;
    if (c->is_mla) {   /* split over ranks: the latent whole, naive per-head rows for the rank's heads */
        if (m->opts.naive_mla) return m->sh.nh * (c->qk_nope + c->qk_rope) + m->sh.nh * c->v_head;
        return c->kv_lora_rank + c->qk_rope;
    }
    return 2 * m->sh.ng * c->head_dim;
}

uint64_t kv_row_bytes(DType dt, int n) {
    uint64_t b = (uint64_t)n * dtype_size(dt);
    if (dt == DT_F8_E4M3) b += sizeof(float) * (uint64_t)((n + F8_BLOCK - 1) / F8_BLOCK);
    return b;
}

int kv_dtype_parse(const char *s, DType *dt) {
    DType t;
    if (dtype_parse(s, &t) || (t != DT_F32 && t != DT_BF16 && t != DT_F8_E4M3)) return -1;
    *dt = t;
    return 0;
}

int kv_create(KVCache *kv, const Model *m, int n_seq, int max_pos, Err *e) {
    return kv_create_as(kv, m, n_seq, max_pos, m->opts.kv_dtype, e);
}

int kv_create_as(KVCache *kv, const Model *m, int n_seq, int max_pos, DType dt, Err *e) {
    memset(kv, 0, sizeof *kv);
    if (dt != DT_F32 && dt != DT_BF16 && dt != DT_F8_E4M3)
        return err_set(e, "KV cache: element type %s is not one of F32, BF16, F8_E4M3", dtype_name(dt));
    kv->n_layers = m->cfg.n_layers;
    kv->n_seq = n_seq;
    kv->max_pos = max_pos;
    kv->row = kv_row_floats(m);
    kv->dt = dt;
    kv->n_scales = dt == DT_F8_E4M3 ? (kv->row + F8_BLOCK - 1) / F8_BLOCK : 0;
    uint64_t rows = (uint64_t)kv->n_layers * (uint64_t)n_seq * (uint64_t)max_pos;
    uint64_t codes = rows * kv->row * dtype_size(dt), sc = rows * kv->n_scales * sizeof(float);
    uint64_t bytes = codes + sc, avail = mem_available();
    if (bytes > avail) {
        char x[32], y[32];
        return err_set(e, "KV cache (%s) for %d sequences x %d positions needs %s but only %s of memory is available",
                       dtype_name(dt), n_seq, max_pos, fmt_bytes(bytes, x, sizeof x), fmt_bytes(avail, y, sizeof y));
    }
    kv->data = malloc(codes ? codes : 1);
    kv->scales = sc ? malloc(sc) : NULL;
    if (!kv->data || (sc && !kv->scales)) {
        char x[32];
        free(kv->data);
        free(kv->scales);
        memset(kv, 0, sizeof *kv);
        return err_set(e, "KV cache: cannot allocate %s", fmt_bytes(bytes, x, sizeof x));
    }
    kv->len = xcalloc((size_t)n_seq, sizeof *kv->len);
    return 0;
}

void kv_free(KVCache *kv) {
    free(kv->data);
    free(kv->scales);
    free(kv->len);
    memset(kv, 0, sizeof *kv);
}

uint64_t kv_bytes_per_token(const KVCache *kv) {
    return (uint64_t)kv->n_layers * kv_row_bytes(kv->dt, kv->row);
}

static int64_t kv_index(const KVCache *kv, int layer, int seq, int pos) {
    return ((int64_t)layer * kv->n_seq + seq) * kv->max_pos + pos;
}

void *kv_codes(const KVCache *kv, int layer, int seq, int pos) {
    return (uint8_t *)kv->data + kv_index(kv, layer, seq, pos) * kv->row * (int64_t)dtype_size(kv->dt);
}

float *kv_scales(const KVCache *kv, int layer, int seq, int pos) {
    return kv->scales ? kv->scales + kv_index(kv, layer, seq, pos) * kv->n_scales : NULL;
}

void kv_store(KVCache *kv, int layer, int seq, int pos, const float *src) {
    void *dst = kv_codes(kv, layer, seq, pos);
    int n = kv->row;
    if (kv->dt == DT_F32) { memcpy(dst, src, sizeof(float) * (size_t)n); return; }
    if (kv->dt == DT_BF16) {
        uint16_t *d = dst;
        for (int i = 0; i < n; i++) d[i] = f32_to_bf16(src[i]);
        return;
    }
    /* F8_E4M3: per block of 128, scale = amax/448 and codes = round(x / scale) */
    uint8_t *d = dst;
    float *sc = kv_scales(kv, layer, seq, pos);
    for (int b = 0; b < kv->n_scales; b++) {
        int i0 = b * F8_BLOCK, i1 = i0 + F8_BLOCK < n ? i0 + F8_BLOCK : n;
        float amax = 0;
        for (int i = i0; i < i1; i++) amax = fmaxf(amax, fabsf(src[i]));
        float s = amax / 448.0f;
        sc[b] = s;
        for (int i = i0; i < i1; i++) d[i] = s > 0 ? f32_to_f8e4m3(src[i] / s) : 0;
    }
}

void kv_load(const KVCache *kv, int layer, int seq, int pos, float *dst) {
    qdot_widen(kv->dt, kv_codes(kv, layer, seq, pos), kv_scales(kv, layer, seq, pos), kv->row, dst);
}

void kv_copy_rows(KVCache *kv, int dst, int pd, int src, int ps, int n) {
    size_t cb = (size_t)kv->row * dtype_size(kv->dt) * (size_t)n, sb = sizeof(float) * (size_t)kv->n_scales * (size_t)n;
    for (int l = 0; l < kv->n_layers; l++) {
        memmove(kv_codes(kv, l, dst, pd), kv_codes(kv, l, src, ps), cb);
        if (sb) memmove(kv_scales(kv, l, dst, pd), kv_scales(kv, l, src, ps), sb);
    }
}
