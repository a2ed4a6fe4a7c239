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
            if (lane == 0) {
                float c = m_new == -INFINITY ? 1.0f : expf(m_old - m_new);
                corr[warp] = c;
                sum[warp] = sum[warp] * c + ps_sum;
                mx[warp] = m_new;
            }
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
        if (nsplit == 1) {
            a.out[(size_t)t * a.ldo + (size_t)(h0 + h) * dv + d] = sum[h] > 0 ? acc[i] / sum[h] : 0.0f;
        } else {
            size_t row = ((size_t)t * a.H + h0 + h) * nsplit + split;
            a.work[row * (dv + 2) + d] = acc[i];
            if (d == 0) { a.work[row * (dv + 2) + dv] = mx[h]; a.work[row * (dv + 2) + dv + 1] = sum[h]; }
        }
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

extern "C" int cuda_attention(const CudaAttn *a) {
    if (a->T <= 0) return 0;
    if (a->H % a->Hkv || a->dv > 512 || a->dk > 1024)
        return cu_failf("attention: %d heads over %d KV heads with %d/%d dims is outside what the kernel takes",
                        a->H, a->Hkv, a->dk, a->dv);
    int nsplit = cuda_attention_splits(a->T, a->H, a->Hkv, a->max_len);
    if (nsplit > 1 && a->work_floats < (size_t)a->T * a->H * nsplit * (a->dv + 2))
        return cu_failf("attention: split-K work buffer too small");
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
    if (nsplit > 1) {
        LAUNCH(combine_kernel, dim3((unsigned)a->T, (unsigned)a->H), 128, 0)(*a, nsplit);
        LAUNCHED("attention combine");
    }
    return 0;
}

/* ---- cache writes ------------------------------------------------------------------ */
template <typename CT>
static __global__ void kv_write_kernel(CT *cache, int row, const int *table, int max_blocks, const float *src, int lds,
                                       int width, int off, const int *seq, const int *pos) {
    int t = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= width) return;
    int p = pos[t], blk = table[(size_t)seq[t] * max_blocks + p / CUDA_KV_BLOCK];
    float v = src[(size_t)t * lds + i];
    CT *dst = cache + ((size_t)blk * CUDA_KV_BLOCK + p % CUDA_KV_BLOCK) * row + off + i;
    if constexpr (sizeof(CT) == 2) *dst = f_to_bf16(v); else *dst = v;
}

extern "C" int cuda_kv_write(void *cache, int bf16, int row, const int *table, int max_blocks, const float *src, int lds,
                             int width, int off, const int *seq, const int *pos, int T) {
    if (T <= 0 || width <= 0) return 0;
    dim3 grid(cu_blocks(width, 256), (unsigned)T);
    if (bf16) LAUNCH(kv_write_kernel<uint16_t>, grid, 256, 0)((uint16_t *)cache, row, table, max_blocks, src, lds, width, off, seq, pos);
    else LAUNCH(kv_write_kernel<float>, grid, 256, 0)((float *)cache, row, table, max_blocks, src, lds, width, off, seq, pos);
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
