/*
 * measure.h - timing one model on this machine: the machine's limits (STREAM triad,
 * read-only bandwidth, OpenBLAS SGEMM) and prefill / decode cells with their FLOPs
 * and bytes. Used by `effbench bench` and the suite runner.
 *
 * Timing: CLOCK_MONOTONIC; warm-up runs not timed; repetitions give median, min,
 * max and standard deviation; decode latencies are per step, percentiles by the
 * nearest-rank method (the value at rank ceil(p/100 * N) of the sorted steps).
 */
#ifndef EFFBENCH_MEASURE_H
#define EFFBENCH_MEASURE_H

#include "model.h"

typedef struct {
    double triad_gbs;            /* STREAM triad, 24 bytes per element, best of 5 */
    double read_gbs;             /* parallel sum, best of 5 */
    double sgemm_gflops;         /* OpenBLAS's own threads, this model's shapes, M = m_prefill */
    double peak_gflops;          /* the same at M = max(512, m_prefill): the compute roof */
    int m_prefill, m_peak;
} Limits;

void limits_measure(const Model *m, int m_prefill, int reps, size_t stream_mib, Limits *out);
/* keeps the better of each figure (noise on a shared machine only lowers them) */
void limits_best(Limits *a, const Limits *b);

typedef struct {
    char kind;                   /* 'p' prefill, 'g' decode */
    int p, b, d, n;              /* prefill length; batch, depth, decode steps */
    int reps;
    double med, min, max, sd;    /* seconds per step (a prefill is one step) */
    double p50, p90, p99;        /* decode: per-step latency, seconds */
    double flops, bytes;         /* per step */
    double tokens_per_s;         /* tokens / median step */
    uint64_t kv_bytes;           /* the cache allocated for the cell */
} Cell;

/* Flags checked between repetitions; a set flag aborts the cell with an error. */
extern volatile int measure_stop;

int measure_prefill(Model *m, int p, int reps, int warmup, Cell *c, Err *e);
/* b sequences, each after one real prefill of d tokens (copied), n greedy steps */
int measure_decode(Model *m, int b, int d, int n, int reps, int warmup, Cell *c, Err *e);

/* Roofline time of a cell: max(bytes / triad, FLOPs / roof), where the roof is the
 * SGEMM rate at the prefill length for prefill and at M >= 512 for decode. */
double cell_roofline_s(const Cell *c, const Limits *l, int *memory_bound);

/* FLOPs per token as the engine computes them (active experts, absorbed MLA) at ctx */
double model_flops_per_token(const Model *m, double ctx);
/* Bytes a decode step of b sequences at ctx reads (weights touched + KV cache) */
double model_bytes_per_step(const Model *m, uint64_t kv_bytes_per_token, int b, double ctx);

#endif
