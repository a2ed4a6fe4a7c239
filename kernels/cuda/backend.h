/*
 * backend.h - the CUDA backend's C interface: no CUDA types, so C files include it.
 *
 * Built from kernels/cuda/ops.cu when nvcc is found (make says so), else from
 * kernels/cuda/none.c, whose cuda_available() says why there is no GPU backend.
 * Each op is a kernel, a launcher that owns the grid math, and the entry point below;
 * each has a CPU twin in ops.c with the same parameters, and tests/test_cuda.c holds
 * the two to each other (skipped, and counted as skipped, without a usable GPU).
 * Pointers marked (device) are GPU memory from cuda_malloc. Functions return 0, or -1
 * with cuda_error() describing the failure.
 *
 * Status: device probe, memory, and the ops RMSNorm, SwiGLU, RoPE (interleaved and
 * rotate-half), embedding rows (F32/BF16) and greedy argmax. The forward pass on the
 * GPU, cuBLAS products, MLA/GQA attention, MoE and CUPTI profiling are not built yet.
 */
#ifndef EFFBENCH_CUDA_BACKEND_H
#define EFFBENCH_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if a CUDA device can run our kernels; else 0 with why (one line), e.g.
 * "no usable CUDA device: cudaErrorInsufficientDriver". Safe without a driver. */
int cuda_available(char *why, size_t len);
int cuda_built(void);                       /* 1 when built with nvcc */
const char *cuda_error(void);               /* the last failure, one line */

void *cuda_malloc(size_t bytes);            /* NULL on failure */
void cuda_free(void *p);
int cuda_to_device(void *dst, const void *src, size_t bytes);
int cuda_to_host(void *dst, const void *src, size_t bytes);
int cuda_sync(void);

/* out (T, n) = x (T, n) / sqrt(mean(x^2) + eps) * w (n); all (device) */
int cuda_rmsnorm(float *out, const float *x, const float *w, int T, int n, float eps);
/* g[i] = silu(g[i]) * u[i], n elements (device) */
int cuda_swiglu(float *g, const float *u, int64_t n);
/* RoPE in place on x (T, heads, stride) at dims [0, d) of each head, token t at
 * pos[t]; angle pos * inv_freq[i] (device arrays); interleaved pairs or halves */
int cuda_rope(float *x, int T, int heads, int stride, int d, const int *pos, const float *inv_freq, float mscale,
              int interleaved);
/* out (T, D) = rows tok[t] of table (V, D); dtype 0 = F32, 1 = BF16 (device) */
int cuda_embed(float *out, const void *table, int bf16, const int *tok, int T, int D);
/* out[t] = argmax of x[t] (T, V), lowest index on ties (device) */
int cuda_argmax(int *out, const float *x, int T, int V);

#ifdef __cplusplus
}
#endif

#endif
