/*
 * comm_nccl.c - the NCCL group (comm.h) for GPU ranks: device buffers, collectives
 * queued on the CUDA backend's stream. Built with the CUDA backend and MPI (NCCL's
 * unique id travels over the MPI group that started the ranks, which also carries the
 * host-side control collectives: agreement, broadcasts).
 *
 * Collectives: all-reduce is ncclAllReduce; all-gather with unequal parts and the
 * all-to-all of an MoE dispatch (variable counts) are ncclSend/ncclRecv pairs fused in
 * one ncclGroupStart/ncclGroupEnd, as NCCL's documentation shows for all-to-all (the
 * ncclAlltoAll of NCCL 2.28 takes equal counts only).
 * Deadlines: after queuing, the stream is polled (cuda_stream_poll) and NCCL's async
 * error read until the work is done or Comm.timeout passes; then ncclCommAbort and an
 * error line. That waits for each collective (no overlap of communication with the
 * next op), the price of never hanging.
 * Under the CUDA emulator (tests/emu) the same file compiles against tests/emu/nccl,
 * whose functions move the emulated devices' memory (host memory) over MPI.
 */
#include "comm.h"
#include "backend.h"

#if defined(EFFBENCH_NCCL) && defined(EFFBENCH_MPI)
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int comm_nccl_available(void) { return 1; }

typedef struct {
    ncclComm_t nc;
    Comm *host;                  /* the MPI group: control collectives, host buffers */
} Nccl;

static int fail(Comm *c, ncclResult_t r, const char *what, Err *e) {
    return err_set(e, "rank %d: NCCL %s: %s", c->rank, what, ncclGetErrorString(r));
}

/* waits for the queued work against the deadline */
static int finish(Comm *c, const char *what, Err *e) {
    Nccl *n = c->impl;
    double t0 = now_sec();
    for (long spin = 0;; spin++) {
        int done = cuda_stream_poll();
        if (done < 0) return err_set(e, "rank %d: %s: %s", c->rank, what, cuda_error());
        if (done) return 0;
        ncclResult_t ar = ncclSuccess;
        ncclCommGetAsyncError(n->nc, &ar);
        if (ar != ncclSuccess && ar != ncclInProgress) return fail(c, ar, what, e);
        if (now_sec() - t0 > c->timeout) {
            ncclCommAbort(n->nc);
            n->nc = NULL;
            return err_set(e, "rank %d: no answer from the other GPUs within %.0f s in %s (a rank died or is stuck; "
                              "EFFBENCH_COMM_TIMEOUT sets the limit)", c->rank, c->timeout, what);
        }
        if (spin > 200) nanosleep(&(struct timespec){ 0, 20000 }, NULL);
    }
}

static int nc_allreduce(Comm *c, float *buf, size_t n, Err *e) {
    Nccl *x = c->impl;
    ncclResult_t r = ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, x->nc, cuda_stream_ptr());
    return r != ncclSuccess ? fail(c, r, "all-reduce", e) : finish(c, "all-reduce", e);
}

static int nc_allgatherv(Comm *c, const void *send, void *recv, const size_t *bytes, Err *e) {
    Nccl *x = c->impl;
    size_t off = 0, mine = 0;
    for (int i = 0; i < c->rank; i++) mine += bytes[i];
    ncclResult_t r = ncclGroupStart();
    for (int i = 0; i < c->size && r == ncclSuccess; i++) {
        if (i != c->rank) {
            if (bytes[c->rank]) r = ncclSend(send, bytes[c->rank], ncclInt8, i, x->nc, cuda_stream_ptr());
            if (r == ncclSuccess && bytes[i]) r = ncclRecv((char *)recv + off, bytes[i], ncclInt8, i, x->nc, cuda_stream_ptr());
        }
        off += bytes[i];
    }
    ncclResult_t r2 = ncclGroupEnd();
    if (r != ncclSuccess || r2 != ncclSuccess) return fail(c, r != ncclSuccess ? r : r2, "all-gather", e);
    if ((const char *)recv + mine != send && bytes[c->rank] &&
        cuda_copy_bytes((char *)recv + mine, send, bytes[c->rank]))
        return err_set(e, "rank %d: all-gather: %s", c->rank, cuda_error());
    return finish(c, "all-gather", e);
}

static int nc_alltoallv(Comm *c, const void *send, const size_t *sb, void *recv, const size_t *rb, Err *e) {
    Nccl *x = c->impl;
    size_t so = 0, ro = 0;
    ncclResult_t r = ncclGroupStart();
    for (int i = 0; i < c->size && r == ncclSuccess; i++) {
        if (i == c->rank) {
            if (sb[i] != rb[i]) { ncclGroupEnd(); return err_set(e, "rank %d: all-to-all: %zu bytes to itself, %zu expected", c->rank, sb[i], rb[i]); }
            if (sb[i] && cuda_copy_bytes((char *)recv + ro, (const char *)send + so, sb[i])) { ncclGroupEnd(); return err_set(e, "%s", cuda_error()); }
        } else {
            if (sb[i]) r = ncclSend((const char *)send + so, sb[i], ncclInt8, i, x->nc, cuda_stream_ptr());
            if (r == ncclSuccess && rb[i]) r = ncclRecv((char *)recv + ro, rb[i], ncclInt8, i, x->nc, cuda_stream_ptr());
        }
        so += sb[i];
        ro += rb[i];
    }
    ncclResult_t r2 = ncclGroupEnd();
    if (r != ncclSuccess || r2 != ncclSuccess) return fail(c, r != ncclSuccess ? r : r2, "all-to-all", e);
    return finish(c, "all-to-all", e);
}

/* host buffers: the MPI group's */
static int nc_i64(Comm *c, int64_t *buf, size_t n, int max, Err *e) {
    Nccl *x = c->impl;
    return x->host->ops->allreduce_i64(x->host, buf, n, max, e);
}
static int nc_bcast(Comm *c, void *buf, size_t bytes, int root, Err *e) {
    Nccl *x = c->impl;
    return x->host->ops->bcast(x->host, buf, bytes, root, e);
}
static void nc_abort(Comm *c, int code) {
    Nccl *x = c->impl;
    if (x->nc) ncclCommAbort(x->nc);
    x->nc = NULL;
    x->host->ops->abort(x->host, code);
}
static void nc_close(Comm *c) {
    Nccl *x = c->impl;
    if (!x) return;
    if (x->nc) ncclCommDestroy(x->nc);
    free(x);
    c->impl = NULL;
}

static const CommOps nccl_ops = {
    "nccl", nc_allreduce, nc_allgatherv, nc_alltoallv, nc_i64, nc_bcast, nc_abort, nc_close,
};

int comm_nccl_open(Comm **out, Comm *host, Err *e) {
    *out = NULL;
    if (!host || host->size < 1) return err_set(e, "NCCL: no MPI group to start from");
    struct { int ok; ncclUniqueId id; } boot;   /* the id, or rank 0's failure, to every rank */
    memset(&boot, 0, sizeof boot);
    ncclResult_t r0 = ncclSuccess;
    if (host->rank == 0) boot.ok = (r0 = ncclGetUniqueId(&boot.id)) == ncclSuccess;
    if (comm_bcast(host, &boot, sizeof boot, 0, e)) return -1;
    if (!boot.ok)
        return host->rank == 0 ? err_set(e, "NCCL: ncclGetUniqueId: %s", ncclGetErrorString(r0))
                               : err_set(e, "NCCL: rank 0 could not make the group's id");
    ncclUniqueId id = boot.id;
    Nccl *x = xcalloc(1, sizeof *x);
    x->host = host;
    ncclResult_t r = ncclCommInitRank(&x->nc, host->size, id, host->rank);
    if (r != ncclSuccess) { free(x); return err_set(e, "rank %d: NCCL: ncclCommInitRank: %s", host->rank, ncclGetErrorString(r)); }
    Comm *c = xcalloc(1, sizeof *c);
    c->rank = host->rank;
    c->size = host->size;
    c->timeout = host->timeout;
    c->ops = &nccl_ops;
    c->impl = x;
    *out = c;
    return 0;
}

#else

int comm_nccl_available(void) { return 0; }
int comm_nccl_open(Comm **out, Comm *host, Err *e) {
    (void)host;
    *out = NULL;
    return err_set(e, "GPU ranks need NCCL and MPI: this effbench was built without %s",
#ifdef EFFBENCH_MPI
                   "NCCL (nccl.h under the CUDA toolkit)"
#else
                   "MPI (install libopenmpi-dev and rebuild)"
#endif
    );
}

#endif
