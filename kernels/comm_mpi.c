/*
 * comm_mpi.c - the MPI group (Open MPI): CPU ranks started by mpirun or srun, host
 * buffers. Built when mpicc is found (EFFBENCH_MPI); otherwise the entry points say
 * that MPI is missing.
 *
 * Every collective is started non-blocking (MPI_Iallreduce, MPI_Iallgatherv,
 * MPI_Ialltoallv, ...) and completed by polling MPI_Test against the Comm's deadline:
 * a rank that died or hangs turns into one error line, never a wait without end; the
 * request is kept, and closing the group aborts every rank (MPI_Abort) when it is still
 * incomplete, since MPI_Finalize would wait for it. Polling sleeps 20 us between tests once the first spins fail, so ranks
 * oversubscribing a machine's cores leave them to the ranks that compute.
 * Threads: MPI is called from the main thread only (MPI_THREAD_FUNNELED); OpenMP
 * regions never communicate.
 */
#include "comm.h"

#ifdef EFFBENCH_MPI
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int comm_mpi_available(void) { return 1; }

#define MAX_LEFT 16
typedef struct {
    MPI_Comm comm;
    int *cnt, *dsp, *rcnt, *rdsp;   /* (size) counts and displacements in bytes */
    MPI_Request left[MAX_LEFT];     /* collectives whose wait ran out (a late rank may yet complete them) */
    int n_left;
} Mpi;

static int wait_for(Comm *c, MPI_Request *rq, const char *what, Err *e) {
    double t0 = now_sec();
    for (long spin = 0;; spin++) {
        int done = 0;
        MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (done) return 0;
        if (now_sec() - t0 > c->timeout) {
            Mpi *m = c->impl;
            if (m->n_left < MAX_LEFT) m->left[m->n_left++] = *rq;
            return err_set(e, "rank %d: no answer from the other ranks within %.0f s in %s (a rank died or is stuck; "
                              "EFFBENCH_COMM_TIMEOUT sets the limit)", c->rank, c->timeout, what);
        }
        if (spin > 200) nanosleep(&(struct timespec){ 0, 20000 }, NULL);
    }
}

static int fits(Comm *c, size_t b, const char *what, Err *e) {
    if (b > INT_MAX) return err_set(e, "rank %d: %s of %zu bytes exceeds MPI's int counts", c->rank, what, b);
    return 0;
}

static int mpi_allreduce(Comm *c, float *buf, size_t n, Err *e) {
    Mpi *m = c->impl;
    if (fits(c, n, "all-reduce", e)) return -1;
    MPI_Request rq;
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, m->comm, &rq);
    return wait_for(c, &rq, "all-reduce", e);
}

static int mpi_allgatherv(Comm *c, const void *send, void *recv, const size_t *bytes, Err *e) {
    Mpi *m = c->impl;
    size_t off = 0;
    for (int i = 0; i < c->size; i++) {
        if (fits(c, off + bytes[i], "all-gather", e)) return -1;
        m->cnt[i] = (int)bytes[i];
        m->dsp[i] = (int)off;
        off += bytes[i];
    }
    MPI_Request rq;
    const void *s = send == (const char *)recv + m->dsp[c->rank] ? MPI_IN_PLACE : send;
    MPI_Iallgatherv(s, (int)bytes[c->rank], MPI_BYTE, recv, m->cnt, m->dsp, MPI_BYTE, m->comm, &rq);
    return wait_for(c, &rq, "all-gather", e);
}

static int mpi_alltoallv(Comm *c, const void *send, const size_t *sb, void *recv, const size_t *rb, Err *e) {
    Mpi *m = c->impl;
    size_t so = 0, ro = 0;
    for (int i = 0; i < c->size; i++) {
        if (fits(c, so + sb[i], "all-to-all", e) || fits(c, ro + rb[i], "all-to-all", e)) return -1;
        m->cnt[i] = (int)sb[i]; m->dsp[i] = (int)so; so += sb[i];
        m->rcnt[i] = (int)rb[i]; m->rdsp[i] = (int)ro; ro += rb[i];
    }
    MPI_Request rq;
    MPI_Ialltoallv(send, m->cnt, m->dsp, MPI_BYTE, recv, m->rcnt, m->rdsp, MPI_BYTE, m->comm, &rq);
    return wait_for(c, &rq, "all-to-all", e);
}

static int mpi_i64(Comm *c, int64_t *buf, size_t n, int max, Err *e) {
    Mpi *m = c->impl;
    MPI_Request rq;
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, max ? MPI_MAX : MPI_SUM, m->comm, &rq);
    return wait_for(c, &rq, max ? "max-reduce" : "sum-reduce", e);
}

static int mpi_bcast(Comm *c, void *buf, size_t bytes, int root, Err *e) {
    Mpi *m = c->impl;
    if (fits(c, bytes, "broadcast", e)) return -1;
    MPI_Request rq;
    MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, m->comm, &rq);
    return wait_for(c, &rq, "broadcast", e);
}

static void mpi_abort(Comm *c, int code) {
    Mpi *m = c->impl;
    MPI_Abort(m->comm, code);
}

static void mpi_close(Comm *c) {
    Mpi *m = c->impl;
    if (!m) return;
    int fin = 0;
    MPI_Finalized(&fin);
    /* a collective another rank never joined would hold MPI_Finalize forever: abort */
    for (int i = 0; i < m->n_left && !fin; i++) {
        int done = 0;
        MPI_Test(&m->left[i], &done, MPI_STATUS_IGNORE);
        if (!done) MPI_Abort(m->comm, 1);
    }
    free(m->cnt); free(m->dsp); free(m->rcnt); free(m->rdsp);
    free(m);
    c->impl = NULL;
    if (!fin) MPI_Finalize();
}

static const CommOps mpi_ops = {
    "mpi", mpi_allreduce, mpi_allgatherv, mpi_alltoallv, mpi_i64, mpi_bcast, mpi_abort, mpi_close,
};

int comm_mpi_open(Comm **out, int *argc, char ***argv, Err *e) {
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set(e, "MPI_Init_thread failed");
    Comm *c = xcalloc(1, sizeof *c);
    Mpi *m = xcalloc(1, sizeof *m);
    m->comm = MPI_COMM_WORLD;
    MPI_Comm_rank(m->comm, &c->rank);
    MPI_Comm_size(m->comm, &c->size);
    m->cnt = xcalloc((size_t)c->size, sizeof(int));
    m->dsp = xcalloc((size_t)c->size, sizeof(int));
    m->rcnt = xcalloc((size_t)c->size, sizeof(int));
    m->rdsp = xcalloc((size_t)c->size, sizeof(int));
    c->impl = m;
    c->ops = &mpi_ops;
    c->timeout = 300;
    *out = c;
    return 0;
}

#else

int comm_mpi_available(void) { return 0; }
int comm_mpi_open(Comm **c, int *argc, char ***argv, Err *e) {
    (void)argc; (void)argv;
    *c = NULL;
    return err_set(e, "this effbench was built without MPI (install libopenmpi-dev and rebuild)");
}

#endif
