/* The native poll thread: one per client, generic over the client.
 *
 * It waits on the client's librdkafka queue with the GIL released, takes
 * every event that is ready as one batch, then holds the GIL once to turn
 * the batch into dispatcher items (log, error, stats and throttle itself;
 * every other event through the client's on_events hook) and to schedule
 * one hand-off to the loop.
 *
 * Ownership: the poller holds a weak reference to its client and a strong
 * one to the client's dispatcher (which holds nothing of the client, so
 * the collector still sees every cycle through the client).  It borrows
 * the client only while it holds the GIL.
 *
 * Who frees the poller: the client core while it is attached (it joins
 * the finished thread first: akc_core_reap), the thread itself once the
 * client has died and orphaned it, the atexit hook (which stops and
 * joins every thread), or, in a forked child, the fork hook (the thread
 * does not exist there).  The thread ends gracefully when asked
 * (exit_requested: close() finished its orderly part, or the client was
 * dropped): it runs the client's teardown hook, destroys the handle
 * without the GIL, then with the GIL reports to the client (or fails the
 * orphans).  Stopped (atexit), it leaves at once, touching no Python
 * object. */
#ifndef AKC_POLLER_H
#define AKC_POLLER_H

#include "dispatcher.h"

#include <pthread.h>
#include <stdatomic.h>

#define AKC_POLL_BATCH 256
#define AKC_THROTTLE_SLOTS 16

typedef struct akc_poller akc_poller;

/* What a client plugs into the generic poll thread.  Every hook is called
 * with the client alive (a strong reference held by the caller). */
typedef struct {
    /* Poll thread, GIL held: the client's own events of a batch (n may be
     * 0 on a tick).  The hook owns the events and destroys them. */
    void (*on_events)(PyObject *client, rd_kafka_event_t **evs, size_t n);
    /* Poll thread, GIL held, while the client is closing: returns 1 once
     * the handle may be destroyed. */
    int (*closing_step)(PyObject *client);
    /* GIL held, the handle is about to be destroyed (or, forked, is
     * abandoned): drop everything that points into it, such as topic
     * handles, without calling librdkafka when forked. */
    void (*forget_handle)(PyObject *client, int forked);
    /* Poll thread, GIL NOT held, just before the handle is destroyed and
     * while its queue can still be served with akc_poller_serve(): a
     * blocking teardown (a consumer leaves its group here).  May be
     * NULL. */
    void (*teardown)(akc_poller *p);
    /* GIL held, the handle is gone: fail or release what the client still
     * holds.  quiet: the interpreter is exiting, release without trying
     * to reach the loop. */
    void (*release)(PyObject *client, const char *why, int quiet);
    /* GIL held, after the handle is gone, for what a dropped client left
     * in flight (see akc_poller_orphan); frees it.  quiet as above. */
    void (*fail_orphans)(DispatcherObject *d, void *orphans, int quiet);
    /* Optional (a consumer's): the part of the client the poll thread uses
     * without the GIL, p->ctx, which outlives the client if need be. */
    /* Poll thread, GIL NOT held, after every wait on the queue (n may be
     * 0): takes the events it handles out of evs (compacting it, *n
     * updated) and runs queued work.  Returns 1 if the GIL pass must run
     * even with no event left. */
    int (*nogil_pass)(akc_poller *p, rd_kafka_event_t **evs, size_t *n);
    /* GIL NOT held, just before the queue and handle are destroyed on any
     * path (graceful, orphaned, atexit): release what points into the
     * handle.  Returns 1 if the handle must be left behind, not destroyed
     * (a librdkafka bug would abort the process).  May set *destroy_by
     * (akc_now_ms() time; -1, the default, is no bound): a destroy not
     * done by then finishes on a thread of its own, without us. */
    int (*before_destroy)(akc_poller *p, int64_t *destroy_by);
    /* GIL held, when the poller is freed: drop the poller's share of
     * ctx (forked: the threads that used it are gone; touch no lock). */
    void (*ctx_free)(void *ctx, int forked);
} akc_client_ops;

struct akc_poller {
    akc_state *st;
    PyInterpreterState *interp;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;      /* the queue the thread serves (owned) */
    pthread_mutex_t qlock;        /* queue: destroying vs waking it */
    DispatcherObject *dispatcher; /* strong */
    PyObject *client_ref;         /* weakref to the client */
    void *orphans;                /* what a dropped client left, or NULL */
    void *ctx;                    /* the client's no-GIL part (ops->ctx_free) */
    const akc_client_ops *ops;
    struct akc_core *core;        /* the client's core while it lives */
    pthread_t thread;
    PyThreadState *tstate;
    atomic_int stop;     /* leave at once, touching no Python object */
    atomic_int tick_ms;  /* > 0: run on_events at least this often */
    atomic_int exit_requested; /* tear down gracefully and leave */
    int started;
    int forked;    /* disowned in a forked child */
    int self_free; /* GIL: nobody else will join or free it */
    int claimed;   /* GIL: atexit is joining it and will free it */
    int finished;  /* GIL: the thread has done its last Python work for
                      the attached client; it only leaves from now on */
    /* Throttle reports, filled by librdkafka's throttle_cb, which runs on
     * the poll thread inside rd_kafka_queue_poll(). */
    struct {
        char broker[128];
        int32_t broker_id;
        int throttle_ms;
    } throttles[AKC_THROTTLE_SLOTS];
    int nthrottles;
    /* Poll thread: the last connection-level error (TLS, SASL, transport,
     * name resolution) since the last delivery, for the messages that
     * then time out: librdkafka fails them with _MSG_TIMED_OUT alone. */
    rd_kafka_resp_err_t conn_err;
    int64_t conn_err_ms;
    char conn_reason[384];
    akc_poller *prev, *next; /* st->pollers */
};

/* Allocates a poller; the handle is attached by akc_poller_start().  GIL
 * held.  Returns NULL with MemoryError set. */
akc_poller *akc_poller_new(akc_state *st, DispatcherObject *dispatcher);

/* Sets the callbacks and event mask on conf so that every event in
 * events (plus logs, errors and statistics) reaches the poller's queue.
 * Call before rd_kafka_new(). */
void akc_poller_configure(akc_poller *p, rd_kafka_conf_t *conf, int events,
                          int want_throttle);

/* Takes the handle and queue (both already created; queue is owned from
 * now on), routes logs to it and starts the thread.  This is the last
 * step of a client's construction: nothing after it may fail.  GIL held.
 * Returns 0, or -1 with an exception set (the handle and queue are then
 * the caller's again). */
int akc_poller_start(akc_poller *p, PyObject *client, struct akc_core *core,
                     rd_kafka_t *rk, rd_kafka_queue_t *queue,
                     const akc_client_ops *ops);

/* Frees a poller that never started.  GIL held. */
void akc_poller_free_unstarted(akc_poller *p);

/* Asks the thread to tick (or not) and wakes it when ticking starts.  Any
 * thread, GIL held. */
void akc_poller_set_tick(akc_poller *p, int ms);

/* Wakes the thread from its wait on the queue (it then runs the
 * client's nogil_pass).  Any thread. */
void akc_poller_wake(akc_poller *p);

/* Asks the thread for a graceful exit (after the current batch).  Any
 * thread, GIL held. */
void akc_poller_request_exit(akc_poller *p);

/* The client is being deallocated: the thread stops using it, owns
 * orphans (may be NULL), tears the handle down in the background if it
 * has not yet, and frees itself.  GIL held; runs no Python code and
 * never blocks. */
void akc_poller_orphan(akc_poller *p, void *orphans);

/* Joins the finished thread of an attached poller and frees it (on the
 * thread itself: hands the freeing to it).  GIL held; released while
 * joining. */
void akc_poller_reap(akc_poller *p);

/* From a teardown hook (poll thread, no GIL): serves the queue for up to
 * timeout_ms like a batch would.  Returns the number of events. */
size_t akc_poller_serve(akc_poller *p, int timeout_ms);

/* 1 if called on p's own thread. */
int akc_poller_is_current(akc_poller *p);

/* 1 if called on any client's poll thread.  GIL held. */
int akc_pollers_on_poll_thread(akc_state *st);

/* atexit: stops every live poll thread, destroys every handle and lets
 * each client drop its in-flight state.  GIL held.  Returns the number of
 * threads stopped. */
int akc_pollers_stop_all(akc_state *st);

/* In a forked child: every poller's thread and librdkafka's threads are
 * gone, and their locks may be held forever.  Disowns every poller
 * without touching its handle (deliberately leaked) and marks each
 * client forked.  GIL held. */
void akc_pollers_after_fork(akc_state *st);

#endif
