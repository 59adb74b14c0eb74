/* AIOProducer: enqueue on the loop thread, complete on the loop thread.
 *
 * produce() never blocks: it hands the message to librdkafka (or, when
 * librdkafka's queue is full, to our ordered overflow queue) and returns a
 * future.  Delivery reports come back on the native poll thread, which
 * fills in the MessageObject, runs poll-thread callbacks, and hands the
 * rest to the dispatcher in one batch.  flush() and close() are state the
 * poll thread checks on every batch or tick; their futures complete
 * through the same hand-off, so they complete after every delivery report
 * that came before them. */
#include "producer.h"
#include "outbox.h"
#include "mock.h"
#include "conf.h"
#include "errors.h"
#include "payload.h"

#include <structmember.h>

#define LOG_WARNING 30
#define CLOSE_PURGE_MS 1000












/* ---- the poll thread's handler ------------------------------------ */

static void producer_request_exit(ProducerObject *self, akc_poller *p);

/* Runs on the poll thread with the GIL held (see akc_poller_handler). */
static void
producer_on_events(PyObject *client, akc_poller *p, rd_kafka_event_t **evs,
                   size_t n)
{
    ProducerObject *self = (ProducerObject *)client;
    akc_state *st = self->st;
    DispatcherObject *d = self->dispatcher;
    const rd_kafka_message_t *msgs[AKC_POLL_BATCH];
    for (size_t i = 0; i < n; i++) {
        if (rd_kafka_event_type(evs[i]) != RD_KAFKA_EVENT_DR) {
            rd_kafka_event_destroy(evs[i]);
            continue;
        }
        size_t cnt;
        while ((cnt = rd_kafka_event_message_array(evs[i], msgs,
                                                   AKC_POLL_BATCH)) > 0) {
            for (size_t j = 0; j < cnt; j++) {
                MessageObject *m = msgs[j]->_private;
                if (m == NULL) {
                    continue;
                }
                akc_inflight_unlink(self, m); /* we now own its reference */
                if (akc_message_set_delivery(st, m, msgs[j]) < 0) {
                    PyErr_WriteUnraisable((PyObject *)self);
                }
                if (m->dispatch_poll_thread && m->on_delivery != NULL) {
                    PyObject *cb = m->on_delivery;
                    m->on_delivery = NULL;
                    PyObject *args[2] = {m->error ? m->error : Py_None,
                                         (PyObject *)m};
                    akc_dispatcher_call_user(d, cb, args, 2,
                                             "on_delivery callback", 0);
                    Py_DECREF(cb);
                }
                else if (m->future != NULL || m->on_delivery != NULL ||
                         m->error != NULL) {
                    if (akc_dispatcher_push(d, (PyObject *)m) < 0) {
                        PyErr_WriteUnraisable((PyObject *)self);
                    }
                }
                /* A fire-and-forget success needs nothing from the loop. */
                Py_DECREF(m);
            }
        }
        /* Destroying the event frees librdkafka's queue slots, so drain
         * the overflow only after this. */
        rd_kafka_event_destroy(evs[i]);
    }

    akc_producer_drain_overflow(self);

    Py_ssize_t nw = PyList_GET_SIZE(self->flush_waiters);
    if (nw > 0) {
        Py_ssize_t remaining = akc_producer_pending(self);
        int64_t now = akc_now_ms();
        for (Py_ssize_t i = nw - 1; i >= 0; i--) {
            PyObject *w = PyList_GET_ITEM(self->flush_waiters, i);
            int64_t deadline = PyLong_AsLongLong(PyList_GET_ITEM(w, 1));
            if (remaining > 0 && (deadline < 0 || now < deadline)) {
                continue;
            }
            PyObject *r = PyLong_FromSsize_t(remaining);
            if (r == NULL || akc_dispatcher_push_kind(
                                 d, AKC_ITEM_RESULT,
                                 PyList_GET_ITEM(w, 0), r) < 0) {
                PyErr_WriteUnraisable((PyObject *)self);
            }
            Py_XDECREF(r);
            PyList_SetSlice(self->flush_waiters, i, i + 1, NULL);
        }
    }

    if (self->state == AKC_CLOSING && self->close_future != NULL &&
        self->rk != NULL) {
        int64_t now = akc_now_ms();
        Py_ssize_t remaining = akc_producer_pending(self);
        if (!self->close_purged &&
            (remaining == 0 || (self->close_flush_deadline >= 0 &&
                                now >= self->close_flush_deadline))) {
            /* Flushing is over: fail what is left, with a clear error. */
            while (self->ovf_len > 0) {
                akc_producer_fail(self, akc_overflow_pop(self),
                              RD_KAFKA_RESP_ERR__PURGE_QUEUE,
                              "the producer was closed before the message "
                              "could be queued");
            }
            rd_kafka_purge(self->rk, RD_KAFKA_PURGE_F_QUEUE |
                                         RD_KAFKA_PURGE_F_INFLIGHT |
                                         RD_KAFKA_PURGE_F_NON_BLOCKING);
            self->close_purged = 1;
            remaining = akc_producer_pending(self);
        }
        if (self->close_purged &&
            (remaining == 0 ||
             (self->close_deadline >= 0 && now >= self->close_deadline))) {
            producer_request_exit(self, p);
        }
    }
    akc_producer_update_tick(self);
}

/* ---- closing ------------------------------------------------------- */

static PyObject *producer_finish_close(PyObject *self, PyObject *unused);

static PyMethodDef finish_close_def = {
    "_finish_close", producer_finish_close, METH_NOARGS, NULL};

/* Asks the poll thread to destroy the handle and leave; when it has, the
 * loop runs producer_finish_close.  Poll thread, GIL held. */
static void
producer_request_exit(ProducerObject *self, akc_poller *p)
{
    PyObject *fin = PyCFunction_New(&finish_close_def, (PyObject *)self);
    if (fin == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    PyObject *k = PyLong_FromLong(AKC_ITEM_CALL);
    PyObject *item = k ? PyTuple_Pack(2, k, fin) : NULL;
    Py_XDECREF(k);
    Py_DECREF(fin);
    if (item == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    /* Topic handles must go before the handle itself. */
    PyDict_Clear(self->topics);
    self->rk = NULL;
    Py_XSETREF(p->exit_item, item);
    p->exit_requested = 1;
}

/* Fails every message still in flight or waiting, and answers flush
 * waiters.  Only once the librdkafka handle is gone.  GIL held. */
static void
producer_fail_leftovers(ProducerObject *self, const char *why)
{
    while (self->ovf_len > 0) {
        akc_producer_fail(self, akc_overflow_pop(self),
                      RD_KAFKA_RESP_ERR__PURGE_QUEUE, why);
    }
    while (self->inflight != NULL) {
        MessageObject *m = self->inflight;
        akc_inflight_unlink(self, m);
        akc_producer_fail(self, m, RD_KAFKA_RESP_ERR__DESTROY, why);
    }
    Py_ssize_t nw = PyList_GET_SIZE(self->flush_waiters);
    PyObject *zero = PyLong_FromLong(0);
    for (Py_ssize_t i = 0; zero != NULL && i < nw; i++) {
        PyObject *w = PyList_GET_ITEM(self->flush_waiters, i);
        akc_dispatcher_push_kind(self->dispatcher, AKC_ITEM_RESULT,
                                 PyList_GET_ITEM(w, 0), zero);
    }
    Py_XDECREF(zero);
    PyList_SetSlice(self->flush_waiters, 0, nw, NULL);
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
}

/* On the loop, after the poll thread destroyed the handle and left. */
static PyObject *
producer_finish_close(PyObject *op, PyObject *Py_UNUSED(unused))
{
    ProducerObject *self = (ProducerObject *)op;
    if (self->poller != NULL) {
        akc_poller *p = self->poller;
        self->poller = NULL;
        akc_poller_join(p);
    }
    producer_fail_leftovers(self, "the producer was closed before the "
                                  "message was delivered");
    self->state = AKC_CLOSED;
    if (self->close_future != NULL) {
        if (akc_dispatcher_push_kind(self->dispatcher, AKC_ITEM_RESULT,
                                     self->close_future, Py_None) < 0) {
            return NULL;
        }
    }
    akc_dispatcher_schedule(self->dispatcher);
    Py_RETURN_NONE;
}

/* Closes without an event loop (from synchronous code): waits, with the
 * GIL released, for librdkafka to deliver, then tears everything down.
 * Returns 0 or -1. */
static int
producer_close_blocking(ProducerObject *self, int timeout_ms)
{
    self->state = AKC_CLOSING;
    if (self->rk != NULL && self->poller != NULL) {
        rd_kafka_t *rk = self->rk;
        /* The poll thread keeps serving delivery reports meanwhile. */
        Py_BEGIN_ALLOW_THREADS
        rd_kafka_flush(rk, timeout_ms < 0 ? -1 : timeout_ms);
        Py_END_ALLOW_THREADS
    }
    PyDict_Clear(self->topics);
    self->rk = NULL;
    if (self->poller != NULL) {
        akc_poller *p = self->poller;
        self->poller = NULL;
        akc_poller_destroy(p);
    }
    producer_fail_leftovers(self, "the producer was closed before the "
                                  "message was delivered");
    self->state = AKC_CLOSED;
    akc_dispatcher_schedule(self->dispatcher);
    return 0;
}

/* The interpreter is exiting and this producer was never closed: say how
 * many messages are lost (never silently), release the handle, and drop
 * the in-flight state without trying to reach a loop that is gone. */
static void
producer_atexit(PyObject *client, akc_poller *p)
{
    ProducerObject *self = (ProducerObject *)client;
    Py_ssize_t left = akc_producer_pending(self);
    if (left > 0) {
        akc_dispatcher_logf(self->dispatcher, LOG_WARNING,
                            "aiokafka_c: exiting with %zd messages not "
                            "delivered by an AIOProducer that was not "
                            "closed; they are dropped (await close() or "
                            "flush() before exit to deliver them)",
                            left);
    }
    PyDict_Clear(self->topics); /* topic handles before the handle */
    self->rk = NULL;
    akc_poller_release_handle(p);
    while (self->ovf_len > 0) {
        Py_DECREF(akc_overflow_pop(self));
    }
    while (self->inflight != NULL) {
        MessageObject *m = self->inflight;
        akc_inflight_unlink(self, m);
        Py_DECREF(m);
    }
    PyList_SetSlice(self->flush_waiters, 0,
                    PyList_GET_SIZE(self->flush_waiters), NULL);
    self->state = AKC_CLOSED;
    PyErr_Clear();
}

/* ---- binding to the event loop ----------------------------------- */

/* Checks that we are on the event loop the producer is bound to,
 * binding to the running loop on first use.  Returns 0 or -1 with
 * RuntimeError. */
static int
producer_check_loop(ProducerObject *self, const char *method)
{
    PyObject *loop = PyObject_CallNoArgs(self->st->get_running_loop);
    if (loop == NULL) {
        return -1;
    }
    DispatcherObject *d = self->dispatcher;
    if (loop == d->loop) {
        Py_DECREF(loop);
        return 0;
    }
    int rc = 0;
    if (loop == Py_None) {
        PyErr_Format(PyExc_RuntimeError,
                     "AIOProducer.%s() must be called from a coroutine "
                     "running in an asyncio event loop",
                     method);
        rc = -1;
    }
    else if (d->loop != NULL) {
        PyErr_Format(PyExc_RuntimeError,
                     "AIOProducer.%s() called from a different event loop "
                     "than the one this producer is bound to (its first "
                     "use); create one producer per event loop",
                     method);
        rc = -1;
    }
    else {
        rc = akc_dispatcher_bind(d, loop);
    }
    Py_DECREF(loop);
    return rc;
}

static int
producer_check_open(ProducerObject *self, const char *method)
{
    if (self->state != AKC_OPEN) {
        PyErr_Format(PyExc_RuntimeError,
                     "AIOProducer.%s(): the producer is %s", method,
                     self->state == AKC_CLOSING ? "closing" : "closed");
        return -1;
    }
    return 0;
}

/* ---- produce ------------------------------------------------------ */



static PyObject *
producer_produce_common(ProducerObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames, int nowait)
{
    akc_state *st = self->st;
    const char *method = nowait ? "produce_nowait" : "produce";
    PyObject *names[NARGS + 1] = {
        st->str_topic,     st->str_value,   st->str_key,
        st->str_partition, st->str_timestamp, st->str_headers,
        st->str_on_delivery, nowait ? st->str_dispatch : NULL, NULL};
    PyObject *a[NARGS] = {NULL};
    if (akc_parse_args(method, args, nargs, kwnames, names, 3, 1, a) < 0) {
        return NULL;
    }
    if (producer_check_open(self, method) < 0 ||
        producer_check_loop(self, method) < 0) {
        return NULL;
    }
    MessageObject *m = akc_producer_build_message(self, a, nowait);
    if (m == NULL) {
        return NULL;
    }
    PyObject *fut = NULL;
    if (!nowait) {
        fut = akc_dispatcher_new_future(self->dispatcher);
        if (fut == NULL) {
            Py_DECREF(m);
            return NULL;
        }
        m->future = Py_NewRef(fut);
    }
    if (akc_producer_enqueue(self, m) < 0) {
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

/* Returns a new future already resolved with result. */
static PyObject *
producer_done_future(ProducerObject *self, PyObject *result)
{
    PyObject *fut = akc_dispatcher_new_future(self->dispatcher);
    if (fut == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethodOneArg(fut, self->st->str_set_result,
                                            result);
    if (r == NULL) {
        Py_DECREF(fut);
        return NULL;
    }
    Py_DECREF(r);
    return fut;
}

static PyObject *
producer_flush(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    PyObject *names[] = {self->st->str_timeout, NULL};
    PyObject *timeout = NULL;
    int ms;
    if (akc_parse_args("flush", args, nargs, kwnames, names, 1, 0,
                       &timeout) < 0 ||
        akc_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    if (self->state == AKC_CLOSED) {
        PyErr_SetString(PyExc_RuntimeError,
                        "AIOProducer.flush(): the producer is closed");
        return NULL;
    }
    if (producer_check_loop(self, "flush") < 0) {
        return NULL;
    }
    Py_ssize_t remaining = akc_producer_pending(self);
    if (remaining == 0 || ms == 0) {
        PyObject *r = PyLong_FromSsize_t(remaining);
        if (r == NULL) {
            return NULL;
        }
        PyObject *fut = producer_done_future(self, r);
        Py_DECREF(r);
        return fut;
    }
    PyObject *fut = akc_dispatcher_new_future(self->dispatcher);
    if (fut == NULL) {
        return NULL;
    }
    PyObject *w = Py_BuildValue("[OL]", fut,
                                (long long)(ms < 0 ? -1
                                                   : akc_now_ms() + ms));
    if (w == NULL || PyList_Append(self->flush_waiters, w) < 0) {
        Py_XDECREF(w);
        Py_DECREF(fut);
        return NULL;
    }
    Py_DECREF(w);
    akc_producer_update_tick(self);
    return fut;
}

static PyObject *
producer_purge(ProducerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (producer_check_open(self, "purge") < 0) {
        return NULL;
    }
    while (self->ovf_len > 0) {
        akc_producer_fail(self, akc_overflow_pop(self), RD_KAFKA_RESP_ERR__PURGE_QUEUE,
                      "purged before it could be queued");
    }
    rd_kafka_resp_err_t err = rd_kafka_purge(
        self->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                      RD_KAFKA_PURGE_F_NON_BLOCKING);
    akc_dispatcher_schedule(self->dispatcher);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return akc_raise(self->st, err, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
producer_close(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    akc_state *st = self->st;
    PyObject *names[] = {st->str_timeout, NULL};
    PyObject *timeout = NULL;
    int ms;
    if (akc_parse_args("close", args, nargs, kwnames, names, 1, 0,
                       &timeout) < 0 ||
        akc_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    if (self->state == AKC_CLOSING && self->close_future != NULL) {
        return Py_NewRef(self->close_future);
    }
    PyObject *loop = PyObject_CallNoArgs(st->get_running_loop);
    if (loop == NULL) {
        return NULL;
    }
    int on_loop = loop != Py_None;
    Py_DECREF(loop);
    if (self->state == AKC_CLOSED || !on_loop) {
        if (self->state != AKC_CLOSED &&
            producer_close_blocking(self, ms) < 0) {
            return NULL;
        }
        if (on_loop && producer_check_loop(self, "close") == 0) {
            return producer_done_future(self, Py_None);
        }
        PyErr_Clear();
        return PyObject_CallNoArgs((PyObject *)st->DoneType);
    }
    if (producer_check_loop(self, "close") < 0) {
        return NULL;
    }
    PyObject *fut = akc_dispatcher_new_future(self->dispatcher);
    if (fut == NULL) {
        return NULL;
    }
    self->close_future = Py_NewRef(fut);
    self->state = AKC_CLOSING;
    int64_t now = akc_now_ms();
    if (ms < 0) {
        self->close_flush_deadline = -1;
        self->close_deadline = -1;
    }
    else {
        /* Leave part of the budget for failing what is left. */
        int64_t purge = ms / 5 < CLOSE_PURGE_MS ? ms / 5 : CLOSE_PURGE_MS;
        self->close_flush_deadline = now + ms - purge;
        self->close_deadline = now + ms;
    }
    akc_producer_update_tick(self);
    return fut;
}

static PyObject *
producer_aenter(ProducerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (producer_check_open(self, "__aenter__") < 0 ||
        producer_check_loop(self, "__aenter__") < 0) {
        return NULL;
    }
    return producer_done_future(self, (PyObject *)self);
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

/* ---- construction and teardown ----------------------------------- */

static int64_t
conf_get_int(rd_kafka_conf_t *conf, const char *name, int64_t dflt)
{
    char buf[64];
    size_t size = sizeof(buf);
    if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK) {
        return dflt;
    }
    return strtoll(buf, NULL, 10);
}

/* Returns 1 if the producer should turn on enable.idempotence itself.
 *
 * Without it, a batch that is retried (a leader change, a topic that was
 * just created) lands behind batches sent after it, which breaks "call
 * order is delivery order per partition".  Like the Java client since
 * Kafka 3.0 we turn it on unless the user set it or chose acks other than
 * all (idempotence needs acks=all). */
static int
producer_wants_idempotence(PyObject *config)
{
    if (PyDict_GetItemString(config, "enable.idempotence") != NULL) {
        return 0;
    }
    PyObject *acks = PyDict_GetItemString(config, "acks");
    if (acks == NULL) {
        acks = PyDict_GetItemString(config, "request.required.acks");
    }
    if (acks == NULL) {
        return 1;
    }
    PyObject *s = PyObject_Str(acks);
    if (s == NULL) {
        PyErr_Clear();
        return 0;
    }
    const char *v = PyUnicode_AsUTF8(s);
    int all = v != NULL && (strcmp(v, "all") == 0 || strcmp(v, "-1") == 0);
    PyErr_Clear();
    Py_DECREF(s);
    return all;
}

static PyObject *
producer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config", "loop", NULL};
    PyObject *config, *loop = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:AIOProducer", kwlist,
                                     &config, &loop)) {
        return NULL;
    }
    akc_state *st = akc_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    ProducerObject *self = (ProducerObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->st = st;
    self->close_flush_deadline = self->close_deadline = -1;
    self->topics = PyDict_New();
    self->flush_waiters = PyList_New(0);
    if (self->topics == NULL || self->flush_waiters == NULL) {
        goto error;
    }
    akc_callbacks cbs;
    rd_kafka_conf_t *conf = akc_conf_build(st, config, &cbs);
    if (conf == NULL) {
        goto error;
    }
    if (producer_wants_idempotence(config)) {
        char errstr[256];
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                          sizeof(errstr));
    }
    self->dispatcher = akc_dispatcher_new(st, cbs.logger, cbs.error_cb,
                                          cbs.stats_cb, cbs.throttle_cb);
    int want_throttle = cbs.throttle_cb != NULL;
    akc_callbacks_clear(&cbs);
    if (self->dispatcher == NULL) {
        rd_kafka_conf_destroy(conf);
        goto error;
    }
    self->message_timeout_ms = conf_get_int(conf, "message.timeout.ms",
                                            300000);
    if (self->message_timeout_ms <= 0) {
        self->message_timeout_ms = INT32_MAX; /* 0 means "forever" */
    }
    self->ovf_max = (Py_ssize_t)conf_get_int(
        conf, "queue.buffering.max.messages", 100000);
    self->poller = akc_poller_new(st, self->dispatcher);
    if (self->poller == NULL) {
        rd_kafka_conf_destroy(conf);
        goto error;
    }
    akc_poller_configure(self->poller, conf, want_throttle);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                  sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        akc_raise(st, RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
        goto error;
    }
    self->rk = rk;
    if (akc_poller_start(self->poller, (PyObject *)self, rk,
                         producer_on_events, producer_atexit) < 0) {
        goto error;
    }
    if (loop != Py_None && akc_dispatcher_bind(self->dispatcher, loop) < 0) {
        goto error;
    }
    return (PyObject *)self;
error:
    Py_DECREF(self);
    return NULL;
}

static int
producer_traverse(ProducerObject *self, visitproc visit, void *arg)
{
    /* In-flight and waiting messages are deliberately not visited: the
     * collector must never clear a message librdkafka still points into. */
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->dispatcher);
    Py_VISIT(self->topics);
    Py_VISIT(self->flush_waiters);
    Py_VISIT(self->close_future);
    return 0;
}

static int
producer_clear(ProducerObject *self)
{
    Py_CLEAR(self->close_future);
    return 0;
}

static void
producer_dealloc(ProducerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    if (self->state != AKC_CLOSED && self->rk != NULL &&
        self->dispatcher != NULL) {
        Py_ssize_t left = akc_producer_pending(self);
        if (left > 0) {
            akc_dispatcher_logf(self->dispatcher, LOG_WARNING,
                                "aiokafka_c: an AIOProducer was garbage-"
                                "collected without close() with %zd "
                                "messages undelivered; they fail with "
                                "_DESTROY",
                                left);
        }
    }
    if (self->topics != NULL) {
        PyDict_Clear(self->topics); /* topic handles before the handle */
    }
    self->rk = NULL;
    if (self->poller != NULL) {
        akc_poller *p = self->poller;
        self->poller = NULL;
        akc_poller_destroy(p);
    }
    if (self->dispatcher != NULL && self->flush_waiters != NULL) {
        producer_fail_leftovers(self, "the producer was garbage-collected "
                                      "before the message was delivered");
        if (self->close_future != NULL && self->state != AKC_CLOSED) {
            akc_dispatcher_push_kind(self->dispatcher, AKC_ITEM_RESULT,
                                     self->close_future, Py_None);
        }
        akc_dispatcher_schedule(self->dispatcher);
        if (PyErr_Occurred()) {
            PyErr_WriteUnraisable(NULL);
        }
    }
    PyMem_Free(self->ovf);
    self->ovf = NULL;
    Py_CLEAR(self->close_future);
    Py_CLEAR(self->topics);
    Py_CLEAR(self->flush_waiters);
    Py_CLEAR(self->dispatcher);
    tp->tp_free(self);
    Py_DECREF(tp);
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
    {"produce_nowait", (PyCFunction)(void (*)(void))producer_produce_nowait,
     METH_FASTCALL | METH_KEYWORDS,
     "produce_nowait($self, /, topic, value=None, key=None, *, "
     "partition=-1, timestamp=0, headers=None, on_delivery=None, "
     "dispatch='loop')\n--\n\n"
     "Enqueue a message without a future.  on_delivery(err, msg) runs on "
     "the event loop (dispatch='loop') or on the native poll thread "
     "(dispatch='poll_thread'); without it, failures are logged."},
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
     "stop the poll thread.  Returns an awaitable; idempotent."},
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
    {Py_tp_dealloc, producer_dealloc},
    {Py_tp_traverse, producer_traverse},
    {Py_tp_clear, producer_clear},
    {Py_tp_methods, producer_methods},
    {Py_tp_members, producer_members},
    {Py_sq_length, producer_len},
    {Py_tp_doc,
     "AIOProducer(config, loop=None)\n--\n\n"
     "asyncio Kafka producer over librdkafka.  config is a dict of "
     "librdkafka properties plus optional error_cb, stats_cb, throttle_cb "
     "and logger."},
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
    if (st->ProducerType == NULL) {
        return -1;
    }
    return PyModule_AddType(module, st->ProducerType);
}
