/*
 * profile.c - CUPTI tracing (Activity API) and per-op hardware counters (Range
 * Profiler API) of the GPU cells. See profile.h for the files written.
 *
 * Kernels are tied to engine ops through CUPTI's external correlation: the GPU forward
 * pass marks each op (cuda_op_mark), and the hook installed here pushes the op's id
 * on CUSTOM0 while it queues its kernels; runtime and driver API records carry the
 * correlation, so cuBLAS's kernels are attributed too, and so are the copies and
 * memsets an op queues itself (MLA's absorb op copies the rotary queries). Traced steps
 * run without CUDA graphs (a graph's kernels would all share the launch's correlation).
 *
 * Counters: the range profiler replays the cell's timed step (CellStep, measure.h)
 * with a user range per op, the budget of ranges being the step's own count of ops
 * (counted by running it once); an op whose ranges came back short is marked
 * incomplete, never summed as if whole. Rates divide by the op's kernel time per step
 * from the Activity API (the traced run of the same cell), not by the range's
 * gpu__time_duration, which CUDA 13.0 reports inflated for user ranges
 * (../shared/CUPTI.md 1.5); the range's duration stays a column.
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
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the arithmetic of metrics.csv ---------------------------------------------------- */
int profile_tensor_factor(double counted, double flops, double *measured, char *why, size_t len) {
    *measured = counted > 0 && isfinite(counted) && flops > 0 ? flops / counted : NAN;
    if (!isfinite(*measured)) {
        snprintf(why, len, "the calibration product counted %g tensor ops for %.4g FLOPs", counted, flops);
        return 0;
    }
    for (int f = 1; f <= 2; f++)
        if (fabs(*measured - f) <= 0.1 * f) { snprintf(why, len, "%d FLOPs per counted tensor op", f); return f; }
    snprintf(why, len, "the calibration product takes %.3g FLOPs per counted tensor op, neither about 1 nor about 2: "
             "tensor FLOP figures refused", *measured);
    return 0;
}

static double pos0(double v) { return v > 0 ? v : 0; }

void profile_op_rates(const OpCounters *in, OpRates *o) {
    o->dram_bytes = in->dram_read >= 0 || in->dram_write >= 0 ? pos0(in->dram_read) + pos0(in->dram_write) : NAN;
    o->fp32_flops = in->ffma >= 0 || in->fadd >= 0 || in->fmul >= 0 ? 2 * pos0(in->ffma) + pos0(in->fadd) + pos0(in->fmul) : NAN;
    if (in->tensor_ops < 0) o->tensor_flops = NAN;                         /* not measured */
    else o->tensor_flops = in->factor == 1 || in->factor == 2 ? in->factor * in->tensor_ops : NAN;
    if (in->tensor_ops >= 0 && !isfinite(o->tensor_flops)) o->flops = NAN; /* counted, but uncalibrated: refused */
    else if (isfinite(o->fp32_flops) || isfinite(o->tensor_flops))
        o->flops = (isfinite(o->fp32_flops) ? o->fp32_flops : 0) + (isfinite(o->tensor_flops) ? o->tensor_flops : 0);
    else o->flops = NAN;
    double t = in->time_ns > 0 ? in->time_ns * 1e-9 : 0;
    o->gbs = t > 0 && isfinite(o->dram_bytes) ? o->dram_bytes / t / 1e9 : NAN;
    o->tflops = t > 0 && isfinite(o->flops) ? o->flops / t / 1e12 : NAN;
    o->of_read_bw = in->gbs > 0 ? o->gbs / in->gbs : NAN;
    o->of_gemm_peak = in->tflops > 0 ? o->tflops / in->tflops : NAN;
    o->of_ds_hbm = in->ds_gbs > 0 ? o->gbs / in->ds_gbs : NAN;
    o->of_ds_bf16 = in->ds_tflops > 0 ? o->tflops / in->ds_tflops : NAN;
}

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
typedef struct { int kind; uint32_t corr; uint64_t start, end, bytes; } MRec;     /* memcpy 0, memset 1 */
typedef struct { int kind; uint64_t start, end; } ORec;

/* what the buffer callbacks fill (CUPTI's threads) and collect reads, under lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static KRec *krec; static size_t nk, capk;
static XRec *xrec; static size_t nx, capx;
static MRec *mrec; static size_t nm, capm;
static ORec *orec; static size_t no, capo;
static char **names; static int nnames, capnames;
static size_t ndropped;                          /* records CUPTI dropped (cuptiActivityGetNumDroppedRecords) */
static size_t nbuf_failed;                       /* buffers we could not give it */

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

#define BUF_BYTES (8u << 20)

static void CUPTIAPI buf_requested(uint8_t **buf, size_t *size, size_t *max_records) {
    *max_records = 0;
    *buf = aligned_alloc(8, BUF_BYTES);
    *size = *buf ? BUF_BYTES : 0;               /* none: CUPTI drops the records, and counts them */
    if (!*buf) { pthread_mutex_lock(&lock); nbuf_failed++; pthread_mutex_unlock(&lock); }
}

static void CUPTIAPI buf_completed(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid) {
    (void)size;
    CUpti_Activity *r = NULL;
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) != CUPTI_SUCCESS) dropped = 0;
    pthread_mutex_lock(&lock);
    ndropped += dropped;
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
            PUSH(mrec, nm, capm, ((MRec){ 0, m->correlationId, m->start, m->end, m->bytes }));
        } else if (r->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
            const CUpti_ActivityMemset4 *m = (const CUpti_ActivityMemset4 *)r;
            PUSH(mrec, nm, capm, ((MRec){ 1, m->correlationId, m->start, m->end, m->bytes }));
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
#define TENSOR_METRIC "sm__ops_path_tensor_src_bf16_dst_fp32.sum"
/* what the untraced comparison run still has (overhead.csv says it with each row) */
#define UNTRACED_RUN "CUPTI attached (callbacks registered), no activity kinds enabled, no op hooks"

struct Profiler {
    char dir[1024];
    char cell[512];
    Table kernels, ops, overhead, metrics;
    uint64_t win[MAX_WINDOWS][2]; int nwin;       /* timed repetitions of the cell (CUPTI clock) */
    char **metric_names; int n_metrics;
    CuptiHost *host;
    double gbs[2], tflops[2];                     /* the device's measured limits (metrics): [0] F32, [1] BF16 products */
    double ds_gbs, ds_tflops;                     /* its datasheet's (suites/hardware.json), 0 if not listed */
    int chart_bf16;                               /* the roofs of kernel_roofline.png: the first metrics cell's dtype */
    int tensor_factor;                            /* FLOPs per counted tensor op (1, 2), 0: refused or not calibrated */
    double tensor_measured;                       /* the calibration's measured factor (NAN: none) */
    char tensor_why[256];
    double op_step_ns[OP_COUNT + 1];              /* the cell's GPU time per step by op (Activity API); [OP_COUNT]: unattributed */
    size_t dropped;                               /* activity records dropped while the cell was traced */
    int tracing_on;
    /* range profiler state while profiling a step */
    CUpti_RangeProfiler_Object *rp;
    int rp_depth;
    int prof_init;                                /* cuptiProfilerInitialize called */
};

static int set_tracing(Profiler *p, int on, Err *e) {
    if (p->tracing_on == on) return 0;
    int rc = tracing(on, e);
    if (!rc) p->tracing_on = on;
    return rc;
}

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
                                 "share_of_step", "reps", "step_ms_traced", "dropped_records", "device", "commit" };
static const char *OVH_COLS[] = { "cell", "step_ms_untraced", "step_ms_traced", "tracing_overhead_pct", "cupti_overhead_us",
                                  "cupti_overhead_kinds", "dropped_records", "untraced_run", "reps", "device", "commit" };
static const char *DERIVED_COLS[] = { "kernel_ns_per_step", "dram_bytes", "fp32_flops", "tensor_flops", "flops", "achieved_gbs",
                                      "achieved_tflops", "of_read_bw", "of_gemm_peak", "of_datasheet_hbm", "of_datasheet_bf16",
                                      "tensor_flops_per_op", "tensor_factor_measured", "roof_dtype", "device" };
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

static int metric_index(const Profiler *p, const char *name) {
    for (int i = 0; i < p->n_metrics; i++) if (!strcmp(p->metric_names[i], name)) return i;
    return -1;
}

/* ---- the range profiler: user ranges, user replay ----------------------------------- */
static void push_range(Profiler *p, const char *name) {
    CUpti_RangeProfiler_PushRange_Params pp = { .structSize = CUpti_RangeProfiler_PushRange_Params_STRUCT_SIZE,
                                                 .pRangeProfilerObject = p->rp, .pRangeName = name };
    if (cuptiRangeProfilerPushRange(&pp) == CUPTI_SUCCESS) p->rp_depth++;
}
static void pop_range(Profiler *p) {
    if (p->rp_depth <= 0) return;
    CUpti_RangeProfiler_PopRange_Params pp = { .structSize = CUpti_RangeProfiler_PopRange_Params_STRUCT_SIZE,
                                                .pRangeProfilerObject = p->rp };
    cuptiRangeProfilerPopRange(&pp);
    p->rp_depth--;
}
static void range_hook(int op, int begin, void *ctx) {
    if (begin) push_range(ctx, cuda_op_name(op));
    else pop_range(ctx);
}

/* The ranges of a profiled workload: names and values (n x n_metrics). */
typedef struct { size_t n, dropped, passes; char **name; double *val; } Ranges;
static void ranges_free(Ranges *r) {
    for (size_t i = 0; i < r->n; i++) free(r->name[i]);
    free(r->name); free(r->val);
    memset(r, 0, sizeof *r);
}

typedef int (*StepFn)(void *ctx, Err *e);
typedef CUresult (*CtxGetCurrent)(CUcontext *);

#define CU_TRY(call, what) do { CUptiResult r_ = (call); if (r_ != CUPTI_SUCCESS) { rc = cupti_fail(e, what, r_); goto out; } } while (0)

/* Runs step (with hook as the op hook, when not NULL) under the range profiler until
 * every pass of the metric schedule is collected, with room for max_ranges ranges;
 * Activity tracing is off meanwhile. The ranges, and how many CUPTI dropped, in *out. */
static int range_profile(Profiler *p, size_t max_ranges, StepFn step, void *step_ctx, CudaOpHook hook, Ranges *out, Err *e) {
    memset(out, 0, sizeof *out);
    CuptiHost *host = NULL;
    uint8_t *avail = NULL, *data = NULL;
    int rc = 0, enabled = 0, traced = p->tracing_on;
    if (max_ranges < 1) max_ranges = 1;
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q;
    CUcontext ctx = NULL;
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &fn, 12000, cudaEnableDefault, &q) != cudaSuccess || !fn ||
        ((CtxGetCurrent)fn)(&ctx) != CUDA_SUCCESS || !ctx) return err_set(e, "metrics: no current CUDA context");
    CUpti_Profiler_GetCounterAvailability_Params ap = { .structSize = CUpti_Profiler_GetCounterAvailability_Params_STRUCT_SIZE, .ctx = ctx };
    CU_TRY(cuptiProfilerGetCounterAvailability(&ap), "cuptiProfilerGetCounterAvailability");
    avail = xmalloc(ap.counterAvailabilityImageSize);
    ap.pCounterAvailabilityImage = avail;
    CU_TRY(cuptiProfilerGetCounterAvailability(&ap), "cuptiProfilerGetCounterAvailability");
    CUpti_Device_GetChipName_Params cp = { .structSize = CUpti_Device_GetChipName_Params_STRUCT_SIZE, .deviceIndex = 0 };
    CU_TRY(cuptiDeviceGetChipName(&cp), "cuptiDeviceGetChipName");
    if (cupti_host_open(&host, cp.pChipName, avail, (const char *const *)p->metric_names, p->n_metrics, e)) { rc = -1; goto out; }
    const uint8_t *config;
    size_t config_size;
    if (cupti_host_config(host, &config, &config_size, &out->passes, e)) { rc = -1; goto out; }
    CUpti_RangeProfiler_Enable_Params en = { .structSize = CUpti_RangeProfiler_Enable_Params_STRUCT_SIZE, .ctx = ctx };
    CU_TRY(cuptiRangeProfilerEnable(&en), "cuptiRangeProfilerEnable");
    p->rp = en.pRangeProfilerObject;
    enabled = 1;
    CUpti_RangeProfiler_GetCounterDataSize_Params ds = {
        .structSize = CUpti_RangeProfiler_GetCounterDataSize_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp,
        .pMetricNames = (const char **)p->metric_names, .numMetrics = (size_t)p->n_metrics, .maxNumOfRanges = max_ranges,
        .maxNumRangeTreeNodes = (uint32_t)max_ranges,
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
        .range = CUPTI_UserRange, .replayMode = CUPTI_UserReplay, .maxRangesPerPass = max_ranges, .numNestingLevels = 1,
        .minNestingLevel = 1, .passIndex = 0, .targetNestingLevel = 1,
    };
    CU_TRY(cuptiRangeProfilerSetConfig(&sc), "cuptiRangeProfilerSetConfig");
    if (set_tracing(p, 0, e)) { rc = -1; goto out; }
    if (hook) cuda_set_op_hook(hook, p);
    int all = 0, pass = 0;
    for (; !all && pass < 64 && !rc; pass++) {
        CUpti_RangeProfiler_Start_Params st = { .structSize = CUpti_RangeProfiler_Start_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp };
        CUpti_RangeProfiler_Stop_Params sp = { .structSize = CUpti_RangeProfiler_Stop_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp };
        CUptiResult r = cuptiRangeProfilerStart(&st);
        if (r != CUPTI_SUCCESS) { rc = cupti_fail(e, "cuptiRangeProfilerStart", r); break; }
        rc = step(step_ctx, e);
        while (p->rp_depth > 0) pop_range(p);    /* a failed step's open range */
        if ((r = cuptiRangeProfilerStop(&sp)) != CUPTI_SUCCESS && !rc) rc = cupti_fail(e, "cuptiRangeProfilerStop", r);
        all = sp.isAllPassSubmitted;
    }
    if (hook) cuda_set_op_hook(NULL, NULL);
    if (traced && set_tracing(p, 1, e) && !rc) rc = -1;
    if (rc) goto out;
    if (!all) { rc = err_set(e, "metrics: the schedule needs more than %d passes", pass); goto out; }
    CUpti_RangeProfiler_DecodeData_Params dd = { .structSize = CUpti_RangeProfiler_DecodeData_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp };
    CU_TRY(cuptiRangeProfilerDecodeData(&dd), "cuptiRangeProfilerDecodeData");
    out->dropped = dd.numOfRangeDropped;
    CUpti_RangeProfiler_GetCounterDataInfo_Params ci = {
        .structSize = CUpti_RangeProfiler_GetCounterDataInfo_Params_STRUCT_SIZE, .pCounterDataImage = data,
        .counterDataImageSize = ds.counterDataSize,
    };
    CU_TRY(cuptiRangeProfilerGetCounterDataInfo(&ci), "cuptiRangeProfilerGetCounterDataInfo");
    out->name = xcalloc(ci.numTotalRanges + 1, sizeof(char *));
    out->val = xcalloc((ci.numTotalRanges + 1) * (size_t)p->n_metrics, sizeof(double));
    for (size_t r = 0; r < ci.numTotalRanges && !rc; r++) {
        CUpti_RangeProfiler_CounterData_GetRangeInfo_Params ri = {
            .structSize = CUpti_RangeProfiler_CounterData_GetRangeInfo_Params_STRUCT_SIZE, .pCounterDataImage = data,
            .counterDataImageSize = ds.counterDataSize, .rangeIndex = r, .rangeDelimiter = "/",
        };
        CUptiResult x = cuptiRangeProfilerCounterDataGetRangeInfo(&ri);
        if (x != CUPTI_SUCCESS) { rc = cupti_fail(e, "cuptiRangeProfilerCounterDataGetRangeInfo", x); break; }
        if (cupti_host_evaluate(host, data, ds.counterDataSize, r, out->val + r * (size_t)p->n_metrics, e)) { rc = -1; break; }
        out->name[r] = xstrdup(ri.rangeName ? ri.rangeName : "");
        out->n = r + 1;
    }
out:
    if (enabled) {
        CUpti_RangeProfiler_Disable_Params dp = { .structSize = CUpti_RangeProfiler_Disable_Params_STRUCT_SIZE, .pRangeProfilerObject = p->rp };
        cuptiRangeProfilerDisable(&dp);
    }
    if (traced && !p->tracing_on) { Err ignore; set_tracing(p, 1, &ignore); }
    p->rp = NULL;
    p->rp_depth = 0;
    cupti_host_close(host);
    free(avail); free(data);
    if (rc) ranges_free(out);
    return rc;
}

/* ---- calibration of the tensor counter ----------------------------------------------- */
typedef struct { Profiler *p; CudaWork gemm; void *arg; Err *e; } Calib;

static int calib_step(void *ctx, Err *e) {
    Calib *c = ctx;
    push_range(c->p, "calibration 8192^3 BF16 GEMM");
    int rc = c->gemm(c->arg) ? err_set(e, "tensor counter calibration: %s", cuda_error()) : 0;
    pop_range(c->p);
    return rc;
}

/* called by cuda_measure_limits with its BF16 product: one range around it */
static int calibrate(CudaWork gemm, void *arg, void *ctx) {
    Calib *c = ctx;
    c->gemm = gemm;
    c->arg = arg;
    Profiler *p = c->p;
    Ranges r;
    if (range_profile(p, 1, calib_step, c, NULL, &r, c->e)) return -1;
    int it = metric_index(p, TENSOR_METRIC);
    double counted = 0, flops = 2.0 * CUDA_CALIBRATION_M * (double)CUDA_CALIBRATION_M * CUDA_CALIBRATION_M;
    for (size_t i = 0; i < r.n; i++) counted += r.val[i * (size_t)p->n_metrics + it];
    if (r.dropped) counted = 0;
    p->tensor_factor = profile_tensor_factor(counted, flops, &p->tensor_measured, p->tensor_why, sizeof p->tensor_why);
    fprintf(stderr, "effbench: tensor counter calibration: %.4g %s for %.4g FLOPs (8192^3 BF16 cuBLAS): %s\n", counted,
            TENSOR_METRIC, flops, p->tensor_why);
    ranges_free(&r);
    return 0;
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
    p->chart_bf16 = -1;
    p->tensor_measured = NAN;
    snprintf(p->tensor_why, sizeof p->tensor_why, "not calibrated");
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
        const char **cols = xmalloc(sizeof(char *) * (size_t)(p->n_metrics + 5 + NCOL(DERIVED_COLS)));
        int k = 0;
        cols[k++] = "cell"; cols[k++] = "op"; cols[k++] = "ranges"; cols[k++] = "ranges_expected"; cols[k++] = "complete";
        for (int i = 0; i < p->n_metrics; i++) cols[k++] = p->metric_names[i];
        for (int i = 0; i < NCOL(DERIVED_COLS); i++) cols[k++] = DERIVED_COLS[i];
        table_init(&p->metrics, k, cols);
        free(cols);
        /* the limits in both dtypes the cells may run (each cell's roof is its own
         * dtype's), and with the tensor counter asked for, its calibration on the BF16
         * product: before any model is on the GPU, so the operands fit */
        Calib cal = { p, NULL, NULL, e };
        int calib = metric_index(p, TENSOR_METRIC) >= 0;
        for (int bf = 0; bf < 2; bf++) {
            Err ce = { "" };
            cal.e = &ce;
            if (cuda_measure_limits(&p->gbs[bf], &p->tflops[bf], bf, bf && calib ? calibrate : NULL, &cal)) {
                err_set(e, "profiling: %s", ce.msg[0] ? ce.msg : cuda_error());
                profiler_free(p);
                return -1;
            }
        }
        fprintf(stderr, "effbench: GPU limits for the counters: read %.0f GB/s; cuBLAS 8192^3 %.1f TFLOP/s F32, %.1f BF16\n",
                p->gbs[1], p->tflops[0], p->tflops[1]);
    }
    CUptiResult r = cuptiActivityRegisterCallbacks(buf_requested, buf_completed);
    if (r != CUPTI_SUCCESS) { profiler_free(p); return cupti_fail(e, "cuptiActivityRegisterCallbacks", r); }
    if (set_tracing(p, 1, e)) { Err ignore; tracing(0, &ignore); profiler_free(p); return -1; }
    *out = p;
    return 0;
}

/* The hooks are in place from here to profiler_cell_done: while a GPU cell is measured
 * traced, and at no other time. */
void profiler_cell(Profiler *p, const char *name) {
    if (!p) return;
    snprintf(p->cell, sizeof p->cell, "%s", name);
    p->nwin = 0;
    cuda_sync();
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);    /* earlier work's records, and drops, are not the cell's */
    pthread_mutex_lock(&lock);
    nk = nx = nm = no = 0;
    ndropped = nbuf_failed = 0;
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
/* the op whose external correlation id the API call of corr carried; OP_COUNT if none */
static int op_of(uint32_t corr) {
    XRec key = { corr, 0 }, *x = nx ? bsearch(&key, xrec, nx, sizeof *xrec, cmp_x) : NULL;
    return x && x->ext >= 1 && x->ext <= OP_COUNT ? (int)x->ext - 1 : OP_COUNT;
}

static int collect(Profiler *p, const Cell *traced, const Cell *plain, Err *e) {
    cuda_sync();
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    pthread_mutex_lock(&lock);
    if (nx) qsort(xrec, nx, sizeof *xrec, cmp_x);
    double op_ns[OP_COUNT + 3] = { 0 }, total = 0;     /* + unattributed, memcpy, memset (outside ops) */
    int64_t op_n[OP_COUNT + 3] = { 0 };
    uint64_t t0 = p->nwin ? p->win[0][0] : 0;
    for (size_t i = 0; i < nk; i++) {
        const KRec *k = &krec[i];
        int w = win_of(p, k->start);
        if (w < 0) continue;                          /* warm-up or set-up work */
        int op = op_of(k->corr);
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
    /* copies and memsets: an op's own (MLA's absorb copies the rotary queries) count in
     * its GPU time; the rest (inputs up, tokens down) are rows of their own */
    for (size_t i = 0; i < nm; i++) {
        if (win_of(p, mrec[i].start) < 0) continue;
        int op = op_of(mrec[i].corr);
        double d = (double)(mrec[i].end - mrec[i].start);
        if (op < OP_COUNT) { op_ns[op] += d; total += d; }
        else { op_ns[OP_COUNT + 1 + mrec[i].kind] += d; op_n[OP_COUNT + 1 + mrec[i].kind]++; }
    }
    double ovh = 0;
    char kinds[512] = "";
    for (size_t i = 0; i < no; i++)
        if (win_of(p, orec[i].start) >= 0) {
            ovh += (double)(orec[i].end - orec[i].start);
            char k[32];
            snprintf(k, sizeof k, "%s0x%x", kinds[0] ? " " : "", orec[i].kind);
            if (!strstr(kinds, k + (kinds[0] ? 1 : 0)) && strlen(kinds) + strlen(k) < sizeof kinds) strcat(kinds, k);
        }
    p->dropped = ndropped;
    size_t buf_failed = nbuf_failed;
    size_t n_kernels = nk;
    pthread_mutex_unlock(&lock);
    int reps = p->nwin ? p->nwin : 1, steps = traced->kind == 'g' && traced->n > 0 ? traced->n : 1;
    for (int op = 0; op <= OP_COUNT; op++) p->op_step_ns[op] = op_ns[op] / reps / steps;
    if (p->dropped || buf_failed)
        fprintf(stderr, "effbench: profiled %s: CUPTI dropped %zu activity records (%zu buffers could not be allocated): "
                "its kernels.csv, ops.csv and metrics rates are incomplete\n", p->cell, p->dropped, buf_failed);
    double step_s = traced->med * steps;              /* one timed repetition */
    for (int op = 0; op < OP_COUNT + 3; op++) {
        if (!op_n[op] && !(op < OP_COUNT && op_ns[op] > 0)) continue;
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
        v[c++] = xasprintf("%zu", p->dropped);
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
    v[c++] = xasprintf("%zu", p->dropped);
    v[c++] = xstrdup(UNTRACED_RUN);
    v[c++] = xasprintf("%d", reps);
    v[c++] = xstrdup(traced->device); v[c++] = xstrdup(EFFBENCH_COMMIT);
    table_add(&p->overhead, (const char *const *)v);
    for (int j = 0; j < c; j++) free(v[j]);
    fprintf(stderr, "effbench: profiled %s: %zu kernels traced, step %.3f ms traced vs %.3f ms with tracing off (%+.1f%%)\n",
            p->cell, n_kernels, 1e3 * traced->med, 1e3 * plain->med, 100.0 * (traced->med / plain->med - 1));
    return write_tables(p, e);
}

/* ---- hardware counters of the cell's timed step ------------------------------------- */
static void count_hook(int op, int begin, void *ctx) {
    int *n = ctx;
    if (begin) n[op >= 0 && op < OP_COUNT ? op : OP_COUNT]++;
}

typedef struct { Engine *g; CellStep *st; } StepRun;
static int step_run(void *ctx, Err *e) {
    StepRun *s = ctx;
    return cell_step_reset(s->g, s->st, e) || cell_step_run(s->g, s->st, e) ? -1 : 0;
}

static char *num(double v, const char *fmt) { return isfinite(v) ? xasprintf(fmt, v) : xstrdup(""); }

/* The cell's timed step (CellStep), replayed until every pass of the metric schedule is
 * collected, one user range per op; the budget of ranges is the step's own count of
 * ops, counted by running it once first. */
static int metrics_cell(Profiler *p, const Cell *c, Engine *g, Err *e) {
    CellStep st;
    Ranges r = { 0 };
    int expect[OP_COUNT + 1] = { 0 }, cnt[OP_COUNT + 1] = { 0 };
    double *sum = NULL;
    int rc = cell_step_open(g, c, &st, e);
    if (rc) goto out;
    cuda_set_op_hook(count_hook, expect);
    rc = step_run(&(StepRun){ g, &st }, e);
    cuda_set_op_hook(NULL, NULL);
    if (rc) goto out;
    size_t budget = 0;
    for (int op = 0; op <= OP_COUNT; op++) budget += (size_t)expect[op];
    StepRun sr = { g, &st };
    if ((rc = range_profile(p, budget, step_run, &sr, range_hook, &r, e))) goto out;
    sum = xcalloc((size_t)(OP_COUNT + 1) * p->n_metrics, sizeof(double));
    for (size_t i = 0; i < r.n; i++) {
        int op = OP_COUNT;
        for (int k = 0; k < OP_COUNT; k++) if (!strcmp(r.name[i], cuda_op_name(k))) op = k;
        for (int k = 0; k < p->n_metrics; k++) sum[op * p->n_metrics + k] += r.val[i * (size_t)p->n_metrics + k];
        cnt[op]++;
    }
    if (r.dropped || r.n != budget)
        fprintf(stderr, "effbench: metrics %s: %zu of %zu ranges came back (%zu dropped): ops short of ranges are marked "
                "incomplete in metrics.csv\n", p->cell, r.n, budget, r.dropped);
    int bf = !strcmp(c->dtype, "BF16");
    if (p->chart_bf16 < 0) p->chart_bf16 = bf;
    int it = metric_index(p, "gpu__time_duration.sum"), ir = metric_index(p, "dram__bytes_read.sum");
    int iw = metric_index(p, "dram__bytes_write.sum");
    int iffma = metric_index(p, "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum");
    int ifadd = metric_index(p, "smsp__sass_thread_inst_executed_op_fadd_pred_on.sum");
    int ifmul = metric_index(p, "smsp__sass_thread_inst_executed_op_fmul_pred_on.sum");
    int iten = metric_index(p, TENSOR_METRIC);
    (void)it;
    for (int op = 0; op <= OP_COUNT; op++) {
        if (!cnt[op] && !expect[op]) continue;
        int complete = cnt[op] == expect[op];
        const double *v = sum + op * p->n_metrics;
        char **row = xmalloc(sizeof(char *) * (size_t)(p->n_metrics + 5 + NCOL(DERIVED_COLS)));
        int k = 0;
        row[k++] = xstrdup(p->cell);
        row[k++] = xstrdup(op < OP_COUNT ? cuda_op_name(op) : "outside ops");
        row[k++] = xasprintf("%d", cnt[op]);
        row[k++] = xasprintf("%d", expect[op]);
        row[k++] = xstrdup(complete ? "1" : "0");
        for (int j = 0; j < p->n_metrics; j++) {
            size_t l = strlen(p->metric_names[j]);
            int is_sum = l > 4 && !strcmp(p->metric_names[j] + l - 4, ".sum");
            /* sums, and rates and percentages as the mean; nothing for an op short of ranges */
            row[k++] = complete && cnt[op] ? xasprintf("%.6g", is_sum ? v[j] : v[j] / cnt[op]) : xstrdup("");
        }
        OpCounters in = {
            .time_ns = !p->dropped ? p->op_step_ns[op] : 0,
            .dram_read = ir >= 0 ? v[ir] : -1, .dram_write = iw >= 0 ? v[iw] : -1,
            .ffma = iffma >= 0 ? v[iffma] : -1, .fadd = ifadd >= 0 ? v[ifadd] : -1, .fmul = ifmul >= 0 ? v[ifmul] : -1,
            .tensor_ops = iten >= 0 ? v[iten] : -1, .factor = p->tensor_factor,
            .gbs = p->gbs[bf], .tflops = p->tflops[bf], .ds_gbs = p->ds_gbs, .ds_tflops = p->ds_tflops,
        };
        OpRates o;
        profile_op_rates(&in, &o);
        if (!complete) o = (OpRates){ NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN };
        row[k++] = num(in.time_ns > 0 ? in.time_ns : NAN, "%.6g");
        row[k++] = num(o.dram_bytes, "%.6g"); row[k++] = num(o.fp32_flops, "%.6g"); row[k++] = num(o.tensor_flops, "%.6g");
        row[k++] = num(o.flops, "%.6g"); row[k++] = num(o.gbs, "%.6g"); row[k++] = num(o.tflops, "%.6g");
        row[k++] = num(o.of_read_bw, "%.4f"); row[k++] = num(o.of_gemm_peak, "%.4f");
        row[k++] = num(o.of_ds_hbm, "%.4f"); row[k++] = num(o.of_ds_bf16, "%.4f");
        row[k++] = p->tensor_factor ? xasprintf("%d", p->tensor_factor) : xstrdup("");
        row[k++] = num(p->tensor_measured, "%.4f");
        row[k++] = xstrdup(bf ? "BF16" : "F32");
        row[k++] = xstrdup(c->device);
        table_add(&p->metrics, (const char *const *)row);
        for (int j = 0; j < k; j++) free(row[j]);
        free(row);
    }
    if (iten >= 0 && !p->tensor_factor)
        fprintf(stderr, "effbench: metrics %s: no FLOP figures written: %s\n", p->cell, p->tensor_why);
    fprintf(stderr, "effbench: metrics %s: %zu ranges, %zu passes of %d metrics\n", p->cell, r.n, r.passes, p->n_metrics);
out:
    ranges_free(&r);
    cell_step_close(&st);
    free(sum);
    return rc;
}

int profiler_cell_done(Profiler *p, Cell *c, Engine *g, Err *e) {
    if (!p) return 0;
    Cell traced = *c, plain;
    int rc = 0;
    /* the same cell with tracing off and no hooks (UNTRACED_RUN); its timings are the results */
    measure_hook = NULL;
    cuda_set_op_hook(NULL, NULL);
    if (set_tracing(p, 0, e)) return -1;
    int reps = traced.reps;
    if (traced.kind == 'p') rc = measure_prefill(g, traced.p, reps, 1, &plain, e);
    else rc = measure_decode(g, traced.b, traced.d, traced.n, reps, 1, &plain, e);
    if (set_tracing(p, 1, e) && !rc) rc = -1;
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
    set_tracing(p, 0, &dummy);
    cuda_set_op_hook(NULL, NULL);
    measure_hook = NULL;
    int rc = write_tables(p, e);
    int bf = p->chart_bf16 > 0;
    if (!rc && p->host && p->metrics.nrow && chart_kernel_roofline(p->dir, &p->metrics, p->gbs[bf], p->tflops[bf] * 1e3, e)) rc = -1;
    if (!rc) fprintf(stderr, "effbench: profile in %s: kernels.csv, ops.csv, overhead.csv%s\n", p->dir, p->host ? ", metrics.csv, kernel_roofline.png" : "");
    profiler_free(p);
    return rc;
}

void profiler_discard(Profiler *p) {
    if (!p) return;
    Err ignore;
    cuda_sync();
    set_tracing(p, 0, &ignore);
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
