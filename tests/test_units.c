/*
 * test_units.c - unit tests against closed forms and second algorithms: number
 * formats, config parsing and RoPE tables, the matrix product in every dtype and
 * path, RMSNorm, and cache sizes; the forward step's reuse of its work area.
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

/* ---- number formats ----------------------------------------------------------------- */
static void t_fp8_codes(void) {
    /* E4M3 closed form: s * 2^(e-7) * (1 + m/8), subnormal s * 2^-6 * m/8, 0x7f NaN */
    for (int b = 0; b < 256; b++) {
        int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
        float got = f8e4m3_to_f32((uint8_t)b);
        if (e == 15 && m == 7) { CHECK(isnan(got), "code 0x%02x should be NaN", b); continue; }
        double want = e ? pow(2, e - 7) * (1 + m / 8.0) : pow(2, -6) * (m / 8.0);
        if (s) want = -want;
        CHECK(got == (float)want, "code 0x%02x: %g, want %g", b, got, want);
        if (!isnan(got)) CHECK(f32_to_f8e4m3(got) == (uint8_t)b || (got == 0 && (b & 0x7f) == 0),
                               "round trip of code 0x%02x gives 0x%02x", b, f32_to_f8e4m3(got));
    }
    CHECK(f8e4m3_to_f32(0x7e) == 448.0f, "max finite should be 448");
    CHECK(f32_to_f8e4m3(1000.0f) == 0x7e, "saturation");
    CHECK(f32_to_f8e4m3(1.0625f) == 0x38, "1.0625 ties to even 1.0");   /* between 1.0 (0x38) and 1.125 (0x39) */
}

static void t_half_formats(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        if (f32_to_f16(f) != h && !(f == 0 && (h & 0x7fff) == 0)) bad++;
        /* a second algorithm for the value: via the compiler's _Float16 */
        _Float16 hv;
        uint16_t hh = (uint16_t)h;
        memcpy(&hv, &hh, 2);
        if ((float)hv != f) bad++;
    }
    CHECK(bad == 0, "%d F16 codes do not round-trip or disagree with _Float16", bad);
    CHECK(bf16_to_f32(f32_to_bf16(1.00390625f)) == 1.0f, "bf16 ties to even (down)");
    CHECK(bf16_to_f32(f32_to_bf16(1.01171875f)) == 1.015625f, "bf16 ties to even (up)");
    CHECK(bf16_to_f32(f32_to_bf16(3.0f)) == 3.0f, "bf16 exact");
}

/* ---- config ------------------------------------------------------------------------- */
static void t_config_reference(void) {
    ModelConfig c;
    Err e = { "" };
    CHECK(config_load("suites/configs/deepseek-v3.json", &c, &e) == 0, "%s", e.msg);
    CHECK(c.arch == ARCH_DEEPSEEK_V3 && c.q_lora_rank == 1536 && c.kv_lora_rank == 512 && c.n_routed == 256 &&
          c.top_k == 8 && c.n_group == 8 && c.topk_group == 4 && c.topk_method == TOPK_NOAUX_TC &&
          c.score == SCORE_SIGMOID && c.first_k_dense == 3 && c.n_nextn_layers == 1 && c.rope_scaling == ROPE_YARN,
          "DeepSeek-V3 fields");
    CHECK(fabsf(c.routed_scale - 2.5f) < 1e-6f, "routed_scaling_factor");
    CHECK(!config_is_moe_layer(&c, 2) && config_is_moe_layer(&c, 3), "first_k_dense_replace");
    CHECK(config_load("suites/configs/deepseek-v2-lite.json", &c, &e) == 0, "%s", e.msg);
    CHECK(c.q_lora_rank == 0 && c.score == SCORE_SOFTMAX && c.topk_method == TOPK_GREEDY && c.n_shared == 2, "V2-Lite fields");
    /* yarn with mscale_all_dim 0.707: scale = 192^-0.5 * (0.1*0.707*ln 40 + 1)^2 */
    double want = 1 / sqrt(192.0) * pow(0.1 * 0.707 * log(40.0) + 1, 2);
    CHECK(fabs(config_softmax_scale(&c) - want) < 1e-6, "V2-Lite softmax scale %g, want %g", config_softmax_scale(&c), want);
    CHECK(config_load("suites/configs/llama-3.1-8b.json", &c, &e) == 0, "%s", e.msg);
    CHECK(c.n_kv_heads == 8 && c.head_dim == 128 && c.rope_scaling == ROPE_LLAMA3, "Llama-3.1-8B fields");
    CHECK(config_load("suites/configs/qwen2.5-7b.json", &c, &e) == 0 && c.qkv_bias, "Qwen2.5 biases: %s", e.msg);
    CHECK(config_load("suites/configs/mixtral-8x7b.json", &c, &e) == 0 && c.n_routed == 8 && c.top_k == 2, "Mixtral: %s", e.msg);
}

/* RoPE tables against the values the references used (case.json rope) */
static void check_rope(const char *rel, const char *key_scale) {
    Case cs;
    if (case_load(rel, &cs)) return;
    char p[1200];
    snprintf(p, sizeof p, "%s/config.json", cs.dir);
    ModelConfig c;
    Err e = { "" };
    CHECK(config_load(p, &c, &e) == 0, "%s", e.msg);
    const cJSON *rope = cJSON_GetObjectItem(cs.json, "rope");
    const cJSON *inv = cJSON_GetObjectItem(rope, "inv_freq");
    float got[256];
    config_rope_inv_freq(&c, got);
    int i = 0;
    for (const cJSON *v = inv ? inv->child : NULL; v; v = v->next, i++)
        CHECK(fabs(got[i] - v->valuedouble) <= 1e-6 * fabs(v->valuedouble), "%s inv_freq[%d] %.9g, want %.9g", rel, i, got[i], v->valuedouble);
    CHECK(i == config_rope_dim(&c) / 2, "%s: %d inv_freq values, want %d", rel, i, config_rope_dim(&c) / 2);
    const cJSON *sc = cJSON_GetObjectItem(rope, key_scale);
    if (sc) CHECK(fabs(config_softmax_scale(&c) - sc->valuedouble) < 1e-6, "%s softmax scale %.9g, want %.9g", rel, config_softmax_scale(&c), sc->valuedouble);
    case_free(&cs);
}

static void t_rope_tables(void) {
    check_rope("deepseek/v3-tiny-yarn", "softmax_scale");
    check_rope("deepseek/v3-tiny", "softmax_scale");
    check_rope("dense/llama-tiny", "attention_scale");
    check_rope("dense/qwen2-tiny", "attention_scale");
}

/* RoPE is a rotation: norms kept, position 0 the identity, angle additive */
static void t_rope_rotation(void) {
    float inv[4] = { 1.0f, 0.1f, 0.01f, 0.001f }, x[8], y[8];
    for (int i = 0; i < 8; i++) x[i] = y[i] = (float)(i + 1) * 0.3f;
    rope_interleaved(y, 8, 0, inv, 1.0f);
    CHECK(max_abs_diff(x, y, 8, NULL) == 0, "position 0 must be the identity");
    rope_interleaved(y, 8, 3, inv, 1.0f);
    rope_interleaved(y, 8, 4, inv, 1.0f);
    float z[8];
    memcpy(z, x, sizeof z);
    rope_interleaved(z, 8, 7, inv, 1.0f);
    /* float32 sin/cos of two angles composed vs one: a few ulp of values near 1 */
    CHECK(max_abs_diff(y, z, 8, NULL) < 1e-5f, "rotations by 3 then 4 must equal one by 7");
    memcpy(z, x, sizeof z);
    rope_half(z, 8, 5, inv, 1.0f);
    /* rotate-half: pair (0,4) by angle 5*inv[0] */
    float c = cosf(5.0f), s = sinf(5.0f);
    /* the same float32 formula on both sides: only rounding of |x| <= 2.4 differs */
    CHECK(fabsf(z[0] - (x[0] * c - x[4] * s)) < 1e-6f && fabsf(z[4] - (x[4] * c + x[0] * s)) < 1e-6f, "rotate-half pairs i, i+d/2");
}

/* ---- matrix product ----------------------------------------------------------------- */
static void t_linear_all_paths(void) {
    const int R = 150, C = 300;               /* not multiples of the 128 block or 64-row block */
    float *w32 = xmalloc(sizeof(float) * R * C), *x = xmalloc(sizeof(float) * 20 * C);
    for (int i = 0; i < R * C; i++) w32[i] = sinf(0.37f * i) * 0.5f;
    for (int i = 0; i < 20 * C; i++) x[i] = cosf(0.11f * i);
    uint16_t *wb = xmalloc(2 * R * C), *wh = xmalloc(2 * R * C);
    uint8_t *w8 = xmalloc(R * C);
    float sc[2 * 3] = { 0.5f, 0.25f, 2.0f, 1.0f, 0.125f, 4.0f };   /* (ceil(150/128), ceil(300/128)) */
    for (int i = 0; i < R * C; i++) { wb[i] = f32_to_bf16(w32[i]); wh[i] = f32_to_f16(w32[i]); w8[i] = f32_to_f8e4m3(w32[i]); }
    Mat mats[4] = { { DT_F32, w32, NULL, R, C }, { DT_BF16, wb, NULL, R, C }, { DT_F16, wh, NULL, R, C }, { DT_F8_E4M3, w8, sc, R, C } };
    float *scratch = xmalloc(sizeof(float) * linear_scratch_floats(C));
    float y[20 * 150], bias[150];
    for (int i = 0; i < R; i++) bias[i] = 0.01f * i;
    int Ts[3] = { 1, 3, 20 };                 /* gemv, row path, block path */
    for (int k = 0; k < 4; k++)
        for (int ti = 0; ti < 3; ti++) {
            int T = Ts[ti];
            linear(y, R, x, C, T, &mats[k], 0, R, bias, scratch);
            double worst = 0;
            for (int t = 0; t < T; t++)
                for (int r = 0; r < R; r++) {
                    double s = bias[r];       /* reference: double, element by element */
                    for (int cc = 0; cc < C; cc++) {
                        double wv = k == 0 ? w32[r * C + cc] : k == 1 ? bf16_to_f32(wb[r * C + cc])
                                  : k == 2 ? f16_to_f32(wh[r * C + cc])
                                  : f8e4m3_to_f32(w8[r * C + cc]) * sc[(r / 128) * 3 + cc / 128];
                        s += wv * x[t * C + cc];
                    }
                    double d = fabs(s - y[t * R + r]);
                    if (d > worst) worst = d;
                }
            /* float32 accumulation over 300 terms of size <= ~4: error well under 1e-4 */
            CHECK(worst < 1e-4, "%s T=%d: max error %.3g", dtype_name(mats[k].dt), T, worst);
        }
    /* a row window r0..r0+nr */
    linear(y, 10, x, C, 1, &mats[1], 140, 10, NULL, scratch);
    double s = 0;
    for (int cc = 0; cc < C; cc++) s += bf16_to_f32(wb[145 * C + cc]) * x[cc];
    CHECK(fabs(s - y[5]) < 1e-4, "row window: %g vs %g", y[5], s);
    free(w32); free(x); free(wb); free(wh); free(w8); free(scratch);
}

static void t_rmsnorm_closed_form(void) {
    float x[64], w[64], o[64];
    for (int i = 0; i < 64; i++) { x[i] = (i % 2 ? 3.0f : -3.0f); w[i] = 0.5f + i; }
    rmsnorm(o, 64, x, 64, 1, 64, w, 1e-6f);
    float r = 1.0f / sqrtf(9.0f + 1e-6f);
    /* closed form in float32; the engine sums squares in double: values up to ~64, so 1e-5 is ~1 ulp */
    for (int i = 0; i < 64; i++) CHECK(fabsf(o[i] - x[i] * r * w[i]) < 1e-5f, "rmsnorm[%d]", i);
}

static void t_kv_bytes_closed_form(void) {
    /* (name, closed form in float32 elements per token): MLA (Dc + Dr) * L, dense 2 * Hkv * hd * L */
    struct { const char *cfg; uint64_t elems; } cases[] = {
        { "deepseek-v3.json", (512ull + 64) * 61 },
        { "deepseek-v2-lite.json", (512ull + 64) * 27 },
        { "llama-3.1-8b.json", 2ull * 8 * 128 * 32 },
        { "llama-3.1-405b.json", 2ull * 8 * 128 * 126 },
        { "qwen2.5-72b.json", 2ull * 8 * 128 * 80 },
        { "mixtral-8x7b.json", 2ull * 8 * 128 * 32 },
    };
    for (int k = 0; k < 6; k++) {
        char p[256];
        snprintf(p, sizeof p, "suites/configs/%s", cases[k].cfg);
        Model m;
        LoadOpts o = { .dtype = DT_BF16, .dummy = 1, .shapes_only = 1 };
        Err e = { "" };
        if (model_load(&m, p, &o, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); continue; }
        KVCache kv;
        CHECK(kv_create(&kv, &m, 2, 4, &e) == 0, "%s", e.msg);
        CHECK(kv_bytes_per_token(&kv) == cases[k].elems * 4, "%s: cache bytes/token %llu, closed form %llu", cases[k].cfg,
              (unsigned long long)kv_bytes_per_token(&kv), (unsigned long long)cases[k].elems * 4);
        kv_free(&kv);
        model_free(&m);
    }
}

/* dummy weights: seeded, reproducible, finite logits, every family and dtype */
static void t_dummy_models(void) {
    const char *cases[] = { "deepseek/v3-tiny", "deepseek/v2-lite-tiny", "dense/llama-tiny", "dense/qwen2-tiny", "dense/mixtral-tiny" };
    DType dts[] = { DT_F8_E4M3, DT_BF16, DT_F16, DT_BF16, DT_F32 };
    for (int k = 0; k < 5; k++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s/config.json", g_golden, cases[k]);
        FILE *probe = fopen(p, "r");
        if (!probe) { t_skip("golden config %s not found", cases[k]); return; }
        fclose(probe);
        LoadOpts o = { .dtype = dts[k], .layers = 2, .seed = 7, .dummy = 1 };
        Err e = { "" };
        Model m;
        if (model_load(&m, p, &o, &e)) { t_fail(__FILE__, __LINE__, "%s: %s", cases[k], e.msg); continue; }
        CHECK(m.cfg.n_layers == 2, "--layers 2 kept %d layers", m.cfg.n_layers);
        KVCache kv;
        if (kv_create(&kv, &m, 1, 8, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); model_free(&m); continue; }
        int tok[3] = { 1, 2, 3 }, seq[3] = { 0 }, pos[3] = { 0, 1, 2 };
        float *lg = xmalloc(sizeof(float) * 3 * (size_t)m.cfg.vocab);
        unsigned char want[3] = { 0, 0, 1 };
        CHECK(model_forward(&m, &kv, 3, tok, seq, pos, want, lg, NULL, &e) == 0, "%s: %s", cases[k], e.msg);
        float a = lg[0], b = lg[m.cfg.vocab / 2];
        CHECK(a != b, "%s: logits look constant", cases[k]);
        kv_free(&kv);
        model_free(&m);
        /* same seed, same logits; another seed, other logits */
        for (int s = 0; s < 2; s++) {
            o.seed = s ? 8 : 7;
            if (model_load(&m, p, &o, &e) == 0 && kv_create(&kv, &m, 1, 8, &e) == 0) {
                CHECK(model_forward(&m, &kv, 3, tok, seq, pos, want, lg, NULL, &e) == 0, "%s", e.msg);
                if (s == 0) CHECK(lg[0] == a && lg[m.cfg.vocab / 2] == b, "%s: dummy weights not reproducible", cases[k]);
                else CHECK(lg[0] != a, "%s: the seed changes nothing", cases[k]);
                kv_free(&kv);
                model_free(&m);
            }
        }
        free(lg);
    }
}

/* ---- the step's work area ----------------------------------------------------------- */
/* a deepseek_v3-style model (MLA with q_lora, sigmoid noaux_tc routing in groups, a
 * shared expert, a dense first layer) and a llama-style one (GQA, 8 heads on 2) */
static const char WORK_MLA[] =
    "{\"model_type\": \"deepseek_v3\", \"vocab_size\": 256, \"hidden_size\": 64, \"intermediate_size\": 96,"
    " \"moe_intermediate_size\": 32, \"num_hidden_layers\": 2, \"first_k_dense_replace\": 1, \"num_attention_heads\": 4,"
    " \"num_key_value_heads\": 4, \"kv_lora_rank\": 32, \"q_lora_rank\": 48, \"qk_nope_head_dim\": 16,"
    " \"qk_rope_head_dim\": 8, \"v_head_dim\": 16, \"n_routed_experts\": 8, \"n_shared_experts\": 1,"
    " \"num_experts_per_tok\": 2, \"moe_layer_freq\": 1, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-06,"
    " \"max_position_embeddings\": 4096, \"n_group\": 4, \"topk_group\": 2, \"scoring_func\": \"sigmoid\","
    " \"topk_method\": \"noaux_tc\", \"norm_topk_prob\": true, \"routed_scaling_factor\": 2.5,"
    " \"rope_scaling\": null, \"tie_word_embeddings\": false}";
static const char WORK_GQA[] =
    "{\"model_type\": \"llama\", \"vocab_size\": 256, \"hidden_size\": 64, \"intermediate_size\": 128,"
    " \"num_hidden_layers\": 2, \"num_attention_heads\": 8, \"num_key_value_heads\": 2, \"head_dim\": 8,"
    " \"max_position_embeddings\": 512, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false}";

/* one step of both models: a (its work area kept) and b (its work area made afresh);
 * returns the allocations a made, or -1 on an error; the logits must agree bit for bit:
 * the same code on the same inputs, so any difference is stale data read from a reused
 * buffer */
static int64_t step_pair(const char *name, const char *what, Model *a, KVCache *ka, Model *b, KVCache *kb, int n,
                         const int *tok, const int *seq, const int *pos, float *la, float *lb) {
    Err e = { "" };
    model_work_free(b);
    uint64_t before = alloc_count();
    int rc = model_forward(a, ka, n, tok, seq, pos, NULL, la, NULL, &e);
    int64_t made = (int64_t)(alloc_count() - before);
    before = alloc_count();
    if (!rc) rc = model_forward(b, kb, n, tok, seq, pos, NULL, lb, NULL, &e);
    if (rc) { t_fail(__FILE__, __LINE__, "%s, %s: %s", name, what, e.msg); return -1; }
    CHECK(alloc_count() > before, "%s, %s: a fresh work area was made without an allocation counted", name, what);
    size_t nv = (size_t)n * (size_t)a->cfg.vocab, at = 0;
    if (memcmp(la, lb, sizeof(float) * nv)) {
        float d = max_abs_diff(la, lb, nv, &at);
        t_fail(__FILE__, __LINE__, "%s, %s: logits differ from a fresh work area's: max |diff| %g at %zu (%g vs %g)", name,
               what, d, at, la[at], lb[at]);
        return -1;
    }
    return made;
}

static void t_step_work_reused(void) {
    /* the counter itself: one known allocation of each kind, and nothing else */
    uint64_t c0 = alloc_count();
    void *p = xmalloc(8);
    p = xrealloc(p, 16);
    free(p);
    free(xcalloc(2, 4));
    CHECK(alloc_count() - c0 == 3, "xmalloc, xrealloc, xcalloc counted as %llu allocations, want 3",
          (unsigned long long)(alloc_count() - c0));
    struct { const char *name, *cfg; int naive; DType kv; } cases[] = {
        { "deepseek_v3 MLA+MoE", WORK_MLA, 0, DT_F32 }, { "deepseek_v3 naive MLA+MoE", WORK_MLA, 1, DT_F32 },
        { "llama GQA", WORK_GQA, 0, DT_F32 },
        { "deepseek_v3 MLA+MoE, bf16 cache", WORK_MLA, 0, DT_BF16 }, { "deepseek_v3 MLA+MoE, fp8 cache", WORK_MLA, 0, DT_F8_E4M3 },
        { "deepseek_v3 naive MLA+MoE, fp8 cache", WORK_MLA, 1, DT_F8_E4M3 },
        { "llama GQA, bf16 cache", WORK_GQA, 0, DT_BF16 }, { "llama GQA, fp8 cache", WORK_GQA, 0, DT_F8_E4M3 },
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        const char *name = cases[k].name;
        LoadOpts o = { .dtype = DT_BF16, .seed = 11, .dummy = 1, .config_text = cases[k].cfg, .naive_mla = cases[k].naive,
                       .kv_dtype = cases[k].kv };
        Err e = { "" };
        Model a, b;
        KVCache ka, kb;
        if (model_load(&a, "work.json", &o, &e)) { t_fail(__FILE__, __LINE__, "%s: %s", name, e.msg); continue; }
        if (model_load(&b, "work.json", &o, &e)) { t_fail(__FILE__, __LINE__, "%s: %s", name, e.msg); model_free(&a); continue; }
        if (kv_create(&ka, &a, 2, 64, &e) || kv_create(&kb, &b, 2, 64, &e)) {
            t_fail(__FILE__, __LINE__, "%s: %s", name, e.msg);
            model_free(&a); model_free(&b);
            continue;
        }
        int V = a.cfg.vocab;
        float *la = xmalloc(sizeof(float) * 7 * (size_t)V), *lb = xmalloc(sizeof(float) * 7 * (size_t)V);
        /* prefill of two sequences (4 and 3 tokens), then 40 decode steps of both: the
         * first may grow the area (another shape); none after it, as the context grows
         * from 5 to 44 positions, may allocate */
        int tok[7] = { 3, 17, 29, 41, 5, 7, 11 }, seq[7] = { 0, 0, 0, 0, 1, 1, 1 }, pos[7] = { 0, 1, 2, 3, 0, 1, 2 };
        int64_t made = step_pair(name, "prefill", &a, &ka, &b, &kb, 7, tok, seq, pos, la, lb);
        for (int i = 0; i < 40 && made >= 0; i++) {
            int dt[2] = { (i * 7 + 1) % V, (i * 13 + 2) % V }, ds[2] = { 0, 1 }, dp[2] = { 4 + i, 3 + i };
            char what[64];
            snprintf(what, sizeof what, "decode step %d (positions %d, %d)", i + 1, dp[0], dp[1]);
            made = step_pair(name, what, &a, &ka, &b, &kb, 2, dt, ds, dp, la, lb);
            if (i > 0 && made > 0) {
                t_fail(__FILE__, __LINE__, "%s, %s: %lld allocations, want none after the first decode step", name, what,
                       (long long)made);
                break;
            }
        }
        free(la); free(lb);
        kv_free(&ka); kv_free(&kb);
        model_free(&a); model_free(&b);
    }
}

const TestDef unit_tests[] = {
    { "unit F8_E4M3 codes vs closed form", t_fp8_codes },
    { "unit F16/BF16 conversions", t_half_formats },
    { "unit config fields of shipped configs", t_config_reference },
    { "unit RoPE inv_freq/scale vs references", t_rope_tables },
    { "unit RoPE is a rotation", t_rope_rotation },
    { "unit linear, all dtypes and paths", t_linear_all_paths },
    { "unit rmsnorm closed form", t_rmsnorm_closed_form },
    { "unit KV bytes/token = closed form", t_kv_bytes_closed_form },
    { "unit dummy weights, every family", t_dummy_models },
    { "unit decode steps reuse the work area: no allocation, same logits", t_step_work_reused },
};
const int n_unit_tests = sizeof unit_tests / sizeof unit_tests[0];
