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
#include "eval.h"
#include "pyrandom.h"
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
    /* a 2 MB word: BPE must stay O(n log n) (the quadratic loop took hours on this) */
    size_t big = 2u << 20;
    char *word = xmalloc(big);
    for (size_t i = 0; i < big; i++) word[i] = "effbench"[i % 8];
    double t1 = now_sec();
    int rcw = t ? tok_encode(t, word, big, 0, &ids, &n, &e) : -1;
    CHECK(rcw == 0 && n > 0, "2 MB word: %s", e.msg);
    CHECK(now_sec() - t1 < 20, "a 2 MB word took %.1f s to encode", now_sec() - t1);
    if (rcw == 0) free(ids);
    free(word);
    CHECK(t && tok_encode(t, "bad \xff utf8", 12, 0, &ids, &n, &e) != 0 && strstr(e.msg, "UTF-8"), "invalid UTF-8: %s", e.msg);
    int bogus = 999999;
    char *d = t ? tok_decode(t, &bogus, 1, NULL, &e) : NULL;
    CHECK(!d && strstr(e.msg, "999999"), "decoding an unknown id");
    tok_free(t);
}

/* ---- log-likelihoods against the goldens' own logits ------------------------------- */
/* Reference: log_softmax of ../shared/golden/deepseek/v3-tiny/logits.f32 (DeepSeek's
 * model.py) at the right positions. Tolerance 5e-4 per scored token: the logits agree
 * within 1e-4, and a log-softmax moves by at most twice a uniform logit error. */
static double ref_logprob(const float *lg, int V, int row, int tok) {
    const float *r = lg + (size_t)row * V;
    double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) if (r[v] > mx) mx = r[v];
    for (int v = 0; v < V; v++) s += exp(r[v] - mx);
    return r[tok] - mx - log(s);
}

static void t_eval_golden_ll(void) {
    Case c;
    if (case_load("deepseek/v3-tiny", &c)) return;
    char p[1200], tp[800];
    size_t nl;
    snprintf(p, sizeof p, "%s/logits.f32", c.dir);
    float *lg = read_f32(p, &nl);
    const int V = 512, *P = c.prompt;
    /* three items: continuation of 3 prompt tokens vs 2 distractors; 1-token choices;
     * the answer is index 2 in the last */
    snprintf(tp, sizeof tp, "%s/mc.jsonl", g_tmp);
    FILE *f = fopen(tp, "w");
    fprintf(f, "{\"context_ids\": [%d, %d, %d, %d, %d], \"choices_ids\": [[%d, %d, %d], [7, 8, 9], [%d]], \"answer\": 0}\n",
            P[0], P[1], P[2], P[3], P[4], P[5], P[6], P[7], P[5]);
    fprintf(f, "{\"context_ids\": [%d, %d, %d, %d, %d, %d, %d, %d, %d, %d], \"choices_ids\": [[%d], [%d], [11]], \"answer\": 1}\n",
            P[0], P[1], P[2], P[3], P[4], P[5], P[6], P[7], P[8], P[9], (P[10] + 1) % 512, P[10]);
    fprintf(f, "\n{\"context_ids\": [%d], \"choices_ids\": [[1], [2], [%d, %d]], \"answer\": 2}\n", P[0], P[1], P[2]);
    fclose(f);
    Task t;
    Err e = { "" };
    Model m;
    LoadOpts lo = { .dtype = DT_F32 };
    if (!lg || task_load(tp, &t, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); free(lg); case_free(&c); return; }
    CHECK(t.type == TASK_MC && t.n_items == 3, "task type and items (blank lines skipped)");
    if (model_load(&m, c.dir, &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); task_free(&t); free(lg); case_free(&c); return; }
    snprintf(p, sizeof p, "%s/mc.samples.jsonl", g_tmp);
    FILE *s = fopen(p, "w");
    EvalResult r;
    CHECK(eval_run(&m, NULL, &t, s, &r, &e) == 0, "%s", e.msg);
    fclose(s);
    /* the log-likelihoods the engine wrote against the reference */
    char *txt = read_file(p, 1u << 20, NULL, &e);
    double want[3][3] = {
        { ref_logprob(lg, V, 4, P[5]) + ref_logprob(lg, V, 5, P[6]) + ref_logprob(lg, V, 6, P[7]), NAN, ref_logprob(lg, V, 4, P[5]) },
        { ref_logprob(lg, V, 9, (P[10] + 1) % 512), ref_logprob(lg, V, 9, P[10]), ref_logprob(lg, V, 9, 11) },
        { ref_logprob(lg, V, 0, 1), ref_logprob(lg, V, 0, 2), ref_logprob(lg, V, 0, P[1]) + ref_logprob(lg, V, 1, P[2]) },
    };
    int line = 0, checked = 0;
    for (char *q = txt; q && *q; line++) {
        char *nlp = strchr(q, '\n');
        if (nlp) *nlp = 0;
        cJSON *j = cJSON_Parse(q);
        const cJSON *ll = cJSON_GetObjectItem(j, "loglikelihoods");
        int k = 0;
        for (const cJSON *x = ll ? ll->child : NULL; x; x = x->next, k++) {
            if (isnan(want[line][k])) continue;
            int ntok = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tokens"), k)->valueint;
            CHECK(fabs(x->valuedouble - want[line][k]) <= 5e-4 * ntok, "item %d choice %d: ll %.7f, reference %.7f", line, k,
                  x->valuedouble, want[line][k]);
            checked++;
        }
        cJSON_Delete(j);
        q = nlp ? nlp + 1 : NULL;
    }
    CHECK(checked == 8 && line == 3, "%d log-likelihoods on %d lines compared", checked, line);
    /* item 2's right choice is the greedy token: acc there must be 1 when its ll is highest */
    CHECK(r.n_metrics == 3 && !strcmp(r.m[0].name, "acc") && r.m[0].n == 3, "metrics");
    free(txt);
    eval_result_free(&r);
    /* perplexity of the prompt (no BOS: token 0 is context), one window */
    snprintf(tp, sizeof tp, "%s/ppl.jsonl", g_tmp);
    f = fopen(tp, "w");
    fprintf(f, "{\"text_ids\": [");
    for (int i = 0; i < 16; i++) fprintf(f, "%s%d", i ? ", " : "", P[i]);
    fprintf(f, "]}\n");
    fclose(f);
    Task tp2;
    if (task_load(tp, &tp2, &e) == 0) {
        CHECK(tp2.type == TASK_PPL, "perplexity type inferred");
        CHECK(eval_run(&m, NULL, &tp2, NULL, &r, &e) == 0, "%s", e.msg);
        double sum = 0;
        for (int i = 1; i < 16; i++) sum += ref_logprob(lg, V, i - 1, P[i]);
        CHECK(r.n_metrics >= 1 && fabs(r.m[0].value - exp(-sum / 15)) <= 5e-4 * r.m[0].value * 15,
              "token perplexity %.6f, reference %.6f", r.m[0].value, exp(-sum / 15));
        CHECK(r.tokens_scored == 15, "tokens scored %.0f", r.tokens_scored);
        eval_result_free(&r);
        task_free(&tp2);
    }
    model_free(&m);
    task_free(&t);
    free(lg);
    case_free(&c);
}

/* ---- metric arithmetic -------------------------------------------------------------- */
static void t_eval_stats(void) {
    /* bootstrap SE of a Bernoulli mean against the closed form sqrt(p(1-p)/n) */
    double x[200];
    for (int i = 0; i < 200; i++) x[i] = i % 10 < 3;        /* p = 0.3 */
    double se = bootstrap_se(x, 200, 4000, 7), want = sqrt(0.3 * 0.7 / 200);
    CHECK(fabs(se / want - 1) < 0.05, "bootstrap SE %.5f, closed form %.5f", se, want);
    CHECK(bootstrap_se(x, 200, 4000, 7) == se, "the bootstrap is seeded");
    /* McNemar exact: b=0, c=5 -> 2 * 0.5^5; b=1, c=4 -> 2 * 6/32; b=c -> 1 */
    CHECK(fabs(mcnemar_p(0, 5) - 0.0625) < 1e-12 && fabs(mcnemar_p(1, 4) - 0.375) < 1e-12 && mcnemar_p(3, 3) == 1.0,
          "McNemar %.6f %.6f %.6f", mcnemar_p(0, 5), mcnemar_p(1, 4), mcnemar_p(3, 3));
    /* paired bootstrap: B better on 40 of 100 items, never worse -> CI above 0, p ~ 0 */
    double a[100], b[100], lo, hi;
    for (int i = 0; i < 100; i++) { a[i] = i % 2; b[i] = a[i] || i % 5 < 4; }
    double p = paired_bootstrap(a, b, 100, 2000, 3, &lo, &hi);
    CHECK(lo > 0 && hi < 1 && p < 0.01, "paired bootstrap CI [%.3f, %.3f], p %.4f", lo, hi, p);
    p = paired_bootstrap(a, a, 100, 2000, 3, &lo, &hi);
    CHECK(lo == 0 && hi == 0 && p == 1, "identical samples: CI [%.3f, %.3f] p %.3f", lo, hi, p);
    /* KL closed form: p = (1/2, 1/2), q = (1/4, 3/4): KL(p||q) = ln 2 / 2 + ln(2/3) / 2 */
    float ref[4] = { logf(0.5f), logf(0.5f), 0, 0 }, got[4] = { logf(0.25f), logf(0.75f), 0, 0 };
    KlStats k;
    kl_stats(ref, got, 1, 2, &k);
    double kl = 0.5 * log(2.0) + 0.5 * log(2.0 / 3.0);
    CHECK(fabs(k.mean - kl) < 1e-6 && k.same_top == 0.0, "KL %.7f, closed form %.7f (tied p picks index 0, q index 1)", k.mean, kl);
    float ref2[4] = { 1, 2, 5, 1 }, got2[4] = { 1, 2, 1, 5 };           /* two rows, the second disagrees */
    kl_stats(ref2, got2, 2, 2, &k);
    CHECK(k.mean == 0.5 * k.max && k.same_top == 0.5 && k.p99 == k.max, "KL stats over rows: mean %.4f max %.4f p99 %.4f top %.2f",
          k.mean, k.max, k.p99, k.same_top);
}

/* ---- Python's random, as lm-eval's few-shot sampler uses it ------------------------- */
/* Values from CPython 3.11.7: random.Random(seed).getrandbits(32) and .sample(range(n), k)
 * (the pool algorithm for small n, the set algorithm for n = 5000 and n = 100, k = 7). */
static void t_eval_pyrandom(void) {
    PyRandom r;
    pyrandom_seed(&r, 1234);
    uint32_t w[3];
    for (int i = 0; i < 3; i++) w[i] = pyrandom_getrandbits(&r, 32);
    CHECK(w[0] == 4150886329u && w[1] == 3342196574u && w[2] == 1892932127u, "Random(1234) words %u %u %u", w[0], w[1], w[2]);
    pyrandom_seed(&r, 1234);
    int o[30];
    static const int want3[3] = { 7, 1, 0 }, want7[7] = { 11, 74, 4, 85, 88, 10, 12 }, want30[8] = { 2905, 1939, 142, 252, 129, 2835, 3966, 3797 };
    static const int wantall[3] = { 1, 2, 0 }, want_big[6] = { 17, 42, 1, 33, 2, 10 };
    CHECK(pyrandom_sample(&r, 10, 3, o) == 0 && !memcmp(o, want3, sizeof want3), "sample(range(10), 3): %d %d %d", o[0], o[1], o[2]);
    CHECK(pyrandom_sample(&r, 100, 7, o) == 0 && !memcmp(o, want7, sizeof want7), "sample(range(100), 7): %d %d ...", o[0], o[1]);
    CHECK(pyrandom_sample(&r, 5000, 30, o) == 0 && !memcmp(o, want30, sizeof want30), "sample(range(5000), 30): %d %d ...", o[0], o[1]);
    CHECK(pyrandom_sample(&r, 3, 3, o) == 0 && !memcmp(o, wantall, sizeof wantall), "sample(range(3), 3): %d %d %d", o[0], o[1], o[2]);
    CHECK(pyrandom_sample(&r, 3, 4, o) == -1, "a sample larger than the population is refused");
    pyrandom_seed(&r, 0);
    w[0] = pyrandom_getrandbits(&r, 32); w[1] = pyrandom_getrandbits(&r, 32);
    CHECK(w[0] == 3626764237u && w[1] == 1654615998u, "Random(0) words %u %u", w[0], w[1]);
    pyrandom_seed(&r, (1ull << 40) + 5);                     /* two 32-bit key words */
    w[0] = pyrandom_getrandbits(&r, 32); w[1] = pyrandom_getrandbits(&r, 32);
    CHECK(w[0] == 2166296868u && w[1] == 2220160828u, "Random(2**40 + 5) words %u %u", w[0], w[1]);
    CHECK(pyrandom_sample(&r, 50, 6, o) == 0 && !memcmp(o, want_big, sizeof want_big), "sample(range(50), 6): %d %d ...", o[0], o[1]);
    /* one stream across calls, as the sampler draws for item after item */
    pyrandom_seed(&r, 1234);
    static const int seq[4][3] = { { 6, 3, 0 }, { 0, 6, 4 }, { 0, 5, 6 }, { 0, 2, 1 } };
    for (int k = 0; k < 4; k++) CHECK(pyrandom_sample(&r, 7, 3, o) == 0 && !memcmp(o, seq[k], sizeof seq[k]), "draw %d: %d %d %d", k, o[0], o[1], o[2]);
    /* mean_stderr: sample standard deviation (n - 1) over sqrt(n) */
    double x[4] = { 1, 0, 0, 1 };
    CHECK(fabs(mean_stderr(x, 4) - sqrt(1.0 / 3.0) / 2) < 1e-15 && mean_stderr(x, 1) < 0, "mean_stderr %.17g", mean_stderr(x, 4));
}

/* ---- bad task files ----------------------------------------------------------------- */
static void bad_task(const char *name, const char *content, const char *want) {
    char p[800];
    snprintf(p, sizeof p, "%s/%s", g_tmp, name);
    FILE *f = fopen(p, "w");
    fputs(content, f);
    fclose(f);
    Task t;
    Err e = { "" };
    if (task_load(p, &t, &e) == 0) { task_free(&t); t_fail(__FILE__, __LINE__, "%s accepted", name); return; }
    CHECK(strstr(e.msg, name) && strstr(e.msg, want) && !strchr(e.msg, '\n'), "%s: \"%s\" lacks \"%s\"", name, e.msg, want);
}

static void t_eval_bad_tasks(void) {
    bad_task("badjson.jsonl", "{\"context\": \"a\", \"choices\": [\"x\"], \"answer\": 0}\n{\"context\": \n", "line 2: invalid JSON");
    bad_task("range.jsonl", "{\"context\": \"a\", \"choices\": [\"x\", \"y\"], \"answer\": 0}\n\n{\"context\": \"b\", \"choices\": [\"x\", \"y\"], \"answer\": 2}\n",
             "line 3: answer 2 is out of range");
    /* found by fuzz_task: numbers far outside int range */
    bad_task("huge.jsonl", "{\"context\": \"a\", \"choices\": [\"x\"], \"answer\": 3.33333e+73}\n", "line 1: \"answer\" must be an integer");
    bad_task("hugedef.json", "{\"name\": \"x\", \"type\": \"perplexity\", \"file\": \"a.jsonl\", \"window\": -1e300}", "\"window\" must be an integer");
    bad_task("empty.jsonl", "{\"context\": \"a\", \"choices\": [], \"answer\": 0}\n", "line 1: \"choices\" must be a non-empty list");
    bad_task("emptychoice.jsonl", "{\"context\": \"a\", \"choices\": [\"x\", \"\"], \"answer\": 0}\n", "line 1: choice 1");
    bad_task("type.jsonl", "{\"question\": \"a\"}\n", "line 1: cannot tell the task type");
    bad_task("none.jsonl", "\n\n", "no items");
    bad_task("ids.jsonl", "{\"context_ids\": [1, -2], \"choices_ids\": [[1]], \"answer\": 0}\n", "line 1: context_ids");
    bad_task("def.json", "{\"name\": \"x\", \"type\": \"ranking\", \"file\": \"a.jsonl\"}", "type \"ranking\"");
    bad_task("metric.json", "{\"name\": \"x\", \"type\": \"perplexity\", \"file\": \"a.jsonl\", \"metrics\": [\"acc\"]}",
             "metric \"acc\" is not one of perplexity's");
    bad_task("bos.json", "{\"name\": \"x\", \"type\": \"perplexity\", \"file\": \"a.jsonl\", \"bos\": \"yes\"}", "\"bos\" is \"auto\", \"on\" or \"off\"");
    bad_task("until.json", "{\"name\": \"x\", \"type\": \"generation\", \"file\": \"a.jsonl\", \"until\": [\"\"]}", "\"until\" must be a list");
    bad_task("fseed.json", "{\"name\": \"x\", \"type\": \"generation\", \"file\": \"a.jsonl\", \"fewshot_seed\": -1}", "\"fewshot_seed\" must be");
    bad_task("icase.json", "{\"name\": \"x\", \"type\": \"generation\", \"file\": \"a.jsonl\", \"ignore_case\": 1}", "\"ignore_case\" must be");
    /* few-shot pools too small for lm-eval's random.sample: n from another file, n + 1 from the items themselves */
    char fp[800];
    snprintf(fp, sizeof fp, "%s/two.jsonl", g_tmp);
    FILE *ff = fopen(fp, "w");
    fputs("{\"context\": \"a\", \"choices\": [\"x\", \"y\"], \"answer\": 0}\n{\"context\": \"b\", \"choices\": [\"x\", \"y\"], \"answer\": 1}\n", ff);
    fclose(ff);
    bad_task("fs3.json", "{\"name\": \"x\", \"type\": \"multiple_choice\", \"file\": \"two.jsonl\", \"num_fewshot\": 3}", "3 few-shot examples need 3 items");
    bad_task("fsself.json", "{\"name\": \"x\", \"type\": \"multiple_choice\", \"file\": \"two.jsonl\", \"num_fewshot\": 2, \"fewshot_file\": \"two.jsonl\"}",
             "2 few-shot examples need 3 items");
    bad_task("fsmissing.json", "{\"name\": \"x\", \"type\": \"multiple_choice\", \"file\": \"two.jsonl\", \"num_fewshot\": 1, \"fewshot_file\": \"nope.jsonl\"}",
             "nope.jsonl");
    /* a line of several megabytes is read (under the 16 MiB line limit); over it, refused */
    char p[800];
    snprintf(p, sizeof p, "%s/big.jsonl", g_tmp);
    FILE *f = fopen(p, "w");
    fputs("{\"text\": \"", f);
    for (int i = 0; i < 6 * 1024 * 1024 / 8; i++) fputs("word ab ", f);
    fputs("\"}\n", f);
    fclose(f);
    Task t;
    Err e = { "" };
    CHECK(task_load(p, &t, &e) == 0 && t.n_items == 1 && strlen(t.items[0].text) == 6u * 1024 * 1024, "6 MB line: %s", e.msg);
    if (!e.msg[0]) task_free(&t);
    f = fopen(p, "w");
    fputs("{\"text\": \"", f);
    for (int i = 0; i < 17 * 1024 * 1024 / 8; i++) fputs("word ab ", f);
    fputs("\"}\n", f);
    fclose(f);
    CHECK(task_load(p, &t, &e) != 0 && strstr(e.msg, "line 1 is") && strstr(e.msg, "allowed"), "17 MB line: %s", e.msg);
}

const TestDef eval_tests[] = {
    { "tokenizer DeepSeek-V3: 64 lines exact", t_tok_deepseek },
    { "tokenizer Qwen3: 64 lines exact", t_tok_qwen3 },
    { "tokenizer GPT-2 ByteLevel regex vs tokenizers", t_tok_gpt2 },
    { "tokenizer Llama-3 pattern + BOS vs tokenizers", t_tok_llama3 },
    { "tokenizer with a moved merge is caught", t_tok_wrong_caught },
    { "tokenizer hostile files and inputs", t_tok_bad },
    { "eval log-likelihoods vs golden logits", t_eval_golden_ll },
    { "eval bootstrap, McNemar, paired test, KL", t_eval_stats },
    { "eval Python random.sample and mean_stderr", t_eval_pyrandom },
    { "eval bad task files", t_eval_bad_tasks },
};
const int n_eval_tests = sizeof eval_tests / sizeof eval_tests[0];
