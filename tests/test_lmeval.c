/*
 * test_lmeval.c - effbench's scores against lm-evaluation-harness 0.4.13's own
 * per-item outputs (tests/data/lmeval/, made by tests/gen_lmeval_refs.py; no Python
 * here).
 *
 * Each reference run (tests/data/lmeval/out/RUN/TASK.json) is lm-eval's HF backend on
 * a golden tiny checkpoint (llama-tiny: the tokenizer adds a BOS; qwen2-tiny: none)
 * with the run's model_args (add_bos_token, max_length). The test builds the same
 * model directory in g_tmp (the golden config.json and model.safetensors, the
 * committed tokenizer.json), runs the run's effbench task definition with the run's
 * BOS setting and checks, request by request (eval_run_traced):
 *   multiple choice  the request strings after rstrip, context and continuation ids,
 *                    the input length after left truncation, log-likelihoods within
 *                    1e-4 (plus the rounding of lm-eval's float32 sums), is_greedy, predictions, acc / acc_norm and their stderr;
 *   perplexity       the token ids of every window (context and predicted), each
 *                    window's and each document's log-likelihood as above, words,
 *                    bytes; word/byte perplexity and bits per byte (relative 1e-5),
 *                    no stderr (lm-eval's is N/A);
 *   generation       the prompt ids after truncation, the generated ids, the response
 *                    cut at the stop strings, exact_match and its stderr.
 * Then two runs that must fail the same comparison: BOS forced the other way (every
 * continuation shifted by one position) and a window one token shorter.
 */
#include "test.h"
#include "eval.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LL_TOL 1e-4
#define REF_DIR "tests/data/lmeval"

/* ---- the requests effbench made --------------------------------------------------- */
typedef struct {
    int item, index;
    char *context, *continuation, *generation;
    int *ctx, n_ctx, *cont, n_cont, n_input;
    double ll;
    int greedy;
} Req;

typedef struct { Req *r; int n, cap; } Reqs;

static int *dup_ids(const int *v, int n) {
    int *o = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (n > 0) memcpy(o, v, sizeof(int) * (size_t)n);
    return o;
}

static void trace_req(void *arg, const EvalRequest *q) {
    Reqs *rs = arg;
    if (rs->n == rs->cap) { rs->cap = rs->cap * 2 + 16; rs->r = realloc(rs->r, sizeof *rs->r * (size_t)rs->cap); }
    Req *r = &rs->r[rs->n++];
    r->item = q->item; r->index = q->index;
    r->context = q->context ? strdup(q->context) : NULL;
    r->continuation = q->continuation ? strdup(q->continuation) : NULL;
    r->generation = q->generation ? strdup(q->generation) : NULL;
    r->ctx = dup_ids(q->ctx_ids, q->n_ctx); r->n_ctx = q->n_ctx;
    r->cont = dup_ids(q->cont_ids, q->n_cont); r->n_cont = q->n_cont;
    r->n_input = q->n_input; r->ll = q->ll; r->greedy = q->is_greedy;
}

static void reqs_free(Reqs *rs) {
    for (int i = 0; i < rs->n; i++) {
        Req *r = &rs->r[i];
        free(r->context); free(r->continuation); free(r->generation); free(r->ctx); free(r->cont);
    }
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

static const Req *find_req(const Reqs *rs, int item, int index) {
    for (int i = 0; i < rs->n; i++) if (rs->r[i].item == item && rs->r[i].index == index) return &rs->r[i];
    return NULL;
}

/* ---- comparison ------------------------------------------------------------------- */
typedef struct {
    int quiet;                   /* count mismatches without failing (the negative runs) */
    int bad, ll_bad;             /* mismatches; log-likelihoods beyond LL_TOL */
    int n_ll;                    /* log-likelihoods compared */
    double max_ll;               /* largest |ll - reference| */
    const char *where;           /* run/task */
} Cmp;

#define EXPECT(c, cond, ...) do { if (!(cond)) { (c)->bad++; if (!(c)->quiet && (c)->bad <= 12) t_fail(__FILE__, __LINE__, __VA_ARGS__); } } while (0)

static int ids_equal(const cJSON *a, const int *v, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return 0;
    int i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) if (!cJSON_IsNumber(x) || x->valueint != v[i]) return 0;
    return 1;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNumber(x)) return x->valuedouble;
    if (cJSON_IsString(x)) return strtod(x->valuestring, NULL);   /* lm-eval writes some as strings */
    if (cJSON_IsBool(x)) return cJSON_IsTrue(x);
    return NAN;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* within LL_TOL, plus the rounding of lm-eval's own float32 sum of n values
 * (|ll| x 2^-23 x sqrt(n): 2.4e-4 at the ll of a 512-token window, -3200, whose float32
 * spacing is itself 2.4e-4; 1e-5 at a short continuation) */
static void cmp_ll(Cmp *c, double got, double want, int n, const char *what, int item, int idx) {
    double d = fabs(got - want), tol = LL_TOL + fabs(want) * ldexp(1.0, -23) * sqrt((double)(n > 0 ? n : 1));
    c->n_ll++;
    if (d > c->max_ll || isnan(d)) c->max_ll = isnan(d) ? INFINITY : d;
    if (!(d <= tol)) c->ll_bad++;
    EXPECT(c, d <= tol, "%s item %d %s %d: ll %.7f, lm-eval %.7f (tolerance %.1e)", c->where, item, what, idx, got, want, tol);
}

/* a metric of ours against lm-eval's results "NAME,none" and "NAME_stderr,none" */
static void cmp_metric(Cmp *c, const EvalResult *r, const cJSON *res, const char *name, double rel, int stderr_too) {
    const Metric *m = NULL;
    for (int k = 0; k < r->n_metrics; k++) if (!strcmp(r->m[k].name, name)) m = &r->m[k];
    char key[80];
    snprintf(key, sizeof key, "%s,none", name);
    double want = num(res, key);
    EXPECT(c, m && fabs(m->value - want) <= rel * fmax(1, fabs(want)), "%s: %s %.10g, lm-eval %.10g", c->where, name, m ? m->value : NAN, want);
    if (!stderr_too || !m) return;
    snprintf(key, sizeof key, "%s_stderr,none", name);
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(res, key);
    if (cJSON_IsString(se)) EXPECT(c, m->stderr_ < 0, "%s: %s stderr %g where lm-eval has %s", c->where, name, m->stderr_, se->valuestring);
    else EXPECT(c, cJSON_IsNumber(se) && fabs(m->stderr_ - se->valuedouble) <= 1e-9, "%s: %s stderr %.10g, lm-eval %.10g", c->where, name,
                m->stderr_, cJSON_IsNumber(se) ? se->valuedouble : NAN);
}

static void cmp_mc(Cmp *c, const cJSON *ref, const Reqs *rs, const EvalResult *r) {
    int i = 0;
    for (const cJSON *it = cJSON_GetObjectItem(ref, "items")->child; it; it = it->next, i++) {
        int k = 0, best = 0, bestn = 0;
        double bl = -INFINITY, bn = -INFINITY;
        const cJSON *choices = cJSON_GetObjectItem(cJSON_GetObjectItem(it, "doc"), "choices");
        for (const cJSON *q = cJSON_GetObjectItem(it, "requests")->child; q; q = q->next, k++) {
            const Req *g = find_req(rs, i, k);
            EXPECT(c, g, "%s item %d choice %d: no request", c->where, i, k);
            if (!g) continue;
            const char *ctx = str(q, "context_encoded"), *cont = str(q, "continuation_encoded");
            EXPECT(c, g->context && ctx && !strcmp(g->context, ctx), "%s item %d choice %d: context \"%s\", lm-eval \"%s\"", c->where, i, k,
                   g->context ? g->context : "(null)", ctx ? ctx : "(null)");
            EXPECT(c, g->continuation && cont && !strcmp(g->continuation, cont), "%s item %d choice %d: continuation \"%s\", lm-eval \"%s\"",
                   c->where, i, k, g->continuation ? g->continuation : "(null)", cont ? cont : "(null)");
            EXPECT(c, ids_equal(cJSON_GetObjectItem(q, "context_enc"), g->ctx, g->n_ctx), "%s item %d choice %d: context ids differ (%d ids)",
                   c->where, i, k, g->n_ctx);
            EXPECT(c, ids_equal(cJSON_GetObjectItem(q, "continuation_enc"), g->cont, g->n_cont),
                   "%s item %d choice %d: continuation ids differ (%d ids)", c->where, i, k, g->n_cont);
            EXPECT(c, (int)num(q, "input_len") == g->n_input, "%s item %d choice %d: input of %d tokens, lm-eval %d", c->where, i, k,
                   g->n_input, (int)num(q, "input_len"));
            cmp_ll(c, g->ll, num(q, "loglikelihood"), g->n_cont, "choice", i, k);
            EXPECT(c, g->greedy == (int)num(q, "is_greedy"), "%s item %d choice %d: is_greedy %d", c->where, i, k, g->greedy);
            const cJSON *ch = cJSON_GetArrayItem(choices, k);
            int len = 0;
            for (const char *p = cJSON_IsString(ch) ? ch->valuestring : ""; *p; p++) len += ((unsigned char)*p & 0xC0) != 0x80;
            if (g->ll > bl) { bl = g->ll; best = k; }
            if (g->ll / len > bn) { bn = g->ll / len; bestn = k; }
        }
        EXPECT(c, best == (int)num(it, "prediction"), "%s item %d: prediction %d, lm-eval %d", c->where, i, best, (int)num(it, "prediction"));
        EXPECT(c, bestn == (int)num(it, "prediction_norm"), "%s item %d: prediction_norm %d, lm-eval %d", c->where, i, bestn,
               (int)num(it, "prediction_norm"));
    }
    const cJSON *res = cJSON_GetObjectItem(ref, "results");
    cmp_metric(c, r, res, "acc", 1e-12, 1);
    cmp_metric(c, r, res, "acc_norm", 1e-12, 1);
}

static void cmp_pp(Cmp *c, const cJSON *ref, const Reqs *rs, const EvalResult *r) {
    int i = 0;
    for (const cJSON *it = cJSON_GetObjectItem(ref, "items")->child; it; it = it->next, i++) {
        int w = 0, ntok = 0;
        double sum = 0;
        for (const cJSON *q = cJSON_GetObjectItem(it, "windows")->child; q; q = q->next, w++) {
            const Req *g = find_req(rs, i, w);
            EXPECT(c, g, "%s doc %d window %d: no window", c->where, i, w);
            if (!g) continue;
            EXPECT(c, ids_equal(cJSON_GetObjectItem(q, "context"), g->ctx, g->n_ctx), "%s doc %d window %d: context ids differ (%d ids)",
                   c->where, i, w, g->n_ctx);
            EXPECT(c, ids_equal(cJSON_GetObjectItem(q, "predicted"), g->cont, g->n_cont), "%s doc %d window %d: predicted ids differ (%d ids)",
                   c->where, i, w, g->n_cont);
            cmp_ll(c, g->ll, num(q, "loglikelihood"), g->n_cont, "window", i, w);
            sum += g->ll;
            ntok += g->n_cont;
        }
        EXPECT(c, !find_req(rs, i, w), "%s doc %d: more windows than lm-eval's %d", c->where, i, w);
        cmp_ll(c, sum, num(it, "loglikelihood"), ntok, "document", i, 0);
    }
    const cJSON *res = cJSON_GetObjectItem(ref, "results");
    cmp_metric(c, r, res, "word_perplexity", 1e-5, 1);
    cmp_metric(c, r, res, "byte_perplexity", 1e-5, 1);
    cmp_metric(c, r, res, "bits_per_byte", 1e-5, 1);
}

static void cmp_gen(Cmp *c, const cJSON *ref, const Reqs *rs, const EvalResult *r) {
    int i = 0;
    for (const cJSON *it = cJSON_GetObjectItem(ref, "items")->child; it; it = it->next, i++) {
        const Req *g = find_req(rs, i, 0);
        EXPECT(c, g, "%s item %d: no generation", c->where, i);
        if (!g) continue;
        EXPECT(c, ids_equal(cJSON_GetObjectItem(it, "context_enc"), g->ctx, g->n_ctx), "%s item %d: prompt ids differ (%d ids)", c->where, i, g->n_ctx);
        EXPECT(c, ids_equal(cJSON_GetObjectItem(it, "generated_ids"), g->cont, g->n_cont), "%s item %d: generated ids differ (%d ids)",
               c->where, i, g->n_cont);
        const char *resp = str(it, "response");
        EXPECT(c, resp && g->generation && !strcmp(resp, g->generation), "%s item %d: response \"%s\", lm-eval \"%s\"", c->where, i,
               g->generation ? g->generation : "(null)", resp ? resp : "(null)");
    }
    cmp_metric(c, r, cJSON_GetObjectItem(ref, "results"), "exact_match", 1e-12, 1);
}

/* ---- one reference file ------------------------------------------------------------- */
/* g_tmp/lmeval-NAME: the golden weights and the committed tokenizer */
static int model_dir(const char *name, char *dir, size_t cap) {
    snprintf(dir, cap, "%s/lmeval-%s", g_tmp, name);
    char src[2048], dst[2048], *cwd = getcwd(NULL, 0);
    if (access(dir, F_OK) == 0) { free(cwd); return 0; }
    mkdir(dir, 0755);
    const char *files[3] = { "config.json", "model.safetensors", "tokenizer.json" };
    int rc = 0;
    for (int k = 0; k < 3; k++) {
        if (k < 2) snprintf(src, sizeof src, "%s/dense/%s/%s", g_golden, name, files[k]);
        else snprintf(src, sizeof src, "%s/" REF_DIR "/models/%s/%s", cwd, name, files[k]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[k]);
        char *abs = realpath(src, NULL);
        if (!abs || symlink(abs, dst)) rc = -1;
        free(abs);
    }
    free(cwd);
    return rc;
}

typedef struct { Model m; Tokenizer *tok; char name[64]; int loaded; } Loaded;

static int load(Loaded *L, const char *name) {
    if (L->loaded && !strcmp(L->name, name)) return 0;
    if (L->loaded) { model_free(&L->m); tok_free(L->tok); L->loaded = 0; }
    char dir[1024];
    Err e = { "" };
    LoadOpts lo = { .dtype = DT_F32 };
    if (model_dir(name, dir, sizeof dir)) { t_skip("golden %s not found under %s", name, g_golden); return -1; }
    if (model_load(&L->m, dir, &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return -1; }
    if (!(L->tok = tok_for_model(dir, &e))) { t_fail(__FILE__, __LINE__, "%s", e.msg); model_free(&L->m); return -1; }
    snprintf(L->name, sizeof L->name, "%s", name);
    L->loaded = 1;
    return 0;
}

/* runs the reference file's task as the run did; bos_flip / window_delta make it wrong */
static int run_ref(Loaded *L, const cJSON *ref, const char *where, int quiet, int bos_flip, int window_delta, Cmp *out) {
    const cJSON *st = cJSON_GetObjectItem(ref, "settings");
    const char *model = str(st, "model"), *def = str(ref, "effbench_task"), *type = str(ref, "type");
    if (!model || !def || !type) { t_fail(__FILE__, __LINE__, "%s: no settings.model, effbench_task or type", where); return -1; }
    if (load(L, model)) return -1;
    char tp[1024];
    snprintf(tp, sizeof tp, REF_DIR "/%s", def);
    Task t;
    Err e = { "" };
    if (task_load(tp, &t, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return -1; }
    const cJSON *ab = cJSON_GetObjectItem(st, "add_bos_token");
    t.bos = cJSON_IsTrue(ab) ? TASK_BOS_ON : cJSON_IsFalse(ab) ? TASK_BOS_OFF : TASK_BOS_AUTO;
    if (bos_flip) t.bos = t.bos == TASK_BOS_OFF ? TASK_BOS_AUTO : TASK_BOS_OFF;
    int ml = (int)num(st, "max_length");
    CHECK(eval_max_length(&L->m, &t) == ml, "%s: model length %d, lm-eval's max_length %d", where, eval_max_length(&L->m, &t), ml);
    if (window_delta) t.window = ml + window_delta;
    Reqs rs = { 0 };
    EvalResult r;
    int rc = eval_run_traced(&L->m, L->tok, &t, NULL, &r, trace_req, &rs, &e);
    if (rc) { if (!quiet) t_fail(__FILE__, __LINE__, "%s: %s", where, e.msg); task_free(&t); reqs_free(&rs); return -1; }
    Cmp c = { .quiet = quiet, .where = where };
    if (!strcmp(type, "multiple_choice")) cmp_mc(&c, ref, &rs, &r);
    else if (!strcmp(type, "perplexity")) cmp_pp(&c, ref, &rs, &r);
    else cmp_gen(&c, ref, &rs, &r);
    *out = c;
    eval_result_free(&r);
    reqs_free(&rs);
    task_free(&t);
    return 0;
}

static cJSON *read_ref(const char *path) {
    Err e;
    char *txt = read_file(path, 64u << 20, NULL, &e);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    if (!j) t_fail(__FILE__, __LINE__, "%s: cannot read", path);
    return j;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the reference files of tests/data/lmeval/out, sorted: RUN/TASK.json */
static int list_refs(char ***out) {
    int n = 0, cap = 64;
    char **v = malloc(sizeof(char *) * (size_t)cap);
    DIR *d = opendir(REF_DIR "/out");
    for (struct dirent *run; d && (run = readdir(d));) {
        if (run->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, REF_DIR "/out/%s", run->d_name);
        DIR *d2 = opendir(p);
        for (struct dirent *f; d2 && (f = readdir(d2));) {
            size_t l = strlen(f->d_name);
            if (l < 6 || strcmp(f->d_name + l - 5, ".json")) continue;
            if (n == cap) { cap *= 2; v = realloc(v, sizeof(char *) * (size_t)cap); }
            size_t sz = strlen(run->d_name) + l + 2;
            v[n] = malloc(sz);
            snprintf(v[n++], sz, "%s/%s", run->d_name, f->d_name);
        }
        if (d2) closedir(d2);
    }
    if (d) closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_name);
    *out = v;
    return n;
}

/* ---- tests -------------------------------------------------------------------------- */
static void t_lmeval_refs(void) {
    char **refs;
    int n = list_refs(&refs), done = 0, report = getenv("EFFBENCH_LMEVAL_REPORT") != NULL;
    Loaded L = { 0 };
    double worst = 0;
    for (int k = 0; k < n; k++) {
        char p[1200];
        snprintf(p, sizeof p, REF_DIR "/out/%s", refs[k]);
        cJSON *ref = read_ref(p);
        Cmp c;
        if (ref && run_ref(&L, ref, refs[k], 0, 0, 0, &c) == 0) {
            done++;
            if (c.max_ll > worst) worst = c.max_ll;
            if (report) printf("  %-36s %3d log-likelihoods, max |diff| %.2e, %s\n", refs[k], c.n_ll, c.max_ll, c.bad ? "DIFFERENT" : "same");
        }
        cJSON_Delete(ref);
        free(refs[k]);
    }
    free(refs);
    if (L.loaded) { model_free(&L.m); tok_free(L.tok); }
    if (n == 0) { t_skip("no reference outputs in " REF_DIR "/out"); return; }
    CHECK(done == n, "%d of %d reference files compared", done, n);
    if (report) printf("  largest log-likelihood difference: %.2e\n", worst);
}

/* the same comparison must fail on wrong requests */
static void t_lmeval_wrong_caught(void) {
    Loaded L = { 0 };
    const char *cases[2] = { "llama-tiny/eb_mc_ws.json", "llama-tiny-w64/eb_pp.json" };
    for (int k = 0; k < 2; k++) {
        char p[1200];
        snprintf(p, sizeof p, REF_DIR "/out/%s", cases[k]);
        if (access(p, F_OK)) { t_skip("%s not found", p); break; }
        cJSON *ref = read_ref(p);
        Cmp good, bad;
        /* right: nothing differs; BOS the other way shifts every continuation by a token;
         * a window one token shorter moves the window boundaries */
        if (ref && run_ref(&L, ref, cases[k], 1, 0, 0, &good) == 0 && run_ref(&L, ref, cases[k], 1, k == 0, k == 1 ? -1 : 0, &bad) == 0) {
            CHECK(good.bad == 0 && good.ll_bad == 0, "%s: the right run differs (%d, %.2e)", cases[k], good.bad, good.max_ll);
            CHECK(bad.ll_bad > 0 && bad.max_ll > 0.01, "%s: a wrong run passes (%d log-likelihoods beyond the tolerance, largest %.2e)",
                  cases[k], bad.ll_bad, bad.max_ll);
        }
        cJSON_Delete(ref);
    }
    if (L.loaded) { model_free(&L.m); tok_free(L.tok); }
}

/* exact_match's regexes_to_ignore: a regex that removes everything makes every output
 * equal its target; one that never matches changes nothing; a bad one is an error */
static void t_lmeval_em_options(void) {
    Loaded L = { 0 };
    Task t;
    Err e = { "" };
    if (access(REF_DIR "/tasks/eb_gen_until.json", F_OK)) { t_skip("no " REF_DIR "/tasks"); return; }
    if (load(&L, "llama-tiny")) return;
    if (task_load(REF_DIR "/tasks/eb_gen_until.json", &t, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); model_free(&L.m); tok_free(L.tok); return; }
    const char *pats[3] = { "[\\s\\S]+", "(?!)", "(" };
    double want[2] = { 1.0, -1 };
    for (int k = 0; k < 3; k++) {
        char *one = (char *)pats[k];
        t.regexes = &one; t.n_regexes = 1;
        EvalResult r;
        int rc = eval_run(&L.m, L.tok, &t, NULL, &r, &e);
        if (k == 2) { CHECK(rc != 0 && strstr(e.msg, "regexes_to_ignore[0]"), "a bad regex: %s", rc ? e.msg : "accepted"); if (!rc) eval_result_free(&r); continue; }
        CHECK(rc == 0, "%s", e.msg);
        if (rc) continue;
        if (k == 0) CHECK(r.m[0].value == want[0], "everything removed: exact_match %.3f", r.m[0].value);
        if (k == 1) want[1] = r.m[0].value;
        eval_result_free(&r);
    }
    t.regexes = NULL; t.n_regexes = 0;
    EvalResult r;
    if (eval_run(&L.m, L.tok, &t, NULL, &r, &e) == 0) {
        CHECK(r.m[0].value == want[1], "a regex that never matches: %.3f, without %.3f", want[1], r.m[0].value);
        eval_result_free(&r);
    }
    task_free(&t);
    model_free(&L.m); tok_free(L.tok);
}

const TestDef lmeval_tests[] = {
    { "lmeval requests, ll, predictions, metrics", t_lmeval_refs },
    { "lmeval shifted continuation or window caught", t_lmeval_wrong_caught },
    { "lmeval exact_match regexes_to_ignore", t_lmeval_em_options },
};
const int n_lmeval_tests = sizeof lmeval_tests / sizeof lmeval_tests[0];
