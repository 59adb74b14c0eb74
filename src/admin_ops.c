/* AIOAdminClient's operations: argument checks and conversions, then one
 * librdkafka admin request each.  Loop thread, GIL held; nothing here
 * blocks (librdkafka only enqueues the request). */
#include "admin.h"
#include "errors.h"
#include "topic_partition.h"

#include <stdlib.h>
#include <string.h>

/* What a request is being built with; freed by req_clear(). */
typedef struct {
    AdminObject *self;
    const char *fname;
    rd_kafka_t *rk;
    PyObject *seq;    /* the items, as a fast sequence */
    PyObject *keep;   /* list: objects whose UTF-8 the request borrows */
    PyObject *fs;     /* what the caller gets: user key -> future */
    PyObject *lookup; /* result key -> future */
    void **objs;      /* librdkafka request objects */
    size_t nobjs;
    void (*destroy)(void *);
    rd_kafka_AdminOptions_t *options;
    intptr_t id;
} admin_req;

static void
req_clear(admin_req *r)
{
    for (size_t i = 0; i < r->nobjs; i++) {
        if (r->objs[i] != NULL) {
            r->destroy(r->objs[i]);
        }
    }
    free(r->objs);
    if (r->options != NULL) {
        rd_kafka_AdminOptions_destroy(r->options);
    }
    Py_XDECREF(r->seq);
    Py_XDECREF(r->keep);
    Py_XDECREF(r->fs);
    Py_XDECREF(r->lookup);
}

/* Option names in their (fixed) order of the names[] arrays below. */
enum { OPT_REQUEST = 0, OPT_OPERATION, OPT_VALIDATE, OPT_STABLE,
       OPT_STATES, NOPTS };
static const char *const opt_names[NOPTS] = {
    "request_timeout", "operation_timeout", "validate_only",
    "require_stable", "states"};

/* Parses (first, options...) with `first` positional; opts lists the
 * options the method takes (-1 terminated) and gets their values in
 * optv[OPT_*] (NULL: not given).  Returns 0 or -1 with TypeError. */
static int
req_parse(const char *fname, const char *first, const int *opts,
          PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
          PyObject **firstv, PyObject **optv)
{
    PyObject *names[NOPTS + 2] = {NULL};
    PyObject *out[NOPTS + 1] = {NULL};
    int n = 0, rc = -1;
    if (first != NULL && (names[n++] = PyUnicode_InternFromString(first)) ==
                             NULL) {
        goto done;
    }
    for (int i = 0; opts[i] >= 0; i++) {
        if ((names[n++] = PyUnicode_InternFromString(opt_names[opts[i]])) ==
            NULL) {
            goto done;
        }
    }
    int npos = first != NULL;
    if (akc_parse_args(fname, args, nargs, kwnames, names, npos, npos,
                       out) < 0) {
        goto done;
    }
    if (first != NULL) {
        *firstv = out[0];
    }
    for (int i = 0; opts[i] >= 0; i++) {
        optv[opts[i]] = out[npos + i];
    }
    rc = 0;
done:
    for (int i = 0; i < n; i++) {
        Py_XDECREF(names[i]);
    }
    return rc;
}

/* A timeout option in ms: -1 when not given or None. */
static int
opt_ms(PyObject *v, int *ms)
{
    *ms = -1;
    return v == NULL ? 0 : akc_timeout_ms(v, ms);
}

/* Starts a request: the handle, the item list (a non-empty list or
 * tuple, or, seq_of == NULL, none), the result dicts and the options
 * with the request's id as opaque.  Returns 0 or -1. */
static int
req_start(admin_req *r, AdminObject *self, const char *fname,
          rd_kafka_admin_op_t api, PyObject *items, const char *items_name,
          PyObject **optv)
{
    memset(r, 0, sizeof(*r));
    r->self = self;
    r->fname = fname;
    r->id = -1;
    int req_ms, op_ms;
    if (opt_ms(optv[OPT_REQUEST], &req_ms) < 0 ||
        opt_ms(optv[OPT_OPERATION], &op_ms) < 0) {
        return -1;
    }
    int validate = optv[OPT_VALIDATE] ? PyObject_IsTrue(optv[OPT_VALIDATE])
                                      : 0;
    if (validate < 0) {
        return -1;
    }
    if (items_name != NULL) {
        if (!PyList_Check(items) && !PyTuple_Check(items)) {
            PyErr_Format(PyExc_TypeError,
                         "%s(): %s must be a list, not %.100s", fname,
                         items_name, Py_TYPE(items)->tp_name);
            return -1;
        }
        r->seq = PySequence_Fast(items, items_name);
        if (r->seq == NULL) {
            return -1;
        }
        if (PySequence_Fast_GET_SIZE(r->seq) == 0) {
            PyErr_Format(PyExc_ValueError, "%s(): %s must not be empty",
                         fname, items_name);
            return -1;
        }
        r->objs = calloc((size_t)PySequence_Fast_GET_SIZE(r->seq),
                         sizeof(void *));
        if (r->objs == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    r->keep = PyList_New(0);
    r->fs = PyDict_New();
    r->lookup = PyDict_New();
    if (r->keep == NULL || r->fs == NULL || r->lookup == NULL ||
        (r->rk = akc_admin_handle(self, fname)) == NULL) {
        return -1;
    }
    r->options = rd_kafka_AdminOptions_new(r->rk, api);
    if (r->options == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    char errstr[256];
    if ((req_ms >= 0 &&
         rd_kafka_AdminOptions_set_request_timeout(r->options, req_ms, errstr,
                                                   sizeof(errstr))) ||
        (op_ms >= 0 &&
         rd_kafka_AdminOptions_set_operation_timeout(r->options, op_ms,
                                                     errstr,
                                                     sizeof(errstr))) ||
        (validate && rd_kafka_AdminOptions_set_validate_only(
                         r->options, 1, errstr, sizeof(errstr)))) {
        PyErr_Format(PyExc_ValueError, "%s(): %s", fname, errstr);
        return -1;
    }
    return 0;
}

/* Adds a future under user key ukey (in fs) and result key rkey (in
 * lookup; borrowed).  A key given twice is a ValueError. */
static int
req_future(admin_req *r, PyObject *ukey, PyObject *rkey)
{
    int dup = PyDict_Contains(r->fs, ukey);
    if (dup == 0) {
        dup = PyDict_Contains(r->lookup, rkey);
    }
    if (dup != 0) {
        if (dup > 0) {
            PyErr_Format(PyExc_ValueError, "%s(): %R is given twice",
                         r->fname, ukey);
        }
        return -1;
    }
    PyObject *fut = akc_dispatcher_new_future(r->self->core.dispatcher);
    if (fut == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(r->fs, ukey, fut) < 0 ||
                     PyDict_SetItem(r->lookup, rkey, fut) < 0
                 ? -1
                 : 0;
    Py_DECREF(fut);
    return rc;
}

/* Registers the request and puts its id in the options, just before the
 * librdkafka call; the client is checked again (making futures ran the
 * loop's code).  Returns the queue to pass, or NULL with an exception. */
static rd_kafka_queue_t *
req_submit(admin_req *r, int op)
{
    if (akc_core_check_open(&r->self->core, r->fname) < 0) {
        return NULL;
    }
    r->id = akc_admin_register(r->self, op, r->lookup);
    if (r->id < 0) {
        return NULL;
    }
    rd_kafka_AdminOptions_set_opaque(r->options, (void *)r->id);
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(r->rk);
    if (q == NULL) {
        akc_admin_unregister(r->self, r->id);
        akc_raise(r->self->core.st, RD_KAFKA_RESP_ERR__STATE,
                  "the client has no queue");
    }
    return q;
}

/* The caller's dict (or, single, its one future), and the request's C
 * parts freed. */
static PyObject *
req_done(admin_req *r, rd_kafka_queue_t *q, int single)
{
    rd_kafka_queue_destroy(q);
    PyObject *out;
    if (single) {
        out = PyDict_GetItemWithError(r->lookup, Py_None);
        Py_XINCREF(out);
    }
    else {
        out = Py_NewRef(r->fs);
    }
    req_clear(r);
    return out;
}

static PyObject *
req_fail(admin_req *r)
{
    req_clear(r);
    return NULL;
}

/* ---- attribute helpers --------------------------------------------- */

static int
check_type(admin_req *r, PyObject *o, const char *type, const char *what)
{
    PyObject *cls = PyObject_GetAttrString(r->self->types, type);
    if (cls == NULL) {
        return -1;
    }
    int ok = PyObject_IsInstance(o, cls);
    Py_DECREF(cls);
    if (ok == 0) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must hold %s, not %.100s",
                     r->fname, what, type, Py_TYPE(o)->tp_name);
    }
    return ok > 0 ? 0 : -1;
}

/* o.attr as a C string borrowed from r->keep; NULL for None when
 * optional (*ok set to 1 on success either way). */
static const char *
attr_str(admin_req *r, PyObject *o, const char *attr, int optional, int *ok)
{
    *ok = 0;
    PyObject *v = PyObject_GetAttrString(o, attr);
    if (v == NULL) {
        return NULL;
    }
    const char *s = NULL;
    if (v == Py_None && optional) {
        *ok = 1;
    }
    else if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must be str, not %.100s",
                     r->fname, attr, Py_TYPE(v)->tp_name);
    }
    else if (akc_check_c_string(v, attr) == 0 &&
             PyList_Append(r->keep, v) == 0 &&
             (s = PyUnicode_AsUTF8(v)) != NULL) {
        *ok = 1;
    }
    Py_DECREF(v);
    return s;
}

static int
attr_int(admin_req *r, PyObject *o, const char *attr, int *out)
{
    PyObject *v = PyObject_GetAttrString(o, attr);
    if (v == NULL) {
        return -1;
    }
    long x = PyLong_Check(v) ? PyLong_AsLong(v) : -1;
    int bad = !PyLong_Check(v) || (x == -1 && PyErr_Occurred()) ||
              x < INT32_MIN || x > INT32_MAX;
    Py_DECREF(v);
    if (bad) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s(): %s must be an int (32 bits)",
                     r->fname, attr);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* A str item of the list (a topic or a group name). */
static const char *
item_str(admin_req *r, PyObject *o, const char *what)
{
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must hold str, not %.100s",
                     r->fname, what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(o) == 0) {
        PyErr_Format(PyExc_ValueError, "%s(): empty name in %s", r->fname,
                     what);
        return NULL;
    }
    if (akc_check_c_string(o, what) < 0) {
        return NULL;
    }
    return PyUnicode_AsUTF8(o);
}

/* Calls set(obj, i, ids, n, errstr, size) for each partition of
 * o.replica_assignment (a list of lists of broker ids). */
typedef rd_kafka_resp_err_t (*set_assignment_fn)(void *, int32_t,
                                                   int32_t *, size_t, char *,
                                                   size_t);

static int
set_assignment(admin_req *r, PyObject *o, void *obj, set_assignment_fn set)
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
set_configs(admin_req *r, PyObject *o, const char *attr, void *obj,
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
static void destroy_delgroup(void *o) { rd_kafka_DeleteGroup_destroy(o); }
static void destroy_acl(void *o) { rd_kafka_AclBinding_destroy(o); }
static void destroy_nothing(void *o) { (void)o; }

#define ITEMS(r) PySequence_Fast_ITEMS((r)->seq)
#define NITEMS(r) ((size_t)PySequence_Fast_GET_SIZE((r)->seq))

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
    admin_req r;
    if (req_parse(fname, "new_topics", topic_opts, args, nargs, kwnames,
                  &items, optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname, RD_KAFKA_ADMIN_OP_CREATETOPICS, items,
                  "new_topics", optv) < 0) {
        return req_fail(&r);
    }
    r.destroy = destroy_newtopic;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        int ok, np, rf;
        char errstr[256];
        const char *name;
        if (check_type(&r, o, "NewTopic", "new_topics") < 0 ||
            (name = attr_str(&r, o, "topic", 0, &ok)) == NULL ||
            attr_int(&r, o, "num_partitions", &np) < 0 ||
            attr_int(&r, o, "replication_factor", &rf) < 0) {
            return req_fail(&r);
        }
        r.objs[r.nobjs++] = rd_kafka_NewTopic_new(name, np, rf, errstr,
                                                  sizeof(errstr));
        if (r.objs[i] == NULL) {
            PyErr_Format(PyExc_ValueError, "%s(): %s", fname, errstr);
            return req_fail(&r);
        }
        PyObject *key = PyList_GET_ITEM(r.keep, PyList_GET_SIZE(r.keep) - 1);
        if (set_assignment(&r, o, r.objs[i], newtopic_set_assignment) < 0 ||
            set_configs(&r, o, "config", r.objs[i], newtopic_set_config) <
                0 ||
            req_future(&r, key, key) < 0) {
            return req_fail(&r);
        }
    }
    rd_kafka_queue_t *q = req_submit(&r, ADMIN_CREATE_TOPICS);
    if (q == NULL) {
        return req_fail(&r);
    }
    rd_kafka_CreateTopics(r.rk, (rd_kafka_NewTopic_t **)r.objs, r.nobjs,
                          r.options, q);
    return req_done(&r, q, 0);
}

PyObject *
akc_admin_delete_topics(AdminObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "delete_topics";
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    admin_req r;
    if (req_parse(fname, "topics", delete_opts, args, nargs, kwnames, &items,
                  optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname, RD_KAFKA_ADMIN_OP_DELETETOPICS, items,
                  "topics", optv) < 0) {
        return req_fail(&r);
    }
    r.destroy = destroy_deltopic;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        const char *name = item_str(&r, o, "topics");
        if (name == NULL || req_future(&r, o, o) < 0) {
            return req_fail(&r);
        }
        r.objs[r.nobjs++] = rd_kafka_DeleteTopic_new(name);
    }
    rd_kafka_queue_t *q = req_submit(&r, ADMIN_DELETE_TOPICS);
    if (q == NULL) {
        return req_fail(&r);
    }
    rd_kafka_DeleteTopics(r.rk, (rd_kafka_DeleteTopic_t **)r.objs, r.nobjs,
                          r.options, q);
    return req_done(&r, q, 0);
}

PyObject *
akc_admin_create_partitions(AdminObject *self, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "create_partitions";
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    admin_req r;
    if (req_parse(fname, "new_partitions", topic_opts, args, nargs, kwnames,
                  &items, optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS,
                  items, "new_partitions", optv) < 0) {
        return req_fail(&r);
    }
    r.destroy = destroy_newparts;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        int ok, count;
        char errstr[256];
        const char *name;
        if (check_type(&r, o, "NewPartitions", "new_partitions") < 0 ||
            (name = attr_str(&r, o, "topic", 0, &ok)) == NULL ||
            attr_int(&r, o, "new_total_count", &count) < 0) {
            return req_fail(&r);
        }
        r.objs[r.nobjs++] = rd_kafka_NewPartitions_new(
            name, count < 0 ? 0 : (size_t)count, errstr, sizeof(errstr));
        if (r.objs[i] == NULL) {
            PyErr_Format(PyExc_ValueError, "%s(): %s", fname, errstr);
            return req_fail(&r);
        }
        PyObject *key = PyList_GET_ITEM(r.keep, PyList_GET_SIZE(r.keep) - 1);
        if (set_assignment(&r, o, r.objs[i], newparts_set_assignment) < 0 ||
            req_future(&r, key, key) < 0) {
            return req_fail(&r);
        }
    }
    rd_kafka_queue_t *q = req_submit(&r, ADMIN_CREATE_PARTITIONS);
    if (q == NULL) {
        return req_fail(&r);
    }
    rd_kafka_CreatePartitions(r.rk, (rd_kafka_NewPartitions_t **)r.objs,
                              r.nobjs, r.options, q);
    return req_done(&r, q, 0);
}

/* ---- configs ----------------------------------------------------------- */

static PyObject *
configs_op(AdminObject *self, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames, int alter)
{
    const char *fname = alter ? "alter_configs" : "describe_configs";
    static const int alter_opts[] = {OPT_REQUEST, OPT_VALIDATE, -1};
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    admin_req r;
    int op = alter ? ADMIN_ALTER_CONFIGS : ADMIN_DESCRIBE_CONFIGS;
    if (req_parse(fname, "resources", alter ? alter_opts : request_opts,
                  args, nargs, kwnames, &items, optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname,
                  alter ? RD_KAFKA_ADMIN_OP_ALTERCONFIGS
                        : RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
                  items, "resources", optv) < 0) {
        return req_fail(&r);
    }
    r.destroy = destroy_configres;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        int ok, restype;
        const char *name;
        if (check_type(&r, o, "ConfigResource", "resources") < 0 ||
            attr_int(&r, o, "restype", &restype) < 0 ||
            (name = attr_str(&r, o, "name", 0, &ok)) == NULL) {
            return req_fail(&r);
        }
        r.objs[r.nobjs++] = rd_kafka_ConfigResource_new(
            (rd_kafka_ResourceType_t)restype, name);
        if (r.objs[i] == NULL) {
            PyErr_Format(PyExc_ValueError, "%s(): bad resource %R", fname,
                         o);
            return req_fail(&r);
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
            rc = req_future(&r, o, key);
        }
        Py_XDECREF(key);
        if (rc < 0) {
            return req_fail(&r);
        }
    }
    rd_kafka_queue_t *q = req_submit(&r, op);
    if (q == NULL) {
        return req_fail(&r);
    }
    if (alter) {
        rd_kafka_AlterConfigs(r.rk, (rd_kafka_ConfigResource_t **)r.objs,
                              r.nobjs, r.options, q);
    }
    else {
        rd_kafka_DescribeConfigs(r.rk, (rd_kafka_ConfigResource_t **)r.objs,
                                 r.nobjs, r.options, q);
    }
    return req_done(&r, q, 0);
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
    admin_req r;
    akc_state *st = self->core.st;
    if (req_parse(fname, "topic_partition_offsets", delete_opts, args, nargs,
                  kwnames, &items, optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname, RD_KAFKA_ADMIN_OP_DELETERECORDS, items,
                  "topic_partition_offsets", optv) < 0) {
        return req_fail(&r);
    }
    r.destroy = destroy_nothing;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        if (!akc_tp_check(st, o)) {
            PyErr_Format(PyExc_TypeError,
                         "%s(): topic_partition_offsets must hold "
                         "TopicPartition, not %.100s",
                         fname, Py_TYPE(o)->tp_name);
            return req_fail(&r);
        }
        TopicPartitionObject *tp = (TopicPartitionObject *)o;
        PyObject *key = Py_BuildValue("(Oi)", tp->topic, (int)tp->partition);
        int rc = key ? req_future(&r, key, key) : -1;
        Py_XDECREF(key);
        if (rc < 0) {
            return req_fail(&r);
        }
    }
    rd_kafka_topic_partition_list_t *l = akc_tplist_from_py(st, r.seq,
                                                            fname);
    if (l == NULL) {
        return req_fail(&r);
    }
    rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_queue_t *q = req_submit(&r, ADMIN_DELETE_RECORDS);
    if (q == NULL) {
        rd_kafka_DeleteRecords_destroy(del);
        return req_fail(&r);
    }
    rd_kafka_DeleteRecords(r.rk, &del, 1, r.options, q);
    rd_kafka_DeleteRecords_destroy(del);
    /* The user's keys are TopicPartitions: fs is rebuilt from them. */
    PyObject *fs = PyDict_New();
    for (size_t i = 0; fs != NULL && i < NITEMS(&r); i++) {
        TopicPartitionObject *tp = (TopicPartitionObject *)ITEMS(&r)[i];
        PyObject *key = Py_BuildValue("(Oi)", tp->topic, (int)tp->partition);
        PyObject *fut = key ? PyDict_GetItemWithError(r.lookup, key) : NULL;
        if (fut == NULL || PyDict_SetItem(fs, (PyObject *)tp, fut) < 0) {
            Py_CLEAR(fs);
        }
        Py_XDECREF(key);
    }
    PyObject *done = req_done(&r, q, 0);
    Py_XDECREF(done);
    return fs;
}

/* ---- consumer groups --------------------------------------------------- */

PyObject *
akc_admin_list_consumer_groups(AdminObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "list_consumer_groups";
    static const int opts[] = {OPT_STATES, OPT_REQUEST, -1};
    PyObject *optv[NOPTS] = {NULL};
    admin_req r;
    if (req_parse(fname, NULL, opts, args, nargs, kwnames, NULL, optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS,
                  NULL, NULL, optv) < 0) {
        return req_fail(&r);
    }
    PyObject *states = optv[OPT_STATES];
    if (states != NULL && states != Py_None) {
        PyObject *seq = PySequence_Fast(states, "states must be a set of "
                                                "ConsumerGroupState");
        if (seq == NULL) {
            return req_fail(&r);
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        rd_kafka_consumer_group_state_t *a = calloc(n > 0 ? (size_t)n : 1,
                                                    sizeof(*a));
        int rc = a ? 0 : -1;
        for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
            PyObject *s = PySequence_Fast_GET_ITEM(seq, i);
            long v = PyLong_Check(s) ? PyLong_AsLong(s) : -1;
            if (v < 0 || v >= RD_KAFKA_CONSUMER_GROUP_STATE__CNT) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError,
                             "%s(): states must hold ConsumerGroupState, "
                             "not %R", fname, s);
                rc = -1;
            }
            else {
                a[i] = (rd_kafka_consumer_group_state_t)v;
            }
        }
        if (rc == 0 && n > 0) {
            rd_kafka_error_t *e =
                rd_kafka_AdminOptions_set_match_consumer_group_states(
                    r.options, a, (size_t)n);
            if (e != NULL) {
                PyErr_Format(PyExc_ValueError, "%s(): %s", fname,
                             rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                rc = -1;
            }
        }
        if (a == NULL) {
            PyErr_NoMemory();
        }
        free(a);
        Py_DECREF(seq);
        if (rc < 0) {
            return req_fail(&r);
        }
    }
    if (req_future(&r, Py_None, Py_None) < 0) {
        return req_fail(&r);
    }
    rd_kafka_queue_t *q = req_submit(&r, ADMIN_LIST_GROUPS);
    if (q == NULL) {
        return req_fail(&r);
    }
    rd_kafka_ListConsumerGroups(r.rk, r.options, q);
    return req_done(&r, q, 1);
}

/* A list of group ids: describe (one call with names) or delete. */
static PyObject *
groups_op(AdminObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames, int delete)
{
    const char *fname = delete ? "delete_consumer_groups"
                               : "describe_consumer_groups";
    int op = delete ? ADMIN_DELETE_GROUPS : ADMIN_DESCRIBE_GROUPS;
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    admin_req r;
    if (req_parse(fname, "group_ids", request_opts, args, nargs, kwnames,
                  &items, optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname,
                  delete ? RD_KAFKA_ADMIN_OP_DELETEGROUPS
                         : RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
                  items, "group_ids", optv) < 0) {
        return req_fail(&r);
    }
    r.destroy = delete ? destroy_delgroup : destroy_nothing;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        const char *name = item_str(&r, o, "group_ids");
        if (name == NULL || req_future(&r, o, o) < 0) {
            return req_fail(&r);
        }
        r.objs[r.nobjs++] = delete ? (void *)rd_kafka_DeleteGroup_new(name)
                                   : (void *)name;
    }
    rd_kafka_queue_t *q = req_submit(&r, op);
    if (q == NULL) {
        return req_fail(&r);
    }
    if (delete) {
        rd_kafka_DeleteGroups(r.rk, (rd_kafka_DeleteGroup_t **)r.objs,
                              r.nobjs, r.options, q);
    }
    else {
        rd_kafka_DescribeConsumerGroups(r.rk, (const char **)r.objs, r.nobjs,
                                        r.options, q);
    }
    return req_done(&r, q, 0);
}

PyObject *
akc_admin_describe_consumer_groups(AdminObject *self, PyObject *const *args,
                                   Py_ssize_t nargs, PyObject *kwnames)
{
    return groups_op(self, args, nargs, kwnames, 0);
}

PyObject *
akc_admin_delete_consumer_groups(AdminObject *self, PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames)
{
    return groups_op(self, args, nargs, kwnames, 1);
}

/* One ConsumerGroupTopicPartitions: list its offsets (partitions may be
 * None: all), alter them, or delete them. */
enum { OFFSETS_LIST, OFFSETS_ALTER, OFFSETS_DELETE };

static const struct {
    const char *fname, *what;
    rd_kafka_admin_op_t api;
    int op;
} offsets_kinds[] = {
    {"list_consumer_group_offsets", "list_consumer_group_offsets_request",
     RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, ADMIN_LIST_OFFSETS},
    {"alter_consumer_group_offsets", "alter_consumer_group_offsets_request",
     RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, ADMIN_ALTER_OFFSETS},
    {"delete_consumer_group_offsets",
     "delete_consumer_group_offsets_request",
     RD_KAFKA_ADMIN_OP_DELETECONSUMERGROUPOFFSETS, ADMIN_DELETE_OFFSETS},
};

/* Sends the one request of kind for group and l. */
static void
offsets_send(admin_req *r, int kind, const char *group,
             const rd_kafka_topic_partition_list_t *l, rd_kafka_queue_t *q)
{
    if (kind == OFFSETS_LIST) {
        rd_kafka_ListConsumerGroupOffsets_t *o =
            rd_kafka_ListConsumerGroupOffsets_new(group, l);
        rd_kafka_ListConsumerGroupOffsets(r->rk, &o, 1, r->options, q);
        rd_kafka_ListConsumerGroupOffsets_destroy(o);
    }
    else if (kind == OFFSETS_ALTER) {
        rd_kafka_AlterConsumerGroupOffsets_t *o =
            rd_kafka_AlterConsumerGroupOffsets_new(group, l);
        rd_kafka_AlterConsumerGroupOffsets(r->rk, &o, 1, r->options, q);
        rd_kafka_AlterConsumerGroupOffsets_destroy(o);
    }
    else {
        rd_kafka_DeleteConsumerGroupOffsets_t *o =
            rd_kafka_DeleteConsumerGroupOffsets_new(group, l);
        rd_kafka_DeleteConsumerGroupOffsets(r->rk, &o, 1, r->options, q);
        rd_kafka_DeleteConsumerGroupOffsets_destroy(o);
    }
}

/* require_stable, for list only. */
static int
offsets_stable(admin_req *r, PyObject *v)
{
    if (v == NULL) {
        return 0;
    }
    int stable = PyObject_IsTrue(v);
    if (stable < 0) {
        return -1;
    }
    rd_kafka_error_t *e = rd_kafka_AdminOptions_set_require_stable_offsets(
        r->options, stable);
    if (e != NULL) {
        PyErr_Format(PyExc_ValueError, "%s(): %s", r->fname,
                     rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return -1;
    }
    return 0;
}

static PyObject *
offsets_op(AdminObject *self, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames, int kind)
{
    static const int list_opts[] = {OPT_STABLE, OPT_REQUEST, -1};
    const char *fname = offsets_kinds[kind].fname;
    const char *what = offsets_kinds[kind].what;
    int op = offsets_kinds[kind].op;
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    admin_req r;
    if (req_parse(fname, what,
                  kind == OFFSETS_LIST ? list_opts : request_opts, args,
                  nargs, kwnames, &items, optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname, offsets_kinds[kind].api, items, what,
                  optv) < 0 ||
        offsets_stable(&r, optv[OPT_STABLE]) < 0) {
        return req_fail(&r);
    }
    if (NITEMS(&r) != 1) {
        PyErr_Format(PyExc_ValueError, "%s(): exactly one "
                     "ConsumerGroupTopicPartitions is supported", fname);
        return req_fail(&r);
    }
    PyObject *o = ITEMS(&r)[0];
    int ok;
    const char *group;
    if (check_type(&r, o, "ConsumerGroupTopicPartitions", what) < 0 ||
        (group = attr_str(&r, o, "group_id", 0, &ok)) == NULL) {
        return req_fail(&r);
    }
    PyObject *parts = PyObject_GetAttrString(o, "topic_partitions");
    if (parts == NULL) {
        return req_fail(&r);
    }
    rd_kafka_topic_partition_list_t *l = NULL;
    if (parts != Py_None) {
        l = akc_tplist_from_py(self->core.st, parts, "topic_partitions");
    }
    else if (kind != OFFSETS_LIST) {
        PyErr_Format(PyExc_ValueError, "%s(): topic_partitions are "
                     "required", fname);
    }
    Py_DECREF(parts);
    PyObject *key = PyList_GET_ITEM(r.keep, PyList_GET_SIZE(r.keep) - 1);
    rd_kafka_queue_t *q = NULL;
    if (!PyErr_Occurred() && req_future(&r, key, key) == 0) {
        q = req_submit(&r, op);
    }
    if (q != NULL) {
        offsets_send(&r, kind, group, l, q);
    }
    if (l != NULL) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    return q != NULL ? req_done(&r, q, 0) : req_fail(&r);
}

PyObject *
akc_admin_list_consumer_group_offsets(AdminObject *self,
                                      PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames)
{
    return offsets_op(self, args, nargs, kwnames, OFFSETS_LIST);
}

PyObject *
akc_admin_alter_consumer_group_offsets(AdminObject *self,
                                       PyObject *const *args,
                                       Py_ssize_t nargs, PyObject *kwnames)
{
    return offsets_op(self, args, nargs, kwnames, OFFSETS_ALTER);
}

PyObject *
akc_admin_delete_consumer_group_offsets(AdminObject *self,
                                        PyObject *const *args,
                                        Py_ssize_t nargs, PyObject *kwnames)
{
    return offsets_op(self, args, nargs, kwnames, OFFSETS_DELETE);
}

/* ---- ACLs -------------------------------------------------------------- */

/* An AclBinding (filter: AclBindingFilter) from o, or NULL. */
static rd_kafka_AclBinding_t *
acl_from(admin_req *r, PyObject *o, int filter, const char *what)
{
    int restype, pattern, op, perm, ok;
    const char *name, *principal, *host;
    char errstr[256];
    if (check_type(r, o, filter ? "AclBindingFilter" : "AclBinding", what) <
            0 ||
        attr_int(r, o, "restype", &restype) < 0 ||
        attr_int(r, o, "resource_pattern_type", &pattern) < 0 ||
        attr_int(r, o, "operation", &op) < 0 ||
        attr_int(r, o, "permission_type", &perm) < 0) {
        return NULL;
    }
    name = attr_str(r, o, "name", filter, &ok);
    if (!ok) {
        return NULL;
    }
    principal = attr_str(r, o, "principal", filter, &ok);
    if (!ok) {
        return NULL;
    }
    host = attr_str(r, o, "host", filter, &ok);
    if (!ok) {
        return NULL;
    }
    rd_kafka_AclBinding_t *acl =
        filter ? rd_kafka_AclBindingFilter_new(
                     (rd_kafka_ResourceType_t)restype, name,
                     (rd_kafka_ResourcePatternType_t)pattern, principal,
                     host, (rd_kafka_AclOperation_t)op,
                     (rd_kafka_AclPermissionType_t)perm, errstr,
                     sizeof(errstr))
               : rd_kafka_AclBinding_new(
                     (rd_kafka_ResourceType_t)restype, name,
                     (rd_kafka_ResourcePatternType_t)pattern, principal,
                     host, (rd_kafka_AclOperation_t)op,
                     (rd_kafka_AclPermissionType_t)perm, errstr,
                     sizeof(errstr));
    if (acl == NULL) {
        PyErr_Format(PyExc_ValueError, "%s(): %s", r->fname, errstr);
    }
    return acl;
}

/* create_acls (a list of AclBinding) or delete_acls (of filters): the
 * results come back in request order, so the result key is the index. */
static PyObject *
acls_op(AdminObject *self, PyObject *const *args, Py_ssize_t nargs,
        PyObject *kwnames, int delete)
{
    const char *fname = delete ? "delete_acls" : "create_acls";
    const char *what = delete ? "acl_binding_filters" : "acls";
    int op = delete ? ADMIN_DELETE_ACLS : ADMIN_CREATE_ACLS;
    PyObject *items = NULL, *optv[NOPTS] = {NULL};
    admin_req r;
    if (req_parse(fname, what, request_opts, args, nargs, kwnames, &items,
                  optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname,
                  delete ? RD_KAFKA_ADMIN_OP_DELETEACLS
                         : RD_KAFKA_ADMIN_OP_CREATEACLS,
                  items, what, optv) < 0) {
        return req_fail(&r);
    }
    r.destroy = destroy_acl;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        r.objs[r.nobjs] = acl_from(&r, o, delete, what);
        if (r.objs[r.nobjs++] == NULL) {
            return req_fail(&r);
        }
        PyObject *idx = PyLong_FromSize_t(i);
        int rc = idx ? req_future(&r, o, idx) : -1;
        Py_XDECREF(idx);
        if (rc < 0) {
            return req_fail(&r);
        }
    }
    rd_kafka_queue_t *q = req_submit(&r, op);
    if (q == NULL) {
        return req_fail(&r);
    }
    if (delete) {
        rd_kafka_DeleteAcls(r.rk, (rd_kafka_AclBindingFilter_t **)r.objs,
                            r.nobjs, r.options, q);
    }
    else {
        rd_kafka_CreateAcls(r.rk, (rd_kafka_AclBinding_t **)r.objs, r.nobjs,
                            r.options, q);
    }
    return req_done(&r, q, 0);
}

PyObject *
akc_admin_create_acls(AdminObject *self, PyObject *const *args,
                      Py_ssize_t nargs, PyObject *kwnames)
{
    return acls_op(self, args, nargs, kwnames, 0);
}

PyObject *
akc_admin_delete_acls(AdminObject *self, PyObject *const *args,
                      Py_ssize_t nargs, PyObject *kwnames)
{
    return acls_op(self, args, nargs, kwnames, 1);
}

PyObject *
akc_admin_describe_acls(AdminObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "describe_acls";
    PyObject *filter = NULL, *optv[NOPTS] = {NULL};
    admin_req r;
    if (req_parse(fname, "acl_binding_filter", request_opts, args, nargs,
                  kwnames, &filter, optv) < 0) {
        return NULL;
    }
    if (req_start(&r, self, fname, RD_KAFKA_ADMIN_OP_DESCRIBEACLS, NULL,
                  NULL, optv) < 0) {
        return req_fail(&r);
    }
    rd_kafka_AclBinding_t *acl = acl_from(&r, filter, 1,
                                          "acl_binding_filter");
    if (acl == NULL || req_future(&r, Py_None, Py_None) < 0) {
        if (acl != NULL) {
            rd_kafka_AclBinding_destroy(acl);
        }
        return req_fail(&r);
    }
    rd_kafka_queue_t *q = req_submit(&r, ADMIN_DESCRIBE_ACLS);
    if (q != NULL) {
        rd_kafka_DescribeAcls(r.rk, acl, r.options, q);
    }
    rd_kafka_AclBinding_destroy(acl);
    return q != NULL ? req_done(&r, q, 1) : req_fail(&r);
}
