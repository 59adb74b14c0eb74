/* Values, keys and headers of produced messages. */
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
    if (PyDict_Check(headers)) {
        items = PyDict_Items(headers);
    }
    else if (PyList_Check(headers) || PyTuple_Check(headers)) {
        items = PySequence_Fast(headers, "headers");
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
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    PyObject *list = PyList_New(0);
    rd_kafka_headers_t *h = rd_kafka_headers_new((size_t)n);
    if (list == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(items, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "headers[%zd] must be a (name, value) tuple, not "
                         "%.100s",
                         i, Py_TYPE(pair)->tp_name);
            goto error;
        }
        if (headers_add(list, h, PyTuple_GET_ITEM(pair, 0),
                        PyTuple_GET_ITEM(pair, 1)) < 0) {
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
