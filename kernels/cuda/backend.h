/*
 * backend.h - the CUDA backend's C interface: no CUDA types, so C files include it.
 *
 * Built from kernels/cuda/{ops,gemm,attn,moe}.cu when nvcc is found (make says so and
 * defines EFFBENCH_CUDA=1); else kernels/cuda/none.c provides cuda_available() and
 * cuda_error(), which say why there is no GPU backend, and the GPU
 * engine entry points, which fail with that reason.
 *
 * Each op is a kernel, a launcher that owns the grid math, and the entry point below;
 * each has a CPU twin (named at the op) with the same parameters, and tests/test_cuda.c
 * holds the two to each other (skipped, and counted as skipped, without a usable GPU).
 * Pointers marked (device) are GPU memory from cuda_malloc. All work is queued on one
 * stream (cuda_stream_sync waits for it), so a whole step can be captured as a CUDA
 * graph. Functions return 0, or -1 with cuda_error() describing the failure.
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
/* this process's GPU: ordinal modulo the GPUs there are (0, or -1 when there is none);
 * and how many it sees (0 without CUDA). Both exist without the CUDA backend too. */
int cuda_set_device(int ordinal);
int cuda_device_count(void);
const char *cuda_error(void);               /* the last failure, one line */
int cuda_fail_msg(const char *msg);         /* records msg as the last failure; returns -1 */

#ifdef EFFBENCH_CUDA
int cuda_device_name(char *name, size_t len);   /* device 0's name */

void *cuda_malloc(size_t bytes);            /* NULL on failure */
void cuda_free(void *p);
void *cuda_host_alloc(size_t bytes);        /* pinned host memory, NULL on failure */
void cuda_host_free(void *p);
int cuda_to_device(void *dst, const void *src, size_t bytes);        /* waits */
int cuda_to_host(void *dst, const void *src, size_t bytes);          /* waits */
int cuda_to_device_async(void *dst, const void *src, size_t bytes);  /* queued; src pinned */
int cuda_memset(void *dst, int v, size_t bytes);                     /* queued */
int cuda_sync(void);                        /* waits for the stream */
size_t cuda_mem_free(void);                 /* free device memory, bytes */
void *cuda_stream_ptr(void);                /* the stream every op is queued on (a cudaStream_t) */
int cuda_stream_poll(void);                 /* 1: the stream's work is done, 0: not yet, -1: it failed */
int cuda_copy_bytes(void *dst, const void *src, size_t bytes);      /* device to device, queued */


/* ---- elementwise and row ops ------------------------------------------------------- */
/* out (T, n) [ldo] = x (T, n) [ldx] / sqrt(mean(x^2) + eps) * w (n).  Twin: rmsnorm */
int cuda_rmsnorm(float *out, int ldo, const float *x, int ldx, int T, int n, const float *w, float eps);
/* g[i] = silu(g[i]) * u[i], n elements.  Twin: swiglu */
int cuda_swiglu(float *g, const float *u, int64_t n);
/* RoPE in place on x (T, heads, stride) at dims [0, d) of each head, token t at
 * pos[t]; angle pos * inv_freq[i]; interleaved pairs or halves.
 * Twins: rope_interleaved, rope_half */
int cuda_rope(float *x, int T, int heads, int stride, int d, const int *pos, const float *inv_freq, float mscale,
              int interleaved);
/* out (T, D) = rows tok[t] of table (V, D); table F32 or BF16.  Twin: mat_rows_f32 */
int cuda_embed(float *out, const void *table, int bf16, const int *tok, int T, int D);
/* out[t] = argmax of x[t] (T, V), lowest index on ties.  Twin: a plain loop */
int cuda_argmax(int *out, const float *x, int T, int V);
/* x[i] += y[i], n elements.  Twin: a plain loop */
int cuda_add(float *x, const float *y, int64_t n);
/* row r of dst (rows, n) = row idx[r] / div of src [lds].  Twin: a memcpy loop */
int cuda_gather_rows(float *dst, const float *src, int lds, const int *idx, int div, int rows, int n);
/* dst (rows, width) [ldd] = src (rows, width) [lds], floats */
int cuda_copy2d(float *dst, int ldd, const float *src, int lds, int rows, int width);

/* ---- matrix products (cuBLAS; BF16 or F32 in, FP32 accumulate) ---------------------- */
/* y (T, N) [ldy] = x (T, K) [ldx] . W (N, K)^T (+ bias (N)); W F32 or BF16 (then x is
 * rounded to BF16 first, as the tensor cores take it).  Twin: linear */
int cuda_gemm_reserve(size_t elements);     /* the widest T*K before graph capture */
int cuda_linear(float *y, int ldy, const float *x, int ldx, int T, const void *W, int bf16, int N, int K, const float *bias);
/* Strided batched F32 products, batch b: y_b (T, N) [ldy] = x_b (T, K) [ldx] . op(W_b),
 * op(W) = W (K, N) [ldw] when transW = 0, W^T with W (N, K) [ldw] when 1; the b-th
 * operands start at x + b*sx, W + b*sw, y + b*sy.  Twin: matmul_nn / linear per batch */
int cuda_gemm_batched(float *y, int ldy, int64_t sy, const float *x, int ldx, int64_t sx, const float *W, int ldw,
                      int64_t sw, int transW, int T, int N, int K, int batch);
/* Grouped products of the MoE experts: rows [off[e], off[e+1]) of x (rows, K) times
 * W[e] (N, K)^T into the same rows of y (rows, N); W: (device) array of E (device)
 * pointers; off: (device) E+1 offsets; max_rows bounds off[E].  Twin: linear per expert */
int cuda_grouped_linear(float *y, const float *x, const void *const *W, int bf16, const int *off, int E, int max_rows,
                        int N, int K);

/* The device's measured limits: a 2 GiB read (GB/s, best of 5) and an 8192^3 cuBLAS
 * product (TFLOP/s, BF16 or F32 in, FP32 accumulate, best of 3). With calibrate, it
 * then calls calibrate(gemm, gemm_arg, ctx) once, where gemm(gemm_arg) queues one more
 * 8192^3 product in BF16 (whatever bf16 says; 0 or -1) on the backend's stream: a
 * profiler counts its tensor ops against the 2 x 8192^3 FLOPs it is known to take.
 * calibrate's failure is the call's (-1, cuda_error() or the profiler's own report). */
#define CUDA_CALIBRATION_M 8192
typedef int (*CudaWork)(void *arg);
typedef int (*CudaCalibrate)(CudaWork gemm, void *gemm_arg, void *ctx);
int cuda_measure_limits(double *read_gbs, double *gemm_tflops, int bf16, CudaCalibrate calibrate, void *ctx);

/* ---- attention over a paged cache ------------------------------------------------- */
/* The cache of one layer is a pool of blocks of CUDA_KV_BLOCK positions, each position
 * a row of `row` elements (float32, or BF16 when bf16); sequence s, position p lives in
 * block table[s * max_blocks + p / CUDA_KV_BLOCK]. Heads and causality as AttnArgs
 * (kernels/ops.h): token t attends to positions 0..pos[t] of its sequence. Decode
 * splits the context across blocks (split-K) and combines them. Twin: attention */
#define CUDA_KV_BLOCK 64
typedef struct {
    int T;
    const int *seq, *pos;                 /* (device) (T) */
    const float *q; int ldq;              /* (device) (T, H*dk) */
    const void *cache; int bf16, row;     /* (device) this layer's pool */
    const int *table; int max_blocks;     /* (device) (n_seq, max_blocks) */
    int k_off, k_head_stride, v_off, v_head_stride;
    int dk, dv, H, Hkv;
    float scale;
    float *out; int ldo;                  /* (device) (T, H*dv) */
    int max_len;                          /* the longest context in the step (sets the split) */
    float *work; size_t work_floats;      /* (device) split-K partials; cuda_attention_work() */
} CudaAttn;
int cuda_attention_splits(int T, int H, int Hkv, int max_len);   /* the split-K the step will use */
size_t cuda_attention_work(int T, int H, int dv, int max_len);   /* floats of work needed */
int cuda_attention(const CudaAttn *a);
/* Writes rows src (T, width) [lds] to offset `off` of each token's cache row.
 * Twin: memcpy into the contiguous cache */
int cuda_kv_write(void *cache, int bf16, int row, const int *table, int max_blocks, const float *src, int lds,
                  int width, int off, const int *seq, const int *pos, int T);

/* Copies whole blocks of a pool of n_layers layers (layer_bytes apart), pairs (device)
 * holding nb (source, destination) block numbers.  Twin: memcpy per block */
int cuda_copy_blocks(void *pool, size_t layer_bytes, int n_layers, size_t block_bytes, const int *pairs, int nb);

/* ---- MoE --------------------------------------------------------------------------- */
/* Routing as kernels/route.h (one function, compiled for both sides): logits (T, E)
 * -> experts (T, K) and weights (T, K).  Twin: moe_route */
typedef struct {
    int E, K, score_sigmoid, n_group, topk_group, method, renorm, scale_after_renorm;
    float routed_scale;
} CudaRoute;
int cuda_moe_route_reserve(int T, int E, int n_group);   /* before graph capture */
int cuda_moe_route(int *ex, float *wt, const float *logits, const float *bias, int T, const CudaRoute *r);
/* Stable counting sort of the T*K (token, slot) pairs by expert: off (E+1), order
 * (T*K) = slot indices grouped by expert, where[i] = position of slot i in order.
 * Twin: moe_permute */
int cuda_moe_permute(int *off, int *order, int *where, const int *ex, int TK, int E);
/* out (T, D) = sum_k wt[t,k] * y[where[t*K+k]] (+ add (T, D) when not NULL).
 * Twin: moe_combine */
int cuda_moe_combine(float *out, const float *y, const float *wt, const int *where, const float *add, int T, int K, int D);

/* ---- graphs --------------------------------------------------------------------- */
/* Capture the stream's work into a graph (cuda_graph_end returns it) and replay it. */
int cuda_graph_begin(void);
int cuda_graph_end(void **graph_exec);
int cuda_graph_launch(void *graph_exec);
void cuda_graph_free(void *graph_exec);
#endif /* EFFBENCH_CUDA */

/* ---- op marks for profiling -------------------------------------------------------- */
/* The GPU forward pass marks each op it queues; a profiler installs a hook to label the
 * kernels (CUPTI external correlation) or to open a range (range profiler). */
typedef enum {
    OP_EMBED, OP_NORM, OP_Q_PROJ, OP_KV_PROJ, OP_ROPE, OP_KV_WRITE, OP_ABSORB, OP_ATTENTION, OP_ATTN_OUT,
    OP_O_PROJ, OP_RESIDUAL, OP_ROUTER, OP_ROUTE, OP_PERMUTE, OP_EXPERTS, OP_COMBINE, OP_SHARED_EXPERT, OP_MLP,
    OP_LM_HEAD, OP_SAMPLE, OP_COUNT
} CudaOp;
const char *cuda_op_name(int op);
typedef void (*CudaOpHook)(int op, int begin, void *ctx);
void cuda_set_op_hook(CudaOpHook hook, void *ctx);
void cuda_op_mark(int op, int begin);

#ifdef __cplusplus
}
#endif

#endif
