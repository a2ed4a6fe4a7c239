/*
 * task.c - task definitions and their JSON Lines items (see eval.h and
 * evals/README.md). Parsing only: no model, so the fuzz target links this alone.
 *
 * Items come as effbench's own fields, or as a dataset's own rows turned into them by
 * the definition's templates (lm-eval's doc_to_text / doc_to_choice / doc_to_target, a
 * Jinja subset: task_render) after a named preprocessor (lm-eval's process_docs:
 * "hellaswag"), as suites/tasks/standard/ uses them. Not here: Jinja's control flow,
 * arithmetic, and Python functions beyond .strip() and .index().
 */
#include "eval.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <utf8proc.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (16u << 20)        /* one task line: 16 MiB */

/* ---- templates (lm-eval's doc_to_text / doc_to_choice / doc_to_target) ----------------
 * A Jinja subset, enough for the standard tasks' YAMLs: literal text and {{expr}} with
 *   expr    := unary ('+' unary)*               strings joined, lists concatenated
 *   unary   := primary ('|' filter)*            filter: trim | join('sep')
 *   primary := '[' expr (',' expr)* ']' | path | 'string'
 *   path    := name ('.' name | '.strip()' | '.split(' sep ')' | '.index(' expr ')'
 *                    | '[' expr ']' | '[' [expr] ':' [expr] ']')*
 * A dict's key by '.' or ['key'], a list's element by [i] (negative from the end, as
 * Python). Values are cJSON; text renders strings as they are and integers in decimal.
 * Bounded: templates of 4 KiB, 16 levels of nesting, lists of 256. */
#define TPL_MAX 4096
typedef struct { const char *p; const cJSON *doc; int depth; Err *e; } Tpl;

static void tpl_ws(Tpl *T) { while (*T->p == ' ' || *T->p == '\t' || *T->p == '\n') T->p++; }
static int tpl_name(Tpl *T, char *out, size_t cap) {
    size_t n = 0;
    while (isalnum((unsigned char)T->p[n]) || T->p[n] == '_') n++;
    if (n == 0 || n >= cap || isdigit((unsigned char)T->p[0])) return err_set(T->e, "expected a name at \"%.12s\"", T->p);
    memcpy(out, T->p, n); out[n] = 0;
    T->p += n;
    return 0;
}
/* a quoted string literal ('...' or "...", with \\ escapes of the quote and backslash) */
static cJSON *tpl_string(Tpl *T) {
    char q = *T->p++, buf[TPL_MAX];
    size_t n = 0;
    for (; *T->p && *T->p != q && n + 1 < sizeof buf; T->p++) {
        if (*T->p == '\\' && (T->p[1] == q || T->p[1] == '\\')) T->p++;
        else if (*T->p == '\\' && T->p[1] == 'n') { T->p++; buf[n++] = '\n'; continue; }
        buf[n++] = *T->p;
    }
    if (*T->p != q) return err_set(T->e, "unterminated string"), NULL;
    T->p++; buf[n] = 0;
    return cJSON_CreateString(buf);
}
/* Python's str.isspace for one UTF-8 character at s (its length in *len), 0 if not */
static int py_space_at(const unsigned char *s, int *len) {
    *len = 1;
    if (*s == ' ' || (*s >= 9 && *s <= 13) || (*s >= 0x1c && *s <= 0x1f)) return 1;
    uint32_t c = 0;
    if ((*s & 0xe0) == 0xc0 && (s[1] & 0xc0) == 0x80) { c = (uint32_t)(*s & 0x1f) << 6 | (s[1] & 0x3f); *len = 2; }
    else if ((*s & 0xf0) == 0xe0 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) { c = (uint32_t)(*s & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f); *len = 3; }
    else return 0;
    return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}
/* Python's str.strip() (Unicode whitespace); a new string */
static char *py_strip(const char *s) {
    const unsigned char *a = (const unsigned char *)s, *b = a + strlen(s);
    int l;
    while (a < b && py_space_at(a, &l)) a += l;
    const unsigned char *end = a;            /* the end of the last non-space character */
    for (const unsigned char *q = a; q < b;) { int sp = py_space_at(q, &l); q += l; if (!sp) end = q; }
    char *o = xmalloc((size_t)(end - a) + 1);
    memcpy(o, a, (size_t)(end - a)); o[end - a] = 0;
    return o;
}
/* a value as text: a string as it is, an integer in decimal (Jinja's str()) */
static int tpl_text(Tpl *T, const cJSON *v, char **out) {
    char num[32];
    if (cJSON_IsString(v)) { *out = xstrdup(v->valuestring); return 0; }
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15) {
        snprintf(num, sizeof num, "%.0f", v->valuedouble);
        *out = xstrdup(num);
        return 0;
    }
    if (cJSON_IsBool(v)) { *out = xstrdup(cJSON_IsTrue(v) ? "True" : "False"); return 0; }
    return err_set(T->e, "a value that is not a string or an integer in text");
}

static cJSON *tpl_expr(Tpl *T);

static cJSON *tpl_index(Tpl *T, cJSON *base, const cJSON *key) {
    cJSON *r = NULL;
    if (cJSON_IsArray(base) && cJSON_IsNumber(key) && key->valuedouble == floor(key->valuedouble)) {
        int n = cJSON_GetArraySize(base);
        double k = key->valuedouble < 0 ? key->valuedouble + n : key->valuedouble;
        if (k >= 0 && k < n) r = cJSON_Duplicate(cJSON_GetArrayItem(base, (int)k), 1);
        else err_set(T->e, "index %.0f out of range (%d elements)", key->valuedouble, n);
    } else if (cJSON_IsObject(base) && cJSON_IsString(key)) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(base, key->valuestring);
        if (v) r = cJSON_Duplicate(v, 1);
        else err_set(T->e, "no field \"%.64s\"", key->valuestring);
    } else err_set(T->e, "cannot index a %s", cJSON_IsArray(base) ? "list with that" : cJSON_IsObject(base) ? "dict with that" : "value that is not a list or dict");
    cJSON_Delete(base);
    return r;
}

/* base[lo:hi] with Python's bounds (negative from the end, clamped); null: open end */
static cJSON *tpl_slice(Tpl *T, cJSON *base, const cJSON *lo, const cJSON *hi) {
    int n = cJSON_IsArray(base) ? cJSON_GetArraySize(base) : cJSON_IsString(base) ? (int)strlen(base->valuestring) : -1;
    if (n < 0 || (!cJSON_IsNull(lo) && !cJSON_IsNumber(lo)) || (!cJSON_IsNull(hi) && !cJSON_IsNumber(hi))) {
        cJSON_Delete(base);
        return err_set(T->e, "a slice of a value that is not a list or string, or with bounds that are not integers"), NULL;
    }
    double b[2] = { cJSON_IsNull(lo) ? 0 : lo->valuedouble, cJSON_IsNull(hi) ? n : hi->valuedouble };
    for (int k = 0; k < 2; k++) { if (b[k] < 0) b[k] += n; if (b[k] < 0) b[k] = 0; if (b[k] > n) b[k] = n; }
    int a = (int)b[0], z = (int)b[1] > a ? (int)b[1] : a;
    cJSON *r;
    if (cJSON_IsString(base)) {
        for (int k = 0; k < n; k++) if ((unsigned char)base->valuestring[k] >= 0x80) { cJSON_Delete(base); return err_set(T->e, "a slice of a string that is not ASCII"), NULL; }
        char *s = xmalloc((size_t)(z - a) + 1);
        memcpy(s, base->valuestring + a, (size_t)(z - a)); s[z - a] = 0;
        r = cJSON_CreateString(s);
        free(s);
    } else {
        r = cJSON_CreateArray();
        for (int k = a; k < z; k++) cJSON_AddItemToArray(r, cJSON_Duplicate(cJSON_GetArrayItem(base, k), 1));
    }
    cJSON_Delete(base);
    return r;
}

static cJSON *tpl_primary(Tpl *T) {
    tpl_ws(T);
    if (*T->p == '[') {                                  /* a list literal */
        T->p++;
        cJSON *a = cJSON_CreateArray();
        for (int n = 0;; n++) {
            cJSON *x = n < 256 ? tpl_expr(T) : (err_set(T->e, "a list of more than 256"), NULL);
            if (!x) { cJSON_Delete(a); return NULL; }
            cJSON_AddItemToArray(a, x);
            tpl_ws(T);
            if (*T->p == ',') { T->p++; continue; }
            if (*T->p == ']') { T->p++; return a; }
            cJSON_Delete(a);
            return err_set(T->e, "expected ',' or ']' at \"%.12s\"", T->p), NULL;
        }
    }
    if (*T->p == '\'' || *T->p == '"') return tpl_string(T);
    if (isdigit((unsigned char)*T->p) || (*T->p == '-' && isdigit((unsigned char)T->p[1]))) {
        char *end;
        long v = strtol(T->p, &end, 10);
        if (v > 1000000 || v < -1000000) return err_set(T->e, "an integer out of range"), NULL;
        T->p = end;
        return cJSON_CreateNumber((double)v);
    }
    char name[128];
    if (tpl_name(T, name, sizeof name)) return NULL;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(T->doc, name);
    if (!f) return err_set(T->e, "the row has no field \"%s\"", name), NULL;
    cJSON *v = cJSON_Duplicate(f, 1);
    for (;;) {
        if (*T->p == '.') {
            T->p++;
            if (tpl_name(T, name, sizeof name)) { cJSON_Delete(v); return NULL; }
            if (!strcmp(name, "strip") && T->p[0] == '(' && T->p[1] == ')') {
                T->p += 2;
                if (!cJSON_IsString(v)) { cJSON_Delete(v); return err_set(T->e, ".strip() of a value that is not a string"), NULL; }
                char *s = py_strip(v->valuestring);
                cJSON_Delete(v);
                v = cJSON_CreateString(s);
                free(s);
            } else if (!strcmp(name, "split") && *T->p == '(') {   /* str.split(sep): every piece, empty ones too */
                T->p++; tpl_ws(T);
                cJSON *sep = (*T->p == '\'' || *T->p == '"') ? tpl_string(T) : NULL;
                tpl_ws(T);
                if (!sep || *T->p != ')' || !*sep->valuestring || !cJSON_IsString(v)) {
                    err_set(T->e, !sep || *T->p != ')' ? ".split takes one string (a separator)" : !cJSON_IsString(v) ? ".split() of a value that is not a string" : ".split(''): an empty separator");
                    cJSON_Delete(sep); cJSON_Delete(v); return NULL;
                }
                T->p++;
                cJSON *a = cJSON_CreateArray();
                const char *q = v->valuestring, *sp = sep->valuestring;
                size_t sl = strlen(sp);
                for (;;) {
                    const char *h = strstr(q, sp);
                    size_t n = h ? (size_t)(h - q) : strlen(q);
                    char *piece = xmalloc(n + 1);
                    memcpy(piece, q, n); piece[n] = 0;
                    cJSON_AddItemToArray(a, cJSON_CreateString(piece));
                    free(piece);
                    if (!h) break;
                    q = h + sl;
                }
                cJSON_Delete(sep); cJSON_Delete(v);
                v = a;
            } else if (!strcmp(name, "index") && *T->p == '(') {
                T->p++;
                cJSON *x = tpl_expr(T);
                tpl_ws(T);
                if (!x || *T->p != ')') { cJSON_Delete(x); cJSON_Delete(v); return x ? err_set(T->e, "expected ')'"), NULL : NULL; }
                T->p++;
                int at = -1, k = 0;
                for (const cJSON *c = cJSON_IsArray(v) ? v->child : NULL; c && at < 0; c = c->next, k++) if (cJSON_Compare(c, x, 1)) at = k;
                if (at < 0) { char *xs = cJSON_PrintUnformatted(x); err_set(T->e, ".index(%.64s): not in the list", xs ? xs : "?"); free(xs); }
                cJSON_Delete(x); cJSON_Delete(v);
                if (at < 0) return NULL;
                v = cJSON_CreateNumber(at);
            } else {
                cJSON *key = cJSON_CreateString(name);
                v = tpl_index(T, v, key);
                cJSON_Delete(key);
                if (!v) return NULL;
            }
        } else if (*T->p == '[') {
            T->p++;
            tpl_ws(T);
            cJSON *key = *T->p == ':' ? cJSON_CreateNull() : tpl_expr(T);
            tpl_ws(T);
            if (key && *T->p == ':') {                   /* a slice [a:b] of a list or string, as Python's */
                T->p++; tpl_ws(T);
                cJSON *hi = *T->p == ']' ? cJSON_CreateNull() : tpl_expr(T);
                tpl_ws(T);
                if (!hi || *T->p != ']') { cJSON_Delete(key); cJSON_Delete(hi); cJSON_Delete(v); return hi ? err_set(T->e, "expected ']'"), NULL : NULL; }
                T->p++;
                v = tpl_slice(T, v, key, hi);
                cJSON_Delete(key); cJSON_Delete(hi);
                if (!v) return NULL;
                continue;
            }
            if (!key || *T->p != ']') { cJSON_Delete(key); cJSON_Delete(v); return key ? err_set(T->e, "expected ']'"), NULL : NULL; }
            T->p++;
            v = tpl_index(T, v, key);
            cJSON_Delete(key);
            if (!v) return NULL;
        } else return v;
    }
}

static cJSON *tpl_unary(Tpl *T) {
    if (++T->depth > 16) return err_set(T->e, "nested more than 16 deep"), NULL;
    cJSON *v = tpl_primary(T);
    tpl_ws(T);
    while (v && *T->p == '|') {
        T->p++;
        tpl_ws(T);
        char name[32];
        if (tpl_name(T, name, sizeof name)) { cJSON_Delete(v); v = NULL; break; }
        if (!strcmp(name, "trim")) {                     /* Jinja's trim: str.strip() */
            char *s = NULL;
            if (tpl_text(T, v, &s)) { cJSON_Delete(v); v = NULL; break; }
            char *t = py_strip(s);
            cJSON_Delete(v);
            v = cJSON_CreateString(t);
            free(s); free(t);
        } else if (!strcmp(name, "join")) {              /* join('sep'): the items as text */
            tpl_ws(T);
            cJSON *sep = NULL;
            if (*T->p == '(') {
                T->p++; tpl_ws(T);
                sep = (*T->p == '\'' || *T->p == '"') ? tpl_string(T) : NULL;
                tpl_ws(T);
                if (!sep || *T->p != ')') { cJSON_Delete(sep); cJSON_Delete(v); v = NULL; if (!sep) err_set(T->e, "join takes a string"); else err_set(T->e, "expected ')'"); break; }
                T->p++;
            }
            if (!cJSON_IsArray(v)) { cJSON_Delete(sep); cJSON_Delete(v); v = NULL; err_set(T->e, "join of a value that is not a list"); break; }
            size_t cap = 64, n = 0;
            char *b = xmalloc(cap);
            b[0] = 0;
            int bad = 0;
            for (const cJSON *c = v->child; c && !bad; c = c->next) {
                char *s = NULL;
                if (tpl_text(T, c, &s)) { bad = 1; break; }
                const char *d = c != v->child && sep ? sep->valuestring : "";
                size_t need = n + strlen(d) + strlen(s) + 1;
                if (need > cap) { cap = need * 2; b = realloc(b, cap); if (!b) exit(3); }
                n += (size_t)sprintf(b + n, "%s%s", d, s);
                free(s);
            }
            cJSON_Delete(sep); cJSON_Delete(v);
            v = bad ? NULL : cJSON_CreateString(b);
            free(b);
        } else { err_set(T->e, "unknown filter \"%s\" (trim, join)", name); cJSON_Delete(v); v = NULL; }
        tpl_ws(T);
    }
    T->depth--;
    return v;
}

/* expr ('+' expr)*: strings joined, lists concatenated (Jinja's +; filters bind first) */
static cJSON *tpl_expr(Tpl *T) {
    cJSON *v = tpl_unary(T);
    tpl_ws(T);
    while (v && *T->p == '+') {
        T->p++;
        cJSON *w = tpl_unary(T);
        tpl_ws(T);
        if (!w) { cJSON_Delete(v); return NULL; }
        if (cJSON_IsString(v) && cJSON_IsString(w)) {
            char *s = xmalloc(strlen(v->valuestring) + strlen(w->valuestring) + 1);
            sprintf(s, "%s%s", v->valuestring, w->valuestring);
            cJSON_Delete(v);
            v = cJSON_CreateString(s);
            free(s);
        } else if (cJSON_IsArray(v) && cJSON_IsArray(w) && cJSON_GetArraySize(v) + cJSON_GetArraySize(w) <= 256) {
            for (const cJSON *c = w->child; c; c = c->next) cJSON_AddItemToArray(v, cJSON_Duplicate(c, 1));
        } else { err_set(T->e, "'+' of values that are not both strings or both lists"); cJSON_Delete(v); v = NULL; }
        cJSON_Delete(w);
    }
    return v;
}

cJSON *task_render(const char *tpl, const cJSON *doc, Err *e) {
    if (strlen(tpl) > TPL_MAX) return err_set(e, "a template of more than %d bytes", TPL_MAX), NULL;
    if (!strstr(tpl, "{{")) {                            /* a field name (lm-eval: in features) */
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(doc, tpl);
        return f ? cJSON_Duplicate(f, 1) : cJSON_CreateString(tpl);
    }
    Tpl T = { tpl, doc, 0, e };
    size_t cap = 256, n = 0;
    char *out = xmalloc(cap);
    out[0] = 0;
    while (*T.p) {
        const char *open = strstr(T.p, "{{");
        size_t lit = open ? (size_t)(open - T.p) : strlen(T.p);
        if (n + lit + 1 > cap) { cap = (n + lit + 1) * 2; out = realloc(out, cap); if (!out) exit(3); }
        memcpy(out + n, T.p, lit); n += lit; out[n] = 0;
        T.p += lit;
        if (!open) break;
        int whole = open == tpl;
        T.p += 2;
        cJSON *v = tpl_expr(&T);
        tpl_ws(&T);
        if (v && (T.p[0] != '}' || T.p[1] != '}')) { cJSON_Delete(v); v = NULL; err_set(e, "expected '}}' at \"%.12s\"", T.p); }
        if (!v) { free(out); return NULL; }
        T.p += 2;
        if (whole && !*T.p) { free(out); return v; }     /* exactly one {{expr}}: its value */
        char *s = NULL;
        int rc = tpl_text(&T, v, &s);
        cJSON_Delete(v);
        if (rc) { free(out); return NULL; }
        size_t l = strlen(s);
        if (n + l + 1 > cap) { cap = (n + l + 1) * 2; out = realloc(out, cap); if (!out) exit(3); }
        memcpy(out + n, s, l + 1); n += l;
        free(s);
    }
    cJSON *r = cJSON_CreateString(out);
    free(out);
    return r;
}

/* ---- preprocessors (lm-eval's process_docs, by name) ---------------------------------- */
/* hellaswag/utils.py preprocess(): strip, " [title]" -> ". ", re.sub(r"\[.*?\]", "")
 * ('.' stops at a newline, as Python's without DOTALL), then "  " -> " " once, left to right */
static char *hs_preprocess(const char *in) {
    char *s = py_strip(in);
    size_t n = strlen(s);
    char *a = xmalloc(n * 2 + 1), *b = xmalloc(n * 2 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (!strncmp(s + i, " [title]", 8)) { memcpy(a + k, ". ", 2); k += 2; i += 8; }
        else a[k++] = s[i++];
    }
    a[k] = 0;
    size_t m = 0;
    for (size_t i = 0; i < k;) {
        if (a[i] == '[') {
            size_t j = i + 1;
            while (j < k && a[j] != ']' && a[j] != '\n') j++;
            if (j < k && a[j] == ']') { i = j + 1; continue; }
        }
        b[m++] = a[i++];
    }
    b[m] = 0;
    k = 0;
    for (size_t i = 0; i < m;) {
        if (b[i] == ' ' && b[i + 1] == ' ') { a[k++] = ' '; i += 2; }
        else a[k++] = b[i++];
    }
    a[k] = 0;
    free(s); free(b);
    return a;
}

/* Python's str.capitalize(): the first character in title case, the rest in lower case
 * (utf8proc's simple mappings; Python's special multi-character cases such as U+0130 are
 * not reproduced); invalid UTF-8 bytes kept as they are */
static char *py_capitalize(const char *in) {
    size_t n = strlen(in), k = 0;
    char *o = xmalloc(n * 4 + 1);
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)in + i, (utf8proc_ssize_t)(n - i), &c);
        if (l <= 0) { o[k++] = in[i++]; continue; }
        c = i == 0 ? utf8proc_totitle(c) : utf8proc_tolower(c);
        k += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)o + k);
        i += (size_t)l;
    }
    o[k] = 0;
    return o;
}

/* hellaswag/utils.py process_docs: query, choices and gold added to the row */
static int pre_hellaswag(cJSON *doc, Err *e) {
    const char *need[4] = { "activity_label", "ctx_a", "ctx_b", "label" };
    for (int k = 0; k < 4; k++)
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, need[k]))) return err_set(e, "hellaswag: \"%s\" must be a string", need[k]);
    const cJSON *end = cJSON_GetObjectItemCaseSensitive(doc, "endings");
    if (!cJSON_IsArray(end) || cJSON_GetArraySize(end) > 256) return err_set(e, "hellaswag: \"endings\" must be a list of strings");
    for (const cJSON *x = end->child; x; x = x->next) if (!cJSON_IsString(x)) return err_set(e, "hellaswag: \"endings\" must be a list of strings");
    const char *lab = cJSON_GetObjectItemCaseSensitive(doc, "label")->valuestring;
    int gold = 0;
    if (!*lab || strlen(lab) > 6 || strspn(lab, "0123456789") != strlen(lab)) return err_set(e, "hellaswag: \"label\" \"%.16s\" is not a number", lab);
    gold = atoi(lab);
    char *cb = py_capitalize(cJSON_GetObjectItemCaseSensitive(doc, "ctx_b")->valuestring);
    const char *al = cJSON_GetObjectItemCaseSensitive(doc, "activity_label")->valuestring, *ca = cJSON_GetObjectItemCaseSensitive(doc, "ctx_a")->valuestring;
    char *q = xmalloc(strlen(al) + strlen(ca) + strlen(cb) + 4);
    sprintf(q, "%s: %s %s", al, ca, cb);
    char *qp = hs_preprocess(q);
    cJSON *ch = cJSON_CreateArray();
    for (const cJSON *x = end->child; x; x = x->next) { char *p = hs_preprocess(x->valuestring); cJSON_AddItemToArray(ch, cJSON_CreateString(p)); free(p); }
    const char *keys[3] = { "query", "choices", "gold" };
    for (int k = 0; k < 3; k++) cJSON_DeleteItemFromObjectCaseSensitive(doc, keys[k]);
    cJSON_AddStringToObject(doc, "query", qp);
    cJSON_AddItemToObject(doc, "choices", ch);
    cJSON_AddNumberToObject(doc, "gold", gold);
    free(cb); free(q); free(qp);
    return 0;
}

/* winogrande/preprocess_winogrande.py: the sentence up to its first "_" followed by each
 * option (the contexts), the rest after the "_" stripped (the continuation), and the
 * answer "1" / "2" as 0 / 1; added as "contexts", "continuation" and "gold" */
static int pre_winogrande(cJSON *doc, Err *e) {
    const char *need[4] = { "sentence", "option1", "option2", "answer" };
    for (int k = 0; k < 4; k++)
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, need[k]))) return err_set(e, "winogrande: \"%s\" must be a string", need[k]);
    const char *sn = cJSON_GetObjectItemCaseSensitive(doc, "sentence")->valuestring, *ans = cJSON_GetObjectItemCaseSensitive(doc, "answer")->valuestring;
    const char *us = strchr(sn, '_');
    if (!us) return err_set(e, "winogrande: the sentence has no \"_\"");
    if (strcmp(ans, "1") && strcmp(ans, "2")) return err_set(e, "winogrande: \"answer\" \"%.16s\" is not \"1\" or \"2\"", ans);
    cJSON *ctx = cJSON_CreateArray();
    for (int k = 1; k <= 2; k++) {
        const char *op = cJSON_GetObjectItemCaseSensitive(doc, need[k])->valuestring;
        char *c = xmalloc((size_t)(us - sn) + strlen(op) + 1);
        sprintf(c, "%.*s%s", (int)(us - sn), sn, op);
        cJSON_AddItemToArray(ctx, cJSON_CreateString(c));
        free(c);
    }
    char *cont = py_strip(us + 1);
    const char *keys[3] = { "contexts", "continuation", "gold" };
    for (int k = 0; k < 3; k++) cJSON_DeleteItemFromObjectCaseSensitive(doc, keys[k]);
    cJSON_AddItemToObject(doc, "contexts", ctx);
    cJSON_AddStringToObject(doc, "continuation", cont);
    cJSON_AddNumberToObject(doc, "gold", ans[0] == '1' ? 0 : 1);
    free(cont);
    return 0;
}

/* Python's s.replace(from, to): every non-overlapping occurrence, left to right; frees s */
static char *py_replace(char *s, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *q = strstr(s, from); q; q = strstr(q + fl, from)) n++;
    if (!n) return s;
    char *o = xmalloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1), *w = o;
    const char *q = s;
    for (const char *h = strstr(q, from); h; h = strstr(q, from)) {
        memcpy(w, q, (size_t)(h - q)); w += h - q;
        memcpy(w, to, tl); w += tl;
        q = h + fl;
    }
    strcpy(w, q);
    free(s);
    return o;
}

/* re.sub(pattern, repl, s) on PCRE2 (UTF, Unicode classes; repl in PCRE2's $1 syntax);
 * frees s; NULL with e set when PCRE2 fails (invalid UTF-8, its limits) */
static char *re_sub(char *s, const char *pattern, const char *repl, Err *e) {
    int ec;
    PCRE2_SIZE eo, len = strlen(s) * 2 + 64;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!re) { free(s); return err_set(e, "internal regex %s does not compile", pattern), NULL; }
    char *o = NULL;
    int rc = PCRE2_ERROR_NOMEMORY;
    for (int tries = 0; tries < 2 && rc == PCRE2_ERROR_NOMEMORY; tries++) {
        free(o);
        o = xmalloc(len);
        rc = pcre2_substitute(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH,
                              NULL, NULL, (PCRE2_SPTR)repl, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)o, &len);
    }
    pcre2_code_free(re);
    free(s);
    if (rc < 0) { free(o); return err_set(e, "the text is not valid UTF-8 or too hard for the regex (PCRE2 error %d)", rc), NULL; }
    return o;
}

/* wikitext/preprocess_wikitext.py wikitext_detokenizer(doc["page"]), step by step;
 * added as "detokenized" */
static int pre_wikitext(cJSON *doc, Err *e) {
    const cJSON *pg = cJSON_GetObjectItemCaseSensitive(doc, "page");
    if (!cJSON_IsString(pg)) return err_set(e, "wikitext: \"page\" must be a string");
    static const char *rep1[][2] = { { "s '", "s'" } };
    static const char *rep2[][2] = { { " @-@ ", "-" }, { " @,@ ", "," }, { " @.@ ", "." }, { " : ", ": " }, { " ; ", "; " },
                                     { " . ", ". " }, { " ! ", "! " }, { " ? ", "? " }, { " , ", ", " } };
    static const char *subs[][2] = { { "\\(\\s*([^\\)]*?)\\s*\\)", "($1)" }, { "\\[\\s*([^\\]]*?)\\s*\\]", "[$1]" },
                                     { "\\{\\s*([^}]*?)\\s*\\}", "{$1}" }, { "\"\\s*([^\"]*?)\\s*\"", "\"$1\"" },
                                     { "'\\s*([^']*?)\\s*'", "'$1'" } };
    static const char *rep3[][2] = { { "= = = =", "====" }, { "= = =", "===" }, { "= =", "==" }, { " \u00b0 ", "\u00b0" },
                                     { " \n", "\n" }, { "\n ", "\n" }, { " N ", " 1 " }, { " 's", "'s" } };
    char *s = py_replace(xstrdup(pg->valuestring), rep1[0][0], rep1[0][1]);
    s = re_sub(s, "/' [0-9]/", "/'[0-9]/", e);
    for (size_t k = 0; s && k < sizeof rep2 / sizeof *rep2; k++) s = py_replace(s, rep2[k][0], rep2[k][1]);
    for (size_t k = 0; s && k < sizeof subs / sizeof *subs; k++) s = re_sub(s, subs[k][0], subs[k][1], e);
    for (size_t k = 0; s && k < sizeof rep3 / sizeof *rep3; k++) s = py_replace(s, rep3[k][0], rep3[k][1]);
    if (!s) return err_prefix(e, "wikitext");
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "detokenized");
    cJSON_AddStringToObject(doc, "detokenized", s);
    free(s);
    return 0;
}

/* The row as an item of the task's type: the templates rendered over it (after the
 * preprocessor) into {context, choices, answer} / {text} / {context, target}. */
static cJSON *row_to_item(const Task *t, cJSON *doc, Err *e) {
    if (!cJSON_IsObject(doc)) return err_set(e, "expected a JSON object"), NULL;
    if (!strcmp(t->preprocess, "hellaswag") && pre_hellaswag(doc, e)) return NULL;
    if (!strcmp(t->preprocess, "winogrande") && pre_winogrande(doc, e)) return NULL;
    if (!strcmp(t->preprocess, "wikitext") && pre_wikitext(doc, e)) return NULL;
    cJSON *it = cJSON_CreateObject(), *v;
    if (t->loglikelihood) {          /* one request: (doc_to_text, doc_to_target) */
        const char *tp[2] = { t->doc_to_text, t->doc_to_target }, *fk[2] = { "context", "target" }, *nm[2] = { "doc_to_text", "doc_to_target" };
        for (int k = 0; k < 2; k++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(doc, fk[k]);
            v = tp[k] ? task_render(tp[k], doc, e) : f ? cJSON_Duplicate(f, 1) : (err_set(e, "missing \"%s\"", fk[k]), NULL);
            if (!v) { if (tp[k]) err_prefix(e, "%s", nm[k]); goto fail; }
            if (!cJSON_IsString(v) || (k == 1 && !*v->valuestring)) { cJSON_Delete(v); err_set(e, "%s: not a %sstring", nm[k], k ? "non-empty " : ""); goto fail; }
            if (k == 0) cJSON_AddItemToObject(it, "context", v);
            else { cJSON *a = cJSON_AddArrayToObject(it, "choices"); cJSON_AddItemToArray(a, v); }
        }
        cJSON_AddNumberToObject(it, "answer", 0);
        return it;
    }
    if (t->partial) {                /* doc_to_text: the gold index; choices: contexts; target: the continuation */
        cJSON *ch = NULL, *tg = NULL;
        if (!t->doc_to_text || !t->doc_to_choice || !t->doc_to_target) { err_set(e, "partial_scoring needs doc_to_text, doc_to_choice and doc_to_target"); goto fail; }
        if (!(v = task_render(t->doc_to_text, doc, e))) { err_prefix(e, "doc_to_text"); goto fail; }
        cJSON_AddItemToObject(it, "answer", v);
        if (!(ch = task_render(t->doc_to_choice, doc, e))) { err_prefix(e, "doc_to_choice"); goto fail; }
        cJSON_AddItemToObject(it, "choices", ch);
        if (!(tg = task_render(t->doc_to_target, doc, e))) { err_prefix(e, "doc_to_target"); goto fail; }
        cJSON_AddItemToObject(it, "target", tg);
        if (!cJSON_IsString(tg)) { err_set(e, "doc_to_target: not a string"); goto fail; }
        cJSON_AddStringToObject(it, "context", "");
        return it;
    }
    if (t->doc_to_text && t->type != TASK_PPL) {
        if (!(v = task_render(t->doc_to_text, doc, e))) { err_prefix(e, "doc_to_text"); goto fail; }
        if (!cJSON_IsString(v)) { cJSON_Delete(v); err_set(e, "doc_to_text: not a string"); goto fail; }
        cJSON_AddItemToObject(it, t->type == TASK_PPL ? "text" : "context", v);
    }
    if (t->type == TASK_MC) {
        cJSON *ch = NULL;
        if (t->choice_list) ch = cJSON_CreateStringArray((const char *const *)t->choice_list, t->n_choice_list);
        else if (t->doc_to_choice && !(ch = task_render(t->doc_to_choice, doc, e))) { err_prefix(e, "doc_to_choice"); goto fail; }
        if (ch && !cJSON_IsArray(ch)) { cJSON_Delete(ch); err_set(e, "doc_to_choice: not a list"); goto fail; }
        if (ch) cJSON_AddItemToObject(it, "choices", ch);
        else ch = cJSON_GetObjectItemCaseSensitive(doc, "choices");
        if (t->doc_to_target) {
            if (!(v = task_render(t->doc_to_target, doc, e))) { err_prefix(e, "doc_to_target"); goto fail; }
            /* lm-eval: a rendered string of digits is the index, another string the choice's */
            if (cJSON_IsString(v)) {
                const char *s = v->valuestring;
                int at = -1, k = 0;
                if (*s && strlen(s) < 7 && strspn(s, "0123456789") == strlen(s)) at = atoi(s);
                else for (const cJSON *c = cJSON_IsArray(ch) ? ch->child : NULL; c && at < 0; c = c->next, k++) if (cJSON_IsString(c) && !strcmp(c->valuestring, s)) at = k;
                if (at < 0) { err_set(e, "doc_to_target: \"%.64s\" is not a choice", s); cJSON_Delete(v); goto fail; }
                cJSON_Delete(v);
                v = cJSON_CreateNumber(at);
            }
            cJSON_AddItemToObject(it, "answer", v);
        }
    } else if (t->doc_to_target) {
        if (!(v = task_render(t->doc_to_target, doc, e))) { err_prefix(e, "doc_to_target"); goto fail; }
        if (!cJSON_IsString(v)) { char *s = NULL; Tpl T = { "", doc, 0, e }; if (tpl_text(&T, v, &s)) { cJSON_Delete(v); goto fail; } cJSON_Delete(v); v = cJSON_CreateString(s); free(s); }
        cJSON_AddItemToObject(it, t->type == TASK_PPL ? "text" : "target", v);
    }
    if (t->count_field[0]) {         /* words and bytes of this field (wikitext's process_results) */
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(doc, t->count_field);
        if (!cJSON_IsString(f)) { err_set(e, "count_field \"%s\" is not a string of the row", t->count_field); goto fail; }
        cJSON_AddStringToObject(it, "count_text", f->valuestring);
    }
    const char *keep[6] = { "context", "choices", "answer", "text", "target", "until" };   /* the rest as the row has them */
    for (int k = 0; k < 6; k++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(doc, keep[k]);
        if (f && !cJSON_GetObjectItemCaseSensitive(it, keep[k])) cJSON_AddItemToObject(it, keep[k], cJSON_Duplicate(f, 1));
    }
    return it;
fail:
    cJSON_Delete(it);
    return NULL;
}

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
    free(it->context); free(it->text); free(it->target); free(it->count_text);
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
        it->target = opt_str(j, "target");           /* a partial_scoring item's continuation */
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
        it->count_text = opt_str(j, "count_text");
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
static int load_items(const Task *t, const char *path, TaskType *type, int infer, TaskItem **items, int *n_items, Err *e) {
    int templated = t->doc_to_text || t->doc_to_choice || t->choice_list || t->doc_to_target || t->preprocess[0] || t->partial || t->loglikelihood || t->count_field[0];
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
            if (templated) {
                cJSON *row = row_to_item(t, j, e);
                if (!row) { memset(it, 0, sizeof *it); rc = err_prefix(e, "%s: line %d", path, line); }
                else rc = parse_item(path, line, row, *type, it, e);
                cJSON_Delete(row);
            } else rc = parse_item(path, line, j, *type, it, e);
            (*n_items)++;
            it->doc = j;                 /* kept: lm-eval compares docs as dicts */
        }
        p = nl + 1;
    }
    free(buf);
    if (!rc && *n_items == 0) rc = err_set(e, "%s: no items", path);
    return rc;
}

static int load_jsonl(Task *t, int infer, Err *e) { return load_items(t, t->path, &t->type, infer, &t->items, &t->n_items, e); }

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
        else if (!strcmp(ty->valuestring, "loglikelihood")) t->type = TASK_MC, t->loglikelihood = 1;
        else if (!strcmp(ty->valuestring, "perplexity")) t->type = TASK_PPL;
        else if (!strcmp(ty->valuestring, "generation")) t->type = TASK_GEN;
        else rc = err_set(e, "%s: type \"%s\" (multiple_choice, loglikelihood, perplexity, generation)", path, ty->valuestring);
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
            for (const cJSON *x = ms ? ms->child : NULL; x && !rc && t->loglikelihood; x = x->next) {
                if (!cJSON_IsString(x) || (strcmp(x->valuestring, "acc") && strcmp(x->valuestring, "perplexity")))
                    rc = err_set(e, "%s: metric \"%s\" is not one of loglikelihood's (perplexity, acc)", path, cJSON_IsString(x) ? x->valuestring : "?");
                else snprintf(t->metrics[t->n_metrics++], 32, "%s", x->valuestring);
            }
            for (const cJSON *x = ms && !t->loglikelihood ? ms->child : NULL; x && !rc; x = x->next) {
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
            t->doc_to_text = opt_str(j, "doc_to_text");
            t->doc_to_target = opt_str(j, "doc_to_target");
            const struct { const char *k; const cJSON *v; } strs[3] = {
                { "doc_to_text", cJSON_GetObjectItemCaseSensitive(j, "doc_to_text") },
                { "doc_to_target", cJSON_GetObjectItemCaseSensitive(j, "doc_to_target") },
                { "preprocess", cJSON_GetObjectItemCaseSensitive(j, "preprocess") } };
            for (int k = 0; k < 3 && !rc; k++)
                if (strs[k].v && (!cJSON_IsString(strs[k].v) || strlen(strs[k].v->valuestring) > TPL_MAX))
                    rc = err_set(e, "%s: \"%s\" must be a string (a template of at most %d bytes)", path, strs[k].k, TPL_MAX);
            const cJSON *dc = cJSON_GetObjectItemCaseSensitive(j, "doc_to_choice");
            if (dc && !rc) {
                if (cJSON_IsString(dc) && strlen(dc->valuestring) <= TPL_MAX) t->doc_to_choice = xstrdup(dc->valuestring);
                else if (str_list(dc, &t->choice_list, &t->n_choice_list) || t->n_choice_list == 0)
                    rc = err_set(e, "%s: \"doc_to_choice\" must be a template or a list of non-empty strings", path);
            }
            if (strs[2].v && !rc) {
                if (strcmp(strs[2].v->valuestring, "hellaswag") && strcmp(strs[2].v->valuestring, "winogrande") && strcmp(strs[2].v->valuestring, "wikitext"))
                    rc = err_set(e, "%s: preprocess \"%.32s\" is not known (hellaswag, winogrande, wikitext)", path, strs[2].v->valuestring);
                else snprintf(t->preprocess, sizeof t->preprocess, "%s", strs[2].v->valuestring);
            }
            const cJSON *cf = cJSON_GetObjectItemCaseSensitive(j, "count_field");
            if (cf && !rc) {
                if (!cJSON_IsString(cf) || !*cf->valuestring || strlen(cf->valuestring) >= sizeof t->count_field || t->type != TASK_PPL)
                    rc = err_set(e, "%s: \"count_field\" must be a field name (perplexity only)", path);
                else snprintf(t->count_field, sizeof t->count_field, "%s", cf->valuestring);
            }
            const cJSON *fl2 = cJSON_GetObjectItemCaseSensitive(j, "filters");
            if (fl2 && !rc && (t->type != TASK_GEN || !cJSON_IsArray(fl2) || cJSON_GetArraySize(fl2) > 4))
                rc = err_set(e, "%s: \"filters\" must be a list of at most 4 (generation only)", path);
            for (const cJSON *x = fl2 && !rc ? fl2->child : NULL; x && !rc; x = x->next) {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(x, "name"), *fr = cJSON_GetObjectItemCaseSensitive(x, "regex");
                const cJSON *fg = cJSON_GetObjectItemCaseSensitive(x, "group_select");
                int g = 0;
                if (!cJSON_IsString(fn) || !*fn->valuestring || strlen(fn->valuestring) >= sizeof t->filters[0].name ||
                    !cJSON_IsString(fr) || !*fr->valuestring || strlen(fr->valuestring) > TPL_MAX || (fg && (json_int(fg, &g) || g < -64 || g > 64)))
                    rc = err_set(e, "%s: filter %d needs \"name\" (under 20 bytes), \"regex\" and an integer \"group_select\"", path, t->n_filters);
                else {
                    snprintf(t->filters[t->n_filters].name, sizeof t->filters[0].name, "%s", fn->valuestring);
                    t->filters[t->n_filters].regex = xstrdup(fr->valuestring);
                    t->filters[t->n_filters++].group = g;
                }
            }
            const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "partial_scoring");
            if (ps && !rc) {
                if (!cJSON_IsBool(ps) || (cJSON_IsTrue(ps) && t->type != TASK_MC)) rc = err_set(e, "%s: \"partial_scoring\" is true or false (multiple_choice only)", path);
                else t->partial = cJSON_IsTrue(ps);
            }
            const cJSON *fs = cJSON_GetObjectItemCaseSensitive(j, "fewshot_sampler");
            if (fs && !rc) {
                if (cJSON_IsString(fs) && !strcmp(fs->valuestring, "first_n")) t->fewshot_first_n = 1;
                else if (!cJSON_IsString(fs) || strcmp(fs->valuestring, "default")) rc = err_set(e, "%s: \"fewshot_sampler\" is \"default\" or \"first_n\"", path);
            }
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
            rc = load_items(t, t->fewshot_path, &t->type, 0, &t->fewshot_items, &t->n_fewshot_items, e);
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
    for (int i = 0; i < t->n_choice_list; i++) free(t->choice_list[i]);
    for (int i = 0; i < t->n_filters; i++) free(t->filters[i].regex);
    free(t->choice_list); free(t->doc_to_text); free(t->doc_to_choice); free(t->doc_to_target);
    free(t->items); free(t->fewshot_items); free(t->until); free(t->fewshot_sep); free(t->target_delim); free(t->description);
    memset(t, 0, sizeof *t);
}

