/*
 * cli.h - option parsing shared by effbench's subcommands, and the subcommands.
 */
#ifndef EFFBENCH_CLI_H
#define EFFBENCH_CLI_H

#include "model.h"

typedef struct {
    const char *model;           /* --model: checkpoint dir, or config with --dummy */
    LoadOpts load;
    const char *tokens;          /* --tokens 1,2,3 */
    const char *out;             /* -o */
    int decode;                  /* --decode */
    int n_gen;                   /* -n */
    int threads;                 /* -t (0 = all cores) */
    /* bench */
    const char *prefill;         /* -p list */
    const char *batches;         /* -b list */
    const char *depths;          /* -d list */
    int reps;                    /* -r */
    int warmup;
    int stream_mib;              /* size of the bandwidth test arrays */
} Opts;

/* Parses argv[first..]; returns 0 or prints one line and returns -1. */
int cli_parse(int argc, char **argv, int first, Opts *o, const char *cmd);
/* Parses "1,2,3" into a new int array (caller frees); -1 on a bad list. */
int parse_int_list(const char *s, int **out, int *n);
/* Loads o->model with o->load, printing the error line on failure. */
int cli_load_model(const Opts *o, Model *m);

int cmd_logits(const Opts *o);
int cmd_generate(const Opts *o);
int cmd_bench(const Opts *o);

#endif
