/*
 * comm.h - the collectives a model split over ranks needs, behind one interface.
 *
 * A Comm is a group of `size` ranks; this process is `rank`. Two implementations:
 *   MPI  (kernels/comm_mpi.c, built when mpicc is found): CPU ranks, host buffers;
 *   NCCL (kernels/cuda/comm_nccl.c, built with the CUDA backend when NCCL is found):
 *        GPU ranks, device buffers, on the engine's stream.
 * A one-rank Comm (comm_self) needs neither: every collective is a copy or nothing.
 * The forward step and the runner call only the comm_* functions below and never
 * learn which implementation is underneath.
 *
 * Counting. Each call adds to Comm.st, under the kind the caller names, the bytes this
 * rank sent and received by these conventions (those of NCCL's performance notes, the
 * algorithm-independent volume of each collective; the implementation's own routes may
 * differ):
 *   all-reduce of S bytes:           sent = received = 2 S (N-1)/N   (a ring)
 *   all-gather, rank i gives S_i:    sent = S_self (N-1), received = sum of the others' S_i
 *   all-to-all with counts:          sent = sum of the counts to other ranks, received
 *                                    likewise; a rank's rows to itself are not counted
 * and the seconds spent inside the call (waiting on the others included).
 * layout_predict (kernels/layout.h) predicts the same bytes from the config and the layout.
 *
 * Failure. Every wait has a deadline (Comm.timeout seconds, EFFBENCH_COMM_TIMEOUT,
 * default 300): a rank that died or stopped answering ends the whole run with one line
 * naming the rank and the collective, never a hang. comm_agree lets the ranks decide
 * together whether to go on after a step that may fail on some of them (loading a
 * slice): the failing rank prints its own reason, the others stop quietly.
 */
#ifndef EFFBENCH_COMM_H
#define EFFBENCH_COMM_H

#include "common.h"

/* what a transfer is for: the report's rows */
typedef enum {
    CK_ATTN,                     /* attention output all-reduce (tensor parallel) */
    CK_FFN,                      /* dense FFN / TP experts all-reduce */
    CK_DISPATCH,                 /* MoE: token rows to their experts' ranks */
    CK_COMBINE,                  /* MoE: expert outputs back to the tokens' ranks */
    CK_GATHER,                   /* MoE: every rank's tokens' outputs to all ranks */
    CK_HEAD,                     /* lm_head: vocabulary slices of the logits */
    CK_CONTROL,                  /* agreement, broadcasts of results and counts */
    CK_COUNT
} CommKind;
const char *comm_kind_name(int k);   /* "attention all-reduce", ... */

typedef struct {
    double sent[CK_COUNT], recv[CK_COUNT];   /* bytes, by the conventions above */
    double sec[CK_COUNT];                    /* seconds inside the calls */
    int64_t calls[CK_COUNT];
} CommStats;

typedef struct Comm Comm;
typedef struct {
    const char *name;            /* "mpi", "nccl", "self" */
    /* each returns 0, or -1 with e set (a timeout names the rank it waited for) */
    int (*allreduce_f32)(Comm *c, float *buf, size_t n, Err *e);                 /* sum, in place */
    int (*allgatherv)(Comm *c, const void *send, void *recv, const size_t *bytes, Err *e);
    int (*alltoallv)(Comm *c, const void *send, const size_t *sbytes, void *recv, const size_t *rbytes, Err *e);
    int (*allreduce_i64)(Comm *c, int64_t *buf, size_t n, int max, Err *e);     /* sum, or max */
    int (*bcast)(Comm *c, void *buf, size_t bytes, int root, Err *e);
    void (*abort)(Comm *c, int code);                                            /* every rank exits */
    void (*close)(Comm *c);
} CommOps;

struct Comm {
    int rank, size;
    double timeout;              /* seconds any wait may take */
    const CommOps *ops;
    void *impl;
    CommStats st;
    void *stream;                /* NCCL: the cudaStream_t collectives are queued on */
};

/* The process's group: MPI's world when launched by mpirun or srun (and built with
 * MPI), else one rank. Never NULL; 0 from *c, or -1 with e set. */
int comm_open_world(Comm **c, int *argc, char ***argv, Err *e);
/* a one-rank group (tests, cells run apart) */
Comm *comm_self(void);
/* MPI's world (comm_mpi.c; without MPI: -1 and e says so) */
int comm_mpi_open(Comm **c, int *argc, char ***argv, Err *e);
int comm_mpi_available(void);
/* The NCCL group of the same ranks, bootstrapped over host (an MPI group)
 * (kernels/cuda/comm_nccl.c; without NCCL or MPI: -1 and e says which is missing). */
int comm_nccl_open(Comm **c, Comm *host, Err *e);
int comm_nccl_available(void);
/* launched by mpirun/srun: the environment names a rank count above one */
int comm_launched_ranks(void);
/* this rank's index among the ranks of its host (mpirun's or srun's local rank), for
 * choosing its GPU; the global rank when the launcher does not say */
int comm_local_rank(const Comm *c);
void comm_close(Comm *c);

/* The collectives, counted under kind k. Buffers: host for MPI and self, device for
 * NCCL. allgatherv: rank i gives bytes[i] bytes, recv holds them in rank order.
 * alltoallv: sbytes[j] bytes to rank j from send in rank order; rbytes[j] from rank j
 * into recv in rank order (each rank knows what it will receive). */
int comm_allreduce(Comm *c, int k, float *buf, size_t n, Err *e);
int comm_allgatherv(Comm *c, int k, const void *send, void *recv, const size_t *bytes, Err *e);
int comm_alltoallv(Comm *c, int k, const void *send, const size_t *sbytes, void *recv, const size_t *rbytes, Err *e);
int comm_bcast(Comm *c, void *buf, size_t bytes, int root, Err *e);
int comm_sum_i64(Comm *c, int64_t *buf, size_t n, Err *e);
int comm_max_i64(Comm *c, int64_t *buf, size_t n, Err *e);
/* Each rank says whether it failed (rc != 0): returns the number of ranks that did
 * (0 = all went on), or -1 when the agreement itself failed. */
int comm_agree(Comm *c, int rc, Err *e);
/* Ends every rank with code (after a failure only some ranks saw). */
void comm_abort(Comm *c, int code);

/* the byte conventions above, for layout_predict */
double comm_allreduce_bytes(double bytes, int n);            /* per rank, each way */

#endif
