/*
 * gguf_model.h - models from GGUF files (see gguf_model.c): the config from metadata,
 * the tensors under their Hugging Face names. Architectures: llama (Mixtral-style
 * with experts too), qwen2, deepseek2; others are refused by name.
 */
#ifndef EFFBENCH_GGUF_MODEL_H
#define EFFBENCH_GGUF_MODEL_H

#include "gguf.h"
#include "model.h"

/* The Hugging Face config.json the metadata describes, parsed into c. */
int gguf_model_config(const Gguf *g, ModelConfig *c, Err *e);
/* Every tensor of g under its Hugging Face name into s (m->cfg set): plain types
 * mapped, permuted rows copied, quantized types widened to float32 (buffers owned by
 * m). Unknown tensors and unsupported types are refused. */
int gguf_model_tensors(Model *m, const Gguf *g, StSet *s, Err *e);
/* llama3 scaling: divides inv_freq by rope_freqs.weight when the file has it. */
int gguf_rope_factors(const Gguf *g, const ModelConfig *c, const char *path, float *inv_freq, Err *e);
/* The ggml type holding most of the matrix bytes ("Q4_1", "BF16", ...). */
const char *gguf_bulk_type(const Gguf *g);
/* Name translation: GGUF -> Hugging Face (1, or 0 when unknown; experts excluded), and
 * Hugging Face -> GGUF for messages ("" when none). */
int gguf_hf_name(const char *gguf_name, int mixtral, char *out, size_t cap);
void gguf_name_of(const char *hf, char *out, size_t cap);

#endif
