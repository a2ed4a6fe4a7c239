/* fuzz_index.c - model.safetensors.index.json, next to one valid shard. */
#include "fuzz_common.h"
#include "safetensors.h"

static void write_shard(const char *dir) {
    /* one F32 tensor "a" of 2 elements */
    static const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    char p[512];
    snprintf(p, sizeof p, "%s/model-1.safetensors", dir);
    FILE *f = fopen(p, "wb");
    uint64_t n = sizeof hdr - 1;
    fwrite(&n, 8, 1, f);
    fwrite(hdr, 1, n, f);
    float v[2] = { 1, 2 };
    fwrite(v, 4, 2, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) { write_shard(fuzz_dir()); ready = 1; }
    char p[512];
    fuzz_file("model.safetensors.index.json", data, size, p, sizeof p);
    StSet s = { 0 };
    Err e;
    if (st_open_dir(fuzz_dir(), &s, &e) == 0) st_close(&s);
    return 0;
}
