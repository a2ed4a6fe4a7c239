/*
 * task.c - task definitions and their JSON Lines items (see eval.h and
 * evals/README.md). Parsing only: no model, so the fuzz target links this alone.
 */
#include "eval.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_LINE (16u << 20)        /* one task line: 16 MiB */

/* ---- loading ------------------------------------------------------------------------ */
static char *opt_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
}

static int ids_of(const cJSON *a, int **out, int *n) {
    if (!cJSON_IsArray(a)) return -1;
    int k = cJSON_GetArraySize(a), i = 0;
    *out = xmalloc(sizeof(int) * (size_t)(k + 1));
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 16777216 || x->valuedouble != (int)x->valuedouble) { free(*out); *out = NULL; return -1; }
        (*out)[i] = x->valueint;
    }
    *n = k;
    return 0;
}

/* an integral JSON number within int range, without undefined casts */
static int json_int(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -2147483648.0 && v->valuedouble <= 2147483647.0) ||
        v->valuedouble != floor(v->valuedouble)) return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static void item_free(TaskItem *it) {
    free(it->context); free(it->text); free(it->target);
    free(it->context_ids); free(it->text_ids); free(it->target_ids);
    for (int i = 0; i < it->n_choices; i++) { if (it->choices) free(it->choices[i]); if (it->choice_ids) free(it->choice_ids[i]); }
    free(it->choices); free(it->choice_ids); free(it->n_choice_ids);
    for (int i = 0; i < it->n_until; i++) free(it->until[i]);
    free(it->until);
}

static int parse_item(const char *path, int line, const cJSON *j, TaskType type, TaskItem *it, Err *e) {
    memset(it, 0, sizeof *it);
    if (!cJSON_IsObject(j)) return err_set(e, "%s: line %d: expected a JSON object", path, line);
    const cJSON *cids = cJSON_GetObjectItemCaseSensitive(j, "context_ids");
    it->context = opt_str(j, "context");
    if (cids && ids_of(cids, &it->context_ids, &it->n_context_ids)) return err_set(e, "%s: line %d: context_ids must be token ids", path, line);
    if (type == TASK_MC) {
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices"), *chi = cJSON_GetObjectItemCaseSensitive(j, "choices_ids");
        const cJSON *ans = cJSON_GetObjectItemCaseSensitive(j, "answer");
        if (!it->context && !cids) return err_set(e, "%s: line %d: missing \"context\"", path, line);
        const cJSON *use = ch ? ch : chi;
        if (!cJSON_IsArray(use) || cJSON_GetArraySize(use) == 0) return err_set(e, "%s: line %d: \"choices\" must be a non-empty list", path, line);
        it->n_choices = cJSON_GetArraySize(use);
        if (ch) it->choices = xcalloc((size_t)it->n_choices, sizeof *it->choices);
        else { it->choice_ids = xcalloc((size_t)it->n_choices, sizeof *it->choice_ids); it->n_choice_ids = xcalloc((size_t)it->n_choices, sizeof(int)); }
        int i = 0;
        for (const cJSON *c = use->child; c; c = c->next, i++) {
            if (ch) {
                if (!cJSON_IsString(c) || !*c->valuestring) return err_set(e, "%s: line %d: choice %d must be a non-empty string", path, line, i);
                it->choices[i] = xstrdup(c->valuestring);
            } else if (ids_of(c, &it->choice_ids[i], &it->n_choice_ids[i]) || it->n_choice_ids[i] == 0) {
                return err_set(e, "%s: line %d: choices_ids[%d] must be a non-empty list of token ids", path, line, i);
            }
        }
        /* found by fuzz_task: a huge answer was cast to int before any range check */
        if (json_int(ans, &it->answer)) return err_set(e, "%s: line %d: \"answer\" must be an integer", path, line);
        if (it->answer < 0 || it->answer >= it->n_choices)
            return err_set(e, "%s: line %d: answer %d is out of range (%d choices)", path, line, it->answer, it->n_choices);
    } else if (type == TASK_PPL) {
        it->text = opt_str(j, "text");
        const cJSON *tid = cJSON_GetObjectItemCaseSensitive(j, "text_ids");
        if (tid && ids_of(tid, &it->text_ids, &it->n_text_ids)) return err_set(e, "%s: line %d: text_ids must be token ids", path, line);
        if (!it->text && !tid) return err_set(e, "%s: line %d: missing \"text\"", path, line);
    } else {
        it->target = opt_str(j, "target");
        if (!it->context || !it->target) return err_set(e, "%s: line %d: generation items need \"context\" and \"target\" text", path, line);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "until");
        if (u && !cJSON_IsArray(u)) return err_set(e, "%s: line %d: \"until\" must be a list of strings", path, line);
        it->n_until = u ? cJSON_GetArraySize(u) : 0;
        it->until = xcalloc((size_t)it->n_until + 1, sizeof *it->until);
        int i = 0;
        for (const cJSON *x = u ? u->child : NULL; x; x = x->next, i++) {
            if (!cJSON_IsString(x) || !*x->valuestring) return err_set(e, "%s: line %d: until[%d] must be a non-empty string", path, line, i);
            it->until[i] = xstrdup(x->valuestring);
        }
    }
    return 0;
}

static int infer_type(const cJSON *j, TaskType *t) {
    if (cJSON_GetObjectItemCaseSensitive(j, "choices") || cJSON_GetObjectItemCaseSensitive(j, "choices_ids")) *t = TASK_MC;
    else if (cJSON_GetObjectItemCaseSensitive(j, "target")) *t = TASK_GEN;
    else if (cJSON_GetObjectItemCaseSensitive(j, "text") || cJSON_GetObjectItemCaseSensitive(j, "text_ids")) *t = TASK_PPL;
    else return -1;
    return 0;
}

static int load_jsonl(Task *t, int infer, Err *e) {
    size_t len;
    char *buf = read_file(t->path, 1u << 30, &len, e);
    if (!buf) return -1;
    int rc = 0, line = 0, cap = 64;
    t->items = xcalloc((size_t)cap, sizeof *t->items);
    char *end = buf + len;
    for (char *p = buf; p < end && !rc;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        line++;
        size_t n = (size_t)(nl - p);
        if (n > MAX_LINE) { rc = err_set(e, "%s: line %d is %zu bytes, more than the %u allowed", t->path, line, n, MAX_LINE); break; }
        int blank = 1;
        for (size_t i = 0; i < n && blank; i++) blank = isspace((unsigned char)p[i]);
        if (!blank) {
            cJSON *j = cJSON_ParseWithLength(p, n);
            if (!j) { rc = err_set(e, "%s: line %d: invalid JSON", t->path, line); break; }
            if (infer && t->n_items == 0 && infer_type(j, &t->type)) {
                cJSON_Delete(j);
                rc = err_set(e, "%s: line %d: cannot tell the task type (needs choices, text or target)", t->path, line);
                break;
            }
            if (t->n_items == cap) { cap *= 2; t->items = realloc(t->items, sizeof *t->items * (size_t)cap); if (!t->items) exit(3); }
            rc = parse_item(t->path, line, j, t->type, &t->items[t->n_items], e);
            t->n_items++;
            cJSON_Delete(j);
        }
        p = nl + 1;
    }
    free(buf);
    if (!rc && t->n_items == 0) rc = err_set(e, "%s: no items", t->path);
    return rc;
}

int task_load(const char *path, Task *t, Err *e) {
    memset(t, 0, sizeof *t);
    t->window = 512; t->max_gen = 64; t->bootstrap = 1000; t->seed = 1;
    t->fewshot_sep = xstrdup("\n\n");
    t->target_delim = xstrdup(" ");
    size_t pl = strlen(path);
    int rc = 0;
    if (pl > 6 && !strcmp(path + pl - 6, ".jsonl")) {
        snprintf(t->path, sizeof t->path, "%s", path);
        const char *sl = strrchr(path, '/');
        snprintf(t->name, sizeof t->name, "%.*s", (int)(strlen(sl ? sl + 1 : path) - 6), sl ? sl + 1 : path);
        rc = load_jsonl(t, 1, e);
    } else {
        char *txt = read_file(path, 1u << 20, NULL, e);
        if (!txt) { task_free(t); return -1; }
        cJSON *j = cJSON_Parse(txt);
        free(txt);
        if (!cJSON_IsObject(j)) { cJSON_Delete(j); task_free(t); return err_set(e, "%s: malformed JSON (a task definition object)", path); }
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(j, "name"), *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
        const cJSON *fl = cJSON_GetObjectItemCaseSensitive(j, "file");
        if (!cJSON_IsString(nm) || !cJSON_IsString(fl) || !cJSON_IsString(ty)) rc = err_set(e, "%s: a task needs \"name\", \"type\" and \"file\"", path);
        else if (!strcmp(ty->valuestring, "multiple_choice")) t->type = TASK_MC;
        else if (!strcmp(ty->valuestring, "perplexity")) t->type = TASK_PPL;
        else if (!strcmp(ty->valuestring, "generation")) t->type = TASK_GEN;
        else rc = err_set(e, "%s: type \"%s\" (multiple_choice, perplexity, generation)", path, ty->valuestring);
        if (!rc) {
            snprintf(t->name, sizeof t->name, "%s", nm->valuestring);
            const char *sl = strrchr(path, '/');
            if (fl->valuestring[0] == '/' || !sl) snprintf(t->path, sizeof t->path, "%s", fl->valuestring);
            else snprintf(t->path, sizeof t->path, "%.*s/%s", (int)(sl - path), path, fl->valuestring);
            const struct { const char *k; int *v; int lo, hi; } ints[] = {
                { "num_fewshot", &t->num_fewshot, 0, 64 }, { "window", &t->window, 2, 1 << 20 },
                { "max_gen_tokens", &t->max_gen, 1, 1 << 16 }, { "bootstrap", &t->bootstrap, 0, 100000 } };
            for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !rc; i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, ints[i].k);
                if (!v) continue;
                int x;
                if (json_int(v, &x) || x < ints[i].lo || x > ints[i].hi)
                    rc = err_set(e, "%s: \"%s\" must be an integer in %d..%d", path, ints[i].k, ints[i].lo, ints[i].hi);
                else *ints[i].v = x;
            }
            const cJSON *sd = cJSON_GetObjectItemCaseSensitive(j, "seed");
            if (cJSON_IsNumber(sd)) t->seed = (uint64_t)sd->valuedouble;
            static const char *known[3][4] = { { "acc", "acc_norm", "greedy", NULL },
                                               { "token_perplexity", "word_perplexity", "bits_per_byte", NULL },
                                               { "exact_match", NULL, NULL, NULL } };
            const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "metrics");
            if (ms && (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) > 8)) rc = err_set(e, "%s: \"metrics\" must be a list of names", path);
            for (const cJSON *x = ms ? ms->child : NULL; x && !rc; x = x->next) {
                int ok = 0;
                for (int k = 0; k < 4 && known[t->type][k] && cJSON_IsString(x); k++) ok |= !strcmp(known[t->type][k], x->valuestring);
                if (!ok) rc = err_set(e, "%s: metric \"%s\" is not one of %s's (%s%s%s%s%s)", path, cJSON_IsString(x) ? x->valuestring : "?",
                                      ty->valuestring, known[t->type][0], known[t->type][1] ? ", " : "", known[t->type][1] ? known[t->type][1] : "",
                                      known[t->type][2] ? ", " : "", known[t->type][2] ? known[t->type][2] : "");
                else snprintf(t->metrics[t->n_metrics++], 32, "%s", x->valuestring);
            }
            char *s1 = opt_str(j, "fewshot_separator"), *s2 = opt_str(j, "target_delimiter");
            if (s1) { free(t->fewshot_sep); t->fewshot_sep = s1; }
            if (s2) { free(t->target_delim); t->target_delim = s2; }
        }
        cJSON_Delete(j);
        if (!rc) rc = load_jsonl(t, 0, e);
    }
    if (!rc && t->num_fewshot >= t->n_items && t->num_fewshot > 0)
        rc = err_set(e, "%s: %d few-shot examples need more than %d items", path, t->num_fewshot, t->n_items);
    if (rc) task_free(t);
    return rc;
}

void task_free(Task *t) {
    for (int i = 0; i < t->n_items; i++) item_free(&t->items[i]);
    free(t->items); free(t->fewshot_sep); free(t->target_delim);
    memset(t, 0, sizeof *t);
}

