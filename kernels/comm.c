/*
 * comm.c - the counting layer over a Comm's implementation, and the one-rank group.
 * The MPI group lives in comm_mpi.c; the NCCL one in kernels/cuda/comm_nccl.c.
 */
#include "comm.h"

#include <stdio.h>
#include <stdlib.h>

const char *comm_kind_name(int k) {
    static const char *names[CK_COUNT] = {
        "attention all-reduce", "FFN all-reduce", "MoE dispatch", "MoE combine", "MoE gather", "lm_head gather", "control",
    };
    return k >= 0 && k < CK_COUNT ? names[k] : "?";
}

double comm_allreduce_bytes(double bytes, int n) { return n > 1 ? 2.0 * bytes * (n - 1) / n : 0; }

/* ---- one rank ----------------------------------------------------------------------- */
static int self_allreduce(Comm *c, float *buf, size_t n, Err *e) { (void)c; (void)buf; (void)n; (void)e; return 0; }
static int self_allgatherv(Comm *c, const void *send, void *recv, const size_t *bytes, Err *e) {
    (void)c; (void)e;
    if (recv != send) memmove(recv, send, bytes[0]);
    return 0;
}
static int self_alltoallv(Comm *c, const void *send, const size_t *sb, void *recv, const size_t *rb, Err *e) {
    (void)c;
    if (sb[0] != rb[0]) return err_set(e, "all-to-all: rank 0 sends itself %zu bytes but expects %zu", sb[0], rb[0]);
    if (recv != send) memmove(recv, send, sb[0]);
    return 0;
}
static int self_i64(Comm *c, int64_t *buf, size_t n, int max, Err *e) { (void)c; (void)buf; (void)n; (void)max; (void)e; return 0; }
static int self_bcast(Comm *c, void *buf, size_t bytes, int root, Err *e) { (void)c; (void)buf; (void)bytes; (void)root; (void)e; return 0; }
static void self_abort(Comm *c, int code) { (void)c; exit(code); }
static void self_close(Comm *c) { (void)c; }

static const CommOps self_ops = {
    "self", self_allreduce, self_allgatherv, self_alltoallv, self_i64, self_bcast, self_abort, self_close,
};

Comm *comm_self(void) {
    Comm *c = xcalloc(1, sizeof *c);
    c->rank = 0;
    c->size = 1;
    c->timeout = 300;
    c->ops = &self_ops;
    return c;
}

int comm_launched_ranks(void) {
    /* set by the launcher for each rank it starts (not SLURM_NTASKS: an allocation's) */
    const char *vars[] = { "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE" };
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1) return atoi(v);
    }
    /* started by mpirun at all (even one rank) */
    if (getenv("OMPI_COMM_WORLD_RANK") || getenv("PMIX_RANK")) return 1;
    return 0;
}

int comm_local_rank(const Comm *c) {
    const char *vars[] = { "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK" };
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return c ? c->rank : 0;
}

int comm_open_world(Comm **c, int *argc, char ***argv, Err *e) {
    *c = NULL;
    if (comm_launched_ranks() >= 1) {
        if (!comm_mpi_available()) {
            if (comm_launched_ranks() > 1)
                return err_set(e, "started as %d ranks, but this effbench was built without MPI "
                                  "(install libopenmpi-dev and rebuild)", comm_launched_ranks());
        } else if (comm_mpi_open(c, argc, argv, e)) return -1;
    }
    if (!*c) *c = comm_self();
    const char *t = getenv("EFFBENCH_COMM_TIMEOUT");
    if (t && atof(t) > 0) (*c)->timeout = atof(t);
    return 0;
}

void comm_close(Comm *c) {
    if (!c) return;
    c->ops->close(c);
    free(c);
}

/* ---- counted calls ------------------------------------------------------------------ */
static void count(Comm *c, int k, double sent, double recv, double t0) {
    c->st.sent[k] += sent;
    c->st.recv[k] += recv;
    c->st.sec[k] += now_sec() - t0;
    c->st.calls[k]++;
}

int comm_allreduce(Comm *c, int k, float *buf, size_t n, Err *e) {
    if (c->size == 1) return 0;
    double t0 = now_sec();
    int rc = c->ops->allreduce_f32(c, buf, n, e);
    double b = comm_allreduce_bytes((double)n * sizeof(float), c->size);
    count(c, k, b, b, t0);
    return rc;
}

int comm_allgatherv(Comm *c, int k, const void *send, void *recv, const size_t *bytes, Err *e) {
    double t0 = now_sec();
    int rc = c->ops->allgatherv(c, send, recv, bytes, e);
    double others = 0;
    for (int i = 0; i < c->size; i++) if (i != c->rank) others += (double)bytes[i];
    count(c, k, (double)bytes[c->rank] * (c->size - 1), others, t0);
    return rc;
}

int comm_alltoallv(Comm *c, int k, const void *send, const size_t *sbytes, void *recv, const size_t *rbytes, Err *e) {
    double t0 = now_sec();
    int rc = c->ops->alltoallv(c, send, sbytes, recv, rbytes, e);
    double s = 0, r = 0;
    for (int i = 0; i < c->size; i++)
        if (i != c->rank) { s += (double)sbytes[i]; r += (double)rbytes[i]; }
    count(c, k, s, r, t0);
    return rc;
}

int comm_bcast(Comm *c, void *buf, size_t bytes, int root, Err *e) {
    if (c->size == 1) return 0;
    double t0 = now_sec();
    int rc = c->ops->bcast(c, buf, bytes, root, e);
    count(c, CK_CONTROL, c->rank == root ? (double)bytes * (c->size - 1) : 0, c->rank == root ? 0 : (double)bytes, t0);
    return rc;
}

static int reduce_i64(Comm *c, int64_t *buf, size_t n, int max, Err *e) {
    if (c->size == 1) return 0;
    double t0 = now_sec();
    int rc = c->ops->allreduce_i64(c, buf, n, max, e);
    double b = comm_allreduce_bytes((double)n * 8, c->size);
    count(c, CK_CONTROL, b, b, t0);
    return rc;
}
int comm_sum_i64(Comm *c, int64_t *buf, size_t n, Err *e) { return reduce_i64(c, buf, n, 0, e); }
int comm_max_i64(Comm *c, int64_t *buf, size_t n, Err *e) { return reduce_i64(c, buf, n, 1, e); }

int comm_agree(Comm *c, int rc, Err *e) {
    int64_t bad = rc != 0;
    if (comm_sum_i64(c, &bad, 1, e)) return -1;
    return (int)bad;
}

void comm_abort(Comm *c, int code) {
    fflush(stdout);
    fflush(stderr);
    c->ops->abort(c, code);
    exit(code);
}
