/*
 * test_gguf.c - the GGUF reader and models loaded from GGUF files.
 *
 * References: the shared goldens (DeepSeek's official inference code; the NumPy pass
 * from Hugging Face semantics) written into GGUF by tests/gguf_write.c the way
 * llama.cpp's converter writes them (llama's Q/K rows permuted, experts stacked,
 * kv_b split, llama3 scaling as rope_freqs). Tolerances:
 *   1e-4 against the goldens (their stated bound for a float32 engine);
 *   1e-5 against the same checkpoint loaded from safetensors: the same float32
 *     weights, so the logits agree exactly but for llama-tiny, whose llama3
 *     frequencies come from rope_freqs divisors rounded to float32 (~1e-7 relative);
 *   0 (bit for bit) between a GGUF model and its export back to safetensors.
 */
#define _GNU_SOURCE
#include "test.h"
#include "gguf_model.h"
#include "gguf_write.h"
#include "quant.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <unistd.h>
#include <stdlib.h>

static const char *CASES[] = { "deepseek/v3-tiny", "deepseek/v3-tiny-yarn", "deepseek/v2-lite-tiny",
                               "dense/llama-tiny", "dense/qwen2-tiny", "dense/mixtral-tiny" };

static int load(const char *path, Model *m) {
    LoadOpts o = { .dtype = DT_F32, .seed = 1 };
    Err e = { "" };
    if (model_load(m, path, &o, &e)) { t_fail(__FILE__, __LINE__, "load %s: %s", path, e.msg); return -1; }
    return 0;
}

/* prefill logits (n, V), then nc greedy tokens through the cache */
static int run(Model *m, const int *tok, int n, float *lg, int nc, int *gen) {
    KVCache kv;
    Err e = { "" };
    if (kv_create(&kv, m, 1, n + nc + 1, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return -1; }
    int seq[128] = { 0 }, pos[128];
    for (int i = 0; i < n; i++) pos[i] = i;
    int V = m->cfg.vocab, rc = model_forward(m, &kv, n, tok, seq, pos, NULL, lg, NULL, &e);
    float *row = xmalloc(sizeof(float) * (size_t)V);
    memcpy(row, lg + (size_t)(n - 1) * V, sizeof(float) * (size_t)V);
    for (int i = 0; i < nc && !rc; i++) {
        int b = 0;
        for (int v = 1; v < V; v++) if (row[v] > row[b]) b = v;
        gen[i] = b;
        int p = n + i;
        rc = model_forward(m, &kv, 1, &b, seq, &p, NULL, row, NULL, &e);
    }
    if (rc) t_fail(__FILE__, __LINE__, "forward: %s", e.msg);
    free(row);
    kv_free(&kv);
    return rc;
}

static void gguf_case(const char *rel, const HfToGguf *opt, const char *tag) {
    Case c;
    if (case_load(rel, &c)) return;
    char gp[700], p[1200];
    snprintf(gp, sizeof gp, "%s/%s%s.gguf", g_tmp, strchr(rel, '/') + 1, tag);
    if (hf_to_gguf(c.dir, gp, opt)) { t_fail(__FILE__, __LINE__, "%s: cannot write GGUF", rel); case_free(&c); return; }
    Model g, s;
    if (load(gp, &g)) { case_free(&c); return; }
    if (load(c.dir, &s)) { model_free(&g); case_free(&c); return; }
    int n = c.n_prompt, V = g.cfg.vocab;
    CHECK(g.from_gguf && !s.from_gguf, "%s: from_gguf flags", rel);
    CHECK(!strcmp(g.cfg.model_type, s.cfg.model_type), "%s: model_type %s from GGUF, %s from config.json", rel,
          g.cfg.model_type, s.cfg.model_type);
    float *lg = xmalloc(sizeof(float) * (size_t)n * V), *ls = xmalloc(sizeof(float) * (size_t)n * V);
    int gen[16], gs[16];
    if (!run(&g, c.prompt, n, lg, c.n_cont, gen) && !run(&s, c.prompt, n, ls, c.n_cont, gs)) {
        size_t w, nref;
        float d = max_abs_diff(lg, ls, (size_t)n * V, &w);
        CHECK(d <= 1e-5f, "%s%s: GGUF vs safetensors logits differ by %.3g at %zu", rel, tag, d, w);
        snprintf(p, sizeof p, "%s/logits.f32", c.dir);
        float *ref = read_f32(p, &nref);
        CHECK(ref && nref == (size_t)n * V, "%s: cannot read", p);
        if (ref && nref == (size_t)n * V) {
            float dr = max_abs_diff(lg, ref, nref, &w);
            CHECK(dr <= 1e-4f, "%s%s: GGUF logits vs golden differ by %.3g at %zu", rel, tag, dr, w);
        }
        free(ref);
        for (int i = 0; i < c.n_cont; i++)
            CHECK(gen[i] == c.cont[i], "%s%s: greedy token %d is %d, golden %d", rel, tag, i, gen[i], c.cont[i]);
        if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    %s%s: GGUF vs safetensors max diff %.3g\n", rel, tag, d);
    }
    free(lg); free(ls);
    model_free(&g); model_free(&s);
    case_free(&c);
}

/* every golden through GGUF: logits against the goldens and the safetensors engine,
 * greedy continuation */
static void t_goldens(void) {
    for (int i = 0; i < 6; i++) gguf_case(CASES[i], NULL, "");
}

/* Older files: DeepSeek's kv_b_proj whole, Mixtral's experts one tensor each; version 2 */
static void t_kv_b_whole_v2(void) {
    HfToGguf o = { .whole_kv_b = 1, .version = 2 };
    gguf_case("deepseek/v3-tiny", &o, "-whole");
    gguf_case("deepseek/v2-lite-tiny", &o, "-whole");
    HfToGguf v2 = { .version = 2 };
    gguf_case("dense/qwen2-tiny", &v2, "-v2");
    HfToGguf pe = { .per_expert = 1 };
    gguf_case("dense/mixtral-tiny", &pe, "-per-expert");
}

/* Every tensor of the GGUF model, under its HF name, equals the checkpoint's own:
 * the converter's permutation, stacking and split undone exactly. */
static void t_tensors_match(void) {
    for (int i = 0; i < 6; i++) {
        Case c;
        if (case_load(CASES[i], &c)) return;
        char gp[700];
        snprintf(gp, sizeof gp, "%s/match-%d.gguf", g_tmp, i);
        Model g;
        StSet s = { 0 };
        Err e = { "" };
        if (hf_to_gguf(c.dir, gp, NULL) || load(gp, &g)) { case_free(&c); return; }
        CHECK(st_open_dir(c.dir, &s, &e) == 0, "%s", e.msg);
        int matched = 0;
        for (int k = 0; k < s.n; k++) {
            StTensor *a = &s.t[k], *b = st_find(&g.st, a->name);
            CHECK(b != NULL, "%s: %s not in the GGUF model", CASES[i], a->name);
            if (!b) continue;
            CHECK(a->ndim == b->ndim && a->shape[0] == b->shape[0] && (a->ndim == 1 || a->shape[1] == b->shape[1]),
                  "%s: %s shape differs", CASES[i], a->name);
            int64_t n = a->ndim == 2 ? a->shape[0] * a->shape[1] : a->shape[0];
            if (a->dtype == b->dtype && a->nbytes == b->nbytes) {
                CHECK(!memcmp(a->data, b->data, a->nbytes), "%s: %s values differ", CASES[i], a->name);
                matched++;
            } else CHECK(0, "%s: %s dtype %s vs %s (n %lld)", CASES[i], a->name, dtype_name(a->dtype), dtype_name(b->dtype), (long long)n);
        }
        /* a split kv_b also kept as stored (model.h MLA_UK_T, MLA_UV): W_UK^T and W_UV of
         * the checkpoint's kv_b, element for element (float32 files here) */
        int comp = 0;
        const ModelConfig *cf = &g.cfg;
        for (int l = 0; cf->is_mla && l < cf->n_layers; l++) {
            char kn[128], un[128], vn[128];
            snprintf(kn, sizeof kn, "model.layers.%d.self_attn.kv_b_proj.weight", l);
            snprintf(un, sizeof un, "model.layers.%d." MLA_UK_T, l);
            snprintf(vn, sizeof vn, "model.layers.%d." MLA_UV, l);
            StTensor *kv = st_find(&s, kn), *uk = st_find(&g.st, un), *uv = st_find(&g.st, vn);
            CHECK(kv && uk && uv, "%s layer %d: kv_b, or the GGUF model's W_UK^T / W_UV, missing", CASES[i], l);
            if (!kv || !uk || !uv) continue;
            int64_t H = cf->n_heads, Dn = cf->qk_nope, Dv = cf->v_head, Dc = cf->kv_lora_rank, bad = 0;
            const float *w = kv->data, *a = uk->data, *b = uv->data;
            for (int64_t h = 0; h < H; h++)
                for (int64_t x = 0; x < Dc; x++) {
                    for (int64_t k = 0; k < Dn; k++) bad += a[(h * Dc + x) * Dn + k] != w[(h * (Dn + Dv) + k) * Dc + x];
                    for (int64_t v = 0; v < Dv; v++) bad += b[(h * Dv + v) * Dc + x] != w[(h * (Dn + Dv) + Dn + v) * Dc + x];
                }
            CHECK(uk->dtype == DT_F32 && uv->dtype == DT_F32 && bad == 0, "%s layer %d: %lld elements of W_UK^T / W_UV differ from kv_b",
                  CASES[i], l, (long long)bad);
            comp += 2;
        }
        CHECK(matched == s.n && g.st.n == s.n + comp, "%s: %d of %d tensors matched, GGUF model has %d (%d of them W_UK^T / W_UV)",
              CASES[i], matched, s.n, g.st.n, comp);
        st_close(&s);
        model_free(&g);
        case_free(&c);
    }
}

/* Q8_0 files: weights widened at load; the model exported back to safetensors (HF
 * names, float32, Q/K rows back in rotate-half order) gives the same logits bit for
 * bit, and stays within quantization error of the golden. */
static void t_q8_0_both_ways(void) {
    const char *cases[] = { "dense/llama-tiny", "deepseek/v3-tiny", "dense/mixtral-tiny" };
    for (int i = 0; i < 3; i++) {
        Case c;
        if (case_load(cases[i], &c)) return;
        char gp[700], dir[700], p[1200];
        snprintf(gp, sizeof gp, "%s/q8-%d.gguf", g_tmp, i);
        snprintf(dir, sizeof dir, "%s/q8-%d-hf", g_tmp, i);
        HfToGguf o = { .q8_0 = 1 };
        Model g, s;
        if (hf_to_gguf(c.dir, gp, &o) || load(gp, &g)) { case_free(&c); return; }
        int q8 = 0;
        for (int64_t k = 0; k < g.gguf.n_t; k++) q8 += g.gguf.t[k].type == GGML_Q8_0;
        CHECK(q8 > 5 && !strcmp(g.stored, "Q8_0"), "%s: %d Q8_0 tensors, bulk %s", cases[i], q8, g.stored);
        /* export: every tensor as F32 under its HF name, and the original config.json
         * (not the W_UK^T / W_UV kept beside a split kv_b: no checkpoint has them) */
        WTensor *wt = xcalloc((size_t)g.st.n, sizeof *wt);
        float **bufs = xcalloc((size_t)g.st.n, sizeof *bufs);
        int nw = 0;
        for (int k = 0; k < g.st.n; k++) {
            StTensor *t = &g.st.t[k];
            if (strstr(t->name, MLA_UK_T) || strstr(t->name, MLA_UV)) continue;
            int64_t rows = t->ndim == 2 ? t->shape[0] : 1, cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
            bufs[k] = xmalloc(sizeof(float) * (size_t)(rows * cols));
            Mat mm = { t->dtype, t->data, NULL, rows, cols };
            mat_rows_f32(&mm, 0, rows, bufs[k]);
            wt[nw++] = (WTensor){ t->name, DT_F32, t->ndim, { t->shape[0], t->shape[1] }, bufs[k] };
        }
        make_dir(dir);
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        CHECK(st_write(p, wt, nw) == 0, "write %s", p);
        char src[1200];
        snprintf(src, sizeof src, "%s/config.json", c.dir);
        snprintf(p, sizeof p, "%s/config.json", dir);
        CHECK(copy_file(src, p) == 0, "copy config");
        for (int k = 0; k < g.st.n; k++) free(bufs[k]);
        free(bufs); free(wt);
        if (load(dir, &s)) { model_free(&g); case_free(&c); return; }
        int n = c.n_prompt, V = g.cfg.vocab, gen[16], gs[16];
        float *lg = xmalloc(sizeof(float) * (size_t)n * V), *ls = xmalloc(sizeof(float) * (size_t)n * V);
        if (!run(&g, c.prompt, n, lg, 4, gen) && !run(&s, c.prompt, n, ls, 4, gs)) {
            size_t w, nref;
            float d = max_abs_diff(lg, ls, (size_t)n * V, &w);
            /* the same weights; the Q8_0 model's products read the blocks (qdot.h), the export's go
             * to BLAS in float32: summation order only (and llama-tiny's export computes its llama3
             * frequencies from the config, not from rope_freqs) */
            CHECK(d <= 1e-5f, "%s: Q8_0 GGUF vs its safetensors export differ by %.3g", cases[i], d);
            snprintf(p, sizeof p, "%s/logits.f32", c.dir);
            float *ref = read_f32(p, &nref);
            if (ref && nref == (size_t)n * V) {
                float dr = max_abs_diff(lg, ref, nref, &w);
                /* 8-bit weights: ~0.4% relative error per weight; the tiny models' logits move ~1e-2 */
                CHECK(dr > 1e-6f && dr < 0.1f, "%s: Q8_0 logits vs golden differ by %.3g (expected a quantization-sized difference)", cases[i], dr);
                if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    %s Q8_0: vs golden max diff %.3g\n", cases[i], dr);
            }
            free(ref);
        }
        free(lg); free(ls);
        model_free(&g); model_free(&s);
        case_free(&c);
    }
}

/* Absorbed MLA reads W_UK^T and W_UV as stored (model.h uk_t, uv). Sources: GGUF files
 * exported from Q8_0 and Q4_K dummies (attn_k_b in Q8_0 either way: rows of Dn = 128 are
 * no whole Q4_K block; attn_v_b in the dummy's type), and a safetensors checkpoint with
 * an F8_E4M3 kv_b, whose transpose is made at load with its 128x128 scale grid; the
 * scales are varied per block (x 1 to 2.5) so that one taken from the wrong block shows.
 * Reference: naive MLA on the same file, K and V expanded per position from the
 * float32 kv_b (another algorithm, which reads neither uk_t nor uv). Prefill of 5
 * tokens (the decode row path over all heads), of 9 (one product per head), then 4
 * decode steps. float32 products: the same values summed in another order, within 2e-5
 * of the largest logit. */
static const char MLA128[] =
    "{\"model_type\": \"deepseek_v2\", \"vocab_size\": 256, \"hidden_size\": 256, \"intermediate_size\": 256,"
    " \"moe_intermediate_size\": 256, \"num_hidden_layers\": 2, \"first_k_dense_replace\": 1, \"num_attention_heads\": 2,"
    " \"num_key_value_heads\": 2, \"kv_lora_rank\": 256, \"q_lora_rank\": null, \"qk_nope_head_dim\": 128,"
    " \"qk_rope_head_dim\": 64, \"v_head_dim\": 128, \"n_routed_experts\": 4, \"n_shared_experts\": 1,"
    " \"num_experts_per_tok\": 2, \"moe_layer_freq\": 1, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-06,"
    " \"max_position_embeddings\": 4096, \"n_group\": 1, \"topk_group\": 1, \"scoring_func\": \"softmax\","
    " \"topk_method\": \"greedy\", \"norm_topk_prob\": false, \"routed_scaling_factor\": 1.0,"
    " \"rope_scaling\": null, \"tie_word_embeddings\": false}";

/* logits of: prefill 5, prefill 9, then 4 decode steps after the 9: (5 + 9 + 4, V) */
static int mla_runs(Model *m, float *lg) {
    static const int tok[9] = { 3, 141, 59, 26, 53, 58, 97, 93, 238 };
    int V = m->cfg.vocab, seq[9] = { 0 }, pos[9], rc = 0;
    for (int i = 0; i < 9; i++) pos[i] = i;
    Err e = { "" };
    for (int k = 0; k < 2 && !rc; k++) {
        KVCache kv;
        if (kv_create(&kv, m, 1, 16, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return -1; }
        int n = k ? 9 : 5;
        rc = model_forward(m, &kv, n, tok, seq, pos, NULL, lg + (size_t)(k ? 5 : 0) * V, NULL, &e);
        for (int i = 0; k && i < 4 && !rc; i++) {
            int t = (i * 37 + 11) % V, p = 9 + i;
            rc = model_forward(m, &kv, 1, &t, seq, &p, NULL, lg + (size_t)(14 + i) * V, NULL, &e);
        }
        kv_free(&kv);
    }
    if (rc) t_fail(__FILE__, __LINE__, "%s: forward: %s", m->path, e.msg);
    return rc;
}

static void mla_stored_vs_naive(const char *path, const char *what, DType uk_dt, DType uv_dt) {
    Model a, b;
    LoadOpts oa = { .seed = 1 }, ob = { .seed = 1, .naive_mla = 1 };
    Err e = { "" };
    if (model_load(&a, path, &oa, &e)) { t_fail(__FILE__, __LINE__, "%s: %s", what, e.msg); return; }
    if (model_load(&b, path, &ob, &e)) { t_fail(__FILE__, __LINE__, "%s: %s", what, e.msg); model_free(&a); return; }
    const Attn *at = &a.layers[0].attn;
    CHECK(at->uk_t.data && at->uk_t.dt == uk_dt && at->uv.dt == uv_dt && !at->kv_b_f32,
          "%s: W_UK^T %s in %s, W_UV in %s, float32 kv_b %s (want %s, %s, none)", what, at->uk_t.data ? "made" : "missing",
          dtype_name(at->uk_t.dt), dtype_name(at->uv.dt), at->kv_b_f32 ? "made" : "none", dtype_name(uk_dt), dtype_name(uv_dt));
    size_t n = (size_t)18 * a.cfg.vocab;
    float *la = xmalloc(sizeof(float) * n), *lb = xmalloc(sizeof(float) * n);
    if (!mla_runs(&a, la) && !mla_runs(&b, lb)) {
        size_t w;
        float d = max_abs_diff(la, lb, n, &w), mx = 0;
        for (size_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(lb[i]));
        CHECK(d <= 2e-5f * fmaxf(1.0f, mx), "%s: absorbed (W_UK^T, W_UV as stored) vs naive MLA differ by %.3g at %zu (largest logit %.3g)",
              what, d, w, mx);
        if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    %s: max diff %.3g, largest logit %.3g\n", what, d, mx);
    }
    free(la); free(lb);
    model_free(&a); model_free(&b);
}

static void t_mla_stored(void) {
    const DType dts[2] = { DT_Q8_0, DT_Q4_K };
    for (int i = 0; i < 2; i++) {
        LoadOpts o = { .dtype = dts[i], .seed = 5, .dummy = 1, .config_text = MLA128 };
        Model m;
        Err e = { "" };
        char gp[700], what[64];
        snprintf(gp, sizeof gp, "%s/mla128-%s.gguf", g_tmp, dtype_name(dts[i]));
        snprintf(what, sizeof what, "GGUF %s", dtype_name(dts[i]));
        if (model_load(&m, "mla128.json", &o, &e)) { t_fail(__FILE__, __LINE__, "%s: %s", what, e.msg); continue; }
        int rc = gguf_export(&m, gp, &e);
        model_free(&m);
        if (rc) { t_fail(__FILE__, __LINE__, "%s: %s", what, e.msg); continue; }
        mla_stored_vs_naive(gp, what, DT_Q8_0, dts[i]);
    }
    /* F8_E4M3 safetensors: the dummy's weights written out, scales varied */
    LoadOpts o = { .dtype = DT_F8_E4M3, .seed = 5, .dummy = 1, .config_text = MLA128 };
    Model m;
    Err e = { "" };
    if (model_load(&m, "mla128.json", &o, &e)) { t_fail(__FILE__, __LINE__, "F8_E4M3: %s", e.msg); return; }
    char dir[700], p[800];
    snprintf(dir, sizeof dir, "%s/mla128-fp8", g_tmp);
    make_dir(dir);
    WTensor *wt = xcalloc((size_t)m.n_mats * 2, sizeof *wt);
    void **bufs = xcalloc((size_t)m.n_mats * 2, sizeof *bufs);
    int nw = 0, nb = 0;
    for (int k = 0; k < m.n_mats; k++) {
        const Mat *w = &m.mats[k].w;
        int vec = w->rows == 1 && w->dt == DT_F32 && !strstr(m.mats[k].name, "embed") && !strstr(m.mats[k].name, "lm_head");
        wt[nw++] = (WTensor){ m.mats[k].name, w->dt, vec ? 1 : 2, { vec ? w->cols : w->rows, w->cols }, w->data };
        if (w->dt != DT_F8_E4M3) continue;
        int64_t sr = (w->rows + 127) / 128, sc = (w->cols + 127) / 128;
        float *s = xmalloc(sizeof(float) * (size_t)(sr * sc));
        for (int64_t i = 0; i < sr * sc; i++) s[i] = w->scale[i] * (1.0f + 0.25f * (float)((i * 5 + k) % 7));
        char *sn = xmalloc(strlen(m.mats[k].name) + 16);
        sprintf(sn, "%s_scale_inv", m.mats[k].name);
        bufs[nb++] = s; bufs[nb++] = sn;
        wt[nw++] = (WTensor){ sn, DT_F32, 2, { sr, sc }, s };
    }
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int ok = st_write(p, wt, nw) == 0;
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    ok = ok && f && fputs(MLA128, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    CHECK(ok, "writing the F8_E4M3 checkpoint %s failed", dir);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    free(bufs); free(wt);
    model_free(&m);
    if (ok) mla_stored_vs_naive(dir, "safetensors F8_E4M3", DT_F8_E4M3, DT_F8_E4M3);
}

/* A weight moved in the GGUF file must move the logits past the tolerance. */
static void t_wrong_fails(void) {
    Case c;
    if (case_load("dense/llama-tiny", &c)) return;
    char gp[700];
    snprintf(gp, sizeof gp, "%s/wrong.gguf", g_tmp);
    Model g, s;
    if (hf_to_gguf(c.dir, gp, NULL) || load(gp, &g)) { case_free(&c); return; }
    if (load(c.dir, &s)) { model_free(&g); case_free(&c); return; }
    /* one element of layer 0's Q, in the unpermuted copy the model reads */
    StTensor *q = st_find(&g.st, "model.layers.0.self_attn.q_proj.weight");
    CHECK(q && q->dtype == DT_F32, "q_proj");
    if (q) ((float *)q->data)[5] += 0.02f;
    int n = c.n_prompt, V = g.cfg.vocab, gen[4];
    float *lg = xmalloc(sizeof(float) * (size_t)n * V), *ls = xmalloc(sizeof(float) * (size_t)n * V);
    if (!run(&g, c.prompt, n, lg, 0, gen) && !run(&s, c.prompt, n, ls, 0, gen))
        CHECK(max_abs_diff(lg, ls, (size_t)n * V, NULL) > 1e-5f, "a moved weight left the logits within 1e-5");
    free(lg); free(ls);
    model_free(&g); model_free(&s);
    case_free(&c);
}

/* ---- hostile files ------------------------------------------------------------------ */
/* A small valid file: two metadata pairs (one an array), two tensors. */
static uint8_t *small_file(size_t *len, uint32_t version) {
    GgufW *w = gw_new();
    gw_str(w, "general.architecture", "llama");
    const char *toks[] = { "a", "b", "c" };
    gw_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    float f[64];
    for (int i = 0; i < 64; i++) f[i] = (float)i;
    int64_t ne[2] = { 32, 2 };
    gw_tensor(w, "w1", GGML_F32, 2, ne, f, sizeof f);
    gw_tensor(w, "w2", GGML_F32, 1, ne, f, 128);
    char p[600];
    snprintf(p, sizeof p, "%s/small.gguf", g_tmp);
    gw_write(w, p, version, 0);
    gw_free(w);
    Err e;
    return (uint8_t *)read_file(p, 1 << 20, len, &e);
}

static void expect_refused(const uint8_t *b, size_t n, const char *what, const char *want) {
    Gguf g;
    Err e = { "" };
    int rc = gguf_parse(b, n, "x.gguf", &g, &e);
    CHECK(rc == -1, "%s: accepted", what);
    if (rc == 0) { gguf_close(&g); return; }
    CHECK(!strncmp(e.msg, "x.gguf: ", 8) && !strchr(e.msg, '\n'), "%s: message \"%s\" does not name the file on one line", what, e.msg);
    CHECK(!want || strstr(e.msg, want), "%s: message \"%s\" lacks \"%s\"", what, e.msg, want);
}

/* offsets in small_file's layout (version 3): magic 0, version 4, n_tensors 8, n_kv 16,
 * first key length 24 */
static void t_hostile_header(void) {
    size_t n;
    uint8_t *b = small_file(&n, 3);
    if (!b) { t_fail(__FILE__, __LINE__, "small file"); return; }
    Gguf g;
    Err e = { "" };
    CHECK(gguf_parse(b, n, "x.gguf", &g, &e) == 0, "the small file is refused: %s", e.msg);
    if (!e.msg[0]) {
        CHECK(g.n_t == 2 && g.n_kv == 2 && gguf_tensor(&g, "w1") && gguf_tensor(&g, "w2"), "small file contents");
        const GgufKV *kv;
        CHECK(gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_STRING, &kv, &e) == 1 && kv->arr_n == 3 && kv->strs[2].n == 1 &&
              kv->strs[2].s[0] == 'c', "string array");
        char s[32];
        CHECK(gguf_get_str(&g, "general.architecture", s, sizeof s, &e) == 1 && !strcmp(s, "llama"), "string value");
        int64_t x;
        CHECK(gguf_get_int(&g, "general.architecture", &x, &e) == -1 && strstr(e.msg, "expected an integer"), "type mismatch: %s", e.msg);
        gguf_close(&g);
    }
    /* every truncation of the header and of the data */
    for (size_t k = 0; k < n; k++) {
        Err e2 = { "" };
        if (gguf_parse(b, k, "x.gguf", &g, &e2) == 0) { CHECK(0, "truncated to %zu of %zu bytes: accepted", k, n); gguf_close(&g); break; }
        if (strncmp(e2.msg, "x.gguf: ", 8)) { CHECK(0, "truncated to %zu: \"%s\"", k, e2.msg); break; }
    }
    uint8_t *c = xmalloc(n);
#define MUT(off, type, val, what, want) do { memcpy(c, b, n); type v_ = (val); memcpy(c + (off), &v_, sizeof v_); expect_refused(c, n, what, want); } while (0)
    MUT(0, uint32_t, 0x46554758u, "bad magic", "magic");
    MUT(4, uint32_t, 1, "version 1", "version 1");
    MUT(4, uint32_t, 4, "version 4", "version 4");
    MUT(4, uint32_t, 3u << 24, "byte-swapped", "big-endian");
    MUT(8, uint64_t, 1ull << 60, "absurd tensor count", "tensor count");
    MUT(16, uint64_t, 1ull << 60, "absurd metadata count", "metadata count");
    MUT(24, uint64_t, 1ull << 62, "key length past the end", "truncated");
    MUT(24, uint64_t, 0, "empty key", "empty metadata key");
    /* first value type: after the key "general.architecture" (20 bytes) */
    MUT(52, uint32_t, 13, "unknown value type", "unknown value type");
    MUT(52, uint32_t, GGUF_ARRAY, "string read as array", NULL);
    free(c);
    free(b);
#undef MUT
}

/* crafted with the writer: each refused with its reason */
static void crafted(const char *what, const char *want, void (*build)(GgufW *), uint32_t align) {
    GgufW *w = gw_new();
    build(w);
    char p[600];
    snprintf(p, sizeof p, "%s/crafted.gguf", g_tmp);
    gw_write(w, p, 3, align);
    gw_free(w);
    Gguf g;
    Err e = { "" };
    int rc = gguf_open(p, &g, &e);
    CHECK(rc == -1, "%s: accepted", what);
    if (rc == 0) { gguf_close(&g); return; }
    CHECK(strstr(e.msg, p) == e.msg && strstr(e.msg, want) && !strchr(e.msg, '\n'), "%s: \"%s\" (want \"%s\")", what, e.msg, want);
}
static float F[4096];
static void b_dup_key(GgufW *w) { gw_u32(w, "k", 1); gw_u32(w, "k", 2); }
static void b_dup_tensor(GgufW *w) { int64_t ne[1] = { 4 }; gw_tensor(w, "t", GGML_F32, 1, ne, F, 16); gw_tensor(w, "t", GGML_F32, 1, ne, F, 16); }
static void b_5dims(GgufW *w) { int64_t ne[5] = { 1, 1, 1, 1, 1 }; gw_tensor(w, "t", GGML_F32, 5, ne, F, 4); }
static void b_0dims(GgufW *w) { int64_t ne[1] = { 1 }; gw_tensor(w, "t", GGML_F32, 0, ne, F, 4); }
static void b_type99(GgufW *w) { int64_t ne[1] = { 4 }; gw_tensor(w, "t", 99, 1, ne, F, 16); }
static void b_q4_33(GgufW *w) { int64_t ne[1] = { 33 }; gw_tensor(w, "t", GGML_Q4_0, 1, ne, F, 18); }
static void b_overflow(GgufW *w) { int64_t ne[4] = { 1ll << 40, 1ll << 40, 1ll << 40, 2 }; gw_tensor(w, "t", GGML_F32, 4, ne, F, 16); }
static void b_long_name(GgufW *w) { int64_t ne[1] = { 4 }; gw_tensor(w, "a_name_that_is_much_longer_than_the_sixty_three_bytes_ggml_allows_for", GGML_F32, 1, ne, F, 16); }
static void b_short_data(GgufW *w) { int64_t ne[1] = { 1024 }; gw_tensor(w, "t", GGML_F32, 1, ne, F, 16); }
static void b_ok(GgufW *w) { int64_t ne[1] = { 4 }; gw_tensor(w, "t", GGML_F32, 1, ne, F, 16); }

static void t_hostile_crafted(void) {
    crafted("duplicate key", "appears twice", b_dup_key, 0);
    crafted("duplicate tensor", "appears twice", b_dup_tensor, 0);
    crafted("5 dimensions", "5 dimensions", b_5dims, 0);
    crafted("0 dimensions", "0 dimensions", b_0dims, 0);
    crafted("unknown ggml type", "unknown ggml type 99", b_type99, 0);
    crafted("row not a whole number of blocks", "not a whole number of Q4_0 blocks", b_q4_33, 0);
    crafted("size overflow", "overflows", b_overflow, 0);
    crafted("long tensor name", "tensor name of", b_long_name, 0);
    crafted("data past the end", "runs past the end", b_short_data, 0);
    crafted("alignment 3", "not a power of two", b_ok, 3);
    /* patched after writing: an unaligned offset, a bool of 2, overlapping tensors */
    GgufW *w = gw_new();
    gw_bool(w, "b", 1);
    int64_t ne[1] = { 8 };
    gw_tensor(w, "t1", GGML_F32, 1, ne, F, 32);
    gw_tensor(w, "t2", GGML_F32, 1, ne, F, 32);
    char p[600];
    snprintf(p, sizeof p, "%s/patch.gguf", g_tmp);
    gw_write(w, p, 3, 0);
    gw_free(w);
    size_t n;
    Err e;
    uint8_t *b = (uint8_t *)read_file(p, 1 << 20, &n, &e), *c = xmalloc(n);
    /* layout: 24 header, key "b" (8+1) type (4) value (1) = offset 38; tensor t1: name 8+2,
     * n_dims 4, ne 8, type 4, offset 8 -> t1 offset at 38+26 = 64; t2 offset at 64+34 = 98 */
    memcpy(c, b, n); c[37] = 2; expect_refused(c, n, "bool 2", "bool value 2");
    memcpy(c, b, n); uint64_t off = 4; memcpy(c + 64, &off, 8); expect_refused(c, n, "unaligned offset", "not aligned");
    memcpy(c, b, n); off = 0; memcpy(c + 98, &off, 8); expect_refused(c, n, "overlapping tensors", "has offset 0, expected 32");
    memcpy(c, b, n); off = 1u << 20; memcpy(c + 98, &off, 8); expect_refused(c, n, "offset past the end", "past the end");
    uint32_t arr = GGUF_ARRAY;
    /* the bool's type (offset 33) turned into an array of arrays: type, then element type ARRAY */
    uint8_t *d = xmalloc(n + 12);
    memcpy(d, b, 33);
    memcpy(d + 33, &arr, 4);
    memcpy(d + 37, &arr, 4);
    uint64_t cnt = 1;
    memcpy(d + 41, &cnt, 8);
    memcpy(d + 49, b + 37, n - 37);
    expect_refused(d, n + 12, "nested array", "nested arrays");
    free(d); free(b); free(c);
    /* a NUL inside a string value: "llama" becomes "ll\0ma" */
    size_t sn;
    uint8_t *sm = small_file(&sn, 3);
    uint8_t *at = sm ? memmem(sm, sn, "llama", 5) : NULL;
    if (at) {
        at[2] = 0;
        Gguf g;
        Err e2 = { "" };
        char v[32];
        CHECK(gguf_parse(sm, sn, "x.gguf", &g, &e2) == 0, "%s", e2.msg);
        if (!e2.msg[0]) {
            CHECK(gguf_get_str(&g, "general.architecture", v, sizeof v, &e2) == -1 && strstr(e2.msg, "NUL byte"), "NUL in a string: %s", e2.msg);
            gguf_close(&g);
        }
    }
    free(sm);
    /* many keys, the duplicate far apart: found (sorted, not compared pairwise) */
    GgufW *w2 = gw_new();
    char k[32];
    for (int i = 0; i < 20000; i++) { snprintf(k, sizeof k, "key.%d", i); gw_u32(w2, k, (uint32_t)i); }
    gw_u32(w2, "key.7", 1);
    snprintf(p, sizeof p, "%s/keys.gguf", g_tmp);
    gw_write(w2, p, 3, 0);
    gw_free(w2);
    Gguf g2;
    Err e3 = { "" };
    double t0 = now_sec();
    CHECK(gguf_open(p, &g2, &e3) == -1 && strstr(e3.msg, "\"key.7\" appears twice"), "20001 keys with one repeated: %s", e3.msg);
    CHECK(now_sec() - t0 < 5, "20001 keys took %.1f s", now_sec() - t0);
}

/* Model-level refusals, each naming the file and the problem: the converted case
 * rewritten without one key and one tensor (either may be NULL), then add() appends. */
static void rewritten(const char *what, const char *want, const char *base_case, const char *drop_key, const char *drop,
                      void (*add)(GgufW *)) {
    Case c;
    if (case_load(base_case, &c)) return;
    char gp[700];
    snprintf(gp, sizeof gp, "%s/model-rep.gguf", g_tmp);
    if (hf_to_gguf(c.dir, gp, NULL)) { case_free(&c); return; }
    Gguf g;
    Err e = { "" };
    if (gguf_open(gp, &g, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); case_free(&c); return; }
    GgufW *w = gw_new();
    for (int64_t i = 0; i < g.n_kv; i++) {
        const GgufKV *kv = &g.kv[i];
        char k[200], v[200];
        snprintf(k, sizeof k, "%.*s", (int)kv->key.n, kv->key.s);
        if (drop_key && !strcmp(k, drop_key)) continue;
        switch (kv->type) {
        case GGUF_STRING: snprintf(v, sizeof v, "%.*s", (int)kv->v.str.n, kv->v.str.s); gw_str(w, k, v); break;
        case GGUF_U32: gw_u32(w, k, (uint32_t)kv->v.u); break;
        case GGUF_F32: gw_f32(w, k, (float)kv->v.f); break;
        case GGUF_BOOL: gw_bool(w, k, (int)kv->v.u); break;
        default: break;
        }
    }
    for (int64_t i = 0; i < g.n_t; i++) {
        const GgufTensor *t = &g.t[i];
        char nm[80];
        snprintf(nm, sizeof nm, "%.*s", (int)t->name.n, t->name.s);
        if (drop && !strcmp(nm, drop)) continue;
        gw_tensor(w, nm, t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
    if (add) add(w);
    gguf_close(&g);
    gw_write(w, gp, 3, 0);
    gw_free(w);
    Model m;
    LoadOpts o = { .dtype = DT_F32 };
    int rc = model_load(&m, gp, &o, &e);
    CHECK(rc == -1, "%s: accepted", what);
    if (rc == 0) model_free(&m);
    else CHECK(strstr(e.msg, gp) == e.msg && strstr(e.msg, want) && !strchr(e.msg, '\n'), "%s: \"%s\" (want \"%s\")", what, e.msg, want);
    case_free(&c);
}
static void e_arch(GgufW *w) { gw_str(w, "general.architecture", "phi3"); }
static void e_linear(GgufW *w) { gw_str(w, "llama.rope.scaling.type", "linear"); }
static void e_iq2(GgufW *w) { int64_t ne[2] = { 256, 1 }; uint8_t z[66] = { 0 }; gw_tensor(w, "blk.0.attn_q.weight", 16, 2, ne, z, 66); }
static void e_extra(GgufW *w) { int64_t ne[1] = { 4 }; gw_tensor(w, "blk.0.frobnicate.weight", GGML_F32, 1, ne, F, 16); }
static void e_nan(GgufW *w) {
    static float nan_norm[128];
    for (int i = 0; i < 128; i++) nan_norm[i] = i == 7 ? NAN : 1.0f;
    int64_t ne[1] = { 128 };
    gw_tensor(w, "output_norm.weight", GGML_F32, 1, ne, nan_norm, sizeof nan_norm);
}
static void e_shape(GgufW *w) { int64_t ne[1] = { 64 }; gw_tensor(w, "output_norm.weight", GGML_F32, 1, ne, F, 256); }

static float BIG[16384];
static void e_scale(GgufW *w) { gw_f32(w, "llama.rope.scaling.factor", 4.0f); }
static void e_scale_lin(GgufW *w) { gw_f32(w, "qwen2.rope.scale_linear", 2.0f); }
static void e_temp(GgufW *w) { gw_f32(w, "deepseek2.attention.temperature_scale", 0.1f); }
static void e_ropef(GgufW *w) { int64_t ne[1] = { 16 }; gw_tensor(w, "rope_freqs.weight", GGML_F32, 1, ne, F, 64); }
static void e_tokens(GgufW *w) { const char *t[3] = { "a", "b", "c" }; gw_arr_str(w, "tokenizer.ggml.tokens", t, 3); }
static void e_leading0(GgufW *w) { int64_t ne[2] = { 128, 128 }; gw_tensor(w, "blk.01.attn_output.weight", GGML_F32, 2, ne, BIG, sizeof BIG); }
static void e_zero(GgufW *w) { int64_t ne[2] = { 0, 1ll << 40 }; gw_tensor(w, "blk.0.attn_v.weight", GGML_Q8_0, 2, ne, F, 0); }

static void t_model_refusals(void) {
    rewritten("linear scaling factor", "linear scaling is not supported", "dense/llama-tiny", NULL, NULL, e_scale);
    rewritten("rope.scale_linear", "rope.scale_linear 2", "dense/qwen2-tiny", NULL, NULL, e_scale_lin);
    rewritten("temperature scaling", "temperature_scale", "deepseek/v3-tiny", NULL, NULL, e_temp);
    rewritten("rope_freqs on qwen2", "rope_freqs.weight is only read for llama", "dense/qwen2-tiny", NULL, NULL, e_ropef);
    rewritten("tokenizer and embedding sizes", "3 tokens but token_embd.weight 512 rows", "dense/qwen2-tiny", NULL, NULL, e_tokens);
    rewritten("layer number with a leading zero", "unexpected tensor \"blk.01.attn_output.weight\"", "dense/qwen2-tiny", NULL, "blk.1.attn_output.weight", e_leading0);
    rewritten("a dimension of 0", "has a dimension of 0", "dense/qwen2-tiny", NULL, "blk.0.attn_v.weight", e_zero);
    rewritten("unsupported architecture", "architecture \"phi3\" is not supported", "dense/qwen2-tiny", "general.architecture", NULL, e_arch);
    rewritten("no architecture", "no general.architecture", "dense/qwen2-tiny", "general.architecture", NULL, NULL);
    rewritten("missing head count", "missing metadata \"llama.attention.head_count\"", "dense/llama-tiny", "llama.attention.head_count", NULL, NULL);
    rewritten("linear RoPE scaling", "RoPE scaling \"linear\"", "dense/mixtral-tiny", NULL, NULL, e_linear);
    rewritten("unexpected tensor", "unexpected tensor \"blk.0.frobnicate.weight\"", "dense/qwen2-tiny", NULL, NULL, e_extra);
}

static void t_model_tensors_refused(void) {
    rewritten("missing tensor", "missing tensor \"blk.1.attn_output.weight\"", "dense/qwen2-tiny", NULL, "blk.1.attn_output.weight", NULL);
    rewritten("missing expert tensor", "missing tensor \"blk.2.ffn_up_exps.weight (expert 0)\"", "deepseek/v3-tiny", NULL, "blk.2.ffn_up_exps.weight", NULL);
    rewritten("unsupported weight type", "weight type IQ2_XXS, which is not supported", "dense/llama-tiny", NULL, "blk.0.attn_q.weight", e_iq2);
    rewritten("NaN in a weight", "NaN", "dense/qwen2-tiny", NULL, "output_norm.weight", e_nan);
    rewritten("wrong shape", "output_norm.weight", "dense/qwen2-tiny", NULL, "output_norm.weight", e_shape);
}

/* a config from metadata alone: --dummy shapes from a GGUF file */
static void t_dummy_from_gguf(void) {
    Case c;
    if (case_load("deepseek/v2-lite-tiny", &c)) return;
    char gp[700];
    snprintf(gp, sizeof gp, "%s/dummy.gguf", g_tmp);
    if (hf_to_gguf(c.dir, gp, NULL)) { case_free(&c); return; }
    Model g, s;
    LoadOpts o = { .dtype = DT_BF16, .seed = 3, .dummy = 1 };
    Err e = { "" };
    CHECK(model_load(&g, gp, &o, &e) == 0, "dummy from GGUF: %s", e.msg);
    CHECK(model_load(&s, c.dir, &o, &e) == 0, "dummy from config: %s", e.msg);
    if (!e.msg[0]) {
        CHECK(g.n_params == s.n_params && g.weight_bytes == s.weight_bytes, "dummy from GGUF: %llu params, from config %llu",
              (unsigned long long)g.n_params, (unsigned long long)s.n_params);
        CHECK(!memcmp(&g.cfg.kv_lora_rank, &s.cfg.kv_lora_rank, sizeof(int)) && g.cfg.n_routed == s.cfg.n_routed &&
              g.cfg.top_k == s.cfg.top_k && g.cfg.first_k_dense == s.cfg.first_k_dense && g.cfg.score == s.cfg.score &&
              g.cfg.topk_method == s.cfg.topk_method && g.cfg.routed_scale == s.cfg.routed_scale, "configs differ");
    }
    model_free(&g); model_free(&s);
    case_free(&c);
}

/* YaRN without yarn_log_multiplier (a config without mscale_all_dim): Hugging Face's
 * defaults, the same logits as the checkpoint from safetensors */
static void t_yarn_defaults(void) {
    Case c;
    if (case_load("deepseek/v3-tiny-yarn", &c)) return;
    char dir[700], p[1200], src[1200];
    snprintf(dir, sizeof dir, "%s/yarn-nomscale", g_tmp);
    make_dir(dir);
    snprintf(src, sizeof src, "%s/config.json", c.dir);
    Err e = { "" };
    char *txt = read_file(src, 1 << 20, NULL, &e);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    cJSON *rs = cJSON_GetObjectItem(j, "rope_scaling");
    cJSON_DeleteItemFromObject(rs, "mscale");
    cJSON_DeleteItemFromObject(rs, "mscale_all_dim");
    char *out = cJSON_Print(j);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(write_file_atomic(p, out, strlen(out), &e) == 0, "%s", e.msg);
    free(out);
    cJSON_Delete(j);
    snprintf(p, sizeof p, "%s/model.safetensors", c.dir);
    char *abs = realpath(p, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(abs && symlink(abs, p) == 0, "symlink to %s", abs ? abs : "?");
    free(abs);
    snprintf(p, sizeof p, "%s/yarn-nomscale.gguf", g_tmp);
    Model g, s;
    int rc = hf_to_gguf(dir, p, NULL);
    CHECK(rc == 0, "convert %s", dir);
    if (rc || load(p, &g)) { case_free(&c); return; }
    if (load(dir, &s)) { model_free(&g); case_free(&c); return; }
    CHECK(g.rope_mscale == s.rope_mscale && g.attn_scale == s.attn_scale, "YaRN scales: GGUF %g %g, config %g %g",
          g.rope_mscale, g.attn_scale, s.rope_mscale, s.attn_scale);
    int n = c.n_prompt, V = g.cfg.vocab, gen[2];
    float *lg = xmalloc(sizeof(float) * (size_t)n * V), *ls = xmalloc(sizeof(float) * (size_t)n * V);
    if (!run(&g, c.prompt, n, lg, 0, gen) && !run(&s, c.prompt, n, ls, 0, gen))
        CHECK(max_abs_diff(lg, ls, (size_t)n * V, NULL) == 0, "YaRN defaults: GGUF and safetensors logits differ");
    free(lg); free(ls);
    model_free(&g); model_free(&s);
    case_free(&c);
}

/* alignment 1: tensors at offsets that are not multiples of 4 are copied before use
 * (the sanitizer build would report misaligned float loads otherwise) */
static void t_alignment_one(void) {
    Case c;
    if (case_load("dense/qwen2-tiny", &c)) return;
    char p[700];
    snprintf(p, sizeof p, "%s/align1.gguf", g_tmp);
    int misaligned = 0;
    for (int pad = 0; pad < 4 && !misaligned; pad++) {       /* a name length that puts the data off a multiple of 4 */
        char nm[8] = "abcd";
        nm[pad] = 0;
        HfToGguf o = { .alignment = 1, .name = nm };
        if (hf_to_gguf(c.dir, p, &o)) { CHECK(0, "convert %s", c.dir); break; }
        Gguf g;
        Err e = { "" };
        if (gguf_open(p, &g, &e) == 0) { misaligned = g.data_off % 4 != 0; gguf_close(&g); }
    }
    CHECK(misaligned, "could not place the data off a multiple of 4");
    if (misaligned) {
        Model g, s;
        if (load(p, &g) == 0) {
            if (load(c.dir, &s) == 0) {
                int n = c.n_prompt, V = g.cfg.vocab, gen[2];
                float *lg = xmalloc(sizeof(float) * (size_t)n * V), *ls = xmalloc(sizeof(float) * (size_t)n * V);
                if (!run(&g, c.prompt, n, lg, 0, gen) && !run(&s, c.prompt, n, ls, 0, gen))
                    CHECK(max_abs_diff(lg, ls, (size_t)n * V, NULL) == 0, "alignment 1: logits differ");
                free(lg); free(ls);
                model_free(&s);
            }
            model_free(&g);
        }
    }
    case_free(&c);
}

const TestDef gguf_tests[] = {
    { "gguf_yarn_without_log_multiplier", t_yarn_defaults },
    { "gguf_alignment_one_copied", t_alignment_one },
    { "gguf_goldens_logits_and_greedy", t_goldens },
    { "gguf and F8_E4M3 MLA: W_UK^T and W_UV read as stored = naive MLA", t_mla_stored },
    { "gguf_older_layouts_and_version_2", t_kv_b_whole_v2 },
    { "gguf_tensors_equal_checkpoint", t_tensors_match },
    { "gguf_q8_0_and_export_both_ways", t_q8_0_both_ways },
    { "gguf_moved_weight_fails", t_wrong_fails },
    { "gguf_hostile_header_truncations", t_hostile_header },
    { "gguf_hostile_crafted", t_hostile_crafted },
    { "gguf_model_refusals", t_model_refusals },
    { "gguf_model_tensor_refusals", t_model_tensors_refused },
    { "gguf_dummy_shapes_from_metadata", t_dummy_from_gguf },
};
const int n_gguf_tests = sizeof gguf_tests / sizeof *gguf_tests;
