/*
 * profile.h - CUPTI profiling of the GPU cells of `bench` and `run` (--profile DIR,
 * --metrics LIST):
 *
 *   kernels.csv   every kernel of the first timed repetition of each cell: demangled
 *                 name, the engine op that queued it (CUPTI external correlation),
 *                 grid, block, registers, shared memory, stream, start and duration
 *   ops.csv       per cell and op, over all timed repetitions: kernels, GPU time per
 *                 repetition (kernels, and the copies and memsets an op queued itself),
 *                 share of GPU time and of the step's wall time; copies and memsets
 *                 outside any op as their own rows; the activity records CUPTI dropped
 *   overhead.csv  per cell: the median step with tracing off and traced, the
 *                 difference, CUPTI's own overhead records by kind, and the activity
 *                 records dropped (then the cell's figures are incomplete)
 *   metrics.csv   (--metrics) per cell and op, from the range profiler over the cell's
 *                 timed step (CellStep, measure.h: user ranges, user replay): the
 *                 counters asked for and, for the roofline set, DRAM bytes, FLOPs, and
 *                 achieved GB/s and TFLOP/s on the op's kernel time from the Activity
 *                 API (the range's own duration stays a column), against the device's
 *                 limits measured in the cells' dtype; kernel_roofline.png draws them.
 *
 * Tensor FLOPs: the counter sm__ops_path_tensor_src_bf16_dst_fp32 is calibrated once,
 * on a profiled 8192^3 BF16 cuBLAS product (2 x 8192^3 FLOPs); the FLOPs per counted
 * op (1 or 2) go in metrics.csv, and FLOP figures are left empty when it is neither.
 *
 * Timings in results.csv stay those of the untraced run of each cell.
 */
#ifndef EFFBENCH_PROFILE_H
#define EFFBENCH_PROFILE_H

#include "measure.h"

typedef struct Profiler Profiler;

/* Starts Activity tracing into dir (created); metrics: NULL, "roofline" or names. */
int profiler_open(Profiler **p, const char *dir, const char *metrics, Err *e);
/* Names the next cell. No-op when p is NULL. */
void profiler_cell(Profiler *p, const char *name);
/* After a traced measure_*: collects its records, measures the same cell untraced
 * (replacing *c, so results keep untraced timings), and, with metrics, profiles one
 * step of it. 0 when p is NULL. */
int profiler_cell_done(Profiler *p, Cell *c, Engine *g, Err *e);
/* Writes what remains and stops tracing. */
int profiler_close(Profiler *p, Err *e);
/* Stops tracing and writes nothing (a run that failed before its first cell). */
void profiler_discard(Profiler *p);

/* ---- the arithmetic of metrics.csv (pure; tested without a GPU) ---------------------- */
/* FLOPs per count of the tensor counter, from the calibration product: counted ops of
 * a GEMM known to take flops FLOPs. *measured = flops / counted. Returns 1 or 2 when
 * the measured factor is within 10% of it (the counter counts FLOPs, or multiply-adds),
 * else 0 with why: FLOP figures are then refused. */
int profile_tensor_factor(double counted, double flops, double *measured, char *why, size_t len);

/* One op's figures in metrics.csv. Inputs: time_ns, its kernel time per step (Activity
 * API; <= 0 unknown); counter sums (a negative one was not measured); factor, from
 * profile_tensor_factor (0: refused); the roofs (0: unknown). Outputs are NAN where not
 * derivable: rates without a time, FLOP figures without a factor when tensor ops were
 * counted, ratios without their roof. */
typedef struct {
    double time_ns;
    double dram_read, dram_write, ffma, fadd, fmul, tensor_ops;
    int factor;
    double gbs, tflops, ds_gbs, ds_tflops;
} OpCounters;
typedef struct {
    double dram_bytes, fp32_flops, tensor_flops, flops, gbs, tflops, of_read_bw, of_gemm_peak, of_ds_hbm, of_ds_bf16;
} OpRates;
void profile_op_rates(const OpCounters *in, OpRates *out);

#endif
