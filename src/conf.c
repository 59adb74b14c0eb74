/* Turning the user's config dict into a librdkafka configuration. */
#include "conf.h"
#include "errors.h"

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
conf_take_callback(const char *name, PyObject *value, akc_callbacks *cbs)
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
        int has = PyObject_HasAttrString(value, "log");
        if (!has) {
            PyErr_Format(PyExc_TypeError,
                         "config property 'logger' must be a "
                         "logging.Logger (something with a log() method), "
                         "not %.100s",
                         Py_TYPE(value)->tp_name);
            return -1;
        }
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

rd_kafka_conf_t *
akc_conf_build(akc_state *st, PyObject *config, akc_callbacks *cbs)
{
    memset(cbs, 0, sizeof(*cbs));
    if (!PyDict_Check(config)) {
        PyErr_Format(PyExc_TypeError,
                     "config must be a dict of librdkafka properties, not "
                     "%.100s",
                     Py_TYPE(config)->tp_name);
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(config, &pos, &k, &v)) {
        if (!PyUnicode_Check(k)) {
            PyErr_Format(PyExc_TypeError,
                         "config keys must be str, not %.100s",
                         Py_TYPE(k)->tp_name);
            goto error;
        }
        const char *name = PyUnicode_AsUTF8(k);
        if (name == NULL) {
            goto error;
        }
        int rc = conf_take_callback(name, v, cbs);
        if (rc < 0) {
            goto error;
        }
        if (rc > 0) {
            continue;
        }
        PyObject *s = conf_value_str(name, v);
        if (s == NULL) {
            goto error;
        }
        const char *sval = PyUnicode_AsUTF8(s);
        if (sval == NULL) {
            Py_DECREF(s);
            goto error;
        }
        rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, name, sval, errstr,
                                                    sizeof(errstr));
        Py_DECREF(s);
        if (res != RD_KAFKA_CONF_OK) {
            akc_raise(st, RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
            goto error;
        }
    }
    if (cbs->logger == NULL) {
        cbs->logger = Py_NewRef(st->default_logger);
    }
    return conf;
error:
    rd_kafka_conf_destroy(conf);
    akc_callbacks_clear(cbs);
    return NULL;
}
