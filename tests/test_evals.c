/*
 * test_evals.c - the tokenizer against reference encodings, and the eval arithmetic.
 *
 * Tokenizer reference: ../shared/reference/tokenizers/{deepseek_v3,qwen3}: the real
 * DeepSeek-V3 and Qwen3 tokenizer.json files and, for a 64-line varied corpus
 * (Unicode, numbers, whitespace runs, emoji, contractions, literal special tokens),
 * the ids and decoded text of Hugging Face's Tokenizers.js, cross-checked by two other
 * implementations. Every id and every decoded string must match exactly.
 */
#include "test.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

static void tokenizer_case(const char *name, const char *tp, const char *jp, int lines_want) {
    Err e = { "" };
    size_t len;
    char *lines = read_file(jp, 64u << 20, &len, &e);
    if (!lines) { t_skip("no reference encodings: %s", e.msg); return; }
    Tokenizer *t = tok_load(tp, &e);
    if (!t) { t_fail(__FILE__, __LINE__, "%s", e.msg); free(lines); return; }
    int line = 0, ids_ok = 0, dec_ok = 0;
    char *end = lines + len;
    for (char *p = lines, *nl; p < end && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = end;
        *nl = 0;
        line++;
        cJSON *j = cJSON_Parse(p);
        const cJSON *text = cJSON_GetObjectItem(j, "text"), *ids = cJSON_GetObjectItem(j, "ids");
        const cJSON *idss = cJSON_GetObjectItem(j, "ids_with_special"), *dec = cJSON_GetObjectItem(j, "decoded");
        for (int sp = 0; sp < 2; sp++) {
            const cJSON *want = sp ? idss : ids;
            int *got, n;
            if (tok_encode(t, text->valuestring, strlen(text->valuestring), sp, &got, &n, &e)) {
                t_fail(__FILE__, __LINE__, "%s line %d: %s", name, line, e.msg);
                continue;
            }
            int k = 0, same = n == cJSON_GetArraySize(want);
            for (const cJSON *x = want->child; x && same; x = x->next, k++) same = got[k] == x->valueint;
            CHECK(same, "%s line %d%s: %d ids, want %d; first difference at %d", name, line, sp ? " (special)" : "", n,
                  cJSON_GetArraySize(want), k);
            if (same && !sp) ids_ok++;
            free(got);
        }
        int wn = cJSON_GetArraySize(ids), *w = xmalloc(sizeof(int) * (size_t)(wn + 1)), k = 0;
        for (const cJSON *x = ids->child; x; x = x->next) w[k++] = x->valueint;
        size_t dl;
        char *d = tok_decode(t, w, wn, &dl, &e);
        CHECK(d && !strcmp(d, dec->valuestring), "%s line %d: decoded \"%.60s\", want \"%.60s\"", name, line, d ? d : e.msg, dec->valuestring);
        dec_ok += d && !strcmp(d, dec->valuestring);
        free(d); free(w);
        cJSON_Delete(j);
    }
    CHECK(line == lines_want && ids_ok == lines_want && dec_ok == lines_want, "%s: %d lines, %d encodings and %d decodings exact",
          name, line, ids_ok, dec_ok);
    tok_free(t);
    free(lines);
}

static void shared_case(const char *name) {
    char tp[1200], jp[1200];
    snprintf(tp, sizeof tp, "%s/../reference/tokenizers/%s/tokenizer.json", g_golden, name);
    snprintf(jp, sizeof jp, "%s/../reference/tokenizers/%s/public.jsonl", g_golden, name);
    tokenizer_case(name, tp, jp, 64);
}
static void t_tok_deepseek(void) { shared_case("deepseek_v3"); }
static void t_tok_qwen3(void) { shared_case("qwen3"); }
/* tests/gen_tokenizer_refs.py: the tokenizers library (0.23.3) on two small trained
 * tokenizers with the GPT-2 ByteLevel regex, and the Llama-3 Split pattern + BOS template */
static void t_tok_gpt2(void) {
    tokenizer_case("gpt2-style", "tests/data/tokenizers/gpt2-style/tokenizer.json", "tests/data/tokenizers/gpt2-style/ref.jsonl", 14);
}
static void t_tok_llama3(void) {
    tokenizer_case("llama3-style", "tests/data/tokenizers/llama3-style/tokenizer.json", "tests/data/tokenizers/llama3-style/ref.jsonl", 14);
}

/* the tester tested: a tokenizer with one merge moved must disagree with the reference */
static void t_tok_wrong_caught(void) {
    Err e = { "" };
    size_t len;
    char *json = read_file("tests/data/tokenizers/gpt2-style/tokenizer.json", 16u << 20, &len, &e);
    if (!json) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    cJSON *root = cJSON_Parse(json);
    free(json);
    cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "merges");
    cJSON *first = cJSON_DetachItemFromArray(merges, 0);   /* the most frequent merge, made last */
    cJSON_AddItemToArray(merges, first);
    char *txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    Tokenizer *good = tok_load("tests/data/tokenizers/gpt2-style/tokenizer.json", &e), *bad = tok_parse(txt, strlen(txt), "moved", &e);
    free(txt);
    CHECK(good && bad, "%s", e.msg);
    if (good && bad) {
        const char *s = "The quick brown fox jumps over the lazy dog. effbench measures quality per FLOP.";
        int *a, *b, na, nb;
        tok_encode(good, s, strlen(s), 0, &a, &na, &e);
        tok_encode(bad, s, strlen(s), 0, &b, &nb, &e);
        int same = na == nb;
        for (int i = 0; same && i < na; i++) same = a[i] == b[i];
        CHECK(!same, "moving the first merge to the end changed nothing");
        free(a); free(b);
    }
    tok_free(good); tok_free(bad);
}

/* hostile tokenizer files: one clear error each */
static void t_tok_bad(void) {
    struct { const char *json, *want; } cases[] = {
        { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}", "merge 0" },
        { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Split\", "
          "\"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\", \"invert\": false}}", "invalid pre-tokenizer regex" },
        { "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "unsupported model type \"WordPiece\"" },
        { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"Lowercase\"}}", "normalizer \"Lowercase\"" },
        { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}}", "bad id" },
        { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"WordPiece\"}}", "decoder \"WordPiece\"" },
        { "{\"model\": ", "malformed JSON" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Err e = { "" };
        Tokenizer *t = tok_parse(cases[i].json, strlen(cases[i].json), "tok.json", &e);
        CHECK(!t && strstr(e.msg, "tok.json") && strstr(e.msg, cases[i].want), "case %zu: %s", i, t ? "accepted" : e.msg);
        tok_free(t);
    }
    /* a pathological regex fails the encode with an error instead of hanging */
    const char *slow = "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Split\", "
                       "\"pattern\": {\"Regex\": \"(a+)+$\"}, \"behavior\": \"Isolated\", \"invert\": false}}";
    Err e = { "" };
    Tokenizer *t = tok_parse(slow, strlen(slow), "slow.json", &e);
    CHECK(t != NULL, "%s", e.msg);
    if (t) {
        char text[64];
        memset(text, 'a', 40);
        text[40] = 'b';
        int *ids, n;
        double t0 = now_sec();
        int rc = tok_encode(t, text, 41, 0, &ids, &n, &e);
        CHECK(rc != 0 && strstr(e.msg, "regex"), "pathological regex: rc %d, %s", rc, e.msg);
        CHECK(now_sec() - t0 < 5, "pathological regex took %.1f s", now_sec() - t0);
        if (!rc) free(ids);
        tok_free(t);
    }
    t = tok_load("tests/data/tokenizers/gpt2-style/tokenizer.json", &e);
    int *ids, n;
    CHECK(t && tok_encode(t, "bad \xff utf8", 12, 0, &ids, &n, &e) != 0 && strstr(e.msg, "UTF-8"), "invalid UTF-8: %s", e.msg);
    int bogus = 999999;
    char *d = t ? tok_decode(t, &bogus, 1, NULL, &e) : NULL;
    CHECK(!d && strstr(e.msg, "999999"), "decoding an unknown id");
    tok_free(t);
}

const TestDef eval_tests[] = {
    { "tokenizer DeepSeek-V3: 64 lines exact", t_tok_deepseek },
    { "tokenizer Qwen3: 64 lines exact", t_tok_qwen3 },
    { "tokenizer GPT-2 ByteLevel regex vs tokenizers", t_tok_gpt2 },
    { "tokenizer Llama-3 pattern + BOS vs tokenizers", t_tok_llama3 },
    { "tokenizer with a moved merge is caught", t_tok_wrong_caught },
    { "tokenizer hostile files and inputs", t_tok_bad },
};
const int n_eval_tests = sizeof eval_tests / sizeof eval_tests[0];
