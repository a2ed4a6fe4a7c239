/*
 * test_tasks.c - the tasks shipped in suites/tasks/ (see suites/tasks/README.md),
 * loaded with the project's own loader (evals/task.c).
 *
 * everyday-mc: the documented item and category counts, 4 distinct non-empty choices
 * per item, the answer index in 0..3, no context twice, each answer position used by
 * 15-35% of items, and every arithmetic item ("Question: What is A OP B?\nAnswer:",
 * OP one of +, -, times, divided by) recomputed here and matched against its marked
 * choice. A copy with one answer moved must be caught by the same checker.
 * austen-pp: the documented number of documents and of whitespace-separated words.
 * suites/tasks/check_tasks.py runs the same checks in Python.
 */
#include "test.h"
#include "eval.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>

#define MC_DEF "suites/tasks/everyday-mc.json"
#define MC_FILE "suites/tasks/everyday-mc.jsonl"
#define TEXT_DEF "suites/tasks/austen-pp.json"

/* the counts suites/tasks/README.md states */
static const struct { const char *name; int n; } categories[] = {
    { "arithmetic", 60 }, { "knowledge", 70 }, { "common_sense", 60 }, { "language", 50 } };
enum { MC_ITEMS = 240, TEXT_DOCS = 5, TEXT_WORDS = 5334, TEXT_WORDS_MIN = 3000, TEXT_WORDS_MAX = 6000 };

static int load(const char *path, Task *t) {
    Err e = { "" };
    if (task_load(path, t, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return -1; }
    return 0;
}

/* a non-negative decimal integer at *p (no sign, no leading zero unless "0") */
static int read_uint(const char **p, long *v) {
    const char *s = *p;
    if (!isdigit((unsigned char)*s) || (s[0] == '0' && isdigit((unsigned char)s[1]))) return -1;
    long x = 0;
    for (; isdigit((unsigned char)*s); s++) {
        if (x > 100000000) return -1;
        x = x * 10 + (*s - '0');
    }
    *p = s; *v = x;
    return 0;
}

/* 1 and *want: the context is an arithmetic question with a whole-number answer;
 * -1: an arithmetic question without one (a division with a remainder or by zero);
 * 0: not an arithmetic question */
static int arith_value(const char *ctx, long *want) {
    static const char head[] = "Question: What is ";
    static const struct { const char *s; char op; } ops[] = { { " + ", '+' }, { " - ", '-' }, { " times ", '*' }, { " divided by ", '/' } };
    if (!ctx || strncmp(ctx, head, sizeof head - 1)) return 0;
    const char *p = ctx + sizeof head - 1;
    long a, b;
    if (read_uint(&p, &a)) return 0;
    char op = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0] && !op; k++)
        if (!strncmp(p, ops[k].s, strlen(ops[k].s))) { op = ops[k].op; p += strlen(ops[k].s); }
    if (!op || read_uint(&p, &b) || strcmp(p, "?\nAnswer:")) return 0;
    switch (op) {
    case '+': *want = a + b; break;
    case '-': *want = a - b; break;
    case '*': *want = a * b; break;
    default: if (b == 0 || a % b) return -1; *want = a / b; break;
    }
    return 1;
}

/* Recomputes every arithmetic item: the marked choice must be the value and no other
 * choice may be. Returns the number of wrong items (the first's index in *first) and
 * the number of arithmetic items in *n_arith. */
static int arith_check(const Task *t, int *n_arith, int *first) {
    int bad = 0;
    *n_arith = 0; *first = -1;
    for (int i = 0; i < t->n_items; i++) {
        const TaskItem *it = &t->items[i];
        long want;
        int form = it->choices ? arith_value(it->context, &want) : 0;
        if (!form) continue;
        (*n_arith)++;
        if (form < 0) { if (bad++ == 0) *first = i; continue; }
        char s[32];
        snprintf(s, sizeof s, "%ld", want);
        int ok = it->answer >= 0 && it->answer < it->n_choices && !strcmp(it->choices[it->answer], s);
        for (int c = 0; c < it->n_choices && ok; c++) ok = c == it->answer || strcmp(it->choices[c], s);
        if (!ok) { if (bad++ == 0) *first = i; }
    }
    return bad;
}

static void t_mc_items(void) {
    Task t;
    if (load(MC_DEF, &t)) return;
    CHECK(!strcmp(t.name, "everyday-mc") && t.type == TASK_MC && t.num_fewshot == 0 && t.bootstrap >= 100 && !strcmp(t.target_delim, " "),
          "definition: name %s, type %d, %d-shot, bootstrap %d, delimiter \"%s\"", t.name, (int)t.type, t.num_fewshot, t.bootstrap, t.target_delim);
    CHECK(t.n_items >= 200 && t.n_items == MC_ITEMS, "%d items, documented %d (at least 200)", t.n_items, MC_ITEMS);
    int bad = 0;
    for (int i = 0; i < t.n_items; i++) {
        const TaskItem *it = &t.items[i];
        int ok = it->context && *it->context && it->choices && it->n_choices == 4 && it->answer >= 0 && it->answer <= 3;
        for (int c = 0; c < it->n_choices && ok && it->choices; c++) {
            ok = it->choices[c][0] && !isspace((unsigned char)it->choices[c][0]);
            for (int d = 0; d < c && ok; d++) ok = strcmp(it->choices[c], it->choices[d]) != 0;
        }
        if (!ok && bad++ < 5) t_fail(__FILE__, __LINE__, "item %d: %d choices, answer %d, or an empty, space-led or repeated choice",
                                     i + 1, it->n_choices, it->answer);
    }
    CHECK(bad == 0, "%d malformed items", bad);
    task_free(&t);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void t_mc_unique(void) {
    Task t;
    if (load(MC_DEF, &t)) return;
    const char **ctx = xmalloc(sizeof(char *) * (size_t)t.n_items);
    int n = 0;
    for (int i = 0; i < t.n_items; i++) if (t.items[i].context) ctx[n++] = t.items[i].context;
    qsort(ctx, (size_t)n, sizeof *ctx, cmp_str);
    int dup = 0;
    for (int i = 1; i < n; i++)
        if (!strcmp(ctx[i - 1], ctx[i]) && dup++ < 5) t_fail(__FILE__, __LINE__, "context twice: \"%.60s\"", ctx[i]);
    CHECK(n == t.n_items && dup == 0, "%d contexts of %d items, %d duplicated", n, t.n_items, dup);
    free(ctx);
    task_free(&t);
}

static void t_mc_positions(void) {
    Task t;
    if (load(MC_DEF, &t)) return;
    int count[4] = { 0 };
    for (int i = 0; i < t.n_items; i++) if (t.items[i].answer >= 0 && t.items[i].answer < 4) count[t.items[i].answer]++;
    for (int k = 0; k < 4; k++) {
        double share = (double)count[k] / t.n_items;
        CHECK(share >= 0.15 && share <= 0.35, "answer position %d holds %d of %d items (%.1f%%)", k, count[k], t.n_items, 100 * share);
    }
    task_free(&t);
}

/* the "category" field the loader ignores: counts against the README's, and the
 * arithmetic category is exactly the items in arithmetic form */
static void t_mc_categories(void) {
    Err e = { "" };
    size_t len;
    char *buf = read_file(MC_FILE, 16u << 20, &len, &e);
    if (!buf) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    int got[4] = { 0 }, other = 0, mismatch = 0, line = 0;
    char *end = buf + len;
    for (char *p = buf, *nl; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        line++;
        if (nl == p) continue;
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(j, "category"), *ctx = cJSON_GetObjectItemCaseSensitive(j, "context");
        int k = 0;
        while (k < 4 && !(cJSON_IsString(cat) && !strcmp(cat->valuestring, categories[k].name))) k++;
        if (k < 4) got[k]++;
        else other++;
        long v;
        int is_arith = cJSON_IsString(ctx) && arith_value(ctx->valuestring, &v) != 0;
        if (is_arith != (k == 0) && mismatch++ < 5)
            t_fail(__FILE__, __LINE__, "line %d: category %s but %sin arithmetic form", line, cJSON_IsString(cat) ? cat->valuestring : "?", is_arith ? "" : "not ");
        cJSON_Delete(j);
    }
    free(buf);
    for (int k = 0; k < 4; k++) CHECK(got[k] == categories[k].n, "%s: %d items, documented %d", categories[k].name, got[k], categories[k].n);
    CHECK(other == 0 && mismatch == 0, "%d items of no known category, %d category/form mismatches", other, mismatch);
}

static void t_mc_arithmetic(void) {
    Task t;
    if (load(MC_DEF, &t)) return;
    int n_arith, first, bad = arith_check(&t, &n_arith, &first);
    CHECK(bad == 0, "%d arithmetic items disagree with their recomputed value; the first: \"%s\"", bad, first >= 0 ? t.items[first].context : "");
    CHECK(n_arith == categories[0].n, "%d arithmetic items recomputed, documented %d", n_arith, categories[0].n);
    /* the parser itself */
    long v;
    CHECK(arith_value("Question: What is 17 + 25?\nAnswer:", &v) == 1 && v == 42, "17 + 25");
    CHECK(arith_value("Question: What is 63 divided by 7?\nAnswer:", &v) == 1 && v == 9, "63 / 7");
    CHECK(arith_value("Question: What is 12 times 11?\nAnswer:", &v) == 1 && v == 132, "12 * 11");
    CHECK(arith_value("Question: What is 7 divided by 2?\nAnswer:", &v) < 0 && arith_value("Question: What is 7 divided by 0?\nAnswer:", &v) < 0,
          "a division with a remainder or by zero has no whole-number answer");
    CHECK(!arith_value("Question: What is 07 + 1?\nAnswer:", &v) &&
          !arith_value("Question: What is 7 + 1?", &v) && !arith_value("Question: What is the capital of France?\nAnswer:", &v),
          "other forms are not arithmetic items");
    task_free(&t);
}

/* A copy of the task file with one arithmetic answer index moved, and another with the
 * second number of one addition raised by one, must each be reported by arith_check at
 * that item and nowhere else. */
static void t_mc_wrong_caught(void) {
    Err e = { "" };
    size_t len;
    char *buf = read_file(MC_FILE, 16u << 20, &len, &e);
    if (!buf) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    for (int variant = 0; variant < 2; variant++) {
        char path[800];
        snprintf(path, sizeof path, "%s/everyday-mc-wrong%d.jsonl", g_tmp, variant);
        FILE *f = fopen(path, "w");
        if (!f) { t_fail(__FILE__, __LINE__, "cannot write %s", path); break; }
        int item = 0, target = -1;
        char *end = buf + len;
        for (char *p = buf, *nl; p < end; p = nl + 1) {
            nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) nl = end;
            if (nl == p) continue;
            cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
            cJSON *ctx = cJSON_GetObjectItemCaseSensitive(j, "context"), *ans = cJSON_GetObjectItemCaseSensitive(j, "answer");
            long v;
            if (target < 0 && cJSON_IsString(ctx) && arith_value(ctx->valuestring, &v) > 0 && cJSON_IsNumber(ans) &&
                (variant == 0 || strstr(ctx->valuestring, " + "))) {
                target = item;
                if (variant == 0) cJSON_SetNumberValue(ans, ((ans->valueint + 1) % 4));
                else {                                   /* "What is A OP B?" -> "What is A OP B+1?" */
                    char q[256];
                    snprintf(q, sizeof q, "%s", ctx->valuestring);
                    char *qm = strrchr(q, '?'), *d = qm - 1;
                    while (d > q && isdigit((unsigned char)d[-1])) d--;
                    char tail[64];
                    snprintf(tail, sizeof tail, "%ld%s", strtol(d, NULL, 10) + 1, qm);
                    snprintf(d, sizeof q - (size_t)(d - q), "%s", tail);
                    cJSON_SetValuestring(ctx, q);
                }
            }
            char *s = cJSON_PrintUnformatted(j);
            fprintf(f, "%s\n", s);
            free(s);
            cJSON_Delete(j);
            item++;
        }
        fclose(f);
        Task t;
        if (load(path, &t)) break;
        int n_arith, first, bad = arith_check(&t, &n_arith, &first);
        CHECK(target >= 0 && bad == 1 && first == target, "%s: %d wrong items reported (want 1), first at %d, corrupted %d",
              variant ? "changed operand" : "moved answer", bad, first, target);
        task_free(&t);
    }
    free(buf);
}

static void t_text(void) {
    Task t;
    if (load(TEXT_DEF, &t)) return;
    CHECK(!strcmp(t.name, "austen-pp") && t.type == TASK_PPL && t.bootstrap >= 100, "definition: name %s, type %d, bootstrap %d",
          t.name, (int)t.type, t.bootstrap);
    CHECK(t.n_items == TEXT_DOCS, "%d documents, documented %d", t.n_items, TEXT_DOCS);
    long words = 0;
    int odd = 0;
    for (int i = 0; i < t.n_items; i++) {
        const char *s = t.items[i].text;
        if (!s || !*s) { odd++; continue; }
        for (const char *p = s; *p; p++) {
            if (!isspace((unsigned char)*p) && (p == s || isspace((unsigned char)p[-1]))) words++;
            odd += *p == '_' || *p == '\r' || (unsigned char)*p >= 0x80;   /* italics marks removed; ASCII */
        }
    }
    CHECK(odd == 0, "%d empty documents or underscore, CR or non-ASCII bytes", odd);
    CHECK(words == TEXT_WORDS && words >= TEXT_WORDS_MIN && words <= TEXT_WORDS_MAX, "%ld words, documented %d (range %d..%d)", words,
          TEXT_WORDS, TEXT_WORDS_MIN, TEXT_WORDS_MAX);
    task_free(&t);
}

const TestDef task_tests[] = {
    { "task everyday-mc: items, 4 distinct choices", t_mc_items },
    { "task everyday-mc: no duplicate contexts", t_mc_unique },
    { "task everyday-mc: answer positions 15-35%", t_mc_positions },
    { "task everyday-mc: categories as documented", t_mc_categories },
    { "task everyday-mc: arithmetic recomputed", t_mc_arithmetic },
    { "task everyday-mc: a wrong answer is caught", t_mc_wrong_caught },
    { "task austen-pp: documents and words", t_text },
};
const int n_task_tests = sizeof task_tests / sizeof task_tests[0];
