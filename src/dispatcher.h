/* Dispatcher: the loop-side half of a client.
 *
 * The native poll thread turns librdkafka events into "items" and
 * appends them to the dispatcher's pending list (GIL held).  The first
 * append after a hand-off schedules ONE loop.call_soon_threadsafe(
 * dispatcher); later appends join that pending batch (coalescing).  When
 * the loop runs the dispatcher, it takes the whole batch and completes
 * every item on the loop thread: futures are only ever resolved there.
 *
 * The dispatcher holds no reference to its client, so the poll thread
 * and a dying client can always hand it work that still has to reach the
 * loop (failed deliveries, close results). */
#ifndef AKC_DISPATCHER_H
#define AKC_DISPATCHER_H

#include "module.h"

typedef struct {
    PyObject_HEAD
    akc_state *st;
    PyObject *pending;              /* list of items */
    PyObject *batch;                /* the batch being completed, or NULL */
    Py_ssize_t batch_pos;           /* next item of batch */
    PyObject *loop;                 /* bound event loop, or NULL */
    PyObject *call_soon_threadsafe; /* bound loop.call_soon_threadsafe */
    PyObject *call_soon;            /* bound loop.call_soon */
    PyObject *create_future;        /* bound loop.create_future */
    PyObject *logger;
    PyObject *error_cb;
    PyObject *stats_cb;
    PyObject *throttle_cb;
    PyObject *tasks;                /* set: tasks of async callbacks */
    int scheduled;                  /* a call_soon_threadsafe is pending */
    int warned_loop_closed;
} DispatcherObject;

/* Item kinds other than a MessageObject (a delivery report). */
enum {
    AKC_ITEM_ERROR = 1,    /* (kind, KafkaError) */
    AKC_ITEM_STATS = 2,    /* (kind, str) */
    AKC_ITEM_THROTTLE = 3, /* (kind, ThrottleEvent) */
    AKC_ITEM_LOG = 4,      /* (kind, level, str) */
    AKC_ITEM_RESULT = 5,   /* (kind, future, result) */
    AKC_ITEM_CALL = 6,     /* (kind, callable): called with no args */
};

/* Returns a new dispatcher.  Callbacks may be NULL. */
DispatcherObject *akc_dispatcher_new(akc_state *st, PyObject *logger,
                                     PyObject *error_cb, PyObject *stats_cb,
                                     PyObject *throttle_cb);

/* Binds to loop (loop thread) and schedules anything already pending.
 * Returns 0 or -1. */
int akc_dispatcher_bind(DispatcherObject *d, PyObject *loop);

/* Appends an item (the reference is borrowed).  Returns 0 or -1. */
int akc_dispatcher_push(DispatcherObject *d, PyObject *item);

/* Builds (kind, a[, b]) and appends it.  Returns 0 or -1. */
int akc_dispatcher_push_kind(DispatcherObject *d, int kind, PyObject *a,
                             PyObject *b);

/* Schedules a hand-off if items are pending and none is scheduled.  Any
 * thread, GIL held.  Never raises: failures are logged. */
void akc_dispatcher_schedule(DispatcherObject *d);

/* Logs msg at level through the dispatcher's logger; exc may be NULL or
 * an exception for exc_info.  Never raises. */
void akc_dispatcher_log(DispatcherObject *d, int level, PyObject *msg,
                        PyObject *exc);
void akc_dispatcher_logf(DispatcherObject *d, int level, const char *fmt,
                         ...);

/* Calls a user callback with args; an exception is logged, never
 * propagated.  A returned coroutine becomes a task when on_loop (the loop
 * thread); elsewhere it is closed and logged as an error.  Any thread,
 * GIL held. */
void akc_dispatcher_call_user(DispatcherObject *d, PyObject *cb,
                              PyObject *const *args, size_t nargs,
                              const char *what, int on_loop);

/* Returns a new future on the bound loop, or NULL with an exception. */
PyObject *akc_dispatcher_new_future(DispatcherObject *d);

#endif
