/* The native poll thread.  See poller.h for the ownership rules. */
#include "poller.h"
#include "errors.h"
#include "lifecycle.h"
#include "probe.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longest idle wait on the queue.  Anything that needs the thread sooner
 * (close, flush, exit) wakes it with rd_kafka_queue_yield(). */
#define IDLE_WAIT_MS 1000

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
    if (pthread_mutex_init(&p->qlock, NULL) != 0) {
        free(p);
        PyErr_NoMemory();
        return NULL;
    }
    p->dispatcher = (DispatcherObject *)Py_NewRef(dispatcher);
    atomic_init(&p->stop, 0);
    atomic_init(&p->tick_ms, 0);
    atomic_init(&p->exit_requested, 0);
    return p;
}

void
akc_poller_configure(akc_poller *p, rd_kafka_conf_t *conf, int events,
                     int want_throttle)
{
    char errstr[256];
    rd_kafka_conf_set_events(conf, events | RD_KAFKA_EVENT_LOG |
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

/* syslog severity (0 emerg .. 7 debug) -> Python logging level. */
static int
py_log_level(int severity)
{
    static const int levels[8] = {
        AKC_LOG_CRITICAL, AKC_LOG_CRITICAL, AKC_LOG_CRITICAL, AKC_LOG_ERROR,
        AKC_LOG_WARNING,  AKC_LOG_INFO,     AKC_LOG_INFO,     AKC_LOG_DEBUG,
    };
    return severity >= 0 && severity < 8 ? levels[severity] : AKC_LOG_DEBUG;
}

static int
poller_log_event(akc_poller *p, rd_kafka_event_t *ev)
{
    const char *fac = NULL, *text = NULL;
    int severity = 7;
    if (rd_kafka_event_log(ev, &fac, &text, &severity) != 0) {
        return 0;
    }
    int level = py_log_level(severity);
    PyObject *msg = PyUnicode_FromFormat("librdkafka %s: %s", fac ? fac : "?",
                                         text ? text : "");
    if (msg == NULL) {
        return -1;
    }
    int rc = 0;
    if (p->dispatcher->loop == NULL || p->dispatcher->loop_dead) {
        akc_dispatcher_log(p->dispatcher, level, msg, NULL);
    }
    else {
        PyObject *lvl = PyLong_FromLong(level);
        rc = lvl ? akc_dispatcher_push_kind(p->dispatcher, AKC_ITEM_LOG, lvl,
                                            msg)
                 : -1;
        Py_XDECREF(lvl);
    }
    Py_DECREF(msg);
    return rc;
}

static int
poller_error_event(akc_poller *p, akc_core *core, rd_kafka_event_t *ev)
{
    rd_kafka_resp_err_t code = rd_kafka_event_error(ev);
    int fatal = rd_kafka_event_error_is_fatal(ev);
    char buf[512];
    const char *reason = rd_kafka_event_error_string(ev);
    if (fatal) {
        /* The event carries _FATAL; the real cause is kept apart. */
        code = rd_kafka_fatal_error(p->rk, buf, sizeof(buf));
        reason = buf;
    }
    if (code == RD_KAFKA_RESP_ERR__SSL || code == RD_KAFKA_RESP_ERR__TRANSPORT ||
        code == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
        code == RD_KAFKA_RESP_ERR__RESOLVE) {
        p->conn_err = code;
        p->conn_err_ms = akc_now_ms();
        snprintf(p->conn_reason, sizeof(p->conn_reason), "%.380s",
                 reason ? reason : "");
    }
    PyObject *err = akc_error_new(
        p->st, code, reason, fatal,
        !fatal && (code == RD_KAFKA_RESP_ERR__TRANSPORT ||
                   code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN),
        0);
    if (err == NULL) {
        return -1;
    }
    int rc = 0;
    PyObject *cb = core ? core->error_cb : NULL;
    if (p->dispatcher->loop == NULL || p->dispatcher->loop_dead ||
        cb == NULL) {
        /* No loop to run error_cb on (yet, or any more), or none given:
         * the logger. */
        PyObject *text = PyObject_Repr(err);
        if (text != NULL) {
            akc_dispatcher_logf(p->dispatcher,
                                fatal ? AKC_LOG_CRITICAL : AKC_LOG_ERROR,
                                "aiokafka_c: %U", text);
            Py_DECREF(text);
        }
    }
    else {
        rc = akc_dispatcher_push_kind(p->dispatcher, AKC_ITEM_ERROR, cb, err);
    }
    Py_DECREF(err);
    return rc;
}

static int
poller_stats_event(akc_poller *p, akc_core *core, rd_kafka_event_t *ev)
{
    if (core == NULL || core->stats_cb == NULL ||
        p->dispatcher->loop == NULL) {
        return 0;
    }
    const char *json = rd_kafka_event_stats(ev);
    PyObject *s = PyUnicode_FromString(json ? json : "{}");
    if (s == NULL) {
        return -1;
    }
    int rc = akc_dispatcher_push_kind(p->dispatcher, AKC_ITEM_STATS,
                                      core->stats_cb, s);
    Py_DECREF(s);
    return rc;
}

/* Turns a log, error or statistics event into a dispatcher item.  GIL
 * held; core is NULL once the client is gone.  Returns 1 if the event is
 * the client's own, else 0 or -1 with an exception. */
static int
poller_generic_event(akc_poller *p, akc_core *core, rd_kafka_event_t *ev)
{
    switch (rd_kafka_event_type(ev)) {
    case RD_KAFKA_EVENT_LOG:
        return poller_log_event(p, ev);
    case RD_KAFKA_EVENT_ERROR:
        return poller_error_event(p, core, ev);
    case RD_KAFKA_EVENT_STATS:
        return poller_stats_event(p, core, ev);
    default:
        return 1;
    }
}

static PyObject *
poller_throttle_item(akc_poller *p, int i)
{
    PyObject *ev = PyStructSequence_New(p->st->ThrottleEventType);
    if (ev == NULL) {
        return NULL;
    }
    const char *b = p->throttles[i].broker;
    PyObject *name = PyUnicode_DecodeUTF8(b, strlen(b), "replace");
    PyObject *id = PyLong_FromLong(p->throttles[i].broker_id);
    PyObject *secs = PyFloat_FromDouble(p->throttles[i].throttle_ms / 1000.0);
    if (name == NULL || id == NULL || secs == NULL) {
        Py_XDECREF(name);
        Py_XDECREF(id);
        Py_XDECREF(secs);
        Py_DECREF(ev);
        return NULL;
    }
    PyStructSequence_SET_ITEM(ev, 0, name);
    PyStructSequence_SET_ITEM(ev, 1, id);
    PyStructSequence_SET_ITEM(ev, 2, secs);
    return ev;
}

static int
poller_throttles(akc_poller *p, akc_core *core)
{
    int n = p->nthrottles;
    p->nthrottles = 0;
    if (core == NULL || core->throttle_cb == NULL ||
        p->dispatcher->loop == NULL) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        PyObject *ev = poller_throttle_item(p, i);
        if (ev == NULL) {
            return -1;
        }
        int rc = akc_dispatcher_push_kind(p->dispatcher, AKC_ITEM_THROTTLE,
                                          core->throttle_cb, ev);
        Py_DECREF(ev);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

/* The client's part of a batch, with the client alive: its events, then,
 * while it closes, whether the handle may go. */
static void
poller_client_batch(akc_poller *p, PyObject *client, rd_kafka_event_t **own,
                    size_t nown)
{
    akc_core *core = p->core;
    p->ops->on_events(client, own, nown);
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(client);
    }
    if (core->state == AKC_CLOSING && !atomic_load(&p->exit_requested) &&
        p->ops->closing_step(client)) {
        akc_core_forget_handle(core, client, 0);
        akc_poller_request_exit(p);
    }
}

/* One batch, on the poll thread with the GIL held. */
static void
poller_handle_batch(akc_poller *p, rd_kafka_event_t **evs, size_t n,
                    int tick)
{
    PyObject *client = NULL;
    if (p->core != NULL && akc_weakref_get(p->client_ref, &client) < 0) {
        PyErr_WriteUnraisable((PyObject *)p->dispatcher);
    }
    akc_core *core = client ? p->core : NULL;
    rd_kafka_event_t *own[AKC_POLL_BATCH];
    size_t nown = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = poller_generic_event(p, core, evs[i]);
        if (rc > 0) {
            own[nown++] = evs[i];
            continue;
        }
        if (rc < 0) {
            PyErr_WriteUnraisable((PyObject *)p->dispatcher);
        }
        rd_kafka_event_destroy(evs[i]);
    }
    if (p->nthrottles > 0 && poller_throttles(p, core) < 0) {
        PyErr_WriteUnraisable((PyObject *)p->dispatcher);
    }
    if (client != NULL && (nown > 0 || tick || core->state == AKC_CLOSING)) {
        poller_client_batch(p, client, own, nown);
    }
    else {
        for (size_t i = 0; i < nown; i++) {
            rd_kafka_event_destroy(own[i]);
        }
    }
    akc_dispatcher_schedule(p->dispatcher);
    /* May be the last reference: the client's dealloc then orphans this
     * thread, which is fine here (see akc_poller_orphan). */
    Py_XDECREF(client);
}

/* Waits up to timeout_ms for events and handles them as one batch.  Poll
 * thread, GIL NOT held.  Returns the number of events taken. */
static size_t
poller_run_once(akc_poller *p, int timeout_ms)
{
    rd_kafka_event_t *evs[AKC_POLL_BATCH];
    int tick = atomic_load(&p->tick_ms);
    size_t n = 0;
    rd_kafka_event_t *ev = rd_kafka_queue_poll(p->queue, timeout_ms);
    if (ev != NULL) {
        akc_probe(AKC_PROBE_EVENT);
    }
    while (ev != NULL) {
        evs[n++] = ev;
        if (n == AKC_POLL_BATCH) {
            break;
        }
        ev = rd_kafka_queue_poll(p->queue, 0);
    }
    int need_gil = 0;
    if (p->ops->nogil_pass != NULL) {
        size_t taken = n;
        need_gil = p->ops->nogil_pass(p, evs, &n);
        taken -= n;
        if (n == 0 && !need_gil && tick == 0 && p->nthrottles == 0 &&
            !atomic_load(&p->exit_requested)) {
            return taken;
        }
    }
    if (n == 0 && !need_gil && tick == 0 && p->nthrottles == 0 &&
        !atomic_load(&p->exit_requested)) {
        return 0;
    }
    if (atomic_load(&p->stop) || akc_is_finalizing()) {
        for (size_t i = 0; i < n; i++) {
            rd_kafka_event_destroy(evs[i]);
        }
        return n;
    }
    PyEval_RestoreThread(p->tstate);
    akc_probe(AKC_PROBE_GIL);
    if (!atomic_load(&p->stop)) {
        poller_handle_batch(p, evs, n, tick > 0 || need_gil);
    }
    else {
        for (size_t i = 0; i < n; i++) {
            rd_kafka_event_destroy(evs[i]);
        }
    }
    PyEval_SaveThread();
    return n;
}

size_t
akc_poller_serve(akc_poller *p, int timeout_ms)
{
    return poller_run_once(p, timeout_ms);
}

int
akc_poller_is_current(akc_poller *p)
{
    return p != NULL && p->started && pthread_equal(pthread_self(), p->thread);
}

int
akc_pollers_on_poll_thread(akc_state *st)
{
    for (akc_poller *p = st->pollers; p != NULL; p = p->next) {
        if (akc_poller_is_current(p)) {
            return 1;
        }
    }
    return 0;
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

/* rd_kafka_destroy() on a thread of its own, waited for until a
 * deadline.  librdkafka 2.0.2's destroy joins its main thread, which
 * waits for the group's outstanding requests to time out: with the
 * coordinator gone that is the session timeout (45 s by default), which
 * no close(timeout) may wait for.  Past the deadline the destroy goes on
 * alone (its threads with it, for up to that long) and touches nothing
 * of ours: our queue and the fetch queue's event callback are gone by
 * then, and the throttle callback (opaque p, set when the client has a
 * throttle_cb) only runs while someone serves the handle's queues, which
 * a consumer destroyed without its close and with its reply queue
 * disabled does not. */
typedef struct {
    rd_kafka_t *rk;
    int flags;
    int done;
    int refs; /* the waiter's and the destroying thread's */
    pthread_mutex_t lock;
    pthread_cond_t cond;
} reaper;

static void
reaper_unref(reaper *r)
{
    pthread_mutex_lock(&r->lock);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (last) {
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
    }
}

static void *
reaper_main(void *arg)
{
    reaper *r = arg;
    rd_kafka_destroy_flags(r->rk, r->flags);
    pthread_mutex_lock(&r->lock);
    r->done = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    reaper_unref(r);
    return NULL;
}

/* Returns 1 if the handle was destroyed by the deadline. */
static int
destroy_within(rd_kafka_t *rk, int flags, int64_t deadline)
{
    reaper *r = calloc(1, sizeof(*r));
    if (r == NULL || pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        rd_kafka_destroy_flags(rk, flags);
        return 1;
    }
    pthread_condattr_t cattr;
    int cond_ok = pthread_condattr_init(&cattr) == 0;
    if (cond_ok) {
        /* akc_now_ms() is CLOCK_MONOTONIC: so is the wait. */
        cond_ok = pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC) == 0 &&
                  pthread_cond_init(&r->cond, &cattr) == 0;
        pthread_condattr_destroy(&cattr);
    }
    if (!cond_ok) {
        pthread_mutex_destroy(&r->lock);
        free(r);
        rd_kafka_destroy_flags(rk, flags);
        return 1;
    }
    r->rk = rk;
    r->flags = flags;
    r->refs = 2;
    pthread_t t;
    pthread_attr_t attr;
    int started = pthread_attr_init(&attr) == 0;
    if (started) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, reaper_main, r) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        r->refs = 1;
        reaper_unref(r);
        rd_kafka_destroy_flags(rk, flags);
        return 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t left = deadline - akc_now_ms();
    left = left < 0 ? 0 : left;
    ts.tv_sec += (time_t)(left / 1000);
    ts.tv_nsec += (long)(left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (!r->done) {
        if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0) {
            break;
        }
    }
    int done = r->done;
    pthread_mutex_unlock(&r->lock);
    reaper_unref(r);
    return done;
}

/* Destroys the librdkafka handle and the queue.  No GIL needed, and none
 * should be held by the caller's thread if it can be avoided:
 * rd_kafka_destroy() joins librdkafka's threads. */
static void
poller_destroy_handle(akc_poller *p)
{
    int leave = 0;
    int64_t destroy_by = -1;
    if (p->ops != NULL && p->ops->before_destroy != NULL && p->rk != NULL) {
        leave = p->ops->before_destroy(p, &destroy_by);
    }
    pthread_mutex_lock(&p->qlock);
    if (p->queue != NULL) {
        rd_kafka_queue_destroy(p->queue);
        p->queue = NULL;
    }
    pthread_mutex_unlock(&p->qlock);
    if (p->rk != NULL) {
        if (rd_kafka_type(p->rk) == RD_KAFKA_PRODUCER) {
            rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE |
                                      RD_KAFKA_PURGE_F_INFLIGHT |
                                      RD_KAFKA_PURGE_F_NON_BLOCKING);
        }
        if (leave) {
            /* Deliberately leaked: its threads idle until the process
             * exits. */
        }
        else if (rd_kafka_type(p->rk) == RD_KAFKA_CONSUMER) {
            /* A graceful close left the group in the client's teardown
             * hook; every other path must not block on a broker here. */
            int flags = RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE;
            if (destroy_by < 0) {
                rd_kafka_destroy_flags(p->rk, flags);
            }
            else {
                (void)destroy_within(p->rk, flags, destroy_by);
            }
        }
        else {
            rd_kafka_destroy(p->rk);
        }
        p->rk = NULL;
    }
}

/* Frees the poller and its references.  GIL held.  The thread state is
 * not touched: only the poll thread deletes it. */
static void
poller_free(akc_poller *p)
{
    poller_unlink(p);
    if (p->orphans != NULL && p->ops != NULL && p->ops->fail_orphans) {
        p->ops->fail_orphans(p->dispatcher, p->orphans, 1);
    }
    p->orphans = NULL;
    if (p->ctx != NULL && p->ops != NULL && p->ops->ctx_free != NULL) {
        p->ops->ctx_free(p->ctx, p->forked);
    }
    p->ctx = NULL;
    Py_CLEAR(p->dispatcher);
    Py_CLEAR(p->client_ref);
    if (!p->forked) {
        /* In a forked child it may be held by a thread that is gone. */
        pthread_mutex_destroy(&p->qlock);
    }
    free(p);
}

void
akc_poller_free_unstarted(akc_poller *p)
{
    poller_free(p);
}

/* The graceful end, GIL held, handle gone: tell the client, or fail what
 * a dropped client left.  Returns 1 if the thread must free p itself. */
static int
poller_finish(akc_poller *p)
{
    akc_core *core = p->core;
    if (core != NULL) {
        /* Attached: the client is alive (its dealloc detaches us before
         * it runs any code), so a strong reference is safe. */
        PyObject *client = Py_NewRef(core->owner);
        p->finished = 1;
        akc_core_closed(core, client);
        /* May be the last reference: the dealloc then hands p to us. */
        Py_DECREF(client);
    }
    else if (p->orphans != NULL && p->ops->fail_orphans != NULL) {
        void *orphans = p->orphans;
        p->orphans = NULL;
        p->ops->fail_orphans(p->dispatcher, orphans, 0);
    }
    akc_dispatcher_schedule(p->dispatcher);
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)p->dispatcher);
    }
    return p->self_free && !atomic_load(&p->stop);
}

static void *
poller_main(void *arg)
{
    akc_poller *p = arg;
    /* The thread state is made here, on this thread, for the client's own
     * interpreter (a subinterpreter's client runs its Python code there);
     * only this thread deletes it. */
    PyThreadState *tstate = PyThreadState_New(p->interp);
    if (tstate == NULL) {
        return NULL;
    }
    p->tstate = tstate;
    while (!atomic_load(&p->stop) && !atomic_load(&p->exit_requested)) {
        int tick = atomic_load(&p->tick_ms);
        poller_run_once(p, tick > 0 ? tick : IDLE_WAIT_MS);
    }
    if (!atomic_load(&p->stop)) {
        if (p->ops->teardown != NULL) {
            p->ops->teardown(p);
        }
        poller_destroy_handle(p);
    }
    if (akc_is_finalizing()) {
        return NULL; /* taking the GIL now would never return */
    }
    PyEval_RestoreThread(tstate);
    if (!atomic_load(&p->stop) && poller_finish(p)) {
        /* Orphaned: nobody else will join or free us. */
        pthread_detach(p->thread);
        poller_free(p);
    }
    /* Else the core (akc_core_reap) or atexit joins us and frees p. */
    PyThreadState_Clear(tstate);
    PyThreadState_DeleteCurrent();
    return NULL;
}

int
akc_poller_start(akc_poller *p, PyObject *client, akc_core *core,
                 rd_kafka_t *rk, rd_kafka_queue_t *queue,
                 const akc_client_ops *ops)
{
    rd_kafka_resp_err_t err = rd_kafka_set_log_queue(rk, queue);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        akc_raise(p->st, err, "cannot route librdkafka logs to the client");
        return -1;
    }
    p->client_ref = PyWeakref_NewRef(client, NULL);
    if (p->client_ref == NULL) {
        return -1;
    }
    p->interp = PyInterpreterState_Get();
    p->rk = rk;
    p->queue = queue;
    p->ops = ops;
    p->core = core;
    int rc = pthread_create(&p->thread, NULL, poller_main, p);
    if (rc != 0) {
        p->rk = NULL;
        p->queue = NULL;
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

/* Wakes the thread from its wait on the queue.  Any thread: the queue
 * lock keeps the thread from destroying the queue meanwhile. */
void
akc_poller_wake(akc_poller *p)
{
    pthread_mutex_lock(&p->qlock);
    if (p->queue != NULL) {
        rd_kafka_queue_yield(p->queue);
    }
    pthread_mutex_unlock(&p->qlock);
}

void
akc_poller_set_tick(akc_poller *p, int ms)
{
    int was = atomic_exchange(&p->tick_ms, ms);
    if (ms > 0 && was == 0) {
        /* The thread may be in a long idle wait: wake it, so that close()
         * and flush() deadlines are checked from now on. */
        akc_poller_wake(p);
    }
}

void
akc_poller_request_exit(akc_poller *p)
{
    if (!atomic_exchange(&p->exit_requested, 1) &&
        !akc_poller_is_current(p)) {
        akc_poller_wake(p);
    }
}

void
akc_poller_orphan(akc_poller *p, void *orphans)
{
    p->orphans = orphans;
    p->core = NULL;
    p->self_free = 1;
    if (p->finished) {
        /* Only leaving: this runs on the thread itself (see
         * poller_finish), which now frees p on its way out. */
        return;
    }
    /* The queue belongs to the thread until it destroys it, and the thread
     * only does so after seeing exit_requested, set here first. */
    akc_poller_request_exit(p);
}

/* Joins the thread (GIL released meanwhile) unless it never started or
 * was joined.  The caller has claimed p first.  Returns 1 if it joined. */
static int
poller_join(akc_poller *p)
{
    if (!p->started) {
        return 0;
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_join(p->thread, NULL);
    Py_END_ALLOW_THREADS
    p->started = 0;
    return 1;
}

void
akc_poller_reap(akc_poller *p)
{
    p->core = NULL;
    if (akc_poller_is_current(p)) {
        p->self_free = 1; /* the thread frees itself (poller_main) */
        return;
    }
    /* Claimed before the GIL goes: atexit must not find it and join the
     * thread a second time. */
    poller_unlink(p);
    poller_join(p);
    poller_free(p);
}

/* atexit, for one poller whose thread has been joined: destroy the
 * handle (unless the thread did), then let the client drop its state.
 * GIL held. */
static void
poller_release_at_exit(akc_poller *p)
{
    akc_core *core = p->core;
    PyObject *client = core ? Py_NewRef(core->owner) : NULL;
    if (client != NULL && core->rk != NULL) {
        akc_core_forget_handle(core, client, 0);
    }
    Py_BEGIN_ALLOW_THREADS
    poller_destroy_handle(p);
    Py_END_ALLOW_THREADS
    if (client != NULL) {
        core->poller = NULL;
        if (core->state != AKC_CLOSED) {
            core->state = AKC_CLOSED;
            p->ops->release(client, "the interpreter exited", 1);
            akc_core_wake_blocked(core);
        }
        p->core = NULL;
        Py_DECREF(client);
    }
    PyErr_Clear();
}

int
akc_pollers_stop_all(akc_state *st)
{
    int n = 0;
    st->shutting_down = 1;
    while (st->pollers != NULL) {
        akc_poller *p = st->pollers;
        /* Claimed before the GIL goes: neither the list nor the client
         * may lead anyone else to it while we join. */
        poller_unlink(p);
        p->claimed = 1; /* the client's reap and detach leave it to us */
        atomic_store(&p->stop, 1);
        akc_poller_wake(p);
        n += poller_join(p);
        poller_release_at_exit(p);
        poller_free(p); /* fails the orphans of a dropped client quietly */
    }
    return n;
}

void
akc_pollers_after_fork(akc_state *st)
{
    while (st->pollers != NULL) {
        akc_poller *p = st->pollers;
        poller_unlink(p);
        /* The handle, its queue, the thread and its thread state stay
         * untouched: the threads that used them do not exist here and may
         * have died holding their locks. */
        p->rk = NULL;
        p->queue = NULL;
        p->tstate = NULL;
        p->started = 0;
        p->forked = 1;
        akc_core *core = p->core;
        if (core != NULL) {
            PyObject *client = Py_NewRef(core->owner);
            akc_core_forked(core, client);
            Py_DECREF(client);
        }
        /* What a dropped client left is dropped: nothing here reads those
         * buffers any more. */
        p->core = NULL;
        poller_free(p);
    }
}
