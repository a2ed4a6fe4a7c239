/*
 * nccl_emu.c - the emulated NCCL of tests/emu/nccl/nccl.h over MPI: each rank's
 * emulated GPU memory is its host memory, so MPI moves it as NCCL would move device
 * memory. A group's sends and receives are posted together at ncclGroupEnd
 * (MPI_Isend/MPI_Irecv, then MPI_Waitall), so any order of pairs completes.
 */
#include "nccl.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

struct ncclComm { MPI_Comm comm; int rank, size; };

typedef struct { int send; void *buf; size_t bytes; int peer; ncclComm_t comm; } Pending;
static Pending *pend;
static int n_pend, cap_pend, depth;

static size_t type_size(ncclDataType_t t) { return t == ncclFloat ? 4 : t == ncclInt64 ? 8 : 1; }

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) { memset(id, 0, sizeof *id); strcpy(id->internal, "effbench-emu"); return ncclSuccess; }

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    (void)id;
    ncclComm_t c = calloc(1, sizeof *c);
    if (!c) return ncclSystemError;
    MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    if (c->rank != rank || c->size != nranks) { MPI_Comm_free(&c->comm); free(c); return ncclInvalidArgument; }
    *comm = c;
    return ncclSuccess;
}
ncclResult_t ncclCommDestroy(ncclComm_t c) { if (c) { MPI_Comm_free(&c->comm); free(c); } return ncclSuccess; }
ncclResult_t ncclCommAbort(ncclComm_t c) { if (c) MPI_Abort(c->comm, 1); return ncclSuccess; }
ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *err) { (void)c; *err = ncclSuccess; return ncclSuccess; }
const char *ncclGetErrorString(ncclResult_t r) { return r == ncclSuccess ? "no error" : "emulated NCCL error"; }

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                           cudaStream_t_emu s) {
    (void)op; (void)s;
    if (t != ncclFloat) return ncclInvalidArgument;
    int rc = MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)count, MPI_FLOAT, MPI_SUM, c->comm);
    return rc == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}

static ncclResult_t post(int send, void *buf, size_t count, ncclDataType_t t, int peer, ncclComm_t c) {
    if (n_pend == cap_pend) {
        cap_pend = cap_pend ? 2 * cap_pend : 16;
        pend = realloc(pend, sizeof *pend * (size_t)cap_pend);
        if (!pend) return ncclSystemError;
    }
    pend[n_pend++] = (Pending){ send, buf, count * type_size(t), peer, c };
    return depth ? ncclSuccess : ncclGroupEnd();
}
ncclResult_t ncclSend(const void *buf, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t_emu s) {
    (void)s;
    return post(1, (void *)buf, count, t, peer, c);
}
ncclResult_t ncclRecv(void *buf, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t_emu s) {
    (void)s;
    return post(0, buf, count, t, peer, c);
}
ncclResult_t ncclGroupStart(void) { depth++; return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) {
    if (depth > 0) depth--;
    if (depth > 0) return ncclSuccess;
    MPI_Request *rq = malloc(sizeof *rq * (size_t)(n_pend ? n_pend : 1));
    if (!rq) return ncclSystemError;
    int bad = 0;
    for (int i = 0; i < n_pend; i++) {
        Pending *p = &pend[i];
        bad |= (p->send ? MPI_Isend(p->buf, (int)p->bytes, MPI_BYTE, p->peer, 77, p->comm->comm, &rq[i])
                        : MPI_Irecv(p->buf, (int)p->bytes, MPI_BYTE, p->peer, 77, p->comm->comm, &rq[i])) != MPI_SUCCESS;
    }
    if (n_pend) bad |= MPI_Waitall(n_pend, rq, MPI_STATUSES_IGNORE) != MPI_SUCCESS;
    free(rq);
    n_pend = 0;
    return bad ? ncclSystemError : ncclSuccess;
}
