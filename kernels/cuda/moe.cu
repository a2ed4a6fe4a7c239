/*
 * moe.cu - the MoE layer's routing, permutation and combine on the GPU; the experts'
 * products are cuda_grouped_linear (gemm.cu). Nothing is read back to the host, so a
 * MoE step can be captured as a graph. CPU twins: moe_route, moe_permute, moe_combine.
 */
#include "common.cuh"

#include <math.h>

#include "../route.h"

/* One thread per token: the routing function the CPU runs (route.h), on scratch in
 * device memory: E selection scores and 2 * n_group group figures per token. */
static __global__ void route_kernel(int *ex, float *wt, float *logits, const float *bias, int T, RouteParams p,
                                    float *scratch) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    float *sel = scratch + (size_t)t * (p.E + 2 * p.n_group), *gs = sel + p.E;
    unsigned char *keep = (unsigned char *)(gs + p.n_group);
    route_token(&p, bias, logits + (size_t)t * p.E, sel, gs, keep, ex + (size_t)t * p.K, wt + (size_t)t * p.K);
}

static float *route_scratch;     /* grown outside graph capture: the engine reserves its widest step */
static size_t route_bytes;

extern "C" int cuda_moe_route_reserve(int T, int E, int n_group) {
    return cu_grow((void **)&route_scratch, &route_bytes, sizeof(float) * (size_t)T * (E + 2 * n_group),
                   "cudaMalloc (routing scratch)");
}

extern "C" int cuda_moe_route(int *ex, float *wt, const float *logits, const float *bias, int T, const CudaRoute *r) {
    if (T <= 0) return 0;
    RouteParams p = { r->E, r->K, r->score_sigmoid, r->n_group, r->topk_group, r->method, r->renorm,
                      r->scale_after_renorm, r->routed_scale };
    if (cuda_moe_route_reserve(T, p.E, p.n_group)) return -1;    /* a no-op when the engine reserved it */
    /* the scores overwrite the logits, as on the CPU */
    LAUNCH(route_kernel, cu_blocks(T, 64), 64, 0)(ex, wt, (float *)logits, bias, T, p, route_scratch);
    LAUNCHED("moe_route");
    return 0;
}

/* One block: thread e counts expert e's slots, thread 0 scans, then thread e lists its
 * slots in index order (a stable, deterministic sort). */
static __global__ void permute_kernel(int *off, int *order, int *where, const int *ex, int TK, int E) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int c = 0;
        for (int i = 0; i < TK; i++) c += ex[i] == e;
        off[e + 1] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        off[0] = 0;
        for (int e = 0; e < E; e++) off[e + 1] += off[e];
    }
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int j = off[e];
        for (int i = 0; i < TK; i++)
            if (ex[i] == e) { order[j] = i; where[i] = j; j++; }
    }
}

extern "C" int cuda_moe_permute(int *off, int *order, int *where, const int *ex, int TK, int E) {
    if (TK <= 0) return 0;
    LAUNCH(permute_kernel, 1, 1024, 0)(off, order, where, ex, TK, E);
    LAUNCHED("moe_permute");
    return 0;
}

static __global__ void combine_kernel(float *out, const float *y, const float *wt, const int *where, const float *add,
                                      int T, int K, int D) {
    int d = blockIdx.x * blockDim.x + threadIdx.x;
    if (d >= D) return;
    for (int t = blockIdx.y; t < T; t += gridDim.y) {       /* tokens past the grid's 65535 rows */
        float v = 0.0f;
        for (int k = 0; k < K; k++) v += wt[(size_t)t * K + k] * y[(size_t)where[(size_t)t * K + k] * D + d];
        if (add) v += add[(size_t)t * D + d];
        out[(size_t)t * D + d] = v;
    }
}

extern "C" int cuda_moe_combine(float *out, const float *y, const float *wt, const int *where, const float *add, int T,
                                int K, int D) {
    if (T <= 0) return 0;
    LAUNCH(combine_kernel, dim3(cu_blocks(D, 256), cu_grid_y(T)), 256, 0)(out, y, wt, where, add, T, K, D);
    LAUNCHED("moe_combine");
    return 0;
}
