/*
 * profile.h - CUPTI profiling of the GPU cells of `bench` and `run` (--profile DIR,
 * --metrics LIST):
 *
 *   kernels.csv   every kernel of the first timed repetition of each cell: demangled
 *                 name, the engine op that queued it (CUPTI external correlation),
 *                 grid, block, registers, shared memory, stream, start and duration
 *   ops.csv       per cell and op, over all timed repetitions: kernels, GPU time per
 *                 repetition, share of kernel time and of the step's wall time; memcpy
 *                 and memset as their own rows
 *   overhead.csv  per cell: the median step unprofiled and traced, the difference, and
 *                 CUPTI's own overhead records by kind
 *   metrics.csv   (--metrics) per cell and op, from the range profiler over one step
 *                 (user ranges, user replay): the counters asked for and, for the
 *                 roofline set, DRAM bytes, FLOPs, achieved GB/s and TFLOP/s against
 *                 the device's measured limits; kernel_roofline.png draws them.
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

#endif
