/* AIOAdminClient's results: librdkafka's result events turned into the
 * futures' values (confluent-kafka's shapes) or KafkaExceptions.  Poll
 * thread, GIL held; the event stays the caller's. */
#include "admin.h"
#include "errors.h"
#include "topic_partition.h"

PyObject *
akc_admin_exc(akc_state *st, rd_kafka_resp_err_t code, const char *reason)
{
    PyObject *e = akc_error_from_code(st, code,
                                      reason && reason[0] ? reason : NULL);
    PyObject *exc = e ? akc_exception_new(st, e) : NULL;
    Py_XDECREF(e);
    return exc;
}

/* A KafkaException from an rd_kafka_error_t (NULL: none, returns NULL
 * without an exception). */
static PyObject *
error_exc(akc_state *st, const rd_kafka_error_t *e)
{
    if (e == NULL || rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return NULL;
    }
    return akc_admin_exc(st, rd_kafka_error_code(e), rd_kafka_error_string(e));
}

int
akc_admin_resolve(AdminObject *self, PyObject *lookup, PyObject *key,
                  PyObject *res)
{
    if (res == NULL) {
        res = akc_err_take();
        if (res == NULL) {
            return -1;
        }
    }
    PyObject *fut = key ? PyDict_GetItemWithError(lookup, key) : NULL;
    int rc = 0;
    if (fut != NULL) {
        Py_INCREF(fut);
        rc = PyDict_DelItem(lookup, key) < 0 ||
                     akc_dispatcher_push_kind(self->core.dispatcher,
                                              AKC_ITEM_RESULT, fut, res) < 0
                 ? -1
                 : 0;
        Py_DECREF(fut);
    }
    else if (PyErr_Occurred()) {
        rc = -1;
    }
    Py_DECREF(res);
    return rc;
}

static PyObject *
str_or_none(const char *s)
{
    return s ? PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace")
             : Py_NewRef(Py_None);
}

/* An IntEnum member of aiokafka_c.admin (an unknown value: the int). */
static PyObject *
enum_of(AdminObject *self, const char *cls, int v)
{
    PyObject *r = akc_admin_make(self, cls, "i", v);
    if (r == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        r = PyLong_FromLong(v);
    }
    return r;
}

/* Topic results: None or the topic's error. */
static int
topic_results(AdminObject *self, PyObject *lookup,
              const rd_kafka_topic_result_t **res, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
        PyObject *key = str_or_none(rd_kafka_topic_result_name(res[i]));
        PyObject *v = err ? akc_admin_exc(self->core.st, err,
                                          rd_kafka_topic_result_error_string(
                                              res[i]))
                          : Py_NewRef(Py_None);
        int rc = key ? akc_admin_resolve(self, lookup, key, v) : -1;
        if (key == NULL) {
            Py_XDECREF(v);
        }
        Py_XDECREF(key);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
config_entry(AdminObject *self, const rd_kafka_ConfigEntry_t *e)
{
    size_t ns = 0;
    const rd_kafka_ConfigEntry_t **syn = rd_kafka_ConfigEntry_synonyms(e,
                                                                       &ns);
    PyObject *synonyms = PyList_New(0);
    for (size_t i = 0; synonyms != NULL && i < ns; i++) {
        PyObject *s = config_entry(self, syn[i]);
        if (s == NULL || PyList_Append(synonyms, s) < 0) {
            Py_CLEAR(synonyms);
        }
        Py_XDECREF(s);
    }
    if (synonyms == NULL) {
        return NULL;
    }
    PyObject *name = str_or_none(rd_kafka_ConfigEntry_name(e));
    PyObject *value = str_or_none(rd_kafka_ConfigEntry_value(e));
    PyObject *r = NULL;
    if (name != NULL && value != NULL) {
        r = akc_admin_make(
            self, "ConfigEntry", "(OOiNNNNO)", name, value,
            (int)rd_kafka_ConfigEntry_source(e),
            PyBool_FromLong(rd_kafka_ConfigEntry_is_read_only(e)),
            PyBool_FromLong(rd_kafka_ConfigEntry_is_default(e)),
            PyBool_FromLong(rd_kafka_ConfigEntry_is_sensitive(e)),
            PyBool_FromLong(rd_kafka_ConfigEntry_is_synonym(e)), synonyms);
    }
    Py_XDECREF(name);
    Py_XDECREF(value);
    Py_DECREF(synonyms);
    return r;
}

/* Config results: describe: {name: ConfigEntry}; alter: None. */
static int
config_results(AdminObject *self, PyObject *lookup,
               const rd_kafka_ConfigResource_t **res, size_t n, int alter)
{
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_ConfigResource_t *cr = res[i];
        PyObject *key = Py_BuildValue("(iN)",
                                      (int)rd_kafka_ConfigResource_type(cr),
                                      str_or_none(
                                          rd_kafka_ConfigResource_name(cr)));
        if (key == NULL) {
            return -1;
        }
        rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(cr);
        PyObject *v = NULL;
        if (err) {
            v = akc_admin_exc(self->core.st, err,
                              rd_kafka_ConfigResource_error_string(cr));
        }
        else if (alter) {
            v = Py_NewRef(Py_None);
        }
        else {
            size_t ne = 0;
            const rd_kafka_ConfigEntry_t **es =
                rd_kafka_ConfigResource_configs(cr, &ne);
            v = PyDict_New();
            for (size_t k = 0; v != NULL && k < ne; k++) {
                PyObject *ent = config_entry(self, es[k]);
                PyObject *name = ent ? PyObject_GetAttrString(ent, "name")
                                     : NULL;
                if (name == NULL || PyDict_SetItem(v, name, ent) < 0) {
                    Py_CLEAR(v);
                }
                Py_XDECREF(name);
                Py_XDECREF(ent);
            }
        }
        int rc = akc_admin_resolve(self, lookup, key, v);
        Py_DECREF(key);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static int
records_results(AdminObject *self, PyObject *lookup,
                const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; l != NULL && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &l->elems[i];
        PyObject *key = Py_BuildValue("(Ni)", str_or_none(p->topic),
                                      (int)p->partition);
        if (key == NULL) {
            return -1;
        }
        PyObject *v = p->err ? akc_admin_exc(self->core.st, p->err, NULL)
                             : akc_admin_make(self, "DeletedRecords", "L",
                                              (long long)p->offset);
        int rc = akc_admin_resolve(self, lookup, key, v);
        Py_DECREF(key);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
group_listing(AdminObject *self, const rd_kafka_ConsumerGroupListing_t *g)
{
    PyObject *state = enum_of(self, "ConsumerGroupState",
                              (int)rd_kafka_ConsumerGroupListing_state(g));
    if (state == NULL) {
        return NULL;
    }
    return akc_admin_make(
        self, "ConsumerGroupListing", "(NNN)",
        str_or_none(rd_kafka_ConsumerGroupListing_group_id(g)),
        PyBool_FromLong(
            rd_kafka_ConsumerGroupListing_is_simple_consumer_group(g)),
        state);
}

static int
list_groups_result(AdminObject *self, PyObject *lookup,
                   const rd_kafka_ListConsumerGroups_result_t *res)
{
    size_t nv = 0, ne = 0;
    const rd_kafka_ConsumerGroupListing_t **valid =
        rd_kafka_ListConsumerGroups_result_valid(res, &nv);
    const rd_kafka_error_t **errors =
        rd_kafka_ListConsumerGroups_result_errors(res, &ne);
    PyObject *lv = PyList_New(0), *le = PyList_New(0);
    for (size_t i = 0; lv != NULL && le != NULL && i < nv; i++) {
        PyObject *g = group_listing(self, valid[i]);
        if (g == NULL || PyList_Append(lv, g) < 0) {
            Py_CLEAR(lv);
        }
        Py_XDECREF(g);
    }
    for (size_t i = 0; lv != NULL && le != NULL && i < ne; i++) {
        PyObject *e = akc_error_from_code(self->core.st,
                                          rd_kafka_error_code(errors[i]),
                                          rd_kafka_error_string(errors[i]));
        if (e == NULL || PyList_Append(le, e) < 0) {
            Py_CLEAR(le);
        }
        Py_XDECREF(e);
    }
    PyObject *v = NULL;
    if (lv != NULL && le != NULL) {
        v = akc_admin_make(self, "ListConsumerGroupsResult", "(OO)", lv, le);
    }
    Py_XDECREF(lv);
    Py_XDECREF(le);
    return akc_admin_resolve(self, lookup, Py_None, v);
}

static PyObject *
member_description(AdminObject *self, const rd_kafka_MemberDescription_t *m)
{
    const rd_kafka_MemberAssignment_t *a =
        rd_kafka_MemberDescription_assignment(m);
    PyObject *parts = akc_tplist_to_py(
        self->core.st, a ? rd_kafka_MemberAssignment_partitions(a) : NULL);
    PyObject *assignment = parts ? akc_admin_make(self, "MemberAssignment",
                                                  "O", parts)
                                 : NULL;
    Py_XDECREF(parts);
    if (assignment == NULL) {
        return NULL;
    }
    return akc_admin_make(
        self, "MemberDescription", "(NNNNN)",
        str_or_none(rd_kafka_MemberDescription_consumer_id(m)),
        str_or_none(rd_kafka_MemberDescription_client_id(m)),
        str_or_none(rd_kafka_MemberDescription_host(m)), assignment,
        str_or_none(rd_kafka_MemberDescription_group_instance_id(m)));
}

static PyObject *
group_description(AdminObject *self,
                  const rd_kafka_ConsumerGroupDescription_t *g)
{
    PyObject *exc = error_exc(self->core.st,
                              rd_kafka_ConsumerGroupDescription_error(g));
    if (exc != NULL || PyErr_Occurred()) {
        return exc;
    }
    size_t n = rd_kafka_ConsumerGroupDescription_member_count(g);
    PyObject *members = PyList_New(0);
    for (size_t i = 0; members != NULL && i < n; i++) {
        PyObject *m = member_description(
            self, rd_kafka_ConsumerGroupDescription_member(g, i));
        if (m == NULL || PyList_Append(members, m) < 0) {
            Py_CLEAR(members);
        }
        Py_XDECREF(m);
    }
    const rd_kafka_Node_t *c = rd_kafka_ConsumerGroupDescription_coordinator(
        g);
    PyObject *node = NULL;
    if (members != NULL) {
        node = c ? akc_admin_make(self, "Node", "(iNi)", rd_kafka_Node_id(c),
                                  str_or_none(rd_kafka_Node_host(c)),
                                  (int)rd_kafka_Node_port(c))
                 : Py_NewRef(Py_None);
    }
    int st = (int)rd_kafka_ConsumerGroupDescription_state(g);
    PyObject *state = node ? enum_of(self, "ConsumerGroupState", st) : NULL;
    PyObject *r = NULL;
    if (state != NULL) {
        r = akc_admin_make(
            self, "ConsumerGroupDescription", "(NNONOO)",
            str_or_none(rd_kafka_ConsumerGroupDescription_group_id(g)),
            PyBool_FromLong(
                rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(
                    g)),
            members,
            str_or_none(
                rd_kafka_ConsumerGroupDescription_partition_assignor(g)),
            state, node);
    }
    Py_XDECREF(members);
    Py_XDECREF(node);
    Py_XDECREF(state);
    return r;
}

static int
describe_groups_results(AdminObject *self, PyObject *lookup,
                        const rd_kafka_ConsumerGroupDescription_t **gs,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        PyObject *key = str_or_none(
            rd_kafka_ConsumerGroupDescription_group_id(gs[i]));
        if (key == NULL) {
            return -1;
        }
        int rc = akc_admin_resolve(self, lookup, key,
                                   group_description(self, gs[i]));
        Py_DECREF(key);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

/* Group results: delete: None; offsets: ConsumerGroupTopicPartitions. */
static int
group_results(AdminObject *self, PyObject *lookup,
              const rd_kafka_group_result_t **gs, size_t n, int offsets)
{
    for (size_t i = 0; i < n; i++) {
        PyObject *key = str_or_none(rd_kafka_group_result_name(gs[i]));
        if (key == NULL) {
            return -1;
        }
        PyObject *v = error_exc(self->core.st,
                                rd_kafka_group_result_error(gs[i]));
        if (v == NULL && !PyErr_Occurred()) {
            if (!offsets) {
                v = Py_NewRef(Py_None);
            }
            else {
                PyObject *parts = akc_tplist_to_py(
                    self->core.st, rd_kafka_group_result_partitions(gs[i]));
                v = parts ? akc_admin_make(self,
                                           "ConsumerGroupTopicPartitions",
                                           "(ON)", key, parts)
                          : NULL;
            }
        }
        int rc = akc_admin_resolve(self, lookup, key, v);
        Py_DECREF(key);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
acl_binding(AdminObject *self, const rd_kafka_AclBinding_t *a)
{
    PyObject *restype = enum_of(self, "ResourceType",
                                (int)rd_kafka_AclBinding_restype(a));
    PyObject *pattern = enum_of(
        self, "ResourcePatternType",
        (int)rd_kafka_AclBinding_resource_pattern_type(a));
    PyObject *op = enum_of(self, "AclOperation",
                           (int)rd_kafka_AclBinding_operation(a));
    PyObject *perm = enum_of(self, "AclPermissionType",
                             (int)rd_kafka_AclBinding_permission_type(a));
    PyObject *r = NULL;
    if (restype && pattern && op && perm) {
        r = akc_admin_make(self, "AclBinding", "(ONONNOO)", restype,
                           str_or_none(rd_kafka_AclBinding_name(a)), pattern,
                           str_or_none(rd_kafka_AclBinding_principal(a)),
                           str_or_none(rd_kafka_AclBinding_host(a)), op,
                           perm);
    }
    Py_XDECREF(restype);
    Py_XDECREF(pattern);
    Py_XDECREF(op);
    Py_XDECREF(perm);
    return r;
}

static PyObject *
acl_list(AdminObject *self, const rd_kafka_AclBinding_t **acls, size_t n)
{
    PyObject *l = PyList_New(0);
    for (size_t i = 0; l != NULL && i < n; i++) {
        PyObject *a = acl_binding(self, acls[i]);
        if (a == NULL || PyList_Append(l, a) < 0) {
            Py_CLEAR(l);
        }
        Py_XDECREF(a);
    }
    return l;
}

/* create_acls (errors) / delete_acls (matching ACLs), in request order. */
static int
acl_results(AdminObject *self, PyObject *lookup, rd_kafka_event_t *ev,
            int delete)
{
    size_t n = 0;
    const rd_kafka_acl_result_t **cr = NULL;
    const rd_kafka_DeleteAcls_result_response_t **dr = NULL;
    if (delete) {
        dr = rd_kafka_DeleteAcls_result_responses(
            rd_kafka_event_DeleteAcls_result(ev), &n);
    }
    else {
        cr = rd_kafka_CreateAcls_result_acls(
            rd_kafka_event_CreateAcls_result(ev), &n);
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *key = PyLong_FromSize_t(i);
        if (key == NULL) {
            return -1;
        }
        const rd_kafka_error_t *e =
            delete ? rd_kafka_DeleteAcls_result_response_error(dr[i])
                   : rd_kafka_acl_result_error(cr[i]);
        PyObject *v = error_exc(self->core.st, e);
        if (v == NULL && !PyErr_Occurred()) {
            if (delete) {
                size_t na = 0;
                const rd_kafka_AclBinding_t **acls =
                    rd_kafka_DeleteAcls_result_response_matching_acls(dr[i],
                                                                      &na);
                v = acl_list(self, acls, na);
            }
            else {
                v = Py_NewRef(Py_None);
            }
        }
        int rc = akc_admin_resolve(self, lookup, key, v);
        Py_DECREF(key);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

int
akc_admin_answer(AdminObject *self, int op, rd_kafka_event_t *ev,
                 PyObject *lookup)
{
    size_t n = 0;
    switch (op) {
    case ADMIN_CREATE_TOPICS: {
        const rd_kafka_topic_result_t **r =
            rd_kafka_CreateTopics_result_topics(
                rd_kafka_event_CreateTopics_result(ev), &n);
        return topic_results(self, lookup, r, n);
    }
    case ADMIN_DELETE_TOPICS: {
        const rd_kafka_topic_result_t **r =
            rd_kafka_DeleteTopics_result_topics(
                rd_kafka_event_DeleteTopics_result(ev), &n);
        return topic_results(self, lookup, r, n);
    }
    case ADMIN_CREATE_PARTITIONS: {
        const rd_kafka_topic_result_t **r =
            rd_kafka_CreatePartitions_result_topics(
                rd_kafka_event_CreatePartitions_result(ev), &n);
        return topic_results(self, lookup, r, n);
    }
    case ADMIN_DESCRIBE_CONFIGS: {
        const rd_kafka_ConfigResource_t **r =
            rd_kafka_DescribeConfigs_result_resources(
                rd_kafka_event_DescribeConfigs_result(ev), &n);
        return config_results(self, lookup, r, n, 0);
    }
    case ADMIN_ALTER_CONFIGS: {
        const rd_kafka_ConfigResource_t **r =
            rd_kafka_AlterConfigs_result_resources(
                rd_kafka_event_AlterConfigs_result(ev), &n);
        return config_results(self, lookup, r, n, 1);
    }
    case ADMIN_DELETE_RECORDS:
        return records_results(
            self, lookup,
            rd_kafka_DeleteRecords_result_offsets(
                rd_kafka_event_DeleteRecords_result(ev)));
    case ADMIN_LIST_GROUPS:
        return list_groups_result(
            self, lookup, rd_kafka_event_ListConsumerGroups_result(ev));
    case ADMIN_DESCRIBE_GROUPS: {
        const rd_kafka_ConsumerGroupDescription_t **r =
            rd_kafka_DescribeConsumerGroups_result_groups(
                rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
        return describe_groups_results(self, lookup, r, n);
    }
    case ADMIN_DELETE_GROUPS: {
        const rd_kafka_group_result_t **r =
            rd_kafka_DeleteGroups_result_groups(
                rd_kafka_event_DeleteGroups_result(ev), &n);
        return group_results(self, lookup, r, n, 0);
    }
    case ADMIN_LIST_OFFSETS: {
        const rd_kafka_group_result_t **r =
            rd_kafka_ListConsumerGroupOffsets_result_groups(
                rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        return group_results(self, lookup, r, n, 1);
    }
    case ADMIN_ALTER_OFFSETS: {
        const rd_kafka_group_result_t **r =
            rd_kafka_AlterConsumerGroupOffsets_result_groups(
                rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
        return group_results(self, lookup, r, n, 1);
    }
    case ADMIN_DELETE_OFFSETS: {
        const rd_kafka_group_result_t **r =
            rd_kafka_DeleteConsumerGroupOffsets_result_groups(
                rd_kafka_event_DeleteConsumerGroupOffsets_result(ev), &n);
        return group_results(self, lookup, r, n, 1);
    }
    case ADMIN_CREATE_ACLS:
        return acl_results(self, lookup, ev, 0);
    case ADMIN_DELETE_ACLS:
        return acl_results(self, lookup, ev, 1);
    case ADMIN_DESCRIBE_ACLS: {
        const rd_kafka_AclBinding_t **r = rd_kafka_DescribeAcls_result_acls(
            rd_kafka_event_DescribeAcls_result(ev), &n);
        return akc_admin_resolve(self, lookup, Py_None, acl_list(self, r, n));
    }
    }
    return 0;
}
