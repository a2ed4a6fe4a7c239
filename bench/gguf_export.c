/*
 * gguf_export.c - see gguf_export.h.
 *
 * Writer: metadata is serialised into memory as it is given; tensors are kept as
 * pointers (copied, or referenced when the caller keeps them alive) and streamed to
 * the file after the header: header, key/values, tensor infos, padding to the
 * alignment, then each tensor's bytes padded to the alignment (the GGUF layout,
 * ggml/docs/gguf.md).
 *
 * Export: the metadata keys and tensor names are those convert_hf_to_gguf.py writes
 * (vendored llama.cpp, LlamaModel / Qwen2Model / DeepseekV2Model), checked against what
 * llama.cpp's loader reads (src/models/deepseek2.cpp: a deepseek2 file that is not
 * V2-Lite by its layer count must have attention.q_lora_rank, so it is always written,
 * 0 meaning a plain q_proj). Weights keep their stored type; only attn_k_b, which is a
 * transpose, is decoded and encoded again when it is in a block type. Not done: real
 * tokenizers (the "none" vocabulary carries only the size), MTP layers, yarn on llama.
 */
#include "gguf_export.h"
#include "common.h"
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- writer ------------------------------------------------------------------------- */
typedef struct { char *bytes; size_t n, cap; } Buf;

typedef struct {
    char *name;
    int type, n_dims;
    int64_t ne[8];               /* up to 8 dims, for broken files in the tests */
    const void *data;
    size_t nbytes;
    int owned;                   /* data copied by gw_tensor, freed with the writer */
} WT;

struct GgufW {
    Buf kv;                      /* serialised key/values */
    int64_t n_kv;
    WT *t;
    int64_t n_t, cap_t;
};

static void put(Buf *b, const void *p, size_t n) {
    if (!n) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->bytes = xrealloc(b->bytes, b->cap);
    }
    memcpy(b->bytes + b->n, p, n);
    b->n += n;
}
static void put_u32(Buf *b, uint32_t x) { put(b, &x, 4); }
static void put_u64(Buf *b, uint64_t x) { put(b, &x, 8); }
static void put_str(Buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void key(GgufW *w, const char *k, GgufType t) { put_str(&w->kv, k); put_u32(&w->kv, (uint32_t)t); w->n_kv++; }

GgufW *gw_new(void) { return xcalloc(1, sizeof(GgufW)); }

void gw_free(GgufW *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        if (w->t[i].owned) free((void *)w->t[i].data);
    }
    free(w->t);
    free(w->kv.bytes);
    free(w);
}

void gw_str(GgufW *w, const char *k, const char *v) { key(w, k, GGUF_STRING); put_str(&w->kv, v); }
void gw_u32(GgufW *w, const char *k, uint32_t v) { key(w, k, GGUF_U32); put_u32(&w->kv, v); }
void gw_i32(GgufW *w, const char *k, int32_t v) { key(w, k, GGUF_I32); put(&w->kv, &v, 4); }
void gw_u64(GgufW *w, const char *k, uint64_t v) { key(w, k, GGUF_U64); put_u64(&w->kv, v); }
void gw_f32(GgufW *w, const char *k, float v) { key(w, k, GGUF_F32); put(&w->kv, &v, 4); }
void gw_bool(GgufW *w, const char *k, int v) { uint8_t b = v != 0; key(w, k, GGUF_BOOL); put(&w->kv, &b, 1); }

void gw_arr_str(GgufW *w, const char *k, const char *const *v, int64_t n) {
    key(w, k, GGUF_ARRAY);
    put_u32(&w->kv, GGUF_STRING);
    put_u64(&w->kv, (uint64_t)n);
    for (int64_t i = 0; i < n; i++) put_str(&w->kv, v[i]);
}
void gw_arr_i32(GgufW *w, const char *k, const int32_t *v, int64_t n) {
    key(w, k, GGUF_ARRAY);
    put_u32(&w->kv, GGUF_I32);
    put_u64(&w->kv, (uint64_t)n);
    put(&w->kv, v, sizeof *v * (size_t)n);
}
void gw_arr_f32(GgufW *w, const char *k, const float *v, int64_t n) {
    key(w, k, GGUF_ARRAY);
    put_u32(&w->kv, GGUF_F32);
    put_u64(&w->kv, (uint64_t)n);
    put(&w->kv, v, sizeof *v * (size_t)n);
}

static WT *add_tensor(GgufW *w, const char *name, int type, int n_dims, const int64_t *ne, size_t nbytes) {
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t ? 2 * w->cap_t : 64;
        w->t = xrealloc(w->t, sizeof *w->t * (size_t)w->cap_t);
    }
    WT *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->type = type;
    t->n_dims = n_dims < 0 ? 0 : n_dims > 8 ? 8 : n_dims;
    for (int i = 0; i < 8; i++) t->ne[i] = i < t->n_dims ? ne[i] : 1;
    t->nbytes = nbytes;
    return t;
}

void gw_tensor(GgufW *w, const char *name, int type, int n_dims, const int64_t *ne, const void *data, size_t nbytes) {
    WT *t = add_tensor(w, name, type, n_dims, ne, nbytes);
    void *d = xmalloc(nbytes ? nbytes : 1);
    if (nbytes) memcpy(d, data, nbytes);
    t->data = d;
    t->owned = 1;
}

void gw_tensor_ref(GgufW *w, const char *name, int type, int n_dims, const int64_t *ne, const void *data, size_t nbytes) {
    add_tensor(w, name, type, n_dims, ne, nbytes)->data = data;
}

static void pad(Buf *b, uint64_t align) {
    static const char zero[64];
    while (b->n % align) put(b, zero, (size_t)(align - b->n % align) < sizeof zero ? (size_t)(align - b->n % align) : sizeof zero);
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int gw_write_e(GgufW *w, const char *path, uint32_t version, uint32_t alignment, Err *e) {
    uint64_t align = alignment ? alignment : 32;
    Buf b = { 0 };
    put(&b, "GGUF", 4);
    put_u32(&b, version);
    put_u64(&b, (uint64_t)w->n_t);
    put_u64(&b, (uint64_t)w->n_kv + (alignment ? 1 : 0));
    if (alignment) {
        put_str(&b, "general.alignment");
        put_u32(&b, GGUF_U32);
        put_u32(&b, alignment);
    }
    put(&b, w->kv.bytes, w->kv.n);
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        WT *t = &w->t[i];
        put_str(&b, t->name);
        put_u32(&b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&b, (uint64_t)t->ne[d]);
        put_u32(&b, (uint32_t)t->type);
        put_u64(&b, off);
        off += (t->nbytes + align - 1) / align * align;
    }
    pad(&b, align);

    char tmp[4096];
    int rc = 0;
    Err le = { "" };
    if (!e) e = &le;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        free(b.bytes);
        rc = err_set(e, "%s: path too long", path);
        goto out;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { free(b.bytes); rc = err_set(e, "%s: cannot create: %s", path, strerror(errno)); goto out; }
    static const char zero[64];
    int bad = write_all(fd, b.bytes, b.n);
    free(b.bytes);
    for (int64_t i = 0; i < w->n_t && !bad; i++) {
        size_t n = w->t[i].nbytes, padn = (size_t)((align - n % align) % align);
        bad = write_all(fd, w->t[i].data, n);
        while (!bad && padn) {
            size_t k = padn < sizeof zero ? padn : sizeof zero;
            bad = write_all(fd, zero, k);
            padn -= k;
        }
    }
    if (bad || fsync(fd) != 0) {
        int er = errno;
        close(fd);
        unlink(tmp);
        rc = err_set(e, "%s: write failed: %s", path, strerror(er));
        goto out;
    }
    if (close(fd) != 0) { int er = errno; unlink(tmp); rc = err_set(e, "%s: write failed: %s", path, strerror(er)); goto out; }
    if (rename(tmp, path) != 0) {
        int er = errno;
        unlink(tmp);
        rc = err_set(e, "%s: cannot rename into place: %s", path, strerror(er));
    }
out:
    if (rc && e == &le) fprintf(stderr, "gw_write: %s\n", le.msg);
    return rc;
}

int gw_write(GgufW *w, const char *path, uint32_t version, uint32_t alignment) {
    return gw_write_e(w, path, version, alignment, NULL);
}

/* ---- a loaded model as GGUF ------------------------------------------------------------ */
/* Dimension letters: D hidden, H heads, Hkv key/value heads, hd head size, E experts,
 * Dc kv_lora_rank, Dn qk_nope, Dr qk_rope, Dv v_head. A Mat is (rows, cols) row-major;
 * GGUF's ne lists cols first: ne = {cols, rows[, E or H]}. */

/* Hugging Face layer suffix -> GGUF layer suffix (router and experts apart) */
static const char *const HF2G[][2] = {
    { "input_layernorm.weight", "attn_norm.weight" }, { "post_attention_layernorm.weight", "ffn_norm.weight" },
    { "self_attn.q_proj.weight", "attn_q.weight" }, { "self_attn.q_proj.bias", "attn_q.bias" },
    { "self_attn.k_proj.weight", "attn_k.weight" }, { "self_attn.k_proj.bias", "attn_k.bias" },
    { "self_attn.v_proj.weight", "attn_v.weight" }, { "self_attn.v_proj.bias", "attn_v.bias" },
    { "self_attn.o_proj.weight", "attn_output.weight" }, { "self_attn.q_a_proj.weight", "attn_q_a.weight" },
    { "self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight" }, { "self_attn.q_b_proj.weight", "attn_q_b.weight" },
    { "self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight" },
    { "self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight" }, { "self_attn.kv_b_proj.weight", "attn_kv_b.weight" },
    { "mlp.gate_proj.weight", "ffn_gate.weight" }, { "mlp.up_proj.weight", "ffn_up.weight" },
    { "mlp.down_proj.weight", "ffn_down.weight" }, { "mlp.gate.weight", "ffn_gate_inp.weight" },
    { "block_sparse_moe.gate.weight", "ffn_gate_inp.weight" },
    { "mlp.gate.e_score_correction_bias", "exp_probs_b.bias" },
    { "mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight" },
    { "mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight" },
    { "mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight" },
};

const char *gguf_layer_suffix(const char *hf) {
    for (size_t q = 0; q < sizeof HF2G / sizeof *HF2G; q++)
        if (!strcmp(hf, HF2G[q][0])) return HF2G[q][1];
    return NULL;
}

typedef struct {
    const Model *m;
    GgufW *w;
    Err *e;
    const char *arch;
    void **tmp; int n_tmp, cap_tmp;   /* converted tensors, freed after the write */
    int noted_kb;
} Ex;

static void *ex_alloc(Ex *x, size_t n) {
    if (x->n_tmp == x->cap_tmp) {
        x->cap_tmp = x->cap_tmp ? 2 * x->cap_tmp : 64;
        x->tmp = xrealloc(x->tmp, sizeof *x->tmp * (size_t)x->cap_tmp);
    }
    return x->tmp[x->n_tmp++] = xmalloc(n ? n : 1);
}

static uint64_t row_bytes(const Mat *w) { return dtype_bytes(w->dt, w->cols); }

/* rows [r0, r0+n) of w as float32 (any stored type) */
static void rows_f32(const Mat *w, int64_t r0, int64_t n, float *dst) {
    if (dtype_block(w->dt) > 1) {
        const char *p = (const char *)w->data + (uint64_t)r0 * row_bytes(w);
        for (int64_t r = 0; r < n; r++) ggml_dequant(dtype_ggml(w->dt), p + (uint64_t)r * row_bytes(w), dst + r * w->cols, w->cols);
    } else {
        mat_rows_f32(w, r0, n, dst);
    }
}

/* A matrix in its own type; F8_E4M3 (no ggml type) widened to BF16. n3 > 1: the rows
 * of n3 matrices, {cols, rows, n3}. */
static void put_mat(Ex *x, const char *name, const Mat *w, int64_t n3, const void *data) {
    int64_t ne[3] = { w->cols, w->rows / n3, n3 };
    int nd = n3 > 1 ? 3 : w->rows > 1 ? 2 : 1;
    if (dtype_ggml(w->dt) >= 0) {
        gw_tensor_ref(x->w, name, dtype_ggml(w->dt), nd, ne, data, (size_t)row_bytes(w) * (size_t)w->rows);
        return;
    }
    uint16_t *b = ex_alloc(x, sizeof(uint16_t) * (size_t)(w->rows * w->cols));
    float *f = xmalloc(sizeof(float) * (size_t)w->cols);
    Mat src = *w;
    src.data = data;
    for (int64_t r = 0; r < w->rows; r++) {
        rows_f32(&src, r, 1, f);
        for (int64_t c = 0; c < w->cols; c++) b[r * w->cols + c] = f32_to_bf16(f[c]);
    }
    free(f);
    gw_tensor_ref(x->w, name, GGML_BF16, nd, ne, b, sizeof(uint16_t) * (size_t)(w->rows * w->cols));
}

/* convert_hf_to_gguf's LlamaModel.permute: per head, rows [first half | second half]
 * become interleaved pairs. Whole rows move, so block types are permuted as they are. */
static const void *permute_rows(Ex *x, const Mat *w, int heads) {
    int64_t hd = w->rows / heads, half = hd / 2;
    size_t rb = (size_t)row_bytes(w);
    char *t = ex_alloc(x, rb * (size_t)w->rows);
    const char *s = w->data;
    for (int64_t h = 0; h < heads; h++)
        for (int64_t p = 0; p < 2; p++)
            for (int64_t j = 0; j < half; j++)
                memcpy(t + (size_t)(h * hd + 2 * j + p) * rb, s + (size_t)(h * hd + p * half + j) * rb, rb);
    return t;
}

/* kv_b (H*(Dn+Dv), Dc), per head [W_UK (Dn rows) | W_UV (Dv rows)] -> attn_k_b
 * {Dn, Dc, H} (each W_UK transposed to (Dc, Dn)) and attn_v_b {Dc, Dv, H} (W_UV's rows
 * as they are). */
static int put_kv_b(Ex *x, int l, const Mat *kv) {
    const ModelConfig *c = &x->m->cfg;
    int64_t H = c->n_heads, Dn = c->qk_nope, Dv = c->v_head, Dc = c->kv_lora_rank;
    char n[96];
    if (kv->rows != H * (Dn + Dv) || kv->cols != Dc)
        return err_set(x->e, "layer %d: kv_b_proj is (%lld, %lld), expected (%lld, %lld)", l, (long long)kv->rows,
                       (long long)kv->cols, (long long)(H * (Dn + Dv)), (long long)Dc);
    /* v_b: rows copied, in kv_b's own type (F8_E4M3 widened by put_mat) */
    size_t rb = (size_t)row_bytes(kv);
    char *vb = ex_alloc(x, rb * (size_t)(H * Dv));
    for (int64_t h = 0; h < H; h++)
        memcpy(vb + (size_t)(h * Dv) * rb, (const char *)kv->data + (size_t)(h * (Dn + Dv) + Dn) * rb, rb * (size_t)Dv);
    Mat vm = *kv;
    vm.rows = H * Dv;
    vm.scale = NULL;
    if (kv->dt == DT_F8_E4M3) {          /* 128x128 block scales do not follow a row gather: widen first */
        float *f = xmalloc(sizeof(float) * (size_t)(H * Dv * Dc));
        for (int64_t h = 0; h < H; h++) rows_f32(kv, h * (Dn + Dv) + Dn, Dv, f + h * Dv * Dc);
        uint16_t *b = ex_alloc(x, sizeof(uint16_t) * (size_t)(H * Dv * Dc));
        for (int64_t i = 0; i < H * Dv * Dc; i++) b[i] = f32_to_bf16(f[i]);
        free(f);
        vm.dt = DT_BF16;
        vb = (char *)b;
    }
    /* k_b: the transpose, element by element for plain types; through float32 for block types */
    DType kt = kv->dt == DT_F8_E4M3 ? DT_BF16 : kv->dt;
    int blk = dtype_block(kt);
    if (blk > 1 && (Dn % blk || !ggml_type_encodable(dtype_ggml(kt)))) {
        DType fb = Dn % 32 == 0 && ggml_type_encodable(GGML_Q8_0) ? DT_Q8_0 : DT_F16;
        if (!x->noted_kb)
            fprintf(stderr, "effbench export-gguf: attn_k_b written as %s: its rows of %lld are not whole %s blocks\n",
                    dtype_name(fb), (long long)Dn, dtype_name(kt));
        x->noted_kb = 1;
        kt = fb;
        blk = dtype_block(kt);
    }
    size_t kb_row = (size_t)dtype_bytes(kt, Dn);
    char *kb = ex_alloc(x, kb_row * (size_t)(H * Dc));
    float *head = xmalloc(sizeof(float) * (size_t)(Dn * Dc)), *row = xmalloc(sizeof(float) * (size_t)Dn);
    for (int64_t h = 0; h < H; h++) {
        if (kt == kv->dt && blk == 1) {      /* plain: move elements, bit-exact */
            size_t es = dtype_size(kt);
            const char *src = (const char *)kv->data + (size_t)(h * (Dn + Dv)) * rb;
            for (int64_t a = 0; a < Dn; a++)
                for (int64_t cc = 0; cc < Dc; cc++)
                    memcpy(kb + (size_t)(h * Dc + cc) * kb_row + (size_t)a * es, src + (size_t)a * rb + (size_t)cc * es, es);
            continue;
        }
        rows_f32(kv, h * (Dn + Dv), Dn, head);                         /* (Dn, Dc) */
        for (int64_t cc = 0; cc < Dc; cc++) {
            for (int64_t a = 0; a < Dn; a++) row[a] = head[a * Dc + cc];
            char *dst = kb + (size_t)(h * Dc + cc) * kb_row;
            if (blk > 1) ggml_quant(dtype_ggml(kt), row, dst, Dn);
            else if (kt == DT_F32) memcpy(dst, row, sizeof(float) * (size_t)Dn);
            else for (int64_t a = 0; a < Dn; a++) {
                uint16_t v = kt == DT_BF16 ? f32_to_bf16(row[a]) : f32_to_f16(row[a]);
                memcpy(dst + 2 * a, &v, 2);
            }
        }
    }
    free(head);
    free(row);
    int64_t kne[3] = { Dn, Dc, H };
    snprintf(n, sizeof n, "blk.%d.attn_k_b.weight", l);
    gw_tensor_ref(x->w, n, dtype_ggml(kt), 3, kne, kb, kb_row * (size_t)(H * Dc));
    snprintf(n, sizeof n, "blk.%d.attn_v_b.weight", l);
    put_mat(x, n, &vm, H, vb);
    return 0;
}

/* Expert X's projection P of layer l, stacked over all experts. Binding order puts an
 * expert's gate, up and down together and experts in order, so expert X's matrix is 3*X
 * entries after expert 0's; the name is checked. */
static int put_experts(Ex *x, int l, int i0, const char *pre, const char *proj, const char *gname) {
    const Model *m = x->m;
    int E = m->cfg.n_routed;
    const Mat *w0 = &m->mats[i0].w;
    size_t bytes = (size_t)row_bytes(w0) * (size_t)w0->rows;
    if (w0->dt == DT_F8_E4M3) return err_set(x->e, "%s: F8_E4M3 experts cannot be exported (widen them first)", m->mats[i0].name);
    char *all = ex_alloc(x, bytes * (size_t)E);
    for (int e = 0; e < E; e++) {
        char want[256];
        snprintf(want, sizeof want, "%s.experts.%d.%s", pre, e, proj);
        const NamedMat *nm = i0 + 3 * e < m->n_mats ? &m->mats[i0 + 3 * e] : NULL;
        if (!nm || strcmp(nm->name, want)) {
            nm = NULL;
            for (int j = 0; j < m->n_mats && !nm; j++) if (!strcmp(m->mats[j].name, want)) nm = &m->mats[j];
        }
        if (!nm) return err_set(x->e, "layer %d: no weight \"%s\"", l, want);
        if (nm->w.dt != w0->dt || nm->w.rows != w0->rows || nm->w.cols != w0->cols)
            return err_set(x->e, "%s: %s (%lld, %lld), expert 0 has %s (%lld, %lld)", want, dtype_name(nm->w.dt),
                           (long long)nm->w.rows, (long long)nm->w.cols, dtype_name(w0->dt), (long long)w0->rows, (long long)w0->cols);
        memcpy(all + bytes * (size_t)e, nm->w.data, bytes);
    }
    Mat st = *w0;
    st.rows = w0->rows * E;
    char n[96];
    snprintf(n, sizeof n, "blk.%d.%s", l, gname);
    put_mat(x, n, &st, E, all);
    return 0;
}

static void put_metadata(Ex *x) {
    const ModelConfig *c = &x->m->cfg;
    GgufW *w = x->w;
    const char *a = x->arch;
    int ds = c->is_mla;
    char k[160];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    gw_str(w, "general.architecture", a);
    const char *base = strrchr(x->m->path, '/');
    gw_str(w, "general.name", base && base[1] ? base + 1 : x->m->path);
    gw_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
    gw_u32(w, KEY("context_length"), (uint32_t)c->max_pos);
    gw_u32(w, KEY("embedding_length"), (uint32_t)c->dim);
    gw_u32(w, KEY("feed_forward_length"), (uint32_t)c->inter);
    gw_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads);
    gw_u32(w, KEY("attention.head_count_kv"), ds ? 1u : (uint32_t)c->n_kv_heads);
    gw_f32(w, KEY("rope.freq_base"), (float)c->rope_theta);
    gw_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->rms_eps);
    gw_u32(w, KEY("vocab_size"), (uint32_t)c->vocab);
    gw_u32(w, KEY("rope.dimension_count"), (uint32_t)config_rope_dim(c));
    if (c->n_routed) {
        gw_u32(w, KEY("expert_count"), (uint32_t)c->n_routed);
        gw_u32(w, KEY("expert_used_count"), (uint32_t)c->top_k);
    }
    if (!ds && c->n_heads && c->head_dim != c->dim / c->n_heads) {
        gw_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
        gw_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
    }
    if (ds) {
        gw_u32(w, KEY("leading_dense_block_count"), (uint32_t)(c->n_routed ? c->first_k_dense : c->n_layers));
        gw_u32(w, KEY("attention.q_lora_rank"), (uint32_t)c->q_lora_rank);
        gw_u32(w, KEY("attention.kv_lora_rank"), (uint32_t)c->kv_lora_rank);
        gw_u32(w, KEY("attention.key_length"), (uint32_t)(c->kv_lora_rank + c->qk_rope));
        gw_u32(w, KEY("attention.value_length"), (uint32_t)c->kv_lora_rank);
        gw_u32(w, KEY("attention.key_length_mla"), (uint32_t)(c->qk_nope + c->qk_rope));
        gw_u32(w, KEY("attention.value_length_mla"), (uint32_t)c->v_head);
        if (c->n_routed) {
            gw_u32(w, KEY("expert_feed_forward_length"), (uint32_t)c->moe_inter);
            gw_u32(w, KEY("expert_shared_count"), (uint32_t)c->n_shared);
            gw_f32(w, KEY("expert_weights_scale"), c->routed_scale);
            gw_bool(w, KEY("expert_weights_norm"), c->norm_topk_prob);
            gw_u32(w, KEY("expert_gating_func"), c->score == SCORE_SIGMOID ? 2u : 1u);
            gw_u32(w, KEY("expert_group_count"), (uint32_t)(c->n_group ? c->n_group : 1));
            gw_u32(w, KEY("expert_group_used_count"), (uint32_t)(c->topk_group ? c->topk_group : 1));
        }
        if (c->rope_scaling == ROPE_YARN) {
            gw_str(w, KEY("rope.scaling.type"), "yarn");
            gw_f32(w, KEY("rope.scaling.factor"), (float)c->rope_factor);
            gw_u32(w, KEY("rope.scaling.original_context_length"), (uint32_t)c->rope_orig_max);
            gw_f32(w, KEY("rope.scaling.yarn_beta_fast"), (float)c->beta_fast);
            gw_f32(w, KEY("rope.scaling.yarn_beta_slow"), (float)c->beta_slow);
            if (c->mscale_all_dim != 0) gw_f32(w, KEY("rope.scaling.yarn_log_multiplier"), (float)(0.1 * c->mscale_all_dim));
        }
    }
#undef KEY
    gw_str(w, "tokenizer.ggml.model", "none");
    gw_u32(w, "general.quantization_version", 2);
}

/* llama: the model's RoPE frequencies against plain ones, as llama.cpp's rope_freqs
 * divisors (llama3 scaling from a config, or factors read from a GGUF). */
static void put_rope_freqs(Ex *x) {
    const Model *m = x->m;
    ModelConfig plain = m->cfg;
    plain.rope_scaling = ROPE_PLAIN;
    int half = config_rope_dim(&plain) / 2, any = 0;
    float *f = ex_alloc(x, sizeof(float) * (size_t)half);
    config_rope_inv_freq(&plain, f);
    for (int i = 0; i < half; i++) {
        f[i] = (float)((double)f[i] / (double)m->inv_freq[i]);
        if (fabsf(f[i] - 1.0f) > 1e-6f) any = 1;
    }
    int64_t ne = half;
    if (any) gw_tensor_ref(x->w, "rope_freqs.weight", GGML_F32, 1, &ne, f, sizeof(float) * (size_t)half);
}

int gguf_export(const Model *m, const char *path, Err *e) {
    const ModelConfig *c = &m->cfg;
    if (!m->n_mats) return err_set(e, "%s: the model has no weights to export (shapes only?)", m->path);
    Ex x = { m, gw_new(), e, c->is_mla ? "deepseek2" : c->arch == ARCH_QWEN2 ? "qwen2" : "llama", NULL, 0, 0, 0 };
    int rc = 0, llama = !c->is_mla && c->arch != ARCH_QWEN2;
    if (llama && c->rope_scaling == ROPE_YARN) {
        rc = err_set(e, "%s: yarn RoPE scaling on a llama-family model has no GGUF form llama.cpp and effbench share", m->path);
        goto out;
    }
    put_metadata(&x);
    if (llama) put_rope_freqs(&x);
    char gn[160];
    for (int i = 0; i < m->n_mats && !rc; i++) {
        const NamedMat *nm = &m->mats[i];
        const Mat *w = &nm->w;
        int l, n = 0, xe;
        if (!strcmp(nm->name, "model.embed_tokens.weight")) { put_mat(&x, "token_embd.weight", w, 1, w->data); continue; }
        if (!strcmp(nm->name, "model.norm.weight")) { put_mat(&x, "output_norm.weight", w, 1, w->data); continue; }
        if (!strcmp(nm->name, "lm_head.weight")) { put_mat(&x, "output.weight", w, 1, w->data); continue; }
        if (sscanf(nm->name, "model.layers.%d.%n", &l, &n) != 1 || !n) { rc = err_set(e, "%s: no GGUF name for it", nm->name); break; }
        const char *rest = nm->name + n;
        const char *ex = strstr(rest, ".experts.");
        if (ex && strncmp(rest, "mlp.shared_experts.", 19)) {
            char proj[64], pre[128];
            if (sscanf(ex, ".experts.%d.%63s", &xe, proj) != 2) { rc = err_set(e, "%s: no GGUF name for it", nm->name); break; }
            if (xe != 0) continue;                                     /* stacked with expert 0 */
            const char *g = !strcmp(proj, "w1.weight") || !strcmp(proj, "gate_proj.weight") ? "ffn_gate_exps.weight"
                          : !strcmp(proj, "w3.weight") || !strcmp(proj, "up_proj.weight") ? "ffn_up_exps.weight"
                          : !strcmp(proj, "w2.weight") || !strcmp(proj, "down_proj.weight") ? "ffn_down_exps.weight" : NULL;
            if (!g) { rc = err_set(e, "%s: no GGUF name for it", nm->name); break; }
            snprintf(pre, sizeof pre, "%.*s", (int)(ex - nm->name), nm->name);
            rc = put_experts(&x, l, i, pre, proj, g);
            continue;
        }
        const char *g = gguf_layer_suffix(rest);
        if (!g) { rc = err_set(e, "%s: no GGUF name for it", nm->name); break; }
        if (c->is_mla && !strcmp(g, "attn_kv_b.weight")) { rc = put_kv_b(&x, l, w); continue; }
        snprintf(gn, sizeof gn, "blk.%d.%s", l, g);
        const void *data = w->data;
        if (llama && !strcmp(g, "attn_q.weight")) data = permute_rows(&x, w, c->n_heads);
        if (llama && !strcmp(g, "attn_k.weight")) data = permute_rows(&x, w, c->n_kv_heads);
        if (w->dt == DT_F8_E4M3 && data != w->data) {   /* block scales do not follow permuted rows */
            rc = err_set(e, "%s: F8_E4M3 Q/K rows cannot be permuted; load with another --dtype", nm->name);
            break;
        }
        put_mat(&x, gn, w, 1, data);
    }
    if (!rc) rc = gw_write_e(x.w, path, 3, 0, e);
out:
    gw_free(x.w);
    for (int i = 0; i < x.n_tmp; i++) free(x.tmp[i]);
    free(x.tmp);
    return rc;
}
