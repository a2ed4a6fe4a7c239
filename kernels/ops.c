/*
 * ops.c - CPU operations. Matrix products go to OpenBLAS (cblas_sgemm), all other
 * loops are OpenMP-parallel plain C written so the compiler vectorizes them.
 * OpenBLAS and OpenMP never nest: BLAS is only called outside parallel regions.
 */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

/* ---- widening ----------------------------------------------------------------------- */
static float f8_table[256];
static int f8_ready;

static void f8_init(void) {
    if (f8_ready) return;
    for (int i = 0; i < 256; i++) f8_table[i] = f8e4m3_to_f32((uint8_t)i);
    f8_ready = 1;
}

/* row r, columns [c0, c0+n) of w widened into dst */
static inline void widen(const Mat *w, int64_t r, int64_t c0, int64_t n, float *restrict dst) {
    switch (w->dt) {
    case DT_F32: {
        const float *s = (const float *)w->data + r * w->cols + c0;
        for (int64_t i = 0; i < n; i++) dst[i] = s[i];
        break;
    }
    case DT_BF16: {
        const uint16_t *s = (const uint16_t *)w->data + r * w->cols + c0;
        uint32_t *d = (uint32_t *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = (uint32_t)s[i] << 16;
        break;
    }
    case DT_F16: {
        const _Float16 *s = (const _Float16 *)w->data + r * w->cols + c0;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        break;
    }
    case DT_F8_E4M3: {
        const uint8_t *s = (const uint8_t *)w->data + r * w->cols + c0;
        int64_t sc = (w->cols + F8_BLOCK - 1) / F8_BLOCK;
        const float *srow = w->scale + (r / F8_BLOCK) * sc;
        for (int64_t i = 0; i < n; i++) dst[i] = f8_table[s[i]] * srow[(c0 + i) / F8_BLOCK];
        break;
    }
    default: break;
    }
}

void mat_rows_f32(const Mat *w, int64_t r0, int64_t n, float *dst) {
    if (w->dt == DT_F8_E4M3) f8_init();
    #pragma omp parallel for schedule(static) if (n * w->cols > 65536)
    for (int64_t r = 0; r < n; r++) widen(w, r0 + r, 0, w->cols, dst + r * w->cols);
}

/* ---- linear ------------------------------------------------------------------------- */
#define ROW_PATH_MAX_T 8       /* up to this many tokens: widen each row once, in L1 */
#define CHUNK 512              /* columns widened at a time on the row path */
#define BLOCK_ROWS 64          /* rows widened per BLAS call on the block path */

size_t linear_scratch_floats(int64_t cols) { return (size_t)BLOCK_ROWS * (size_t)cols; }

static void linear_rows(float *y, int ldy, const float *x, int ldx, int T, const Mat *W,
                        int64_t r0, int64_t nr) {
    int64_t cols = W->cols;
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nr; r++) {
        float acc[ROW_PATH_MAX_T] = { 0 };
        float buf[CHUNK];
        for (int64_t c0 = 0; c0 < cols; c0 += CHUNK) {
            int64_t n = cols - c0 < CHUNK ? cols - c0 : CHUNK;
            widen(W, r0 + r, c0, n, buf);
            for (int t = 0; t < T; t++) {
                const float *xt = x + (int64_t)t * ldx + c0;
                float s = 0;
                #pragma omp simd reduction(+:s)
                for (int64_t i = 0; i < n; i++) s += buf[i] * xt[i];
                acc[t] += s;
            }
        }
        for (int t = 0; t < T; t++) y[(int64_t)t * ldy + r] = acc[t];
    }
}

void linear(float *y, int ldy, const float *x, int ldx, int T, const Mat *W,
            int64_t r0, int64_t nr, const float *bias, float *scratch) {
    if (T <= 0 || nr <= 0) return;
    int64_t cols = W->cols;
    if (W->dt == DT_F8_E4M3) f8_init();
    if (W->dt == DT_F32) {
        const float *w = (const float *)W->data + r0 * cols;
        if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)nr, (int)cols, 1.0f, w, (int)cols, x, 1, 0.0f, y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, (int)nr, (int)cols, 1.0f,
                        x, ldx, w, (int)cols, 0.0f, y, ldy);
    } else if (T <= ROW_PATH_MAX_T) {
        linear_rows(y, ldy, x, ldx, T, W, r0, nr);
    } else {
        for (int64_t b = 0; b < nr; b += BLOCK_ROWS) {
            int64_t n = nr - b < BLOCK_ROWS ? nr - b : BLOCK_ROWS;
            mat_rows_f32(W, r0 + b, n, scratch);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, (int)n, (int)cols, 1.0f,
                        x, ldx, scratch, (int)cols, 0.0f, y + b, ldy);
        }
    }
    if (bias)
        for (int t = 0; t < T; t++)
            for (int64_t r = 0; r < nr; r++) y[(int64_t)t * ldy + r] += bias[r];
}

/* ---- elementwise -------------------------------------------------------------------- */
void rmsnorm(float *out, int ldo, const float *x, int ldx, int T, int n, const float *w, float eps) {
    #pragma omp parallel for schedule(static) if (T > 4)
    for (int t = 0; t < T; t++) {
        const float *xt = x + (int64_t)t * ldx;
        float *ot = out + (int64_t)t * ldo;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xt[i] * xt[i];
        float r = (float)(1.0 / sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) ot[i] = xt[i] * r * w[i];
    }
}

void rope_interleaved(float *x, int d, int pos, const float *inv_freq, float mscale) {
    for (int i = 0; i < d / 2; i++) {
        float ang = (float)pos * inv_freq[i];
        float c = cosf(ang) * mscale, s = sinf(ang) * mscale;
        float a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * c - b * s;
        x[2 * i + 1] = a * s + b * c;
    }
}

void rope_half(float *x, int d, int pos, const float *inv_freq, float mscale) {
    int h = d / 2;
    for (int i = 0; i < h; i++) {
        float ang = (float)pos * inv_freq[i];
        float c = cosf(ang) * mscale, s = sinf(ang) * mscale;
        float a = x[i], b = x[i + h];
        x[i] = a * c - b * s;
        x[i + h] = b * c + a * s;
    }
}

void swiglu(float *g, const float *u, int64_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

/* ---- attention ---------------------------------------------------------------------- */
void attention(const AttnArgs *a) {
    int group = a->H / a->Hkv;
    int64_t pairs = (int64_t)a->T * a->H;
    #pragma omp parallel
    {
        float *sc = xmalloc(sizeof(float) * (size_t)(a->max_pos + 1));
        #pragma omp for schedule(dynamic, 1)
        for (int64_t ph = 0; ph < pairs; ph++) {
            int t = (int)(ph / a->H), h = (int)(ph % a->H), g = h / group;
            const float *q = a->q + (int64_t)t * a->ldq + (int64_t)h * a->dk;
            const float *base = a->cache + (int64_t)a->seq[t] * a->seq_stride;
            const float *kb = base + a->k_off + (int64_t)g * a->k_head_stride;
            const float *vb = base + a->v_off + (int64_t)g * a->v_head_stride;
            int n = a->pos[t] + 1;
            float mx = -INFINITY;
            for (int j = 0; j < n; j++) {
                const float *k = kb + (int64_t)j * a->row;
                float s = 0;
                #pragma omp simd reduction(+:s)
                for (int i = 0; i < a->dk; i++) s += q[i] * k[i];
                s *= a->scale;
                sc[j] = s;
                if (s > mx) mx = s;
            }
            float sum = 0;
            for (int j = 0; j < n; j++) { sc[j] = expf(sc[j] - mx); sum += sc[j]; }
            float inv = 1.0f / sum;
            float *o = a->out + (int64_t)t * a->ldo + (int64_t)h * a->dv;
            for (int i = 0; i < a->dv; i++) o[i] = 0;
            for (int j = 0; j < n; j++) {
                const float *v = vb + (int64_t)j * a->row;
                float p = sc[j] * inv;
                #pragma omp simd
                for (int i = 0; i < a->dv; i++) o[i] += p * v[i];
            }
        }
        free(sc);
    }
}

/* ---- checks ------------------------------------------------------------------------- */
int64_t count_nonfinite(DType dt, const void *data, int64_t n) {
    int64_t bad = 0;
    switch (dt) {
    case DT_F32: {
        const uint32_t *p = data;
        #pragma omp parallel for reduction(+:bad) if (n > 1 << 20)
        for (int64_t i = 0; i < n; i++) bad += (p[i] & 0x7f800000u) == 0x7f800000u;
        break;
    }
    case DT_BF16: {
        const uint16_t *p = data;
        #pragma omp parallel for reduction(+:bad) if (n > 1 << 20)
        for (int64_t i = 0; i < n; i++) bad += (p[i] & 0x7f80u) == 0x7f80u;
        break;
    }
    case DT_F16: {
        const uint16_t *p = data;
        #pragma omp parallel for reduction(+:bad) if (n > 1 << 20)
        for (int64_t i = 0; i < n; i++) bad += (p[i] & 0x7c00u) == 0x7c00u;
        break;
    }
    case DT_F8_E4M3: {
        const uint8_t *p = data;
        #pragma omp parallel for reduction(+:bad) if (n > 1 << 20)
        for (int64_t i = 0; i < n; i++) bad += (p[i] & 0x7fu) == 0x7fu;
        break;
    }
    default: break;
    }
    return bad;
}
