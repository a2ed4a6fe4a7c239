/*
 * suite.c - see suite.h.
 */
#define _GNU_SOURCE
#include "suite.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct { const char *file; Err *e; int bad; } Ctx;

static void fail(Ctx *c, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(Ctx *c, const char *path, const char *fmt, ...) {
    if (c->bad) return;
    c->bad = 1;
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    err_set(c->e, "%s: %s: %s", c->file, path, m);
}

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int get_posint(Ctx *c, const cJSON *o, const char *k, const char *at, int dflt, int required, int allow_zero) {
    const cJSON *v = get(o, k);
    char p[256];
    snprintf(p, sizeof p, "%s.%s", at, k);
    if (!v) { if (required) fail(c, p, "missing"); return dflt; }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (allow_zero ? 0 : 1) || v->valuedouble > 1e8) {
        fail(c, p, "expected a %s integer", allow_zero ? "non-negative" : "positive");
        return dflt;
    }
    return (int)v->valuedouble;
}

static double get_pos(Ctx *c, const cJSON *o, const char *k, const char *at, double dflt, int required) {
    const cJSON *v = get(o, k);
    char p[256];
    snprintf(p, sizeof p, "%s.%s", at, k);
    if (!v) { if (required) fail(c, p, "missing"); return dflt; }
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble)) { fail(c, p, "expected a positive number"); return dflt; }
    return v->valuedouble;
}

static const char *get_str(Ctx *c, const cJSON *o, const char *k, const char *at, int required) {
    const cJSON *v = get(o, k);
    char p[256];
    snprintf(p, sizeof p, "%s.%s", at, k);
    if (!v) { if (required) fail(c, p, "missing"); return NULL; }
    if (!cJSON_IsString(v) || !*v->valuestring) { fail(c, p, "expected a non-empty string"); return NULL; }
    if (strlen(v->valuestring) > 120 && strcmp(k, "config") && strcmp(k, "checkpoint") && strcmp(k, "source") &&
        strcmp(k, "label") && strcmp(k, "hardware") && strcmp(k, "published") && strcmp(k, "description") &&
        strcmp(k, "fetch_hint")) {
        fail(c, p, "longer than 120 characters");
        return NULL;
    }
    if (strlen(v->valuestring) > 250 && !strcmp(k, "fetch_hint")) { fail(c, p, "longer than 250 characters"); return NULL; }
    return v->valuestring;
}

/* path relative to the suite's directory; with registry (model configs only), a bare
 * name (no '/', no .json) is a registry name: configs/NAME.json beside the suite. -1
 * when too long. */
static int resolve_in(const char *suite_path, const char *rel, int registry, char *out, size_t len) {
    if (rel[0] == '/') return (size_t)snprintf(out, len, "%s", rel) < len ? 0 : -1;
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s", suite_path) >= sizeof dir) return -1;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
    int n;
    if (registry && !strchr(rel, '/') && !strstr(rel, ".json")) n = snprintf(out, len, "%s/configs/%s.json", dir, rel);
    else n = snprintf(out, len, "%s/%s", dir, rel);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}
static int resolve(const char *suite_path, const char *rel, char *out, size_t len) { return resolve_in(suite_path, rel, 0, out, len); }

/* 1: a GGUF file (a regular file starting with the magic, or a missing path ending in
 * .gguf); 0: a directory (or a missing path otherwise); -1: a file that is not GGUF */
static int checkpoint_kind(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        size_t n = strlen(path);
        return n >= 5 && !strcasecmp(path + n - 5, ".gguf");
    }
    if (S_ISDIR(st.st_mode)) return 0;
    char magic[4] = { 0 };
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    return got == 4 && !memcmp(magic, "GGUF", 4) ? 1 : -1;
}

const char *suite_model_file(const SuiteModel *m) {
    return m->gguf ? m->checkpoint : m->config;
}

static void parse_models(Ctx *c, const cJSON *arr, Suite *s) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) { fail(c, "models", "expected a non-empty array"); return; }
    s->n_models = cJSON_GetArraySize(arr);
    s->models = xcalloc((size_t)s->n_models, sizeof *s->models);
    int i = 0;
    for (const cJSON *m = arr->child; m && !c->bad; m = m->next, i++) {
        char at[64];
        snprintf(at, sizeof at, "models[%d]", i);
        SuiteModel *sm = &s->models[i];
        if (!cJSON_IsObject(m)) { fail(c, at, "expected an object"); break; }
        const char *nm = get_str(c, m, "name", at, 1);
        const char *cfg = get_str(c, m, "config", at, 0);
        const char *ck = get_str(c, m, "checkpoint", at, 0);
        if (c->bad) break;
        snprintf(sm->name, sizeof sm->name, "%s", nm);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->models[j].name, nm)) { char p[80]; snprintf(p, sizeof p, "%s.name", at); fail(c, p, "\"%s\" is used twice", nm); }
        if (!cfg == !ck) { fail(c, at, "give exactly one of \"config\" (dummy weights) or \"checkpoint\" (a directory or a .gguf file)"); break; }
        const cJSON *op = get(m, "optional");
        if (op && !cJSON_IsBool(op)) { char p[80]; snprintf(p, sizeof p, "%s.optional", at); fail(c, p, "expected true or false"); break; }
        sm->optional = op && cJSON_IsTrue(op);
        const char *hint = get_str(c, m, "fetch_hint", at, 0);
        if (c->bad) break;
        snprintf(sm->fetch_hint, sizeof sm->fetch_hint, "%s", hint ? hint : s->fetch_hint);
        int too_long;
        if (ck) {
            too_long = resolve(s->path, ck, sm->checkpoint, sizeof sm->checkpoint - 16);
            int kind = too_long ? 0 : checkpoint_kind(sm->checkpoint);
            if (kind < 0) {
                char p[80];
                snprintf(p, sizeof p, "%s.checkpoint", at);
                fail(c, p, "%s: not a GGUF file (give a Hugging Face directory or a .gguf file)", sm->checkpoint);
                break;
            }
            sm->gguf = kind == 1;
            if (!too_long && !sm->gguf) snprintf(sm->config, sizeof sm->config, "%.4000s/config.json", sm->checkpoint);
        } else {
            too_long = resolve_in(s->path, cfg, 1, sm->config, sizeof sm->config);
        }
        if (too_long) { fail(c, at, "path too long"); break; }
        const char *need = suite_model_file(sm);
        if (access(need, R_OK) != 0) {
            if (!sm->optional) {
                char p[80];
                snprintf(p, sizeof p, "%s.%s", at, ck ? "checkpoint" : "config");
                fail(c, p, "%s: no such file", need);
                break;
            }
            sm->missing = 1;
        }
        if (!strcmp(need, s->path)) { fail(c, at, "the config is the suite itself"); break; }
        const cJSON *ov = get(m, "overrides");
        if (ov) {
            if (!cJSON_IsObject(ov) || ck) { char p[80]; snprintf(p, sizeof p, "%s.overrides", at); fail(c, p, "expected an object (dummy models only)"); break; }
            sm->overrides = cJSON_PrintUnformatted(ov);
        }
        const cJSON *me = get(m, "measure");
        if (me && !cJSON_IsBool(me)) { char p[80]; snprintf(p, sizeof p, "%s.measure", at); fail(c, p, "expected true or false"); break; }
        sm->measure = me ? cJSON_IsTrue(me) : 0;
        const char *dt = get_str(c, m, "dtype", at, 0);
        sm->dtype = DT_BF16;
        if (dt && dtype_parse(dt, &sm->dtype)) { char p[80]; snprintf(p, sizeof p, "%s.dtype", at); fail(c, p, "unknown dtype \"%s\" (f32, bf16, f16, fp8, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k)", dt); }
        const char *kd = get_str(c, m, "kv_dtype", at, 0);
        sm->kv_dtype = DT_F32;
        sm->kv_dtype_set = kd != NULL;
        if (kd && (dtype_parse(kd, &sm->kv_dtype) || (sm->kv_dtype != DT_F32 && sm->kv_dtype != DT_BF16 && sm->kv_dtype != DT_F8_E4M3))) { char p[80]; snprintf(p, sizeof p, "%s.kv_dtype", at); fail(c, p, "\"%s\": the KV cache is f32, bf16 or fp8", kd); }
        sm->layers = get_posint(c, m, "layers", at, 0, 0, 1);
        sm->seed = (uint64_t)get_posint(c, m, "seed", at, 1, 0, 1);
        const char *sf = get_str(c, m, "scaled_from", at, 0);
        if (sf) snprintf(sm->scaled_from, sizeof sm->scaled_from, "%s", sf);
        sm->train_tokens = get_pos(c, m, "train_tokens", at, 0, 0);
        sm->tp = get_posint(c, m, "tp", at, 0, 0, 1);
        sm->ep = get_posint(c, m, "ep", at, 0, 0, 1);
        const char *tk = get_str(c, m, "tokenizer", at, 0);
        char p[80];
        snprintf(p, sizeof p, "%s.tokenizer", at);
        if (tk && resolve(s->path, tk, sm->tokenizer, sizeof sm->tokenizer)) fail(c, p, "path too long");
        else if (tk && access(sm->tokenizer, R_OK) != 0) fail(c, p, "%s: no such file", sm->tokenizer);
    }
}

static void parse_work(Ctx *c, const cJSON *arr, Suite *s) {
    if (!arr) return;
    if (!cJSON_IsArray(arr)) { fail(c, "workloads", "expected an array"); return; }
    s->n_work = cJSON_GetArraySize(arr);
    s->work = xcalloc((size_t)s->n_work + 1, sizeof *s->work);
    int i = 0;
    for (const cJSON *w = arr->child; w && !c->bad; w = w->next, i++) {
        char at[64];
        snprintf(at, sizeof at, "workloads[%d]", i);
        Workload *wl = &s->work[i];
        if (!cJSON_IsObject(w)) { fail(c, at, "expected an object"); break; }
        const char *nm = get_str(c, w, "name", at, 1);
        if (nm) snprintf(wl->name, sizeof wl->name, "%s", nm);
        wl->prefill = get_posint(c, w, "prefill", at, 0, 0, 1);
        wl->depth = get_posint(c, w, "depth", at, 0, 0, 1);
        wl->decode = get_posint(c, w, "decode", at, 0, 0, 1);
        wl->reps = get_posint(c, w, "reps", at, 3, 0, 0);
        wl->warmup = get_posint(c, w, "warmup", at, 1, 0, 1);
        const cJSON *b = get(w, "batch");
        char p[80];
        snprintf(p, sizeof p, "%s.batch", at);
        if (!b) { wl->batch[0] = 1; wl->n_batch = 1; }
        else if (cJSON_IsNumber(b)) { wl->batch[0] = get_posint(c, w, "batch", at, 1, 1, 0); wl->n_batch = 1; }
        else if (cJSON_IsArray(b) && cJSON_GetArraySize(b) > 0 && cJSON_GetArraySize(b) <= 16) {
            for (const cJSON *x = b->child; x; x = x->next) {
                if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 1 || x->valuedouble > 4096) {
                    fail(c, p, "expected a positive integer (or a list of 1..16 of them, each <= 4096)");
                    break;
                }
                wl->batch[wl->n_batch++] = (int)x->valuedouble;
            }
        } else fail(c, p, "expected a positive integer (or a list of 1..16 of them, each <= 4096)");
        if (!c->bad && !wl->prefill && !wl->decode) fail(c, at, "needs \"prefill\" or \"decode\" (or both)");
        if (!c->bad && wl->reps < 3) { snprintf(p, sizeof p, "%s.reps", at); fail(c, p, "at least 3 repetitions (median and spread need them)"); }
        for (int j = 0; j < i && !c->bad; j++)
            if (!strcmp(s->work[j].name, wl->name)) { snprintf(p, sizeof p, "%s.name", at); fail(c, p, "\"%s\" is used twice", wl->name); }
    }
}

static void parse_evals(Ctx *c, const cJSON *arr, Suite *s) {
    if (!arr) return;
    if (!cJSON_IsArray(arr)) { fail(c, "evals", "expected an array"); return; }
    s->n_evals = cJSON_GetArraySize(arr);
    s->evals = xcalloc((size_t)s->n_evals + 1, sizeof *s->evals);
    int i = 0;
    for (const cJSON *x = arr->child; x && !c->bad; x = x->next, i++) {
        char at[64], p[96];
        snprintf(at, sizeof at, "evals[%d]", i);
        SuiteEval *ev = &s->evals[i];
        if (!cJSON_IsObject(x)) { fail(c, at, "expected an object"); break; }
        const char *tk = get_str(c, x, "task", at, 1);
        if (c->bad) break;
        snprintf(p, sizeof p, "%s.task", at);
        if (resolve(s->path, tk, ev->task, sizeof ev->task)) { fail(c, p, "path too long"); break; }
        if (!strcmp(ev->task, s->path)) { fail(c, p, "the suite refers to itself"); break; }
        if (access(ev->task, R_OK) != 0) { fail(c, p, "%s: no such file", ev->task); break; }
        const cJSON *ms = get(x, "models");
        if (ms && (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) > 16)) { snprintf(p, sizeof p, "%s.models", at); fail(c, p, "expected a list of up to 16 model names"); break; }
        int k = 0;
        for (const cJSON *m = ms ? ms->child : NULL; m && !c->bad; m = m->next, k++) {
            snprintf(p, sizeof p, "%s.models[%d]", at, k);
            int found = -1;
            for (int j = 0; j < s->n_models && cJSON_IsString(m); j++) if (!strcmp(s->models[j].name, m->valuestring)) found = j;
            if (found < 0) fail(c, p, "not a model of this suite");
            else if (!s->models[found].measure) fail(c, p, "\"%s\" is not measured (\"measure\": true)", m->valuestring);
            else snprintf(ev->models[ev->n_models++], 128, "%s", m->valuestring);
        }
    }
}

static void parse_cost(Ctx *c, const cJSON *arr, Suite *s) {
    if (!arr) return;
    if (!cJSON_IsArray(arr)) { fail(c, "cost", "expected an array"); return; }
    s->n_cost = cJSON_GetArraySize(arr);
    s->cost = xcalloc((size_t)s->n_cost + 1, sizeof *s->cost);
    int i = 0;
    for (const cJSON *x = arr->child; x && !c->bad; x = x->next, i++) {
        char at[64], p[96];
        snprintf(at, sizeof at, "cost[%d]", i);
        CostScenario *cs = &s->cost[i];
        if (!cJSON_IsObject(x)) { fail(c, at, "expected an object"); break; }
        const char *mn = get_str(c, x, "model", at, 1), *gp = get_str(c, x, "gpu", at, 1);
        const char *lb = get_str(c, x, "label", at, 0), *src = get_str(c, x, "source", at, 0);
        const char *pr = get_str(c, x, "precision", at, 0);
        cs->tokens = get_pos(c, x, "tokens", at, 0, 1);
        cs->seq_len = get_pos(c, x, "seq_len", at, 4096, 0);
        cs->mfu = get_pos(c, x, "mfu", at, 0, 0);
        cs->gpu_hours = get_pos(c, x, "gpu_hours", at, 0, 0);
        cs->gpus = get_posint(c, x, "gpus", at, 0, 0, 0);
        const cJSON *pv = get(x, "price");
        cs->price = -1;
        if (pv) {
            snprintf(p, sizeof p, "%s.price", at);
            if (!cJSON_IsNumber(pv) || pv->valuedouble < 0) fail(c, p, "expected a non-negative number");
            else cs->price = pv->valuedouble;
        }
        if (c->bad) break;
        snprintf(cs->model, sizeof cs->model, "%s", mn);
        snprintf(cs->gpu, sizeof cs->gpu, "%s", gp);
        if (lb) snprintf(cs->label, sizeof cs->label, "%s", lb);
        if (src) snprintf(cs->source, sizeof cs->source, "%s", src);
        if (pr && strcmp(pr, "bf16") && strcmp(pr, "fp8")) { snprintf(p, sizeof p, "%s.precision", at); fail(c, p, "expected \"bf16\" or \"fp8\""); }
        cs->fp8 = pr && !strcmp(pr, "fp8");
        if ((cs->mfu > 0) == (cs->gpu_hours > 0)) fail(c, at, "give exactly one of \"mfu\" or \"gpu_hours\"");
        if (cs->mfu > 1) { snprintf(p, sizeof p, "%s.mfu", at); fail(c, p, "a fraction, at most 1"); }
        int found = 0;
        for (int j = 0; j < s->n_models; j++) found |= !strcmp(s->models[j].name, cs->model);
        if (!found) { snprintf(p, sizeof p, "%s.model", at); fail(c, p, "\"%s\" is not a model of this suite", cs->model); }
        if (!c->bad && !hw_find(s->gpus, s->n_gpus, cs->gpu)) { snprintf(p, sizeof p, "%s.gpu", at); fail(c, p, "no GPU \"%s\" in the hardware profiles", cs->gpu); }
    }
}

int suite_load(const char *path, Suite *s, Err *e) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    char *txt = read_file(path, 16u << 20, NULL, e);
    if (!txt) return -1;
    cJSON *root = cJSON_Parse(txt);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= txt ? (long)(at - txt) : -1;
        free(txt);
        return err_set(e, "%s: malformed JSON near byte %ld", path, off);
    }
    free(txt);
    Ctx c = { path, e, 0 };
    if (!cJSON_IsObject(root)) fail(&c, "(top)", "expected an object");
    const char *nm = c.bad ? NULL : get_str(&c, root, "name", "(top)", 1);
    if (nm) {
        for (const char *p = nm; *p && !c.bad; p++)
            if (!(((*p | 32) >= 'a' && (*p | 32) <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
                fail(&c, "name", "use letters, digits, '-', '_' and '.' only");
        snprintf(s->name, sizeof s->name, "%s", nm);
    }
    /* hardware first: cost scenarios refer to it */
    if (!c.bad) {
        const char *hw = get_str(&c, root, "hardware", "(top)", 0);
        char hp[4096];
        if (resolve(path, hw ? hw : "hardware.json", hp, sizeof hp)) fail(&c, "hardware", "path too long");
        if (!c.bad && !strcmp(hp, path)) fail(&c, "hardware", "the suite refers to itself");
        if (!c.bad && hw_load(hp, &s->gpus, &s->n_gpus, e)) c.bad = 1;
    }
    if (!c.bad) {
        const char *hint = get_str(&c, root, "fetch_hint", "(top)", 0);
        if (hint) snprintf(s->fetch_hint, sizeof s->fetch_hint, "%s", hint);
    }
    if (!c.bad) parse_models(&c, get(root, "models"), s);
    if (!c.bad) parse_work(&c, get(root, "workloads"), s);
    if (!c.bad) parse_cost(&c, get(root, "cost"), s);
    if (!c.bad) parse_evals(&c, get(root, "evals"), s);
    if (!c.bad) {
        const cJSON *bk = get(root, "backends");
        if (!bk) { snprintf(s->backends[0], 16, "cpu"); s->n_backends = 1; }
        else if (!cJSON_IsArray(bk) || cJSON_GetArraySize(bk) < 1 || cJSON_GetArraySize(bk) > 4) fail(&c, "backends", "expected a list of 1..4 names");
        else {
            int i = 0;
            for (const cJSON *b = bk->child; b && !c.bad; b = b->next, i++) {
                char p[32];
                snprintf(p, sizeof p, "backends[%d]", i);
                if (!cJSON_IsString(b) || (strcmp(b->valuestring, "cpu") && strcmp(b->valuestring, "cuda") && strcmp(b->valuestring, "auto")))
                    fail(&c, p, "expected \"cpu\", \"cuda\" or \"auto\"");
                else snprintf(s->backends[s->n_backends++], 16, "%s", b->valuestring);
            }
        }
    }
    if (!c.bad) {
        const char *pub = get_str(&c, root, "published", "(top)", 0);
        if (pub) {
            if (resolve(path, pub, s->published, sizeof s->published)) fail(&c, "published", "path too long");
            else if (!strcmp(s->published, path)) fail(&c, "published", "the suite refers to itself");
            else if (access(s->published, R_OK) != 0) fail(&c, "published", "%s: no such file", s->published);
        }
    }
    if (!c.bad) {
        const cJSON *cl = get(root, "context_lengths");
        if (cl && (!cJSON_IsArray(cl) || cJSON_GetArraySize(cl) > 32)) fail(&c, "context_lengths", "expected a list of up to 32 positive numbers");
        for (const cJSON *x = cl ? cl->child : NULL; x && !c.bad; x = x->next) {
            if (!cJSON_IsNumber(x) || !(x->valuedouble > 0)) fail(&c, "context_lengths", "expected a list of up to 32 positive numbers");
            else s->ctx_lengths[s->n_ctx++] = x->valuedouble;
        }
        if (!cl) { double d[] = { 1024, 4096, 16384, 32768, 65536, 131072 }; for (int i = 0; i < 6; i++) s->ctx_lengths[s->n_ctx++] = d[i]; }
        s->stream_mib = get_posint(&c, root, "stream_mib", "(top)", 256, 0, 0);
    }
    if (!c.bad) {
        const cJSON *rk = get(root, "ranks");
        if (rk && (!cJSON_IsString(rk) || (strcmp(rk->valuestring, "spread") && strcmp(rk->valuestring, "split"))))
            fail(&c, "ranks", "expected \"spread\" (each cell on one rank, the cells dealt over the ranks) or \"split\" "
                              "(every cell on all ranks, the model split over them)");
        else s->ranks_split = rk && !strcmp(rk->valuestring, "split");
    }
    cJSON_Delete(root);
    if (c.bad) { suite_free(s); return -1; }
    return 0;
}

void suite_free(Suite *s) {
    for (int i = 0; i < s->n_models; i++) free(s->models[i].overrides);
    free(s->models); free(s->work); free(s->gpus); free(s->cost); free(s->evals);
    memset(s, 0, sizeof *s);
}

char *suite_model_config_json(const SuiteModel *m, Err *e) {
    if (m->gguf) { err_set(e, "%s: a GGUF checkpoint keeps its config in its metadata", m->checkpoint); return NULL; }
    char *txt = read_file(m->config, 16u << 20, NULL, e);
    if (!txt || !m->overrides) return txt;
    cJSON *root = cJSON_Parse(txt), *ov = cJSON_Parse(m->overrides);
    free(txt);
    if (!root || !ov || !cJSON_IsObject(root)) {
        cJSON_Delete(root); cJSON_Delete(ov);
        err_set(e, "%s: malformed JSON", m->config);
        return NULL;
    }
    for (cJSON *it = ov->child; it; it = it->next) {
        cJSON *dup = cJSON_Duplicate(it, 1);
        if (cJSON_GetObjectItemCaseSensitive(root, it->string)) cJSON_ReplaceItemInObjectCaseSensitive(root, it->string, dup);
        else cJSON_AddItemToObject(root, it->string, dup);
    }
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root); cJSON_Delete(ov);
    return out;
}
