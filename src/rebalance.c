/* AIOConsumer's rebalances and the poll thread's GIL pass.
 *
 * A rebalance event is handed to the loop, where on_assign, on_revoke or
 * on_lost runs (plain or async: a task, in a context where consume calls
 * know they are inside a callback); once it is done the answer goes back
 * to the poll thread as a command.  The same GIL pass turns commit results
 * into futures and on_commit calls, answers the commands the poll thread
 * ran, and wakes consume calls that wait. */
#include "consumer.h"
#include "consume.h"
#include "errors.h"
#include "topic_partition.h"

#include <string.h>
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

int
akc_rebalance_push(ConsumerObject *self, PyObject *cb,
                   const rd_kafka_topic_partition_list_t *parts, akc_cmd *c,
                   int closing)
{
    akc_core *core = &self->core;
    RebalanceObject *rb = PyObject_GC_New(RebalanceObject,
                                          core->st->RebalanceType);
    if (rb == NULL) {
        return -1;
    }
    rb->consumer_ref = PyWeakref_NewRef((PyObject *)self, NULL);
    rb->cb = Py_NewRef(cb);
    rb->parts = akc_tplist_to_py(core->st, parts);
    rb->cmd = NULL;
    rb->closing = closing;
    PyObject_GC_Track(rb);
    if (rb->consumer_ref == NULL || rb->parts == NULL ||
        akc_dispatcher_push(core->dispatcher, (PyObject *)rb) < 0) {
        Py_DECREF(rb);
        return -1;
    }
    rb->cmd = c; /* taken only once nothing can fail */
    if (closing) {
        Py_XSETREF(self->rebalance, (PyObject *)rb);
    }
    else {
        Py_DECREF(rb);
    }
    return 0;
}

int
akc_rebalance_setup_types(PyObject *module, akc_state *st)
{
    st->RebalanceType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &rebalance_spec, NULL);
    return st->RebalanceType ? 0 : -1;
}

/* Queues a command for the poll thread and wakes it.  GIL held. */
void
akc_consumer_queue(ConsumerObject *self, akc_cmd *c)
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
            akc_consumer_queue(self, c); /* librdkafka still waits for it */
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
    akc_consumer_queue(self, c);
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
void
akc_consumer_item(DispatcherObject *d, PyObject *item)
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
void
akc_consumer_store_released(ConsumerObject *self, int release)
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
        akc_consumer_store_released(self, 0);
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
        akc_consumer_queue(self, c);
        return;
    }
    if (akc_rebalance_push(self, cb, parts, c, 0) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
        akc_consumer_queue(self, c);
    }
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
void
akc_consumer_answer_cmds(ConsumerObject *self)
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

void
akc_consumer_on_events(PyObject *client, rd_kafka_event_t **evs, size_t n)
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
    akc_consumer_answer_cmds(self);
    akc_consume_wake(self);
}
