/* produce_batch(): the messages of one call go to librdkafka one by one
 * (each with its own key, headers and timestamp), and one future answers
 * for all of them once the last is reported: the loop sees one completion
 * per batch, not one per message.  Each message's outcome is its own: a
 * failed message carries its error in the result list; only bad input
 * raises, before anything is sent. */
#include "batch.h"
#include "errors.h"
#include "outbox.h"
#include "payload.h"
#include "transactions.h"

typedef struct {
    PyObject_HEAD
    PyObject *future;     /* answered with results */
    PyObject *results;    /* list of Message, in the call's order */
    Py_ssize_t remaining; /* messages not yet reported */
    Py_ssize_t failed;
    PyObject *first_error; /* KafkaError of the first failure, or NULL */
} BatchObject;

static int
batch_traverse(BatchObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->future);
    Py_VISIT(self->results);
    Py_VISIT(self->first_error);
    return 0;
}

static int
batch_clear(BatchObject *self)
{
    Py_CLEAR(self->future);
    Py_CLEAR(self->results);
    Py_CLEAR(self->first_error);
    return 0;
}

static void
batch_dealloc(BatchObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    batch_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot batch_slots[] = {
    {Py_tp_dealloc, batch_dealloc},
    {Py_tp_traverse, batch_traverse},
    {Py_tp_clear, batch_clear},
    {0, NULL},
};

static PyType_Spec batch_spec = {
    .name = "aiokafka_c._Batch",
    .basicsize = sizeof(BatchObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = batch_slots,
};

int
akc_batch_setup_types(PyObject *module, akc_state *st)
{
    st->BatchType = (PyTypeObject *)PyType_FromModuleAndSpec(module,
                                                             &batch_spec, NULL);
    return st->BatchType ? 0 : -1;
}

/* ---- completion ------------------------------------------------------ */

void
akc_batch_message_done(DispatcherObject *d, ProducedMessage *pm)
{
    BatchObject *b = (BatchObject *)pm->batch;
    pm->batch = NULL;
    if (pm->base.error != NULL) {
        if (b->failed++ == 0) {
            b->first_error = Py_NewRef(pm->base.error);
        }
    }
    if (--b->remaining == 0 && akc_dispatcher_push(d, (PyObject *)b) < 0) {
        PyErr_WriteUnraisable((PyObject *)b);
    }
    Py_DECREF(b);
}

void
akc_batch_deliver(DispatcherObject *d, PyObject *item)
{
    BatchObject *b = (BatchObject *)item;
    PyObject *fut = b->future, *results = b->results;
    b->future = b->results = NULL;
    int rc = fut ? akc_dispatcher_resolve(d, fut, results) : 0;
    if (rc < 0) {
        PyErr_WriteUnraisable(fut);
    }
    if (rc <= 0 && b->failed > 0) {
        /* Nobody awaits the batch any more (cancelled): its failures
         * must still be seen. */
        PyObject *text = b->first_error ? PyObject_Str(b->first_error) : NULL;
        PyErr_Clear();
        akc_dispatcher_logf(d, AKC_LOG_ERROR,
                            "aiokafka_c: %zd of %zd messages of a "
                            "produce_batch() that no one awaits any more "
                            "failed; the first: %S",
                            b->failed, PyList_GET_SIZE(results),
                            text ? text : Py_None);
        Py_XDECREF(text);
    }
    Py_XDECREF(fut);
    Py_XDECREF(results);
}

/* ---- the call ---------------------------------------------------------- */

/* Re-raises the pending exception with "produce_batch(): messages[i]: "
 * in front (same type). */
static void
reraise_at(Py_ssize_t i)
{
    PyObject *exc = akc_err_take();
    if (exc == NULL) {
        return;
    }
    PyObject *text = PyObject_Str(exc);
    if (text != NULL) {
        PyErr_Format((PyObject *)Py_TYPE(exc),
                     "produce_batch(): messages[%zd]: %U", i, text);
        PyObject *now = akc_err_take();
        if (now != NULL) {
            PyException_SetCause(now, Py_NewRef(exc));
            akc_err_restore(now);
        }
    }
    else {
        akc_err_restore(Py_NewRef(exc));
    }
    Py_XDECREF(text);
    Py_DECREF(exc);
}

/* The message of one element: a value, or a tuple (key, value[, headers
 * [, timestamp]]). */
static ProducedMessage *
build_one(akc_state *st, PyObject *topic, PyObject *partition, PyObject *el)
{
    PyObject *a[NARGS] = {NULL};
    a[ARG_TOPIC] = topic;
    a[ARG_PARTITION] = partition;
    if (PyTuple_Check(el)) {
        Py_ssize_t n = PyTuple_GET_SIZE(el);
        if (n < 2 || n > 4) {
            PyErr_Format(PyExc_TypeError,
                         "a tuple is (key, value[, headers[, timestamp]]), "
                         "not %zd items",
                         n);
            return NULL;
        }
        a[ARG_KEY] = PyTuple_GET_ITEM(el, 0);
        a[ARG_VALUE] = PyTuple_GET_ITEM(el, 1);
        if (n > 2 && PyTuple_GET_ITEM(el, 2) != Py_None) {
            a[ARG_HEADERS] = PyTuple_GET_ITEM(el, 2);
        }
        if (n > 3 && PyTuple_GET_ITEM(el, 3) != Py_None) {
            a[ARG_TIMESTAMP] = PyTuple_GET_ITEM(el, 3);
        }
    }
    else {
        a[ARG_VALUE] = el;
    }
    return akc_produce_build_message(st, a, 0);
}

/* A message librdkafka refused: it fails with the refusal (the
 * exception is taken). */
static void
fail_refused(akc_state *st, ProducedMessage *pm)
{
    PyObject *exc = akc_err_take();
    PyObject *err = NULL;
    if (exc != NULL && PyObject_TypeCheck(exc, (PyTypeObject *)st->KafkaException)) {
        PyObject *args = PyObject_GetAttrString(exc, "args");
        if (args != NULL && PyTuple_Check(args) && PyTuple_GET_SIZE(args) > 0 &&
            PyObject_TypeCheck(PyTuple_GET_ITEM(args, 0), st->KafkaErrorType)) {
            err = Py_NewRef(PyTuple_GET_ITEM(args, 0));
        }
        Py_XDECREF(args);
        PyErr_Clear();
    }
    if (err != NULL) {
        Py_XSETREF(pm->base.error, err);
    }
    else {
        PyObject *text = exc ? PyObject_Str(exc) : NULL;
        const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
        PyErr_Clear();
        if (akc_message_set_failed(st, &pm->base, RD_KAFKA_RESP_ERR__FAIL,
                                   s ? s : "the message was not sent") < 0) {
            PyErr_Clear();
        }
        Py_XDECREF(text);
    }
    Py_XDECREF(exc);
}

PyObject *
akc_producer_produce_batch(ProducerObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *method = "produce_batch";
    akc_state *st = self->core.st;
    PyObject *names[] = {st->str_topic, st->str_messages, st->str_partition,
                         NULL};
    PyObject *a[3] = {NULL};
    if (akc_parse_args(method, args, nargs, kwnames, names, 2, 2, a) < 0 ||
        akc_core_check_open(&self->core, method) < 0 ||
        akc_core_check_loop(&self->core, method) < 0 ||
        (self->transactional && akc_txn_check_produce(self, method) < 0)) {
        return NULL;
    }
    /* A bad topic raises, like any bad input, before anything is sent. */
    if (PyUnicode_Check(a[0]) && akc_producer_check_topic(self, a[0]) < 0) {
        return NULL;
    }
    if (PyUnicode_Check(a[1]) || PyBytes_Check(a[1]) ||
        PyByteArray_Check(a[1])) {
        PyErr_Format(PyExc_TypeError,
                     "produce_batch(): messages must be a sequence of "
                     "messages, not %.100s",
                     Py_TYPE(a[1])->tp_name);
        return NULL;
    }
    /* A copy: building runs user code that must not change what we walk. */
    PyObject *items = PySequence_Tuple(a[1]);
    if (items == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError,
                         "produce_batch(): messages must be a sequence of "
                         "messages, not %.100s",
                         Py_TYPE(a[1])->tp_name);
        }
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    PyObject *results = PyList_New(n);
    if (results == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        ProducedMessage *pm = build_one(st, a[0], a[2],
                                        PyTuple_GET_ITEM(items, i));
        if (pm == NULL) {
            reraise_at(i);
            Py_DECREF(results);
            Py_DECREF(items);
            return NULL;
        }
        PyList_SET_ITEM(results, i, (PyObject *)pm);
    }
    Py_DECREF(items);
    BatchObject *b = PyObject_GC_New(BatchObject, st->BatchType);
    if (b == NULL) {
        Py_DECREF(results);
        return NULL;
    }
    b->future = NULL;
    b->results = results;
    b->remaining = n;
    b->failed = 0;
    b->first_error = NULL;
    PyObject_GC_Track(b);
    PyObject *fut = akc_dispatcher_new_future(self->core.dispatcher);
    /* Building ran user code (a buffer's __buffer__, a header container's
     * __iter__, the loop's create_future) that may have closed us: check
     * again; nothing below runs user code. */
    if (fut == NULL || akc_core_check_open(&self->core, method) < 0 ||
        (self->transactional && akc_txn_check_produce(self, method) < 0)) {
        Py_XDECREF(fut);
        Py_DECREF(b);
        return NULL;
    }
    b->future = Py_NewRef(fut);
    DispatcherObject *d = self->core.dispatcher;
    /* Holding the batch ourselves: the last report must not hand it over
     * before every message is in. */
    b->remaining++;
    for (Py_ssize_t i = 0; i < n; i++) {
        ProducedMessage *pm = (ProducedMessage *)PyList_GET_ITEM(results, i);
        pm->batch = Py_NewRef((PyObject *)b);
        if (akc_producer_enqueue(self, pm) < 0) {
            fail_refused(st, pm);
            akc_batch_message_done(d, pm);
        }
    }
    if (--b->remaining == 0 && akc_dispatcher_push(d, (PyObject *)b) < 0) {
        PyErr_WriteUnraisable((PyObject *)b);
    }
    akc_dispatcher_schedule(d);
    Py_DECREF(b);
    return fut;
}
