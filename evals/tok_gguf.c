/*
 * tok_gguf.c - the tokenizer held in a GGUF file's metadata, and the tokenizer that goes
 * with a model path (tok_for_model).
 *
 * A GGUF tokenizer is turned into the tokenizer.json tree Hugging Face would load for the
 * same model and handed to tok_from_cjson, so both paths share one encoder:
 *
 *   tokenizer.ggml.tokens       every token in id order -> model.vocab (BPE)
 *   tokenizer.ggml.token_type   CONTROL (3) -> added token, special; USER_DEFINED (4) ->
 *                               added token, not special; NORMAL, UNKNOWN, UNUSED, BYTE
 *                               -> vocabulary only (llama.cpp's llama_token_type)
 *   tokenizer.ggml.merges       "a b" strings -> model.merges, in rank order
 *   tokenizer.ggml.pre          -> normalizer and pre_tokenizer of that family's
 *                               tokenizer.json (PRES below), and ignore_merges
 *   bos/eos_token_id, add_bos_token, add_eos_token -> a TemplateProcessing post-processor
 *   decoder                     ByteLevel
 *
 * llama.cpp's converter (convert_hf_to_gguf.py, get_vocab_base) writes the HF vocabulary
 * this way, and llama.cpp picks its pre-tokenizer regexes by the same `pre` names
 * (src/llama-vocab.cpp); the table below holds HF's own configuration of each family,
 * copied from the models' tokenizer.json files, not llama.cpp's adapted regexes.
 * add_bos_token absent: llama.cpp's default for the family (true for llama-bpe).
 *
 * Not done: SentencePiece ("llama"), WordPiece ("bert"), Unigram ("t5") and the other
 * tokenizer models, and pre-tokenizers not in the table: each is refused by name.
 */
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

enum { TT_UNDEFINED = 0, TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE };

#define MAX_TOKENS 16777216      /* the largest id tokenizer.c accepts */

/* ---- the pre-tokenizer families ----------------------------------------------------- */
/* Each regex is the "Regex" string of the family's tokenizer.json, as a C literal (JSON
 * and C escapes agree on \" \\ \r \n). */
static const char LLAMA3_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char DSV3_RE1[] = "\\p{N}{1,3}";
static const char DSV3_RE2[] = "[一-龥぀-ゟ゠-ヿ]+";
static const char DSV3_RE3[] =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

typedef enum { FAM_GPT2, FAM_SMOLLM, FAM_LLAMA3, FAM_QWEN2, FAM_DSV3 } Family;

static const struct {
    const char *pre;             /* tokenizer.ggml.pre */
    Family fam;
    int ignore_merges;           /* model.ignore_merges of the family's tokenizer.json */
    int add_bos;                 /* llama.cpp's default when add_bos_token is absent */
    const char *source;          /* whose tokenizer.json it is */
} PRES[] = {
    { "gpt-2",       FAM_GPT2,   0, 0, "openai-community/gpt2" },
    { "smollm",      FAM_SMOLLM, 0, 0, "HuggingFaceTB/SmolLM2" },
    { "llama-bpe",   FAM_LLAMA3, 1, 1, "meta-llama/Meta-Llama-3" },
    { "qwen2",       FAM_QWEN2,  0, 0, "Qwen/Qwen2, Qwen2.5, Qwen3" },
    { "deepseek-v3", FAM_DSV3,   0, 0, "deepseek-ai/DeepSeek-V3" },
};

static cJSON *typed(const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}
static cJSON *split(const char *re) {
    cJSON *o = typed("Split"), *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "Regex", re);
    cJSON_AddItemToObject(o, "pattern", p);
    cJSON_AddStringToObject(o, "behavior", "Isolated");
    cJSON_AddFalseToObject(o, "invert");
    return o;
}
static cJSON *bytelevel(int trim_offsets, int use_regex) {
    cJSON *o = typed("ByteLevel");
    cJSON_AddFalseToObject(o, "add_prefix_space");
    cJSON_AddBoolToObject(o, "trim_offsets", trim_offsets);
    cJSON_AddBoolToObject(o, "use_regex", use_regex);
    return o;
}
static cJSON *sequence(cJSON *a, cJSON *b, cJSON *c, cJSON *d) {
    cJSON *o = typed("Sequence"), *arr = cJSON_AddArrayToObject(o, "pretokenizers");
    cJSON *items[4] = { a, b, c, d };
    for (int i = 0; i < 4; i++) if (items[i]) cJSON_AddItemToArray(arr, items[i]);
    return o;
}

/* the family's normalizer (NULL: none) and pre_tokenizer, as in its tokenizer.json */
static void family_json(Family f, cJSON **norm, cJSON **pre) {
    *norm = NULL;
    switch (f) {
    case FAM_GPT2:   *pre = bytelevel(1, 1); break;
    case FAM_SMOLLM: {
        cJSON *dg = typed("Digits");
        cJSON_AddTrueToObject(dg, "individual_digits");
        *pre = sequence(dg, bytelevel(1, 1), NULL, NULL);
        break;
    }
    case FAM_LLAMA3: *pre = sequence(split(LLAMA3_RE), bytelevel(1, 0), NULL, NULL); break;
    case FAM_QWEN2:
        *norm = typed("NFC");
        *pre = sequence(split(QWEN2_RE), bytelevel(0, 0), NULL, NULL);
        break;
    case FAM_DSV3:
        *norm = typed("Sequence");
        cJSON_AddArrayToObject(*norm, "normalizers");
        *pre = sequence(split(DSV3_RE1), split(DSV3_RE2), split(DSV3_RE3), bytelevel(1, 0));
        break;
    }
}

/* ---- GGUF metadata -> tokenizer.json tree ------------------------------------------- */
/* a GGUF string as a NUL-terminated copy in *buf; -1 when it holds a NUL byte */
static int cstr(GgufStr s, char **buf, size_t *cap) {
    if (memchr(s.s, 0, s.n)) return -1;
    if (s.n + 1 > *cap) { *cap = s.n + 1 > 2 * *cap ? s.n + 1 : 2 * *cap; *buf = xrealloc(*buf, *cap); }
    memcpy(*buf, s.s, s.n);
    (*buf)[s.n] = 0;
    return 0;
}

/* an optional token id key: 1 (in *id), 0 absent, -1 error */
static int opt_id(const Gguf *g, const char *key, int64_t n_tok, int64_t *id, Err *e) {
    int r = gguf_get_int(g, key, id, e);
    if (r == 1 && (*id < 0 || *id >= n_tok))
        return err_set(e, "%s: %s %lld is outside the %lld tokens", g->path, key, (long long)*id, (long long)n_tok);
    return r;
}

typedef struct {
    cJSON *root;
    int eos[3], n_eos;           /* eos, eot, eom */
} Built;

static int build(const Gguf *g, Built *b, Err *e) {
    char model[64], pre[64];
    memset(b, 0, sizeof *b);
    int r = gguf_get_str(g, "tokenizer.ggml.model", model, sizeof model, e);
    if (r < 0) return -1;
    if (r == 0) return err_set(e, "%s: no tokenizer in the file (no tokenizer.ggml.model)", g->path);
    if (strcmp(model, "gpt2")) {
        const char *kind = !strcmp(model, "llama") ? " (SentencePiece)" : !strcmp(model, "bert") ? " (WordPiece)"
                         : !strcmp(model, "t5") ? " (Unigram)" : "";
        return err_set(e, "%s: tokenizer.ggml.model \"%s\"%s is not supported (supported: \"gpt2\", byte-level BPE)", g->path,
                       model, kind);
    }
    if ((r = gguf_get_str(g, "tokenizer.ggml.pre", pre, sizeof pre, e)) < 0) return -1;
    if (r == 0) return err_set(e, "%s: no tokenizer.ggml.pre: the pre-tokenizer is unknown", g->path);
    int fi = -1;
    for (size_t i = 0; i < sizeof PRES / sizeof PRES[0]; i++) if (!strcmp(PRES[i].pre, pre)) fi = (int)i;
    if (fi < 0)
        return err_set(e, "%s: tokenizer.ggml.pre \"%s\" is not supported (supported: gpt-2, smollm, llama-bpe, qwen2, deepseek-v3)",
                       g->path, pre);

    const GgufKV *toks, *types = NULL, *merges = NULL;
    if ((r = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &toks, e)) < 0) return -1;
    if (r == 0) return err_set(e, "%s: no tokenizer.ggml.tokens", g->path);
    int64_t n = (int64_t)toks->arr_n;
    if (n == 0 || n > MAX_TOKENS) return err_set(e, "%s: %lld tokens (1 to %d accepted)", g->path, (long long)n, MAX_TOKENS);
    if (gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_I32, &types, e) < 0) return -1;
    if (types && (int64_t)types->arr_n != n)
        return err_set(e, "%s: %llu token types for %lld tokens", g->path, (unsigned long long)types->arr_n, (long long)n);
    if (gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING, &merges, e) < 0) return -1;

    int64_t bos = -1, eos = -1, eot = -1, eom = -1;
    int has_bos, has_eos, add_bos = PRES[fi].add_bos, add_eos = 0;
    if ((has_bos = opt_id(g, "tokenizer.ggml.bos_token_id", n, &bos, e)) < 0 || (has_eos = opt_id(g, "tokenizer.ggml.eos_token_id", n, &eos, e)) < 0 ||
        opt_id(g, "tokenizer.ggml.eot_token_id", n, &eot, e) < 0 || opt_id(g, "tokenizer.ggml.eom_token_id", n, &eom, e) < 0 ||
        gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, e) < 0 || gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos, e) < 0)
        return -1;
    if (add_bos && !has_bos)
        return err_set(e, "%s: a BOS is to be added (add_bos_token, or the default of pre \"%s\") but there is no bos_token_id", g->path, pre);
    if (add_eos && !has_eos) return err_set(e, "%s: add_eos_token is true but there is no eos_token_id", g->path);

    cJSON *root = cJSON_CreateObject(), *norm = NULL, *pt = NULL;
    b->root = root;
    family_json(PRES[fi].fam, &norm, &pt);
    cJSON_AddItemToObject(root, "normalizer", norm ? norm : cJSON_CreateNull());
    cJSON_AddItemToObject(root, "pre_tokenizer", pt);
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *mo = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(mo, "type", "BPE");
    cJSON_AddBoolToObject(mo, "ignore_merges", PRES[fi].ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(mo, "vocab"), *ma = cJSON_AddArrayToObject(mo, "merges");
    char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        int64_t ty = types ? gguf_arr_int(types, (uint64_t)i) : TT_NORMAL;
        if (ty < TT_UNDEFINED || ty > TT_BYTE) { rc = err_set(e, "%s: token %lld has type %lld (0 to 6)", g->path, (long long)i, (long long)ty); break; }
        if (cstr(toks->strs[i], &buf, &cap)) { rc = err_set(e, "%s: token %lld holds a NUL byte", g->path, (long long)i); break; }
        cJSON_AddNumberToObject(vocab, buf, (double)i);
        if ((ty == TT_CONTROL || ty == TT_USER_DEFINED) && buf[0]) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", (double)i);
            cJSON_AddStringToObject(a, "content", buf);
            cJSON_AddBoolToObject(a, "special", ty == TT_CONTROL);
            cJSON_AddItemToArray(added, a);
        }
    }
    for (uint64_t i = 0; merges && i < merges->arr_n && !rc; i++) {
        if (cstr(merges->strs[i], &buf, &cap)) rc = err_set(e, "%s: merge %llu holds a NUL byte", g->path, (unsigned long long)i);
        else cJSON_AddItemToArray(ma, cJSON_CreateString(buf));
    }
    if (!rc && (add_bos || add_eos)) {              /* TemplateProcessing: [BOS] $A [EOS] */
        cJSON *post = cJSON_AddObjectToObject(root, "post_processor"), *single = cJSON_CreateArray();
        cJSON_AddStringToObject(post, "type", "TemplateProcessing");
        cJSON_AddItemToObject(post, "single", single);
        for (int k = 0; k < 3; k++) {
            if ((k == 0 && !add_bos) || (k == 2 && !add_eos)) continue;
            cJSON *it = cJSON_CreateObject(), *in = cJSON_CreateObject();
            if (k == 1) {
                cJSON_AddStringToObject(in, "id", "A");
                cJSON_AddItemToObject(it, "Sequence", in);
            } else {
                cstr(toks->strs[k == 0 ? bos : eos], &buf, &cap);     /* checked above: no NUL */
                cJSON_AddStringToObject(in, "id", buf);
                cJSON_AddItemToObject(it, "SpecialToken", in);
            }
            cJSON_AddItemToArray(single, it);
        }
    }
    free(buf);
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    int64_t ends[3] = { eos, eot, eom };
    for (int k = 0; k < 3; k++) {
        int dup = 0;
        for (int j = 0; j < b->n_eos; j++) dup |= b->eos[j] == ends[k];
        if (ends[k] >= 0 && !dup) b->eos[b->n_eos++] = (int)ends[k];
    }
    return rc;
}

Tokenizer *tok_from_gguf(const Gguf *g, Err *e) {
    Built b;
    Tokenizer *t = NULL;
    if (build(g, &b, e) == 0 && (t = tok_from_cjson(b.root, g->path, e)) && tok_set_eos(t, b.eos, b.n_eos, e)) {
        char msg[sizeof e->msg];
        snprintf(msg, sizeof msg, "%s", e->msg);
        err_set(e, "%s: %s", g->path, msg);
        tok_free(t);
        t = NULL;
    }
    cJSON_Delete(b.root);
    return t;
}

char *tok_gguf_json(const Gguf *g, Err *e) {
    Built b;
    char *s = build(g, &b, e) == 0 ? cJSON_Print(b.root) : NULL;
    cJSON_Delete(b.root);
    return s;
}

/* ---- the tokenizer of a model path -------------------------------------------------- */
/* where tok_for_model looks for a tokenizer.json (beside a file, or inside a directory) */
static void json_path(const char *model_path, char *p, size_t cap) {
    struct stat st;
    if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(p, cap, "%s/tokenizer.json", model_path);
    else {
        const char *sl = strrchr(model_path, '/');
        snprintf(p, cap, "%.*s/tokenizer.json", sl ? (int)(sl - model_path) : 1, sl ? model_path : ".");
    }
}

int tok_model_has_tokenizer(const char *model_path) {
    if (gguf_is_gguf(model_path)) {
        Gguf g;
        Err e;
        if (gguf_open(model_path, &g, &e)) return 1;     /* tok_for_model will say why */
        int has = gguf_find(&g, "tokenizer.ggml.model") != NULL;
        gguf_close(&g);
        return has;
    }
    char p[4200];
    json_path(model_path, p, sizeof p);
    return access(p, R_OK) == 0;
}

/* config.json's eos_token_id (a number or a list) beside tokenizer.json, when there is one */
static int config_eos(Tokenizer *t, const char *tok_json, Err *e) {
    char p[4200];
    const char *sl = strrchr(tok_json, '/');
    snprintf(p, sizeof p, "%.*s/config.json", (int)(sl - tok_json), tok_json);
    if (access(p, R_OK) != 0) return 0;
    char *txt = read_file(p, 16u << 20, NULL, e);
    if (!txt) return -1;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id");
    int ids[8], n = 0, rc = 0;
    if (cJSON_IsNumber(eos)) ids[n++] = eos->valueint;
    for (const cJSON *x = cJSON_IsArray(eos) ? eos->child : NULL; x && n < 8; x = x->next)
        if (cJSON_IsNumber(x)) ids[n++] = x->valueint;
    if (n && tok_set_eos(t, ids, n, e)) {
        char msg[sizeof e->msg];
        snprintf(msg, sizeof msg, "%s", e->msg);
        rc = err_set(e, "%s: eos_token_id: %s", p, msg);
    }
    cJSON_Delete(j);
    return rc;
}

Tokenizer *tok_for_model(const char *model_path, Err *e) {
    struct stat st;
    if (stat(model_path, &st) != 0) { err_set(e, "%s: cannot open: %s", model_path, strerror(errno)); return NULL; }
    if (S_ISREG(st.st_mode) && gguf_is_gguf(model_path)) {
        Gguf g;
        if (gguf_open(model_path, &g, e)) return NULL;
        Tokenizer *t = tok_from_gguf(&g, e);
        gguf_close(&g);
        return t;
    }
    char p[4200];
    json_path(model_path, p, sizeof p);
    if (access(p, R_OK) != 0) { err_set(e, "%s: no tokenizer (%s: %s)", model_path, p, strerror(errno)); return NULL; }
    Tokenizer *t = tok_load(p, e);
    if (t && config_eos(t, p, e)) { tok_free(t); t = NULL; }
    return t;
}
