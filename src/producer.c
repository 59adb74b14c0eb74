/* AIOProducer: enqueue on the loop thread, complete on the loop thread.
 *
 * produce() never blocks: it hands the message to librdkafka (or, when
 * librdkafka's queue is full, to our ordered overflow queue) and returns a
 * future.  Delivery reports come back on the native poll thread, which
 * fills in the message, runs poll-thread callbacks, and hands the rest to
 * the dispatcher in one batch.  flush() and close() are state the poll
 * thread checks on every batch or tick; their futures complete through
 * the same hand-off, so they complete after every delivery report that
 * came before them.  Construction, closing and every teardown path are
 * the client core's (lifecycle.c); this file supplies its hooks. */
#include "producer.h"
#include "batch.h"
#include "delivery.h"
#include "outbox.h"
#include "mock.h"
#include "conf.h"
#include "errors.h"
#include "payload.h"
#include "transactions.h"

#include <structmember.h>

/* Answers every flush() whose messages are all delivered or whose
 * deadline passed (all of them with `all`). */
static void
producer_answer_flushes(ProducerObject *self, int all)
{
    if (PyDict_GET_SIZE(self->flush_waiters) == 0) {
        return;
    }
    Py_ssize_t remaining = akc_producer_pending(self);
    int64_t now = akc_now_ms();
    PyObject *items = PyDict_Items(self->flush_waiters);
    PyObject *r = PyLong_FromSsize_t(remaining);
    if (items == NULL || r == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *w = PyList_GET_ITEM(items, i);
        PyObject *fut = PyTuple_GET_ITEM(w, 0);
        int64_t deadline = PyLong_AsLongLong(PyTuple_GET_ITEM(w, 1));
        if (!all && remaining > 0 && (deadline < 0 || now < deadline)) {
            continue;
        }
        if (akc_dispatcher_push_kind(self->core.dispatcher, AKC_ITEM_RESULT,
                                     fut, r) < 0 ||
            PyDict_DelItem(self->flush_waiters, fut) < 0) {
            break;
        }
    }
done:
    Py_XDECREF(r);
    Py_XDECREF(items);
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
}

/* on_events: delivery reports, then room for waiting messages, then
 * flush() answers.  Poll thread, GIL held. */
static void
producer_on_events(PyObject *client, rd_kafka_event_t **evs, size_t n)
{
    ProducerObject *self = (ProducerObject *)client;
    for (size_t i = 0; i < n; i++) {
        if (rd_kafka_event_type(evs[i]) == RD_KAFKA_EVENT_DR) {
            akc_producer_reports(self, evs[i]);
        }
        /* Destroying the event frees librdkafka's queue slots, so drain
         * the overflow only after this. */
        rd_kafka_event_destroy(evs[i]);
    }
    akc_producer_drain_overflow(self);
    if (self->txn_waiting != NULL) {
        akc_txn_on_events(self);
    }
    producer_answer_flushes(self, 0);
    akc_producer_update_tick(self);
}

static void
producer_fail_overflow(ProducerObject *self, const char *why)
{
    while (self->ovf_len > 0) {
        akc_producer_fail(self, akc_overflow_pop(self),
                          RD_KAFKA_RESP_ERR__PURGE_QUEUE, why);
    }
}

/* closing_step: flush until the soft deadline, then fail what is left
 * (purge), then let the handle go once every report is in or the close's
 * deadline has passed. */
static int
producer_closing_step(PyObject *client)
{
    ProducerObject *self = (ProducerObject *)client;
    akc_core *core = &self->core;
    int64_t now = akc_now_ms(), hard = core->close_deadline;
    int64_t soft = core->close_drain_deadline;
    Py_ssize_t remaining = akc_producer_pending(self);
    if (!self->close_purged && core->rk != NULL &&
        (remaining == 0 || (soft >= 0 && now >= soft))) {
        producer_fail_overflow(self, "the producer was closed before the "
                                     "message could be queued");
        rd_kafka_purge(core->rk, RD_KAFKA_PURGE_F_QUEUE |
                                     RD_KAFKA_PURGE_F_INFLIGHT |
                                     RD_KAFKA_PURGE_F_NON_BLOCKING);
        self->close_purged = 1;
        remaining = akc_producer_pending(self);
    }
    int done = self->close_purged &&
               (remaining == 0 || (hard >= 0 && now >= hard));
    if (done && self->transactional) {
        akc_txn_closing(self);
    }
    return done;
}

/* forget_handle: topic handles must go before the handle.  Forked, the
 * handles are abandoned with it (destroying them would take its locks). */
static void
producer_forget_handle(PyObject *client, int forked)
{
    ProducerObject *self = (ProducerObject *)client;
    if (forked) {
        Py_ssize_t pos = 0;
        PyObject *k, *cap;
        while (PyDict_Next(self->topics, &pos, &k, &cap)) {
            PyCapsule_SetDestructor(cap, NULL);
        }
    }
    PyDict_Clear(self->topics);
}

/* release: the handle is gone.  Fails every message still in flight or
 * waiting and answers flush waiters; quiet (interpreter exit, forked
 * child) drops them instead, saying how many (why == NULL: silently). */
static void
producer_release(PyObject *client, const char *why, int quiet)
{
    ProducerObject *self = (ProducerObject *)client;
    if (quiet) {
        Py_ssize_t left = akc_producer_pending(self);
        if (left > 0 && why != NULL) {
            akc_dispatcher_logf(self->core.dispatcher, AKC_LOG_WARNING,
                                "aiokafka_c: exiting with %zd messages not "
                                "delivered by an AIOProducer that was not "
                                "closed; they are dropped (await close() or "
                                "flush() before exit to deliver them)",
                                left);
        }
        while (self->ovf_len > 0) {
            akc_message_drop(akc_overflow_pop(self));
        }
        while (self->inflight != NULL) {
            ProducedMessage *m = self->inflight;
            akc_inflight_unlink(self, m);
            akc_message_drop(m);
        }
        PyDict_Clear(self->flush_waiters);
        akc_txn_release(self, 1);
        PyErr_Clear();
        return;
    }
    akc_txn_release(self, 0);
    producer_fail_overflow(self, why);
    while (self->inflight != NULL) {
        ProducedMessage *m = self->inflight;
        akc_inflight_unlink(self, m);
        akc_producer_fail(self, m, RD_KAFKA_RESP_ERR__DESTROY, why);
    }
    producer_answer_flushes(self, 1);
}

/* fail_orphans: the in-flight list of a producer dropped without close(),
 * once its handle is gone: each message fails (or, quiet, is dropped). */
static void
producer_fail_orphans(DispatcherObject *d, void *orphans, int quiet)
{
    ProducedMessage *m = orphans;
    while (m != NULL) {
        ProducedMessage *next = m->next;
        m->prev = m->next = NULL;
        if (quiet) {
            akc_message_drop(m);
        }
        else {
            akc_message_fail(d, m, RD_KAFKA_RESP_ERR__DESTROY,
                             "the producer was garbage-collected before the "
                             "message was delivered");
        }
        m = next;
    }
}

static const akc_client_ops producer_ops = {
    .on_events = producer_on_events,
    .closing_step = producer_closing_step,
    .forget_handle = producer_forget_handle,
    .teardown = NULL,
    .release = producer_release,
    .fail_orphans = producer_fail_orphans,
};

/* A transactional producer's poll thread also owns its worker thread,
 * which must be idle (or left behind with the handle) before the handle
 * goes. */
static const akc_client_ops producer_txn_ops = {
    .on_events = producer_on_events,
    .closing_step = producer_closing_step,
    .forget_handle = producer_forget_handle,
    .teardown = akc_txn_teardown,
    .release = producer_release,
    .fail_orphans = producer_fail_orphans,
    .before_destroy = akc_txn_before_destroy,
    .ctx_free = akc_txn_ctx_free,
};

/* ---- produce ------------------------------------------------------ */

static PyObject *
producer_produce_common(ProducerObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames, int nowait)
{
    akc_state *st = self->core.st;
    const char *method = nowait ? "produce_nowait" : "produce";
    PyObject *names[NARGS + 1];
    PyObject *a[NARGS] = {NULL};
    akc_produce_arg_names(st, nowait, names);
    if (akc_parse_args(method, args, nargs, kwnames, names, 3, 1, a) < 0 ||
        akc_core_check_open(&self->core, method) < 0 ||
        akc_core_check_loop(&self->core, method) < 0 ||
        (self->transactional && akc_txn_check_produce(self, method) < 0)) {
        return NULL;
    }
    ProducedMessage *m = akc_produce_build_message(st, a, nowait);
    if (m == NULL) {
        return NULL;
    }
    PyObject *fut = NULL;
    if (!nowait) {
        fut = akc_dispatcher_new_future(self->core.dispatcher);
        if (fut == NULL) {
            Py_DECREF(m);
            return NULL;
        }
        m->future = Py_NewRef(fut);
    }
    /* Building ran user code (a header container's __iter__, a buffer's
     * __buffer__, the loop's create_future) that may have closed us: check
     * again, with nothing that runs code between here and librdkafka. */
    if (akc_core_check_open(&self->core, method) < 0 ||
        akc_producer_enqueue(self, m) < 0) {
        /* Never handed over: drop the future quietly (nobody has it). */
        Py_CLEAR(m->future);
        Py_DECREF(m);
        Py_XDECREF(fut);
        return NULL;
    }
    Py_DECREF(m);
    if (nowait) {
        Py_RETURN_NONE;
    }
    return fut;
}

static PyObject *
producer_produce(ProducerObject *self, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    return producer_produce_common(self, args, nargs, kwnames, 0);
}

static PyObject *
producer_produce_nowait(ProducerObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    return producer_produce_common(self, args, nargs, kwnames, 1);
}

/* ---- flush, purge, close ----------------------------------------- */

/* A flush future that is done (answered or cancelled) stops waiting at
 * once: its done-callback removes it.  self is the waiters dict. */
static PyObject *
producer_forget_flush(PyObject *waiters, PyObject *fut)
{
    if (PyDict_DelItem(waiters, fut) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
            return NULL;
        }
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

static PyMethodDef forget_flush_def = {"_forget_flush", producer_forget_flush,
                                       METH_O, NULL};

static PyObject *
producer_flush_wait(ProducerObject *self, int ms)
{
    akc_state *st = self->core.st;
    PyObject *fut = akc_dispatcher_new_future(self->core.dispatcher);
    if (fut == NULL) {
        return NULL;
    }
    PyObject *deadline = PyLong_FromLongLong(ms < 0 ? -1
                                                    : akc_now_ms() + ms);
    PyObject *r = NULL;
    if (deadline != NULL &&
        PyDict_SetItem(self->flush_waiters, fut, deadline) == 0) {
        r = PyObject_CallMethodOneArg(fut, st->str_add_done_callback,
                                      self->forget_flush);
    }
    Py_XDECREF(deadline);
    if (r == NULL) {
        PyDict_DelItem(self->flush_waiters, fut);
        Py_DECREF(fut);
        return NULL;
    }
    Py_DECREF(r);
    if (self->core.state == AKC_CLOSED) {
        /* Closed while the future was made (that ran Python code): the
         * poll thread answered the flushes it knew of and is gone. */
        producer_answer_flushes(self, 1);
        akc_dispatcher_schedule(self->core.dispatcher);
    }
    akc_producer_update_tick(self);
    return fut;
}

static PyObject *
producer_flush(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    PyObject *names[] = {self->core.st->str_timeout, NULL};
    PyObject *timeout = NULL;
    int ms;
    if (akc_parse_args("flush", args, nargs, kwnames, names, 1, 0,
                       &timeout) < 0 ||
        akc_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    if (self->core.state != AKC_CLOSING &&
        akc_core_check_open(&self->core, "flush") < 0) {
        return NULL;
    }
    if (akc_core_check_loop(&self->core, "flush") < 0) {
        return NULL;
    }
    Py_ssize_t remaining = akc_producer_pending(self);
    if (remaining > 0 && ms != 0) {
        return producer_flush_wait(self, ms);
    }
    PyObject *r = PyLong_FromSsize_t(remaining);
    if (r == NULL) {
        return NULL;
    }
    /* After the futures of every report already taken: the last slices
     * of a batch may still be on their way to the loop. */
    PyObject *fut = akc_dispatcher_done_after(self->core.dispatcher, r);
    Py_DECREF(r);
    return fut;
}

static PyObject *
producer_purge(ProducerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_core_check_open(&self->core, "purge") < 0) {
        return NULL;
    }
    producer_fail_overflow(self, "purged before it could be queued");
    if (akc_core_check_open(&self->core, "purge") < 0) {
        return NULL; /* closed by code the failures ran */
    }
    rd_kafka_resp_err_t err = rd_kafka_purge(
        self->core.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                           RD_KAFKA_PURGE_F_NON_BLOCKING);
    akc_dispatcher_schedule(self->core.dispatcher);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return akc_raise(self->core.st, err, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
producer_close(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    PyObject *names[] = {self->core.st->str_timeout, NULL};
    PyObject *timeout = NULL;
    int ms;
    if (akc_parse_args("close", args, nargs, kwnames, names, 1, 0,
                       &timeout) < 0 ||
        akc_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    PyObject *aw = akc_core_close(&self->core, (PyObject *)self, ms);
    akc_producer_update_tick(self);
    return aw;
}

static PyObject *
producer_aenter(ProducerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_core_check_open(&self->core, "__aenter__") < 0 ||
        akc_core_check_loop(&self->core, "__aenter__") < 0) {
        return NULL;
    }
    return akc_dispatcher_done_future(self->core.dispatcher,
                                      (PyObject *)self);
}

static PyObject *
producer_aexit(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return producer_close(self, NULL, 0, NULL);
}

static Py_ssize_t
producer_len(ProducerObject *self)
{
    return akc_producer_pending(self);
}

/* An idle producer is still a producer: `if producer:` must not depend
 * on how many messages are in flight. */
static int
producer_bool(ProducerObject *self)
{
    (void)self;
    return 1;
}

/* ---- construction ------------------------------------------------- */

/* Turns on enable.idempotence unless the user set it or chose acks other
 * than all (idempotence needs acks=all).  Returns 1 if it did.
 *
 * Without it, a batch that is retried (a leader change, a topic that was
 * just created) lands behind batches sent after it, which breaks "call
 * order is delivery order per partition"; the Java client does the same
 * since Kafka 3.0.  Decided from the built conf, not the user's mapping,
 * so no user code runs here. */
static int
producer_auto_idempotence(rd_kafka_conf_t *conf, const akc_callbacks *cbs)
{
    if (cbs->idempotence_set) {
        return 0;
    }
    if (cbs->acks_set && akc_conf_get_int(conf, "acks", -1) != -1) {
        return 0;
    }
    char errstr[256];
    return rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                             sizeof(errstr)) == RD_KAFKA_CONF_OK;
}

/* Raises the error of a failed rd_kafka_new(), saying so when our own
 * default caused it. */
static void
producer_new_failed(akc_state *st, const char *errstr, int auto_idem)
{
    if (!auto_idem || strstr(errstr, "idempotence") == NULL) {
        akc_raise(st, RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
        return;
    }
    PyObject *msg = PyUnicode_FromFormat(
        "%s (aiokafka_c turns enable.idempotence on by default, for "
        "ordered delivery without duplicates; set "
        "\"enable.idempotence\": False to use these settings)",
        errstr);
    if (msg != NULL) {
        akc_raise(st, RD_KAFKA_RESP_ERR__INVALID_ARG, PyUnicode_AsUTF8(msg));
        Py_DECREF(msg);
    }
}

/* Makes the handle from conf (consumed either way) and starts the poll
 * thread: the last step, after which nothing fails.  Returns 0 or -1;
 * on failure nothing is left running. */
static int
producer_start(ProducerObject *self, rd_kafka_conf_t *conf, int auto_idem,
               int want_throttle)
{
    akc_core *core = &self->core;
    const akc_client_ops *ops = self->transactional ? &producer_txn_ops
                                                    : &producer_ops;
    akc_txn *txn = NULL;
    if (self->transactional &&
        (txn = akc_txn_new(core->st, core->dispatcher,
                           akc_conf_get_int(conf, "transaction.timeout.ms",
                                            60000))) == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    akc_poller *p = akc_poller_new(core->st, core->dispatcher);
    if (p == NULL) {
        if (txn != NULL) {
            akc_txn_ctx_free(txn, 0);
        }
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    akc_poller_configure(p, conf, RD_KAFKA_EVENT_DR, want_throttle);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                  sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        akc_poller_free_unstarted(p);
        if (txn != NULL) {
            akc_txn_ctx_free(txn, 0);
        }
        producer_new_failed(core->st, errstr, auto_idem);
        return -1;
    }
    rd_kafka_queue_t *queue = rd_kafka_queue_get_main(rk);
    p->ctx = txn; /* the poller owns it from now on */
    if (akc_poller_start(p, (PyObject *)self, core, rk, queue, ops) < 0) {
        akc_poller_free_unstarted(p);
        Py_BEGIN_ALLOW_THREADS
        rd_kafka_queue_destroy(queue);
        rd_kafka_destroy(rk);
        Py_END_ALLOW_THREADS
        return -1;
    }
    core->rk = rk;
    core->poller = p;
    core->ops = ops;
    core->state = AKC_OPEN;
    return 0;
}

/* Everything that can fail before the thread exists: the config, the
 * dispatcher and its loop.  On failure the core holds nothing.  Returns
 * the conf, or NULL with an exception. */
static rd_kafka_conf_t *
producer_prepare(ProducerObject *self, PyObject *config, PyObject *loop,
                 int *auto_idem, int *want_throttle)
{
    akc_core *core = &self->core;
    akc_callbacks cbs;
    rd_kafka_conf_t *conf = akc_conf_build(core->st, config, &cbs);
    if (conf == NULL) {
        return NULL;
    }
    *auto_idem = producer_auto_idempotence(conf, &cbs);
    *want_throttle = cbs.throttle_cb != NULL;
    core->logger = Py_NewRef(cbs.logger);
    core->dispatcher = akc_dispatcher_new(core->st, core->logger,
                                          akc_producer_deliver);
    core->error_cb = Py_XNewRef(cbs.error_cb);
    core->stats_cb = Py_XNewRef(cbs.stats_cb);
    core->throttle_cb = Py_XNewRef(cbs.throttle_cb);
    akc_callbacks_clear(&cbs);
    /* Bound now, to the loop given or the running one, so that the
     * config's callbacks are live from the start. */
    if (core->dispatcher == NULL ||
        (loop != Py_None ? akc_dispatcher_bind(core->dispatcher, loop)
                         : akc_dispatcher_bind_running(core->dispatcher)) <
            0) {
        rd_kafka_conf_destroy(conf);
        akc_core_clear(core);
        Py_CLEAR(core->dispatcher);
        return NULL;
    }
    self->message_timeout_ms = akc_conf_get_int(conf, "message.timeout.ms",
                                            300000);
    if (self->message_timeout_ms <= 0) {
        self->message_timeout_ms = INT32_MAX; /* 0 means "forever" */
    }
    self->ovf_max = (Py_ssize_t)akc_conf_get_int(
        conf, "queue.buffering.max.messages", 100000);
    char tid[8];
    size_t tid_size = sizeof(tid);
    rd_kafka_conf_res_t res = rd_kafka_conf_get(conf, "transactional.id",
                                                tid, &tid_size);
    /* A longer id than the buffer still says "set" (tid_size > 1). */
    self->transactional = (res == RD_KAFKA_CONF_OK ||
                           (res == RD_KAFKA_CONF_INVALID && tid_size > 1)) &&
                          tid_size > 1;
    return conf;
}

static int
producer_init(ProducerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config", "loop", NULL};
    PyObject *config, *loop = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:AIOProducer", kwlist,
                                     &config, &loop)) {
        return -1;
    }
    akc_core *core = &self->core;
    if (core->state != AKC_NEW) {
        PyErr_SetString(PyExc_RuntimeError,
                        "AIOProducer.__init__() called on a producer that is "
                        "already initialized");
        return -1;
    }
    if (core->st->shutting_down) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot make an AIOProducer: the interpreter is "
                        "exiting");
        return -1;
    }
    int auto_idem, want_throttle;
    rd_kafka_conf_t *conf = producer_prepare(self, config, loop, &auto_idem,
                                             &want_throttle);
    if (conf == NULL) {
        return -1;
    }
    if (producer_start(self, conf, auto_idem, want_throttle) < 0) {
        akc_core_clear(core);
        Py_CLEAR(core->dispatcher);
        return -1;
    }
    return 0;
}

static PyObject *
producer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    akc_state *st = akc_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    ProducerObject *self = (ProducerObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (akc_core_init(&self->core, (PyObject *)self, st, "AIOProducer") < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->topics = PyDict_New();
    self->flush_waiters = PyDict_New();
    self->forget_flush = self->flush_waiters
                             ? PyCFunction_New(&forget_flush_def,
                                               self->flush_waiters)
                             : NULL;
    if (self->topics == NULL || self->forget_flush == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* ---- teardown ------------------------------------------------------ */

static int
producer_traverse(ProducerObject *self, visitproc visit, void *arg)
{
    /* In-flight and waiting messages are deliberately not visited: the
     * collector must never clear a message librdkafka still points into. */
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->topics);
    Py_VISIT(self->flush_waiters);
    Py_VISIT(self->forget_flush);
    return akc_core_traverse(&self->core, visit, arg);
}

static int
producer_clear(ProducerObject *self)
{
    akc_core_clear(&self->core);
    return 0;
}

/* First step of the dealloc of a producer that was not closed, before
 * any Python code runs: its in-flight messages go to the poll thread,
 * which fails them once the handle is gone.  Returns how many messages
 * were left (in flight or waiting), or -1 if the core had no live
 * thread. */
static Py_ssize_t
producer_detach(ProducerObject *self)
{
    akc_core *core = &self->core;
    ProducedMessage *orphans = NULL;
    Py_ssize_t left = akc_producer_pending(self);
    int live = core->poller != NULL && !core->poller->finished &&
               (core->state == AKC_OPEN || core->state == AKC_CLOSING);
    if (live) {
        akc_core_forget_handle(core, (PyObject *)self, 0);
        orphans = self->inflight;
        self->inflight = NULL;
        self->ninflight = 0;
    }
    akc_core_detach(core, orphans);
    return live ? left : -1;
}

/* tp_finalize: the client is unreachable.  Runs before a subclass's
 * dealloc clears anything (PEP 442), with the object still alive, so the
 * poll thread is detached before any code can run and the Python-level
 * leftovers can be failed and logged safely. */
static void
producer_finalize(PyObject *op)
{
    ProducerObject *self = (ProducerObject *)op;
    PyObject *exc = akc_err_take();
    Py_ssize_t left = producer_detach(self);
    akc_core *core = &self->core;
    if (left > 0) {
        akc_dispatcher_logf(core->dispatcher, AKC_LOG_WARNING,
                            "aiokafka_c: an AIOProducer was garbage-"
                            "collected without close() with %zd messages "
                            "undelivered; they fail with _DESTROY",
                            left);
    }
    if (left >= 0) {
        akc_txn_release(self, 0);
        producer_fail_overflow(self, "the producer was garbage-collected "
                                     "before the message could be queued");
        producer_answer_flushes(self, 1);
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
producer_dealloc(ProducerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return; /* resurrected */
    }
    /* A failed __init__ is deallocated with its exception still set. */
    PyObject *exc = akc_err_take();
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    PyMem_Free(self->ovf);
    self->ovf = NULL;
    akc_txn_release(self, 1);
    Py_CLEAR(self->topics);
    Py_CLEAR(self->flush_waiters);
    Py_CLEAR(self->forget_flush);
    akc_core_free(&self->core);
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(NULL);
    }
    tp->tp_free(self);
    Py_DECREF(tp);
    akc_err_restore(exc);
}

static PyMethodDef producer_methods[] = {
    {"produce", (PyCFunction)(void (*)(void))producer_produce,
     METH_FASTCALL | METH_KEYWORDS,
     "produce($self, /, topic, value=None, key=None, *, partition=-1, "
     "timestamp=0, headers=None, on_delivery=None)\n--\n\n"
     "Enqueue a message now; return a future of its delivered Message.\n\n"
     "The future raises KafkaException if delivery fails.  When the local "
     "queue is full the message waits, in order, for room (at most "
     "message.timeout.ms)."},
    {"produce_batch", (PyCFunction)(void (*)(void))akc_producer_produce_batch,
     METH_FASTCALL | METH_KEYWORDS,
     "produce_batch($self, /, topic, messages, *, partition=-1)\n--\n\n"
     "Enqueue many messages now; return one future of their Messages.\n\n"
     "Each element is a value, or a tuple (key, value[, headers[, "
     "timestamp]]).  The future answers once every message is reported, "
     "with the list of Messages in order; a message that failed carries "
     "its error (Message.error()) instead of raising.  Bad input raises "
     "before anything is sent."},
    {"produce_nowait", (PyCFunction)(void (*)(void))producer_produce_nowait,
     METH_FASTCALL | METH_KEYWORDS,
     "produce_nowait($self, /, topic, value=None, key=None, *, "
     "partition=-1, timestamp=0, headers=None, on_delivery=None, "
     "dispatch='loop')\n--\n\n"
     "Enqueue a message without a future.  on_delivery(err, msg) runs on "
     "the event loop (dispatch='loop') or on the native poll thread "
     "(dispatch='poll_thread'), in the context of this call; without it, "
     "failures are logged."},
    {"flush", (PyCFunction)(void (*)(void))producer_flush,
     METH_FASTCALL | METH_KEYWORDS,
     "flush($self, /, timeout=None)\n--\n\n"
     "Return a future of the number of messages still undelivered once "
     "all are delivered or timeout seconds have passed."},
    {"purge", (PyCFunction)producer_purge, METH_NOARGS,
     "purge($self, /)\n--\n\n"
     "Fail every queued and in-flight message with _PURGE_QUEUE or "
     "_PURGE_INFLIGHT."},
    {"close", (PyCFunction)(void (*)(void))producer_close,
     METH_FASTCALL | METH_KEYWORDS,
     "close($self, /, timeout=None)\n--\n\n"
     "Start closing now: flush (up to timeout seconds), fail what is left, "
     "stop the poll thread.  Returns the caller's own awaitable; safe to "
     "call again, from any thread or callback.  Without a running loop it "
     "waits for the close to finish."},
    {"init_transactions",
     (PyCFunction)(void (*)(void))akc_producer_init_transactions,
     METH_FASTCALL | METH_KEYWORDS,
     "init_transactions($self, /, timeout=None)\n--\n\n"
     "Return a future that completes once the producer's transactional.id "
     "is registered (fencing any older producer with the same id).  Runs "
     "on the producer's worker thread.  timeout None: twice "
     "transaction.timeout.ms."},
    {"begin_transaction", (PyCFunction)akc_producer_begin_transaction,
     METH_NOARGS,
     "begin_transaction($self, /)\n--\n\n"
     "Start a transaction now (does not block).  Messages may be produced "
     "only inside one."},
    {"send_offsets_to_transaction",
     (PyCFunction)(void (*)(void))akc_producer_send_offsets,
     METH_FASTCALL | METH_KEYWORDS,
     "send_offsets_to_transaction($self, /, offsets, group_metadata, "
     "timeout=None)\n--\n\n"
     "Return a future that completes once offsets (TopicPartitions: the "
     "next offset to consume) of the consumer group of group_metadata "
     "(AIOConsumer.consumer_group_metadata()) are part of the current "
     "transaction, committed with it.  timeout None: "
     "transaction.timeout.ms."},
    {"commit_transaction",
     (PyCFunction)(void (*)(void))akc_producer_commit_transaction,
     METH_FASTCALL | METH_KEYWORDS,
     "commit_transaction($self, /, timeout=None)\n--\n\n"
     "Return a future that completes once every message of the "
     "transaction is delivered (their futures first) and the transaction "
     "is committed.  timeout None: what is left of "
     "transaction.timeout.ms.  Errors are KafkaException: retriable() "
     "(call again), txn_requires_abort() (abort, then begin again) or "
     "fatal() (close the producer)."},
    {"abort_transaction",
     (PyCFunction)(void (*)(void))akc_producer_abort_transaction,
     METH_FASTCALL | METH_KEYWORDS,
     "abort_transaction($self, /, timeout=None)\n--\n\n"
     "Return a future that completes once the transaction is aborted; "
     "its messages not yet delivered fail with _PURGE_QUEUE or "
     "_PURGE_INFLIGHT."},
    {"transaction", (PyCFunction)akc_producer_transaction, METH_NOARGS,
     "transaction($self, /)\n--\n\n"
     "An async context manager: begin on enter, commit on a normal exit "
     "(aborting first when the commit fails with an error that requires "
     "it), abort on an exception, which propagates."},
    {"_mock_push_errors", (PyCFunction)(void (*)(void))akc_mock_push_errors,
     METH_FASTCALL | METH_KEYWORDS,
     "_mock_push_errors($self, /, errors, api_key=0)\n--\n\n"
     "Tests only: the next requests of api_key (0: Produce) to the embedded "
     "mock cluster fail with these error codes."},
    {"_mock_set_broker_up", (PyCFunction)(void (*)(void))akc_mock_set_broker_up,
     METH_FASTCALL,
     "_mock_set_broker_up($self, broker_id, up, /)\n--\n\n"
     "Tests only: take a broker of the embedded mock cluster down or up."},
    {"__aenter__", (PyCFunction)producer_aenter, METH_NOARGS, NULL},
    {"__aexit__", (PyCFunction)(void (*)(void))producer_aexit, METH_FASTCALL,
     NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef producer_members[] = {
    {"__weaklistoffset__", T_PYSSIZET,
     offsetof(ProducerObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot producer_slots[] = {
    {Py_tp_new, producer_new},
    {Py_tp_init, producer_init},
    {Py_tp_dealloc, producer_dealloc},
    {Py_tp_finalize, producer_finalize},
    {Py_tp_traverse, producer_traverse},
    {Py_tp_clear, producer_clear},
    {Py_tp_methods, producer_methods},
    {Py_tp_members, producer_members},
    {Py_sq_length, producer_len},
    {Py_nb_bool, producer_bool},
    {Py_tp_doc,
     "AIOProducer(config, loop=None)\n--\n\n"
     "asyncio Kafka producer over librdkafka.  config is a mapping of "
     "librdkafka properties plus optional error_cb, stats_cb, throttle_cb "
     "and logger.  It binds to loop, or to the running loop, or to the "
     "loop of its first use."},
    {0, NULL},
};

static PyType_Spec producer_spec = {
    .name = "aiokafka_c.AIOProducer",
    .basicsize = sizeof(ProducerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = producer_slots,
};

int
akc_producer_setup_types(PyObject *module, akc_state *st)
{
    st->ProducerType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &producer_spec, NULL);
    if (st->ProducerType == NULL || akc_txn_setup_types(module, st) < 0) {
        return -1;
    }
    return PyModule_AddType(module, st->ProducerType);
}
