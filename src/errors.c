/* KafkaError and KafkaException.
 *
 * KafkaError mirrors confluent-kafka-python's class of the same name so
 * that code written against the Confluent blog keeps working: accessor
 * methods code()/name()/str()/retriable()/fatal()/txn_requires_abort(),
 * and every librdkafka error code as a class attribute (_MSG_TIMED_OUT,
 * UNKNOWN_TOPIC_OR_PART, ...). */
#include "errors.h"

#include <stddef.h>

static int
error_code_is_retriable(rd_kafka_resp_err_t code)
{
    switch (code) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return 1;
    default:
        return 0;
    }
}

PyObject *
akc_error_new(akc_state *st, rd_kafka_resp_err_t code, const char *reason,
              int fatal, int retriable, int txn_requires_abort)
{
    KafkaErrorObject *self = PyObject_New(KafkaErrorObject,
                                          st->KafkaErrorType);
    if (self == NULL) {
        return NULL;
    }
    self->code = code;
    self->reason = NULL;
    self->fatal = (char)!!fatal;
    self->retriable = (char)!!retriable;
    self->txn_requires_abort = (char)!!txn_requires_abort;
    if (reason != NULL && reason[0] != '\0') {
        self->reason = PyUnicode_DecodeUTF8(reason, strlen(reason),
                                            "replace");
        if (self->reason == NULL) {
            Py_DECREF(self);
            return NULL;
        }
    }
    return (PyObject *)self;
}

PyObject *
akc_error_from_code(akc_state *st, rd_kafka_resp_err_t code,
                    const char *reason)
{
    return akc_error_new(st, code, reason, 0, error_code_is_retriable(code),
                         0);
}

PyObject *
akc_exception_new(akc_state *st, PyObject *kafka_error)
{
    return PyObject_CallOneArg(st->KafkaException, kafka_error);
}

PyObject *
akc_raise(akc_state *st, rd_kafka_resp_err_t code, const char *reason)
{
    PyObject *err = akc_error_from_code(st, code, reason);
    if (err == NULL) {
        return NULL;
    }
    PyObject *exc = akc_exception_new(st, err);
    Py_DECREF(err);
    if (exc == NULL) {
        return NULL;
    }
    PyErr_SetObject(st->KafkaException, exc);
    Py_DECREF(exc);
    return NULL;
}

PyObject *
akc_exception_from_error(akc_state *st, const rd_kafka_error_t *error,
                         const char *context)
{
    const char *text = rd_kafka_error_string(error);
    PyObject *reason = NULL;
    if (context != NULL) {
        reason = PyUnicode_FromFormat("%s: %s", context, text);
        if (reason == NULL) {
            return NULL;
        }
        text = PyUnicode_AsUTF8(reason);
        if (text == NULL) {
            Py_DECREF(reason);
            return NULL;
        }
    }
    PyObject *e = akc_error_new(st, rd_kafka_error_code(error), text,
                                rd_kafka_error_is_fatal(error),
                                rd_kafka_error_is_retriable(error),
                                rd_kafka_error_txn_requires_abort(error));
    Py_XDECREF(reason);
    if (e == NULL) {
        return NULL;
    }
    PyObject *exc = akc_exception_new(st, e);
    Py_DECREF(e);
    return exc;
}

/* KafkaError(error, reason=None, fatal=False, retriable=False,
 *            txn_requires_abort=False) */
static PyObject *
kafkaerror_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"error", "reason", "fatal", "retriable",
                             "txn_requires_abort", NULL};
    int code;
    PyObject *reason = Py_None;
    int fatal = 0, retriable = 0, txn = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|Oppp:KafkaError", kwlist,
                                     &code, &reason, &fatal, &retriable,
                                     &txn)) {
        return NULL;
    }
    if (reason != Py_None && !PyUnicode_Check(reason)) {
        PyErr_Format(PyExc_TypeError,
                     "KafkaError reason must be str or None, not %.100s",
                     Py_TYPE(reason)->tp_name);
        return NULL;
    }
    KafkaErrorObject *self = (KafkaErrorObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->code = (rd_kafka_resp_err_t)code;
    self->reason = reason == Py_None ? NULL : Py_NewRef(reason);
    self->fatal = (char)fatal;
    self->retriable = (char)retriable;
    self->txn_requires_abort = (char)txn;
    return (PyObject *)self;
}

static void
kafkaerror_dealloc(KafkaErrorObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_CLEAR(self->reason);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
kafkaerror_code(KafkaErrorObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(self->code);
}

static PyObject *
kafkaerror_name(KafkaErrorObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(rd_kafka_err2name(self->code));
}

static PyObject *
kafkaerror_str(KafkaErrorObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->reason != NULL) {
        return Py_NewRef(self->reason);
    }
    return PyUnicode_FromString(rd_kafka_err2str(self->code));
}

static PyObject *
kafkaerror_tp_str(PyObject *self)
{
    return kafkaerror_str((KafkaErrorObject *)self, NULL);
}

static PyObject *
kafkaerror_fatal(KafkaErrorObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->fatal);
}

static PyObject *
kafkaerror_retriable(KafkaErrorObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->retriable);
}

static PyObject *
kafkaerror_txn_requires_abort(KafkaErrorObject *self,
                              PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->txn_requires_abort);
}

static PyObject *
kafkaerror_repr(KafkaErrorObject *self)
{
    PyObject *text = kafkaerror_str(self, NULL);
    if (text == NULL) {
        return NULL;
    }
    PyObject *r = PyUnicode_FromFormat(
        "KafkaError{code=%s,val=%d,str=\"%U\"%s%s}",
        rd_kafka_err2name(self->code), (int)self->code, text,
        self->fatal ? ",fatal=True" : "",
        self->retriable ? ",retriable=True" : "");
    Py_DECREF(text);
    return r;
}

static PyObject *
kafkaerror_richcompare(PyObject *a, PyObject *b, int op)
{
    if (op != Py_EQ && op != Py_NE) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long ca, cb;
    PyTypeObject *tp = Py_TYPE(a);
    if (PyObject_TypeCheck(a, tp) && PyObject_TypeCheck(b, tp)) {
        ca = ((KafkaErrorObject *)a)->code;
        cb = ((KafkaErrorObject *)b)->code;
    }
    else if (PyLong_Check(b)) {
        ca = ((KafkaErrorObject *)a)->code;
        cb = PyLong_AsLong(b);
        if (cb == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            Py_RETURN_NOTIMPLEMENTED;
        }
    }
    else {
        Py_RETURN_NOTIMPLEMENTED;
    }
    return PyBool_FromLong((ca == cb) == (op == Py_EQ));
}

static Py_hash_t
kafkaerror_hash(KafkaErrorObject *self)
{
    /* Equal to an int of the same code, so hash like that int. */
    Py_hash_t h = (Py_hash_t)self->code;
    return h == -1 ? -2 : h;
}

static PyObject *
kafkaerror_reduce(KafkaErrorObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("O(iOOOO)", Py_TYPE(self), (int)self->code,
                         self->reason ? self->reason : Py_None,
                         self->fatal ? Py_True : Py_False,
                         self->retriable ? Py_True : Py_False,
                         self->txn_requires_abort ? Py_True : Py_False);
}

static PyMethodDef kafkaerror_methods[] = {
    {"code", (PyCFunction)kafkaerror_code, METH_NOARGS,
     "code($self, /)\n--\n\nThe error code (an int; compare with the "
     "KafkaError.<NAME> constants)."},
    {"name", (PyCFunction)kafkaerror_name, METH_NOARGS,
     "name($self, /)\n--\n\nThe error code's name, e.g. '_MSG_TIMED_OUT'."},
    {"str", (PyCFunction)kafkaerror_str, METH_NOARGS,
     "str($self, /)\n--\n\nA human-readable description of the error."},
    {"fatal", (PyCFunction)kafkaerror_fatal, METH_NOARGS,
     "fatal($self, /)\n--\n\nTrue if the client instance is unusable."},
    {"retriable", (PyCFunction)kafkaerror_retriable, METH_NOARGS,
     "retriable($self, /)\n--\n\nTrue if retrying the operation may "
     "succeed."},
    {"txn_requires_abort", (PyCFunction)kafkaerror_txn_requires_abort,
     METH_NOARGS,
     "txn_requires_abort($self, /)\n--\n\nTrue if the current transaction "
     "must be aborted."},
    {"__reduce__", (PyCFunction)kafkaerror_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot kafkaerror_slots[] = {
    {Py_tp_new, kafkaerror_new},
    {Py_tp_dealloc, kafkaerror_dealloc},
    {Py_tp_repr, kafkaerror_repr},
    {Py_tp_str, kafkaerror_tp_str},
    {Py_tp_richcompare, kafkaerror_richcompare},
    {Py_tp_hash, kafkaerror_hash},
    {Py_tp_methods, kafkaerror_methods},
    {Py_tp_doc,
     "KafkaError(error, reason=None, fatal=False, retriable=False, "
     "txn_requires_abort=False)\n--\n\n"
     "A Kafka or librdkafka error.  Carried by KafkaException.args[0] and "
     "passed to delivery callbacks and error_cb."},
    {0, NULL},
};

static PyType_Spec kafkaerror_spec = {
    .name = "aiokafka_c.KafkaError",
    .basicsize = sizeof(KafkaErrorObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = kafkaerror_slots,
};

/* Adds every librdkafka error code as a class attribute. */
static int
add_error_constants(PyTypeObject *tp)
{
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    PyObject *dict = tp->tp_dict;
    for (size_t i = 0; i < n; i++) {
        if (descs[i].name == NULL) {
            continue;
        }
        PyObject *v = PyLong_FromLong(descs[i].code);
        if (v == NULL) {
            return -1;
        }
        int rc = PyDict_SetItemString(dict, descs[i].name, v);
        Py_DECREF(v);
        if (rc < 0) {
            return -1;
        }
    }
    PyType_Modified(tp);
    return 0;
}

int
akc_errors_setup_types(PyObject *module, akc_state *st)
{
    st->KafkaErrorType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &kafkaerror_spec, NULL);
    if (st->KafkaErrorType == NULL) {
        return -1;
    }
    if (add_error_constants(st->KafkaErrorType) < 0) {
        return -1;
    }
    if (PyModule_AddType(module, st->KafkaErrorType) < 0) {
        return -1;
    }
    PyObject *doc = PyUnicode_FromString(
        "Raised for Kafka and librdkafka errors; args[0] is the KafkaError.");
    if (doc == NULL) {
        return -1;
    }
    PyObject *dict = Py_BuildValue("{sO}", "__doc__", doc);
    Py_DECREF(doc);
    if (dict == NULL) {
        return -1;
    }
    st->KafkaException = PyErr_NewException("aiokafka_c.KafkaException",
                                            NULL, dict);
    Py_DECREF(dict);
    if (st->KafkaException == NULL) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "KafkaException", st->KafkaException);
}
