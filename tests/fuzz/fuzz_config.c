/* fuzz_config.c - config.json parsing and the RoPE tables derived from it. */
#include "config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *txt = malloc(size + 1);
    memcpy(txt, data, size);
    txt[size] = 0;
    ModelConfig c;
    Err e;
    if (config_parse(txt, "config.json", &c, &e) == 0) {
        float inv[1024];
        if (config_rope_dim(&c) / 2 <= 1024) config_rope_inv_freq(&c, inv);
        (void)config_softmax_scale(&c);
        (void)config_rope_mscale(&c);
        for (int l = 0; l < c.n_layers && l < 1000; l++) (void)config_is_moe_layer(&c, l);
    }
    free(txt);
    return 0;
}
