/* Metadata result types, made only by akc_metadata_to_py from librdkafka's
 * rd_kafka_metadata_t.
 *
 * Attributes are read-only and never NULL once made (absent values are
 * None), but the dicts and lists they hold are ordinary mutable objects,
 * so every type holding one is GC-tracked.  BrokerMetadata holds only a
 * str and is not. */
#include "metadata.h"
#include "errors.h"

#include <stddef.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    PyObject *host; /* str or None */
    int id;
    int port;
} BrokerMetadataObject;

typedef struct {
    PyObject_HEAD
    PyObject *replicas; /* list[int] */
    PyObject *isrs;     /* list[int] */
    PyObject *error;    /* KafkaError or None */
    int id;
    int leader;
} PartitionMetadataObject;

typedef struct {
    PyObject_HEAD
    PyObject *topic;      /* str */
    PyObject *partitions; /* dict[int, PartitionMetadata] */
    PyObject *error;      /* KafkaError or None */
} TopicMetadataObject;

typedef struct {
    PyObject_HEAD
    PyObject *cluster_id;       /* str or None */
    PyObject *brokers;          /* dict[int, BrokerMetadata] */
    PyObject *topics;           /* dict[str, TopicMetadata] */
    PyObject *orig_broker_name; /* str or None */
    int controller_id;
    int orig_broker_id;
} ClusterMetadataObject;

_Static_assert(sizeof(int) == sizeof(int32_t),
               "broker and partition ids are Py_T_INT members");

/* ---- conversion from librdkafka ----------------------------------- */

/* New reference: s decoded as UTF-8 (invalid bytes replaced), or None
 * for NULL. */
static PyObject *
meta_str(const char *s)
{
    if (s == NULL) {
        Py_RETURN_NONE;
    }
    return PyUnicode_DecodeUTF8(s, strlen(s), "replace");
}

/* New reference: KafkaError(err), or None for no error. */
static PyObject *
meta_error(akc_state *st, rd_kafka_resp_err_t err)
{
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        Py_RETURN_NONE;
    }
    return akc_error_from_code(st, err, NULL);
}

/* New list[int] of ids[0..n), or NULL. */
static PyObject *
meta_id_list(const int32_t *ids, int n)
{
    PyObject *list = PyList_New(n > 0 ? n : 0);
    for (int i = 0; list != NULL && i < n; i++) {
        PyObject *v = PyLong_FromLong(ids[i]);
        if (v == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

/* Sets d[key] = value, stealing value (and the new key).  Returns 0 or
 * -1. */
static int
meta_dict_set(PyObject *d, PyObject *key, PyObject *value)
{
    int rc = (key != NULL && value != NULL) ? PyDict_SetItem(d, key, value)
                                            : -1;
    Py_XDECREF(key);
    Py_XDECREF(value);
    return rc;
}

/* Each returns a new reference or NULL.  The objects come from tp_alloc,
 * zeroed and tracked, so a failure half-way is released by their
 * dealloc. */
static PyObject *
meta_broker(akc_state *st, const rd_kafka_metadata_broker_t *b)
{
    PyTypeObject *tp = st->BrokerMetadataType;
    BrokerMetadataObject *self = (BrokerMetadataObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->id = b->id;
    self->port = b->port;
    self->host = meta_str(b->host);
    if (self->host == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *
meta_partition(akc_state *st, const rd_kafka_metadata_partition_t *p)
{
    PyTypeObject *tp = st->PartitionMetadataType;
    PartitionMetadataObject *self =
        (PartitionMetadataObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->id = p->id;
    self->leader = p->leader;
    self->replicas = meta_id_list(p->replicas, p->replica_cnt);
    self->isrs = meta_id_list(p->isrs, p->isr_cnt);
    self->error = meta_error(st, p->err);
    if (self->replicas == NULL || self->isrs == NULL || self->error == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *
meta_topic(akc_state *st, const rd_kafka_metadata_topic_t *t)
{
    PyTypeObject *tp = st->TopicMetadataType;
    TopicMetadataObject *self = (TopicMetadataObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->topic = meta_str(t->topic);
    self->partitions = PyDict_New();
    self->error = meta_error(st, t->err);
    if (self->topic == NULL || self->partitions == NULL ||
        self->error == NULL) {
        goto error;
    }
    for (int i = 0; i < t->partition_cnt; i++) {
        const rd_kafka_metadata_partition_t *p = &t->partitions[i];
        if (meta_dict_set(self->partitions, PyLong_FromLong(p->id),
                          meta_partition(st, p)) < 0) {
            goto error;
        }
    }
    return (PyObject *)self;
error:
    Py_DECREF(self);
    return NULL;
}

PyObject *
akc_metadata_to_py(akc_state *st, const rd_kafka_metadata_t *md,
                   const char *cluster_id, int32_t controller_id)
{
    PyTypeObject *tp = st->ClusterMetadataType;
    ClusterMetadataObject *self = (ClusterMetadataObject *)tp->tp_alloc(tp,
                                                                        0);
    if (self == NULL) {
        return NULL;
    }
    self->controller_id = controller_id;
    self->orig_broker_id = md ? md->orig_broker_id : -1;
    self->cluster_id = meta_str(cluster_id);
    self->orig_broker_name = meta_str(md ? md->orig_broker_name : NULL);
    self->brokers = PyDict_New();
    self->topics = PyDict_New();
    if (self->cluster_id == NULL || self->orig_broker_name == NULL ||
        self->brokers == NULL || self->topics == NULL) {
        goto error;
    }
    for (int i = 0; md != NULL && i < md->broker_cnt; i++) {
        const rd_kafka_metadata_broker_t *b = &md->brokers[i];
        if (meta_dict_set(self->brokers, PyLong_FromLong(b->id),
                          meta_broker(st, b)) < 0) {
            goto error;
        }
    }
    for (int i = 0; md != NULL && i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (meta_dict_set(self->topics, meta_str(t->topic),
                          meta_topic(st, t)) < 0) {
            goto error;
        }
    }
    return (PyObject *)self;
error:
    Py_DECREF(self);
    return NULL;
}

/* ---- BrokerMetadata ----------------------------------------------- */

static void
brokermeta_dealloc(BrokerMetadataObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_CLEAR(self->host);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
brokermeta_repr(BrokerMetadataObject *self)
{
    return PyUnicode_FromFormat("BrokerMetadata(%d, %S:%d)", self->id,
                                self->host ? self->host : Py_None,
                                self->port);
}

static PyMemberDef brokermeta_members[] = {
    {"id", Py_T_INT, offsetof(BrokerMetadataObject, id), Py_READONLY,
     "The broker's node id."},
    {"host", Py_T_OBJECT_EX, offsetof(BrokerMetadataObject, host),
     Py_READONLY, "Its advertised host name."},
    {"port", Py_T_INT, offsetof(BrokerMetadataObject, port), Py_READONLY,
     "Its port."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot brokermeta_slots[] = {
    {Py_tp_dealloc, brokermeta_dealloc},
    {Py_tp_repr, brokermeta_repr},
    {Py_tp_members, brokermeta_members},
    {Py_tp_doc, "A broker in ClusterMetadata.brokers."},
    {0, NULL},
};

/* ---- PartitionMetadata -------------------------------------------- */

static int
partitionmeta_traverse(PartitionMetadataObject *self, visitproc visit,
                       void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->replicas);
    Py_VISIT(self->isrs);
    Py_VISIT(self->error);
    return 0;
}

static int
partitionmeta_clear(PartitionMetadataObject *self)
{
    Py_CLEAR(self->replicas);
    Py_CLEAR(self->isrs);
    Py_CLEAR(self->error);
    return 0;
}

static void
partitionmeta_dealloc(PartitionMetadataObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    partitionmeta_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
partitionmeta_repr(PartitionMetadataObject *self)
{
    PyObject *err = self->error ? self->error : Py_None;
    if (err != Py_None) {
        return PyUnicode_FromFormat("PartitionMetadata(%d, leader=%d, %R)",
                                    self->id, self->leader, err);
    }
    return PyUnicode_FromFormat("PartitionMetadata(%d, leader=%d)", self->id,
                                self->leader);
}

static PyMemberDef partitionmeta_members[] = {
    {"id", Py_T_INT, offsetof(PartitionMetadataObject, id), Py_READONLY,
     "The partition id."},
    {"leader", Py_T_INT, offsetof(PartitionMetadataObject, leader),
     Py_READONLY, "The leader broker's id, -1 if none."},
    {"replicas", Py_T_OBJECT_EX, offsetof(PartitionMetadataObject, replicas),
     Py_READONLY, "The replica broker ids (a list)."},
    {"isrs", Py_T_OBJECT_EX, offsetof(PartitionMetadataObject, isrs),
     Py_READONLY, "The in-sync replica broker ids (a list)."},
    {"error", Py_T_OBJECT_EX, offsetof(PartitionMetadataObject, error),
     Py_READONLY, "The partition's KafkaError, or None."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot partitionmeta_slots[] = {
    {Py_tp_traverse, partitionmeta_traverse},
    {Py_tp_clear, partitionmeta_clear},
    {Py_tp_dealloc, partitionmeta_dealloc},
    {Py_tp_repr, partitionmeta_repr},
    {Py_tp_members, partitionmeta_members},
    {Py_tp_doc, "A partition in TopicMetadata.partitions."},
    {0, NULL},
};

/* ---- TopicMetadata ------------------------------------------------ */

static int
topicmeta_traverse(TopicMetadataObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->topic);
    Py_VISIT(self->partitions);
    Py_VISIT(self->error);
    return 0;
}

static int
topicmeta_clear(TopicMetadataObject *self)
{
    Py_CLEAR(self->topic);
    Py_CLEAR(self->partitions);
    Py_CLEAR(self->error);
    return 0;
}

static void
topicmeta_dealloc(TopicMetadataObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    topicmeta_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
topicmeta_repr(TopicMetadataObject *self)
{
    PyObject *topic = self->topic ? self->topic : Py_None;
    Py_ssize_t n = self->partitions ? PyDict_GET_SIZE(self->partitions) : 0;
    if (self->error != NULL && self->error != Py_None) {
        return PyUnicode_FromFormat("TopicMetadata(%S, %zd partitions, %R)",
                                    topic, n, self->error);
    }
    return PyUnicode_FromFormat("TopicMetadata(%S, %zd partitions)", topic,
                                n);
}

static PyMemberDef topicmeta_members[] = {
    {"topic", Py_T_OBJECT_EX, offsetof(TopicMetadataObject, topic),
     Py_READONLY, "The topic name."},
    {"partitions", Py_T_OBJECT_EX,
     offsetof(TopicMetadataObject, partitions), Py_READONLY,
     "dict of partition id to PartitionMetadata."},
    {"error", Py_T_OBJECT_EX, offsetof(TopicMetadataObject, error),
     Py_READONLY, "The topic's KafkaError, or None."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot topicmeta_slots[] = {
    {Py_tp_traverse, topicmeta_traverse},
    {Py_tp_clear, topicmeta_clear},
    {Py_tp_dealloc, topicmeta_dealloc},
    {Py_tp_repr, topicmeta_repr},
    {Py_tp_members, topicmeta_members},
    {Py_tp_doc, "A topic in ClusterMetadata.topics."},
    {0, NULL},
};

/* ---- ClusterMetadata ---------------------------------------------- */

static int
clustermeta_traverse(ClusterMetadataObject *self, visitproc visit,
                     void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->cluster_id);
    Py_VISIT(self->brokers);
    Py_VISIT(self->topics);
    Py_VISIT(self->orig_broker_name);
    return 0;
}

static int
clustermeta_clear(ClusterMetadataObject *self)
{
    Py_CLEAR(self->cluster_id);
    Py_CLEAR(self->brokers);
    Py_CLEAR(self->topics);
    Py_CLEAR(self->orig_broker_name);
    return 0;
}

static void
clustermeta_dealloc(ClusterMetadataObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    clustermeta_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
clustermeta_repr(ClusterMetadataObject *self)
{
    return PyUnicode_FromFormat(
        "ClusterMetadata(cluster_id=%R, controller_id=%d, %zd brokers, "
        "%zd topics)",
        self->cluster_id ? self->cluster_id : Py_None, self->controller_id,
        self->brokers ? PyDict_GET_SIZE(self->brokers) : 0,
        self->topics ? PyDict_GET_SIZE(self->topics) : 0);
}

static PyMemberDef clustermeta_members[] = {
    {"cluster_id", Py_T_OBJECT_EX,
     offsetof(ClusterMetadataObject, cluster_id), Py_READONLY,
     "The cluster id, or None if unknown."},
    {"controller_id", Py_T_INT,
     offsetof(ClusterMetadataObject, controller_id), Py_READONLY,
     "The controller broker's id, -1 if unknown."},
    {"brokers", Py_T_OBJECT_EX, offsetof(ClusterMetadataObject, brokers),
     Py_READONLY, "dict of broker id to BrokerMetadata."},
    {"topics", Py_T_OBJECT_EX, offsetof(ClusterMetadataObject, topics),
     Py_READONLY, "dict of topic name to TopicMetadata."},
    {"orig_broker_id", Py_T_INT,
     offsetof(ClusterMetadataObject, orig_broker_id), Py_READONLY,
     "The id of the broker that sent this metadata, -1 if unknown."},
    {"orig_broker_name", Py_T_OBJECT_EX,
     offsetof(ClusterMetadataObject, orig_broker_name), Py_READONLY,
     "That broker's name, or None."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot clustermeta_slots[] = {
    {Py_tp_traverse, clustermeta_traverse},
    {Py_tp_clear, clustermeta_clear},
    {Py_tp_dealloc, clustermeta_dealloc},
    {Py_tp_repr, clustermeta_repr},
    {Py_tp_members, clustermeta_members},
    {Py_tp_doc, "Cluster metadata: the result of list_topics()."},
    {0, NULL},
};

/* ---- setup -------------------------------------------------------- */

#define META_FLAGS                                                        \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |                      \
     Py_TPFLAGS_DISALLOW_INSTANTIATION)

static PyType_Spec brokermeta_spec = {
    .name = "aiokafka_c.BrokerMetadata",
    .basicsize = sizeof(BrokerMetadataObject),
    .flags = META_FLAGS,
    .slots = brokermeta_slots,
};

static PyType_Spec partitionmeta_spec = {
    .name = "aiokafka_c.PartitionMetadata",
    .basicsize = sizeof(PartitionMetadataObject),
    .flags = META_FLAGS | Py_TPFLAGS_HAVE_GC,
    .slots = partitionmeta_slots,
};

static PyType_Spec topicmeta_spec = {
    .name = "aiokafka_c.TopicMetadata",
    .basicsize = sizeof(TopicMetadataObject),
    .flags = META_FLAGS | Py_TPFLAGS_HAVE_GC,
    .slots = topicmeta_slots,
};

static PyType_Spec clustermeta_spec = {
    .name = "aiokafka_c.ClusterMetadata",
    .basicsize = sizeof(ClusterMetadataObject),
    .flags = META_FLAGS | Py_TPFLAGS_HAVE_GC,
    .slots = clustermeta_slots,
};

int
akc_metadata_setup_types(PyObject *module, akc_state *st)
{
    struct {
        PyTypeObject **slot;
        PyType_Spec *spec;
    } types[] = {
        {&st->ClusterMetadataType, &clustermeta_spec},
        {&st->BrokerMetadataType, &brokermeta_spec},
        {&st->TopicMetadataType, &topicmeta_spec},
        {&st->PartitionMetadataType, &partitionmeta_spec},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        *types[i].slot = (PyTypeObject *)PyType_FromModuleAndSpec(
            module, types[i].spec, NULL);
        if (*types[i].slot == NULL ||
            PyModule_AddType(module, *types[i].slot) < 0) {
            return -1;
        }
    }
    return 0;
}
