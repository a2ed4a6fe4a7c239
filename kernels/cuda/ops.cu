/*
 * ops.cu - the CUDA backend's device probe, memory helpers, graphs and row ops. Each op:
 * a static __global__ kernel, a static launcher that computes the grid and checks
 * cudaGetLastError(), and the extern "C" entry point of backend.h. CPU twins: rmsnorm,
 * swiglu, rope_interleaved / rope_half (ops.c), mat_rows_f32 for the embedding, and a
 * plain argmax loop.
 *
 * Only the CUDA runtime is used (never -lcuda), so a binary built here starts on a
 * machine without a driver; cuda_available() reports why the GPU cannot be used.
 */
#include "common.cuh"

#include <stdarg.h>
#include <stdio.h>

static char last_error[512];
static cudaStream_t stream;

int cu_fail(const char *what, cudaError_t e) {
    snprintf(last_error, sizeof last_error, "%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
    return -1;
}
int cu_failf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}
int cu_grow(void **buf, size_t *cap, size_t bytes, const char *what) {
    if (bytes <= *cap) return 0;
    cudaFree(*buf);
    *buf = NULL;
    *cap = 0;
    cudaError_t e = cudaMalloc(buf, bytes);
    if (e != cudaSuccess) return cu_fail(what, e);
    *cap = bytes;
    return 0;
}

cudaStream_t cu_stream(void) {
    if (!stream) cudaStreamCreate(&stream);   /* blocking: ordered with the legacy stream too */
    return stream;
}

extern "C" const char *cuda_error(void) { return last_error; }
extern "C" int cuda_fail_msg(const char *msg) { return cu_failf("%s", msg); }
#define fail cu_fail

extern "C" int cuda_available(char *why, size_t len) {
    int drv = 0, count = 0;             /* cudaGetDeviceCount leaves count untouched on failure */
    cudaError_t e = cudaDriverGetVersion(&drv);
    if (e == cudaSuccess && drv == 0) e = cudaErrorInsufficientDriver;   /* no driver installed */
    if (e == cudaSuccess) e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count == 0) e = cudaErrorNoDevice;
    if (e != cudaSuccess) {
        if (why && len) snprintf(why, len, "no usable CUDA device: %s", cudaGetErrorName(e));
        return 0;
    }
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess) {
        if (why && len) snprintf(why, len, "no usable CUDA device: %s", cudaGetErrorName(e));
        return 0;
    }
    if (p.major < 8) {
        if (why && len) snprintf(why, len, "no usable CUDA device: %s is compute capability %d.%d, the kernels need 8.0 or newer",
                                 p.name, p.major, p.minor);
        return 0;
    }
    if (why && len) snprintf(why, len, "%s, compute capability %d.%d, %.1f GiB", p.name, p.major, p.minor, p.totalGlobalMem / 1073741824.0);
    return 1;
}

extern "C" int cuda_device_name(char *name, size_t len) {
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, 0);
    if (e != cudaSuccess) return fail("cudaGetDeviceProperties", e);
    snprintf(name, len, "%s", p.name);
    return 0;
}

extern "C" void *cuda_malloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) { fail("cudaMalloc", e); return NULL; }
    return p;
}
extern "C" void cuda_free(void *p) { if (p) cudaFree(p); }
extern "C" void *cuda_host_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) { fail("cudaMallocHost", e); return NULL; }
    return p;
}
extern "C" void cuda_host_free(void *p) { if (p) cudaFreeHost(p); }
extern "C" int cuda_to_device(void *dst, const void *src, size_t bytes) {
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu_stream());
    if (e == cudaSuccess) e = cudaStreamSynchronize(cu_stream());
    return e == cudaSuccess ? 0 : fail("cudaMemcpy to device", e);
}
extern "C" int cuda_to_host(void *dst, const void *src, size_t bytes) {
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu_stream());
    if (e == cudaSuccess) e = cudaStreamSynchronize(cu_stream());
    return e == cudaSuccess ? 0 : fail("cudaMemcpy to host", e);
}
extern "C" int cuda_to_device_async(void *dst, const void *src, size_t bytes) {
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu_stream());
    return e == cudaSuccess ? 0 : fail("cudaMemcpyAsync to device", e);
}
extern "C" int cuda_memset(void *dst, int v, size_t bytes) {
    cudaError_t e = cudaMemsetAsync(dst, v, bytes, cu_stream());
    return e == cudaSuccess ? 0 : fail("cudaMemsetAsync", e);
}
extern "C" int cuda_sync(void) {
    cudaError_t e = cudaStreamSynchronize(cu_stream());
    return e == cudaSuccess ? 0 : fail("kernel execution", e);
}
extern "C" void *cuda_stream_ptr(void) { return (void *)cu_stream(); }
extern "C" int cuda_stream_poll(void) {
    cudaError_t e = cudaStreamQuery(cu_stream());
    if (e == cudaSuccess) return 1;
    if (e == cudaErrorNotReady) return 0;
    return fail("kernel execution", e);
}
extern "C" int cuda_copy_bytes(void *dst, const void *src, size_t bytes) {
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu_stream());
    return e == cudaSuccess ? 0 : fail("cudaMemcpyAsync", e);
}
extern "C" int cuda_device_count(void) {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}
extern "C" int cuda_set_device(int ordinal) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count > 0) e = cudaSetDevice(ordinal % count);
    return e == cudaSuccess ? 0 : fail("cudaSetDevice", e);
}
extern "C" size_t cuda_mem_free(void) {
    size_t f = 0, t = 0;
    return cudaMemGetInfo(&f, &t) == cudaSuccess ? f : 0;
}

/* ---- graphs ------------------------------------------------------------------------ */
extern "C" int cuda_graph_begin(void) {
    cudaError_t e = cudaStreamBeginCapture(cu_stream(), cudaStreamCaptureModeThreadLocal);
    if (e == cudaSuccess) return 0;
    cudaGetLastError();              /* the refusal must not show up as the next launch's error */
    return fail("cudaStreamBeginCapture", e);
}
extern "C" int cuda_graph_end(void **exec) {
    cudaGraph_t g = NULL;
    cudaGraphExec_t x = NULL;
    *exec = NULL;
    cudaError_t e = cudaStreamEndCapture(cu_stream(), &g);
    if (e != cudaSuccess) { cudaGetLastError(); return fail("cudaStreamEndCapture", e); }
    e = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) { cudaGetLastError(); return fail("cudaGraphInstantiate", e); }
    *exec = x;
    return 0;
}
extern "C" int cuda_graph_launch(void *exec) {
    cudaError_t e = cudaGraphLaunch((cudaGraphExec_t)exec, cu_stream());
    return e == cudaSuccess ? 0 : fail("cudaGraphLaunch", e);
}
extern "C" void cuda_graph_free(void *exec) { if (exec) cudaGraphExecDestroy((cudaGraphExec_t)exec); }

/* ---- RMSNorm: one block of 256 threads per row -------------------------------------- */
static __global__ void rmsnorm_kernel(float *out, int ldo, const float *x, int ldx, const float *w, int n, float eps) {
    const float *xr = x + (size_t)blockIdx.x * ldx;
    float *orow = out + (size_t)blockIdx.x * ldo;
    float ss = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    __shared__ float part[32];
    ss = warp_sum(ss);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0f;
        v = warp_sum(v);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    float r = 1.0f / sqrtf(part[0] / n + eps);
    __syncthreads();                 /* out may alias x: every sum is read before writing */
    for (int i = threadIdx.x; i < n; i += blockDim.x) orow[i] = xr[i] * r * w[i];
}

static int rmsnorm_launch(float *out, int ldo, const float *x, int ldx, const float *w, int T, int n, float eps) {
    if (T <= 0) return 0;
    LAUNCH(rmsnorm_kernel, T, 256, 0)(out, ldo, x, ldx, w, n, eps);
    LAUNCHED("rmsnorm");
    return 0;
}
extern "C" int cuda_rmsnorm(float *out, int ldo, const float *x, int ldx, int T, int n, const float *w, float eps) {
    return rmsnorm_launch(out, ldo, x, ldx, w, T, n, eps);
}

/* ---- SwiGLU: elementwise ------------------------------------------------------------- */
static __global__ void swiglu_kernel(float *g, const float *u, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { float v = g[i]; g[i] = v / (1.0f + expf(-v)) * u[i]; }
}
static int swiglu_launch(float *g, const float *u, int64_t n) {
    if (n <= 0) return 0;
    LAUNCH(swiglu_kernel, (unsigned)((n + 255) / 256), 256, 0)(g, u, n);
    LAUNCHED("swiglu");
    return 0;
}
extern "C" int cuda_swiglu(float *g, const float *u, int64_t n) { return swiglu_launch(g, u, n); }

/* ---- RoPE: one thread per (token, head, pair) ---------------------------------------- */
static __global__ void rope_kernel(float *x, int T, int heads, int stride, int d, const int *pos, const float *inv_freq,
                                   float mscale, int interleaved) {
    int half = d / 2;
    int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, total = (int64_t)T * heads * half;
    if (id >= total) return;
    int i = (int)(id % half), h = (int)((id / half) % heads), t = (int)(id / half / heads);
    float ang = (float)pos[t] * inv_freq[i];       /* float32, as the CPU twin computes it */
    float c = cosf(ang) * mscale, s = sinf(ang) * mscale;
    float *v = x + ((int64_t)t * heads + h) * stride;
    int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
    float xa = v[a], xb = v[b];
    v[a] = xa * c - xb * s;
    v[b] = xb * c + xa * s;
}
static int rope_launch(float *x, int T, int heads, int stride, int d, const int *pos, const float *inv_freq, float mscale,
                       int interleaved) {
    int64_t total = (int64_t)T * heads * (d / 2);
    if (total <= 0) return 0;
    LAUNCH(rope_kernel, (unsigned)((total + 255) / 256), 256, 0)(x, T, heads, stride, d, pos, inv_freq, mscale, interleaved);
    LAUNCHED("rope");
    return 0;
}
extern "C" int cuda_rope(float *x, int T, int heads, int stride, int d, const int *pos, const float *inv_freq, float mscale,
                         int interleaved) {
    return rope_launch(x, T, heads, stride, d, pos, inv_freq, mscale, interleaved);
}

/* ---- embedding rows ------------------------------------------------------------------ */
static __global__ void embed_kernel(float *out, const void *table, int bf16, const int *tok, int T, int D) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= D) return;
    for (int t = blockIdx.y; t < T; t += gridDim.y) {       /* tokens past the grid's 65535 rows */
        size_t at = (size_t)tok[t] * D + i;
        float v;
        if (bf16) v = __uint_as_float((unsigned)((const unsigned short *)table)[at] << 16);
        else v = ((const float *)table)[at];
        out[(size_t)t * D + i] = v;
    }
}
static int embed_launch(float *out, const void *table, int bf16, const int *tok, int T, int D) {
    if (T <= 0 || D <= 0) return 0;
    dim3 grid((unsigned)((D + 255) / 256), cu_grid_y(T));
    LAUNCH(embed_kernel, grid, 256, 0)(out, table, bf16, tok, T, D);
    LAUNCHED("embed");
    return 0;
}
extern "C" int cuda_embed(float *out, const void *table, int bf16, const int *tok, int T, int D) {
    return embed_launch(out, table, bf16, tok, T, D);
}

/* ---- argmax: one block of 256 threads per row, lowest index on ties ------------------- */
static __global__ void argmax_kernel(int *out, const float *x, int V) {
    const float *r = x + (size_t)blockIdx.x * V;
    float best = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (r[i] > best || (r[i] == best && i < bi)) { best = r[i]; bi = i; }
    __shared__ float sv[256];
    __shared__ int si[256];
    sv[threadIdx.x] = best;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            float ov = sv[threadIdx.x + s];
            int oi = si[threadIdx.x + s];
            if (ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < si[threadIdx.x])) { sv[threadIdx.x] = ov; si[threadIdx.x] = oi; }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = si[0];
}
static int argmax_launch(int *out, const float *x, int T, int V) {
    if (T <= 0) return 0;
    LAUNCH(argmax_kernel, T, 256, 0)(out, x, V);
    LAUNCHED("argmax");
    return 0;
}
extern "C" int cuda_argmax(int *out, const float *x, int T, int V) { return argmax_launch(out, x, T, V); }

/* ---- residual add, row gather, strided copy ------------------------------------------ */
static __global__ void add_kernel(float *x, const float *y, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}
extern "C" int cuda_add(float *x, const float *y, int64_t n) {
    if (n <= 0) return 0;
    LAUNCH(add_kernel, cu_blocks(n, 256), 256, 0)(x, y, n);
    LAUNCHED("add");
    return 0;
}

static __global__ void gather_kernel(float *dst, const float *src, int lds, const int *idx, int div, int rows, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    for (int r = blockIdx.y; r < rows; r += gridDim.y)       /* rows (tokens x top-k) past 65535 */
        dst[(size_t)r * n + i] = src[(size_t)(idx[r] / div) * lds + i];
}
extern "C" int cuda_gather_rows(float *dst, const float *src, int lds, const int *idx, int div, int rows, int n) {
    if (rows <= 0 || n <= 0) return 0;
    LAUNCH(gather_kernel, dim3(cu_blocks(n, 256), cu_grid_y(rows)), 256, 0)(dst, src, lds, idx, div, rows, n);
    LAUNCHED("gather_rows");
    return 0;
}

extern "C" int cuda_copy2d(float *dst, int ldd, const float *src, int lds, int rows, int width) {
    if (rows <= 0 || width <= 0) return 0;
    cudaError_t e = cudaMemcpy2DAsync(dst, sizeof(float) * (size_t)ldd, src, sizeof(float) * (size_t)lds,
                                      sizeof(float) * (size_t)width, (size_t)rows, cudaMemcpyDeviceToDevice, cu_stream());
    return e == cudaSuccess ? 0 : fail("cudaMemcpy2DAsync", e);
}
