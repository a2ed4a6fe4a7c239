#!/usr/bin/env python3
"""Generates the ggml weight-type decoding references with the gguf package's gguf.quants
(pip install gguf==0.19.0 numpy).

For every type kernels/quant.c decodes (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K,
Q6_K) it writes, into tests/data/quants/:

  TYPE.bin  the raw bytes: whole blocks, in file order
  TYPE.f32  what gguf.quants.dequantize(bytes, type) returns (float32, little-endian)

The blocks are deterministic (seeded):
  - random payload bytes with scale fields (f16 d, dmin) chosen finite: zero, -0,
    negative, subnormal, the largest f16 and random normal values, in turn; the 6-bit
    K-quant scales and mins and the Q6_K int8 scales are random bits;
  - blocks encoded from real-looking float data (rows of normal values with a spread of
    standard deviations and a few outliers, one all-zero block): by gguf.quants.quantize
    for Q8_0, Q4_0 and Q4_1; gguf 0.19.0 has no K-quant encoder, so Q4_K, Q5_K and Q6_K
    are encoded by the plain min/max encoder below (ggml's block layout, checked by
    decoding it back with gguf.quants and bounding the error);
  - F32, F16 and BF16: random values plus zeros of both signs, every F16 subnormal,
    subnormal BF16 and F32 values, infinities and NaNs with several payloads
    (quiet and signalling, both signs).

Outputs are committed (CI has no Python). Run from the repository root:
    python3 tests/gen_quant_refs.py
"""
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGML_QUANT_SIZES
from gguf import quants

GGUF_VERSION = "0.19.0"
SEED = 20240611
OUT = os.path.join("tests", "data", "quants")
QK_K = 256

# f16 scale edge cases, cycled through the random blocks: 0, -0, smallest and largest
# subnormal (both signs), 1, -1, the largest finite (both signs), the smallest normal
F16_EDGE = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x0400]


def f16_scales(rng, n):
    """n finite f16 bit patterns: the edge cases in turn, then random finite ones."""
    out = np.empty(n, dtype=np.uint16)
    for i in range(n):
        if i < 2 * len(F16_EDGE):
            out[i] = F16_EDGE[i % len(F16_EDGE)]
        else:
            while True:
                h = int(rng.integers(0, 1 << 16))
                if (h >> 10) & 0x1F != 0x1F:      # not Inf or NaN
                    break
            out[i] = h
    return out


def put_f16(blocks, col, bits):
    """Writes f16 bit patterns (one per block) at byte column col, little-endian."""
    blocks[:, col] = bits & 0xFF
    blocks[:, col + 1] = bits >> 8


def random_blocks(rng, qtype, n):
    """n blocks of random bytes, with every f16 scale field replaced by a finite value."""
    _, size = GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    if qtype in (T.Q8_0, T.Q4_0):
        put_f16(b, 0, f16_scales(rng, n))                       # d
    elif qtype == T.Q4_1:
        put_f16(b, 0, f16_scales(rng, n))                       # d
        put_f16(b, 2, np.roll(f16_scales(rng, n), 3))           # m (a different edge case per block)
    elif qtype in (T.Q4_K, T.Q5_K):
        put_f16(b, 0, f16_scales(rng, n))                       # d
        put_f16(b, 2, np.roll(f16_scales(rng, n), 5))           # dmin
    elif qtype == T.Q6_K:
        put_f16(b, size - 2, f16_scales(rng, n))                # d is last
    return b


def real_data(rng, n_blocks, block):
    """Float32 values that look like trained weights: rows of normals with standard
    deviations from 0.003 to 0.3, 1% outliers at 8x, and the first block all zeros."""
    n = n_blocks * block
    sigma = np.exp(rng.uniform(np.log(0.003), np.log(0.3), size=(n_blocks, 1)))
    x = rng.standard_normal((n_blocks, block)) * sigma
    out = rng.random((n_blocks, block)) < 0.01
    x[out] *= 8
    x[0] = 0
    return x.astype(np.float32).reshape(n)


# ---- a plain K-quant encoder (gguf 0.19.0 has none): ggml's layout, min/max scales ----
def _f16_round(x):
    return x.astype(np.float16).astype(np.float32)


def _pack_k_scales(sc, mn):
    """The 12-byte 6-bit scale/min packing of Q4_K and Q5_K (see Q4_K.get_scale_min)."""
    n = sc.shape[0]
    s = np.zeros((n, 12), dtype=np.uint8)
    for j in range(4):
        s[:, j] = (sc[:, j] & 63) | ((sc[:, j + 4] >> 4) << 6)
        s[:, j + 4] = (mn[:, j] & 63) | ((mn[:, j + 4] >> 4) << 6)
        s[:, j + 8] = (sc[:, j + 4] & 15) | ((mn[:, j + 4] & 15) << 4)
    return s


def encode_qk(x, nmax):
    """Q4_K (nmax 15) or Q5_K (nmax 31): 8 sub-blocks of 32 with x ~ d*sc*q - dmin*m."""
    n = x.size // QK_K
    xb = x.reshape(n, 8, 32).astype(np.float64)
    lo = np.minimum(xb.min(axis=-1), 0)
    hi = xb.max(axis=-1)
    scale = (hi - lo) / nmax                                  # (n, 8)
    mins = -lo                                                # (n, 8), >= 0
    d = _f16_round((scale.max(axis=-1) / 63).astype(np.float32))
    dmin = _f16_round((mins.max(axis=-1) / 63).astype(np.float32))
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.rint(scale / d[:, None]), 0).clip(0, 63).astype(np.uint8)
        mn = np.where(dmin[:, None] > 0, np.rint(mins / dmin[:, None]), 0).clip(0, 63).astype(np.uint8)
        step = (d[:, None] * sc)[..., None]
        q = np.where(step > 0, np.rint((xb + (dmin[:, None] * mn)[..., None]) / step), 0)
    q = q.clip(0, nmax).astype(np.uint8).reshape(n, 4, 2, 32)  # (group of 64, half, 32)
    qs = (q[:, :, 0, :] & 15) | ((q[:, :, 1, :] & 15) << 4)   # (n, 4, 32)
    parts = [d.astype(np.float16).view(np.uint8).reshape(n, 2),
             dmin.astype(np.float16).view(np.uint8).reshape(n, 2), _pack_k_scales(sc, mn)]
    if nmax == 31:                                            # Q5_K: bit 4 of sub-block j in bit j of qh
        hi_bits = (q.reshape(n, 8, 32) >> 4) & 1
        qh = np.zeros((n, 32), dtype=np.uint8)
        for j in range(8):
            qh |= hi_bits[:, j, :] << j
        parts.append(qh)
    parts.append(qs.reshape(n, 128))
    return np.concatenate(parts, axis=1)


def encode_q6k(x):
    """Q6_K: 16 sub-blocks of 16 with x ~ d*sc*(L-32), L in 0..63, sc int8."""
    n = x.size // QK_K
    xb = x.reshape(n, 16, 16).astype(np.float64)
    scale = np.abs(xb).max(axis=-1) / 31                      # (n, 16)
    d = _f16_round((scale.max(axis=-1) / 127).astype(np.float32))
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.rint(scale / d[:, None]), 0).clip(-128, 127).astype(np.int8)
        step = (d[:, None] * sc)[..., None]
        q = np.where(step != 0, np.rint(xb / step), 0)
    L = (q.clip(-32, 31) + 32).astype(np.uint8).reshape(n, 2, 128)   # two halves of 128
    ql = (L[:, :, 0:64] & 15) | ((L[:, :, 64:128] & 15) << 4)        # (n, 2, 64)
    qh = np.zeros((n, 2, 32), dtype=np.uint8)
    for t in range(4):
        qh |= ((L[:, :, 32 * t:32 * t + 32] >> 4) & 3) << (2 * t)
    return np.concatenate([ql.reshape(n, 128), qh.reshape(n, 64), sc.view(np.uint8).reshape(n, 16),
                           d.astype(np.float16).view(np.uint8).reshape(n, 2)], axis=1)


def encoded_blocks(rng, qtype, n):
    """n blocks encoded from real-looking data; the encoder is checked by decoding back."""
    block, size = GGML_QUANT_SIZES[qtype]
    x = real_data(rng, n, block).reshape(-1)
    if qtype in (T.Q8_0, T.Q4_0, T.Q4_1):
        b = quants.quantize(x.reshape(1, -1), qtype).reshape(n, size)
    else:
        b = {T.Q4_K: lambda v: encode_qk(v, 15), T.Q5_K: lambda v: encode_qk(v, 31),
             T.Q6_K: encode_q6k}[qtype](x)
    y = quants.dequantize(b.reshape(-1), qtype).reshape(n, block)
    xr = x.reshape(n, block)
    rng_blk = np.abs(xr).max(axis=1, keepdims=True)
    err = np.abs(y - xr) / np.where(rng_blk > 0, rng_blk, 1)
    nbits = {T.Q8_0: 8, T.Q4_0: 4, T.Q4_1: 4, T.Q4_K: 4, T.Q5_K: 5, T.Q6_K: 6}[qtype]
    limit = 0.6 * 2.0 ** (2 - nbits)     # about two steps of nbits over the block's largest |x|
    assert err.max() <= limit, f"{qtype.name}: encoder error {err.max():.4f} > {limit:.4f}"
    assert b.dtype == np.uint8 and b.shape == (n, size)
    return b


# ---- plain formats ----------------------------------------------------------------------
F16_SPECIAL = [0x0000, 0x8000, 0x7C00, 0xFC00,                   # zeros, infinities
               0x7E00, 0xFE00, 0x7C01, 0xFC01, 0x7D55, 0x7FFF,  # quiet and signalling NaNs
               0x7BFF, 0xFBFF, 0x0400, 0x8400, 0x3C00, 0x3555]


def f16_bytes(rng):
    sub = np.arange(1, 0x400, dtype=np.uint16)                  # every subnormal, both signs
    rand = rng.integers(0, 1 << 16, size=2048, dtype=np.uint16)
    return np.concatenate([np.array(F16_SPECIAL, dtype=np.uint16), sub, sub | 0x8000, rand])


def bf16_bytes(rng):
    special = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0xFF81, 0x7FFF, 0x7FA5,
               0x0001, 0x8001, 0x007F, 0x807F, 0x0080, 0x7F7F, 0xFF7F, 0x3F80]
    sub = rng.integers(1, 0x80, size=256, dtype=np.uint16)      # subnormals
    rand = rng.integers(0, 1 << 16, size=2048, dtype=np.uint16)
    return np.concatenate([np.array(special, dtype=np.uint16), sub, sub | 0x8000, rand])


def f32_bytes(rng):
    special = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
               0x7F800001, 0xFF800001, 0x7FBFFFFF, 0x7FC12345, 0x00000001, 0x807FFFFF,
               0x00800000, 0x7F7FFFFF, 0x3F800000, 0xBF800000]
    rand = rng.integers(0, 1 << 32, size=1024, dtype=np.uint32)
    return np.concatenate([np.array(special, dtype=np.uint32), rand])


# ---- output -----------------------------------------------------------------------------
# (type, random blocks, encoded blocks); F16/BF16/F32 are element lists
PLAN = [(T.Q8_0, 96, 32), (T.Q4_0, 96, 32), (T.Q4_1, 96, 32),
        (T.Q4_K, 24, 8), (T.Q5_K, 24, 8), (T.Q6_K, 24, 8)]


def write(qtype, raw):
    raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
    vals = quants.dequantize(raw.copy(), qtype)
    vals = np.ascontiguousarray(vals, dtype=np.float32).reshape(-1)
    block, size = GGML_QUANT_SIZES[qtype]
    assert vals.size * size == raw.size * block
    base = os.path.join(OUT, qtype.name)
    raw.tofile(base + ".bin")
    vals.astype("<f4").tofile(base + ".f32")
    print(f"{qtype.name:5s} {raw.size:7d} bytes -> {vals.size:6d} floats")


def main():
    ver = getattr(gguf, "__version__", None)
    if ver is None:
        from importlib.metadata import version
        ver = version("gguf")
    assert ver == GGUF_VERSION, f"gguf {ver} installed; these references pin gguf {GGUF_VERSION}"
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    write(T.F32, f32_bytes(rng).astype("<u4"))
    write(T.F16, f16_bytes(rng).astype("<u2"))
    write(T.BF16, bf16_bytes(rng).astype("<u2"))
    for qtype, n_rand, n_enc in PLAN:
        b = np.concatenate([random_blocks(rng, qtype, n_rand), encoded_blocks(rng, qtype, n_enc)])
        write(qtype, b)


if __name__ == "__main__":
    main()
