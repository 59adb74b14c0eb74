/* The client lifecycle.  See lifecycle.h for the state machine. */
#include "lifecycle.h"

#include <unistd.h>

int
akc_core_init(akc_core *core, PyObject *owner, akc_state *st,
              const char *kind)
{
    core->owner = owner;
    core->st = st;
    core->kind = kind;
    core->close_deadline = core->close_drain_deadline = -1;
    core->state = AKC_NEW;
    core->pid = getpid();
    core->close_waiters = PyList_New(0);
    if (core->close_waiters == NULL) {
        return -1;
    }
    if (pthread_mutex_init(&core->lock, NULL) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (pthread_cond_init(&core->closed_cond, NULL) != 0) {
        pthread_mutex_destroy(&core->lock);
        PyErr_NoMemory();
        return -1;
    }
    core->lock_ready = 1;
    return 0;
}

int
akc_core_check_open(akc_core *core, const char *method)
{
    switch (core->state) {
    case AKC_OPEN:
        return 0;
    case AKC_NEW:
        PyErr_Format(PyExc_RuntimeError,
                     "%s.%s(): the client is not initialized (a subclass's "
                     "__init__ must call super().__init__(config))",
                     core->kind, method);
        return -1;
    case AKC_FORKED:
        PyErr_Format(PyExc_RuntimeError,
                     "%s.%s(): this client was made in process %d and "
                     "cannot be used in a forked child (process %d); make "
                     "a new client after fork()",
                     core->kind, method, (int)core->pid, (int)getpid());
        return -1;
    default:
        PyErr_Format(PyExc_RuntimeError, "%s.%s(): the client is %s",
                     core->kind, method,
                     core->state == AKC_CLOSING ? "closing" : "closed");
        return -1;
    }
}

int
akc_core_check_loop(akc_core *core, const char *method)
{
    return akc_dispatcher_check_loop(core->dispatcher, core->kind, method);
}

void
akc_core_wake_blocked(akc_core *core)
{
    if (!core->lock_ready) {
        return;
    }
    pthread_mutex_lock(&core->lock);
    core->closed_flag = 1;
    pthread_cond_broadcast(&core->closed_cond);
    pthread_mutex_unlock(&core->lock);
}

/* Answers every close() future with None.  GIL held. */
static void
core_answer_waiters(akc_core *core)
{
    PyObject *waiters = core->close_waiters;
    if (waiters == NULL || core->dispatcher == NULL) {
        return;
    }
    Py_ssize_t n = PyList_GET_SIZE(waiters);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (akc_dispatcher_push_kind(core->dispatcher, AKC_ITEM_RESULT,
                                     PyList_GET_ITEM(waiters, i),
                                     Py_None) < 0) {
            PyErr_WriteUnraisable(PyList_GET_ITEM(waiters, i));
        }
    }
    PyList_SetSlice(waiters, 0, n, NULL);
    akc_dispatcher_schedule(core->dispatcher);
}

void
akc_core_forget_handle(akc_core *core, PyObject *client, int forked)
{
    core->rk = NULL;
    if (core->ops != NULL && core->ops->forget_handle != NULL) {
        core->ops->forget_handle(client, forked);
    }
}

void
akc_core_closed(akc_core *core, PyObject *client)
{
    char why[128];
    snprintf(why, sizeof(why),
             "the %s was closed before the message was delivered",
             core->kind);
    core->rk = NULL;
    core->state = AKC_CLOSED;
    core->ops->release(client, why, 0);
    core_answer_waiters(core);
    akc_core_wake_blocked(core);
}

void
akc_core_reap(akc_core *core)
{
    akc_poller *p = core->poller;
    if (p != NULL && p->finished && !p->claimed) {
        core->poller = NULL;
        akc_poller_reap(p);
    }
}

void
akc_core_forked(akc_core *core, PyObject *client)
{
    akc_core_forget_handle(core, client, 1);
    core->poller = NULL;
    core->state = AKC_FORKED;
    /* Whatever the parent had in flight is the parent's to deliver. */
    core->ops->release(client, NULL, 1);
    PyList_SetSlice(core->close_waiters, 0,
                    PyList_GET_SIZE(core->close_waiters), NULL);
}

/* Blocks (GIL released) until the poll thread has closed the client.
 * Not on the poll thread.  GIL held on entry and exit. */
static void
core_wait_closed(akc_core *core)
{
    if (core->state != AKC_CLOSING) {
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&core->lock);
    while (!core->closed_flag) {
        pthread_cond_wait(&core->closed_cond, &core->lock);
    }
    pthread_mutex_unlock(&core->lock);
    Py_END_ALLOW_THREADS
}

/* OPEN -> CLOSING, or a shorter deadline for a close under way. */
static void
core_start_closing(akc_core *core, int timeout_ms)
{
    int64_t deadline = -1, drain = -1;
    if (timeout_ms >= 0) {
        int purge = timeout_ms / 5 < AKC_CLOSE_PURGE_MAX_MS
                        ? timeout_ms / 5
                        : AKC_CLOSE_PURGE_MAX_MS;
        deadline = akc_now_ms() + timeout_ms;
        drain = deadline - purge;
    }
    if (core->state == AKC_OPEN ||
        (deadline >= 0 && (core->close_deadline < 0 ||
                           deadline < core->close_deadline))) {
        core->state = AKC_CLOSING;
        core->close_deadline = deadline;
        core->close_drain_deadline = drain;
    }
    if (core->poller != NULL) {
        akc_poller_set_tick(core->poller, AKC_TICK_MS);
    }
}

/* The awaitable returned off the loop: awaiting it on the bound loop waits
 * for the close to finish. */
typedef struct {
    PyObject_HEAD
    akc_state *st;
    PyObject *client; /* strong, or NULL: already complete */
    akc_core *core;   /* inside client */
} CloseWaiterObject;

static PyObject *
core_waiter(akc_core *core, PyObject *client)
{
    CloseWaiterObject *w = PyObject_GC_New(CloseWaiterObject,
                                           core->st->CloseWaiterType);
    if (w == NULL) {
        return NULL;
    }
    w->st = core->st;
    w->client = Py_XNewRef(client);
    w->core = core;
    PyObject_GC_Track(w);
    return (PyObject *)w;
}

PyObject *
akc_done(akc_state *st)
{
    CloseWaiterObject *w = PyObject_GC_New(CloseWaiterObject,
                                           st->CloseWaiterType);
    if (w == NULL) {
        return NULL;
    }
    w->st = st;
    w->client = NULL;
    w->core = NULL;
    PyObject_GC_Track(w);
    return (PyObject *)w;
}

/* A fresh future for a close() caller on the loop: resolved when the
 * close finishes; cancelling it cancels nobody else's wait. */
static PyObject *
core_close_future(akc_core *core)
{
    PyObject *fut = akc_dispatcher_new_future(core->dispatcher);
    if (fut == NULL) {
        return NULL;
    }
    /* Checked after making the future: that ran Python code, during which
     * the poll thread may have finished the close and answered everyone
     * then waiting. */
    if (core->state == AKC_CLOSING) {
        if (PyList_Append(core->close_waiters, fut) < 0) {
            Py_DECREF(fut);
            return NULL;
        }
        return fut;
    }
    if (akc_dispatcher_resolve(core->dispatcher, fut, Py_None) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

PyObject *
akc_core_close(akc_core *core, PyObject *client, int timeout_ms)
{
    if (core->state == AKC_NEW || core->state == AKC_FORKED) {
        return akc_done(core->st); /* nothing of ours to close */
    }
    if (core->state != AKC_CLOSED) {
        core_start_closing(core, timeout_ms);
    }
    if (akc_pollers_on_poll_thread(core->st)) {
        /* A callback on a poll thread: it cannot wait for itself, nor
         * block a thread another client's close may wait on. */
        return core_waiter(core, client);
    }
    if (core->state == AKC_CLOSED) {
        /* Done already: an awaitable that works anywhere (a future when
         * on the bound loop). */
        akc_core_reap(core);
        int on = akc_dispatcher_on_loop(core->dispatcher);
        if (on < 0) {
            return NULL;
        }
        return on ? akc_dispatcher_done_future(core->dispatcher, Py_None)
                  : akc_done(core->st);
    }
    PyObject *loop = PyObject_CallNoArgs(core->st->get_running_loop);
    if (loop == NULL) {
        return NULL;
    }
    int in_loop = loop != Py_None;
    Py_DECREF(loop);
    if (in_loop) {
        if (akc_core_check_loop(core, "close") < 0) {
            return NULL;
        }
        return core_close_future(core);
    }
    /* Plain synchronous code (no loop on this thread): wait here. */
    core_wait_closed(core);
    akc_core_reap(core);
    return akc_done(core->st);
}

int
akc_core_detach(akc_core *core, void *orphans)
{
    akc_poller *p = core->poller;
    if (p == NULL) {
        return 0;
    }
    core->poller = NULL;
    if (p->claimed) {
        /* atexit is joining the thread right now (GIL released) and
         * frees p afterwards: it only has to forget us. */
        p->core = NULL;
        return 0;
    }
    if (p->finished) {
        akc_poller_reap(p);
        return 0;
    }
    core->rk = NULL;
    akc_poller_orphan(p, orphans);
    return 1;
}

void
akc_core_finalize(akc_core *core)
{
    if (core->state != AKC_FORKED && core->state != AKC_NEW) {
        core->state = AKC_CLOSED;
        core_answer_waiters(core);
    }
}

int
akc_core_traverse(akc_core *core, visitproc visit, void *arg)
{
    Py_VISIT(core->dispatcher);
    Py_VISIT(core->error_cb);
    Py_VISIT(core->stats_cb);
    Py_VISIT(core->throttle_cb);
    Py_VISIT(core->logger);
    Py_VISIT(core->close_waiters);
    return 0;
}

void
akc_core_clear(akc_core *core)
{
    if (core->dispatcher != NULL) {
        akc_dispatcher_set_logger(core->dispatcher, NULL);
    }
    Py_CLEAR(core->logger);
    Py_CLEAR(core->error_cb);
    Py_CLEAR(core->stats_cb);
    Py_CLEAR(core->throttle_cb);
}

void
akc_core_free(akc_core *core)
{
    akc_core_clear(core);
    Py_CLEAR(core->close_waiters);
    Py_CLEAR(core->dispatcher);
    if (core->lock_ready) {
        pthread_cond_destroy(&core->closed_cond);
        pthread_mutex_destroy(&core->lock);
        core->lock_ready = 0;
    }
}

/* ---- the close waiter type ---------------------------------------- */

static PyObject *
waiter_await(CloseWaiterObject *w)
{
    akc_core *core = w->core;
    if (core == NULL || core->state != AKC_CLOSING) {
        return PyObject_GetIter(w->st->empty_tuple);
    }
    if (akc_core_check_loop(core, "close") < 0) {
        return NULL;
    }
    PyObject *fut = core_close_future(core);
    if (fut == NULL) {
        return NULL;
    }
    PyObject *it = PyObject_CallMethod(fut, "__await__", NULL);
    Py_DECREF(fut);
    return it;
}

static int
waiter_traverse(CloseWaiterObject *w, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(w));
    Py_VISIT(w->client);
    return 0;
}

static int
waiter_clear(CloseWaiterObject *w)
{
    w->core = NULL;
    Py_CLEAR(w->client);
    return 0;
}

static void
waiter_dealloc(CloseWaiterObject *w)
{
    PyTypeObject *tp = Py_TYPE(w);
    PyObject_GC_UnTrack(w);
    waiter_clear(w);
    tp->tp_free(w);
    Py_DECREF(tp);
}

static PyType_Slot waiter_slots[] = {
    {Py_tp_dealloc, waiter_dealloc},
    {Py_tp_traverse, waiter_traverse},
    {Py_tp_clear, waiter_clear},
    {Py_am_await, waiter_await},
    {Py_tp_doc, "Awaitable returned by close() off the event loop: awaiting "
                "it on the client's loop waits until the client is closed."},
    {0, NULL},
};

static PyType_Spec waiter_spec = {
    .name = "aiokafka_c._core._CloseWaiter",
    .basicsize = sizeof(CloseWaiterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = waiter_slots,
};

int
akc_lifecycle_setup_types(PyObject *module, akc_state *st)
{
    st->CloseWaiterType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &waiter_spec, NULL);
    return st->CloseWaiterType ? 0 : -1;
}
