/*
 * config.h - a model's shape and math, read from a Hugging Face config.json.
 *
 * Families: deepseek_v2 and deepseek_v3 (MLA + DeepSeekMoE), llama and qwen2 (dense
 * MHA/GQA with SwiGLU; qwen2 adds q/k/v biases), mixtral (GQA + softmax top-k MoE).
 * Every field that changes the math is read; a model_type, rope type, scoring
 * function or top-k method we do not implement is refused with its name.
 */
#ifndef EFFBENCH_CONFIG_H
#define EFFBENCH_CONFIG_H

#include "common.h"

typedef enum { ARCH_DEEPSEEK_V2, ARCH_DEEPSEEK_V3, ARCH_LLAMA, ARCH_QWEN2, ARCH_MIXTRAL } ModelArch;
typedef enum { ROPE_PLAIN, ROPE_YARN, ROPE_LLAMA3 } RopeScaling;
typedef enum { SCORE_SOFTMAX, SCORE_SIGMOID } ScoreFunc;
typedef enum { TOPK_GREEDY, TOPK_GROUP_LIMITED, TOPK_NOAUX_TC } TopkMethod;

typedef struct {
    ModelArch arch;
    char model_type[32];
    int vocab;               /* V */
    int dim;                 /* D, hidden_size */
    int n_layers;            /* L, num_hidden_layers */
    int n_heads;             /* H */
    int n_kv_heads;          /* Hkv (dense); DeepSeek: = H, unused by MLA */
    int head_dim;            /* dense: head_dim or D/H */
    int inter;               /* intermediate_size of dense MLPs */
    float rms_eps;
    int tie_embeddings;
    int qkv_bias;            /* qwen2 */
    int n_nextn_layers;      /* num_nextn_predict_layers (DeepSeek-V3 MTP; not run) */
    int max_pos;             /* max_position_embeddings */

    /* MLA (DeepSeek) */
    int is_mla;
    int q_lora_rank;         /* 0 = plain q_proj */
    int kv_lora_rank;        /* Dc */
    int qk_nope;             /* Dn */
    int qk_rope;             /* Dr */
    int v_head;              /* Dv */

    /* MoE */
    int n_routed;            /* E; 0 = dense model */
    int n_shared;            /* shared experts (their MLP is n_shared * moe_inter wide) */
    int top_k;               /* K, num_experts_per_tok */
    int moe_inter;           /* moe_intermediate_size (mixtral: intermediate_size) */
    int first_k_dense;       /* first_k_dense_replace */
    int moe_layer_freq;
    int n_group, topk_group;
    int norm_topk_prob;
    float routed_scale;      /* routed_scaling_factor */
    ScoreFunc score;
    TopkMethod topk_method;

    /* RoPE */
    double rope_theta;
    RopeScaling rope_scaling;
    double rope_factor;
    int rope_orig_max;       /* original_max_position_embeddings */
    double beta_fast, beta_slow, mscale, mscale_all_dim;   /* yarn */
    double low_freq_factor, high_freq_factor;             /* llama3 */
} ModelConfig;

/* Parses config.json text; name is the file name used in error messages. */
int config_parse(const char *json, const char *name, ModelConfig *c, Err *e);
/* Reads and parses a config.json file. */
int config_load(const char *path, ModelConfig *c, Err *e);

int config_is_moe_layer(const ModelConfig *c, int layer);
int config_rope_dim(const ModelConfig *c);       /* Dr for MLA, head_dim for dense */
int config_qk_head_dim(const ModelConfig *c);    /* Dn + Dr for MLA, head_dim for dense */
const char *config_arch_name(ModelArch a);

/* inv_freq[i], i < rope_dim/2, with the config's scaling (yarn, llama3) applied. */
void config_rope_inv_freq(const ModelConfig *c, float *inv_freq);
/* Multiplier of cos/sin (HF yarn: mscale(factor, mscale) / mscale(factor, mscale_all_dim)). */
float config_rope_mscale(const ModelConfig *c);
/* Attention softmax scale: qk_head_dim^-0.5, times yarn's mscale(factor, mscale_all_dim)^2. */
float config_softmax_scale(const ModelConfig *c);

#endif
