/*
 * test_badinput.c - broken checkpoints and configs. Each must be refused with one
 * line that names the file and the problem, never a crash; the sanitizer build
 * (make asan) runs these too.
 */
#define _GNU_SOURCE
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

/* A checkpoint dir in g_tmp/name with the v3-tiny config (optionally edited) and
 * the given safetensors bytes written by the caller. Returns the dir. */
static const char *mkcase(const char *name, char *dir, size_t len) {
    snprintf(dir, len, "%s/%s", g_tmp, name);
    make_dir(dir);
    return dir;
}

static const char *golden_v3(void) {
    static char p[1100];
    snprintf(p, sizeof p, "%s/deepseek/v3-tiny", g_golden);
    return p;
}

/* loads dir, expects failure with every phrase of `want` (| separated) in one line */
static void expect_refused(const char *dir, const char *want) {
    Model m;
    LoadOpts o = { .dtype = DT_F32, .seed = 1 };
    Err e = { "" };
    int rc = model_load(&m, dir, &o, &e);
    if (rc == 0) { model_free(&m); t_fail(__FILE__, __LINE__, "%s: loaded, but should be refused (%s)", dir, want); return; }
    CHECK(strchr(e.msg, '\n') == NULL, "message spans lines: %s", e.msg);
    char w[512];
    snprintf(w, sizeof w, "%s", want);
    for (char *tok = strtok(w, "|"); tok; tok = strtok(NULL, "|"))
        CHECK(strstr(e.msg, tok) != NULL, "message lacks \"%s\": %s", tok, e.msg);
}

/* a valid config beside the crafted weights: the golden one, or the repository's
 * tiny test config when the goldens are absent (header checks come before binding) */
static int copy_config(const char *dir) {
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/config.json", golden_v3());
    snprintf(b, sizeof b, "%s/config.json", dir);
    if (access(a, R_OK) != 0) snprintf(a, sizeof a, "tests/data/eval-model/config.json");
    return copy_file(a, b);
}

/* the golden file's bytes */
static char *golden_bytes(size_t *len) {
    char p[1200];
    Err e;
    snprintf(p, sizeof p, "%s/model.safetensors", golden_v3());
    return read_file(p, 1u << 30, len, &e);
}

static int have_golden(void) {
    char p[1200];
    snprintf(p, sizeof p, "%s/model.safetensors", golden_v3());
    FILE *f = fopen(p, "rb");
    if (!f) { t_skip("golden v3-tiny not found"); return 0; }
    fclose(f);
    return 1;
}

static void write_bytes(const char *dir, const char *file, const void *b, size_t n) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static void t_truncated(void) {
    if (!have_golden()) return;
    char d[600];
    size_t n;
    char *b = golden_bytes(&n);
    mkcase("truncated", d, sizeof d);
    copy_config(d);
    write_bytes(d, "model.safetensors", b, n / 2);
    expect_refused(d, "model.safetensors|past the|truncated");
    write_bytes(d, "model.safetensors", b, 5);
    expect_refused(d, "model.safetensors|truncated");
    free(b);
}

static void t_header_past_end(void) {
    char d[600], p[1200];
    mkcase("hdrlen", d, sizeof d);
    copy_config(d);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    st_write_raw(p, 1ull << 20, "{}", NULL, 0);
    expect_refused(d, "model.safetensors|header length|past the end");
    st_write_raw(p, 1ull << 40, "{}", NULL, 0);
    expect_refused(d, "model.safetensors|exceeds");
}

static void raw_case(const char *name, const char *header, size_t data_len, const char *want) {
    char d[600], p[1200];
    mkcase(name, d, sizeof d);
    copy_config(d);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    char *zeros = xcalloc(data_len + 1, 1);
    st_write_raw(p, strlen(header), header, zeros, data_len);
    free(zeros);
    expect_refused(d, want);
}

static void t_offsets(void) {
    raw_case("off-range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
             "model.safetensors|\"a\"|past the");
    raw_case("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24, "model.safetensors|overlaps");
    raw_case("gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 24, "model.safetensors|gap");
    raw_case("size-mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16,
             "model.safetensors|\"a\"|needs 12 bytes");
    raw_case("overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}", 16,
             "model.safetensors|overflows");
    raw_case("negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16,
             "model.safetensors|shape[0]");
    raw_case("trailing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16,
             "model.safetensors|after the last tensor");
    raw_case("badjson", "{\"a\":{\"dtype\":\"F32\",", 0, "model.safetensors|not valid JSON");
    raw_case("dup", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "model.safetensors|twice");
}

static void t_unknown_dtype(void) {
    raw_case("dtype", "{\"a\":{\"dtype\":\"Q9_K\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
             "model.safetensors|\"a\"|unsupported dtype \"Q9_K\"");
}

/* golden tensors re-written with one change */
typedef enum { DROP, EXTRA, RESHAPE, NANV, HUGE_NORM } Edit;

static void edited(const char *name, Edit ed, const char *want) {
    if (!have_golden()) return;
    char src[1200], d[600], p[1200];
    snprintf(src, sizeof src, "%s/model.safetensors", golden_v3());
    StSet s = { 0 };
    Err e;
    if (st_open_file(src, &s, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    WTensor *w = xcalloc((size_t)s.n + 1, sizeof *w);
    int n = 0;
    float *extra = xcalloc(16, sizeof(float)), *copy = NULL;
    for (int i = 0; i < s.n; i++) {
        StTensor *t = &s.t[i];
        WTensor x = { t->name, t->dtype, t->ndim, { 0 }, t->data };
        memcpy(x.shape, t->shape, sizeof x.shape);
        int target = !strcmp(t->name, "model.layers.1.self_attn.kv_b_proj.weight");
        if (ed == DROP && target) continue;
        if (ed == RESHAPE && target) { x.shape[0] = t->shape[1]; x.shape[1] = t->shape[0]; }
        if ((ed == NANV && target) || (ed == HUGE_NORM && !strcmp(t->name, "model.norm.weight"))) {
            copy = xmalloc(t->nbytes);
            memcpy(copy, t->data, t->nbytes);
            if (ed == NANV) copy[5] = NAN;
            else for (size_t k = 0; k < t->nbytes / 4; k++) copy[k] = 3e38f;
            x.data = copy;
        }
        w[n++] = x;
    }
    if (ed == EXTRA) { WTensor x = { "model.layers.0.self_attn.extra.weight", DT_F32, 2, { 4, 4 }, extra }; w[n++] = x; }
    mkcase(name, d, sizeof d);
    copy_config(d);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    st_write(p, w, n);
    st_close(&s);
    free(w); free(extra);
    if (ed == HUGE_NORM) {            /* loads; the forward pass must report Inf logits */
        Model m;
        LoadOpts o = { .dtype = DT_F32 };
        if (model_load(&m, d, &o, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); free(copy); return; }
        KVCache kv;
        kv_create(&kv, &m, 1, 4, &e);
        int tok[2] = { 1, 2 }, seq[2] = { 0, 0 }, pos[2] = { 0, 1 };
        float *lg = xmalloc(sizeof(float) * 2 * (size_t)m.cfg.vocab);
        Err fe = { "" };
        int rc = model_forward(&m, &kv, 2, tok, seq, pos, NULL, lg, NULL, &fe);
        CHECK(rc != 0 && strstr(fe.msg, "NaN/Inf logits"), "Inf logits not reported: rc %d, %s", rc, fe.msg);
        free(lg);
        kv_free(&kv);
        model_free(&m);
    } else {
        expect_refused(d, want);
    }
    free(copy);
}

static void t_missing_tensor(void) { edited("missing", DROP, "missing tensor \"model.layers.1.self_attn.kv_b_proj.weight\""); }
static void t_extra_tensor(void) { edited("extra", EXTRA, "model.safetensors|unexpected tensor \"model.layers.0.self_attn.extra.weight\""); }
static void t_wrong_shape(void) { edited("shape", RESHAPE, "model.safetensors|kv_b_proj|shape [32, 128], expected [128, 32]"); }
static void t_nan_weight(void) { edited("nan", NANV, "model.safetensors|kv_b_proj|NaN/Inf"); }
static void t_inf_logits(void) { edited("inflogits", HUGE_NORM, ""); }

/* ---- configs ------------------------------------------------------------------------ */
static void cfg_case(const char *name, const char *from, const char *to, const char *want) {
    if (!have_golden()) return;
    char src[1200], d[600], p[1200];
    snprintf(src, sizeof src, "%s/config.json", golden_v3());
    Err e;
    char *txt = read_file(src, 1 << 20, NULL, &e);
    char *at = strstr(txt, from);
    CHECK(at != NULL, "test setup: \"%s\" not in config", from);
    if (!at) { free(txt); return; }
    mkcase(name, d, sizeof d);
    snprintf(p, sizeof p, "%s/config.json", d);
    FILE *f = fopen(p, "w");
    fprintf(f, "%.*s%s%s", (int)(at - txt), txt, to, at + strlen(from));
    fclose(f);
    free(txt);
    char st[1200];
    snprintf(st, sizeof st, "%s/model.safetensors", golden_v3());
    char dst[1200];
    snprintf(dst, sizeof dst, "%s/model.safetensors", d);
    copy_file(st, dst);
    expect_refused(d, want);
}

static void t_config_errors(void) {
    cfg_case("cfg-missing", "\"hidden_size\": 128,", "", "config.json|missing required field \"hidden_size\"");
    cfg_case("cfg-zero-heads", "\"num_attention_heads\": 4", "\"num_attention_heads\": 0", "config.json|num_attention_heads|is 0");
    cfg_case("cfg-negative", "\"kv_lora_rank\": 32", "\"kv_lora_rank\": -32", "config.json|kv_lora_rank|is -32");
    cfg_case("cfg-type", "\"model_type\": \"deepseek_v3\"", "\"model_type\": \"gpt_neox\"", "config.json|unsupported model_type \"gpt_neox\"");
    cfg_case("cfg-json", "\"vocab_size\": 512,", "\"vocab_size\": 512,,", "config.json|malformed JSON");
    cfg_case("cfg-score", "\"scoring_func\": \"sigmoid\"", "\"scoring_func\": \"relu\"", "config.json|scoring_func \"relu\"");
    cfg_case("cfg-topk", "\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 20", "config.json|num_experts_per_tok 20");
    cfg_case("cfg-string", "\"hidden_size\": 128", "\"hidden_size\": \"128\"", "config.json|\"hidden_size\" must be an integer");
    cfg_case("cfg-rope", "\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2}",
             "config.json|rope_scaling type \"dynamic\"");
    /* the config's layer count disagrees with the weights */
    cfg_case("cfg-layers", "\"num_hidden_layers\": 3", "\"num_hidden_layers\": 4", "missing tensor \"model.layers.3.");
}

static void t_bad_tokens(void) {
    if (!have_golden()) return;
    Model m;
    LoadOpts o = { .dtype = DT_F32 };
    Err e = { "" };
    if (model_load(&m, golden_v3(), &o, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    KVCache kv;
    kv_create(&kv, &m, 1, 4, &e);
    float lg[512 * 2];
    int tok[2] = { 5, 512 }, seq[2] = { 0, 0 }, pos[2] = { 0, 1 };
    CHECK(model_forward(&m, &kv, 2, tok, seq, pos, NULL, lg, NULL, &e) != 0 && strstr(e.msg, "outside the vocabulary"), "token 512: %s", e.msg);
    tok[1] = -1;
    CHECK(model_forward(&m, &kv, 2, tok, seq, pos, NULL, lg, NULL, &e) != 0 && strstr(e.msg, "outside the vocabulary"), "token -1: %s", e.msg);
    tok[1] = 3; pos[1] = 4;
    CHECK(model_forward(&m, &kv, 2, tok, seq, pos, NULL, lg, NULL, &e) != 0 && strstr(e.msg, "cache holds 4 positions"), "position 4: %s", e.msg);
    pos[1] = 2;
    CHECK(model_forward(&m, &kv, 2, tok, seq, pos, NULL, lg, NULL, &e) != 0 && strstr(e.msg, "skips ahead"), "gap: %s", e.msg);
    CHECK(kv.len[0] == 0, "a refused step must not change the cache");
    kv_free(&kv);
    model_free(&m);
}

static void t_too_big(void) {
    setenv("EFFBENCH_MEM_LIMIT", "100000000", 1);      /* pretend 100 MB are available */
    Model m;
    LoadOpts o = { .dtype = DT_BF16, .seed = 1, .dummy = 1 };
    Err e = { "" };
    int rc = model_load(&m, "suites/configs/deepseek-v3.json", &o, &e);
    unsetenv("EFFBENCH_MEM_LIMIT");
    if (rc == 0) { model_free(&m); t_fail(__FILE__, __LINE__, "a 1.3 TB model was allocated"); return; }
    CHECK(strstr(e.msg, "deepseek-v3.json") && strstr(e.msg, "need 1.2 TiB") && strstr(e.msg, "95.4 MiB"), "message: %s", e.msg);
    /* and the cache */
    o.shapes_only = 1;
    CHECK(model_load(&m, "suites/configs/llama-3.1-8b.json", &o, &e) == 0, "%s", e.msg);
    KVCache kv;
    setenv("EFFBENCH_MEM_LIMIT", "100000000", 1);
    rc = kv_create(&kv, &m, 64, 131072, &e);
    unsetenv("EFFBENCH_MEM_LIMIT");
    if (rc == 0) kv_free(&kv);
    CHECK(rc != 0 && strstr(e.msg, "KV cache") && strstr(e.msg, "needs 2.0 TiB"), "cache: %s", e.msg);
    model_free(&m);
}

static void t_index_errors(void) {
    if (!have_golden()) return;
    char d[600], p[1200], src[1200];
    mkcase("index", d, sizeof d);
    copy_config(d);
    snprintf(src, sizeof src, "%s/model.safetensors", golden_v3());
    snprintf(p, sizeof p, "%s/model-1.safetensors", d);
    copy_file(src, p);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"weight_map\": {\"lm_head.weight\": \"model-2.safetensors\"}}");
    fclose(f);
    expect_refused(d, "model-2.safetensors|cannot open");
    f = fopen(p, "w");
    fprintf(f, "{\"weight_map\": {\"lm_head.weight\": \"../../etc/passwd\"}}");
    fclose(f);
    expect_refused(d, "index.json|not a file beside the index");
    f = fopen(p, "w");
    fprintf(f, "{\"weight_map\": {\"lm_head.weight\": \"model-1.safetensors\"}}");
    fclose(f);
    expect_refused(d, "index.json|hold 91 tensors but the index lists 1");
    /* found by fuzz_index: an empty weight_map (no tensors at all) */
    f = fopen(p, "w");
    fprintf(f, "{\"weight_map\": {}}");
    fclose(f);
    expect_refused(d, "missing tensor \"model.embed_tokens.weight\"");
}

const TestDef bad_tests[] = {
    { "bad truncated safetensors", t_truncated },
    { "bad header length past the end", t_header_past_end },
    { "bad offsets (range, overlap, gap, size)", t_offsets },
    { "bad unknown dtype", t_unknown_dtype },
    { "bad missing tensor", t_missing_tensor },
    { "bad extra tensor", t_extra_tensor },
    { "bad wrong-shaped tensor", t_wrong_shape },
    { "bad NaN in weights", t_nan_weight },
    { "bad Inf logits reported", t_inf_logits },
    { "bad config fields and values", t_config_errors },
    { "bad token ids and positions", t_bad_tokens },
    { "bad model/cache too big for memory", t_too_big },
    { "bad shard index", t_index_errors },
};
const int n_bad_tests = sizeof bad_tests / sizeof bad_tests[0];
