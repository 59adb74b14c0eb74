/* AIOConsumer's consume calls.  See consume.h. */
#include "consume.h"
#include "errors.h"
#include "message.h"

#include <string.h>

enum { W_POLL = 0, W_CONSUME = 1, W_ANEXT = 2 };

/* After this many ready messages handed out in a row (by `async for`,
 * poll() or consume()), the next call yields to the loop once before it
 * takes more, so a consumer that never waits cannot starve the loop. */
#define STREAK_MAX 64
/* How often a consume call stores what the user finished. */
#define STORE_EVERY_MS 20
/* consume() pops at most this many entries per fetch-lock hold. */
#define POP_CHUNK 256

/* ---- the awaitable of a consume call ------------------------------------ */

/* A call's awaitable is done at once (R_VALUE), yields once before it
 * takes (R_YIELD, then R_POP), or waits: from its first step (R_ARM; a
 * call never awaited holds nothing) on a future that only wakes it
 * (R_WAIT): the call takes its messages itself when its task runs again.
 * asyncio cancels a task whose future is already done by throwing into
 * the task, so messages handed to that future would be lost; taken by the
 * task's own step, they stay in the ring until a step really takes them,
 * and a woken call that is cancelled or dropped passes the wake-up on. */
enum { R_VALUE, R_YIELD, R_POP, R_ARM, R_WAIT, R_DONE };

typedef struct {
    PyObject_HEAD
    PyObject *value;    /* R_VALUE: the result, or an exception to raise */
    PyObject *cref;     /* weak reference to the consumer */
    PyObject *fut;      /* R_WAIT: the future that wakes the call */
    PyObject *inner;    /* R_WAIT: its iterator */
    PyObject *timer;    /* R_WAIT: the timeout's handle, or NULL */
    int mode;
    int kind;
    int counted;        /* counted in the consumer's lazy calls */
    int woken;          /* R_WAIT: woken, still to take */
    Py_ssize_t owe;     /* woken: ring entries set aside for it */
    uint64_t seq;       /* call order */
    int ms;             /* the call's timeout; -1: none */
    int64_t deadline;   /* akc_now_ms() time, when ms > 0 */
    Py_ssize_t max;
    const char *method;
} ReadyObject;

static ReadyObject *
ready_new(akc_state *st, ConsumerObject *c, int kind, Py_ssize_t max,
          int ms, const char *method)
{
    PyObject *cref = c ? PyWeakref_NewRef((PyObject *)c, NULL) : NULL;
    if (c != NULL && cref == NULL) {
        return NULL;
    }
    ReadyObject *r = PyObject_GC_New(ReadyObject, st->ReadyType);
    if (r == NULL) {
        Py_XDECREF(cref);
        return NULL;
    }
    r->value = NULL;
    r->cref = cref;
    r->fut = r->inner = r->timer = NULL;
    r->mode = R_DONE;
    r->kind = kind;
    r->counted = r->woken = 0;
    r->owe = 0;
    r->seq = c ? ++c->call_seq : 0;
    r->ms = ms;
    r->deadline = ms > 0 ? akc_now_ms() + ms : 0;
    r->max = max;
    r->method = method;
    PyObject_GC_Track(r);
    return r;
}

/* An awaitable that finishes with v (a result, or an exception). */
static PyObject *
ready_value(akc_state *st, PyObject *v)
{
    ReadyObject *r = ready_new(st, NULL, W_ANEXT, 1, -1, "__anext__");
    if (r != NULL) {
        r->value = Py_NewRef(v);
        r->mode = R_VALUE;
    }
    return (PyObject *)r;
}

static int
ready_traverse(ReadyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->value);
    Py_VISIT(self->cref);
    Py_VISIT(self->fut);
    Py_VISIT(self->inner);
    Py_VISIT(self->timer);
    return 0;
}

static void
ready_cancel_timer(ReadyObject *self)
{
    if (self->timer != NULL) {
        PyObject *saved = akc_err_take(); /* a StopIteration, say */
        PyObject *r = PyObject_CallMethod(self->timer, "cancel", NULL);
        Py_XDECREF(r);
        PyErr_Clear();
        akc_err_restore(saved);
        Py_CLEAR(self->timer);
    }
}

static void
ready_drop_wait(ReadyObject *self)
{
    ready_cancel_timer(self);
    Py_CLEAR(self->inner);
    Py_CLEAR(self->fut);
}

static void schedule_serve(ConsumerObject *self);

/* The call is over without taking (or with): it leaves the lazy calls,
 * and a wake-up it will not use goes to the next waiting call.  python:
 * may call into Python (not from tp_clear).  Never raises. */
static void
ready_abandon(ReadyObject *self, int python)
{
    PyObject *obj = NULL;
    if (self->cref != NULL && akc_weakref_get(self->cref, &obj) < 0) {
        PyErr_Clear();
    }
    ConsumerObject *c = (ConsumerObject *)obj;
    if (self->counted) {
        self->counted = 0;
        if (c != NULL) {
            c->lazy--;
        }
    }
    int woken = self->woken;
    self->woken = 0;
    if (woken && c != NULL) {
        c->owed -= self->owe;
    }
    self->owe = 0;
    if (python) {
        PyObject *saved = akc_err_take();
        if (self->fut != NULL && !woken) {
            /* Pending: cancelled, the waiting list drops it. */
            PyObject *r = PyObject_CallMethod(self->fut, "cancel", NULL);
            Py_XDECREF(r);
        }
        ready_cancel_timer(self);
        if (woken && c != NULL) {
            schedule_serve(c);
        }
        PyErr_Clear();
        akc_err_restore(saved);
    }
    Py_XDECREF(obj);
}

static int
ready_clear(ReadyObject *self)
{
    ready_abandon(self, 0);
    self->mode = R_DONE;
    Py_CLEAR(self->value);
    Py_CLEAR(self->cref);
    Py_CLEAR(self->fut);
    Py_CLEAR(self->inner);
    Py_CLEAR(self->timer);
    return 0;
}

static void
ready_dealloc(ReadyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    ready_abandon(self, 1);
    ready_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* Finishes the await with v: returned (StopIteration) or raised. */
static PyObject *
finish_with(PyObject *v)
{
    if (PyExceptionInstance_Check(v)) {
        PyErr_SetObject((PyObject *)Py_TYPE(v), v);
    }
    else if (PyTuple_Check(v)) {
        PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, v);
        if (e != NULL) {
            PyErr_SetObject(PyExc_StopIteration, e);
            Py_DECREF(e);
        }
    }
    else {
        PyErr_SetObject(PyExc_StopIteration, v);
    }
    return NULL;
}

static PyObject *take_or_wait(ConsumerObject *self, ReadyObject *r, int ms,
                              int arm);
static PyObject *closed_exception(akc_state *st, int kind, const char *why);

/* Takes for the call now, or makes it wait: R_WAIT when arm (its task is
 * running it), else R_ARM.  Returns 0 (mode is R_VALUE, R_ARM or R_WAIT)
 * or -1 with an exception. */
static int
ready_start(ReadyObject *self, int arm)
{
    PyObject *obj = NULL;
    int alive = akc_weakref_get(self->cref, &obj);
    if (alive < 0) {
        return -1;
    }
    ConsumerObject *c = (ConsumerObject *)obj;
    PyObject *v;
    if (alive == 0) {
        v = closed_exception(PyType_GetModuleState(Py_TYPE(self)),
                             self->kind, "the consumer was garbage-collected");
    }
    else {
        int ms = self->ms;
        if (ms > 0) {
            int64_t left = self->deadline - akc_now_ms();
            ms = left > 0 ? (int)left : 0;
        }
        v = take_or_wait(c, self, ms, arm);
        Py_DECREF(obj);
    }
    if (v != NULL) {
        self->value = v;
        self->mode = R_VALUE;
        return 0;
    }
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *
ready_next(ReadyObject *self)
{
    for (;;) {
        switch (self->mode) {
        case R_VALUE: {
            PyObject *v = self->value;
            self->value = NULL;
            self->mode = R_DONE;
            finish_with(v ? v : Py_None);
            Py_XDECREF(v);
            return NULL;
        }
        case R_YIELD:
            self->mode = R_POP;
            Py_RETURN_NONE; /* a bare yield: the task runs again next round */
        case R_POP:
            ready_abandon(self, 0); /* leaves the lazy calls */
            /* fall through */
        case R_ARM:
            self->mode = R_DONE;
            if (ready_start(self, 1) < 0) {
                return NULL;
            }
            continue;
        case R_WAIT: {
            PyObject *y = Py_TYPE(self->inner)->tp_iternext(self->inner);
            if (y != NULL) {
                return y;
            }
            self->mode = R_DONE;
            if (!self->woken ||
                (PyErr_Occurred() &&
                 !PyErr_ExceptionMatches(PyExc_StopIteration))) {
                /* Timed out (the future's empty result) or failed. */
                ready_abandon(self, 1);
                ready_drop_wait(self);
                return NULL;
            }
            PyErr_Clear();
            ready_abandon(self, 0); /* its entries are its to take now */
            ready_drop_wait(self);
            if (ready_start(self, 1) < 0) {
                return NULL;
            }
            continue;
        }
        default:
            PyErr_SetString(PyExc_RuntimeError,
                            "cannot await a consumer call twice");
            return NULL;
        }
    }
}

/* throw() into the await (a cancelled task, say): nothing is taken. */
static PyObject *
ready_throw(ReadyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw() takes 1 to 3 arguments");
        return NULL;
    }
    ready_abandon(self, 1);
    self->mode = R_DONE;
    Py_CLEAR(self->value);
    ready_drop_wait(self);
    PyObject *typ = args[0], *val = nargs > 1 ? args[1] : Py_None;
    PyObject *tb = nargs > 2 ? args[2] : Py_None;
    if (tb != Py_None && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError,
                        "throw() third argument must be a traceback object");
        return NULL;
    }
    if (PyExceptionInstance_Check(typ)) {
        if (val != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "instance exception may not have a separate "
                            "value");
            return NULL;
        }
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    }
    else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, val);
    }
    else {
        PyErr_SetString(PyExc_TypeError,
                        "exceptions must be classes or instances deriving "
                        "from BaseException");
        return NULL;
    }
    if (tb != Py_None) {
        PyObject *exc = akc_err_take();
        PyException_SetTraceback(exc, tb);
        akc_err_restore(exc);
    }
    return NULL;
}

static PyObject *
ready_close(ReadyObject *self, PyObject *Py_UNUSED(ignored))
{
    ready_abandon(self, 1);
    self->mode = R_DONE;
    Py_CLEAR(self->value);
    ready_drop_wait(self);
    Py_RETURN_NONE;
}

static PyObject *
ready_await(PyObject *self)
{
    return Py_NewRef(self);
}

static PyMethodDef ready_methods[] = {
    {"throw", (PyCFunction)(void (*)(void))ready_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)ready_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot ready_slots[] = {
    {Py_tp_dealloc, ready_dealloc},
    {Py_tp_traverse, ready_traverse},
    {Py_tp_clear, ready_clear},
    {Py_tp_iter, ready_await},
    {Py_tp_iternext, ready_next},
    {Py_tp_methods, ready_methods},
    {Py_am_await, ready_await},
    {0, NULL},
};

static PyType_Spec ready_spec = {
    .name = "aiokafka_c._Ready",
    .basicsize = sizeof(ReadyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = ready_slots,
};

/* ---- entries to messages ------------------------------------------------- */

static PyObject *
entry_topic(akc_entry *e, const char *name)
{
    if (e->tp == NULL) {
        return name ? PyUnicode_DecodeUTF8(name, strlen(name), "replace")
                    : NULL;
    }
    if (e->tp->pytopic == NULL) {
        e->tp->pytopic = PyUnicode_DecodeUTF8(e->tp->topic,
                                              strlen(e->tp->topic), "replace");
        if (e->tp->pytopic == NULL) {
            return NULL;
        }
    }
    return Py_NewRef(e->tp->pytopic);
}

static PyObject *
bytes_or_null(const void *p, size_t n, int *failed)
{
    if (p == NULL) {
        return NULL;
    }
    PyObject *b = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
    if (b == NULL) {
        *failed = 1;
    }
    return b;
}

static PyObject *
message_headers(const rd_kafka_message_t *m, int *failed)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return NULL;
    }
    size_t n = rd_kafka_header_cnt(hdrs);
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (list == NULL) {
        *failed = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const void *val;
        size_t size;
        rd_kafka_header_get_all(hdrs, i, &name, &val, &size);
        PyObject *v = val ? PyBytes_FromStringAndSize(val, (Py_ssize_t)size)
                          : Py_NewRef(Py_None);
        PyObject *k = PyUnicode_DecodeUTF8(name, strlen(name), "replace");
        PyObject *t = k && v ? PyTuple_Pack(2, k, v) : NULL;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (t == NULL) {
            Py_DECREF(list);
            *failed = 1;
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

/* A Message for an entry.  Loop thread, GIL held, the entry lent. */
static PyObject *
materialize(akc_state *st, akc_entry *e)
{
    MessageObject *msg = PyObject_Malloc(sizeof(MessageObject));
    if (msg == NULL) {
        return PyErr_NoMemory();
    }
    memset(msg, 0, sizeof(*msg));
    PyObject_Init((PyObject *)msg, st->MessageType);
    msg->latency_us = -1;
    msg->tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    int failed = 0;
    const rd_kafka_message_t *m = e->m;
    if (m != NULL) {
        rd_kafka_timestamp_type_t tstype;
        msg->topic = entry_topic(e, rd_kafka_topic_name(m->rkt));
        msg->partition = m->partition;
        msg->offset = m->offset;
        msg->timestamp = rd_kafka_message_timestamp(m, &tstype);
        msg->tstype = (int)tstype;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            msg->error = akc_error_from_code(st, m->err,
                                             rd_kafka_message_errstr(m));
            failed |= msg->error == NULL;
        }
        else {
            msg->value = bytes_or_null(m->payload, m->len, &failed);
            msg->key = bytes_or_null(m->key, m->key_len, &failed);
            msg->headers = message_headers(m, &failed);
        }
        failed |= msg->topic == NULL;
    }
    else {
        msg->topic = e->etp ? entry_topic(e, e->etp->topic) : NULL;
        msg->partition = e->etp ? e->etp->partition : RD_KAFKA_PARTITION_UA;
        msg->offset = e->etp ? e->etp->offset : RD_KAFKA_OFFSET_INVALID;
        msg->error = akc_error_from_code(st, rd_kafka_event_error(e->ev),
                                         rd_kafka_event_error_string(e->ev));
        failed |= msg->error == NULL || (e->etp && msg->topic == NULL);
    }
    if (failed) {
        Py_DECREF(msg);
        return NULL;
    }
    return (PyObject *)msg;
}

static rd_kafka_resp_err_t
entry_error(akc_entry *e)
{
    if (e->m != NULL) {
        return e->m->err;
    }
    return rd_kafka_event_error(e->ev);
}

/* ---- hand-out bookkeeping ------------------------------------------------ */

void
akc_consume_release_locked(ConsumerObject *self)
{
    if (self->ndirty == 0) {
        return;
    }
    for (size_t i = 0; i < self->ndirty; i++) {
        akc_tp *tp = self->dirty[i];
        tp->released = tp->handed;
        tp->dirty = 0;
    }
    self->ndirty = 0;
    if (self->auto_store) {
        self->fetch->want_store = 1;
    }
}

/* Lock held: the message of e goes to the user now. */
static void
handed_locked(ConsumerObject *self, akc_entry *e)
{
    akc_tp *tp = e->tp;
    if (tp == NULL || e->m == NULL || e->m->err) {
        return;
    }
    tp->handed = e->m->offset + 1;
    if (tp->dirty) {
        return;
    }
    if (self->ndirty == self->capdirty) {
        size_t cap = self->capdirty ? self->capdirty * 2 : 8;
        akc_tp **v = PyMem_Realloc(self->dirty, cap * sizeof(*v));
        if (v == NULL) {
            return; /* not released: redelivered after a restart */
        }
        self->dirty = v;
        self->capdirty = cap;
    }
    tp->dirty = 1;
    self->dirty[self->ndirty++] = tp;
}

int64_t
akc_consume_first_offset_locked(ConsumerObject *self, akc_tp *tp)
{
    akc_deque *qs[2] = {&self->fetch->ring, &self->fetch->held};
    for (int q = 0; q < 2; q++) {
        akc_deque *d = qs[q];
        for (size_t i = 0; i < d->len; i++) {
            akc_entry *e = &d->v[(d->head + i) % d->cap];
            if (e->tp == tp && e->m != NULL && !e->m->err) {
                return e->m->offset;
            }
        }
    }
    return -1;
}

/* ---- taking entries ------------------------------------------------------- */

/* Pops up to max entries (1 for poll/anext) and turns them into the
 * call's result: a Message (poll), a list (consume), or, for `async for`,
 * a Message or the exception to raise (partition EOF skipped).  Returns
 * NULL with *got = 0 if nothing was ready (and arms the wake-up when
 * arm), NULL with an exception on failure. */
static PyObject *
take(ConsumerObject *self, int kind, Py_ssize_t max, int arm, int *got)
{
    akc_fetch *f = self->fetch;
    akc_state *st = self->core.st;
    akc_entry es[POP_CHUNK];
    PyObject *list = NULL, *one = NULL;
    *got = 0;
    if (kind == W_CONSUME) {
        list = PyList_New(0);
        if (list == NULL) {
            return NULL;
        }
    }
    for (;;) {
        size_t n = 0, want = (size_t)(max > POP_CHUNK ? POP_CHUNK : max);
        pthread_mutex_lock(&f->lock);
        while (n < want && akc_fetch_pop(f, &es[n])) {
            if (kind == W_ANEXT &&
                entry_error(&es[n]) == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                akc_fetch_return(f, &es[n]); /* skipped by async for */
                continue;
            }
            handed_locked(self, &es[n]);
            n++;
        }
        if (n == 0 && arm && *got == 0) {
            f->want_wake = 1;
        }
        /* Room again below half: the poll thread reads its fetch queue
         * again. */
        int resume = !f->ungate_sent && f->ring.len <= f->max_msgs / 2 &&
                     f->ring_bytes <= f->max_bytes / 2 &&
                     (f->gated || (f->fetchq != NULL &&
                                   rd_kafka_queue_length(f->fetchq) > 0));
        if (resume) {
            f->ungate_sent = 1;
        }
        pthread_mutex_unlock(&f->lock);
        if (resume && self->core.poller != NULL) {
            akc_poller_wake(self->core.poller);
        }
        if (n == 0) {
            break;
        }
        int failed = 0;
        for (size_t i = 0; i < n; i++) {
            PyObject *m = failed ? NULL : materialize(st, &es[i]);
            failed |= m == NULL;
            if (m != NULL && kind == W_CONSUME) {
                failed |= PyList_Append(list, m) < 0;
                Py_DECREF(m);
            }
            else if (m != NULL && kind == W_ANEXT &&
                     ((MessageObject *)m)->error != NULL) {
                one = akc_exception_new(st, ((MessageObject *)m)->error);
                Py_DECREF(m);
                failed |= one == NULL;
            }
            else if (m != NULL) {
                one = m;
            }
        }
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < n; i++) {
            akc_fetch_return(f, &es[i]);
        }
        pthread_mutex_unlock(&f->lock);
        if (failed) {
            Py_XDECREF(list);
            Py_XDECREF(one);
            return NULL;
        }
        *got += (int)n;
        max -= (Py_ssize_t)n;
        if (kind != W_CONSUME || max <= 0 || n < want) {
            break;
        }
    }
    if (*got == 0) {
        Py_XDECREF(list);
        return NULL;
    }
    return kind == W_CONSUME ? list : one;
}

/* ---- waiting --------------------------------------------------------------- */

static PyObject *
expire(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        Py_RETURN_NONE;
    }
    PyObject *done = PyObject_CallMethod(args[0], "done", NULL);
    int d = done ? PyObject_IsTrue(done) : -1;
    Py_XDECREF(done);
    if (d == 0) {
        PyObject *r = PyObject_CallMethod(args[0], "set_result", "O", args[1]);
        Py_XDECREF(r);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef expire_def = {"_expire", (PyCFunction)(void (*)(void))expire,
                                 METH_FASTCALL, NULL};

static int
future_done(PyObject *fut)
{
    PyObject *r = PyObject_CallMethod(fut, "done", NULL);
    int d = r ? PyObject_IsTrue(r) : -1;
    Py_XDECREF(r);
    return d;
}

/* Drops waiting calls whose future is done (timed out or cancelled). */
static void
prune_waiters(ConsumerObject *self)
{
    PyObject *ws = self->waiters;
    for (Py_ssize_t i = PyList_GET_SIZE(ws); i-- > 0;) {
        ReadyObject *r = (ReadyObject *)PyList_GET_ITEM(ws, i);
        if (r->fut == NULL || future_done(r->fut) == 1) {
            PySequence_DelItem(ws, i);
        }
    }
    PyErr_Clear();
}

/* Makes r wait (R_WAIT) on a new future, in call order.  0 or -1. */
static int
wait_on(ConsumerObject *self, ReadyObject *r, int timeout_ms)
{
    DispatcherObject *d = self->core.dispatcher;
    prune_waiters(self);
    PyObject *fut = akc_dispatcher_new_future(d);
    if (fut == NULL) {
        return -1;
    }
    PyObject *timer = NULL;
    if (timeout_ms >= 0 && r->kind != W_ANEXT) {
        PyObject *cb = PyCFunction_New(&expire_def, NULL);
        PyObject *empty = r->kind == W_CONSUME ? PyList_New(0)
                                               : Py_NewRef(Py_None);
        timer = cb && empty ? PyObject_CallMethod(d->loop, "call_later",
                                                  "dOOO", timeout_ms / 1000.0,
                                                  cb, fut, empty)
                            : NULL;
        Py_XDECREF(cb);
        Py_XDECREF(empty);
        if (timer == NULL) {
            Py_DECREF(fut);
            return -1;
        }
    }
    PyObject *inner = Py_TYPE(fut)->tp_as_async != NULL &&
                              Py_TYPE(fut)->tp_as_async->am_await != NULL
                          ? Py_TYPE(fut)->tp_as_async->am_await(fut)
                          : PyObject_CallMethod(fut, "__await__", NULL);
    Py_ssize_t at = PyList_GET_SIZE(self->waiters);
    while (at > 0 &&
           ((ReadyObject *)PyList_GET_ITEM(self->waiters, at - 1))->seq > r->seq) {
        at--; /* woken, it found nothing: back in its place */
    }
    if (inner == NULL || PyList_Insert(self->waiters, at, (PyObject *)r) < 0) {
        Py_XDECREF(inner);
        if (timer != NULL) {
            PyObject *x = PyObject_CallMethod(timer, "cancel", NULL);
            Py_XDECREF(x);
            Py_DECREF(timer);
        }
        Py_DECREF(fut);
        return -1;
    }
    r->fut = fut;
    r->inner = inner;
    r->timer = timer;
    r->mode = R_WAIT;
    return 0;
}

/* Wakes waiting calls, in call order, while the ring holds entries not
 * yet set aside for calls woken before; while calls wait, the poll
 * thread's wake-up stays armed.  Each woken call takes when its task runs
 * (and serves the rest then). */
void
akc_consume_serve(ConsumerObject *self)
{
    PyObject *ws = self->waiters;
    akc_fetch *f = self->fetch;
    if (ws == NULL || f == NULL || self->core.state != AKC_OPEN) {
        return;
    }
    prune_waiters(self);
    if (PyList_GET_SIZE(ws) == 0) {
        return;
    }
    pthread_mutex_lock(&f->lock);
    Py_ssize_t budget = (Py_ssize_t)akc_fetch_ready(f) - self->owed;
    /* Armed in the same hold: entries that come after the count wake us
     * (a spare wake-up finds nobody waiting and costs one serve). */
    f->want_wake = 1;
    pthread_mutex_unlock(&f->lock);
    while (budget > 0 && PyList_GET_SIZE(ws) > 0) {
        ReadyObject *r = (ReadyObject *)Py_NewRef(PyList_GET_ITEM(ws, 0));
        if (PySequence_DelItem(ws, 0) < 0) {
            Py_DECREF(r);
            break;
        }
        if (r->fut == NULL || future_done(r->fut) != 0) {
            Py_DECREF(r);
            continue;
        }
        ready_cancel_timer(r);
        r->woken = 1;
        r->owe = r->max < budget ? r->max : budget;
        self->owed += r->owe;
        budget -= r->owe;
        if (!r->counted) {
            r->counted = 1; /* later calls wait until it has taken */
            self->lazy++;
        }
        if (akc_dispatcher_resolve(self->core.dispatcher, r->fut, Py_None) <
            0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_DECREF(r);
    }
    PyErr_Clear();
}

/* Has akc_consume_serve() run on the loop soon.  Never raises. */
static void
schedule_serve(ConsumerObject *self)
{
    if (self->core.dispatcher == NULL || self->core.state != AKC_OPEN) {
        return;
    }
    PyObject *ref = PyWeakref_NewRef((PyObject *)self, NULL);
    if (ref == NULL || akc_dispatcher_push(self->core.dispatcher, ref) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(ref);
    akc_dispatcher_schedule(self->core.dispatcher);
}

void
akc_consume_wake(ConsumerObject *self)
{
    if (PyList_GET_SIZE(self->waiters) == 0) {
        return;
    }
    char buf[256];
    rd_kafka_resp_err_t fatal = self->core.rk
                                    ? rd_kafka_fatal_error(self->core.rk, buf,
                                                           sizeof(buf))
                                    : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (fatal != RD_KAFKA_RESP_ERR_NO_ERROR) {
        akc_consume_fail_waiters(self, buf);
        return;
    }
    akc_fetch *f = self->fetch;
    pthread_mutex_lock(&f->lock);
    size_t ready = akc_fetch_ready(f);
    pthread_mutex_unlock(&f->lock);
    if (ready > 0) {
        schedule_serve(self);
    }
}

void
akc_consume_fail_waiters(ConsumerObject *self, const char *why)
{
    PyObject *ws = self->waiters;
    if (ws == NULL || PyList_GET_SIZE(ws) == 0) {
        return;
    }
    self->waiters = PyList_New(0);
    if (self->waiters == NULL) {
        self->waiters = ws;
        PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    akc_state *st = self->core.st;
    for (Py_ssize_t i = 0; why != NULL && i < PyList_GET_SIZE(ws); i++) {
        ReadyObject *r = (ReadyObject *)PyList_GET_ITEM(ws, i);
        if (r->fut == NULL) {
            continue;
        }
        PyObject *exc;
        if (r->kind == W_ANEXT) {
            exc = PyObject_CallNoArgs(PyExc_StopAsyncIteration);
        }
        else {
            PyObject *err = akc_error_from_code(st, RD_KAFKA_RESP_ERR__DESTROY,
                                                why);
            exc = err ? akc_exception_new(st, err) : NULL;
            Py_XDECREF(err);
        }
        if (exc == NULL ||
            akc_dispatcher_push_kind(self->core.dispatcher, AKC_ITEM_RESULT,
                                     r->fut, exc) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_XDECREF(exc);
    }
    Py_DECREF(ws);
    akc_dispatcher_schedule(self->core.dispatcher);
}

/* ---- the calls ------------------------------------------------------------- */

/* Common checks of a consume call; releases what was handed out before.
 * Returns 0 or -1. */
static int
consume_enter(ConsumerObject *self, const char *method)
{
    akc_core *core = &self->core;
    if (akc_core_check_open(core, method) < 0 ||
        akc_core_check_loop(core, method) < 0) {
        return -1;
    }
    PyObject *in_cb = NULL;
    if (PyContextVar_Get(core->st->in_consumer_callback, NULL, &in_cb) < 0) {
        return -1;
    }
    int inside = in_cb == Py_True;
    Py_XDECREF(in_cb);
    if (inside) {
        PyErr_Format(PyExc_RuntimeError,
                     "AIOConsumer.%s() inside a rebalance callback would "
                     "wait for the rebalance it is part of",
                     method);
        return -1;
    }
    akc_fetch *f = self->fetch;
    rd_kafka_topic_partition_list_t *store = NULL;
    pthread_mutex_lock(&f->lock);
    akc_consume_release_locked(self);
    if (f->want_store) {
        /* Stored here, at most every STORE_EVERY_MS, not only by the poll
         * thread, which may sit in a long wait while the ring feeds us:
         * auto-commit must see what the user finished. */
        int64_t now = akc_now_ms();
        if (now - self->last_store_ms >= STORE_EVERY_MS) {
            store = akc_fetch_take_store(f);
            self->last_store_ms = now;
        }
    }
    pthread_mutex_unlock(&f->lock);
    if (store != NULL) {
        rd_kafka_offsets_store(core->rk, store);
        rd_kafka_topic_partition_list_destroy(store);
    }
    return 0;
}

/* The raise of a fatal error, if the handle has one.  Returns 1 if set. */
static int
consume_fatal(ConsumerObject *self)
{
    char buf[256];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(self->core.rk, buf,
                                                   sizeof(buf));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return 0;
    }
    PyObject *e = akc_error_new(self->core.st, err, buf, 1, 0, 0);
    PyObject *exc = e ? akc_exception_new(self->core.st, e) : NULL;
    Py_XDECREF(e);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return 1;
}

/* The exception a call gets from a closed consumer. */
static PyObject *
closed_exception(akc_state *st, int kind, const char *why)
{
    if (kind == W_ANEXT) {
        return PyObject_CallNoArgs(PyExc_StopAsyncIteration);
    }
    PyObject *e = akc_error_from_code(st, RD_KAFKA_RESP_ERR__DESTROY, why);
    PyObject *exc = e ? akc_exception_new(st, e) : NULL;
    Py_XDECREF(e);
    return exc;
}

/* What call r gets now: a list, a message, None, or an exception
 * instance to raise (the end of `async for` included); or NULL with r
 * made to wait (R_WAIT when arm, else R_ARM: it waits from its task's
 * first step), or NULL with an exception set. */
static PyObject *
take_or_wait(ConsumerObject *self, ReadyObject *r, int ms, int arm)
{
    akc_core *core = &self->core;
    if (core->state != AKC_OPEN) {
        /* Closed during the yield: what a waiting call gets too. */
        return closed_exception(core->st, r->kind, "the consumer was closed");
    }
    int got;
    PyObject *res = take(self, r->kind, r->max, 0, &got);
    if (res != NULL) {
        self->streak += got;
        if (PyList_GET_SIZE(self->waiters) > 0) {
            akc_consume_serve(self); /* the next in line, or arm */
        }
        return res;
    }
    if (PyErr_Occurred() || consume_fatal(self)) {
        return NULL;
    }
    if (ms == 0) {
        /* A spin on an empty buffer yields now and then as well: the
         * loop may be what the messages wait for (an async on_assign). */
        self->streak++;
        return r->kind == W_CONSUME ? PyList_New(0) : Py_NewRef(Py_None);
    }
    self->streak = 0; /* the caller suspends: the loop runs */
    if (!arm) {
        r->mode = R_ARM; /* waits from the first step of its task */
        return NULL;
    }
    if (wait_on(self, r, ms) < 0) {
        return NULL;
    }
    /* Entries may have come in meanwhile, before the wake-up was armed:
     * look again now that it is (this may wake r at once). */
    akc_consume_serve(self);
    return NULL;
}

/* A consume call past its checks: yields first after a long streak. */
static PyObject *
take_or_yield(ConsumerObject *self, int kind, Py_ssize_t max, int ms,
              const char *method)
{
    ReadyObject *r = ready_new(self->core.st, self, kind, max, ms, method);
    if (r == NULL) {
        return NULL;
    }
    /* While an earlier call is still to take after its yield (or its
     * wake-up), this one yields too: tasks resume in order, so calls take
     * in call order. */
    if (self->streak >= STREAK_MAX || self->lazy > 0) {
        self->streak = 0;
        r->mode = R_YIELD;
        r->counted = 1;
        self->lazy++;
        return (PyObject *)r;
    }
    if (ready_start(r, 0) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return (PyObject *)r;
}

static PyObject *
consume_call(ConsumerObject *self, const char *method, int kind,
             Py_ssize_t max, PyObject *timeout)
{
    int ms;
    if (akc_timeout_ms(timeout ? timeout : Py_None, &ms) < 0 ||
        consume_enter(self, method) < 0) {
        return NULL;
    }
    return take_or_yield(self, kind, max, ms, method);
}

PyObject *
akc_consumer_poll(ConsumerObject *self, PyObject *const *args,
                  Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *timeout = NULL;
    PyObject *names[] = {self->core.st->str_timeout, NULL};
    if (akc_parse_args("poll", args, nargs, kwnames, names, 1, 0, &timeout) <
        0) {
        return NULL;
    }
    return consume_call(self, "poll", W_POLL, 1, timeout);
}

PyObject *
akc_consumer_consume(ConsumerObject *self, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames)
{
    static PyObject *names[3];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("num_messages");
        names[1] = PyUnicode_InternFromString("timeout");
    }
    PyObject *a[2] = {NULL};
    if (akc_parse_args("consume", args, nargs, kwnames, names, 2, 0, a) < 0) {
        return NULL;
    }
    Py_ssize_t n = 1;
    if (a[0] != NULL) {
        if (!PyLong_Check(a[0]) || PyBool_Check(a[0])) {
            return PyErr_Format(PyExc_TypeError,
                                "consume(): num_messages must be an int, not "
                                "%.100s",
                                Py_TYPE(a[0])->tp_name);
        }
        n = PyLong_AsSsize_t(a[0]);
        if (n == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (n < 1 || n > 1000000) {
            PyErr_SetString(PyExc_ValueError,
                            "consume(): num_messages must be 1..1000000");
            return NULL;
        }
    }
    return consume_call(self, "consume", W_CONSUME, n, a[1]);
}

PyObject *
akc_consumer_aiter(PyObject *self)
{
    return Py_NewRef(self);
}

PyObject *
akc_consumer_anext(PyObject *op)
{
    ConsumerObject *self = (ConsumerObject *)op;
    akc_core *core = &self->core;
    akc_state *st = core->st;
    if (core->state == AKC_CLOSING || core->state == AKC_CLOSED) {
        PyObject *stop = PyObject_CallNoArgs(PyExc_StopAsyncIteration);
        PyObject *r = stop ? ready_value(st, stop) : NULL;
        Py_XDECREF(stop);
        return r;
    }
    if (consume_enter(self, "__anext__") < 0) {
        return NULL;
    }
    return take_or_yield(self, W_ANEXT, 1, -1, "__anext__");
}

int
akc_consume_setup_types(PyObject *module, akc_state *st)
{
    st->ReadyType = (PyTypeObject *)PyType_FromModuleAndSpec(module,
                                                             &ready_spec, NULL);
    return st->ReadyType ? 0 : -1;
}
