/*
 * config.c - reads config.json with cJSON into a ModelConfig and derives the RoPE
 * tables. Formulas follow Hugging Face transformers (modeling_deepseek.py,
 * modeling_rope_utils.py) and deepseek-ai/DeepSeek-V3 inference/model.py:
 *   yarn:   inv_freq' = inv_freq/f * (1-s) + inv_freq * s, s = 1 - ramp(low, high)
 *           with low/high = correction dims of beta_fast/beta_slow;
 *           softmax scale *= (0.1 * mscale_all_dim * ln f + 1)^2.
 *   llama3: wavelength bands between original/low_freq_factor and
 *           original/high_freq_factor, smooth interpolation in between.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char *config_arch_name(ModelArch a) {
    switch (a) {
    case ARCH_DEEPSEEK_V2: return "deepseek_v2";
    case ARCH_DEEPSEEK_V3: return "deepseek_v3";
    case ARCH_LLAMA: return "llama";
    case ARCH_QWEN2: return "qwen2";
    case ARCH_MIXTRAL: return "mixtral";
    }
    return "?";
}

/* ---- field readers: each sets e with the file and key on a bad value -------------- */
typedef struct { const cJSON *root; const char *name; Err *e; int bad; } Reader;

static const cJSON *field(Reader *r, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->root, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* Integer field: required unless dflt_ok; must lie in [lo, hi]. */
static int get_int(Reader *r, const char *key, int required, int dflt, long lo, long hi) {
    if (r->bad) return dflt;
    const cJSON *v = field(r, key);
    if (!v) {
        if (required) { r->bad = 1; err_set(r->e, "%s: missing required field \"%s\"", r->name, key); }
        return dflt;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
        r->bad = 1;
        err_set(r->e, "%s: field \"%s\" must be an integer", r->name, key);
        return dflt;
    }
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi) {
        r->bad = 1;
        err_set(r->e, "%s: field \"%s\" is %.0f, expected %ld..%ld", r->name, key, v->valuedouble, lo, hi);
        return dflt;
    }
    return (int)v->valuedouble;
}

static double get_num(Reader *r, const char *key, int required, double dflt, double lo, double hi) {
    if (r->bad) return dflt;
    const cJSON *v = field(r, key);
    if (!v) {
        if (required) { r->bad = 1; err_set(r->e, "%s: missing required field \"%s\"", r->name, key); }
        return dflt;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        r->bad = 1;
        err_set(r->e, "%s: field \"%s\" must be a number", r->name, key);
        return dflt;
    }
    if (v->valuedouble < lo || v->valuedouble > hi) {
        r->bad = 1;
        err_set(r->e, "%s: field \"%s\" is %g, expected %g..%g", r->name, key, v->valuedouble, lo, hi);
        return dflt;
    }
    return v->valuedouble;
}

static int get_bool(Reader *r, const char *key, int dflt) {
    if (r->bad) return dflt;
    const cJSON *v = field(r, key);
    if (!v) return dflt;
    if (!cJSON_IsBool(v)) {
        r->bad = 1;
        err_set(r->e, "%s: field \"%s\" must be true or false", r->name, key);
        return dflt;
    }
    return cJSON_IsTrue(v);
}

static const char *get_str(Reader *r, const char *key) {
    if (r->bad) return NULL;
    const cJSON *v = field(r, key);
    if (!v) return NULL;
    if (!cJSON_IsString(v)) {
        r->bad = 1;
        err_set(r->e, "%s: field \"%s\" must be a string", r->name, key);
        return NULL;
    }
    return v->valuestring;
}

#define BIG 1000000000L   /* any dimension beyond this is nonsense */

static void parse_rope_scaling(Reader *r, ModelConfig *c) {
    c->rope_scaling = ROPE_PLAIN;
    const cJSON *rs = field(r, "rope_scaling");
    if (!rs || r->bad) return;
    if (!cJSON_IsObject(rs)) {
        r->bad = 1;
        err_set(r->e, "%s: field \"rope_scaling\" must be an object or null", r->name);
        return;
    }
    Reader sub = { rs, r->name, r->e, 0 };
    const char *type = get_str(&sub, "rope_type");
    if (!type) type = get_str(&sub, "type");
    if (sub.bad) { r->bad = 1; return; }
    if (!type) {
        r->bad = 1;
        err_set(r->e, "%s: rope_scaling has no \"type\" or \"rope_type\"", r->name);
        return;
    }
    if (!strcmp(type, "default")) return;
    if (!strcmp(type, "yarn")) {
        c->rope_scaling = ROPE_YARN;
        c->rope_factor = get_num(&sub, "factor", 1, 1, 1, 1e6);
        c->rope_orig_max = get_int(&sub, "original_max_position_embeddings", 1, 4096, 1, BIG);
        c->beta_fast = get_num(&sub, "beta_fast", 0, 32, 1e-9, 1e6);
        c->beta_slow = get_num(&sub, "beta_slow", 0, 1, 1e-9, 1e6);
        c->mscale = get_num(&sub, "mscale", 0, 1, 0, 1e6);
        c->mscale_all_dim = get_num(&sub, "mscale_all_dim", 0, 0, 0, 1e6);
    } else if (!strcmp(type, "llama3")) {
        c->rope_scaling = ROPE_LLAMA3;
        c->rope_factor = get_num(&sub, "factor", 1, 1, 1, 1e6);
        c->rope_orig_max = get_int(&sub, "original_max_position_embeddings", 1, 8192, 1, BIG);
        c->low_freq_factor = get_num(&sub, "low_freq_factor", 1, 1, 1e-9, 1e6);
        c->high_freq_factor = get_num(&sub, "high_freq_factor", 1, 4, 1e-9, 1e6);
        if (!sub.bad && c->high_freq_factor <= c->low_freq_factor) {
            sub.bad = 1;
            err_set(r->e, "%s: rope_scaling.high_freq_factor must exceed low_freq_factor", r->name);
        }
    } else {
        r->bad = 1;
        err_set(r->e, "%s: unsupported rope_scaling type \"%s\" (supported: yarn, llama3)", r->name, type);
        return;
    }
    if (sub.bad) r->bad = 1;
}

int config_parse(const char *json, const char *name, ModelConfig *c, Err *e) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= json ? (long)(at - json) : -1;
        return err_set(e, "%s: malformed JSON near byte %ld", name, off);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(e, "%s: expected a JSON object", name);
    }
    Reader r = { root, name, e, 0 };
    const char *mt = get_str(&r, "model_type");
    if (!r.bad && !mt) { r.bad = 1; err_set(e, "%s: missing required field \"model_type\"", name); }
    if (r.bad) { cJSON_Delete(root); return -1; }
    if (!strcmp(mt, "deepseek_v2")) c->arch = ARCH_DEEPSEEK_V2;
    else if (!strcmp(mt, "deepseek_v3")) c->arch = ARCH_DEEPSEEK_V3;
    else if (!strcmp(mt, "llama")) c->arch = ARCH_LLAMA;
    else if (!strcmp(mt, "qwen2")) c->arch = ARCH_QWEN2;
    else if (!strcmp(mt, "mixtral")) c->arch = ARCH_MIXTRAL;
    else {
        err_set(e, "%s: unsupported model_type \"%s\" (supported: deepseek_v2, deepseek_v3, llama, qwen2, mixtral)", name, mt);
        cJSON_Delete(root);
        return -1;
    }
    snprintf(c->model_type, sizeof c->model_type, "%s", mt);

    c->vocab = get_int(&r, "vocab_size", 1, 0, 1, BIG);
    c->dim = get_int(&r, "hidden_size", 1, 0, 1, BIG);
    c->n_layers = get_int(&r, "num_hidden_layers", 1, 0, 1, 100000);
    c->n_heads = get_int(&r, "num_attention_heads", 1, 0, 1, 100000);
    c->n_kv_heads = get_int(&r, "num_key_value_heads", 0, c->n_heads, 1, 100000);
    c->inter = get_int(&r, "intermediate_size", 1, 0, 1, BIG);
    c->rms_eps = (float)get_num(&r, "rms_norm_eps", 0, 1e-6, 0, 1);
    c->tie_embeddings = get_bool(&r, "tie_word_embeddings", 0);
    c->rope_theta = get_num(&r, "rope_theta", 0, 10000.0, 1e-9, 1e30);
    c->max_pos = get_int(&r, "max_position_embeddings", 0, 4096, 1, BIG);
    const char *act = get_str(&r, "hidden_act");
    if (!r.bad && act && strcmp(act, "silu")) {
        r.bad = 1;
        err_set(e, "%s: unsupported hidden_act \"%s\" (supported: silu)", name, act);
    }
    parse_rope_scaling(&r, c);

    if (c->arch == ARCH_DEEPSEEK_V2 || c->arch == ARCH_DEEPSEEK_V3) {
        c->is_mla = 1;
        c->q_lora_rank = get_int(&r, "q_lora_rank", 0, 0, 0, BIG);
        c->kv_lora_rank = get_int(&r, "kv_lora_rank", 1, 0, 1, BIG);
        c->qk_nope = get_int(&r, "qk_nope_head_dim", 1, 0, 1, BIG);
        c->qk_rope = get_int(&r, "qk_rope_head_dim", 1, 0, 2, BIG);
        c->v_head = get_int(&r, "v_head_dim", 1, 0, 1, BIG);
        c->n_routed = get_int(&r, "n_routed_experts", 0, 0, 0, 100000);
        c->n_shared = get_int(&r, "n_shared_experts", 0, 0, 0, 1000);
        c->moe_inter = get_int(&r, "moe_intermediate_size", c->n_routed > 0, 0, 1, BIG);
        c->top_k = get_int(&r, "num_experts_per_tok", c->n_routed > 0, 0, 1, 100000);
        c->first_k_dense = get_int(&r, "first_k_dense_replace", 0, 0, 0, 100000);
        c->moe_layer_freq = get_int(&r, "moe_layer_freq", 0, 1, 1, 100000);
        c->n_group = get_int(&r, "n_group", 0, 1, 1, 100000);
        c->topk_group = get_int(&r, "topk_group", 0, 1, 1, 100000);
        c->norm_topk_prob = get_bool(&r, "norm_topk_prob", 0);
        c->routed_scale = (float)get_num(&r, "routed_scaling_factor", 0, 1.0, 0, 1e6);
        c->n_nextn_layers = get_int(&r, "num_nextn_predict_layers", 0, 0, 0, 1000);
        const char *sf = get_str(&r, "scoring_func");
        const char *tm = get_str(&r, "topk_method");
        if (!r.bad) {
            if (!sf || !strcmp(sf, "softmax")) c->score = SCORE_SOFTMAX;
            else if (!strcmp(sf, "sigmoid")) c->score = SCORE_SIGMOID;
            else { r.bad = 1; err_set(e, "%s: unsupported scoring_func \"%s\" (supported: softmax, sigmoid)", name, sf); }
        }
        if (!r.bad) {
            if (!tm || !strcmp(tm, "greedy")) c->topk_method = TOPK_GREEDY;
            else if (!strcmp(tm, "group_limited_greedy")) c->topk_method = TOPK_GROUP_LIMITED;
            else if (!strcmp(tm, "noaux_tc")) c->topk_method = TOPK_NOAUX_TC;
            else { r.bad = 1; err_set(e, "%s: unsupported topk_method \"%s\" (supported: greedy, group_limited_greedy, noaux_tc)", name, tm); }
        }
        c->head_dim = c->qk_nope + c->qk_rope;
        c->n_kv_heads = c->n_heads;
    } else {
        c->qkv_bias = c->arch == ARCH_QWEN2;
        if (c->arch == ARCH_LLAMA && get_bool(&r, "attention_bias", 0) && !r.bad) {
            r.bad = 1;
            err_set(e, "%s: attention_bias true is not supported for llama", name);
        }
        if (c->arch == ARCH_LLAMA && get_bool(&r, "mlp_bias", 0) && !r.bad) {
            r.bad = 1;
            err_set(e, "%s: mlp_bias true is not supported", name);
        }
        if (c->arch == ARCH_QWEN2 && get_bool(&r, "use_sliding_window", 0) && !r.bad) {
            r.bad = 1;
            err_set(e, "%s: use_sliding_window true is not supported", name);
        }
        if (c->arch == ARCH_MIXTRAL && !r.bad) {
            const cJSON *sw = field(&r, "sliding_window");
            if (sw) { r.bad = 1; err_set(e, "%s: sliding_window is not supported (must be null)", name); }
        }
        int hd = (c->n_heads > 0 && c->dim % c->n_heads == 0) ? c->dim / c->n_heads : 0;
        c->head_dim = get_int(&r, "head_dim", 0, hd, 2, BIG);
        if (!r.bad && c->head_dim == 0) {
            r.bad = 1;
            err_set(e, "%s: hidden_size %d is not a multiple of num_attention_heads %d and no head_dim is given",
                    name, c->dim, c->n_heads);
        }
        if (!r.bad && c->head_dim % 2) {
            r.bad = 1;
            err_set(e, "%s: head_dim %d must be even for RoPE", name, c->head_dim);
        }
        if (!r.bad && c->n_heads % c->n_kv_heads) {
            r.bad = 1;
            err_set(e, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                    name, c->n_heads, c->n_kv_heads);
        }
        if (c->arch == ARCH_MIXTRAL) {
            c->n_routed = get_int(&r, "num_local_experts", 1, 0, 1, 100000);
            c->top_k = get_int(&r, "num_experts_per_tok", 1, 0, 1, 100000);
            c->moe_inter = c->inter;
            c->score = SCORE_SOFTMAX;
            c->topk_method = TOPK_GREEDY;
            c->norm_topk_prob = 1;
            c->routed_scale = 1.0f;
            c->moe_layer_freq = 1;
            c->n_group = c->topk_group = 1;
        }
    }
    if (!r.bad && c->is_mla && c->qk_rope % 2) {
        r.bad = 1;
        err_set(e, "%s: qk_rope_head_dim %d must be even", name, c->qk_rope);
    }
    if (!r.bad && c->n_routed > 0) {
        if (c->top_k > c->n_routed) {
            r.bad = 1;
            err_set(e, "%s: num_experts_per_tok %d exceeds the %d experts", name, c->top_k, c->n_routed);
        } else if (c->n_routed % c->n_group) {
            r.bad = 1;
            err_set(e, "%s: n_routed_experts %d is not a multiple of n_group %d", name, c->n_routed, c->n_group);
        } else if (c->topk_group > c->n_group) {
            r.bad = 1;
            err_set(e, "%s: topk_group %d exceeds n_group %d", name, c->topk_group, c->n_group);
        } else if (c->topk_method != TOPK_GREEDY && c->n_group > 1 &&
                   c->top_k > c->topk_group * (c->n_routed / c->n_group)) {
            r.bad = 1;
            err_set(e, "%s: num_experts_per_tok %d exceeds the experts of the %d selected groups", name, c->top_k, c->topk_group);
        } else if (c->topk_method == TOPK_NOAUX_TC && c->n_routed / c->n_group < 2) {
            r.bad = 1;
            err_set(e, "%s: noaux_tc needs at least 2 experts per group", name);
        }
    }
    cJSON_Delete(root);
    return r.bad ? -1 : 0;
}

int config_load(const char *path, ModelConfig *c, Err *e) {
    char *txt = read_file(path, 16u << 20, NULL, e);
    if (!txt) return -1;
    int rc = config_parse(txt, path, c, e);
    free(txt);
    return rc;
}

int config_is_moe_layer(const ModelConfig *c, int layer) {
    if (c->n_routed <= 0) return 0;
    if (c->arch == ARCH_MIXTRAL) return 1;
    return layer >= c->first_k_dense && layer % c->moe_layer_freq == 0;
}

int config_rope_dim(const ModelConfig *c) { return c->is_mla ? c->qk_rope : c->head_dim; }
int config_qk_head_dim(const ModelConfig *c) { return c->is_mla ? c->qk_nope + c->qk_rope : c->head_dim; }

static double yarn_get_mscale(double scale, double m) {
    return scale <= 1 ? 1.0 : 0.1 * m * log(scale) + 1.0;
}

/* dim index whose wavelength makes num_rot rotations over the original context */
static double yarn_correction_dim(double num_rot, int dim, double base, int max_pos) {
    return dim * log(max_pos / (num_rot * 2 * M_PI)) / (2 * log(base));
}

void config_rope_inv_freq(const ModelConfig *c, float *inv_freq) {
    int d = config_rope_dim(c), half = d / 2;
    for (int i = 0; i < half; i++) {
        /* computed as HF does: float32 exponent, float32 power */
        float ex = (float)(2 * i) / (float)d;
        inv_freq[i] = (float)(1.0 / pow(c->rope_theta, (double)ex));
    }
    if (c->rope_scaling == ROPE_YARN) {
        double lo = floor(yarn_correction_dim(c->beta_fast, d, c->rope_theta, c->rope_orig_max));
        double hi = ceil(yarn_correction_dim(c->beta_slow, d, c->rope_theta, c->rope_orig_max));
        if (lo < 0) lo = 0;
        if (hi > d - 1) hi = d - 1;
        if (lo == hi) hi += 0.001;
        for (int i = 0; i < half; i++) {
            double ramp = (i - lo) / (hi - lo);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            double smooth = 1.0 - ramp;   /* 1 = keep the original frequency */
            double f = inv_freq[i];
            inv_freq[i] = (float)(f / c->rope_factor * (1 - smooth) + f * smooth);
        }
    } else if (c->rope_scaling == ROPE_LLAMA3) {
        double low_wl = c->rope_orig_max / c->low_freq_factor;
        double high_wl = c->rope_orig_max / c->high_freq_factor;
        for (int i = 0; i < half; i++) {
            double f = inv_freq[i], wl = 2 * M_PI / f;
            if (wl < high_wl) continue;
            if (wl > low_wl) { inv_freq[i] = (float)(f / c->rope_factor); continue; }
            double s = (c->rope_orig_max / wl - c->low_freq_factor) / (c->high_freq_factor - c->low_freq_factor);
            inv_freq[i] = (float)((1 - s) * f / c->rope_factor + s * f);
        }
    }
}

float config_rope_mscale(const ModelConfig *c) {
    if (c->rope_scaling != ROPE_YARN) return 1.0f;
    return (float)(yarn_get_mscale(c->rope_factor, c->mscale) / yarn_get_mscale(c->rope_factor, c->mscale_all_dim));
}

float config_softmax_scale(const ModelConfig *c) {
    double s = 1.0 / sqrt((double)config_qk_head_dim(c));
    if (c->rope_scaling == ROPE_YARN && c->mscale_all_dim > 0) {
        double m = yarn_get_mscale(c->rope_factor, c->mscale_all_dim);
        s *= m * m;
    }
    return (float)s;
}
