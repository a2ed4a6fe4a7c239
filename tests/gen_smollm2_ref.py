#!/usr/bin/env python3
"""Reference logits and greedy continuations of SmolLM2-135M-Instruct (Q4_1 GGUF).

An independent forward pass in NumPy float64, written from Hugging Face transformers'
LlamaForCausalLM (modeling_llama.py), over the GGUF file's weights decoded with
gguf.quants.dequantize (the gguf package's own decoder, float32 values widened to
float64):

  h = embed[ids]
  per layer:  x = rmsnorm(h) * attn_norm                 rmsnorm(h) = h / sqrt(mean(h^2) + eps)
              q, k, v = x Wq^T, x Wk^T, x Wv^T           9 query heads, 3 KV heads of 64
              q, k = rope(q), rope(k)                    rotate-half: x cos + rotate_half(x) sin,
                                                         rotate_half([a, b]) = [-b, a], angles
                                                         pos * theta^(-2i/64), i < 32
              a = softmax(q k^T / 8 + causal mask) v     query head j reads KV head j // 3
              h = h + a Wo^T
              x = rmsnorm(h) * ffn_norm
              h = h + (silu(x Wg^T) * (x Wu^T)) Wd^T
  logits = (rmsnorm(h) * output_norm) embed^T            tied lm_head

theta, eps, head counts and sizes are read from the file's metadata. The GGUF converter
(llama.cpp convert_hf_to_gguf.py, LlamaModel.permute) reorders the rows of Q and K in
each head from Hugging Face's rotate-half layout [x_0..x_31 | x_32..x_63] to
interleaved pairs (x_0, x_32, x_1, x_33, ...); this script undoes it (unpermute) and
applies rotate-half RoPE, as Hugging Face does, so it shares no RoPE layout with an
engine that keeps the file's order.

Tokens: the `tokenizers` library, a byte-level BPE built from the file's
tokenizer.ggml.tokens and tokenizer.ggml.merges with SmolLM2's Hugging Face
pre-tokenizer Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False,
use_regex=True)]; no BOS (tokenizer.ggml.add_bos_token is false).

Greedy continuation: 12 tokens, each by a full recomputation of the sequence so far
(no cache), argmax of the float64 logits.

Outputs (committed; CI does not run this) in tests/data/smollm2/:
  ref.json        per prompt: text, ids, greedy ids, greedy text, the float64 logits'
                  top-5 (id, logit, token), the margin top1 - top2 at the last prompt
                  position and at each greedy step, and the name of its logits file
  pN.logits.f32   the last prompt position's logits, float32 little-endian, 49152 values
Run from the repository root (about a minute, 2 GB of memory):
  pip install gguf==0.19.0 tokenizers==0.22.1 numpy
  python3 tests/gen_smollm2_ref.py [MODEL.gguf]
"""
import hashlib
from importlib.metadata import version
import json
import os
import sys

import numpy as np

from gguf import GGUFReader
from gguf.quants import dequantize
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from tokenizers import __version__ as tokenizers_version

GGUF_VERSION = "0.19.0"
TOKENIZERS_VERSION = "0.22.1"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little",
    "In 1969, the first person to walk on the Moon was",
    "The three primary colors are",
]
N_GREEDY = 12
OUT = "tests/data/smollm2"


def field(r, key):
    return r.fields[key].contents()


def load_tokenizer(r):
    vocab = {tok: i for i, tok in enumerate(field(r, "tokenizer.ggml.tokens"))}
    merges = [tuple(m.split(" ", 1)) for m in field(r, "tokenizer.ggml.merges")]
    tk = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    return tk


def load_weights(r):
    """name -> float64 array in Hugging Face's (out, in) layout"""
    w = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type)
        shape = tuple(int(x) for x in reversed(t.shape))   # GGUF ne is innermost first
        w[t.name] = np.asarray(a, dtype=np.float64).reshape(shape)
    return w


def unpermute(wt, n_head):
    """inverse of LlamaModel.permute: rows (head, pair i, j) -> (head, j, i)"""
    rows, cols = wt.shape
    hd = rows // n_head
    return wt.reshape(n_head, hd // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


class Llama:
    def __init__(self, r):
        self.L = int(field(r, "llama.block_count"))
        self.D = int(field(r, "llama.embedding_length"))
        self.H = int(field(r, "llama.attention.head_count"))
        self.Hkv = int(field(r, "llama.attention.head_count_kv"))
        self.hd = self.D // self.H
        self.theta = float(field(r, "llama.rope.freq_base"))
        self.eps = float(field(r, "llama.attention.layer_norm_rms_epsilon"))
        assert int(field(r, "llama.rope.dimension_count")) == self.hd
        assert not any(k.startswith("llama.rope.scaling") for k in r.fields)
        w = load_weights(r)
        assert "output.weight" not in w   # tied lm_head
        for i in range(self.L):
            w[f"blk.{i}.attn_q.weight"] = unpermute(w[f"blk.{i}.attn_q.weight"], self.H)
            w[f"blk.{i}.attn_k.weight"] = unpermute(w[f"blk.{i}.attn_k.weight"], self.Hkv)
        self.w = w
        self.V = w["token_embd.weight"].shape[0]

    def forward(self, ids):
        """float64 logits (V,) of the last position"""
        w, T, H, Hkv, hd = self.w, len(ids), self.H, self.Hkv, self.hd
        h = w["token_embd.weight"][ids]                                  # (T, D)
        inv_freq = 1.0 / self.theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
        ang = np.outer(np.arange(T, dtype=np.float64), inv_freq)         # (T, hd/2)
        cos = np.cos(np.concatenate([ang, ang], axis=-1))[:, None, :]    # (T, 1, hd)
        sin = np.sin(np.concatenate([ang, ang], axis=-1))[:, None, :]
        mask = np.triu(np.full((T, T), -np.inf), 1)
        for i in range(self.L):
            p = f"blk.{i}."
            x = rmsnorm(h, w[p + "attn_norm.weight"], self.eps)
            q = (x @ w[p + "attn_q.weight"].T).reshape(T, H, hd)
            k = (x @ w[p + "attn_k.weight"].T).reshape(T, Hkv, hd)
            v = (x @ w[p + "attn_v.weight"].T).reshape(T, Hkv, hd)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            rep = H // Hkv                                               # repeat_kv
            k = np.repeat(k, rep, axis=1)
            v = np.repeat(v, rep, axis=1)
            s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask     # (H, T, T)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            a = np.einsum("hts,shd->thd", s, v).reshape(T, H * hd)
            h = h + a @ w[p + "attn_output.weight"].T
            x = rmsnorm(h, w[p + "ffn_norm.weight"], self.eps)
            g = x @ w[p + "ffn_gate.weight"].T
            u = x @ w[p + "ffn_up.weight"].T
            h = h + (g / (1.0 + np.exp(-g)) * u) @ w[p + "ffn_down.weight"].T
        x = rmsnorm(h[-1], w["output_norm.weight"], self.eps)
        return w["token_embd.weight"] @ x


def margin(lg):
    top2 = np.sort(lg)[-2:]
    return float(top2[1] - top2[0])


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    for pkg, want in (("gguf", GGUF_VERSION), ("tokenizers", TOKENIZERS_VERSION)):
        if version(pkg) != want:
            sys.exit(f"{pkg} {version(pkg)} installed; this reference pins {pkg}=={want}")
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    if sha != MODEL_SHA256:
        sys.exit(f"{path}: SHA-256 {sha}, expected {MODEL_SHA256}")
    r = GGUFReader(path)
    assert not field(r, "tokenizer.ggml.add_bos_token")
    tk = load_tokenizer(r)
    m = Llama(r)
    os.makedirs(OUT, exist_ok=True)
    cases = []
    for n, text in enumerate(PROMPTS):
        ids = tk.encode(text).ids
        lg = m.forward(ids)
        fname = f"p{n}.logits.f32"
        lg.astype("<f4").tofile(os.path.join(OUT, fname))
        order = np.argsort(-lg)[:5]
        top5 = [{"id": int(i), "logit": float(lg[i]), "token": tk.decode([int(i)])} for i in order]
        seq, greedy, margins = list(ids), [], []
        step = lg
        for _ in range(N_GREEDY):
            nxt = int(np.argmax(step))
            greedy.append(nxt)
            margins.append(margin(step))
            seq.append(nxt)
            if len(greedy) < N_GREEDY:
                step = m.forward(seq)
        cont = tk.decode(greedy)
        print(f"{text!r} {ids} -> {greedy} {cont!r}; min greedy margin {min(margins):.4f}")
        cases.append({
            "text": text, "ids": [int(i) for i in ids], "logits": fname,
            "top5": top5, "margin_top1_top2": margin(lg),
            "greedy": greedy, "greedy_text": cont, "greedy_margins": margins,
        })
    ref = {
        "model": os.path.basename(path), "sha256": MODEL_SHA256,
        "vocab": m.V, "layers": m.L, "hidden": m.D, "heads": m.H, "kv_heads": m.Hkv,
        "rope_theta": m.theta, "rms_eps": m.eps,
        "made_by": "tests/gen_smollm2_ref.py: NumPy float64 from Hugging Face LlamaForCausalLM semantics",
        "versions": {"numpy": np.__version__, "gguf": GGUF_VERSION, "tokenizers": tokenizers_version,
                     "python": sys.version.split()[0]},
        "prompts": cases,
    }
    with open(os.path.join(OUT, "ref.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
