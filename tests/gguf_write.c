/*
 * gguf_write.c - see gguf_write.h: a Hugging Face checkpoint directory converted to
 * GGUF with the writer of bench/gguf_export.c, for the tests.
 */
#include "gguf_write.h"
#include "common.h"
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a Hugging Face checkpoint as GGUF ----------------------------------------------- */
#include "quant.h"
#include "safetensors.h"
#include "ops.h"

#include <cjson/cJSON.h>
#include <math.h>

static double jnum(const cJSON *j, const char *k, double d) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : d;
}
static int jbool(const cJSON *j, const char *k) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, k)); }


static float *tensor_f32(StTensor *t, int64_t *rows, int64_t *cols) {
    *rows = t->ndim == 2 ? t->shape[0] : 1;
    *cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
    float *f = xmalloc(sizeof(float) * (size_t)(*rows * *cols));
    Mat m = { t->dtype, t->data, NULL, *rows, *cols };
    mat_rows_f32(&m, 0, *rows, f);
    return f;
}

/* Writes rows x cols float32 as F32 or Q8_0 (ne = {cols, rows[, n3]}). */
static void put_matrix(GgufW *w, const char *name, const float *f, int64_t cols, int64_t rows, int64_t n3, int q8) {
    int64_t ne[3] = { cols, rows, n3 };
    int nd = n3 > 1 ? 3 : rows > 1 ? 2 : 1;
    if (nd == 1 || !q8 || cols % 32) {
        gw_tensor(w, name, GGML_F32, nd, ne, f, sizeof(float) * (size_t)(cols * rows * n3));
        return;
    }
    int64_t nb = cols * rows * n3 / 32;
    uint8_t *q = xmalloc((size_t)nb * 34);
    for (int64_t b = 0; b < nb; b++) {
        const float *x = f + b * 32;
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t h = f32_to_f16(d);
        memcpy(q + b * 34, &h, 2);
        for (int i = 0; i < 32; i++) q[b * 34 + 2 + i] = (uint8_t)(int8_t)lrintf(x[i] * id);
    }
    gw_tensor(w, name, GGML_Q8_0, nd, ne, q, (size_t)nb * 34);
    free(q);
}

/* convert_hf_to_gguf's LlamaModel.permute: per head, rows [first half | second half]
 * become interleaved pairs */
static void permute_rows(float *f, int64_t rows, int64_t cols, int heads) {
    int64_t hd = rows / heads, half = hd / 2;
    float *t = xmalloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t h = 0; h < heads; h++)
        for (int64_t s = 0; s < 2; s++)
            for (int64_t j = 0; j < half; j++)
                memcpy(t + (h * hd + 2 * j + s) * cols, f + (h * hd + s * half + j) * cols, sizeof(float) * (size_t)cols);
    memcpy(f, t, sizeof(float) * (size_t)(rows * cols));
    free(t);
}

int hf_to_gguf(const char *dir, const char *out, const HfToGguf *o) {
    char p[1200];
    Err e = { "" };
    snprintf(p, sizeof p, "%s/config.json", dir);
    char *txt = read_file(p, 16u << 20, NULL, &e);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    StSet st = { 0 };
    if (!j || st_open_dir(dir, &st, &e)) { fprintf(stderr, "hf_to_gguf: %s: %s\n", dir, e.msg[0] ? e.msg : "bad config"); cJSON_Delete(j); return -1; }
    const char *mt = cJSON_GetStringValue(cJSON_GetObjectItem(j, "model_type"));
    int ds = mt && !strncmp(mt, "deepseek", 8), mixtral = mt && !strcmp(mt, "mixtral"), qwen2 = mt && !strcmp(mt, "qwen2");
    const char *arch = ds ? "deepseek2" : qwen2 ? "qwen2" : "llama";
    GgufW *w = gw_new();
    char k[160];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
    gw_str(w, "general.architecture", arch);
    gw_str(w, "general.name", o && o->name ? o->name : dir);
    int L = (int)jnum(j, "num_hidden_layers", 0), H = (int)jnum(j, "num_attention_heads", 0);
    int Hkv = (int)jnum(j, "num_key_value_heads", H), D = (int)jnum(j, "hidden_size", 0);
    gw_u32(w, KEY("block_count"), (uint32_t)L);
    gw_u32(w, KEY("context_length"), (uint32_t)jnum(j, "max_position_embeddings", 4096));
    gw_u32(w, KEY("embedding_length"), (uint32_t)D);
    gw_u32(w, KEY("feed_forward_length"), (uint32_t)jnum(j, "intermediate_size", 0));
    gw_u32(w, KEY("attention.head_count"), (uint32_t)H);
    gw_u32(w, KEY("attention.head_count_kv"), ds ? 1u : (uint32_t)Hkv);
    gw_f32(w, KEY("rope.freq_base"), (float)jnum(j, "rope_theta", 10000));
    gw_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)jnum(j, "rms_norm_eps", 1e-6));
    int E = (int)jnum(j, mixtral ? "num_local_experts" : "n_routed_experts", 0);
    if (E) {
        gw_u32(w, KEY("expert_count"), (uint32_t)E);
        gw_u32(w, KEY("expert_used_count"), (uint32_t)jnum(j, "num_experts_per_tok", 0));
    }
    if (cJSON_GetObjectItem(j, "n_group")) gw_u32(w, KEY("expert_group_count"), (uint32_t)jnum(j, "n_group", 1));
    if (cJSON_GetObjectItem(j, "topk_group")) gw_u32(w, KEY("expert_group_used_count"), (uint32_t)jnum(j, "topk_group", 1));
    const char *sf = cJSON_GetStringValue(cJSON_GetObjectItem(j, "scoring_func"));
    if (sf) gw_u32(w, KEY("expert_gating_func"), !strcmp(sf, "sigmoid") ? 2u : 1u);
    int head_dim = (int)jnum(j, "head_dim", 0);
    if (head_dim && !ds) { gw_u32(w, KEY("attention.key_length"), (uint32_t)head_dim); gw_u32(w, KEY("attention.value_length"), (uint32_t)head_dim); }
    if (!head_dim) head_dim = H ? D / H : 0;
    const cJSON *rs = cJSON_GetObjectItem(j, "rope_scaling");
    const char *rt = cJSON_GetStringValue(cJSON_GetObjectItem(rs, "rope_type"));
    if (!rt) rt = cJSON_GetStringValue(cJSON_GetObjectItem(rs, "type"));
    if (rt && !strcmp(rt, "yarn")) {
        gw_str(w, KEY("rope.scaling.type"), "yarn");
        gw_f32(w, KEY("rope.scaling.factor"), (float)jnum(rs, "factor", 1));
        gw_u32(w, KEY("rope.scaling.original_context_length"), (uint32_t)jnum(rs, "original_max_position_embeddings", 4096));
        if (cJSON_GetObjectItem(rs, "beta_fast")) gw_f32(w, KEY("rope.scaling.yarn_beta_fast"), (float)jnum(rs, "beta_fast", 32));
        if (cJSON_GetObjectItem(rs, "beta_slow")) gw_f32(w, KEY("rope.scaling.yarn_beta_slow"), (float)jnum(rs, "beta_slow", 1));
    }
    int Dn = (int)jnum(j, "qk_nope_head_dim", 0), Dr = (int)jnum(j, "qk_rope_head_dim", 0), Dv = (int)jnum(j, "v_head_dim", 0);
    int Dc = (int)jnum(j, "kv_lora_rank", 0);
    if (ds) {
        gw_u32(w, KEY("leading_dense_block_count"), (uint32_t)jnum(j, "first_k_dense_replace", 0));
        gw_u32(w, KEY("vocab_size"), (uint32_t)jnum(j, "vocab_size", 0));
        if (cJSON_IsNumber(cJSON_GetObjectItem(j, "q_lora_rank"))) gw_u32(w, KEY("attention.q_lora_rank"), (uint32_t)jnum(j, "q_lora_rank", 0));
        gw_u32(w, KEY("attention.kv_lora_rank"), (uint32_t)Dc);
        gw_u32(w, KEY("attention.key_length"), (uint32_t)(Dc + Dr));
        gw_u32(w, KEY("attention.value_length"), (uint32_t)Dc);
        gw_u32(w, KEY("attention.key_length_mla"), (uint32_t)(Dn + Dr));
        gw_u32(w, KEY("attention.value_length_mla"), (uint32_t)Dv);
        gw_u32(w, KEY("expert_feed_forward_length"), (uint32_t)jnum(j, "moe_intermediate_size", 0));
        gw_u32(w, KEY("expert_shared_count"), (uint32_t)jnum(j, "n_shared_experts", 0));
        if (cJSON_GetObjectItem(j, "routed_scaling_factor")) gw_f32(w, KEY("expert_weights_scale"), (float)jnum(j, "routed_scaling_factor", 1));
        if (jbool(j, "norm_topk_prob")) gw_bool(w, KEY("expert_weights_norm"), 1);
        gw_u32(w, KEY("rope.dimension_count"), (uint32_t)Dr);
        if (rs && cJSON_GetObjectItem(rs, "mscale_all_dim")) gw_f32(w, KEY("rope.scaling.yarn_log_multiplier"), (float)(0.1 * jnum(rs, "mscale_all_dim", 0)));
    } else if (!qwen2) {
        gw_u32(w, KEY("vocab_size"), (uint32_t)jnum(j, "vocab_size", 0));
        gw_u32(w, KEY("rope.dimension_count"), (uint32_t)head_dim);
    }
    if (rt && !strcmp(rt, "llama3")) {
        double base = jnum(j, "rope_theta", 10000), factor = jnum(rs, "factor", 8), lo = jnum(rs, "low_freq_factor", 1);
        double hi = jnum(rs, "high_freq_factor", 4), old = jnum(rs, "original_max_position_embeddings", 8192);
        int half = head_dim / 2;
        float *rf = xmalloc(sizeof(float) * (size_t)half);
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf((float)base, (float)(2 * i) / (float)head_dim);
            double wl = 2 * M_PI / freq;
            if (wl < old / hi) rf[i] = 1;
            else if (wl > old / lo) rf[i] = (float)factor;
            else { double s = (old / wl - lo) / (hi - lo); rf[i] = (float)(1 / ((1 - s) / factor + s)); }
        }
        int64_t ne = half;
        gw_tensor(w, "rope_freqs.weight", GGML_F32, 1, &ne, rf, sizeof(float) * (size_t)half);
        free(rf);
    }
#undef KEY
    int q8 = o && o->q8_0, rc = 0;
    char gn[160];
    for (int i = 0; i < st.n && !rc; i++) {
        StTensor *t = &st.t[i];
        int l, n = 0, x;
        int64_t rows, cols;
        if (!strcmp(t->name, "model.embed_tokens.weight")) { float *f = tensor_f32(t, &rows, &cols); put_matrix(w, "token_embd.weight", f, cols, rows, 1, q8); free(f); continue; }
        if (!strcmp(t->name, "model.norm.weight")) { float *f = tensor_f32(t, &rows, &cols); put_matrix(w, "output_norm.weight", f, cols, 1, 1, 0); free(f); continue; }
        if (!strcmp(t->name, "lm_head.weight")) { float *f = tensor_f32(t, &rows, &cols); put_matrix(w, "output.weight", f, cols, rows, 1, q8); free(f); continue; }
        if (sscanf(t->name, "model.layers.%d.%n", &l, &n) != 1 || !n) { fprintf(stderr, "hf_to_gguf: %s: unknown tensor\n", t->name); rc = -1; break; }
        const char *rest = t->name + n;
        if (strstr(rest, ".experts.") && !strstr(rest, "shared")) {
            char wn[64];
            if (sscanf(rest, "%*[a-z_].experts.%d.%63s", &x, wn) != 2) continue;
            if (o && o->per_expert && mixtral) {
                float *f = tensor_f32(t, &rows, &cols);
                snprintf(gn, sizeof gn, "blk.%d.ffn_%s.%d.weight", l, !strcmp(wn, "w1.weight") ? "gate" : !strcmp(wn, "w3.weight") ? "up" : "down", x);
                put_matrix(w, gn, f, cols, rows, 1, q8);
                free(f);
                continue;
            }
            if (x != 0) continue;                                      /* stacked from expert 0 */
            const char *gname = !strcmp(wn, "w1.weight") || !strcmp(wn, "gate_proj.weight") ? "ffn_gate_exps.weight"
                              : !strcmp(wn, "w3.weight") || !strcmp(wn, "up_proj.weight") ? "ffn_up_exps.weight" : "ffn_down_exps.weight";
            int64_t r0 = t->shape[0], c0 = t->shape[1];
            float *all = xmalloc(sizeof(float) * (size_t)(r0 * c0 * E));
            for (int ex = 0; ex < E; ex++) {
                char en[300];
                snprintf(en, sizeof en, "model.layers.%d.%.*s%d.%s", l, (int)(strstr(rest, ".experts.") - rest) + 9, rest, ex, wn);
                StTensor *et = st_find(&st, en);
                if (!et) { fprintf(stderr, "hf_to_gguf: %s missing\n", en); rc = -1; break; }
                float *f = tensor_f32(et, &rows, &cols);
                memcpy(all + (size_t)ex * r0 * c0, f, sizeof(float) * (size_t)(r0 * c0));
                free(f);
            }
            snprintf(gn, sizeof gn, "blk.%d.%s", l, gname);
            if (!rc) put_matrix(w, gn, all, c0, r0, E, q8);
            free(all);
            continue;
        }
        const char *g = gguf_layer_suffix(rest);
        if (!g) { fprintf(stderr, "hf_to_gguf: %s: unknown tensor\n", t->name); rc = -1; break; }
        float *f = tensor_f32(t, &rows, &cols);
        if (!ds && !qwen2 && !strcmp(g, "attn_q.weight")) permute_rows(f, rows, cols, H);
        if (!ds && !qwen2 && !strcmp(g, "attn_k.weight")) permute_rows(f, rows, cols, Hkv);
        if (ds && !strcmp(g, "attn_kv_b.weight") && !(o && o->whole_kv_b)) {
            /* k_b: per head (Dn, Dc) transposed to (Dc, Dn); v_b: per head (Dv, Dc) */
            float *kb = xmalloc(sizeof(float) * (size_t)H * Dc * Dn), *vb = xmalloc(sizeof(float) * (size_t)H * Dv * Dc);
            for (int h = 0; h < H; h++) {
                for (int a = 0; a < Dn; a++)
                    for (int c = 0; c < Dc; c++) kb[((size_t)h * Dc + c) * Dn + a] = f[((size_t)h * (Dn + Dv) + a) * Dc + c];
                memcpy(vb + (size_t)h * Dv * Dc, f + ((size_t)h * (Dn + Dv) + Dn) * Dc, sizeof(float) * (size_t)Dv * Dc);
            }
            snprintf(gn, sizeof gn, "blk.%d.attn_k_b.weight", l);
            put_matrix(w, gn, kb, Dn, Dc, H, q8);
            snprintf(gn, sizeof gn, "blk.%d.attn_v_b.weight", l);
            put_matrix(w, gn, vb, Dc, Dv, H, q8);
            free(kb); free(vb); free(f);
            continue;
        }
        snprintf(gn, sizeof gn, "blk.%d.%s", l, g);
        put_matrix(w, gn, f, cols, rows, 1, q8 && t->ndim == 2);
        free(f);
    }
    if (!rc) rc = gw_write(w, out, o && o->version ? o->version : 3, o ? o->alignment : 0);
    gw_free(w);
    st_close(&st);
    cJSON_Delete(j);
    return rc;
}
