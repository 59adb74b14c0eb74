/* Delivery reports of produced messages: taken on the poll thread,
 * completed on the loop.
 *
 * The poll thread fills each reported message in, runs poll-thread
 * callbacks there, and hands to the dispatcher only what someone may
 * observe (a future, a loop callback, a failure); the dispatcher then
 * completes them on the loop through akc_producer_deliver. */
#include "delivery.h"
#include "batch.h"
#include "errors.h"
#include "outbox.h"

/* ---- completing deliveries on the loop (the dispatcher's client item) */

/* Resolves the message's future, if anyone still waits on it.  Returns 1
 * if someone observed the result. */
static int
deliver_future(DispatcherObject *d, MessageObject *m, PyObject *fut)
{
    PyObject *res = m->error ? akc_exception_new(d->st, m->error)
                             : Py_NewRef((PyObject *)m);
    int rc = res ? akc_dispatcher_resolve(d, fut, res) : -1;
    Py_XDECREF(res);
    if (rc < 0) {
        PyErr_WriteUnraisable(fut);
    }
    return rc > 0;
}

/* A failure nobody waited for (fire-and-forget, or the awaiting task was
 * cancelled) still has to be seen by someone. */
static void
deliver_unobserved(DispatcherObject *d, MessageObject *m)
{
    PyObject *text = PyObject_Str(m->error);
    if (text == NULL) {
        PyErr_Clear();
        return;
    }
    akc_dispatcher_logf(d, AKC_LOG_ERROR,
                        "aiokafka_c: delivery failed (no one is waiting for "
                        "it): topic=%S partition=%d: %U",
                        m->topic ? m->topic : Py_None, (int)m->partition,
                        text);
    Py_DECREF(text);
}

/* The dispatcher's client item: one delivery report, on the loop. */
void
akc_producer_deliver(DispatcherObject *d, PyObject *item)
{
    if (!Py_IS_TYPE(item, d->st->MessageType)) {
        akc_batch_deliver(d, item);
        return;
    }
    ProducedMessage *pm = (ProducedMessage *)item;
    MessageObject *m = &pm->base;
    /* A message of a batch never comes here: its batch does. */
    assert(pm->batch == NULL);
    /* Take ownership of the fields first: callbacks may touch m. */
    PyObject *fut = pm->future, *cb = pm->on_delivery, *ctx = pm->context;
    pm->future = pm->on_delivery = pm->context = NULL;
    int observed = cb != NULL;
    if (fut != NULL) {
        observed |= deliver_future(d, m, fut);
        Py_DECREF(fut);
    }
    if (cb != NULL) {
        PyObject *args[2] = {m->error ? m->error : Py_None, item};
        akc_dispatcher_call_user(d, cb, args, 2, ctx, "on_delivery callback",
                                 1);
        Py_DECREF(cb);
    }
    Py_XDECREF(ctx);
    if (!observed && m->error != NULL) {
        deliver_unobserved(d, m);
    }
}

/* ---- on the poll thread --------------------------------------------- */

/* One delivered message, on the poll thread: run a poll-thread callback
 * here, hand everything else that someone may observe to the loop. */
static void
producer_report(ProducerObject *self, const rd_kafka_message_t *rkm)
{
    ProducedMessage *pm = rkm->_private;
    if (pm == NULL) {
        return;
    }
    akc_inflight_unlink(self, pm); /* we now own its reference */
    DispatcherObject *d = self->core.dispatcher;
    if (akc_message_set_delivery(self->core.st, &pm->base, rkm) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    akc_poller *p = self->core.poller;
    if (p != NULL && rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->conn_err = RD_KAFKA_RESP_ERR_NO_ERROR; /* the cluster answers */
    }
    else if (p != NULL && rkm->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT &&
             p->conn_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Never an unexplained timeout: say what kept the message from
         * the broker (the code stays librdkafka's). */
        char why[600];
        snprintf(why, sizeof(why),
                 "Local: Message timed out; the last broker error, %.1f s "
                 "before: %s: %s",
                 (double)(akc_now_ms() - p->conn_err_ms) / 1000.0,
                 rd_kafka_err2name(p->conn_err), p->conn_reason);
        if (akc_message_set_failed(self->core.st, &pm->base,
                                   RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
                                   why) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
    }
    if (pm->batch != NULL) {
        akc_batch_message_done(d, pm); /* the batch's future answers */
    }
    else if (pm->dispatch_poll_thread && pm->on_delivery != NULL) {
        PyObject *cb = pm->on_delivery, *ctx = pm->context;
        pm->on_delivery = pm->context = NULL;
        PyObject *args[2] = {pm->base.error ? pm->base.error : Py_None,
                             (PyObject *)pm};
        akc_dispatcher_call_user(d, cb, args, 2, ctx, "on_delivery callback",
                                 0);
        Py_DECREF(cb);
        Py_XDECREF(ctx);
    }
    else if (pm->future != NULL || pm->on_delivery != NULL ||
             pm->base.error != NULL) {
        if (akc_dispatcher_push(d, (PyObject *)pm) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
    }
    /* A fire-and-forget success needs nothing from the loop. */
    Py_DECREF(pm);
}

void
akc_producer_reports(ProducerObject *self, rd_kafka_event_t *ev)
{
    const rd_kafka_message_t *msgs[AKC_POLL_BATCH];
    size_t cnt;
    while ((cnt = rd_kafka_event_message_array(ev, msgs, AKC_POLL_BATCH)) >
           0) {
        for (size_t j = 0; j < cnt; j++) {
            producer_report(self, msgs[j]);
        }
    }
}

