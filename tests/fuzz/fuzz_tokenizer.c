/* fuzz_tokenizer.c - tokenizer.json parsing, and the encode/decode path: the input is
 * split into a tokenizer part and a text part. The text is also encoded with the
 * shipped test tokenizer, so the encoder sees arbitrary text under real merges. */
#include "fuzz_common.h"
#include "tokenizer.h"

static Tokenizer *real;

static void roundtrip(Tokenizer *t, const uint8_t *text, size_t n) {
    int *ids, k;
    Err e;
    if (tok_encode(t, (const char *)text, n, 1, &ids, &k, &e) == 0) {
        size_t len;
        char *s = tok_decode(t, ids, k, &len, &e);
        free(s);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Err e;
    if (!real) {
        const char *root = getenv("EFFBENCH_ROOT") ? getenv("EFFBENCH_ROOT") : ".";
        char p[512];
        snprintf(p, sizeof p, "%s/tests/data/tokenizers/llama3-style/tokenizer.json", root);
        real = tok_load(p, &e);
        if (!real) abort();
    }
    /* "tokenizer json \0 text": without a NUL, all of it is text for the real tokenizer */
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) { roundtrip(real, data, size); return 0; }
    size_t jl = (size_t)(nul - data);
    roundtrip(real, nul + 1, size - jl - 1);
    Tokenizer *t = tok_parse((const char *)data, jl, "tokenizer.json", &e);
    if (t) { roundtrip(t, nul + 1, size - jl - 1); tok_free(t); }
    return 0;
}
