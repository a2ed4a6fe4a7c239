/*
 * profile.c - CUPTI tracing (Activity API) and per-op hardware counters (Range
 * Profiler API) of the GPU cells. See profile.h for the files written.
 *
 * Kernels are tied to engine ops through CUPTI's external correlation: the GPU forward
 * pass marks each op (cuda_op_mark), and the hook installed here pushes the op's id
 * on CUSTOM0 while it queues its kernels; runtime and driver API records carry the
 * correlation, so cuBLAS's kernels are attributed too. Traced steps run without CUDA
 * graphs (a graph's kernels would all share the launch's correlation).
 *
 * Without a usable GPU nothing here is called: profiler_open fails first with the
 * reason (CUPTI calls that need a driver crash or fail without one; ../shared/CUPTI.md).
 */
#define _GNU_SOURCE
#include "profile.h"
#include "backend.h"
#include "cost.h"
#include "cupti_host.h"
#include "report.h"
#include "table.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(EFFBENCH_CUDA) && !defined(EFFBENCH_EMU)
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <cupti.h>
#include <cupti_profiler_target.h>
#include <cupti_range_profiler.h>
#include <cupti_target.h>

extern char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);

typedef struct {
    int name;                    /* interned */
    uint32_t corr, stream;
    uint64_t start, end;
    int32_t grid[3], block[3];
    uint16_t regs;
    int32_t smem_static, smem_dyn;
} KRec;
typedef struct { uint32_t corr; uint64_t ext; } XRec;
typedef struct { int kind; uint64_t start, end, bytes; } MRec;       /* memcpy 0, memset 1 */
typedef struct { int kind; uint64_t start, end; } ORec;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static KRec *krec; static size_t nk, capk;
static XRec *xrec; static size_t nx, capx;
static MRec *mrec; static size_t nm, capm;
static ORec *orec; static size_t no, capo;
static char **names; static int nnames, capnames;

#define PUSH(arr, n, cap, val) do { \
    if ((n) == (cap)) { (cap) = (cap) ? 2 * (cap) : 4096; (arr) = xrealloc((arr), sizeof *(arr) * (cap)); } \
    (arr)[(n)++] = (val); } while (0)

/* interned demangled kernel names (few distinct ones; linear search from the end) */
static int intern(const char *mangled) {
    for (int i = nnames - 1; i >= 0; i--)
        if (!strcmp(names[2 * i], mangled)) return i;
    if (nnames == capnames) { capnames = capnames ? 2 * capnames : 64; names = xrealloc(names, sizeof(char *) * 2 * (size_t)capnames); }
    int st = -1;
    char *d = __cxa_demangle(mangled, NULL, NULL, &st);
    names[2 * nnames] = xstrdup(mangled);
    names[2 * nnames + 1] = st == 0 && d ? d : xstrdup(mangled);
    if (st != 0) free(d);
    return nnames++;
}

static void CUPTIAPI buf_requested(uint8_t **buf, size_t *size, size_t *max_records) {
    *size = 8u << 20;
    *buf = aligned_alloc(8, *size);
    *max_records = 0;
}

static void CUPTIAPI buf_completed(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid) {
    (void)ctx; (void)stream; (void)size;
    CUpti_Activity *r = NULL;
    pthread_mutex_lock(&lock);
    while (buf && cuptiActivityGetNextRecord(buf, valid, &r) == CUPTI_SUCCESS) {
        if (r->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || r->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
            const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)r;
            KRec x = { intern(k->name ? k->name : "?"), k->correlationId, k->streamId, k->start, k->end,
                       { k->gridX, k->gridY, k->gridZ }, { k->blockX, k->blockY, k->blockZ }, k->registersPerThread,
                       k->staticSharedMemory, k->dynamicSharedMemory };
            PUSH(krec, nk, capk, x);
        } else if (r->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) {
            const CUpti_ActivityExternalCorrelation *c = (const CUpti_ActivityExternalCorrelation *)r;
            if (c->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) PUSH(xrec, nx, capx, ((XRec){ c->correlationId, c->externalId }));
        } else if (r->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
            const CUpti_ActivityMemcpy6 *m = (const CUpti_ActivityMemcpy6 *)r;
            PUSH(mrec, nm, capm, ((MRec){ 0, m->start, m->end, m->bytes }));
        } else if (r->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
            const CUpti_ActivityMemset4 *m = (const CUpti_ActivityMemset4 *)r;
            PUSH(mrec, nm, capm, ((MRec){ 1, m->start, m->end, m->bytes }));
        } else if (r->kind == CUPTI_ACTIVITY_KIND_OVERHEAD) {
            const CUpti_ActivityOverhead3 *o = (const CUpti_ActivityOverhead3 *)r;
            PUSH(orec, no, capo, ((ORec){ (int)o->overheadKind, o->start, o->end }));
            free(o->overheadData);
        }
    }
    pthread_mutex_unlock(&lock);
    free(buf);
}

static const CUpti_ActivityKind KINDS[] = {
    CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMSET,
    CUPTI_ACTIVITY_KIND_OVERHEAD, CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_DRIVER,
    CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
};
#define N_KINDS ((int)(sizeof KINDS / sizeof KINDS[0]))

static int cupti_fail(Err *e, const char *what, CUptiResult r) {
    const char *s = NULL;
    cuptiGetResultString(r, &s);
    return err_set(e, "CUPTI %s: %s", what, s ? s : "unknown error");
}

static int tracing(int on, Err *e) {
    for (int i = 0; i < N_KINDS; i++) {
        CUptiResult r = on ? cuptiActivityEnable(KINDS[i]) : cuptiActivityDisable(KINDS[i]);
        if (r != CUPTI_SUCCESS) return cupti_fail(e, on ? "cuptiActivityEnable" : "cuptiActivityDisable", r);
    }
    return 0;
}

/* ---- the profiler ---------------------------------------------------------------- */
#define MAX_WINDOWS 1024

struct Profiler {
    char dir[1024];
    char cell[512];
    Table kernels, ops, overhead, metrics;
    uint64_t win[MAX_WINDOWS][2]; int nwin;       /* timed repetitions of the cell (CUPTI clock) */
    char **metric_names; int n_metrics;
    CuptiHost *host;
    double gbs, tflops;                           /* the device's measured limits (metrics) */
    double ds_gbs, ds_tflops;                     /* its datasheet's (suites/hardware.json), 0 if not listed */
    /* range profiler state while profiling a step */
    CUpti_RangeProfiler_Object *rp;
    int rp_depth;
    int prof_init;                                /* cuptiProfilerInitialize called */
};

static void window_hook(int begin, void *ctx) {
    Profiler *p = ctx;
    uint64_t t = 0;
    cuptiGetTimestamp(&t);
    if (begin && p->nwin < MAX_WINDOWS) p->win[p->nwin][0] = t, p->win[p->nwin][1] = UINT64_MAX;
    else if (!begin && p->nwin < MAX_WINDOWS) p->win[p->nwin++][1] = t;
}

static void trace_hook(int op, int begin, void *ctx) {
    (void)ctx;
    uint64_t last;
    if (begin) cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, (uint64_t)op + 1);
    else cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
}

static const char *KERNEL_COLS[] = { "cell", "rep", "op", "kernel", "grid", "block", "registers", "static_smem_bytes",
                                     "dynamic_smem_bytes", "stream", "start_ns", "duration_ns", "backend", "device",
                                     "dtype", "commit", "build_flags" };
static const char *OP_COLS[] = { "cell", "op", "kernels_per_rep", "gpu_us_per_rep", "share_of_kernel_time",
                                 "share_of_step", "reps", "step_ms_traced", "device", "commit" };
static const char *OVH_COLS[] = { "cell", "step_ms_untraced", "step_ms_traced", "tracing_overhead_pct", "cupti_overhead_us",
                                  "cupti_overhead_kinds", "reps", "device", "commit" };
#define NCOL(a) ((int)(sizeof a / sizeof a[0]))

/* The device's datasheet peaks from the shipped suites/hardware.json: the profile whose
 * first word the device's name holds. */
static void datasheet(Profiler *p) {
    char dev[256] = "", path[4200];
    if (cuda_device_name(dev, sizeof dev)) dev[0] = 0;
    shipped_path("hardware.json", path, sizeof path);
    Gpu *gpus = NULL;
    int ng = 0;
    Err e = { "" };
    if (!dev[0] || hw_load(path, &gpus, &ng, &e)) return;
    for (int i = 0; i < ng; i++) {
        char first[64];
        snprintf(first, sizeof first, "%s", gpus[i].name);
        first[strcspn(first, " ")] = 0;
        if (first[0] && strstr(dev, first)) { p->ds_gbs = gpus[i].hbm_gbs; p->ds_tflops = gpus[i].bf16_tflops; break; }
    }
    free(gpus);
}

/* frees what profiler_open made, writing nothing */
static void profiler_free(Profiler *p) {
    table_free(&p->kernels); table_free(&p->ops); table_free(&p->overhead);
    if (p->host) table_free(&p->metrics);
    cupti_host_close(p->host);
    cupti_names_free(p->metric_names, p->n_metrics);
    if (p->prof_init) {
        CUpti_Profiler_DeInitialize_Params dp = { .structSize = CUpti_Profiler_DeInitialize_Params_STRUCT_SIZE };
        cuptiProfilerDeInitialize(&dp);
    }
    free(p);
}

int profiler_open(Profiler **out, const char *dir, const char *metrics, Err *e) {
    char why[256];
    *out = NULL;
    if (!cuda_available(why, sizeof why)) return err_set(e, "profiling: %s", why);
    if (mkdir(dir, 0777) && errno != EEXIST) return err_set(e, "%s: cannot create the profile directory: %s", dir, strerror(errno));
    Profiler *p = xcalloc(1, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    table_init(&p->kernels, NCOL(KERNEL_COLS), KERNEL_COLS);
    table_init(&p->ops, NCOL(OP_COLS), OP_COLS);
    table_init(&p->overhead, NCOL(OVH_COLS), OVH_COLS);
    if (metrics) {
        if (cupti_metric_names(metrics, &p->metric_names, &p->n_metrics)) {
            profiler_free(p);
            return err_set(e, "--metrics: expected \"roofline\" or comma-separated metric names, got \"%s\"", metrics);
        }
        /* the profiler interface, then the names checked on the host before any GPU work */
        CUpti_Profiler_Initialize_Params ip = { .structSize = CUpti_Profiler_Initialize_Params_STRUCT_SIZE };
        CUptiResult r = cuptiProfilerInitialize(&ip);
        if (r != CUPTI_SUCCESS) { profiler_free(p); return cupti_fail(e, "cuptiProfilerInitialize", r); }
        p->prof_init = 1;
        CUpti_Device_GetChipName_Params cp = { .structSize = CUpti_Device_GetChipName_Params_STRUCT_SIZE, .deviceIndex = 0 };
        r = cuptiDeviceGetChipName(&cp);
        if (r != CUPTI_SUCCESS) { profiler_free(p); return cupti_fail(e, "cuptiDeviceGetChipName", r); }
        if (cupti_host_open(&p->host, cp.pChipName, NULL, (const char *const *)p->metric_names, p->n_metrics, e)) {
            profiler_free(p);
            return -1;
        }
        datasheet(p);
        const char **cols = xmalloc(sizeof(char *) * (size_t)(p->n_metrics + 14));
        int k = 0;
        cols[k++] = "cell"; cols[k++] = "op"; cols[k++] = "ranges";
        for (int i = 0; i < p->n_metrics; i++) cols[k++] = p->metric_names[i];
        const char *derived[] = { "dram_bytes", "fp32_flops", "tensor_flops", "flops", "achieved_gbs", "achieved_tflops",
                                  "of_read_bw", "of_gemm_peak", "of_datasheet_hbm", "of_datasheet_bf16", "device" };
        for (int i = 0; i < 11; i++) cols[k++] = derived[i];
        table_init(&p->metrics, k, cols);
        free(cols);
        if (cuda_measure_limits(&p->gbs, &p->tflops, 1)) {
            err_set(e, "profiling: %s", cuda_error());
            profiler_free(p);
            return -1;
        }
    }
    CUptiResult r = cuptiActivityRegisterCallbacks(buf_requested, buf_completed);
    if (r != CUPTI_SUCCESS) { profiler_free(p); return cupti_fail(e, "cuptiActivityRegisterCallbacks", r); }
    if (tracing(1, e)) { Err ignore; tracing(0, &ignore); profiler_free(p); return -1; }
    *out = p;
    return 0;
}

/* The hooks are in place from here to profiler_cell_done: while a GPU cell is measured
 * traced, and at no other time. */
void profiler_cell(Profiler *p, const char *name) {
    if (!p) return;
    snprintf(p->cell, sizeof p->cell, "%s", name);
    p->nwin = 0;
    pthread_mutex_lock(&lock);
    nk = nx = nm = no = 0;
    pthread_mutex_unlock(&lock);
    cuda_set_op_hook(trace_hook, p);
    measure_hook = window_hook;
    measure_hook_ctx = p;
}

static int write_tables(Profiler *p, Err *e) {
    char path[1200];
    const struct { const char *name; Table *t; } out[] = {
        { "kernels.csv", &p->kernels }, { "ops.csv", &p->ops }, { "overhead.csv", &p->overhead },
        { "metrics.csv", p->host ? &p->metrics : NULL },
    };
    for (int i = 0; i < 4; i++) {
        if (!out[i].t) continue;
        snprintf(path, sizeof path, "%s/%s", p->dir, out[i].name);
        if (csv_table_write(path, out[i].t, e)) return -1;
    }
    return 0;
}

static int cmp_x(const void *a, const void *b) {
    uint32_t x = ((const XRec *)a)->corr, y = ((const XRec *)b)->corr;
    return x < y ? -1 : x > y;
}
static int win_of(const Profiler *p, uint64_t t) {
    for (int w = 0; w < p->nwin; w++) if (t >= p->win[w][0] && t <= p->win[w][1]) return w;
    return -1;
}

static int collect(Profiler *p, const Cell *traced, const Cell *plain, Err *e) {
    cuda_sync();
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    pthread_mutex_lock(&lock);
    if (nx) qsort(xrec, nx, sizeof *xrec, cmp_x);
    double op_ns[OP_COUNT + 3] = { 0 }, total = 0;     /* + unattributed, memcpy, memset */
    int64_t op_n[OP_COUNT + 3] = { 0 };
    uint64_t t0 = p->nwin ? p->win[0][0] : 0;
    for (size_t i = 0; i < nk; i++) {
        const KRec *k = &krec[i];
        int w = win_of(p, k->start);
        if (w < 0) continue;                          /* warm-up or set-up work */
        XRec key = { k->corr, 0 }, *x = nx ? bsearch(&key, xrec, nx, sizeof *xrec, cmp_x) : NULL;
        int op = x && x->ext >= 1 && x->ext <= OP_COUNT ? (int)x->ext - 1 : OP_COUNT;
        double d = (double)(k->end - k->start);
        op_ns[op] += d;
        op_n[op]++;
        total += d;
        if (w != 0) continue;                         /* kernels.csv: the first timed repetition */
        char *v[NCOL(KERNEL_COLS)];
        int c = 0;
        v[c++] = xstrdup(p->cell);
        v[c++] = xstrdup("0");
        v[c++] = xstrdup(op < OP_COUNT ? cuda_op_name(op) : "unattributed");
        v[c++] = xstrdup(names[2 * k->name + 1]);
        v[c++] = xasprintf("%d,%d,%d", k->grid[0], k->grid[1], k->grid[2]);
        v[c++] = xasprintf("%d,%d,%d", k->block[0], k->block[1], k->block[2]);
        v[c++] = xasprintf("%u", k->regs);
        v[c++] = xasprintf("%d", k->smem_static);
        v[c++] = xasprintf("%d", k->smem_dyn);
        v[c++] = xasprintf("%u", k->stream);
        v[c++] = xasprintf("%llu", (unsigned long long)(k->start - t0));
        v[c++] = xasprintf("%llu", (unsigned long long)(k->end - k->start));
        v[c++] = xstrdup(traced->backend); v[c++] = xstrdup(traced->device); v[c++] = xstrdup(traced->dtype);
        v[c++] = xstrdup(EFFBENCH_COMMIT); v[c++] = xstrdup(EFFBENCH_CFLAGS);
        table_add(&p->kernels, (const char *const *)v);
        for (int j = 0; j < c; j++) free(v[j]);
    }
    for (size_t i = 0; i < nm; i++)
        if (win_of(p, mrec[i].start) >= 0) { op_ns[OP_COUNT + 1 + mrec[i].kind] += (double)(mrec[i].end - mrec[i].start); op_n[OP_COUNT + 1 + mrec[i].kind]++; }
    double ovh = 0;
    char kinds[512] = "";
    for (size_t i = 0; i < no; i++)
        if (win_of(p, orec[i].start) >= 0) {
            ovh += (double)(orec[i].end - orec[i].start);
            char k[32];
            snprintf(k, sizeof k, "%s0x%x", kinds[0] ? " " : "", orec[i].kind);
            if (!strstr(kinds, k + (kinds[0] ? 1 : 0)) && strlen(kinds) + strlen(k) < sizeof kinds) strcat(kinds, k);
        }
    pthread_mutex_unlock(&lock);
    int reps = p->nwin ? p->nwin : 1;
    double step_s = traced->med * (traced->kind == 'g' ? traced->n : 1);   /* one timed repetition */
    for (int op = 0; op < OP_COUNT + 3; op++) {
        if (!op_n[op]) continue;
        const char *name = op < OP_COUNT ? cuda_op_name(op) : op == OP_COUNT ? "unattributed" : op == OP_COUNT + 1 ? "memcpy" : "memset";
        char *v[NCOL(OP_COLS)];
        int c = 0;
        v[c++] = xstrdup(p->cell); v[c++] = xstrdup(name);
        v[c++] = xasprintf("%.6g", (double)op_n[op] / reps);
        v[c++] = xasprintf("%.6g", op_ns[op] / reps / 1e3);
        v[c++] = xasprintf("%.4f", op < OP_COUNT + 1 && total > 0 ? op_ns[op] / total : 0.0);
        v[c++] = xasprintf("%.4f", op_ns[op] / reps / 1e9 / step_s);
        v[c++] = xasprintf("%d", reps);
        v[c++] = xasprintf("%.6g", 1e3 * traced->med);
        v[c++] = xstrdup(traced->device); v[c++] = xstrdup(EFFBENCH_COMMIT);
        table_add(&p->ops, (const char *const *)v);
        for (int j = 0; j < c; j++) free(v[j]);
    }
    char *v[NCOL(OVH_COLS)];
    int c = 0;
    v[c++] = xstrdup(p->cell);
    v[c++] = xasprintf("%.6g", 1e3 * plain->med);
    v[c++] = xasprintf("%.6g", 1e3 * traced->med);
    v[c++] = xasprintf("%.2f", 100.0 * (traced->med / plain->med - 1));
    v[c++] = xasprintf("%.6g", ovh / reps / 1e3);
    v[c++] = xstrdup(kinds);
    v[c++] = xasprintf("%d", reps);
    v[c++] = xstrdup(traced->device); v[c++] = xstrdup(EFFBENCH_COMMIT);
    table_add(&p->overhead, (const char *const *)v);
    for (int j = 0; j < c; j++) free(v[j]);
    fprintf(stderr, "effbench: profiled %s: %zu kernels traced, step %.3f ms traced vs %.3f ms untraced (%+.1f%%)\n",
            p->cell, nk, 1e3 * traced->med, 1e3 * plain->med, 100.0 * (traced->med / plain->med - 1));
    return write_tables(p, e);
}

/* ---- hardware counters of one step (range profiler, user ranges, user replay) ------ */
static void range_hook(int op, int begin, void *ctx) {
    Profiler *p = ctx;
    if (begin) {
        CUpti_RangeProfiler_PushRange_Params pp = { .structSize = CUpti_RangeProfiler_PushRange_Params_STRUCT_SIZE,
                                                     .pRangeProfilerObject = p->rp, .pRangeName = cuda_op_name(op) };
        if (cuptiRangeProfilerPushRange(&pp) == CUPTI_SUCCESS) p->rp_depth++;
    } else if (p->rp_depth > 0) {
        CUpti_RangeProfiler_PopRange_Params pp = { .structSize = CUpti_RangeProfiler_PopRange_Params_STRUCT_SIZE,
                                                    .pRangeProfilerObject = p->rp };
        cuptiRangeProfilerPopRange(&pp);
        p->rp_depth--;
    }
}

typedef CUresult (*CtxGetCurrent)(CUcontext *);

#define CU_TRY(call, what) do { CUptiResult r_ = (call); if (r_ != CUPTI_SUCCESS) { rc = cupti_fail(e, what, r_); goto out; } } while (0)

static int metric_index(const Profiler *p, const char *name) {
    for (int i = 0; i < p->n_metrics; i++) if (!strcmp(p->metric_names[i], name)) return i;
    return -1;
}

/* One step of the cell (the whole prefill, or one decode step of the batch at its
 * depth), replayed until every pass of the metric schedule is collected. */
static int metrics_cell(Profiler *p, const Cell *c, Engine *g, Err *e) {
    Model *m = engine_model(g);
    int pre = c->kind == 'p', b = pre ? 1 : c->b, d = pre ? 0 : c->d, n = pre ? c->p : b;
    int chunk = d < 2048 ? d : 2048, max_tok = pre ? c->p : (chunk > b ? chunk : b);
    CuptiHost *host = NULL;
    uint8_t *avail = NULL, *data = NULL;
    int *tok = xcalloc((size_t)(n > d ? n : d) + 1, sizeof(int)), *seq = xcalloc((size_t)(n > d ? n : d) + 1, sizeof(int));
    int *pos = xcalloc((size_t)(n > d ? n : d) + 1, sizeof(int));
    int rc = 0, enabled = 0, R = 64 * m->cfg.n_layers + 64;
    double *sum = NULL;
    int *cnt = NULL;
    if (engine_reserve(g, b, pre ? c->p : d + 1, max_tok, e)) { rc = -1; goto out; }
    for (int i = 0; i < (n > d ? n : d); i++) tok[i] = (int)((2654435761u * (unsigned)(i + 1)) % (unsigned)m->cfg.vocab);
    if (!pre && d > 0) {
        for (int i = 0; i < d; i++) pos[i] = i;
        for (int j = 0; j < d && !rc; j += chunk)
            rc = engine_step(g, d - j < chunk ? d - j : chunk, tok + j, seq, pos + j, NULL, NULL, NULL, NULL, e);
        for (int s = 1; s < b && !rc; s++) rc = engine_copy_seq(g, s, 0, d, e);
        if (rc) goto out;
    }
    for (int i = 0; i < n; i++) { seq[i] = pre ? 0 : i; pos[i] = pre ? i : d; }
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q;
    CUcontext ctx = NULL;
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &fn, 12000, cudaEnableDefault, &q) != cudaSuccess || !fn ||
        ((CtxGetCurrent)fn)(&ctx) != CUDA_SUCCESS || !ctx) { rc = err_set(e, "metrics: no current CUDA context"); goto out; }
    CUpti_Profiler_GetCounterAvailability_Params ap = { .structSize = CUpti_Profiler_GetCounterAvailability_Params_STRUCT_SIZE, .ctx = ctx };
    CU_TRY(cuptiProfilerGetCounterAvailability(&ap), "cuptiProfilerGetCounterAvailability");
    avail = xmalloc(ap.counterAvailabilityImageSize);
    ap.pCounterAvailabilityImage = avail;
    CU_TRY(cuptiProfilerGetCounterAvailability(&ap), "cuptiProfilerGetCounterAvailability");
    CUpti_Device_GetChipName_Params cp = { .structSize = CUpti_Device_GetChipName_Params_STRUCT_SIZE, .deviceIndex = 0 };
    CU_TRY(cuptiDeviceGetChipName(&cp), "cuptiDeviceGetChipName");
    if (cupti_host_open(&host, cp.pChipName, avail, (const char *const *)p->metric_names, p->n_metrics, e)) { rc = -1; goto out; }
    const uint8_t *config;
    size_t config_size, passes;
    if (cupti_host_config(host, &config, &config_size, &passes, e)) { rc = -1; goto out; }
    CUpti_RangeProfiler_Enable_Params en = { .structSize = CUpti_RangeProfiler_Enable_Params_STRUCT_SIZE, .ctx = ctx };
    CU_TRY(cuptiRangeProfilerEnable(&en), "cuptiRangeProfilerEnable");
    p->rp = en.pRangeProfilerObject;
    enabled = 1;
    CUpti_RangeProfiler_GetCounterDataSize_Params ds = {
        .structSize = CUpti_RangeProfiler_GetCounterDataSize_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp,
        .pMetricNames = (const char **)p->metric_names, .numMetrics = (size_t)p->n_metrics, .maxNumOfRanges = (size_t)R,
        .maxNumRangeTreeNodes = (uint32_t)R,
    };
    CU_TRY(cuptiRangeProfilerGetCounterDataSize(&ds), "cuptiRangeProfilerGetCounterDataSize");
    data = xmalloc(ds.counterDataSize);
    CUpti_RangeProfiler_CounterDataImage_Initialize_Params di = {
        .structSize = CUpti_RangeProfiler_CounterDataImage_Initialize_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp,
        .counterDataSize = ds.counterDataSize, .pCounterData = data,
    };
    CU_TRY(cuptiRangeProfilerCounterDataImageInitialize(&di), "cuptiRangeProfilerCounterDataImageInitialize");
    CUpti_RangeProfiler_SetConfig_Params sc = {
        .structSize = CUpti_RangeProfiler_SetConfig_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp,
        .configSize = config_size, .pConfig = config, .counterDataImageSize = ds.counterDataSize, .pCounterDataImage = data,
        .range = CUPTI_UserRange, .replayMode = CUPTI_UserReplay, .maxRangesPerPass = (size_t)R, .numNestingLevels = 1,
        .minNestingLevel = 1, .passIndex = 0, .targetNestingLevel = 1,
    };
    CU_TRY(cuptiRangeProfilerSetConfig(&sc), "cuptiRangeProfilerSetConfig");
    if (tracing(0, e)) { rc = -1; goto out; }
    cuda_set_op_hook(range_hook, p);
    int all = 0, pass = 0;
    for (; !all && pass < 64 && !rc; pass++) {
        for (int s = 0; s < b && !rc; s++) rc = engine_set_len(g, s, d, e);
        CUpti_RangeProfiler_Start_Params st = { .structSize = CUpti_RangeProfiler_Start_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp };
        CUpti_RangeProfiler_Stop_Params sp = { .structSize = CUpti_RangeProfiler_Stop_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp };
        CUptiResult r = rc ? CUPTI_SUCCESS : cuptiRangeProfilerStart(&st);
        if (r != CUPTI_SUCCESS) { rc = cupti_fail(e, "cuptiRangeProfilerStart", r); break; }
        if (!rc) rc = engine_step(g, n, tok, seq, pos, NULL, NULL, NULL, NULL, e);
        if ((r = cuptiRangeProfilerStop(&sp)) != CUPTI_SUCCESS && !rc) rc = cupti_fail(e, "cuptiRangeProfilerStop", r);
        all = sp.isAllPassSubmitted;
    }
    cuda_set_op_hook(NULL, NULL);
    if (tracing(1, e) && !rc) rc = -1;
    if (rc) goto out;
    if (!all) { rc = err_set(e, "metrics: the schedule needs more than %d passes", pass); goto out; }
    CUpti_RangeProfiler_DecodeData_Params dd = { .structSize = CUpti_RangeProfiler_DecodeData_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp };
    CU_TRY(cuptiRangeProfilerDecodeData(&dd), "cuptiRangeProfilerDecodeData");
    CUpti_RangeProfiler_GetCounterDataInfo_Params ci = {
        .structSize = CUpti_RangeProfiler_GetCounterDataInfo_Params_STRUCT_SIZE, .pCounterDataImage = data,
        .counterDataImageSize = ds.counterDataSize,
    };
    CU_TRY(cuptiRangeProfilerGetCounterDataInfo(&ci), "cuptiRangeProfilerGetCounterDataInfo");
    sum = xcalloc((size_t)(OP_COUNT + 1) * p->n_metrics, sizeof(double));
    cnt = xcalloc(OP_COUNT + 1, sizeof(int));
    double *val = xmalloc(sizeof(double) * (size_t)p->n_metrics);
    for (size_t r = 0; r < ci.numTotalRanges && !rc; r++) {
        CUpti_RangeProfiler_CounterData_GetRangeInfo_Params ri = {
            .structSize = CUpti_RangeProfiler_CounterData_GetRangeInfo_Params_STRUCT_SIZE, .pCounterDataImage = data,
            .counterDataImageSize = ds.counterDataSize, .rangeIndex = r, .rangeDelimiter = "/",
        };
        CUptiResult x = cuptiRangeProfilerCounterDataGetRangeInfo(&ri);
        if (x != CUPTI_SUCCESS) { rc = cupti_fail(e, "cuptiRangeProfilerCounterDataGetRangeInfo", x); break; }
        if (cupti_host_evaluate(host, data, ds.counterDataSize, r, val, e)) { rc = -1; break; }
        int op = OP_COUNT;
        for (int k = 0; k < OP_COUNT; k++) if (ri.rangeName && !strcmp(ri.rangeName, cuda_op_name(k))) op = k;
        for (int k = 0; k < p->n_metrics; k++) sum[op * p->n_metrics + k] += val[k];
        cnt[op]++;
    }
    free(val);
    if (rc) goto out;
    if (dd.numOfRangeDropped) fprintf(stderr, "effbench: metrics %s: %zu ranges dropped\n", p->cell, dd.numOfRangeDropped);
    int it = metric_index(p, "gpu__time_duration.sum"), ir = metric_index(p, "dram__bytes_read.sum");
    int iw = metric_index(p, "dram__bytes_write.sum");
    int iffma = metric_index(p, "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum");
    int ifadd = metric_index(p, "smsp__sass_thread_inst_executed_op_fadd_pred_on.sum");
    int ifmul = metric_index(p, "smsp__sass_thread_inst_executed_op_fmul_pred_on.sum");
    int iten = metric_index(p, "sm__ops_path_tensor_src_bf16_dst_fp32.sum");
    for (int op = 0; op <= OP_COUNT; op++) {
        if (!cnt[op]) continue;
        const double *v = sum + op * p->n_metrics;
        char **row = xmalloc(sizeof(char *) * (size_t)(p->n_metrics + 14));
        int k = 0;
        row[k++] = xstrdup(p->cell);
        row[k++] = xstrdup(op < OP_COUNT ? cuda_op_name(op) : "outside ops");
        row[k++] = xasprintf("%d", cnt[op]);
        for (int j = 0; j < p->n_metrics; j++) {
            int is_sum = strlen(p->metric_names[j]) > 4 && !strcmp(p->metric_names[j] + strlen(p->metric_names[j]) - 4, ".sum");
            row[k++] = xasprintf("%.6g", is_sum ? v[j] : v[j] / cnt[op]);     /* rates and percentages: the mean */
        }
        double t = it >= 0 ? v[it] * 1e-9 : 0, bytes = (ir >= 0 ? v[ir] : 0) + (iw >= 0 ? v[iw] : 0);
        double f32 = (iffma >= 0 ? 2 * v[iffma] : 0) + (ifadd >= 0 ? v[ifadd] : 0) + (ifmul >= 0 ? v[ifmul] : 0);
        double ten = iten >= 0 ? 2 * v[iten] : 0, gbs = t > 0 ? bytes / t / 1e9 : 0, tf = t > 0 ? (f32 + ten) / t / 1e12 : 0;
        row[k++] = xasprintf("%.6g", bytes); row[k++] = xasprintf("%.6g", f32); row[k++] = xasprintf("%.6g", ten);
        row[k++] = xasprintf("%.6g", f32 + ten); row[k++] = xasprintf("%.6g", gbs); row[k++] = xasprintf("%.6g", tf);
        row[k++] = xasprintf("%.4f", p->gbs > 0 ? gbs / p->gbs : 0); row[k++] = xasprintf("%.4f", p->tflops > 0 ? tf / p->tflops : 0);
        row[k++] = p->ds_gbs > 0 ? xasprintf("%.4f", gbs / p->ds_gbs) : xstrdup("");
        row[k++] = p->ds_tflops > 0 ? xasprintf("%.4f", tf / p->ds_tflops) : xstrdup("");
        row[k++] = xstrdup(c->device);
        table_add(&p->metrics, (const char *const *)row);
        for (int j = 0; j < k; j++) free(row[j]);
        free(row);
    }
    fprintf(stderr, "effbench: metrics %s: %zu ranges, %zu passes of %d metrics\n", p->cell, ci.numTotalRanges, passes, p->n_metrics);
out:
    if (enabled) {
        CUpti_RangeProfiler_Disable_Params dp = { .structSize = CUpti_RangeProfiler_Disable_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp };
        cuptiRangeProfilerDisable(&dp);
    }
    p->rp = NULL;
    p->rp_depth = 0;
    cupti_host_close(host);
    free(avail); free(data); free(tok); free(seq); free(pos); free(sum); free(cnt);
    return rc;
}

int profiler_cell_done(Profiler *p, Cell *c, Engine *g, Err *e) {
    if (!p) return 0;
    Cell traced = *c, plain;
    int rc = 0;
    /* the same cell untraced: tracing off, no hooks; its timings are the results */
    measure_hook = NULL;
    cuda_set_op_hook(NULL, NULL);
    if (tracing(0, e)) return -1;
    int reps = traced.reps;
    if (traced.kind == 'p') rc = measure_prefill(g, traced.p, reps, 1, &plain, e);
    else rc = measure_decode(g, traced.b, traced.d, traced.n, reps, 1, &plain, e);
    if (tracing(1, e) && !rc) rc = -1;
    if (!rc) rc = collect(p, &traced, &plain, e);
    if (!rc && p->host) {
        rc = metrics_cell(p, &traced, g, e);
        if (!rc) rc = write_tables(p, e);
    }
    if (!rc) *c = plain;
    return rc;
}

int profiler_close(Profiler *p, Err *e) {
    if (!p) return 0;
    Err dummy = { "" };
    if (!e) e = &dummy;
    cuda_sync();
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    tracing(0, &dummy);
    cuda_set_op_hook(NULL, NULL);
    measure_hook = NULL;
    int rc = write_tables(p, e);
    if (!rc && p->host && p->metrics.nrow && chart_kernel_roofline(p->dir, &p->metrics, p->gbs, p->tflops * 1e3, e)) rc = -1;
    if (!rc) fprintf(stderr, "effbench: profile in %s: kernels.csv, ops.csv, overhead.csv%s\n", p->dir, p->host ? ", metrics.csv, kernel_roofline.png" : "");
    profiler_free(p);
    return rc;
}

void profiler_discard(Profiler *p) {
    if (!p) return;
    Err ignore;
    cuda_sync();
    tracing(0, &ignore);
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    cuda_set_op_hook(NULL, NULL);
    measure_hook = NULL;
    profiler_free(p);
}

#else  /* no CUDA: the profiler says so */
int profiler_open(Profiler **p, const char *dir, const char *metrics, Err *e) {
    (void)dir; (void)metrics;
    *p = NULL;
    return err_set(e, "profiling needs the CUDA backend: this effbench was built without it");
}
void profiler_cell(Profiler *p, const char *name) { (void)p; (void)name; }
int profiler_cell_done(Profiler *p, Cell *c, Engine *g, Err *e) {
    (void)p; (void)c; (void)g; (void)e;
    return 0;
}
int profiler_close(Profiler *p, Err *e) { (void)p; (void)e; return 0; }
void profiler_discard(Profiler *p) { (void)p; }
#endif
