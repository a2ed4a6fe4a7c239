/*
 * analytic.c - see analytic.h. Counts follow the tensor list of Hugging Face
 * checkpoints (the engine's binder enumerates the same tensors independently; a test
 * holds the two to each other and to hand counts).
 */
#include "analytic.h"

static double mlp_params(double d, double inter) { return 3.0 * d * inter; }

void analytic_compute(const ModelConfig *c, Analytic *a) {
    memset(a, 0, sizeof *a);
    double D = c->dim, H = c->n_heads, L = c->n_layers, V = c->vocab;
    double attn, dqk, dv;
    if (c->is_mla) {
        double qk = c->qk_nope + c->qk_rope;
        double q = c->q_lora_rank ? D * c->q_lora_rank + c->q_lora_rank + (double)c->q_lora_rank * H * qk : D * H * qk;
        attn = q + D * (c->kv_lora_rank + c->qk_rope) + c->kv_lora_rank
             + (double)c->kv_lora_rank * H * (c->qk_nope + c->v_head) + H * c->v_head * D;
        dqk = qk;
        dv = c->v_head;
        a->kv_elems_per_token = (double)(c->kv_lora_rank + c->qk_rope) * L;
    } else {
        double hd = c->head_dim, kvh = c->n_kv_heads;
        attn = D * H * hd + 2 * D * kvh * hd + H * hd * D;
        if (c->qkv_bias) attn += H * hd + 2 * kvh * hd;
        dqk = dv = hd;
        a->kv_elems_per_token = 2.0 * kvh * hd * L;
    }
    a->params_attention = attn * L;
    a->params_expert = mlp_params(D, c->moe_inter);
    double total = V * D + (c->tie_embeddings ? 0 : V * D) + D, active = total;
    for (int l = 0; l < c->n_layers; l++) {
        double layer = 2 * D + attn;
        double act = layer;
        if (config_is_moe_layer(c, l)) {
            a->n_moe_layers++;
            double router = (double)c->n_routed * D + (c->topk_method == TOPK_NOAUX_TC ? c->n_routed : 0);
            double shared = c->n_shared ? mlp_params(D, (double)c->n_shared * c->moe_inter) : 0;
            layer += router + shared + c->n_routed * a->params_expert;
            act += router + shared + c->top_k * a->params_expert;
        } else {
            layer += mlp_params(D, c->inter);
            act += mlp_params(D, c->inter);
        }
        total += layer;
        active += act;
    }
    a->params_total = total;
    a->params_active = active;
    a->params_embedding = V * D;
    a->attn_flops_per_ctx = 2.0 * L * H * (dqk + dv);
}

double analytic_flops_per_token(const Analytic *a, double ctx) {
    return 2.0 * (a->params_active - a->params_embedding) + a->attn_flops_per_ctx * ctx;
}

double analytic_bytes_per_decode_token(const Analytic *a, const ModelConfig *c, double ctx,
                                       double weight_bytes, double kv_bytes) {
    return (a->params_active - a->params_embedding + c->dim) * weight_bytes + a->kv_elems_per_token * kv_bytes * ctx;
}

double analytic_train_flops(const Analytic *a, double tokens, double seq_len) {
    return 6.0 * (a->params_active - a->params_embedding) * tokens + 3.0 * a->attn_flops_per_ctx * (seq_len / 2.0) * tokens;
}
