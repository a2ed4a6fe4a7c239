/*
 * run_model.c - the logits and generate commands (a checkpoint or dummy model run on
 * given token ids or text, for comparison with other engines), and tokenize (text to
 * ids and back with the model's tokenizer; no model is loaded).
 *
 * Text goes through tok_for_model: a .gguf file's own tokenizer, else tokenizer.json in
 * or beside --model. Encoding applies the tokenizer's template (a BOS where the model
 * adds one) unless --no-special. generate --prompt prints the continuation as text as
 * it is produced, special tokens left out, and stops at the tokenizer's end-of-sequence
 * ids unless --ignore-eos; generate --tokens prints ids and never stops early.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- text to token ids -------------------------------------------------------------- */
/* the text of --prompt/--text or --file: *buf holds a file's bytes (caller frees) */
static int get_text(const Opts *o, char **buf, const char **text, size_t *len) {
    Err e = { "" };
    *buf = NULL;
    if (o->text) { *text = o->text; *len = strlen(o->text); return 0; }
    if (!(*buf = read_file(o->text_file, 256u << 20, len, &e))) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    *text = *buf;
    return 0;
}

static int encode_text(const Opts *o, Tokenizer *t, int **ids, int *n) {
    char *buf;
    const char *text;
    size_t len;
    Err e = { "" };
    if (get_text(o, &buf, &text, &len)) return -1;
    int rc = tok_encode(t, text, len, !o->no_special, ids, n, &e);
    if (rc) fprintf(stderr, "effbench: %s: %s\n", o->text_file ? o->text_file : "the text", e.msg);
    free(buf);
    return rc ? -1 : 0;
}

int cli_tokens(const Opts *o, const char *cmd, Tokenizer **tok, int **ids, int *n) {
    *tok = NULL;
    int given = !!o->tokens + !!o->text + !!o->text_file;
    if (given != 1) {
        fprintf(stderr, "effbench %s: %s\n", cmd, given ? "give one of --tokens, --prompt and --file"
                                                        : "--tokens LIST or --prompt TEXT is required");
        return -2;
    }
    if (o->tokens) {
        if (parse_int_list(o->tokens, ids, n)) {
            fprintf(stderr, "effbench %s: --tokens expects comma-separated integers, got \"%s\"\n", cmd, o->tokens);
            return -2;
        }
        return 0;
    }
    Err e = { "" };
    if (!(*tok = tok_for_model(o->model, &e))) { fprintf(stderr, "effbench: %s\n", e.msg); return -1; }
    if (encode_text(o, *tok, ids, n) == 0) {
        if (*n > 0) return 0;
        fprintf(stderr, "effbench: %s: the text encodes to no tokens\n", o->text_file ? o->text_file : "--prompt");
        free(*ids);
    }
    tok_free(*tok);
    *tok = NULL;
    return -1;
}

int cmd_tokenize(const Opts *o) {
    if (!!o->text + !!o->text_file + !!o->decode_ids != 1) {
        fprintf(stderr, "effbench tokenize: give one of --text TEXT, --file F and --decode LIST\n");
        return -2;
    }
    int *ids = NULL, n = 0;
    if (o->decode_ids && parse_int_list(o->decode_ids, &ids, &n)) {
        fprintf(stderr, "effbench tokenize: --decode expects comma-separated integers, got \"%s\"\n", o->decode_ids);
        return -2;
    }
    Err e = { "" };
    Tokenizer *t = tok_for_model(o->model, &e);
    if (!t) { fprintf(stderr, "effbench: %s\n", e.msg); free(ids); return -1; }
    int rc = 0;
    if (o->decode_ids) {
        int k = 0;
        for (int i = 0; i < n; i++)               /* --no-special: special tokens left out */
            if (!o->no_special || !tok_is_special(t, ids[i])) ids[k++] = ids[i];
        size_t len;
        char *s = tok_decode(t, ids, k, &len, &e);
        if (!s) { fprintf(stderr, "effbench: %s\n", e.msg); rc = -1; }
        else { fwrite(s, 1, len, stdout); putchar('\n'); }
        free(s);
    } else if ((rc = encode_text(o, t, &ids, &n)) == 0) {
        for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
        putchar('\n');
    }
    free(ids);
    tok_free(t);
    if (fflush(stdout) != 0 && rc == 0) { fprintf(stderr, "effbench: cannot write the output\n"); rc = -1; }
    return rc;
}

/* ---- running the model -------------------------------------------------------------- */
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
    Tokenizer *tk;
    int *tok, n, rc = cli_tokens(o, "logits", &tk, &tok, &n);
    if (rc) return rc;
    tok_free(tk);
    {   /* the output must be writable before any work */
        char probe[4200];
        Err pe = { "" };
        snprintf(probe, sizeof probe, "%s.probe", o->out);
        if (write_file_atomic(probe, "", 0, &pe)) { cli_agree(-1, pe.msg); free(tok); return -1; }
        unlink(probe);
    }
    Model m;
    if (cli_load_model(o, &m)) { free(tok); return -1; }
    Engine *g;
    Err e = { "" };
    rc = -1;
    float *lg = NULL;
    if (cli_engine_open(&g, &m, &eo, 1, n, n)) goto out;
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

/* prints one generated token as text (special tokens left out); a character split over
 * two tokens is whole once both are out */
static int put_text(const Tokenizer *tk, int id) {
    if (tok_is_special(tk, id)) return 0;
    Err e = { "" };
    size_t len;
    char *s = tok_decode(tk, &id, 1, &len, &e);
    if (!s) { fprintf(stderr, "\neffbench: generated %s\n", e.msg); return -1; }
    fwrite(s, 1, len, stdout);
    fflush(stdout);
    free(s);
    return 0;
}

int cmd_generate(const Opts *o) {
    if (o->n_gen < 0) { fprintf(stderr, "effbench generate: -n N is required\n"); return -2; }
    EngineOpts eo;
    if (cli_engine(o, &eo)) return -1;
    Tokenizer *tk;
    int *tok, n, rc = cli_tokens(o, "generate", &tk, &tok, &n);
    if (rc) return rc;
    int as_text = tk && !o->ids_out, stop = tk && !o->ignore_eos;
    Model m;
    if (cli_load_model(o, &m)) { free(tok); tok_free(tk); return -1; }
    Engine *g;
    Err e = { "" };
    int V = m.cfg.vocab;
    rc = -1;
    float *lg = NULL;
    if (cli_engine_open(&g, &m, &eo, 1, n + o->n_gen, n)) goto out;
    lg = xmalloc(sizeof(float) * (size_t)n * V);
    if (run_prompt(&m, g, tok, n, o->decode, lg)) goto done;
    int next = argmax(lg + (int64_t)(n - 1) * V, V), seq = 0;
    for (int i = 0; i < o->n_gen; i++) {
        if (stop && tok_is_eos(tk, next)) break;
        if (!as_text) printf("%s%d", i ? " " : "", next);
        else if (put_text(tk, next)) goto done;
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
    tok_free(tk);
    model_free(&m);
    return rc;
}
