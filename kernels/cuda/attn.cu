/*
 * attn.cu - causal attention over a paged KV cache, for MLA (one shared latent head
 * of Dc+Dr = 576 key dims and Dc = 512 value dims, queries absorbed) and for GQA/MHA
 * (per-head keys and values), with the token/sequence/position batches of the CPU
 * engine: prefill, chunked prefill, decode and mixed steps. CPU twin: attention().
 *
 * Block: one query token, one KV head and up to HG = 8 of the query heads that share
 * it, over one split of the token's context. The queries sit in shared memory; keys
 * (and values, unless they are the same rows, as in MLA) stream through shared memory
 * TR = 32 positions at a time; scores are one thread per (head, position), the online
 * softmax one warp per head (one lane per position), and the output accumulators are
 * spread over the 256 threads (up to 16 each: 8 heads x 512 dims). Long contexts are
 * split over grid.z (split-K, as flash decoding does) and a second kernel combines
 * the splits' partial maxima, sums and outputs. Arithmetic is float32 on CUDA cores.
 */
#include "common.cuh"

#include <math.h>
#include <cuda_pipeline.h>
#include <mma.h>
#include <stdlib.h>

#define HG 8
#define TR 32
#define NT 256
#define MAX_ACC (HG * 512 / NT)

template <typename CT> static __device__ __forceinline__ float ld(const CT *p);
template <> __device__ __forceinline__ float ld<float>(const float *p) { return *p; }
template <> __device__ __forceinline__ float ld<uint16_t>(const uint16_t *p) { return bf16_to_f(*p); }

static size_t smem_bytes(const CudaAttn *a) {
    bool shared_kv = a->v_off == a->k_off && a->v_head_stride == a->k_head_stride && a->dv <= a->dk;
    size_t f = (size_t)HG * (a->dk + 1) + (size_t)TR * (a->dk + 1) + (shared_kv ? 0 : (size_t)TR * (a->dv + 1)) +
               HG * TR + 3 * HG;
    return f * sizeof(float);
}

/* The running max and sum of softmax row r after a tile whose max is m_new (after the
 * old max was folded in) and whose exponentials sum to tile_sum; corr rescales the row's
 * accumulated output. */
static __device__ __forceinline__ void softmax_row_update(float *mx, float *sum, float *corr, int r, float m_new,
                                                          float tile_sum) {
    float c = m_new == -INFINITY ? 1.0f : expf(mx[r] - m_new);
    corr[r] = c;
    sum[r] = sum[r] * c + tile_sum;
    mx[r] = m_new;
}

/* Element d of head h's output for token t: normalised when the context is not split,
 * else this split's unnormalised partial, with the row's max and sum beside it. */
static __device__ __forceinline__ void store_out(const CudaAttn &a, int t, int h, int d, float acc, float m, float l,
                                                 int split, int nsplit) {
    if (nsplit == 1) {
        a.out[(size_t)t * a.ldo + (size_t)h * a.dv + d] = l > 0 ? acc / l : 0.0f;
        return;
    }
    size_t row = ((size_t)t * a.H + h) * nsplit + split;
    a.work[row * (a.dv + 2) + d] = acc;
    if (d == 0) { a.work[row * (a.dv + 2) + a.dv] = m; a.work[row * (a.dv + 2) + a.dv + 1] = l; }
}

/* TR positions from p0 of sequence s, width dims at offset off of each cache row, into
 * shared memory rows of `stride` floats; positions past p_end are zeros */
template <typename CT>
static __device__ __forceinline__ void load_tile(float *dst, int stride, int width, const CT *cache, const CudaAttn &a,
                                                 int s, int off, int p0, int p_end) {
    for (int i = threadIdx.x; i < TR * width; i += NT) {
        int j = i / width, d = i % width, p = p0 + j;
        float v = 0.0f;
        if (p < p_end) {
            int blk = a.table[(size_t)s * a.max_blocks + p / CUDA_KV_BLOCK];
            v = ld(cache + ((size_t)blk * CUDA_KV_BLOCK + p % CUDA_KV_BLOCK) * a.row + off + d);
        }
        dst[j * stride + d] = v;
    }
}

template <typename CT>
static __global__ void __launch_bounds__(NT) attn_kernel(CudaAttn a, const CT *cache, int nsplit) {
    DYN_SHARED(float, sm);
    const int t = blockIdx.x, G = a.H / a.Hkv, groups = (G + HG - 1) / HG;
    const int kvh = blockIdx.y / groups, h0 = kvh * G + (blockIdx.y % groups) * HG;
    const int nh = min(HG, kvh * G + G - h0), split = blockIdx.z;
    const int dk = a.dk, dv = a.dv, s = a.seq[t], len = a.pos[t] + 1;
    const int chunk = ((len + nsplit - 1) / nsplit + TR - 1) / TR * TR;     /* this token's split, whole tiles */
    const int p_begin = split * chunk, p_end = min(len, p_begin + chunk);
    const bool shared_kv = a.v_off == a.k_off && a.v_head_stride == a.k_head_stride && dv <= dk;
    float *qs = sm, *ks = qs + HG * (dk + 1), *vs = shared_kv ? ks : ks + TR * (dk + 1);
    const int vstride = shared_kv ? dk + 1 : dv + 1;             /* MLA: the values are the keys' first dv dims */
    float *ps = shared_kv ? ks + TR * (dk + 1) : vs + TR * (dv + 1), *mx = ps + HG * TR, *sum = mx + HG, *corr = sum + HG;
    for (int i = threadIdx.x; i < HG * dk; i += NT) {
        int h = i / dk, d = i % dk;
        qs[h * (dk + 1) + d] = h < nh ? a.q[(size_t)t * a.ldq + (size_t)(h0 + h) * dk + d] : 0.0f;
    }
    if (threadIdx.x < HG) { mx[threadIdx.x] = -INFINITY; sum[threadIdx.x] = 0.0f; }
    float acc[MAX_ACC];
#pragma unroll
    for (int i = 0; i < MAX_ACC; i++) acc[i] = 0.0f;
    const int koff = a.k_off + kvh * a.k_head_stride, voff = a.v_off + kvh * a.v_head_stride;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int p0 = p_begin; p0 < p_end; p0 += TR) {
        __syncthreads();                              /* the previous tile is consumed */
        load_tile(ks, dk + 1, dk, cache, a, s, koff, p0, p_end);
        if (!shared_kv) load_tile(vs, vstride, dv, cache, a, s, voff, p0, p_end);
        __syncthreads();
        for (int i = threadIdx.x; i < HG * TR; i += NT) {       /* scores */
            int h = i / TR, j = i % TR;
            float sc = -INFINITY;
            if (h < nh && p0 + j < p_end) {
                const float *qh = qs + h * (dk + 1), *kj = ks + j * (dk + 1);
                float dot = 0.0f;
                for (int d = 0; d < dk; d++) dot += qh[d] * kj[d];
                sc = dot * a.scale;
            }
            ps[h * TR + j] = sc;
        }
        __syncthreads();
        if (warp < HG) {                                        /* online softmax, a warp per head */
            float sc = ps[warp * TR + lane];
            float m_old = mx[warp], m_new = fmaxf(m_old, warp_max(sc));
            float p = m_new == -INFINITY ? 0.0f : expf(sc - m_new);
            float ps_sum = warp_sum(p);
            ps[warp * TR + lane] = p;
            if (lane == 0) softmax_row_update(mx, sum, corr, warp, m_new, ps_sum);
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < MAX_ACC; i++) {                     /* acc = acc * corr + p . V */
            int idx = threadIdx.x + NT * i, h = idx / dv, d = idx % dv;
            if (h >= nh) break;
            const float *ph = ps + h * TR;
            float v = acc[i] * corr[h];
            for (int j = 0; j < TR; j++) v += ph[j] * vs[j * vstride + d];
            acc[i] = v;
        }
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < MAX_ACC; i++) {
        int idx = threadIdx.x + NT * i, h = idx / dv, d = idx % dv;
        if (h >= nh) break;
        store_out(a, t, h0 + h, d, acc[i], mx[h], sum[h], split, nsplit);
    }
}

/* one block per (token, head): out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s */
static __global__ void combine_kernel(CudaAttn a, int nsplit) {
    int t = blockIdx.x, h = blockIdx.y, dv = a.dv;
    const float *w = a.work + ((size_t)t * a.H + h) * nsplit * (dv + 2);
    float M = -INFINITY;
    for (int s = 0; s < nsplit; s++) M = fmaxf(M, w[s * (dv + 2) + dv]);
    float L = 0.0f;
    for (int s = 0; s < nsplit; s++) {
        float m = w[s * (dv + 2) + dv];
        if (m != -INFINITY) L += expf(m - M) * w[s * (dv + 2) + dv + 1];
    }
    for (int d = threadIdx.x; d < dv; d += blockDim.x) {
        float v = 0.0f;
        for (int s = 0; s < nsplit; s++) {
            float m = w[s * (dv + 2) + dv];
            if (m != -INFINITY) v += expf(m - M) * w[s * (dv + 2) + d];
        }
        a.out[(size_t)t * a.ldo + (size_t)h * dv + d] = L > 0 ? v / L : 0.0f;
    }
}


/* ---- MLA decode on tensor cores: BF16 latent cache, 16 heads a block --------------- */
/* Block: one query token, 16 of its heads, one split of its context, 4 warps. A tile is
 * one cache block: 64 positions x 576 dims (the latent and the rotary key), 72 KB,
 * contiguous. Tiles are double-buffered: the next one is copied asynchronously
 * (cp.async, 16 bytes a copy, positions past the end zero-filled) while the tensor
 * cores work on the current one. Scores S (16 x 64) = Q (16 x 576) . K^T, one 16 x 16
 * fragment a warp, 36 BF16 mma steps each; the online softmax over the tile's 64
 * columns, four rows a warp; then O (16 x 512) = O * correction + P (16 x 64) . V,
 * where V is the tile's first 512 dims, 128 columns a warp. O lives in shared memory
 * (float), since a fragment's element layout is not exposed for the per-row rescaling.
 * Q and P are rounded to BF16 for the tensor cores; sums are float. 200 KB of shared
 * memory: one block an SM. */
#define MH 16
#define MK 64
#define MDK 576
#define MDV 512
#define MNT 128
#define MLA_SMEM ((size_t)MH * MDK * 2 + 2 * (size_t)MK * MDK * 2 + MH * MK * 4 + MH * MK * 2 + (size_t)MH * MDV * 4 + 3 * MH * 4)

/* issues the copies of tile p0 (one cache block) into dst; every thread its share */
static __device__ __forceinline__ void mla_tile_copy(__nv_bfloat16 *dst, const CudaAttn &a, const uint16_t *cache, int s,
                                                     int p0, int p_end) {
    const int valid = min(MK, p_end - p0), per_row = MDK * 2 / 16;     /* 72 copies of 16 bytes a position */
    const char *src = (const char *)(cache + (size_t)a.table[(size_t)s * a.max_blocks + p0 / CUDA_KV_BLOCK] * CUDA_KV_BLOCK * MDK);
    for (int i = threadIdx.x; i < MK * per_row; i += MNT)
        __pipeline_memcpy_async((char *)dst + (size_t)i * 16, src + (size_t)i * 16, 16, i / per_row < valid ? 0 : 16);
}

static __global__ void __launch_bounds__(MNT) mla_wmma_kernel(CudaAttn a, const uint16_t *cache, int nsplit) {
    DYN_SHARED(unsigned char, smem);
    __nv_bfloat16 *qs = (__nv_bfloat16 *)smem, *kbuf = qs + MH * MDK;     /* two tiles */
    float *ss = (float *)(kbuf + 2 * MK * MDK);
    __nv_bfloat16 *pb = (__nv_bfloat16 *)(ss + MH * MK);
    float *os = (float *)(pb + MH * MK), *mx = os + MH * MDV, *sum = mx + MH, *corr = sum + MH;
    const int t = blockIdx.x, h0 = blockIdx.y * MH, nh = min(MH, a.H - h0), split = blockIdx.z;
    const int s = a.seq[t], len = a.pos[t] + 1;
    const int chunk = ((len + nsplit - 1) / nsplit + MK - 1) / MK * MK;
    const int p_begin = split * chunk, p_end = min(len, p_begin + chunk);
    const int ntiles = p_end > p_begin ? (p_end - p_begin + MK - 1) / MK : 0;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (ntiles) mla_tile_copy(kbuf, a, cache, s, p_begin, p_end);
    __pipeline_commit();
    for (int i = threadIdx.x; i < MH * MDK; i += MNT) {
        int h = i / MDK, d = i % MDK;
        qs[i] = __float2bfloat16_rn(h < nh ? a.q[(size_t)t * a.ldq + (size_t)(h0 + h) * MDK + d] * a.scale : 0.0f);
    }
    for (int i = threadIdx.x; i < MH * MDV; i += MNT) os[i] = 0.0f;
    if (threadIdx.x < MH) { mx[threadIdx.x] = -INFINITY; sum[threadIdx.x] = 0.0f; }
    for (int tile = 0; tile < ntiles; tile++) {
        const int p0 = p_begin + tile * MK, valid = min(MK, p_end - p0);
        __nv_bfloat16 *ks = kbuf + (size_t)(tile & 1) * MK * MDK;
        __syncthreads();                                    /* the other buffer's tile is consumed */
        if (tile + 1 < ntiles) mla_tile_copy(kbuf + (size_t)((tile + 1) & 1) * MK * MDK, a, cache, s, p0 + MK, p_end);
        __pipeline_commit();
        __pipeline_wait_prior(1);                           /* this thread's copies of this tile have landed */
        __syncthreads();                                    /* and everyone's */
        {                                                   /* S[:, 16w .. 16w+16) */
            nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> acc;
            nvcuda::wmma::fill_fragment(acc, 0.0f);
            for (int k0 = 0; k0 < MDK; k0 += 16) {
                nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> fa;
                nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::col_major> fb;
                nvcuda::wmma::load_matrix_sync(fa, qs + k0, MDK);
                nvcuda::wmma::load_matrix_sync(fb, ks + (size_t)warp * 16 * MDK + k0, MDK);
                nvcuda::wmma::mma_sync(acc, fa, fb, acc);
            }
            nvcuda::wmma::store_matrix_sync(ss + warp * 16, acc, MK, nvcuda::wmma::mem_row_major);
        }
        __syncthreads();
        for (int r = warp * 4; r < warp * 4 + 4; r++) {     /* online softmax, four rows a warp */
            float v0 = lane < valid ? ss[r * MK + lane] : -INFINITY;
            float v1 = lane + 32 < valid ? ss[r * MK + lane + 32] : -INFINITY;
            float m_old = mx[r], m_new = fmaxf(m_old, warp_max(fmaxf(v0, v1)));
            float e0 = m_new == -INFINITY ? 0.0f : expf(v0 - m_new), e1 = m_new == -INFINITY ? 0.0f : expf(v1 - m_new);
            float tile_sum = warp_sum(e0 + e1);
            pb[r * MK + lane] = __float2bfloat16_rn(e0);
            pb[r * MK + lane + 32] = __float2bfloat16_rn(e1);
            if (lane == 0) softmax_row_update(mx, sum, corr, r, m_new, tile_sum);
        }
        __syncthreads();
        for (int i = threadIdx.x; i < MH * MDV; i += MNT) os[i] *= corr[i / MDV];
        __syncthreads();
        for (int f = 0; f < 8; f++) {                       /* O[:, 128w + 16f ..) += P . V */
            const int col = warp * 128 + f * 16;
            nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> acc;
            nvcuda::wmma::load_matrix_sync(acc, os + col, MDV, nvcuda::wmma::mem_row_major);
            for (int k0 = 0; k0 < MK; k0 += 16) {
                nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> fa;
                nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> fb;
                nvcuda::wmma::load_matrix_sync(fa, pb + k0, MK);
                nvcuda::wmma::load_matrix_sync(fb, ks + (size_t)k0 * MDK + col, MDK);
                nvcuda::wmma::mma_sync(acc, fa, fb, acc);
            }
            nvcuda::wmma::store_matrix_sync(os + col, acc, MDV, nvcuda::wmma::mem_row_major);
        }
    }
    __pipeline_wait_prior(0);
    __syncthreads();
    for (int i = threadIdx.x; i < nh * MDV; i += MNT) {
        int h = i / MDV, d = i % MDV;
        store_out(a, t, h0 + h, d, os[i], mx[h], sum[h], split, nsplit);
    }
}

/* The tensor-core path takes MLA's shape exactly: one KV head of 576 dims whose first
 * 512 are the values, rows of 576 BF16 elements (so a cache block is contiguous). */
static bool mla_wmma_fits(const CudaAttn *a) {
    return a->bf16 && a->Hkv == 1 && a->dk == MDK && a->dv == MDV && a->row == MDK && a->k_off == 0 && a->v_off == 0 &&
           a->k_head_stride == 0 && a->v_head_stride == 0 && CUDA_KV_BLOCK == MK;
}

/* Splits so that the grid has about two blocks per SM, each split at least 128
 * positions; at most 32. Each token divides its own context into that many splits. */
static int sm_count(void) {
    static int sms;
    if (!sms) { cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0); if (sms <= 0) sms = 100; }
    return sms;
}

extern "C" int cuda_attention_splits(int T, int H, int Hkv, int max_len) {
    int groups = (H / Hkv + HG - 1) / HG;
    int64_t blocks = (int64_t)T * Hkv * groups;
    int64_t n = (2 * sm_count() + blocks - 1) / blocks, most = (max_len + 127) / 128;
    if (n > most) n = most;
    if (n > 32) n = 32;
    return n < 1 ? 1 : (int)n;
}

extern "C" size_t cuda_attention_work(int T, int H, int dv, int max_len) {
    size_t most = 0;
    for (int t = 1; t <= T; t++) {               /* the worst case over step sizes, with Hkv = 1 */
        int n = cuda_attention_splits(t, H, 1, max_len);
        if (n > 1 && (size_t)t * n > most) most = (size_t)t * n;
    }
    return most * H * (dv + 2);
}

static int launch_generic(const CudaAttn *a, int nsplit);

extern "C" int cuda_attention(const CudaAttn *a) {
    if (a->T <= 0) return 0;
    if (a->H % a->Hkv || a->dv > 512 || a->dk > 1024)
        return cu_failf("attention: %d heads over %d KV heads with %d/%d dims is outside what the kernel takes",
                        a->H, a->Hkv, a->dk, a->dv);
    int nsplit = cuda_attention_splits(a->T, a->H, a->Hkv, a->max_len);
    if (nsplit > 1 && a->work_floats < (size_t)a->T * a->H * nsplit * (a->dv + 2))
        return cu_failf("attention: split-K work buffer too small");
    /* the tensor-core kernel needs 200 KB of shared memory a block (Hopper has 227 KB;
     * an A100's 163 KB falls back to the CUDA-core kernel); EFFBENCH_NO_WMMA=1 takes the
     * CUDA-core kernel anyway, to compare. Decided once, outside any graph capture. */
    static int wmma = -1;
    if (wmma < 0) {
        wmma = getenv("EFFBENCH_NO_WMMA") == NULL &&
               cudaFuncSetAttribute(mla_wmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)MLA_SMEM) == cudaSuccess;
        cudaGetLastError();
    }
    if (mla_wmma_fits(a) && wmma) {
        dim3 grid((unsigned)a->T, (unsigned)((a->H + MH - 1) / MH), (unsigned)nsplit);
        LAUNCH(mla_wmma_kernel, grid, MNT, MLA_SMEM)(*a, (const uint16_t *)a->cache, nsplit);
        LAUNCHED("MLA attention");
    } else {
        if (launch_generic(a, nsplit)) return -1;
    }
    if (nsplit > 1) {
        LAUNCH(combine_kernel, dim3((unsigned)a->T, (unsigned)a->H), 128, 0)(*a, nsplit);
        LAUNCHED("attention combine");
    }
    return 0;
}

static int launch_generic(const CudaAttn *a, int nsplit) {
    size_t smem = smem_bytes(a);
    int groups = (a->H / a->Hkv + HG - 1) / HG;
    dim3 grid((unsigned)a->T, (unsigned)(a->Hkv * groups), (unsigned)nsplit);
    /* raise the kernel's shared-memory limit once per size (never while a graph is
     * being captured: the first, eager step of each shape has set it) */
    static size_t set_f32, set_bf16;
    size_t *set = a->bf16 ? &set_bf16 : &set_f32;
    if (smem > *set) {
        cudaError_t e = a->bf16 ? cudaFuncSetAttribute(attn_kernel<uint16_t>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)
                                : cudaFuncSetAttribute(attn_kernel<float>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return cu_fail("attention: shared memory", e);
        *set = smem;
    }
    if (a->bf16) LAUNCH(attn_kernel<uint16_t>, grid, NT, smem)(*a, (const uint16_t *)a->cache, nsplit);
    else LAUNCH(attn_kernel<float>, grid, NT, smem)(*a, (const float *)a->cache, nsplit);
    LAUNCHED("attention");
    return 0;
}

/* ---- cache writes ------------------------------------------------------------------ */
template <typename CT>
static __global__ void kv_write_kernel(CT *cache, int row, const int *table, int max_blocks, const float *src, int lds,
                                       int width, int off, const int *seq, const int *pos, int T) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= width) return;
    for (int t = blockIdx.y; t < T; t += gridDim.y) {       /* tokens past the grid's 65535 rows */
        int p = pos[t], blk = table[(size_t)seq[t] * max_blocks + p / CUDA_KV_BLOCK];
        float v = src[(size_t)t * lds + i];
        CT *dst = cache + ((size_t)blk * CUDA_KV_BLOCK + p % CUDA_KV_BLOCK) * row + off + i;
        if constexpr (sizeof(CT) == 2) *dst = f_to_bf16(v); else *dst = v;
    }
}

extern "C" int cuda_kv_write(void *cache, int bf16, int row, const int *table, int max_blocks, const float *src, int lds,
                             int width, int off, const int *seq, const int *pos, int T) {
    if (T <= 0 || width <= 0) return 0;
    dim3 grid(cu_blocks(width, 256), cu_grid_y(T));
    if (bf16) LAUNCH(kv_write_kernel<uint16_t>, grid, 256, 0)((uint16_t *)cache, row, table, max_blocks, src, lds, width, off, seq, pos, T);
    else LAUNCH(kv_write_kernel<float>, grid, 256, 0)((float *)cache, row, table, max_blocks, src, lds, width, off, seq, pos, T);
    LAUNCHED("kv_write");
    return 0;
}

/* ---- block copies (a context copied to other sequences) -------------------------- */
static __global__ void copy_blocks_kernel(char *pool, size_t layer_bytes, size_t block_bytes, const int *pairs) {
    int b = blockIdx.x, l = blockIdx.y;
    const int4 *src = (const int4 *)(pool + l * layer_bytes + (size_t)pairs[2 * b] * block_bytes);
    int4 *dst = (int4 *)(pool + l * layer_bytes + (size_t)pairs[2 * b + 1] * block_bytes);
    for (size_t i = threadIdx.x; i < block_bytes / 16; i += blockDim.x) dst[i] = src[i];
}

extern "C" int cuda_copy_blocks(void *pool, size_t layer_bytes, int n_layers, size_t block_bytes, const int *pairs, int nb) {
    if (nb <= 0 || n_layers <= 0) return 0;
    if (block_bytes % 16 || layer_bytes % 16) return cu_failf("copy_blocks: sizes must be multiples of 16 bytes");
    LAUNCH(copy_blocks_kernel, dim3((unsigned)nb, (unsigned)n_layers), 256, 0)((char *)pool, layer_bytes, block_bytes, pairs);
    LAUNCHED("copy_blocks");
    return 0;
}
