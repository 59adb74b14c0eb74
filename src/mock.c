/* Fault injection on the embedded mock cluster (test.mock.num.brokers). */
#include "mock.h"

#include <librdkafka/rdkafka_mock.h>

/* Returns the producer's mock cluster (borrowed), or NULL with
 * RuntimeError when it does not run on one. */
static rd_kafka_mock_cluster_t *
mock_cluster(ProducerObject *self)
{
    rd_kafka_mock_cluster_t *mc =
        self->core.rk ? rd_kafka_handle_mock_cluster(self->core.rk) : NULL;
    if (mc == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this producer does not run on librdkafka's mock "
                        "cluster (set test.mock.num.brokers), or is closed");
    }
    return mc;
}

PyObject *
akc_mock_push_errors(ProducerObject *self, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *names[] = {NULL, NULL, NULL};
    PyObject *a[2] = {NULL, NULL};
    names[0] = PyUnicode_InternFromString("errors");
    names[1] = PyUnicode_InternFromString("api_key");
    if (names[0] == NULL || names[1] == NULL) {
        goto error;
    }
    if (akc_parse_args("_mock_push_errors", args, nargs, kwnames, names, 2,
                       1, a) < 0) {
        goto error;
    }
    long api_key = 0;
    if (a[1] != NULL && (api_key = PyLong_AsLong(a[1])) == -1 &&
        PyErr_Occurred()) {
        goto error;
    }
    PyObject *seq = PySequence_Fast(a[0], "errors must be a sequence of int");
    if (seq == NULL) {
        goto error;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    rd_kafka_resp_err_t *errs = PyMem_Calloc((size_t)n + 1, sizeof(*errs));
    if (errs == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        goto error;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long code = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (code == -1 && PyErr_Occurred()) {
            PyMem_Free(errs);
            Py_DECREF(seq);
            goto error;
        }
        errs[i] = (rd_kafka_resp_err_t)code;
    }
    Py_DECREF(seq);
    rd_kafka_mock_cluster_t *mc = mock_cluster(self);
    if (mc != NULL) {
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)api_key,
                                                (size_t)n, errs);
    }
    PyMem_Free(errs);
    Py_XDECREF(names[0]);
    Py_XDECREF(names[1]);
    if (mc == NULL) {
        return NULL;
    }
    Py_RETURN_NONE;
error:
    Py_XDECREF(names[0]);
    Py_XDECREF(names[1]);
    return NULL;
}

PyObject *
akc_mock_set_broker_up(ProducerObject *self, PyObject *const *args,
                       Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "_mock_set_broker_up(broker_id, up) takes 2 "
                        "arguments");
        return NULL;
    }
    long id = PyLong_AsLong(args[0]);
    if (id == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int up = PyObject_IsTrue(args[1]);
    if (up < 0) {
        return NULL;
    }
    rd_kafka_mock_cluster_t *mc = mock_cluster(self);
    if (mc == NULL) {
        return NULL;
    }
    rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mc, (int32_t)id)
                                 : rd_kafka_mock_broker_set_down(
                                       mc, (int32_t)id);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        PyErr_Format(PyExc_ValueError, "mock broker %ld: %s", id,
                     rd_kafka_err2str(err));
        return NULL;
    }
    Py_RETURN_NONE;
}
