/*
 * tokenizer.h - Hugging Face tokenizer.json with a byte-level BPE model (GPT-2,
 * Llama-3, Qwen2/3, DeepSeek-V3).
 *
 * Supported parts; anything else is refused with its name:
 *   normalizer     null, NFC, NFD, NFKC, NFKD, Sequence of those
 *   pre_tokenizer  Split (Regex or String pattern, behavior Isolated or Removed),
 *                  ByteLevel (add_prefix_space, use_regex with the GPT-2 pattern),
 *                  Digits, Sequence of those
 *   model          BPE with byte-level vocabulary, merges as "a b" or ["a", "b"],
 *                  ignore_merges
 *   added_tokens   matched literally in the text (leftmost, longest), before
 *                  normalization, with or without add_special_tokens
 *   post_processor null, ByteLevel (adds nothing), TemplateProcessing (special
 *                  tokens around the single sequence, e.g. a BOS)
 *   decoder        null or ByteLevel
 * Regexes run on PCRE2 (UTF, Unicode properties) with match and depth limits, so
 * a pathological pattern fails one encode with an error instead of hanging.
 */
#ifndef EFFBENCH_TOKENIZER_H
#define EFFBENCH_TOKENIZER_H

#include "common.h"

typedef struct Tokenizer Tokenizer;

/* Loads path (a tokenizer.json); NULL with e set on any problem. */
Tokenizer *tok_load(const char *path, Err *e);
/* Parses tokenizer.json text held in memory (name for messages). */
Tokenizer *tok_parse(const char *json, size_t len, const char *name, Err *e);
void tok_free(Tokenizer *t);

/* Encodes len bytes of UTF-8 text; *ids is allocated (caller frees). add_special:
 * apply the post-processor's template (e.g. a BOS). Invalid UTF-8 is an error. */
int tok_encode(Tokenizer *t, const char *text, size_t len, int add_special, int **ids, int *n, Err *e);
/* Decodes ids to a NUL-terminated string (caller frees); NULL and e set on an id
 * outside the vocabulary. */
char *tok_decode(const Tokenizer *t, const int *ids, int n, size_t *len, Err *e);
int tok_vocab_size(const Tokenizer *t);        /* 1 + the largest id */

#endif
