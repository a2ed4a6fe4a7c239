/*
 * test.h - the small test harness: CHECK records a failure with file, line and a
 * message (the worst index and value, where numbers are compared) and the test goes
 * on; a test passes when none of its checks failed, or is skipped with a reason.
 */
#ifndef EFFBENCH_TEST_H
#define EFFBENCH_TEST_H

#include "model.h"
#include "st_write.h"

#include <stdio.h>

typedef struct { const char *name; void (*fn)(void); } TestDef;

extern const char *g_golden;     /* ../shared/golden, or $EFFBENCH_GOLDEN */
extern char g_tmp[];             /* a fresh temporary directory for this run */

void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int t_failed(void);              /* checks failed so far in this test */

#define CHECK(c, ...) do { if (!(c)) t_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* max |a-b| over n; *where = its index */
float max_abs_diff(const float *a, const float *b, size_t n, size_t *where);
float *read_f32(const char *path, size_t *n);

/* A golden case: dir, prompt and greedy continuation from case.json. */
typedef struct {
    char dir[1024];
    int prompt[64], n_prompt;
    int cont[64], n_cont;
    void *json;                  /* cJSON of case.json, for routing */
} Case;
int case_load(const char *rel, Case *c);   /* rel: "deepseek/v3-tiny"; -1 and skip if absent */
void case_free(Case *c);

extern const TestDef unit_tests[], golden_tests[], bad_tests[], runner_tests[], eval_tests[], cuda_tests[];
extern const int n_unit_tests, n_golden_tests, n_bad_tests, n_runner_tests, n_eval_tests, n_cuda_tests;
/* GGUF: the reader and models from it (test_gguf.c), weight-type decoding (test_quant.c),
 * the tokenizer from GGUF metadata and text in/out (test_gguf_tok.c), the shipped tasks
 * (test_tasks.c), the real model against its reference (test_real.c) */
extern const TestDef gguf_tests[], quant_tests[], ggtok_tests[], task_tests[], real_tests[];
extern const int n_gguf_tests, n_quant_tests, n_ggtok_tests, n_task_tests, n_real_tests;
/* scores against lm-evaluation-harness's own per-item outputs (test_lmeval.c) */
extern const TestDef lmeval_tests[];
extern const int n_lmeval_tests;
extern const TestDef stdtask_tests[]; extern const int n_stdtask_tests;   /* test_stdtasks.c */
extern const TestDef qdot_tests[]; extern const int n_qdot_tests;         /* test_qdot.c: stored-type products */
extern const TestDef kv_tests[]; extern const int n_kv_tests;             /* test_kv.c: BF16 and FP8 KV caches */
/* test_ranks.c: a model split over the ranks of g_ranks (run by `effbench-tests ranks` under mpirun) */
extern const TestDef rank_tests[]; extern const int n_rank_tests;
extern struct Comm *g_ranks;

#endif
