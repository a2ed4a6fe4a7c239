#!/usr/bin/env python3
"""Generates tokenizer references with Hugging Face `tokenizers` (pip install tokenizers).

Builds two small byte-level BPE tokenizers, trained on this repository's README and
suite README, with the pre-tokenizers of two families the shared references do not
cover, and records the library's encodings of a varied text:

  gpt2-style   ByteLevel(add_prefix_space=False, use_regex=True): the GPT-2 pattern
  llama3-style Split(the Llama-3 pattern, Isolated) + ByteLevel(use_regex=False), and a
               TemplateProcessing post-processor that prepends <|begin_of_text|>

Outputs (committed; CI does not run this): tests/data/tokenizers/NAME/tokenizer.json
and ref.jsonl with {"text", "ids", "ids_with_special", "decoded"} per line.
Run from the repository root: python3 tests/gen_tokenizer_refs.py
"""
import json
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers, Regex

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "effbench measures quality per FLOP, per byte and per dollar.",
    "Don't stop; it's 3.14159 and we'll see 1,000,000 tokens... I'M SURE.",
    "  two leading spaces, trailing   ",
    "tabs\tand\nnewlines\r\nand    runs      of spaces",
    "Numbers: 7 42 123 4567 89012 3141592653589793238462643383279",
    "Ünïcödé: café, naïve, Straße, Ελληνικά, русский, 日本語, 中文, 한국어",
    "Emoji: 🙂 👍🏽 👨‍👩‍👧 🇫🇷 ❤️",
    "<|begin_of_text|> is a special token; <|begin_of_text| is not.",
    "def f(x):\n    return x ** 2  # square\n",
    "https://example.com/path?q=1&r=two#frag and mail@example.org",
    "MLA caches (kv_lora_rank + qk_rope_head_dim) x layers elements per token.",
    "",
    "x",
]


def corpus():
    out = []
    for p in ("README.md", "suites/README.md"):
        with open(p, encoding="utf-8") as f:
            out.append(f.read())
    out.extend(TEXTS)
    return out


def build(name, pre, post=None, special=()):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=list(special),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    if post is not None:
        tok.post_processor = post(tok)
    d = os.path.join("tests/data/tokenizers", name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "ref.jsonl"), "w", encoding="utf-8") as f:
        for t in TEXTS:
            ids = tok.encode(t, add_special_tokens=False).ids
            ids_s = tok.encode(t, add_special_tokens=True).ids
            dec = tok.decode(ids, skip_special_tokens=False) if ids else ""
            f.write(json.dumps({"text": t, "ids": ids, "ids_with_special": ids_s, "decoded": dec}, ensure_ascii=False) + "\n")


build("gpt2-style", pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
build("llama3-style",
      pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated"),
                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
      post=lambda tok: processors.TemplateProcessing(
          single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))]),
      special=("<|begin_of_text|>",))
