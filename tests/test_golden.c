/*
 * test_golden.c - the engine against independent references.
 *
 * References: ../shared/golden/deepseek/ holds logits, hidden states, routing and
 * greedy continuations from DeepSeek's official inference code (model.py, float32);
 * ../shared/golden/dense/ the same for llama, qwen2 and mixtral from a float64 NumPy
 * pass written from Hugging Face transformers' semantics and cross-checked by
 * llama.cpp to 4e-7.
 * Tolerances:
 *   1e-4 max abs against a reference (the goldens' stated bound for a float32 engine;
 *     every plausible mistake moves logits by >= 1.7e-3, see their case.json).
 *   2e-5 between two paths of this engine (prefill vs decode, chunked, batched,
 *     absorbed vs naive MLA): the same float32 math in another summation order, which
 *     moves logits of magnitude ~1 by ~1e-6.
 *   1e-5 between a dtype-encoded checkpoint and its float32 dequantisation: the same
 *     values, widened in another place.
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#define TOL_REF 1e-4f
#define TOL_SELF 2e-5f
#define TOL_DTYPE 1e-5f

static const char *CASES[] = { "deepseek/v3-tiny", "deepseek/v3-tiny-yarn", "deepseek/v2-lite-tiny",
                               "dense/llama-tiny", "dense/qwen2-tiny", "dense/mixtral-tiny" };
#define N_CASES 6

static int load(const char *dir, Model *m, int naive) {
    LoadOpts o = { .dtype = DT_F32, .seed = 1, .naive_mla = naive };
    Err e = { "" };
    if (model_load(m, dir, &o, &e)) { t_fail(__FILE__, __LINE__, "load %s: %s", dir, e.msg); return -1; }
    return 0;
}

/* prefill tokens of one sequence from position 0; logits (n, V) */
static int prefill(Model *m, const int *tok, int n, float *lg, Trace *tr) {
    KVCache kv;
    Err e = { "" };
    if (kv_create(&kv, m, 1, n + 16, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return -1; }
    int seq[256] = { 0 }, pos[256];
    for (int i = 0; i < n; i++) pos[i] = i;
    int rc = model_forward(m, &kv, n, tok, seq, pos, NULL, lg, tr, &e);
    if (rc) t_fail(__FILE__, __LINE__, "forward: %s", e.msg);
    kv_free(&kv);
    return rc;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i;
    return b;
}

static void check_close(const float *got, const float *want, size_t n, int cols, float tol, const char *what) {
    size_t w;
    float d = max_abs_diff(got, want, n, &w);
    CHECK(d <= tol, "%s: max abs diff %.3g > %.1g at row %zu col %zu (got %.7g, want %.7g)", what, d, tol,
          w / (size_t)cols, w % (size_t)cols, got[w], want[w]);
}

/* ---- against the references --------------------------------------------------------- */
static void golden_prefill_one(const char *rel) {
    Case c;
    if (case_load(rel, &c)) return;
    Model m;
    if (load(c.dir, &m, 0)) { case_free(&c); return; }
    int n = c.n_prompt, V = m.cfg.vocab, D = m.cfg.dim, L = m.cfg.n_layers;
    float *lg = xmalloc(sizeof(float) * (size_t)n * V);
    float *hid = xmalloc(sizeof(float) * (size_t)(L + 1) * n * D);
    Trace tr = { .hidden = hid };
    char p[1200];
    size_t nref;
    if (prefill(&m, c.prompt, n, lg, &tr) == 0) {
        snprintf(p, sizeof p, "%s/logits.f32", c.dir);
        float *ref = read_f32(p, &nref);
        CHECK(ref && nref == (size_t)n * V, "%s: cannot read or wrong size", p);
        if (ref && nref == (size_t)n * V) {
            check_close(lg, ref, nref, V, TOL_REF, rel);
            for (int t = 0; t < n; t++)
                CHECK(argmax(lg + (size_t)t * V, V) == argmax(ref + (size_t)t * V, V), "%s: argmax differs at row %d", rel, t);
        }
        free(ref);
        snprintf(p, sizeof p, "%s/hidden_states.f32", c.dir);
        ref = read_f32(p, &nref);
        size_t want = (size_t)(L + 1) * n * D;
        CHECK(ref && nref == want, "%s: cannot read or wrong size", p);
        if (ref && nref == want) check_close(hid, ref, want, D, TOL_REF, "hidden states");
        free(ref);
    }
    free(lg); free(hid);
    model_free(&m);
    case_free(&c);
}

static void golden_decode_one(const char *rel, int naive) {
    Case c;
    if (case_load(rel, &c)) return;
    Model m;
    if (load(c.dir, &m, naive)) { case_free(&c); return; }
    int n = c.n_prompt, V = m.cfg.vocab, nc = c.n_cont;
    KVCache kv;
    Err e = { "" };
    char p[1200];
    size_t nref;
    snprintf(p, sizeof p, "%s/continuation_logits.f32", c.dir);
    float *ref = read_f32(p, &nref);
    CHECK(ref && nref == (size_t)nc * V, "%s: cannot read or wrong size", p);
    if (!ref || nref != (size_t)nc * V || kv_create(&kv, &m, 1, n + nc, &e)) { free(ref); model_free(&m); case_free(&c); return; }
    float *lg = xmalloc(sizeof(float) * (size_t)n * V), *rows = xmalloc(sizeof(float) * (size_t)nc * V);
    int seq[64] = { 0 }, pos[64];
    for (int i = 0; i < n; i++) pos[i] = i;
    int rc = model_forward(&m, &kv, n, c.prompt, seq, pos, NULL, lg, NULL, &e);
    memcpy(rows, lg + (size_t)(n - 1) * V, sizeof(float) * (size_t)V);
    int tok = argmax(rows, V);
    int got[64];
    got[0] = tok;
    for (int i = 1; i < nc && !rc; i++) {
        int ps = n + i - 1;
        rc = model_forward(&m, &kv, 1, &tok, seq, &ps, NULL, rows + (size_t)i * V, NULL, &e);
        tok = got[i] = argmax(rows + (size_t)i * V, V);
    }
    CHECK(rc == 0, "forward: %s", e.msg);
    if (!rc) {
        check_close(rows, ref, (size_t)nc * V, V, TOL_REF, naive ? "continuation (naive MLA)" : "continuation");
        for (int i = 0; i < nc; i++) CHECK(got[i] == c.cont[i], "%s: greedy token %d is %d, want %d", rel, i, got[i], c.cont[i]);
    }
    free(ref); free(lg); free(rows);
    kv_free(&kv);
    model_free(&m);
    case_free(&c);
}

/* routing of the prompt against case.json: experts in order, weights */
static void golden_routing_one(const char *rel) {
    Case c;
    if (case_load(rel, &c)) return;
    Model m;
    if (load(c.dir, &m, 0)) { case_free(&c); return; }
    int n = c.n_prompt, V = m.cfg.vocab, L = m.cfg.n_layers, K = m.cfg.top_k;
    float *lg = xmalloc(sizeof(float) * (size_t)n * V);
    Trace tr = { .experts = xmalloc(sizeof(int) * (size_t)L * n * K), .weights = xmalloc(sizeof(float) * (size_t)L * n * K) };
    int checked = 0;
    if (prefill(&m, c.prompt, n, lg, &tr) == 0) {
        const cJSON *layers = cJSON_GetObjectItem(cJSON_GetObjectItem(c.json, "routing"), "layers");
        for (const cJSON *ly = layers ? layers->child : NULL; ly; ly = ly->next) {
            int l = cJSON_GetObjectItem(ly, "layer")->valueint;
            const cJSON *ex = cJSON_GetObjectItem(ly, "experts"), *wt = cJSON_GetObjectItem(ly, "weights");
            int t = 0;
            for (const cJSON *er = ex->child, *wr = wt->child; er && wr; er = er->next, wr = wr->next, t++) {
                int k = 0;
                for (const cJSON *e1 = er->child, *w1 = wr->child; e1 && w1; e1 = e1->next, w1 = w1->next, k++) {
                    int ge = tr.experts[((size_t)l * n + t) * K + k];
                    float gw = tr.weights[((size_t)l * n + t) * K + k];
                    CHECK(ge == e1->valueint, "%s layer %d token %d slot %d: expert %d, want %d", rel, l, t, k, ge, e1->valueint);
                    CHECK(fabsf(gw - (float)w1->valuedouble) <= 1e-5f, "%s layer %d token %d slot %d: weight %.7g, want %.7g",
                          rel, l, t, k, gw, w1->valuedouble);
                    checked++;
                }
            }
        }
    }
    CHECK(checked > 0, "%s: no routing entries compared", rel);
    free(lg); free(tr.experts); free(tr.weights);
    model_free(&m);
    case_free(&c);
}

/* ---- the engine against itself ------------------------------------------------------ */
static void golden_consistency_one(const char *rel) {
    Case c;
    if (case_load(rel, &c)) return;
    Model m;
    if (load(c.dir, &m, 0)) { case_free(&c); return; }
    int n = c.n_prompt, V = m.cfg.vocab;
    float *ref = xmalloc(sizeof(float) * (size_t)n * V), *got = xmalloc(sizeof(float) * (size_t)n * V);
    Err e = { "" };
    if (prefill(&m, c.prompt, n, ref, NULL)) goto out;
    KVCache kv;
    int seq[64] = { 0 }, pos[64];
    for (int i = 0; i < n; i++) pos[i] = i;
    /* decode one token at a time */
    if (kv_create(&kv, &m, 1, n, &e) == 0) {
        int rc = 0;
        for (int i = 0; i < n && !rc; i++) rc = model_forward(&m, &kv, 1, c.prompt + i, seq, pos + i, NULL, got + (size_t)i * V, NULL, &e);
        CHECK(rc == 0, "decode: %s", e.msg);
        if (!rc) check_close(got, ref, (size_t)n * V, V, TOL_SELF, "token-by-token decode vs prefill");
        /* chunked prefill: 5 then the rest, reusing the cache */
        kv.len[0] = 0;
        rc = model_forward(&m, &kv, 5, c.prompt, seq, pos, NULL, got, NULL, &e);
        if (!rc) rc = model_forward(&m, &kv, n - 5, c.prompt + 5, seq, pos + 5, NULL, got + (size_t)5 * V, NULL, &e);
        CHECK(rc == 0, "chunked: %s", e.msg);
        if (!rc) check_close(got, ref, (size_t)n * V, V, TOL_SELF, "chunked prefill (5 + 11) vs one prefill");
        kv_free(&kv);
    }
    /* batch: sequence A = the prompt, B = its first 9 tokens reversed, in one step,
     * interleaved token by token; each must equal its own run alone */
    int nb = 9, tb[64];
    for (int i = 0; i < nb; i++) tb[i] = c.prompt[nb - 1 - i];
    float *refb = xmalloc(sizeof(float) * (size_t)nb * V);
    if (prefill(&m, tb, nb, refb, NULL) == 0 && kv_create(&kv, &m, 2, n, &e) == 0) {
        int tok[128], sq[128], ps[128], k = 0, ia = 0, ib = 0;
        int rowa[64], rowb[64];
        while (ia < n || ib < nb) {
            if (ia < n) { tok[k] = c.prompt[ia]; sq[k] = 0; ps[k] = ia; rowa[ia++] = k++; }
            if (ib < nb) { tok[k] = tb[ib]; sq[k] = 1; ps[k] = ib; rowb[ib++] = k++; }
        }
        float *all = xmalloc(sizeof(float) * (size_t)k * V);
        int rc = model_forward(&m, &kv, k, tok, sq, ps, NULL, all, NULL, &e);
        CHECK(rc == 0, "batch: %s", e.msg);
        if (!rc) {
            for (int i = 0; i < n; i++) memcpy(got + (size_t)i * V, all + (size_t)rowa[i] * V, sizeof(float) * (size_t)V);
            check_close(got, ref, (size_t)n * V, V, TOL_SELF, "batched sequence A vs alone");
            for (int i = 0; i < nb; i++) memcpy(got + (size_t)i * V, all + (size_t)rowb[i] * V, sizeof(float) * (size_t)V);
            check_close(got, refb, (size_t)nb * V, V, TOL_SELF, "batched sequence B vs alone");
        }
        free(all);
        kv_free(&kv);
    }
    free(refb);
out:
    free(ref); free(got);
    model_free(&m);
    case_free(&c);
}

/* absorbed and naive MLA agree with each other, and the cache holds what it should */
static void golden_mla_paths_one(const char *rel) {
    Case c;
    if (case_load(rel, &c)) return;
    Model a, b;
    if (load(c.dir, &a, 0)) { case_free(&c); return; }
    if (load(c.dir, &b, 1)) { model_free(&a); case_free(&c); return; }
    int n = c.n_prompt, V = a.cfg.vocab;
    float *la = xmalloc(sizeof(float) * (size_t)n * V), *lb = xmalloc(sizeof(float) * (size_t)n * V);
    if (prefill(&a, c.prompt, n, la, NULL) == 0 && prefill(&b, c.prompt, n, lb, NULL) == 0)
        check_close(la, lb, (size_t)n * V, V, TOL_SELF, "absorbed vs naive MLA");
    KVCache kv;
    Err e;
    if (kv_create(&kv, &a, 1, 100, &e) == 0) {
        uint64_t closed = (uint64_t)(a.cfg.kv_lora_rank + a.cfg.qk_rope) * a.cfg.n_layers * sizeof(float);
        CHECK(kv_bytes_per_token(&kv) == closed, "MLA cache %llu bytes/token, closed form %llu",
              (unsigned long long)kv_bytes_per_token(&kv), (unsigned long long)closed);
        kv_free(&kv);
    }
    free(la); free(lb);
    model_free(&a); model_free(&b);
    case_free(&c);
}

/* ---- the tester tested: a slightly wrong weight must fail the comparison ------------- */
static void test_perturbed_weight_caught(void) {
    Case c;
    if (case_load("deepseek/v3-tiny", &c)) return;
    char src[1200], dir[700], dst[800];
    snprintf(src, sizeof src, "%s/model.safetensors", c.dir);
    snprintf(dir, sizeof dir, "%s/perturbed", g_tmp);
    make_dir(dir);
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/config.json", c.dir);
    CHECK(copy_file(cfg, dst) == 0, "copy config");
    StSet s = { 0 };
    Err e;
    CHECK(st_open_file(src, &s, &e) == 0, "%s", e.msg);
    StTensor *t = st_find(&s, "model.layers.1.self_attn.kv_b_proj.weight");
    CHECK(t != NULL, "tensor missing");
    size_t off = t ? (size_t)((const char *)t->data - (const char *)s.files[0].map) : 0;
    st_close(&s);
    size_t len;
    char *bytes = read_file(src, 1u << 30, &len, &e);
    float v;
    memcpy(&v, bytes + off, 4);
    v += 0.02f;                               /* one element of one weight, by 0.02 */
    memcpy(bytes + off, &v, 4);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    FILE *f = fopen(dst, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    free(bytes);
    Model m;
    if (load(dir, &m, 0) == 0) {
        int n = c.n_prompt, V = m.cfg.vocab;
        float *lg = xmalloc(sizeof(float) * (size_t)n * V);
        char p[1200];
        size_t nref;
        snprintf(p, sizeof p, "%s/logits.f32", c.dir);
        float *ref = read_f32(p, &nref);
        if (prefill(&m, c.prompt, n, lg, NULL) == 0 && ref) {
            float d = max_abs_diff(lg, ref, nref, NULL);
            CHECK(d > TOL_REF, "a perturbed weight went unnoticed: max abs diff %.3g <= %.1g", d, TOL_REF);
        }
        free(lg); free(ref);
        model_free(&m);
    }
    case_free(&c);
}

/* ---- dtypes and shards: the same model re-encoded ----------------------------------- */
typedef enum { ENC_BF16, ENC_F16, ENC_FP8, ENC_SHARDS } Encoding;

/* Writes dir_q (encoded) and dir_f (its float32 dequantisation) from the golden case;
 * the two must give the same logits. Vectors stay F32 (BF16 for bf16/f16). */
static void encode_case(const char *rel, Encoding enc) {
    Case c;
    if (case_load(rel, &c)) return;
    char src[1200], dq[800], df[800], p[1200];
    snprintf(src, sizeof src, "%s/model.safetensors", c.dir);
    snprintf(dq, sizeof dq, "%s/enc%d-q", g_tmp, (int)enc);
    snprintf(df, sizeof df, "%s/enc%d-f", g_tmp, (int)enc);
    make_dir(dq); make_dir(df);
    StSet s = { 0 };
    Err e = { "" };
    if (st_open_file(src, &s, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); case_free(&c); return; }
    int n = s.n;
    WTensor *q = xcalloc((size_t)n * 2, sizeof *q), *f = xcalloc((size_t)n, sizeof *f);
    void **bufs = xcalloc((size_t)n * 4, sizeof *bufs);   /* deq, code, scale, name */
    int nq = 0, nbuf = 0;
    for (int i = 0; i < n; i++) {
        StTensor *t = &s.t[i];
        int64_t el = 1;
        for (int d = 0; d < t->ndim; d++) el *= t->shape[d];
        const float *x = t->data;
        float *deq = xmalloc(sizeof(float) * (size_t)el);
        bufs[nbuf++] = deq;
        WTensor w = { t->name, DT_F32, t->ndim, { 0 }, x };
        memcpy(w.shape, t->shape, sizeof w.shape);
        f[i] = w;
        f[i].data = deq;
        memcpy(deq, x, sizeof(float) * (size_t)el);
        if (enc == ENC_SHARDS) { q[nq++] = w; continue; }
        if (enc == ENC_FP8 && t->ndim != 2) { q[nq++] = w; continue; }
        if (enc == ENC_FP8) {
            int64_t R = t->shape[0], C = t->shape[1], sr = (R + 127) / 128, sc = (C + 127) / 128;
            uint8_t *code = xmalloc((size_t)el);
            float *scale = xmalloc(sizeof(float) * (size_t)(sr * sc));
            bufs[nbuf++] = code; bufs[nbuf++] = scale;
            for (int64_t br = 0; br < sr; br++)
                for (int64_t bc = 0; bc < sc; bc++) {
                    float amax = 0;
                    for (int64_t r = br * 128; r < R && r < br * 128 + 128; r++)
                        for (int64_t cc = bc * 128; cc < C && cc < bc * 128 + 128; cc++) amax = fmaxf(amax, fabsf(x[r * C + cc]));
                    float sv = amax > 0 ? amax / 448.0f : 1.0f;
                    scale[br * sc + bc] = sv;
                    for (int64_t r = br * 128; r < R && r < br * 128 + 128; r++)
                        for (int64_t cc = bc * 128; cc < C && cc < bc * 128 + 128; cc++) {
                            code[r * C + cc] = f32_to_f8e4m3(x[r * C + cc] / sv);
                            deq[r * C + cc] = f8e4m3_to_f32(code[r * C + cc]) * sv;
                        }
                }
            WTensor wq = w;
            wq.dtype = DT_F8_E4M3; wq.data = code;
            q[nq++] = wq;
            char *sn = xmalloc(strlen(t->name) + 16);
            sprintf(sn, "%s_scale_inv", t->name);
            bufs[nbuf++] = sn;
            WTensor ws = { sn, DT_F32, 2, { sr, sc }, scale };
            q[nq++] = ws;
            continue;
        }
        uint16_t *h = xmalloc(sizeof(uint16_t) * (size_t)el);
        bufs[nbuf++] = h;
        for (int64_t k = 0; k < el; k++) {
            h[k] = enc == ENC_BF16 ? f32_to_bf16(x[k]) : f32_to_f16(x[k]);
            deq[k] = enc == ENC_BF16 ? bf16_to_f32(h[k]) : f16_to_f32(h[k]);
        }
        WTensor wq = w;
        wq.dtype = enc == ENC_BF16 ? DT_BF16 : DT_F16; wq.data = h;
        q[nq++] = wq;
    }
    int ok = 1;
    snprintf(p, sizeof p, "%s/model.safetensors", df);
    ok &= st_write(p, f, n) == 0;
    if (enc == ENC_SHARDS) {
        int half = n / 2;
        snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dq);
        ok &= st_write(p, q, half) == 0;
        snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dq);
        ok &= st_write(p, q + half, n - half) == 0;
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", dq);
        FILE *fi = fopen(p, "w");
        fprintf(fi, "{\"metadata\": {}, \"weight_map\": {");
        for (int i = 0; i < n; i++)
            fprintf(fi, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", q[i].name, i < half ? 1 : 2);
        fprintf(fi, "}}\n");
        fclose(fi);
    } else {
        snprintf(p, sizeof p, "%s/model.safetensors", dq);
        ok &= st_write(p, q, nq) == 0;
    }
    char cfg[1200], d2[900];
    snprintf(cfg, sizeof cfg, "%s/config.json", c.dir);
    snprintf(d2, sizeof d2, "%s/config.json", dq); ok &= copy_file(cfg, d2) == 0;
    snprintf(d2, sizeof d2, "%s/config.json", df); ok &= copy_file(cfg, d2) == 0;
    CHECK(ok, "writing the encoded checkpoints failed");
    for (int i = 0; i < nbuf; i++) free(bufs[i]);
    free(bufs); free(q); free(f);
    st_close(&s);
    Model mq, mf;
    if (ok && load(dq, &mq, 0) == 0) {
        if (load(df, &mf, 0) == 0) {
            int nt = c.n_prompt, V = mq.cfg.vocab;
            float *lq = xmalloc(sizeof(float) * (size_t)nt * V), *lf = xmalloc(sizeof(float) * (size_t)nt * V);
            if (prefill(&mq, c.prompt, nt, lq, NULL) == 0 && prefill(&mf, c.prompt, nt, lf, NULL) == 0)
                check_close(lq, lf, (size_t)nt * V, V, TOL_DTYPE, "encoded vs its float32 dequantisation");
            /* decode path (row-wise widening) too */
            KVCache kv;
            if (kv_create(&kv, &mq, 1, nt, &e) == 0) {
                int sq = 0, rc = 0;
                for (int i = 0; i < nt && !rc; i++) rc = model_forward(&mq, &kv, 1, c.prompt + i, &sq, &i, NULL, lq + (size_t)i * V, NULL, &e);
                CHECK(rc == 0, "%s", e.msg);
                if (!rc) check_close(lq, lf, (size_t)nt * V, V, TOL_SELF, "encoded, decoded token by token, vs float32 prefill");
                kv_free(&kv);
            }
            free(lq); free(lf);
            model_free(&mf);
        }
        model_free(&mq);
    }
    case_free(&c);
}

/* Weights copied out of the file mapping into huge pages at load (the default) against
 * the same checkpoint read in place (--mmap): the copy is what is bound (the matrices lie
 * outside every mapped file, and copied_bytes counts them), and the logits are equal bit
 * for bit. A copy that lost a byte, or a binding left on the mapping, fails. */
static void copy_vs_mmap_one(const char *rel) {
    Case c;
    if (case_load(rel, &c)) return;
    Model a, b;
    Err e = { "" };
    LoadOpts oa = { .dtype = DT_F32, .seed = 1 }, ob = oa;
    ob.mmap = 1;
    if (model_load(&a, c.dir, &oa, &e)) { t_fail(__FILE__, __LINE__, "load %s: %s", c.dir, e.msg); case_free(&c); return; }
    if (model_load(&b, c.dir, &ob, &e)) { t_fail(__FILE__, __LINE__, "load %s: %s", c.dir, e.msg); model_free(&a); case_free(&c); return; }
    CHECK(a.copied_bytes > 0 && b.copied_bytes == 0, "%s: copied %llu bytes (default) and %llu (--mmap)", rel,
          (unsigned long long)a.copied_bytes, (unsigned long long)b.copied_bytes);
    const Mat *mats[2][2] = { { &a.layers[0].attn.o, &a.embed }, { &b.layers[0].attn.o, &b.embed } };
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 2; j++) {
            const uint8_t *p = mats[k][j]->data;
            int inside = 0;
            for (int f = 0; f < (k ? b.st.n_files : a.st.n_files); f++) {
                const StFile *sf = &(k ? b.st.files : a.st.files)[f];
                if (p >= (const uint8_t *)sf->map && p < (const uint8_t *)sf->map + sf->size) inside = 1;
            }
            CHECK(inside == k, "%s: %s %s the file mapping with%s --mmap", rel, j ? "embed" : "layer 0's o_proj",
                  inside ? "points into" : "lies outside", k ? "" : "out");
        }
    int V = a.cfg.vocab, n = c.n_prompt;
    float *la = xmalloc(sizeof(float) * (size_t)n * V), *lb = xmalloc(sizeof(float) * (size_t)n * V);
    if (!prefill(&a, c.prompt, n, la, NULL) && !prefill(&b, c.prompt, n, lb, NULL))
        CHECK(!memcmp(la, lb, sizeof(float) * (size_t)n * V), "%s: logits with weights copied differ from --mmap's", rel);
    free(la); free(lb);
    model_free(&a); model_free(&b);
    case_free(&c);
}
static void t_copy_vs_mmap(void) { copy_vs_mmap_one(CASES[0]); copy_vs_mmap_one(CASES[3]); }

static void t_enc_bf16(void) { encode_case("deepseek/v3-tiny", ENC_BF16); encode_case("dense/qwen2-tiny", ENC_BF16); }
static void t_enc_f16(void) { encode_case("deepseek/v2-lite-tiny", ENC_F16); encode_case("dense/llama-tiny", ENC_F16); }
static void t_enc_fp8(void) { encode_case("deepseek/v3-tiny", ENC_FP8); encode_case("dense/mixtral-tiny", ENC_FP8); }
static void t_enc_shards(void) { encode_case("deepseek/v3-tiny-yarn", ENC_SHARDS); }

#define PER_CASE(i)                                                                       \
    static void t_prefill_##i(void) { golden_prefill_one(CASES[i]); }                    \
    static void t_decode_##i(void) { golden_decode_one(CASES[i], 0); }                  \
    static void t_consist_##i(void) { golden_consistency_one(CASES[i]); }
PER_CASE(0) PER_CASE(1) PER_CASE(2) PER_CASE(3) PER_CASE(4) PER_CASE(5)
static void t_route_0(void) { golden_routing_one(CASES[0]); }
static void t_route_1(void) { golden_routing_one(CASES[1]); }
static void t_route_2(void) { golden_routing_one(CASES[2]); }
static void t_route_5(void) { golden_routing_one(CASES[5]); }
static void t_naive_0(void) { golden_decode_one(CASES[0], 1); golden_mla_paths_one(CASES[0]); }
static void t_naive_1(void) { golden_decode_one(CASES[1], 1); golden_mla_paths_one(CASES[1]); }
static void t_naive_2(void) { golden_decode_one(CASES[2], 1); golden_mla_paths_one(CASES[2]); }

const TestDef golden_tests[] = {
    { "golden v3-tiny prefill logits+hidden", t_prefill_0 },
    { "golden v3-tiny greedy continuation", t_decode_0 },
    { "golden v3-tiny decode=chunked=batched=prefill", t_consist_0 },
    { "golden v3-tiny routing", t_route_0 },
    { "golden v3-tiny naive MLA", t_naive_0 },
    { "golden v3-tiny-yarn prefill logits+hidden", t_prefill_1 },
    { "golden v3-tiny-yarn greedy continuation", t_decode_1 },
    { "golden v3-tiny-yarn decode=chunked=batched", t_consist_1 },
    { "golden v3-tiny-yarn routing", t_route_1 },
    { "golden v3-tiny-yarn naive MLA", t_naive_1 },
    { "golden v2-lite-tiny prefill logits+hidden", t_prefill_2 },
    { "golden v2-lite-tiny greedy continuation", t_decode_2 },
    { "golden v2-lite-tiny decode=chunked=batched", t_consist_2 },
    { "golden v2-lite-tiny routing", t_route_2 },
    { "golden v2-lite-tiny naive MLA", t_naive_2 },
    { "golden llama-tiny prefill logits+hidden", t_prefill_3 },
    { "golden llama-tiny greedy continuation", t_decode_3 },
    { "golden llama-tiny decode=chunked=batched", t_consist_3 },
    { "golden qwen2-tiny prefill logits+hidden", t_prefill_4 },
    { "golden qwen2-tiny greedy continuation", t_decode_4 },
    { "golden qwen2-tiny decode=chunked=batched", t_consist_4 },
    { "golden mixtral-tiny prefill logits+hidden", t_prefill_5 },
    { "golden mixtral-tiny greedy continuation", t_decode_5 },
    { "golden mixtral-tiny decode=chunked=batched", t_consist_5 },
    { "golden mixtral-tiny routing", t_route_5 },
    { "golden perturbed weight is caught", test_perturbed_weight_caught },
    { "dtype BF16 checkpoint = its F32 values", t_enc_bf16 },
    { "dtype F16 checkpoint = its F32 values", t_enc_f16 },
    { "dtype F8_E4M3+scales = its F32 values", t_enc_fp8 },
    { "sharded checkpoint (index.json)", t_enc_shards },
    { "weights copied into huge pages at load = read in place (--mmap), bit for bit", t_copy_vs_mmap },
};
const int n_golden_tests = sizeof golden_tests / sizeof golden_tests[0];
