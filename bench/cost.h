/*
 * cost.h - GPU profiles (suites/hardware.json) and the training-cost estimator.
 *
 * Compute method: train_flops from the analytic model (analytic_train_flops).
 * Hardware method (as Epoch AI does): train_flops = GPU-hours x 3600 x peak x MFU.
 * Given an MFU it yields GPU-hours; given reported GPU-hours it yields the implied
 * MFU. Cost = GPU-hours x price per GPU-hour; days = GPU-hours / GPUs / 24.
 */
#ifndef EFFBENCH_COST_H
#define EFFBENCH_COST_H

#include "analytic.h"

typedef struct {
    char name[64];
    double bf16_tflops, fp8_tflops;  /* dense peaks; fp8 0 = none */
    double hbm_gbs, memory_gb, usd_per_hour;
    char source[512];
} Gpu;

/* Reads a hardware file ({"gpus": [...]}); *gpus is allocated (caller frees). */
int hw_load(const char *path, Gpu **gpus, int *n, Err *e);
/* Case-insensitive match of name, ignoring spaces; NULL when none. */
const Gpu *hw_find(const Gpu *g, int n, const char *name);

typedef struct {
    double tokens, seq_len;
    int fp8;                         /* use the FP8 peak */
    double mfu;                      /* given, or 0 */
    double gpu_hours;                /* given, or 0 */
    int gpus;                        /* for days; 0 = not given */
    double price;                    /* USD per GPU-hour; < 0 = the profile's */
} CostIn;

typedef struct {
    double train_flops, peak_flops, gpu_hours, mfu, cost_usd, days, price;
} CostOut;

int cost_estimate(const Analytic *a, const Gpu *g, const CostIn *in, CostOut *out, Err *e);

#endif
