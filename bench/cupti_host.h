/*
 * cupti_host.h - the CUPTI Profiler Host API: metric names, scheduling into replay
 * passes and evaluation of counter data. It runs on the CPU alone (a chip name such
 * as "GH100" stands for the GPU), so CI checks the metric lists without a GPU.
 */
#ifndef EFFBENCH_CUPTI_HOST_H
#define EFFBENCH_CUPTI_HOST_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>

/* The roofline set: time, DRAM bytes read and written, FP32 FFMA/FADD/FMUL thread
 * instructions and BF16-in FP32-out tensor math ops (2 replay passes on GH100). */
extern const char *const ROOFLINE_METRICS[];
extern const int N_ROOFLINE_METRICS;

typedef struct CuptiHost CuptiHost;
/* chip: e.g. "GH100"; avail: the counter-availability image of a live device, or NULL
 * (host only). Fails with the CUPTI error, or with the name of an unknown metric. */
int cupti_host_open(CuptiHost **h, const char *chip, const uint8_t *avail, const char *const *metrics, int n, Err *e);
void cupti_host_close(CuptiHost *h);
/* the config image that schedules the metrics, and the replay passes it takes */
int cupti_host_config(CuptiHost *h, const uint8_t **image, size_t *size, size_t *passes, Err *e);
/* one line per metric: "name: description (hw unit, dim unit)"; for --metrics help */
int cupti_host_describe(CuptiHost *h, const char *metric, char *out, size_t len, Err *e);
/* values (n) of range r of a decoded counter-data image */
int cupti_host_evaluate(CuptiHost *h, const uint8_t *data, size_t size, size_t range, double *values, Err *e);
/* Splits a comma-separated list into names, "roofline" standing for the set above,
 * each name once; the caller frees them with cupti_names_free. -1 on an empty name. */
int cupti_metric_names(const char *list, char ***names, int *n);
void cupti_names_free(char **names, int n);
/* 1 when the Host API can run in this build; else 0 with why: built without CUDA, or
 * built with AddressSanitizer (CUPTI loads libnvperf_host with RTLD_DEEPBIND, which
 * the sanitizer's runtime cannot take: the process would abort). */
int cupti_host_usable(char *why, size_t len);

#endif
