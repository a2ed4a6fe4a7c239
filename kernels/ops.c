/*
 * ops.c - CPU operations. Matrix products go to OpenBLAS (cblas_sgemm), all other
 * loops are OpenMP-parallel plain C written so the compiler vectorizes them.
 * One thread pool: OpenBLAS is set to one thread and called from inside our OpenMP
 * regions, each thread on its own slice. Work under ~256K multiply-adds stays on one
 * thread: waking a worker costs more, and on a loaded machine far more.
 */
#include "ops.h"
#include "qdot.h"

#include <cblas.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---- widening ----------------------------------------------------------------------- */
/* F8_E4M3: the block scales of row r (one per 128 columns), else NULL */
static inline const float *row_scales(const Mat *w, int64_t r) {
    return w->dt == DT_F8_E4M3 ? w->scale + (r / F8_BLOCK) * ((w->cols + F8_BLOCK - 1) / F8_BLOCK) : NULL;
}
static inline const void *row_ptr(const Mat *w, int64_t r) {
    return (const uint8_t *)w->data + (uint64_t)r * dtype_bytes(w->dt, w->cols);
}

void mat_rows_f32(const Mat *w, int64_t r0, int64_t n, float *dst) {
    #pragma omp parallel for schedule(static) if (n * w->cols > 262144)
    for (int64_t r = 0; r < n; r++) qdot_widen(w->dt, row_ptr(w, r0 + r), row_scales(w, r0 + r), w->cols, dst + r * w->cols);
}

/* ---- linear ------------------------------------------------------------------------- */
#define ROW_PATH_MAX_T 6       /* up to this many tokens: widen each row in registers (measured
                                  crossover with the block path on 2 Zen cores: 6-8) */
#define BLOCK_ROWS 256         /* rows widened per BLAS call on the block path, per thread
                                  (measured best of 32..1024 at T = 8..512) */

/* OpenBLAS runs single-threaded inside our OpenMP regions: one thread pool owns the
 * cores (two pools spinning against each other cost 10x on a 2-core machine). */
static void blas_single_thread(void) {
    static int done;
    if (!done) { openblas_set_num_threads(1); done = 1; }
}

size_t linear_scratch_floats(int64_t cols) {
    return (size_t)omp_get_max_threads() * BLOCK_ROWS * (size_t)cols;
}

/* rows [lo, hi) of this thread's share of nr rows, in whole blocks of `align` rows */
static void share(int64_t nr, int64_t align, int64_t *lo, int64_t *hi) {
    int nt = omp_get_num_threads(), id = omp_get_thread_num();
    int64_t blocks = (nr + align - 1) / align;
    int64_t b0 = blocks * id / nt, b1 = blocks * (id + 1) / nt;
    *lo = b0 * align < nr ? b0 * align : nr;
    *hi = b1 * align < nr ? b1 * align : nr;
}

/* tokens per chunk of the BF16/F16 panel path: what the scratch holds after the
 * threads' panels, in whole 32-token steps (each counted at its 12-token padding, so
 * any multiple fits); 0 when not even one step fits (tiny rows) */
static int64_t panel_chunk(DType dt, int64_t cols) {
    size_t pb = (qgemm_panel_bytes(dt, cols) + 63) & ~(size_t)63, nth = (size_t)omp_get_max_threads();
    size_t have = linear_scratch_floats(cols) * sizeof(float), need = 64 + nth * pb;
    return have > need ? (int64_t)((have - need) / qgemm_act_packed_bytes(dt, QGEMM_PANEL_MIN_T, cols)) * QGEMM_PANEL_MIN_T : 0;
}

/* whether the row path rounds the activations to 8 bits for W (integer products) */
static int row_path_q8(const Mat *W, const float *scratch) {
    return scratch && qdot_int_type(W->dt) && W->cols % 32 == 0 && qdot_int8_products();
}

/* whether the row path rounds one token's activations to BF16 for W (--products low,
 * BF16 weights: VDPBF16PS on the rows as stored, llama.cpp's arithmetic for BF16) */
static int row_path_bf16(const Mat *W, int T, const float *scratch) {
    return scratch && T == 1 && W->dt == DT_BF16 && qdot_int8_products() && qgemm_ok(DT_BF16);
}
static size_t bf16_row_bytes(int64_t cols) { return ((size_t)cols * 2 + 63) & ~(size_t)63; }

/* The row path (decode): y[t][r] for rows lo..hi of W[r0:], each row read once and
 * widened in registers; qa: the activations rounded to 8 bits (integer products), xb:
 * one token's rounded to BF16 (VDPBF16PS, BF16 rows as stored), else both NULL (float32
 * activations) */
static void row_path(float *y, int ldy, const float *x, int ldx, int T, const Mat *W, int64_t r0, int64_t lo,
                     int64_t hi, const QAct *qa, const uint16_t *xb) {
    int64_t r = lo, cols = W->cols;
    if (xb) {
        /* four rows a pass, a quarter of the share apart as below: one tile of 4 rows
         * whose row stride is the quarter's. Two threads over 256 MiB of BF16 at 4096
         * columns, in a minute where a plain sum read 64 GB/s: 62 GB/s, against 46
         * widening the same rows to float32 (whose shifts and conversions, not the
         * memory, then bound it); in slower minutes both at the sum's rate. */
        const int64_t q = (hi - lo) / 4;
        for (int64_t i = 0; i < q; i++) {
            float out[4];
            qgemm_rows_ld(row_ptr(W, r0 + lo + i), q * cols, 4, cols, xb, cols, 1, out, 4);
            for (int k = 0; k < 4; k++) y[lo + i + k * q] = out[k];
        }
        const int64_t rest = lo + 4 * q;
        if (rest < hi) qgemm_rows_ld(row_ptr(W, r0 + rest), cols, hi - rest, cols, xb, cols, 1, y + rest, 1);
        return;
    }
    if (T == 1 && !qa && dtype_block(W->dt) == 1) {
        /* batch 1, plain types: four rows a pass share each x load. The four are a quarter
         * of the share apart, not neighbours: four streams a row apart (8 KiB for 4096
         * BF16 columns) read 26.5-28.1 GB/s on two threads, a quarter apart 31.7-31.8
         * (likely the same DRAM banks at a short power-of-two stride); rows of 14336
         * columns read ~30 either way. Each row's sum is the same either way. */
        const int64_t q = (hi - lo) / 4;
        for (int64_t i = 0; i < q; i++) {
            const void *rows[4];
            const float *sc[4];
            float out[4];
            for (int k = 0; k < 4; k++) {
                rows[k] = row_ptr(W, r0 + lo + i + k * q);
                sc[k] = row_scales(W, r0 + lo + i + k * q);
            }
            qdot_rows4(W->dt, rows, sc, cols, x, out);
            for (int k = 0; k < 4; k++) y[lo + i + k * q] = out[k];
        }
        r = lo + 4 * q;
    }
    if (T == 1 && qa)                               /* batch 1, int8 products: four rows a call */
        for (; r + 4 <= hi; r += 4) {
            const void *rows[4];
            for (int k = 0; k < 4; k++) rows[k] = row_ptr(W, r0 + r + k);
            qdot_rows4_int(W->dt, rows, qa, y + r);
        }
    for (; r < hi; r++) {
        float acc[ROW_PATH_MAX_T];
        if (qa) qdot_row_int(W->dt, row_ptr(W, r0 + r), qa, T, acc);
        else qdot_row(W->dt, row_ptr(W, r0 + r), row_scales(W, r0 + r), cols, x, ldx, T, acc);
        for (int t = 0; t < T; t++) y[(int64_t)t * ldy + r] = acc[t];
    }
}

/* One piece of a grouped product: y (T, nr) [ldy] = x (T, cols) [ldx] . W[r0:r0+nr]^T */
typedef struct {
    float *y;
    int ldy;
    const float *x;
    const Mat *W;
    int64_t r0, nr;
} Piece;
#define PIECES_MAX 256

/* BF16 or F16 weights, many tokens, --products low: the n pieces (one stored type and
 * column count, one input x) in panels. The activations are rounded to BF16 and packed
 * once for all pieces (a chunk of tokens at a time, each thread packing its share), then
 * each piece's rows are shared among the threads, 32 at a time repacked into each
 * thread's panel at the start of the scratch, and multiplied in VDPBF16PS panel tiles
 * (qgemm.c). */
static void panel_pieces(int n, const Piece *p, int ldx, int T, float *scratch) {
    const DType dt = p[0].W->dt;
    const int64_t cols = p[0].W->cols;
    size_t pb = (qgemm_panel_bytes(dt, cols) + 63) & ~(size_t)63;
    size_t nth = (size_t)omp_get_max_threads();
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int64_t chunk = panel_chunk(dt, cols);
    uint32_t *xp = (uint32_t *)(void *)(base + nth * pb);
    if (chunk > T) chunk = T;
    for (int t0 = 0; t0 < T; t0 += (int)chunk) {
        int tn = T - t0 < chunk ? T - t0 : (int)chunk;
        #pragma omp parallel
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            qgemm_pack_act(dt, p[0].x + (int64_t)t0 * ldx, ldx, tn * id / nt, tn * (id + 1) / nt, tn, cols, xp);
            #pragma omp barrier
            for (int i = 0; i < n; i++) {
                int64_t lo, hi;
                share(p[i].nr, 32, &lo, &hi);
                if (hi > lo)
                    qgemm_rows_panel(dt, row_ptr(p[i].W, p[i].r0 + lo), hi - lo, cols, xp, tn,
                                     p[i].y + (int64_t)t0 * p[i].ldy + lo, p[i].ldy, base + (size_t)id * pb);
            }
        }
    }
}

/* whether n pieces of one input take panel_pieces for T tokens */
static int panel_ok(int n, const Piece *p, int T, const float *scratch) {
    if (n <= 0 || !scratch || !qdot_int8_products() || T < QGEMM_PANEL_MIN_T || T <= ROW_PATH_MAX_T ||
        !qgemm_panel_ok(p[0].W->dt) || panel_chunk(p[0].W->dt, p[0].W->cols) <= 0)
        return 0;
    for (int i = 1; i < n; i++)
        if (p[i].W->dt != p[0].W->dt || p[i].W->cols != p[0].W->cols || p[i].x != p[0].x) return 0;
    return 1;
}

void linear(float *y, int ldy, const float *x, int ldx, int T, const Mat *W,
            int64_t r0, int64_t nr, const float *bias, float *scratch) {
    if (T <= 0 || nr <= 0) return;
    int64_t cols = W->cols;
    blas_single_thread();
    int small = nr * cols * T < 262144;        /* not worth waking the threads (~10 us of work) */
    if (W->dt == DT_F32) {
        #pragma omp parallel if (!small)
        {
            int64_t lo, hi;
            share(nr, 16, &lo, &hi);
            const float *w = (const float *)W->data + (r0 + lo) * cols;
            if (hi > lo) {
                if (T == 1)
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(hi - lo), (int)cols, 1.0f, w, (int)cols, x, 1, 0.0f, y + lo, 1);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, (int)(hi - lo), (int)cols, 1.0f,
                                x, ldx, w, (int)cols, 0.0f, y + lo, ldy);
            }
        }
    } else if (T <= ROW_PATH_MAX_T) {
        QAct qa;                                /* block types: 8-bit activations, integer products */
        int q8 = row_path_q8(W, scratch);
        uint16_t *xb = row_path_bf16(W, T, scratch) ? (uint16_t *)(void *)scratch : NULL;
        if (q8) qdot_act_quant(W->dt, x, ldx, T, cols, scratch, &qa);
        if (xb) qgemm_act_bf16(x, ldx, 1, cols, xb, cols);
        #pragma omp parallel if (!small)
        {
            int64_t lo, hi;
            share(nr, 4, &lo, &hi);
            row_path(y, ldy, x, ldx, T, W, r0, lo, hi, q8 ? &qa : NULL, xb);
        }
    } else if (panel_ok(1, &(Piece){ y, ldy, x, W, r0, nr }, T, scratch)) {
        panel_pieces(1, &(Piece){ y, ldy, x, W, r0, nr }, ldx, T, scratch);
    } else if (scratch && qdot_int8_products() && qgemm_ok(W->dt)) {
        /* --products low, BF16 weights: activations rounded to BF16 (a chunk of tokens at
         * a time through the scratch) and VDPBF16PS tiles (qgemm.c) */
        int64_t ldxb = (cols + 31) / 32 * 32;     /* rows of whole cache lines, from a line start */
        int64_t chunk = (int64_t)((linear_scratch_floats(cols) * sizeof(float) - 64) / (sizeof(uint16_t) * (size_t)ldxb));
        if (chunk > T) chunk = T;
        uint16_t *xb = (uint16_t *)(void *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        for (int t0 = 0; t0 < T; t0 += (int)chunk) {
            int tn = T - t0 < chunk ? T - t0 : (int)chunk;
            qgemm_act_bf16(x + (int64_t)t0 * ldx, ldx, tn, cols, xb, ldxb);
            #pragma omp parallel if (!small)
            {
                int64_t lo, hi;
                share(nr, 4, &lo, &hi);
                if (hi > lo) qgemm_rows(row_ptr(W, r0 + lo), hi - lo, cols, xb, ldxb, tn, y + (int64_t)t0 * ldy + lo, ldy);
            }
        }
    } else if (scratch && qdot_int8_products() && qgemm_int_ok(W->dt) && cols % 32 == 0) {
        /* --products low, block types: activations rounded to int8 per 32 (a chunk of
         * tokens at a time), rows repacked 32 at a time into each thread's panel at the
         * start of the scratch, VPDPBUSD tiles (qgemm_int.c) */
        size_t pb = (qgemm_int_panel_bytes(cols) + 63) & ~(size_t)63;
        size_t nth = (size_t)omp_get_max_threads();
        uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        size_t avail = linear_scratch_floats(cols) * sizeof(float) - 64 - nth * pb;
        size_t per_token = qdot_act_bytes(1, cols) - 64;
        int64_t chunk = (int64_t)((avail - 64) / per_token);   /* qdot_act_bytes: + 64 for its alignment */
        if (chunk > T) chunk = T;
        for (int t0 = 0; t0 < T; t0 += (int)chunk) {
            int tn = T - t0 < chunk ? T - t0 : (int)chunk;
            QAct qa;
            qdot_act_quant(DT_Q8_0, x + (int64_t)t0 * ldx, ldx, tn, cols, base + nth * pb, &qa);
            #pragma omp parallel if (!small)
            {
                int64_t lo, hi;
                share(nr, 32, &lo, &hi);
                if (hi > lo)
                    qgemm_int_rows(W->dt, row_ptr(W, r0 + lo), hi - lo, cols, &qa, y + (int64_t)t0 * ldy + lo, ldy,
                                   base + (size_t)omp_get_thread_num() * pb);
            }
        }
    } else {
        #pragma omp parallel if (!small)
        {
            float *wf = scratch + (size_t)omp_get_thread_num() * BLOCK_ROWS * (size_t)cols;
            int64_t lo, hi;
            share(nr, BLOCK_ROWS, &lo, &hi);
            for (int64_t b = lo; b < hi; b += BLOCK_ROWS) {
                int64_t n = hi - b < BLOCK_ROWS ? hi - b : BLOCK_ROWS;
                for (int64_t r = 0; r < n; r++)
                    qdot_widen(W->dt, row_ptr(W, r0 + b + r), row_scales(W, r0 + b + r), cols, wf + r * cols);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, (int)n, (int)cols, 1.0f,
                            x, ldx, wf, (int)cols, 0.0f, y + b, ldy);
            }
        }
    }
    if (bias)
        for (int t = 0; t < T; t++)
            for (int64_t r = 0; r < nr; r++) y[(int64_t)t * ldy + r] += bias[r];
}

/* The row path over n pieces of one stored type and column count (decode): each run of
 * pieces with the same input has its activations rounded once, then one parallel region
 * shares the rows of all pieces, in order, among the threads. Prefill of BF16 or F16
 * pieces of one input with --products low: panel_pieces, the activations packed once.
 * Otherwise (float32 weights, more tokens than the row path takes, mixed types, or
 * rounded activations that would not fit in the scratch) one linear() per piece. */
static void pieces_rows(int n, const Piece *p, int ldx, int T, float *scratch) {
    if (panel_ok(n, p, T, scratch)) {               /* prefill: the activations packed once for all */
        panel_pieces(n, p, ldx, T, scratch);
        return;
    }
    int same = n > 0 && T > 0 && T <= ROW_PATH_MAX_T && p[0].W->dt != DT_F32;
    int64_t total = 0, cols = n > 0 ? p[0].W->cols : 0;
    for (int i = 0; i < n && same; i++) {
        same = p[i].W->dt == p[0].W->dt && p[i].W->cols == cols;
        total += p[i].nr;
    }
    int q8 = same && row_path_q8(p[0].W, scratch), b16 = same && row_path_bf16(p[0].W, T, scratch), nx = 0;
    for (int i = 0; i < n; i++) nx += i == 0 || p[i].x != p[i - 1].x;
    size_t qs = (sizeof(QAct) * (size_t)n + 63) & ~(size_t)63, qb = q8 ? qdot_act_bytes(T, cols) : 0;
    size_t xs = b16 ? (sizeof(uint16_t *) * (size_t)n + 63) & ~(size_t)63 : 0;
    if (!same || (q8 && 64 + qs + (size_t)nx * qb > linear_scratch_floats(cols) * sizeof(float)) ||
        (b16 && 64 + xs + (size_t)nx * bf16_row_bytes(cols) > linear_scratch_floats(cols) * sizeof(float))) {
        for (int i = 0; i < n; i++) linear(p[i].y, p[i].ldy, p[i].x, ldx, T, p[i].W, p[i].r0, p[i].nr, NULL, scratch);
        return;
    }
    blas_single_thread();
    QAct *qa = NULL;
    const uint16_t **xb = NULL;
    uint8_t *sb = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    if (q8) {
        qa = (QAct *)(void *)sb;
        uint8_t *buf = (uint8_t *)qa + qs;
        for (int i = 0, j = 0; i < n; i++) {
            if (i > 0 && p[i].x == p[i - 1].x) { qa[i] = qa[i - 1]; continue; }
            qdot_act_quant(p[0].W->dt, p[i].x, ldx, T, cols, buf + (size_t)j++ * qb, &qa[i]);
        }
    }
    if (b16) {                                      /* each distinct input rounded to BF16 once */
        xb = (const uint16_t **)(void *)sb;
        uint8_t *buf = sb + xs;
        for (int i = 0, j = 0; i < n; i++) {
            if (i > 0 && p[i].x == p[i - 1].x) { xb[i] = xb[i - 1]; continue; }
            uint16_t *o = (uint16_t *)(void *)(buf + (size_t)j++ * bf16_row_bytes(cols));
            qgemm_act_bf16(p[i].x, ldx, 1, cols, o, cols);
            xb[i] = o;
        }
    }
    #pragma omp parallel if (total * cols * T >= 262144)
    {
        int64_t lo, hi, base = 0;
        share(total, 4, &lo, &hi);                  /* a share of the rows of all pieces, in order */
        for (int i = 0; i < n && base < hi; i++) {
            int64_t a = lo > base ? lo - base : 0, b = hi - base < p[i].nr ? hi - base : p[i].nr;
            if (b > a) row_path(p[i].y, p[i].ldy, p[i].x, ldx, T, p[i].W, p[i].r0, a, b, q8 ? &qa[i] : NULL, b16 ? xb[i] : NULL);
            base += p[i].nr;
        }
    }
}

void linear_group_xs(int n, float *const ys[], const int ldys[], const float *const xs[], int ldx, int T,
                     const Mat *const Ws[], const float *const biases[], float *scratch) {
    Piece p[LINEAR_GROUP_MAX];
    if (n > LINEAR_GROUP_MAX) {
        for (int i = 0; i < n; i++) linear(ys[i], ldys[i], xs[i], ldx, T, Ws[i], 0, Ws[i]->rows, NULL, scratch);
    } else {
        for (int i = 0; i < n; i++) p[i] = (Piece){ ys[i], ldys[i], xs[i], Ws[i], 0, Ws[i]->rows };
        pieces_rows(n, p, ldx, T, scratch);
    }
    for (int i = 0; biases && i < n; i++)
        if (biases[i])
            for (int t = 0; t < T; t++)
                for (int64_t r = 0; r < Ws[i]->rows; r++) ys[i][(int64_t)t * ldys[i] + r] += biases[i][r];
}

void linear_group(int n, float *const ys[], const int ldys[], const float *x, int ldx, int T, const Mat *const Ws[],
                  const float *const biases[], float *scratch) {
    const float *xs[LINEAR_GROUP_MAX];
    for (int i = 0; i < n && i < LINEAR_GROUP_MAX; i++) xs[i] = x;
    if (n <= LINEAR_GROUP_MAX) { linear_group_xs(n, ys, ldys, xs, ldx, T, Ws, biases, scratch); return; }
    for (int i = 0; i < n; i++) linear(ys[i], ldys[i], x, ldx, T, Ws[i], 0, Ws[i]->rows, biases ? biases[i] : NULL, scratch);
}

void linear_heads(int H, float *y, int ldy, int64_t y_head, const float *x, int ldx, int64_t x_head, int T,
                  const Mat *W, int64_t w_head, int64_t w_off, int64_t nr, float *scratch) {
    if (H <= 0 || T <= 0 || nr <= 0) return;
    Piece p[PIECES_MAX];
    if (H > PIECES_MAX) {
        for (int h = 0; h < H; h++) linear(y + h * y_head, ldy, x + h * x_head, ldx, T, W, h * w_head + w_off, nr, NULL, scratch);
        return;
    }
    for (int h = 0; h < H; h++) p[h] = (Piece){ y + h * y_head, ldy, x + h * x_head, W, h * w_head + w_off, nr };
    pieces_rows(H, p, ldx, T, scratch);
}

void matmul_nn(float *y, int ldy, const float *x, int ldx, int T, const float *w, int K, int N) {
    blas_single_thread();
    #pragma omp parallel if (T * (int64_t)K * N > 262144)
    {
        int64_t lo, hi;
        share(N, 16, &lo, &hi);
        if (hi > lo)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, (int)(hi - lo), K, 1.0f, x, ldx, w + lo, N,
                        0.0f, y + lo, ldy);
    }
}

/* ---- elementwise -------------------------------------------------------------------- */
void add_inplace(float *x, const float *y, int64_t n) {
    #pragma omp parallel for schedule(static) if (n > 262144)
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

/* RMSNorm: the sum of squares in double (AVX-512: two vectors of 8 doubles, another order
 * than one running sum; each square of a float is exact in double, so the order moves the
 * sum by a few double roundings at most). */
void rmsnorm(float *out, int ldo, const float *x, int ldx, int T, int n, const float *w, float eps) {
    #pragma omp parallel for schedule(static) if ((int64_t)T * n > 262144)
    for (int t = 0; t < T; t++) {
        const float *xt = x + (int64_t)t * ldx;
        float *ot = out + (int64_t)t * ldo;
        double ss = 0;
        int i = 0;
#if defined(__AVX512F__)
        __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();   /* squares in double, 8 + 8 lanes */
        for (; i + 16 <= n; i += 16) {
            __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(xt + i)), hi = _mm512_cvtps_pd(_mm256_loadu_ps(xt + i + 8));
            a0 = _mm512_fmadd_pd(lo, lo, a0);
            a1 = _mm512_fmadd_pd(hi, hi, a1);
        }
        ss = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
#endif
        for (; i < n; i++) ss += (double)xt[i] * xt[i];
        float r = (float)(1.0 / sqrt(ss / n + eps));
        for (int k = 0; k < n; k++) ot[k] = xt[k] * r * w[k];
    }
}

/* The angles' cosines and sines are taken once per chunk of 64 pairs and applied to all
 * nh vectors, which is the same arithmetic per vector as one vector at a time. */
void rope_heads(int halves, float *x, int nh, int64_t ld, int d, int pos, const float *inv_freq, float mscale) {
    const int h = d / 2;
    float cs[64], sn[64];
    for (int i0 = 0; i0 < h; i0 += 64) {
        const int n = h - i0 < 64 ? h - i0 : 64;
        for (int i = 0; i < n; i++) {
            float ang = (float)pos * inv_freq[i0 + i];
            cs[i] = cosf(ang) * mscale;
            sn[i] = sinf(ang) * mscale;
        }
        for (int v = 0; v < nh; v++) {
            float *xv = x + (int64_t)v * ld;
            for (int i = 0; i < n; i++) {
                float c = cs[i], s = sn[i];
                if (halves) {
                    float a = xv[i0 + i], b = xv[i0 + i + h];
                    xv[i0 + i] = a * c - b * s;
                    xv[i0 + i + h] = b * c + a * s;
                } else {
                    float a = xv[2 * (i0 + i)], b = xv[2 * (i0 + i) + 1];
                    xv[2 * (i0 + i)] = a * c - b * s;
                    xv[2 * (i0 + i) + 1] = a * s + b * c;
                }
            }
        }
    }
}
void rope_interleaved(float *x, int d, int pos, const float *inv_freq, float mscale) {
    rope_heads(0, x, 1, d, d, pos, inv_freq, mscale);
}
void rope_half(float *x, int d, int pos, const float *inv_freq, float mscale) {
    rope_heads(1, x, 1, d, d, pos, inv_freq, mscale);
}

/* ---- attention ---------------------------------------------------------------------- */
/* positions of each (token, KV head) are split into this many chunks: enough items
 * for two per thread, at most 64 chunks */
static int attn_chunks(int T, int Hkv, int threads) {
    int nchunk = 1;
    while ((int64_t)T * Hkv * nchunk < 2 * threads && nchunk < 64) nchunk *= 2;
    return nchunk;
}

/* expf in 16 lanes (AVX-512): Cephes' expf (n = round(x log2 e), x - n ln 2 in two
 * parts, a degree-6 polynomial, 2^n applied by VSCALEFPS, which also takes x below -87
 * to 0 as expf does); x is clamped to [-104, 88.7] (NaN stays NaN), so that large x
 * gives a finite 2^128 at most where expf gives infinity. Within 2 ulp of expf
 * (tests/test_kv.c) where expf is finite, 16 lanes at a time where scalar expf takes
 * ~10 ns per call. */
#if defined(__AVX512F__)
static inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(88.7f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, k);
}
#endif

/* SwiGLU: g = silu(g) u = g / (1 + exp(-g)) u, in 16 lanes by exp16 (scalar expf for the
 * tail and without AVX-512). Below g = -88.7, where expf(-g) is infinite and exp16 would
 * clamp, silu(g) is taken as 0: its magnitude there is below 3e-37, and the scalar
 * quotient gives -0. */
void swiglu(float *g, const float *u, int64_t n) {
    #pragma omp parallel if (n > 262144)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int64_t lo = n * id / nt / 16 * 16, hi = id == nt - 1 ? n : n * (id + 1) / nt / 16 * 16, i = lo;
#if defined(__AVX512F__)
        const __m512 one = _mm512_set1_ps(1.0f), lo_g = _mm512_set1_ps(-88.7f);
        for (; i + 16 <= hi; i += 16) {
            __m512 v = _mm512_loadu_ps(g + i);
            __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
            __m512 y = _mm512_mul_ps(_mm512_div_ps(v, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i));
            __mmask16 tiny = _mm512_cmp_ps_mask(v, lo_g, _CMP_LT_OQ);      /* false for NaN */
            _mm512_storeu_ps(g + i, _mm512_mask_mov_ps(y, tiny, _mm512_setzero_ps()));
        }
#endif
        for (; i < hi; i++) {
            float v = g[i];
            g[i] = v / (1.0f + expf(-v)) * u[i];
        }
    }
}

/* s[j] = exp(s[j] - mx) for j < n; returns their sum (softmax numerators): exp16 on 16
 * lanes at a time, the sum accumulated in vector lanes, another order than a scalar
 * loop's. The tail and builds without AVX-512 call expf. */
float exp_sub_sum(float *s, int n, float mx) {
    int j = 0;
    float sum = 0;
#if defined(__AVX512F__)
    const __m512 m = _mm512_set1_ps(mx);
    __m512 acc = _mm512_setzero_ps();
    for (; j + 16 <= n; j += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), m));
        _mm512_storeu_ps(s + j, e);
        acc = _mm512_add_ps(acc, e);
    }
    sum = _mm512_reduce_add_ps(acc);
#endif
    for (; j < n; j++) { s[j] = expf(s[j] - mx); sum += s[j]; }
    return sum;
}

/* s[j] *= scale for j < n; returns the largest of them and mx (a running maximum),
 * passing over NaN scores as the scalar comparison does. AVX-512: 16 lanes at a time,
 * per lane (VMAXPS returns its second operand, the running maximum, when the score is
 * NaN) and then across lanes: the same value as the scalar loop, max being exact in any
 * order. */
static float scale_max(float *s, int n, float scale, float mx) {
    int j = 0;
#if defined(__AVX512F__)
    const __m512 f = _mm512_set1_ps(scale);
    __m512 m = _mm512_set1_ps(mx);
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(s + j), f);
        _mm512_storeu_ps(s + j, v);
        m = _mm512_max_ps(v, m);
    }
    mx = _mm512_reduce_max_ps(m);
#endif
    for (; j < n; j++) { s[j] *= scale; if (s[j] > mx) mx = s[j]; }
    return mx;
}

/* floats of one thread's score row: a block of positions */
static size_t attn_score_floats(int max_pos) {
    return max_pos + 1 < ATTN_KV_BLOCK ? (size_t)max_pos + 1 : ATTN_KV_BLOCK;
}

/* Prefill (more than ATTN_BLOCK_MIN_T tokens): runs of consecutive positions of one
 * sequence go in query blocks of ATTN_QROWS / group tokens, so that each block of keys
 * and values is read (and decoded) once for up to ATTN_QROWS query rows, not once per
 * token, and its products are GEMMs of that many rows. */
#define ATTN_BLOCK_MIN_T 6
#define ATTN_QROWS 64
static int attn_qblock_tokens(int group) { return group >= ATTN_QROWS ? 1 : ATTN_QROWS / group; }

/* one thread's floats on the query-block path: Q, O, m, l and scores of the block's
 * rows, and a block of decoded keys and values */
static size_t attn_qblock_floats(int group, int dk, int dv) {
    size_t M = (size_t)attn_qblock_tokens(group) * group;
    return M * ((size_t)dk + dv + 2 + ATTN_KV_BLOCK) + (size_t)ATTN_KV_BLOCK * ((size_t)dk + dv);
}

size_t attention_work_floats(int T, int H, int Hkv, int dk, int dv, int max_pos, DType dt) {
    int group = H / Hkv, threads = omp_get_max_threads();
    if (T > ATTN_BLOCK_MIN_T)            /* block starts (ints), then the threads' buffers */
        return (size_t)T + 1 + (size_t)threads * attn_qblock_floats(group, dk, dv);
    size_t items = (size_t)T * Hkv * attn_chunks(T, 1, threads);   /* either order's chunks (attention) */
    size_t n = items * group * ((size_t)dv + 2) + (size_t)threads * group * attn_score_floats(max_pos);
    if (dt != DT_F32) n += (size_t)threads * ATTN_KV_BLOCK * ((size_t)dk + dv);
    return n;
}

/* dst[0..n) = elements off..off+n of one cached row (codes; F8_E4M3: sc its scales),
 * decoded as qdot_widen decodes the whole row */
static void widen_span(DType dt, const void *codes, const float *sc, int64_t off, int n, float *dst) {
    if (dt == DT_BF16) {                             /* inline: a head's span is short, a call costs more */
        const uint16_t *src = (const uint16_t *)codes + off;
        for (int i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
        return;
    }
    const uint8_t *c = codes;
    while (n > 0) {                                  /* F8_E4M3: piece by piece within a scale block */
        int64_t b = off / F8_BLOCK;
        int k = (int)((b + 1) * F8_BLOCK - off);
        if (k > n) k = n;
        qdot_widen(DT_F8_E4M3, c + off, sc + b, k, dst);
        off += k; dst += k; n -= k;
    }
}

/* positions p0..p0+n of sequence sq, KV head g, decoded into kb: rows of ld floats,
 * [key | value], or the key alone when the value is the key's first dv elements */
static void decode_rows(const AttnArgs *a, int sq, int g, int p0, int n, int shared, float *kb, int ld) {
    size_t esz = dtype_size(a->dt);
    for (int r = 0; r < n; r++) {
        int p = p0 + r;
        const uint8_t *row = (const uint8_t *)a->codes + ((int64_t)sq * a->seq_stride + (int64_t)p * a->row) * (int64_t)esz;
        const float *rs = a->scales ? a->scales + (int64_t)sq * a->sc_seq_stride + (int64_t)p * a->sc_row : NULL;
        widen_span(a->dt, row, rs, a->k_off + (int64_t)g * a->k_head_stride, a->dk, kb + (int64_t)r * ld);
        if (!shared) widen_span(a->dt, row, rs, a->v_off + (int64_t)g * a->v_head_stride, a->dv, kb + (int64_t)r * ld + a->dk);
    }
}

/* Over a BF16 cache with --products low (attn_bf16_fits), keys and values are read as
 * stored by VDPBF16PS kernels (qdot.h), no block widened to float32 (attn_block); the
 * probabilities' rows are ATTN_PB_LD apart. */
#define ATTN_PB_LD (ATTN_KV_BLOCK + 2)
/* Shorter keys keep float32 products (attn_block): a score is then two VDPBF16PS and a
 * reduction across lanes, and SmolLM2's 64-element heads (3 a KV head) measured slower
 * this way (attention 42-50% of its step at depth 1024, against 39-40% on the widened
 * path of then; against attn_dec.c's kernels, 37-48% against 37-39%, within noise);
 * Llama-8B's 128 (4 a KV head) and MLA's 576 (16 heads) measured faster. */
#define ATTN_BF16_MIN_DK 128
static int attn_bf16_ldq(int dk) { return (dk + 31) & ~31; }
static int attn_bf16_fits(const AttnArgs *a, int group) {
    size_t need = (size_t)group * ((size_t)attn_bf16_ldq(a->dk) + ATTN_PB_LD) * sizeof(uint16_t);
    return a->dt == DT_BF16 && qdot_int8_products() && qgemm_ok(DT_BF16) && a->dk >= ATTN_BF16_MIN_DK &&
           need <= (size_t)ATTN_KV_BLOCK * ((size_t)a->dk + a->dv) * sizeof(float);
}
/* One block of positions p0..p0+bl of sequence sq, KV head g, into a running state: o
 * (group, dv) unnormalised, m and l each query's maximum and sum, with o and l rescaled
 * when a maximum rises. qh: the group's queries rounded to BF16 (group x attn_bf16_ldq)
 * where attn_bf16_fits, and then pb the probabilities' rows (group x ATTN_PB_LD): keys
 * and values read as stored, S = scale Q K^T by qgemm_rows_ld and O += P V by
 * attn_pv_bf16 with P = exp(S - m) rounded to BF16 (each a relative 2^-8 at most, the
 * cost --products low takes in every product). qh NULL: float32 products, by
 * attn_dec.c's kernels over F32 and BF16 rows in place (FP8 decoded into kb) for groups
 * of up to ATTN_DEC_MAX_GROUP query heads; larger groups by SGEMM over F32 rows in place
 * or the block decoded into kb (for MLA's 16 heads of 576 elements the kernels' key
 * tile, 16 rows of 576 floats, outgrows L1, and they measured no faster there). */
#define ATTN_DEC_MAX_GROUP 8
static void attn_block(const AttnArgs *a, const float *q, const uint16_t *qh, uint16_t *pb, int sq, int g, int p0,
                       int bl, int group, float *sc, float *kb, float *o, float *m, float *l) {
    const uint16_t *r0 = NULL;
    const char *vrows = NULL;
    int64_t ld = a->row;
    DType rdt = a->dt;                               /* the rows' type as the float32 kernels read them */
    int blas = 0;
    if (qh) {
        r0 = (const uint16_t *)a->codes + (int64_t)sq * a->seq_stride + (int64_t)p0 * a->row;
        qgemm_rows_ld(r0 + a->k_off + (int64_t)g * a->k_head_stride, a->row, bl, a->dk, qh, attn_bf16_ldq(a->dk), group,
                      sc, bl);
    } else {                                         /* F32 and BF16 rows in place, FP8 decoded into kb */
        const char *krows;
        blas = group > ATTN_DEC_MAX_GROUP;
        if (a->dt == DT_F8_E4M3 || (a->dt == DT_BF16 && blas)) {
            int shared = a->v_off == a->k_off && a->v_head_stride == a->k_head_stride && a->dv <= a->dk;
            ld = shared ? a->dk : a->dk + a->dv;     /* kb rows: [key | value], or the key alone */
            decode_rows(a, sq, g, p0, bl, shared, kb, (int)ld);
            krows = (const char *)kb;
            vrows = (const char *)(kb + (shared ? 0 : a->dk));
            rdt = DT_F32;
        } else {
            int64_t esz = a->dt == DT_BF16 ? 2 : 4;
            const char *base = (const char *)(a->dt == DT_F32 ? (const void *)a->cache : a->codes) +
                               ((int64_t)sq * a->seq_stride + (int64_t)p0 * a->row) * esz;
            krows = base + ((int64_t)a->k_off + (int64_t)g * a->k_head_stride) * esz;
            vrows = base + ((int64_t)a->v_off + (int64_t)g * a->v_head_stride) * esz;
        }
        if (blas)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, group, bl, a->dk, a->scale, q, a->dk,
                        (const float *)(const void *)krows, (int)ld, 0.0f, sc, bl);
        else
            attn_dec_scores(rdt, krows, ld, bl, a->dk, q, group, a->scale, sc, bl);
    }
    for (int x = 0; x < group; x++) {
        float *s = sc + (int64_t)x * bl, mx = scale_max(s, bl, qh ? a->scale : 1.0f, m[x]);
        float alpha = expf(m[x] - mx);                /* 0 on the first block */
        if (alpha != 1.0f)
            for (int i = 0; i < a->dv; i++) o[(int64_t)x * a->dv + i] *= alpha;
        float sum = exp_sub_sum(s, bl, mx);
        m[x] = mx;
        l[x] = l[x] * alpha + sum;
    }
    if (qh) {
        qgemm_act_bf16(sc, bl, group, bl, pb, ATTN_PB_LD);
        attn_pv_bf16(r0 + a->v_off + (int64_t)g * a->v_head_stride, a->row, bl, a->dv, pb, ATTN_PB_LD, group, o, a->dv);
    } else if (blas)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, group, a->dv, bl, 1.0f, sc, bl,
                    (const float *)(const void *)vrows, (int)ld, 1.0f, o, a->dv);
    else
        attn_dec_pv(rdt, vrows, ld, bl, a->dv, sc, bl, group, o);
}

static void attn_state_init(int group, int dv, float *o, float *m, float *l) {
    for (int x = 0; x < group; x++) { m[x] = -INFINITY; l[x] = 0; }
    memset(o, 0, sizeof(float) * (size_t)group * (size_t)dv);
}

/* One work item: positions j0..j0+len of sequence sq for KV head g, in blocks of
 * ATTN_KV_BLOCK rows (attn_block). */
static void attn_item(const AttnArgs *a, const float *q, int sq, int g, int j0, int len, int group, float *sc,
                      float *kb, float *o, float *m, float *l) {
    uint16_t *qh = NULL, *pb = NULL;
    if (attn_bf16_fits(a, group)) {                  /* the rounded queries and probabilities in kb */
        qh = (uint16_t *)(void *)kb;
        pb = qh + (size_t)group * attn_bf16_ldq(a->dk);
        qgemm_act_bf16(q, a->dk, group, a->dk, qh, attn_bf16_ldq(a->dk));
    }
    attn_state_init(group, a->dv, o, m, l);
    for (int b0 = 0; b0 < len; b0 += ATTN_KV_BLOCK) {
        int bl = len - b0 < ATTN_KV_BLOCK ? len - b0 : ATTN_KV_BLOCK;
        attn_block(a, q, qh, pb, sq, g, j0 + b0, bl, group, sc, kb, o, m, l);
    }
}

/* Decode with more than one KV head: a work item is a chunk of one token's positions
 * for all KV heads (position-major), not one head's span of every position. A cached
 * row holds every head's key and value side by side, so a head's span is a few lines a
 * row apart (Llama-8B: 256 bytes every 4 KiB; SmolLM2: 128 of 768); read head by head,
 * each thread's loads are short strided runs. Here the rows of a block are read in
 * order, the next block's prefetched while this one's heads are
 * done, ATTN_ROWS_BYTES of rows a block (a whole number of attn_dec.c's 16-position
 * tiles, 16 at least). Against head-by-head items: SmolLM2 (Q4_1, bf16 cache, low
 * products) at depth 1024, attention 51-54% of the step without the prefetch (either
 * order), 40% with it. */
#define ATTN_ROWS_BYTES (64 << 10)
static int attn_rows_block(const AttnArgs *a) {
    int64_t rb = (int64_t)a->row * (int64_t)dtype_size(a->dt), n = ATTN_ROWS_BYTES / (rb ? rb : 1);
    return n < 16 ? 16 : n > ATTN_KV_BLOCK ? ATTN_KV_BLOCK : (int)(n & ~15);
}
static int attn_rows_fits(const AttnArgs *a, int group) {
    if (a->Hkv < 2) return 0;
    if (!attn_bf16_fits(a, group)) return 1;
    size_t need = ((size_t)a->H * attn_bf16_ldq(a->dk) + (size_t)group * ATTN_PB_LD) * sizeof(uint16_t);
    return need <= (size_t)ATTN_KV_BLOCK * ((size_t)a->dk + a->dv) * sizeof(float);
}
static void attn_prefetch(const void *p, int64_t bytes) {
    const char *c = p;
    for (int64_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i, 0, 3);
}
/* positions j0..j0+len of token t, every KV head g into its item's state (o, m, l at
 * item (t * Hkv + g) * nchunk + c) */
static void attn_item_rows(const AttnArgs *a, int t, int j0, int len, int64_t it0, int nchunk, float *sc, float *kb,
                           float *po, float *pm, float *pl) {
    const int group = a->H / a->Hkv, sq = a->seq[t], blk = attn_rows_block(a);
    const int64_t rb = (int64_t)a->row * (int64_t)dtype_size(a->dt);
    const char *rows = (const char *)(a->dt == DT_F32 ? (const void *)a->cache : a->codes) + ((int64_t)sq * a->seq_stride + j0 * (int64_t)a->row) * (int64_t)dtype_size(a->dt);
    const float *q = a->q + (int64_t)t * a->ldq;
    uint16_t *qh = NULL, *pb = NULL;
    int ldq = attn_bf16_ldq(a->dk);
    if (attn_bf16_fits(a, group)) {                  /* every head's rounded query, then the probabilities, in kb */
        qh = (uint16_t *)(void *)kb;
        pb = qh + (size_t)a->H * ldq;
        qgemm_act_bf16(q, a->dk, a->H, a->dk, qh, ldq);
    }
    for (int g = 0; g < a->Hkv; g++) {
        int64_t it = it0 + (int64_t)g * nchunk;
        attn_state_init(group, a->dv, po + it * group * a->dv, pm + it * group, pl + it * group);
    }
    attn_prefetch(rows, (len < blk ? len : blk) * rb);
    for (int b0 = 0; b0 < len; b0 += blk) {
        int bl = len - b0 < blk ? len - b0 : blk;
        if (b0 + bl < len) attn_prefetch(rows + (b0 + bl) * rb, (len - b0 - bl < blk ? len - b0 - bl : blk) * rb);
        for (int g = 0; g < a->Hkv; g++) {
            int64_t it = it0 + (int64_t)g * nchunk;
            attn_block(a, q + (int64_t)g * group * a->dk, qh ? qh + (size_t)g * group * ldq : NULL, pb, sq, g, j0 + b0, bl,
                       group, sc, kb, po + it * group * a->dv, pm + it * group, pl + it * group);
        }
    }
}

/* Query-block item: tokens t0..t0+tb of one sequence at consecutive positions, KV head
 * g. Its M = tb x group query rows (token-major) are gathered into qb; the keys
 * 0..pos[t0+tb-1] go in blocks of ATTN_KV_BLOCK (read in place from a float32 cache,
 * else decoded into kb): S (M, bl) = scale Q K^T, each row masked past its own position
 * (causal), O += exp(S - m) V with O and the sum rescaled when a row's maximum rises
 * (as attn_item); then each row of O over its sum to the output. Over a BF16
 * cache with --products low (attn_bf16_fits for M rows) the two products read the keys
 * and values as stored, as attn_block does, with the queries rounded to BF16 once
 * (into kb, which this way leaves free) and the probabilities once a block. */
static void attn_qblock(const AttnArgs *a, int t0, int tb, int g, int group, float *buf) {
    const int dk = a->dk, dv = a->dv, M = tb * group;
    float *qb = buf, *o = qb + (size_t)M * dk, *m = o + (size_t)M * dv, *l = m + M, *sc = l + M;
    float *kb = sc + (size_t)M * ATTN_KV_BLOCK;
    int shared = a->v_off == a->k_off && a->v_head_stride == a->k_head_stride && a->dv <= a->dk;
    int ld = shared ? dk : dk + dv;
    for (int i = 0; i < M; i++) {
        int t = t0 + i / group, h = g * group + i % group;
        memcpy(qb + (size_t)i * dk, a->q + (int64_t)t * a->ldq + (int64_t)h * dk, sizeof(float) * (size_t)dk);
        m[i] = -INFINITY;
        l[i] = 0;
    }
    memset(o, 0, sizeof(float) * (size_t)M * dv);
    const int sq = a->seq[t0], n = a->pos[t0 + tb - 1] + 1;
    const int low = attn_bf16_fits(a, M), ldq = attn_bf16_ldq(dk);
    uint16_t *qh = (uint16_t *)(void *)kb, *pb = qh + (size_t)M * ldq;
    if (low) qgemm_act_bf16(qb, dk, M, dk, qh, ldq);
    for (int b0 = 0; b0 < n; b0 += ATTN_KV_BLOCK) {
        int bl = n - b0 < ATTN_KV_BLOCK ? n - b0 : ATTN_KV_BLOCK;
        const uint16_t *r0 = low ? (const uint16_t *)a->codes + (int64_t)sq * a->seq_stride + (int64_t)b0 * a->row : NULL;
        const float *K = NULL, *V = NULL;
        int ldk = 0;
        if (low)
            qgemm_rows_ld(r0 + a->k_off + (int64_t)g * a->k_head_stride, a->row, bl, dk, qh, ldq, M, sc, bl);
        else if (a->dt == DT_F32) {
            const float *base = a->cache + (int64_t)sq * a->seq_stride + (int64_t)b0 * a->row;
            K = base + a->k_off + (int64_t)g * a->k_head_stride;
            V = base + a->v_off + (int64_t)g * a->v_head_stride;
            ldk = a->row;
        } else {
            decode_rows(a, sq, g, b0, bl, shared, kb, ld);
            K = kb;
            V = kb + (shared ? 0 : dk);
            ldk = ld;
        }
        if (!low) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, bl, dk, a->scale, qb, dk, K, ldk, 0.0f, sc, bl);
        for (int i = 0; i < M; i++) {
            float *s = sc + (size_t)i * bl;
            int valid = a->pos[t0 + i / group] - b0 + 1;        /* keys of this block the row may see */
            if (valid > bl) valid = bl;
            if (valid <= 0) { memset(s, 0, sizeof(float) * (size_t)bl); continue; }
            float mx = scale_max(s, valid, low ? a->scale : 1.0f, m[i]), sum = 0;
            float alpha = expf(m[i] - mx);                       /* 0 on the first block */
            if (alpha != 1.0f)
                for (int k = 0; k < dv; k++) o[(size_t)i * dv + k] *= alpha;
            sum = exp_sub_sum(s, valid, mx);
            for (int j = valid; j < bl; j++) s[j] = 0;
            m[i] = mx;
            l[i] = l[i] * alpha + sum;
        }
        if (low) {
            qgemm_act_bf16(sc, bl, M, bl, pb, ATTN_PB_LD);
            attn_pv_bf16(r0 + a->v_off + (int64_t)g * a->v_head_stride, a->row, bl, dv, pb, ATTN_PB_LD, M, o, dv);
        } else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, dv, bl, 1.0f, sc, bl, V, ldk, 1.0f, o, dv);
    }
    for (int i = 0; i < M; i++) {
        int t = t0 + i / group, h = g * group + i % group;
        float *out = a->out + (int64_t)t * a->ldo + (int64_t)h * dv, inv = 1.0f / l[i];
        for (int k = 0; k < dv; k++) out[k] = o[(size_t)i * dv + k] * inv;
    }
}

/* prefill: query blocks over every KV head, the blocks of the latest positions first */
static void attention_qblocks(const AttnArgs *a, float *ws) {
    int group = a->H / a->Hkv, tbmax = attn_qblock_tokens(group), nb = 0;
    int *start = (int *)(void *)ws;
    float *bufs = ws + a->T + 1;
    int64_t work = 0;
    for (int t = 0; t < a->T; t++) {
        int cont = t > 0 && a->seq[t] == a->seq[t - 1] && a->pos[t] == a->pos[t - 1] + 1 && t - start[nb - 1] < tbmax;
        if (!cont) start[nb++] = t;
        work += (int64_t)(a->pos[t] + 1) * a->H * (a->dk + a->dv);
    }
    start[nb] = a->T;
    size_t per = attn_qblock_floats(group, a->dk, a->dv);
    int64_t items = (int64_t)nb * a->Hkv;
    #pragma omp parallel for schedule(dynamic, 1) if (items > 1 && work > 262144)
    for (int64_t it = 0; it < items; it++) {
        int b = nb - 1 - (int)(it / a->Hkv), g = (int)(it % a->Hkv);
        attn_qblock(a, start[b], start[b + 1] - start[b], g, group, bufs + (size_t)omp_get_thread_num() * per);
    }
}

/* Decode (up to ATTN_BLOCK_MIN_T tokens). Work item: token t, KV head g, and a chunk of
 * its positions (attn_item), or with more than one KV head a chunk of t's positions for
 * every head (attn_item_rows). All query heads that share g are scored together,
 * S (group, len) = Q (group, dk) K^T, and summed together, O (group, dv) = exp(S - m) V
 * (attn_dec.c's kernels in float32, or VDPBF16PS as attn_block says), so each cached
 * row is read once per item, not once per head. The positions are split into chunks so
 * every thread has work, and the chunks are merged with their maxima and sums (the
 * log-sum-exp merge of split-K decoding). */
void attention(const AttnArgs *a) {
    blas_single_thread();
    if (a->T > ATTN_BLOCK_MIN_T) {
        float *own = a->work ? NULL : xmalloc(sizeof(float) * attention_work_floats(a->T, a->H, a->Hkv, a->dk, a->dv, a->max_pos, a->dt));
        attention_qblocks(a, a->work ? a->work : own);
        free(own);
        return;
    }
    int group = a->H / a->Hkv, threads = omp_get_max_threads();
    const int rows = attn_rows_fits(a, group);
    int nchunk = attn_chunks(a->T, rows ? 1 : a->Hkv, threads);
    int64_t items = (int64_t)a->T * a->Hkv * nchunk, units = rows ? (int64_t)a->T * nchunk : items;
    int64_t work = 0;                          /* multiply-adds, to decide on threads */
    for (int t = 0; t < a->T; t++) work += (int64_t)(a->pos[t] + 1) * a->H * (a->dk + a->dv);
    float *own = a->work ? NULL : xmalloc(sizeof(float) * attention_work_floats(a->T, a->H, a->Hkv, a->dk, a->dv, a->max_pos, a->dt));
    float *ws = a->work ? a->work : own;
    size_t srow = attn_score_floats(a->max_pos);
    /* partial results per item: O (group, dv), max (group), sum (group); then the
     * threads' score rows (group, srow); then (BF16, FP8) the threads' decoded blocks */
    float *po = ws;
    float *pm = po + (size_t)items * group * a->dv;
    float *pl = pm + (size_t)items * group;
    float *scores = pl + (size_t)items * group;
    float *blocks = scores + (size_t)threads * group * srow;
    #pragma omp parallel if (units > 1 && work > 262144)
    {
        int th = omp_get_thread_num();
        float *sc = scores + (size_t)th * group * srow;
        float *kb = a->dt != DT_F32 ? blocks + (size_t)th * ATTN_KV_BLOCK * ((size_t)a->dk + a->dv) : NULL;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < units; u++) {
            int64_t it = rows ? u / nchunk * a->Hkv * nchunk + u % nchunk : u;   /* head 0's item for rows */
            int c = (int)(it % nchunk), g = (int)((it / nchunk) % a->Hkv), t = (int)(it / nchunk / a->Hkv);
            int n = a->pos[t] + 1, cl = (n + nchunk - 1) / nchunk;
            int j0 = c * cl, len = n - j0 < cl ? n - j0 : cl;
            if (len <= 0) {                              /* no positions: the item (rows: every head's) is empty */
                for (int h = 0; h < (rows ? a->Hkv : 1); h++)
                    for (int x = 0; x < group; x++) {
                        pm[(it + (int64_t)h * nchunk) * group + x] = -INFINITY;
                        pl[(it + (int64_t)h * nchunk) * group + x] = 0;
                    }
                continue;
            }
            if (rows)
                attn_item_rows(a, t, j0, len, it, nchunk, sc, kb, po, pm, pl);
            else
                attn_item(a, a->q + (int64_t)t * a->ldq + (int64_t)g * group * a->dk, a->seq[t], g, j0, len, group, sc, kb,
                          po + it * group * a->dv, pm + it * group, pl + it * group);
        }
    }
    /* merge the chunks of each (token, KV head) */
    #pragma omp parallel for schedule(static) if ((int64_t)a->T * a->H * a->dv * nchunk > 262144)
    for (int64_t th = 0; th < (int64_t)a->T * a->H; th++) {
        int t = (int)(th / a->H), h = (int)(th % a->H), g = h / group, x = h % group;
        int64_t it0 = ((int64_t)t * a->Hkv + g) * nchunk;
        float mx = -INFINITY, sum = 0;
        for (int c = 0; c < nchunk; c++) if (pm[(it0 + c) * group + x] > mx) mx = pm[(it0 + c) * group + x];
        float *out = a->out + (int64_t)t * a->ldo + (int64_t)h * a->dv;
        for (int i = 0; i < a->dv; i++) out[i] = 0;
        for (int c = 0; c < nchunk; c++) {
            int64_t it = it0 + c;
            if (pm[it * group + x] == -INFINITY) continue;
            float w = expf(pm[it * group + x] - mx);
            sum += w * pl[it * group + x];
            const float *o = po + (it * group + x) * a->dv;
            for (int i = 0; i < a->dv; i++) out[i] += w * o[i];
        }
        float inv = 1.0f / sum;
        for (int i = 0; i < a->dv; i++) out[i] *= inv;
    }
    free(own);
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

/* ---- MoE ------------------------------------------------------------------------------ */
size_t moe_route_scratch_floats(const RouteParams *p) {
    return (size_t)p->E + 2 * ((size_t)p->n_group + 1);     /* sel (E), gs and keep (n_group+1 each) */
}

void moe_route_with_scratch(const RouteParams *p, const float *bias, float *logits, int T, int *ex, float *wt,
                            float *scratch) {
    float *sel = scratch, *gs = sel + p->E;
    unsigned char *keep = (unsigned char *)(gs + p->n_group + 1);
    for (int t = 0; t < T; t++)
        route_token(p, bias, logits + (int64_t)t * p->E, sel, gs, keep, ex + (int64_t)t * p->K, wt + (int64_t)t * p->K);
}

void moe_route(const RouteParams *p, const float *bias, float *logits, int T, int *ex, float *wt) {
    float *scratch = xmalloc(sizeof(float) * moe_route_scratch_floats(p));
    moe_route_with_scratch(p, bias, logits, T, ex, wt, scratch);
    free(scratch);
}

/* Counts shifted by two, summed, leave off[x+1] at the first row of expert x; placing
 * each slot advances it to the end of x, which is where expert x+1 begins: no cursor
 * array. Slots are placed in order, so the sort is stable. */
void moe_permute(int *off, int *order, int *where, const int *ex, int TK, int E) {
    memset(off, 0, sizeof(int) * ((size_t)E + 1));
    for (int i = 0; i < TK; i++)
        if (ex[i] + 2 <= E) off[ex[i] + 2]++;    /* the last expert's count is never needed */
    for (int x = 0; x < E; x++) off[x + 1] += off[x];
    for (int i = 0; i < TK; i++) {
        int j = off[ex[i] + 1]++;
        order[j] = i;
        where[i] = j;
    }
}

void moe_combine(float *out, const float *y, const float *wt, const int *where, const float *add, int T, int K, int D) {
    for (int t = 0; t < T; t++) {
        float *o = out + (int64_t)t * D;
        for (int d = 0; d < D; d++) o[d] = 0;
        for (int k = 0; k < K; k++) {
            float w = wt[t * K + k];
            const float *yi = y + (int64_t)where[t * K + k] * D;
            for (int d = 0; d < D; d++) o[d] += w * yi[d];
        }
        if (add)
            for (int d = 0; d < D; d++) o[d] += add[(int64_t)t * D + d];
    }
}
