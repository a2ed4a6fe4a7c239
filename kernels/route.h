/*
 * route.h - DeepSeekMoE / Mixtral routing of one token, one source for both sides:
 * the CPU engine (forward.c) and the GPU kernel (kernels/cuda/moe.cu) compile this
 * same function, so the two cannot drift apart. Its correctness is held by the golden
 * routing checks (experts in order, weights within 1e-5) on the CPU.
 *
 * Gate (HF modeling_deepseek MoEGate, DeepSeek-V3 inference/model.py Gate):
 *   s = softmax(logits) or sigmoid(logits); selection on s + bias (the correction
 *   bias, when present); group-limited: keep topk_group groups ranked by their max
 *   (group_limited_greedy) or by the sum of their top two (noaux_tc); top-K in
 *   descending order (lowest index on ties); weights from the unbiased s,
 *   renormalised when asked (K > 1); times routed_scale (V2: only when not
 *   renormalised).
 */
#ifndef EFFBENCH_ROUTE_H
#define EFFBENCH_ROUTE_H

#ifdef __CUDACC__
#define ROUTE_FN static __host__ __device__ inline
#else
#define ROUTE_FN static inline
#endif

typedef struct {
    int E, K;
    int sigmoid;                 /* 0: softmax scores */
    int n_group, topk_group;
    int method;                  /* 0 greedy, 1 group max, 2 sum of the group's top two */
    int renorm;                  /* norm_topk_prob */
    int scale_after_renorm;      /* 0 for DeepSeek-V2: routed_scale only when not renormalised */
    float routed_scale;
} RouteParams;

/* sc (E): the router logits, overwritten with the scores; sel (E), gs (n_group),
 * keep (n_group): scratch; ex, wt (K): the result. */
ROUTE_FN void route_token(const RouteParams *p, const float *bias, float *sc, float *sel, float *gs,
                          unsigned char *keep, int *ex, float *wt) {
    int E = p->E, K = p->K;
    if (!p->sigmoid) {
        float mx = -INFINITY, sum = 0;
        for (int i = 0; i < E; i++) if (sc[i] > mx) mx = sc[i];
        for (int i = 0; i < E; i++) { sc[i] = expf(sc[i] - mx); sum += sc[i]; }
        for (int i = 0; i < E; i++) sc[i] /= sum;
    } else {
        for (int i = 0; i < E; i++) sc[i] = 1.0f / (1.0f + expf(-sc[i]));
    }
    for (int i = 0; i < E; i++) sel[i] = sc[i] + (bias ? bias[i] : 0.0f);
    if (p->method != 0 && p->n_group > 1) {
        int G = p->n_group, per = E / G;
        for (int g = 0; g < G; g++) {
            const float *v = sel + g * per;
            float a = -INFINITY, b = -INFINITY;
            for (int i = 0; i < per; i++) {
                if (v[i] > a) { b = a; a = v[i]; } else if (v[i] > b) b = v[i];
            }
            gs[g] = p->method == 2 ? a + b : a;
            keep[g] = 0;
        }
        for (int r = 0; r < p->topk_group; r++) {
            int best = -1;
            for (int g = 0; g < G; g++) if (!keep[g] && (best < 0 || gs[g] > gs[best])) best = g;
            keep[best] = 1;
        }
        for (int g = 0; g < G; g++)
            if (!keep[g]) for (int i = 0; i < per; i++) sel[g * per + i] = -INFINITY;
    }
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int i = 0; i < E; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++) if (ex[j] == i) { taken = 1; break; }
            if (!taken && (best < 0 || sel[i] > sel[best])) best = i;
        }
        ex[k] = best;
        wt[k] = sc[best];
    }
    int renorm = p->renorm && K > 1;
    if (renorm) {
        float sum = 1e-20f;
        for (int k = 0; k < K; k++) sum += wt[k];
        for (int k = 0; k < K; k++) wt[k] /= sum;
    }
    if (p->scale_after_renorm || !renorm)
        for (int k = 0; k < K; k++) wt[k] *= p->routed_scale;
}

#endif
