#!/usr/bin/env python3
"""Seeds for tests/fuzz/fuzz_gguf.c: tiny GGUF files (a llama model with a GPT-2-style
tokenizer and a deepseek2 one, in several weight types), each under 64 KiB.
Needs the gguf package (pip install gguf==0.19.0) and NumPy; the outputs are committed."""
import os
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

OUT = os.path.join(os.path.dirname(__file__), "seeds", "gguf")
rng = np.random.default_rng(1)


def mat(rows, cols):
    return (rng.standard_normal((rows, cols)) * 0.1).astype(np.float32)


def add(w, name, x, qt):
    if qt in (Q.F32,):
        w.add_tensor(name, x)
    elif qt == Q.F16:
        w.add_tensor(name, x.astype(np.float16))
    else:
        w.add_tensor(name, gguf.quants.quantize(x, qt), raw_dtype=qt)


def tokenizer(w, pre):
    toks = [chr(c) if chr(c).isalnum() else f"<{c}>" for c in range(48, 48 + 60)] + ["Ġa", "Ġb", "ab", "<|end|>"]
    assert len(toks) == 64 and len(set(toks)) == 64
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(toks)
    w.add_token_types([3 if t.startswith("<|") else 1 for t in toks])
    w.add_token_merges(["a b"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(63)
    w.add_add_bos_token(False)


def llama(path, qt, pre):
    w = gguf.GGUFWriter(path, "llama")
    D, F, V, H, KV = 32, 64, 64, 2, 1
    w.add_block_count(1); w.add_context_length(128); w.add_embedding_length(D); w.add_feed_forward_length(F)
    w.add_head_count(H); w.add_head_count_kv(KV); w.add_rope_freq_base(10000.0); w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(D // H); w.add_vocab_size(V)
    tokenizer(w, pre)
    add(w, "token_embd.weight", mat(V, D), qt)
    add(w, "output_norm.weight", np.ones(D, np.float32), Q.F32)
    add(w, "blk.0.attn_norm.weight", np.ones(D, np.float32), Q.F32)
    add(w, "blk.0.ffn_norm.weight", np.ones(D, np.float32), Q.F32)
    add(w, "blk.0.attn_q.weight", mat(D, D), qt)
    add(w, "blk.0.attn_k.weight", mat(D // H * KV, D), qt)
    add(w, "blk.0.attn_v.weight", mat(D // H * KV, D), qt)
    add(w, "blk.0.attn_output.weight", mat(D, D), qt)
    add(w, "blk.0.ffn_gate.weight", mat(F, D), qt)
    add(w, "blk.0.ffn_up.weight", mat(F, D), qt)
    add(w, "blk.0.ffn_down.weight", mat(D, F), qt)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def deepseek2(path):
    w = gguf.GGUFWriter(path, "deepseek2")
    D, V, H, Dc, Dn, Dr, Dv, E, Fe = 32, 32, 2, 32, 32, 32, 32, 2, 32
    w.add_block_count(2); w.add_context_length(128); w.add_embedding_length(D); w.add_feed_forward_length(64)
    w.add_head_count(H); w.add_head_count_kv(1); w.add_rope_freq_base(10000.0); w.add_layer_norm_rms_eps(1e-6)
    w.add_leading_dense_block_count(1); w.add_vocab_size(V); w.add_kv_lora_rank(Dc)
    w.add_key_length(Dc + Dr); w.add_value_length(Dc); w.add_key_length_mla(Dn + Dr); w.add_value_length_mla(Dv)
    w.add_expert_feed_forward_length(Fe); w.add_expert_count(E); w.add_expert_used_count(1); w.add_expert_shared_count(1)
    w.add_expert_weights_scale(1.0); w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    w.add_rope_dimension_count(Dr)
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN); w.add_rope_scaling_factor(4.0)
    w.add_rope_scaling_orig_ctx_len(64); w.add_rope_scaling_yarn_log_mul(0.1)
    add(w, "token_embd.weight", mat(V, D), Q.F16)
    add(w, "output_norm.weight", np.ones(D, np.float32), Q.F32)
    add(w, "output.weight", mat(V, D), Q.Q8_0)
    for l in range(2):
        b = f"blk.{l}."
        add(w, b + "attn_norm.weight", np.ones(D, np.float32), Q.F32)
        add(w, b + "ffn_norm.weight", np.ones(D, np.float32), Q.F32)
        add(w, b + "attn_q.weight", mat(H * (Dn + Dr), D), Q.Q4_0)
        add(w, b + "attn_kv_a_mqa.weight", mat(Dc + Dr, D), Q.Q4_1)
        add(w, b + "attn_kv_a_norm.weight", np.ones(Dc, np.float32), Q.F32)
        add(w, b + "attn_k_b.weight", mat(H * Dc, Dn).reshape(H, Dc, Dn), Q.Q8_0)
        add(w, b + "attn_v_b.weight", mat(H * Dv, Dc).reshape(H, Dv, Dc), Q.Q8_0)
        add(w, b + "attn_output.weight", mat(D, H * Dv), Q.Q8_0)
        if l == 0:
            for n, r, c in (("ffn_gate", 64, D), ("ffn_up", 64, D), ("ffn_down", D, 64)):
                add(w, b + n + ".weight", mat(r, c), Q.Q8_0)
        else:
            add(w, b + "ffn_gate_inp.weight", mat(E, D), Q.F32)
            add(w, b + "exp_probs_b.bias", np.zeros(E, np.float32), Q.F32)
            for n, r, c in (("gate", Fe, D), ("up", Fe, D), ("down", D, Fe)):
                add(w, b + f"ffn_{n}_exps.weight", mat(E * r, c).reshape(E, r, c), Q.Q8_0)
                add(w, b + f"ffn_{n}_shexp.weight", mat(r, c), Q.Q8_0)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def kquants(path):
    w = gguf.GGUFWriter(path, "llama")
    for qt in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        raw = rng.integers(0, 256, size=gguf.GGML_QUANT_SIZES[qt][1], dtype=np.uint8)
        raw[0:2] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8) if qt == Q.Q6_K else raw[0:2]
        w.add_tensor(f"k.{qt.name}", raw.reshape(1, -1), raw_dtype=qt)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


if __name__ == "__main__":
    assert gguf.__version__ == "0.19.0" if hasattr(gguf, "__version__") else True
    os.makedirs(OUT, exist_ok=True)
    llama(os.path.join(OUT, "llama-q8_0.gguf"), Q.Q8_0, "smollm")
    llama(os.path.join(OUT, "llama-q4_0.gguf"), Q.Q4_0, "llama-bpe")
    llama(os.path.join(OUT, "llama-f16.gguf"), Q.F16, "qwen2")
    deepseek2(os.path.join(OUT, "deepseek2.gguf"))
    kquants(os.path.join(OUT, "kquants.gguf"))
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))
