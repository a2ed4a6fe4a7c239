/*
 * eval.c - see eval.h. The multiple-choice and perplexity conventions are those of
 * EleutherAI lm-evaluation-harness (trailing spaces of a context move to the
 * continuation; continuation tokens = tokens(context + continuation) after
 * tokens(context); an empty context is the BOS; rolling windows with one token of
 * context).
 */
#include "eval.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
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
    if (a->n + n > a->cap) { a->cap = (a->n + n) * 2 + 16; a->v = realloc(a->v, sizeof *a->v * (size_t)a->cap); if (!a->v) exit(3); }
    memcpy(a->v + a->n, x, sizeof *x * (size_t)n);
    a->n += n;
}

static int encode(Tokenizer *tok, const char *s, Vec *out, Err *e) {
    if (!tok) return err_set(e, "text items need the model's tokenizer.json");
    int *ids, n;
    if (tok_encode(tok, s, strlen(s), 0, &ids, &n, e)) return -1;
    out->n = 0;
    vpush(out, ids, n);
    free(ids);
    return 0;
}

static int bos_of(Tokenizer *tok) {
    if (!tok) return -1;
    int *ids, n;
    Err e;
    if (tok_encode(tok, "", 0, 1, &ids, &n, &e)) return -1;
    int b = n > 0 ? ids[0] : -1;
    free(ids);
    return b;
}

/* few-shot prefix for item i: num_fewshot other items, picked by a seeded shuffle */
static char *fewshot_prefix(const Task *t, int i) {
    if (t->num_fewshot == 0) return xstrdup("");
    int n = t->n_items, *perm = xmalloc(sizeof(int) * (size_t)n);
    for (int k = 0; k < n; k++) perm[k] = k;
    uint64_t s = t->seed * 1000003u + (uint64_t)i;
    for (int k = n - 1; k > 0; k--) { int j = (int)(rng_next(&s) % (uint64_t)(k + 1)); int x = perm[k]; perm[k] = perm[j]; perm[j] = x; }
    size_t cap = 256, len = 0;
    char *out = xmalloc(cap);
    out[0] = 0;
    for (int k = 0, used = 0; k < n && used < t->num_fewshot; k++) {
        const TaskItem *x = &t->items[perm[k]];
        if (perm[k] == i || !x->context) continue;
        const char *ans = t->type == TASK_MC ? (x->choices ? x->choices[x->answer] : "") : (x->target ? x->target : "");
        size_t need = len + strlen(x->context) + strlen(t->target_delim) + strlen(ans) + strlen(t->fewshot_sep) + 1;
        if (need > cap) { cap = need * 2; out = realloc(out, cap); if (!out) exit(3); }
        len += (size_t)sprintf(out + len, "%s%s%s%s", x->context, t->target_delim, ans, t->fewshot_sep);
        used++;
    }
    free(perm);
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
 * tokens from index from[c] on, and whether each was greedy */
static int score_seqs(Model *m, Vec *seq, const int *from, int ns, double *ll, int *greedy, Err *e) {
    int maxlen = 0, total = 0, wanted = 0;
    for (int c = 0; c < ns; c++) {
        if (seq[c].n > maxlen) maxlen = seq[c].n;
        total += seq[c].n;
        wanted += seq[c].n - from[c];
        if (from[c] < 1 || from[c] >= seq[c].n) return err_set(e, "nothing to score (empty continuation or context)");
    }
    if (maxlen > 1 << 20) return err_set(e, "a sequence of %d tokens is longer than the 1M positions supported", maxlen);
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
        for (int c = 0; c < ns; c++) {
            ll[c] = 0;
            greedy[c] = 1;
            for (int i = from[c]; i < seq[c].n; i++, row++) {
                int g;
                ll[c] += logprob(lg + (size_t)row * V, V, seq[c].v[i], &g);
                greedy[c] &= g;
            }
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

static int run_mc(Model *m, Tokenizer *tok, const Task *t, FILE *samples, EvalResult *r, Err *e) {
    int n = t->n_items, rc = 0, bos = bos_of(tok);
    double *acc = xcalloc((size_t)n, sizeof(double)), *accn = xcalloc((size_t)n, sizeof(double)), *gr = xcalloc((size_t)n, sizeof(double));
    for (int i = 0; i < n && !rc; i++) {
        const TaskItem *it = &t->items[i];
        int nc = it->n_choices;
        Vec *seq = xcalloc((size_t)nc, sizeof *seq), ctx = { 0 };
        int *from = xmalloc(sizeof(int) * (size_t)nc), *greedy = xmalloc(sizeof(int) * (size_t)nc);
        double *ll = xmalloc(sizeof(double) * (size_t)nc);
        for (int c = 0; c < nc && !rc; c++) {
            if (it->choice_ids) {                  /* token ids: context then choice */
                if (it->context_ids) vpush(&seq[c], it->context_ids, it->n_context_ids);
                else rc = err_set(e, "%s: item %d: choices_ids need context_ids", t->path, i + 1);
                from[c] = seq[c].n;
                if (!rc) vpush(&seq[c], it->choice_ids[c], it->n_choice_ids[c]);
                continue;
            }
            char *pre = fewshot_prefix(t, i);
            char *context = xmalloc(strlen(pre) + strlen(it->context ? it->context : "") + 1);
            sprintf(context, "%s%s", pre, it->context ? it->context : "");
            char *cont = xmalloc(strlen(t->target_delim) + strlen(it->choices[c]) + strlen(context) + 1);
            sprintf(cont, "%s%s", t->target_delim, it->choices[c]);
            size_t cl = strlen(context), sp = 0;          /* trailing spaces move to the continuation */
            while (sp < cl && context[cl - 1 - sp] == ' ') sp++;
            if (sp) { memmove(cont + sp, cont, strlen(cont) + 1); memcpy(cont, context + cl - sp, sp); context[cl - sp] = 0; }
            Vec whole = { 0 };
            if (!*context) {
                if (bos < 0) rc = err_set(e, "%s: item %d: empty context and the tokenizer has no BOS", t->path, i + 1);
                else { vpush(&seq[c], &bos, 1); from[c] = 1; rc = encode(tok, cont, &whole, e); if (!rc) vpush(&seq[c], whole.v, whole.n); }
            } else {
                char *both = xmalloc(strlen(context) + strlen(cont) + 1);
                sprintf(both, "%s%s", context, cont);
                rc = encode(tok, both, &whole, e);
                if (!rc) rc = encode(tok, context, &ctx, e);
                if (!rc) { vpush(&seq[c], whole.v, whole.n); from[c] = ctx.n; }
                free(both);
            }
            free(whole.v); free(pre); free(context); free(cont);
        }
        if (!rc) rc = score_seqs(m, seq, from, nc, ll, greedy, e);
        if (rc) item_err(e, t->path, i + 1);
        else {
            int best = 0, bestn = 0;
            double *norm = xmalloc(sizeof(double) * (size_t)nc);
            for (int c = 0; c < nc; c++) {
                int len = it->choices ? utf8_chars(it->choices[c]) : it->n_choice_ids[c];
                norm[c] = ll[c] / (len > 0 ? len : 1);
                if (ll[c] > ll[best]) best = c;
                if (norm[c] > norm[bestn]) bestn = c;
            }
            acc[i] = best == it->answer; accn[i] = bestn == it->answer; gr[i] = greedy[it->answer];
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
        for (int c = 0; c < nc; c++) free(seq[c].v);
        free(seq); free(ctx.v); free(from); free(greedy); free(ll);
    }
    if (!rc) {
        double a = 0, an = 0, g = 0;
        for (int i = 0; i < n; i++) { a += acc[i]; an += accn[i]; g += gr[i]; }
        put_metric(r, "acc", a / n, bootstrap_se(acc, n, t->bootstrap, t->seed), n, "highest log-likelihood");
        put_metric(r, "acc_norm", an / n, bootstrap_se(accn, n, t->bootstrap, t->seed + 1), n,
                   t->items[0].choices ? "log-likelihood / choice length in characters"
                                       : "log-likelihood / choice length in tokens (token-id items)");
        put_metric(r, "greedy", g / n, bootstrap_se(gr, n, t->bootstrap, t->seed + 2), n, "the right choice is the greedy continuation");
        r->item_score = acc;
        r->n_items = n;
        acc = NULL;
    }
    free(acc); free(accn); free(gr);
    return rc;
}

static int count_words(const char *s) {
    int n = 0, in = 0;
    for (; *s; s++) { int sp = isspace((unsigned char)*s); if (!sp && !in) n++; in = !sp; }
    return n;
}

static int run_ppl(Model *m, Tokenizer *tok, const Task *t, FILE *samples, EvalResult *r, Err *e) {
    int n = t->n_items, rc = 0, bos = bos_of(tok);
    double *dll = xcalloc((size_t)n, sizeof(double)), *dtok = xcalloc((size_t)n, sizeof(double));
    double *dwords = xcalloc((size_t)n, sizeof(double)), *dbytes = xcalloc((size_t)n, sizeof(double));
    for (int i = 0; i < n && !rc; i++) {
        const TaskItem *it = &t->items[i];
        Vec all = { 0 };
        if (bos >= 0) vpush(&all, &bos, 1);
        if (it->text_ids) vpush(&all, it->text_ids, it->n_text_ids);
        else {
            Vec x = { 0 };
            rc = encode(tok, it->text, &x, e);
            if (!rc) vpush(&all, x.v, x.n);
            free(x.v);
        }
        /* windows: predict all[s .. s+W) from all[s-1 .. s+W-1) */
        for (int s = 1; s < all.n && !rc; s += t->window) {
            int np = all.n - s < t->window ? all.n - s : t->window;
            Vec w = { 0 };
            vpush(&w, all.v + s - 1, np + 1);
            int from = 1, g = 0;
            double ll = 0;
            rc = score_seqs(m, &w, &from, 1, &ll, &g, e);
            if (!rc) dll[i] += ll;
            dtok[i] += np;
            free(w.v);
        }
        dwords[i] = it->text ? count_words(it->text) : 0;
        dbytes[i] = it->text ? strlen(it->text) : 0;
        r->tokens_scored += dtok[i];
        if (rc) rc = item_err(e, t->path, i + 1);
        else if (samples) {
            fprintf(samples, "{\"index\": %d, \"loglikelihood\": %.17g, \"tokens\": %.0f, \"words\": %.0f, \"bytes\": %.0f}\n",
                    i, dll[i], dtok[i], dwords[i], dbytes[i]);
        }
        free(all.v);
    }
    if (!rc) {
        double L = 0, T = 0, W = 0, B = 0;
        for (int i = 0; i < n; i++) { L += dll[i]; T += dtok[i]; W += dwords[i]; B += dbytes[i]; }
        /* bootstrap the corpus-level ratios over documents */
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
        put_metric(r, "token_perplexity", T > 0 ? exp(-L / T) : NAN, -1, n, "exp(-sum ll / tokens scored)");
        if (W > 0) put_metric(r, "word_perplexity", exp(-L / W), -1, n, "exp(-sum ll / whitespace-separated words)");
        if (B > 0) put_metric(r, "bits_per_byte", -L / B / log(2.0), se, n, "-sum ll / UTF-8 bytes / ln 2");
        r->n_items = n;
        r->item_score = dll;
        dll = NULL;
    }
    free(dll); free(dtok); free(dwords); free(dbytes);
    return rc;
}

static void trim(const char *s, size_t n, const char **o, size_t *on) {
    while (n && isspace((unsigned char)*s)) { s++; n--; }
    while (n && isspace((unsigned char)s[n - 1])) n--;
    *o = s; *on = n;
}

static int run_gen(Model *m, Tokenizer *tok, const Task *t, FILE *samples, EvalResult *r, Err *e) {
    int n = t->n_items, rc = 0, V = m->cfg.vocab;
    double *em = xcalloc((size_t)n, sizeof(double));
    for (int i = 0; i < n && !rc; i++) {
        const TaskItem *it = &t->items[i];
        char *pre = fewshot_prefix(t, i);
        char *ctx = xmalloc(strlen(pre) + strlen(it->context) + 1);
        sprintf(ctx, "%s%s", pre, it->context);
        Vec in = { 0 };
        rc = encode(tok, ctx, &in, e);
        KVCache kv;
        if (!rc) rc = kv_create(&kv, m, 1, in.n + t->max_gen + 1, e);
        char *text = NULL;
        if (!rc) {
            float *lg = xmalloc(sizeof(float) * (size_t)V);
            int *seq = xcalloc((size_t)in.n, sizeof(int)), *pos = xmalloc(sizeof(int) * (size_t)in.n);
            unsigned char *want = xcalloc((size_t)in.n, 1);
            for (int k = 0; k < in.n; k++) pos[k] = k;
            want[in.n - 1] = 1;
            rc = in.n ? model_forward(m, &kv, in.n, in.v, seq, pos, want, lg, NULL, e) : err_set(e, "empty context");
            Vec out = { 0 };
            for (int g = 0; g < t->max_gen && !rc; g++) {
                int best = 0;
                for (int v = 1; v < V; v++) if (lg[v] > lg[best]) best = v;
                vpush(&out, &best, 1);
                free(text);
                text = tok_decode(tok, out.v, out.n, NULL, e);
                if (!text) { rc = -1; break; }
                int stop = 0;
                for (int u = 0; u < it->n_until && !stop; u++) {
                    char *at = strstr(text, it->until[u]);
                    if (at) { *at = 0; stop = 1; }
                }
                if (stop) break;
                int p = in.n + g, s0 = 0;
                rc = model_forward(m, &kv, 1, &best, &s0, &p, NULL, lg, NULL, e);
            }
            free(lg); free(seq); free(pos); free(want); free(out.v);
            kv_free(&kv);
        }
        if (rc) rc = item_err(e, t->path, i + 1);
        else {
            const char *a, *b;
            size_t la, lb;
            trim(text ? text : "", text ? strlen(text) : 0, &a, &la);
            trim(it->target, strlen(it->target), &b, &lb);
            em[i] = la == lb && !memcmp(a, b, la);
            if (samples) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "index", i);
                cJSON_AddStringToObject(o, "context", it->context);
                cJSON_AddStringToObject(o, "target", it->target);
                cJSON_AddStringToObject(o, "prediction", text ? text : "");
                cJSON_AddBoolToObject(o, "exact_match", em[i] != 0);
                char *line = cJSON_PrintUnformatted(o);
                fprintf(samples, "%s\n", line);
                free(line);
                cJSON_Delete(o);
            }
        }
        free(text); free(pre); free(ctx); free(in.v);
    }
    if (!rc) {
        double s = 0;
        for (int i = 0; i < n; i++) s += em[i];
        put_metric(r, "exact_match", s / n, bootstrap_se(em, n, t->bootstrap, t->seed), n, "greedy output up to a stop string, trimmed");
        r->item_score = em;
        r->n_items = n;
        em = NULL;
    }
    free(em);
    return rc;
}

int eval_run(Model *m, Tokenizer *tok, const Task *t, FILE *samples, EvalResult *r, Err *e) {
    memset(r, 0, sizeof *r);
    if (tok && tok_vocab_size(tok) > m->cfg.vocab)
        return err_set(e, "the tokenizer has %d ids but the model's vocabulary is %d", tok_vocab_size(tok), m->cfg.vocab);
    int rc = -1;
    switch (t->type) {
    case TASK_MC: rc = run_mc(m, tok, t, samples, r, e); break;
    case TASK_PPL: rc = run_ppl(m, tok, t, samples, r, e); break;
    case TASK_GEN:
        if (!tok) return err_set(e, "%s: generation tasks need the model's tokenizer.json", t->path);
        rc = run_gen(m, tok, t, samples, r, e);
        break;
    }
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

void eval_result_free(EvalResult *r) { free(r->item_score); memset(r, 0, sizeof *r); }
