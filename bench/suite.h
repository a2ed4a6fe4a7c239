/*
 * suite.h - a suite: the models, workloads, backends, hardware, cost scenarios and
 * published results of one effbench run. Format: suites/README.md.
 *
 * suite_load resolves every path relative to the suite file (a registry name such as
 * "deepseek-v3" means configs/deepseek-v3.json beside the shipped suites) and checks
 * that each file exists; errors name the file and the JSON path of the bad value:
 * "suite.json: workloads[2].batch: expected a positive integer". A model marked
 * "optional" whose file is missing is kept with `missing` set (the run skips it and
 * says so) instead of failing the suite.
 *
 * A checkpoint is a Hugging Face directory (config.json, safetensors, tokenizer.json)
 * or a GGUF file, whose metadata holds the config and the tokenizer; suite_load does
 * not open it beyond its first four bytes (the magic).
 *
 * Ranks (`mpirun -np N effbench run SUITE`; one process: both modes run as one rank):
 *   "ranks": "spread"  (default) the cells are dealt over the ranks, each model to one
 *                      rank, which loads the whole model alone and runs its cells and
 *                      evals; rank 0 gathers the rows and writes every file.
 *   "ranks": "split"   every cell runs on all ranks together: each rank holds its share
 *                      of the model (kernels/layout.h), the rows say ranks and layout.
 *   Per model, "tp" and "ep" (split only; 1 or N, 0 or absent = the layout's default
 *   for the model): the tensor- and expert-parallel degrees.
 */
#ifndef EFFBENCH_SUITE_H
#define EFFBENCH_SUITE_H

#include "common.h"
#include "cost.h"

typedef struct {
    char name[128];
    char config[4096];           /* resolved config.json path; "" for a GGUF checkpoint */
    char checkpoint[4096];       /* resolved checkpoint dir or .gguf file, or "" for dummy weights */
    int gguf;                    /* the checkpoint is a GGUF file */
    int optional;                /* a missing file skips the model instead of failing the suite */
    int missing;                 /* optional, and its file (model_file) is missing */
    char fetch_hint[256];        /* how to get it when missing (the model's, else the suite's), or "" */
    char *overrides;             /* JSON object text applied to the config, or NULL */
    int measure;                 /* run the workloads on it */
    DType dtype;                 /* dummy weights */
    DType kv_dtype;              /* "kv_dtype": the engine's KV cache, f32 (default), bf16, fp8 */
    int kv_dtype_set;            /* given in the suite (else effbench run's --kv-dtype, else f32) */
    int layers;                  /* dummy: keep the first N layers (0 = all) */
    uint64_t seed;
    char scaled_from[128];       /* the real model a scaled-down variant stands for */
    char tokenizer[4096];        /* tokenizer.json given for evals, or "" (checkpoints: their own) */
    double train_tokens;         /* tokens it was trained on, if given (0 = unknown) */
    int tp, ep;                  /* "tp", "ep": the split layout's degrees (0 = the default) */
} SuiteModel;

typedef struct {
    char task[4096];             /* resolved task definition or JSONL */
    char models[16][128]; int n_models;   /* which measured models; none = all */
} SuiteEval;

typedef struct {
    char name[128];
    int prefill;                 /* prompt tokens, or 0 */
    int depth, decode;           /* context before decode, decode steps (0 = no decode) */
    int batch[16], n_batch;
    int reps, warmup;
} Workload;

typedef struct {
    char model[128];             /* a model name of the suite */
    double tokens, seq_len;
    char gpu[64];
    int fp8;
    double mfu, gpu_hours, price;    /* price < 0: the profile's */
    int gpus;
    char label[256], source[512];
} CostScenario;

typedef struct {
    char path[4096];
    char name[128];
    SuiteModel *models; int n_models;
    Workload *work; int n_work;
    char backends[4][16]; int n_backends;
    Gpu *gpus; int n_gpus;
    CostScenario *cost; int n_cost;
    SuiteEval *evals; int n_evals;
    char published[4096];        /* resolved published.json, or "" */
    double ctx_lengths[32]; int n_ctx;
    int stream_mib;
    char fetch_hint[256];        /* default fetch hint of optional models, or "" */
    int ranks_split;             /* "ranks": "split" (1) or "spread" (0, the default) */
} Suite;

int suite_load(const char *path, Suite *s, Err *e);
void suite_free(Suite *s);
/* The model's config text with the overrides applied (caller frees); NULL with e set
 * for a GGUF checkpoint (its config is in its metadata: load it with model_load). */
char *suite_model_config_json(const SuiteModel *m, Err *e);
/* The file a model needs: its .gguf, its checkpoint's config.json or its config. */
const char *suite_model_file(const SuiteModel *m);

#endif
