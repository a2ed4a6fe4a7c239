/*
 * mma.h (tests/emu) - the WMMA API for the emulator. A fragment holds its whole tile in
 * every lane (the real one spreads it over the warp in an unspecified layout), so a
 * kernel that only loads, fills, multiplies and stores fragments behaves as on a GPU:
 * each lane computes the same tile, and the 32 identical stores agree. Inputs are
 * BF16 (or FP16 as raw bits), products summed in float.
 */
#ifndef EFFBENCH_EMU_MMA_H
#define EFFBENCH_EMU_MMA_H

#include "cuda_bf16.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K> struct dims;
template <int M, int N, int K> struct dims<matrix_a, M, N, K> { enum { R = M, C = K }; };
template <int M, int N, int K> struct dims<matrix_b, M, N, K> { enum { R = K, C = N }; };
template <int M, int N, int K> struct dims<accumulator, M, N, K> { enum { R = M, C = N }; };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    enum { R = dims<Use, M, N, K>::R, C = dims<Use, M, N, K>::C };
    float v[R * C];                       /* logical row-major tile */
};

static inline float to_f(float x) { return x; }
static inline float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }

static inline void check_ldm(unsigned ldm, const void *p, int elem) {
    if (ldm % (16 / elem) || ((uintptr_t)p & 31)) {
        fprintf(stderr, "emu: wmma load/store: ldm %u or pointer %p misaligned (ldm a multiple of %d elements, 32-byte pointers)\n",
                ldm, p, 16 / elem);
        abort();
    }
}

template <typename Use, int M, int N, int K, typename T, typename L>
void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const T *p, unsigned ldm) {
    check_ldm(ldm, p, (int)sizeof(T));
    constexpr bool col = std::is_same<L, col_major>::value;
    for (int i = 0; i < f.R; i++)
        for (int j = 0; j < f.C; j++) f.v[i * f.C + j] = to_f(col ? p[i + (size_t)j * ldm] : p[(size_t)i * ldm + j]);
    __syncwarp();
}

template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p, unsigned ldm, layout_t l) {
    check_ldm(ldm, p, 4);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) f.v[i * N + j] = l == mem_col_major ? p[i + (size_t)j * ldm] : p[(size_t)i * ldm + j];
    __syncwarp();
}

template <int M, int N, int K>
void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t l) {
    check_ldm(ldm, p, 4);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) (l == mem_col_major ? p[i + (size_t)j * ldm] : p[(size_t)i * ldm + j]) = f.v[i * N + j];
    __syncwarp();
}

template <typename Use, int M, int N, int K, typename T, typename L>
void fill_fragment(fragment<Use, M, N, K, T, L> &f, float x) {
    for (int i = 0; i < f.R * f.C; i++) f.v[i] = x;
}

template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
              const fragment<matrix_b, M, N, K, TB, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
    float out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = c.v[i * N + j];
            for (int k = 0; k < K; k++) s += a.v[i * K + k] * b.v[k * N + j];
            out[i * N + j] = s;
        }
    memcpy(d.v, out, sizeof out);
}

}  // namespace wmma
}  // namespace nvcuda

#endif
