/* AIOConsumer: the asyncio consumer, a handler on the client core.
 *
 * The poll thread serves the consumer queue.  Without the GIL it moves
 * fetched messages into the fetch ring (fetch.c) and runs the commands
 * the loop queued (seek, pause, assign, the answer to a rebalance); with
 * the GIL, once per batch, it handles what is left: rebalances (handed to
 * the loop, where on_assign/on_revoke/on_lost run, plain or async, before
 * the answer goes back as a command), commit results, answered commands,
 * and waking consume calls that wait for an empty ring.
 *
 * Rebalances and the GIL pass are in rebalance.c; consume calls
 * (consume.c) pop the ring on the loop thread, so a ready message comes
 * back without a future and without a loop round trip; the other methods
 * are in consumer_calls.c, and the blocking ones run on the client's
 * worker thread (consumer_jobs.c, worker.c).
 * Construction, closing and every teardown path are the client core's
 * (lifecycle.c); this file supplies its hooks. */
#include "consumer.h"
#include "consume.h"
#include "conf.h"
#include "errors.h"
#include "groupmeta.h"
#include "message.h"
#include "metadata.h"
#include "topic_partition.h"
#include "worker.h"

#include <string.h>
#include <structmember.h>

/* Properties of ours in the config, not librdkafka's. */
static const char *const own_keys[] = {
    "on_commit", "max_buffer_messages", "max_buffer_bytes", NULL,
};

#define DEFAULT_MAX_BUFFER_MESSAGES 10000
#define DEFAULT_MAX_BUFFER_BYTES (16 << 20)
/* Leaving the group on close() with timeout=None. */
#define DEFAULT_CLOSE_MS 30000
/* How long any end of a consumer waits for rd_kafka_destroy() past its
 * deadline before the destroy finishes on its own thread. */
#define DESTROY_GRACE_MS 1000

/* ---- lifecycle hooks ------------------------------------------------- */

/* While closing: once, fail the waiting consume calls and run on_revoke
 * for the current assignment (as Java's close() does); then wait for the
 * callbacks (bounded by the close's deadline) and store what the user
 * finished, for the final commit librdkafka makes on leaving. */
static int
consumer_closing_step(PyObject *client)
{
    ConsumerObject *self = (ConsumerObject *)client;
    akc_core *core = &self->core;
    akc_fetch *f = self->fetch;
    int64_t now = akc_now_ms();
    if (!self->close_started) {
        self->close_started_ms = now;
    }
    int64_t soft = core->close_drain_deadline >= 0
                       ? core->close_drain_deadline
                       : self->close_started_ms + DEFAULT_CLOSE_MS;
    int expired = now >= soft;
    if (!self->close_started) {
        self->close_started = 1;
        akc_consume_fail_waiters(self, "the consumer was closed");
        PyObject *cb = self->on_revoke;
        rd_kafka_topic_partition_list_t *a = NULL;
        pthread_mutex_lock(&f->lock);
        if (f->assignment != NULL && f->assignment->cnt > 0) {
            a = akc_plain_list(f->assignment);
        }
        pthread_mutex_unlock(&f->lock);
        DispatcherObject *d = core->dispatcher;
        if (a != NULL && cb != NULL && self->subscription != NULL &&
            PyList_GET_SIZE(self->subscription) > 0 && d->loop != NULL &&
            !d->loop_dead && self->rebalance == NULL) {
            akc_consumer_store_released(self, 1);
            if (akc_rebalance_push(self, cb, a, NULL, 1) < 0) {
                PyErr_WriteUnraisable(client);
            }
        }
        if (a != NULL) {
            rd_kafka_topic_partition_list_destroy(a);
        }
        return 0;
    }
    if (self->rebalance != NULL && !expired && !self->close_skip_rebalance) {
        return 0;
    }
    if (self->rebalance != NULL && !self->close_skip_rebalance) {
        akc_dispatcher_logf(core->dispatcher, AKC_LOG_WARNING,
                            "aiokafka_c: close() did not wait for a "
                            "rebalance callback still running: its timeout "
                            "passed");
    }
    akc_consumer_store_released(self, 1);
    int64_t deadline = core->close_deadline >= 0 ? core->close_deadline
                                                 : now + DEFAULT_CLOSE_MS;
    pthread_mutex_lock(&f->lock);
    f->graceful = 1;
    f->close_deadline = deadline;
    pthread_mutex_unlock(&f->lock);
    return 1;
}

static void
consumer_forget_handle(PyObject *client, int forked)
{
    ConsumerObject *self = (ConsumerObject *)client;
    if (self->cq != NULL && !forked) {
        rd_kafka_queue_destroy(self->cq);
    }
    self->cq = NULL;
}

/* Answers a rebalance during close without user code: librdkafka waits
 * for it before it can leave. */
static void
teardown_rebalance(rd_kafka_t *rk, rd_kafka_event_t *ev)
{
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    const rd_kafka_topic_partition_list_t *parts =
        rd_kafka_event_topic_partition_list(ev);
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    if (coop && err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        error = rd_kafka_incremental_assign(rk, parts);
    }
    else if (coop && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        error = rd_kafka_incremental_unassign(rk, parts);
    }
    else if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
    }
    else {
        rd_kafka_assign(rk, NULL);
    }
    if (error != NULL) {
        rd_kafka_error_destroy(error);
    }
}

/* Poll thread, no GIL: leave the group (librdkafka commits what is
 * stored when auto-commit is on), bounded by the close's deadline.  Only
 * for a close() the user asked for: a dropped consumer leaves without
 * it. */
static void
consumer_teardown(akc_poller *p)
{
    akc_fetch *f = p->ctx;
    pthread_mutex_lock(&f->lock);
    int graceful = f->graceful;
    int64_t deadline = f->close_deadline;
    pthread_mutex_unlock(&f->lock);
    /* A blocking call still running (a metadata request to a broker that
     * is gone, say) may not hold the close past its deadline. */
    if (f->worker != NULL &&
        akc_worker_stop_by(f->worker, graceful ? deadline
                                               : akc_now_ms() + 1000)) {
        pthread_mutex_lock(&f->lock);
        f->worker_busy = 1;
        pthread_mutex_unlock(&f->lock);
    }
    /* Fetched messages hold references into the group's partitions. */
    akc_fetch_close(f);
    if (!graceful) {
        return;
    }
    rd_kafka_t *rk = p->rk;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(rk, q);
    if (error != NULL) {
        rd_kafka_error_destroy(error);
    }
    else {
        /* At interpreter exit (stop) the close gives up at once. */
        while (!rd_kafka_consumer_closed(rk) && akc_now_ms() < deadline &&
               !atomic_load(&p->stop)) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 50);
            if (ev == NULL) {
                continue;
            }
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
                teardown_rebalance(rk, ev);
            }
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
}

/* librdkafka 2.0.2 aborts the process (librdkafka#4381, fixed in 2.3.0)
 * when it frees a cooperative-sticky consumer that joined a group but
 * never got its first assignment: the final free asserts on assignor
 * state that only the first assignment makes.  Such a handle has left
 * its group by now (or never finished joining); it is left behind
 * instead of freed. */
static int
consumer_before_destroy(akc_poller *p, int64_t *destroy_by)
{
    akc_fetch *f = p->ctx;
    int busy = f->worker != NULL &&
               akc_worker_stop_by(f->worker, akc_now_ms() + 1000);
    akc_fetch_close(f);
    pthread_mutex_lock(&f->lock);
    int hazard = f->sticky_hazard;
    busy |= f->worker_busy;
    /* The destroy itself may wait for the group's requests to a broker
     * that is gone: a close keeps to its deadline, any other end waits
     * a moment for it at most. */
    int64_t floor = akc_now_ms() + DESTROY_GRACE_MS;
    *destroy_by = f->graceful && f->close_deadline > floor &&
                          !atomic_load(&p->stop)
                      ? f->close_deadline
                      : floor;
    pthread_mutex_unlock(&f->lock);
    /* A worker still inside a call uses the handle: it stays too. */
    return busy || (hazard && rd_kafka_version() < 0x020300ff);
}

static int
consumer_nogil_pass(akc_poller *p, rd_kafka_event_t **evs, size_t *n)
{
    return akc_fetch_nogil_pass(p->ctx, evs, n);
}

static void
consumer_ctx_free(void *ctx, int forked)
{
    akc_fetch_unref(ctx, forked);
}

/* Fails every commit still waiting for its result. */
static void
consumer_fail_commits(ConsumerObject *self, const char *why, int quiet)
{
    PyObject *futs = PyDict_Values(self->commits);
    PyDict_Clear(self->commits);
    if (futs == NULL || quiet) {
        Py_XDECREF(futs);
        PyErr_Clear();
        return;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(futs); i++) {
        PyObject *err = akc_error_from_code(self->core.st,
                                            RD_KAFKA_RESP_ERR__DESTROY, why);
        PyObject *exc = err ? akc_exception_new(self->core.st, err) : NULL;
        Py_XDECREF(err);
        if (exc == NULL ||
            akc_dispatcher_push_kind(self->core.dispatcher, AKC_ITEM_RESULT,
                                     PyList_GET_ITEM(futs, i), exc) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_XDECREF(exc);
    }
    Py_DECREF(futs);
}

static void
consumer_release(PyObject *client, const char *why, int quiet)
{
    ConsumerObject *self = (ConsumerObject *)client;
    if (quiet && why != NULL) {
        /* The interpreter exits with the consumer open: never silently. */
        akc_dispatcher_logf(self->core.dispatcher, AKC_LOG_WARNING,
                            self->close_started
                                ? "aiokafka_c: exiting while an AIOConsumer's "
                                  "close() was still running: it may not have "
                                  "made its final commit or left its group"
                                : "aiokafka_c: exiting with an AIOConsumer "
                                  "that was not closed: no final commit and "
                                  "no LeaveGroup (await close() before exit)");
    }
    if (!quiet) {
        akc_consumer_answer_cmds(self);
    }
    akc_consume_fail_waiters(self, quiet ? NULL : why);
    consumer_fail_commits(self, why, quiet);
    Py_CLEAR(self->rebalance);
    if (self->fetch != NULL && !quiet) {
        /* Commands queued after the thread's last pass. */
        akc_fetch *f = self->fetch;
        pthread_mutex_lock(&f->lock);
        akc_cmd *c = f->cmds;
        f->cmds = NULL;
        f->cmds_tail = &f->cmds;
        pthread_mutex_unlock(&f->lock);
        while (c != NULL) {
            akc_cmd *next = c->next;
            if (c->future != NULL) {
                PyObject *err = akc_error_from_code(
                    self->core.st, RD_KAFKA_RESP_ERR__DESTROY, why);
                PyObject *exc = err ? akc_exception_new(self->core.st, err)
                                    : NULL;
                Py_XDECREF(err);
                if (exc != NULL) {
                    akc_dispatcher_push_kind(self->core.dispatcher,
                                             AKC_ITEM_RESULT, c->future, exc);
                }
                Py_XDECREF(exc);
            }
            akc_cmd_free(c);
            c = next;
        }
    }
    PyErr_Clear();
}

static const akc_client_ops consumer_ops = {
    .on_events = akc_consumer_on_events,
    .closing_step = consumer_closing_step,
    .forget_handle = consumer_forget_handle,
    .teardown = consumer_teardown,
    .release = consumer_release,
    .fail_orphans = NULL,
    .nogil_pass = consumer_nogil_pass,
    .before_destroy = consumer_before_destroy,
    .ctx_free = consumer_ctx_free,
};

/* ---- construction ------------------------------------------------------ */

/* Takes our own keys out of the config: a dict copy without them.
 * Returns the copy, or NULL with an exception. */
static PyObject *
split_config(PyObject *config, PyObject **on_commit, long long *max_msgs,
             long long *max_bytes)
{
    PyObject *items = akc_conf_items(config);
    PyObject *d = items ? PyDict_New() : NULL;
    if (d == NULL) {
        Py_XDECREF(items);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *kv = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(kv) || PyTuple_GET_SIZE(kv) != 2 ||
            PyDict_SetItem(d, PyTuple_GET_ITEM(kv, 0),
                           PyTuple_GET_ITEM(kv, 1)) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError,
                                "AIOConsumer(): config items must be pairs");
            }
            goto fail;
        }
    }
    Py_CLEAR(items);
    /* librdkafka 2.0.2 backs off fetching a partition whose queue holds
     * queued.min.messages (100000): on a backlog that, not the client,
     * bounds the rate.  Memory stays bounded by queued.max.messages.kbytes
     * and our ring either way. */
    if (PyDict_GetItemString(d, "queued.min.messages") == NULL) {
        PyObject *v = PyLong_FromLong(1000000);
        if (v == NULL || PyDict_SetItemString(d, "queued.min.messages", v) < 0) {
            Py_XDECREF(v);
            goto fail;
        }
        Py_DECREF(v);
    }
    for (int k = 0; own_keys[k] != NULL; k++) {
        PyObject *v = PyDict_GetItemString(d, own_keys[k]);
        if (v == NULL) {
            continue;
        }
        Py_INCREF(v);
        PyDict_DelItemString(d, own_keys[k]);
        if (k == 0) {
            if (v != Py_None && !PyCallable_Check(v)) {
                PyErr_Format(PyExc_TypeError, "on_commit must be callable, "
                             "not %.100s", Py_TYPE(v)->tp_name);
                Py_DECREF(v);
                goto fail;
            }
            if (v != Py_None) {
                *on_commit = Py_NewRef(v);
            }
        }
        else {
            long long x = PyLong_Check(v) && !PyBool_Check(v)
                              ? PyLong_AsLongLong(v)
                              : -1;
            if (x < 1) {
                if (!PyErr_Occurred() || PyErr_ExceptionMatches(
                                             PyExc_OverflowError)) {
                    PyErr_Clear();
                    PyErr_Format(PyExc_ValueError,
                                 "%s must be an int >= 1, not %R",
                                 own_keys[k], v);
                }
                Py_DECREF(v);
                goto fail;
            }
            *(k == 1 ? max_msgs : max_bytes) = x;
        }
        Py_DECREF(v);
    }
    return d;
fail:
    Py_XDECREF(items);
    Py_DECREF(d);
    Py_CLEAR(*on_commit);
    return NULL;
}

static rd_kafka_conf_t *
consumer_prepare(ConsumerObject *self, PyObject *config, PyObject *loop,
                 long long *max_msgs, long long *max_bytes, int *throttle)
{
    akc_core *core = &self->core;
    PyObject *on_commit = NULL;
    PyObject *d = split_config(config, &on_commit, max_msgs, max_bytes);
    if (d == NULL) {
        return NULL;
    }
    akc_callbacks cbs;
    rd_kafka_conf_t *conf = akc_conf_build(core->st, d, &cbs);
    Py_DECREF(d);
    if (conf == NULL) {
        Py_XDECREF(on_commit);
        return NULL;
    }
    char errstr[256];
    /* We store offsets when the user is done with a message; librdkafka
     * would store them when our thread takes them off its queue. */
    char buf[16];
    size_t sz = sizeof(buf);
    self->auto_store = rd_kafka_conf_get(conf, "enable.auto.offset.store",
                                         buf, &sz) != RD_KAFKA_CONF_OK ||
                       strcmp(buf, "true") == 0;
    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr,
                      sizeof(errstr));
    sz = sizeof(errstr);
    self->sticky = rd_kafka_conf_get(conf, "partition.assignment.strategy",
                                     errstr, &sz) == RD_KAFKA_CONF_OK &&
                   strstr(errstr, "cooperative-sticky") != NULL;
    self->on_commit = on_commit;
    *throttle = cbs.throttle_cb != NULL;
    core->logger = Py_NewRef(cbs.logger);
    core->dispatcher = akc_dispatcher_new(core->st, core->logger,
                                          akc_consumer_item);
    core->error_cb = Py_XNewRef(cbs.error_cb);
    core->stats_cb = Py_XNewRef(cbs.stats_cb);
    core->throttle_cb = Py_XNewRef(cbs.throttle_cb);
    akc_callbacks_clear(&cbs);
    if (core->dispatcher == NULL ||
        (loop != Py_None ? akc_dispatcher_bind(core->dispatcher, loop)
                         : akc_dispatcher_bind_running(core->dispatcher)) <
            0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* librdkafka's thread put a message in the empty fetch queue: wake the
 * poll thread, which waits on the consumer queue. */
static void
fetchq_ready(rd_kafka_t *rk, void *opaque)
{
    (void)rk;
    akc_poller_wake(opaque);
}

static int
consumer_start(ConsumerObject *self, rd_kafka_conf_t *conf, size_t max_msgs,
               size_t max_bytes, int throttle)
{
    akc_core *core = &self->core;
    akc_fetch *f = akc_fetch_new(max_msgs, max_bytes);
    akc_poller *p = f ? akc_poller_new(core->st, core->dispatcher) : NULL;
    akc_worker *w = p ? akc_worker_new(core->st, core->dispatcher) : NULL;
    if (w == NULL) {
        if (p != NULL) {
            akc_poller_free_unstarted(p);
        }
        akc_fetch_unref(f, 0);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    f->worker = w;
    akc_poller_configure(p, conf,
                         RD_KAFKA_EVENT_FETCH | RD_KAFKA_EVENT_REBALANCE |
                             RD_KAFKA_EVENT_OFFSET_COMMIT,
                         throttle);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                                  sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        akc_poller_free_unstarted(p);
        akc_fetch_unref(f, 0);
        akc_raise(core->st, RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
        return -1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
    self->cq = rd_kafka_queue_get_consumer(rk);
    f->rk = rk;
    f->fetchq = rd_kafka_queue_new(rk);
    rd_kafka_queue_cb_event_enable(f->fetchq, fetchq_ready, p);
    p->ctx = akc_fetch_ref(f);
    self->fetch = f;
    if (queue == NULL || self->cq == NULL ||
        akc_poller_start(p, (PyObject *)self, core, rk, queue,
                         &consumer_ops) < 0) {
        if (!PyErr_Occurred()) {
            akc_raise(core->st, RD_KAFKA_RESP_ERR__STATE,
                      "not a group consumer: no consumer queue");
        }
        akc_fetch_close(f);           /* its queue goes before the handle */
        akc_poller_free_unstarted(p); /* drops its share of f */
        Py_BEGIN_ALLOW_THREADS
        if (queue != NULL) {
            rd_kafka_queue_destroy(queue);
        }
        if (self->cq != NULL) {
            rd_kafka_queue_destroy(self->cq);
        }
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        Py_END_ALLOW_THREADS
        self->cq = NULL;
        return -1;
    }
    core->rk = rk;
    core->poller = p;
    core->ops = &consumer_ops;
    core->state = AKC_OPEN;
    return 0;
}

static int
consumer_init(ConsumerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config", "loop", NULL};
    PyObject *config, *loop = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:AIOConsumer", kwlist,
                                     &config, &loop)) {
        return -1;
    }
    akc_core *core = &self->core;
    if (core->state != AKC_NEW || self->fetch != NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "AIOConsumer.__init__() called on a consumer that is "
                        "already initialized");
        return -1;
    }
    if (core->st->shutting_down) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot make an AIOConsumer: the interpreter is "
                        "exiting");
        return -1;
    }
    long long max_msgs = DEFAULT_MAX_BUFFER_MESSAGES;
    long long max_bytes = DEFAULT_MAX_BUFFER_BYTES;
    int throttle;
    rd_kafka_conf_t *conf = consumer_prepare(self, config, loop, &max_msgs,
                                             &max_bytes, &throttle);
    if (conf == NULL ||
        consumer_start(self, conf, (size_t)max_msgs, (size_t)max_bytes,
                       throttle) < 0) {
        akc_core_clear(core);
        Py_CLEAR(core->dispatcher);
        Py_CLEAR(self->on_commit);
        return -1;
    }
    return 0;
}

static PyObject *
consumer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    akc_state *st = akc_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    ConsumerObject *self = (ConsumerObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (akc_core_init(&self->core, (PyObject *)self, st, "AIOConsumer") < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->waiters = PyList_New(0);
    self->commits = PyDict_New();
    if (self->waiters == NULL || self->commits == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* ---- teardown ------------------------------------------------------------ */

static int
consumer_traverse(ConsumerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->waiters);
    Py_VISIT(self->commits);
    Py_VISIT(self->on_assign);
    Py_VISIT(self->on_revoke);
    Py_VISIT(self->on_lost);
    Py_VISIT(self->on_commit);
    Py_VISIT(self->subscription);
    Py_VISIT(self->rebalance);
    return akc_core_traverse(&self->core, visit, arg);
}

static int
consumer_clear(ConsumerObject *self)
{
    Py_CLEAR(self->on_assign);
    Py_CLEAR(self->on_revoke);
    Py_CLEAR(self->on_lost);
    Py_CLEAR(self->on_commit);
    Py_CLEAR(self->rebalance);
    akc_core_clear(&self->core);
    return 0;
}

static void
consumer_finalize(PyObject *op)
{
    ConsumerObject *self = (ConsumerObject *)op;
    PyObject *exc = akc_err_take();
    akc_core *core = &self->core;
    int live = core->poller != NULL && !core->poller->finished &&
               (core->state == AKC_OPEN || core->state == AKC_CLOSING);
    if (live) {
        akc_core_forget_handle(core, op, 0);
    }
    akc_core_detach(core, NULL);
    if (live) {
        akc_dispatcher_logf(core->dispatcher, AKC_LOG_WARNING,
                            "aiokafka_c: an AIOConsumer was garbage-"
                            "collected without close(): no final commit and "
                            "no LeaveGroup (the group notices after "
                            "session.timeout.ms)");
        akc_consume_fail_waiters(self, "the consumer was garbage-collected");
        consumer_fail_commits(self, "the consumer was garbage-collected", 0);
    }
    akc_core_finalize(core);
    if (core->dispatcher != NULL) {
        akc_dispatcher_schedule(core->dispatcher);
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(op);
    }
    akc_err_restore(exc);
}

static void
consumer_dealloc(ConsumerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return; /* resurrected */
    }
    PyObject *exc = akc_err_take();
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Py_CLEAR(self->waiters);
    Py_CLEAR(self->commits);
    Py_CLEAR(self->subscription);
    consumer_clear(self);
    if (self->fetch != NULL) {
        akc_fetch_unref(self->fetch, self->core.state == AKC_FORKED);
        self->fetch = NULL;
    }
    PyMem_Free(self->dirty);
    akc_core_free(&self->core);
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(NULL);
    }
    tp->tp_free(self);
    Py_DECREF(tp);
    akc_err_restore(exc);
}

#define FASTKW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef consumer_methods[] = {
    {"subscribe", FASTKW(akc_consumer_subscribe),
     "subscribe($self, /, topics, *, on_assign=None, on_revoke=None, "
     "on_lost=None)\n--\n\n"
     "Join the group for topics (names or ^regex); returns a future.  "
     "Callbacks take (consumer, partitions), plain or async; the assignment "
     "is applied after on_assign returns."},
    {"unsubscribe", (PyCFunction)akc_consumer_unsubscribe, METH_NOARGS,
     "unsubscribe($self, /)\n--\n\nLeave the subscription; returns a future."},
    {"assign", (PyCFunction)akc_consumer_assign, METH_O,
     "assign($self, partitions, /)\n--\n\nReplace the assignment."},
    {"unassign", (PyCFunction)akc_consumer_unassign, METH_NOARGS,
     "unassign($self, /)\n--\n\nDrop the assignment."},
    {"incremental_assign", (PyCFunction)akc_consumer_incremental_assign, METH_O,
     "incremental_assign($self, partitions, /)\n--\n\nAdd partitions."},
    {"incremental_unassign", (PyCFunction)akc_consumer_incremental_unassign,
     METH_O,
     "incremental_unassign($self, partitions, /)\n--\n\nRemove partitions."},
    {"assignment", (PyCFunction)akc_consumer_assignment, METH_NOARGS,
     "assignment($self, /)\n--\n\nThe current assignment."},
    {"subscription", (PyCFunction)akc_consumer_subscription, METH_NOARGS,
     "subscription($self, /)\n--\n\nThe subscribed topics."},
    {"memberid", (PyCFunction)akc_consumer_memberid, METH_NOARGS,
     "memberid($self, /)\n--\n\nThe group member id, or None."},
    {"poll", FASTKW(akc_consumer_poll),
     "poll($self, /, timeout=None)\n--\n\n"
     "Await the next message (a Message whose error() may be set), or None "
     "after timeout seconds."},
    {"consume", FASTKW(akc_consumer_consume),
     "consume($self, /, num_messages=1, timeout=None)\n--\n\n"
     "Await up to num_messages messages: what is ready, or the first to "
     "arrive within timeout seconds ([] after it)."},
    {"commit", FASTKW(akc_consumer_commit),
     "commit($self, /, message=None, offsets=None)\n--\n\n"
     "Commit (everything received, the message's offset + 1, or offsets); "
     "returns a future of the committed partitions."},
    {"store_offsets", FASTKW(akc_consumer_store_offsets),
     "store_offsets($self, /, message=None, offsets=None)\n--\n\n"
     "Store offsets for the next commit."},
    {"committed", FASTKW(akc_consumer_committed),
     "committed($self, /, partitions, timeout=None)\n--\n\n"
     "Future of the group's committed offsets."},
    {"position", (PyCFunction)akc_consumer_position, METH_O,
     "position($self, partitions, /)\n--\n\n"
     "The offset of the next message each partition hands out."},
    {"seek", (PyCFunction)akc_consumer_seek, METH_O,
     "seek($self, partition, /)\n--\n\nMove a partition's position."},
    {"pause", (PyCFunction)akc_consumer_pause, METH_O,
     "pause($self, partitions, /)\n--\n\nStop handing out these partitions."},
    {"resume", (PyCFunction)akc_consumer_resume, METH_O,
     "resume($self, partitions, /)\n--\n\nResume paused partitions."},
    {"paused", (PyCFunction)akc_consumer_paused, METH_NOARGS,
     "paused($self, /)\n--\n\nThe partitions paused by pause()."},
    {"get_watermark_offsets", FASTKW(akc_consumer_get_watermark_offsets),
     "get_watermark_offsets($self, /, partition, timeout=None, "
     "cached=False)\n--\n\nFuture of (low, high)."},
    {"offsets_for_times", FASTKW(akc_consumer_offsets_for_times),
     "offsets_for_times($self, /, partitions, timeout=None)\n--\n\n"
     "Future of the earliest offsets at or after each timestamp (ms, in "
     "offset)."},
    {"list_topics", FASTKW(akc_consumer_list_topics),
     "list_topics($self, /, topic=None, timeout=None)\n--\n\n"
     "Future of the cluster's metadata."},
    {"consumer_group_metadata", (PyCFunction)akc_consumer_group_metadata,
     METH_NOARGS,
     "consumer_group_metadata($self, /)\n--\n\n"
     "Future of the group metadata, for send_offsets_to_transaction()."},
    {"close", FASTKW(akc_consumer_close),
     "close($self, /, timeout=None)\n--\n\n"
     "Leave the group (final commit with auto-commit) and stop; bounded by "
     "timeout seconds.  Safe to call again, from anywhere."},
    {"__aenter__", (PyCFunction)akc_consumer_aenter, METH_NOARGS, NULL},
    {"__aexit__", (PyCFunction)(void (*)(void))akc_consumer_aexit, METH_FASTCALL,
     NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef consumer_members[] = {
    {"__weaklistoffset__", T_PYSSIZET,
     offsetof(ConsumerObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot consumer_slots[] = {
    {Py_tp_new, consumer_new},
    {Py_tp_init, consumer_init},
    {Py_tp_dealloc, consumer_dealloc},
    {Py_tp_finalize, consumer_finalize},
    {Py_tp_traverse, consumer_traverse},
    {Py_tp_clear, consumer_clear},
    {Py_tp_methods, consumer_methods},
    {Py_tp_members, consumer_members},
    {Py_am_aiter, akc_consumer_aiter},
    {Py_am_anext, akc_consumer_anext},
    {Py_tp_doc,
     "AIOConsumer(config, loop=None)\n--\n\n"
     "asyncio Kafka consumer over librdkafka.  config is a mapping of "
     "librdkafka properties plus optional error_cb, stats_cb, throttle_cb, "
     "logger, on_commit, max_buffer_messages and max_buffer_bytes."},
    {0, NULL},
};

static PyType_Spec consumer_spec = {
    .name = "aiokafka_c.AIOConsumer",
    .basicsize = sizeof(ConsumerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = consumer_slots,
};

int
akc_consumer_setup_types(PyObject *module, akc_state *st)
{
    if (akc_rebalance_setup_types(module, st) < 0 ||
        akc_consume_setup_types(module, st) < 0) {
        return -1;
    }
    st->in_consumer_callback = PyContextVar_New(
        "aiokafka_c.in_consumer_callback", Py_False);
    if (st->in_consumer_callback == NULL) {
        return -1;
    }
    st->ConsumerType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &consumer_spec, NULL);
    if (st->ConsumerType == NULL) {
        return -1;
    }
    return PyModule_AddType(module, st->ConsumerType);
}
