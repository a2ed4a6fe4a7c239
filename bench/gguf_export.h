/*
 * gguf_export.h - writes GGUF files: a general writer (gw_*), and a loaded model's
 * weights as llama.cpp's convert_hf_to_gguf.py would name and lay them out, so that
 * llama.cpp (llama-bench) and effbench can run the same file.
 *
 * A writer collects metadata and tensors in memory in the order given, then writes
 * version 3 (or 2) with the given alignment, atomically (OUT.tmp.PID, then rename: a
 * failed write leaves no partial file). Strings are NUL-terminated C strings here.
 */
#ifndef EFFBENCH_GGUF_EXPORT_H
#define EFFBENCH_GGUF_EXPORT_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

/* ---- writer ------------------------------------------------------------------------- */
typedef struct GgufW GgufW;

/* The GGUF name of a Hugging Face layer tensor's suffix ("self_attn.q_proj.weight" ->
 * "attn_q.weight"), as the converter names it; NULL for experts, the router's expert
 * tensors and anything else the table does not hold. */
const char *gguf_layer_suffix(const char *hf);

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
/* The same without copying: data must live until gw_write returns. */
void gw_tensor_ref(GgufW *w, const char *name, int type, int n_dims, const int64_t *ne, const void *data, size_t nbytes);
/* Writes the file; 0, or -1 with e set (e may be NULL: the message goes to stderr).
 * version 2 or 3; alignment 0 means the default 32 (no key written); another value
 * is written as general.alignment. */
int gw_write_e(GgufW *w, const char *path, uint32_t version, uint32_t alignment, Err *e);
int gw_write(GgufW *w, const char *path, uint32_t version, uint32_t alignment);

/* ---- a loaded model as GGUF ------------------------------------------------------------ */
/* Writes m's weights (m->mats) to path in their own stored types, with the metadata,
 * tensor names and layouts of convert_hf_to_gguf.py for llama, mixtral (as "llama"),
 * qwen2 and deepseek_v2/v3 (as "deepseek2"):
 *   llama/mixtral: Q and K rows permuted per head to interleaved pairs; experts stacked
 *     into one {cols, rows, E} tensor per projection; llama3 RoPE scaling as
 *     rope_freqs.weight.
 *   deepseek2: kv_b_proj split into attn_k_b {Dn, Dc, H} (each head's W_UK transposed)
 *     and attn_v_b {Dc, Dv, H}. A block type whose block does not divide Dn cannot hold
 *     attn_k_b: it is written as Q8_0 (when 32 divides Dn), else F16, with a note on
 *     stderr.
 * F8_E4M3 weights (no ggml type) are written as BF16. Vectors are F32. The tokenizer is
 * ggml's "none" model with {arch}.vocab_size, which llama.cpp loads and effbench needs
 * for nothing but text (bench and logits run on ids).
 * 0, or -1 with e set ("PATH: why"); nothing is left at path on failure. */
int gguf_export(const Model *m, const char *path, Err *e);

#endif
