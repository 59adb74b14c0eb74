/* Message type: confluent-kafka-style accessor methods over the fields
 * filled in at produce time and at delivery. */
#include "message.h"
#include "errors.h"

#include <string.h>

ProducedMessage *
akc_message_new_produced(akc_state *st)
{
    /* Not GC-tracked: while in flight nothing outside the producer can
     * reach a message (produce() returns the future, not the message), and
     * once delivered it holds no future or callback, only str/bytes/
     * KafkaError values, so it can never be part of a cycle.  Tracking
     * would double the collector's work under load. */
    ProducedMessage *pm = PyObject_Malloc(sizeof(ProducedMessage));
    if (pm == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memset(pm, 0, sizeof(*pm));
    MessageObject *m = &pm->base;
    PyObject_Init((PyObject *)m, st->MessageType);
    m->offset = RD_KAFKA_OFFSET_INVALID;
    m->latency_us = -1;
    m->partition = RD_KAFKA_PARTITION_UA;
    m->tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    m->produced = 1;
    return pm;
}

int
akc_message_set_delivery(akc_state *st, MessageObject *msg,
                         const rd_kafka_message_t *rkm)
{
    rd_kafka_timestamp_type_t tstype;
    msg->partition = rkm->partition;
    msg->offset = rkm->offset;
    msg->timestamp = rd_kafka_message_timestamp(rkm, &tstype);
    msg->tstype = (int)tstype;
    msg->latency_us = rd_kafka_message_latency(rkm);
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return 0;
    }
    /* Not rd_kafka_message_errstr(): for a produced message it reads the
     * payload as if it were an error string. */
    return akc_message_set_failed(st, msg, rkm->err, NULL);
}

int
akc_message_set_failed(akc_state *st, MessageObject *msg,
                       rd_kafka_resp_err_t code, const char *reason)
{
    PyObject *err = akc_error_from_code(st, code, reason);
    if (err == NULL) {
        return -1;
    }
    Py_XSETREF(msg->error, err);
    return 0;
}

static void
message_dealloc(MessageObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->produced) {
        ProducedMessage *pm = (ProducedMessage *)self;
        /* In flight, the in-flight list owns a reference, so a message is
         * never freed while librdkafka may still read its buffers. */
        assert(pm->prev == NULL && pm->next == NULL);
        if (pm->c_headers != NULL) {
            rd_kafka_headers_destroy(pm->c_headers);
            pm->c_headers = NULL;
        }
        Py_CLEAR(pm->future);
        Py_CLEAR(pm->on_delivery);
        Py_CLEAR(pm->context);
        Py_CLEAR(pm->batch);
    }
    Py_CLEAR(self->topic);
    Py_CLEAR(self->value);
    Py_CLEAR(self->key);
    Py_CLEAR(self->headers);
    Py_CLEAR(self->error);
    /* PyObject_Free releases either layout (tp_free is PyObject_Del). */
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
or_none(PyObject *o)
{
    return Py_NewRef(o ? o : Py_None);
}

/* Values and keys given as str are kept as str (their UTF-8 buffer is
 * what librdkafka sent); the accessors return bytes like the broker
 * would. */
static PyObject *
as_bytes(PyObject *o)
{
    if (o == NULL) {
        Py_RETURN_NONE;
    }
    if (PyUnicode_Check(o)) {
        return PyUnicode_AsUTF8String(o);
    }
    return Py_NewRef(o);
}

static PyObject *
message_topic(MessageObject *self, PyObject *Py_UNUSED(ignored))
{
    return or_none(self->topic);
}

static PyObject *
message_value(MessageObject *self, PyObject *Py_UNUSED(ignored))
{
    return as_bytes(self->value);
}

static PyObject *
message_key(MessageObject *self, PyObject *Py_UNUSED(ignored))
{
    return as_bytes(self->key);
}

static PyObject *
message_partition(MessageObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->partition == RD_KAFKA_PARTITION_UA) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong(self->partition);
}

static PyObject *
message_offset(MessageObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->offset < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(self->offset);
}

static PyObject *
message_timestamp(MessageObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(iL)", self->tstype, (long long)self->timestamp);
}

static PyObject *
message_headers(MessageObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->headers == NULL) {
        Py_RETURN_NONE;
    }
    return PyList_GetSlice(self->headers, 0, PY_SSIZE_T_MAX);
}

static PyObject *
message_error(MessageObject *self, PyObject *Py_UNUSED(ignored))
{
    return or_none(self->error);
}

static PyObject *
message_latency(MessageObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->latency_us < 0) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble((double)self->latency_us / 1e6);
}

static Py_ssize_t
message_len(MessageObject *self)
{
    if (self->value == NULL) {
        return 0;
    }
    if (PyUnicode_Check(self->value)) {
        Py_ssize_t n;
        return PyUnicode_AsUTF8AndSize(self->value, &n) ? n : -1;
    }
    return PyBytes_GET_SIZE(self->value);
}

static PyObject *
message_repr(MessageObject *self)
{
    PyObject *err = self->error ? self->error : Py_None;
    return PyUnicode_FromFormat(
        "<aiokafka_c.Message topic=%R partition=%d offset=%lld error=%R>",
        self->topic ? self->topic : Py_None, (int)self->partition,
        (long long)self->offset, err);
}

static PyMethodDef message_methods[] = {
    {"topic", (PyCFunction)message_topic, METH_NOARGS,
     "topic($self, /)\n--\n\nThe topic name."},
    {"value", (PyCFunction)message_value, METH_NOARGS,
     "value($self, /)\n--\n\nThe value as bytes, or None."},
    {"key", (PyCFunction)message_key, METH_NOARGS,
     "key($self, /)\n--\n\nThe key as bytes, or None."},
    {"partition", (PyCFunction)message_partition, METH_NOARGS,
     "partition($self, /)\n--\n\nThe partition, or None before delivery."},
    {"offset", (PyCFunction)message_offset, METH_NOARGS,
     "offset($self, /)\n--\n\nThe offset, or None if not known."},
    {"timestamp", (PyCFunction)message_timestamp, METH_NOARGS,
     "timestamp($self, /)\n--\n\n(timestamp_type, milliseconds since the "
     "epoch); type is TIMESTAMP_NOT_AVAILABLE, TIMESTAMP_CREATE_TIME or "
     "TIMESTAMP_LOG_APPEND_TIME."},
    {"headers", (PyCFunction)message_headers, METH_NOARGS,
     "headers($self, /)\n--\n\nA list of (name, value) pairs, or None."},
    {"error", (PyCFunction)message_error, METH_NOARGS,
     "error($self, /)\n--\n\nThe KafkaError of a failed delivery, or None."},
    {"latency", (PyCFunction)message_latency, METH_NOARGS,
     "latency($self, /)\n--\n\nSeconds from produce to delivery report, or "
     "None."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot message_slots[] = {
    {Py_tp_dealloc, message_dealloc},
    {Py_tp_repr, message_repr},
    {Py_tp_methods, message_methods},
    {Py_sq_length, message_len},
    {Py_tp_doc, "A Kafka message: the result of a produce."},
    {0, NULL},
};

static PyType_Spec message_spec = {
    .name = "aiokafka_c.Message",
    .basicsize = sizeof(MessageObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = message_slots,
};

int
akc_message_setup_types(PyObject *module, akc_state *st)
{
    st->MessageType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &message_spec, NULL);
    if (st->MessageType == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, st->MessageType) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "TIMESTAMP_NOT_AVAILABLE",
                                RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) < 0 ||
        PyModule_AddIntConstant(module, "TIMESTAMP_CREATE_TIME",
                                RD_KAFKA_TIMESTAMP_CREATE_TIME) < 0 ||
        PyModule_AddIntConstant(module, "TIMESTAMP_LOG_APPEND_TIME",
                                RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME) < 0) {
        return -1;
    }
    return 0;
}
