/*
 * none.c - the CUDA backend of a build without nvcc (or with NO_CUDA=1): it says so.
 * The probe reports the reason, and the GPU engine refuses with it; nothing is emulated.
 */
#include "backend.h"
#include "engine.h"

#include <stdio.h>

static const char WHY[] = "this effbench was built without the CUDA backend (nvcc not found, or NO_CUDA=1)";

int cuda_available(char *why, size_t len) { if (why && len) snprintf(why, len, "%s", WHY); return 0; }
const char *cuda_error(void) { return WHY; }
int cuda_set_device(int ordinal) { (void)ordinal; return -1; }
int cuda_device_count(void) { return 0; }

int gpu_open(GpuEngine **g, Model *m, const EngineOpts *o, int n_seq, int max_pos, int max_tokens, Err *e) {
    (void)m; (void)o; (void)n_seq; (void)max_pos; (void)max_tokens;
    *g = NULL;
    return err_set(e, "%s", WHY);
}
/* never reached: no GpuEngine can exist in this build */
int gpu_reserve(GpuEngine *g, int n_seq, int max_pos, int max_tokens, Err *e) {
    (void)g; (void)n_seq; (void)max_pos; (void)max_tokens;
    return err_set(e, "%s", WHY);
}
void gpu_close(GpuEngine *g) { (void)g; }
int gpu_step(GpuEngine *g, int n, const int *tok, const int *seq, const int *pos, const unsigned char *want,
             float *logits, int *next, Trace *tr, Err *e) {
    (void)g; (void)n; (void)tok; (void)seq; (void)pos; (void)want; (void)logits; (void)next; (void)tr;
    return err_set(e, "%s", WHY);
}
int gpu_set_len(GpuEngine *g, int s, int len, Err *e) { (void)g; (void)s; (void)len; return err_set(e, "%s", WHY); }
int gpu_copy_seq(GpuEngine *g, int dst, int src, int len, Err *e) { (void)g; (void)dst; (void)src; (void)len; return err_set(e, "%s", WHY); }
int gpu_repeat_context(GpuEngine *g, int s, int have, int len, Err *e) { (void)g; (void)s; (void)have; (void)len; return err_set(e, "%s", WHY); }
uint64_t gpu_kv_bytes_per_token(const GpuEngine *g) { (void)g; return 0; }
const char *gpu_device(const GpuEngine *g) { (void)g; return "none"; }
const char *gpu_dtype(const GpuEngine *g) { (void)g; return "none"; }
