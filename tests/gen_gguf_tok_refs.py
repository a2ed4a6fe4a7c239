#!/usr/bin/env python3
"""Reference encodings for the tokenizer read from GGUF metadata (evals/tok_gguf.c).

Uses Hugging Face `tokenizers` 0.23.3 and llama.cpp's `gguf` 0.19.0 (both from PyPI:
pip install tokenizers==0.23.3 gguf==0.19.0), not effbench's own reader or tokenizer.

  smollm2/ref.jsonl        SmolLM2-135M-Instruct: a `tokenizers` BPE built from the
                           GGUF's own tokens and merges (read with the gguf package),
                           its CONTROL tokens as special added tokens, and SmolLM2's
                           Hugging Face configuration: no normalizer, pre-tokenizer
                           Sequence[Digits(individual_digits), ByteLevel(use_regex)],
                           ByteLevel decoder, no BOS (add_bos_token false).
  smollm2/small-ref.jsonl  the same configuration on the small gpt2-style vocabulary of
                           tests/data/tokenizers/ (no model file needed to check it).

Each line: {"text", "ids", "ids_with_special", "decoded"} as in the other references.
The corpus: the lines below, then the 64 texts of the shared reference corpus
(../shared/reference/tokenizers/deepseek_v3/public.jsonl) when it is there.

It also checks that the llama3-style reference (tests/data/tokenizers/llama3-style),
written with ignore_merges false, is what ignore_merges true (Llama-3's setting, which
the GGUF "llama-bpe" pre-tokenizer takes) gives on the same texts, so the C test can
hold the GGUF "llama-bpe" tokenizer to it.

Outputs are committed; CI does not run this. From the repository root:
  python3 tests/gen_gguf_tok_refs.py [MODEL.gguf]
(default: $EFFBENCH_SMOLLM2, else models/SmolLM2-135M-Instruct.Q4_1.gguf; without the
model only small-ref.jsonl is written).
"""
import hashlib
import json
import os
import sys

import gguf
import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

assert tokenizers.__version__ == "0.23.3", tokenizers.__version__

OUT = "tests/data/tokenizers/smollm2"
SHARED = "../shared/reference/tokenizers/deepseek_v3/public.jsonl"

TEXTS = [
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure we'll see; don't worry, it's fine. They've gone, you'd know.",
    "Numbers: 0 7 42 123 2024 65536 3.14159 -1e-5 1,000,000 0x1F 10^9",
    "Phone 555-0199, ISBN 978-3-16-148410-0, version v1.2.3, 99.9% uptime",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "int main(void) { printf(\"%d\\n\", 1 + 2); return 0; }",
    "for (i = 0; i < n; i++) { a[i] *= 2; }  // double every element",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\ttabs\t\tand\nnewlines\n\n\nand\r\nCRLF",
    "runs:  two   three    four        eight",
    "Punctuation!!! ??? ... --- === *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
    "\"quoted\" 'single' `back` <angle> «guillemets» „low“ ‘curly’",
    "Ünïcödé: café, naïve, Straße, Ελληνικά, русский язык, עברית, العربية, हिन्दी",
    "中文：我想在苹果公司工作。日本語のテキスト。한국어 문장입니다.",
    "Emoji: 🙂 👍🏽 👨‍👩‍👧 🇫🇷 ❤️ 🦙🦙 🚀✨",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>Text after end of text.<|endoftext|>",
    "<repo_name>effbench<file_sep>main.c<filename>x.py<gh_stars>100",
    "<|im_start|without the closing bracket, and im_end|> alone",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2#top",
    "mail@example.org, @user, #hashtag, C++, C#, .NET, node.js",
    "x",
    "",
    " ",
    "\n",
    "1234567890123456789012345678901234567890",
    "a1b2c3 d4e5 ²³ ½ ① ٣ ৩",
]


def corpus():
    texts = list(TEXTS)
    if os.path.exists(SHARED):
        with open(SHARED, encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    return texts


def smollm_tokenizer(vocab, merges, special):
    """SmolLM2's tokenizer.json configuration on the given vocabulary."""
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    if special:
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special])
    return tok


def write_refs(tok, path, texts):
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            ids = tok.encode(t, add_special_tokens=False).ids
            ids_s = tok.encode(t, add_special_tokens=True).ids
            dec = tok.decode(ids, skip_special_tokens=False) if ids else ""
            f.write(json.dumps({"text": t, "ids": ids, "ids_with_special": ids_s, "decoded": dec}, ensure_ascii=False) + "\n")
    print(f"wrote {path}: {len(texts)} lines")


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def from_gguf(path):
    r = gguf.GGUFReader(path)
    assert field(r, "tokenizer.ggml.model") == "gpt2", field(r, "tokenizer.ggml.model")
    assert field(r, "tokenizer.ggml.pre") == "smollm", field(r, "tokenizer.ggml.pre")
    assert field(r, "tokenizer.ggml.add_bos_token") is False
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ")) for m in field(r, "tokenizer.ggml.merges")]
    assert all(len(m) == 2 for m in merges)
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens), "repeated tokens"
    special = [t for t, ty in zip(tokens, types) if ty == gguf.TokenType.CONTROL]
    assert all(ty in (gguf.TokenType.NORMAL, gguf.TokenType.CONTROL) for ty in types)
    return smollm_tokenizer(vocab, merges, special)


def check_llama3_ignore_merges():
    d = "tests/data/tokenizers/llama3-style"
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        j = json.load(f)
    j["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(j))
    with open(os.path.join(d, "ref.jsonl"), encoding="utf-8") as f:
        for line in f:
            x = json.loads(line)
            assert tok.encode(x["text"], add_special_tokens=False).ids == x["ids"], x["text"]
            assert tok.encode(x["text"], add_special_tokens=True).ids == x["ids_with_special"], x["text"]
    print("llama3-style: ignore_merges true gives the committed reference")


def main():
    os.makedirs(OUT, exist_ok=True)
    texts = corpus()
    with open("tests/data/tokenizers/gpt2-style/tokenizer.json", encoding="utf-8") as f:
        small = json.load(f)["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in small["merges"]]
    write_refs(smollm_tokenizer(small["vocab"], merges, []), os.path.join(OUT, "small-ref.jsonl"), texts)
    check_llama3_ignore_merges()
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("EFFBENCH_SMOLLM2", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(path):
        print(f"{path}: not found; ref.jsonl not written")
        return
    with open(path, "rb") as f:
        print(f"{path}: sha256 {hashlib.sha256(f.read()).hexdigest()}")
    write_refs(from_gguf(path), os.path.join(OUT, "ref.jsonl"), texts)


if __name__ == "__main__":
    main()
