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
    cJSON_Delete(it->doc);
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

/* the items of the JSON Lines file path into *items (n), of type *type (inferred from
 * the first item when infer) */
static int load_items(const char *path, TaskType *type, int infer, TaskItem **items, int *n_items, Err *e) {
    size_t len;
    *items = NULL; *n_items = 0;
    char *buf = read_file(path, 1u << 30, &len, e);
    if (!buf) return -1;
    int rc = 0, line = 0, cap = 64;
    *items = xcalloc((size_t)cap, sizeof **items);
    char *end = buf + len;
    for (char *p = buf; p < end && !rc;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        line++;
        size_t n = (size_t)(nl - p);
        if (n > MAX_LINE) { rc = err_set(e, "%s: line %d is %zu bytes, more than the %u allowed", path, line, n, MAX_LINE); break; }
        int blank = 1;
        for (size_t i = 0; i < n && blank; i++) blank = isspace((unsigned char)p[i]);
        if (!blank) {
            cJSON *j = cJSON_ParseWithLength(p, n);
            if (!j) { rc = err_set(e, "%s: line %d: invalid JSON", path, line); break; }
            if (infer && *n_items == 0 && infer_type(j, type)) {
                cJSON_Delete(j);
                rc = err_set(e, "%s: line %d: cannot tell the task type (needs choices, text or target)", path, line);
                break;
            }
            if (*n_items == cap) { cap *= 2; *items = realloc(*items, sizeof **items * (size_t)cap); if (!*items) exit(3); }
            TaskItem *it = &(*items)[*n_items];
            rc = parse_item(path, line, j, *type, it, e);
            (*n_items)++;
            it->doc = j;                 /* kept: lm-eval compares docs as dicts */
        }
        p = nl + 1;
    }
    free(buf);
    if (!rc && *n_items == 0) rc = err_set(e, "%s: no items", path);
    return rc;
}

static int load_jsonl(Task *t, int infer, Err *e) { return load_items(t->path, &t->type, infer, &t->items, &t->n_items, e); }

/* a path relative to the definition's directory */
static void rel_path(char *out, size_t cap, const char *def, const char *file) {
    const char *sl = strrchr(def, '/');
    if (file[0] == '/' || !sl) snprintf(out, cap, "%s", file);
    else snprintf(out, cap, "%.*s/%s", (int)(sl - def), def, file);
}

/* a list of non-empty strings (JSON array) into *out, *n; -1 when it is not one */
static int str_list(const cJSON *a, char ***out, int *n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > 64) return -1;
    *n = cJSON_GetArraySize(a);
    *out = xcalloc((size_t)*n + 1, sizeof **out);
    int i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsString(x) || !*x->valuestring) return -1;
        (*out)[i] = xstrdup(x->valuestring);
    }
    return 0;
}

int task_load(const char *path, Task *t, Err *e) {
    memset(t, 0, sizeof *t);
    t->max_gen = 256; t->seed = 1; t->fewshot_seed = 1234;
    t->fewshot_sep = xstrdup("\n\n");
    t->target_delim = xstrdup(" ");
    t->description = xstrdup("");
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
            rel_path(t->path, sizeof t->path, path, fl->valuestring);
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
            const char *seeds[2] = { "seed", "fewshot_seed" };
            uint64_t *seedv[2] = { &t->seed, &t->fewshot_seed };
            for (int k = 0; k < 2 && !rc; k++) {
                const cJSON *sd = cJSON_GetObjectItemCaseSensitive(j, seeds[k]);
                if (sd && (!cJSON_IsNumber(sd) || sd->valuedouble < 0 || sd->valuedouble > 9007199254740992.0 || sd->valuedouble != floor(sd->valuedouble)))
                    rc = err_set(e, "%s: \"%s\" must be a non-negative integer", path, seeds[k]);
                else if (sd) *seedv[k] = (uint64_t)sd->valuedouble;
            }
            const cJSON *bo = cJSON_GetObjectItemCaseSensitive(j, "bos");
            if (bo && !rc) {
                if (cJSON_IsString(bo) && !strcmp(bo->valuestring, "auto")) t->bos = TASK_BOS_AUTO;
                else if (cJSON_IsString(bo) && !strcmp(bo->valuestring, "on")) t->bos = TASK_BOS_ON;
                else if (cJSON_IsString(bo) && !strcmp(bo->valuestring, "off")) t->bos = TASK_BOS_OFF;
                else rc = err_set(e, "%s: \"bos\" is \"auto\", \"on\" or \"off\"", path);
            }
            const cJSON *un = cJSON_GetObjectItemCaseSensitive(j, "until");
            if (un && !rc && str_list(un, &t->until, &t->n_until)) rc = err_set(e, "%s: \"until\" must be a list of non-empty strings", path);
            const cJSON *rx = cJSON_GetObjectItemCaseSensitive(j, "regexes_to_ignore");
            if (rx && !rc && str_list(rx, &t->regexes, &t->n_regexes)) rc = err_set(e, "%s: \"regexes_to_ignore\" must be a list of non-empty strings", path);
            const char *flags[3] = { "ignore_case", "ignore_punctuation", "ignore_numbers" };
            int *flagv[3] = { &t->ignore_case, &t->ignore_punct, &t->ignore_numbers };
            for (int k = 0; k < 3 && !rc; k++) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, flags[k]);
                if (f && !cJSON_IsBool(f)) rc = err_set(e, "%s: \"%s\" must be true or false", path, flags[k]);
                else *flagv[k] = cJSON_IsTrue(f);
            }
            static const char *known[3][5] = { { "acc", "acc_norm", "greedy", NULL, NULL },
                                               { "token_perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", NULL },
                                               { "exact_match", NULL, NULL, NULL, NULL } };
            const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "metrics");
            if (ms && (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) > 8)) rc = err_set(e, "%s: \"metrics\" must be a list of names", path);
            for (const cJSON *x = ms ? ms->child : NULL; x && !rc; x = x->next) {
                int ok = 0;
                for (int k = 0; k < 4 && known[t->type][k] && cJSON_IsString(x); k++) ok |= !strcmp(known[t->type][k], x->valuestring);
                if (!ok) rc = err_set(e, "%s: metric \"%s\" is not one of %s's (%s%s%s%s%s%s%s)", path, cJSON_IsString(x) ? x->valuestring : "?",
                                      ty->valuestring, known[t->type][0], known[t->type][1] ? ", " : "", known[t->type][1] ? known[t->type][1] : "",
                                      known[t->type][2] ? ", " : "", known[t->type][2] ? known[t->type][2] : "",
                                      known[t->type][3] ? ", " : "", known[t->type][3] ? known[t->type][3] : "");
                else snprintf(t->metrics[t->n_metrics++], 32, "%s", x->valuestring);
            }
            char *s1 = opt_str(j, "fewshot_separator"), *s2 = opt_str(j, "target_delimiter"), *s3 = opt_str(j, "description");
            if (s1) { free(t->fewshot_sep); t->fewshot_sep = s1; }
            if (s2) { free(t->target_delim); t->target_delim = s2; }
            if (s3) { free(t->description); t->description = s3; }
            const cJSON *ff = cJSON_GetObjectItemCaseSensitive(j, "fewshot_file");
            if (ff && !cJSON_IsString(ff)) rc = err_set(e, "%s: \"fewshot_file\" must be a file name", path);
            else if (ff) rel_path(t->fewshot_path, sizeof t->fewshot_path, path, ff->valuestring);
        }
        cJSON_Delete(j);
        if (!rc) rc = load_jsonl(t, 0, e);
        if (!rc && t->fewshot_path[0]) {
            char *a = realpath(t->path, NULL), *b = realpath(t->fewshot_path, NULL);
            t->fewshot_same = a && b && !strcmp(a, b);
            free(a); free(b);
            rc = load_items(t->fewshot_path, &t->type, 0, &t->fewshot_items, &t->n_fewshot_items, e);
            if (rc) err_prefix(e, "%s: fewshot_file", path);
        }
    }
    /* lm-eval's random.sample refuses more than the pool (n + 1 when the item is left out) */
    int pool = t->fewshot_items ? t->n_fewshot_items : t->n_items, need = t->num_fewshot + (t->fewshot_same ? 1 : 0);
    if (!rc && t->num_fewshot > 0 && need > pool)
        rc = err_set(e, "%s: %d few-shot examples need %d items to draw from, %s has %d", path, t->num_fewshot, need,
                     t->fewshot_items ? t->fewshot_path : t->path, pool);
    if (rc) task_free(t);
    return rc;
}

void task_free(Task *t) {
    for (int i = 0; i < t->n_items; i++) item_free(&t->items[i]);
    for (int i = 0; i < t->n_fewshot_items; i++) item_free(&t->fewshot_items[i]);
    for (int i = 0; i < t->n_until; i++) free(t->until[i]);
    for (int i = 0; i < t->n_regexes; i++) free(t->regexes[i]);
    free(t->regexes);
    free(t->items); free(t->fewshot_items); free(t->until); free(t->fewshot_sep); free(t->target_delim); free(t->description);
    memset(t, 0, sizeof *t);
}

