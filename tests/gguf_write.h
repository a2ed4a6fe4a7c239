/*
 * gguf_write.h - writes GGUF files for the tests: checkpoints converted the way the
 * Hugging Face to GGUF converter converts them, tokenizers, and broken files.
 *
 * The writer itself is product code (bench/gguf_export.h); this adds the conversion
 * of a checkpoint directory that the tests build files with.
 */
#ifndef EFFBENCH_GGUF_WRITE_H
#define EFFBENCH_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf_export.h"   /* the writer: gw_new, gw_str, ..., gw_tensor, gw_write */

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
