/*
 * tokenizer.c - see tokenizer.h. Follows huggingface/tokenizers: added tokens split
 * the text first; each remaining segment is normalized, pre-tokenized into pieces
 * (each Split of a Sequence applies to the pieces of the previous one), mapped to
 * byte-level characters (GPT-2's bytes_to_unicode), and merged by BPE: repeatedly
 * the adjacent pair of lowest merge rank (leftmost on ties) becomes one symbol.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <utf8proc.h>

/* ---- a string -> int hash map (open addressing) ------------------------------------- */
typedef struct { char **key; int *val; size_t cap, n; } Map;

static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}
static void map_init(Map *m, size_t expect) {
    m->cap = 16;
    while (m->cap < expect * 2) m->cap *= 2;
    m->key = xcalloc(m->cap, sizeof *m->key);
    m->val = xcalloc(m->cap, sizeof *m->val);
    m->n = 0;
}
static void map_free(Map *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->key[i]);
    free(m->key); free(m->val);
}
static int map_get(const Map *m, const char *k, size_t n, int *v) {
    if (!m->cap) return 0;
    for (size_t i = hash(k, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i]) return 0;
        if (strlen(m->key[i]) == n && !memcmp(m->key[i], k, n)) { *v = m->val[i]; return 1; }
    }
}
/* returns 0, or 1 when the key was already there (value kept) */
static int map_put(Map *m, const char *k, size_t n, int v) {
    if ((m->n + 1) * 2 > m->cap) {
        Map b;
        map_init(&b, m->cap);
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i]) {
                size_t j = hash(m->key[i], strlen(m->key[i])) & (b.cap - 1);
                while (b.key[j]) j = (j + 1) & (b.cap - 1);
                b.key[j] = m->key[i]; b.val[j] = m->val[i]; b.n++;
            }
        free(m->key); free(m->val);
        *m = b;
    }
    size_t i = hash(k, n) & (m->cap - 1);
    for (; m->key[i]; i = (i + 1) & (m->cap - 1))
        if (strlen(m->key[i]) == n && !memcmp(m->key[i], k, n)) return 1;
    m->key[i] = xmalloc(n + 1);
    memcpy(m->key[i], k, n);
    m->key[i][n] = 0;
    m->val[i] = v;
    m->n++;
    return 0;
}

/* ---- the tokenizer ------------------------------------------------------------------ */
typedef enum { PT_SPLIT, PT_BYTELEVEL, PT_DIGITS } PreKind;
typedef struct {
    PreKind kind;
    pcre2_code *re;              /* Split, ByteLevel with use_regex */
    int removed;                 /* Split behavior Removed */
    int add_prefix_space;        /* ByteLevel */
    int individual;              /* Digits */
} Pre;

typedef struct { char *content; size_t len; int id, special; } Added;

struct Tokenizer {
    Map vocab;                   /* byte-level token string -> id */
    Map merges;                  /* "a b" -> rank */
    char **id_tok;               /* id -> token string (vocab or added) */
    int n_ids;
    int ignore_merges;
    int norm[8], n_norm;         /* utf8proc options per normalizer step */
    Pre pre[8];
    int n_pre;
    Added *added;
    int n_added;
    unsigned char added_first[256];  /* bytes that start some added token */
    int prefix[8], n_prefix, suffix[8], n_suffix;   /* TemplateProcessing */
    int bytelevel_decoder;
    int eos[8], n_eos;           /* ids that end a generation (tok_set_eos) */
    pcre2_match_context *mctx;
    char byte_char[256][4];      /* byte -> UTF-8 of its byte-level character */
    Map char_byte;               /* byte-level character -> byte */
};

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static void init_bytes(Tokenizer *t) {
    /* GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to 256+ */
    int n = 0;
    map_init(&t->char_byte, 512);
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int cp = keep ? b : 256 + n++;
        utf8proc_ssize_t k = utf8proc_encode_char(cp, (utf8proc_uint8_t *)t->byte_char[b]);
        t->byte_char[b][k] = 0;
        map_put(&t->char_byte, t->byte_char[b], (size_t)k, b);
    }
}

static pcre2_code *compile(const char *pat, size_t len, int literal, const char *name, Err *e) {
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0), &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        err_set(e, "%s: invalid pre-tokenizer regex at offset %zu: %s", name, (size_t)off, (char *)msg);
    }
    return re;
}

static int parse_normalizer(Tokenizer *t, const cJSON *n, const char *name, Err *e) {
    if (!n || cJSON_IsNull(n)) return 0;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(n, "type");
    if (!cJSON_IsString(ty)) return err_set(e, "%s: normalizer without a type", name);
    const char *s = ty->valuestring;
    if (!strcmp(s, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        for (const cJSON *x = arr ? arr->child : NULL; x; x = x->next)
            if (parse_normalizer(t, x, name, e)) return -1;
        return 0;
    }
    int opt;
    if (!strcmp(s, "NFC")) opt = UTF8PROC_COMPOSE;
    else if (!strcmp(s, "NFD")) opt = UTF8PROC_DECOMPOSE;
    else if (!strcmp(s, "NFKC")) opt = UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    else if (!strcmp(s, "NFKD")) opt = UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    else return err_set(e, "%s: unsupported normalizer \"%s\" (supported: NFC, NFD, NFKC, NFKD, Sequence)", name, s);
    if (t->n_norm == 8) return err_set(e, "%s: more than 8 normalizers", name);
    t->norm[t->n_norm++] = opt;
    return 0;
}

static int parse_pre(Tokenizer *t, const cJSON *p, const char *name, int depth, Err *e) {
    if (!p || cJSON_IsNull(p)) return 0;
    if (depth > 4) return err_set(e, "%s: pre_tokenizer nested too deeply", name);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
    if (!cJSON_IsString(ty)) return err_set(e, "%s: pre_tokenizer without a type", name);
    const char *s = ty->valuestring;
    if (!strcmp(s, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        for (const cJSON *x = arr ? arr->child : NULL; x; x = x->next)
            if (parse_pre(t, x, name, depth + 1, e)) return -1;
        return 0;
    }
    if (t->n_pre == 8) return err_set(e, "%s: more than 8 pre-tokenizers", name);
    Pre *pr = &t->pre[t->n_pre];
    memset(pr, 0, sizeof *pr);
    if (!strcmp(s, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex"), *st = cJSON_GetObjectItemCaseSensitive(pat, "String");
        const cJSON *bh = cJSON_GetObjectItemCaseSensitive(p, "behavior"), *inv = cJSON_GetObjectItemCaseSensitive(p, "invert");
        if (cJSON_IsTrue(inv)) return err_set(e, "%s: Split with invert true is not supported", name);
        if (!cJSON_IsString(bh) || (strcmp(bh->valuestring, "Isolated") && strcmp(bh->valuestring, "Removed")))
            return err_set(e, "%s: Split behavior \"%s\" is not supported (Isolated, Removed)", name,
                           cJSON_IsString(bh) ? bh->valuestring : "?");
        const cJSON *src = cJSON_IsString(rx) ? rx : st;
        if (!cJSON_IsString(src) || !*src->valuestring) return err_set(e, "%s: Split needs a Regex or String pattern", name);
        pr->kind = PT_SPLIT;
        pr->removed = !strcmp(bh->valuestring, "Removed");
        if (!(pr->re = compile(src->valuestring, strlen(src->valuestring), src == st, name, e))) return -1;
    } else if (!strcmp(s, "ByteLevel")) {
        pr->kind = PT_BYTELEVEL;
        pr->add_prefix_space = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space"));
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(p, "use_regex");
        if ((!ur || cJSON_IsTrue(ur)) && !(pr->re = compile(GPT2_PATTERN, sizeof GPT2_PATTERN - 1, 0, name, e))) return -1;
    } else if (!strcmp(s, "Digits")) {
        pr->kind = PT_DIGITS;
        pr->individual = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "individual_digits"));
        if (!(pr->re = compile(pr->individual ? "\\p{N}" : "\\p{N}+", PCRE2_ZERO_TERMINATED, 0, name, e))) return -1;
    } else {
        return err_set(e, "%s: unsupported pre_tokenizer \"%s\" (supported: Split, ByteLevel, Digits, Sequence)", name, s);
    }
    t->n_pre++;
    return 0;
}

static int token_id(Tokenizer *t, const char *content, int *id) {
    for (int i = 0; i < t->n_added; i++)
        if (!strcmp(t->added[i].content, content)) { *id = t->added[i].id; return 0; }
    return map_get(&t->vocab, content, strlen(content), id) ? 0 : -1;
}

static int parse_post(Tokenizer *t, const cJSON *p, const char *name, Err *e) {
    if (!p || cJSON_IsNull(p)) return 0;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
    if (!cJSON_IsString(ty)) return err_set(e, "%s: post_processor without a type", name);
    if (!strcmp(ty->valuestring, "ByteLevel")) return 0;
    if (strcmp(ty->valuestring, "TemplateProcessing"))
        return err_set(e, "%s: unsupported post_processor \"%s\" (supported: ByteLevel, TemplateProcessing)", name, ty->valuestring);
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    int seen_seq = 0;
    for (const cJSON *x = single ? single->child : NULL; x; x = x->next) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(x, "SpecialToken");
        if (cJSON_GetObjectItemCaseSensitive(x, "Sequence")) { seen_seq = 1; continue; }
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(sp, "id");
        int v;
        if (!cJSON_IsString(id) || token_id(t, id->valuestring, &v))
            return err_set(e, "%s: post_processor names an unknown special token", name);
        int *arr = seen_seq ? t->suffix : t->prefix, *cnt = seen_seq ? &t->n_suffix : &t->n_prefix;
        if (*cnt == 8) return err_set(e, "%s: post_processor template too long", name);
        arr[(*cnt)++] = v;
    }
    return 0;
}

static int set_id_tok(Tokenizer *t, int id, const char *s, const char *name, Err *e) {
    if (id < 0 || id > 16777216) return err_set(e, "%s: token id %d out of range", name, id);
    if (id >= t->n_ids) {
        int n = t->n_ids ? t->n_ids : 1024;
        while (n <= id) n *= 2;
        t->id_tok = realloc(t->id_tok, sizeof *t->id_tok * (size_t)n);
        if (!t->id_tok) { fprintf(stderr, "effbench: out of memory\n"); exit(3); }
        for (int i = t->n_ids; i < n; i++) t->id_tok[i] = NULL;
        t->n_ids = n;
    }
    if (!t->id_tok[id]) t->id_tok[id] = xstrdup(s);
    return 0;
}

Tokenizer *tok_from_cjson(const cJSON *root, const char *name, Err *e) {
    Tokenizer *t = xcalloc(1, sizeof *t);
    init_bytes(t);
    int rc = 0;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(model)) rc = err_set(e, "%s: no \"model\" object", name);
    else if (mt && (!cJSON_IsString(mt) || strcmp(mt->valuestring, "BPE")))
        rc = err_set(e, "%s: unsupported model type \"%s\" (supported: BPE)", name, cJSON_IsString(mt) ? mt->valuestring : "?");
    else if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) rc = err_set(e, "%s: BPE model needs \"vocab\" and \"merges\"", name);
    else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")))
        rc = err_set(e, "%s: byte_fallback BPE is not supported (byte-level BPE only)", name);
    if (!rc) {
        map_init(&t->vocab, (size_t)cJSON_GetArraySize(vocab) + 1);
        for (const cJSON *v = vocab->child; v && !rc; v = v->next) {
            int old;
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 16777216 || v->valuedouble != (int)v->valuedouble)
                rc = err_set(e, "%s: vocab entry has a bad id", name);
            else if (map_get(&t->vocab, v->string, strlen(v->string), &old))
                rc = err_set(e, "%s: vocab token \"%.40s\" appears twice (ids %d and %d)", name, v->string, old, v->valueint);
            else {
                map_put(&t->vocab, v->string, strlen(v->string), v->valueint);
                rc = set_id_tok(t, v->valueint, v->string, name, e);
            }
        }
        t->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));
    }
    if (!rc) {
        map_init(&t->merges, (size_t)cJSON_GetArraySize(merges) + 1);
        int rank = 0;
        for (const cJSON *m = merges->child; m && !rc; m = m->next, rank++) {
            const char *a, *b;
            size_t la, lb;
            char *sp;
            if (cJSON_IsString(m) && (sp = strchr(m->valuestring, ' ')) && !strchr(sp + 1, ' ')) {
                a = m->valuestring; la = (size_t)(sp - a); b = sp + 1; lb = strlen(b);
            } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
                a = m->child->valuestring; la = strlen(a); b = m->child->next->valuestring; lb = strlen(b);
            } else { rc = err_set(e, "%s: merge %d is not \"a b\" or [\"a\", \"b\"]", name, rank); break; }
            int ida, idb, idab;
            char *key = xmalloc(la + lb + 2);
            memcpy(key, a, la); key[la] = ' '; memcpy(key + la + 1, b, lb); key[la + lb + 1] = 0;
            char *joined = xmalloc(la + lb + 1);
            memcpy(joined, a, la); memcpy(joined + la, b, lb); joined[la + lb] = 0;
            if (!map_get(&t->vocab, a, la, &ida) || !map_get(&t->vocab, b, lb, &idb) || !map_get(&t->vocab, joined, la + lb, &idab))
                rc = err_set(e, "%s: merge %d (\"%.40s\") names a token missing from the vocab", name, rank, key);
            else map_put(&t->merges, key, la + lb + 1, rank);     /* a repeated merge keeps its first rank */
            free(key); free(joined);
        }
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!rc && added) {
        t->added = xcalloc((size_t)cJSON_GetArraySize(added) + 1, sizeof *t->added);
        for (const cJSON *a = added->child; a && !rc; a = a->next) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id"), *c = cJSON_GetObjectItemCaseSensitive(a, "content");
            if (!cJSON_IsNumber(id) || !cJSON_IsString(c) || !*c->valuestring) { rc = err_set(e, "%s: added token without id or content", name); break; }
            Added *ad = &t->added[t->n_added++];
            ad->content = xstrdup(c->valuestring);
            ad->len = strlen(ad->content);
            ad->id = id->valueint;
            ad->special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "special"));
            t->added_first[(unsigned char)ad->content[0]] = 1;
            rc = set_id_tok(t, ad->id, ad->content, name, e);
        }
    }
    if (!rc) rc = parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), name, e);
    if (!rc) rc = parse_pre(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), name, 0, e);
    if (!rc) rc = parse_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), name, e);
    if (!rc) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(d, "type");
        if (d && !cJSON_IsNull(d) && (!cJSON_IsString(dt) || strcmp(dt->valuestring, "ByteLevel")))
            rc = err_set(e, "%s: unsupported decoder \"%s\" (supported: ByteLevel)", name, cJSON_IsString(dt) ? dt->valuestring : "?");
        t->bytelevel_decoder = d && !cJSON_IsNull(d);
    }
    if (!rc) {
        t->mctx = pcre2_match_context_create(NULL);
        pcre2_set_match_limit(t->mctx, 1000000);
        pcre2_set_depth_limit(t->mctx, 10000);
        pcre2_set_heap_limit(t->mctx, 65536);     /* KiB */
    }
    if (rc) { tok_free(t); return NULL; }
    return t;
}

Tokenizer *tok_parse(const char *json, size_t len, const char *name, Err *e) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) { err_set(e, "%s: malformed JSON", name); return NULL; }
    Tokenizer *t = tok_from_cjson(root, name, e);
    cJSON_Delete(root);
    return t;
}

Tokenizer *tok_load(const char *path, Err *e) {
    size_t len;
    char *txt = read_file(path, 256u << 20, &len, e);
    if (!txt) return NULL;
    Tokenizer *t = tok_parse(txt, len, path, e);
    free(txt);
    return t;
}

void tok_free(Tokenizer *t) {
    if (!t) return;
    map_free(&t->vocab); map_free(&t->merges); map_free(&t->char_byte);
    for (int i = 0; i < t->n_ids; i++) free(t->id_tok[i]);
    free(t->id_tok);
    for (int i = 0; i < t->n_pre; i++) pcre2_code_free(t->pre[i].re);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    pcre2_match_context_free(t->mctx);
    free(t);
}

int tok_vocab_size(const Tokenizer *t) {
    int n = 0;
    for (int i = 0; i < t->n_ids; i++) if (t->id_tok[i]) n = i + 1;
    return n;
}

int tok_is_special(const Tokenizer *t, int id) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id == id) return t->added[i].special;
    return 0;
}

int tok_set_eos(Tokenizer *t, const int *ids, int n, Err *e) {
    if (n > 8) return err_set(e, "more than 8 end-of-sequence tokens");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_ids || !t->id_tok[ids[i]])
            return err_set(e, "end-of-sequence token %d is not in the vocabulary", ids[i]);
    memcpy(t->eos, ids, sizeof *ids * (size_t)n);
    t->n_eos = n;
    return 0;
}

int tok_is_eos(const Tokenizer *t, int id) {
    for (int i = 0; i < t->n_eos; i++) if (t->eos[i] == id) return 1;
    return 0;
}

/* ---- encoding ----------------------------------------------------------------------- */
typedef struct { int *v; int n, cap; } Ids;
static void ids_push(Ids *d, int x) {
    if (d->n == d->cap) { d->cap = d->cap ? 2 * d->cap : 64; d->v = realloc(d->v, sizeof *d->v * (size_t)d->cap); if (!d->v) exit(3); }
    d->v[d->n++] = x;
}

/* pieces: spans [off, off+len) of one buffer */
typedef struct { size_t *off, *len; int n, cap; } Spans;
static void span_push(Spans *s, size_t o, size_t l) {
    if (!l) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->off = realloc(s->off, sizeof *s->off * (size_t)s->cap);
        s->len = realloc(s->len, sizeof *s->len * (size_t)s->cap);
        if (!s->off || !s->len) exit(3);
    }
    s->off[s->n] = o; s->len[s->n] = l; s->n++;
}

/* splits each span by re (Isolated: matches and gaps both kept; removed: gaps only) */
static int split_spans(const Tokenizer *t, const pcre2_code *re, int removed, const char *buf, Spans *in, Spans *out, Err *e) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = 0;
    for (int i = 0; i < in->n && !rc; i++) {
        size_t start = in->off[i], end = start + in->len[i], pos = start, last = start;
        while (pos <= end) {
            int r = pcre2_match(re, (PCRE2_SPTR)buf, end, pos, PCRE2_NO_UTF_CHECK, md, t->mctx);
            if (r == PCRE2_ERROR_NOMATCH) break;
            if (r < 0) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(r, msg, sizeof msg);
                rc = err_set(e, "pre-tokenizer regex failed: %s", (char *)msg);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me == ms) {                       /* empty match: step one character */
                pos = ms + 1;
                while (pos < end && (buf[pos] & 0xC0) == 0x80) pos++;
                continue;
            }
            span_push(out, last, ms - last);      /* the gap */
            if (!removed) span_push(out, ms, me - ms);
            last = pos = me;
        }
        span_push(out, last, end - last);
    }
    pcre2_match_data_free(md);
    return rc;
}

/* BPE of one byte-level string into ids. Symbols form a linked list; candidate pairs
 * sit in a binary heap ordered by (merge rank, position), so the lowest-ranked pair,
 * leftmost on ties, merges first, in O(n log n): a megabyte-long word cannot stall. */
typedef struct { int rank, left, right, lver, rver; } Cand;

static int cand_less(const Cand *a, const Cand *b) { return a->rank != b->rank ? a->rank < b->rank : a->left < b->left; }

static void heap_push(Cand **h, int *n, int *cap, Cand c) {
    if (*n == *cap) { *cap = *cap ? 2 * *cap : 64; *h = realloc(*h, sizeof **h * (size_t)*cap); if (!*h) exit(3); }
    int i = (*n)++;
    while (i > 0 && cand_less(&c, &(*h)[(i - 1) / 2])) { (*h)[i] = (*h)[(i - 1) / 2]; i = (i - 1) / 2; }
    (*h)[i] = c;
}

static Cand heap_pop(Cand *h, int *n) {
    Cand top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c])) c++;
        if (!cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

typedef struct { size_t *st, *len; int *prev, *next, *ver; char *key; } Syms;

static int pair_rank(const Tokenizer *t, const char *s, const Syms *y, int a, int b, int *rank) {
    memcpy(y->key, s + y->st[a], y->len[a]);
    y->key[y->len[a]] = ' ';
    memcpy(y->key + y->len[a] + 1, s + y->st[b], y->len[b]);
    return map_get(&t->merges, y->key, y->len[a] + y->len[b] + 1, rank);
}

static void push_pair(const Tokenizer *t, const char *s, const Syms *y, int a, Cand **h, int *hn, int *hc) {
    int b = y->next[a], r;
    if (a < 0 || b < 0 || !pair_rank(t, s, y, a, b, &r)) return;
    Cand c = { r, a, b, y->ver[a], y->ver[b] };
    heap_push(h, hn, hc, c);
}

static int bpe(Tokenizer *t, const char *s, size_t n, Ids *out, Err *e) {
    int id;
    if (t->ignore_merges && map_get(&t->vocab, s, n, &id)) { ids_push(out, id); return 0; }
    Syms y;
    y.st = xmalloc(sizeof *y.st * (n + 1)); y.len = xmalloc(sizeof *y.len * (n + 1));
    y.prev = xmalloc(sizeof(int) * (n + 1)); y.next = xmalloc(sizeof(int) * (n + 1)); y.ver = xcalloc(n + 1, sizeof(int));
    y.key = xmalloc(n + 2);
    int ns = 0;
    for (size_t i = 0; i < n;) {          /* one symbol per UTF-8 character */
        size_t j = i + 1;
        while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80) j++;
        y.st[ns] = i; y.len[ns] = j - i; y.prev[ns] = ns - 1; y.next[ns] = ns + 1;
        ns++;
        i = j;
    }
    if (ns) y.next[ns - 1] = -1;
    Cand *h = NULL;
    int hn = 0, hc = 0;
    for (int k = 0; k + 1 < ns; k++) push_pair(t, s, &y, k, &h, &hn, &hc);
    while (hn > 0) {
        Cand c = heap_pop(h, &hn);
        /* stale: a side merged since (version changed) or no longer adjacent */
        if (y.ver[c.left] != c.lver || y.ver[c.right] != c.rver || y.next[c.left] != c.right || y.len[c.right] == 0) continue;
        y.len[c.left] += y.len[c.right];
        y.len[c.right] = 0;
        y.ver[c.left]++;
        y.ver[c.right]++;
        y.next[c.left] = y.next[c.right];
        if (y.next[c.left] >= 0) y.prev[y.next[c.left]] = c.left;
        if (y.prev[c.left] >= 0) push_pair(t, s, &y, y.prev[c.left], &h, &hn, &hc);
        push_pair(t, s, &y, c.left, &h, &hn, &hc);
    }
    int rc = 0;
    for (int k = ns ? 0 : -1; k >= 0 && !rc; k = y.next[k]) {
        if (map_get(&t->vocab, s + y.st[k], y.len[k], &id)) ids_push(out, id);
        else rc = err_set(e, "BPE produced a symbol missing from the vocab");
    }
    free(y.st); free(y.len); free(y.prev); free(y.next); free(y.ver); free(y.key); free(h);
    return rc;
}

/* one segment of text without added tokens */
static int encode_segment(Tokenizer *t, const char *text, size_t len, Ids *out, Err *e) {
    char *norm = NULL;
    const char *s = text;
    size_t n = len;
    for (int i = 0; i < t->n_norm; i++) {
        utf8proc_uint8_t *r = NULL;
        utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &r, (utf8proc_option_t)(t->norm[i] | UTF8PROC_STABLE));
        if (k < 0) { free(norm); return err_set(e, "normalization failed: %s", utf8proc_errmsg(k)); }
        free(norm);
        norm = (char *)r;
        s = norm; n = (size_t)k;
    }
    /* ByteLevel add_prefix_space applies to the segment start */
    char *buf = NULL;
    for (int i = 0; i < t->n_pre; i++)
        if (t->pre[i].kind == PT_BYTELEVEL && t->pre[i].add_prefix_space && n && s[0] != ' ') {
            buf = xmalloc(n + 2);
            buf[0] = ' ';
            memcpy(buf + 1, s, n);
            s = buf; n++;
            break;
        }
    Spans a = { 0 }, b = { 0 };
    span_push(&a, 0, n);
    int rc = 0;
    for (int i = 0; i < t->n_pre && !rc; i++) {
        if (!t->pre[i].re) continue;
        b.n = 0;
        rc = split_spans(t, t->pre[i].re, t->pre[i].removed, s, &a, &b, e);
        Spans tmp = a; a = b; b = tmp;
    }
    /* byte-level map and BPE of each piece */
    char *piece = NULL;
    size_t cap = 0;
    for (int i = 0; i < a.n && !rc; i++) {
        size_t need = a.len[i] * 4 + 1;
        if (need > cap) { free(piece); piece = xmalloc(need); cap = need; }
        size_t k = 0;
        for (size_t j = 0; j < a.len[i]; j++) {
            const char *c = t->byte_char[(unsigned char)s[a.off[i] + j]];
            size_t l = strlen(c);
            memcpy(piece + k, c, l);
            k += l;
        }
        rc = bpe(t, piece, k, out, e);
    }
    free(piece); free(a.off); free(a.len); free(b.off); free(b.len); free(buf); free(norm);
    return rc;
}

int tok_encode(Tokenizer *t, const char *text, size_t len, int add_special, int **ids, int *n, Err *e) {
    if (utf8proc_decompose((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, NULL, 0, 0) < 0)
        return err_set(e, "text is not valid UTF-8");
    Ids out = { 0 };
    if (add_special) for (int i = 0; i < t->n_prefix; i++) ids_push(&out, t->prefix[i]);
    size_t seg = 0, pos = 0;
    int rc = 0;
    while (pos < len && !rc) {
        if (!t->added_first[(unsigned char)text[pos]]) { pos++; continue; }
        int best = -1;
        for (int i = 0; i < t->n_added; i++)      /* longest added token starting here */
            if (t->added[i].len <= len - pos && !memcmp(text + pos, t->added[i].content, t->added[i].len) &&
                (best < 0 || t->added[i].len > t->added[best].len)) best = i;
        if (best < 0) { pos++; continue; }
        if (pos > seg) rc = encode_segment(t, text + seg, pos - seg, &out, e);
        ids_push(&out, t->added[best].id);
        pos += t->added[best].len;
        seg = pos;
    }
    if (!rc && len > seg) rc = encode_segment(t, text + seg, len - seg, &out, e);
    if (add_special) for (int i = 0; i < t->n_suffix; i++) ids_push(&out, t->suffix[i]);
    if (rc) { free(out.v); return -1; }
    *ids = out.v ? out.v : xmalloc(sizeof(int));
    *n = out.n;
    return 0;
}

char *tok_decode(const Tokenizer *t, const int *ids, int n, size_t *len, Err *e) {
    size_t cap = 64, k = 0;
    char *out = xmalloc(cap);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_ids || !t->id_tok[ids[i]]) {
            free(out);
            err_set(e, "token id %d is not in the vocabulary", ids[i]);
            return NULL;
        }
        const char *s = t->id_tok[ids[i]];
        size_t sl = strlen(s);
        if (k + sl * 4 + 1 > cap) { while (k + sl * 4 + 1 > cap) cap *= 2; out = realloc(out, cap); if (!out) exit(3); }
        /* ByteLevel: every character back to its byte; a token with a character outside
         * the map (an added token's text) is kept as its UTF-8 bytes */
        size_t j = 0, start = k;
        int all = t->bytelevel_decoder;
        while (all && j < sl) {
            size_t l = 1;
            while (j + l < sl && ((unsigned char)s[j + l] & 0xC0) == 0x80) l++;
            int b;
            if (!map_get(&t->char_byte, s + j, l, &b)) { all = 0; break; }
            out[k++] = (char)b;
            j += l;
        }
        if (!all) { k = start; memcpy(out + k, s, sl); k += sl; }
    }
    out[k] = 0;
    if (len) *len = k;
    return out;
}
