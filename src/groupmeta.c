/* ConsumerGroupMetadata type.  Made only by the consumer; holds no Python
 * objects, so it is not GC-tracked. */
#include "groupmeta.h"

typedef struct {
    PyObject_HEAD
    rd_kafka_consumer_group_metadata_t *cgm; /* owned, never NULL */
} ConsumerGroupMetadataObject;

PyObject *
akc_cgm_new(akc_state *st, rd_kafka_consumer_group_metadata_t *cgm)
{
    ConsumerGroupMetadataObject *self = PyObject_New(
        ConsumerGroupMetadataObject, st->ConsumerGroupMetadataType);
    if (self == NULL) {
        rd_kafka_consumer_group_metadata_destroy(cgm);
        return NULL;
    }
    self->cgm = cgm;
    return (PyObject *)self;
}

rd_kafka_consumer_group_metadata_t *
akc_cgm_get(akc_state *st, PyObject *o)
{
    if (!Py_IS_TYPE(o, st->ConsumerGroupMetadataType)) {
        PyErr_Format(PyExc_TypeError,
                     "expected ConsumerGroupMetadata, not %.100s",
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    return ((ConsumerGroupMetadataObject *)o)->cgm;
}

static void
groupmeta_dealloc(ConsumerGroupMetadataObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->cgm != NULL) {
        rd_kafka_consumer_group_metadata_destroy(self->cgm);
        self->cgm = NULL;
    }
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
groupmeta_repr(ConsumerGroupMetadataObject *Py_UNUSED(self))
{
    return PyUnicode_FromString("<ConsumerGroupMetadata>");
}

static PyType_Slot groupmeta_slots[] = {
    {Py_tp_dealloc, groupmeta_dealloc},
    {Py_tp_repr, groupmeta_repr},
    {Py_tp_doc,
     "A consumer's group metadata (from consumer_group_metadata()), for a "
     "transactional producer's send_offsets_to_transaction()."},
    {0, NULL},
};

static PyType_Spec groupmeta_spec = {
    .name = "aiokafka_c.ConsumerGroupMetadata",
    .basicsize = sizeof(ConsumerGroupMetadataObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = groupmeta_slots,
};

int
akc_groupmeta_setup_types(PyObject *module, akc_state *st)
{
    st->ConsumerGroupMetadataType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &groupmeta_spec, NULL);
    if (st->ConsumerGroupMetadataType == NULL) {
        return -1;
    }
    return PyModule_AddType(module, st->ConsumerGroupMetadataType);
}
