/* The native poll thread: one per client.
 *
 * It waits on the client's librdkafka queue with the GIL released,
 * takes every event that is ready as one batch, then holds the GIL once
 * to turn the batch into dispatcher items (log, error, stats and
 * throttle itself; delivery reports and other client events through the
 * client's handler) and to schedule one hand-off to the loop.
 *
 * Ownership: the poller holds a weak reference to its client and a strong
 * one to the client's dispatcher.  It borrows the client only while it
 * holds the GIL, so the client can be collected at any time; a client
 * that dies on the poll thread itself detaches the thread, which then
 * frees the poller on its way out. */
#ifndef AKC_POLLER_H
#define AKC_POLLER_H

#include "dispatcher.h"

#include <pthread.h>
#include <stdatomic.h>

#define AKC_POLL_BATCH 256
#define AKC_THROTTLE_SLOTS 16

typedef struct akc_poller akc_poller;

/* Called on the poll thread with the GIL held and the client alive, with
 * the client-specific events of a batch (n may be 0 on a tick).  The
 * handler owns the events and destroys them. */
typedef void (*akc_poller_handler)(PyObject *client, akc_poller *p,
                                   rd_kafka_event_t **evs, size_t n);

/* Called by the atexit hook, GIL held, after the poll thread has stopped:
 * the client releases what refers into the handle, then calls
 * akc_poller_release_handle(), then drops its in-flight state quietly. */
typedef void (*akc_poller_atexit)(PyObject *client, akc_poller *p);

struct akc_poller {
    akc_state *st;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    DispatcherObject *dispatcher; /* strong */
    PyObject *client_ref;         /* weakref to the client */
    akc_poller_handler handler;
    akc_poller_atexit atexit_hook;
    pthread_t thread;
    PyThreadState *tstate;
    atomic_int stop;     /* exit as soon as possible, touching nothing */
    atomic_int tick_ms;  /* > 0: run the handler at least this often */
    int started;
    int detached;        /* GIL: the thread frees the poller itself */
    int exit_requested;  /* GIL: destroy the handle, push exit_item, exit */
    PyObject *exit_item; /* pushed to the dispatcher after rk is gone */
    /* Throttle reports, filled by librdkafka's throttle_cb, which runs on
     * the poll thread inside rd_kafka_queue_poll(). */
    struct {
        char broker[128];
        int32_t broker_id;
        int throttle_ms;
    } throttles[AKC_THROTTLE_SLOTS];
    int nthrottles;
    akc_poller *prev, *next; /* st->pollers */
};

/* Allocates a poller; the handle is attached later with
 * akc_poller_start().  GIL held.  Returns NULL with MemoryError set. */
akc_poller *akc_poller_new(akc_state *st, DispatcherObject *dispatcher);

/* Sets the callbacks and event mask on conf so that every event reaches
 * the poller's queue.  Call before rd_kafka_new(). */
void akc_poller_configure(akc_poller *p, rd_kafka_conf_t *conf,
                          int want_throttle);

/* Takes the handle (already created with conf from
 * akc_poller_configure), routes logs to the main queue and starts the
 * thread.  GIL held.  Returns 0 or -1 with an exception set. */
int akc_poller_start(akc_poller *p, PyObject *client, rd_kafka_t *rk,
                     akc_poller_handler handler,
                     akc_poller_atexit atexit_hook);

/* Destroys the librdkafka handle now (purging what is queued).  Safe with
 * the GIL held: librdkafka's own threads never need it. */
void akc_poller_release_handle(akc_poller *p);

/* Stops the thread at once without flushing and frees the poller (or
 * hands that to the thread if called on it).  After this the caller must
 * not touch p.  GIL held; releases it while joining. */
void akc_poller_destroy(akc_poller *p);

/* Waits for a thread that has finished a graceful exit (exit_requested),
 * then frees the poller.  GIL held; releases it while joining. */
void akc_poller_join(akc_poller *p);

/* atexit: stops every live poll thread before the interpreter
 * finalizes.  Returns the number of threads stopped. */
int akc_pollers_stop_all(akc_state *st);

#endif
