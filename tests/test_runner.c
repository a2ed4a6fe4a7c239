/*
 * test_runner.c - the analytic model against hand counts, the cost estimator against
 * published training figures, suite parsing (good and bad files) and CSV round trips.
 *
 * Hand counts: each total below is written out from the tensor shapes of the config
 * (e.g. Llama-3.1-8B: 32 x (2 x 4096^2 + 2 x 4096 x 1024 + 3 x 4096 x 14336 + 2 x 4096)
 * + 2 x 128256 x 4096 + 4096); DeepSeek-V3 from the per-part counts of FACTS.md
 * (MLA 187,105,280 per layer, expert 44,040,192, dense FFN 396,361,728). They agree
 * with the published sizes (671B/37B, 405B, 8.03B, 7.62B, 72.7B, 46.7B/12.9B, 15.7B).
 */
#include "test.h"
#include "analytic.h"
#include "cost.h"
#include "suite.h"
#include "table.h"
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static struct { const char *cfg; double total, active, kv_bf16; } HAND[] = {
    { "deepseek-v3.json", 671026419200.0, 37552297472.0, 70272 },
    { "deepseek-v2-lite.json", 15706484224.0, 2661150208.0, 31104 },
    { "llama-3.1-8b.json", 8030261248.0, 8030261248.0, 131072 },
    { "llama-3.1-405b.json", 405853388800.0, 405853388800.0, 516096 },
    { "qwen2.5-7b.json", 7615616512.0, 7615616512.0, 57344 },
    { "qwen2.5-72b.json", 72706203648.0, 72706203648.0, 327680 },
    { "mixtral-8x7b.json", 46702792704.0, 12879925248.0, 131072 },
};

static void t_analytic_hand_counts(void) {
    for (size_t k = 0; k < sizeof HAND / sizeof HAND[0]; k++) {
        char p[256];
        snprintf(p, sizeof p, "suites/configs/%s", HAND[k].cfg);
        ModelConfig c;
        Err e = { "" };
        if (config_load(p, &c, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); continue; }
        Analytic a;
        analytic_compute(&c, &a);
        CHECK(a.params_total == HAND[k].total, "%s: params_total %.0f, hand count %.0f", HAND[k].cfg, a.params_total, HAND[k].total);
        CHECK(a.params_active == HAND[k].active, "%s: params_active %.0f, hand count %.0f", HAND[k].cfg, a.params_active, HAND[k].active);
        CHECK(a.kv_elems_per_token * 2 == HAND[k].kv_bf16, "%s: kv bytes/token %.0f, want %.0f", HAND[k].cfg, a.kv_elems_per_token * 2, HAND[k].kv_bf16);
        /* a second algorithm: the engine's binder enumerates the tensors of the same config */
        Model m;
        LoadOpts lo = { .dtype = DT_BF16, .dummy = 1, .shapes_only = 1 };
        if (model_load(&m, p, &lo, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); continue; }
        CHECK((double)m.n_params == a.params_total, "%s: binder counts %llu, analytic %.0f", HAND[k].cfg,
              (unsigned long long)m.n_params, a.params_total);
        model_free(&m);
    }
    /* FLOPs per token: 2 x non-embedding active params + attention (Llama-3.1-8B at 4096) */
    ModelConfig c;
    Err e;
    config_load("suites/configs/llama-3.1-8b.json", &c, &e);
    Analytic a;
    analytic_compute(&c, &a);
    double want = 2.0 * (8030261248.0 - 128256.0 * 4096) + 2.0 * 32 * 32 * (128 + 128) * 4096;
    CHECK(fabs(analytic_flops_per_token(&a, 4096) - want) < 1, "flops/token %.6g, want %.6g", analytic_flops_per_token(&a, 4096), want);
    double bytes = (8030261248.0 - 128256.0 * 4096 + 4096) * 2 + 131072.0 * 4096;
    CHECK(fabs(analytic_bytes_per_decode_token(&a, &c, 4096, 2, 2) - bytes) < 1, "decode bytes %.6g, want %.6g",
          analytic_bytes_per_decode_token(&a, &c, 4096, 2, 2), bytes);
}

static void t_cost_published(void) {
    Gpu *g;
    int n;
    Err e = { "" };
    if (hw_load("suites/hardware.json", &g, &n, &e)) { t_fail(__FILE__, __LINE__, "%s", e.msg); return; }
    const Gpu *h800 = hw_find(g, n, "H800"), *h100 = hw_find(g, n, "h100");
    CHECK(h800 && h100 && !strcmp(h100->name, "H100 SXM"), "GPU lookup");
    CHECK(hw_find(g, n, "H") == NULL, "an ambiguous prefix must not match");
    ModelConfig c;
    config_load("suites/configs/deepseek-v3.json", &c, &e);
    Analytic a;
    analytic_compute(&c, &a);
    /* DeepSeek-V3: 2.788M H800 GPU-hours at $2 = $5.576M (paper Table 1) */
    CostIn in = { .tokens = 14.8e12, .seq_len = 4096, .gpu_hours = 2.788e6, .price = 2.0 };
    CostOut r;
    CHECK(cost_estimate(&a, h800, &in, &r, &e) == 0, "%s", e.msg);
    CHECK(fabs(r.cost_usd - 5.576e6) < 1, "V3 cost %.6g, want 5.576e6", r.cost_usd);
    /* train FLOPs by hand: 6 x 36,625,618,432 x 14.8e12 + 3 x 2 x 61 x 128 x 320 x 2048 x 14.8e12 */
    double flops = 6.0 * 36625618432.0 * 14.8e12 + 3.0 * 2 * 61 * 128 * 320 * 2048.0 * 14.8e12;
    CHECK(fabs(r.train_flops / flops - 1) < 1e-12, "V3 train FLOPs %.6g, want %.6g", r.train_flops, flops);
    double mfu = flops / (2.788e6 * 3600 * 989.5e12);
    CHECK(fabs(r.mfu - mfu) < 1e-9, "V3 implied MFU %.4f, want %.4f", r.mfu, mfu);
    CHECK(r.mfu > 0.3 && r.mfu < 0.45, "V3 implied BF16 MFU %.3f outside the plausible 30-45%%", r.mfu);
    /* the inverse: that MFU gives back the GPU-hours */
    CostIn inv = { .tokens = 14.8e12, .seq_len = 4096, .mfu = r.mfu, .gpus = 2048, .price = -1 };
    CostOut r2;
    CHECK(cost_estimate(&a, h800, &inv, &r2, &e) == 0 && fabs(r2.gpu_hours / 2.788e6 - 1) < 1e-9, "inverse: %.6g GPU-hours", r2.gpu_hours);
    CHECK(fabs(r2.days - 2.788e6 / 2048 / 24) < 1e-6 && r2.price == 2.0, "days %.3f, price %.2f", r2.days, r2.price);
    /* Llama-3.1-405B: 6 x 405.85B x 15.6T = 3.8e25 (the published figure) within the attention term */
    config_load("suites/configs/llama-3.1-405b.json", &c, &e);
    analytic_compute(&c, &a);
    CostIn ll = { .tokens = 15.6e12, .seq_len = 8192, .gpu_hours = 30.84e6, .price = -1 };
    CHECK(cost_estimate(&a, h100, &ll, &r, &e) == 0, "%s", e.msg);
    CHECK(r.train_flops > 3.8e25 && r.train_flops < 4.1e25, "405B train FLOPs %.3g vs published 3.8e25 (+ attention)", r.train_flops);
    CHECK(r.mfu > 0.3 && r.mfu < 0.45, "405B implied MFU %.3f", r.mfu);
    /* refusals */
    CostIn both = { .tokens = 1e12, .seq_len = 4096, .gpu_hours = 1, .mfu = 0.5 };
    CHECK(cost_estimate(&a, h100, &both, &r, &e) != 0, "MFU and GPU-hours together must be refused");
    const Gpu *a100 = hw_find(g, n, "A100 80GB");
    CostIn f8 = { .tokens = 1e12, .seq_len = 4096, .mfu = 0.5, .fp8 = 1 };
    CHECK(a100 && cost_estimate(&a, a100, &f8, &r, &e) != 0 && strstr(e.msg, "no FP8"), "A100 has no FP8 peak: %s", e.msg);
    free(g);
}

/* ---- suites ------------------------------------------------------------------------- */
static const char *write_suite(const char *name, const char *body) {
    static char p[700];
    snprintf(p, sizeof p, "%s/suites/%s", g_tmp, name);
    char d[700];
    snprintf(d, sizeof d, "%s/suites/configs", g_tmp);
    make_dir(d);
    char cp[800];
    snprintf(cp, sizeof cp, "%s/llama-3.1-8b.json", d);
    copy_file("suites/configs/llama-3.1-8b.json", cp);
    snprintf(cp, sizeof cp, "%s/suites/hardware.json", g_tmp);
    copy_file("suites/hardware.json", cp);
    FILE *f = fopen(p, "w");
    fputs(body, f);
    fclose(f);
    return p;
}

#define GOOD_MODELS "\"models\": [{\"name\": \"L\", \"config\": \"llama-3.1-8b\"}, {\"name\": \"Lm\", \"config\": \"configs/llama-3.1-8b.json\", \"measure\": true, \"overrides\": {\"num_hidden_layers\": 1}}]"

static void bad_suite(const char *body, const char *want) {
    const char *p = write_suite("bad.json", body);
    Suite s;
    Err e = { "" };
    if (suite_load(p, &s, &e) == 0) { suite_free(&s); t_fail(__FILE__, __LINE__, "accepted: %s", body); return; }
    CHECK(strstr(e.msg, "bad.json") && strstr(e.msg, want) && !strchr(e.msg, '\n'), "message \"%s\" lacks \"%s\"", e.msg, want);
}

static void t_suite_parsing(void) {
    Suite s;
    Err e = { "" };
    CHECK(suite_load("suites/default.json", &s, &e) == 0, "the default suite: %s", e.msg);
    if (!e.msg[0]) {
        CHECK(s.n_models >= 7 && s.n_work >= 2 && s.n_cost >= 3 && s.n_gpus == 4, "default suite contents");
        int measured = 0;
        for (int i = 0; i < s.n_models; i++) measured += s.models[i].measure;
        CHECK(measured >= 2, "the default suite measures %d models", measured);
        suite_free(&s);
    }
    const char *p = write_suite("good.json", "{\"name\": \"t\", " GOOD_MODELS ", \"workloads\": [{\"name\": \"w\", \"prefill\": 8, \"decode\": 4, \"batch\": [1, 2]}]}");
    CHECK(suite_load(p, &s, &e) == 0, "%s", e.msg);
    if (!e.msg[0] || s.n_models) {
        CHECK(s.n_work == 1 && s.work[0].n_batch == 2 && s.work[0].reps == 3 && s.work[0].warmup == 1, "workload defaults");
        char *cfg = suite_model_config_json(&s.models[1], &e);
        ModelConfig c;
        CHECK(cfg && config_parse(cfg, "x", &c, &e) == 0 && c.n_layers == 1, "overrides applied");
        free(cfg);
        suite_free(&s);
    }
    bad_suite("{\"name\": \"t\", " GOOD_MODELS ", \"workloads\": [{\"name\": \"a\", \"prefill\": 8}, {\"name\": \"b\", \"decode\": 2}, {\"name\": \"c\", \"decode\": 2, \"batch\": 0}]}",
              "workloads[2].batch: expected a positive integer");
    bad_suite("{\"name\": \"t\", " GOOD_MODELS ", \"workloads\": [{\"name\": \"a\", \"prefill\": -8}]}", "workloads[0].prefill: expected a non-negative integer");
    bad_suite("{\"name\": \"t\", " GOOD_MODELS ", \"workloads\": [{\"name\": \"a\", \"prefill\": 8, \"reps\": 2}]}", "workloads[0].reps: at least 3");
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"config\": \"nonexistent\"}]}", "models[0].config");
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"config\": \"bad.json\"}]}", "the suite itself");
    bad_suite("{\"name\": \"t\", \"models\": []}", "models: expected a non-empty array");
    bad_suite("{\"name\": \"t\", " GOOD_MODELS ", \"cost\": [{\"model\": \"nope\", \"tokens\": 1e12, \"gpu\": \"H800\", \"mfu\": 0.4}]}",
              "cost[0].model: \"nope\" is not a model");
    bad_suite("{\"name\": \"t\", " GOOD_MODELS ", \"cost\": [{\"model\": \"L\", \"tokens\": 1e12, \"gpu\": \"TPU\", \"mfu\": 0.4}]}",
              "cost[0].gpu: no GPU \"TPU\"");
    bad_suite("{\"name\": \"t\", " GOOD_MODELS ", \"cost\": [{\"model\": \"L\", \"tokens\": 1e12, \"gpu\": \"H800\"}]}", "exactly one of");
    bad_suite("{\"name\": \"t\", " GOOD_MODELS ", \"backends\": [\"tpu\"]}", "backends[0]");
    bad_suite("{\"name\": \"t\", " GOOD_MODELS ", \"published\": \"missing.json\"}", "published: ");
    bad_suite("{\"name\": \"../x\", " GOOD_MODELS "}", "name: use letters");
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"config\": \"llama-3.1-8b\", \"dtype\": \"q4\"}]}", "models[0].dtype");
    bad_suite("{\"name\": \"t\", " GOOD_MODELS ",}", "malformed JSON");
    bad_suite("{\"name\": \"t\", \"hardware\": \"bad.json\", " GOOD_MODELS "}", "refers to itself");
}

/* A checkpoint may be a GGUF file (config and tokenizer from its metadata); a model
 * marked "optional" whose file is missing is kept, marked missing, with its fetch hint,
 * instead of failing the suite; without "optional" a missing file stays an error. */
static void t_suite_gguf_optional(void) {
    char p[800];
    snprintf(p, sizeof p, "%s/suites/m.gguf", g_tmp);
    write_suite("x.json", "{}");                     /* the directory and its hardware.json */
    FILE *f = fopen(p, "wb");
    fputs("GGUF\3\0\0\0 not parsed by suite_load", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/suites/not-gguf.bin", g_tmp);
    f = fopen(p, "wb");
    fputs("PK\3\4 something else", f);
    fclose(f);
    Suite s;
    Err e = { "" };
    const char *sp = write_suite("gguf.json", "{\"name\": \"g\", \"fetch_hint\": \"run get.sh\", \"models\": ["
        "{\"name\": \"G\", \"checkpoint\": \"m.gguf\", \"measure\": true, \"train_tokens\": 2e12},"
        "{\"name\": \"Gone\", \"checkpoint\": \"../models/absent.Q4_1.gguf\", \"optional\": true, \"measure\": true},"
        "{\"name\": \"GoneDir\", \"checkpoint\": \"nodir\", \"optional\": true, \"fetch_hint\": \"ask\"},"
        "{\"name\": \"Here\", \"config\": \"llama-3.1-8b\", \"optional\": true}],"
        "\"workloads\": [{\"name\": \"w\", \"prefill\": 8}],"
        "\"cost\": [{\"model\": \"Gone\", \"tokens\": 1e12, \"gpu\": \"H100\", \"mfu\": 0.4}]}");
    CHECK(suite_load(sp, &s, &e) == 0, "%s", e.msg);
    if (s.n_models == 4) {
        const SuiteModel *g = &s.models[0], *gone = &s.models[1], *gd = &s.models[2], *here = &s.models[3];
        CHECK(g->gguf && !g->missing && !g->config[0] && !g->tokenizer[0] && strstr(g->checkpoint, "suites/m.gguf") &&
              !strcmp(suite_model_file(g), g->checkpoint), "a .gguf checkpoint: gguf %d, config \"%s\", tokenizer \"%s\"",
              g->gguf, g->config, g->tokenizer);
        char *cfg = suite_model_config_json(g, &e);
        CHECK(!cfg && strstr(e.msg, "metadata"), "a GGUF checkpoint has no config.json text: %s", e.msg);
        free(cfg);
        CHECK(gone->gguf && gone->missing && gone->optional && strstr(suite_model_file(gone), "absent.Q4_1.gguf") &&
              !strcmp(gone->fetch_hint, "run get.sh"), "a missing optional .gguf: missing %d, hint \"%s\"", gone->missing,
              gone->fetch_hint);
        CHECK(!gd->gguf && gd->missing && strstr(suite_model_file(gd), "nodir/config.json") && !strcmp(gd->fetch_hint, "ask"),
              "a missing optional directory: missing %d, file %s, hint \"%s\"", gd->missing, suite_model_file(gd), gd->fetch_hint);
        CHECK(here->optional && !here->missing, "an optional model that is there is not missing");
        suite_free(&s);
    }
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"checkpoint\": \"absent.gguf\"}]}",
              "models[0].checkpoint: ");
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"checkpoint\": \"absent.gguf\"}]}", "absent.gguf: no such file");
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"checkpoint\": \"nodir\"}]}", "nodir/config.json: no such file");
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"checkpoint\": \"not-gguf.bin\"}]}",
              "models[0].checkpoint: ");
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"checkpoint\": \"not-gguf.bin\"}]}", "not a GGUF file");
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"checkpoint\": \"m.gguf\", \"optional\": \"yes\"}]}",
              "models[0].optional: expected true or false");
    bad_suite("{\"name\": \"t\", \"models\": [{\"name\": \"x\", \"checkpoint\": \"m.gguf\", \"overrides\": {}}]}",
              "models[0].overrides");
    char body[1200], hint[300];
    memset(hint, 'h', 260);
    hint[260] = 0;
    snprintf(body, sizeof body, "{\"name\": \"t\", \"fetch_hint\": \"%s\", " GOOD_MODELS "}", hint);
    bad_suite(body, "fetch_hint: longer than 250");
}

/* ---- CSV ---------------------------------------------------------------------------- */
static void t_csv_round_trip(void) {
    const char *head[4] = { "name", "value", "note", "formula" };
    Table t, r;
    table_init(&t, 4, head);
    const char *rows[][4] = {
        { "plain", "1.5", "", "x" },
        { "comma, inside", "-2", "quote \" inside", "=1+1" },
        { "new\nline", "3e10", "both, \"quoted\"\nand more", "@SUM(A1)" },
        { "  spaces  ", "nan", "tab\there", "-cmd" },
    };
    for (int i = 0; i < 4; i++) table_add(&t, rows[i]);
    char p[700];
    snprintf(p, sizeof p, "%s/rt.csv", g_tmp);
    Err e = { "" };
    CHECK(csv_table_write(p, &t, &e) == 0, "%s", e.msg);
    CHECK(csv_table_read(p, &r, &e) == 0, "%s", e.msg);
    CHECK(r.ncol == 4 && r.nrow == 4, "shape %d x %d", r.nrow, r.ncol);
    for (int i = 0; i < 4 && r.nrow == 4; i++)
        for (int j = 0; j < 3; j++)
            CHECK(!strcmp(table_get(&r, i, head[j]), rows[i][j]), "row %d %s: \"%s\" != \"%s\"", i, head[j], table_get(&r, i, head[j]), rows[i][j]);
    /* formula-looking text is neutralised; numbers are not */
    CHECK(!strcmp(table_get(&r, 1, "formula"), "'=1+1") && !strcmp(table_get(&r, 2, "formula"), "'@SUM(A1)") &&
          !strcmp(table_get(&r, 3, "formula"), "'-cmd") && !strcmp(table_get(&r, 1, "value"), "-2"), "formula guard");
    CHECK(table_num(&r, 2, "value") == 3e10 && isnan(table_num(&r, 0, "note")), "numbers");
    table_free(&r);
    /* a ragged file is refused with its row */
    FILE *f = fopen(p, "w");
    fprintf(f, "a,b\n1,2\n3\n");
    fclose(f);
    CHECK(csv_table_read(p, &r, &e) != 0 && strstr(e.msg, "row 3 has 1 fields"), "ragged: %s", e.msg);
    f = fopen(p, "w");
    fprintf(f, "a,b\n\"unterminated,2\n");
    fclose(f);
    int rc = csv_table_read(p, &r, &e);
    if (rc == 0) table_free(&r);
    CHECK(rc != 0, "an unterminated quote must be refused");
    table_free(&t);
}


/* The kernel roofline of a profile (metrics.csv as the profiler writes it) renders
 * without a GPU: a point per op with positive FLOPs, bytes and rate; a hostile op name
 * stays data (never gnuplot code); rows without counts are left out. */
static void t_kernel_roofline_chart(void) {
    static const char *cols[] = { "cell", "op", "flops", "dram_bytes", "achieved_tflops" };
    Table t;
    table_init(&t, 5, cols);
    const char *rows[][5] = {
        { "tg8 b64 @ d4096", "attention", "2.4e12", "6.1e10", "310" },
        { "pp2048", "experts", "4.1e11", "2.2e9", "95" },
        { "pp2048", "a'`system(\"touch pwned\")`\n", "1e9", "1e9", "1" },
        { "pp2048", "route", "0", "0", "0" },
    };
    for (int i = 0; i < 4; i++) table_add(&t, rows[i]);
    char dir[1100], p[1200];
    snprintf(dir, sizeof dir, "%s/kroof", g_tmp);
    make_dir(dir);
    Err e = { "" };
    CHECK(chart_kernel_roofline(dir, &t, 4800, 750000, &e) == 0, "%s", e.msg);
    size_t n;
    snprintf(p, sizeof p, "%s/chart_kernel_roofline.dat", dir);
    char *dat = read_file(p, 1 << 24, &n, &e);
    int lines = 0;
    for (size_t i = 0; dat && i < n; i++) lines += dat[i] == '\n';
    CHECK(dat && lines == 4, "the data should hold a header and 3 points, has %d lines", lines);
    snprintf(p, sizeof p, "%s/kernel_roofline.gp", dir);
    char *gp = read_file(p, 1 << 24, &n, &e);
    CHECK(gp && !strstr(gp, "system") && !strstr(gp, "attention"), "the script must hold no data");
    snprintf(p, sizeof p, "%s/kernel_roofline.png", dir);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        char *png = read_file(p, 1 << 24, &n, &e);
        CHECK(png && n > 8 && !memcmp(png, "\x89PNG", 4), "kernel_roofline.png not rendered");
        free(png);
        snprintf(p, sizeof p, "%s/pwned", dir);
        CHECK(access(p, F_OK) != 0, "a name in the data ran as a command");
    }
    free(dat); free(gp);
    table_free(&t);
}

const TestDef runner_tests[] = {
    { "analytic: hand counts, every shipped config", t_analytic_hand_counts },
    { "cost: DeepSeek-V3 and Llama-3.1 published", t_cost_published },
    { "suite: default, good and bad files", t_suite_parsing },
    { "suite: GGUF checkpoints, optional models with a missing file", t_suite_gguf_optional },
    { "csv: round trip, quoting, formulas", t_csv_round_trip },
    { "chart: the kernel roofline of a profile, hostile names", t_kernel_roofline_chart },
};
const int n_runner_tests = sizeof runner_tests / sizeof runner_tests[0];
