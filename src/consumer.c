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
 * Consume calls (consume.c) pop the ring on the loop thread; a ready
 * message comes back without a future and without a loop round trip.
 * Blocking librdkafka calls run on the client's worker thread (worker.c).
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
/* A blocking call (committed, watermarks, metadata) with timeout=None. */
#define DEFAULT_CALL_TIMEOUT_MS 60000
/* Leaving the group on close() with timeout=None. */
#define DEFAULT_CLOSE_MS 30000

/* ---- rebalances on the loop ---------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *consumer_ref; /* weakref */
    PyObject *cb;           /* on_assign / on_revoke / on_lost, or NULL */
    PyObject *parts;        /* list[TopicPartition] given to cb */
    akc_cmd *cmd;           /* the answer, queued once cb is done */
    int closing;            /* the revoke of close(): no answer */
} RebalanceObject;

static int
rebalance_traverse(RebalanceObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->consumer_ref);
    Py_VISIT(self->cb);
    Py_VISIT(self->parts);
    return 0;
}

static int
rebalance_clear(RebalanceObject *self)
{
    Py_CLEAR(self->consumer_ref);
    Py_CLEAR(self->cb);
    Py_CLEAR(self->parts);
    return 0;
}

static void
rebalance_dealloc(RebalanceObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    rebalance_clear(self);
    if (self->cmd != NULL) {
        akc_cmd_free(self->cmd);
    }
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot rebalance_slots[] = {
    {Py_tp_dealloc, rebalance_dealloc},
    {Py_tp_traverse, rebalance_traverse},
    {Py_tp_clear, rebalance_clear},
    {0, NULL},
};

static PyType_Spec rebalance_spec = {
    .name = "aiokafka_c._Rebalance",
    .basicsize = sizeof(RebalanceObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = rebalance_slots,
};

/* Queues a command for the poll thread and wakes it.  GIL held. */
static void
consumer_queue(ConsumerObject *self, akc_cmd *c)
{
    akc_fetch *f = self->fetch;
    pthread_mutex_lock(&f->lock);
    akc_fetch_queue_cmd(f, c);
    pthread_mutex_unlock(&f->lock);
    if (self->core.poller != NULL) {
        akc_poller_wake(self->core.poller);
    }
}

/* The callback is done (returned, raised, or its task finished): queue
 * the answer, unless the callback assigned itself or this is close()'s
 * revoke.  Loop thread. */
static void
rebalance_finish(RebalanceObject *rb)
{
    PyObject *obj = NULL;
    if (akc_weakref_get(rb->consumer_ref, &obj) <= 0) {
        PyErr_Clear();
        return;
    }
    ConsumerObject *self = (ConsumerObject *)obj;
    if (self->rebalance == (PyObject *)rb) {
        Py_CLEAR(self->rebalance);
    }
    akc_cmd *c = rb->cmd;
    rb->cmd = NULL;
    if (rb->closing || self->rebalance_assigned || c == NULL ||
        self->core.state != AKC_OPEN) {
        if (c != NULL && self->core.state == AKC_CLOSING && !rb->closing &&
            !self->rebalance_assigned) {
            consumer_queue(self, c); /* librdkafka still waits for it */
            c = NULL;
        }
        if (c != NULL) {
            akc_cmd_free(c);
        }
        if (self->core.poller != NULL) {
            akc_poller_wake(self->core.poller); /* closing_step may go on */
        }
        Py_DECREF(obj);
        return;
    }
    if (c->assign == 1 && rb->parts != NULL) {
        /* on_assign may have set offsets on the partitions it got. */
        rd_kafka_topic_partition_list_t *l =
            akc_tplist_from_py(self->core.st, rb->parts, "partitions");
        if (l != NULL) {
            rd_kafka_topic_partition_list_destroy(c->parts);
            c->parts = l;
        }
        else {
            akc_dispatcher_logf(self->core.dispatcher, AKC_LOG_ERROR,
                                "aiokafka_c: on_assign left its partition "
                                "list unusable; the assignment is applied "
                                "as the group gave it");
            PyErr_Clear();
        }
    }
    consumer_queue(self, c);
    Py_DECREF(obj);
}

static PyObject *
rebalance_task_done(PyObject *rb, PyObject *task)
{
    PyObject *r = PyObject_CallMethod(task, "cancelled", NULL);
    int cancelled = r ? PyObject_IsTrue(r) : 1;
    Py_XDECREF(r);
    PyErr_Clear();
    if (!cancelled) {
        PyObject *exc = PyObject_CallMethod(task, "exception", NULL);
        if (exc != NULL && exc != Py_None) {
            PyObject *obj = NULL;
            if (akc_weakref_get(((RebalanceObject *)rb)->consumer_ref, &obj) >
                0) {
                PyObject *msg = PyUnicode_FromString(
                    "aiokafka_c: a rebalance callback raised; the "
                    "assignment is applied anyway");
                if (msg != NULL) {
                    akc_dispatcher_log(
                        ((ConsumerObject *)obj)->core.dispatcher,
                        AKC_LOG_ERROR, msg, exc);
                    Py_DECREF(msg);
                }
                Py_DECREF(obj);
            }
        }
        Py_XDECREF(exc);
        PyErr_Clear();
    }
    rebalance_finish((RebalanceObject *)rb);
    Py_RETURN_NONE;
}

static PyMethodDef rebalance_done_def = {
    "_rebalance_done", rebalance_task_done, METH_O, NULL,
};

/* A context in which consume calls know they are inside a callback. */
static PyObject *
callback_context(akc_state *st)
{
    PyObject *ctx = PyContext_CopyCurrent();
    if (ctx == NULL) {
        return NULL;
    }
    if (PyContext_Enter(ctx) < 0) {
        Py_DECREF(ctx);
        return NULL;
    }
    PyObject *tok = PyContextVar_Set(st->in_consumer_callback, Py_True);
    Py_XDECREF(tok);
    if (PyContext_Exit(ctx) < 0 || tok == NULL) {
        Py_DECREF(ctx);
        return NULL;
    }
    return ctx;
}

/* Runs the callback of a rebalance on the loop.  An async one becomes a
 * task (made inside the callback context) and the answer waits for it. */
static void
rebalance_run(ConsumerObject *self, RebalanceObject *rb)
{
    akc_core *core = &self->core;
    DispatcherObject *d = core->dispatcher;
    Py_XSETREF(self->rebalance, Py_NewRef(rb));
    self->rebalance_assigned = 0;
    if (rb->cb == NULL) {
        rebalance_finish(rb);
        return;
    }
    PyObject *ctx = callback_context(core->st);
    PyObject *task = NULL, *done = NULL;
    if (ctx == NULL || PyContext_Enter(ctx) < 0) {
        goto failed;
    }
    PyObject *args[2] = {(PyObject *)self, rb->parts};
    PyObject *r = PyObject_Vectorcall(rb->cb, args, 2, NULL);
    if (r != NULL) {
        PyObject *c = PyObject_CallOneArg(core->st->iscoroutine, r);
        int is_coro = c ? PyObject_IsTrue(c) : -1;
        Py_XDECREF(c);
        if (is_coro > 0) {
            task = PyObject_CallMethodOneArg(d->loop, core->st->str_create_task,
                                             r);
        }
        Py_DECREF(r);
        if (is_coro < 0 || (is_coro > 0 && task == NULL)) {
            r = NULL;
        }
    }
    PyObject *exc = r == NULL ? akc_err_take() : NULL;
    if (PyContext_Exit(ctx) < 0) {
        PyErr_Clear();
    }
    if (exc != NULL) {
        PyObject *msg = PyUnicode_FromString(
            "aiokafka_c: a rebalance callback raised; the assignment is "
            "applied anyway");
        if (msg != NULL) {
            akc_dispatcher_log(d, AKC_LOG_ERROR, msg, exc);
            Py_DECREF(msg);
        }
        PyErr_Clear();
        Py_DECREF(exc);
    }
    if (task != NULL) {
        done = PyCFunction_New(&rebalance_done_def, (PyObject *)rb);
        PyObject *ok = done ? PyObject_CallMethodOneArg(
                                  task, core->st->str_add_done_callback, done)
                            : NULL;
        if (ok != NULL) {
            Py_DECREF(ok);
            Py_DECREF(done);
            Py_DECREF(task);
            Py_DECREF(ctx);
            return;
        }
        PyErr_WriteUnraisable((PyObject *)self);
        Py_XDECREF(done);
        Py_DECREF(task);
    }
    Py_XDECREF(ctx);
    rebalance_finish(rb);
    return;
failed:
    PyErr_WriteUnraisable((PyObject *)self);
    Py_XDECREF(ctx);
    rebalance_finish(rb);
}

/* The dispatcher's client items: a wake-up (the consumer's weakref) or a
 * rebalance.  Loop thread. */
static void
consumer_item(DispatcherObject *d, PyObject *item)
{
    if (Py_IS_TYPE(item, d->st->RebalanceType)) {
        RebalanceObject *rb = (RebalanceObject *)item;
        PyObject *obj = NULL;
        if (akc_weakref_get(rb->consumer_ref, &obj) > 0) {
            rebalance_run((ConsumerObject *)obj, rb);
            Py_DECREF(obj);
        }
        PyErr_Clear();
        return;
    }
    PyObject *obj = NULL;
    if (PyWeakref_Check(item) && akc_weakref_get(item, &obj) > 0) {
        akc_consume_serve((ConsumerObject *)obj);
        Py_DECREF(obj);
    }
    PyErr_Clear();
}

/* ---- the poll thread's GIL pass -------------------------------------- */

/* Stores the released positions now (before a revoke: so that a commit
 * in on_revoke includes them).  GIL held, any thread. */
static void
consumer_store_released(ConsumerObject *self, int release)
{
    akc_fetch *f = self->fetch;
    if (!self->auto_store || self->core.rk == NULL) {
        return;
    }
    pthread_mutex_lock(&f->lock);
    if (release) {
        /* Closing: the user is done with what was handed out.  A revoke
         * must not assume so (the message may still be processed). */
        akc_consume_release_locked(self);
    }
    rd_kafka_topic_partition_list_t *l = akc_fetch_take_store(f);
    pthread_mutex_unlock(&f->lock);
    if (l != NULL) {
        rd_kafka_offsets_store(self->core.rk, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
}

static void
consumer_rebalance_event(ConsumerObject *self, rd_kafka_event_t *ev)
{
    akc_core *core = &self->core;
    rd_kafka_t *rk = core->rk;
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    const rd_kafka_topic_partition_list_t *parts =
        rd_kafka_event_topic_partition_list(ev);
    int assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS   ? 1
                 : err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? 0
                                                               : -1;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    int lost = rd_kafka_assignment_lost(rk);
    akc_cmd *c = akc_cmd_new(AKC_CMD_REBALANCE,
                             akc_plain_list(parts),
                             NULL);
    if (c == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    c->assign = assign;
    c->cooperative = coop;
    if (assign == 1) {
        pthread_mutex_lock(&self->fetch->lock);
        self->fetch->seen_assign = 1;
        self->fetch->sticky_hazard = 0;
        pthread_mutex_unlock(&self->fetch->lock);
    }
    if (assign != 1) {
        consumer_store_released(self, 0);
        /* Nothing of a revoked partition is handed out from now on. */
        akc_fetch *f = self->fetch;
        pthread_mutex_lock(&f->lock);
        if (!coop || parts == NULL) {
            akc_fetch_purge(f, NULL);
        }
        else {
            for (int i = 0; i < parts->cnt; i++) {
                akc_tp *tp = akc_fetch_find(f, parts->elems[i].topic,
                                            parts->elems[i].partition);
                if (tp != NULL) {
                    akc_fetch_purge(f, tp);
                }
            }
        }
        pthread_mutex_unlock(&f->lock);
    }
    if (assign < 0) {
        akc_dispatcher_logf(core->dispatcher, AKC_LOG_ERROR,
                            "aiokafka_c: rebalance failed: %s; the "
                            "assignment is dropped",
                            rd_kafka_err2str(err));
    }
    PyObject *cb = assign == 1   ? self->on_assign
                   : assign == 0 ? (lost && self->on_lost ? self->on_lost
                                                          : self->on_revoke)
                                 : NULL;
    DispatcherObject *d = core->dispatcher;
    if (cb == NULL || d->loop == NULL || d->loop_dead ||
        core->state != AKC_OPEN) {
        consumer_queue(self, c);
        return;
    }
    RebalanceObject *rb = PyObject_GC_New(RebalanceObject,
                                          core->st->RebalanceType);
    if (rb == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
        consumer_queue(self, c);
        return;
    }
    rb->consumer_ref = PyWeakref_NewRef((PyObject *)self, NULL);
    rb->cb = Py_NewRef(cb);
    rb->parts = akc_tplist_to_py(core->st, parts);
    rb->cmd = c;
    rb->closing = 0;
    PyObject_GC_Track(rb);
    if (rb->consumer_ref == NULL || rb->parts == NULL ||
        akc_dispatcher_push(d, (PyObject *)rb) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
        rb->cmd = NULL;
        consumer_queue(self, c);
    }
    Py_DECREF(rb);
}

/* The result of one of our commits (or, with the poller as opaque, of an
 * auto-commit): the future, and on_commit. */
static void
consumer_commit_event(ConsumerObject *self, rd_kafka_event_t *ev)
{
    akc_core *core = &self->core;
    akc_state *st = core->st;
    void *opaque = rd_kafka_event_opaque(ev);
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    const rd_kafka_topic_partition_list_t *parts =
        rd_kafka_event_topic_partition_list(ev);
    PyObject *fut = NULL;
    if (opaque != (void *)core->poller) {
        PyObject *id = PyLong_FromVoidPtr(opaque);
        if (id != NULL) {
            fut = PyDict_GetItemWithError(self->commits, id);
            Py_XINCREF(fut);
            if (fut != NULL && PyDict_DelItem(self->commits, id) < 0) {
                PyErr_Clear();
            }
        }
        Py_XDECREF(id);
    }
    PyObject *list = err == RD_KAFKA_RESP_ERR__NO_OFFSET
                         ? PyList_New(0)
                         : akc_tplist_to_py(st, parts);
    PyObject *kerr = NULL;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR &&
        err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        kerr = akc_error_from_code(st, err, rd_kafka_event_error_string(ev));
    }
    for (int i = 0; kerr == NULL && parts != NULL && i < parts->cnt; i++) {
        if (parts->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kerr = akc_error_from_code(st, parts->elems[i].err, NULL);
        }
    }
    if (list == NULL) {
        goto done;
    }
    if (fut != NULL) {
        PyObject *res = kerr ? akc_exception_new(st, kerr) : Py_NewRef(list);
        if (res == NULL ||
            akc_dispatcher_push_kind(core->dispatcher, AKC_ITEM_RESULT, fut,
                                     res) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_XDECREF(res);
    }
    if (self->on_commit != NULL && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        PyObject *args = PyTuple_Pack(2, kerr ? kerr : Py_None, list);
        if (args == NULL ||
            akc_dispatcher_push_kind(core->dispatcher, AKC_ITEM_CALL,
                                     self->on_commit, args) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_XDECREF(args);
    }
    else if (kerr != NULL && fut == NULL) {
        PyObject *text = PyObject_Repr(kerr);
        if (text != NULL) {
            akc_dispatcher_logf(core->dispatcher, AKC_LOG_ERROR,
                                "aiokafka_c: commit failed: %U", text);
            Py_DECREF(text);
        }
    }
done:
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(list);
    Py_XDECREF(kerr);
    Py_XDECREF(fut);
}

/* Answers the commands the poll thread ran. */
static void
consumer_answer_cmds(ConsumerObject *self)
{
    akc_fetch *f = self->fetch;
    pthread_mutex_lock(&f->lock);
    akc_cmd *c = akc_fetch_take_done(f);
    pthread_mutex_unlock(&f->lock);
    while (c != NULL) {
        akc_cmd *next = c->next;
        if (c->future != NULL) {
            PyObject *res =
                c->err == RD_KAFKA_RESP_ERR_NO_ERROR
                    ? Py_NewRef(Py_None)
                    : akc_exception_new(
                          self->core.st,
                          akc_error_from_code(self->core.st, c->err,
                                              c->errstr[0] ? c->errstr
                                                           : NULL));
            if (res == NULL ||
                akc_dispatcher_push_kind(self->core.dispatcher,
                                         AKC_ITEM_RESULT, c->future,
                                         res) < 0) {
                PyErr_WriteUnraisable((PyObject *)self);
            }
            Py_XDECREF(res);
        }
        else if (c->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            akc_dispatcher_logf(self->core.dispatcher, AKC_LOG_ERROR,
                                "aiokafka_c: consumer: %s",
                                c->errstr[0] ? c->errstr
                                             : rd_kafka_err2str(c->err));
        }
        akc_cmd_free(c);
        c = next;
    }
}

static void
consumer_on_events(PyObject *client, rd_kafka_event_t **evs, size_t n)
{
    ConsumerObject *self = (ConsumerObject *)client;
    for (size_t i = 0; i < n; i++) {
        switch (rd_kafka_event_type(evs[i])) {
        case RD_KAFKA_EVENT_REBALANCE:
            consumer_rebalance_event(self, evs[i]);
            break;
        case RD_KAFKA_EVENT_OFFSET_COMMIT:
            consumer_commit_event(self, evs[i]);
            break;
        default:
            break;
        }
        rd_kafka_event_destroy(evs[i]);
    }
    consumer_answer_cmds(self);
    akc_consume_wake(self);
}

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
            consumer_store_released(self, 1);
            RebalanceObject *rb = PyObject_GC_New(RebalanceObject,
                                                  core->st->RebalanceType);
            if (rb != NULL) {
                rb->consumer_ref = PyWeakref_NewRef(client, NULL);
                rb->cb = Py_NewRef(cb);
                rb->parts = akc_tplist_to_py(core->st, a);
                rb->cmd = NULL;
                rb->closing = 1;
                PyObject_GC_Track(rb);
                if (rb->consumer_ref != NULL && rb->parts != NULL &&
                    akc_dispatcher_push(d, (PyObject *)rb) == 0) {
                    Py_XSETREF(self->rebalance, (PyObject *)rb);
                    rb = NULL;
                }
                Py_XDECREF(rb);
            }
            if (PyErr_Occurred()) {
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
    consumer_store_released(self, 1);
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
    if (f->worker != NULL) {
        akc_worker_stop(f->worker);
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
        while (!rd_kafka_consumer_closed(rk) && akc_now_ms() < deadline) {
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
consumer_before_destroy(akc_poller *p)
{
    akc_fetch *f = p->ctx;
    if (f->worker != NULL) {
        akc_worker_stop(f->worker);
    }
    akc_fetch_close(f);
    pthread_mutex_lock(&f->lock);
    int hazard = f->sticky_hazard;
    pthread_mutex_unlock(&f->lock);
    return hazard && rd_kafka_version() < 0x020300ff;
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
    if (!quiet) {
        consumer_answer_cmds(self);
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
    .on_events = consumer_on_events,
    .closing_step = consumer_closing_step,
    .forget_handle = consumer_forget_handle,
    .teardown = consumer_teardown,
    .release = consumer_release,
    .fail_orphans = NULL,
    .nogil_pass = consumer_nogil_pass,
    .before_destroy = consumer_before_destroy,
    .ctx_free = consumer_ctx_free,
};

/* ---- methods: group membership and assignment ------------------------ */

/* Like akc_core_check_open(), but close()'s own on_revoke may still
 * commit, store and read positions while the consumer closes. */
static int
consumer_check_usable(ConsumerObject *self, const char *method)
{
    akc_core *core = &self->core;
    if (core->state == AKC_CLOSING && self->rebalance != NULL &&
        core->rk != NULL && self->cq != NULL) {
        return 0;
    }
    return akc_core_check_open(core, method);
}

/* Returns a new future and queues kind with parts (taken) for the poll
 * thread, or NULL with an exception. */
static PyObject *
consumer_command(ConsumerObject *self, const char *method, int kind,
                 rd_kafka_topic_partition_list_t *parts)
{
    akc_core *core = &self->core;
    if (akc_core_check_open(core, method) < 0 ||
        akc_core_check_loop(core, method) < 0) {
        if (parts != NULL) {
            rd_kafka_topic_partition_list_destroy(parts);
        }
        return NULL;
    }
    PyObject *fut = akc_dispatcher_new_future(core->dispatcher);
    akc_cmd *c = fut ? akc_cmd_new(kind, parts, fut) : NULL;
    if (c == NULL) {
        if (parts != NULL) {
            rd_kafka_topic_partition_list_destroy(parts);
        }
        Py_XDECREF(fut);
        return NULL;
    }
    if (self->rebalance != NULL &&
        (kind == AKC_CMD_ASSIGN || kind == AKC_CMD_INCR_ASSIGN ||
         kind == AKC_CMD_INCR_UNASSIGN)) {
        self->rebalance_assigned = 1; /* confluent's rule: no auto-answer */
    }
    consumer_queue(self, c);
    return fut;
}

static PyObject *
consumer_subscribe(ConsumerObject *self, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    akc_state *st = self->core.st;
    static PyObject *names[5];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("topics");
        names[1] = PyUnicode_InternFromString("on_assign");
        names[2] = PyUnicode_InternFromString("on_revoke");
        names[3] = PyUnicode_InternFromString("on_lost");
    }
    PyObject *a[4] = {NULL};
    if (akc_parse_args("subscribe", args, nargs, kwnames, names, 1, 1, a) <
        0) {
        return NULL;
    }
    for (int i = 1; i < 4; i++) {
        if (a[i] == Py_None) {
            a[i] = NULL;
        }
        if (a[i] != NULL && !PyCallable_Check(a[i])) {
            return PyErr_Format(PyExc_TypeError,
                                "subscribe(): %U must be callable, not %.100s",
                                names[i], Py_TYPE(a[i])->tp_name);
        }
    }
    if (PyUnicode_Check(a[0]) || !PySequence_Check(a[0])) {
        return PyErr_Format(PyExc_TypeError,
                            "subscribe(): topics must be a list of str, not "
                            "%.100s",
                            Py_TYPE(a[0])->tp_name);
    }
    PyObject *topics = PySequence_List(a[0]);
    if (topics == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(topics);
    if (n == 0) {
        Py_DECREF(topics);
        PyErr_SetString(PyExc_ValueError,
                        "subscribe(): topics is empty (use unsubscribe())");
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new((int)n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(topics, i);
        if (!PyUnicode_Check(t)) {
            PyErr_Format(PyExc_TypeError,
                         "subscribe(): topics must be str, not %.100s",
                         Py_TYPE(t)->tp_name);
            goto fail;
        }
        const char *s = PyUnicode_AsUTF8(t);
        if (s == NULL || akc_check_c_string(t, "topic") < 0) {
            goto fail;
        }
        if (*s == '\0') {
            PyErr_SetString(PyExc_ValueError, "subscribe(): empty topic name");
            goto fail;
        }
        rd_kafka_topic_partition_list_add(l, s, RD_KAFKA_PARTITION_UA);
    }
    PyObject *fut = consumer_command(self, "subscribe", AKC_CMD_SUBSCRIBE, l);
    if (fut == NULL) {
        Py_DECREF(topics);
        return NULL;
    }
    if (self->sticky) {
        pthread_mutex_lock(&self->fetch->lock);
        self->fetch->sticky_hazard = !self->fetch->seen_assign;
        pthread_mutex_unlock(&self->fetch->lock);
    }
    Py_XSETREF(self->subscription, topics);
    Py_XSETREF(self->on_assign, Py_XNewRef(a[1]));
    Py_XSETREF(self->on_revoke, Py_XNewRef(a[2]));
    Py_XSETREF(self->on_lost, Py_XNewRef(a[3]));
    (void)st;
    return fut;
fail:
    rd_kafka_topic_partition_list_destroy(l);
    Py_DECREF(topics);
    return NULL;
}

static PyObject *
consumer_unsubscribe(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *fut = consumer_command(self, "unsubscribe",
                                     AKC_CMD_UNSUBSCRIBE, NULL);
    if (fut != NULL) {
        Py_CLEAR(self->subscription);
    }
    return fut;
}

static PyObject *
consumer_parts_command(ConsumerObject *self, PyObject *parts,
                       const char *method, int kind)
{
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(self->core.st, parts, "partitions");
    if (l == NULL) {
        return NULL;
    }
    return consumer_command(self, method, kind, l);
}

static PyObject *
consumer_assign(ConsumerObject *self, PyObject *parts)
{
    return consumer_parts_command(self, parts, "assign", AKC_CMD_ASSIGN);
}

static PyObject *
consumer_unassign(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    return consumer_command(self, "unassign", AKC_CMD_ASSIGN, NULL);
}

static PyObject *
consumer_incremental_assign(ConsumerObject *self, PyObject *parts)
{
    return consumer_parts_command(self, parts, "incremental_assign",
                                  AKC_CMD_INCR_ASSIGN);
}

static PyObject *
consumer_incremental_unassign(ConsumerObject *self, PyObject *parts)
{
    return consumer_parts_command(self, parts, "incremental_unassign",
                                  AKC_CMD_INCR_UNASSIGN);
}

static PyObject *
consumer_assignment(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (consumer_check_usable(self, "assignment") < 0) {
        return NULL;
    }
    akc_fetch *f = self->fetch;
    pthread_mutex_lock(&f->lock);
    rd_kafka_topic_partition_list_t *a =
        akc_plain_list(f->assignment);
    pthread_mutex_unlock(&f->lock);
    PyObject *r = akc_tplist_to_py(self->core.st, a);
    if (a != NULL) {
        rd_kafka_topic_partition_list_destroy(a);
    }
    return r;
}

static PyObject *
consumer_subscription(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->subscription == NULL) {
        return PyList_New(0);
    }
    return PyList_GetSlice(self->subscription, 0, PY_SSIZE_T_MAX);
}

static PyObject *
consumer_memberid(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_core_check_open(&self->core, "memberid") < 0) {
        return NULL;
    }
    char *id = rd_kafka_memberid(self->core.rk);
    if (id == NULL || *id == '\0') {
        if (id != NULL) {
            rd_kafka_mem_free(self->core.rk, id);
        }
        Py_RETURN_NONE;
    }
    PyObject *r = PyUnicode_FromString(id);
    rd_kafka_mem_free(self->core.rk, id);
    return r;
}

/* ---- pause, resume, seek ---------------------------------------------- */

static PyObject *
consumer_pause_resume(ConsumerObject *self, PyObject *parts, int pause)
{
    const char *method = pause ? "pause" : "resume";
    akc_core *core = &self->core;
    if (akc_core_check_open(core, method) < 0 ||
        akc_core_check_loop(core, method) < 0) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(core->st, parts, "partitions");
    if (l == NULL) {
        return NULL;
    }
    /* Our part is immediate: from now on nothing of a paused partition
     * is handed out; the poll thread tells librdkafka. */
    akc_fetch *f = self->fetch;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < l->cnt; i++) {
        akc_tp *tp = akc_fetch_tp(f, l->elems[i].topic, l->elems[i].partition);
        if (tp == NULL) {
            continue;
        }
        tp->user_paused = pause;
        if (!pause) {
            akc_fetch_unhold(f, tp);
        }
    }
    pthread_mutex_unlock(&f->lock);
    PyObject *fut = consumer_command(self, method,
                                     pause ? AKC_CMD_PAUSE : AKC_CMD_RESUME,
                                     l);
    if (fut != NULL && !pause) {
        akc_consume_serve(self); /* held messages may be ready now */
    }
    return fut;
}

static PyObject *
consumer_pause(ConsumerObject *self, PyObject *parts)
{
    return consumer_pause_resume(self, parts, 1);
}

static PyObject *
consumer_resume(ConsumerObject *self, PyObject *parts)
{
    return consumer_pause_resume(self, parts, 0);
}

static PyObject *
consumer_paused(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_core_check_open(&self->core, "paused") < 0) {
        return NULL;
    }
    akc_fetch *f = self->fetch;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->ntps; i++) {
        if (f->tps[i]->user_paused) {
            rd_kafka_topic_partition_list_add(l, f->tps[i]->topic,
                                              f->tps[i]->partition);
        }
    }
    pthread_mutex_unlock(&f->lock);
    PyObject *r = akc_tplist_to_py(self->core.st, l);
    rd_kafka_topic_partition_list_destroy(l);
    return r;
}

static PyObject *
consumer_seek(ConsumerObject *self, PyObject *partition)
{
    akc_state *st = self->core.st;
    if (!akc_tp_check(st, partition)) {
        return PyErr_Format(PyExc_TypeError,
                            "seek(): expected a TopicPartition, not %.100s",
                            Py_TYPE(partition)->tp_name);
    }
    PyObject *one = PyTuple_Pack(1, partition);
    if (one == NULL) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l = akc_tplist_from_py(st, one,
                                                            "partition");
    Py_DECREF(one);
    if (l == NULL) {
        return NULL;
    }
    if (l->elems[0].partition < 0) {
        rd_kafka_topic_partition_list_destroy(l);
        PyErr_SetString(PyExc_ValueError, "seek(): partition must be >= 0");
        return NULL;
    }
    int64_t off = l->elems[0].offset;
    PyObject *fut = consumer_command(self, "seek", AKC_CMD_SEEK, l);
    if (fut != NULL) {
        /* The user's position is the seek's from now on. */
        akc_fetch *f = self->fetch;
        TopicPartitionObject *tpo = (TopicPartitionObject *)partition;
        pthread_mutex_lock(&f->lock);
        akc_tp *tp = akc_fetch_tp(f, PyUnicode_AsUTF8(tpo->topic),
                                  tpo->partition);
        if (tp != NULL) {
            /* Nothing fetched before the seek is handed out after it; the
             * poll thread drops it again at its barrier. */
            akc_fetch_purge(f, tp);
            tp->handed = off >= 0 ? off : -1;
        }
        pthread_mutex_unlock(&f->lock);
    }
    return fut;
}

/* ---- offsets ---------------------------------------------------------- */

/* The list a commit or store of message/offsets is about, or NULL with
 * *none = 1 when neither was given. */
static rd_kafka_topic_partition_list_t *
offsets_arg(akc_state *st, const char *fname, PyObject *message,
            PyObject *offsets, int *none)
{
    *none = 0;
    if (message != NULL && message != Py_None && offsets != NULL &&
        offsets != Py_None) {
        PyErr_Format(PyExc_TypeError,
                     "%s(): give message or offsets, not both", fname);
        return NULL;
    }
    if (offsets != NULL && offsets != Py_None) {
        return akc_tplist_from_py(st, offsets, "offsets");
    }
    if (message == NULL || message == Py_None) {
        *none = 1;
        return NULL;
    }
    if (!Py_IS_TYPE(message, st->MessageType)) {
        PyErr_Format(PyExc_TypeError, "%s(): message must be a Message, not "
                     "%.100s", fname, Py_TYPE(message)->tp_name);
        return NULL;
    }
    MessageObject *m = (MessageObject *)message;
    if (m->topic == NULL || m->partition < 0 || m->offset < 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): the message has no topic, partition and offset",
                     fname);
        return NULL;
    }
    const char *t = PyUnicode_AsUTF8(m->topic);
    if (t == NULL) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t, m->partition)->offset =
        m->offset + 1;
    return l;
}

static PyObject *
consumer_commit(ConsumerObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    akc_core *core = &self->core;
    akc_state *st = core->st;
    static PyObject *names[3];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("message");
        names[1] = PyUnicode_InternFromString("offsets");
    }
    PyObject *a[2] = {NULL};
    if (akc_parse_args("commit", args, nargs, kwnames, names, 0, 0, a) < 0 ||
        consumer_check_usable(self, "commit") < 0 ||
        akc_core_check_loop(core, "commit") < 0) {
        return NULL;
    }
    int none;
    rd_kafka_topic_partition_list_t *l = offsets_arg(st, "commit", a[0], a[1],
                                                     &none);
    if (l == NULL && !none) {
        return NULL;
    }
    if (none) {
        /* "What I have received": everything handed out is done. */
        akc_fetch *f = self->fetch;
        pthread_mutex_lock(&f->lock);
        akc_consume_release_locked(self);
        rd_kafka_topic_partition_list_t *s = akc_fetch_take_store(f);
        pthread_mutex_unlock(&f->lock);
        if (s != NULL) {
            rd_kafka_offsets_store(core->rk, s);
            rd_kafka_topic_partition_list_destroy(s);
        }
    }
    PyObject *fut = akc_dispatcher_new_future(core->dispatcher);
    PyObject *id = fut ? PyLong_FromLongLong(++self->commit_seq) : NULL;
    if (id == NULL || PyDict_SetItem(self->commits, id, fut) < 0) {
        goto fail;
    }
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(
        core->rk, l, self->cq, NULL, (void *)(intptr_t)self->commit_seq);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        PyDict_DelItem(self->commits, id);
        PyObject *e = akc_error_from_code(st, err, NULL);
        PyObject *exc = e ? akc_exception_new(st, e) : NULL;
        Py_XDECREF(e);
        if (exc == NULL || akc_dispatcher_resolve(core->dispatcher, fut,
                                                  exc) < 0) {
            Py_XDECREF(exc);
            goto fail;
        }
        Py_DECREF(exc);
    }
    Py_DECREF(id);
    if (l != NULL) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    return fut;
fail:
    Py_XDECREF(id);
    Py_XDECREF(fut);
    if (l != NULL) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    return NULL;
}

static PyObject *
consumer_store_offsets(ConsumerObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    akc_core *core = &self->core;
    akc_state *st = core->st;
    static PyObject *names[3];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("message");
        names[1] = PyUnicode_InternFromString("offsets");
    }
    PyObject *a[2] = {NULL};
    if (akc_parse_args("store_offsets", args, nargs, kwnames, names, 0, 0,
                       a) < 0 ||
        consumer_check_usable(self, "store_offsets") < 0) {
        return NULL;
    }
    int none;
    rd_kafka_topic_partition_list_t *l = offsets_arg(st, "store_offsets", a[0],
                                                     a[1], &none);
    if (none) {
        PyErr_SetString(PyExc_TypeError,
                        "store_offsets(): give message or offsets");
    }
    if (l == NULL) {
        return NULL;
    }
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(core->rk, l);
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++) {
        err = l->elems[i].err;
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return akc_raise(st, err,
                         err == RD_KAFKA_RESP_ERR__STATE
                             ? "store_offsets(): the partition is not "
                               "assigned to this consumer"
                             : NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
consumer_position(ConsumerObject *self, PyObject *parts)
{
    akc_core *core = &self->core;
    if (consumer_check_usable(self, "position") < 0) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(core->st, parts, "partitions");
    if (l == NULL) {
        return NULL;
    }
    /* librdkafka's position is the poll thread's; the user's is the first
     * message not handed out yet. */
    rd_kafka_position(core->rk, l);
    akc_fetch *f = self->fetch;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < l->cnt; i++) {
        akc_tp *tp = akc_fetch_find(f, l->elems[i].topic,
                                    l->elems[i].partition);
        if (tp == NULL) {
            continue;
        }
        int64_t pos = akc_consume_first_offset_locked(self, tp);
        if (pos < 0) {
            pos = tp->handed;
        }
        if (pos >= 0) {
            l->elems[i].offset = pos;
            l->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
    }
    pthread_mutex_unlock(&f->lock);
    PyObject *r = akc_tplist_to_py(core->st, l);
    rd_kafka_topic_partition_list_destroy(l);
    return r;
}

/* ---- blocking calls, on the worker ----------------------------------- */

enum { JOB_COMMITTED = 1, JOB_WATERMARKS, JOB_OFFSETS_FOR_TIMES, JOB_METADATA,
       JOB_GROUP_METADATA };

typedef struct {
    akc_job base;
    int op;
    rd_kafka_topic_partition_list_t *parts;
    char *topic;
    int32_t partition;
    int64_t lo, hi;
    const rd_kafka_metadata_t *md;
    char *cluster_id;
    int32_t controller_id;
    rd_kafka_consumer_group_metadata_t *cgm;
    rd_kafka_t *rk;
} consumer_job;

static void
job_run(akc_job *base, rd_kafka_t *rk)
{
    consumer_job *j = (consumer_job *)base;
    int t = base->timeout_ms;
    j->rk = rk;
    switch (j->op) {
    case JOB_COMMITTED:
        base->err = rd_kafka_committed(rk, j->parts, t);
        break;
    case JOB_WATERMARKS:
        base->err = rd_kafka_query_watermark_offsets(rk, j->topic,
                                                     j->partition, &j->lo,
                                                     &j->hi, t);
        break;
    case JOB_OFFSETS_FOR_TIMES:
        base->err = rd_kafka_offsets_for_times(rk, j->parts, t);
        break;
    case JOB_METADATA: {
        rd_kafka_topic_t *rkt = j->topic ? rd_kafka_topic_new(rk, j->topic,
                                                              NULL)
                                         : NULL;
        base->err = rd_kafka_metadata(rk, rkt == NULL, rkt, &j->md, t);
        if (rkt != NULL) {
            rd_kafka_topic_destroy(rkt);
        }
        if (base->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            j->cluster_id = rd_kafka_clusterid(rk, 0);
            j->controller_id = rd_kafka_controllerid(rk, 0);
        }
        break;
    }
    case JOB_GROUP_METADATA:
        j->cgm = rd_kafka_consumer_group_metadata(rk);
        if (j->cgm == NULL) {
            base->err = RD_KAFKA_RESP_ERR__STATE;
            snprintf(base->errstr, sizeof(base->errstr),
                     "not a group consumer (no group.id)");
        }
        break;
    }
}

static PyObject *
job_result(akc_job *base, akc_state *st)
{
    consumer_job *j = (consumer_job *)base;
    if (base->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        PyObject *e = akc_error_from_code(st, base->err,
                                          base->errstr[0] ? base->errstr
                                                          : NULL);
        PyObject *exc = e ? akc_exception_new(st, e) : NULL;
        Py_XDECREF(e);
        return exc;
    }
    switch (j->op) {
    case JOB_COMMITTED:
    case JOB_OFFSETS_FOR_TIMES:
        return akc_tplist_to_py(st, j->parts);
    case JOB_WATERMARKS:
        return Py_BuildValue("(LL)", (long long)j->lo, (long long)j->hi);
    case JOB_METADATA:
        return akc_metadata_to_py(st, j->md, j->cluster_id, j->controller_id);
    case JOB_GROUP_METADATA: {
        rd_kafka_consumer_group_metadata_t *cgm = j->cgm;
        j->cgm = NULL;
        return akc_cgm_new(st, cgm);
    }
    }
    Py_RETURN_NONE;
}

static void
job_clear(akc_job *base)
{
    consumer_job *j = (consumer_job *)base;
    if (j->parts != NULL) {
        rd_kafka_topic_partition_list_destroy(j->parts);
    }
    free(j->topic);
    if (j->md != NULL) {
        rd_kafka_metadata_destroy(j->md);
    }
    if (j->cluster_id != NULL && j->rk != NULL) {
        rd_kafka_mem_free(j->rk, j->cluster_id);
    }
    if (j->cgm != NULL) {
        rd_kafka_consumer_group_metadata_destroy(j->cgm);
    }
}

/* Starts a job; parts and topic are taken.  Returns its future. */
static PyObject *
consumer_job_start(ConsumerObject *self, const char *method, int op,
                   rd_kafka_topic_partition_list_t *parts, const char *topic,
                   int32_t partition, PyObject *timeout)
{
    akc_core *core = &self->core;
    int ms;
    consumer_job *j = NULL;
    PyObject *fut = NULL;
    if (akc_core_check_open(core, method) < 0 ||
        akc_core_check_loop(core, method) < 0 ||
        akc_timeout_ms(timeout ? timeout : Py_None, &ms) < 0) {
        goto fail;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (topic != NULL && (j->topic = strdup(topic)) == NULL)) {
        PyErr_NoMemory();
        goto fail;
    }
    fut = akc_dispatcher_new_future(core->dispatcher);
    if (fut == NULL) {
        goto fail;
    }
    j->op = op;
    j->parts = parts;
    j->partition = partition;
    j->controller_id = -1;
    j->base.run = job_run;
    j->base.result = job_result;
    j->base.clear = job_clear;
    j->base.future = Py_NewRef(fut);
    j->base.timeout_ms = ms < 0 ? DEFAULT_CALL_TIMEOUT_MS : ms;
    if (akc_worker_submit(self->fetch->worker, core->rk, &j->base) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
fail:
    if (j != NULL) {
        free(j->topic);
        free(j);
    }
    if (parts != NULL) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    return NULL;
}

static PyObject *names_parts_timeout[3];

static int
parse_parts_timeout(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames, PyObject **a)
{
    if (names_parts_timeout[0] == NULL) {
        names_parts_timeout[0] = PyUnicode_InternFromString("partitions");
        names_parts_timeout[1] = PyUnicode_InternFromString("timeout");
    }
    return akc_parse_args(fname, args, nargs, kwnames, names_parts_timeout, 2,
                          1, a);
}

static PyObject *
consumer_committed(ConsumerObject *self, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2] = {NULL};
    if (parse_parts_timeout("committed", args, nargs, kwnames, a) < 0) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(self->core.st, a[0], "partitions");
    if (l == NULL) {
        return NULL;
    }
    return consumer_job_start(self, "committed", JOB_COMMITTED, l, NULL, 0,
                              a[1]);
}

static PyObject *
consumer_offsets_for_times(ConsumerObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2] = {NULL};
    if (parse_parts_timeout("offsets_for_times", args, nargs, kwnames, a) <
        0) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(self->core.st, a[0], "partitions");
    if (l == NULL) {
        return NULL;
    }
    return consumer_job_start(self, "offsets_for_times",
                              JOB_OFFSETS_FOR_TIMES, l, NULL, 0, a[1]);
}

static PyObject *
consumer_get_watermark_offsets(ConsumerObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    akc_core *core = &self->core;
    static PyObject *names[4];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("partition");
        names[1] = PyUnicode_InternFromString("timeout");
        names[2] = PyUnicode_InternFromString("cached");
    }
    PyObject *a[3] = {NULL};
    if (akc_parse_args("get_watermark_offsets", args, nargs, kwnames, names,
                       3, 1, a) < 0) {
        return NULL;
    }
    if (!akc_tp_check(core->st, a[0])) {
        return PyErr_Format(PyExc_TypeError,
                            "get_watermark_offsets(): expected a "
                            "TopicPartition, not %.100s",
                            Py_TYPE(a[0])->tp_name);
    }
    TopicPartitionObject *tpo = (TopicPartitionObject *)a[0];
    const char *topic = PyUnicode_AsUTF8(tpo->topic);
    if (topic == NULL) {
        return NULL;
    }
    int cached = a[2] != NULL ? PyObject_IsTrue(a[2]) : 0;
    if (cached < 0) {
        return NULL;
    }
    if (cached) {
        if (akc_core_check_open(core, "get_watermark_offsets") < 0 ||
            akc_core_check_loop(core, "get_watermark_offsets") < 0) {
            return NULL;
        }
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t err = rd_kafka_get_watermark_offsets(
            core->rk, topic, tpo->partition, &lo, &hi);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return akc_raise(core->st, err, NULL);
        }
        PyObject *r = Py_BuildValue("(LL)", (long long)lo, (long long)hi);
        if (r == NULL) {
            return NULL;
        }
        PyObject *fut = akc_dispatcher_done_future(core->dispatcher, r);
        Py_DECREF(r);
        return fut;
    }
    return consumer_job_start(self, "get_watermark_offsets", JOB_WATERMARKS,
                              NULL, topic, tpo->partition, a[1]);
}

static PyObject *
consumer_list_topics(ConsumerObject *self, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames)
{
    static PyObject *names[3];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("topic");
        names[1] = PyUnicode_InternFromString("timeout");
    }
    PyObject *a[2] = {NULL};
    if (akc_parse_args("list_topics", args, nargs, kwnames, names, 2, 0, a) <
        0) {
        return NULL;
    }
    const char *topic = NULL;
    if (a[0] != NULL && a[0] != Py_None) {
        if (!PyUnicode_Check(a[0])) {
            return PyErr_Format(PyExc_TypeError,
                                "list_topics(): topic must be str, not %.100s",
                                Py_TYPE(a[0])->tp_name);
        }
        if (akc_check_c_string(a[0], "topic") < 0 ||
            (topic = PyUnicode_AsUTF8(a[0])) == NULL) {
            return NULL;
        }
    }
    return consumer_job_start(self, "list_topics", JOB_METADATA, NULL, topic,
                              0, a[1]);
}

static PyObject *
consumer_group_metadata(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    return consumer_job_start(self, "consumer_group_metadata",
                              JOB_GROUP_METADATA, NULL, NULL, 0, NULL);
}

/* ---- close ------------------------------------------------------------ */

static PyObject *
consumer_close(ConsumerObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    PyObject *timeout = NULL;
    PyObject *names[] = {self->core.st->str_timeout, NULL};
    if (akc_parse_args("close", args, nargs, kwnames, names, 1, 0,
                       &timeout) < 0) {
        return NULL;
    }
    int ms;
    if (akc_timeout_ms(timeout ? timeout : Py_None, &ms) < 0) {
        return NULL;
    }
    PyObject *in_cb = NULL;
    if (PyContextVar_Get(self->core.st->in_consumer_callback, NULL,
                         &in_cb) < 0) {
        return NULL;
    }
    if (in_cb == Py_True) {
        /* Called from a rebalance callback: the close must not wait for
         * the callback that waits for it. */
        self->close_skip_rebalance = 1;
    }
    Py_XDECREF(in_cb);
    return akc_core_close(&self->core, (PyObject *)self, ms);
}

static PyObject *
consumer_aenter(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_core_check_open(&self->core, "__aenter__") < 0 ||
        akc_core_check_loop(&self->core, "__aenter__") < 0) {
        return NULL;
    }
    return akc_dispatcher_done_future(self->core.dispatcher,
                                      (PyObject *)self);
}

static PyObject *
consumer_aexit(ConsumerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return akc_core_close(&self->core, (PyObject *)self, -1);
}

/* ---- construction ------------------------------------------------------ */

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

/* Takes our own keys out of the config: a dict copy without them.
 * Returns the copy, or NULL with an exception. */
static PyObject *
split_config(PyObject *config, PyObject **on_commit, long long *max_msgs,
             long long *max_bytes)
{
    if (!PyMapping_Check(config) || PyUnicode_Check(config)) {
        PyErr_Format(PyExc_TypeError,
                     "AIOConsumer(): config must be a mapping, not %.100s",
                     Py_TYPE(config)->tp_name);
        return NULL;
    }
    PyObject *items = PyMapping_Items(config);
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
    self->auto_store = conf_get_int(conf, "enable.auto.offset.store", 1) != 0;
    char buf[16];
    size_t sz = sizeof(buf);
    if (rd_kafka_conf_get(conf, "enable.auto.offset.store", buf, &sz) ==
        RD_KAFKA_CONF_OK) {
        self->auto_store = strcmp(buf, "true") == 0;
    }
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
                                          consumer_item);
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
    {"subscribe", FASTKW(consumer_subscribe),
     "subscribe($self, /, topics, *, on_assign=None, on_revoke=None, "
     "on_lost=None)\n--\n\n"
     "Join the group for topics (names or ^regex); returns a future.  "
     "Callbacks take (consumer, partitions), plain or async; the assignment "
     "is applied after on_assign returns."},
    {"unsubscribe", (PyCFunction)consumer_unsubscribe, METH_NOARGS,
     "unsubscribe($self, /)\n--\n\nLeave the subscription; returns a future."},
    {"assign", (PyCFunction)consumer_assign, METH_O,
     "assign($self, partitions, /)\n--\n\nReplace the assignment."},
    {"unassign", (PyCFunction)consumer_unassign, METH_NOARGS,
     "unassign($self, /)\n--\n\nDrop the assignment."},
    {"incremental_assign", (PyCFunction)consumer_incremental_assign, METH_O,
     "incremental_assign($self, partitions, /)\n--\n\nAdd partitions."},
    {"incremental_unassign", (PyCFunction)consumer_incremental_unassign,
     METH_O,
     "incremental_unassign($self, partitions, /)\n--\n\nRemove partitions."},
    {"assignment", (PyCFunction)consumer_assignment, METH_NOARGS,
     "assignment($self, /)\n--\n\nThe current assignment."},
    {"subscription", (PyCFunction)consumer_subscription, METH_NOARGS,
     "subscription($self, /)\n--\n\nThe subscribed topics."},
    {"memberid", (PyCFunction)consumer_memberid, METH_NOARGS,
     "memberid($self, /)\n--\n\nThe group member id, or None."},
    {"poll", FASTKW(akc_consumer_poll),
     "poll($self, /, timeout=None)\n--\n\n"
     "Await the next message (a Message whose error() may be set), or None "
     "after timeout seconds."},
    {"consume", FASTKW(akc_consumer_consume),
     "consume($self, /, num_messages=1, timeout=None)\n--\n\n"
     "Await up to num_messages messages: what is ready, or the first to "
     "arrive within timeout seconds ([] after it)."},
    {"commit", FASTKW(consumer_commit),
     "commit($self, /, message=None, offsets=None)\n--\n\n"
     "Commit (everything received, the message's offset + 1, or offsets); "
     "returns a future of the committed partitions."},
    {"store_offsets", FASTKW(consumer_store_offsets),
     "store_offsets($self, /, message=None, offsets=None)\n--\n\n"
     "Store offsets for the next commit."},
    {"committed", FASTKW(consumer_committed),
     "committed($self, /, partitions, timeout=None)\n--\n\n"
     "Future of the group's committed offsets."},
    {"position", (PyCFunction)consumer_position, METH_O,
     "position($self, partitions, /)\n--\n\n"
     "The offset of the next message each partition hands out."},
    {"seek", (PyCFunction)consumer_seek, METH_O,
     "seek($self, partition, /)\n--\n\nMove a partition's position."},
    {"pause", (PyCFunction)consumer_pause, METH_O,
     "pause($self, partitions, /)\n--\n\nStop handing out these partitions."},
    {"resume", (PyCFunction)consumer_resume, METH_O,
     "resume($self, partitions, /)\n--\n\nResume paused partitions."},
    {"paused", (PyCFunction)consumer_paused, METH_NOARGS,
     "paused($self, /)\n--\n\nThe partitions paused by pause()."},
    {"get_watermark_offsets", FASTKW(consumer_get_watermark_offsets),
     "get_watermark_offsets($self, /, partition, timeout=None, "
     "cached=False)\n--\n\nFuture of (low, high)."},
    {"offsets_for_times", FASTKW(consumer_offsets_for_times),
     "offsets_for_times($self, /, partitions, timeout=None)\n--\n\n"
     "Future of the earliest offsets at or after each timestamp (ms, in "
     "offset)."},
    {"list_topics", FASTKW(consumer_list_topics),
     "list_topics($self, /, topic=None, timeout=None)\n--\n\n"
     "Future of the cluster's metadata."},
    {"consumer_group_metadata", (PyCFunction)consumer_group_metadata,
     METH_NOARGS,
     "consumer_group_metadata($self, /)\n--\n\n"
     "Future of the group metadata, for send_offsets_to_transaction()."},
    {"close", FASTKW(consumer_close),
     "close($self, /, timeout=None)\n--\n\n"
     "Leave the group (final commit with auto-commit) and stop; bounded by "
     "timeout seconds.  Safe to call again, from anywhere."},
    {"__aenter__", (PyCFunction)consumer_aenter, METH_NOARGS, NULL},
    {"__aexit__", (PyCFunction)(void (*)(void))consumer_aexit, METH_FASTCALL,
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
    st->RebalanceType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &rebalance_spec, NULL);
    if (st->RebalanceType == NULL || akc_consume_setup_types(module, st) < 0) {
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
