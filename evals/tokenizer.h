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
 * A GGUF file's tokenizer is turned into the equivalent tokenizer.json tree and loaded
 * the same way (tok_from_gguf).
 */
#ifndef EFFBENCH_TOKENIZER_H
#define EFFBENCH_TOKENIZER_H

#include "common.h"
#include "gguf.h"

typedef struct Tokenizer Tokenizer;

struct cJSON;

/* Loads path (a tokenizer.json); NULL with e set on any problem. */
Tokenizer *tok_load(const char *path, Err *e);
/* Parses tokenizer.json text held in memory (name for messages). */
Tokenizer *tok_parse(const char *json, size_t len, const char *name, Err *e);
/* The same from a parsed tokenizer.json tree (not taken over: the caller deletes it). */
Tokenizer *tok_from_cjson(const struct cJSON *root, const char *name, Err *e);
void tok_free(Tokenizer *t);

/* The tokenizer held in a GGUF file's metadata (tok_gguf.c): tokenizer.ggml.model "gpt2"
 * (byte-level BPE; "llama" SentencePiece and the others are refused by name), tokens,
 * token_type (CONTROL and USER_DEFINED tokens are added tokens, CONTROL ones special),
 * merges, bos/eos ids, add_bos_token / add_eos_token, and tokenizer.ggml.pre mapped to
 * the Hugging Face normalizer and pre-tokenizer of that model family: "gpt-2", "smollm",
 * "llama-bpe", "qwen2", "deepseek-v3" (another pre is refused by name). The end-of-
 * sequence ids are eos, eot and eom. NULL with e naming the file on any problem. */
Tokenizer *tok_from_gguf(const Gguf *g, Err *e);
/* The tokenizer.json text tok_from_gguf builds and loads (caller frees); NULL with e set. */
char *tok_gguf_json(const Gguf *g, Err *e);
/* The tokenizer that goes with a model path: a .gguf file's own; for a directory,
 * DIR/tokenizer.json; for another file (a config.json), the tokenizer.json beside it.
 * With a tokenizer.json, the end-of-sequence ids are config.json's eos_token_id (a
 * number or a list) when the file beside it has one. NULL with e set (naming the file
 * looked for) when there is none or it is refused. */
Tokenizer *tok_for_model(const char *model_path, Err *e);
/* 1 when tok_for_model has a tokenizer to load for model_path (it may still refuse it). */
int tok_model_has_tokenizer(const char *model_path);

/* Encodes len bytes of UTF-8 text; *ids is allocated (caller frees). add_special:
 * apply the post-processor's template (e.g. a BOS). Invalid UTF-8 is an error. */
int tok_encode(Tokenizer *t, const char *text, size_t len, int add_special, int **ids, int *n, Err *e);
/* Decodes ids to a NUL-terminated string (caller frees); NULL and e set on an id
 * outside the vocabulary. */
char *tok_decode(const Tokenizer *t, const int *ids, int n, size_t *len, Err *e);
int tok_vocab_size(const Tokenizer *t);        /* 1 + the largest id */
/* 1 when id is an added token marked special (skipped when text is printed). */
int tok_is_special(const Tokenizer *t, int id);
/* The ids that end a generation (up to 8); 0, or -1 with e set for an id outside the
 * vocabulary. tok_is_eos: 1 when id is one of them. */
int tok_set_eos(Tokenizer *t, const int *ids, int n, Err *e);
int tok_is_eos(const Tokenizer *t, int id);

#endif
