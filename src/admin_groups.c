/* AIOAdminClient's consumer group and ACL operations: argument checks
 * and conversions, then one librdkafka admin request each.  Loop thread,
 * GIL held; nothing here blocks (librdkafka only enqueues the request). */
#include "admin_req.h"
#include "errors.h"
#include "topic_partition.h"

#include <stdlib.h>
#include <string.h>

static const int request_opts[] = {OPT_REQUEST, -1};

static void destroy_delgroup(void *o) { rd_kafka_DeleteGroup_destroy(o); }
static void destroy_acl(void *o) { rd_kafka_AclBinding_destroy(o); }
static void destroy_nothing(void *o) { (void)o; }

/* ---- consumer groups --------------------------------------------------- */

PyObject *
akc_admin_list_consumer_groups(AdminObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    const char *fname = "list_consumer_groups";
    static const int opts[] = {OPT_STATES, OPT_REQUEST, -1};
    PyObject *optv[NOPTS] = {NULL};
    akc_admin_req r;
    if (akc_adm_parse(fname, NULL, opts, args, nargs, kwnames, NULL,
                      optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS,
                      NULL, NULL, optv) < 0) {
        return akc_adm_fail(&r);
    }
    PyObject *states = optv[OPT_STATES];
    if (states != NULL && states != Py_None) {
        PyObject *seq = PySequence_Fast(states, "states must be a set of "
                                                "ConsumerGroupState");
        if (seq == NULL) {
            return akc_adm_fail(&r);
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
            return akc_adm_fail(&r);
        }
    }
    if (akc_adm_future(&r, Py_None, Py_None) < 0) {
        return akc_adm_fail(&r);
    }
    rd_kafka_queue_t *q = akc_adm_submit(&r, ADMIN_LIST_GROUPS);
    if (q == NULL) {
        return akc_adm_fail(&r);
    }
    rd_kafka_ListConsumerGroups(r.rk, r.options, q);
    return akc_adm_done(&r, q, 1);
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
    akc_admin_req r;
    if (akc_adm_parse(fname, "group_ids", request_opts, args, nargs, kwnames,
                      &items, optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname,
                      delete ? RD_KAFKA_ADMIN_OP_DELETEGROUPS
                             : RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
                      items, "group_ids", optv) < 0) {
        return akc_adm_fail(&r);
    }
    r.destroy = delete ? destroy_delgroup : destroy_nothing;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        const char *name = akc_adm_item_str(&r, o, "group_ids");
        if (name == NULL || akc_adm_future(&r, o, o) < 0) {
            return akc_adm_fail(&r);
        }
        r.objs[r.nobjs++] = delete ? (void *)rd_kafka_DeleteGroup_new(name)
                                   : (void *)name;
    }
    rd_kafka_queue_t *q = akc_adm_submit(&r, op);
    if (q == NULL) {
        return akc_adm_fail(&r);
    }
    if (delete) {
        rd_kafka_DeleteGroups(r.rk, (rd_kafka_DeleteGroup_t **)r.objs,
                              r.nobjs, r.options, q);
    }
    else {
        rd_kafka_DescribeConsumerGroups(r.rk, (const char **)r.objs, r.nobjs,
                                        r.options, q);
    }
    return akc_adm_done(&r, q, 0);
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
offsets_send(akc_admin_req *r, int kind, const char *group,
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
offsets_stable(akc_admin_req *r, PyObject *v)
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
    akc_admin_req r;
    if (akc_adm_parse(fname, what,
                      kind == OFFSETS_LIST ? list_opts : request_opts, args,
                      nargs, kwnames, &items, optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname, offsets_kinds[kind].api, items, what,
                      optv) < 0 ||
        offsets_stable(&r, optv[OPT_STABLE]) < 0) {
        return akc_adm_fail(&r);
    }
    if (NITEMS(&r) != 1) {
        PyErr_Format(PyExc_ValueError, "%s(): exactly one "
                     "ConsumerGroupTopicPartitions is supported", fname);
        return akc_adm_fail(&r);
    }
    PyObject *o = ITEMS(&r)[0];
    int ok;
    const char *group;
    if (akc_adm_check_type(&r, o, "ConsumerGroupTopicPartitions", what) < 0 ||
        (group = akc_adm_attr_str(&r, o, "group_id", 0, &ok)) == NULL) {
        return akc_adm_fail(&r);
    }
    PyObject *parts = PyObject_GetAttrString(o, "topic_partitions");
    if (parts == NULL) {
        return akc_adm_fail(&r);
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
    if (!PyErr_Occurred() && akc_adm_future(&r, key, key) == 0) {
        q = akc_adm_submit(&r, op);
    }
    if (q != NULL) {
        offsets_send(&r, kind, group, l, q);
    }
    if (l != NULL) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    return q != NULL ? akc_adm_done(&r, q, 0) : akc_adm_fail(&r);
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
acl_from(akc_admin_req *r, PyObject *o, int filter, const char *what)
{
    int restype, pattern, op, perm, ok;
    const char *name, *principal, *host;
    char errstr[256];
    if (akc_adm_check_type(r, o, filter ? "AclBindingFilter" : "AclBinding",
                           what) <
            0 ||
        akc_adm_attr_int(r, o, "restype", &restype) < 0 ||
        akc_adm_attr_int(r, o, "resource_pattern_type", &pattern) < 0 ||
        akc_adm_attr_int(r, o, "operation", &op) < 0 ||
        akc_adm_attr_int(r, o, "permission_type", &perm) < 0) {
        return NULL;
    }
    name = akc_adm_attr_str(r, o, "name", filter, &ok);
    if (!ok) {
        return NULL;
    }
    principal = akc_adm_attr_str(r, o, "principal", filter, &ok);
    if (!ok) {
        return NULL;
    }
    host = akc_adm_attr_str(r, o, "host", filter, &ok);
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
    akc_admin_req r;
    if (akc_adm_parse(fname, what, request_opts, args, nargs, kwnames, &items,
                      optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname,
                      delete ? RD_KAFKA_ADMIN_OP_DELETEACLS
                             : RD_KAFKA_ADMIN_OP_CREATEACLS,
                      items, what, optv) < 0) {
        return akc_adm_fail(&r);
    }
    r.destroy = destroy_acl;
    for (size_t i = 0; i < NITEMS(&r); i++) {
        PyObject *o = ITEMS(&r)[i];
        r.objs[r.nobjs] = acl_from(&r, o, delete, what);
        if (r.objs[r.nobjs++] == NULL) {
            return akc_adm_fail(&r);
        }
        PyObject *idx = PyLong_FromSize_t(i);
        int rc = idx ? akc_adm_future(&r, o, idx) : -1;
        Py_XDECREF(idx);
        if (rc < 0) {
            return akc_adm_fail(&r);
        }
    }
    rd_kafka_queue_t *q = akc_adm_submit(&r, op);
    if (q == NULL) {
        return akc_adm_fail(&r);
    }
    if (delete) {
        rd_kafka_DeleteAcls(r.rk, (rd_kafka_AclBindingFilter_t **)r.objs,
                            r.nobjs, r.options, q);
    }
    else {
        rd_kafka_CreateAcls(r.rk, (rd_kafka_AclBinding_t **)r.objs, r.nobjs,
                            r.options, q);
    }
    return akc_adm_done(&r, q, 0);
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
    akc_admin_req r;
    if (akc_adm_parse(fname, "acl_binding_filter", request_opts, args, nargs,
                      kwnames, &filter, optv) < 0) {
        return NULL;
    }
    if (akc_adm_start(&r, self, fname, RD_KAFKA_ADMIN_OP_DESCRIBEACLS, NULL,
                      NULL, optv) < 0) {
        return akc_adm_fail(&r);
    }
    rd_kafka_AclBinding_t *acl = acl_from(&r, filter, 1,
                                          "acl_binding_filter");
    if (acl == NULL || akc_adm_future(&r, Py_None, Py_None) < 0) {
        if (acl != NULL) {
            rd_kafka_AclBinding_destroy(acl);
        }
        return akc_adm_fail(&r);
    }
    rd_kafka_queue_t *q = akc_adm_submit(&r, ADMIN_DESCRIBE_ACLS);
    if (q != NULL) {
        rd_kafka_DescribeAcls(r.rk, acl, r.options, q);
    }
    rd_kafka_AclBinding_destroy(acl);
    return q != NULL ? akc_adm_done(&r, q, 1) : akc_adm_fail(&r);
}
