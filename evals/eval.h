/*
 * eval.h - accuracy, measured as lm-evaluation-harness 0.4.13 (lm-eval) measures it
 * with its Hugging Face backend, on the engine of kernels/.
 *
 * A task is a definition (JSON) naming a JSON Lines file of items; evals/README.md
 * documents both, rule by rule against lm-eval. Items hold text (encoded with the
 * model's tokenizer) or token ids directly (`context_ids`, `choices_ids`, `text_ids`),
 * so tasks can be written for a model without a tokenizer.
 *
 *   multiple_choice  {"context", "choices": [...], "answer": i}: lm-eval's
 *                    loglikelihood requests (context.rstrip(), _encode_pair, the
 *                    tokenizer's BOS, left truncation to the model's length); acc,
 *                    acc_norm (log-likelihood / the choice's length in characters), and
 *                    whether the right choice is the greedy continuation.
 *   perplexity       {"text"}: lm-eval's loglikelihood_rolling (get_rolling_token_windows
 *                    + make_disjoint_window at the model's length, the prefix token
 *                    first): token, word and byte perplexity, bits per byte.
 *   generation       {"context", "target", "until": [...]}: greedy decoding up to a stop
 *                    string, the end of sequence or max_gen_tokens; exact_match.
 * Few-shot examples are drawn by lm-eval's sampler (pyrandom.h). Standard errors of
 * means are lm-eval's mean_stderr; perplexities have none unless asked (a bootstrap).
 */
#ifndef EFFBENCH_EVAL_H
#define EFFBENCH_EVAL_H

#include "model.h"
#include "tokenizer.h"

#include <stdio.h>

typedef enum { TASK_MC, TASK_PPL, TASK_GEN } TaskType;
/* BOS on encoded text: the tokenizer's own template (lm-eval's add_bos_token None),
 * always (add_bos_token True) or never (False) */
typedef enum { TASK_BOS_AUTO, TASK_BOS_ON, TASK_BOS_OFF } TaskBos;

struct cJSON;

typedef struct {
    char *context, *text, *target;   /* text fields (NULL when given as ids); target: also the
                                      * shared continuation of a partial_scoring item */
    int *context_ids, n_context_ids;
    int *text_ids, n_text_ids;
    int *target_ids, n_target_ids;
    char **choices; int n_choices;   /* text choices */
    int **choice_ids; int *n_choice_ids;
    int answer;
    char **until; int n_until;       /* stop strings of this item (none: the task's) */
    char *count_text;                /* perplexity: words and bytes counted on this text, not on
                                      * text (wikitext's process_results: the page before
                                      * detokenizing); NULL: text */
    struct cJSON *doc;               /* the item as read: lm-eval's doc, for equality */
} TaskItem;

typedef struct {
    char name[128];
    char path[4096];                 /* the JSONL file */
    TaskType type;
    int num_fewshot;
    char *fewshot_sep;               /* after each few-shot example, default "\n\n" */
    char *target_delim;              /* before a choice or target, default " " */
    char *description;               /* before the examples (lm-eval's description), default "" */
    char fewshot_path[4096];         /* "fewshot_file" (lm-eval's fewshot_split); "": the items */
    int fewshot_same;                /* the few-shot file is the eval file: the item is left out */
    TaskItem *fewshot_items; int n_fewshot_items;   /* the pool (fewshot_file), else NULL */
    uint64_t fewshot_seed;           /* lm-eval's fewshot_random_seed, default 1234 */
    int window;                      /* the model's length for this task; 0: the model's own */
    int max_gen;                     /* generation limit (lm-eval's max_gen_toks), default 256 */
    char **until; int n_until;       /* task-level stop strings; none: the few-shot separator */
    int ignore_case, ignore_punct, ignore_numbers;  /* exact_match options, default off */
    char **regexes; int n_regexes;   /* exact_match's regexes_to_ignore (PCRE2 syntax) */
    TaskBos bos;                     /* "bos": auto, on, off */
    int bootstrap;                   /* perplexity: bootstrap resamples of bits_per_byte, default 0 */
    uint64_t seed;                   /* that bootstrap's seed */
    char metrics[8][32]; int n_metrics;   /* the definition's "metrics" (none: all of the type's) */
    /* rows in a dataset's own fields (suites/tasks/standard/README.md): lm-eval's templates
     * over each row, after a named preprocessor; NULL: the item fields above */
    char *doc_to_text, *doc_to_choice, *doc_to_target;
    char **choice_list; int n_choice_list;    /* "doc_to_choice" given as a list of strings */
    char preprocess[32];             /* "hellaswag", "winogrande", "wikitext" (lm-eval's process_docs
                                      * or Python doc_to_* of that task); "": none */
    char count_field[64];            /* perplexity: the row field words and bytes are counted on */
    int fewshot_first_n;             /* "fewshot_sampler": "first_n" (lm-eval's FirstNSampler) */
    int loglikelihood;               /* "type": "loglikelihood" (lm-eval's output_type), run as
                                      * TASK_MC with one choice, the target, after no delimiter:
                                      * acc = its greedy match, perplexity = exp(-mean ll) */
    struct { char name[20]; char *regex; int group; } filters[4];   /* generation: lm-eval's regex
                                      * filter + take_first, each scored apart as exact_match,NAME */
    int n_filters;
    int partial;                     /* "partial_scoring": lm-eval's multiple inputs (WinoGrande): item
                                      * choices are contexts, each scored with one continuation,
                                      * the item's target; doc_to_text gives the gold index */
    TaskItem *items; int n_items;
} Task;

/* Loads a task definition (.json) or a bare JSONL file (type inferred from the first
 * item's fields). Errors name the file and, for items, the line number. */
int task_load(const char *path, Task *t, Err *e);
/* Renders template tpl (lm-eval's Jinja subset: literal text and {{expr}}, expr a field
 * path like choices.text, choices[0], choices[answer], a list [a, b], the methods
 * .strip() and .index(x), the filters trim and join('sep')) over doc. A template that is
 * exactly one {{expr}}, or a bare field name of doc, gives the value itself; otherwise a
 * string. Returns a new cJSON the caller deletes, or NULL with e set. */
struct cJSON *task_render(const char *tpl, const struct cJSON *doc, Err *e);
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

/* One request as lm-eval would log it, passed to a trace function as it is scored:
 * a choice of a multiple-choice item, a window of a rolling log-likelihood or a
 * generation. The pointers are valid during the call only. */
typedef struct {
    int item;                        /* 0-based item */
    int index;                       /* choice or window, from 0 */
    const char *context;             /* request strings (after rstrip moved spaces); NULL for ids */
    const char *continuation;        /* NULL for windows and generations */
    const int *ctx_ids; int n_ctx;   /* context tokens before left truncation */
    const int *cont_ids; int n_cont; /* scored tokens, or generated ones */
    const int *input; int n_input;   /* what the model was fed (generation: the prompt) */
    double ll; int is_greedy;        /* log-likelihood of cont_ids; 0 for generations */
    const char *generation;          /* the text generated, cut at the first stop string */
} EvalRequest;
typedef void (*EvalTraceFn)(void *arg, const EvalRequest *rq);

/* eval_run, and trace(arg, request) for every request (trace may be NULL). */
int eval_run_traced(Model *m, Tokenizer *tok, const Task *t, FILE *samples, EvalResult *r,
                    EvalTraceFn trace, void *arg, Err *e);
/* The model length a task runs at: t->window when set, else the model's
 * max_position_embeddings (HFLM.max_length), else 2048 as lm-eval. */
int eval_max_length(const Model *m, const Task *t);
/* lm-eval's RegexFilter on one response: findall(regex) (the group's text with one
 * group, the first non-empty group with several, the match without), the one at
 * group_select (negative from the end), str.strip()ped; "[invalid]" when nothing
 * matches. A new string, or NULL with e set (a bad pattern, PCRE2's limits). */
char *eval_regex_filter(const char *regex, int group_select, const char *resp, Err *e);
/* lm-eval's mean_stderr: sample standard deviation (n - 1) / sqrt(n); -1 when n < 2. */
double mean_stderr(const double *x, int n);
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
