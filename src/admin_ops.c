/* AIOAdminClient's topic, config and record operations: argument checks
 * and conversions, then one librdkafka admin request each.  Loop thread,
 * GIL held; nothing here blocks (librdkafka only enqueues the request). */
#include "admin_req.h"
#include "errors.h"
#include "topic_partition.h"

#include <stdlib.h>
#include <string.h>

/* Calls set(obj, i, ids, n, errstr, size) for each partition of
 * o.replica_assignment (a list of lists of broker ids). */
typedef rd_kafka_resp_err_t (*set_assignment_fn)(void *, int32_t,
                                                   int32_t *, size_t, char *,
                                                   size_t);

static int
set_assignment(akc_admin_req *r, PyObject *o, void *obj, set_assignment_fn set)
{
    PyObject *ra = PyObject_GetAttrString(o, "replica_assignment");
    PyObject *seq = ra ? PySequence_Fast(ra, "replica_assignment must be "
                                             "a list of lists of int")
                       : NULL;
    Py_XDECREF(ra);
    if (seq == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(seq);
         i++) {
        PyObject *ids = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, i),
                                        "replica_assignment must be a list "
                                        "of lists of int");
        if (ids == NULL) {
            rc = -1;
            break;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(ids);
        int32_t *a = calloc(n > 0 ? (size_t)n : 1, sizeof(int32_t));
        if (a == NULL) {
            PyErr_NoMemory();
            rc = -1;
        }
        for (Py_ssize_t k = 0; rc == 0 && k < n; k++) {
            long b = PyLong_AsLong(PySequence_Fast_GET_ITEM(ids, k));
            if (b == -1 && PyErr_Occurred()) {
                rc = -1;
            }
            else if (b < 0 || b > INT32_MAX) {
                PyErr_Format(PyExc_ValueError,
                             "%s(): broker id %ld out of range", r->fname, b);
                rc = -1;
            }
            a[k] = (int32_t)b;
        }
        char errstr[256];
        if (rc == 0 && set(obj, (int32_t)i, a, (size_t)n, errstr,
                           sizeof(errstr)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            PyErr_Format(PyExc_ValueError, "%s(): %s", r->fname, errstr);
            rc = -1;
        }
        free(a);
        Py_DECREF(ids);
    }
    Py_DECREF(seq);
    return rc;
}

/* Calls set(obj, name, value) for each item of the dict o.attr. */
static int
set_configs(akc_admin_req *r, PyObject *o, const char *attr, void *obj,
            int (*set)(void *, const char *, const char *))
{
    PyObject *d = PyObject_GetAttrString(o, attr);
    if (d == NULL) {
        return -1;
    }
    if (!PyDict_Check(d)) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must be a dict", r->fname,
                     attr);
        Py_DECREF(d);
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    int rc = 0;
    while (rc == 0 && PyDict_Next(d, &pos, &k, &v)) {
        if (!PyUnicode_Check(k) || !PyUnicode_Check(v)) {
            PyErr_Format(PyExc_TypeError, "%s(): %s must map str to str",
                         r->fname, attr);
            rc = -1;
            break;
        }
        const char *ks = PyUnicode_AsUTF8(k), *vs = PyUnicode_AsUTF8(v);
        if (ks == NULL || vs == NULL || akc_check_c_string(k, attr) < 0 ||
            akc_check_c_string(v, attr) < 0) {
            rc = -1;
        }
        else if (set(obj, ks, vs) != 0) {
            PyErr_Format(PyExc_ValueError, "%s(): cannot set %s=%s",
                         r->fname, ks, vs);
            rc = -1;
        }
    }
    Py_DECREF(d);
    return rc;
}

static int
newtopic_set_config(void *o, const char *k, const char *v)
{
    return rd_kafka_NewTopic_set_config(o, k, v) != 0;
}

static int
configresource_set_config(void *o, const char *k, const char *v)
{
    return rd_kafka_ConfigResource_set_config(o, k, v) != 0;
}

static rd_kafka_resp_err_t
newtopic_set_assignment(void *o, int32_t i, int32_t *ids, size_t n,
                        char *errstr, size_t size)
{
    return rd_kafka_NewTopic_set_replica_assignment(o, i, ids, n, errstr,
                                                    size);
}

static rd_kafka_resp_err_t
newparts_set_assignment(void *o, int32_t i, int32_t *ids, size_t n,
                        char *errstr, size_t size)
{
    return rd_kafka_NewPartitions_set_replica_assignment(o, i, ids, n,
                                                         errstr, size);
}

static void destroy_newtopic(void *o) { rd_kafka_NewTopic_destroy(o); }
static void destroy_deltopic(void *o) { rd_kafka_DeleteTopic_destroy(o); }
static void destroy_newparts(void *o) { rd_kafka_NewPartitions_destroy(o); }
static void destroy_configres(void *o) { rd_kafka_ConfigResource_destroy(o); }
static void destroy_nothing(void *o) { (void)o; }

/* ---- topics ------------------------------------------------------------ */

static const int topic_opts[] = {OPT_OPERATION, OPT_REQUEST, OPT_VALIDATE,
                                 -1};
static const int delete_opts[] = {OPT_OPERATION, OPT_REQUEST, -1};
static const int request_opts[] = {OPT_REQUEST, -1};

PyObject *
akc_admin_create_topics(AdminObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "create_topics";
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    akc_admin_req r;
    if (akc_adm_parse(fname, "new_topics", topic_opts, args, nargs, kwnames,
                      &items, optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname, RD_KAFKA_ADMIN_OP_CREATETOPICS, items,
                      "new_topics", optv) < 0) {
        return akc_adm_fail(&r);
    }
    r.destroy = destroy_newtopic;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        int ok, np, rf;
        char errstr[256];
        const char *name;
        if (akc_adm_check_type(&r, o, "NewTopic", "new_topics") < 0 ||
            (name = akc_adm_attr_str(&r, o, "topic", 0, &ok)) == NULL ||
            akc_adm_attr_int(&r, o, "num_partitions", &np) < 0 ||
            akc_adm_attr_int(&r, o, "replication_factor", &rf) < 0) {
            return akc_adm_fail(&r);
        }
        r.objs[r.nobjs++] = rd_kafka_NewTopic_new(name, np, rf, errstr,
                                                  sizeof(errstr));
        if (r.objs[i] == NULL) {
            PyErr_Format(PyExc_ValueError, "%s(): %s", fname, errstr);
            return akc_adm_fail(&r);
        }
        PyObject *key = PyList_GET_ITEM(r.keep, PyList_GET_SIZE(r.keep) - 1);
        if (set_assignment(&r, o, r.objs[i], newtopic_set_assignment) < 0 ||
            set_configs(&r, o, "config", r.objs[i], newtopic_set_config) <
                0 ||
            akc_adm_future(&r, key, key) < 0) {
            return akc_adm_fail(&r);
        }
    }
    rd_kafka_queue_t *q = akc_adm_submit(&r, ADMIN_CREATE_TOPICS);
    if (q == NULL) {
        return akc_adm_fail(&r);
    }
    rd_kafka_CreateTopics(r.rk, (rd_kafka_NewTopic_t **)r.objs, r.nobjs,
                          r.options, q);
    return akc_adm_done(&r, q, 0);
}

PyObject *
akc_admin_delete_topics(AdminObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "delete_topics";
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    akc_admin_req r;
    if (akc_adm_parse(fname, "topics", delete_opts, args, nargs, kwnames,
                      &items, optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname, RD_KAFKA_ADMIN_OP_DELETETOPICS, items,
                      "topics", optv) < 0) {
        return akc_adm_fail(&r);
    }
    r.destroy = destroy_deltopic;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        const char *name = akc_adm_item_str(&r, o, "topics");
        if (name == NULL || akc_adm_future(&r, o, o) < 0) {
            return akc_adm_fail(&r);
        }
        r.objs[r.nobjs++] = rd_kafka_DeleteTopic_new(name);
    }
    rd_kafka_queue_t *q = akc_adm_submit(&r, ADMIN_DELETE_TOPICS);
    if (q == NULL) {
        return akc_adm_fail(&r);
    }
    rd_kafka_DeleteTopics(r.rk, (rd_kafka_DeleteTopic_t **)r.objs, r.nobjs,
                          r.options, q);
    return akc_adm_done(&r, q, 0);
}

PyObject *
akc_admin_create_partitions(AdminObject *self, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "create_partitions";
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    akc_admin_req r;
    if (akc_adm_parse(fname, "new_partitions", topic_opts, args, nargs,
                      kwnames, &items, optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS,
                      items, "new_partitions", optv) < 0) {
        return akc_adm_fail(&r);
    }
    r.destroy = destroy_newparts;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        int ok, count;
        char errstr[256];
        const char *name;
        if (akc_adm_check_type(&r, o, "NewPartitions", "new_partitions") < 0 ||
            (name = akc_adm_attr_str(&r, o, "topic", 0, &ok)) == NULL ||
            akc_adm_attr_int(&r, o, "new_total_count", &count) < 0) {
            return akc_adm_fail(&r);
        }
        r.objs[r.nobjs++] = rd_kafka_NewPartitions_new(
            name, count < 0 ? 0 : (size_t)count, errstr, sizeof(errstr));
        if (r.objs[i] == NULL) {
            PyErr_Format(PyExc_ValueError, "%s(): %s", fname, errstr);
            return akc_adm_fail(&r);
        }
        PyObject *key = PyList_GET_ITEM(r.keep, PyList_GET_SIZE(r.keep) - 1);
        if (set_assignment(&r, o, r.objs[i], newparts_set_assignment) < 0 ||
            akc_adm_future(&r, key, key) < 0) {
            return akc_adm_fail(&r);
        }
    }
    rd_kafka_queue_t *q = akc_adm_submit(&r, ADMIN_CREATE_PARTITIONS);
    if (q == NULL) {
        return akc_adm_fail(&r);
    }
    rd_kafka_CreatePartitions(r.rk, (rd_kafka_NewPartitions_t **)r.objs,
                              r.nobjs, r.options, q);
    return akc_adm_done(&r, q, 0);
}

/* ---- configs ----------------------------------------------------------- */

static PyObject *
configs_op(AdminObject *self, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames, int alter)
{
    const char *fname = alter ? "alter_configs" : "describe_configs";
    static const int alter_opts[] = {OPT_REQUEST, OPT_VALIDATE, -1};
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    akc_admin_req r;
    int op = alter ? ADMIN_ALTER_CONFIGS : ADMIN_DESCRIBE_CONFIGS;
    if (akc_adm_parse(fname, "resources", alter ? alter_opts : request_opts,
                      args, nargs, kwnames, &items, optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname,
                      alter ? RD_KAFKA_ADMIN_OP_ALTERCONFIGS
                            : RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
                      items, "resources", optv) < 0) {
        return akc_adm_fail(&r);
    }
    r.destroy = destroy_configres;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        int ok, restype;
        const char *name;
        if (akc_adm_check_type(&r, o, "ConfigResource", "resources") < 0 ||
            akc_adm_attr_int(&r, o, "restype", &restype) < 0 ||
            (name = akc_adm_attr_str(&r, o, "name", 0, &ok)) == NULL) {
            return akc_adm_fail(&r);
        }
        r.objs[r.nobjs++] = rd_kafka_ConfigResource_new(
            (rd_kafka_ResourceType_t)restype, name);
        if (r.objs[i] == NULL) {
            PyErr_Format(PyExc_ValueError, "%s(): bad resource %R", fname,
                         o);
            return akc_adm_fail(&r);
        }
        PyObject *key = Py_BuildValue(
            "(iO)", restype,
            PyList_GET_ITEM(r.keep, PyList_GET_SIZE(r.keep) - 1));
        int rc = key ? 0 : -1;
        if (rc == 0 && alter) {
            rc = set_configs(&r, o, "set_config_dict", r.objs[i],
                             configresource_set_config);
        }
        if (rc == 0) {
            rc = akc_adm_future(&r, o, key);
        }
        Py_XDECREF(key);
        if (rc < 0) {
            return akc_adm_fail(&r);
        }
    }
    rd_kafka_queue_t *q = akc_adm_submit(&r, op);
    if (q == NULL) {
        return akc_adm_fail(&r);
    }
    if (alter) {
        rd_kafka_AlterConfigs(r.rk, (rd_kafka_ConfigResource_t **)r.objs,
                              r.nobjs, r.options, q);
    }
    else {
        rd_kafka_DescribeConfigs(r.rk, (rd_kafka_ConfigResource_t **)r.objs,
                                 r.nobjs, r.options, q);
    }
    return akc_adm_done(&r, q, 0);
}

PyObject *
akc_admin_describe_configs(AdminObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    return configs_op(self, args, nargs, kwnames, 0);
}

PyObject *
akc_admin_alter_configs(AdminObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    return configs_op(self, args, nargs, kwnames, 1);
}

/* ---- records ----------------------------------------------------------- */

PyObject *
akc_admin_delete_records(AdminObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "delete_records";
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    akc_admin_req r;
    akc_state *st = self->core.st;
    if (akc_adm_parse(fname, "topic_partition_offsets", delete_opts, args,
                      nargs, kwnames, &items, optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname, RD_KAFKA_ADMIN_OP_DELETERECORDS, items,
                      "topic_partition_offsets", optv) < 0) {
        return akc_adm_fail(&r);
    }
    r.destroy = destroy_nothing;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        if (!akc_tp_check(st, o)) {
            PyErr_Format(PyExc_TypeError,
                         "%s(): topic_partition_offsets must hold "
                         "TopicPartition, not %.100s",
                         fname, Py_TYPE(o)->tp_name);
            return akc_adm_fail(&r);
        }
        TopicPartitionObject *tp = (TopicPartitionObject *)o;
        PyObject *key = Py_BuildValue("(Oi)", tp->topic, (int)tp->partition);
        int rc = key ? akc_adm_future(&r, key, key) : -1;
        Py_XDECREF(key);
        if (rc < 0) {
            return akc_adm_fail(&r);
        }
    }
    /* The user's keys are TopicPartitions: fs is rebuilt from them, before
     * the request goes out (nothing may fail after it has). */
    PyObject *fs = PyDict_New();
    for (size_t i = 0; fs != NULL && i < NITEMS(&r); i++) {
        TopicPartitionObject *tp = (TopicPartitionObject *)ITEMS(&r)[i];
        PyObject *key = Py_BuildValue("(Oi)", tp->topic, (int)tp->partition);
        PyObject *fut = key ? PyDict_GetItemWithError(r.lookup, key) : NULL;
        if (fut == NULL || PyDict_SetItem(fs, (PyObject *)tp, fut) < 0) {
            if (fut == NULL && !PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError,
                             "%s(): the partitions changed while read",
                             fname);
            }
            Py_CLEAR(fs);
        }
        Py_XDECREF(key);
    }
    if (fs == NULL) {
        return akc_adm_fail(&r);
    }
    rd_kafka_topic_partition_list_t *l = akc_tplist_from_py(st, r.seq,
                                                            fname);
    if (l == NULL) {
        Py_DECREF(fs);
        return akc_adm_fail(&r);
    }
    rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_queue_t *q = akc_adm_submit(&r, ADMIN_DELETE_RECORDS);
    if (q == NULL) {
        rd_kafka_DeleteRecords_destroy(del);
        Py_DECREF(fs);
        return akc_adm_fail(&r);
    }
    rd_kafka_DeleteRecords(r.rk, &del, 1, r.options, q);
    rd_kafka_DeleteRecords_destroy(del);
    PyObject *done = akc_adm_done(&r, q, 0);
    Py_XDECREF(done);
    return fs;
}

