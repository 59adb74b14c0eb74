/* Turning the user's config dict into a librdkafka configuration. */
#include "conf.h"
#include "errors.h"

#include <errno.h>
#include <stdlib.h>

void
akc_callbacks_clear(akc_callbacks *cbs)
{
    Py_CLEAR(cbs->error_cb);
    Py_CLEAR(cbs->stats_cb);
    Py_CLEAR(cbs->throttle_cb);
    Py_CLEAR(cbs->logger);
}

/* Takes a Python callback property.  Returns 1 if name is one, 0 if not,
 * -1 with TypeError if its value is unusable. */
static int
conf_take_callback(akc_state *st, const char *name, PyObject *value,
                   akc_callbacks *cbs)
{
    PyObject **slot;
    if (strcmp(name, "error_cb") == 0) {
        slot = &cbs->error_cb;
    }
    else if (strcmp(name, "stats_cb") == 0) {
        slot = &cbs->stats_cb;
    }
    else if (strcmp(name, "throttle_cb") == 0) {
        slot = &cbs->throttle_cb;
    }
    else if (strcmp(name, "logger") == 0) {
        if (value == Py_None) {
            return 1;
        }
        PyObject *log = PyObject_GetAttr(value, st->str_log);
        if (log == NULL || !PyCallable_Check(log)) {
            Py_XDECREF(log);
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "config property 'logger' must be a "
                         "logging.Logger (something with a log() method), "
                         "not %.100s",
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        Py_DECREF(log);
        Py_XSETREF(cbs->logger, Py_NewRef(value));
        return 1;
    }
    else {
        return 0;
    }
    if (value == Py_None) {
        return 1;
    }
    if (!PyCallable_Check(value)) {
        PyErr_Format(PyExc_TypeError,
                     "config property '%s' must be callable, not %.100s",
                     name, Py_TYPE(value)->tp_name);
        return -1;
    }
    Py_XSETREF(*slot, Py_NewRef(value));
    return 1;
}

/* Returns the librdkafka string form of a property value as a new str,
 * or NULL with TypeError. */
static PyObject *
conf_value_str(const char *name, PyObject *value)
{
    if (PyBool_Check(value)) {
        return PyUnicode_FromString(value == Py_True ? "true" : "false");
    }
    if (PyUnicode_Check(value)) {
        return Py_NewRef(value);
    }
    if (PyLong_Check(value) || PyFloat_Check(value)) {
        return PyObject_Str(value);
    }
    PyErr_Format(PyExc_TypeError,
                 "config property '%s' must be str, int, float or bool, "
                 "not %.100s",
                 name, Py_TYPE(value)->tp_name);
    return NULL;
}

/* A new list of (key, value) pairs of config, or NULL with TypeError. */
PyObject *
akc_conf_items(PyObject *config)
{
    if (PyDict_Check(config)) {
        return PyDict_Items(config);
    }
    if (PyMapping_Check(config)) {
        PyObject *items = PyMapping_Items(config);
        if (items != NULL) {
            return items;
        }
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL; /* the mapping's own items() failed: say why */
        }
        PyErr_Clear();
    }
    PyErr_Format(PyExc_TypeError,
                 "config must be a mapping (a dict) of librdkafka "
                 "properties, not %.100s",
                 Py_TYPE(config)->tp_name);
    return NULL;
}

/* A number must reach librdkafka as given: its parser wraps integers to
 * 32 bits and cuts "2.9" or "1e+20" short.  After setting name from
 * value, reads the stored value back; if it reads as an integer that is
 * not value, raises ValueError.  (Booleans and strings read back in
 * other forms and are left to librdkafka.)  Returns 0 or -1. */
static int
conf_check_number(rd_kafka_conf_t *conf, const char *name, PyObject *value)
{
    char buf[64];
    size_t size = sizeof(buf);
    if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK) {
        return 0;
    }
    char *end;
    errno = 0;
    long long stored = strtoll(buf, &end, 10);
    if (buf[0] == '\0' || *end != '\0' || errno != 0) {
        return 0; /* not an integer property */
    }
    int same;
    if (PyFloat_Check(value)) {
        same = PyFloat_AS_DOUBLE(value) == (double)stored;
    }
    else {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        same = !overflow && v == stored;
    }
    if (!same) {
        PyErr_Format(PyExc_ValueError,
                     "config property '%s': %R is not a value it can hold "
                     "(an integer property; librdkafka would store %s)",
                     name, value, buf);
        return -1;
    }
    return 0;
}

/* Applies one (key, value) pair, both owned by the caller's snapshot.
 * Returns 0 or -1 with an exception. */
static int
conf_apply(akc_state *st, rd_kafka_conf_t *conf, PyObject *pair,
           akc_callbacks *cbs)
{
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "config items() must give (key, value) pairs");
        return -1;
    }
    PyObject *k = PyTuple_GET_ITEM(pair, 0), *v = PyTuple_GET_ITEM(pair, 1);
    if (!PyUnicode_Check(k)) {
        PyErr_Format(PyExc_TypeError, "config keys must be str, not %.100s",
                     Py_TYPE(k)->tp_name);
        return -1;
    }
    if (akc_check_c_string(k, "a config key") < 0) {
        return -1;
    }
    const char *name = PyUnicode_AsUTF8(k);
    if (name == NULL) {
        return -1;
    }
    int rc = conf_take_callback(st, name, v, cbs);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    cbs->idempotence_set |= strcmp(name, "enable.idempotence") == 0;
    cbs->acks_set |= strcmp(name, "acks") == 0 ||
                     strcmp(name, "request.required.acks") == 0;
    PyObject *s = conf_value_str(name, v);
    if (s == NULL) {
        return -1;
    }
    const char *sval = akc_check_c_string(s, name) < 0 ? NULL
                                                        : PyUnicode_AsUTF8(s);
    char errstr[512];
    rc = 0;
    if (sval == NULL) {
        rc = -1;
    }
    else if (rd_kafka_conf_set(conf, name, sval, errstr, sizeof(errstr)) !=
             RD_KAFKA_CONF_OK) {
        akc_raise(st, RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
        rc = -1;
    }
    else if (!PyBool_Check(v) && (PyLong_Check(v) || PyFloat_Check(v))) {
        rc = conf_check_number(conf, name, v);
    }
    Py_DECREF(s);
    return rc;
}

rd_kafka_conf_t *
akc_conf_build(akc_state *st, PyObject *config, akc_callbacks *cbs)
{
    memset(cbs, 0, sizeof(*cbs));
    PyObject *items = akc_conf_items(config);
    if (items == NULL) {
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    Py_ssize_t n = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < n; i++) {
        /* Hold the pair: conf_apply runs user code (__str__, __getattr__)
         * that may change the list's owner, never the list itself. */
        PyObject *pair = Py_NewRef(PyList_GET_ITEM(items, i));
        int rc = conf_apply(st, conf, pair, cbs);
        Py_DECREF(pair);
        if (rc < 0) {
            goto error;
        }
    }
    Py_DECREF(items);
    if (cbs->logger == NULL) {
        cbs->logger = Py_NewRef(st->default_logger);
    }
    return conf;
error:
    Py_DECREF(items);
    rd_kafka_conf_destroy(conf);
    akc_callbacks_clear(cbs);
    return NULL;
}

int64_t
akc_conf_get_int(rd_kafka_conf_t *conf, const char *name, int64_t dflt)
{
    char buf[64];
    size_t size = sizeof(buf);
    if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK) {
        return dflt;
    }
    return strtoll(buf, NULL, 10);
}
