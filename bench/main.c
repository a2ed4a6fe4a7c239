/*
 * main.c - the effbench command: subcommand dispatch and shared options.
 *
 *   effbench logits   --model DIR --tokens 1,2,3 [--decode] -o FILE
 *   effbench generate --model DIR --tokens 1,2,3 -n N
 *   effbench generate --model M --prompt TEXT -n N     (the continuation as text)
 *   effbench tokenize --model M --text TEXT | --decode 1,2,3
 *   effbench bench    --model CONFIG|DIR [--dummy] [-p 512] [-n 32] [-b 1,16] [-d 1024] [-r 3]
 *   effbench export-gguf --model CONFIG|DIR [--dummy --dtype T --layers N] -o OUT.gguf
 * Data goes to stdout and files; messages to stderr. Exit 0 on success, 1 on a
 * user-visible error (one line on stderr), 2 on bad usage. Subcommands return 0, -1
 * (error) or -2 (usage).
 */
#include "cli.h"
#include "qdot.h"
#include "backend.h"
#include "gguf_export.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: effbench COMMAND [options]\n"
        "commands:\n"
        "  logits    write float32 logits [T, vocab] of every position to -o FILE\n"
        "  generate  greedy continuation: N token ids, or text with --prompt\n"
        "  tokenize  text to comma-separated token ids (--text, --file), or ids to text (--decode)\n"
        "  bench     measure prefill and decode speed, memory bandwidth and GEMM rate\n"
        "  info      analytic figures: parameters, KV cache, FLOPs and bytes per token\n"
        "  cost      training compute, GPU-hours, days and dollars (or implied MFU)\n"
        "  run       run a suite (default: suites/default.json) into CSV files and charts\n"
        "  report    re-render summary and charts from the CSV files of a run directory\n"
        "  compare   ratios of every figure for the cells two results.csv files share\n"
        "  eval      accuracy on a task (multiple choice, perplexity, generation)\n"
        "  eval-compare  paired test of two models' samples on one task\n"
        "  kl        next-token KL divergence against a reference run's logits\n"
        "  profile   bench with --backend cuda --profile DIR (default DIR: profile)\n"
        "  export-gguf  write the loaded model's weights as GGUF (-o OUT.gguf) for llama.cpp\n"
        "model options:\n"
        "  --model PATH      checkpoint directory (config.json + safetensors), a .gguf\n"
        "                    file, or with --dummy a config.json (or a directory holding one)\n"
        "  --dummy           seeded random weights instead of a checkpoint\n"
        "  --dtype T         dummy weight dtype: f32, bf16, f16, fp8, q8_0, q4_0, q4_1,\n"
        "                    q4_k, q5_k, q6_k (default bf16); with a checkpoint, its\n"
        "                    matrices re-encoded at load in T (not fp8)\n"
        "  --layers N        dummy: keep the first N layers\n"
        "  --seed S          dummy: seed (default 1)\n"
        "  --naive-mla       MLA with expanded K/V instead of the absorbed latent path\n"
        "  --mmap            read a checkpoint's weights in place from the file mapping\n"
        "                    (default: copied into huge pages at load when they fit in\n"
        "                    70%% of available memory; decode streams them faster there)\n"
        "  --products P      f32 (default: float32 activations, exact) or low (q8 is the\n"
        "                    same): llama.cpp's arithmetic, activations rounded to 8 bits\n"
        "                    for block types (integer dot products; prefill: per 32, in\n"
        "                    tiles) and to BF16 for BF16 and F16 prefill (VDPBF16PS;\n"
        "                    F16 weights exact in two BF16 parts); its KL cost in README\n"
        "  --kv-dtype T      the KV cache's element type: f32 (default), bf16 (rounded to\n"
        "                    nearest even) or fp8 (E4M3, a float32 scale per 128 elements);\n"
        "                    cpu only (logits, generate, bench, eval, kl, run); for info\n"
        "                    the element size of its analytic bytes (default there bf16)\n"
        "  -t N              threads (default: all cores)\n"
        "  --backend B       cpu (default), cuda, or auto (the GPU when one is usable)\n"
        "  --gpu-dtype T     cuda: weights on the GPU as f32 or bf16 (default: bf16 when\n"
        "                    stored so, else f32); the KV cache follows\n"
        "  --no-graphs       cuda: never replay decode steps as CUDA graphs\n"
        "logits/generate (and kl):\n"
        "  --tokens LIST     comma-separated token ids\n"
        "  --prompt TEXT     text, encoded with the model's tokenizer (.gguf metadata,\n"
        "                    or tokenizer.json in or beside --model)\n"
        "  --file F          the text of F, as --prompt\n"
        "  --no-special      encode without the tokenizer's BOS/EOS template\n"
        "  --decode          feed the tokens one at a time through the KV cache\n"
        "  -o FILE           output file (logits)\n"
        "  -n N              tokens to generate at most (generate)\n"
        "  --ids             generate --prompt: print the ids, not the text\n"
        "  --ignore-eos      generate --prompt: go on past the tokenizer's end-of-sequence\n"
        "tokenize:  --model M (--text TEXT | --file F) [--no-special]   ids, comma-separated\n"
        "           --model M --decode LIST [--no-special]             text (--no-special:\n"
        "           special tokens left out)\n"
        "bench:\n"
        "  -p LIST           prefill lengths (default 512)\n"
        "  -n N              decode steps timed (default 32)\n"
        "  -b LIST           decode batch sizes (default 1,16)\n"
        "  -d LIST           context depth before decode (default 1024)\n"
        "  -r N              repetitions (default 3; median reported)\n"
        "  --profile DIR     cuda: CUPTI trace of every kernel: DIR/kernels.csv, ops.csv,\n"
        "                    overhead.csv (also on run, and as effbench profile)\n"
        "  --metrics LIST    cuda: range-profiler counters per op (roofline, or metric\n"
        "                    names, comma-separated) into the --profile DIR\n"
        "info:      [--json] [--ctx 4096] [--kv-dtype bf16] [--weight-dtype bf16]\n"
        "           [--ranks 8,16,32,64 [--tp 1|N] [--ep 1|N] [--format csv]]: per GPU weights, KV\n"
        "           cache and bytes sent per token, the model split over each count\n"
        "cost:      --tokens N --gpu NAME (--mfu F | --gpu-hours H) [--gpus G] [--price USD]\n"
        "           [--precision bf16|fp8] [--seq 4096] [--hardware FILE] [--json]\n"
        "run:       effbench run [SUITE.json] [-o DIR] [--resume]\n"
        "report:    effbench report DIR\n"
        "compare:   effbench compare A.csv B.csv\n"
        "eval:      --model DIR|FILE.gguf --task FILE [--samples OUT.jsonl] [-o DIR] [--json] [--bos auto|on|off] [--max-length N]\n"
        "export-gguf: --model M [--dummy --dtype T --layers N --seed S] -o OUT.gguf  (weights in\n"
        "           their stored types; names and layout of llama.cpp's convert_hf_to_gguf.py)\n"
        "eval-compare: effbench eval-compare A.samples.jsonl B.samples.jsonl\n"
        "kl:        --model DIR (--tokens LIST | --prompt TEXT) --ref LOGITS.f32 (from effbench logits of a\n"
        "           reference run) [--decode: tokens one at a time, as decode runs them]\n"
        "across ranks: mpirun -np N effbench logits|generate|bench|eval|run ... (one process per rank,\n"
        "           one GPU each with --backend cuda; rank 0 prints and writes)\n"
        "  --tp N            tensor parallel over the N ranks: heads, FFN columns (1 or N)\n"
        "  --ep N            expert parallel: routed experts dealt over the N ranks (1 or N);\n"
        "                    default: --ep N for MoE models (and --tp N when the heads divide),\n"
        "                    --tp N for dense ones; EFFBENCH_COMM_TIMEOUT (s, default 300)\n"
        "                    bounds every wait between ranks\n");
}

int parse_int_list(const char *s, int **out, int *n) {
    int cap = 16, k = 0;
    int *v = xmalloc(sizeof(int) * (size_t)cap);
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < -2147483647L || x > 2147483647L) { free(v); return -1; }
        if (k == cap) { cap *= 2; v = realloc(v, sizeof(int) * (size_t)cap); }
        v[k++] = (int)x;
        p = end;
        if (*p == ',') p++;
        else if (*p) { free(v); return -1; }
    }
    if (!k) { free(v); return -1; }
    *out = v;
    *n = k;
    return 0;
}

static int need(int argc, char **argv, int i, const char *cmd) {
    if (i + 1 >= argc) {
        fprintf(stderr, "effbench %s: %s needs a value\n", cmd, argv[i]);
        return -1;
    }
    return 0;
}

static int to_num(const char *s, double *v, double lo, const char *what, const char *cmd) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*s == 0 || *end || errno || !(x >= lo) || x > 1e30) {
        fprintf(stderr, "effbench %s: %s expects a number >= %g, got \"%s\"\n", cmd, what, lo, s);
        return -1;
    }
    *v = x;
    return 0;
}

static int to_int(const char *s, int *v, int lo, const char *what, const char *cmd) {
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*s == 0 || *end || errno || x < lo || x > 1000000000L) {
        fprintf(stderr, "effbench %s: %s expects an integer >= %d, got \"%s\"\n", cmd, what, lo, s);
        return -1;
    }
    *v = (int)x;
    return 0;
}

int cli_parse(int argc, char **argv, int first, Opts *o, const char *cmd) {
    memset(o, 0, sizeof *o);
    o->products = -1;
    o->load.dtype = DT_BF16;
    o->load.seed = 1;
    o->n_gen = -1;
    o->reps = 3;
    o->warmup = 1;
    o->stream_mib = 512;
    o->ctx = 4096;
    o->kv_dtype = DT_BF16;
    o->weight_dtype = DT_BF16;
    o->seq_len = 4096;
    o->price = -1;
    o->args = xcalloc((size_t)argc + 1, sizeof *o->args);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
#define VAL() (need(argc, argv, i, cmd) ? NULL : argv[++i])
        if (!strcmp(a, "--model")) { if (!(o->model = VAL())) return -1; }
        else if (!strcmp(a, "--dummy")) o->load.dummy = 1;
        else if (!strcmp(a, "--naive-mla")) o->load.naive_mla = 1;
        else if (!strcmp(a, "--mmap")) o->load.mmap = 1;
        else if (!strcmp(a, "--decode") && !strcmp(cmd, "tokenize")) { if (!(o->decode_ids = VAL())) return -1; }
        else if (!strcmp(a, "--decode")) o->decode = 1;
        else if (!strcmp(a, "--prompt") || !strcmp(a, "--text")) { if (!(o->text = VAL())) return -1; }
        else if (!strcmp(a, "--file")) { if (!(o->text_file = VAL())) return -1; }
        else if (!strcmp(a, "--no-special")) o->no_special = 1;
        else if (!strcmp(a, "--ids")) o->ids_out = 1;
        else if (!strcmp(a, "--ignore-eos")) o->ignore_eos = 1;
        else if (!strcmp(a, "--dtype")) {
            const char *v = VAL();
            if (!v) return -1;
            if (dtype_parse(v, &o->load.dtype)) { fprintf(stderr, "effbench %s: unknown dtype \"%s\" (f32, bf16, f16, fp8, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k)\n", cmd, v); return -1; }
            o->load.recode = 1;       /* with a checkpoint: re-encode its matrices (not with --dummy, below) */
        }
        else if (!strcmp(a, "--layers")) { const char *v = VAL(); if (!v || to_int(v, &o->load.layers, 1, a, cmd)) return -1; }
        else if (!strcmp(a, "--seed")) { const char *v = VAL(); int s; if (!v || to_int(v, &s, 0, a, cmd)) return -1; o->load.seed = (uint64_t)s; }
        else if (!strcmp(a, "--tokens")) { if (!(o->tokens = VAL())) return -1; }
        else if (!strcmp(a, "--tp")) { const char *v = VAL(); if (!v || to_int(v, &o->load.tp, 1, a, cmd)) return -1; }
        else if (!strcmp(a, "--ep")) { const char *v = VAL(); if (!v || to_int(v, &o->load.ep, 1, a, cmd)) return -1; }
        else if (!strcmp(a, "-o")) { if (!(o->out = VAL())) return -1; }
        else if (!strcmp(a, "-n")) { const char *v = VAL(); if (!v || to_int(v, &o->n_gen, 0, a, cmd)) return -1; }
        else if (!strcmp(a, "-t")) { const char *v = VAL(); if (!v || to_int(v, &o->threads, 1, a, cmd)) return -1; }
        else if (!strcmp(a, "-p")) { if (!(o->prefill = VAL())) return -1; }
        else if (!strcmp(a, "-b")) { if (!(o->batches = VAL())) return -1; }
        else if (!strcmp(a, "-d")) { if (!(o->depths = VAL())) return -1; }
        else if (!strcmp(a, "-r")) { const char *v = VAL(); if (!v || to_int(v, &o->reps, 1, a, cmd)) return -1; }
        else if (!strcmp(a, "--stream-mib")) { const char *v = VAL(); if (!v || to_int(v, &o->stream_mib, 1, a, cmd)) return -1; }
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--resume")) o->resume = 1;
        else if (!strcmp(a, "--ctx")) { const char *v = VAL(); if (!v || to_num(v, &o->ctx, 0, a, cmd)) return -1; }
        else if (!strcmp(a, "--seq")) { const char *v = VAL(); if (!v || to_num(v, &o->seq_len, 1, a, cmd)) return -1; }
        else if (!strcmp(a, "--mfu")) { const char *v = VAL(); if (!v || to_num(v, &o->mfu, 1e-9, a, cmd)) return -1; }
        else if (!strcmp(a, "--gpu-hours")) { const char *v = VAL(); if (!v || to_num(v, &o->gpu_hours, 1e-9, a, cmd)) return -1; }
        else if (!strcmp(a, "--price")) { const char *v = VAL(); if (!v || to_num(v, &o->price, 0, a, cmd)) return -1; }
        else if (!strcmp(a, "--gpus")) { const char *v = VAL(); if (!v || to_int(v, &o->gpus, 1, a, cmd)) return -1; }
        else if (!strcmp(a, "--gpu")) { if (!(o->gpu = VAL())) return -1; }
        else if (!strcmp(a, "--ranks")) { if (!(o->ranks = VAL())) return -1; }
        else if (!strcmp(a, "--hardware")) { if (!(o->hardware = VAL())) return -1; }
        else if (!strcmp(a, "--task")) { if (!(o->task = VAL())) return -1; }
        else if (!strcmp(a, "--samples")) { if (!(o->samples = VAL())) return -1; }
        else if (!strcmp(a, "--bos")) { if (!(o->eval_bos = VAL())) return -1; }
        else if (!strcmp(a, "--max-length")) { const char *v = VAL(); if (!v || to_int(v, &o->max_length, 2, a, cmd)) return -1; }
        else if (!strcmp(a, "--ref")) { if (!(o->ref = VAL())) return -1; }
        else if (!strcmp(a, "--backend")) { if (!(o->backend = VAL())) return -1; }
        else if (!strcmp(a, "--format")) { if (!(o->format = VAL())) return -1; }
        else if (!strcmp(a, "--no-graphs")) o->no_graphs = 1;
        else if (!strcmp(a, "--products")) {
            const char *v = VAL();
            if (!v) return -1;
            if (strcmp(v, "f32") && strcmp(v, "low") && strcmp(v, "q8")) {
                fprintf(stderr, "effbench %s: --products takes f32, low or q8 (the same as low), not \"%s\"\n", cmd, v);
                return -1;
            }
            o->products = strcmp(v, "f32") != 0;
            qdot_set_products(o->products);
        }
        else if (!strcmp(a, "--profile")) { if (!(o->profile = VAL())) return -1; }
        else if (!strcmp(a, "--metrics")) { if (!(o->metrics = VAL())) return -1; }
        else if (!strcmp(a, "--gpu-dtype")) {
            const char *v = VAL();
            if (!v) return -1;
            if (dtype_parse(v, &o->gpu_dtype) || (o->gpu_dtype != DT_F32 && o->gpu_dtype != DT_BF16)) {
                fprintf(stderr, "effbench %s: --gpu-dtype is f32 or bf16, got \"%s\"\n", cmd, v);
                return -1;
            }
            o->gpu_dtype_set = 1;
        }
        else if (!strcmp(a, "--precision")) {
            const char *v = VAL();
            if (!v) return -1;
            if (!strcmp(v, "fp8")) o->fp8 = 1;
            else if (strcmp(v, "bf16")) { fprintf(stderr, "effbench %s: --precision is bf16 or fp8, got \"%s\"\n", cmd, v); return -1; }
        }
        else if (!strcmp(a, "--kv-dtype") || !strcmp(a, "--weight-dtype")) {
            const char *v = VAL();
            if (!v) return -1;
            if (!strcmp(a, "--kv-dtype")) o->kv_dtype_set = 1;
            if (dtype_parse(v, !strcmp(a, "--kv-dtype") ? &o->kv_dtype : &o->weight_dtype)) {
                fprintf(stderr, "effbench %s: unknown dtype \"%s\" (f32, bf16, f16, fp8, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k)\n", cmd, v);
                return -1;
            }
        }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "effbench %s: unknown option \"%s\" (see effbench --help)\n", cmd, a); return -1; }
        else o->args[o->n_args++] = argv[i];
#undef VAL
    }
    if (o->kv_dtype_set && strcmp(cmd, "info") && strcmp(cmd, "cost")) {      /* the engine's cache */
        if (o->kv_dtype != DT_F32 && o->kv_dtype != DT_BF16 && o->kv_dtype != DT_F8_E4M3) {
            fprintf(stderr, "effbench %s: --kv-dtype for the engine's cache is f32, bf16 or fp8, got %s\n", cmd, dtype_name(o->kv_dtype));
            return -1;
        }
        o->load.kv_dtype = o->kv_dtype;
    }
    int needs_model = strcmp(cmd, "run") && strcmp(cmd, "report") && strcmp(cmd, "compare") && strcmp(cmd, "eval-compare");
    if (needs_model && !o->model) { fprintf(stderr, "effbench %s: --model is required\n", cmd); return -1; }
    if (needs_model && o->n_args) { fprintf(stderr, "effbench %s: unexpected argument \"%s\"\n", cmd, o->args[0]); return -1; }
    if (o->load.dummy) o->load.recode = 0;
    if (o->load.recode && o->load.dtype == DT_F8_E4M3) {
        fprintf(stderr, "effbench %s: --dtype fp8 applies to dummy weights only (re-encoding a checkpoint: f32, bf16, f16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k)\n", cmd);
        return -1;
    }
    return 0;
}

int engine_opts_for(const char *b, const Opts *o, EngineOpts *eo, Err *e) {
    char why[256];
    memset(eo, 0, sizeof *eo);
    eo->backend = BACKEND_CPU;
    eo->gpu_dtype = o && o->gpu_dtype_set ? (int)o->gpu_dtype : 0;
    eo->no_graphs = o ? o->no_graphs || o->profile || o->metrics : 0;
    if (!b || !strcmp(b, "cpu")) return 0;
    if (strcmp(b, "cuda") && strcmp(b, "auto")) return err_set(e, "unknown backend \"%s\" (cpu, cuda, auto)", b);
    if (cuda_available(why, sizeof why)) { eo->backend = BACKEND_CUDA; return 0; }
    if (!strcmp(b, "auto")) return 0;
    return err_set(e, "%s", why);
}

int cli_engine(const Opts *o, EngineOpts *eo) {
    Err e = { "" };
    if (engine_opts_for(o->backend, o, eo, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    if (o->backend && !strcmp(o->backend, "auto")) {
        char why[256];
        cuda_available(why, sizeof why);
        fprintf(stderr, "effbench: backend auto: %s (%s)\n", eo->backend == BACKEND_CUDA ? "cuda" : "cpu", why);
    }
    if ((o->profile || o->metrics) && eo->backend != BACKEND_CUDA) {
        fprintf(stderr, "effbench: --profile and --metrics trace GPU kernels: they need --backend cuda\n");
        return -1;
    }
    return 0;
}

Comm *cli_comm;

int cli_agree(int rc, const char *msg) {
    Comm *c = cli_comm;
    if (!c || c->size == 1) {
        if (rc) fprintf(stderr, "effbench: %s\n", msg);
        return rc ? -1 : 0;
    }
    Err ce = { "" };
    int bad = comm_agree(c, rc, &ce);
    if (bad < 0) { fprintf(stderr, "effbench: %s\n", ce.msg); comm_abort(c, 1); }
    if (bad == 0) return 0;
    int64_t first = rc ? c->size - c->rank : 0;          /* the lowest failing rank */
    if (comm_max_i64(c, &first, 1, &ce)) { fprintf(stderr, "effbench: %s\n", ce.msg); comm_abort(c, 1); }
    int who = c->size - (int)first;
    char line[sizeof ce.msg];
    snprintf(line, sizeof line, "%s", rc ? msg : "");
    if (comm_bcast(c, line, sizeof line, who, &ce)) { fprintf(stderr, "effbench: %s\n", ce.msg); comm_abort(c, 1); }
    if (c->rank == 0) fprintf(stderr, "effbench: rank %d of %d: %s\n", who, c->size, line);
    return -1;
}

int cli_load_model(const Opts *o, Model *m) {
    Err e = { "" };
    int rc = model_load(m, o->model, &o->load, &e);
    Comm *c = cli_comm;
    if (!c || c->size == 1 || o->load.ranks <= 1) {
        if (rc) fprintf(stderr, "effbench: %s\n", e.msg);
        else if (c) m->comm = c;
        return rc ? -1 : 0;
    }
    /* every rank loaded its share: go on only if all did */
    if (cli_agree(rc, e.msg)) {
        if (!rc) model_free(m);
        return -1;
    }
    m->comm = c;
    if (c->rank == 0) {
        char d[256];
        layout_describe(&m->cfg, &m->sh, d, sizeof d);
        fprintf(stderr, "effbench: %s\n", d);
    }
    return 0;
}

int cli_engine_open(Engine **g, Model *m, const EngineOpts *eo, int n_seq, int max_pos, int max_tokens) {
    Err e = { "" };
    int rc = engine_open(g, m, eo, n_seq, max_pos, max_tokens, &e);
    if (cli_agree(rc, e.msg)) {
        if (!rc) engine_close(*g);
        *g = NULL;
        return -1;
    }
    return 0;
}

/* export-gguf: the model as loaded (dummy or read), written for llama.cpp */
int cmd_export_gguf(const Opts *o) {
    if (!o->out) { fprintf(stderr, "effbench export-gguf: -o OUT.gguf is required\n"); return -2; }
    Model m;
    if (cli_load_model(o, &m)) return -1;
    Err e = { "" };
    double t0 = now_sec();
    int rc = gguf_export(&m, o->out, &e);
    if (rc) fprintf(stderr, "effbench export-gguf: %s\n", e.msg);
    else {
        char b[32];
        fprintf(stderr, "effbench export-gguf: %s (%d tensors from %s, %s weights) in %.1f s\n", o->out, m.n_mats,
                m.stored[0] ? m.stored : dtype_name(m.wdtype), fmt_bytes(m.weight_bytes, b, sizeof b), now_sec() - t0);
    }
    model_free(&m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    Opts o;
    int (*fn)(const Opts *) = NULL;
    if (!strcmp(cmd, "logits")) fn = cmd_logits;
    else if (!strcmp(cmd, "generate")) fn = cmd_generate;
    else if (!strcmp(cmd, "tokenize")) fn = cmd_tokenize;
    else if (!strcmp(cmd, "bench")) fn = cmd_bench;
    else if (!strcmp(cmd, "info")) fn = cmd_info;
    else if (!strcmp(cmd, "cost")) fn = cmd_cost;
    else if (!strcmp(cmd, "run")) fn = cmd_run;
    else if (!strcmp(cmd, "report")) fn = cmd_report;
    else if (!strcmp(cmd, "compare")) fn = cmd_compare;
    else if (!strcmp(cmd, "eval")) fn = cmd_eval;
    else if (!strcmp(cmd, "eval-compare")) fn = cmd_eval_compare;
    else if (!strcmp(cmd, "kl")) fn = cmd_kl;
    else if (!strcmp(cmd, "profile")) fn = cmd_profile;
    else if (!strcmp(cmd, "export-gguf")) fn = cmd_export_gguf;
    else { fprintf(stderr, "effbench: unknown command \"%s\" (see effbench --help)\n", cmd); return 2; }
    Err e = { "" };
    if (comm_open_world(&cli_comm, &argc, &argv, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); return 1; }
    Comm *c = cli_comm;
    int ranked = fn == cmd_logits || fn == cmd_generate || fn == cmd_bench || fn == cmd_eval || fn == cmd_run;
    if (c->size > 1 && !ranked) {
        if (c->rank == 0) fprintf(stderr, "effbench %s: runs on one rank (started as %d): logits, generate, bench, eval and run "
                                          "run across ranks\n", cmd, c->size);
        comm_close(c);
        return 2;
    }
    if (cli_parse(argc, argv, 2, &o, cmd)) { free(o.args); comm_close(c); return 2; }
    if (fn == cmd_run && (o.load.tp || o.load.ep)) {
        if (c->rank == 0) fprintf(stderr, "effbench run: --tp and --ep are set per model in the suite (\"tp\", \"ep\", with \"ranks\": \"split\")\n");
        free(o.args);
        comm_close(c);
        return 2;
    }
    if (c->size > 1 && fn != cmd_run) {
        o.load.ranks = c->size;
        o.load.rank = c->rank;
        if (c->rank > 0) {          /* rank 0 alone speaks and writes (EFFBENCH_RANK_LOGS=1: all speak) */
            set_writes_files(0);
            o.samples = NULL;
            if (fn != cmd_logits) o.out = NULL;
            if (!freopen("/dev/null", "w", stdout)) return 1;
            if (!getenv("EFFBENCH_RANK_LOGS") && !freopen("/dev/null", "w", stderr)) return 1;
        }
    } else if ((o.load.tp > 1 || o.load.ep > 1) && fn != cmd_run && fn != cmd_info) {
        fprintf(stderr, "effbench %s: --tp/--ep %d need as many ranks: start it with mpirun -np %d\n", cmd,
                o.load.tp > o.load.ep ? o.load.tp : o.load.ep, o.load.tp > o.load.ep ? o.load.tp : o.load.ep);
        free(o.args);
        comm_close(c);
        return 2;
    }
    if (o.threads > 0) omp_set_num_threads(o.threads);
    int rc = fn(&o);               /* -2: usage error, -3: interrupted */
    free(o.args);
    comm_close(c);
    return rc == 0 ? 0 : rc == -2 ? 2 : rc == -3 ? 130 : 1;
}
