/*
 * info_cost.c - `effbench info` (the analytic model of one config) and `effbench cost`
 * (training compute and what it costs on a GPU profile).
 */
#include "cli.h"
#include "cost.h"

#include <stdio.h>
#include <stdlib.h>

/* config.json of a path: itself, or PATH/config.json for a directory */
static int load_config(const char *path, ModelConfig *c) {
    Model m;
    LoadOpts lo = { .dtype = DT_BF16, .dummy = 1, .shapes_only = 1 };
    Err e = { "" };
    if (model_load(&m, path, &lo, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    *c = m.cfg;
    model_free(&m);
    return 0;
}

/* The model split over each rank count of --ranks (or the --tp/--ep given): per GPU,
 * the weights it holds and its KV cache per token (from the same binding the engine
 * loads a rank's share with, shapes only: the largest rank's), and the bytes sent per
 * token of a step, by all GPUs together and by one (layout_predict, float32
 * activations, uniform routing, a decode step of 64 N tokens, each wanting its logits).
 * A count whose share would cut a block is refused. */
static int info_split(const Opts *o, const ModelConfig *c) {
    int *ns = NULL, nn = 0;
    if (o->ranks) {
        if (parse_int_list(o->ranks, &ns, &nn) || nn == 0) { fprintf(stderr, "effbench info: --ranks takes counts like 8,16,32,64\n"); free(ns); return -2; }
    } else {
        ns = xmalloc(sizeof(int));
        ns[0] = o->load.tp > o->load.ep ? o->load.tp : o->load.ep;
        nn = 1;
    }
    for (int i = 0; i < nn; i++)
        if (ns[i] < 1) { fprintf(stderr, "effbench info: --ranks takes counts of 1 or more, got %d\n", ns[i]); free(ns); return -2; }
    double kb = dtype_bits(o->kv_dtype) / 8;
    int csv = o->format && !strcmp(o->format, "csv");
    if (csv) printf("model,gpus,tp,ep,weights_bytes_per_gpu,kv_bytes_per_token_per_gpu,sent_bytes_per_token,"
                    "sent_bytes_per_token_per_gpu,attention,ffn,dispatch,combine,gather,lm_head\n");
    else printf("\nsplit over GPUs (%s weights, %s KV cache; bytes sent per token of a decode step of 64 tokens per GPU, all GPUs "
                "together unless said, float32 activations, uniform routing):\n\n| GPUs | layout | weights per GPU | KV per token "
                "per GPU | sent per token | per GPU | attention | FFN | MoE dispatch + combine | MoE gather | lm_head |\n"
                "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", dtype_name(o->weight_dtype), dtype_name(o->kv_dtype));
    for (int i = 0; i < nn; i++) {
        int N = ns[i];
        int tp = o->load.tp ? (o->load.tp == 1 ? 1 : N) : 0, ep = o->load.ep ? (o->load.ep == 1 ? 1 : N) : 0;
        double wmax = 0, kvmax = 0;
        Shard sh0 = { 0 };
        Err e = { "" };
        int bad = 0;
        for (int r = 0; r < N && !bad; r++) {
            Model m;
            LoadOpts lo = { .dtype = o->weight_dtype, .dummy = 1, .shapes_only = 1, .ranks = N, .rank = r, .tp = tp, .ep = ep };
            if (model_load(&m, o->model, &lo, &e)) { bad = 1; break; }
            if ((double)m.weight_bytes > wmax) wmax = (double)m.weight_bytes;
            double kv = (double)kv_row_floats(&m) * c->n_layers * kb;
            if (kv > kvmax) kvmax = kv;
            if (r == 0) sh0 = m.sh;
            model_free(&m);
        }
        if (bad) {                               /* this count cannot split the model: say why, go on */
            if (csv) fprintf(stderr, "effbench info: %d GPUs refused: %s\n", N, e.msg);
            else printf("| %d | refused: %s | | | | | | | | | |\n", N, e.msg);
            continue;
        }
        int T = 64 * N;
        double *ps = xcalloc((size_t)N * CK_COUNT, sizeof(double)), *pr = xcalloc((size_t)N * CK_COUNT, sizeof(double));
        layout_predict(c, &sh0, T, T, NULL, ps, pr);
        double k[CK_COUNT] = { 0 }, tot = 0;
        for (int r = 0; r < N; r++)
            for (int j = 0; j < CK_CONTROL; j++) { k[j] += ps[(size_t)r * CK_COUNT + j] / T; tot += ps[(size_t)r * CK_COUNT + j] / T; }
        free(ps); free(pr);
        char lay[32] = "-";
        if (N > 1) snprintf(lay, sizeof lay, "tp%d ep%d", sh0.tp, sh0.ep);
        if (csv)
            printf("%s,%d,%d,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n", o->model, N, N > 1 ? sh0.tp : 1, N > 1 ? sh0.ep : 1,
                   wmax, kvmax, tot, tot / N, k[CK_ATTN], k[CK_FFN], k[CK_DISPATCH], k[CK_COMBINE], k[CK_GATHER], k[CK_HEAD]);
        else
            printf("| %d | %s | %.2f GB | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", N, lay, wmax / 1e9, kvmax, tot,
                   tot / N, k[CK_ATTN], k[CK_FFN], k[CK_DISPATCH] + k[CK_COMBINE], k[CK_GATHER], k[CK_HEAD]);
    }
    free(ns);
    return 0;
}

int cmd_info(const Opts *o) {
    ModelConfig c;
    if (load_config(o->model, &c)) return -1;
    if (o->ranks || o->load.tp || o->load.ep) {
        if (!o->format || strcmp(o->format, "csv")) {
            Analytic a0;
            analytic_compute(&c, &a0);
            printf("%s (%s): %.3f B parameters, %.3f B active per token\n", o->model, c.model_type, a0.params_total / 1e9,
                   a0.params_active / 1e9);
        }
        return info_split(o, &c);
    }
    Analytic a;
    analytic_compute(&c, &a);
    double wb = dtype_bits(o->weight_dtype) / 8, kb = dtype_bits(o->kv_dtype) / 8;   /* Q4_K: 0.5625 */
    double kvt = a.kv_elems_per_token * kb, fl = analytic_flops_per_token(&a, o->ctx);
    double by = analytic_bytes_per_decode_token(&a, &c, o->ctx, wb, kb);
    if (o->json) {
        printf("{\"model\": \"%s\", \"model_type\": \"%s\", \"params_total\": %.0f, \"params_active\": %.0f, "
               "\"params_embedding\": %.0f, \"kv_bytes_per_token\": %.0f, \"kv_dtype\": \"%s\", \"ctx\": %.0f, "
               "\"flops_per_token\": %.6g, \"attn_flops_per_token_per_ctx\": %.6g, \"bytes_per_decode_token\": %.6g, "
               "\"weight_dtype\": \"%s\", \"moe_layers\": %d}\n",
               o->model, c.model_type, a.params_total, a.params_active, a.params_embedding, kvt, dtype_name(o->kv_dtype),
               o->ctx, fl, a.attn_flops_per_ctx, by, dtype_name(o->weight_dtype), a.n_moe_layers);
        return 0;
    }
    printf("%s (%s)\n", o->model, c.model_type);
    printf("  params_total            %.3f B\n", a.params_total / 1e9);
    printf("  params_active           %.3f B (per token; embedding table %.3f B)\n", a.params_active / 1e9, a.params_embedding / 1e9);
    printf("  kv_bytes_per_token      %.0f (%s, all %d layers)\n", kvt, dtype_name(o->kv_dtype), c.n_layers);
    printf("  flops_per_token         %.4g at context %.0f (attention %.4g per context position)\n", fl, o->ctx, a.attn_flops_per_ctx);
    printf("  bytes_per_decode_token  %.4g at context %.0f (%s weights, batch 1)\n", by, o->ctx, dtype_name(o->weight_dtype));
    return 0;
}

int cmd_cost(const Opts *o) {
    if (!o->tokens || !o->gpu) { fprintf(stderr, "effbench cost: --tokens N and --gpu NAME are required\n"); return -2; }
    char *end;
    double tokens = strtod(o->tokens, &end);
    if (*end || !(tokens > 0)) { fprintf(stderr, "effbench cost: --tokens expects a positive number, got \"%s\"\n", o->tokens); return -2; }
    if ((o->mfu > 0) == (o->gpu_hours > 0)) { fprintf(stderr, "effbench cost: give exactly one of --mfu F or --gpu-hours H\n"); return -2; }
    ModelConfig c;
    if (load_config(o->model, &c)) return -1;
    char hp[4200];
    if (o->hardware) snprintf(hp, sizeof hp, "%s", o->hardware);
    else shipped_path("hardware.json", hp, sizeof hp);
    Gpu *gpus;
    int ng;
    Err e = { "" };
    if (hw_load(hp, &gpus, &ng, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    const Gpu *g = hw_find(gpus, ng, o->gpu);
    if (!g) {
        fprintf(stderr, "effbench cost: no GPU \"%s\" in %s (have:", o->gpu, hp);
        for (int i = 0; i < ng; i++) fprintf(stderr, "%s \"%s\"", i ? "," : "", gpus[i].name);
        fprintf(stderr, ")\n");
        free(gpus);
        return -1;
    }
    Analytic a;
    analytic_compute(&c, &a);
    CostIn in = { .tokens = tokens, .seq_len = o->seq_len, .fp8 = o->fp8, .mfu = o->mfu, .gpu_hours = o->gpu_hours,
                  .gpus = o->gpus, .price = o->price };
    CostOut r;
    if (cost_estimate(&a, g, &in, &r, &e)) { fprintf(stderr, "effbench cost: %s\n", e.msg); free(gpus); return -1; }
    if (o->json) {
        printf("{\"model\": \"%s\", \"tokens\": %.6g, \"seq_len\": %.0f, \"gpu\": \"%s\", \"precision\": \"%s\", "
               "\"peak_flops\": %.6g, \"train_flops\": %.6g, \"gpu_hours\": %.6g, \"mfu\": %.6g, \"mfu_given\": %s, "
               "\"gpus\": %d, \"days\": %.6g, \"usd_per_gpu_hour\": %.6g, \"cost_usd\": %.6g, \"params_active\": %.0f}\n",
               o->model, tokens, o->seq_len, g->name, o->fp8 ? "fp8" : "bf16", r.peak_flops, r.train_flops, r.gpu_hours,
               r.mfu, o->mfu > 0 ? "true" : "false", o->gpus, r.days, r.price, r.cost_usd, a.params_active);
    } else {
        printf("%s on %.4g tokens (sequences of %.0f), %s %s peak %.1f TFLOP/s\n", o->model, tokens, o->seq_len, g->name,
               o->fp8 ? "FP8" : "BF16", r.peak_flops / 1e12);
        printf("  train_flops  %.4g (6 x %.2f B active non-embedding params x tokens + attention)\n", r.train_flops,
               (a.params_active - a.params_embedding) / 1e9);
        printf("  gpu_hours    %.4g%s\n", r.gpu_hours, o->gpu_hours > 0 ? " (given)" : "");
        printf("  mfu          %.1f%%%s\n", 100 * r.mfu, o->mfu > 0 ? " (given)" : " (implied)");
        if (o->gpus) printf("  days         %.1f on %d GPUs\n", r.days, o->gpus);
        printf("  cost_usd     %.4g at $%.2f per GPU-hour\n", r.cost_usd, r.price);
    }
    free(gpus);
    return 0;
}
