/*
 * test_main.c - runs every test, prints one line per test and a closing
 * "N passed, N failed, N skipped"; exits non-zero when any failed.
 *   effbench-tests [FILTER]         tests whose name contains FILTER
 *   effbench-tests maxdiff A B      max |A-B| of two float32 files (for shell tests)
 *   effbench-tests case-tokens DIR  "prompt-ids continuation-ids" of a golden case
 *   effbench-tests csv-column F C   column C of CSV file F, one value per line
 *   effbench-tests hf-to-gguf DIR OUT [q8_0]   checkpoint DIR written as GGUF (tests/gguf_write.h)
 */
#define _GNU_SOURCE
#include "test.h"
#include "table.h"
#include "gguf_write.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

const char *g_golden;
char g_tmp[512];
static int cur_fail, cur_skip;
static char skip_why[512];

void t_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "    FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    cur_fail++;
}

void t_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(skip_why, sizeof skip_why, fmt, ap);
    va_end(ap);
    cur_skip = 1;
}

int t_failed(void) { return cur_fail; }

float max_abs_diff(const float *a, const float *b, size_t n, size_t *where) {
    float m = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) { m = d; w = i; }       /* NaN counts as worst */
        if (isnan(d)) { m = INFINITY; w = i; break; }
    }
    if (where) *where = w;
    return m;
}

float *read_f32(const char *path, size_t *n) {
    Err e;
    size_t len;
    char *b = read_file(path, (size_t)1 << 30, &len, &e);
    if (!b) return NULL;
    *n = len / 4;
    return (float *)b;
}

static int json_ints(const cJSON *a, int *out, int cap) {
    int k = 0;
    for (const cJSON *v = a ? a->child : NULL; v && k < cap; v = v->next) out[k++] = v->valueint;
    return k;
}

int case_load(const char *rel, Case *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s/%s", g_golden, rel);
    char p[1200];
    snprintf(p, sizeof p, "%s/case.json", c->dir);
    Err e;
    char *txt = read_file(p, 64u << 20, NULL, &e);
    if (!txt) { t_skip("golden case %s not found (%s)", rel, e.msg); return -1; }
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    if (!j) { t_fail(__FILE__, __LINE__, "%s: bad JSON", p); return -1; }
    c->json = j;
    c->n_prompt = json_ints(cJSON_GetObjectItem(j, "prompt"), c->prompt, 64);
    c->n_cont = json_ints(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "continuation"), "tokens"), c->cont, 64);
    return 0;
}

void case_free(Case *c) { cJSON_Delete(c->json); c->json = NULL; }

static int run_group(const TestDef *t, int n, const char *filter, int *pass, int *fail, int *skip) {
    for (int i = 0; i < n; i++) {
        if (filter && !strstr(t[i].name, filter)) continue;
        cur_fail = 0; cur_skip = 0;
        double t0 = now_sec();
        t[i].fn();
        double dt = now_sec() - t0;
        if (cur_fail) { (*fail)++; printf("FAIL  %-44s (%d checks failed)\n", t[i].name, cur_fail); }
        else if (cur_skip) { (*skip)++; printf("SKIP  %-44s %s\n", t[i].name, skip_why); }
        else { (*pass)++; printf("ok    %-44s %.2fs\n", t[i].name, dt); }
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv) {
    g_golden = getenv("EFFBENCH_GOLDEN");
    if (!g_golden || !*g_golden) g_golden = "../shared/golden";
    if (argc == 4 && !strcmp(argv[1], "maxdiff")) {
        size_t na, nb, w;
        float *a = read_f32(argv[2], &na), *b = read_f32(argv[3], &nb);
        if (!a || !b || na != nb) { fprintf(stderr, "maxdiff: cannot read or sizes differ\n"); return 2; }
        printf("%g\n", max_abs_diff(a, b, na, &w));
        free(a); free(b);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "csv-column")) {     /* one CSV-parsed column, a value per line */
        Table t;
        Err e;
        if (csv_table_read(argv[2], &t, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
        for (int r = 0; r < t.nrow; r++) printf("%s\n", table_get(&t, r, argv[3]));
        table_free(&t);
        return 0;
    }
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "hf-to-gguf")) {   /* a checkpoint as GGUF, for shell tests */
        HfToGguf o = { .q8_0 = argc == 5 && !strcmp(argv[4], "q8_0") };
        return hf_to_gguf(argv[2], argv[3], &o) ? 2 : 0;
    }
    if (argc == 4 && !strcmp(argv[1], "nan-tensor")) {     /* a NaN written over the first element of a tensor */
        StSet st = { 0 };
        Err e = { "" };
        if (st_open_dir(argv[2], &st, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
        StTensor *t = st_find(&st, argv[3]);
        if (!t || t->dtype != DT_F32) { fprintf(stderr, "nan-tensor: no F32 tensor %s\n", argv[3]); st_close(&st); return 2; }
        long off = (long)((const char *)t->data - (const char *)st.files[t->file].map);
        FILE *f = fopen(st.files[t->file].path, "r+b");
        float nan = NAN;
        int bad = !f || fseek(f, off, SEEK_SET) || fwrite(&nan, sizeof nan, 1, f) != 1;
        if (f) fclose(f);
        st_close(&st);
        return bad ? 2 : 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "ranks")) {           /* under mpirun: the split-model tests */
        Err e = { "" };
        if (comm_open_world(&g_ranks, &argc, &argv, &e)) { fprintf(stderr, "ranks: %s\n", e.msg); return 2; }
        if (g_ranks->rank > 0 && !freopen("/dev/null", "w", stdout)) return 2;
        snprintf(g_tmp, sizeof g_tmp, "/tmp/effbench-tests.XXXXXX");
        if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 2; }
        int pass = 0, fail = 0, skip = 0;
        run_group(rank_tests, n_rank_tests, argc > 2 ? argv[2] : NULL, &pass, &fail, &skip);
        printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
        fflush(stdout);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd)) {}
        comm_close(g_ranks);
        return fail ? 1 : 0;
    }
    if (argc == 3 && !strcmp(argv[1], "case-tokens")) {
        g_golden = ".";
        Case c;
        if (case_load(argv[2], &c)) { fprintf(stderr, "case-tokens: cannot read %s/case.json\n", argv[2]); return 2; }
        for (int i = 0; i < c.n_prompt; i++) printf("%s%d", i ? "," : "", c.prompt[i]);
        printf(" ");
        for (int i = 0; i < c.n_cont; i++) printf("%s%d", i ? " " : "", c.cont[i]);
        printf("\n");
        case_free(&c);
        return 0;
    }
    const char *filter = argc > 1 ? argv[1] : NULL;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/effbench-tests.XXXXXX");
    if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 2; }
    int pass = 0, fail = 0, skip = 0;
    run_group(unit_tests, n_unit_tests, filter, &pass, &fail, &skip);
    run_group(golden_tests, n_golden_tests, filter, &pass, &fail, &skip);
    run_group(bad_tests, n_bad_tests, filter, &pass, &fail, &skip);
    run_group(runner_tests, n_runner_tests, filter, &pass, &fail, &skip);
    run_group(eval_tests, n_eval_tests, filter, &pass, &fail, &skip);
    run_group(gguf_tests, n_gguf_tests, filter, &pass, &fail, &skip);
    run_group(quant_tests, n_quant_tests, filter, &pass, &fail, &skip);
    run_group(ggtok_tests, n_ggtok_tests, filter, &pass, &fail, &skip);
    run_group(task_tests, n_task_tests, filter, &pass, &fail, &skip);
    run_group(real_tests, n_real_tests, filter, &pass, &fail, &skip);
    run_group(lmeval_tests, n_lmeval_tests, filter, &pass, &fail, &skip);
    run_group(stdtask_tests, n_stdtask_tests, filter, &pass, &fail, &skip);
    run_group(qdot_tests, n_qdot_tests, filter, &pass, &fail, &skip);
    run_group(kv_tests, n_kv_tests, filter, &pass, &fail, &skip);
    run_group(cuda_tests, n_cuda_tests, filter, &pass, &fail, &skip);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
    return fail ? 1 : 0;
}
