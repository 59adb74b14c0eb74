/* The native poll thread.  See poller.h for the ownership rules. */
#include "poller.h"
#include "errors.h"

#include <stdlib.h>
#include <string.h>

/* librdkafka's throttle_cb: runs on the poll thread, inside
 * rd_kafka_queue_poll(), without the GIL.  It only records the report;
 * the batch code turns it into a ThrottleEvent. */
static void
poller_throttle_cb(rd_kafka_t *rk, const char *broker_name, int32_t broker_id,
                   int throttle_time_ms, void *opaque)
{
    (void)rk;
    akc_poller *p = opaque;
    if (p->nthrottles >= AKC_THROTTLE_SLOTS) {
        return;
    }
    int i = p->nthrottles++;
    snprintf(p->throttles[i].broker, sizeof(p->throttles[i].broker), "%s",
             broker_name ? broker_name : "");
    p->throttles[i].broker_id = broker_id;
    p->throttles[i].throttle_ms = throttle_time_ms;
}

akc_poller *
akc_poller_new(akc_state *st, DispatcherObject *dispatcher)
{
    akc_poller *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    p->st = st;
    p->dispatcher = (DispatcherObject *)Py_NewRef(dispatcher);
    atomic_init(&p->stop, 0);
    atomic_init(&p->tick_ms, 0);
    return p;
}

void
akc_poller_configure(akc_poller *p, rd_kafka_conf_t *conf, int want_throttle)
{
    char errstr[256];
    rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_LOG |
                                       RD_KAFKA_EVENT_ERROR |
                                       RD_KAFKA_EVENT_STATS);
    /* Logs become events on our queue instead of being printed to stderr
     * from librdkafka's threads. */
    rd_kafka_conf_set(conf, "log.queue", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set_opaque(conf, p);
    if (want_throttle) {
        rd_kafka_conf_set_throttle_cb(conf, poller_throttle_cb);
    }
}

/* syslog level -> Python logging level. */
static int
py_log_level(int syslog_level)
{
    if (syslog_level <= 2) {
        return 50;
    }
    if (syslog_level == 3) {
        return 40;
    }
    if (syslog_level == 4) {
        return 30;
    }
    if (syslog_level <= 6) {
        return 20;
    }
    return 10;
}

/* Turns a generic event into a dispatcher item (or logs it when no loop
 * is bound yet).  GIL held.  Returns 0 or -1. */
static int
poller_generic_event(akc_poller *p, rd_kafka_event_t *ev)
{
    DispatcherObject *d = p->dispatcher;
    akc_state *st = p->st;
    switch (rd_kafka_event_type(ev)) {
    case RD_KAFKA_EVENT_LOG: {
        const char *fac = NULL, *text = NULL;
        int level = 7;
        if (rd_kafka_event_log(ev, &fac, &text, &level) != 0) {
            return 0;
        }
        PyObject *lvl = PyLong_FromLong(py_log_level(level));
        PyObject *msg = PyUnicode_FromFormat("librdkafka %s: %s",
                                             fac ? fac : "?",
                                             text ? text : "");
        int rc = -1;
        if (lvl != NULL && msg != NULL) {
            if (d->loop == NULL) {
                akc_dispatcher_log(d, py_log_level(level), msg, NULL);
                rc = 0;
            }
            else {
                rc = akc_dispatcher_push_kind(d, AKC_ITEM_LOG, lvl, msg);
            }
        }
        Py_XDECREF(lvl);
        Py_XDECREF(msg);
        return rc;
    }
    case RD_KAFKA_EVENT_ERROR: {
        rd_kafka_resp_err_t code = rd_kafka_event_error(ev);
        int fatal = rd_kafka_event_error_is_fatal(ev);
        char buf[512];
        const char *reason = rd_kafka_event_error_string(ev);
        if (fatal) {
            /* The event carries _FATAL; the real cause is kept apart. */
            code = rd_kafka_fatal_error(p->rk, buf, sizeof(buf));
            reason = buf;
        }
        PyObject *err = akc_error_new(
            st, code, reason, fatal,
            !fatal && (code == RD_KAFKA_RESP_ERR__TRANSPORT ||
                       code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN),
            0);
        if (err == NULL) {
            return -1;
        }
        int rc = 0;
        if (d->loop == NULL) {
            PyObject *text = PyObject_Repr(err);
            if (text != NULL) {
                akc_dispatcher_logf(d, fatal ? 50 : 40, "aiokafka_c: %U",
                                    text);
                Py_DECREF(text);
            }
        }
        else {
            rc = akc_dispatcher_push_kind(d, AKC_ITEM_ERROR, err, NULL);
        }
        Py_DECREF(err);
        return rc;
    }
    case RD_KAFKA_EVENT_STATS: {
        if (d->stats_cb == NULL || d->loop == NULL) {
            return 0;
        }
        const char *json = rd_kafka_event_stats(ev);
        PyObject *s = PyUnicode_FromString(json ? json : "{}");
        if (s == NULL) {
            return -1;
        }
        int rc = akc_dispatcher_push_kind(d, AKC_ITEM_STATS, s, NULL);
        Py_DECREF(s);
        return rc;
    }
    default:
        return 1; /* not generic: the client's handler takes it */
    }
}

static int
poller_throttles(akc_poller *p)
{
    DispatcherObject *d = p->dispatcher;
    int n = p->nthrottles;
    p->nthrottles = 0;
    if (d->throttle_cb == NULL || d->loop == NULL) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        PyObject *ev = PyStructSequence_New(p->st->ThrottleEventType);
        if (ev == NULL) {
            return -1;
        }
        PyObject *name = PyUnicode_DecodeUTF8(
            p->throttles[i].broker, strlen(p->throttles[i].broker),
            "replace");
        PyObject *id = PyLong_FromLong(p->throttles[i].broker_id);
        PyObject *secs = PyFloat_FromDouble(p->throttles[i].throttle_ms /
                                            1000.0);
        if (name == NULL || id == NULL || secs == NULL) {
            Py_XDECREF(name);
            Py_XDECREF(id);
            Py_XDECREF(secs);
            Py_DECREF(ev);
            return -1;
        }
        PyStructSequence_SET_ITEM(ev, 0, name);
        PyStructSequence_SET_ITEM(ev, 1, id);
        PyStructSequence_SET_ITEM(ev, 2, secs);
        int rc = akc_dispatcher_push_kind(d, AKC_ITEM_THROTTLE, ev, NULL);
        Py_DECREF(ev);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

/* One batch, on the poll thread with the GIL held. */
static void
poller_handle_batch(akc_poller *p, rd_kafka_event_t **evs, size_t n,
                    int tick)
{
    rd_kafka_event_t *own[AKC_POLL_BATCH];
    size_t nown = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = poller_generic_event(p, evs[i]);
        if (rc > 0) {
            own[nown++] = evs[i];
            continue;
        }
        if (rc < 0) {
            PyErr_WriteUnraisable((PyObject *)p->dispatcher);
        }
        rd_kafka_event_destroy(evs[i]);
    }
    if (p->nthrottles > 0 && poller_throttles(p) < 0) {
        PyErr_WriteUnraisable((PyObject *)p->dispatcher);
    }
    PyObject *client = PyWeakref_GetObject(p->client_ref);
    if (client != Py_None && client != NULL && (nown > 0 || tick)) {
        Py_INCREF(client);
        p->handler(client, p, own, nown);
        if (PyErr_Occurred()) {
            PyErr_WriteUnraisable(client);
        }
        akc_dispatcher_schedule(p->dispatcher);
        /* May be the last reference: the client's dealloc then detaches
         * this thread (see akc_poller_destroy). */
        Py_DECREF(client);
    }
    else {
        for (size_t i = 0; i < nown; i++) {
            rd_kafka_event_destroy(own[i]);
        }
        akc_dispatcher_schedule(p->dispatcher);
    }
}

static void
poller_unlink(akc_poller *p)
{
    if (p->prev != NULL) {
        p->prev->next = p->next;
    }
    else if (p->st->pollers == p) {
        p->st->pollers = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    p->prev = p->next = NULL;
}

/* Releases the librdkafka handle.  No GIL needed (and none should be held:
 * rd_kafka_destroy() joins librdkafka's threads). */
static void
poller_destroy_handle(akc_poller *p)
{
    if (p->queue != NULL) {
        rd_kafka_queue_destroy(p->queue);
        p->queue = NULL;
    }
    if (p->rk != NULL) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE |
                                  RD_KAFKA_PURGE_F_INFLIGHT |
                                  RD_KAFKA_PURGE_F_NON_BLOCKING);
        rd_kafka_destroy(p->rk);
    }
    p->rk = NULL;
}

/* Frees the poller and its references.  GIL held.  The thread state is
 * not ours to free: the poll thread deletes it itself. */
static void
poller_free(akc_poller *p)
{
    poller_unlink(p);
    Py_CLEAR(p->dispatcher);
    Py_CLEAR(p->client_ref);
    Py_CLEAR(p->exit_item);
    free(p);
}

static void *
poller_main(void *arg)
{
    akc_poller *p = arg;
    rd_kafka_event_t *evs[AKC_POLL_BATCH];
    /* The thread state is made here, on this thread, so that CPython's
     * GIL-state bookkeeping knows whose it is; only this thread deletes
     * it. */
    PyGILState_STATE gstate = PyGILState_Ensure();
    p->tstate = PyThreadState_Get();
    PyEval_SaveThread();
    for (;;) {
        if (atomic_load(&p->stop)) {
            break;
        }
        int tick = atomic_load(&p->tick_ms);
        size_t n = 0;
        rd_kafka_event_t *ev = rd_kafka_queue_poll(p->queue,
                                                   tick > 0 ? tick : 200);
        while (ev != NULL) {
            evs[n++] = ev;
            if (n == AKC_POLL_BATCH) {
                break;
            }
            ev = rd_kafka_queue_poll(p->queue, 0);
        }
        if (n == 0 && tick == 0 && p->nthrottles == 0) {
            continue;
        }
        if (atomic_load(&p->stop) || _Py_IsFinalizing()) {
            for (size_t i = 0; i < n; i++) {
                rd_kafka_event_destroy(evs[i]);
            }
            break;
        }
        PyEval_RestoreThread(p->tstate);
        if (!atomic_load(&p->stop)) {
            poller_handle_batch(p, evs, n, tick > 0);
        }
        else {
            for (size_t i = 0; i < n; i++) {
                rd_kafka_event_destroy(evs[i]);
            }
        }
        int leave = p->exit_requested || atomic_load(&p->stop);
        PyEval_SaveThread();
        if (leave) {
            break;
        }
    }

    /* Leaving, without the GIL.  detached is only ever set on this thread
     * (and stop is final), so reading them here is safe. */
    int graceful = p->exit_requested && !atomic_load(&p->stop);
    if (graceful || p->detached) {
        poller_destroy_handle(p);
    }
    if (_Py_IsFinalizing()) {
        return NULL; /* taking the GIL now would never return */
    }
    PyEval_RestoreThread(p->tstate);
    if (graceful && p->exit_item != NULL && p->dispatcher != NULL) {
        if (akc_dispatcher_push(p->dispatcher, p->exit_item) < 0) {
            PyErr_WriteUnraisable(p->exit_item);
        }
        Py_CLEAR(p->exit_item);
        akc_dispatcher_schedule(p->dispatcher);
    }
    if (p->detached) {
        poller_free(p);
    }
    else {
        p->tstate = NULL;
    }
    PyGILState_Release(gstate);
    return NULL;
}

void
akc_poller_release_handle(akc_poller *p)
{
    poller_destroy_handle(p);
}

int
akc_poller_start(akc_poller *p, PyObject *client, rd_kafka_t *rk,
                 akc_poller_handler handler, akc_poller_atexit atexit_hook)
{
    p->rk = rk;
    p->handler = handler;
    p->atexit_hook = atexit_hook;
    p->queue = rd_kafka_queue_get_main(rk);
    rd_kafka_resp_err_t err = rd_kafka_set_log_queue(rk, NULL);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        akc_raise(p->st, err, "cannot route librdkafka logs to the client");
        return -1;
    }
    p->client_ref = PyWeakref_NewRef(client, NULL);
    if (p->client_ref == NULL) {
        return -1;
    }
    int rc = pthread_create(&p->thread, NULL, poller_main, p);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    p->started = 1;
    p->next = p->st->pollers;
    if (p->next != NULL) {
        p->next->prev = p;
    }
    p->st->pollers = p;
    return 0;
}

/* Joins the thread if it still runs, releases the handle and frees p. */
static void
poller_join_and_free(akc_poller *p)
{
    if (p->started) {
        Py_BEGIN_ALLOW_THREADS
        pthread_join(p->thread, NULL);
        Py_END_ALLOW_THREADS
        p->started = 0;
    }
    Py_BEGIN_ALLOW_THREADS
    poller_destroy_handle(p);
    Py_END_ALLOW_THREADS
    poller_free(p);
}

void
akc_poller_destroy(akc_poller *p)
{
    atomic_store(&p->stop, 1);
    if (p->started && pthread_equal(pthread_self(), p->thread)) {
        /* The client died on its own poll thread (its last reference was
         * dropped there, after its handler returned, so no event is held).
         * The handle goes now, GIL held (librdkafka's threads never need
         * it), so that the caller may release what librdkafka pointed to;
         * the thread cannot join itself, so it frees the poller when it
         * leaves its loop. */
        poller_destroy_handle(p);
        p->detached = 1;
        pthread_detach(p->thread);
        return;
    }
    poller_join_and_free(p);
}

void
akc_poller_join(akc_poller *p)
{
    poller_join_and_free(p);
}

int
akc_pollers_stop_all(akc_state *st)
{
    int n = 0;
    for (;;) {
        akc_poller *p = st->pollers;
        while (p != NULL && (!p->started || p->detached)) {
            p = p->next;
        }
        if (p == NULL) {
            break;
        }
        /* Clear started before letting go of the GIL, so that a client
         * destroyed meanwhile does not join the same thread. */
        pthread_t t = p->thread;
        p->started = 0;
        atomic_store(&p->stop, 1);
        Py_BEGIN_ALLOW_THREADS
        pthread_join(t, NULL);
        Py_END_ALLOW_THREADS
        n++;
    }
    /* With every poll thread gone, each client releases its handle while
     * we still hold the GIL (librdkafka's own threads never need it), so
     * nothing changes the list under us. */
    for (akc_poller *p = st->pollers; p != NULL; p = p->next) {
        if (p->detached || p->rk == NULL) {
            continue;
        }
        PyObject *client = p->client_ref ? PyWeakref_GetObject(p->client_ref)
                                         : NULL;
        if (client != NULL && client != Py_None && p->atexit_hook != NULL) {
            Py_INCREF(client);
            p->atexit_hook(client, p);
            Py_DECREF(client);
        }
        poller_destroy_handle(p);
    }
    return n;
}
