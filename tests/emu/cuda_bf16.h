/* cuda_bf16.h (tests/emu) - the BF16 type and conversions the kernels use. */
#ifndef EFFBENCH_EMU_CUDA_BF16_H
#define EFFBENCH_EMU_CUDA_BF16_H

#include "cuda_runtime.h"

struct __nv_bfloat16 { uint16_t bits; };

static inline __nv_bfloat16 __float2bfloat16_rn(float f) {   /* round to nearest even; NaN stays NaN */
    unsigned u = __float_as_uint(f);
    __nv_bfloat16 b;
    b.bits = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40) : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    return b;
}
static inline float __bfloat162float(__nv_bfloat16 b) { return __uint_as_float((unsigned)b.bits << 16); }

#endif
