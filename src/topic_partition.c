/* TopicPartition type and the conversions between Python lists of it and
 * librdkafka's rd_kafka_topic_partition_list_t.
 *
 * Not GC-tracked: an instance holds only exact str objects (str
 * subclasses are copied to str on the way in, since a subclass instance
 * can carry a __dict__ and close a cycle) and KafkaError, which is final
 * and holds only a str.  Results of commit(), committed(), assignment()
 * ... can be long lists, made without the collector's overhead.  A Python
 * subclass with a __dict__ is tracked by CPython itself. */
#include "topic_partition.h"
#include "errors.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(int) == sizeof(int32_t),
               "partition is exposed as a Py_T_INT member");

/* Returns 0 if topic (a str) can name a topic in librdkafka's C API:
 * non-empty, no NUL, encodable as UTF-8.  Else -1 with ValueError. */
static int
tp_check_topic(PyObject *topic)
{
    if (PyUnicode_GET_LENGTH(topic) == 0) {
        PyErr_SetString(PyExc_ValueError, "topic must not be empty");
        return -1;
    }
    return akc_check_c_string(topic, "topic");
}

/* Returns a new reference to o as an exact str (None for None when
 * allow_none), or NULL with TypeError/UnicodeEncodeError.  The UTF-8 form
 * is computed and cached here, so the conversion to librdkafka cannot
 * fail on it later. */
static PyObject *
tp_exact_str(PyObject *o, const char *what, int allow_none)
{
    if (allow_none && o == Py_None) {
        return Py_NewRef(o);
    }
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be str%s, not %.100s", what,
                     allow_none ? " or None" : "", Py_TYPE(o)->tp_name);
        return NULL;
    }
    PyObject *s = PyUnicode_FromObject(o);
    if (s != NULL && PyUnicode_AsUTF8(s) == NULL) {
        Py_CLEAR(s);
    }
    return s;
}

/* Reads an int argument (bool is refused: TopicPartition("t", True) is a
 * mistake) into *out, range-checked.  Returns 0 or -1 with an exception. */
static int
tp_int_arg(PyObject *o, const char *what, long long min, long long max,
           long long *out)
{
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be int, not %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow != 0 || v < min || v > max) {
        PyErr_Format(PyExc_OverflowError, "%s out of range: %R", what, o);
        return -1;
    }
    *out = v;
    return 0;
}

/* Allocates an instance of st's TopicPartition type.  topic (an exact
 * str) and metadata (exact str or NULL) are borrowed; error (KafkaError
 * or NULL) is stolen, also on failure. */
static PyObject *
tp_make(akc_state *st, PyObject *topic, int32_t partition, int64_t offset,
        PyObject *metadata, PyObject *error)
{
    TopicPartitionObject *self = PyObject_New(TopicPartitionObject,
                                              st->TopicPartitionType);
    if (self == NULL) {
        Py_XDECREF(error);
        return NULL;
    }
    self->topic = Py_NewRef(topic);
    self->metadata = Py_XNewRef(metadata);
    self->error = error;
    self->offset = offset;
    self->partition = partition;
    return (PyObject *)self;
}

/* Like akc_tp_new, with the topic already a str (borrowed). */
static PyObject *
tp_new_from_c(akc_state *st, PyObject *topic, int32_t partition,
              int64_t offset, const void *metadata, size_t metadata_size,
              rd_kafka_resp_err_t err)
{
    PyObject *md = NULL, *error = NULL;
    if (metadata != NULL) {
        md = PyUnicode_DecodeUTF8(metadata, (Py_ssize_t)metadata_size,
                                  "replace");
        if (md == NULL) {
            return NULL;
        }
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error = akc_error_from_code(st, err, NULL);
        if (error == NULL) {
            Py_XDECREF(md);
            return NULL;
        }
    }
    PyObject *tp = tp_make(st, topic, partition, offset, md, error);
    Py_XDECREF(md);
    return tp;
}

PyObject *
akc_tp_new(akc_state *st, const char *topic, int32_t partition,
           int64_t offset, const void *metadata, size_t metadata_size,
           rd_kafka_resp_err_t err)
{
    PyObject *t = PyUnicode_DecodeUTF8(topic, strlen(topic), "replace");
    if (t == NULL) {
        return NULL;
    }
    PyObject *tp = tp_new_from_c(st, t, partition, offset, metadata,
                                 metadata_size, err);
    Py_DECREF(t);
    return tp;
}

PyObject *
akc_tplist_to_py(akc_state *st, const rd_kafka_topic_partition_list_t *l)
{
    int n = l ? l->cnt : 0;
    PyObject *list = PyList_New(n);
    PyObject *topic = NULL; /* shared by consecutive entries of one topic */
    const char *ctopic = NULL;
    if (list == NULL) {
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const rd_kafka_topic_partition_t *p = &l->elems[i];
        if (ctopic == NULL || strcmp(ctopic, p->topic) != 0) {
            Py_XSETREF(topic, PyUnicode_DecodeUTF8(p->topic, strlen(p->topic),
                                                   "replace"));
            if (topic == NULL) {
                goto error;
            }
            ctopic = p->topic;
        }
        PyObject *tp = tp_new_from_c(st, topic, p->partition, p->offset,
                                     p->metadata, p->metadata_size, p->err);
        if (tp == NULL) {
            goto error;
        }
        PyList_SET_ITEM(list, i, tp);
    }
    Py_XDECREF(topic);
    return list;
error:
    Py_XDECREF(topic);
    Py_DECREF(list);
    return NULL;
}

int
akc_tp_check(akc_state *st, PyObject *o)
{
    return PyObject_TypeCheck(o, st->TopicPartitionType);
}

/* Returns a new list or tuple of iterable's items, or NULL with
 * TypeError naming what. */
static PyObject *
tplist_items(akc_state *st, PyObject *iterable, const char *what)
{
    if (akc_tp_check(st, iterable)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a list of TopicPartition, not a single "
                     "TopicPartition",
                     what);
        return NULL;
    }
    if (PyList_Check(iterable) || PyTuple_Check(iterable)) {
        return Py_NewRef(iterable);
    }
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError,
                         "%s must be a list of TopicPartition, not %.100s",
                         what, Py_TYPE(iterable)->tp_name);
        }
        return NULL;
    }
    PyObject *items = PySequence_List(it);
    Py_DECREF(it);
    return items;
}

/* Appends tp to l.  Returns 0 or -1 with an exception.  Calls no Python
 * code, so the caller's list cannot change under it. */
static int
tplist_add(rd_kafka_topic_partition_list_t *l, TopicPartitionObject *tp)
{
    if (tp_check_topic(tp->topic) < 0) {
        return -1;
    }
    rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_add(
        l, PyUnicode_AsUTF8(tp->topic), tp->partition);
    p->offset = tp->offset;
    if (tp->metadata == NULL) {
        return 0;
    }
    Py_ssize_t n;
    const char *md = PyUnicode_AsUTF8AndSize(tp->metadata, &n);
    if (md == NULL) {
        return -1;
    }
    /* librdkafka frees it with free(); one byte for "", so that an empty
     * string stays distinct from None. */
    p->metadata = malloc(n > 0 ? (size_t)n : 1);
    if (p->metadata == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(p->metadata, md, (size_t)n);
    p->metadata_size = (size_t)n;
    return 0;
}

rd_kafka_topic_partition_list_t *
akc_tplist_from_py(akc_state *st, PyObject *iterable, const char *what)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    PyObject *items = tplist_items(st, iterable, what);
    if (items == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    if (n > INT_MAX) {
        PyErr_Format(PyExc_OverflowError, "%s: too many partitions", what);
        goto error;
    }
    l = rd_kafka_topic_partition_list_new((int)n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(items, i);
        if (!akc_tp_check(st, o)) {
            PyErr_Format(PyExc_TypeError,
                         "%s must contain only TopicPartition, not %.100s",
                         what, Py_TYPE(o)->tp_name);
            goto error;
        }
        if (tplist_add(l, (TopicPartitionObject *)o) < 0) {
            goto error;
        }
    }
    Py_DECREF(items);
    return l;
error:
    if (l != NULL) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    Py_DECREF(items);
    return NULL;
}

/* ---- the Python type ---------------------------------------------- */

/* TopicPartition(topic, partition=-1, offset=OFFSET_INVALID,
 *                metadata=None).  All arguments are checked here, so
 * that a bad topic is reported where it was written, not at the
 * consumer call that uses it. */
static PyObject *
topicpartition_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"topic", "partition", "offset", "metadata",
                             NULL};
    PyObject *topic_arg, *partition_arg = NULL, *offset_arg = NULL;
    PyObject *metadata_arg = Py_None;
    long long partition = RD_KAFKA_PARTITION_UA;
    long long offset = RD_KAFKA_OFFSET_INVALID;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO:TopicPartition",
                                     kwlist, &topic_arg, &partition_arg,
                                     &offset_arg, &metadata_arg)) {
        return NULL;
    }
    if ((partition_arg != NULL &&
         tp_int_arg(partition_arg, "partition", INT32_MIN, INT32_MAX,
                    &partition) < 0) ||
        (offset_arg != NULL &&
         tp_int_arg(offset_arg, "offset", INT64_MIN, INT64_MAX, &offset) <
             0)) {
        return NULL;
    }
    PyObject *topic = tp_exact_str(topic_arg, "topic", 0);
    if (topic == NULL || tp_check_topic(topic) < 0) {
        Py_XDECREF(topic);
        return NULL;
    }
    PyObject *metadata = tp_exact_str(metadata_arg, "metadata", 1);
    if (metadata == NULL) {
        Py_DECREF(topic);
        return NULL;
    }
    TopicPartitionObject *self = (TopicPartitionObject *)type->tp_alloc(type,
                                                                        0);
    if (self == NULL) {
        Py_DECREF(topic);
        Py_DECREF(metadata);
        return NULL;
    }
    self->topic = topic;
    if (metadata == Py_None) {
        Py_DECREF(metadata);
        metadata = NULL;
    }
    self->metadata = metadata;
    self->error = NULL;
    self->partition = (int32_t)partition;
    self->offset = (int64_t)offset;
    return (PyObject *)self;
}

static void
topicpartition_dealloc(TopicPartitionObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_CLEAR(self->topic);
    Py_CLEAR(self->metadata);
    Py_CLEAR(self->error);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
topicpartition_get_offset(TopicPartitionObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(self->offset);
}

static int
topicpartition_set_offset(TopicPartitionObject *self, PyObject *v,
                          void *Py_UNUSED(c))
{
    long long offset;
    if (v == NULL) {
        PyErr_SetString(PyExc_TypeError, "cannot delete offset");
        return -1;
    }
    if (tp_int_arg(v, "offset", INT64_MIN, INT64_MAX, &offset) < 0) {
        return -1;
    }
    self->offset = (int64_t)offset;
    return 0;
}

static PyObject *
topicpartition_get_metadata(TopicPartitionObject *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->metadata ? self->metadata : Py_None);
}

static int
topicpartition_set_metadata(TopicPartitionObject *self, PyObject *v,
                            void *Py_UNUSED(c))
{
    if (v == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "cannot delete metadata (set it to None)");
        return -1;
    }
    PyObject *md = tp_exact_str(v, "metadata", 1);
    if (md == NULL) {
        return -1;
    }
    if (md == Py_None) {
        Py_CLEAR(md);
    }
    Py_XSETREF(self->metadata, md);
    return 0;
}

static PyObject *
topicpartition_get_error(TopicPartitionObject *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->error ? self->error : Py_None);
}

/* Equal and ordered by (topic, partition), as in confluent-kafka; offset,
 * metadata and error do not take part. */
static PyObject *
topicpartition_richcompare(PyObject *a, PyObject *b, int op)
{
    akc_state *st = akc_state_from_type(Py_TYPE(a));
    if (st == NULL) {
        return NULL;
    }
    if (!akc_tp_check(st, b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    TopicPartitionObject *x = (TopicPartitionObject *)a;
    TopicPartitionObject *y = (TopicPartitionObject *)b;
    int c = PyUnicode_Compare(x->topic, y->topic);
    if (c == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (c == 0) {
        c = (x->partition > y->partition) - (x->partition < y->partition);
    }
    Py_RETURN_RICHCOMPARE(c, 0, op);
}

/* hash((topic, partition)), as in confluent-kafka. */
static Py_hash_t
topicpartition_hash(TopicPartitionObject *self)
{
    PyObject *partition = PyLong_FromLong(self->partition);
    if (partition == NULL) {
        return -1;
    }
    PyObject *key = PyTuple_Pack(2, self->topic, partition);
    Py_DECREF(partition);
    if (key == NULL) {
        return -1;
    }
    Py_hash_t h = PyObject_Hash(key);
    Py_DECREF(key);
    return h;
}

/* TopicPartition{topic=t,partition=0,offset=5,error=None}, with
 * metadata=... before error when set; a subclass shows its own name. */
static PyObject *
topicpartition_repr(TopicPartitionObject *self)
{
    const char *name = Py_TYPE(self)->tp_name;
    const char *dot = strrchr(name, '.');
    name = dot ? dot + 1 : name;
    PyObject *err = self->error ? self->error : Py_None;
    if (self->metadata != NULL) {
        return PyUnicode_FromFormat(
            "%s{topic=%U,partition=%d,offset=%lld,metadata=%R,error=%R}",
            name, self->topic, (int)self->partition,
            (long long)self->offset, self->metadata, err);
    }
    return PyUnicode_FromFormat(
        "%s{topic=%U,partition=%d,offset=%lld,error=%R}", name, self->topic,
        (int)self->partition, (long long)self->offset, err);
}

static PyMemberDef topicpartition_members[] = {
    {"topic", Py_T_OBJECT_EX, offsetof(TopicPartitionObject, topic),
     Py_READONLY, "The topic name (read-only)."},
    {"partition", Py_T_INT, offsetof(TopicPartitionObject, partition),
     Py_READONLY, "The partition, -1 if unset (read-only)."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef topicpartition_getset[] = {
    {"offset", (getter)topicpartition_get_offset,
     (setter)topicpartition_set_offset,
     "The offset, or one of OFFSET_BEGINNING, OFFSET_END, OFFSET_STORED, "
     "OFFSET_INVALID.",
     NULL},
    {"metadata", (getter)topicpartition_get_metadata,
     (setter)topicpartition_set_metadata,
     "Commit metadata (str), or None.", NULL},
    {"error", (getter)topicpartition_get_error, NULL,
     "The KafkaError of this partition in a result, or None (read-only).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot topicpartition_slots[] = {
    {Py_tp_new, topicpartition_new},
    {Py_tp_dealloc, topicpartition_dealloc},
    {Py_tp_repr, topicpartition_repr},
    {Py_tp_richcompare, topicpartition_richcompare},
    {Py_tp_hash, topicpartition_hash},
    {Py_tp_members, topicpartition_members},
    {Py_tp_getset, topicpartition_getset},
    {Py_tp_doc,
     "TopicPartition(topic, partition=-1, offset=-1001, metadata=None)\n--\n"
     "\n"
     "A topic partition with an offset (default OFFSET_INVALID) and commit "
     "metadata.  Equal, hashed and ordered by (topic, partition).  topic "
     "must be a non-empty str without NUL characters."},
    {0, NULL},
};

static PyType_Spec topicpartition_spec = {
    .name = "aiokafka_c.TopicPartition",
    .basicsize = sizeof(TopicPartitionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = topicpartition_slots,
};

int
akc_topic_partition_setup_types(PyObject *module, akc_state *st)
{
    st->TopicPartitionType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &topicpartition_spec, NULL);
    if (st->TopicPartitionType == NULL ||
        PyModule_AddType(module, st->TopicPartitionType) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "OFFSET_BEGINNING",
                                RD_KAFKA_OFFSET_BEGINNING) < 0 ||
        PyModule_AddIntConstant(module, "OFFSET_END", RD_KAFKA_OFFSET_END) <
            0 ||
        PyModule_AddIntConstant(module, "OFFSET_STORED",
                                RD_KAFKA_OFFSET_STORED) < 0 ||
        PyModule_AddIntConstant(module, "OFFSET_INVALID",
                                RD_KAFKA_OFFSET_INVALID) < 0) {
        return -1;
    }
    return 0;
}
