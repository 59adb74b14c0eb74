/* AIOAdminClient: the asyncio admin client, a handler on the client core.
 *
 * Every operation is one librdkafka admin request whose result event
 * comes back on the client's main queue, which the poll thread serves.
 * A request is known by an id (the request's opaque): requests maps the
 * id to (op, lookup), lookup mapping each result key (a topic name, a
 * (restype, name) pair, ...) to its future.  A result for an id no longer
 * there (failed by close) is dropped, so nothing librdkafka hands back
 * can point at freed memory.  list_topics() is a blocking call and runs
 * on the client's worker thread.
 *
 * Files: admin.c (the type, its lifecycle hooks and the registry),
 * admin_req.c (building a request), admin_ops.c (topic, config and
 * record operations), admin_groups.c (consumer group and ACL ones),
 * admin_results.c (results to Python), admin_metadata.c (list_topics). */
#ifndef AKC_ADMIN_H
#define AKC_ADMIN_H

#include "lifecycle.h"

typedef struct {
    PyObject_HEAD
    akc_core core;
    PyObject *requests; /* dict: int id -> (op, lookup dict) */
    PyObject *types;    /* the aiokafka_c.admin module (value types) */
    PyObject *calls;    /* set: futures of worker calls not yet done */
    PyObject *weakreflist;
    long long seq;
} AdminObject;

int akc_admin_setup_types(PyObject *module, akc_state *st);

/* admin.c: registers a request and returns its id (> 0), or -1. */
intptr_t akc_admin_register(AdminObject *self, int op, PyObject *lookup);
/* admin.c: forgets a request that never reached librdkafka. */
void akc_admin_unregister(AdminObject *self, intptr_t id);
/* admin.c: the handle for a new request (the client is open, on its
 * loop), or NULL with an exception. */
rd_kafka_t *akc_admin_handle(AdminObject *self, const char *method);
/* admin.c: the client's worker thread (the client is open), or NULL. */
struct akc_worker *akc_admin_worker(AdminObject *self);
/* admin.c: a value type of aiokafka_c.admin called with args. */
PyObject *akc_admin_make(AdminObject *self, const char *type,
                         const char *fmt, ...);

/* admin_results.c: answers the futures of lookup from a result event.
 * Poll thread, GIL held.  Returns 0 or -1 with an exception. */
int akc_admin_answer(AdminObject *self, int op, rd_kafka_event_t *ev,
                     PyObject *lookup);
/* admin_results.c: a KafkaException for (code, reason); NULL with an
 * exception. */
PyObject *akc_admin_exc(akc_state *st, rd_kafka_resp_err_t code,
                        const char *reason);
/* admin_results.c: resolves the future of key in lookup (and removes it)
 * with res (a value or an exception; taken, may be NULL: then the
 * current exception is the future's).  A key not in lookup is ignored.
 * Returns 0 or -1. */
int akc_admin_resolve(AdminObject *self, PyObject *lookup, PyObject *key,
                      PyObject *res);

/* The operations, as librdkafka's event types name their results. */
enum {
    ADMIN_CREATE_TOPICS = RD_KAFKA_EVENT_CREATETOPICS_RESULT,
    ADMIN_DELETE_TOPICS = RD_KAFKA_EVENT_DELETETOPICS_RESULT,
    ADMIN_CREATE_PARTITIONS = RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT,
    ADMIN_ALTER_CONFIGS = RD_KAFKA_EVENT_ALTERCONFIGS_RESULT,
    ADMIN_DESCRIBE_CONFIGS = RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT,
    ADMIN_DELETE_RECORDS = RD_KAFKA_EVENT_DELETERECORDS_RESULT,
    ADMIN_DELETE_GROUPS = RD_KAFKA_EVENT_DELETEGROUPS_RESULT,
    ADMIN_LIST_GROUPS = RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT,
    ADMIN_DESCRIBE_GROUPS = RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT,
    ADMIN_LIST_OFFSETS = RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT,
    ADMIN_ALTER_OFFSETS = RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT,
    ADMIN_DELETE_OFFSETS = RD_KAFKA_EVENT_DELETECONSUMERGROUPOFFSETS_RESULT,
    ADMIN_CREATE_ACLS = RD_KAFKA_EVENT_CREATEACLS_RESULT,
    ADMIN_DESCRIBE_ACLS = RD_KAFKA_EVENT_DESCRIBEACLS_RESULT,
    ADMIN_DELETE_ACLS = RD_KAFKA_EVENT_DELETEACLS_RESULT,
};

/* The operations (see the method table in admin.c). */
#define AKC_ADMIN_FAST(name)                                               \
    PyObject *akc_admin_##name(AdminObject *self, PyObject *const *args,   \
                               Py_ssize_t nargs, PyObject *kwnames)
AKC_ADMIN_FAST(create_topics);
AKC_ADMIN_FAST(delete_topics);
AKC_ADMIN_FAST(create_partitions);
AKC_ADMIN_FAST(describe_configs);
AKC_ADMIN_FAST(alter_configs);
AKC_ADMIN_FAST(delete_records);
AKC_ADMIN_FAST(list_consumer_groups);
AKC_ADMIN_FAST(describe_consumer_groups);
AKC_ADMIN_FAST(delete_consumer_groups);
AKC_ADMIN_FAST(list_consumer_group_offsets);
AKC_ADMIN_FAST(alter_consumer_group_offsets);
AKC_ADMIN_FAST(delete_consumer_group_offsets);
AKC_ADMIN_FAST(create_acls);
AKC_ADMIN_FAST(describe_acls);
AKC_ADMIN_FAST(delete_acls);
AKC_ADMIN_FAST(list_topics); /* admin_metadata.c */
#undef AKC_ADMIN_FAST

#endif
