/*
 * none.c - the CUDA backend of a build without nvcc (or with NO_CUDA=1): it says so.
 * Every entry point fails with that reason; nothing is emulated.
 */
#include "backend.h"

#include <stdio.h>

static const char WHY[] = "this effbench was built without the CUDA backend (nvcc not found, or NO_CUDA=1)";

int cuda_available(char *why, size_t len) { if (why && len) snprintf(why, len, "%s", WHY); return 0; }
int cuda_built(void) { return 0; }
const char *cuda_error(void) { return WHY; }
void *cuda_malloc(size_t bytes) { (void)bytes; return NULL; }
void cuda_free(void *p) { (void)p; }
int cuda_to_device(void *dst, const void *src, size_t bytes) { (void)dst; (void)src; (void)bytes; return -1; }
int cuda_to_host(void *dst, const void *src, size_t bytes) { (void)dst; (void)src; (void)bytes; return -1; }
int cuda_sync(void) { return -1; }
int cuda_rmsnorm(float *out, const float *x, const float *w, int T, int n, float eps) {
    (void)out; (void)x; (void)w; (void)T; (void)n; (void)eps; return -1;
}
int cuda_swiglu(float *g, const float *u, int64_t n) { (void)g; (void)u; (void)n; return -1; }
int cuda_rope(float *x, int T, int heads, int stride, int d, const int *pos, const float *inv_freq, float mscale, int interleaved) {
    (void)x; (void)T; (void)heads; (void)stride; (void)d; (void)pos; (void)inv_freq; (void)mscale; (void)interleaved; return -1;
}
int cuda_embed(float *out, const void *table, int bf16, const int *tok, int T, int D) {
    (void)out; (void)table; (void)bf16; (void)tok; (void)T; (void)D; return -1;
}
int cuda_argmax(int *out, const float *x, int T, int V) { (void)out; (void)x; (void)T; (void)V; return -1; }
