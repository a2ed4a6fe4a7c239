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

#include "engine.h"

typedef struct {
    double triad_gbs;            /* STREAM triad, 24 bytes per element, best of 5 */
    double read_gbs;             /* parallel sum, best of 5 */
    double sgemm_gflops;         /* OpenBLAS's own threads, this model's shapes, M = m_prefill */
    double peak_gflops;          /* the same at M = max(512, m_prefill): the compute roof */
    int m_prefill, m_peak;
} Limits;

void limits_measure(const Model *m, int m_prefill, int reps, size_t stream_mib, Limits *out);
/* The limits of the backend eo names: the CPU's as above; a GPU's read bandwidth and
 * cuBLAS 8192^3 rate (in the same fields: triad = read = GPU read GB/s, SGEMM = peak
 * = the GEMM rate in the weights' dtype, M = 8192). */
int limits_measure_for(const Model *m, const EngineOpts *eo, int m_prefill, int reps, size_t stream_mib, Limits *out,
                       Err *e);
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
    char backend[8], device[256], dtype[16];   /* what ran it */
    int has_ops;                 /* CPU: the step's time and bytes by op kind (Model.ops) */
    double op_sec[OPK_COUNT], op_bytes[OPK_COUNT], op_flops[OPK_COUNT];   /* per step, over the timed steps */
    /* split over ranks: one more run of the timed step (CellStep) with its collectives
     * counted: bytes sent by all ranks together, by kind, measured and as layout_predict
     * expects them for uniform routing; rank 0's seconds in collectives and in the step */
    int ranks;
    double comm_sent[CK_COUNT], comm_pred[CK_COUNT], comm_sec, step_sec;
    double *comm_detail;         /* (ranks, CK_COUNT, 5): each rank's bytes sent, received, predicted
                                    sent and received (uniform routing), seconds in the calls;
                                    allocated by measure_comm, freed by the caller (free) */
} Cell;

/* Flags checked between repetitions; a set flag aborts the cell with an error. */
extern volatile int measure_stop;

/* Cells on an open engine (its cache is reserved anew for each cell). Return -2 when
 * the cell's cache does not fit (a skipped cell), -1 on other errors. */
int measure_prefill(Engine *g, int p, int reps, int warmup, Cell *c, Err *e);
/* b sequences, each after one real prefill of d tokens (copied), n greedy steps */
int measure_decode(Engine *g, int b, int d, int n, int reps, int warmup, Cell *c, Err *e);

/* The step a cell times, set up to run again on its own: a prefill cell's whole
 * prompt with only the last position's logits; a decode cell's first greedy step of
 * every sequence at depth d (its context prefilled and copied as measure_decode does).
 * measure_prefill and measure_decode time exactly this step (the decode's first), so a
 * profiler that replays it (the range profiler) sees the timed work, no more. */
typedef struct {
    int n;                       /* tokens of the step */
    int b, d;                    /* sequences, and the length each is reset to before the step */
    int *tok, *seq, *pos;        /* (n) the step's inputs, never changed by running it */
    int *next;                   /* (n) its greedy tokens */
    unsigned char *want;         /* (n) the rows whose logits it computes; NULL: every row */
} CellStep;
/* Reserves the cell's cache (c: kind, p or b, d, n) and builds the step; -2 when the
 * cache does not fit. cell_step_close frees it (also after a failed open). */
int cell_step_open(Engine *g, const Cell *c, CellStep *s, Err *e);
int cell_step_reset(Engine *g, const CellStep *s, Err *e);     /* every sequence back to length d */
int cell_step_run(Engine *g, CellStep *s, Err *e);             /* one run of the step (after a reset) */
void cell_step_close(CellStep *s);

/* Called around each timed repetition (profilers); NULL by default. */
extern void (*measure_hook)(int begin, void *ctx);
extern void *measure_hook_ctx;

/* Roofline time of a cell: max(bytes / triad, FLOPs / roof), where the roof is the
 * SGEMM rate at the prefill length for prefill and at M >= 512 for decode. */
double cell_roofline_s(const Cell *c, const Limits *l, int *memory_bound);

/* Split over ranks (m->comm): runs the cell's step once more with its collectives
 * counted into c's comm fields. 0, or -1 with e. */
int measure_comm(Engine *g, Cell *c, Err *e);

/* FLOPs per token as the engine computes them (active experts, absorbed MLA) at ctx */
double model_flops_per_token(const Model *m, double ctx);
/* Bytes a decode step of b sequences at ctx reads (weights touched + KV cache) */
double model_bytes_per_step(const Model *m, uint64_t kv_bytes_per_token, int b, double ctx);

#endif
