/*
 * cupti_host.c - the CUPTI Profiler Host API from C (cupti_profiler_host.h needs the
 * empty <string> of bench/cupti_shim when compiled as C; it uses nothing from it).
 */
#include "cupti_host.h"

#include <stdio.h>
#include <stdlib.h>

const char *const ROOFLINE_METRICS[] = {
    "gpu__time_duration.sum",
    "dram__bytes_read.sum",
    "dram__bytes_write.sum",
    "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum",
    "smsp__sass_thread_inst_executed_op_fadd_pred_on.sum",
    "smsp__sass_thread_inst_executed_op_fmul_pred_on.sum",
    "sm__ops_path_tensor_src_bf16_dst_fp32.sum",
};
const int N_ROOFLINE_METRICS = (int)(sizeof ROOFLINE_METRICS / sizeof ROOFLINE_METRICS[0]);

/* appends name unless present */
static void add_name(char ***v, int *n, int *cap, const char *name, size_t len) {
    for (int i = 0; i < *n; i++)
        if (strlen((*v)[i]) == len && !strncmp((*v)[i], name, len)) return;
    if (*n == *cap) *v = xrealloc(*v, sizeof(char *) * (size_t)(*cap *= 2));
    (*v)[*n] = xmalloc(len + 1);
    memcpy((*v)[*n], name, len);
    (*v)[(*n)++][len] = 0;
}

int cupti_metric_names(const char *list, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    if (!list || !*list) return -1;
    int cap = 16;
    char **v = xmalloc(sizeof(char *) * (size_t)cap);
    const char *p = list;
    while (1) {
        size_t k = strcspn(p, ",");
        if (k == 0) { cupti_names_free(v, *n); *n = 0; return -1; }
        if (k == 8 && !strncmp(p, "roofline", 8))
            for (int i = 0; i < N_ROOFLINE_METRICS; i++) add_name(&v, n, &cap, ROOFLINE_METRICS[i], strlen(ROOFLINE_METRICS[i]));
        else add_name(&v, n, &cap, p, k);
        if (!p[k]) break;
        p += k + 1;
    }
    *names = v;
    return 0;
}

void cupti_names_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

#if defined(EFFBENCH_CUDA) && !defined(EFFBENCH_EMU)
#include <cupti.h>
#include <cupti_profiler_host.h>

struct CuptiHost {
    CUpti_Profiler_Host_Object *obj;
    const char **metrics;
    int n;
    uint8_t *image;
    size_t image_size;
};

static int cupti_err(Err *e, const char *what, CUptiResult r) {
    const char *s = NULL;
    cuptiGetResultString(r, &s);
    return err_set(e, "%s: %s", what, s ? s : "unknown CUPTI error");
}

#if defined(__SANITIZE_ADDRESS__)
#define NO_DEEPBIND "built with AddressSanitizer: CUPTI's RTLD_DEEPBIND load of libnvperf_host cannot run under it"
#endif

int cupti_host_usable(char *why, size_t len) {
#ifdef NO_DEEPBIND
    snprintf(why, len, "%s", NO_DEEPBIND);
    return 0;
#else
    (void)why; (void)len;
    return 1;
#endif
}

int cupti_host_open(CuptiHost **out, const char *chip, const uint8_t *avail, const char *const *metrics, int n, Err *e) {
    *out = NULL;
    char why[200];
    if (!cupti_host_usable(why, sizeof why)) return err_set(e, "CUPTI Host API: %s", why);
    CUpti_Profiler_Host_Initialize_Params ip = {
        .structSize = CUpti_Profiler_Host_Initialize_Params_STRUCT_SIZE, .profilerType = CUPTI_PROFILER_TYPE_RANGE_PROFILER,
        .pChipName = chip, .pCounterAvailabilityImage = avail,
    };
    CUptiResult r = cuptiProfilerHostInitialize(&ip);
    if (r != CUPTI_SUCCESS) return cupti_err(e, "cuptiProfilerHostInitialize", r);
    CuptiHost *h = xcalloc(1, sizeof *h);
    h->obj = ip.pHostObject;
    h->n = n;
    h->metrics = xmalloc(sizeof(char *) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) h->metrics[i] = metrics[i];
    for (int i = 0; i < n; i++) {               /* name each unknown metric */
        CUpti_Profiler_Host_GetMetricProperties_Params mp = {
            .structSize = CUpti_Profiler_Host_GetMetricProperties_Params_STRUCT_SIZE, .pHostObject = h->obj,
            .pMetricName = metrics[i],
        };
        if ((r = cuptiProfilerHostGetMetricProperties(&mp)) != CUPTI_SUCCESS) {
            const char *s = NULL;
            cuptiGetResultString(r, &s);
            err_set(e, "metric \"%s\" on %s: %s", metrics[i], chip, s ? s : "unknown");
            cupti_host_close(h);
            return -1;
        }
    }
    CUpti_Profiler_Host_ConfigAddMetrics_Params am = {
        .structSize = CUpti_Profiler_Host_ConfigAddMetrics_Params_STRUCT_SIZE, .pHostObject = h->obj,
        .ppMetricNames = h->metrics, .numMetrics = (size_t)n,
    };
    if ((r = cuptiProfilerHostConfigAddMetrics(&am)) != CUPTI_SUCCESS) {
        cupti_err(e, "cuptiProfilerHostConfigAddMetrics", r);
        cupti_host_close(h);
        return -1;
    }
    *out = h;
    return 0;
}

void cupti_host_close(CuptiHost *h) {
    if (!h) return;
    CUpti_Profiler_Host_Deinitialize_Params dp = {
        .structSize = CUpti_Profiler_Host_Deinitialize_Params_STRUCT_SIZE, .pHostObject = h->obj,
    };
    cuptiProfilerHostDeinitialize(&dp);
    free(h->metrics);
    free(h->image);
    free(h);
}

int cupti_host_config(CuptiHost *h, const uint8_t **image, size_t *size, size_t *passes, Err *e) {
    CUptiResult r;
    if (!h->image) {
        CUpti_Profiler_Host_GetConfigImageSize_Params sp = {
            .structSize = CUpti_Profiler_Host_GetConfigImageSize_Params_STRUCT_SIZE, .pHostObject = h->obj,
        };
        if ((r = cuptiProfilerHostGetConfigImageSize(&sp)) != CUPTI_SUCCESS) return cupti_err(e, "cuptiProfilerHostGetConfigImageSize", r);
        h->image = xmalloc(sp.configImageSize);
        h->image_size = sp.configImageSize;
        CUpti_Profiler_Host_GetConfigImage_Params gp = {
            .structSize = CUpti_Profiler_Host_GetConfigImage_Params_STRUCT_SIZE, .pHostObject = h->obj,
            .configImageSize = h->image_size, .pConfigImage = h->image,
        };
        if ((r = cuptiProfilerHostGetConfigImage(&gp)) != CUPTI_SUCCESS) return cupti_err(e, "cuptiProfilerHostGetConfigImage", r);
    }
    CUpti_Profiler_Host_GetNumOfPasses_Params np = {
        .structSize = CUpti_Profiler_Host_GetNumOfPasses_Params_STRUCT_SIZE, .configImageSize = h->image_size,
        .pConfigImage = h->image,
    };
    if ((r = cuptiProfilerHostGetNumOfPasses(&np)) != CUPTI_SUCCESS) return cupti_err(e, "cuptiProfilerHostGetNumOfPasses", r);
    if (image) *image = h->image;
    if (size) *size = h->image_size;
    if (passes) *passes = np.numOfPasses;
    return 0;
}

int cupti_host_describe(CuptiHost *h, const char *metric, char *out, size_t len, Err *e) {
    CUpti_Profiler_Host_GetMetricProperties_Params mp = {
        .structSize = CUpti_Profiler_Host_GetMetricProperties_Params_STRUCT_SIZE, .pHostObject = h->obj,
        .pMetricName = metric,
    };
    CUptiResult r = cuptiProfilerHostGetMetricProperties(&mp);
    if (r != CUPTI_SUCCESS) return cupti_err(e, metric, r);
    snprintf(out, len, "%s: %s (%s, %s)", metric, mp.pDescription ? mp.pDescription : "", mp.pHwUnit ? mp.pHwUnit : "",
             mp.pDimUnit ? mp.pDimUnit : "");
    return 0;
}

int cupti_host_evaluate(CuptiHost *h, const uint8_t *data, size_t size, size_t range, double *values, Err *e) {
    CUpti_Profiler_Host_EvaluateToGpuValues_Params ev = {
        .structSize = CUpti_Profiler_Host_EvaluateToGpuValues_Params_STRUCT_SIZE, .pHostObject = h->obj,
        .pCounterDataImage = data, .counterDataImageSize = size, .rangeIndex = range, .ppMetricNames = h->metrics,
        .numMetrics = (size_t)h->n, .pMetricValues = values,
    };
    CUptiResult r = cuptiProfilerHostEvaluateToGpuValues(&ev);
    return r == CUPTI_SUCCESS ? 0 : cupti_err(e, "cuptiProfilerHostEvaluateToGpuValues", r);
}

#else
#ifdef EFFBENCH_EMU
static const char NO[] = "the emulated CUDA build (tests/emu) has no CUPTI";
#else
static const char NO[] = "this effbench was built without CUDA (no CUPTI)";
#endif
int cupti_host_usable(char *why, size_t len) { snprintf(why, len, "%s", NO); return 0; }
int cupti_host_open(CuptiHost **h, const char *chip, const uint8_t *avail, const char *const *metrics, int n, Err *e) {
    (void)chip; (void)avail; (void)metrics; (void)n;
    *h = NULL;
    return err_set(e, "%s", NO);
}
void cupti_host_close(CuptiHost *h) { (void)h; }
int cupti_host_config(CuptiHost *h, const uint8_t **image, size_t *size, size_t *passes, Err *e) {
    (void)h; (void)image; (void)size; (void)passes;
    return err_set(e, "%s", NO);
}
int cupti_host_describe(CuptiHost *h, const char *metric, char *out, size_t len, Err *e) {
    (void)h; (void)metric; (void)out; (void)len;
    return err_set(e, "%s", NO);
}
int cupti_host_evaluate(CuptiHost *h, const uint8_t *data, size_t size, size_t range, double *values, Err *e) {
    (void)h; (void)data; (void)size; (void)range; (void)values;
    return err_set(e, "%s", NO);
}
#endif
