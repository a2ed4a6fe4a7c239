/*
 * analytic.h - what a model costs, from its config alone (no weights): parameters,
 * KV-cache bytes, FLOPs and bytes per token, and training compute.
 *
 * Definitions (also in README.md):
 *   params_total    every weight of the main model: embedding, layers (norms and
 *                   biases included), final norm, lm_head (unless tied); no
 *                   multi-token-prediction layers.
 *   params_active   the weights one token uses: params_total less the routed experts
 *                   it does not select ((E - K) experts per MoE layer).
 *   kv_bytes_per_token  cached elements per token over all layers x element size:
 *                   MLA (kv_lora_rank + qk_rope_head_dim) x L; dense 2 x Hkv x hd x L.
 *   flops_per_token forward FLOPs of one token at context c:
 *                   2 x (params_active - embedding table) + 2 x L x H x (d_qk + d_v) x c,
 *                   the attention term in its expanded (naive) form.
 *   bytes_per_decode_token  what batch-1 decode reads at context c:
 *                   (params_active - embedding table + D) x weight bytes + kv x c.
 *   train_flops     6 x (params_active - embedding table) x tokens + 3 x the forward
 *                   attention term at the average causal context seq_len/2.
 */
#ifndef EFFBENCH_ANALYTIC_H
#define EFFBENCH_ANALYTIC_H

#include "config.h"

typedef struct {
    double params_total, params_active;
    double params_embedding;         /* the input embedding table (V x D) */
    double params_attention;         /* all layers */
    double params_expert;            /* one routed expert */
    int n_moe_layers;
    double kv_elems_per_token;       /* all layers */
    double attn_flops_per_ctx;       /* forward attention FLOPs per token per context position */
} Analytic;

void analytic_compute(const ModelConfig *c, Analytic *a);
double analytic_flops_per_token(const Analytic *a, double ctx);
double analytic_bytes_per_decode_token(const Analytic *a, const ModelConfig *c, double ctx,
                                       double weight_bytes, double kv_bytes);
/* Training FLOPs for `tokens` tokens of sequences of seq_len. */
double analytic_train_flops(const Analytic *a, double tokens, double seq_len);

#endif
