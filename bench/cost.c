/*
 * cost.c - see cost.h.
 */
#include "cost.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

static double num(const cJSON *o, const char *k, int *bad) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0) { *bad = 1; return 0; }
    return v->valuedouble;
}

int hw_load(const char *path, Gpu **gpus, int *n, Err *e) {
    char *txt = read_file(path, 4u << 20, NULL, e);
    if (!txt) return -1;
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    if (!root) return err_set(e, "%s: malformed JSON", path);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "gpus");
    if (!cJSON_IsArray(arr)) { cJSON_Delete(root); return err_set(e, "%s: gpus: expected an array", path); }
    int k = cJSON_GetArraySize(arr), i = 0;
    Gpu *g = xcalloc((size_t)k + 1, sizeof *g);
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(it, "source");
        int bad = !cJSON_IsString(nm) || !*nm->valuestring;
        if (!bad) snprintf(g[i].name, sizeof g[i].name, "%s", nm->valuestring);
        g[i].bf16_tflops = num(it, "bf16_tflops", &bad);
        g[i].fp8_tflops = num(it, "fp8_tflops", &bad);
        g[i].hbm_gbs = num(it, "hbm_gbs", &bad);
        g[i].memory_gb = num(it, "memory_gb", &bad);
        g[i].usd_per_hour = num(it, "usd_per_hour", &bad);
        if (cJSON_IsString(src)) snprintf(g[i].source, sizeof g[i].source, "%s", src->valuestring);
        if (bad || g[i].bf16_tflops <= 0) {
            free(g);
            cJSON_Delete(root);
            return err_set(e, "%s: gpus[%d]: needs name, bf16_tflops > 0, fp8_tflops, hbm_gbs, memory_gb, usd_per_hour (numbers >= 0)", path, i);
        }
    }
    cJSON_Delete(root);
    *gpus = g;
    *n = k;
    return 0;
}

static void squash(const char *s, char *out, size_t len) {
    size_t k = 0;
    for (; *s && k + 1 < len; s++)
        if (!isspace((unsigned char)*s) && *s != '-' && *s != '_') out[k++] = (char)tolower((unsigned char)*s);
    out[k] = 0;
}

const Gpu *hw_find(const Gpu *g, int n, const char *name) {
    char a[128], b[128];
    squash(name, a, sizeof a);
    for (int i = 0; i < n; i++) {
        squash(g[i].name, b, sizeof b);
        if (!strcmp(a, b)) return &g[i];
    }
    for (int i = 0; i < n; i++) {        /* "H100" finds "H100 SXM" when unambiguous */
        squash(g[i].name, b, sizeof b);
        if (!strncmp(a, b, strlen(a))) {
            for (int j = i + 1; j < n; j++) {
                char c[128];
                squash(g[j].name, c, sizeof c);
                if (!strncmp(a, c, strlen(a))) return NULL;
            }
            return &g[i];
        }
    }
    return NULL;
}

int cost_estimate(const Analytic *a, const Gpu *g, const CostIn *in, CostOut *out, Err *e) {
    memset(out, 0, sizeof *out);
    if (!(in->tokens > 0)) return err_set(e, "training tokens must be positive");
    if ((in->mfu > 0) == (in->gpu_hours > 0)) return err_set(e, "give exactly one of an MFU or reported GPU-hours");
    if (in->mfu > 1) return err_set(e, "MFU %.3g is above 1 (give a fraction, e.g. 0.4)", in->mfu);
    double peak = (in->fp8 ? g->fp8_tflops : g->bf16_tflops) * 1e12;
    if (!(peak > 0)) return err_set(e, "%s has no %s peak", g->name, in->fp8 ? "FP8" : "BF16");
    out->train_flops = analytic_train_flops(a, in->tokens, in->seq_len);
    out->peak_flops = peak;
    if (in->mfu > 0) {
        out->mfu = in->mfu;
        out->gpu_hours = out->train_flops / (peak * in->mfu) / 3600.0;
    } else {
        out->gpu_hours = in->gpu_hours;
        out->mfu = out->train_flops / (in->gpu_hours * 3600.0 * peak);
    }
    out->price = in->price >= 0 ? in->price : g->usd_per_hour;
    out->cost_usd = out->gpu_hours * out->price;
    out->days = in->gpus > 0 ? out->gpu_hours / in->gpus / 24.0 : 0;
    return 0;
}
