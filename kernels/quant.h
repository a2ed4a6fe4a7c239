/*
 * quant.h - ggml weight types: sizes, decoding to float32, and encoding from it.
 *
 * Decoded bit-exactly as the gguf package's gguf.quants does it (NumPy float32 math,
 * the same operations in the same order), tested against blocks it decoded
 * (tests/gen_quant_refs.py, tests/data/quants/).
 * Supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K; the others ggml
 * defines are named and sized (so a file using one is refused by name) but not decoded.
 * Encoded bit-exactly as llama.cpp's reference quantizers do it: Q8_0, Q4_0, Q4_1, Q4_K,
 * Q5_K, Q6_K, tested against blocks they made (tests/gen_quant_encode_refs.c).
 */
#ifndef EFFBENCH_QUANT_H
#define EFFBENCH_QUANT_H

#include <stdint.h>

enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
    GGML_Q8_0 = 8, GGML_Q8_1 = 9, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12,
    GGML_Q5_K = 13, GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_BF16 = 30, GGML_TYPE_LIMIT = 64
};

/* "Q4_K", "IQ2_XXS", ... for every type ggml defines; NULL for a number it does not. */
const char *ggml_type_name(int type);
/* 1 when this engine decodes the type. */
int ggml_type_supported(int type);
/* Elements per block and bytes per block of a known type (0, 0 for an unknown number). */
void ggml_block(int type, int *block_elems, int *block_bytes);
/* Bytes of a row of n elements; -1 when the type is unknown or n is not a whole number
 * of blocks. */
int64_t ggml_row_bytes(int type, int64_t n);
/* Decodes n elements (a whole number of blocks) of a supported type from src (packed
 * blocks, little-endian, any alignment) into dst[n] (caller's buffer). Threads may decode
 * disjoint rows at once: no state is kept. An unsupported type or a part block is the
 * caller's error (check ggml_type_supported and ggml_row_bytes first): dst[n] is then
 * filled with NaN. */
void ggml_dequant(int type, const void *src, float *dst, int64_t n);

/* 1 when this engine encodes the type: Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K. */
int ggml_type_encodable(int type);
/* Encodes n float32 values src[n] (a whole number of blocks) as packed blocks of an
 * encodable type into dst (ggml_row_bytes(type, n) bytes, caller's buffer, any alignment),
 * byte for byte as llama.cpp's reference quantizers (quantize_row_*_ref in ggml-quants.c)
 * do. Inputs should be finite: infinities and NaNs give whatever ggml's arithmetic gives;
 * where ggml's result depends on the machine (blocks of |x| near 1e-43, whose scale's
 * inverse overflows) this gives ggml's x86-64 bytes.
 * Threads may encode disjoint rows at once: no state is kept. An unencodable type or a
 * part block is the caller's error (check ggml_type_encodable and ggml_row_bytes first):
 * nothing is written then. */
void ggml_quant(int type, const float *src, void *dst, int64_t n);
/* The same blocks with the K types' searches cut to their first fit (Q4_K, Q5_K: the
 * min/max fit and one least-squares refinement, nstep 0; Q6_K: no sweep of the 19 trial
 * scales): an order of magnitude faster, slightly larger errors. For seeded dummy weights,
 * where load time matters and the values are random anyway; other types as ggml_quant. */
void ggml_quant_fast(int type, const float *src, void *dst, int64_t n);

#endif
