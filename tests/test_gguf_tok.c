/*
 * test_gguf_tok.c - the tokenizer read from GGUF metadata (evals/tok_gguf.c) and the
 * tokenizer lookup of a model path.
 *
 * References, each independent of effbench's GGUF code:
 *   deepseek-v3, qwen2  the real DeepSeek-V3 and Qwen3 tokenizer.json files
 *                       (../shared/reference/tokenizers) written into GGUF files the way
 *                       llama.cpp's convert_hf_to_gguf.py writes them (get_vocab_base,
 *                       SpecialVocab); the GGUF tokenizer must give tok_load's ids and
 *                       text on the 64-line shared corpus, whose ids come from
 *                       Tokenizers.js, and decode every id to the same bytes.
 *   gpt-2, llama-bpe    the small tokenizers of tests/data/tokenizers (trained and encoded
 *                       by the `tokenizers` library, tests/gen_tokenizer_refs.py) written
 *                       into GGUF files: the library's ids, with Llama-3's default BOS.
 *   smollm              tests/gen_gguf_tok_refs.py: the `tokenizers` library with SmolLM2's
 *                       Hugging Face configuration, on the gpt2-style vocabulary (always)
 *                       and on the real SmolLM2 GGUF's vocabulary (when the model is at
 *                       models/ or $EFFBENCH_SMOLLM2).
 * Every id and every decoded string must match exactly; a tokenizer with one merge moved
 * must disagree with its reference.
 */
#define _GNU_SOURCE
#include "test.h"
#include "gguf_write.h"
#include "table.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- a tokenizer.json written as GGUF metadata, as convert_hf_to_gguf.py does -------- */
typedef struct {
    const char *pre;             /* tokenizer.ggml.pre */
    const char *bos, *eos;       /* special token contents (NULL: not written) */
    int add_bos;                 /* -1: add_bos_token not written */
    int add_eos;                 /* -1: add_eos_token not written */
    int move_merge;              /* move the first merge to the end (a broken tokenizer) */
} Conv;

/* llama.cpp's does_token_look_special for the families here */
static int looks_special(const char *s) {
    size_t n = strlen(s);
    return (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>")) ||
           (n >= 8 && !strncmp(s, "<\xef\xbd\x9c", 4) && !strcmp(s + n - 4, "\xef\xbd\x9c>"));
}

/* a merge ["a", "b"] as "a b", spaces inside a part written as U+0120 (gguf-py's rule) */
static char *merge_str(const cJSON *m) {
    if (cJSON_IsString(m)) return xstrdup(m->valuestring);
    const char *a = m->child->valuestring, *b = m->child->next->valuestring;
    char *s = xmalloc(2 * (strlen(a) + strlen(b)) + 2), *p = s;
    for (const char *x = a;; x = b) {
        for (; *x; x++) if (*x == ' ') { *p++ = '\xc4'; *p++ = '\xa0'; } else *p++ = *x;
        if (x == b + strlen(b)) break;
        *p++ = ' ';
    }
    *p = 0;
    return s;
}

static int content_id(const cJSON *root, const char *content) {
    for (const cJSON *a = cJSON_GetObjectItem(root, "added_tokens")->child; a; a = a->next)
        if (!strcmp(cJSON_GetObjectItem(a, "content")->valuestring, content)) return cJSON_GetObjectItem(a, "id")->valueint;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(root, "model"), "vocab");
    v = cJSON_GetObjectItemCaseSensitive(v, content);
    return v ? v->valueint : -1;
}

static int write_converted(const char *json_path, const Conv *c, const char *out) {
    Err e = { "" };
    char *txt = read_file(json_path, 64u << 20, NULL, &e);
    if (!txt) { t_skip("%s", e.msg); return -1; }
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    const cJSON *model = cJSON_GetObjectItem(root, "model"), *vocab = cJSON_GetObjectItem(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItem(model, "merges"), *added = cJSON_GetObjectItem(root, "added_tokens");
    int n = 0;
    for (const cJSON *v = vocab->child; v; v = v->next) if (v->valueint + 1 > n) n = v->valueint + 1;
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next)
        if (cJSON_GetObjectItem(a, "id")->valueint + 1 > n) n = cJSON_GetObjectItem(a, "id")->valueint + 1;
    char **toks = xcalloc((size_t)n, sizeof *toks);
    int32_t *types = xmalloc(sizeof *types * (size_t)n);
    for (const cJSON *v = vocab->child; v; v = v->next) { toks[v->valueint] = xstrdup(v->string); types[v->valueint] = 1; }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        int id = cJSON_GetObjectItem(a, "id")->valueint;
        const char *s = cJSON_GetObjectItem(a, "content")->valuestring;
        free(toks[id]);
        toks[id] = xstrdup(s);
        types[id] = cJSON_IsTrue(cJSON_GetObjectItem(a, "special")) || looks_special(s) ? 3 : 4;
    }
    for (int i = 0; i < n; i++)
        if (!toks[i]) { toks[i] = xasprintf("[PAD%d]", i); types[i] = 5; }
    int nm = cJSON_GetArraySize(merges), k = 0;
    char **ms = xmalloc(sizeof *ms * (size_t)(nm + 1));
    for (const cJSON *m = merges->child; m; m = m->next) ms[k++] = merge_str(m);
    if (c->move_merge && nm > 1) { char *first = ms[0]; memmove(ms, ms + 1, sizeof *ms * (size_t)(nm - 1)); ms[nm - 1] = first; }
    GgufW *w = gw_new();
    gw_str(w, "general.architecture", "llama");
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_str(w, "tokenizer.ggml.pre", c->pre);
    gw_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, n);
    gw_arr_i32(w, "tokenizer.ggml.token_type", types, n);
    gw_arr_str(w, "tokenizer.ggml.merges", (const char *const *)ms, nm);
    if (c->bos) gw_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)content_id(root, c->bos));
    if (c->eos) gw_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)content_id(root, c->eos));
    if (c->add_bos >= 0) gw_bool(w, "tokenizer.ggml.add_bos_token", c->add_bos);
    if (c->add_eos >= 0) gw_bool(w, "tokenizer.ggml.add_eos_token", c->add_eos);
    int rc = gw_write(w, out, 3, 0);
    gw_free(w);
    for (int i = 0; i < n; i++) free(toks[i]);
    for (int i = 0; i < nm; i++) free(ms[i]);
    free(toks); free(types); free(ms);
    cJSON_Delete(root);
    if (rc) t_fail(__FILE__, __LINE__, "cannot write %s", out);
    return rc;
}

static Tokenizer *open_gguf_tok(const char *path, Err *e) {
    Gguf g;
    if (gguf_open(path, &g, e)) return NULL;
    Tokenizer *t = tok_from_gguf(&g, e);
    gguf_close(&g);
    return t;
}

/* ---- a tokenizer against a reference JSONL ({"text", "ids", "ids_with_special", "decoded"}) */
/* bos_prefix: the reference's ids_with_special lack a BOS this tokenizer adds (-1: none).
 * Returns the lines whose ids and text all matched; *lines receives the line count. */
static int against_ref(Tokenizer *t, const char *name, const char *ref, int bos_prefix, int report, int *lines) {
    Err e = { "" };
    size_t len;
    char *buf = read_file(ref, 64u << 20, &len, &e);
    *lines = 0;
    if (!buf) { t_fail(__FILE__, __LINE__, "%s", e.msg); return 0; }
    int good = 0;
    char *end = buf + len;
    for (char *p = buf, *nl; p < end && *p; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        *nl = 0;
        ++*lines;
        cJSON *j = cJSON_Parse(p);
        const char *text = cJSON_GetObjectItem(j, "text")->valuestring;
        const cJSON *want[2] = { cJSON_GetObjectItem(j, "ids"), cJSON_GetObjectItem(j, "ids_with_special") };
        int ok = 1;
        for (int sp = 0; sp < 2; sp++) {
            int *got, n;
            if (tok_encode(t, text, strlen(text), sp, &got, &n, &e)) {
                if (report) t_fail(__FILE__, __LINE__, "%s line %d: %s", name, *lines, e.msg);
                ok = 0;
                continue;
            }
            int off = sp && bos_prefix >= 0, wn = cJSON_GetArraySize(want[sp]), k = 0;
            int same = n == wn + off && (!off || got[0] == bos_prefix);
            for (const cJSON *x = want[sp]->child; x && same; x = x->next, k++) same = got[k + off] == x->valueint;
            if (!same && report)
                t_fail(__FILE__, __LINE__, "%s line %d%s: %d ids, want %d; first difference at %d", name, *lines,
                       sp ? " (special)" : "", n, wn + off, k);
            ok &= same;
            if (!sp && same) {          /* decode the reference ids */
                int *w = xmalloc(sizeof(int) * (size_t)(wn + 1));
                k = 0;
                for (const cJSON *x = want[0]->child; x; x = x->next) w[k++] = x->valueint;
                char *d = tok_decode(t, w, wn, NULL, &e);
                const char *dw = cJSON_GetObjectItem(j, "decoded")->valuestring;
                if (!(d && !strcmp(d, dw))) {
                    if (report) t_fail(__FILE__, __LINE__, "%s line %d: decoded \"%.60s\", want \"%.60s\"", name, *lines, d ? d : e.msg, dw);
                    ok = 0;
                }
                free(d); free(w);
            }
            free(got);
        }
        good += ok;
        cJSON_Delete(j);
    }
    free(buf);
    return good;
}

static void check_ref(Tokenizer *t, const char *name, const char *ref, int bos_prefix, int lines_want) {
    int lines, good = against_ref(t, name, ref, bos_prefix, 1, &lines);
    CHECK(lines == lines_want && good == lines, "%s: %d of %d lines exact (%d expected)", name, good, lines, lines_want);
}

/* ---- the real DeepSeek-V3 and Qwen3 tokenizers, both ways --------------------------- */
/* decodes every id with both tokenizers; returns the first id that differs, or -1 */
static int first_decode_diff(Tokenizer *a, Tokenizer *b) {
    Err e = { "" };
    int n = tok_vocab_size(a);
    for (int id = 0; id < n; id++) {
        size_t la, lb;
        char *x = tok_decode(a, &id, 1, &la, &e), *y = tok_decode(b, &id, 1, &lb, &e);
        int same = x && y && la == lb && !memcmp(x, y, la);
        free(x); free(y);
        if (!same) return id;
    }
    return -1;
}

/* the normalizer and pre_tokenizer tok_gguf_json builds for the pre equal the real file's */
static void same_config(const char *gguf_path, const char *json_path) {
    Err e = { "" };
    Gguf g;
    if (gguf_open(gguf_path, &g, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    char *built = tok_gguf_json(&g, &e), *real = read_file(json_path, 64u << 20, NULL, &e);
    gguf_close(&g);
    cJSON *a = cJSON_Parse(built), *b = cJSON_Parse(real);
    CHECK(a && b, "%s", e.msg);
    for (int k = 0; a && b && k < 2; k++) {
        const char *key = k ? "pre_tokenizer" : "normalizer";
        int same = cJSON_Compare(cJSON_GetObjectItem(a, key), cJSON_GetObjectItem(b, key), 1);
        char *x = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, key));
        CHECK(same, "%s: the %s built for the pre differs from the real one: %.300s", json_path, key, x);
        free(x);
    }
    cJSON_Delete(a); cJSON_Delete(b);
    free(built); free(real);
}

static void real_case(const char *name, const Conv *c, int bos_id, int eos_id) {
    char jp[1200], rp[1200], gp[1200];
    snprintf(jp, sizeof jp, "%s/../reference/tokenizers/%s/tokenizer.json", g_golden, name);
    snprintf(rp, sizeof rp, "%s/../reference/tokenizers/%s/public.jsonl", g_golden, name);
    snprintf(gp, sizeof gp, "%s/%s.gguf", g_tmp, name);
    if (access(jp, R_OK) != 0) { t_skip("no reference tokenizer %s", jp); return; }
    if (write_converted(jp, c, gp)) return;
    Err e = { "" };
    Tokenizer *tg = open_gguf_tok(gp, &e);
    CHECK(tg, "%s", e.msg);
    Tokenizer *tj = tok_load(jp, &e);
    CHECK(tj, "%s", e.msg);
    if (!tg || !tj) { tok_free(tg); tok_free(tj); return; }
    same_config(gp, jp);
    /* against Tokenizers.js (which, like tokenizer.json alone, adds no BOS) */
    check_ref(tg, name, rp, c->add_bos > 0 ? bos_id : -1, 64);
    /* against tok_load on a longer text, both ways of adding special tokens */
    size_t len;
    char *readme = read_file("README.md", 1u << 20, &len, &e);
    CHECK(readme, "%s", e.msg);
    for (int sp = 0; readme && sp < 2; sp++) {
        int *a, *b, na, nb;
        int ra = tok_encode(tg, readme, len, sp, &a, &na, &e), rb = tok_encode(tj, readme, len, sp, &b, &nb, &e);
        CHECK(!ra && !rb, "README.md: %s", e.msg);
        if (ra || rb) break;
        int off = sp && c->add_bos > 0, same = na == nb + off && (!off || a[0] == bos_id), k = 0;
        while (same && k < nb && a[k + off] == b[k]) k++;
        CHECK(same && k == nb, "%s README.md%s: %d ids against tok_load's %d, first difference at %d", name, sp ? " (special)" : "", na, nb, k);
        free(a); free(b);
    }
    free(readme);
    CHECK(tok_vocab_size(tg) == tok_vocab_size(tj), "%s: %d ids, tokenizer.json %d", name, tok_vocab_size(tg), tok_vocab_size(tj));
    int d = first_decode_diff(tg, tj);
    CHECK(d < 0, "%s: id %d decodes differently", name, d);
    CHECK(tok_is_eos(tg, eos_id) && !tok_is_eos(tg, bos_id), "%s: eos %d", name, eos_id);
    CHECK(tok_is_special(tg, bos_id) && tok_is_special(tg, eos_id) && !tok_is_special(tg, 100), "%s: special flags", name);
    tok_free(tg); tok_free(tj);
}

/* DeepSeek-V3: tokenizer_config.json says add_bos_token true, add_eos_token false */
static void t_ggtok_deepseek_v3(void) {
    Conv c = { "deepseek-v3", "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
               "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", 1, 0, 0 };
    real_case("deepseek_v3", &c, 0, 1);
}
/* Qwen3: bos from config.json (151643), eos <|im_end|> from tokenizer_config.json, add_bos_token false */
static void t_ggtok_qwen3(void) {
    Conv c = { "qwen2", "<|endoftext|>", "<|im_end|>", 0, -1, 0 };
    real_case("qwen3", &c, 151643, 151645);
}

/* ---- the small tokenizers of tests/data/tokenizers as GGUF -------------------------- */
static Tokenizer *small_gguf(const char *style, const Conv *c, const char *file) {
    char jp[256], gp[1200];
    snprintf(jp, sizeof jp, "tests/data/tokenizers/%s/tokenizer.json", style);
    snprintf(gp, sizeof gp, "%s/%s", g_tmp, file);
    if (write_converted(jp, c, gp)) return NULL;
    Err e = { "" };
    Tokenizer *t = open_gguf_tok(gp, &e);
    CHECK(t, "%s", e.msg);
    return t;
}

static void t_ggtok_gpt2(void) {
    Conv c = { "gpt-2", NULL, NULL, -1, -1, 0 };
    Tokenizer *t = small_gguf("gpt2-style", &c, "gpt2.gguf");
    if (t) check_ref(t, "gpt-2", "tests/data/tokenizers/gpt2-style/ref.jsonl", -1, 14);
    tok_free(t);
}

/* llama-bpe without add_bos_token: Llama-3's BOS by default (llama.cpp's and HF's) */
static void t_ggtok_llama_bpe(void) {
    Conv c = { "llama-bpe", "<|begin_of_text|>", NULL, -1, -1, 0 };
    Tokenizer *t = small_gguf("llama3-style", &c, "llama3.gguf");
    if (t) check_ref(t, "llama-bpe", "tests/data/tokenizers/llama3-style/ref.jsonl", -1, 14);
    tok_free(t);
    c.add_bos = 0;                     /* written false: no BOS */
    t = small_gguf("llama3-style", &c, "llama3-nobos.gguf");
    int *a = NULL, *b = NULL, na = -1, nb = -2;
    Err e = { "" };
    if (t) { tok_encode(t, "hi there", 8, 1, &a, &na, &e); tok_encode(t, "hi there", 8, 0, &b, &nb, &e); }
    CHECK(t && na == nb && !memcmp(a, b, sizeof(int) * (size_t)na), "add_bos_token false: %d ids with special, %d without", na, nb);
    free(a); free(b);
    tok_free(t);
}

/* SmolLM2's configuration on the gpt2-style vocabulary (tests/gen_gguf_tok_refs.py) */
static void t_ggtok_smollm_small(void) {
    Conv c = { "smollm", NULL, NULL, 0, -1, 0 };
    Tokenizer *t = small_gguf("gpt2-style", &c, "smollm-small.gguf");
    if (t) check_ref(t, "smollm (small vocabulary)", "tests/data/tokenizers/smollm2/small-ref.jsonl", -1, 92);
    tok_free(t);
}

/* ---- the real SmolLM2 GGUF ---------------------------------------------------------- */
static const char *smollm2_path(void) {
    const char *p = getenv("EFFBENCH_SMOLLM2");
    if (p && *p) return p;
    return "models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

/* the tokenizer keys of g copied to out, the first merge moved to the end */
static int write_moved(const Gguf *g, const char *out) {
    Err e = { "" };
    const GgufKV *tk, *ty, *mg;
    if (gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &tk, &e) != 1 || gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_I32, &ty, &e) != 1 ||
        gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING, &mg, &e) != 1 || mg->arr_n < 2)
        return -1;
    int64_t n = (int64_t)tk->arr_n, nm = (int64_t)mg->arr_n;
    char **toks = xmalloc(sizeof *toks * (size_t)n), **ms = xmalloc(sizeof *ms * (size_t)nm);
    int32_t *types = xmalloc(sizeof *types * (size_t)n);
    for (int64_t i = 0; i < n; i++) { toks[i] = xasprintf("%.*s", (int)tk->strs[i].n, tk->strs[i].s); types[i] = (int32_t)gguf_arr_int(ty, (uint64_t)i); }
    for (int64_t i = 0; i < nm; i++) ms[i] = xasprintf("%.*s", (int)mg->strs[(i + 1) % nm].n, mg->strs[(i + 1) % nm].s);
    GgufW *w = gw_new();
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_str(w, "tokenizer.ggml.pre", "smollm");
    gw_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, n);
    gw_arr_i32(w, "tokenizer.ggml.token_type", types, n);
    gw_arr_str(w, "tokenizer.ggml.merges", (const char *const *)ms, nm);
    int rc = gw_write(w, out, 3, 0);
    gw_free(w);
    for (int64_t i = 0; i < n; i++) free(toks[i]);
    for (int64_t i = 0; i < nm; i++) free(ms[i]);
    free(toks); free(ms); free(types);
    return rc;
}

static void t_ggtok_smollm2(void) {
    const char *mp = smollm2_path();
    if (access(mp, R_OK) != 0) { t_skip("%s not found (sh scripts/fetch-model.sh, or set EFFBENCH_SMOLLM2)", mp); return; }
    Err e = { "" };
    Gguf g;
    if (gguf_open(mp, &g, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    Tokenizer *t = tok_from_gguf(&g, &e);
    CHECK(t, "%s", e.msg);
    if (t) {
        check_ref(t, "smollm2", "tests/data/tokenizers/smollm2/ref.jsonl", -1, 92);
        CHECK(tok_vocab_size(t) == 49152, "%d tokens", tok_vocab_size(t));
        CHECK(tok_is_eos(t, 2) && !tok_is_eos(t, 1) && tok_is_special(t, 1) && !tok_is_special(t, 17), "eos and special flags");
    }
    tok_free(t);
    /* the tester tested: one merge moved breaks some lines of the corpus */
    char gp[1200];
    snprintf(gp, sizeof gp, "%s/smollm2-moved.gguf", g_tmp);
    Tokenizer *bad = write_moved(&g, gp) == 0 ? open_gguf_tok(gp, &e) : NULL;
    CHECK(bad, "moved-merge copy: %s", e.msg);
    if (bad) {
        int lines, good = against_ref(bad, "moved", "tests/data/tokenizers/smollm2/ref.jsonl", -1, 0, &lines);
        CHECK(good < lines, "with its first merge moved, SmolLM2's tokenizer still matched all %d lines", lines);
    }
    tok_free(bad);
    gguf_close(&g);
}

/* the tester tested without the model: the gpt2-style GGUF with one merge moved */
static void t_ggtok_wrong_caught(void) {
    Conv c = { "gpt-2", NULL, NULL, -1, -1, 1 };
    Tokenizer *t = small_gguf("gpt2-style", &c, "gpt2-moved.gguf");
    if (!t) return;
    int lines, good = against_ref(t, "moved", "tests/data/tokenizers/gpt2-style/ref.jsonl", -1, 0, &lines);
    CHECK(lines == 14 && good < lines, "with its first merge moved, the tokenizer still matched %d of %d lines", good, lines);
    tok_free(t);
}

/* ---- hostile metadata: one clear error naming the file ------------------------------ */
typedef struct {
    const char *model, *pre;
    int n_tok; const char *const *toks;
    int n_types; const int32_t *types;
    int n_merges; const char *const *merges;
    int bos;                     /* -1: none */
    int add_bos;                 /* -1: not written */
    int toks_as_i32;             /* tokens written as an i32 array */
} Meta;

static void t_ggtok_refused(void) {
    static const char *const T3[] = { "a", "b", "ab" }, *const TD[] = { "a", "b", "a" };
    static const char *const M1[] = { "a b" }, *const MX[] = { "a c" }, *const MB[] = { "ab" };
    static const int32_t Y3[] = { 1, 1, 1 }, Y9[] = { 1, 9, 1 };
    struct { Meta m; const char *want; } cases[] = {
        { { "llama", "default", 3, T3, 3, Y3, 1, M1, -1, -1, 0 }, "\"llama\" (SentencePiece) is not supported" },
        { { "bert", "default", 3, T3, 3, Y3, 1, M1, -1, -1, 0 }, "\"bert\" (WordPiece) is not supported" },
        { { "gpt2", "frobnicate", 3, T3, 3, Y3, 1, M1, -1, -1, 0 }, "tokenizer.ggml.pre \"frobnicate\" is not supported" },
        { { "gpt2", NULL, 3, T3, 3, Y3, 1, M1, -1, -1, 0 }, "no tokenizer.ggml.pre" },
        { { NULL, NULL, 3, T3, 3, Y3, 1, M1, -1, -1, 0 }, "no tokenizer in the file" },
        { { "gpt2", "gpt-2", 0, NULL, 0, NULL, 0, NULL, -1, -1, 0 }, "no tokenizer.ggml.tokens" },
        { { "gpt2", "gpt-2", 3, T3, 3, Y3, 1, M1, -1, -1, 1 }, "expected an array of string" },
        { { "gpt2", "gpt-2", 3, T3, 2, Y3, 1, M1, -1, -1, 0 }, "2 token types for 3 tokens" },
        { { "gpt2", "gpt-2", 3, T3, 3, Y9, 1, M1, -1, -1, 0 }, "token 1 has type 9" },
        { { "gpt2", "gpt-2", 3, T3, 3, Y3, 1, MX, -1, -1, 0 }, "names a token missing from the vocab" },
        { { "gpt2", "gpt-2", 3, T3, 3, Y3, 1, MB, -1, -1, 0 }, "merge 0 is not" },
        { { "gpt2", "gpt-2", 3, TD, 3, Y3, 1, M1, -1, -1, 0 }, "\"a\" appears twice (ids 0 and 2)" },
        { { "gpt2", "gpt-2", 3, T3, 3, Y3, 1, M1, 7, 1, 0 }, "bos_token_id 7 is outside the 3 tokens" },
        { { "gpt2", "gpt-2", 3, T3, 3, Y3, 1, M1, -1, 1, 0 }, "no bos_token_id" },
        { { "gpt2", "llama-bpe", 3, T3, 3, Y3, 1, M1, -1, -1, 0 }, "no bos_token_id" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const Meta *m = &cases[i].m;
        char gp[1200];
        snprintf(gp, sizeof gp, "%s/bad-tok-%zu.gguf", g_tmp, i);
        GgufW *w = gw_new();
        gw_str(w, "general.architecture", "llama");
        if (m->model) gw_str(w, "tokenizer.ggml.model", m->model);
        if (m->pre) gw_str(w, "tokenizer.ggml.pre", m->pre);
        if (m->toks_as_i32) gw_arr_i32(w, "tokenizer.ggml.tokens", m->types, m->n_types);
        else if (m->n_tok) gw_arr_str(w, "tokenizer.ggml.tokens", m->toks, m->n_tok);
        if (m->n_types) gw_arr_i32(w, "tokenizer.ggml.token_type", m->types, m->n_types);
        if (m->n_merges) gw_arr_str(w, "tokenizer.ggml.merges", m->merges, m->n_merges);
        if (m->bos >= 0) gw_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)m->bos);
        if (m->add_bos >= 0) gw_bool(w, "tokenizer.ggml.add_bos_token", m->add_bos);
        CHECK(gw_write(w, gp, 3, 0) == 0, "cannot write %s", gp);
        gw_free(w);
        Err e = { "" };
        Tokenizer *t = open_gguf_tok(gp, &e);
        CHECK(!t && strstr(e.msg, gp) && strstr(e.msg, cases[i].want), "case %zu: %s (want \"%s\")", i, t ? "accepted" : e.msg, cases[i].want);
        tok_free(t);
        Tokenizer *t2 = tok_for_model(gp, &e);      /* the same through the model lookup */
        CHECK(!t2 && strstr(e.msg, cases[i].want), "case %zu through tok_for_model: %s", i, t2 ? "accepted" : e.msg);
        tok_free(t2);
    }
    /* a NUL byte inside a token (written as 0x7f, then patched) */
    {
        char gp[1200];
        snprintf(gp, sizeof gp, "%s/nul-tok.gguf", g_tmp);
        static const char *const TN[] = { "a", "b", "q\x7fq" };
        GgufW *w = gw_new();
        gw_str(w, "tokenizer.ggml.model", "gpt2");
        gw_str(w, "tokenizer.ggml.pre", "gpt-2");
        gw_arr_str(w, "tokenizer.ggml.tokens", TN, 3);
        gw_write(w, gp, 3, 0);
        gw_free(w);
        Err e = { "" };
        size_t len;
        char *buf = read_file(gp, 1u << 20, &len, &e), *x = buf ? memmem(buf, len, "q\x7fq", 3) : NULL;
        if (x) { x[1] = 0; write_file_atomic(gp, buf, len, &e); }
        free(buf);
        Tokenizer *t = x ? open_gguf_tok(gp, &e) : NULL;
        CHECK(x && !t && strstr(e.msg, "token 2 holds a NUL byte"), "NUL in a token: %s", t ? "accepted" : e.msg);
        tok_free(t);
    }
    /* the smallest good one loads, and a merge applies */
    char gp[1200];
    snprintf(gp, sizeof gp, "%s/good-tok.gguf", g_tmp);
    static const char *const T[] = { "a", "b", "ab", "<|x|>" };
    static const int32_t Y[] = { 1, 1, 1, 3 };
    GgufW *w = gw_new();
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_str(w, "tokenizer.ggml.pre", "gpt-2");
    gw_arr_str(w, "tokenizer.ggml.tokens", T, 4);
    gw_arr_i32(w, "tokenizer.ggml.token_type", Y, 4);
    gw_arr_str(w, "tokenizer.ggml.merges", M1, 1);
    gw_u32(w, "tokenizer.ggml.eos_token_id", 3);
    gw_write(w, gp, 2, 64);
    gw_free(w);
    Err e = { "" };
    Tokenizer *t = open_gguf_tok(gp, &e);
    int *ids = NULL, n = 0;
    CHECK(t && tok_encode(t, "ab<|x|>ba", 9, 1, &ids, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 4 && ids[0] == 2 && ids[1] == 3 && ids[2] == 1 && ids[3] == 0, "\"ab<|x|>ba\": %d ids", n);
    CHECK(t && tok_is_eos(t, 3) && tok_is_special(t, 3) && !tok_is_special(t, 2), "eos and special");
    free(ids);
    tok_free(t);
}

/* ---- the tokenizer of a model path -------------------------------------------------- */
static void t_ggtok_for_model(void) {
    Err e = { "" };
    const char *dir = "tests/data/eval-model";
    Tokenizer *a = tok_for_model(dir, &e), *b = tok_for_model("tests/data/eval-model/config.json", &e);
    CHECK(a && b, "%s", e.msg);
    CHECK(a && tok_is_eos(a, 1) && !tok_is_eos(a, 0), "eos from config.json's eos_token_id");
    CHECK(tok_model_has_tokenizer(dir) && tok_model_has_tokenizer("tests/data/eval-model/config.json"), "has a tokenizer");
    tok_free(a); tok_free(b);
    Tokenizer *c = tok_for_model("suites/configs/llama-3.1-8b.json", &e);
    CHECK(!c && strstr(e.msg, "suites/configs/tokenizer.json") && strstr(e.msg, "llama-3.1-8b.json"), "a config without a tokenizer: %s", e.msg);
    CHECK(!tok_model_has_tokenizer("suites/configs/llama-3.1-8b.json"), "no tokenizer there");
    tok_free(c);
    char p[1200];
    snprintf(p, sizeof p, "%s/nonexistent-model", g_tmp);
    c = tok_for_model(p, &e);
    CHECK(!c && strstr(e.msg, "nonexistent-model"), "a missing path: %s", e.msg);
    tok_free(c);
    /* a .gguf: its own tokenizer, also without the .gguf suffix */
    Conv cv = { "gpt-2", NULL, NULL, -1, -1, 0 };
    snprintf(p, sizeof p, "%s/model-file", g_tmp);
    if (write_converted("tests/data/tokenizers/gpt2-style/tokenizer.json", &cv, p)) return;
    c = tok_for_model(p, &e);
    CHECK(c && tok_model_has_tokenizer(p), "%s", e.msg);
    if (c) check_ref(c, "gpt-2 via tok_for_model", "tests/data/tokenizers/gpt2-style/ref.jsonl", -1, 14);
    tok_free(c);
}

const TestDef ggtok_tests[] = {
    { "ggtok: deepseek-v3 GGUF = tokenizer.json", t_ggtok_deepseek_v3 },
    { "ggtok: qwen2 GGUF (Qwen3) = tokenizer.json", t_ggtok_qwen3 },
    { "ggtok: gpt-2 GGUF = tokenizers library", t_ggtok_gpt2 },
    { "ggtok: llama-bpe GGUF = tokenizers, BOS", t_ggtok_llama_bpe },
    { "ggtok: smollm pre on a small vocabulary", t_ggtok_smollm_small },
    { "ggtok: SmolLM2 GGUF = tokenizers library", t_ggtok_smollm2 },
    { "ggtok: a moved merge is caught", t_ggtok_wrong_caught },
    { "ggtok: hostile metadata refused", t_ggtok_refused },
    { "ggtok: tokenizer of a model path", t_ggtok_for_model },
};
const int n_ggtok_tests = sizeof ggtok_tests / sizeof ggtok_tests[0];
