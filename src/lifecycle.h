/* The client lifecycle: one state machine that every client (producer,
 * and the consumer and admin client to come) embeds as its core, and that
 * every teardown path goes through.
 *
 *      NEW ──init──► OPEN ──close()──► CLOSING ──handle gone──► CLOSED
 *       │             │                   │
 *       │             └──── dealloc ──────┴──► (orphaned: the poll thread
 *       │                                       tears down on its own)
 *       └── init failed: stays NEW, holds nothing
 *     any state ──fork──► FORKED (child only: refuses use, owns nothing)
 *     any state ──atexit──► CLOSED (thread stopped, handle destroyed)
 *
 * Closing is always carried out by the poll thread: close() only moves
 * OPEN to CLOSING, sets the deadline and wakes the thread, which asks the
 * client's closing_step() on every batch or tick, then destroys the
 * handle without the GIL and reports back with akc_core_closed().  Every
 * close() caller gets its own awaitable: a fresh future on the bound loop,
 * or, off the loop, a blocking wait (any other thread) or a waiter to
 * await later (the poll thread itself, which cannot wait for itself).
 *
 * Everything here runs with the GIL held. */
#ifndef AKC_LIFECYCLE_H
#define AKC_LIFECYCLE_H

#include "poller.h"

#include <sys/types.h>

enum {
    AKC_NEW = 0,
    AKC_OPEN,
    AKC_CLOSING,
    AKC_CLOSED,
    AKC_FORKED,
};

typedef struct akc_core {
    akc_state *st;
    const char *kind;           /* "AIOProducer", for messages */
    const akc_client_ops *ops;
    PyObject *owner;            /* the client this core is in (borrowed) */
    rd_kafka_t *rk;             /* NULL once the poll thread tears down */
    akc_poller *poller;         /* NULL once the thread has left */
    DispatcherObject *dispatcher;
    /* The config's callbacks.  They live here, traversed by the client,
     * not in the dispatcher the poll thread keeps alive, so a cycle
     * through them (error_cb=self.on_error) can still be collected. */
    PyObject *error_cb;
    PyObject *stats_cb;
    PyObject *throttle_cb;
    PyObject *logger;           /* the dispatcher borrows it */
    PyObject *close_waiters;    /* list of futures of close() callers */
    pthread_mutex_t lock;       /* with closed_cond: blocking close() */
    pthread_cond_t closed_cond;
    int64_t close_deadline;     /* monotonic ms, -1: none */
    int64_t close_drain_deadline; /* end of the orderly part (flush) */
    int state;
    int lock_ready;
    int closed_flag;            /* under lock: the close has finished */
    pid_t pid;                  /* process that made the handle */
} akc_core;

/* Sets up an empty core (state NEW) inside owner.  Returns 0 or -1 with
 * an exception. */
int akc_core_init(akc_core *core, PyObject *owner, akc_state *st,
                  const char *kind);

/* Raises RuntimeError unless the client can be used now (OPEN, in the
 * process that made it).  method names the caller.  Returns 0 or -1. */
int akc_core_check_open(akc_core *core, const char *method);

/* Checks that the caller runs on the bound loop, binding to the running
 * loop on first use.  Returns 0 or -1 with RuntimeError. */
int akc_core_check_loop(akc_core *core, const char *method);

/* Starts closing (or joins a close under way, shortening its deadline to
 * timeout_ms from now; -1 for none) and returns the caller's awaitable,
 * or NULL with an exception. */
PyObject *akc_core_close(akc_core *core, PyObject *client, int timeout_ms);

/* Poll thread, GIL held, the handle is gone: releases what the client
 * holds through ops->release(), answers every close() caller and wakes
 * blocking ones.  The state becomes CLOSED. */
void akc_core_closed(akc_core *core, PyObject *client);

/* GIL held: the handle is about to go (or, forked, is abandoned): the
 * core and the client stop using it. */
void akc_core_forget_handle(akc_core *core, PyObject *client, int forked);

/* In a forked child (see akc_pollers_after_fork). */
void akc_core_forked(akc_core *core, PyObject *client);

/* Wakes every close() caller blocked on another thread. */
void akc_core_wake_blocked(akc_core *core);

/* First step of the client's finalizer (tp_finalize, which runs before a
 * subclass's dealloc touches anything), before it runs any Python code:
 * an OPEN or CLOSING client hands its thread and orphans (may be NULL)
 * over (never blocks); a closed one reaps its finished thread.  Returns 1
 * if the orphans were taken. */
int akc_core_detach(akc_core *core, void *orphans);

/* Later in the finalizer: answers close() callers still waiting. */
void akc_core_finalize(akc_core *core);

/* Joins and frees the thread of a closed client.  GIL held. */
void akc_core_reap(akc_core *core);

/* tp_traverse / tp_clear helpers for the Python objects in the core. */
int akc_core_traverse(akc_core *core, visitproc visit, void *arg);
void akc_core_clear(akc_core *core);

/* Frees the core's own C resources (the lock).  Last step of dealloc. */
void akc_core_free(akc_core *core);

/* Returns a new awaitable already complete with None. */
PyObject *akc_done(akc_state *st);

/* Part of a close's budget kept, after its orderly part, for failing
 * what is left: a fifth, at most this. */
#define AKC_CLOSE_PURGE_MAX_MS 1000

/* How often the poll thread looks at deadlines while something waits on
 * time (closing, flushing, a full queue). */
#define AKC_TICK_MS 10

#endif
