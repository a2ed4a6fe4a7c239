/*
 * cuda_runtime.h (tests/emu) - a CPU emulator of the CUDA execution model, standing in
 * for the real header when the tests build the backend's kernels with g++
 * (-DEFFBENCH_EMU, tests/emu first on the include path). It lets the machine without a
 * GPU run every kernel and the whole GPU engine against their CPU twins and the goldens.
 *
 * What it models: a grid of blocks run one block at a time; each CUDA thread of the
 * block a fiber on one OS thread (own stack), switched only at __syncthreads and warp
 * shuffles, which are barriers over the block and over the 32 lanes; __shared__
 * arrays shared by the block's threads; dynamic shared memory of the launch's size,
 * within the per-kernel limit set by cudaFuncSetAttribute (48 KB by default, 227 KB at
 * most); block and grid limits (1024 threads a block; grid.x below 2^31, grid.y and
 * grid.z at most 65535, as a real launch refuses with cudaErrorInvalidConfiguration);
 * a launch of a kernel named in EFFBENCH_EMU_FAIL_KERNEL fails (tests of error paths);
 * device memory from the heap, filled with NaN bytes so that reading what was never
 * written shows; one in-order stream; graph capture as a recorded list of the stream's
 * work. What it does not: concurrency between threads
 * (so races go unseen), the memory model, timing, and anything of a real GPU's speed.
 * Results from it are correctness results only.
 */
#ifndef EFFBENCH_EMU_CUDA_RUNTIME_H
#define EFFBENCH_EMU_CUDA_RUNTIME_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <functional>
#include <type_traits>

using std::max;
using std::min;

/* ---- the kernel language -------------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };

extern dim3 threadIdx, blockIdx, blockDim, gridDim;   /* set by the scheduler at each switch */

void __syncthreads(void);
void __syncwarp(unsigned mask = 0xffffffffu);
float __shfl_xor_sync(unsigned mask, float v, int lane_mask);
int __shfl_xor_sync(unsigned mask, int v, int lane_mask);
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
void *emu_dynamic_smem(void);

/* ---- errors and the runtime subset the backend uses ----------------------------------- */
typedef enum {
    cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorInvalidConfiguration = 9,
    cudaErrorInsufficientDriver = 35, cudaErrorNoDevice = 100, cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorLaunchFailure = 719, cudaErrorInvalidDevice = 101, cudaErrorNotReady = 600,
} cudaError_t;
typedef enum { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 } cudaMemcpyKind;
typedef enum { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1 } cudaStreamCaptureMode;
typedef enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 } cudaFuncAttribute;
typedef enum { cudaDevAttrMultiProcessorCount = 16 } cudaDeviceAttr;
typedef struct EmuStream *cudaStream_t;
typedef struct EmuEvent *cudaEvent_t;
typedef struct EmuGraph *cudaGraph_t;
typedef struct EmuGraph *cudaGraphExec_t;

struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount;
    size_t totalGlobalMem;
};

const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaDriverGetVersion(int *v);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int dev);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t n);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s);
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind k, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *dst, int v, size_t n, cudaStream_t s);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode m);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);

/* ---- launches ------------------------------------------------------------------------- */
cudaError_t emu_func_set_smem(const void *fn, size_t bytes);
template <typename F> cudaError_t cudaFuncSetAttribute(F *fn, cudaFuncAttribute, int bytes) {
    return emu_func_set_smem((const void *)fn, (size_t)bytes);
}
/* Runs (or, while capturing, records) body for every thread of the grid. */
void emu_launch(const void *fn, const char *name, dim3 grid, dim3 block, size_t smem, std::function<void()> body);
/* Records work of the stream (copies, library calls) or runs it at once. */
void emu_stream_work(std::function<void()> work);

template <typename... P> struct EmuLauncher {
    void (*fn)(P...);
    dim3 grid, block;
    size_t smem;
    const char *name;
    template <typename... A> void operator()(A... args) const {
        void (*f)(P...) = fn;
        emu_launch((const void *)f, name, grid, block, smem, [=]() { f(static_cast<P>(args)...); });
    }
};
template <typename... P> EmuLauncher<P...> emu_launcher(void (*fn)(P...), dim3 g, dim3 b, size_t smem, const char *name) {
    return EmuLauncher<P...>{ fn, g, b, smem, name };
}

#endif
