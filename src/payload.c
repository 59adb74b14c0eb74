/* produce() arguments: values, keys, headers, partitions, timestamps and
 * delivery callbacks, checked and turned into a ProducedMessage. */
#include "payload.h"

int
akc_payload_take(PyObject *obj, const char *what, PyObject **out)
{
    if (obj == NULL || obj == Py_None) {
        *out = NULL;
        return 0;
    }
    if (PyBytes_CheckExact(obj)) {
        *out = Py_NewRef(obj);
        return 0;
    }
    if (PyUnicode_Check(obj)) {
        /* Encodes once; the UTF-8 form is cached in the str object. */
        Py_ssize_t n;
        if (PyUnicode_AsUTF8AndSize(obj, &n) == NULL) {
            return -1;
        }
        *out = Py_NewRef(obj);
        return 0;
    }
    if (PyObject_CheckBuffer(obj)) {
        *out = PyBytes_FromObject(obj);
        return *out ? 0 : -1;
    }
    PyErr_Format(PyExc_TypeError,
                 "%s must be bytes, bytearray, memoryview, str or None, "
                 "not %.100s",
                 what, Py_TYPE(obj)->tp_name);
    return -1;
}

/* Adds one header; name and value are borrowed.  Returns 0 or -1. */
static int
headers_add(PyObject *list, rd_kafka_headers_t *h, PyObject *name,
            PyObject *value)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "header names must be str, not %.100s",
                     Py_TYPE(name)->tp_name);
        return -1;
    }
    Py_ssize_t nlen;
    const char *n = PyUnicode_AsUTF8AndSize(name, &nlen);
    if (n == NULL) {
        return -1;
    }
    PyObject *v = NULL;
    if (value != Py_None) {
        if (PyUnicode_Check(value)) {
            v = PyUnicode_AsUTF8String(value);
        }
        else if (PyObject_CheckBuffer(value)) {
            v = PyBytes_FromObject(value);
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "header %R: value must be bytes, str or None, not "
                         "%.100s",
                         name, Py_TYPE(value)->tp_name);
            return -1;
        }
        if (v == NULL) {
            return -1;
        }
    }
    rd_kafka_resp_err_t err = rd_kafka_header_add(
        h, n, nlen, v ? PyBytes_AS_STRING(v) : NULL,
        v ? PyBytes_GET_SIZE(v) : 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        Py_XDECREF(v);
        PyErr_Format(PyExc_ValueError, "cannot add header %R: %s", name,
                     rd_kafka_err2str(err));
        return -1;
    }
    PyObject *pair = PyTuple_Pack(2, name, v ? v : Py_None);
    Py_XDECREF(v);
    if (pair == NULL) {
        return -1;
    }
    int rc = PyList_Append(list, pair);
    Py_DECREF(pair);
    return rc;
}

/* Adds headers[i], a (name, value) pair.  pair is a new reference held
 * for the call: adding runs user code (a value's __buffer__), which may
 * change the caller's container.  Returns 0 or -1. */
static int
headers_add_pair(PyObject *list, rd_kafka_headers_t *h, Py_ssize_t i,
                 PyObject *pair)
{
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_Format(PyExc_TypeError,
                     "headers[%zd] must be a (name, value) tuple, not "
                     "%.100s",
                     i, Py_TYPE(pair)->tp_name);
        return -1;
    }
    /* A tuple is immutable: its items live as long as the pair. */
    return headers_add(list, h, PyTuple_GET_ITEM(pair, 0),
                       PyTuple_GET_ITEM(pair, 1));
}

int
akc_headers_build(PyObject *headers, PyObject **pylist,
                  rd_kafka_headers_t **chdrs)
{
    *pylist = NULL;
    *chdrs = NULL;
    if (headers == NULL || headers == Py_None) {
        return 0;
    }
    PyObject *items = NULL;
    /* A snapshot we own: a tuple of the pairs, whatever user code does to
     * the caller's list or dict meanwhile. */
    if (PyDict_Check(headers)) {
        PyObject *l = PyDict_Items(headers);
        items = l ? PySequence_Tuple(l) : NULL;
        Py_XDECREF(l);
    }
    else if (PyList_Check(headers) || PyTuple_Check(headers)) {
        items = PySequence_Tuple(headers);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "headers must be a list of (str, bytes) pairs or a "
                     "dict, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return -1;
    }
    if (items == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    PyObject *list = PyList_New(0);
    rd_kafka_headers_t *h = rd_kafka_headers_new((size_t)n);
    if (list == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (headers_add_pair(list, h, i, PyTuple_GET_ITEM(items, i)) < 0) {
            goto error;
        }
    }
    Py_DECREF(items);
    *pylist = list;
    *chdrs = h;
    return 0;
error:
    Py_XDECREF(list);
    Py_DECREF(items);
    rd_kafka_headers_destroy(h);
    return -1;
}

void
akc_produce_arg_names(akc_state *st, int nowait, PyObject **names)
{
    names[ARG_TOPIC] = st->str_topic;
    names[ARG_VALUE] = st->str_value;
    names[ARG_KEY] = st->str_key;
    names[ARG_PARTITION] = st->str_partition;
    names[ARG_TIMESTAMP] = st->str_timestamp;
    names[ARG_HEADERS] = st->str_headers;
    names[ARG_ON_DELIVERY] = st->str_on_delivery;
    names[ARG_DISPATCH] = nowait ? st->str_dispatch : NULL;
    names[NARGS] = NULL;
}

/* partition: None/absent -> any (-1), else an int in [-1, INT32_MAX]. */
static int
arg_partition(PyObject *arg, int32_t *out)
{
    *out = RD_KAFKA_PARTITION_UA;
    if (arg == NULL || arg == Py_None) {
        return 0;
    }
    if (!PyLong_Check(arg) || PyBool_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "partition must be int, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return -1;
    }
    long v = PyLong_AsLong(arg);
    if ((v == -1 && PyErr_Occurred()) || v < -1 || v > INT32_MAX) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "partition must be -1 (any) or a partition number "
                        ">= 0");
        return -1;
    }
    *out = (int32_t)v;
    return 0;
}

/* timestamp: None/absent/0 -> now, else milliseconds since the epoch. */
static int
arg_timestamp(PyObject *arg, int64_t *out)
{
    *out = 0;
    if (arg == NULL || arg == Py_None) {
        return 0;
    }
    if (!PyLong_Check(arg) || PyBool_Check(arg)) {
        PyErr_Format(PyExc_TypeError,
                     "timestamp must be int (milliseconds since the epoch), "
                     "not %.100s",
                     Py_TYPE(arg)->tp_name);
        return -1;
    }
    long long v = PyLong_AsLongLong(arg);
    if ((v == -1 && PyErr_Occurred()) || v < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "timestamp must be >= 0 milliseconds since the epoch "
                        "(0: now)");
        return -1;
    }
    *out = v;
    return 0;
}

/* on_delivery and dispatch: *cb is borrowed (NULL for none). */
static int
arg_callback(akc_state *st, PyObject **a, int nowait, PyObject **cb,
             int *poll_thread)
{
    *cb = a[ARG_ON_DELIVERY] == Py_None ? NULL : a[ARG_ON_DELIVERY];
    *poll_thread = 0;
    if (*cb != NULL && !PyCallable_Check(*cb)) {
        PyErr_Format(PyExc_TypeError,
                     "on_delivery must be callable or None, not %.100s",
                     Py_TYPE(*cb)->tp_name);
        return -1;
    }
    PyObject *disp = nowait ? a[ARG_DISPATCH] : NULL;
    if (disp == NULL) {
        return 0;
    }
    if (PyUnicode_Check(disp) &&
        PyUnicode_Compare(disp, st->str_poll_thread) == 0) {
        *poll_thread = 1;
        return 0;
    }
    if (PyUnicode_Check(disp) && PyUnicode_Compare(disp, st->str_loop) == 0) {
        return 0;
    }
    if (!PyErr_Occurred()) {
        PyErr_Format(PyUnicode_Check(disp) ? PyExc_ValueError
                                           : PyExc_TypeError,
                     "dispatch must be 'loop' or 'poll_thread', not %R",
                     disp);
    }
    return -1;
}

ProducedMessage *
akc_produce_build_message(akc_state *st, PyObject **a, int nowait)
{
    PyObject *topic = a[ARG_TOPIC], *cb;
    int32_t partition;
    int64_t timestamp;
    int poll_thread;
    if (!PyUnicode_Check(topic)) {
        PyErr_Format(PyExc_TypeError, "topic must be str, not %.100s",
                     Py_TYPE(topic)->tp_name);
        return NULL;
    }
    if (arg_partition(a[ARG_PARTITION], &partition) < 0 ||
        arg_timestamp(a[ARG_TIMESTAMP], &timestamp) < 0 ||
        arg_callback(st, a, nowait, &cb, &poll_thread) < 0) {
        return NULL;
    }
    ProducedMessage *pm = akc_message_new_produced(st);
    if (pm == NULL) {
        return NULL;
    }
    MessageObject *m = &pm->base;
    /* An exact str (a subclass's copy): its hash and equality in the
     * topic cache must not run Python code while the message is queued. */
    m->topic = PyUnicode_CheckExact(topic) ? Py_NewRef(topic)
                                           : PyUnicode_FromObject(topic);
    if (m->topic == NULL) {
        goto error;
    }
    m->partition = partition;
    m->timestamp = timestamp;
    pm->dispatch_poll_thread = (char)poll_thread;
    if (cb != NULL) {
        pm->on_delivery = Py_NewRef(cb);
        /* The callback runs in the context of this call, like a future's
         * done-callback would. */
        pm->context = PyContext_CopyCurrent();
        if (pm->context == NULL) {
            goto error;
        }
    }
    if (akc_payload_take(a[ARG_VALUE], "value", &m->value) < 0 ||
        akc_payload_take(a[ARG_KEY], "key", &m->key) < 0 ||
        akc_headers_build(a[ARG_HEADERS], &m->headers, &pm->c_headers) < 0) {
        goto error;
    }
    return pm;
error:
    Py_DECREF(m);
    return NULL;
}
