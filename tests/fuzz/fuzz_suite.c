/* fuzz_suite.c - suite JSON, beside a copy of the shipped hardware profiles and
 * configs (the suite may name them). */
#include "fuzz_common.h"
#include "suite.h"

static void copy(const char *src, const char *dst) {
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    if (a && b) { char buf[65536]; size_t n; while ((n = fread(buf, 1, sizeof buf, a))) fwrite(buf, 1, n, b); }
    if (a) fclose(a);
    if (b) fclose(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    char p[512], q[512];
    if (!ready) {
        const char *root = getenv("EFFBENCH_ROOT") ? getenv("EFFBENCH_ROOT") : ".";
        snprintf(q, sizeof q, "%s/configs", fuzz_dir());
        mkdir(q, 0700);
        snprintf(p, sizeof p, "%s/suites/hardware.json", root); snprintf(q, sizeof q, "%s/hardware.json", fuzz_dir()); copy(p, q);
        snprintf(p, sizeof p, "%s/suites/published.json", root); snprintf(q, sizeof q, "%s/published.json", fuzz_dir()); copy(p, q);
        snprintf(p, sizeof p, "%s/suites/configs/llama-3.1-8b.json", root); snprintf(q, sizeof q, "%s/configs/llama-3.1-8b.json", fuzz_dir()); copy(p, q);
        ready = 1;
    }
    fuzz_file("suite.json", data, size, p, sizeof p);
    Suite s;
    Err e;
    if (suite_load(p, &s, &e) == 0) {
        for (int i = 0; i < s.n_models; i++) free(suite_model_config_json(&s.models[i], &e));
        suite_free(&s);
    }
    return 0;
}
