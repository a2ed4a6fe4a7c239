/*
 * emu.cpp - the CPU emulator of the CUDA execution model behind the headers of
 * tests/emu (see cuda_runtime.h for what it models and what it does not).
 *
 * Threads: every CUDA thread of a block is a fiber with its own stack, started once
 * with makecontext and then switched with _setjmp/_longjmp (no system call per
 * switch); a fiber runs until it finishes or waits at a barrier. __syncthreads waits
 * for all the block's threads, a warp shuffle for the 32 lanes of its warp. A pass in
 * which no fiber makes progress is a deadlock (a barrier some threads never reach) and
 * aborts with the kernel's name.
 */
#undef _FORTIFY_SOURCE                 /* its longjmp check refuses jumps between stacks */
#include "cuda_runtime.h"
#include "cublas_v2.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <ucontext.h>

#include <map>
#include <vector>

dim3 threadIdx, blockIdx, blockDim, gridDim;

/* ---- fibers --------------------------------------------------------------------------- */
namespace {

struct Fiber {
    jmp_buf env;
    ucontext_t uc;
    char *stack;
    bool started, done;
};

const size_t STACK = 256 << 10;
std::vector<Fiber *> fibers;
jmp_buf sched;
int cur, nthreads;
const std::function<void()> *body;
const char *kernel_name;
bool progress;
std::vector<char> dyn_smem;           /* the launch's dynamic shared memory, from a 128-byte boundary */
size_t dyn_off;

struct Bar { int arrived = 0; unsigned gen = 0; };
Bar block_bar, warp_bar[32];
float shfl_f[32][32];
int shfl_i[32][32];

void yield_to_scheduler() {
    if (!_setjmp(fibers[cur]->env)) _longjmp(sched, 1);
}

void fiber_main() {
    for (;;) {
        (*body)();
        fibers[cur]->done = true;
        progress = true;
        yield_to_scheduler();         /* resumed for the next block or launch */
    }
}

void set_thread(int t) {
    threadIdx = dim3(t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y));
}

void barrier(Bar &b, int expected) {
    unsigned g = b.gen;
    if (++b.arrived == expected) { b.arrived = 0; b.gen++; progress = true; return; }
    while (b.gen == g) yield_to_scheduler();
}

int linear_tid() { return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)); }

void run_block() {
    while ((int)fibers.size() < nthreads) {
        Fiber *f = new Fiber();
        f->stack = (char *)malloc(STACK);
        getcontext(&f->uc);
        f->uc.uc_stack.ss_sp = f->stack;
        f->uc.uc_stack.ss_size = STACK;
        f->uc.uc_link = NULL;
        makecontext(&f->uc, fiber_main, 0);
        fibers.push_back(f);
    }
    for (int i = 0; i < nthreads; i++) fibers[i]->done = false;
    block_bar = Bar();
    for (auto &w : warp_bar) w = Bar();
    volatile int left = nthreads;           /* volatile: live across _setjmp */
    while (left) {
        progress = false;
        for (volatile int i = 0; i < nthreads; i++) {
            Fiber *volatile f = fibers[i];
            if (f->done) continue;
            cur = i;
            set_thread(i);
            if (!_setjmp(sched)) {
                if (!f->started) { f->started = true; setcontext(&f->uc); }
                else _longjmp(f->env, 1);
            }
            if (f->done) left--;
        }
        if (left && !progress) {
            fprintf(stderr, "emu: deadlock in kernel %s: block (%u,%u,%u) has threads waiting at a barrier others never reach\n",
                    kernel_name, blockIdx.x, blockIdx.y, blockIdx.z);
            abort();
        }
    }
}

/* ---- state of the emulated device ----------------------------------------------------- */
cudaError_t last_error = cudaSuccess;
std::map<const void *, size_t> smem_limit;
std::map<void *, size_t> allocs;
size_t allocated;
const size_t CAPACITY = (size_t)16 << 30;
bool capturing;
std::vector<std::function<void()>> captured;

cudaError_t fail(cudaError_t e) { last_error = e; return e; }

double now_ms() {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

}  // namespace

struct EmuStream { int unused; };
struct EmuEvent { double ms; };
struct EmuGraph { std::vector<std::function<void()>> work; };
struct EmuBlas { int unused; };

void __syncthreads(void) { barrier(block_bar, nthreads); }

void __syncwarp(unsigned) {
    int w = linear_tid() / 32;
    barrier(warp_bar[w], std::min(32, nthreads - 32 * w));
}

template <typename T> static T shuffle(T (&slots)[32][32], T v, int m) {
    int t = linear_tid(), w = t / 32, l = t % 32, n = std::min(32, nthreads - 32 * w);
    slots[w][l] = v;
    barrier(warp_bar[w], n);
    T r = slots[w][(l ^ m) < n ? (l ^ m) : l];
    barrier(warp_bar[w], n);
    return r;
}
float __shfl_xor_sync(unsigned, float v, int m) { return shuffle(shfl_f, v, m); }
int __shfl_xor_sync(unsigned, int v, int m) { return shuffle(shfl_i, v, m); }

void *emu_dynamic_smem(void) { return dyn_smem.data() + dyn_off; }

cudaError_t emu_func_set_smem(const void *fn, size_t bytes) {
    if (bytes > (227u << 10)) return fail(cudaErrorInvalidValue);
    smem_limit[fn] = bytes;
    return cudaSuccess;
}

void emu_stream_work(std::function<void()> work) {
    if (capturing) captured.push_back(std::move(work));
    else work();
}

void emu_launch(const void *fn, const char *name, dim3 grid, dim3 block, size_t smem, std::function<void()> kbody) {
    size_t threads = (size_t)block.x * block.y * block.z, limit = smem_limit.count(fn) ? std::max(smem_limit[fn], (size_t)48 << 10) : 48 << 10;
    if (!threads || threads > 1024 || block.z > 64 || !grid.x || !grid.y || !grid.z || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
        fprintf(stderr, "emu: kernel %s: invalid launch: grid (%u,%u,%u), block (%u,%u,%u)\n", name, grid.x, grid.y, grid.z,
                block.x, block.y, block.z);
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    const char *inject = getenv("EFFBENCH_EMU_FAIL_KERNEL");   /* tests: this kernel's launches fail */
    if (inject && *inject && strstr(name, inject)) {
        fail(cudaErrorLaunchFailure);
        return;
    }
    if (smem > limit) {
        fprintf(stderr, "emu: kernel %s: %zu bytes of dynamic shared memory over its limit of %zu\n", name, smem, limit);
        fail(cudaErrorInvalidValue);
        return;
    }
    emu_stream_work([=]() {
        kernel_name = name;
        blockDim = block;
        gridDim = grid;
        nthreads = (int)threads;
        dyn_smem.assign(smem + 128, (char)0xff);           /* NaN bytes: uninitialised reads show */
        dyn_off = (128 - ((uintptr_t)dyn_smem.data() & 127)) & 127;
        body = &kbody;
        for (unsigned z = 0; z < grid.z; z++)
            for (unsigned y = 0; y < grid.y; y++)
                for (unsigned x = 0; x < grid.x; x++) {
                    blockIdx = dim3(x, y, z);
                    run_block();
                }
    });
}

/* ---- runtime ---------------------------------------------------------------------------- */
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
    }
}
const char *cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }
cudaError_t cudaGetLastError(void) { cudaError_t e = last_error; last_error = cudaSuccess; return e; }
cudaError_t cudaDriverGetVersion(int *v) { *v = 13000; return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CPU emulation of a CUDA device (tests/emu)");
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    p->totalGlobalMem = CAPACITY;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int) {
    *v = a == cudaDevAttrMultiProcessorCount ? 132 : 0;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = CAPACITY - allocated; *t = CAPACITY; return cudaSuccess; }

cudaError_t cudaMalloc(void **p, size_t n) {
    if (capturing) return fail(cudaErrorStreamCaptureInvalidated);    /* never allocate inside a graph */
    if (allocated + n > CAPACITY) return fail(cudaErrorMemoryAllocation);
    size_t r = (n + 255) / 256 * 256;
    *p = aligned_alloc(256, r ? r : 256);
    if (!*p) return fail(cudaErrorMemoryAllocation);
    memset(*p, 0xff, r);                                  /* NaN / -1: reading the unwritten shows */
    allocs[*p] = n;
    allocated += n;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    if (capturing) return fail(cudaErrorStreamCaptureInvalidated);
    auto it = allocs.find(p);
    if (it == allocs.end()) return fail(cudaErrorInvalidValue);
    allocated -= it->second;
    allocs.erase(it);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) { *p = malloc(n ? n : 1); return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation); }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind, cudaStream_t) {
    emu_stream_work([=]() { memmove(dst, src, n); });
    return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dp, const void *src, size_t sp, size_t w, size_t h, cudaMemcpyKind, cudaStream_t) {
    if (w > dp || w > sp) return fail(cudaErrorInvalidValue);
    emu_stream_work([=]() {
        for (size_t r = 0; r < h; r++) memmove((char *)dst + r * dp, (const char *)src + r * sp, w);
    });
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *dst, int v, size_t n, cudaStream_t) {
    emu_stream_work([=]() { memset(dst, v, n); });
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { static EmuStream one; *s = &one; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return capturing ? fail(cudaErrorStreamCaptureInvalidated) : cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaStreamSynchronize(NULL); }
cudaError_t cudaStreamQuery(cudaStream_t) { return capturing ? fail(cudaErrorStreamCaptureInvalidated) : cudaSuccess; }   /* work runs at launch */
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
    if (capturing || getenv("EFFBENCH_EMU_REFUSE_CAPTURE")) return fail(cudaErrorInvalidValue);   /* tests: a refusal */
    capturing = true;
    captured.clear();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    if (!capturing) return fail(cudaErrorInvalidValue);
    capturing = false;
    *g = new EmuGraph{ std::move(captured) };
    captured.clear();
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long) { *x = new EmuGraph(*g); return cudaSuccess; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t) {
    for (auto &w : x->work) emu_stream_work(w);
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) { delete x; return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new EmuEvent{ 0 }; return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) { emu_stream_work([=]() { e->ms = now_ms(); }); return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) { *ms = (float)(b->ms - a->ms); return cudaSuccess; }

/* ---- cuBLAS ------------------------------------------------------------------------------ */
static float load(const void *p, cudaDataType_t t, size_t i) {
    if (t == CUDA_R_16BF) return __uint_as_float((unsigned)((const uint16_t *)p)[i] << 16);
    return ((const float *)p)[i];
}

static void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
                 cudaDataType_t at, int lda, const void *B, cudaDataType_t bt, int ldb, float beta, float *C, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float s = 0.0f;
            for (int l = 0; l < k; l++) {
                float a = load(A, at, ta == CUBLAS_OP_N ? (size_t)i + (size_t)l * lda : (size_t)l + (size_t)i * lda);
                float b = load(B, bt, tb == CUBLAS_OP_N ? (size_t)l + (size_t)j * ldb : (size_t)j + (size_t)l * ldb);
                s += a * b;
            }
            float *c = C + (size_t)i + (size_t)j * ldc;
            *c = alpha * s + (beta != 0.0f ? beta * *c : 0.0f);
        }
}

static bool gemm_args_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb, int ldc,
                         cudaDataType_t at, cudaDataType_t bt, cudaDataType_t ct, cublasComputeType_t comp) {
    if (m < 0 || n < 0 || k < 0 || ct != CUDA_R_32F || at != bt || comp != CUBLAS_COMPUTE_32F) return false;
    if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k) || ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) || ldc < std::max(1, m)) return false;
    return true;
}

cublasStatus_t cublasCreate(cublasHandle_t *h) { static EmuBlas one; *h = &one; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy(cublasHandle_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusString(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE"; }

cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t at, int lda, const void *B, cudaDataType_t bt,
                            int ldb, const void *beta, void *C, cudaDataType_t ct, int ldc, cublasComputeType_t comp,
                            cublasGemmAlgo_t) {
    if (!gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc, at, bt, ct, comp)) return CUBLAS_STATUS_INVALID_VALUE;
    float al = *(const float *)alpha, be = *(const float *)beta;
    emu_stream_work([=]() { gemm(ta, tb, m, n, k, al, A, at, lda, B, bt, ldb, be, (float *)C, ldc); });
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType_t at, int lda, long long sa,
                                          const void *B, cudaDataType_t bt, int ldb, long long sb, const void *beta, void *C,
                                          cudaDataType_t ct, int ldc, long long sc, int batch, cublasComputeType_t comp,
                                          cublasGemmAlgo_t) {
    if (!gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc, at, bt, ct, comp) || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    float al = *(const float *)alpha, be = *(const float *)beta;
    size_t es = at == CUDA_R_16BF ? 2 : 4;
    emu_stream_work([=]() {
        for (int b = 0; b < batch; b++)
            gemm(ta, tb, m, n, k, al, (const char *)A + (size_t)b * sa * es, at, lda, (const char *)B + (size_t)b * sb * es, bt,
                 ldb, be, (float *)C + (size_t)b * sc, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}
