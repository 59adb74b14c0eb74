/* The producer's outbox: handing messages to librdkafka.
 *
 * Each message handed over is on the in-flight list, which owns the one
 * reference librdkafka's opaque stands for; a message librdkafka has no
 * room for waits, in produce order, in the overflow ring until delivery
 * reports free some.  Everything here runs with the GIL held: on the loop
 * thread (produce) or on the poll thread (draining after a batch). */
#include "outbox.h"
#include "batch.h"
#include "errors.h"
#include "payload.h"

void
akc_inflight_link(ProducerObject *self, ProducedMessage *m)
{
    Py_INCREF(m);
    m->prev = NULL;
    m->next = self->inflight;
    if (self->inflight != NULL) {
        self->inflight->prev = m;
    }
    self->inflight = m;
    self->ninflight++;
}

/* Removes m; the caller inherits the list's reference. */
void
akc_inflight_unlink(ProducerObject *self, ProducedMessage *m)
{
    if (m->prev != NULL) {
        m->prev->next = m->next;
    }
    else {
        self->inflight = m->next;
    }
    if (m->next != NULL) {
        m->next->prev = m->prev;
    }
    m->prev = m->next = NULL;
    self->ninflight--;
}

static int
overflow_push(ProducerObject *self, ProducedMessage *m)
{
    if (self->ovf_len == self->ovf_cap) {
        Py_ssize_t cap = self->ovf_cap ? self->ovf_cap * 2 : 64;
        ProducedMessage **buf = PyMem_Malloc(sizeof(*buf) * (size_t)cap);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < self->ovf_len; i++) {
            buf[i] = self->ovf[(self->ovf_head + i) % self->ovf_cap];
        }
        PyMem_Free(self->ovf);
        self->ovf = buf;
        self->ovf_cap = cap;
        self->ovf_head = 0;
    }
    self->ovf[(self->ovf_head + self->ovf_len) % self->ovf_cap] =
        (ProducedMessage *)Py_NewRef(m);
    self->ovf_len++;
    return 0;
}

/* Returns the oldest waiting message (the queue's reference). */
ProducedMessage *
akc_overflow_pop(ProducerObject *self)
{
    ProducedMessage *m = self->ovf[self->ovf_head];
    self->ovf_head = (self->ovf_head + 1) % self->ovf_cap;
    self->ovf_len--;
    return m;
}

void
akc_message_fail(DispatcherObject *d, ProducedMessage *m,
                 rd_kafka_resp_err_t code, const char *reason)
{
    if (akc_message_set_failed(d->st, &m->base, code, reason) < 0) {
        PyErr_WriteUnraisable((PyObject *)m);
    }
    if (m->batch != NULL) {
        /* Counted here, not on the loop: a batch must never wait for an
         * item that a dead loop or a cleared dispatcher would drop. */
        akc_batch_message_done(d, m);
    }
    else if (akc_dispatcher_push(d, (PyObject *)m) < 0) {
        PyErr_WriteUnraisable((PyObject *)m);
    }
    Py_DECREF(m);
}

void
akc_message_drop(ProducedMessage *m)
{
    Py_CLEAR(m->batch);
    Py_DECREF(m);
}

/* Fails m (taking the reference the caller holds) and queues it for the
 * loop.  Never raises. */
void
akc_producer_fail(ProducerObject *self, ProducedMessage *m,
                  rd_kafka_resp_err_t code, const char *reason)
{
    akc_message_fail(self->core.dispatcher, m, code, reason);
}

void
akc_producer_update_tick(ProducerObject *self)
{
    akc_poller *p = self->core.poller;
    if (p == NULL) {
        return;
    }
    int want = self->ovf_len > 0 || self->core.state == AKC_CLOSING ||
               PyDict_GET_SIZE(self->flush_waiters) > 0;
    akc_poller_set_tick(p, want ? AKC_TICK_MS : 0);
}

static void
topic_capsule_destroy(PyObject *capsule)
{
    rd_kafka_topic_t *rkt = PyCapsule_GetPointer(capsule, "rd_kafka_topic_t");
    if (rkt != NULL) {
        rd_kafka_topic_destroy(rkt);
    }
}

/* Returns the cached topic handle for name (borrowed), creating it.  NULL
 * with an exception set on failure. */
static rd_kafka_topic_t *
producer_topic(ProducerObject *self, PyObject *name)
{
    PyObject *cap = PyDict_GetItemWithError(self->topics, name);
    if (cap != NULL) {
        return PyCapsule_GetPointer(cap, "rd_kafka_topic_t");
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    /* Checked once per topic, when its handle is made: a C string would
     * cut "orders\0-eu" to "orders". */
    if (akc_check_c_string(name, "topic") < 0) {
        return NULL;
    }
    const char *s = PyUnicode_AsUTF8(name);
    if (s == NULL) {
        return NULL;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(self->core.rk, s, NULL);
    if (rkt == NULL) {
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        akc_raise(self->core.st,
                  err ? err : RD_KAFKA_RESP_ERR__INVALID_ARG,
                  "invalid topic name");
        return NULL;
    }
    cap = PyCapsule_New(rkt, "rd_kafka_topic_t", topic_capsule_destroy);
    if (cap == NULL) {
        rd_kafka_topic_destroy(rkt);
        return NULL;
    }
    int rc = PyDict_SetItem(self->topics, name, cap);
    Py_DECREF(cap);
    return rc < 0 ? NULL : rkt;
}

int
akc_producer_check_topic(ProducerObject *self, PyObject *name)
{
    return producer_topic(self, name) != NULL ? 0 : -1;
}

/* Enqueues m in librdkafka; on success the in-flight list owns a
 * reference to m and librdkafka its headers.  Returns -1 with a Python
 * exception set, else 0 with librdkafka's verdict in *errp (its local
 * error codes are negative, so they cannot share the return value). */
static int
producer_send(ProducerObject *self, ProducedMessage *m,
              rd_kafka_resp_err_t *errp)
{
    if (self->core.rk == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "AIOProducer: the producer is closed");
        return -1;
    }
    rd_kafka_topic_t *rkt = producer_topic(self, m->base.topic);
    if (rkt == NULL) {
        return -1;
    }
    const void *val, *key;
    size_t vlen, klen;
    if (akc_payload_buffer(m->base.value, &val, &vlen) < 0 ||
        akc_payload_buffer(m->base.key, &key, &klen) < 0) {
        return -1;
    }
    rd_kafka_resp_err_t err;
    /* No RD_KAFKA_MSG_F_COPY: m keeps the immutable bytes/str alive until
     * the delivery report.  Headers go as a built list (RD_KAFKA_V_HEADERS):
     * librdkafka 2.0.2 double-frees RD_KAFKA_V_HEADER entries when the
     * partitioner fails. */
    if (m->c_headers != NULL) {
        err = rd_kafka_producev(
            self->core.rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(m->base.partition),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_TIMESTAMP(m->base.timestamp), RD_KAFKA_V_OPAQUE(m),
            RD_KAFKA_V_HEADERS(m->c_headers), RD_KAFKA_V_END);
    }
    else {
        err = rd_kafka_producev(
            self->core.rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(m->base.partition),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_TIMESTAMP(m->base.timestamp), RD_KAFKA_V_OPAQUE(m),
            RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        m->c_headers = NULL;
        akc_inflight_link(self, m);
    }
    *errp = err;
    return 0;
}

/* Moves waiting messages into librdkafka while it has room; fails those
 * that waited longer than message.timeout.ms.  GIL held. */
void
akc_producer_drain_overflow(ProducerObject *self)
{
    int64_t now = self->ovf_len ? akc_now_ms() : 0;
    while (self->ovf_len > 0 && self->core.rk != NULL) {
        /* Borrowed from the ring: safe because producer_send runs no
         * Python code (topics are exact str, their hash is C's). */
        ProducedMessage *m = self->ovf[self->ovf_head];
        if (now > m->deadline_ms) {
            akc_producer_fail(self, akc_overflow_pop(self),
                              RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
                              "the local queue stayed full for "
                              "message.timeout.ms");
            continue;
        }
        rd_kafka_resp_err_t err;
        int rc = producer_send(self, m, &err);
        if (rc == 0 && err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        m = akc_overflow_pop(self);
        if (rc < 0) {
            PyObject *exc = akc_err_take();
            PyObject *text = exc ? PyObject_Str(exc) : NULL;
            const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
            PyErr_Clear();
            akc_producer_fail(self, m, RD_KAFKA_RESP_ERR__FAIL, s);
            Py_XDECREF(text);
            Py_XDECREF(exc);
        }
        else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            akc_producer_fail(self, m, err, NULL);
        }
        else {
            Py_DECREF(m);
        }
    }
}

/* Messages not yet reported: in librdkafka or waiting for room.  Exact,
 * unlike rd_kafka_outq_len(), which also counts queued events. */
Py_ssize_t
akc_producer_pending(ProducerObject *self)
{
    return self->ninflight + self->ovf_len;
}

/* Hands m to librdkafka or to the overflow queue.  Returns 0 or -1 with
 * an exception (KafkaException for librdkafka's refusals). */
int
akc_producer_enqueue(ProducerObject *self, ProducedMessage *m)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__QUEUE_FULL;
    /* With messages already waiting, going straight in would overtake
     * them. */
    if (self->ovf_len == 0 && producer_send(self, m, &err) < 0) {
        return -1;
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return 0;
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        akc_raise(self->core.st, err, NULL);
        return -1;
    }
    /* Backpressure: wait (in produce order) for delivery reports to make
     * room, at most message.timeout.ms, and at most ovf_max messages --
     * but every message of a batch waits: the caller's list already holds
     * them all, the ring only points to them. */
    if (self->ovf_len >= self->ovf_max && m->batch == NULL) {
        PyObject *reason = PyUnicode_FromFormat(
            "local queue full: librdkafka's queue "
            "(queue.buffering.max.messages/kbytes) is full and %zd more "
            "messages are already waiting for room; await the futures or "
            "flush() before producing more",
            self->ovf_len);
        akc_raise(self->core.st, RD_KAFKA_RESP_ERR__QUEUE_FULL,
                  reason ? PyUnicode_AsUTF8(reason) : NULL);
        Py_XDECREF(reason);
        return -1;
    }
    m->deadline_ms = akc_now_ms() + self->message_timeout_ms;
    if (overflow_push(self, m) < 0) {
        return -1;
    }
    akc_producer_update_tick(self);
    return 0;
}

