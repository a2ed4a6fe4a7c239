/*
 * gguf_write.h - writes GGUF files for the tests: checkpoints converted the way the
 * Hugging Face to GGUF converter converts them, tokenizers, and broken files.
 *
 * A writer collects metadata and tensors in the order given, then writes version 3
 * (or 2) with the given alignment. Strings are NUL-terminated C strings here.
 */
#ifndef EFFBENCH_GGUF_WRITE_H
#define EFFBENCH_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct GgufW GgufW;

GgufW *gw_new(void);
void gw_free(GgufW *w);
void gw_str(GgufW *w, const char *key, const char *val);
void gw_u32(GgufW *w, const char *key, uint32_t val);
void gw_i32(GgufW *w, const char *key, int32_t val);
void gw_u64(GgufW *w, const char *key, uint64_t val);
void gw_f32(GgufW *w, const char *key, float val);
void gw_bool(GgufW *w, const char *key, int val);
void gw_arr_str(GgufW *w, const char *key, const char *const *val, int64_t n);
void gw_arr_i32(GgufW *w, const char *key, const int32_t *val, int64_t n);
void gw_arr_f32(GgufW *w, const char *key, const float *val, int64_t n);
/* A tensor of ggml type `type` with ne[0] innermost; data (nbytes) is copied. */
void gw_tensor(GgufW *w, const char *name, int type, int n_dims, const int64_t *ne, const void *data, size_t nbytes);
/* Writes the file; 0 or -1. version 2 or 3; alignment 0 means the default 32 (no key
 * written); another value is written as general.alignment. */
int gw_write(GgufW *w, const char *path, uint32_t version, uint32_t alignment);

#endif

/* A Hugging Face checkpoint directory (config.json + safetensors, float32 or any dtype
 * the engine reads) written as GGUF the way llama.cpp's convert_hf_to_gguf.py writes
 * it: llama/mixtral -> "llama" (Q and K rows permuted to interleaved pairs, experts
 * stacked, llama3 scaling as rope_freqs.weight), qwen2 -> "qwen2", deepseek_v2/v3 ->
 * "deepseek2" (kv_b_proj split into attn_k_b / attn_v_b unless whole_kv_b). No
 * tokenizer metadata. Matrices are written as F32, or (q8_0) as Q8_0 where a row is
 * a whole number of 32-element blocks. 0, or -1 with a message on stderr. */
typedef struct {
    int whole_kv_b, q8_0;
    int per_expert;              /* mixtral's experts one tensor each, as older files have them */
    uint32_t version, alignment; /* 0: 3 and the default 32 */
    const char *name;            /* general.name (default: the directory) */
} HfToGguf;
int hf_to_gguf(const char *dir, const char *out, const HfToGguf *o);
