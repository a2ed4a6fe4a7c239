/*
 * gguf_model.c - a model from a GGUF file: the Hugging Face config rebuilt from the
 * file's metadata, and its tensors renamed to the Hugging Face names the binder asks
 * for, so that one enumeration (model.c) serves safetensors and GGUF alike.
 *
 * What the Hugging Face to GGUF converter changed is undone here:
 *   llama (and Mixtral-style llama with experts): the rows of Q and K were permuted
 *     per head from rotate-half order to interleaved pairs; the inverse permutation
 *     is applied. qwen2 and deepseek2 are not permuted.
 *   experts: one 3-D tensor per projection ({cols, rows, experts}); each expert's slab
 *     becomes its own matrix.
 *   deepseek2: kv_b_proj may be split into attn_k_b (per head W_UK transposed,
 *     {Dn, Dc, H}) and attn_v_b ({Dc, Dv, H}); they are put back together, and are
 *     also kept as stored for the absorbed products (model.h MLA_UK_T, MLA_UV).
 *   llama3 RoPE scaling: stored as rope_freqs.weight, one divisor per frequency.
 * Tensors stay in the mapping in their own type, F32 to Q6_K (copied only when rows are
 * permuted); the products read them as stored (qdot.h). Only attn_k_b / attn_v_b are
 * decoded, to float32, when they are joined back into kv_b_proj.
 */
#include "gguf_model.h"
#include "quant.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- names -------------------------------------------------------------------------- */
/* GGUF name (after "blk.N.") and Hugging Face name (after "model.layers.N."); the
 * router and experts depend on the family (see hf_name). */
static const char *const layer_names[][2] = {
    { "attn_norm.weight", "input_layernorm.weight" },
    { "ffn_norm.weight", "post_attention_layernorm.weight" },
    { "attn_q.weight", "self_attn.q_proj.weight" },
    { "attn_q.bias", "self_attn.q_proj.bias" },
    { "attn_k.weight", "self_attn.k_proj.weight" },
    { "attn_k.bias", "self_attn.k_proj.bias" },
    { "attn_v.weight", "self_attn.v_proj.weight" },
    { "attn_v.bias", "self_attn.v_proj.bias" },
    { "attn_output.weight", "self_attn.o_proj.weight" },
    { "attn_q_a.weight", "self_attn.q_a_proj.weight" },
    { "attn_q_a_norm.weight", "self_attn.q_a_layernorm.weight" },
    { "attn_q_b.weight", "self_attn.q_b_proj.weight" },
    { "attn_kv_a_mqa.weight", "self_attn.kv_a_proj_with_mqa.weight" },
    { "attn_kv_a_norm.weight", "self_attn.kv_a_layernorm.weight" },
    { "attn_kv_b.weight", "self_attn.kv_b_proj.weight" },
    { "ffn_gate.weight", "mlp.gate_proj.weight" },
    { "ffn_up.weight", "mlp.up_proj.weight" },
    { "ffn_down.weight", "mlp.down_proj.weight" },
    { "ffn_gate_shexp.weight", "mlp.shared_experts.gate_proj.weight" },
    { "ffn_up_shexp.weight", "mlp.shared_experts.up_proj.weight" },
    { "ffn_down_shexp.weight", "mlp.shared_experts.down_proj.weight" },
    { "exp_probs_b.bias", "mlp.gate.e_score_correction_bias" },
};
static const char *const global_names[][2] = {
    { "token_embd.weight", "model.embed_tokens.weight" },
    { "output_norm.weight", "model.norm.weight" },
    { "output.weight", "lm_head.weight" },
};
/* expert projections: GGUF, deepseek (mlp.experts.X.), mixtral (block_sparse_moe.experts.X.) */
static const char *const expert_names[][3] = {
    { "ffn_gate_exps.weight", "gate_proj.weight", "w1.weight" },
    { "ffn_up_exps.weight", "up_proj.weight", "w3.weight" },
    { "ffn_down_exps.weight", "down_proj.weight", "w2.weight" },
};

/* A decimal number at s as ggml writes it (no sign, no leading zero, at most 6 digits)
 * followed by `end`; its value, and *after past the end character; -1 if none. */
static int number(const char *s, char end, const char **after) {
    int v = 0, k = 0;
    while (s[k] >= '0' && s[k] <= '9' && k < 7) v = v * 10 + (s[k++] - '0');
    if (k == 0 || k > 6 || (k > 1 && s[0] == '0') || s[k] != end) return -1;
    *after = s + k + 1;
    return v;
}

/* "blk.N.rest": N, and *rest; -1 when the name is not a layer's */
static int layer_of(const char *name, const char **rest) {
    return strncmp(name, "blk.", 4) ? -1 : number(name + 4, '.', rest);
}

int gguf_hf_name(const char *gg, int mixtral, char *out, size_t cap) {
    for (size_t i = 0; i < sizeof global_names / sizeof *global_names; i++)
        if (!strcmp(gg, global_names[i][0])) return snprintf(out, cap, "%s", global_names[i][1]) < (int)cap;
    const char *rest;
    int l = layer_of(gg, &rest);
    if (l < 0) return 0;
    for (size_t i = 0; i < sizeof layer_names / sizeof *layer_names; i++)
        if (!strcmp(rest, layer_names[i][0])) return snprintf(out, cap, "model.layers.%d.%s", l, layer_names[i][1]) < (int)cap;
    if (!strcmp(rest, "ffn_gate_inp.weight"))
        return snprintf(out, cap, "model.layers.%d.%s.gate.weight", l, mixtral ? "block_sparse_moe" : "mlp") < (int)cap;
    return 0;
}

/* The GGUF name a Hugging Face name comes from, for messages ("" when none). */
void gguf_name_of(const char *hf, char *out, size_t cap) {
    out[0] = 0;
    for (size_t i = 0; i < sizeof global_names / sizeof *global_names; i++)
        if (!strcmp(hf, global_names[i][1])) { snprintf(out, cap, "%s", global_names[i][0]); return; }
    int l, n = 0, x;
    if (sscanf(hf, "model.layers.%d.%n", &l, &n) != 1 || n == 0) return;
    const char *rest = hf + n;
    for (size_t i = 0; i < sizeof layer_names / sizeof *layer_names; i++)
        if (!strcmp(rest, layer_names[i][1])) { snprintf(out, cap, "blk.%d.%s", l, layer_names[i][0]); return; }
    if (!strcmp(rest, "mlp.gate.weight") || !strcmp(rest, "block_sparse_moe.gate.weight")) {
        snprintf(out, cap, "blk.%d.ffn_gate_inp.weight", l);
        return;
    }
    char w[64];
    if (sscanf(rest, "mlp.experts.%d.%63s", &x, w) == 2 || sscanf(rest, "block_sparse_moe.experts.%d.%63s", &x, w) == 2)
        for (int i = 0; i < 3; i++)
            if (!strcmp(w, expert_names[i][1]) || !strcmp(w, expert_names[i][2])) {
                snprintf(out, cap, "blk.%d.%s (expert %d)", l, expert_names[i][0], x);
                return;
            }
}

/* ---- config ------------------------------------------------------------------------- */
typedef struct { const Gguf *g; const char *arch; Err *e; int bad; } Meta;

/* arch-prefixed integer: 1 found, 0 absent (dflt stored), -1 error */
static int64_t meta_int(Meta *m, const char *key, int required, int64_t dflt) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", m->arch, key);
    int64_t v = dflt;
    if (m->bad) return dflt;
    int r = gguf_get_int(m->g, k, &v, m->e);
    if (r < 0) { m->bad = 1; return dflt; }
    if (r == 0 && required) { m->bad = 1; err_set(m->e, "%s: missing metadata \"%s\"", m->g->path, k); return dflt; }
    if (r && (v < 0 || v > 1000000000)) { m->bad = 1; err_set(m->e, "%s: metadata \"%s\" is %lld", m->g->path, k, (long long)v); return dflt; }
    return v;
}
static double meta_float(Meta *m, const char *key, double dflt) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", m->arch, key);
    double v = dflt;
    if (m->bad) return dflt;
    int r = gguf_get_float(m->g, k, &v, m->e);
    if (r < 0) { m->bad = 1; return dflt; }
    if (!isfinite(v)) { m->bad = 1; err_set(m->e, "%s: metadata \"%s\" is not finite", m->g->path, k); return dflt; }
    return v;
}

static const GgufTensor *find_fmt(const Gguf *g, const char *fmt, int l) {
    char n[96];
    snprintf(n, sizeof n, fmt, l);
    return gguf_tensor(g, n);
}

int gguf_model_config(const Gguf *g, ModelConfig *c, Err *e) {
    char arch[64] = "";
    if (gguf_get_str(g, "general.architecture", arch, sizeof arch, e) < 0) return -1;
    if (!arch[0]) return err_set(e, "%s: no general.architecture", g->path);
    int llama = !strcmp(arch, "llama"), qwen2 = !strcmp(arch, "qwen2"), ds = !strcmp(arch, "deepseek2");
    if (!llama && !qwen2 && !ds)
        return err_set(e, "%s: architecture \"%.60s\" is not supported (supported: llama, qwen2, deepseek2)", g->path, arch);
    Meta m = { g, arch, e, 0 };
    const GgufTensor *emb = gguf_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2) return err_set(e, "%s: missing tensor \"token_embd.weight\" (2-D)", g->path);
    cJSON *j = cJSON_CreateObject();
    int64_t dim = meta_int(&m, "embedding_length", 1, 0);
    int64_t layers = meta_int(&m, "block_count", 1, 0);
    int64_t heads = meta_int(&m, "attention.head_count", 1, 0);
    int64_t ff = meta_int(&m, "feed_forward_length", !ds, 0);
    cJSON_AddNumberToObject(j, "vocab_size", (double)emb->ne[1]);
    cJSON_AddNumberToObject(j, "hidden_size", (double)dim);
    cJSON_AddNumberToObject(j, "num_hidden_layers", (double)layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", (double)heads);
    cJSON_AddNumberToObject(j, "max_position_embeddings", (double)meta_int(&m, "context_length", 0, 4096));
    cJSON_AddNumberToObject(j, "rms_norm_eps", meta_float(&m, "attention.layer_norm_rms_epsilon", 1e-5));
    cJSON_AddNumberToObject(j, "rope_theta", meta_float(&m, "rope.freq_base", 10000.0));
    cJSON_AddBoolToObject(j, "tie_word_embeddings", gguf_tensor(g, "output.weight") == NULL);
    int64_t experts = meta_int(&m, "expert_count", 0, 0);
    int64_t used = meta_int(&m, "expert_used_count", experts > 0, 0);
    char rs[32] = "";
    char k[160];
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    if (!m.bad && gguf_get_str(g, k, rs, sizeof rs, e) < 0) m.bad = 1;
    int64_t rope_dim = meta_int(&m, "rope.dimension_count", ds, 0);
    if (ds) {
        cJSON_AddStringToObject(j, "model_type", "deepseek_v2");   /* set below */
        cJSON_AddNumberToObject(j, "intermediate_size", (double)(ff ? ff : 1));
        int64_t qr = meta_int(&m, "attention.q_lora_rank", 0, 0);
        if (qr) cJSON_AddNumberToObject(j, "q_lora_rank", (double)qr);
        else cJSON_AddNullToObject(j, "q_lora_rank");
        cJSON_AddNumberToObject(j, "kv_lora_rank", (double)meta_int(&m, "attention.kv_lora_rank", 1, 0));
        /* files from converters that split kv_b give the MLA head sizes in *_mla keys;
         * older ones in key_length / value_length */
        int64_t kl = meta_int(&m, "attention.key_length_mla", 0, -1), vl = meta_int(&m, "attention.value_length_mla", 0, -1);
        if (kl < 0) kl = meta_int(&m, "attention.key_length", 1, 0);
        if (vl < 0) vl = meta_int(&m, "attention.value_length", 1, 0);
        if (!m.bad && kl <= rope_dim) { m.bad = 1; err_set(e, "%s: key length %lld is not more than the rotary %lld", g->path, (long long)kl, (long long)rope_dim); }
        cJSON_AddNumberToObject(j, "qk_rope_head_dim", (double)rope_dim);
        cJSON_AddNumberToObject(j, "qk_nope_head_dim", (double)(kl - rope_dim));
        cJSON_AddNumberToObject(j, "v_head_dim", (double)vl);
        int noaux = 0;
        if (experts > 0) {
            int64_t lead = meta_int(&m, "leading_dense_block_count", 0, 0);
            cJSON_AddNumberToObject(j, "n_routed_experts", (double)experts);
            cJSON_AddNumberToObject(j, "num_experts_per_tok", (double)used);
            cJSON_AddNumberToObject(j, "n_shared_experts", (double)meta_int(&m, "expert_shared_count", 0, 0));
            cJSON_AddNumberToObject(j, "moe_intermediate_size", (double)meta_int(&m, "expert_feed_forward_length", 1, 0));
            cJSON_AddNumberToObject(j, "first_k_dense_replace", (double)lead);
            cJSON_AddNumberToObject(j, "routed_scaling_factor", meta_float(&m, "expert_weights_scale", 1.0));
            int norm = 0;
            snprintf(k, sizeof k, "%s.expert_weights_norm", arch);
            if (!m.bad && gguf_get_bool(g, k, &norm, e) < 0) m.bad = 1;
            cJSON_AddBoolToObject(j, "norm_topk_prob", norm);
            int64_t gate = meta_int(&m, "expert_gating_func", 0, 1);
            if (!m.bad && gate != 1 && gate != 2) { m.bad = 1; err_set(e, "%s: expert_gating_func %lld is not supported (1 softmax, 2 sigmoid)", g->path, (long long)gate); }
            cJSON_AddStringToObject(j, "scoring_func", gate == 2 ? "sigmoid" : "softmax");
            int64_t ng = meta_int(&m, "expert_group_count", 0, 1), tg = meta_int(&m, "expert_group_used_count", 0, 1);
            cJSON_AddNumberToObject(j, "n_group", (double)(ng ? ng : 1));
            cJSON_AddNumberToObject(j, "topk_group", (double)(tg ? tg : 1));
            /* the routing method is not in the metadata: a correction bias means
             * DeepSeek-V3's noaux_tc; groups without it, V2's group-limited greedy */
            noaux = lead < layers && find_fmt(g, "blk.%d.exp_probs_b.bias", (int)lead) != NULL;
            cJSON_AddStringToObject(j, "topk_method", noaux ? "noaux_tc" : ng > 1 ? "group_limited_greedy" : "greedy");
        } else {
            cJSON_AddNumberToObject(j, "first_k_dense_replace", (double)layers);
        }
        cJSON_ReplaceItemInObject(j, "model_type", cJSON_CreateString(noaux ? "deepseek_v3" : "deepseek_v2"));
        if (!m.bad && !strcmp(rs, "yarn")) {
            cJSON *y = cJSON_AddObjectToObject(j, "rope_scaling");
            cJSON_AddStringToObject(y, "type", "yarn");
            cJSON_AddNumberToObject(y, "factor", meta_float(&m, "rope.scaling.factor", 1.0));
            cJSON_AddNumberToObject(y, "original_max_position_embeddings", (double)meta_int(&m, "rope.scaling.original_context_length", 1, 0));
            cJSON_AddNumberToObject(y, "beta_fast", meta_float(&m, "rope.scaling.yarn_beta_fast", 32.0));
            cJSON_AddNumberToObject(y, "beta_slow", meta_float(&m, "rope.scaling.yarn_beta_slow", 1.0));
            /* the converter keeps 0.1 * mscale_all_dim, when the config had one; mscale is
             * taken equal to it (as in every DeepSeek config, and as llama.cpp assumes);
             * without it, Hugging Face's defaults (mscale 1, mscale_all_dim 0) */
            snprintf(k, sizeof k, "%s.rope.scaling.yarn_log_multiplier", arch);
            if (gguf_find(g, k)) {
                double ms = meta_float(&m, "rope.scaling.yarn_log_multiplier", 0.0) / 0.1;
                cJSON_AddNumberToObject(y, "mscale", ms);
                cJSON_AddNumberToObject(y, "mscale_all_dim", ms);
            }
        } else if (!m.bad && rs[0] && strcmp(rs, "none")) {
            m.bad = 1;
            err_set(e, "%s: RoPE scaling \"%.20s\" is not supported for deepseek2 (supported: yarn)", g->path, rs);
        }
    } else {
        int mixtral = experts > 0;
        if (mixtral && qwen2) { m.bad = 1; err_set(e, "%s: qwen2 with experts is not supported", g->path); }
        cJSON_AddStringToObject(j, "model_type", mixtral ? "mixtral" : arch);
        cJSON_AddNumberToObject(j, "num_key_value_heads", (double)meta_int(&m, "attention.head_count_kv", 0, heads));
        cJSON_AddNumberToObject(j, "intermediate_size", (double)ff);
        int64_t hd = meta_int(&m, "attention.key_length", 0, heads ? dim / heads : 0);
        if (!m.bad && meta_int(&m, "attention.value_length", 0, hd) != hd) {
            m.bad = 1;
            err_set(e, "%s: value length differs from key length, which is not supported", g->path);
        }
        if (!m.bad && rope_dim && rope_dim != hd) {
            m.bad = 1;
            err_set(e, "%s: rotary dimensions %lld differ from the head size %lld (partial RoPE is not supported)", g->path,
                    (long long)rope_dim, (long long)hd);
        }
        cJSON_AddNumberToObject(j, "head_dim", (double)hd);
        if (mixtral) {
            cJSON_AddNumberToObject(j, "num_local_experts", (double)experts);
            cJSON_AddNumberToObject(j, "num_experts_per_tok", (double)used);
        }
        if (!m.bad && rs[0] && strcmp(rs, "none")) {
            m.bad = 1;
            err_set(e, "%s: RoPE scaling \"%.20s\" is not supported for %s (llama3 scaling comes as rope_freqs.weight)", g->path, rs, arch);
        }
    }
    /* what llama.cpp would apply and this engine does not: refused, never ignored */
    double lin = 1.0;
    if (!m.bad && strcmp(rs, "yarn") && (lin = meta_float(&m, "rope.scaling.factor", 1.0)) != 1.0 && lin != 0.0) {
        m.bad = 1;
        err_set(e, "%s: RoPE scaling factor %g without a supported scaling type (linear scaling is not supported)", g->path, lin);
    }
    if (!m.bad && (lin = meta_float(&m, "rope.scale_linear", 1.0)) != 1.0) {
        m.bad = 1;
        err_set(e, "%s: linear RoPE scaling (rope.scale_linear %g) is not supported", g->path, lin);
    }
    if (!m.bad && meta_float(&m, "attention.temperature_scale", 0.0) != 0.0) {
        m.bad = 1;
        err_set(e, "%s: attention temperature scaling (%s.attention.temperature_scale) is not supported", g->path, arch);
    }
    if (!m.bad && !llama && gguf_tensor(g, "rope_freqs.weight")) {
        m.bad = 1;
        err_set(e, "%s: rope_freqs.weight is only read for llama, not %s", g->path, arch);
    }
    const GgufKV *toks = gguf_find(g, "tokenizer.ggml.tokens");
    if (!m.bad && toks && toks->type == GGUF_ARRAY && toks->arr_n != (uint64_t)emb->ne[1]) {
        m.bad = 1;
        err_set(e, "%s: the tokenizer has %llu tokens but token_embd.weight %lld rows", g->path,
                (unsigned long long)toks->arr_n, (long long)emb->ne[1]);
    }
    if (m.bad) { cJSON_Delete(j); return -1; }
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int rc = config_parse(txt, g->path, c, e);
    free(txt);
    return rc;
}

/* ---- tensors ------------------------------------------------------------------------ */
typedef struct {
    Model *m;
    Err *e;
    StSet *s;
    int cap;
} Out;

static StTensor *add(Out *o, const char *name, const GgufTensor *src) {
    StSet *s = o->s;
    if (s->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 256;
        s->t = xrealloc(s->t, sizeof *s->t * (size_t)o->cap);
    }
    StTensor *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->ndim = src->n_dims >= 2 ? 2 : 1;
    if (t->ndim == 1) t->shape[0] = src->ne[0];
    else { t->shape[0] = src->ne[1]; t->shape[1] = src->ne[0]; }
    return t;
}

/* nr rows of a 2-D slab (row length cols) as float32 into dst */
static void rows_f32(const GgufTensor *src, const uint8_t *base, int64_t cols, int64_t nr, float *dst) {
    int64_t rb = ggml_row_bytes(src->type, cols);
    for (int64_t r = 0; r < nr; r++) ggml_dequant(src->type, base + r * rb, dst + r * cols, cols);
}

/* llama's Q/K: output row h*hd + s*hd/2 + j comes from stored row h*hd + 2j + s */
static int64_t *unpermute(int64_t rows, int heads) {
    int64_t *p = xmalloc(sizeof *p * (size_t)rows);
    int64_t hd = rows / heads, half = hd / 2;
    for (int64_t h = 0; h < heads; h++)
        for (int64_t s = 0; s < 2; s++)
            for (int64_t j = 0; j < half; j++) p[h * hd + s * half + j] = h * hd + 2 * j + s;
    return p;
}

/* One matrix (or vector) in its own type: mapped as is when no rows move and the data
 * is aligned to its element size; else its rows are copied in the order the engine wants. */
static int put(Out *o, const char *name, const GgufTensor *src, const uint8_t *base, int64_t rows, int64_t cols, int heads) {
    StTensor *t = add(o, name, src);
    if (src->n_dims == 1) { t->shape[0] = cols; }
    else { t->shape[0] = rows; t->shape[1] = cols; }
    DType dt;
    if (dtype_from_ggml(src->type, &dt))
        return err_set(o->e, "%s: tensor \"%s\" has weight type %s, which is not supported", o->m->path, name,
                       ggml_type_name(src->type));
    int64_t rb = ggml_row_bytes(src->type, cols);
    t->dtype = dt;
    t->nbytes = (uint64_t)(rb * rows);
    size_t es = dtype_size(dt);
    if (!heads && (es <= 1 || (uintptr_t)base % es == 0)) {
        t->data = base;
        return 0;
    }
    int64_t *perm = heads ? unpermute(rows, heads) : NULL;
    uint64_t nb = (uint64_t)(rb * rows);        /* rows permuted, or data not aligned to its element size */
    uint8_t *d = nb >= (2u << 20) ? model_alloc_weights(nb) : xmalloc((size_t)nb);
    for (int64_t r = 0; r < rows; r++) memcpy(d + r * rb, base + (perm ? perm[r] : r) * rb, (size_t)rb);
    free(perm);
    model_own(o->m, d);
    t->data = d;
    return 0;
}

static int check_type(Out *o, const GgufTensor *t) {
    if (!ggml_type_supported(t->type))
        return err_set(o->e, "%s: tensor \"%.*s\" has weight type %s, which is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)",
                       o->m->path, (int)t->name.n, t->name.s, ggml_type_name(t->type));
    return 0;
}

/* attn_k_b {Dn, Dc, H} and attn_v_b {Dc, Dv, H} back into kv_b_proj (H*(Dn+Dv), Dc) */
static int join_kv_b(Out *o, int l, const GgufTensor *kb, const GgufTensor *vb) {
    const ModelConfig *c = &o->m->cfg;
    int64_t H = c->n_heads, Dn = c->qk_nope, Dv = c->v_head, Dc = c->kv_lora_rank;
    if (kb->ne[0] != Dn || kb->ne[1] != Dc || kb->ne[2] != H || kb->ne[3] != 1 || vb->ne[0] != Dc || vb->ne[1] != Dv ||
        vb->ne[2] != H || vb->ne[3] != 1)
        return err_set(o->e, "%s: blk.%d.attn_k_b / attn_v_b have shapes [%lld, %lld, %lld] / [%lld, %lld, %lld], expected [%lld, %lld, %lld] / [%lld, %lld, %lld]",
                       o->m->path, l, (long long)kb->ne[0], (long long)kb->ne[1], (long long)kb->ne[2], (long long)vb->ne[0],
                       (long long)vb->ne[1], (long long)vb->ne[2], (long long)Dn, (long long)Dc, (long long)H, (long long)Dc,
                       (long long)Dv, (long long)H);
    if (check_type(o, kb) || check_type(o, vb)) return -1;
    float *kv = xmalloc(sizeof(float) * (size_t)(H * (Dn + Dv) * Dc));
    float *tmp = xmalloc(sizeof(float) * (size_t)(Dc * Dn));
    int64_t krb = ggml_row_bytes(kb->type, Dn), vrb = ggml_row_bytes(vb->type, Dc);
    for (int64_t h = 0; h < H; h++) {
        rows_f32(kb, kb->data + h * Dc * krb, Dn, Dc, tmp);                /* (Dc, Dn) = W_UK^T */
        for (int64_t n = 0; n < Dn; n++)
            for (int64_t x = 0; x < Dc; x++) kv[(h * (Dn + Dv) + n) * Dc + x] = tmp[x * Dn + n];
        rows_f32(vb, vb->data + h * Dv * vrb, Dc, Dv, kv + (h * (Dn + Dv) + Dn) * Dc);
    }
    free(tmp);
    model_own(o->m, kv);
    char n[128];
    snprintf(n, sizeof n, "model.layers.%d.self_attn.kv_b_proj.weight", l);
    StTensor *t = add(o, n, kb);
    t->shape[0] = H * (Dn + Dv);
    t->shape[1] = Dc;
    t->dtype = DT_F32;
    t->data = kv;
    t->nbytes = sizeof(float) * (uint64_t)(H * (Dn + Dv) * Dc);
    return 0;
}

static const char *tname(const GgufTensor *t, char *buf, size_t cap) {
    snprintf(buf, cap, "%.*s", (int)t->name.n, t->name.s);
    return buf;
}

int gguf_model_tensors(Model *m, const Gguf *g, StSet *s, Err *e) {
    const ModelConfig *c = &m->cfg;
    int mixtral = c->arch == ARCH_MIXTRAL, llama = c->arch == ARCH_LLAMA || mixtral;
    Out o = { m, e, s, 0 };
    memset(s, 0, sizeof *s);
    /* what joining attn_k_b / attn_v_b into a float32 kv_b_proj will allocate, before any of it */
    uint64_t need = 0;
    for (int64_t i = 0; i < g->n_t; i++) {
        char nm[96];
        tname(&g->t[i], nm, sizeof nm);
        size_t len = strlen(nm);
        if (len > 15 && (!strcmp(nm + len - 15, "attn_k_b.weight") || !strcmp(nm + len - 15, "attn_v_b.weight")))
            need += (uint64_t)(g->t[i].ne[0] * g->t[i].ne[1] * g->t[i].ne[2]) * sizeof(float);
    }
    if (need > mem_available()) {
        char x[32], y[32];
        return err_set(e, "%s: kv_b_proj in float32 (joined from attn_k_b and attn_v_b) needs %s but only %s of memory is available",
                       m->path, fmt_bytes(need, x, sizeof x), fmt_bytes(mem_available(), y, sizeof y));
    }
    s->files = xcalloc(1, sizeof *s->files);
    s->files[0].path = xstrdup(m->path);          /* no mapping of its own: the Gguf holds it */
    s->n_files = 1;
    char gn[96], hn[160];
    for (int64_t i = 0; i < g->n_t; i++) {
        const GgufTensor *t = &g->t[i];
        tname(t, gn, sizeof gn);
        if (!strcmp(gn, "rope_freqs.weight")) continue;            /* read by gguf_rope_factors */
        const char *rest = NULL;
        int l = layer_of(gn, &rest);
        if (l < 0) rest = NULL;
        for (int d = 0; d < 4; d++)
            if (t->ne[d] == 0) { err_set(e, "%s: tensor \"%s\" has a dimension of 0", m->path, gn); goto fail; }
        if (rest && (!strcmp(rest, "attn_k_b.weight") || !strcmp(rest, "attn_v_b.weight"))) {
            if (rest[5] == 'v') continue;                          /* joined with its k_b */
            char vn[96];
            snprintf(vn, sizeof vn, "blk.%d.attn_v_b.weight", l);
            const GgufTensor *vb = gguf_tensor(g, vn);
            if (!c->is_mla || !vb) goto unexpected;
            if (join_kv_b(&o, l, t, vb)) goto fail;
            /* and both as stored, for the absorbed products (model.h: uk_t, uv) */
            snprintf(hn, sizeof hn, "model.layers.%d." MLA_UK_T, l);
            if (put(&o, hn, t, t->data, t->ne[1] * t->ne[2], t->ne[0], 0)) goto fail;
            snprintf(hn, sizeof hn, "model.layers.%d." MLA_UV, l);
            if (put(&o, hn, vb, vb->data, vb->ne[1] * vb->ne[2], vb->ne[0], 0)) goto fail;
            continue;
        }
        if (rest && strstr(rest, "_exps.weight")) {
            int k = -1;
            for (int x = 0; x < 3; x++) if (!strcmp(rest, expert_names[x][0])) k = x;
            if (k < 0 || c->n_routed <= 0) goto unexpected;
            if (check_type(&o, t)) goto fail;
            if (t->ne[2] != c->n_routed || t->ne[3] != 1)
                { err_set(e, "%s: tensor \"%s\" must be 3-D with %d experts", m->path, gn, c->n_routed); goto fail; }
            uint64_t slab = t->nbytes / (uint64_t)t->ne[2];
            for (int x = 0; x < c->n_routed; x++) {
                snprintf(hn, sizeof hn, "model.layers.%d.%s.experts.%d.%s", l, mixtral ? "block_sparse_moe" : "mlp", x,
                         expert_names[k][mixtral ? 2 : 1]);
                put(&o, hn, t, t->data + (uint64_t)x * slab, t->ne[1], t->ne[0], 0);
            }
            continue;
        }
        const char *pe = NULL, *after;
        int x = -1;
        if (rest && mixtral) {            /* files from before stacked experts: one tensor per expert */
            static const char *const per[3][2] = { { "ffn_gate.", "w1" }, { "ffn_up.", "w3" }, { "ffn_down.", "w2" } };
            for (int k = 0; k < 3; k++)
                if (!strncmp(rest, per[k][0], strlen(per[k][0]))) {
                    x = number(rest + strlen(per[k][0]), '.', &after);
                    if (x >= 0 && !strcmp(after, "weight")) pe = per[k][1];
                }
        }
        if (pe) {
            if (x >= c->n_routed) goto unexpected;
            snprintf(hn, sizeof hn, "model.layers.%d.block_sparse_moe.experts.%d.%s.weight", l, x, pe);
        } else if (!gguf_hf_name(gn, mixtral, hn, sizeof hn)) goto unexpected;
        if (t->ne[2] != 1 || t->ne[3] != 1) { err_set(e, "%s: tensor \"%s\" has %d dimensions, expected at most 2", m->path, gn, t->n_dims); goto fail; }
        if (check_type(&o, t)) goto fail;
        int heads = 0;
        if (llama && rest && !strcmp(rest, "attn_q.weight")) heads = c->n_heads;
        if (llama && rest && !strcmp(rest, "attn_k.weight")) heads = c->n_kv_heads;
        if (heads && (t->n_dims != 2 || t->ne[1] != (int64_t)heads * c->head_dim)) heads = 0;   /* the binder names the shape */
        put(&o, hn, t, t->data, t->n_dims == 2 ? t->ne[1] : 1, t->ne[0], heads);
        continue;
    unexpected:
        err_set(e, "%s: unexpected tensor \"%s\" (not part of a %s model with this metadata)", m->path, gn, c->model_type);
        goto fail;
    }
    return st_finalize(s, e);
fail:
    return -1;
}

int gguf_rope_factors(const Gguf *g, const ModelConfig *c, const char *path, float *inv_freq, Err *e) {
    const GgufTensor *t = gguf_tensor(g, "rope_freqs.weight");
    if (!t) return 0;
    int half = config_rope_dim(c) / 2;
    if (t->type != GGML_F32 || t->n_dims != 1 || t->ne[0] != half)
        return err_set(e, "%s: rope_freqs.weight must be F32 [%d]", path, half);
    for (int i = 0; i < half; i++) {
        float f;
        memcpy(&f, t->data + 4 * i, 4);
        if (!(f > 0) || !isfinite(f)) return err_set(e, "%s: rope_freqs.weight[%d] is %g", path, i, f);
        inv_freq[i] /= f;
    }
    return 0;
}

const char *gguf_bulk_type(const Gguf *g) {
    uint64_t by[GGML_TYPE_LIMIT] = { 0 };
    for (int64_t i = 0; i < g->n_t; i++)
        if (g->t[i].n_dims >= 2 && g->t[i].type >= 0 && g->t[i].type < GGML_TYPE_LIMIT) by[g->t[i].type] += g->t[i].nbytes;
    int best = 0;
    for (int i = 1; i < GGML_TYPE_LIMIT; i++) if (by[i] > by[best]) best = i;
    const char *n = ggml_type_name(best);
    return n ? n : "?";
}
