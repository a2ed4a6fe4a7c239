/*
 * run_model.c - the logits and generate commands: a checkpoint (or dummy model) run
 * on given token ids, for comparison with other engines.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int get_tokens(const Opts *o, const char *cmd, int **tok, int *n) {
    if (!o->tokens) { fprintf(stderr, "effbench %s: --tokens is required\n", cmd); return -2; }
    if (parse_int_list(o->tokens, tok, n)) {
        fprintf(stderr, "effbench %s: --tokens expects comma-separated integers, got \"%s\"\n", cmd, o->tokens);
        return -2;
    }
    return 0;
}

/* Runs the prompt (one prefill, or one token at a time); logits (n, V) for every row. */
static int run_prompt(Model *m, Engine *g, const int *tok, int n, int decode, float *logits) {
    Err e = { "" };
    int V = m->cfg.vocab;
    int *seq = xcalloc((size_t)n, sizeof(int)), *pos = xmalloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) pos[i] = i;
    int rc = 0;
    if (decode) {
        for (int i = 0; i < n && !rc; i++)
            rc = engine_step(g, 1, tok + i, seq, pos + i, NULL, logits + (int64_t)i * V, NULL, NULL, &e);
    } else {
        rc = engine_step(g, n, tok, seq, pos, NULL, logits, NULL, NULL, &e);
    }
    if (rc) fprintf(stderr, "effbench: %s\n", e.msg);
    free(seq); free(pos);
    return rc;
}

int cmd_logits(const Opts *o) {
    if (!o->out) { fprintf(stderr, "effbench logits: -o FILE is required\n"); return -2; }
    EngineOpts eo;
    if (cli_engine(o, &eo)) return -1;
    int *tok, n, rc = get_tokens(o, "logits", &tok, &n);
    if (rc) return rc;
    {   /* the output must be writable before any work */
        char probe[4200];
        Err pe = { "" };
        snprintf(probe, sizeof probe, "%s.probe", o->out);
        if (write_file_atomic(probe, "", 0, &pe)) { fprintf(stderr, "effbench: %s\n", pe.msg); free(tok); return -1; }
        unlink(probe);
    }
    Model m;
    if (cli_load_model(o, &m)) { free(tok); return -1; }
    Engine *g;
    Err e = { "" };
    rc = -1;
    float *lg = NULL;
    if (engine_open(&g, &m, &eo, 1, n, n, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); goto out; }
    lg = xmalloc(sizeof(float) * (size_t)n * m.cfg.vocab);
    if (run_prompt(&m, g, tok, n, o->decode, lg) == 0) {
        if (write_file_atomic(o->out, lg, sizeof(float) * (size_t)n * m.cfg.vocab, &e))
            fprintf(stderr, "effbench: %s\n", e.msg);
        else {
            rc = 0;
            fprintf(stderr, "effbench: wrote %s: float32 [%d, %d] (%s, %s weights)\n", o->out, n, m.cfg.vocab,
                    engine_backend(g), engine_dtype(g));
        }
    }
    engine_close(g);
out:
    free(lg);
    free(tok);
    model_free(&m);
    return rc;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i;
    return b;
}

int cmd_generate(const Opts *o) {
    if (o->n_gen < 0) { fprintf(stderr, "effbench generate: -n N is required\n"); return -2; }
    EngineOpts eo;
    if (cli_engine(o, &eo)) return -1;
    int *tok, n, rc = get_tokens(o, "generate", &tok, &n);
    if (rc) return rc;
    Model m;
    if (cli_load_model(o, &m)) { free(tok); return -1; }
    Engine *g;
    Err e = { "" };
    int V = m.cfg.vocab;
    rc = -1;
    float *lg = NULL;
    if (engine_open(&g, &m, &eo, 1, n + o->n_gen, n, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); goto out; }
    lg = xmalloc(sizeof(float) * (size_t)n * V);
    if (run_prompt(&m, g, tok, n, o->decode, lg)) goto done;
    int next = argmax(lg + (int64_t)(n - 1) * V, V), seq = 0;
    for (int i = 0; i < o->n_gen; i++) {
        printf("%s%d", i ? " " : "", next);
        if (i + 1 == o->n_gen) break;
        int p = n + i;
        if (engine_step(g, 1, &next, &seq, &p, NULL, NULL, &next, NULL, &e)) {   /* greedy on the engine: */
            fprintf(stderr, "effbench: %s\n", e.msg);                          /* no logits come back */
            goto done;
        }
    }
    printf("\n");
    fflush(stdout);
    rc = 0;
done:
    engine_close(g);
out:
    free(lg);
    free(tok);
    model_free(&m);
    return rc;
}
