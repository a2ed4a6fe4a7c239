/*
 * gemm.cu - matrix products: cuBLAS for the dense and per-head products, and a tiled
 * kernel for the MoE experts' grouped products, whose row counts live on the device
 * (so the whole step can be captured as a graph; nothing is read back to route).
 *
 * Precision: F32 weights take CUBLAS_COMPUTE_32F (no TF32), so the F32 path matches
 * the CPU to float32 rounding. BF16 weights take BF16 activations (rounded to nearest
 * even here) and accumulate in FP32 (CUBLAS_COMPUTE_32F), as the tensor cores do.
 * CPU twins: linear() and matmul_nn() (kernels/ops.c).
 */
#include "common.cuh"

#include <cublas_v2.h>
#include <mma.h>

static cublasHandle_t handle;
static void *workspace;                 /* set once, so cuBLAS allocates nothing in a graph */
static uint16_t *xbf;                   /* activations rounded to BF16 */
static size_t xbf_bytes;

static int blas_fail(const char *what, cublasStatus_t s) {
    return cu_failf("%s: %s", what, cublasGetStatusString(s));
}

static int blas(void) {
    if (handle) return 0;
    cublasStatus_t s = cublasCreate(&handle);
    if (s != CUBLAS_STATUS_SUCCESS) { handle = NULL; return blas_fail("cublasCreate", s); }
    const size_t ws = 32u << 20;
    cudaError_t e = cudaMalloc(&workspace, ws);
    if (e != cudaSuccess) { cublasDestroy(handle); handle = NULL; workspace = NULL; return cu_fail("cuBLAS workspace", e); }
    /* each setting is checked: a handle left on the legacy stream, or allocating its own
     * workspace, would break graph capture and the one-stream ordering */
    const char *what = NULL;
    if ((s = cublasSetStream(handle, cu_stream())) != CUBLAS_STATUS_SUCCESS) what = "cublasSetStream";
    else if ((s = cublasSetWorkspace(handle, workspace, ws)) != CUBLAS_STATUS_SUCCESS) what = "cublasSetWorkspace";
    else if ((s = cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) what = "cublasSetMathMode";
    if (what) {
        cublasDestroy(handle);
        handle = NULL;
        cudaFree(workspace);
        workspace = NULL;
        return blas_fail(what, s);
    }
    return 0;
}

/* Grows the BF16 activation buffer to n elements; the engine calls it with its largest
 * product before any graph capture, so no allocation happens while capturing. */
extern "C" int cuda_gemm_reserve(size_t n) {
    if (blas()) return -1;
    return cu_grow((void **)&xbf, &xbf_bytes, n * sizeof(uint16_t), "cudaMalloc (BF16 activations)");
}

static __global__ void to_bf16_kernel(uint16_t *dst, const float *src, int ld, int K, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = f_to_bf16(src[(i / K) * ld + i % K]);
}

static __global__ void bias_kernel(float *y, int ldy, const float *b, int N, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[(i / N) * ldy + i % N] += b[i % N];
}

extern "C" int cuda_linear(float *y, int ldy, const float *x, int ldx, int T, const void *W, int bf16, int N, int K,
                           const float *bias) {
    if (T <= 0 || N <= 0) return 0;
    if (blas()) return -1;
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t s;
    /* row-major y = x W^T is column-major y^T (N, T) = W^T (N, K) . x^T (K, T) */
    if (bf16) {
        int64_t n = (int64_t)T * K;
        if (cuda_gemm_reserve((size_t)n)) return -1;     /* a no-op when the engine reserved it */
        LAUNCH(to_bf16_kernel, cu_blocks(n, 256), 256, 0)(xbf, x, ldx, K, n);
        LAUNCHED("to_bf16");
        s = cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, W, CUDA_R_16BF, K, xbf, CUDA_R_16BF, K, &zero,
                         y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    } else {
        s = cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, W, CUDA_R_32F, K, x, CUDA_R_32F, ldx, &zero,
                         y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
    if (s != CUBLAS_STATUS_SUCCESS) return blas_fail("cublasGemmEx (linear)", s);
    if (bias) {
        int64_t n = (int64_t)T * N;
        LAUNCH(bias_kernel, cu_blocks(n, 256), 256, 0)(y, ldy, bias, N, n);
        LAUNCHED("bias");
    }
    return 0;
}

extern "C" int cuda_gemm_batched(float *y, int ldy, int64_t sy, const float *x, int ldx, int64_t sx, const float *W,
                                 int ldw, int64_t sw, int transW, int T, int N, int K, int batch) {
    if (T <= 0 || N <= 0 || batch <= 0) return 0;
    if (blas()) return -1;
    const float one = 1.0f, zero = 0.0f;
    /* column-major y^T (N, T) = op(W)^T (N, K) . x^T (K, T): W (K, N) row-major is
     * (N, K) column-major (no transpose); W (N, K) row-major needs the transpose */
    cublasStatus_t s = cublasGemmStridedBatchedEx(handle, transW ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, N, T, K, &one,
                                                  W, CUDA_R_32F, ldw, sw, x, CUDA_R_32F, ldx, sx, &zero, y, CUDA_R_32F,
                                                  ldy, sy, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : blas_fail("cublasGemmStridedBatchedEx", s);
}

/* ---- grouped expert products ------------------------------------------------------ */
/* Two kernels share the experts by their row counts (which only the device knows):
 * experts with at most GV rows (decode: a few tokens each) are read as matrix-vector
 * products, a warp a weight row with 16-byte loads, so each weight byte is read once at
 * full width; experts with more rows take 64 x 64 tiles, 256 threads each computing
 * 4 x 4, K in steps of 32 through shared memory (weights widened from BF16 on the way
 * in). Each kernel's grid is sized for the worst case; blocks without work exit. */
#define GT 64
#define GK 32
#define GV 8

template <bool BF16>
static __global__ void grouped_gemv_kernel(float *y, const float *x, const void *const *W, const int *off, int N, int K) {
    const int e = blockIdx.y, r0 = off[e], rows = off[e + 1] - r0;
    if (rows == 0 || rows > GV) return;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bool wide = K % 8 == 0;                     /* rows start on 16-byte boundaries */
    for (int j = 0; j < 4; j++) {
        const int n = blockIdx.x * 32 + warp * 4 + j;
        if (n >= N) break;
        float acc[GV] = {};
        for (int k = lane * 8; k < K; k += 256) {
            float w[8];
            if (BF16 && wide) {
                uint4 u = *(const uint4 *)((const uint16_t *)W[e] + (size_t)n * K + k);
                const unsigned v[4] = { u.x, u.y, u.z, u.w };
                for (int i = 0; i < 4; i++) { w[2 * i] = __uint_as_float(v[i] << 16); w[2 * i + 1] = __uint_as_float(v[i] & 0xffff0000u); }
            } else {
                for (int i = 0; i < 8; i++) {
                    size_t at = (size_t)n * K + k + i;
                    w[i] = k + i >= K ? 0.0f : BF16 ? bf16_to_f(((const uint16_t *)W[e])[at]) : ((const float *)W[e])[at];
                }
            }
            for (int r = 0; r < GV; r++) {
                if (r >= rows) break;
                const float *xr = x + (size_t)(r0 + r) * K + k;
                float sacc = acc[r];
                for (int i = 0; i < 8; i++) if (k + i < K) sacc += w[i] * xr[i];
                acc[r] = sacc;
            }
        }
        for (int r = 0; r < GV; r++) {
            if (r >= rows) break;
            float v = warp_sum(acc[r]);
            if (lane == 0) y[(size_t)(r0 + r) * N + n] = v;
        }
    }
}

/* The tiled kernels' blockIdx.y enumerates the 64-row tiles of the experts with more
 * than GV rows, in order: the first row of tile `tile` and its expert, or -1. */
static __device__ __forceinline__ int expert_tile(const int *off, int E, int tile, int *expert) {
    for (int e = 0; e < E; e++) {
        int rows = off[e + 1] - off[e], nt = rows > GV ? (rows + GT - 1) / GT : 0;
        if (tile < nt) { *expert = e; return off[e] + tile * GT; }
        tile -= nt;
    }
    return -1;
}

template <bool BF16>
static __global__ void grouped_kernel(float *y, const float *x, const void *const *W, const int *off, int E, int N, int K) {
    int e, r0 = expert_tile(off, E, blockIdx.y, &e);
    if (r0 < 0) return;
    int r1 = off[e + 1], n0 = blockIdx.x * GT;
    const void *w = W[e];
    __shared__ float xs[GK][GT + 1], ws[GK][GT + 1];
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += GK) {
        for (int i = threadIdx.x; i < GT * GK; i += blockDim.x) {
            int r = i / GK, k = i % GK;
            int gr = r0 + r, gk = k0 + k, gn = n0 + r;
            xs[k][r] = gr < r1 && gk < K ? x[(size_t)gr * K + gk] : 0.0f;
            float wv = 0.0f;
            if (gn < N && gk < K) {
                size_t at = (size_t)gn * K + gk;
                wv = BF16 ? bf16_to_f(((const uint16_t *)w)[at]) : ((const float *)w)[at];
            }
            ws[k][r] = wv;
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < GK; k++) {
            float a[4], b[4];
            for (int i = 0; i < 4; i++) { a[i] = xs[k][ty + 16 * i]; b[i] = ws[k][tx + 16 * i]; }
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        int gr = r0 + ty + 16 * i;
        if (gr >= r1) continue;
        for (int j = 0; j < 4; j++) {
            int gn = n0 + tx + 16 * j;
            if (gn < N) y[(size_t)gr * N + gn] = acc[i][j];
        }
    }
}


/* The same tiles on tensor cores for BF16 experts: x rounded to BF16 on its way into
 * shared memory (as the cuBLAS path rounds activations), 8 warps each holding two of the
 * tile's sixteen 16 x 16 float accumulators across the whole K loop. */
#define GLD (GK + 8)                      /* shared rows padded: a multiple of 8, fewer bank conflicts */

static __global__ void grouped_wmma_kernel(float *y, const float *x, const void *const *W, const int *off, int E, int N, int K) {
    int e, r0 = expert_tile(off, E, blockIdx.y, &e);
    if (r0 < 0) return;
    const int r1 = off[e + 1], n0 = blockIdx.x * GT, warp = threadIdx.x / 32;
    const uint16_t *w = (const uint16_t *)W[e];
    __shared__ __align__(128) __nv_bfloat16 xs[GT * GLD], ws[GT * GLD];
    __shared__ __align__(128) float out[GT * GT];
    const int fr = warp / 2, fc = (warp % 2) * 2;           /* fragment row, first of two columns */
    nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> acc[2];
    nvcuda::wmma::fill_fragment(acc[0], 0.0f);
    nvcuda::wmma::fill_fragment(acc[1], 0.0f);
    for (int k0 = 0; k0 < K; k0 += GK) {
        for (int i = threadIdx.x; i < GT * GK; i += blockDim.x) {
            int r = i / GK, k = i % GK, gk = k0 + k;
            float xv = r0 + r < r1 && gk < K ? x[(size_t)(r0 + r) * K + gk] : 0.0f;
            uint16_t wv = n0 + r < N && gk < K ? w[(size_t)(n0 + r) * K + gk] : 0;
            xs[r * GLD + k] = __float2bfloat16_rn(xv);
            ws[r * GLD + k] = *(const __nv_bfloat16 *)&wv;
        }
        __syncthreads();
        for (int kk = 0; kk < GK; kk += 16) {
            nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> fa;
            nvcuda::wmma::load_matrix_sync(fa, xs + fr * 16 * GLD + kk, GLD);
            for (int j = 0; j < 2; j++) {                   /* W rows are output columns: B = W^T, column-major */
                nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::col_major> fb;
                nvcuda::wmma::load_matrix_sync(fb, ws + (fc + j) * 16 * GLD + kk, GLD);
                nvcuda::wmma::mma_sync(acc[j], fa, fb, acc[j]);
            }
        }
        __syncthreads();
    }
    for (int j = 0; j < 2; j++)
        nvcuda::wmma::store_matrix_sync(out + fr * 16 * GT + (fc + j) * 16, acc[j], GT, nvcuda::wmma::mem_row_major);
    __syncthreads();
    for (int i = threadIdx.x; i < GT * GT; i += blockDim.x) {
        int r = i / GT, c = i % GT;
        if (r0 + r < r1 && n0 + c < N) y[(size_t)(r0 + r) * N + n0 + c] = out[i];
    }
}

extern "C" int cuda_grouped_linear(float *y, const float *x, const void *const *W, int bf16, const int *off, int E,
                                   int max_rows, int N, int K) {
    if (max_rows <= 0 || N <= 0) return 0;
    if (E > 65535) return cu_failf("grouped_linear: %d experts exceed a grid's 65535 rows", E);
    dim3 grid(cu_blocks(N, GT), (unsigned)((max_rows + GT - 1) / GT + E)), vgrid(cu_blocks(N, 32), (unsigned)E);
    if (bf16) {
        LAUNCH(grouped_gemv_kernel<true>, vgrid, 256, 0)(y, x, W, off, N, K);
        LAUNCH(grouped_wmma_kernel, grid, 256, 0)(y, x, W, off, E, N, K);
    } else {
        LAUNCH(grouped_gemv_kernel<false>, vgrid, 256, 0)(y, x, W, off, N, K);
        LAUNCH(grouped_kernel<false>, grid, 256, 0)(y, x, W, off, E, N, K);
    }
    LAUNCHED("grouped_linear");
    return 0;
}

/* ---- the device's limits, measured ------------------------------------------------ */
static __global__ void read_kernel(const float4 *x, size_t n, float *out) {
    float s = 0.0f;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float4 v = x[i];
        s += v.x + v.y + v.z + v.w;
    }
    if (s == 12345.678f) *out = s;           /* keeps the loads (a sum this exact is never met) */
}

/* pseudo-random values in [-1, 1): matrix units run faster on zeros than on data */
static __global__ void fill_kernel(void *p, size_t n, int bf16) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned long long z = (i + 1) * 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z ^= z >> 27;
        float v = (float)(z >> 40) / 8388608.0f - 1.0f;
        if (bf16) ((uint16_t *)p)[i] = f_to_bf16(v); else ((float *)p)[i] = v;
    }
}

/* the calibration product: c (M, M) = a^T a, a BF16 (M, M) */
typedef struct { const void *a; float *c; int M; } CalibGemm;
static int calib_gemm(void *arg) {
    const CalibGemm *g = (const CalibGemm *)arg;
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t s = cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, g->M, g->M, g->M, &one, g->a, CUDA_R_16BF, g->M, g->a,
                                    CUDA_R_16BF, g->M, &zero, g->c, CUDA_R_32F, g->M, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : blas_fail("calibration: cublasGemmEx", s);
}

extern "C" int cuda_measure_limits(double *read_gbs, double *gemm_tflops, int bf16, CudaCalibrate calibrate, void *ctx) {
    if (blas()) return -1;
    const size_t bytes = (size_t)2 << 30;
    const int M = CUDA_CALIBRATION_M;
    void *buf = NULL, *a = NULL, *c = NULL;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    int rc = -1;
    float ms, best = 1e30f;
    size_t es = bf16 ? 2 : 4;
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    if (sms <= 0) sms = 100;
    cudaError_t e = cudaMalloc(&buf, bytes);
    if (e != cudaSuccess) { cu_fail("limits: 2 GiB read buffer", e); goto out; }
    LAUNCH(fill_kernel, 8 * sms, 256, 0)(buf, bytes / 4, 0);
    for (int r = 0; r < 6; r++) {            /* the first run warms up */
        cudaEventRecord(e0, cu_stream());
        LAUNCH(read_kernel, 8 * sms, 512, 0)((const float4 *)buf, bytes / 16, (float *)buf);
        cudaEventRecord(e1, cu_stream());
        cudaEventSynchronize(e1);
        cudaEventElapsedTime(&ms, e0, e1);
        if (r && ms < best) best = ms;
    }
    *read_gbs = bytes / (best * 1e-3) / 1e9;
    cudaFree(buf);
    buf = NULL;
    if ((e = cudaMalloc(&a, (size_t)M * M * es)) != cudaSuccess || (e = cudaMalloc(&c, (size_t)M * M * 4)) != cudaSuccess) {
        cu_fail("limits: GEMM operands", e);
        goto out;
    }
    LAUNCH(fill_kernel, 8 * sms, 256, 0)(a, (size_t)M * M, bf16);
    best = 1e30f;
    for (int r = 0; r < 4; r++) {
        const float one = 1.0f, zero = 0.0f;
        cudaDataType_t t = bf16 ? CUDA_R_16BF : CUDA_R_32F;
        cudaEventRecord(e0, cu_stream());
        cublasStatus_t s = cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, M, M, M, &one, a, t, M, a, t, M, &zero, c,
                                        CUDA_R_32F, M, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        cudaEventRecord(e1, cu_stream());
        cudaEventSynchronize(e1);
        if (s != CUBLAS_STATUS_SUCCESS) { blas_fail("limits: cublasGemmEx", s); goto out; }
        cudaEventElapsedTime(&ms, e0, e1);
        if (r && ms < best) best = ms;
    }
    *gemm_tflops = 2.0 * M * M * M / (best * 1e-3) / 1e12;
    if (calibrate) {                          /* the BF16 product, on BF16 operands */
        if (!bf16) {
            cudaFree(a);
            a = NULL;
            if ((e = cudaMalloc(&a, (size_t)M * M * 2)) != cudaSuccess) { cu_fail("limits: calibration operands", e); goto out; }
            LAUNCH(fill_kernel, 8 * sms, 256, 0)(a, (size_t)M * M, 1);
        }
        CalibGemm g = { a, (float *)c, M };
        if (calibrate(calib_gemm, &g, ctx)) goto out;
        if ((e = cudaStreamSynchronize(cu_stream())) != cudaSuccess) { cu_fail("limits: calibration", e); goto out; }
    }
    rc = 0;
out:
    cudaFree(buf);
    cudaFree(a);
    cudaFree(c);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return rc;
}
