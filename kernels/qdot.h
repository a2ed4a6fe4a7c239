/*
 * qdot.h - products of weight rows in their stored type with float32 activations.
 *
 * Decode (batch 1 to QDOT_MAX_T tokens) reads each weight once per step, so its speed
 * is the speed at which weights stream from memory. These kernels read every stored
 * type directly: BF16 and F16 widened in registers (F16 by the F16C / AVX-512
 * conversion), F8_E4M3 with its 128x128 block scales, and the ggml block types Q8_0,
 * Q4_0, Q4_1, Q4_K, Q5_K and Q6_K decoded block by block in registers, never widened
 * to a float32 copy in memory. Activations stay float32: a product equals the exact
 * product of the decoded weights with the activations up to float32 summation order,
 * so quantized weights cost only what their own rounding costs (no second rounding of
 * the activations to 8 bits, as integer dot products would add).
 *
 * Each kernel has a plain C twin (decode a block with quant.c's decoder, then a scalar
 * dot) that tests/test_qdot.c compares it with. Which one runs is fixed when the file
 * is compiled: AVX-512F where the compiler targets it, else AVX2 + FMA + F16C, else
 * the plain C twin (qdot_isa() names it).
 */
#ifndef EFFBENCH_QDOT_H
#define EFFBENCH_QDOT_H

#include "common.h"

#define QDOT_MAX_T 8

/* acc[t] = sum_i w[i] * x[t*ldx + i] for t < T (T <= QDOT_MAX_T), where w is one row
 * of cols elements stored in type dt at row (F8_E4M3: srow holds the row's block
 * scales, one per 128 columns; NULL otherwise). Block types need cols to be a whole
 * number of blocks. */
void qdot_row(DType dt, const void *row, const float *srow, int64_t cols, const float *x, int64_t ldx, int T,
              float *acc);
/* acc[k] = rows[k] . x for four rows of one matrix and one activation row: the same
 * values as four qdot_row calls with T = 1, bit for bit, with x read once per four rows */
void qdot_rows4(DType dt, const void *const rows[4], const float *const srows[4], int64_t cols, const float *x,
                float acc[4]);
/* dst[0..cols) = the row decoded to float32 (prefill: rows widened for a GEMM) */
void qdot_widen(DType dt, const void *row, const float *srow, int64_t cols, float *dst);

/* The plain C twins: the same results up to float32 summation order. */
void qdot_row_ref(DType dt, const void *row, const float *srow, int64_t cols, const float *x, int64_t ldx, int T,
                  float *acc);
void qdot_widen_ref(DType dt, const void *row, const float *srow, int64_t cols, float *dst);

/* ---- 8-bit activations and integer dot products (qdot_int.c) ----------------------------
 * For the block types, a second way: the activations rounded to int8 and each weight
 * block's integer levels multiplied with them in integer dot products (AVX-512 VNNI), as
 * llama.cpp does, with llama.cpp's roundings: per block of 32 (dx = amax / 127, its
 * Q8_0) for Q8_0, Q4_0, Q4_1 and Q6_K; per block of 256 (dk = amax / 127, its Q8_K) for
 * Q4_K and Q5_K, whose 6-bit sub-block scales then multiply integer sums and a super-block
 * needs one float conversion. Costs the activations' rounding (at most dx/2 or dk/2 per
 * element; its KL divergence is measured in tests and the README); much less arithmetic
 * per weight than decoding to float. */
typedef struct {
    int T;
    int64_t cols;                /* a whole number of 32-blocks */
    /* per 32 (Q8_0, Q4_0, Q4_1, Q6_K; NULL for Q4_K and Q5_K) */
    int8_t *q;                   /* (T, cols) */
    float *dx, *sx;              /* (T, cols/32): scale, scale * sum(q) */
    float *sx16;                 /* (T, cols/16): scale * sum(q) per 16 */
    /* per 256 (Q4_K, Q5_K; NULL for the others) */
    int8_t *qk;                  /* (T, cols) */
    float *dk;                   /* (T, cols/256) */
    int32_t *bk;                 /* (T, cols/32): sum(qk) per 32 */
} QAct;
size_t qdot_act_bytes(int T, int64_t cols);
/* x (T rows of cols, stride ldx) rounded into buf (qdot_act_bytes) described by a, in
 * the form the products with weights of type dt read */
void qdot_act_quant(DType dt, const float *x, int64_t ldx, int T, int64_t cols, void *buf, QAct *a);
int qdot_int_type(DType dt);     /* 1: Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K */
/* acc[t] = row . activations t, for t < T (any T), the row in a qdot_int_type type */
void qdot_row_int(DType dt, const void *row, const QAct *a, int T, float *acc);
void qdot_row_int_ref(DType dt, const void *row, const QAct *a, int T, float *acc);   /* plain C twin */
/* out[r] = rows[r] . activations 0 (batch 1), four rows at once: each as qdot_row_int */
void qdot_rows4_int(DType dt, const void *const rows[4], const QAct *a, float *out);
const char *qdot_int_isa(void);  /* "avx512-vnni" or "c" */
/* Whether linear() rounds activations as llama.cpp does (block types in decode, T <= 6:
 * this way; BF16 in prefill: qgemm.c's): not by default (float32 activations: exact up
 * to summation order); `--products low` (or q8) or EFFBENCH_PRODUCTS=low (or q8) in the
 * environment turns it on. qdot_set_products: 1 on, 0 float32, -1 back to the default
 * (the environment's choice). */
int qdot_int8_products(void);
void qdot_set_products(int mode);

/* ---- BF16 prefill with BF16 activations (qgemm.c; --products low) --------------------------
 * y (T, nr) [ldy] = xb (T, cols) [ldxb] . W^T for BF16 rows W (nr, cols), in tiles of
 * 6 tokens x 4 rows multiplied in VDPBF16PS. xb: the activations rounded to BF16 by
 * qgemm_act_bf16 (T rows of ldxb >= cols elements, zero past cols). qgemm_ok(dt):
 * whether this build has the tile kernel for dt (AVX-512 BF16, BF16 weights); where it
 * has none qgemm_rows runs the plain C twin. */
int qgemm_ok(DType dt);
void qgemm_act_bf16(const float *x, int64_t ldx, int T, int64_t cols, uint16_t *xb, int64_t ldxb);
void qgemm_rows(const void *w, int64_t nr, int64_t cols, const uint16_t *xb, int64_t ldxb, int T, float *y,
                int64_t ldy);
/* the same over rows ldw elements apart (a KV cache's keys: attention's scores) */
void qgemm_rows_ld(const void *w, int64_t ldw, int64_t nr, int64_t cols, const uint16_t *xb, int64_t ldxb, int T,
                   float *y, int64_t ldy);
/* Attention's values in VDPBF16PS: o (group, dv) [ldo] += P (group, n) . V (n, dv), V
 * BF16 rows ldv elements apart (a cache's values, as stored), P rounded to BF16 (pb:
 * group rows of n elements, ldp apart). Two positions'
 * values are interleaved (VPUNPCKLWD/HWD) into the pairs one VDPBF16PS multiplies by
 * the two probabilities, up to 8 heads x 32 columns a pass. */
void attn_pv_bf16(const uint16_t *v, int64_t ldv, int n, int dv, const uint16_t *pb, int ldp, int group, float *o,
                  int ldo);
/* Decode attention in float32 (attn_dec.c), over rows of F32 or BF16 (widened exactly):
 * s (group, n) [lds] = scale Q K^T for queries q (group, dk) and keys k (n rows ldk
 * elements apart); o (group, dv) += P (group, n) [ldp] V for values v (n rows ldv
 * apart). The _ref twins sum in double. */
void attn_dec_scores(DType dt, const void *k, int64_t ldk, int n, int dk, const float *q, int group, float scale,
                     float *s, int lds);
void attn_dec_pv(DType dt, const void *v, int64_t ldv, int n, int dv, const float *p, int ldp, int group, float *o);
void attn_dec_scores_ref(DType dt, const void *k, int64_t ldk, int n, int dk, const float *q, int group, float scale,
                         float *s, int lds);
void attn_dec_pv_ref(DType dt, const void *v, int64_t ldv, int n, int dv, const float *p, int ldp, int group,
                     float *o);
/* the plain C twins (attn_pv_bf16_ref sums in double) */
void qgemm_act_bf16_ref(const float *x, int64_t ldx, int T, int64_t cols, uint16_t *xb, int64_t ldxb);
void qgemm_rows_ref(const void *w, int64_t nr, int64_t cols, const uint16_t *xb, int64_t ldxb, int T, float *y,
                    int64_t ldy);
void qgemm_rows_ld_ref(const void *w, int64_t ldw, int64_t nr, int64_t cols, const uint16_t *xb, int64_t ldxb, int T,
                       float *y, int64_t ldy);
void attn_pv_bf16_ref(const uint16_t *v, int64_t ldv, int n, int dv, const uint16_t *pb, int ldp, int group, float *o,
                      int ldo);

/* ---- BF16 and F16 prefill in panels (qgemm.c; --products low, T >= QGEMM_PANEL_MIN_T) ------
 * y (T, nr) [ldy] = W (nr, cols) . x^T for BF16 or F16 rows W, with the activations
 * rounded to BF16 and packed per 12 tokens by qgemm_pack_act (tokens [t0, t1) of x's T,
 * into xp of qgemm_act_packed_bytes(dt, T, cols); threads may pack disjoint ranges; for
 * F16 also rounded to int8 per 128 columns), and rows repacked 32 at a time into a panel
 * of qgemm_panel_bytes(dt, cols) (the caller's scratch, 64-byte aligned; F16 rows as
 * their BF16 roundings and int8 remainders, qgemm.c). qgemm_panel_ok: this build has the
 * kernel (AVX-512 BF16 and VNNI) and dt is BF16 or F16. The C twins read the same packed
 * activations; the packing's twin rounds with f32_to_bf16 and lrintf. */
#define QGEMM_PANEL_MIN_T 32
int qgemm_panel_ok(DType dt);
size_t qgemm_panel_bytes(DType dt, int64_t cols);
size_t qgemm_act_packed_bytes(DType dt, int T, int64_t cols);
void qgemm_pack_act(DType dt, const float *x, int64_t ldx, int t0, int t1, int T, int64_t cols, uint32_t *xp);
void qgemm_rows_panel(DType dt, const void *w, int64_t nr, int64_t cols, const uint32_t *xp, int T, float *y,
                      int64_t ldy, void *panel);
void qgemm_pack_act_ref(DType dt, const float *x, int64_t ldx, int t0, int t1, int T, int64_t cols, uint32_t *xp);
void qgemm_rows_panel_ref(DType dt, const void *w, int64_t nr, int64_t cols, const uint32_t *xp, int T, float *y,
                          int64_t ldy);

/* ---- block-type prefill in int8 tiles (qgemm_int.c; --products low) -------------------------
 * y (T, nr) [ldy] = W (nr, cols) . activations^T for W of a qgemm_int_ok type, with the
 * activations in the per-32 form (qdot_act_quant(DT_Q8_0, ...): every type, Q4_K and Q5_K
 * too, takes a scale per 32 here), T = a->T tokens. Rows are repacked, 32 at a time, into
 * a panel of qgemm_int_panel_bytes(cols) (the caller's scratch, 64-byte aligned) whose
 * 32-bit lanes are rows, then multiplied in VPDPBUSD tiles of 6 tokens x 32 rows.
 * qgemm_int_ok(dt): this build has the kernel (AVX-512 VNNI) and dt is Q8_0, Q4_0, Q4_1,
 * Q4_K, Q5_K or Q6_K. qgemm_int_rows_ref: the plain C twin (no panel). */
int qgemm_int_ok(DType dt);
size_t qgemm_int_panel_bytes(int64_t cols);
void qgemm_int_rows(DType dt, const void *w, int64_t nr, int64_t cols, const QAct *a, float *y, int64_t ldy,
                    void *panel);
void qgemm_int_rows_ref(DType dt, const void *w, int64_t nr, int64_t cols, const QAct *a, float *y, int64_t ldy);
/* one block's integer levels u (32 or 256, as qdot_int.c's table defines them) and, per
 * sub-block j of 32, a[j] and b[j] such that the sub-block's part of a product with
 * per-32 activations is  a[j] dx dot(u, q) + b[j] sx  (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K);
 * for Q6_K per sub-block of 16 (16 of each), with sx16 for sx */
void qdot_sub_levels(DType dt, const void *block, uint8_t *u, float *a, float *b);
/* Q4_K / Q5_K: a super-block's eight 6-bit sub-block scales and mins */
void qdot_k_scales(const void *block, uint8_t sc[8], uint8_t mn[8]);

/* Elements of n (whole blocks of a block type) that decode to NaN or Inf: those of
 * every block whose f16 scale (d, or d and m / dmin) is not finite. */
int64_t qdot_block_nonfinite(DType dt, const void *data, int64_t n);

/* "avx512", "avx2" or "c": the kernels this build runs */
const char *qdot_isa(void);

#endif
