/*
 * cli.h - option parsing shared by effbench's subcommands, and the subcommands.
 */
#ifndef EFFBENCH_CLI_H
#define EFFBENCH_CLI_H

#include "engine.h"
#include "tokenizer.h"

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
    /* info / cost */
    int json;                    /* --json */
    double ctx;                  /* --ctx: context length for per-token figures */
    DType kv_dtype, weight_dtype;/* --kv-dtype, --weight-dtype: element sizes for info's bytes (default
                                    bf16); --kv-dtype also sets load.kv_dtype, the engine's cache (f32) */
    int kv_dtype_set;            /* --kv-dtype given */
    const char *gpu;             /* --gpu */
    double mfu, gpu_hours, price, seq_len;   /* --mfu, --gpu-hours, --price, --seq */
    int gpus;                    /* --gpus */
    const char *ranks;           /* info --ranks LIST: the model split over each count (layout.h) */
    int fp8;                     /* --precision fp8 */
    const char *hardware;        /* --hardware FILE */
    /* run */
    int resume;                  /* --resume */
    const char *backend;         /* --backend */
    DType gpu_dtype; int gpu_dtype_set;   /* --gpu-dtype f32|bf16 */
    int no_graphs;               /* --no-graphs */
    int products;                /* --products: 0 f32, 1 q8 (8-bit activations, integer products), -1 default */
    const char *profile;         /* --profile DIR: CUPTI kernel trace */
    const char *metrics;         /* --metrics LIST|roofline: range-profiler counters per op */
    const char *format;          /* --format md|csv|json */
    char **args; int n_args;     /* positional arguments */
    /* eval / kl */
    const char *task;            /* --task FILE */
    const char *samples;         /* --samples OUT.jsonl */
    const char *ref;             /* --ref LOGITS.f32 */
    const char *eval_bos;        /* eval --bos auto|on|off: overrides the task's "bos" */
    int max_length;              /* eval --max-length N: overrides the task's "window" (0: keep) */
    /* text in and out (tokenize, --prompt) */
    const char *text;            /* --prompt / --text: encoded with the model's tokenizer */
    const char *text_file;       /* --file: the same, read from a file */
    const char *decode_ids;      /* tokenize --decode LIST */
    int no_special;              /* --no-special: no BOS/EOS template; decode skips special tokens */
    int ids_out;                 /* generate --ids: ids instead of text */
    int ignore_eos;              /* generate --ignore-eos */
} Opts;

/* The process's group of ranks (comm.h): one rank unless started by mpirun or srun.
 * Set by main before any command runs. */
extern Comm *cli_comm;

/* Parses argv[first..]; returns 0 or prints one line and returns -1. */
int cli_parse(int argc, char **argv, int first, Opts *o, const char *cmd);
/* Parses "1,2,3" into a new int array (caller frees); -1 on a bad list. */
int parse_int_list(const char *s, int **out, int *n);
/* Resolves --backend (cpu, cuda, auto; default cpu), --gpu-dtype and --no-graphs into
 * eo for the commands that run the model: 0, or -1 after printing one line (cuda
 * asked for but unusable). auto takes the GPU when one is usable, else the CPU,
 * saying which on stderr. */
int cli_engine(const Opts *o, EngineOpts *eo);
/* The same for one backend name (a suite's): 0 or -1 with why in e. */
int engine_opts_for(const char *backend, const Opts *o, EngineOpts *eo, Err *e);
/* Loads o->model with o->load, printing the error line on failure. Across ranks, each
 * loads its own share (o->load.ranks, rank, tp, ep) and all agree: when any rank
 * failed, rank 0 prints the first failing rank's line and every rank returns -1. */
int cli_load_model(const Opts *o, Model *m);
/* Across ranks, each says whether it failed (rc != 0, msg its line): 0 when none did;
 * else rank 0 prints the lowest failing rank's line and every rank returns -1 (so a
 * failure on one rank never leaves the others waiting). One rank: prints msg on rc. */
int cli_agree(int rc, const char *msg);
/* engine_open, agreed across ranks as cli_load_model is (the error line printed). */
int cli_engine_open(Engine **g, Model *m, const EngineOpts *eo, int n_seq, int max_pos, int max_tokens);
/* The token ids a command runs on: --tokens LIST, or the text of --prompt/--text or
 * --file encoded with the model's tokenizer (tok_for_model; its template, e.g. a BOS,
 * unless --no-special). *tok receives that tokenizer (caller frees), NULL for --tokens;
 * *ids is allocated. 0, -1 (error line printed) or -2 (usage line printed). */
int cli_tokens(const Opts *o, const char *cmd, Tokenizer **tok, int **ids, int *n);

int cmd_logits(const Opts *o);
int cmd_tokenize(const Opts *o);
int cmd_generate(const Opts *o);
int cmd_bench(const Opts *o);
int cmd_info(const Opts *o);
int cmd_cost(const Opts *o);
int cmd_run(const Opts *o);
int cmd_report(const Opts *o);
int cmd_compare(const Opts *o);
int cmd_eval(const Opts *o);
int cmd_eval_compare(const Opts *o);
int cmd_kl(const Opts *o);
int cmd_profile(const Opts *o);
int cmd_export_gguf(const Opts *o);

#endif
