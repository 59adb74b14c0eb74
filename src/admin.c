/* AIOAdminClient: admin requests started on the loop thread, answered on
 * the loop thread.
 *
 * An operation (admin_ops.c) converts its arguments, registers its
 * futures under a fresh request id and hands the request to librdkafka,
 * which only enqueues it.  The result event comes back on the main queue:
 * the poll thread takes the request out of the registry and converts the
 * result with the GIL held (admin_results.c), and the futures resolve on
 * the loop through the dispatcher's batched hand-off.  A cancelled future
 * is skipped there; the request itself cannot be cancelled in librdkafka
 * and runs to its end.  Closing waits (up to its timeout) for requests in
 * flight, then fails what is left with _DESTROY.  Construction, closing
 * and every teardown path are the client core's (lifecycle.c). */
#include "admin.h"
#include "conf.h"
#include "errors.h"
#include "worker.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <structmember.h>

/* How long a worker still inside a call may hold a teardown that has no
 * deadline of its own (a dropped client, atexit). */
#define WORKER_GRACE_MS 1000

/* The part of the client the poll thread uses without the GIL: owned by
 * the poller (ctx_free), used by the client only while it is open. */
typedef struct {
    akc_worker *worker;
    int64_t deadline; /* poll thread: the close's deadline, -1 none */
    int closing;      /* poll thread: a close() set deadline */
    int busy;         /* the worker was abandoned inside a call */
} admin_ctx;

static admin_ctx *
admin_ctx_of(AdminObject *self)
{
    return self->core.poller != NULL ? self->core.poller->ctx : NULL;
}

akc_worker *
akc_admin_worker(AdminObject *self)
{
    admin_ctx *ctx = admin_ctx_of(self);
    return ctx != NULL ? ctx->worker : NULL;
}

/* ---- the request registry ------------------------------------------ */

intptr_t
akc_admin_register(AdminObject *self, int op, PyObject *lookup)
{
    intptr_t id = (intptr_t)++self->seq;
    PyObject *key = PyLong_FromSsize_t((Py_ssize_t)id);
    PyObject *req = key ? Py_BuildValue("(iO)", op, lookup) : NULL;
    int rc = req ? PyDict_SetItem(self->requests, key, req) : -1;
    Py_XDECREF(req);
    Py_XDECREF(key);
    return rc < 0 ? -1 : id;
}

/* Takes request id out of the registry: a new reference to its
 * (op, lookup), or NULL (not there; no exception). */
static PyObject *
admin_take(AdminObject *self, intptr_t id)
{
    PyObject *key = PyLong_FromSsize_t((Py_ssize_t)id);
    if (key == NULL) {
        return NULL;
    }
    PyObject *req = PyDict_GetItemWithError(self->requests, key);
    Py_XINCREF(req);
    if (req != NULL && PyDict_DelItem(self->requests, key) < 0) {
        Py_CLEAR(req);
    }
    Py_DECREF(key);
    return req;
}

void
akc_admin_unregister(AdminObject *self, intptr_t id)
{
    PyObject *exc = akc_err_take();
    Py_XDECREF(admin_take(self, id));
    PyErr_Clear();
    akc_err_restore(exc);
}

rd_kafka_t *
akc_admin_handle(AdminObject *self, const char *method)
{
    if (akc_core_check_open(&self->core, method) < 0 ||
        akc_core_check_loop(&self->core, method) < 0) {
        return NULL;
    }
    return self->core.rk;
}

/* The arguments are built first, so the references fmt's "N" steals are
 * released on every path. */
PyObject *
akc_admin_make(AdminObject *self, const char *type, const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    PyObject *args = Py_VaBuildValue(fmt, va);
    va_end(va);
    if (args == NULL) {
        return NULL;
    }
    PyObject *cls = PyObject_GetAttrString(self->types, type);
    PyObject *r = NULL;
    if (cls != NULL) {
        r = PyTuple_Check(args) ? PyObject_Call(cls, args, NULL)
                                : PyObject_CallOneArg(cls, args);
    }
    Py_XDECREF(cls);
    Py_DECREF(args);
    return r;
}

/* Fails every future of lookup with (code, why); quiet: drops them. */
static void
admin_fail_lookup(akc_state *st, DispatcherObject *d, PyObject *lookup,
                  rd_kafka_resp_err_t code, const char *why, int quiet)
{
    Py_ssize_t pos = 0;
    PyObject *k, *fut;
    while (!quiet && PyDict_Next(lookup, &pos, &k, &fut)) {
        PyObject *exc = akc_admin_exc(st, code, why);
        if (exc == NULL ||
            akc_dispatcher_push_kind(d, AKC_ITEM_RESULT, fut, exc) < 0) {
            PyErr_WriteUnraisable((PyObject *)d);
        }
        Py_XDECREF(exc);
    }
    PyDict_Clear(lookup);
}

/* Fails every request of a registry (a dict we own) and empties it. */
static void
admin_fail_all(akc_state *st, DispatcherObject *d, PyObject *requests,
               const char *why, int quiet)
{
    Py_ssize_t pos = 0;
    PyObject *k, *req;
    while (PyDict_Next(requests, &pos, &k, &req)) {
        admin_fail_lookup(st, d, PyTuple_GET_ITEM(req, 1),
                          RD_KAFKA_RESP_ERR__DESTROY, why, quiet);
    }
    PyDict_Clear(requests);
    if (quiet) {
        PyErr_Clear();
    }
}

/* ---- the client's hooks on the poll thread ------------------------- */

/* One admin result event: answers its request's futures.  A result for
 * a request already failed (by close) is dropped.  GIL held. */
static void
admin_result_event(AdminObject *self, rd_kafka_event_t *ev)
{
    intptr_t id = (intptr_t)rd_kafka_event_opaque(ev);
    PyObject *req = admin_take(self, id);
    if (req == NULL) {
        return;
    }
    int op = (int)PyLong_AsLong(PyTuple_GET_ITEM(req, 0));
    PyObject *lookup = PyTuple_GET_ITEM(req, 1);
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        admin_fail_lookup(self->core.st, self->core.dispatcher, lookup, err,
                          rd_kafka_event_error_string(ev), 0);
    }
    else if (akc_admin_answer(self, op, ev, lookup) < 0) {
        /* A conversion failed: the futures get that exception. */
        PyObject *exc = akc_err_take();
        Py_ssize_t pos = 0;
        PyObject *k, *fut;
        while (exc != NULL && PyDict_Next(lookup, &pos, &k, &fut)) {
            if (akc_dispatcher_push_kind(self->core.dispatcher,
                                         AKC_ITEM_RESULT, fut, exc) < 0) {
                PyErr_WriteUnraisable((PyObject *)self);
            }
        }
        if (exc != NULL) {
            PyDict_Clear(lookup);
        }
        Py_XDECREF(exc); /* else the fallback below fails them */
    }
    /* Keys the broker did not answer. */
    admin_fail_lookup(self->core.st, self->core.dispatcher, lookup,
                      RD_KAFKA_RESP_ERR__FAIL,
                      "the result has no entry for this key", 0);
    Py_DECREF(req);
}

static void
admin_on_events(PyObject *client, rd_kafka_event_t **evs, size_t n)
{
    AdminObject *self = (AdminObject *)client;
    for (size_t i = 0; i < n; i++) {
        switch (rd_kafka_event_type(evs[i])) {
        case ADMIN_CREATE_TOPICS:
        case ADMIN_DELETE_TOPICS:
        case ADMIN_CREATE_PARTITIONS:
        case ADMIN_ALTER_CONFIGS:
        case ADMIN_DESCRIBE_CONFIGS:
        case ADMIN_DELETE_RECORDS:
        case ADMIN_DELETE_GROUPS:
        case ADMIN_LIST_GROUPS:
        case ADMIN_DESCRIBE_GROUPS:
        case ADMIN_LIST_OFFSETS:
        case ADMIN_ALTER_OFFSETS:
        case ADMIN_DELETE_OFFSETS:
        case ADMIN_CREATE_ACLS:
        case ADMIN_DESCRIBE_ACLS:
        case ADMIN_DELETE_ACLS:
            admin_result_event(self, evs[i]);
            if (PyErr_Occurred()) {
                PyErr_WriteUnraisable(client);
            }
            break;
        default:
            break;
        }
        rd_kafka_event_destroy(evs[i]);
    }
}

/* closing_step: the handle may go once no request is in flight or the
 * close's deadline has passed (release() then fails the rest). */
static int
admin_closing_step(PyObject *client)
{
    AdminObject *self = (AdminObject *)client;
    int64_t deadline = self->core.close_deadline;
    int done = PyDict_GET_SIZE(self->requests) == 0 ||
               (deadline >= 0 && akc_now_ms() >= deadline);
    admin_ctx *ctx = admin_ctx_of(self);
    if (done && ctx != NULL) {
        ctx->deadline = deadline;
        ctx->closing = 1;
    }
    return done;
}

static void
admin_forget_handle(PyObject *client, int forked)
{
    (void)client;
    (void)forked;
}

/* Poll thread, no GIL: a list_topics() still running may not hold the
 * close past its deadline (close(timeout=None): its own timeout bounds
 * it). */
static void
admin_teardown(akc_poller *p)
{
    admin_ctx *ctx = p->ctx;
    if (ctx == NULL || ctx->worker == NULL) {
        return;
    }
    if (ctx->closing && ctx->deadline < 0) {
        akc_worker_stop(ctx->worker);
        return;
    }
    int64_t by = ctx->closing ? ctx->deadline
                              : akc_now_ms() + WORKER_GRACE_MS;
    ctx->busy |= akc_worker_stop_by(ctx->worker, by);
}

/* Any path, no GIL: a worker still inside a call uses the handle, which
 * is then left behind. */
static int
admin_before_destroy(akc_poller *p, int64_t *destroy_by)
{
    (void)destroy_by; /* a producer-type handle: destroyed in full */
    admin_ctx *ctx = p->ctx;
    if (ctx == NULL || ctx->worker == NULL) {
        return 0;
    }
    ctx->busy |= akc_worker_stop_by(ctx->worker,
                                    akc_now_ms() + WORKER_GRACE_MS);
    return ctx->busy;
}

static void
admin_ctx_free(void *arg, int forked)
{
    admin_ctx *ctx = arg;
    if (ctx->worker != NULL && !forked) {
        Py_BEGIN_ALLOW_THREADS
        akc_worker_stop_by(ctx->worker, 0); /* idle by now, or abandoned */
        Py_END_ALLOW_THREADS
    }
    akc_worker_free(ctx->worker, forked);
    free(ctx);
}

/* Fails the requests in flight and the worker calls not answered yet (a
 * call still running answers later; its future is done by then and
 * skipped).  Returns how many futures it failed. */
static Py_ssize_t
admin_fail_pending(AdminObject *self, const char *why, int quiet)
{
    akc_state *st = self->core.st;
    DispatcherObject *d = self->core.dispatcher;
    Py_ssize_t n = PySet_GET_SIZE(self->calls);
    Py_ssize_t pos = 0;
    PyObject *k, *req;
    while (PyDict_Next(self->requests, &pos, &k, &req)) {
        n += PyDict_GET_SIZE(PyTuple_GET_ITEM(req, 1));
    }
    admin_fail_all(st, d, self->requests, why, quiet);
    PyObject *calls = PySequence_List(self->calls);
    PySet_Clear(self->calls);
    for (Py_ssize_t i = 0; !quiet && calls && i < PyList_GET_SIZE(calls);
         i++) {
        PyObject *exc = akc_admin_exc(st, RD_KAFKA_RESP_ERR__DESTROY, why);
        if (exc == NULL ||
            akc_dispatcher_push_kind(d, AKC_ITEM_RESULT,
                                     PyList_GET_ITEM(calls, i), exc) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_XDECREF(exc);
    }
    Py_XDECREF(calls);
    PyErr_Clear();
    return n;
}

/* release: the handle is gone. */
static void
admin_release(PyObject *client, const char *why, int quiet)
{
    (void)why; /* the core's text speaks of messages */
    admin_fail_pending((AdminObject *)client,
                       "the AIOAdminClient was closed before the result "
                       "came",
                       quiet);
}

static const akc_client_ops admin_ops = {
    .on_events = admin_on_events,
    .closing_step = admin_closing_step,
    .forget_handle = admin_forget_handle,
    .teardown = admin_teardown,
    .release = admin_release,
    .fail_orphans = NULL, /* a dropped client fails its own (finalize) */
    .before_destroy = admin_before_destroy,
    .ctx_free = admin_ctx_free,
};

/* ---- close, async with --------------------------------------------- */

static PyObject *
admin_close(AdminObject *self, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    PyObject *names[] = {self->core.st->str_timeout, NULL};
    PyObject *timeout = NULL;
    int ms;
    if (akc_parse_args("close", args, nargs, kwnames, names, 1, 0,
                       &timeout) < 0 ||
        akc_timeout_ms(timeout ? timeout : Py_None, &ms) < 0) {
        return NULL;
    }
    return akc_core_close(&self->core, (PyObject *)self, ms);
}

static PyObject *
admin_aenter(AdminObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_core_check_open(&self->core, "__aenter__") < 0 ||
        akc_core_check_loop(&self->core, "__aenter__") < 0) {
        return NULL;
    }
    return akc_dispatcher_done_future(self->core.dispatcher,
                                      (PyObject *)self);
}

static PyObject *
admin_aexit(AdminObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return admin_close(self, NULL, 0, NULL);
}

/* ---- construction -------------------------------------------------- */

/* The dispatcher's client items: the admin client hands over only
 * generic items, so anything else is a bug to report, not to crash on. */
static void
admin_item(DispatcherObject *d, PyObject *item)
{
    akc_dispatcher_logf(d, AKC_LOG_ERROR,
                        "aiokafka_c: AIOAdminClient got an unexpected item "
                        "of type %s",
                        Py_TYPE(item)->tp_name);
}

/* Makes the handle from conf (consumed either way), the worker and the
 * poll thread: the last step, after which nothing fails.  Returns 0 or
 * -1; on failure nothing is left running. */
static int
admin_start(AdminObject *self, rd_kafka_conf_t *conf, int want_throttle)
{
    akc_core *core = &self->core;
    admin_ctx *ctx = calloc(1, sizeof(*ctx));
    akc_poller *p = ctx ? akc_poller_new(core->st, core->dispatcher) : NULL;
    if (p != NULL) {
        ctx->worker = akc_worker_new(core->st, core->dispatcher);
    }
    if (ctx == NULL || p == NULL || ctx->worker == NULL) {
        if (p != NULL) {
            akc_poller_free_unstarted(p);
        }
        if (ctx != NULL) {
            akc_worker_free(ctx->worker, 0);
        }
        free(ctx);
        rd_kafka_conf_destroy(conf);
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        return -1;
    }
    akc_poller_configure(p, conf, 0, want_throttle);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                  sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        akc_poller_free_unstarted(p);
        akc_worker_free(ctx->worker, 0);
        free(ctx);
        akc_raise(core->st, RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
        return -1;
    }
    rd_kafka_queue_t *queue = rd_kafka_queue_get_main(rk);
    p->ctx = ctx; /* the poller owns it from now on */
    if (akc_poller_start(p, (PyObject *)self, core, rk, queue, &admin_ops) <
        0) {
        akc_poller_free_unstarted(p);
        Py_BEGIN_ALLOW_THREADS
        rd_kafka_queue_destroy(queue);
        rd_kafka_destroy(rk);
        Py_END_ALLOW_THREADS
        return -1;
    }
    core->rk = rk;
    core->poller = p;
    core->ops = &admin_ops;
    core->state = AKC_OPEN;
    return 0;
}

/* Everything that can fail before the thread exists.  On failure the
 * core holds nothing.  Returns the conf, or NULL with an exception. */
static rd_kafka_conf_t *
admin_prepare(AdminObject *self, PyObject *config, PyObject *loop,
              int *want_throttle)
{
    akc_core *core = &self->core;
    self->types = PyImport_ImportModule("aiokafka_c.admin");
    if (self->types == NULL) {
        return NULL;
    }
    akc_callbacks cbs;
    rd_kafka_conf_t *conf = akc_conf_build(core->st, config, &cbs);
    if (conf == NULL) {
        return NULL;
    }
    *want_throttle = cbs.throttle_cb != NULL;
    core->logger = Py_NewRef(cbs.logger);
    core->dispatcher = akc_dispatcher_new(core->st, core->logger, admin_item);
    core->error_cb = Py_XNewRef(cbs.error_cb);
    core->stats_cb = Py_XNewRef(cbs.stats_cb);
    core->throttle_cb = Py_XNewRef(cbs.throttle_cb);
    akc_callbacks_clear(&cbs);
    if (core->dispatcher == NULL ||
        (loop != Py_None ? akc_dispatcher_bind(core->dispatcher, loop)
                         : akc_dispatcher_bind_running(core->dispatcher)) <
            0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

static int
admin_init(AdminObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config", "loop", NULL};
    PyObject *config, *loop = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:AIOAdminClient",
                                     kwlist, &config, &loop)) {
        return -1;
    }
    akc_core *core = &self->core;
    if (core->state != AKC_NEW || self->types != NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "AIOAdminClient.__init__() called on a client that "
                        "is already initialized");
        return -1;
    }
    if (core->st->shutting_down) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot make an AIOAdminClient: the interpreter is "
                        "exiting");
        return -1;
    }
    int want_throttle;
    rd_kafka_conf_t *conf = admin_prepare(self, config, loop, &want_throttle);
    if (conf == NULL || admin_start(self, conf, want_throttle) < 0) {
        Py_CLEAR(self->types);
        akc_core_clear(core);
        Py_CLEAR(core->dispatcher);
        return -1;
    }
    return 0;
}

static PyObject *
admin_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    akc_state *st = akc_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    AdminObject *self = (AdminObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (akc_core_init(&self->core, (PyObject *)self, st, "AIOAdminClient") <
        0) {
        Py_DECREF(self);
        return NULL;
    }
    self->requests = PyDict_New();
    self->calls = PySet_New(NULL);
    if (self->requests == NULL || self->calls == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* ---- teardown ------------------------------------------------------ */

static int
admin_traverse(AdminObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->requests);
    Py_VISIT(self->types);
    Py_VISIT(self->calls);
    return akc_core_traverse(&self->core, visit, arg);
}

static int
admin_clear(AdminObject *self)
{
    akc_core_clear(&self->core);
    return 0;
}

/* tp_finalize: an open client hands its thread over (it tears the handle
 * down in the background) and fails what is in flight at once: no result
 * can reach a client that is gone. */
static void
admin_finalize(PyObject *op)
{
    AdminObject *self = (AdminObject *)op;
    PyObject *exc = akc_err_take();
    akc_core *core = &self->core;
    int live = core->poller != NULL && !core->poller->finished &&
               (core->state == AKC_OPEN || core->state == AKC_CLOSING);
    akc_core_detach(core, NULL);
    if (live && self->requests != NULL && self->calls != NULL) {
        Py_ssize_t n = admin_fail_pending(
            self,
            "the AIOAdminClient was garbage-collected before the result "
            "came",
            0);
        if (n > 0) {
            akc_dispatcher_logf(core->dispatcher, AKC_LOG_WARNING,
                                "aiokafka_c: an AIOAdminClient was garbage-"
                                "collected without close() with %zd "
                                "results to come; they fail with _DESTROY",
                                n);
        }
    }
    akc_core_finalize(core);
    if (core->dispatcher != NULL) {
        akc_dispatcher_schedule(core->dispatcher);
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(op);
    }
    akc_err_restore(exc);
}

static void
admin_dealloc(AdminObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return; /* resurrected */
    }
    PyObject *exc = akc_err_take();
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Py_CLEAR(self->requests);
    Py_CLEAR(self->types);
    Py_CLEAR(self->calls);
    akc_core_free(&self->core);
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(NULL);
    }
    tp->tp_free(self);
    Py_DECREF(tp);
    akc_err_restore(exc);
}

#define FAST(name, doc)                                                    \
    {#name, (PyCFunction)(void (*)(void))akc_admin_##name,                 \
     METH_FASTCALL | METH_KEYWORDS, doc}

static PyMethodDef admin_methods[] = {
    FAST(create_topics,
         "create_topics($self, /, new_topics, *, operation_timeout=None, "
         "request_timeout=None, validate_only=False)\n--\n\n"
         "Create topics; returns {topic: Future[None]}."),
    FAST(delete_topics,
         "delete_topics($self, /, topics, *, operation_timeout=None, "
         "request_timeout=None)\n--\n\n"
         "Delete topics; returns {topic: Future[None]}."),
    FAST(create_partitions,
         "create_partitions($self, /, new_partitions, *, "
         "operation_timeout=None, request_timeout=None, "
         "validate_only=False)\n--\n\n"
         "Grow topics; returns {topic: Future[None]}."),
    FAST(describe_configs,
         "describe_configs($self, /, resources, *, request_timeout=None)"
         "\n--\n\n"
         "Returns {ConfigResource: Future[dict[str, ConfigEntry]]}."),
    FAST(alter_configs,
         "alter_configs($self, /, resources, *, request_timeout=None, "
         "validate_only=False)\n--\n\n"
         "Replace the dynamic configuration of each resource (not "
         "incremental: properties not given revert to their defaults); "
         "returns {ConfigResource: Future[None]}."),
    FAST(delete_records,
         "delete_records($self, /, topic_partition_offsets, *, "
         "operation_timeout=None, request_timeout=None)\n--\n\n"
         "Delete records before each offset; returns "
         "{TopicPartition: Future[DeletedRecords]}."),
    FAST(list_consumer_groups,
         "list_consumer_groups($self, /, *, states=None, "
         "request_timeout=None)\n--\n\n"
         "Returns Future[ListConsumerGroupsResult]."),
    FAST(describe_consumer_groups,
         "describe_consumer_groups($self, /, group_ids, *, "
         "request_timeout=None)\n--\n\n"
         "Returns {group_id: Future[ConsumerGroupDescription]}."),
    FAST(delete_consumer_groups,
         "delete_consumer_groups($self, /, group_ids, *, "
         "request_timeout=None)\n--\n\n"
         "Returns {group_id: Future[None]}."),
    FAST(list_consumer_group_offsets,
         "list_consumer_group_offsets($self, /, "
         "list_consumer_group_offsets_request, *, require_stable=False, "
         "request_timeout=None)\n--\n\n"
         "One ConsumerGroupTopicPartitions; returns "
         "{group_id: Future[ConsumerGroupTopicPartitions]}."),
    FAST(alter_consumer_group_offsets,
         "alter_consumer_group_offsets($self, /, "
         "alter_consumer_group_offsets_request, *, request_timeout=None)"
         "\n--\n\n"
         "One ConsumerGroupTopicPartitions; returns "
         "{group_id: Future[ConsumerGroupTopicPartitions]}."),
    FAST(delete_consumer_group_offsets,
         "delete_consumer_group_offsets($self, /, "
         "delete_consumer_group_offsets_request, *, request_timeout=None)"
         "\n--\n\n"
         "One ConsumerGroupTopicPartitions (not in confluent-kafka); "
         "returns {group_id: Future[ConsumerGroupTopicPartitions]}, each "
         "partition with its own error."),
    FAST(create_acls,
         "create_acls($self, /, acls, *, request_timeout=None)\n--\n\n"
         "Returns {AclBinding: Future[None]}."),
    FAST(describe_acls,
         "describe_acls($self, /, acl_binding_filter, *, "
         "request_timeout=None)\n--\n\n"
         "Returns Future[list[AclBinding]]."),
    FAST(delete_acls,
         "delete_acls($self, /, acl_binding_filters, *, "
         "request_timeout=None)\n--\n\n"
         "Returns {AclBindingFilter: Future[list[AclBinding]]}."),
    {"list_topics", (PyCFunction)(void (*)(void))akc_admin_list_topics,
     METH_FASTCALL | METH_KEYWORDS,
     "list_topics($self, /, topic=None, timeout=None)\n--\n\n"
     "A future of the cluster's ClusterMetadata (one topic, or all), "
     "fetched on the client's worker thread.  timeout None or negative: "
     "60 s."},
    {"close", (PyCFunction)(void (*)(void))admin_close,
     METH_FASTCALL | METH_KEYWORDS,
     "close($self, /, timeout=None)\n--\n\n"
     "Start closing now: wait (up to timeout seconds) for requests in "
     "flight, fail what is left with _DESTROY, stop the threads.  Returns "
     "the caller's own awaitable; safe to call again."},
    {"__aenter__", (PyCFunction)admin_aenter, METH_NOARGS, NULL},
    {"__aexit__", (PyCFunction)(void (*)(void))admin_aexit, METH_FASTCALL,
     NULL},
    {NULL, NULL, 0, NULL},
};

#undef FAST

static PyMemberDef admin_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(AdminObject, weakreflist),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot admin_slots[] = {
    {Py_tp_new, admin_new},
    {Py_tp_init, admin_init},
    {Py_tp_dealloc, admin_dealloc},
    {Py_tp_finalize, admin_finalize},
    {Py_tp_traverse, admin_traverse},
    {Py_tp_clear, admin_clear},
    {Py_tp_methods, admin_methods},
    {Py_tp_members, admin_members},
    {Py_tp_doc,
     "AIOAdminClient(config, loop=None)\n--\n\n"
     "asyncio Kafka admin client over librdkafka, with confluent-kafka "
     "AdminClient's operations; each returns asyncio futures.  config is "
     "a mapping of librdkafka properties plus optional error_cb, stats_cb, "
     "throttle_cb and logger."},
    {0, NULL},
};

static PyType_Spec admin_spec = {
    .name = "aiokafka_c.AIOAdminClient",
    .basicsize = sizeof(AdminObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = admin_slots,
};

int
akc_admin_setup_types(PyObject *module, akc_state *st)
{
    PyTypeObject *tp = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &admin_spec, NULL);
    if (tp == NULL) {
        return -1;
    }
    int rc = PyModule_AddType(module, tp);
    Py_DECREF(tp);
    (void)st;
    return rc;
}
