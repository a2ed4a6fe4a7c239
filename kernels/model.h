/*
 * model.h - a loaded model: its config, its weights (mmapped from safetensors or
 * seeded dummy values) and the forward pass over a KV cache.
 *
 * Ownership: model_load fills a Model that model_free releases; kv_create/kv_free
 * likewise. Nothing here prints; errors come back in an Err.
 */
#ifndef EFFBENCH_MODEL_H
#define EFFBENCH_MODEL_H

#include "config.h"
#include "comm.h"
#include "layout.h"
#include "gguf.h"
#include "ops.h"
#include "safetensors.h"

typedef struct {
    Mat gate, up, down;          /* (I, D), (I, D), (D, I) */
} Mlp;

/* the names gguf_model.c gives a GGUF's attn_k_b and attn_v_b, as stored, under a
 * layer's prefix (beside the kv_b_proj it joins from them) */
#define MLA_UK_T "self_attn.kv_b_proj.uk_t"
#define MLA_UV "self_attn.kv_b_proj.uv"

typedef struct {
    /* MLA */
    Mat q;                       /* (H*(Dn+Dr), D), when q_lora_rank = 0 */
    Mat q_a;                     /* (q_lora_rank, D) */
    float *q_a_norm;             /* (q_lora_rank) */
    Mat q_b;                     /* (H*(Dn+Dr), q_lora_rank) */
    Mat kv_a;                    /* (Dc+Dr, D): [latent | k_pe] */
    float *kv_a_norm;            /* (Dc) */
    Mat kv_b;                    /* (H*(Dn+Dv), Dc): per head [W_UK (Dn rows) | W_UV (Dv rows)] */
    const float *kv_b_f32;       /* kv_b in float32 (the checkpoint's own when F32), made at
                                    load only for what needs it: naive MLA, and the absorbed
                                    q product of a layer without uk_t */
    Mat uk_t;                    /* (H*Dc, Dn): per head W_UK transposed, in a stored type, so
                                    the absorbed q product is a product of rows: a GGUF's
                                    attn_k_b as stored, or kv_b's transpose made at load (F32,
                                    BF16, F16, F8_E4M3: element moves, exact). data NULL when
                                    neither (kv_b in a block type outside a GGUF) */
    Mat uv;                      /* W_UV as stored, head h's Dv rows of Dc at row h*uv_head +
                                    uv_off: a GGUF's attn_v_b (uv_head Dv, uv_off 0), else kv_b
                                    itself (Dn+Dv, Dn) */
    int64_t uv_head, uv_off;
    /* dense */
    Mat k, v;                    /* (Hkv*hd, D) */
    float *bq, *bk, *bv;         /* qwen2 biases, or NULL */
    Mat o;                       /* (D, H*Dv) or (D, H*hd) */
} Attn;

typedef struct {
    Mat router;                  /* (E, D) */
    float *bias;                 /* (E) e_score_correction_bias, or NULL */
    Mlp *experts;                /* (E) */
    int has_shared;
    Mlp shared;                  /* (n_shared*moe_inter, D) ... */
} Moe;

typedef struct {
    float *attn_norm, *ffn_norm; /* (D) */
    Attn attn;
    int is_moe;
    Mlp mlp;
    Moe moe;
} Layer;

typedef struct {
    DType dtype;                 /* dummy weights: their dtype */
    int layers;                  /* dummy weights: keep only the first N layers (0 = all) */
    uint64_t seed;               /* dummy weights: seed */
    int dummy;                   /* path is a config.json (or a dir holding one); no weights read */
    int recode;                  /* a checkpoint's matrices re-encoded to dtype at load (as dummies are) */
    int naive_mla;               /* expanded-K/V MLA instead of the absorbed latent path */
    DType kv_dtype;              /* the KV cache kv_create makes: DT_F32 (0, default), DT_BF16, DT_F8_E4M3 */
    int shapes_only;             /* dummy: shapes and counts only, no weights (no forward) */
    const char *config_text;     /* dummy: this config.json text instead of the file at path */
    int ranks, rank;             /* split over ranks (layout.h): this rank of ranks (0 or 1: whole) */
    int tp, ep;                  /* the layout's degrees; 0 = the default for the model */
    int mmap;                    /* checkpoint weights read in place from the file's mapping (4 KiB
                                    pages), not copied into huge pages at load */
} LoadOpts;

/* A bound weight under its Hugging Face name (vectors: rows 1, F32, owned by the model). */
typedef struct {
    char name[96];
    Mat w;
} NamedMat;

/* Every buffer of a forward step in one allocation, kept between steps (forward.c). */
typedef struct StepWork StepWork;

/* Where a step's time goes: each op kind's seconds, the bytes it read (weights as
 * stored, the KV cache) and its FLOPs, summed over the steps run while Model.ops is set. */
enum {
    OPK_EMBED, OPK_NORM, OPK_QKV, OPK_ATTN, OPK_O, OPK_ROUTER, OPK_EXPERTS, OPK_SHARED, OPK_MLP, OPK_RESID, OPK_HEAD,
    OPK_COMM,                    /* split over ranks: time inside the collectives (Model.comm) */
    OPK_COUNT
};
typedef struct {
    double sec[OPK_COUNT], bytes[OPK_COUNT], flops[OPK_COUNT];
    int64_t steps;
} OpStats;
const char *opk_name(int k);     /* "attention", "routed experts", ... */

typedef struct {
    ModelConfig cfg;
    LoadOpts opts;
    char path[1024];
    Mat embed;                   /* (V, D) */
    Mat lm_head;                 /* (V, D); the embedding when tied */
    float *norm;                 /* (D) */
    Layer *layers;               /* (L) */
    float *inv_freq;             /* (rope_dim/2) */
    float rope_mscale, attn_scale;
    StSet st;                    /* the mapped checkpoint, when not dummy (a GGUF's tensors under HF names) */
    Gguf gguf;                   /* a GGUF file: holds the mapping st points into */
    int from_gguf;
    char stored[16];             /* how the bulk of the weights is stored: "BF16", "Q4_1", ... */
    void **owned; int n_owned, cap_owned;   /* converted vectors and dummy tensors */
    uint64_t weight_bytes;       /* bytes of all weights as stored */
    uint64_t derived_bytes;      /* made at load: kv_b_f32 copies (or a GGUF kv_b joined in float32), uk_t */
    uint64_t file_bytes;         /* a GGUF's tensor bytes as stored (0 otherwise) */
    uint64_t copied_bytes;       /* weights copied out of the mapping into huge pages at load */
    double copy_sec;             /* the binding that copied them, seconds */
    int copy_skipped;            /* not copied: more than 70% of the memory available */
    float *scratch;              /* linear() scratch for the widest weight; one forward at a time */
    OpStats *ops;                /* when set, forward adds each op's time and bytes to it */
    StepWork *work;              /* the forward step's buffers (forward.c), made by the first step,
                                    grown by a larger one; NULL before */
    uint64_t n_params;           /* all weights (main model) */
    DType wdtype;                /* dtype of the largest weights (for reports) */
    NamedMat *mats; int n_mats;  /* every weight bound, in binding order (export, tests) */
    Shard sh;                    /* this rank's share (sh.n = 1: the whole model); weights,
                                    work area and KV cache hold only that share */
    Comm *comm;                  /* the ranks' group when sh.n > 1 (set by the caller after
                                    model_load; not owned) */
} Model;

/* Bytes of kv_b one step reads: absorbed, uk_t (or the float32 W_UK) and W_UV as they
 * are read; naive, the float32 kv_b. */
uint64_t mla_absorb_bytes(const Model *m, const Attn *a);

/* Loads path: a checkpoint dir, a .gguf file, or (dummy) a config or .gguf whose shapes are used. Refuses, before allocating, a
 * dummy model whose weights do not fit in available memory. */
int model_load(Model *m, const char *path, const LoadOpts *o, Err *e);
void model_free(Model *m);
/* m frees p with the model. */
void model_own(Model *m, void *p);
/* nb bytes for weights: 2 MiB-aligned and advised as huge pages where the kernel allows
 * (decode streams them; 4 KiB pages cost TLB misses and stop the prefetchers at every page) */
void *model_alloc_weights(uint64_t nb);

/* ---- KV cache ----------------------------------------------------------------------- */
/* Rows of `row` elements, one per (layer, sequence, position), stored as
 *   F32:      the float32 values;
 *   BF16:     round-to-nearest-even bfloat16;
 *   F8_E4M3:  E4M3 codes with one float32 scale per 128 elements of the row
 *             (amax/448 of the block, codes rounded to nearest even), so a row decodes
 *             exactly as qdot_widen(DT_F8_E4M3, codes, scales, row, dst).
 * Every write goes through kv_store; attention() reads the codes (ops.h AttnArgs). */
typedef struct {
    int n_layers, n_seq, max_pos;
    int row;                     /* elements per token per layer */
    DType dt;                    /* DT_F32, DT_BF16 or DT_F8_E4M3 */
    int n_scales;                /* F8_E4M3: ceil(row/128) scales per row; 0 otherwise */
    void *data;                  /* (L, n_seq, max_pos, row) elements of dt */
    float *scales;               /* F8_E4M3: (L, n_seq, max_pos, n_scales); NULL otherwise */
    int *len;                    /* (n_seq) positions filled */
} KVCache;

/* Elements per token per layer the model's cache holds:
 * MLA absorbed: Dc + Dr (the normalised latent and the rotary key);
 * MLA naive: H*(Dn+Dr) + H*Dv; dense: 2 * Hkv * hd. */
int kv_row_floats(const Model *m);
/* Bytes one cached row of n elements takes in dt: codes, and F8_E4M3's scales. */
uint64_t kv_row_bytes(DType dt, int n);
/* Allocates a cache of the model's kv_dtype (LoadOpts) for n_seq sequences of max_pos
 * positions; refuses if it does not fit in available memory, naming both figures.
 * kv_create_as takes the element type (DT_F32, DT_BF16, DT_F8_E4M3) explicitly. */
int kv_create(KVCache *kv, const Model *m, int n_seq, int max_pos, Err *e);
int kv_create_as(KVCache *kv, const Model *m, int n_seq, int max_pos, DType dt, Err *e);
void kv_free(KVCache *kv);
uint64_t kv_bytes_per_token(const KVCache *kv);   /* from the allocation: L * kv_row_bytes(dt, row) */
/* Encodes src (row floats) into the row of (layer, seq, pos). */
void kv_store(KVCache *kv, int layer, int seq, int pos, const float *src);
/* Decodes the row of (layer, seq, pos) into dst (row floats). */
void kv_load(const KVCache *kv, int layer, int seq, int pos, float *dst);
/* The codes and (F8_E4M3) scales of the row of (layer, seq, pos). */
void *kv_codes(const KVCache *kv, int layer, int seq, int pos);
float *kv_scales(const KVCache *kv, int layer, int seq, int pos);
/* Copies n rows of every layer from (seq src, position ps) to (seq dst, position pd). */
void kv_copy_rows(KVCache *kv, int dst, int pd, int src, int ps, int n);
/* "F32", "BF16", "F8_E4M3" and the parse of f32|bf16|fp8 for --kv-dtype: 0 or -1. */
int kv_dtype_parse(const char *s, DType *dt);

/* ---- forward ------------------------------------------------------------------------ */
/* One step over n tokens, each of sequence seq[i] at position pos[i]. A sequence's
 * tokens must come in order, each at most one past what its cache holds (so prefill,
 * chunked prefill from any position, decode and mixed batches all work).
 * logits: (number of rows wanted, V); want[i] != 0 selects token i (want NULL: all).
 * trace (optional): hidden states and routing, for tests. */
typedef struct {
    float *hidden;               /* (L+1, n, D): embeddings, then residual after each block */
    int *experts;                /* (L, n, K): routed experts, -1 on dense layers */
    float *weights;              /* (L, n, K) */
} Trace;

/* Checks a batch against a cache of n_seq sequences, max_pos positions and fill len
 * (updated to the fill after the batch): tokens in the vocabulary, positions in order.
 * 0, or -1 with the first problem in e. */
int forward_check_batch(const ModelConfig *c, int n_seq, int max_pos, int *len, int n, const int *tok, const int *seq,
                        const int *pos, Err *e);

/* The routing parameters of the model's MoE layers (route.h) */
void route_params(const ModelConfig *c, RouteParams *p);

/* A step allocates nothing when the model's work area already holds its shape (no more
 * tokens, cache positions and sequences, threads than an earlier step); otherwise it
 * grows the area once, refusing with e set when that exceeds the memory available. */
int model_forward(Model *m, KVCache *kv, int n, const int *tok, const int *seq, const int *pos,
                  const unsigned char *want, float *logits, Trace *trace, Err *e);
/* Releases the forward step's work area; the next step makes a fresh one. model_free
 * calls it. */
void model_work_free(Model *m);

#endif
