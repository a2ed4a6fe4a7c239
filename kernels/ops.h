/*
 * ops.h - the CPU operations of the engine.
 *
 * Dimension letters used across kernels/: T tokens in a step, D hidden size, H query
 * heads, Hkv key/value heads, Dc kv_lora_rank, Dn qk_nope_head_dim, Dr
 * qk_rope_head_dim, Dv v_head_dim, E routed experts, K experts per token, V vocab.
 *
 * Weights are read in their stored format (F32, BF16, F16, F8_E4M3 with 128x128
 * block scales, the ggml block types Q8_0 to Q6_K) and decoded to float32 on the fly
 * (qdot.h); all arithmetic is float32, except with --products low: block types' decode
 * products (8-bit activations, integer dot products) and BF16 prefill products (BF16
 * activations, VDPBF16PS).
 */
#ifndef EFFBENCH_OPS_H
#define EFFBENCH_OPS_H

#include "common.h"

#include <math.h>

#include "route.h"

/* A row-major weight matrix as stored in the checkpoint (Hugging Face: [out, in]). */
typedef struct {
    DType dt;
    const void *data;        /* (rows, cols) */
    const float *scale;      /* F8_E4M3 only: (ceil(rows/128), ceil(cols/128)) weight_scale_inv */
    int64_t rows, cols;
} Mat;

#define F8_BLOCK 128

/* Widens rows [r0, r0+n) of w to float32: dst (n, cols). */
void mat_rows_f32(const Mat *w, int64_t r0, int64_t n, float *dst);

/* Scratch floats linear() needs for a weight of `cols` columns. */
size_t linear_scratch_floats(int64_t cols);

/* y (T, nr) [row stride ldy] = x (T, cols) [ldx] . W[r0:r0+nr, :]^T (+ bias[0:nr]).
 * Rows are split among the OpenMP threads; each calls single-threaded BLAS on its
 * slice. F32 weights go straight to BLAS; others are decoded row by row in registers
 * for small T (decode: each weight byte is read once; block types with 8-bit
 * activations when qdot_int8_products()) or in blocks of rows handed to BLAS for large
 * T (prefill; BF16 with BF16 activations in qgemm.c's tiles when qdot_int8_products()).
 * scratch: linear_scratch_floats(W->cols) floats (it also holds the 8-bit or BF16
 * activations; NULL keeps float32 activations). */
void linear(float *y, int ldy, const float *x, int ldx, int T, const Mat *W,
            int64_t r0, int64_t nr, const float *bias, float *scratch);
/* ys[i] = x . Ws[i]^T (+ biases[i]) for n weights of one input: as n linear() calls,
 * except that in decode (the row path: few tokens, one stored type, the same columns)
 * the activations are rounded once and one parallel region shares the rows of all n
 * among the threads. */
void linear_group(int n, float *const ys[], const int ldys[], const float *x, int ldx, int T, const Mat *const Ws[],
                  const float *const biases[], float *scratch);
/* The same with an input per weight, xs[i] (a run of equal pointers is rounded once):
 * a MoE token's experts' down products, each on its own hidden row. biases may be NULL.
 * Groups of more than LINEAR_GROUP_MAX weights go as separate linear() calls. */
#define LINEAR_GROUP_MAX 64
void linear_group_xs(int n, float *const ys[], const int ldys[], const float *const xs[], int ldx, int T,
                     const Mat *const Ws[], const float *const biases[], float *scratch);

/* Per-head products, H of them: y + h*y_head (T, nr) [ldy] = (x + h*x_head) (T, cols)
 * [ldx] . W[h*w_head + w_off : +nr, :]^T (MLA's absorbed products, each head its own
 * input and its own rows of one weight), grouped as linear_group_xs groups its weights
 * (more than 256 heads: one linear() per head). */
void linear_heads(int H, float *y, int ldy, int64_t y_head, const float *x, int ldx, int64_t x_head, int T,
                  const Mat *W, int64_t w_head, int64_t w_off, int64_t nr, float *scratch);

/* out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, for T rows of n (strides ldo, ldx). */
void rmsnorm(float *out, int ldo, const float *x, int ldx, int T, int n, const float *w, float eps);

/* RoPE on one vector of d dims at position pos, angle pos * inv_freq[i]:
 * interleaved pairs (x[2i], x[2i+1]) (DeepSeek) or halves (x[i], x[i+d/2]) (HF llama). */
void rope_interleaved(float *x, int d, int pos, const float *inv_freq, float mscale);
void rope_half(float *x, int d, int pos, const float *inv_freq, float mscale);
/* The same on nh vectors ld floats apart at one position: halves (rope_half) or not
 * (rope_interleaved), the angles computed once for all of them. */
void rope_heads(int halves, float *x, int nh, int64_t ld, int d, int pos, const float *inv_freq, float mscale);

/* y (T, N) [ldy] = x (T, K) [ldx] . w (K, N), float32 w (the absorbed MLA products). */
void matmul_nn(float *y, int ldy, const float *x, int ldx, int T, const float *w, int K, int N);

/* s[j] = exp(s[j] - mx) for j < n, and their sum: attention's softmax numerators
 * (vectorized where AVX-512 is built in: within 2 ulp of expf) */
float exp_sub_sum(float *s, int n, float mx);

/* Causal attention of T query tokens against a per-sequence cache.
 * Token t of sequence seq[t] at position pos[t] attends to cache rows 0..pos[t] of
 * its sequence. Cache row of sequence s, position p: element s*seq_stride + p*row.
 * Key of KV head g: k_off + g*k_head_stride (dk elements); value: v_off + g*v_head_stride
 * (dv elements). Query head h uses KV head h / (H/Hkv).
 * The cache is float32 (dt DT_F32: `cache`, read in place by the GEMMs) or BF16 /
 * F8_E4M3 codes (`codes`; F8_E4M3 with one float32 scale per 128 elements of a row,
 * the scales of row (s, p) at scales + s*sc_seq_stride + p*sc_row). Codes are decoded
 * (qdot_widen) block by block into per-thread float32 scratch and merged with a running
 * maximum and sum (online softmax), so the scratch does not grow with the context; a
 * value span inside the key span (MLA's latent row) is decoded once. */
typedef struct {
    int T;
    const int *seq, *pos;        /* (T) */
    const float *q; int ldq;     /* (T, H*dk): head h at q + t*ldq + h*dk */
    const float *cache;          /* DT_F32 */
    int64_t seq_stride; int row;
    int k_off, k_head_stride, v_off, v_head_stride;
    int dk, dv, H, Hkv;
    float scale;
    float *out; int ldo;         /* (T, H*dv) */
    int max_pos;                 /* positions the cache holds: bounds a score row */
    float *work;                 /* attention_work_floats(T, H, Hkv, dk, dv, max_pos, dt) floats, or NULL:
                                    attention then allocates and frees its own (one-off callers) */
    DType dt;                    /* cache elements: DT_F32 (0), DT_BF16, DT_F8_E4M3 */
    const void *codes;           /* DT_BF16, DT_F8_E4M3: the cache's codes, strides as above */
    const float *scales;         /* DT_F8_E4M3: block scales */
    int64_t sc_seq_stride; int sc_row;
} AttnArgs;
void attention(const AttnArgs *a);
/* Positions decoded per block from a BF16 or FP8 cache (per thread: ATTN_KV_BLOCK rows of
 * dk + dv floats, and the block's scores). */
#define ATTN_KV_BLOCK 256
/* Scratch floats attention() needs: split-K partials (outputs, maxima, sums) of every
 * work item and a score row of max_pos+1 per query head of a group, per OpenMP thread
 * (omp_get_max_threads() now: size it for the step, not once for all time); for a BF16
 * or FP8 cache also the decoded rows of a block per thread. */
size_t attention_work_floats(int T, int H, int Hkv, int dk, int dv, int max_pos, DType dt);

/* x[i] += y[i], i < n (the residual adds), over the threads when long. */
void add_inplace(float *x, const float *y, int64_t n);

/* SwiGLU in place: g[i] = silu(g[i]) * u[i], n elements. */
void swiglu(float *g, const float *u, int64_t n);

/* MoE: routing of T tokens (logits (T, E), overwritten with scores) into ex, wt (T, K).
 * moe_route_with_scratch takes moe_route_scratch_floats(p) floats from the caller and
 * allocates nothing; moe_route allocates them itself (one-off callers, tests). */
void moe_route(const RouteParams *p, const float *bias, float *logits, int T, int *ex, float *wt);
void moe_route_with_scratch(const RouteParams *p, const float *bias, float *logits, int T, int *ex, float *wt,
                            float *scratch);
size_t moe_route_scratch_floats(const RouteParams *p);
/* Stable counting sort of TK (token, slot) pairs by expert ex[i]: off (E+1) row offsets
 * per expert, order (TK) the slots grouped by expert, where[i] the row of slot i.
 * Needs no scratch. */
void moe_permute(int *off, int *order, int *where, const int *ex, int TK, int E);
/* out (T, D) = sum_k wt[t*K+k] * y[where[t*K+k]] (+ add (T, D) when not NULL) */
void moe_combine(float *out, const float *y, const float *wt, const int *where, const float *add, int T, int K, int D);

/* Counts non-finite values in n elements of a weight in its stored dtype. */
int64_t count_nonfinite(DType dt, const void *data, int64_t n);

#endif
