/*
 * layout.h - how a model is split over N ranks, and the bytes that split sends.
 *
 * Two degrees, each 1 or N (every rank in one group):
 *   --tp N  tensor parallel. Attention: rank r holds query heads [r H/N, (r+1) H/N):
 *           their rows of q_proj / q_b_proj and kv_b_proj (MLA) or of q/k/v_proj with
 *           the KV heads those query heads read (dense GQA: a KV head is held by every
 *           rank whose query heads use it), and the matching columns of o_proj; the
 *           partial outputs are summed by an all-reduce. MLA's down-projections
 *           (q_a_proj, kv_a_proj_with_mqa) and norms are replicated, and so is the
 *           latent KV cache: every head reads the whole latent, so the latent cannot be
 *           split by heads (DeepSeek runs attention data-parallel for this reason).
 *           Dense FFN (and, with --ep 1, every expert and the shared experts): gate and
 *           up by rows, down by columns, then an all-reduce.
 *   --ep N  expert parallel (MoE): rank r holds routed experts [r E/N, (r+1) E/N); the
 *           gate (router) and shared experts are replicated. Each rank routes all tokens
 *           (so every rank knows every count without exchanging them), sends the rows of
 *           its own tokens (an N-th of the step, in token order) to their experts'
 *           ranks (all-to-all, variable counts), runs its experts, sends the outputs
 *           back (all-to-all), combines its tokens with their weights and the shared
 *           experts, and all ranks all-gather the combined rows.
 * With N > 1 the vocabulary is always split: rank r computes logits
 * [r V/N, (r+1) V/N) of lm_head and an all-gather assembles them. The embedding is
 * replicated (a lookup reads only the rows of the step's tokens).
 * Defaults: a MoE model gets --ep N, and --tp N when the heads and the dense FFN
 * divide by N (else --tp 1); a dense model gets --tp N.
 */
#ifndef EFFBENCH_LAYOUT_H
#define EFFBENCH_LAYOUT_H

#include "comm.h"
#include "config.h"

/* This rank's share (n = 1: the whole model). */
typedef struct {
    int rank, n;                 /* this rank of n */
    int tp, ep;                  /* 1 or n */
    int h0, nh;                  /* query heads [h0, h0+nh) */
    int g0, ng;                  /* dense KV heads held [g0, g0+ng) */
    int e0, ne;                  /* routed experts held [e0, e0+ne) */
    int i0, ni;                  /* dense FFN intermediate columns held */
    int m0, nm;                  /* each expert's intermediate columns held (all with --ep) */
    int s0, ns;                  /* shared experts' intermediate columns held */
    int v0, nv;                  /* lm_head rows (vocabulary) */
} Shard;

/* The share of `rank` of n under tp, ep (0 = the default). 0, or -1 with e saying
 * which dimension does not divide. */
int layout_plan(const ModelConfig *c, int n, int rank, int tp, int ep, Shard *s, Err *e);
/* "tp 2, ep 2 (experts 4 per rank, heads 2 per rank, vocabulary split)" */
void layout_describe(const ModelConfig *c, const Shard *s, char *out, size_t len);
/* the vocabulary rows [v0, v1) of lm_head rank r holds: whole 128-row blocks (FP8
 * checkpoints scale 128x128 blocks), the last rank the remainder */
void layout_vocab_range(int V, int n, int r, int *v0, int *v1);
/* the tokens rank r owns in an expert-parallel dispatch of T tokens: [t0, t1) */
void layout_token_range(int T, int n, int r, int *t0, int *t1);

/* An expert-parallel dispatch of T tokens routed to ex (T, K), the routing every rank
 * computed, seen from rank r of n holding experts [r*per, (r+1)*per); a row is `row`
 * bytes. Fills sidx (the token of each row this rank sends, grouped by destination rank,
 * token order within), spos (the send row of each (token, slot) of its own tokens),
 * sb and rb (n: bytes to and from each rank) and exl (the local expert of each row it
 * receives, in the senders' order); cnt (n*n ints) is scratch. Returns the rows
 * received; *sent the rows sent. */
int layout_dispatch(const int *ex, int T, int K, int n, int r, int per, size_t row, int *cnt, int *sidx, int *spos,
                    size_t *sb, size_t *rb, int *exl, int *sent);

/* Bytes each rank of the layout sends and receives, by kind, in one step of T tokens
 * with nw logits rows wanted, by comm.h's conventions, float32 activations.
 * experts (n_layers, T, K) the routing (-1 on dense layers), or NULL: dispatch and
 * combine are then the expectation under uniform routing (a slot leaves its rank with
 * probability (N-1)/N). Fills sent/recv (n ranks, CK_COUNT) row-major. */
void layout_predict(const ModelConfig *c, const Shard *s, int T, int nw, const int *experts, double *sent, double *recv);

#endif
