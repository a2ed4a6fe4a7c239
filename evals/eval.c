/*
 * eval.c - see eval.h. Every rule is lm-evaluation-harness 0.4.13's with its Hugging
 * Face backend (HFLM), named where it is done: api/model.py (loglikelihood,
 * _encode_pair), models/huggingface.py (tok_encode, prefix_token_id, max_length,
 * loglikelihood_rolling, _loglikelihood_tokens, generate_until), utils.py
 * (get_rolling_token_windows, make_disjoint_window), api/samplers.py (few-shot draws),
 * api/task.py (fewshot_context), api/metrics.py (mean_stderr, weighted_perplexity,
 * bits_per_byte, exact_match). Log-likelihoods are summed in double where lm-eval
 * sums float32 values: the two agree to about 1e-5 per request.
 */
#include "eval.h"
#include "pyrandom.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <utf8proc.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- statistics --------------------------------------------------------------------- */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

double bootstrap_se(const double *x, int n, int b, uint64_t seed) {
    if (n < 2 || b < 2) return -1;
    double s = 0, s2 = 0;
    for (int r = 0; r < b; r++) {
        double m = 0;
        for (int i = 0; i < n; i++) m += x[rng_next(&seed) % (uint64_t)n];
        m /= n;
        s += m; s2 += m * m;
    }
    double mean = s / b;
    return sqrt(fmax(0, (s2 / b - mean * mean) * b / (b - 1)));
}

double mean_stderr(const double *x, int n) {
    if (n < 2) return -1;
    double mu = 0, ss = 0;
    for (int i = 0; i < n; i++) mu += x[i];
    mu /= n;
    for (int i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    return sqrt(ss / (n - 1)) / sqrt((double)n);
}

double mcnemar_p(int b, int c) {
    int n = b + c, k = b < c ? b : c;
    if (n == 0) return 1.0;
    /* two-sided exact binomial: 2 * P(X <= k), X ~ Bin(n, 1/2) */
    double p = 0, lc = 0;                       /* log C(n, i) */
    for (int i = 0; i <= k; i++) {
        if (i > 0) lc += log((double)(n - i + 1)) - log((double)i);
        p += exp(lc - n * log(2.0));
    }
    return fmin(1.0, 2 * p);
}

static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

double paired_bootstrap(const double *x, const double *y, int n, int b, uint64_t seed, double *lo, double *hi) {
    if (n < 1 || b < 10) { *lo = *hi = NAN; return 1; }
    double *d = xmalloc(sizeof(double) * (size_t)b);
    for (int r = 0; r < b; r++) {
        double m = 0;
        for (int i = 0; i < n; i++) { uint64_t k = rng_next(&seed) % (uint64_t)n; m += y[k] - x[k]; }
        d[r] = m / n;
    }
    qsort(d, (size_t)b, sizeof *d, cmp_d);
    *lo = d[(int)(0.025 * (b - 1))];
    *hi = d[(int)(0.975 * (b - 1))];
    int below = 0, above = 0;
    for (int r = 0; r < b; r++) { below += d[r] <= 0; above += d[r] >= 0; }
    free(d);
    return fmin(1.0, 2.0 * (below < above ? below : above) / b);
}

void kl_stats(const float *ref, const float *got, int n, int V, KlStats *out) {
    memset(out, 0, sizeof *out);
    out->n = n;
    if (n <= 0) return;
    double *kl = xmalloc(sizeof(double) * (size_t)n);
    int same = 0;
    for (int t = 0; t < n; t++) {
        const float *a = ref + (size_t)t * V, *b = got + (size_t)t * V;
        double ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0;
        int ia = 0, ib = 0;
        for (int v = 0; v < V; v++) { if (a[v] > ma) { ma = a[v]; ia = v; } if (b[v] > mb) { mb = b[v]; ib = v; } }
        for (int v = 0; v < V; v++) { sa += exp(a[v] - ma); sb += exp(b[v] - mb); }
        double la = ma + log(sa), lb = mb + log(sb), k = 0;
        for (int v = 0; v < V; v++) {
            double lpa = a[v] - la, lpb = b[v] - lb;
            k += exp(lpa) * (lpa - lpb);
        }
        kl[t] = fmax(0, k);
        out->mean += kl[t];
        if (kl[t] > out->max) out->max = kl[t];
        same += ia == ib;
    }
    out->mean /= n;
    qsort(kl, (size_t)n, sizeof *kl, cmp_d);
    int r = (int)ceil(0.99 * n);
    out->p99 = kl[(r < 1 ? 1 : r) - 1];
    out->same_top = (double)same / n;
    free(kl);
}

/* ---- scoring ------------------------------------------------------------------------ */
typedef struct { int *v; int n, cap; } Vec;
static void vpush(Vec *a, const int *x, int n) {
    if (n <= 0) return;
    if (a->n + n > a->cap) { a->cap = (a->n + n) * 2 + 16; a->v = realloc(a->v, sizeof *a->v * (size_t)a->cap); if (!a->v) exit(3); }
    memcpy(a->v + a->n, x, sizeof *x * (size_t)n);
    a->n += n;
}

/* One run's settings, fixed before the first item. */
typedef struct {
    Model *m;
    Tokenizer *tok;
    const Task *t;
    int L;                       /* HFLM.max_length */
    int prefix;                  /* HFLM.prefix_token_id: the BOS, else the EOS; -1: none */
    char *prefix_text;           /* tokenizer.decode(prefix), special tokens kept */
    int has_bos;                 /* the tokenizer has a BOS (tokenizer.bos_token is set) */
    int eot;                     /* the end-of-sequence id generation stops at; -1: none */
    char *eot_text;              /* its text, one more stop string as lm-eval adds it */
    PyRandom rnd;                /* the sampler's random.Random(fewshot_seed), one stream */
    EvalTraceFn trace; void *arg;
} Run;

/* the BOS the tokenizer's template puts before a text, or -1 */
static int bos_of(Tokenizer *tok) {
    if (!tok) return -1;
    int *ids, n;
    Err e;
    if (tok_encode(tok, "", 0, 1, &ids, &n, &e)) return -1;
    int b = n > 0 ? ids[0] : -1;
    free(ids);
    return b;
}

/* lm-eval's tok_encode: the tokenizer's own default (a BOS if its template adds one),
 * forced by add_bos_token (TASK_BOS_ON / OFF), and no special tokens when the text
 * already starts with the prefix token's text. check_prefix = 0 for tok_batch_encode
 * on a tokenizer without a BOS token (it checks tokenizer.bos_token only). */
static int encode_as(Run *R, const char *s, int special, int check_prefix, Vec *out, Err *e) {
    if (!R->tok) return err_set(e, "text items need the model's tokenizer");
    if (special < 0) {
        special = R->t->bos != TASK_BOS_OFF;
        if (check_prefix && R->prefix_text && *R->prefix_text && !strncmp(s, R->prefix_text, strlen(R->prefix_text))) special = 0;
    }
    int *ids, n;
    if (tok_encode(R->tok, s, strlen(s), special, &ids, &n, e)) return -1;
    out->n = 0;
    vpush(out, ids, n);
    free(ids);
    return 0;
}

/* one UTF-8 code point at s (n bytes left); its length in *len (1 on a bad byte) */
static uint32_t utf8_at(const unsigned char *s, size_t n, int *len) {
    static const unsigned char need[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4 };
    int l = need[s[0] >> 4];
    if (s[0] >= 0xF8) l = 0;
    if (l == 0 || (size_t)l > n) { *len = 1; return 0xFFFD; }
    uint32_t c = l == 1 ? s[0] : s[0] & (0x7F >> l);
    for (int i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) { *len = 1; return 0xFFFD; }
        c = c << 6 | (s[i] & 0x3F);
    }
    *len = l;
    return c;
}

/* Python's str.isspace(), which str.rstrip() and re's \s use */
static int py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* bytes of s left after str.rstrip() */
static size_t py_rstrip_len(const char *s) {
    size_t n = strlen(s), keep = 0;
    for (size_t i = 0; i < n;) {
        int l;
        uint32_t c = utf8_at((const unsigned char *)s + i, n - i, &l);
        i += (size_t)l;
        if (!py_isspace(c)) keep = i;
    }
    return keep;
}

/* len(re.split(r"\s+", s)): runs of whitespace + 1, empty ends counted */
static int py_split_words(const char *s) {
    size_t n = strlen(s);
    int words = 1, in = 0;
    for (size_t i = 0; i < n;) {
        int l;
        uint32_t c = utf8_at((const unsigned char *)s + i, n - i, &l);
        i += (size_t)l;
        int sp = py_isspace(c);
        if (sp && !in) words++;
        in = sp;
    }
    return words;
}

/* bytes.decode("utf-8", "replace"): each maximal ill-formed subpart becomes U+FFFD,
 * as the tokenizers' ByteLevel decoder (String::from_utf8_lossy) does */
static char *utf8_lossy(const char *s, size_t n) {
    char *out = xmalloc(n * 3 + 1);
    size_t k = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char b = u[i];
        int l = b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
        size_t good = 1;                          /* bytes of a valid prefix of the sequence */
        if (l > 1) {
            unsigned char lo = 0x80, hi = 0xBF;
            if (b == 0xE0) lo = 0xA0; else if (b == 0xED) hi = 0x9F; else if (b == 0xF0) lo = 0x90; else if (b == 0xF4) hi = 0x8F;
            while ((int)good < l && i + good < n && u[i + good] >= (good == 1 ? lo : 0x80) && u[i + good] <= (good == 1 ? hi : 0xBF)) good++;
        }
        if (l >= 1 && (int)good == l) { memcpy(out + k, s + i, (size_t)l); k += (size_t)l; i += (size_t)l; }
        else { memcpy(out + k, "\xEF\xBF\xBD", 3); k += 3; i += l > 1 ? good : 1; }
    }
    out[k] = 0;
    return out;
}

/* log-softmax of one logit row at index tok, and whether tok is the argmax */
static double logprob(const float *row, int V, int tok, int *greedy) {
    double mx = -INFINITY, s = 0;
    int am = 0;
    for (int v = 0; v < V; v++) if (row[v] > mx) { mx = row[v]; am = v; }
    for (int v = 0; v < V; v++) s += exp(row[v] - mx);
    *greedy = am == tok;
    return row[tok] - mx - log(s);
}

/* runs sequences seq[c] (tokens) and returns, per sequence, the log-likelihood of its
 * tokens from index from[c] on, and whether each was greedy (lm-eval: the input is
 * seq[:-1] and the last n - from logits score the continuation) */
static int score_seqs(Model *m, Vec *seq, const int *from, int ns, double *ll, int *greedy, Err *e) {
    int maxlen = 0, total = 0, wanted = 0;
    for (int c = 0; c < ns; c++) {
        if (seq[c].n > maxlen) maxlen = seq[c].n;
        total += seq[c].n;
        wanted += seq[c].n - from[c];
        if (from[c] < 1 || from[c] > seq[c].n) return err_set(e, "nothing to condition on (an empty context without a prefix token)");
    }
    if (maxlen > 1 << 20) return err_set(e, "a sequence of %d tokens is longer than the 1M positions supported", maxlen);
    for (int c = 0; c < ns; c++) { ll[c] = 0; greedy[c] = 1; }
    if (wanted == 0) return 0;                   /* empty continuations: 0, greedy */
    KVCache kv;
    if (kv_create(&kv, m, ns, maxlen, e)) return -1;
    int *tok = xmalloc(sizeof(int) * (size_t)total), *sq = xmalloc(sizeof(int) * (size_t)total), *ps = xmalloc(sizeof(int) * (size_t)total);
    unsigned char *want = xcalloc((size_t)total, 1);
    int k = 0;
    for (int c = 0; c < ns; c++)
        for (int i = 0; i < seq[c].n; i++, k++) { tok[k] = seq[c].v[i]; sq[k] = c; ps[k] = i; want[k] = i >= from[c] - 1 && i < seq[c].n - 1; }
    int V = m->cfg.vocab;
    float *lg = xmalloc(sizeof(float) * (size_t)wanted * V);
    int rc = model_forward(m, &kv, total, tok, sq, ps, want, lg, NULL, e);
    if (!rc) {
        int row = 0;
        for (int c = 0; c < ns; c++)
            for (int i = from[c]; i < seq[c].n; i++, row++) {
                int g;
                ll[c] += logprob(lg + (size_t)row * V, V, seq[c].v[i], &g);
                greedy[c] &= g;
            }
    }
    free(tok); free(sq); free(ps); free(want); free(lg);
    kv_free(&kv);
    return rc;
}

/* prefixes e's message with the task file and the item (1-based); returns -1 */
static int item_err(Err *e, const char *path, int item) { return err_prefix(e, "%s: item %d", path, item); }

static int utf8_chars(const char *s) {
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void put_metric(EvalResult *r, const char *name, double v, double se, int n, const char *note) {
    Metric *m = &r->m[r->n_metrics++];
    snprintf(m->name, sizeof m->name, "%s", name);
    m->value = v; m->stderr_ = se; m->n = n;
    snprintf(m->note, sizeof m->note, "%s", note ? note : "");
}

/* ---- prompts (api/task.py fewshot_context, api/samplers.py) --------------------------- */
typedef struct { char *s; size_t n, cap; } Str;
static void sadd(Str *b, const char *x) {
    size_t l = strlen(x);
    if (b->n + l + 1 > b->cap) { b->cap = (b->n + l + 1) * 2; b->s = realloc(b->s, b->cap); if (!b->s) exit(3); }
    memcpy(b->s + b->n, x, l + 1);
    b->n += l;
}

/* the indices of the pool drawn for item i: ContextSampler.sample(n, eval_doc) */
static int fewshot_draw(Run *R, int i, int *pick, Err *e) {
    const Task *t = R->t;
    int n = t->num_fewshot;
    const TaskItem *pool = t->fewshot_items ? t->fewshot_items : t->items;
    int np = t->fewshot_items ? t->n_fewshot_items : t->n_items;
    if (t->fewshot_first_n) {                    /* FirstNSampler: the pool's first n (less the doc) */
        int got = 0;
        for (int k = 0; k < np && got < n; k++) if (!t->fewshot_same || !cJSON_Compare(pool[k].doc, t->items[i].doc, 1)) pick[got++] = k;
        return got < n ? err_set(e, "%d few-shot examples from %d items", n, got) : 0;
    }
    if (!t->fewshot_same) return pyrandom_sample(&R->rnd, np, n, pick) ? err_set(e, "%d few-shot examples from %d items", n, np) : 0;
    /* eval_doc given (fewshot_split == test_split): draw n + 1, drop every copy of the doc */
    const struct cJSON *doc = t->items[i].doc;
    int *d = xmalloc(sizeof(int) * (size_t)(n + 1)), got = 0;
    if (pyrandom_sample(&R->rnd, np, n + 1, d)) { free(d); return err_set(e, "%d few-shot examples need %d items, %d given", n, n + 1, np); }
    for (int k = 0; k < n + 1 && got < n; k++) if (!cJSON_Compare(pool[d[k]].doc, doc, 1)) pick[got++] = d[k];
    free(d);
    if (got < n) {                               /* copies of the doc were drawn: redraw without them */
        int *rest = xmalloc(sizeof(int) * (size_t)np), nr = 0;
        for (int k = 0; k < np; k++) if (!cJSON_Compare(pool[k].doc, doc, 1)) rest[nr++] = k;
        int rc = pyrandom_sample(&R->rnd, nr, n, pick);
        for (int k = 0; !rc && k < n; k++) pick[k] = rest[pick[k]];
        free(rest);
        if (rc) return err_set(e, "%d few-shot examples from %d items other than the item itself", n, nr);
    }
    return 0;
}

/* description + the drawn examples (q + target_delimiter + answer + fewshot_separator)
 * + the item's context, as fewshot_context renders it without a chat template */
static char *fewshot_context(Run *R, int i, Err *e) {
    const Task *t = R->t;
    Str b = { 0 };
    sadd(&b, t->description);
    if (t->num_fewshot > 0) {
        int *pick = xmalloc(sizeof(int) * (size_t)t->num_fewshot);
        if (fewshot_draw(R, i, pick, e)) { free(pick); free(b.s); return NULL; }
        const TaskItem *pool = t->fewshot_items ? t->fewshot_items : t->items;
        for (int k = 0; k < t->num_fewshot; k++) {
            const TaskItem *x = &pool[pick[k]];
            /* multiple inputs (partial_scoring): q is the gold context, a the continuation */
            const char *q = t->partial ? (x->choices ? x->choices[x->answer] : NULL) : x->context;
            const char *ans = t->partial ? x->target : t->type == TASK_MC ? (x->choices ? x->choices[x->answer] : NULL) : x->target;
            if (!q || !ans) { int bad = pick[k] + 1; free(pick); free(b.s); return err_set(e, "few-shot examples need text (item %d)", bad), NULL; }
            sadd(&b, q);
            if (*ans) { sadd(&b, t->target_delim); sadd(&b, ans); sadd(&b, t->fewshot_sep); }  /* build_qa_turn: no answer, no delimiters */
        }
        free(pick);
    }
    sadd(&b, t->items[i].context ? t->items[i].context : "");
    return b.s;
}

/* ---- multiple choice (loglikelihood requests) ---------------------------------------- */
/* lm-eval's loglikelihood + _encode_pair for one (context, continuation) */
static int encode_request(Run *R, const char *context, const char *cont, char **ctx_out, char **cont_out, Vec *ce, Vec *ke, Err *e) {
    Vec whole = { 0 };
    int rc;
    if (!*context) {                             /* [prefix] + continuation without special tokens */
        rc = encode_as(R, cont, 0, 0, ke, e);
        if (!rc && R->prefix < 0) rc = err_set(e, "an empty context needs a BOS or EOS token to condition on");
        ce->n = 0;
        if (!rc && ke->n > 0 && ke->v[0] == R->prefix) { vpush(ce, ke->v, 1); memmove(ke->v, ke->v + 1, sizeof(int) * (size_t)--ke->n); }
        else if (!rc) vpush(ce, &R->prefix, 1);
        *ctx_out = xstrdup(context); *cont_out = xstrdup(cont);
        return rc;
    }
    size_t keep = py_rstrip_len(context), cl = strlen(context);
    char *c2 = xmalloc(keep + 1), *k2 = xmalloc(cl - keep + strlen(cont) + 1), *both = xmalloc(cl + strlen(cont) + 1);
    memcpy(c2, context, keep); c2[keep] = 0;
    sprintf(k2, "%s%s", context + keep, cont);   /* trailing whitespace moves to the continuation */
    sprintf(both, "%s%s", c2, k2);
    rc = encode_as(R, both, -1, 1, &whole, e);
    if (!rc) rc = encode_as(R, c2, -1, 1, ce, e);
    ke->n = 0;
    if (!rc && whole.n > ce->n) vpush(ke, whole.v + ce->n, whole.n - ce->n);
    free(both); free(whole.v);
    *ctx_out = c2; *cont_out = k2;
    return rc;
}

/* (ctx + cont)[-(L + 1):] into seq, scored from *from (_loglikelihood_tokens) */
static int truncate_request(Run *R, const Vec *ce, const Vec *ke, Vec *seq, int *from, Err *e) {
    if (ke->n > R->L) return err_set(e, "a continuation of %d tokens is longer than the model's length %d", ke->n, R->L);
    int total = ce->n + ke->n, start = total > R->L + 1 ? total - (R->L + 1) : 0;
    seq->n = 0;
    for (int k = start; k < total; k++) vpush(seq, k < ce->n ? &ce->v[k] : &ke->v[k - ce->n], 1);
    *from = seq->n - ke->n;
    return 0;
}

static int run_mc(Run *R, FILE *samples, EvalResult *r, Err *e) {
    const Task *t = R->t;
    int n = t->n_items, rc = 0;
    double *acc = xcalloc((size_t)n, sizeof(double)), *accn = xcalloc((size_t)n, sizeof(double)), *gr = xcalloc((size_t)n, sizeof(double));
    double *ll1 = xcalloc((size_t)n, sizeof(double));   /* the answer's log-likelihood */
    for (int i = 0; i < n && !rc; i++) {
        const TaskItem *it = &t->items[i];
        int nc = it->n_choices;
        Vec *seq = xcalloc((size_t)nc, sizeof *seq), *ce = xcalloc((size_t)nc, sizeof *ce), *ke = xcalloc((size_t)nc, sizeof *ke);
        char **rctx = xcalloc((size_t)nc, sizeof(char *)), **rcont = xcalloc((size_t)nc, sizeof(char *));
        int *from = xcalloc((size_t)nc, sizeof(int)), *greedy = xmalloc(sizeof(int) * (size_t)nc);
        double *ll = xmalloc(sizeof(double) * (size_t)nc);
        char *context = NULL;
        if (it->choices) context = fewshot_context(R, i, e), rc = context ? 0 : -1;
        else if (!it->context_ids) rc = err_set(e, "choices_ids need context_ids");
        for (int c = 0; c < nc && !rc; c++) {
            if (it->choice_ids) { vpush(&ce[c], it->context_ids, it->n_context_ids); vpush(&ke[c], it->choice_ids[c], it->n_choice_ids[c]); }
            else {
                /* partial_scoring (lm-eval's multiple inputs): the choice ends the context and
                 * the item's target is every request's continuation */
                const char *ch = t->partial ? it->target : it->choices[c];
                const char *dl = t->loglikelihood ? "" : t->target_delim;   /* loglikelihood: (ctx, target) as they are */
                char *cont = xmalloc(strlen(dl) + strlen(ch ? ch : "") + 1), *cx = context;
                sprintf(cont, "%s%s", dl, ch ? ch : "");
                if (t->partial) { cx = xmalloc(strlen(context) + strlen(it->choices[c]) + 1); sprintf(cx, "%s%s", context, it->choices[c]); }
                rc = encode_request(R, cx, cont, &rctx[c], &rcont[c], &ce[c], &ke[c], e);
                if (cx != context) free(cx);
                free(cont);
            }
            if (!rc) rc = truncate_request(R, &ce[c], &ke[c], &seq[c], &from[c], e);
        }
        if (!rc) rc = score_seqs(R->m, seq, from, nc, ll, greedy, e);
        if (rc) item_err(e, t->path, i + 1);
        else {
            int best = 0, bestn = 0;
            double *norm = xmalloc(sizeof(double) * (size_t)nc);
            for (int c = 0; c < nc; c++) {
                int len = it->choices ? utf8_chars(it->choices[c]) : it->n_choice_ids[c];
                norm[c] = ll[c] / (len > 0 ? len : 1);
                if (ll[c] > ll[best]) best = c;
                if (norm[c] > norm[bestn]) bestn = c;
                if (R->trace) {
                    EvalRequest q = { i, c, rctx[c], rcont[c], ce[c].v, ce[c].n, ke[c].v, ke[c].n, seq[c].v, seq[c].n - 1, ll[c], greedy[c], NULL };
                    R->trace(R->arg, &q);
                }
            }
            acc[i] = best == it->answer; accn[i] = bestn == it->answer; gr[i] = greedy[it->answer]; ll1[i] = ll[it->answer];
            for (int c = 0; c < nc; c++) r->tokens_scored += seq[c].n - from[c];
            if (samples) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "index", i);
                if (it->context) cJSON_AddStringToObject(o, "context", it->context);
                cJSON *cs = cJSON_AddArrayToObject(o, "choices"), *lls = cJSON_AddArrayToObject(o, "loglikelihoods");
                cJSON *gs = cJSON_AddArrayToObject(o, "is_greedy"), *ln = cJSON_AddArrayToObject(o, "tokens");
                for (int c = 0; c < nc; c++) {
                    if (it->choices) cJSON_AddItemToArray(cs, cJSON_CreateString(it->choices[c]));
                    else cJSON_AddItemToArray(cs, cJSON_CreateIntArray(it->choice_ids[c], it->n_choice_ids[c]));
                    cJSON_AddItemToArray(lls, cJSON_CreateNumber(ll[c]));
                    cJSON_AddItemToArray(gs, cJSON_CreateBool(greedy[c]));
                    cJSON_AddItemToArray(ln, cJSON_CreateNumber(seq[c].n - from[c]));
                }
                cJSON_AddNumberToObject(o, "answer", it->answer);
                cJSON_AddNumberToObject(o, "prediction", best);
                cJSON_AddNumberToObject(o, "prediction_norm", bestn);
                cJSON_AddBoolToObject(o, "acc", best == it->answer);
                cJSON_AddBoolToObject(o, "acc_norm", bestn == it->answer);
                char *line = cJSON_PrintUnformatted(o);
                fprintf(samples, "%s\n", line);
                free(line);
                cJSON_Delete(o);
            }
            free(norm);
        }
        for (int c = 0; c < nc; c++) { free(seq[c].v); free(ce[c].v); free(ke[c].v); free(rctx[c]); free(rcont[c]); }
        free(seq); free(ce); free(ke); free(rctx); free(rcont); free(from); free(greedy); free(ll); free(context);
    }
    if (!rc && t->loglikelihood) {      /* lm-eval's loglikelihood: acc = is_greedy, perplexity = exp(-mean ll) */
        double g = 0, sl = 0;
        for (int i = 0; i < n; i++) { g += gr[i]; sl += ll1[i]; }
        put_metric(r, "perplexity", exp(-sl / n), -1, n, "exp(-mean log-likelihood of the target)");
        put_metric(r, "acc", g / n, mean_stderr(gr, n), n, "the target is the greedy continuation");
        memcpy(acc, gr, sizeof(double) * (size_t)n);
        r->item_score = acc;
        r->n_items = n;
        acc = NULL;
    } else if (!rc) {
        double a = 0, an = 0, g = 0;
        for (int i = 0; i < n; i++) { a += acc[i]; an += accn[i]; g += gr[i]; }
        put_metric(r, "acc", a / n, mean_stderr(acc, n), n, "highest log-likelihood");
        put_metric(r, "acc_norm", an / n, mean_stderr(accn, n), n,
                   t->items[0].choices ? "log-likelihood / choice length in characters"
                                       : "log-likelihood / choice length in tokens (token-id items)");
        put_metric(r, "greedy", g / n, mean_stderr(gr, n), n, "the right choice is the greedy continuation");
        r->item_score = acc;
        r->n_items = n;
        acc = NULL;
    }
    free(acc); free(accn); free(gr); free(ll1);
    return rc;
}

/* ---- perplexity (loglikelihood_rolling) ----------------------------------------------- */
static int run_ppl(Run *R, FILE *samples, EvalResult *r, Err *e) {
    const Task *t = R->t;
    int n = t->n_items, rc = 0, L = R->L;
    double *dll = xcalloc((size_t)n, sizeof(double)), *dtok = xcalloc((size_t)n, sizeof(double));
    double *dwords = xcalloc((size_t)n, sizeof(double)), *dbytes = xcalloc((size_t)n, sizeof(double));
    for (int i = 0; i < n && !rc; i++) {
        const TaskItem *it = &t->items[i];
        Vec tl = { 0 };
        int prefix = R->prefix;
        if (it->text_ids) {
            vpush(&tl, it->text_ids, it->n_text_ids);
            if (prefix < 0 && tl.n > 0) { prefix = tl.v[0]; memmove(tl.v, tl.v + 1, sizeof(int) * (size_t)--tl.n); }  /* no tokenizer: the first id is context */
        } else {
            rc = encode_as(R, it->text, -1, 1, &tl, e);
            if (!rc && prefix < 0 && tl.n > 0) rc = err_set(e, "the tokenizer has neither a BOS nor an EOS token to condition on");
        }
        /* get_rolling_token_windows(context_len=1) + make_disjoint_window: the first window
         * predicts tl[0..n1) from [prefix] + tl[0..n1-1); each later one predicts up to L
         * new tokens with the whole L tokens before them as input */
        int predicted = 0, w = 0;
        while (!rc && predicted < tl.n) {
            int np = predicted == 0 ? (tl.n < L ? tl.n : L) : (tl.n - predicted < L ? tl.n - predicted : L);
            int end = predicted + np;
            Vec seq = { 0 };
            if (predicted == 0) { vpush(&seq, &prefix, 1); vpush(&seq, tl.v, np); }
            else vpush(&seq, tl.v + end - L - 1, L + 1);
            int from = seq.n - np, g = 0;
            double ll = 0;
            rc = score_seqs(R->m, &seq, &from, 1, &ll, &g, e);
            if (!rc) {
                dll[i] += ll;
                if (R->trace) {
                    EvalRequest q = { i, w, NULL, NULL, seq.v, from, seq.v + from, np, seq.v, seq.n - 1, ll, g, NULL };
                    R->trace(R->arg, &q);
                }
            }
            dtok[i] += np;
            predicted = end;
            w++;
            free(seq.v);
        }
        const char *ct = it->count_text ? it->count_text : it->text;   /* wikitext: the page before detokenizing */
        dwords[i] = ct ? py_split_words(ct) : 0;
        dbytes[i] = ct ? strlen(ct) : 0;
        r->tokens_scored += dtok[i];
        if (rc) rc = item_err(e, t->path, i + 1);
        else if (samples) {
            fprintf(samples, "{\"index\": %d, \"loglikelihood\": %.17g, \"tokens\": %.0f, \"words\": %.0f, \"bytes\": %.0f}\n",
                    i, dll[i], dtok[i], dwords[i], dbytes[i]);
        }
        free(tl.v);
    }
    if (!rc) {
        double Ls = 0, T = 0, W = 0, B = 0;
        for (int i = 0; i < n; i++) { Ls += dll[i]; T += dtok[i]; W += dwords[i]; B += dbytes[i]; }
        /* lm-eval gives weighted_perplexity and bits_per_byte no standard error; with
         * "bootstrap": N, a seeded bootstrap of bits per byte over documents */
        int b = t->bootstrap;
        double s1 = 0, s2 = 0;
        uint64_t sd = t->seed;
        for (int k = 0; k < b && B > 0; k++) {
            double l = 0, by = 0;
            for (int i = 0; i < n; i++) { uint64_t j = rng_next(&sd) % (uint64_t)n; l += dll[j]; by += dbytes[j]; }
            double v = by > 0 ? -l / by / log(2.0) : 0;
            s1 += v; s2 += v * v;
        }
        double se = b > 1 && B > 0 ? sqrt(fmax(0, (s2 / b - (s1 / b) * (s1 / b)) * b / (b - 1))) : -1;
        put_metric(r, "token_perplexity", T > 0 ? exp(-Ls / T) : NAN, -1, n, "exp(-sum ll / tokens scored)");
        if (W > 0) put_metric(r, "word_perplexity", exp(-Ls / W), -1, n, "exp(-sum ll / len(re.split(r'\\s+', text)))");
        if (B > 0) put_metric(r, "byte_perplexity", exp(-Ls / B), -1, n, "exp(-sum ll / UTF-8 bytes)");
        if (B > 0) put_metric(r, "bits_per_byte", -Ls / B / log(2.0), se, n, "-sum ll / UTF-8 bytes / ln 2");
        r->n_items = n;
        r->item_score = dll;
        dll = NULL;
    }
    free(dll); free(dtok); free(dwords); free(dbytes);
    return rc;
}

/* ---- generation (generate_until) ------------------------------------------------------ */
/* exact_match_hf_evaluate's options on one string: re.sub(regex, "", s) for each of
 * regexes_to_ignore (PCRE2 with Unicode classes, as Python's re on str), then
 * str.lower() (utf8proc's simple lower-case mapping), then string.punctuation and
 * string.digits removed. Returns a new string, NULL with e set on a bad regex. */
static char *em_normalize(const Task *t, const char *in, Err *e) {
    char *s = xstrdup(in);
    for (int k = 0; k < t->n_regexes; k++) {
        int ec;
        PCRE2_SIZE eo, outlen = strlen(s) + 1;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)t->regexes[k], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
        if (!re) { free(s); return err_set(e, "regexes_to_ignore[%d]: not a valid regular expression (at offset %zu)", k, (size_t)eo), NULL; }
        char *o = xmalloc(outlen);
        int rc = pcre2_substitute(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, PCRE2_SUBSTITUTE_GLOBAL, NULL, NULL, (PCRE2_SPTR)"", 0,
                                  (PCRE2_UCHAR *)o, &outlen);
        pcre2_code_free(re);
        if (rc < 0) { free(o); free(s); return err_set(e, "regexes_to_ignore[%d] failed on a string (PCRE2 error %d)", k, rc), NULL; }
        free(s);
        s = o;
    }
    size_t n = strlen(s);
    char *out = xmalloc(n * 4 + 1), *w = out;
    for (size_t i = 0; i < n;) {
        int l;
        uint32_t c = utf8_at((const unsigned char *)s + i, n - i, &l);
        i += (size_t)l;
        if (t->ignore_case) c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        if (t->ignore_punct && c < 0x80 && ispunct((int)c)) continue;   /* string.punctuation */
        if (t->ignore_numbers && c >= '0' && c <= '9') continue;       /* string.digits */
        w += utf8proc_encode_char((utf8proc_int32_t)c, (utf8proc_uint8_t *)w);
    }
    *w = 0;
    free(s);
    return out;
}

/* the first position in text where one of the stop strings starts, or strlen(text) */
char *eval_regex_filter(const char *regex, int group_select, const char *resp, Err *e) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!re) return err_set(e, "filter regex %s: not a valid regular expression (at offset %zu)", regex, (size_t)eo), NULL;
    uint32_t ng = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ng);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    size_t n = strlen(resp), at = 0, cap = 16, nm = 0;
    PCRE2_SIZE *mv = xmalloc(sizeof(PCRE2_SIZE) * 2 * cap);   /* (start, end) of each findall value; SIZE_MAX: the fallback */
    int rc = 0;
    while (at <= n) {
        int m = pcre2_match(re, (PCRE2_SPTR)resp, n, at, 0, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) { rc = err_set(e, "filter regex %s failed on a response (PCRE2 error %d)", regex, m); break; }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md), s0 = PCRE2_UNSET, s1 = PCRE2_UNSET;
        if (ng == 0) { s0 = ov[0]; s1 = ov[1]; }
        else if (ng == 1) { s0 = ov[2] == PCRE2_UNSET ? ov[0] : ov[2]; s1 = ov[2] == PCRE2_UNSET ? ov[0] : ov[3]; }   /* unset: "" */
        else for (uint32_t g = 1; g <= ng && s0 == PCRE2_UNSET && (int)g < m; g++)
            if (ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] > ov[2 * g]) { s0 = ov[2 * g]; s1 = ov[2 * g + 1]; }
        if (nm == cap) { cap *= 2; mv = realloc(mv, sizeof(PCRE2_SIZE) * 2 * cap); if (!mv) exit(3); }
        mv[2 * nm] = s0; mv[2 * nm + 1] = s1; nm++;
        at = ov[1] > ov[0] ? ov[1] : ov[1] + 1;          /* an empty match moves on one byte */
        while (at < n && ((unsigned char)resp[at] & 0xc0) == 0x80) at++;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    char *out = NULL;
    if (!rc) {
        long k = group_select < 0 ? (long)nm + group_select : group_select;
        if (nm == 0) out = xstrdup("[invalid]");
        else if (k < 0 || k >= (long)nm) rc = err_set(e, "filter regex %s: group_select %d of %zu matches", regex, group_select, nm);
        else if (mv[2 * k] == PCRE2_UNSET) out = xstrdup("[invalid]");   /* a tuple of empty groups: the fallback */
        else {
            size_t a = mv[2 * k], z = mv[2 * k + 1];
            char *raw = xmalloc(z - a + 1);
            memcpy(raw, resp + a, z - a); raw[z - a] = 0;
            size_t lo = 0, hi = py_rstrip_len(raw);          /* str.strip(), on characters */
            for (int l; lo < hi && py_isspace(utf8_at((const unsigned char *)raw + lo, hi - lo, &l)); ) lo += (size_t)l;
            out = xmalloc(hi - lo + 1);
            memcpy(out, raw + lo, hi - lo); out[hi - lo] = 0;
            free(raw);
        }
    }
    free(mv);
    return out;
}

static size_t first_stop(const char *text, char *const *stop, int ns) {
    size_t at = strlen(text);
    for (int u = 0; u < ns; u++) {
        const char *p = *stop[u] ? strstr(text, stop[u]) : NULL;
        if (p && (size_t)(p - text) < at) at = (size_t)(p - text);
    }
    return at;
}

static int run_gen(Run *R, FILE *samples, EvalResult *r, Err *e) {
    const Task *t = R->t;
    int n = t->n_items, rc = 0, V = R->m->cfg.vocab, max_ctx = R->L - t->max_gen;
    if (max_ctx <= 0) return err_set(e, "%s: max_gen_tokens %d must be less than the model's length %d", t->path, t->max_gen, R->L);
    double *em = xcalloc((size_t)n * (size_t)(t->n_filters ? t->n_filters : 1), sizeof(double));   /* (filters, n) */
    for (int i = 0; i < n && !rc; i++) {
        const TaskItem *it = &t->items[i];
        /* stop strings: the task's (lm-eval's generation_kwargs until), else the item's,
         * else the few-shot separator; then the end-of-sequence token's text */
        char *stop[72];
        int ns = 0;
        char *const *src = t->n_until ? t->until : it->until;
        int nsrc = t->n_until ? t->n_until : it->n_until;
        for (int u = 0; u < nsrc && ns < 64; u++) stop[ns++] = src[u];
        if (!nsrc) stop[ns++] = t->fewshot_sep;
        if (R->eot_text) { int have = 0; for (int u = 0; u < ns; u++) have |= !strcmp(stop[u], R->eot_text); if (!have) stop[ns++] = R->eot_text; }
        char *ctx = fewshot_context(R, i, e);
        Vec in = { 0 }, out = { 0 }, shown = { 0 };
        rc = ctx ? encode_as(R, ctx, -1, R->has_bos, &in, e) : -1;
        if (!rc && in.n > max_ctx) { memmove(in.v, in.v + in.n - max_ctx, sizeof(int) * (size_t)max_ctx); in.n = max_ctx; }  /* left truncation */
        if (!rc && in.n == 0) rc = err_set(e, "an empty prompt");
        KVCache kv;
        char *text = NULL;
        if (!rc) rc = kv_create(&kv, R->m, 1, in.n + t->max_gen + 1, e);
        if (!rc) {
            float *lg = xmalloc(sizeof(float) * (size_t)V);
            int *seq = xcalloc((size_t)in.n, sizeof(int)), *pos = xmalloc(sizeof(int) * (size_t)in.n);
            unsigned char *want = xcalloc((size_t)in.n, 1);
            for (int k = 0; k < in.n; k++) pos[k] = k;
            want[in.n - 1] = 1;
            rc = model_forward(R->m, &kv, in.n, in.v, seq, pos, want, lg, NULL, e);
            for (int g = 0; g < t->max_gen && !rc; g++) {
                int best = 0;
                for (int v = 1; v < V; v++) if (lg[v] > lg[best]) best = v;
                vpush(&out, &best, 1);
                if (tok_is_eos(R->tok, best)) break;           /* generation_config.eos_token_id */
                if (!tok_is_special(R->tok, best)) vpush(&shown, &best, 1);   /* skip_special_tokens */
                size_t len;
                char *raw = tok_decode(R->tok, shown.v, shown.n, &len, e);
                if (!raw) { rc = -1; break; }
                free(text);
                text = utf8_lossy(raw, len);
                free(raw);
                if (first_stop(text, stop, ns) < strlen(text)) break;
                int p = in.n + g, s0 = 0;
                rc = model_forward(R->m, &kv, 1, &best, &s0, &p, NULL, lg, NULL, e);
            }
            free(lg); free(seq); free(pos); free(want);
            kv_free(&kv);
        }
        if (rc) rc = item_err(e, t->path, i + 1);
        else {
            if (!text) text = xstrdup("");
            text[first_stop(text, stop, ns)] = 0;
            /* lm-eval's filter_list: each filter's output scored apart; none: the response */
            for (int f = 0; f < (t->n_filters ? t->n_filters : 1) && !rc; f++) {
                char *got = t->n_filters ? eval_regex_filter(t->filters[f].regex, t->filters[f].group, text, e) : xstrdup(text);
                char *a = got ? em_normalize(t, got, e) : NULL, *b = a ? em_normalize(t, it->target, e) : NULL;
                if (!b) rc = item_err(e, t->path, i + 1);
                else em[(size_t)f * (size_t)n + (size_t)i] = !strcmp(a, b);
                free(a); free(b); free(got);
            }
        }
        if (!rc) {
            if (R->trace) {
                EvalRequest q = { i, 0, ctx, NULL, in.v, in.n, out.v, out.n, in.v, in.n, 0, 0, text };
                R->trace(R->arg, &q);
            }
            if (samples) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "index", i);
                cJSON_AddStringToObject(o, "context", it->context);
                cJSON_AddStringToObject(o, "target", it->target);
                cJSON_AddStringToObject(o, "prediction", text);
                cJSON_AddBoolToObject(o, "exact_match", em[i] != 0);
                char *line = cJSON_PrintUnformatted(o);
                fprintf(samples, "%s\n", line);
                free(line);
                cJSON_Delete(o);
            }
        }
        free(text); free(ctx); free(in.v); free(out.v); free(shown.v);
    }
    if (!rc) {
        for (int f = 0; f < (t->n_filters ? t->n_filters : 1); f++) {
            double s = 0;
            char nm[32];
            for (int i = 0; i < n; i++) s += em[(size_t)f * (size_t)n + (size_t)i];
            if (t->n_filters) snprintf(nm, sizeof nm, "exact_match,%s", t->filters[f].name);
            else snprintf(nm, sizeof nm, "exact_match");
            put_metric(r, nm, s / n, mean_stderr(em + (size_t)f * (size_t)n, n), n,
                       t->n_filters ? "the filter's match in the output, equal to the target" : "greedy output up to a stop string, equal to the target");
        }
        r->item_score = em;
        r->n_items = n;
        em = NULL;
    }
    free(em);
    return rc;
}

/* ---- entry ---------------------------------------------------------------------------- */
int eval_max_length(const Model *m, const Task *t) {
    if (t->window > 0) return t->window;
    return m->cfg.max_pos > 0 ? m->cfg.max_pos : 2048;
}

int eval_run_traced(Model *m, Tokenizer *tok, const Task *t, FILE *samples, EvalResult *r, EvalTraceFn trace, void *arg, Err *e) {
    memset(r, 0, sizeof *r);
    if (tok && tok_vocab_size(tok) > m->cfg.vocab)
        return err_set(e, "the tokenizer has %d ids but the model's vocabulary is %d", tok_vocab_size(tok), m->cfg.vocab);
    if (t->type == TASK_GEN && !tok) return err_set(e, "%s: generation tasks need the model's tokenizer", t->path);
    Run R = { .m = m, .tok = tok, .t = t, .L = eval_max_length(m, t), .prefix = -1, .eot = -1, .trace = trace, .arg = arg };
    pyrandom_seed(&R.rnd, t->fewshot_seed);
    if (tok) {
        int V = tok_vocab_size(tok);
        for (int v = 0; v < V && R.eot < 0; v++) if (tok_is_eos(tok, v)) R.eot = v;
        R.prefix = bos_of(tok);
        R.has_bos = R.prefix >= 0;
        if (R.prefix < 0) R.prefix = R.eot;      /* prefix_token_id: the BOS, else the EOS */
        Err e2;
        if (R.prefix >= 0) R.prefix_text = tok_decode(tok, &R.prefix, 1, NULL, &e2);
        if (R.eot >= 0) R.eot_text = tok_decode(tok, &R.eot, 1, NULL, &e2);
    }
    int rc = -1;
    switch (t->type) {
    case TASK_MC: rc = run_mc(&R, samples, r, e); break;
    case TASK_PPL: rc = run_ppl(&R, samples, r, e); break;
    case TASK_GEN: rc = run_gen(&R, samples, r, e); break;
    }
    free(R.prefix_text); free(R.eot_text);
    if (rc == 0 && t->n_metrics) {          /* keep the definition's metrics, in its order */
        Metric all[8];
        int n = r->n_metrics;
        memcpy(all, r->m, sizeof all);
        r->n_metrics = 0;
        for (int k = 0; k < t->n_metrics; k++)
            for (int q = 0; q < n; q++) if (!strcmp(all[q].name, t->metrics[k])) r->m[r->n_metrics++] = all[q];
    }
    return rc;
}

int eval_run(Model *m, Tokenizer *tok, const Task *t, FILE *samples, EvalResult *r, Err *e) {
    return eval_run_traced(m, tok, t, samples, r, NULL, NULL, e);
}

void eval_result_free(EvalResult *r) { free(r->item_score); memset(r, 0, sizeof *r); }
