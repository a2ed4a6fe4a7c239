/*
 * eval.h - accuracy, measured the way lm-evaluation-harness measures it, on the
 * engine of kernels/.
 *
 * A task is a definition (JSON) naming a JSON Lines file of items; evals/README.md
 * documents both. Items hold text (encoded with the model's tokenizer.json) or token
 * ids directly (`context_ids`, `choices_ids`, `text_ids`, `target_ids`), so tasks can
 * be written for a model without a tokenizer.
 *
 *   multiple_choice  {"context", "choices": [...], "answer": i}: log-likelihood of
 *                    each choice's tokens after the context (the tokens of
 *                    context + delimiter + choice after those of context); acc, acc_norm
 *                    (log-likelihood / the choice's length in characters), and whether
 *                    the right choice is the greedy continuation.
 *   perplexity       {"text"}: disjoint windows of `window` tokens, each conditioned on
 *                    the last token of the previous one (the first on the BOS when the
 *                    tokenizer has one, else the first token is context only): token
 *                    perplexity, word perplexity, bits per byte.
 *   generation       {"context", "target", "until": [...]}: greedy decoding up to a stop
 *                    string or max_gen_tokens; exact_match after trimming whitespace.
 * Standard errors come from a seeded bootstrap over items.
 */
#ifndef EFFBENCH_EVAL_H
#define EFFBENCH_EVAL_H

#include "model.h"
#include "tokenizer.h"

#include <stdio.h>

typedef enum { TASK_MC, TASK_PPL, TASK_GEN } TaskType;

typedef struct {
    char *context, *text, *target;   /* text fields (NULL when given as ids) */
    int *context_ids, n_context_ids;
    int *text_ids, n_text_ids;
    int *target_ids, n_target_ids;
    char **choices; int n_choices;   /* text choices */
    int **choice_ids; int *n_choice_ids;
    int answer;
    char **until; int n_until;
} TaskItem;

typedef struct {
    char name[128];
    char path[4096];                 /* the JSONL file */
    TaskType type;
    int num_fewshot;
    char *fewshot_sep;               /* between few-shot examples, default "\n\n" */
    char *target_delim;              /* before a choice or target, default " " */
    int window;                      /* perplexity window, default 512 */
    int max_gen;                     /* generation limit, default 64 */
    int bootstrap;                   /* resamples, default 1000 */
    uint64_t seed;
    char metrics[8][32]; int n_metrics;   /* the definition's "metrics" (none: all of the type's) */
    TaskItem *items; int n_items;
} Task;

/* Loads a task definition (.json) or a bare JSONL file (type inferred from the first
 * item's fields). Errors name the file and, for items, the line number. */
int task_load(const char *path, Task *t, Err *e);
void task_free(Task *t);

typedef struct {
    char name[32];                   /* acc, acc_norm, greedy, word_perplexity, ... */
    double value, stderr_;           /* stderr_ < 0: none */
    int n;
    char note[96];                   /* e.g. "log-likelihood / choice length in characters" */
} Metric;

typedef struct {
    Metric m[8]; int n_metrics;
    double *item_score;              /* (n_items) the first metric's per-item score, for paired tests */
    int n_items;
    double tokens_scored;            /* tokens whose log-likelihood was computed */
} EvalResult;

/* Runs every item; writes one JSON line per item to samples (if not NULL). tok may be
 * NULL when every item is given as ids. */
int eval_run(Model *m, Tokenizer *tok, const Task *t, FILE *samples, EvalResult *r, Err *e);
void eval_result_free(EvalResult *r);

/* Standard error of the mean of x by a seeded bootstrap of b resamples. */
double bootstrap_se(const double *x, int n, int b, uint64_t seed);
/* Exact two-sided McNemar p-value from the discordant counts (b: only A right, c: only B). */
double mcnemar_p(int b, int c);
/* Paired bootstrap of mean(y - x): writes the 95% interval and returns the two-sided
 * p-value of a zero difference (the share of resampled differences on the far side
 * of 0, doubled, at most 1). */
double paired_bootstrap(const double *x, const double *y, int n, int b, uint64_t seed, double *lo, double *hi);

/* KL(P_ref || P_model) per row of logits (n, V): mean, p99 (nearest rank), max, and
 * the share of rows whose argmax agree. */
typedef struct { double mean, p99, max, same_top; int n; } KlStats;
void kl_stats(const float *ref, const float *got, int n, int V, KlStats *out);

#endif
