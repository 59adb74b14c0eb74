/* Dispatcher: the loop-side half of a client.
 *
 * The native poll thread turns librdkafka events into "items" and
 * appends them to the dispatcher's pending list (GIL held).  The first
 * append after a hand-off schedules ONE loop.call_soon_threadsafe(
 * dispatcher); later appends join that pending batch (coalescing).  When
 * the loop runs the dispatcher, it takes the whole batch and completes
 * every item on the loop thread: futures are only ever resolved there.
 *
 * Items are either the generic tuples below, or client objects (a
 * delivered message, say) that go to the client's item handler.
 *
 * The dispatcher holds no reference to its client nor to the client's
 * callbacks (items carry the callback to run), so the poll thread and a
 * dying client can always hand it work that still has to reach the loop,
 * and the collector still sees every cycle through the client. */
#ifndef AKC_DISPATCHER_H
#define AKC_DISPATCHER_H

#include "module.h"

/* Python logging levels. */
enum {
    AKC_LOG_DEBUG = 10,
    AKC_LOG_INFO = 20,
    AKC_LOG_WARNING = 30,
    AKC_LOG_ERROR = 40,
    AKC_LOG_CRITICAL = 50,
};

struct DispatcherObject;

/* Completes one client item on the loop thread (GIL held).  Never
 * raises: problems are logged.  */
typedef void (*akc_item_handler)(struct DispatcherObject *d, PyObject *item);

typedef struct DispatcherObject {
    PyObject_HEAD
    akc_state *st;
    akc_item_handler client_item;   /* items that are not generic tuples */
    PyObject *pending;              /* list of items */
    PyObject *batch;                /* the batch being completed, or NULL */
    Py_ssize_t batch_pos;           /* next item of batch */
    PyObject *loop;                 /* bound event loop, or NULL */
    PyObject *call_soon_threadsafe; /* bound loop.call_soon_threadsafe */
    PyObject *call_soon;            /* bound loop.call_soon */
    PyObject *create_future;        /* bound loop.create_future */
    /* Borrowed: the client's logger (the client owns it, so a cycle
     * through it stays collectable), or the module's default one. */
    PyObject *logger;
    PyObject *tasks;                /* set: tasks of async callbacks */
    PyObject *raised;  /* SystemExit/KeyboardInterrupt to re-raise */
    int scheduled;                  /* a call_soon_threadsafe is pending */
    int warned_loop_closed;
    int loop_dead;  /* the bound loop refused a hand-off: it is closed */
    /* When the loop's create_future is BaseEventLoop's (and the dict
     * could be made): {"loop": loop}, passed to every Future() made
     * directly, without that Python frame; one dict for the binding
     * instead of one built per call.  NULL: loop.create_future(). */
    PyObject *future_kwargs;
    /* With future_kwargs: the loop's instance __dict__, whose _thread_id
     * says on which thread run_forever() runs it, if any. */
    PyObject *loop_dict;
} DispatcherObject;

/* Generic items: tuples (kind, ...). */
enum {
    AKC_ITEM_ERROR = 1,    /* (kind, error_cb, KafkaError) */
    AKC_ITEM_STATS = 2,    /* (kind, stats_cb, str) */
    AKC_ITEM_THROTTLE = 3, /* (kind, throttle_cb, ThrottleEvent) */
    AKC_ITEM_LOG = 4,      /* (kind, level, str) */
    AKC_ITEM_RESULT = 5,   /* (kind, future, result or exception) */
    AKC_ITEM_RAISE = 6,    /* (kind, exception): raise it on the loop */
    AKC_ITEM_CALL = 7,     /* (kind, on_commit, args tuple) */
};

/* Returns a new dispatcher routing client items to client_item, logging
 * through logger (borrowed; see akc_dispatcher_set_logger). */
DispatcherObject *akc_dispatcher_new(akc_state *st, PyObject *logger,
                                     akc_item_handler client_item);

/* Sets the borrowed logger; NULL: the module's default logger.  The owner
 * of the logger resets it before letting go of it. */
void akc_dispatcher_set_logger(DispatcherObject *d, PyObject *logger);

/* Binds to loop (loop thread) and schedules anything already pending.
 * Returns 0, or -1 with TypeError if loop is not an event loop. */
int akc_dispatcher_bind(DispatcherObject *d, PyObject *loop);

/* Checks that the caller runs on the bound loop, binding to the running
 * loop on first use.  kind and method name the caller in the error.
 * Returns 0 or -1 with RuntimeError. */
int akc_dispatcher_check_loop(DispatcherObject *d, const char *kind,
                              const char *method);

/* Binds to the running loop if there is one and none is bound.  Returns
 * 0 or -1. */
int akc_dispatcher_bind_running(DispatcherObject *d);

/* 1 if the calling thread runs d's bound loop, 0 if not, -1 on error. */
int akc_dispatcher_on_loop(DispatcherObject *d);

/* Appends an item (the reference is borrowed).  Returns 0 or -1. */
int akc_dispatcher_push(DispatcherObject *d, PyObject *item);

/* Builds (kind, a[, b]) and appends it.  Returns 0 or -1. */
int akc_dispatcher_push_kind(DispatcherObject *d, int kind, PyObject *a,
                             PyObject *b);

/* Schedules a hand-off if items are pending and none is scheduled.  Any
 * thread, GIL held.  Never raises: failures are logged. */
void akc_dispatcher_schedule(DispatcherObject *d);

/* Logs msg at level through the dispatcher's logger; exc may be NULL or
 * an exception for exc_info.  Never raises; keeps a raised exception. */
void akc_dispatcher_log(DispatcherObject *d, int level, PyObject *msg,
                        PyObject *exc);
void akc_dispatcher_logf(DispatcherObject *d, int level, const char *fmt,
                         ...);

/* Calls a user callback with args, in context ctx if not NULL.  On the
 * loop thread (on_loop) a returned coroutine becomes a task, and
 * SystemExit/KeyboardInterrupt are kept to be re-raised by the loop, as
 * loop.call_soon would; elsewhere a coroutine is closed and logged, and
 * those two are handed to the loop to raise there.  Any other exception
 * is logged with its traceback.  GIL held; never raises. */
void akc_dispatcher_call_user(DispatcherObject *d, PyObject *cb,
                              PyObject *const *args, size_t nargs,
                              PyObject *ctx, const char *what, int on_loop);

/* Resolves fut with res (an exception instance: set_exception) unless it
 * is done (cancelled, say).  Loop thread.  Returns 1 if resolved, 0 if it
 * was done, -1 with an exception. */
int akc_dispatcher_resolve(DispatcherObject *d, PyObject *fut, PyObject *res);

/* Returns a new future on the bound loop, or NULL with an exception. */
PyObject *akc_dispatcher_new_future(DispatcherObject *d);

/* Returns a new future on the bound loop already resolved with result. */
PyObject *akc_dispatcher_done_future(DispatcherObject *d, PyObject *result);

/* A future for result, completed once every item the dispatcher holds now
 * (the rest of a batch, the pending list) is, in order; done at once when
 * nothing is outstanding.  Loop thread, GIL held. */
PyObject *akc_dispatcher_done_after(DispatcherObject *d, PyObject *result);

#endif
