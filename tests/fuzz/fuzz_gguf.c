/* fuzz_gguf.c - a GGUF file: the reader on the mmapped file, the config from its
 * metadata, every tensor renamed, unpermuted and widened as loading does, and the
 * tokenizer from its metadata encoding and decoding a fixed text. */
#include "fuzz_common.h"
#include "gguf_model.h"
#include "tokenizer.h"

/* model.c is not linked here (it pulls in the BLAS products): owned buffers are kept here */
static void **owned;
static int n_owned;
void model_own(Model *m, void *p) {
    (void)m;
    owned = realloc(owned, sizeof *owned * (size_t)(n_owned + 1));
    if (!owned) abort();
    owned[n_owned++] = p;
}

/* and large permuted copies, which model.c puts in huge pages, come from malloc here */
void *model_alloc_weights(uint64_t nb) {
    void *p = malloc(nb ? (size_t)nb : 1);
    if (!p) abort();
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char p[512];
    fuzz_file("model.gguf", data, size, p, sizeof p);
    Gguf g;
    Err e;
    if (gguf_open(p, &g, &e)) return 0;
    static Model m;
    memset(&m, 0, sizeof m);
    snprintf(m.path, sizeof m.path, "%s", p);
    if (gguf_model_config(&g, &m.cfg, &e) == 0) {
        StSet s;
        if (gguf_model_tensors(&m, &g, &s, &e) == 0) {
            volatile uint8_t acc = 0;
            for (int i = 0; i < s.n; i++)
                if (s.t[i].nbytes) acc ^= ((const uint8_t *)s.t[i].data)[s.t[i].nbytes - 1];
            (void)acc;
        }
        st_close(&s);
        float inv[4096];
        int half = config_rope_dim(&m.cfg) / 2;
        if (half > 0 && half <= 4096) {
            for (int i = 0; i < half; i++) inv[i] = 1.0f;
            (void)gguf_rope_factors(&g, &m.cfg, p, inv, &e);
        }
    }
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    n_owned = 0;
    Tokenizer *t = tok_from_gguf(&g, &e);
    if (t) {
        const char *text = "Hello world 123 <|im_start|> caf\xc3\xa9  \n\n x";
        int *ids = NULL, n = 0;
        if (tok_encode(t, text, strlen(text), 1, &ids, &n, &e) == 0) {
            size_t len;
            free(tok_decode(t, ids, n, &len, &e));
        }
        free(ids);
        tok_free(t);
    }
    gguf_close(&g);
    return 0;
}
