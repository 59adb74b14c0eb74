/* Dispatcher: batched hand-off from the native poll thread to the loop. */
#include "dispatcher.h"
#include "errors.h"
#include "probe.h"

#include <stdarg.h>

/* Items per run of the dispatcher: at least AKC_DISPATCH_SLICE, and a
 * 1/AKC_DISPATCH_SHARE share of the backlog when that is more.  The rest
 * continues on the loop's next iteration, so timers and I/O get a turn
 * between slices of one big delivery batch: each completed future wakes
 * a task in the next iteration, so a slice of N costs that iteration
 * about N task steps.  The share keeps the backlog bounded (at about
 * AKC_DISPATCH_SHARE iterations' worth) when the loop adds more than a
 * slice per iteration, e.g. produce_nowait() with loop callbacks.
 * Measured 2026-12-03 (benchmarks/results/2026-12-03_dispatch_slice.md,
 * 1000 producing tasks, 1 ms ticker lag p99): 4.1-4.9 ms with slices of
 * 1024, 1.1-2.3 ms with 64 on asyncio, loop CPU per message no worse.
 * Overridable (-DAKC_DISPATCH_SLICE=N) to measure another slice. */
#ifndef AKC_DISPATCH_SLICE
#define AKC_DISPATCH_SLICE 64
#endif
#define AKC_DISPATCH_SHARE 16

DispatcherObject *
akc_dispatcher_new(akc_state *st, PyObject *logger,
                   akc_item_handler client_item)
{
    DispatcherObject *d = PyObject_GC_New(DispatcherObject,
                                          st->DispatcherType);
    if (d == NULL) {
        return NULL;
    }
    d->st = st;
    d->client_item = client_item;
    d->pending = PyList_New(0);
    d->tasks = PySet_New(NULL);
    d->batch = NULL;
    d->batch_pos = 0;
    d->loop = d->call_soon_threadsafe = d->create_future = NULL;
    d->loop_dict = d->future_kwargs = NULL;
    d->call_soon = NULL;
    d->raised = NULL;
    d->logger = logger;
    d->scheduled = 0;
    d->warned_loop_closed = 0;
    d->loop_dead = 0;
    PyObject_GC_Track(d);
    if (d->pending == NULL || d->tasks == NULL) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

/* Returns a new reference to loop.name if it is callable, else NULL with
 * TypeError (or the attribute error). */
static PyObject *
loop_method(PyObject *loop, PyObject *name)
{
    PyObject *m = PyObject_GetAttr(loop, name);
    if (m == NULL || !PyCallable_Check(m)) {
        Py_XDECREF(m);
        PyErr_Format(PyExc_TypeError,
                     "loop must be an asyncio event loop, not %.100s",
                     Py_TYPE(loop)->tp_name);
        return NULL;
    }
    return m;
}

int
akc_dispatcher_bind(DispatcherObject *d, PyObject *loop)
{
    akc_state *st = d->st;
    PyObject *csts = loop_method(loop, st->str_call_soon_threadsafe);
    PyObject *cf = csts ? loop_method(loop, st->str_create_future) : NULL;
    PyObject *cs = cf ? loop_method(loop, st->str_call_soon) : NULL;
    if (cs == NULL) {
        Py_XDECREF(cf);
        Py_XDECREF(csts);
        return -1;
    }
    PyObject *impl = PyObject_GetAttr((PyObject *)Py_TYPE(loop),
                                      st->str_create_future);
    PyObject *kwargs = impl == st->base_create_future ? PyDict_New() : NULL;
    Py_XDECREF(impl);
    if (kwargs != NULL && PyDict_SetItemString(kwargs, "loop", loop) < 0) {
        Py_CLEAR(kwargs);
    }
    PyObject **dictptr = kwargs ? _PyObject_GetDictPtr(loop) : NULL;
    PyObject *ldict = dictptr && *dictptr && PyDict_CheckExact(*dictptr)
                          ? Py_NewRef(*dictptr)
                          : NULL;
    /* Any failure above only costs the fast paths: without the dict (no
     * memory), futures come from create_future(). */
    PyErr_Clear();
    Py_XSETREF(d->future_kwargs, kwargs);
    Py_XSETREF(d->loop_dict, ldict);
    Py_XSETREF(d->loop, Py_NewRef(loop));
    Py_XSETREF(d->call_soon_threadsafe, csts);
    Py_XSETREF(d->create_future, cf);
    Py_XSETREF(d->call_soon, cs);
    akc_dispatcher_schedule(d);
    return 0;
}

/* Returns a new reference to the running loop, or to None. */
static PyObject *
running_loop(DispatcherObject *d)
{
    return PyObject_CallNoArgs(d->st->get_running_loop);
}

/* asyncio's BaseEventLoop keeps the ident of the thread running it in
 * _thread_id (None when it is not running), and one thread runs one loop
 * at a time: equal to ours, the bound loop is the running one.  A dict
 * lookup, where asyncio._get_running_loop() costs a getpid() on 3.11. */
static int
bound_loop_runs_here(DispatcherObject *d)
{
    if (d->loop_dict == NULL) {
        return 0;
    }
    PyObject *tid = PyDict_GetItemWithError(d->loop_dict,
                                            d->st->str_thread_id);
    if (tid == NULL || !PyLong_CheckExact(tid)) {
        PyErr_Clear();
        return 0;
    }
    unsigned long v = PyLong_AsUnsignedLong(tid);
    if (v == (unsigned long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return v == PyThread_get_thread_ident();
}

int
akc_dispatcher_check_loop(DispatcherObject *d, const char *kind,
                          const char *method)
{
    if (bound_loop_runs_here(d)) {
        return 0;
    }
    PyObject *loop = running_loop(d);
    if (loop == NULL) {
        return -1;
    }
    if (loop == d->loop) {
        Py_DECREF(loop);
        return 0;
    }
    int rc = -1;
    if (loop == Py_None) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s.%s() must be called from a coroutine running in "
                     "an asyncio event loop",
                     kind, method);
    }
    else if (d->loop != NULL) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s.%s() called from a different event loop than the "
                     "one this client is bound to (the loop it was made in, "
                     "or of its first use); create one client per event "
                     "loop",
                     kind, method);
    }
    else {
        rc = akc_dispatcher_bind(d, loop);
    }
    Py_DECREF(loop);
    return rc;
}

int
akc_dispatcher_bind_running(DispatcherObject *d)
{
    if (d->loop != NULL) {
        return 0;
    }
    PyObject *loop = running_loop(d);
    if (loop == NULL) {
        return -1;
    }
    int rc = loop == Py_None ? 0 : akc_dispatcher_bind(d, loop);
    Py_DECREF(loop);
    return rc;
}

int
akc_dispatcher_on_loop(DispatcherObject *d)
{
    PyObject *loop = running_loop(d);
    if (loop == NULL) {
        return -1;
    }
    int on = loop != Py_None && loop == d->loop;
    Py_DECREF(loop);
    return on;
}

void
akc_dispatcher_set_logger(DispatcherObject *d, PyObject *logger)
{
    d->logger = logger ? logger : d->st->default_logger;
}

int
akc_dispatcher_push(DispatcherObject *d, PyObject *item)
{
    if (d->pending == NULL) {
        return 0; /* cleared by the collector: nobody is left to tell */
    }
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
    int rc = akc_dispatcher_push(d, item);
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
    if (d->future_kwargs != NULL) {
        /* asyncio.Future has no vectorcall: a keyword call would build
         * this dict each time.  Held for the call, which never sees it as
         * a temporary of its own. */
        PyObject *kwargs = Py_NewRef(d->future_kwargs);
        PyObject *fut = PyObject_Call(d->st->future_type, d->st->empty_tuple,
                                      kwargs);
        Py_DECREF(kwargs);
        return fut;
    }
    return PyObject_CallNoArgs(d->create_future);
}

PyObject *
akc_dispatcher_done_future(DispatcherObject *d, PyObject *result)
{
    PyObject *fut = akc_dispatcher_new_future(d);
    if (fut != NULL && akc_dispatcher_resolve(d, fut, result) < 0) {
        Py_CLEAR(fut);
    }
    return fut;
}

void
akc_dispatcher_log(DispatcherObject *d, int level, PyObject *msg,
                   PyObject *exc)
{
    PyObject *saved = akc_err_take();
    PyObject *lvl = PyLong_FromLong(level);
    PyObject *r = NULL;
    /* Held for the call: logging may drop the client, and its logger. */
    PyObject *logger = Py_NewRef(d->logger);
    if (lvl != NULL) {
        PyObject *args[4] = {logger, lvl, msg, exc};
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
    }
    Py_XDECREF(lvl);
    if (r == NULL && PyErr_Occurred()) {
        /* A broken logger must not take the client down with it. */
        PyErr_WriteUnraisable(logger);
    }
    Py_XDECREF(r);
    Py_DECREF(logger);
    akc_err_restore(saved);
}

void
akc_dispatcher_logf(DispatcherObject *d, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *saved = akc_err_take();
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (msg == NULL) {
        PyErr_WriteUnraisable(NULL);
    }
    else {
        akc_dispatcher_log(d, level, msg, NULL);
        Py_DECREF(msg);
    }
    akc_err_restore(saved);
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

/* Runs the exception of a failed user callback the way asyncio's
 * Handle._run would: SystemExit and KeyboardInterrupt leave through the
 * loop (kept in d->raised on the loop thread; handed to the loop from the
 * poll thread), anything else is logged with its traceback. */
static void
dispatcher_callback_failed(DispatcherObject *d, const char *what,
                           int on_loop)
{
    PyObject *exc = akc_err_take();
    if (exc != NULL && (PyErr_GivenExceptionMatches(exc, PyExc_SystemExit) ||
                        PyErr_GivenExceptionMatches(
                            exc, PyExc_KeyboardInterrupt))) {
        if (on_loop) {
            if (d->raised == NULL) {
                d->raised = exc;
                return;
            }
        }
        else if (akc_dispatcher_push_kind(d, AKC_ITEM_RAISE, exc, NULL) ==
                 0) {
            Py_DECREF(exc);
            return;
        }
        PyErr_Clear();
    }
    PyObject *msg = PyUnicode_FromFormat("aiokafka_c: %s raised", what);
    if (msg != NULL) {
        akc_dispatcher_log(d, AKC_LOG_ERROR, msg, exc);
        Py_DECREF(msg);
    }
    PyErr_Clear();
    Py_XDECREF(exc);
}

/* What a callback returned: a coroutine becomes a task on the loop (and
 * is refused elsewhere).  Steals r.  Returns 0 or -1 with an exception. */
static int
dispatcher_callback_result(DispatcherObject *d, PyObject *r,
                           const char *what, int on_loop)
{
    if (r == Py_None) {
        Py_DECREF(r);
        return 0;
    }
    PyObject *c = PyObject_CallOneArg(d->st->iscoroutine, r);
    int is_coro = c ? PyObject_IsTrue(c) : -1;
    Py_XDECREF(c);
    int rc = 0;
    if (is_coro < 0) {
        rc = -1;
    }
    else if (is_coro && (!on_loop || d->loop == NULL)) {
        /* Tasks can only be made on the loop thread. */
        PyObject *closed = PyObject_CallMethodNoArgs(r, d->st->str_close);
        Py_XDECREF(closed);
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError,
                         "%s returned a coroutine, but it runs on the native "
                         "poll thread (dispatch='poll_thread'), where nothing "
                         "can await it; use a plain function there",
                         what);
        }
        rc = -1;
    }
    else if (is_coro) {
        rc = dispatcher_track_task(d, r);
    }
    Py_DECREF(r);
    return rc;
}

void
akc_dispatcher_call_user(DispatcherObject *d, PyObject *cb,
                         PyObject *const *args, size_t nargs, PyObject *ctx,
                         const char *what, int on_loop)
{
    if (ctx != NULL && PyContext_Enter(ctx) < 0) {
        dispatcher_callback_failed(d, what, on_loop);
        return;
    }
    PyObject *r = PyObject_Vectorcall(cb, args, nargs, NULL);
    if (r == NULL || dispatcher_callback_result(d, r, what, on_loop) < 0) {
        dispatcher_callback_failed(d, what, on_loop);
    }
    if (ctx != NULL && PyContext_Exit(ctx) < 0) {
        dispatcher_callback_failed(d, what, on_loop);
    }
}

/* Items taken from the poll thread and not yet completed: the rest of
 * the batch in hand, and the pending list. */
static int
dispatcher_outstanding(DispatcherObject *d)
{
    if (d->pending == NULL) {
        return 0;
    }
    return PyList_GET_SIZE(d->pending) > 0 ||
           (d->batch != NULL && d->batch_pos < PyList_GET_SIZE(d->batch));
}

/* Whether the bound loop is closed: its _closed attribute where the loop
 * keeps one in its __dict__ (asyncio's), else is_closed(). */
static int
dispatcher_loop_closed(DispatcherObject *d)
{
    if (d->loop == NULL) {
        return 0;
    }
    PyObject *v = d->loop_dict ? PyDict_GetItemWithError(d->loop_dict,
                                                         d->st->str__closed)
                               : NULL;
    if (v != NULL) {
        return v == Py_True;
    }
    PyErr_Clear();
    PyObject *r = PyObject_CallMethodNoArgs(d->loop, d->st->str_is_closed);
    int closed = r != NULL && PyObject_IsTrue(r) == 1;
    Py_XDECREF(r);
    PyErr_Clear();
    return closed;
}

/* One item the loop will never run, from dispatcher_drop: a log line
 * or an error still reaches the logger (from this thread), statistics
 * and throttle reports go.  Returns 1 if it carried a result someone may
 * wait for (a future, a delivery, a callback), else 0. */
static int
dispatcher_drop_item(DispatcherObject *d, PyObject *item)
{
    if (!PyTuple_CheckExact(item)) {
        return 1; /* a client's own item: a delivery, a batch */
    }
    int kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
    PyObject *a = PyTuple_GET_ITEM(item, 1);
    PyObject *b = PyTuple_GET_SIZE(item) > 2 ? PyTuple_GET_ITEM(item, 2)
                                             : NULL;
    switch (kind) {
    case AKC_ITEM_LOG:
        akc_dispatcher_log(d, (int)PyLong_AsLong(a), b, NULL);
        return 0;
    case AKC_ITEM_ERROR:
        akc_dispatcher_logf(d, AKC_LOG_ERROR, "aiokafka_c: %R", b);
        return 0;
    case AKC_ITEM_STATS:
    case AKC_ITEM_THROTTLE:
        return 0;
    case AKC_ITEM_RESULT: {
        /* A future only this item holds, with no callbacks (a close()
         * whose caller did not keep it, say), cannot be observed by
         * anyone: nothing is lost. */
        if (Py_REFCNT(a) > 1) {
            return 1;
        }
        PyObject *cbs = PyObject_GetAttrString(a, "_callbacks");
        int has = cbs != NULL && cbs != Py_None && PyObject_IsTrue(cbs) == 1;
        Py_XDECREF(cbs);
        PyErr_Clear();
        return has;
    }
    default:
        return 1;
    }
}

/* The loop is gone (closed, or refused the wake-up): nothing can complete
 * the outstanding items any more.  Logs what was for the logger, warns
 * (once) if results were among the rest, and lets them go. */
static void
dispatcher_drop(DispatcherObject *d, PyObject *why)
{
    d->scheduled = 0;
    d->loop_dead = 1;
    /* Taken out first: the logger runs Python code, which may release
     * the GIL, and the loop thread may push meanwhile. */
    PyObject *batch = d->batch;
    Py_ssize_t from = d->batch_pos;
    d->batch = NULL;
    PyObject *pending = NULL;
    if (d->pending != NULL && PyList_GET_SIZE(d->pending) > 0) {
        PyObject *fresh = PyList_New(0);
        if (fresh != NULL) {
            pending = d->pending;
            d->pending = fresh;
        }
        else {
            PyErr_Clear();
            PyList_SetSlice(d->pending, 0, PyList_GET_SIZE(d->pending),
                            NULL);
        }
    }
    Py_ssize_t results = 0;
    for (Py_ssize_t i = from; batch != NULL && i < PyList_GET_SIZE(batch);
         i++) {
        results += dispatcher_drop_item(d, PyList_GET_ITEM(batch, i));
    }
    for (Py_ssize_t i = 0; pending != NULL && i < PyList_GET_SIZE(pending);
         i++) {
        results += dispatcher_drop_item(d, PyList_GET_ITEM(pending, i));
    }
    PyErr_Clear();
    if (results > 0 && !d->warned_loop_closed) {
        d->warned_loop_closed = 1;
        akc_dispatcher_logf(
            d, AKC_LOG_WARNING,
            "aiokafka_c: cannot reach the event loop the client is bound to "
            "(%S); %zd results dropped: close the client before its loop "
            "ends",
            why, results);
    }
    Py_XDECREF(batch);
    Py_XDECREF(pending);
    PyErr_Clear();
}

void
akc_dispatcher_schedule(DispatcherObject *d)
{
    if (d->call_soon_threadsafe == NULL || !dispatcher_outstanding(d)) {
        return;
    }
    PyObject *saved = akc_err_take();
    if (d->scheduled) {
        /* A wake-up or a continuation is queued on the loop; a loop
         * closed meanwhile dropped it, and will never run us again. */
        if (dispatcher_loop_closed(d)) {
            PyObject *why = PyUnicode_FromString("the loop is closed");
            dispatcher_drop(d, why ? why : Py_None);
            Py_XDECREF(why);
        }
        akc_err_restore(saved);
        return;
    }
    /* Set before the call: call_soon_threadsafe may release the GIL while
     * it wakes the loop, and the loop may run us before it returns. */
    d->scheduled = 1;
    akc_probe(AKC_PROBE_WAKING);
    PyObject *h = PyObject_CallOneArg(d->call_soon_threadsafe, (PyObject *)d);
    if (h != NULL) {
        Py_DECREF(h);
        akc_err_restore(saved);
        return;
    }
    PyObject *exc = akc_err_take();
    PyObject *text = exc ? PyObject_Str(exc) : NULL;
    PyErr_Clear();
    dispatcher_drop(d, text ? text : Py_None);
    Py_XDECREF(text);
    Py_XDECREF(exc);
    akc_err_restore(saved);
}

PyObject *
akc_dispatcher_done_after(DispatcherObject *d, PyObject *result)
{
    if (!dispatcher_outstanding(d) || d->loop_dead) {
        return akc_dispatcher_done_future(d, result);
    }
    /* Woken first: if that fails, the outstanding items are dropped and
     * this one is answered here, on the loop thread, rather than never
     * (and not counted among the dropped).  The loop thread cannot be in
     * the dispatcher's run meanwhile, so the order holds either way. */
    akc_dispatcher_schedule(d);
    if (d->loop_dead) {
        return akc_dispatcher_done_future(d, result);
    }
    PyObject *fut = akc_dispatcher_new_future(d);
    if (fut == NULL) {
        return NULL;
    }
    if (akc_dispatcher_push_kind(d, AKC_ITEM_RESULT, fut, result) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

int
akc_dispatcher_resolve(DispatcherObject *d, PyObject *fut, PyObject *res)
{
    akc_state *st = d->st;
    if (Py_IS_TYPE(fut, (PyTypeObject *)st->future_type)) {
        /* asyncio's own Future: a done one refuses with
         * InvalidStateError, no done() call first. */
        PyObject *args[2] = {fut, res};
        PyObject *r = PyObject_Vectorcall(PyExceptionInstance_Check(res)
                                              ? st->future_set_exception
                                              : st->future_set_result,
                                          args, 2, NULL);
        if (r != NULL) {
            Py_DECREF(r);
            return 1;
        }
        if (PyErr_ExceptionMatches(st->invalid_state)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    PyObject *done = PyObject_CallMethodNoArgs(fut, st->str_done);
    int is_done = done ? PyObject_IsTrue(done) : -1;
    Py_XDECREF(done);
    if (is_done != 0) {
        return is_done < 0 ? -1 : 0;
    }
    PyObject *r = PyObject_CallMethodOneArg(
        fut,
        PyExceptionInstance_Check(res) ? st->str_set_exception
                                       : st->str_set_result,
        res);
    Py_XDECREF(r);
    return r ? 1 : -1;
}

static const char *const callback_names[] = {
    [AKC_ITEM_ERROR] = "error_cb",
    [AKC_ITEM_STATS] = "stats_cb",
    [AKC_ITEM_THROTTLE] = "throttle_cb",
    [AKC_ITEM_CALL] = "on_commit",
};

static void
dispatcher_handle_item(DispatcherObject *d, PyObject *item)
{
    if (!PyTuple_CheckExact(item)) {
        d->client_item(d, item);
        return;
    }
    int kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
    PyObject *a = PyTuple_GET_ITEM(item, 1);
    PyObject *b = PyTuple_GET_SIZE(item) > 2 ? PyTuple_GET_ITEM(item, 2)
                                             : NULL;
    switch (kind) {
    case AKC_ITEM_ERROR:
    case AKC_ITEM_STATS:
    case AKC_ITEM_THROTTLE:
        akc_dispatcher_call_user(d, a, &b, 1, NULL, callback_names[kind], 1);
        break;
    case AKC_ITEM_CALL:
        akc_dispatcher_call_user(d, a, &PyTuple_GET_ITEM(b, 0),
                                 (size_t)PyTuple_GET_SIZE(b), NULL,
                                 callback_names[kind], 1);
        break;
    case AKC_ITEM_LOG:
        akc_dispatcher_log(d, (int)PyLong_AsLong(a), b, NULL);
        break;
    case AKC_ITEM_RESULT:
        if (akc_dispatcher_resolve(d, a, b) < 0) {
            PyErr_WriteUnraisable(a);
        }
        break;
    case AKC_ITEM_RAISE:
        if (d->raised == NULL) {
            d->raised = Py_NewRef(a);
        }
        break;
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(item);
    }
}

/* Schedules the rest of the work on the loop's next iteration.  Returns
 * 0 or -1. */
static int
dispatcher_continue(DispatcherObject *d)
{
    PyObject *h = PyObject_CallOneArg(d->call_soon, (PyObject *)d);
    if (h == NULL) {
        d->scheduled = 0;
        return -1;
    }
    Py_DECREF(h);
    return 0;
}

/* tp_call: run by the loop thread.  Completes the pending batch, one
 * slice per run (see AKC_DISPATCH_SLICE).  A SystemExit or
 * KeyboardInterrupt of a callback stops the run and leaves through the
 * loop, like one raised by a loop.call_soon callback; the rest follows
 * on the next run. */
static PyObject *
dispatcher_call(DispatcherObject *d, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    akc_probe(AKC_PROBE_DISPATCH);
    if (d->pending == NULL) {
        Py_RETURN_NONE; /* cleared by the collector */
    }
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
    Py_ssize_t slice = (n - d->batch_pos + PyList_GET_SIZE(d->pending)) /
                       AKC_DISPATCH_SHARE;
    if (slice < AKC_DISPATCH_SLICE) {
        slice = AKC_DISPATCH_SLICE;
    }
    Py_ssize_t end = d->batch_pos + slice;
    if (end > n) {
        end = n;
    }
    while (d->batch_pos < end && d->raised == NULL) {
        /* Advance first: an item's callback may re-enter the loop. */
        PyObject *item = PyList_GET_ITEM(batch, d->batch_pos);
        d->batch_pos++;
        dispatcher_handle_item(d, item);
    }
    Py_DECREF(batch);
    int more = d->batch != NULL && d->batch_pos < PyList_GET_SIZE(d->batch);
    if (!more) {
        Py_CLEAR(d->batch);
        /* Arrived meanwhile: already on the loop, no wake-up needed. */
        more = d->pending != NULL && PyList_GET_SIZE(d->pending) > 0;
    }
    int rc = 0;
    if (more) {
        /* The flag stays set, so the poll thread only appends meanwhile. */
        rc = dispatcher_continue(d);
    }
    else {
        d->scheduled = 0;
    }
    if (d->raised != NULL) {
        PyObject *exc = d->raised;
        d->raised = NULL;
        akc_err_restore(exc);
        return NULL;
    }
    if (rc < 0) {
        return NULL;
    }
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
    Py_VISIT(d->loop_dict);
    Py_VISIT(d->future_kwargs);
    Py_VISIT(d->tasks);
    Py_VISIT(d->raised);
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
    Py_CLEAR(d->loop_dict);
    Py_CLEAR(d->future_kwargs);
    Py_CLEAR(d->tasks);
    Py_CLEAR(d->raised);
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
