/* fuzz_safetensors.c - the safetensors header and tensor table, on an mmapped file. */
#include "fuzz_common.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char p[512];
    fuzz_file("model.safetensors", data, size, p, sizeof p);
    StSet s = { 0 };
    Err e;
    if (st_open_file(p, &s, &e) == 0 && st_finalize(&s, &e) == 0) {
        /* touch every tensor's bytes, as loading does */
        volatile uint8_t acc = 0;
        for (int i = 0; i < s.n; i++) {
            const uint8_t *b = s.t[i].data;
            for (uint64_t k = 0; k < s.t[i].nbytes; k += 4096) acc ^= b[k];
            if (s.t[i].nbytes) acc ^= b[s.t[i].nbytes - 1];
            (void)st_find(&s, s.t[i].name);
        }
        (void)acc;
    }
    st_close(&s);
    return 0;
}
