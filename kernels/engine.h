/*
 * engine.h - one model on one backend with its KV cache: the interface the commands
 * (bench, run, logits, generate) step through, whichever backend runs the work.
 *
 * CPU: model_forward over a contiguous KVCache, float32 by default or BF16 / FP8 E4M3
 * (LoadOpts.kv_dtype, --kv-dtype; kernels/forward.c). CUDA refuses a non-f32 kv_dtype.
 * CUDA: the weights uploaded once (F32, or BF16), a paged cache of 64-position blocks
 * (float32 with F32 weights, BF16 with BF16 weights), the whole step queued on the GPU
 * and, for repeated decode shapes, replayed as a CUDA graph (kernels/cuda/forward_gpu.c).
 */
#ifndef EFFBENCH_ENGINE_H
#define EFFBENCH_ENGINE_H

#include "model.h"

typedef enum { BACKEND_CPU, BACKEND_CUDA } Backend;

typedef struct {
    Backend backend;
    int gpu_dtype;               /* CUDA weights: 0 = as stored (BF16 stays BF16, others F32), DT_F32, DT_BF16 */
    int no_graphs;               /* CUDA: never replay steps as graphs */
} EngineOpts;

typedef struct Engine Engine;

/* A cache for n_seq sequences of max_pos positions; steps of at most max_tokens tokens.
 * Returns -2 (with e) when the cache does not fit, -1 on other failures. */
int engine_open(Engine **g, Model *m, const EngineOpts *o, int n_seq, int max_pos, int max_tokens, Err *e);
/* A new, empty cache and step size for the same weights (the GPU keeps its upload);
 * -2 when it does not fit (the engine then has no cache until the next reserve). */
int engine_reserve(Engine *g, int n_seq, int max_pos, int max_tokens, Err *e);
Model *engine_model(const Engine *g);
void engine_close(Engine *g);
/* One step, as model_forward: logits (rows wanted, V) and/or next (greedy token of each
 * wanted row), either may be NULL; trace only on the CPU and, eagerly, on the GPU. */
int engine_step(Engine *g, int n, const int *tok, const int *seq, const int *pos, const unsigned char *want,
                float *logits, int *next, Trace *tr, Err *e);
/* Sets how many positions sequence s holds (rewinding a benchmark), and copies the
 * first len positions of sequence src into dst. */
int engine_set_len(Engine *g, int s, int len, Err *e);
int engine_copy_seq(Engine *g, int dst, int src, int len, Err *e);
/* Fills sequence s from its first `have` positions (a multiple of 64) up to len by
 * repeating them: a deep context for decode benchmarks without a prefill that long. */
int engine_repeat_context(Engine *g, int s, int have, int len, Err *e);
uint64_t engine_kv_bytes_per_token(const Engine *g);     /* from the allocation */
const char *engine_backend(const Engine *g);             /* "cpu" or "cuda" */
const char *engine_device(const Engine *g);              /* CPU model or GPU name */
const char *engine_dtype(const Engine *g);               /* the weights as the backend holds them */

/* ---- the CUDA engine (kernels/cuda/forward_gpu.c, or failing stubs in none.c) ------- */
typedef struct GpuEngine GpuEngine;
int gpu_open(GpuEngine **g, Model *m, const EngineOpts *o, int n_seq, int max_pos, int max_tokens, Err *e);
void gpu_close(GpuEngine *g);
int gpu_reserve(GpuEngine *g, int n_seq, int max_pos, int max_tokens, Err *e);
int gpu_step(GpuEngine *g, int n, const int *tok, const int *seq, const int *pos, const unsigned char *want,
             float *logits, int *next, Trace *tr, Err *e);
int gpu_set_len(GpuEngine *g, int s, int len, Err *e);
int gpu_copy_seq(GpuEngine *g, int dst, int src, int len, Err *e);
int gpu_repeat_context(GpuEngine *g, int s, int have, int len, Err *e);
uint64_t gpu_kv_bytes_per_token(const GpuEngine *g);
const char *gpu_device(const GpuEngine *g);
const char *gpu_dtype(const GpuEngine *g);

#endif
