/* Dispatcher: batched hand-off from the native poll thread to the loop. */
#include "dispatcher.h"
#include "errors.h"
#include "message.h"

#include <stdarg.h>

/* Python logging levels. */
#define LOG_ERROR 40
#define LOG_WARNING 30

/* At most this many items per run of the dispatcher, so one huge batch
 * cannot hold the loop for long (about a millisecond of work); the rest
 * continues on the loop's next iteration. */
#define AKC_DISPATCH_MAX 1024

DispatcherObject *
akc_dispatcher_new(akc_state *st, PyObject *logger, PyObject *error_cb,
                   PyObject *stats_cb, PyObject *throttle_cb)
{
    DispatcherObject *d = PyObject_GC_New(DispatcherObject,
                                          st->DispatcherType);
    if (d == NULL) {
        return NULL;
    }
    d->st = st;
    d->pending = PyList_New(0);
    d->tasks = PySet_New(NULL);
    d->batch = NULL;
    d->batch_pos = 0;
    d->loop = d->call_soon_threadsafe = d->create_future = NULL;
    d->call_soon = NULL;
    d->logger = Py_NewRef(logger);
    d->error_cb = Py_XNewRef(error_cb);
    d->stats_cb = Py_XNewRef(stats_cb);
    d->throttle_cb = Py_XNewRef(throttle_cb);
    d->scheduled = 0;
    d->warned_loop_closed = 0;
    PyObject_GC_Track(d);
    if (d->pending == NULL || d->tasks == NULL) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

int
akc_dispatcher_bind(DispatcherObject *d, PyObject *loop)
{
    PyObject *csts = PyObject_GetAttr(loop, d->st->str_call_soon_threadsafe);
    if (csts == NULL) {
        return -1;
    }
    PyObject *cf = PyObject_GetAttr(loop, d->st->str_create_future);
    PyObject *cs = cf ? PyObject_GetAttrString(loop, "call_soon") : NULL;
    if (cs == NULL) {
        Py_XDECREF(cf);
        Py_DECREF(csts);
        return -1;
    }
    Py_XSETREF(d->loop, Py_NewRef(loop));
    Py_XSETREF(d->call_soon_threadsafe, csts);
    Py_XSETREF(d->create_future, cf);
    Py_XSETREF(d->call_soon, cs);
    akc_dispatcher_schedule(d);
    return 0;
}

int
akc_dispatcher_push(DispatcherObject *d, PyObject *item)
{
    return PyList_Append(d->pending, item);
}

int
akc_dispatcher_push_kind(DispatcherObject *d, int kind, PyObject *a,
                         PyObject *b)
{
    PyObject *k = PyLong_FromLong(kind);
    if (k == NULL) {
        return -1;
    }
    PyObject *item = b ? PyTuple_Pack(3, k, a, b) : PyTuple_Pack(2, k, a);
    Py_DECREF(k);
    if (item == NULL) {
        return -1;
    }
    int rc = PyList_Append(d->pending, item);
    Py_DECREF(item);
    return rc;
}

PyObject *
akc_dispatcher_new_future(DispatcherObject *d)
{
    if (d->create_future == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "aiokafka_c: no event loop is bound");
        return NULL;
    }
    return PyObject_CallNoArgs(d->create_future);
}

void
akc_dispatcher_log(DispatcherObject *d, int level, PyObject *msg,
                   PyObject *exc)
{
    PyObject *saved_type, *saved_value, *saved_tb;
    PyErr_Fetch(&saved_type, &saved_value, &saved_tb);
    PyObject *lvl = PyLong_FromLong(level);
    PyObject *r = NULL;
    if (lvl != NULL) {
        PyObject *args[4] = {d->logger, lvl, msg, exc};
        PyObject *kwnames = NULL;
        if (exc != NULL) {
            kwnames = Py_BuildValue("(s)", "exc_info");
        }
        if (exc == NULL || kwnames != NULL) {
            r = PyObject_VectorcallMethod(
                d->st->str_log, args,
                3 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
        }
        Py_XDECREF(kwnames);
        Py_DECREF(lvl);
    }
    if (r == NULL) {
        /* A broken logger must not take the client down with it. */
        PyErr_WriteUnraisable(d->logger);
    }
    Py_XDECREF(r);
    PyErr_Restore(saved_type, saved_value, saved_tb);
}

void
akc_dispatcher_logf(DispatcherObject *d, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (msg == NULL) {
        PyErr_WriteUnraisable(d->logger);
        return;
    }
    akc_dispatcher_log(d, level, msg, NULL);
    Py_DECREF(msg);
}

/* Keeps a strong reference to a task until it finishes, so an async
 * callback cannot be garbage-collected mid-way. */
static int
dispatcher_track_task(DispatcherObject *d, PyObject *coro)
{
    PyObject *task = PyObject_CallMethodOneArg(d->loop, d->st->str_create_task,
                                               coro);
    if (task == NULL) {
        return -1;
    }
    PyObject *discard = NULL, *r = NULL;
    if (PySet_Add(d->tasks, task) < 0) {
        goto error;
    }
    discard = PyObject_GetAttr(d->tasks, d->st->str_discard);
    if (discard == NULL) {
        goto error;
    }
    r = PyObject_CallMethodOneArg(task, d->st->str_add_done_callback,
                                  discard);
    if (r == NULL) {
        goto error;
    }
    Py_DECREF(r);
    Py_DECREF(discard);
    Py_DECREF(task);
    return 0;
error:
    Py_XDECREF(discard);
    Py_DECREF(task);
    return -1;
}

void
akc_dispatcher_call_user(DispatcherObject *d, PyObject *cb,
                         PyObject *const *args, size_t nargs,
                         const char *what, int on_loop)
{
    PyObject *r = PyObject_Vectorcall(cb, args, nargs, NULL);
    if (r != NULL && r != Py_None) {
        int is_coro = 0;
        PyObject *c = PyObject_CallOneArg(d->st->iscoroutine, r);
        if (c != NULL) {
            is_coro = PyObject_IsTrue(c);
            Py_DECREF(c);
        }
        if (is_coro > 0 && (!on_loop || d->loop == NULL)) {
            /* Tasks can only be made on the loop thread. */
            PyObject *closed = PyObject_CallMethod(r, "close", NULL);
            Py_XDECREF(closed);
            Py_CLEAR(r);
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError,
                             "%s returned a coroutine, but it runs on the "
                             "native poll thread (dispatch='poll_thread'), "
                             "where nothing can await it; use a plain "
                             "function there",
                             what);
            }
        }
        else if (c == NULL || is_coro < 0 ||
                 (is_coro && dispatcher_track_task(d, r) < 0)) {
            Py_CLEAR(r);
        }
    }
    if (r == NULL) {
        PyObject *exc = akc_take_exception();
        PyObject *msg = PyUnicode_FromFormat("aiokafka_c: %s raised", what);
        if (msg != NULL) {
            akc_dispatcher_log(d, LOG_ERROR, msg, exc);
            Py_DECREF(msg);
        }
        else {
            PyErr_Clear();
        }
        Py_XDECREF(exc);
        return;
    }
    Py_DECREF(r);
}

void
akc_dispatcher_schedule(DispatcherObject *d)
{
    if (d->scheduled || d->call_soon_threadsafe == NULL ||
        PyList_GET_SIZE(d->pending) == 0) {
        return;
    }
    /* Set before the call: call_soon_threadsafe may release the GIL while
     * it wakes the loop, and the loop may run us before it returns. */
    d->scheduled = 1;
    PyObject *h = PyObject_CallOneArg(d->call_soon_threadsafe, (PyObject *)d);
    if (h != NULL) {
        Py_DECREF(h);
        return;
    }
    d->scheduled = 0;
    /* The loop is closed: nothing can complete these items any more. */
    PyObject *exc = akc_take_exception();
    Py_ssize_t n = PyList_GET_SIZE(d->pending);
    if (!d->warned_loop_closed) {
        d->warned_loop_closed = 1;
        PyObject *text = exc ? PyObject_Str(exc) : NULL;
        PyErr_Clear();
        akc_dispatcher_logf(
            d, LOG_WARNING,
            "aiokafka_c: cannot reach the event loop the client is bound to "
            "(%S); %zd results dropped: close the client before its loop "
            "ends",
            text ? text : Py_None, n);
        Py_XDECREF(text);
    }
    Py_XDECREF(exc);
    PyList_SetSlice(d->pending, 0, n, NULL);
}

/* Completes one delivery report on the loop thread. */
static void
dispatcher_deliver(DispatcherObject *d, MessageObject *m)
{
    akc_state *st = d->st;
    /* Take ownership of the fields first: callbacks may touch m. */
    PyObject *fut = m->future;
    PyObject *cb = m->on_delivery;
    m->future = NULL;
    m->on_delivery = NULL;
    int observed = cb != NULL;
    if (fut != NULL) {
        PyObject *done = PyObject_CallMethodNoArgs(fut, st->str_done);
        int is_done = done ? PyObject_IsTrue(done) : -1;
        Py_XDECREF(done);
        if (is_done == 0) {
            observed = 1;
            PyObject *r;
            if (m->error != NULL) {
                PyObject *exc = akc_exception_new(st, m->error);
                r = exc ? PyObject_CallMethodOneArg(fut, st->str_set_exception,
                                                    exc)
                        : NULL;
                Py_XDECREF(exc);
            }
            else {
                r = PyObject_CallMethodOneArg(fut, st->str_set_result,
                                              (PyObject *)m);
            }
            Py_XDECREF(r);
        }
        if (PyErr_Occurred()) {
            PyErr_WriteUnraisable(fut);
        }
        Py_DECREF(fut);
    }
    if (cb != NULL) {
        PyObject *args[2] = {m->error ? m->error : Py_None, (PyObject *)m};
        akc_dispatcher_call_user(d, cb, args, 2, "on_delivery callback", 1);
        Py_DECREF(cb);
    }
    if (!observed && m->error != NULL) {
        /* Fire-and-forget, or the awaiting task was cancelled: the error
         * still has to be seen by someone. */
        PyObject *text = PyObject_Str(m->error);
        if (text != NULL) {
            akc_dispatcher_logf(
                d, LOG_ERROR,
                "aiokafka_c: delivery failed (no one is waiting for it): "
                "topic=%S partition=%d: %U",
                m->topic ? m->topic : Py_None, (int)m->partition, text);
            Py_DECREF(text);
        }
        else {
            PyErr_Clear();
        }
    }
}

static void
dispatcher_handle_item(DispatcherObject *d, PyObject *item)
{
    akc_state *st = d->st;
    if (Py_IS_TYPE(item, st->MessageType)) {
        dispatcher_deliver(d, (MessageObject *)item);
        return;
    }
    int kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
    PyObject *a = PyTuple_GET_ITEM(item, 1);
    switch (kind) {
    case AKC_ITEM_ERROR:
        if (d->error_cb != NULL) {
            akc_dispatcher_call_user(d, d->error_cb, &a, 1, "error_cb", 1);
        }
        else {
            PyObject *text = PyObject_Repr(a);
            if (text != NULL) {
                akc_dispatcher_logf(d, LOG_ERROR, "aiokafka_c: %U", text);
                Py_DECREF(text);
            }
        }
        break;
    case AKC_ITEM_STATS:
        if (d->stats_cb != NULL) {
            akc_dispatcher_call_user(d, d->stats_cb, &a, 1, "stats_cb", 1);
        }
        break;
    case AKC_ITEM_THROTTLE:
        if (d->throttle_cb != NULL) {
            akc_dispatcher_call_user(d, d->throttle_cb, &a, 1,
                                     "throttle_cb", 1);
        }
        break;
    case AKC_ITEM_LOG:
        akc_dispatcher_log(d, (int)PyLong_AsLong(a),
                           PyTuple_GET_ITEM(item, 2), NULL);
        break;
    case AKC_ITEM_RESULT: {
        PyObject *fut = a, *res = PyTuple_GET_ITEM(item, 2);
        PyObject *done = PyObject_CallMethodNoArgs(fut, st->str_done);
        int is_done = done ? PyObject_IsTrue(done) : -1;
        Py_XDECREF(done);
        if (is_done == 0) {
            PyObject *r = PyObject_CallMethodOneArg(
                fut,
                PyExceptionInstance_Check(res) ? st->str_set_exception
                                               : st->str_set_result,
                res);
            Py_XDECREF(r);
        }
        break;
    }
    case AKC_ITEM_CALL:
        akc_dispatcher_call_user(d, a, NULL, 0, "internal callback", 1);
        break;
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(item);
    }
}

/* tp_call: run by the loop thread.  Completes the pending batch, at most
 * AKC_DISPATCH_MAX items per run. */
static PyObject *
dispatcher_call(DispatcherObject *d, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    if (d->batch == NULL) {
        PyObject *fresh = PyList_New(0);
        if (fresh == NULL) {
            return NULL;
        }
        d->batch = d->pending;
        d->pending = fresh;
        d->batch_pos = 0;
    }
    PyObject *batch = Py_NewRef(d->batch);
    Py_ssize_t n = PyList_GET_SIZE(batch);
    Py_ssize_t end = d->batch_pos + AKC_DISPATCH_MAX;
    if (end > n) {
        end = n;
    }
    while (d->batch_pos < end) {
        /* Advance first: an item's callback may re-enter the loop. */
        PyObject *item = PyList_GET_ITEM(batch, d->batch_pos);
        d->batch_pos++;
        dispatcher_handle_item(d, item);
    }
    Py_DECREF(batch);
    if (d->batch_pos < PyList_GET_SIZE(d->batch)) {
        /* More to do: continue on the next loop iteration (the flag stays
         * set, so the poll thread only appends meanwhile). */
        PyObject *h = PyObject_CallOneArg(d->call_soon, (PyObject *)d);
        if (h == NULL) {
            return NULL;
        }
        Py_DECREF(h);
        Py_RETURN_NONE;
    }
    Py_CLEAR(d->batch);
    if (PyList_GET_SIZE(d->pending) > 0) {
        /* Arrived meanwhile: already on the loop, no wake-up needed. */
        PyObject *h = PyObject_CallOneArg(d->call_soon, (PyObject *)d);
        if (h == NULL) {
            d->scheduled = 0;
            return NULL;
        }
        Py_DECREF(h);
        Py_RETURN_NONE;
    }
    d->scheduled = 0;
    Py_RETURN_NONE;
}

static int
dispatcher_traverse(DispatcherObject *d, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(d));
    Py_VISIT(d->pending);
    Py_VISIT(d->batch);
    Py_VISIT(d->call_soon);
    Py_VISIT(d->loop);
    Py_VISIT(d->call_soon_threadsafe);
    Py_VISIT(d->create_future);
    Py_VISIT(d->logger);
    Py_VISIT(d->error_cb);
    Py_VISIT(d->stats_cb);
    Py_VISIT(d->throttle_cb);
    Py_VISIT(d->tasks);
    return 0;
}

static int
dispatcher_clear(DispatcherObject *d)
{
    Py_CLEAR(d->pending);
    Py_CLEAR(d->batch);
    Py_CLEAR(d->call_soon);
    Py_CLEAR(d->loop);
    Py_CLEAR(d->call_soon_threadsafe);
    Py_CLEAR(d->create_future);
    Py_CLEAR(d->logger);
    Py_CLEAR(d->error_cb);
    Py_CLEAR(d->stats_cb);
    Py_CLEAR(d->throttle_cb);
    Py_CLEAR(d->tasks);
    return 0;
}

static void
dispatcher_dealloc(DispatcherObject *d)
{
    PyTypeObject *tp = Py_TYPE(d);
    PyObject_GC_UnTrack(d);
    dispatcher_clear(d);
    tp->tp_free(d);
    Py_DECREF(tp);
}

static PyType_Slot dispatcher_slots[] = {
    {Py_tp_dealloc, dispatcher_dealloc},
    {Py_tp_traverse, dispatcher_traverse},
    {Py_tp_clear, dispatcher_clear},
    {Py_tp_call, dispatcher_call},
    {Py_tp_doc, "Internal: completes a batch of client results on the "
                "event loop."},
    {0, NULL},
};

static PyType_Spec dispatcher_spec = {
    .name = "aiokafka_c._core._Dispatcher",
    .basicsize = sizeof(DispatcherObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = dispatcher_slots,
};

int
akc_dispatcher_setup_types(PyObject *module, akc_state *st)
{
    st->DispatcherType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &dispatcher_spec, NULL);
    return st->DispatcherType ? 0 : -1;
}
