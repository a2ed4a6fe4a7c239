/*
 * common.cuh - what the backend's .cu files share: the error line, the stream every
 * op is queued on, launch checks and small device helpers.
 */
#ifndef EFFBENCH_CUDA_COMMON_CUH
#define EFFBENCH_CUDA_COMMON_CUH

#include "backend.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

/* records "what: name (text)" as the last error; returns -1 */
int cu_fail(const char *what, cudaError_t e);
/* records a message of our own; returns -1 */
int cu_failf(const char *fmt, ...);
/* the stream all ops are queued on (created on first use) */
cudaStream_t cu_stream(void);

/* Kernel launches and dynamic shared memory, written once for nvcc and for the CPU
 * emulator the tests build (tests/emu: the same kernels compiled by g++, each CUDA
 * thread a fiber, __syncthreads and warp shuffles as barriers). */
#ifdef EFFBENCH_EMU
#define LAUNCH(k, grid, block, smem) emu_launcher(k, dim3(grid), dim3(block), (size_t)(smem), #k)
#define DYN_SHARED(type, name) type *name = (type *)emu_dynamic_smem()
#else
#define LAUNCH(k, grid, block, smem) k<<<(grid), (block), (smem), cu_stream()>>>
#define DYN_SHARED(type, name) extern __shared__ __align__(128) type name[]   /* WMMA wants 32-byte alignment */
#endif

#define LAUNCHED(what) do { cudaError_t e_ = cudaGetLastError(); if (e_ != cudaSuccess) return cu_fail(what, e_); } while (0)

/* A device buffer of at least bytes (kept when big enough, else freed and allocated
 * anew; never call while a graph is being captured). 0, or -1 naming what. */
int cu_grow(void **buf, size_t *cap, size_t bytes, const char *what);

static inline unsigned cu_blocks(int64_t n, int per) { return (unsigned)((n + per - 1) / per); }
/* A grid's y (and z) dimension holds at most 65535 blocks: kernels that put rows or
 * tokens in y take min(rows, CU_MAX_GRID_Y) of them and stride over the rest. */
#define CU_MAX_GRID_Y 65535
static inline unsigned cu_grid_y(int64_t rows) { return (unsigned)(rows < CU_MAX_GRID_Y ? rows : CU_MAX_GRID_Y); }

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
static __device__ __forceinline__ float bf16_to_f(uint16_t b) { return __uint_as_float((unsigned)b << 16); }
/* round to nearest even, as the CPU's f32 -> BF16 conversion does */
static __device__ __forceinline__ uint16_t f_to_bf16(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   /* NaN stays NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

#endif
