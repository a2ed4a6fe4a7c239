/*
 * test_kv.c - the KV cache in BF16 and FP8 E4M3 against the float32 cache.
 *
 * What is compared:
 *   attention() over BF16/FP8 codes (decoded block by block, online softmax) against
 *     attention() over a float32 cache holding the same decoded values: the same math
 *     in another summation order, so 1e-5 relative (TOL_SAME), over contexts that
 *     cross several 256-position blocks, for GQA rows and MLA's shared latent row.
 *   every golden case's logits (prompt + greedy continuation, prefill) with a BF16 and
 *     an FP8 cache against the float32 cache's, within a relative bound measured and
 *     stated below (TOL_BF16, TOL_FP8: max |diff| / max |f32 logit|);
 *   greedy continuations with the quantised cache equal the golden tokens at every step
 *     whose float32 margin (top-1 minus top-2 logit) exceeds twice the bound times the
 *     logits' scale, up to the first step that does not (where a different token would be
 *     legitimate, and the rest of the sequence may then differ);
 *   decode = prefill with the same cache type, within an eighth of the type's bound:
 *     the two compute each cached value in another summation order (1e-7 apart), and
 *     where a value falls on a rounding boundary its code moves by one step (seen on
 *     mixtral-tiny with BF16: 3.8e-4 relative at one position, against 1e-6 elsewhere);
 *   a deliberately wrong decode (layer 0's FP8 scales doubled) is caught;
 *   the cache's bytes per token against the closed form of each type.
 */
#include "test.h"
#include "qdot.h"

#include <math.h>
#include <stdlib.h>

/* Measured on the five golden cases (the test prints them):
 *   bf16: max |logit diff| / max |logit| 2.4e-3 .. 3.6e-3 (a cached value moves by at
 *         most 2^-8 = 3.9e-3 relative, and a logit's error is a weighted sum of many);
 *   fp8:  3.4e-2 .. 5.1e-2 (E4M3 keeps 3 mantissa bits: up to 2^-4 = 6e-2 relative per
 *         value, more for the small values of a 128-block that fall into subnormals).
 * Bounds: a little over twice the worst measured. */
#define TOL_BF16 8e-3f
#define TOL_FP8 1.2e-1f
#define TOL_SAME 1e-5f

static const char *CASES[] = { "deepseek/v3-tiny", "deepseek/v2-lite-tiny", "dense/llama-tiny", "dense/qwen2-tiny",
                               "dense/mixtral-tiny" };
#define N_CASES 5

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i;
    return b;
}

static float max_abs(const float *v, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(v[i]));
    return m;
}

/* prefill n tokens from position 0 into a cache of type dt: logits (n, V); 0 or -1 */
static int prefill_as(Model *m, DType dt, const int *tok, int n, float *lg) {
    KVCache kv;
    Err e = { "" };
    if (kv_create_as(&kv, m, 1, n, dt, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return -1; }
    int seq[256] = { 0 }, pos[256];
    for (int i = 0; i < n; i++) pos[i] = i;
    int rc = model_forward(m, &kv, n, tok, seq, pos, NULL, lg, NULL, &e);
    if (rc) t_fail(__FILE__, __LINE__, "forward: %s", e.msg);
    kv_free(&kv);
    return rc;
}

/* ---- attention over codes = attention over their float32 values ------------------------ */
static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

/* One cache shape: where a head's key and value sit in a row of `row` elements. */
typedef struct { const char *name; int row, dk, dv, H, Hkv, k_off, khs, v_off, vhs; } AttnShape;
enum { CS = 2, CP = 700 };               /* the test caches: sequences, positions */

/* A bare KVCache (no model) of CS sequences x CP positions in dt, every row random (blocks
 * of unequal range) through kv_store; dec, when given, receives the decoded float32 rows,
 * each value doubled when wrong. */
static KVCache random_cache(DType dt, int row, float *dec, int wrong) {
    KVCache kv = { .n_layers = 1, .n_seq = CS, .max_pos = CP, .row = row, .dt = dt };
    kv.n_scales = dt == DT_F8_E4M3 ? (row + 127) / 128 : 0;
    kv.data = xmalloc(kv_row_bytes(dt, row) * CS * CP);
    kv.scales = kv.n_scales ? xmalloc(sizeof(float) * (size_t)kv.n_scales * CS * CP) : NULL;
    float *x = xmalloc(sizeof(float) * (size_t)row);
    for (int s = 0; s < CS; s++)
        for (int p = 0; p < CP; p++) {
            for (int i = 0; i < row; i++) x[i] = frand() * (1 + (i % 7));
            kv_store(&kv, 0, s, p, x);
            if (!dec) continue;
            float *d = dec + ((size_t)s * CP + p) * row;
            kv_load(&kv, 0, s, p, d);
            if (wrong) for (int i = 0; i < row; i++) d[i] *= 2;
        }
    free(x);
    return kv;
}

/* attention() over kv for T tokens (seq, pos) with queries q into out */
static AttnArgs attn_args(const AttnShape *sh, const KVCache *kv, int T, const int *seq, const int *pos, const float *q,
                          float *out) {
    AttnArgs a = {
        .T = T, .seq = seq, .pos = pos, .q = q, .ldq = sh->H * sh->dk, .seq_stride = (int64_t)CP * sh->row, .row = sh->row,
        .k_off = sh->k_off, .k_head_stride = sh->khs, .v_off = sh->v_off, .v_head_stride = sh->vhs, .dk = sh->dk,
        .dv = sh->dv, .H = sh->H, .Hkv = sh->Hkv, .scale = 1.0f / sqrtf((float)sh->dk), .out = out, .ldo = sh->H * sh->dv,
        .max_pos = CP, .dt = kv->dt, .codes = kv->data, .scales = kv->scales,
        .sc_seq_stride = (int64_t)CP * kv->n_scales, .sc_row = kv->n_scales,
    };
    if (kv->dt == DT_F32) { a.cache = kv->data; a.codes = NULL; }
    return a;
}

/* Queries of T tokens at the given positions over a random cache in dt, decoded to
 * float32: attention() on the codes against attention() on the decoded floats. wrong:
 * the reference decodes with each value doubled, and must then disagree. */
static float attn_codes_vs_f32(DType dt, const AttnShape *sh, int wrong) {
    enum { T = 3 };
    float *dec = xmalloc(sizeof(float) * (size_t)CS * CP * sh->row);
    KVCache kv = random_cache(dt, sh->row, dec, wrong);
    int seq[T] = { 0, 1, 1 }, pos[T] = { 699, 256, 511 };   /* across 1..3 blocks */
    size_t nq = (size_t)T * sh->H * sh->dk, no = (size_t)T * sh->H * sh->dv;
    float *q = xmalloc(sizeof(float) * nq), *oa = xmalloc(sizeof(float) * no), *ob = xmalloc(sizeof(float) * no);
    for (size_t i = 0; i < nq; i++) q[i] = frand();
    AttnArgs a = attn_args(sh, &kv, T, seq, pos, q, oa);
    attention(&a);
    KVCache kf = { .n_layers = 1, .n_seq = CS, .max_pos = CP, .row = sh->row, .dt = DT_F32, .data = dec };
    AttnArgs b = attn_args(sh, &kf, T, seq, pos, q, ob);
    attention(&b);
    size_t w;
    float d = max_abs_diff(oa, ob, no, &w) / max_abs(ob, no);
    free(q); free(oa); free(ob); free(dec); free(kv.data); free(kv.scales);
    return d;
}

static const AttnShape attn_shapes[] = {
    /* GQA: 8 query heads on 2 KV heads of 64: row [K (2*64) | V (2*64)] */
    { "GQA 8 on 2, hd 64", 256, 64, 64, 8, 2, 0, 64, 128, 64 },
    /* MLA absorbed: one latent row [c (Dc 160) | k_pe (Dr 32)], V = its first Dc */
    { "MLA latent Dc 160 + Dr 32", 192, 192, 160, 4, 1, 0, 0, 0, 0 },
    /* odd head size: spans that straddle FP8 scale blocks */
    { "GQA 6 on 3, hd 40", 240, 40, 40, 6, 3, 0, 40, 120, 40 },
    /* MHA: as many KV heads as query heads */
    { "MHA 3 heads, hd 40", 240, 40, 40, 3, 3, 0, 40, 120, 40 },
};

static void t_attention_codes(void) {
    DType dts[2] = { DT_BF16, DT_F8_E4M3 };
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 2; j++) {
            const AttnShape *sh = &attn_shapes[k];
            float d = attn_codes_vs_f32(dts[j], sh, 0);
            CHECK(d <= TOL_SAME, "%s, %s cache: attention on codes vs on their float32 values: max rel diff %g > %g", sh->name,
                  dtype_name(dts[j]), d, TOL_SAME);
            float bad = attn_codes_vs_f32(dts[j], sh, 1);
            CHECK(bad > 100 * TOL_SAME, "%s, %s cache: values decoded at twice their scale went unnoticed (diff %g)", sh->name,
                  dtype_name(dts[j]), bad);
        }
}

/* Prefill attention in query blocks (many tokens at once) against the per-token path
 * (each token alone): a second algorithm over the same cache. Tokens: a run of 60 that
 * crosses the 256-position block boundary, a run of 9 in another sequence, one token
 * that does not continue a run, and a run in the first sequence again. 1e-5 relative
 * (TOL_SAME, summation order). wrong: the reference lets every token see one position
 * more, which the comparison must notice (the causal mask is what it checks). */
enum { PREFILL_T = 60 + 9 + 1 + 8 };
/* the prefill tokens below: their sequences and positions; returns PREFILL_T */
static int prefill_tokens(int *seq, int *pos) {
    int n = 0;
    for (int i = 0; i < 60; i++) seq[n] = 0, pos[n++] = 220 + i;
    for (int i = 0; i < 9; i++) seq[n] = 1, pos[n++] = i;     /* token 60: position 0 of sequence 1 */
    seq[n] = 1, pos[n++] = 500;
    for (int i = 0; i < 8; i++) seq[n] = 0, pos[n++] = 600 + i;
    return n;
}

static float attn_blocks_vs_tokens(DType dt, const AttnShape *sh, int wrong) {
    enum { T = PREFILL_T };
    KVCache kv = random_cache(dt, sh->row, NULL, 0);
    int seq[T], pos[T];
    prefill_tokens(seq, pos);
    size_t nq = (size_t)T * sh->H * sh->dk, no = (size_t)T * sh->H * sh->dv;
    float *q = xmalloc(sizeof(float) * nq), *oa = xmalloc(sizeof(float) * no), *ob = xmalloc(sizeof(float) * no);
    for (size_t i = 0; i < nq; i++) q[i] = frand();
    AttnArgs a = attn_args(sh, &kv, T, seq, pos, q, oa);
    attention(&a);
    for (int t = 0; t < T; t++) {
        int p = pos[t] + (wrong ? 1 : 0);
        AttnArgs b = attn_args(sh, &kv, 1, seq + t, &p, q + (size_t)t * sh->H * sh->dk, ob + (size_t)t * sh->H * sh->dv);
        attention(&b);
    }
    size_t w;
    float d = max_abs_diff(oa, ob, no, &w) / max_abs(ob, no);
    free(q); free(oa); free(ob); free(kv.data); free(kv.scales);
    return d;
}

static void t_attention_blocks(void) {
    static const int shapes[3] = { 0, 1, 3 };
    DType dts[3] = { DT_F32, DT_BF16, DT_F8_E4M3 };
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 3; j++) {
            const AttnShape *sh = &attn_shapes[shapes[k]];
            float d = attn_blocks_vs_tokens(dts[j], sh, 0);
            CHECK(d <= TOL_SAME, "%s, %s cache: query blocks vs one token at a time: max rel diff %g > %g", sh->name,
                  dtype_name(dts[j]), d, TOL_SAME);
            if (j) continue;
            float bad = attn_blocks_vs_tokens(dts[j], sh, 1);
            CHECK(bad > 100 * TOL_SAME, "%s: a mask one position off went unnoticed (diff %g)", sh->name, bad);
        }
}

/* Attention over a BF16 cache with --products low (keys and values read as
 * stored in VDPBF16PS: ops.c attn_item_bf16 and attn_qblock, for keys of 128 elements or more; shorter
 * ones stay widened, which must then give float32 products' result exactly, while the
 * longer ones must not) against float64 attention with the same query rounding: s_p =
 * scale sum_d bf16(q_d) k_pd (q_d as it is for the widened keys), P = softmax(s). What is left is the
 * probabilities' rounding to BF16 (up to 2^-8 of each term; the kernel rounds exp(s - m) with m
 * the running maximum, another value with the same bound) and float32 sums, so each
 * output is held to 2^-8 of M_c = sum_p P_p |v_pc|. Shapes: the four above, MLA's own
 * (16 heads on a 576-element latent row, values its first 512) and GQA with 128-element
 * heads; decode: tokens at 700, 257 and 512 positions (one to three blocks of 256), a
 * reference that drops the keys past 512 of the first token must fail; prefill in query
 * blocks (ops.c attn_qblock): the tokens of attn_blocks_vs_tokens, a reference whose
 * mask lets a sequence's first token see its second must fail. */
static double attn_bf16_low_vs_ref(const AttnShape *sh, int prefill, int wrong, int *rounded) {
    float *dec = xmalloc(sizeof(float) * (size_t)CS * CP * sh->row);
    KVCache kv = random_cache(DT_BF16, sh->row, dec, 0);
    int seq[PREFILL_T] = { 0, 1, 1 }, pos[PREFILL_T] = { 699, 256, 511 }, T = 3;
    if (prefill) T = prefill_tokens(seq, pos);     /* the query blocks' tokens of attn_blocks_vs_tokens */
    size_t nq = (size_t)T * sh->H * sh->dk, no = (size_t)T * sh->H * sh->dv;
    float *q = xmalloc(sizeof(float) * nq), *o = xmalloc(sizeof(float) * no);
    for (size_t i = 0; i < nq; i++) q[i] = frand();
    AttnArgs a = attn_args(sh, &kv, T, seq, pos, q, o);
    qdot_set_products(1);
    attention(&a);
    qdot_set_products(0);
    float *of = xmalloc(sizeof(float) * no);   /* float32 products: whether the rounding path ran */
    AttnArgs b = attn_args(sh, &kv, T, seq, pos, q, of);
    attention(&b);
    qdot_set_products(-1);
    *rounded = memcmp(o, of, sizeof(float) * no) != 0;
    free(of);
    double worst = 0, scale = 1.0 / sqrt((double)sh->dk);
    double *sc = xmalloc(sizeof(double) * CP);
    int group = sh->H / sh->Hkv, rq = sh->dk >= 128;   /* queries rounded: the BF16 path's keys */
    for (int t = 0; t < T; t++)
        for (int h = 0; h < sh->H; h++) {
            int g = h / group, n = pos[t] + 1;
            if (wrong && !prefill && t == 0) n = 512;
            if (wrong && prefill && t == 60) n = 2;     /* position 0 of sequence 1 sees position 1 */
            const float *qh = q + ((size_t)t * sh->H + h) * sh->dk;
            const float *rows = dec + (size_t)seq[t] * CP * sh->row;
            double mx = -INFINITY, l = 0;
            for (int p = 0; p < n; p++) {
                const float *k = rows + (size_t)p * sh->row + sh->k_off + g * sh->khs;
                double d = 0;
                for (int i = 0; i < sh->dk; i++) d += (double)(rq ? bf16_to_f32(f32_to_bf16(qh[i])) : qh[i]) * k[i];
                sc[p] = d * scale;
                if (sc[p] > mx) mx = sc[p];
            }
            for (int p = 0; p < n; p++) { sc[p] = exp(sc[p] - mx); l += sc[p]; }
            for (int c = 0; c < sh->dv; c++) {
                double r = 0, mag = 0;
                for (int p = 0; p < n; p++) {
                    double v = rows[(size_t)p * sh->row + sh->v_off + g * sh->vhs + c];
                    r += sc[p] / l * v;
                    mag += sc[p] / l * fabs(v);
                }
                double d = fabs(o[((size_t)t * sh->H + h) * sh->dv + c] - r) / (0x1p-8 * mag + 1e-6);
                if (d > worst) worst = d;
            }
        }
    free(sc); free(q); free(o); free(dec); free(kv.data);
    return worst;
}

static void t_attention_bf16_low(void) {
    if (!qgemm_ok(DT_BF16)) { t_skip("no AVX-512 BF16 in this build: a BF16 cache is widened to float32"); return; }
    const AttnShape more[2] = { { "MLA latent Dc 512 + Dr 64, 16 heads", 576, 576, 512, 16, 1, 0, 0, 0, 0 },
                                { "GQA 8 on 2, hd 128", 512, 128, 128, 8, 2, 0, 128, 256, 128 } };
    for (int pf = 0; pf <= 1; pf++)
        for (int k = 0; k <= 5; k++) {
            const AttnShape *sh = k < 4 ? &attn_shapes[k] : &more[k - 4];
            const char *how = pf ? "prefill in query blocks" : "decode";
            int rounded, r2;
            double d = attn_bf16_low_vs_ref(sh, pf, 0, &rounded);
            /* keys of 128 elements or more take the VDPBF16PS path (ops.c ATTN_BF16_MIN_DK) */
            CHECK(rounded == (sh->dk >= 128), "%s, %s: the BF16 path %s, keys of %d", sh->name, how,
                  rounded ? "ran" : "did not run", sh->dk);
            if (getenv("EFFBENCH_TEST_VERBOSE")) fprintf(stderr, "    %s, %s: %.3g of the bound\n", sh->name, how, d);
            CHECK(d <= 1, "%s, %s, BF16 cache, --products low: %.3g of the bound (2^-8 of sum P|v|) from float64", sh->name,
                  how, d);
            double bad = attn_bf16_low_vs_ref(sh, pf, 1, &r2);
            CHECK(bad > 1, "%s, %s: a reference that %s passed (%.3g of the bound)", sh->name, how,
                  pf ? "lets position 0 see position 1" : "drops the keys past 512", bad);
        }
}

/* ---- golden cases -------------------------------------------------------------------- */
static void golden_kv_one(const char *rel) {
    Case c;
    if (case_load(rel, &c)) return;
    Model m;
    LoadOpts o = { .dtype = DT_F32, .seed = 1 };
    Err e = { "" };
    if (model_load(&m, c.dir, &o, &e)) { t_fail(__FILE__, __LINE__, "load %s: %s", c.dir, e.msg); case_free(&c); return; }
    int V = m.cfg.vocab, np = c.n_prompt, nc = c.n_cont, n = np + nc;
    int tok[128];
    memcpy(tok, c.prompt, sizeof(int) * (size_t)np);
    memcpy(tok + np, c.cont, sizeof(int) * (size_t)nc);
    size_t nv = (size_t)n * V;
    float *ref = xmalloc(sizeof(float) * nv), *lg = xmalloc(sizeof(float) * nv), *row = xmalloc(sizeof(float) * (size_t)V);
    if (prefill_as(&m, DT_F32, tok, n, ref)) goto done;
    float scale = max_abs(ref, nv);
    DType dts[2] = { DT_BF16, DT_F8_E4M3 };
    float tols[2] = { TOL_BF16, TOL_FP8 };
    for (int j = 0; j < 2; j++) {
        DType dt = dts[j];
        const char *dn = dtype_name(dt);
        if (prefill_as(&m, dt, tok, n, lg)) break;
        size_t w;
        float d = max_abs_diff(lg, ref, nv, &w) / scale;
        printf("      %s, %s cache: max |logit diff| / max |logit| = %.3g (token %zu, %g vs %g)\n", rel, dn, d, w / V, lg[w],
               ref[w]);
        CHECK(d <= tols[j], "%s, %s cache: logits differ from the f32 cache's by %g relative at token %zu vocab %zu (%g vs %g), bound %g",
              rel, dn, d, w / V, w % V, lg[w], ref[w], tols[j]);
        /* greedy continuation with this cache, token by token (decode = prefill as well) */
        KVCache kv;
        if (kv_create_as(&kv, &m, 1, n, dt, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); break; }
        int seq[128] = { 0 }, pos[128], rc = 0, checked = 0;
        for (int i = 0; i < n; i++) pos[i] = i;
        float worst = 0;
        int worst_at = -1;
        int cur = tok[0], agree = 1;
        for (int i = 0; i < n - 1 && !rc; i++) {
            rc = model_forward(&m, &kv, 1, &cur, seq, &pos[i], NULL, row, NULL, &e);
            if (rc) break;
            if (agree) {                     /* the same tokens so far: the prefill's row i applies */
                float dd = max_abs_diff(row, lg + (size_t)i * V, (size_t)V, &w);
                if (dd > worst) { worst = dd; worst_at = i; }
            }
            int g = argmax(row, V);
            if (i + 1 >= np && agree) {      /* a continuation token: compare where the margin allows */
                const float *r = ref + (size_t)i * V;
                int b = argmax(r, V);
                float second = -INFINITY;
                for (int v = 0; v < V; v++) if (v != b && r[v] > second) second = r[v];
                if (r[b] - second > 2 * tols[j] * scale) {
                    CHECK(g == tok[i + 1], "%s, %s cache: greedy token %d is %d, want %d (f32 margin %g > 2 x bound %g)", rel, dn,
                          i + 1 - np, g, tok[i + 1], r[b] - second, tols[j] * scale);
                    checked++;
                } else agree = 0;            /* a tie within the bound: stop comparing here */
            }
            cur = i + 1 < np ? tok[i + 1] : agree ? tok[i + 1] : g;
        }
        CHECK(rc == 0, "%s decode: %s", dn, e.msg);
        printf("      %s, %s cache: %d of %d greedy tokens compared; decode vs prefill max |diff| %.3g (position %d)\n", rel, dn,
               checked, nc, worst, worst_at);
        CHECK(worst <= tols[j] / 8 * scale, "%s, %s cache: decode differs from prefill by %g at position %d (bound %g)", rel, dn,
              worst, worst_at, tols[j] / 8 * scale);
        /* the tester: layer 0's FP8 scales doubled before the last token must be caught */
        if (dt == DT_F8_E4M3 && !rc) {
            kv.len[0] = n - 1;
            for (int p = 0; p < n - 1; p++) {
                float *s = kv_scales(&kv, 0, 0, p);
                for (int b = 0; b < kv.n_scales; b++) s[b] *= 2;
            }
            rc = model_forward(&m, &kv, 1, &tok[n - 1], seq, &pos[n - 1], NULL, row, NULL, &e);
            float bad = max_abs_diff(row, ref + (size_t)(n - 1) * V, (size_t)V, &w) / scale;
            CHECK(rc == 0 && bad > tols[j], "%s: FP8 scales off by 2 went unnoticed (diff %g, bound %g)", rel, bad, tols[j]);
        }
        kv_free(&kv);
    }
done:
    free(ref); free(lg); free(row);
    model_free(&m);
    case_free(&c);
}

static void t_golden_kv_0(void) { golden_kv_one(CASES[0]); }
static void t_golden_kv_1(void) { golden_kv_one(CASES[1]); }
static void t_golden_kv_2(void) { golden_kv_one(CASES[2]); }
static void t_golden_kv_3(void) { golden_kv_one(CASES[3]); }
static void t_golden_kv_4(void) { golden_kv_one(CASES[4]); }

/* ---- bytes per token ------------------------------------------------------------------ */
static void t_kv_bytes_types(void) {
    /* (config, naive, row elements per layer, layers): F32 4 * row, BF16 2 * row,
     * FP8 row + 4 * ceil(row / 128), times layers */
    struct { const char *cfg; int naive; uint64_t row, L; } cases[] = {
        { "deepseek-v2-lite.json", 0, 512 + 64, 27 },
        { "deepseek-v2-lite.json", 1, 16 * (128 + 64) + 16 * 128, 27 },
        { "deepseek-v3.json", 0, 512 + 64, 61 },
        { "llama-3.1-8b.json", 0, 2 * 8 * 128, 32 },
        { "mixtral-8x7b.json", 0, 2 * 8 * 128, 32 },
    };
    DType dts[3] = { DT_F32, DT_BF16, DT_F8_E4M3 };
    for (int k = 0; k < 5; k++) {
        char p[256];
        snprintf(p, sizeof p, "suites/configs/%s", cases[k].cfg);
        Model m;
        LoadOpts o = { .dtype = DT_BF16, .dummy = 1, .shapes_only = 1, .naive_mla = cases[k].naive };
        Err e = { "" };
        if (model_load(&m, p, &o, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); continue; }
        uint64_t r = cases[k].row, L = cases[k].L;
        uint64_t want[3] = { 4 * r * L, 2 * r * L, (r + 4 * ((r + 127) / 128)) * L };
        for (int j = 0; j < 3; j++) {
            KVCache kv;
            if (kv_create_as(&kv, &m, 2, 4, dts[j], &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); continue; }
            CHECK(kv_bytes_per_token(&kv) == want[j], "%s%s, %s cache: %llu bytes/token, closed form %llu", cases[k].cfg,
                  cases[k].naive ? " (naive MLA)" : "", dtype_name(dts[j]), (unsigned long long)kv_bytes_per_token(&kv),
                  (unsigned long long)want[j]);
            kv_free(&kv);
        }
        model_free(&m);
    }
}

/* Softmax numerators (ops.c: exp_sub_sum) against exp in double of the same float
 * difference s - mx (which both round alike): each within 3 x 2^-24
 * of the value (Cephes' expf in vectors: 2 ulp, plus one rounding of the reference) or,
 * below FLT_MIN, within 4 of the smallest subnormal; the sum within 1e-6. Lengths round
 * the vector width (1, 15, 16, 17, 1000), arguments from 0 down to -110 (underflow to
 * 0 as expf does); NaN stays NaN. A maximum off by 1e-5 must fail the bound. */
static void t_exp_sub_sum(void) {
    int ns[] = { 1, 15, 16, 17, 1000 };
    uint32_t r = 12345;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int n = ns[k];
        float *s = malloc(sizeof(float) * (size_t)n), *orig = malloc(sizeof(float) * (size_t)n), *off = malloc(sizeof(float) * (size_t)n);
        float mx = 3.25f;
        for (int j = 0; j < n; j++) {
            r = r * 1664525u + 1013904223u;
            orig[j] = j % 9 == 0 ? mx : mx - (float)(r >> 8) / 16777216.0f * (j % 2 ? 110.0f : 20.0f);
            s[j] = off[j] = orig[j];
        }
        float sum = exp_sub_sum(s, n, mx), sum_off = exp_sub_sum(off, n, mx + 1e-5f);
        double ref_sum = 0, worst = 0;
        int caught = 0;
        for (int j = 0; j < n; j++) {
            double ref = exp((double)(orig[j] - mx));    /* the float difference, as both take it */
            ref_sum += ref;
            double tol = ref >= 1.17549435e-38 ? 3 * 0x1p-24 * ref : 4 * 1.4e-45;
            if (fabs(s[j] - ref) / tol > worst) worst = fabs(s[j] - ref) / tol;
            if (fabs(off[j] - ref) > tol) caught = 1;
        }
        CHECK(worst <= 1, "exp_sub_sum n %d: %.2f times the bound from exp in double", n, worst);
        CHECK(fabs(sum - ref_sum) <= 1e-6 * ref_sum, "exp_sub_sum n %d: sum %.9g against %.9g", n, sum, ref_sum);
        CHECK(caught && sum_off != sum, "exp_sub_sum n %d: a maximum off by 1e-5 passed", n);
        free(s); free(orig); free(off);
    }
    float v[17];
    for (int j = 0; j < 17; j++) v[j] = -1.0f;
    v[3] = NAN;
    float sum = exp_sub_sum(v, 17, 0.0f);
    CHECK(isnan(v[3]) && isnan(sum) && fabsf(v[4] - expf(-1.0f)) < 1e-7f, "exp_sub_sum: NaN did not stay NaN alone");
}

/* SwiGLU (ops.c: swiglu, exp16 in vectors) against g / (1 + exp(-g)) u in double: each
 * within 4 x 2^-24 of |silu(g) u| (the exponential's 2 ulp, the sum, quotient and product
 * rounded once each) plus 3e-37 (below g = -88.7 silu is taken as 0), for g from -100 to
 * 100 and +-1e30 (past the vector exponential's clamp on both sides), lengths round the
 * vector width and the threads' split (1, 15, 17, 1000, 300001: over 262144 the threads
 * share it); NaN stays NaN alone. u = 1 + g/7 in a wrong reference must fail. */
static void t_swiglu(void) {
    int ns[] = { 1, 15, 17, 1000, 300001 };
    uint32_t r = 777;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int n = ns[k];
        float *g = malloc(sizeof(float) * (size_t)n), *u = malloc(sizeof(float) * (size_t)n), *g0 = malloc(sizeof(float) * (size_t)n);
        for (int j = 0; j < n; j++) {
            r = r * 1664525u + 1013904223u;
            g0[j] = g[j] = j % 101 == 7 ? (j % 2 ? 1e30f : -1e30f) : ((float)(r >> 8) / 16777216.0f - 0.5f) * (j % 3 ? 16.0f : 200.0f);
            u[j] = 1.0f - (float)(j % 7) / 3.0f;
        }
        swiglu(g, u, n);
        double worst = 0, worst_bad = 0;
        for (int j = 0; j < n; j++) {
            double x = g0[j], ref = x / (1 + exp(-x)) * u[j], bad = x / (1 + exp(-x)) * (1 + x / 7);
            double tol = 4 * 0x1p-24 * fabs(ref) + 3e-37;
            if (fabs(g[j] - ref) / tol > worst) worst = fabs(g[j] - ref) / tol;
            if (fabs(g[j] - bad) / tol > worst_bad) worst_bad = fabs(g[j] - bad) / tol;
        }
        CHECK(worst <= 1, "swiglu n %d: %.2f times the bound from double", n, worst);
        CHECK(worst_bad > 1, "swiglu n %d: a wrong up projection passed", n);
        free(g); free(u); free(g0);
    }
    /* NaN in one lane of the vector part: the other 15 lanes and the scalar tail (lane 16)
     * keep silu(1) * 2 = 1.4621, within 1e-6 (8 ulp there: exp's 2 ulp and three roundings) */
    float g[17], u[17];
    for (int j = 0; j < 17; j++) g[j] = 1.0f, u[j] = 2.0f;
    g[5] = NAN;
    swiglu(g, u, 17);
    int alone = isnan(g[5]);
    for (int j = 0; j < 17; j++)
        if (j != 5 && !(fabs(g[j] - 2.0 / (1.0 + exp(-1.0))) < 1e-6)) alone = 0;
    CHECK(alone, "swiglu: NaN did not stay NaN alone");
}

const TestDef kv_tests[] = {
    { "swiglu in vectors vs double, over the threads' split; NaN alone", t_swiglu },
    { "kv attention on BF16/FP8 codes = on their f32 values", t_attention_codes },
    { "prefill attention in query blocks = one token at a time, f32/BF16/FP8 caches", t_attention_blocks },
    { "softmax numerators in vectors: within 2 ulp of exp, a shifted maximum caught", t_exp_sub_sum },
    { "decode and prefill attention on a BF16 cache in VDPBF16PS (--products low) vs float64", t_attention_bf16_low },
    { "kv v3-tiny bf16/fp8 cache vs f32 cache", t_golden_kv_0 },
    { "kv v2-lite-tiny bf16/fp8 cache vs f32 cache", t_golden_kv_1 },
    { "kv llama-tiny bf16/fp8 cache vs f32 cache", t_golden_kv_2 },
    { "kv qwen2-tiny bf16/fp8 cache vs f32 cache", t_golden_kv_3 },
    { "kv mixtral-tiny bf16/fp8 cache vs f32 cache", t_golden_kv_4 },
    { "kv bytes/token of f32, bf16, fp8 = closed form", t_kv_bytes_types },
};
const int n_kv_tests = sizeof kv_tests / sizeof kv_tests[0];
