/* A client's worker thread, for librdkafka calls that block (committed
 * offsets, watermarks, offsets for times, metadata, and later the
 * transactional calls): never on the loop, never on the poll thread,
 * which must keep serving the queue meanwhile.
 *
 * Jobs run one at a time, in order, without the GIL; each then turns its
 * result into a Python object with the GIL held and resolves its future
 * through the dispatcher (so on the loop, after every item the poll
 * thread handed over before it).  The thread starts with the first job.
 *
 * The worker must be idle before the handle is destroyed:
 * akc_worker_stop() (no GIL) fails the queued jobs with _DESTROY and
 * joins the thread, which finishes the job it is running (each bounded by
 * its own timeout). */
#ifndef AKC_WORKER_H
#define AKC_WORKER_H

#include "dispatcher.h"

#include <pthread.h>

typedef struct akc_job akc_job;
struct akc_job {
    akc_job *next;
    /* Worker thread, no GIL: the blocking call; keeps its result in the
     * job.  Not called for a job failed by akc_worker_stop(). */
    void (*run)(akc_job *job, rd_kafka_t *rk);
    /* GIL held: the future's result (new reference: a value, or an
     * exception instance), or NULL with an exception set. */
    PyObject *(*result)(akc_job *job, akc_state *st);
    /* Frees the job's own C parts (not the job); any thread. */
    void (*clear)(akc_job *job);
    PyObject *future; /* strong, GIL only */
    rd_kafka_resp_err_t err;
    char errstr[256];
    int timeout_ms;
    int cancelled; /* failed by stop: result() sees err = _DESTROY */
};

typedef struct akc_worker akc_worker;

/* GIL held.  NULL with MemoryError. */
akc_worker *akc_worker_new(akc_state *st, DispatcherObject *d);

/* GIL held: queues job (malloc'd, taken either way) for rk, starting the
 * thread if needed.  Returns 0 or -1 with an exception (the job freed). */
int akc_worker_submit(akc_worker *w, rd_kafka_t *rk, akc_job *job);

/* No GIL: stops taking jobs, fails the queued ones, joins the thread. */
void akc_worker_stop(akc_worker *w);

/* GIL held, after akc_worker_stop() (or in a forked child, where the
 * thread is gone: leaks what it cannot free safely). */
void akc_worker_free(akc_worker *w, int forked);

#endif
