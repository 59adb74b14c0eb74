/* aiokafka_c._core: module state, the exec slot that chains every type's
 * setup, and small shared helpers. */
#include "module.h"
#include "batch.h"
#include "poller.h"
#include "admin.h"
#include "probe.h"

#include <string.h>
#include <time.h>

static PyObject *
module_empty_tuple(PyObject *module)
{
    return ((akc_state *)PyModule_GetState(module))->empty_tuple;
}

int64_t
akc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
akc_check_c_string(PyObject *s, const char *what)
{
    Py_ssize_t n;
    const char *c = PyUnicode_AsUTF8AndSize(s, &n);
    if (c == NULL) {
        return -1;
    }
    if ((Py_ssize_t)strlen(c) != n) {
        PyErr_Format(PyExc_ValueError, "%s must not contain NUL characters: "
                     "%R", what, s);
        return -1;
    }
    return 0;
}

int
akc_timeout_ms(PyObject *timeout, int *out_ms)
{
    if (timeout == NULL || timeout == Py_None) {
        *out_ms = -1;
        return 0;
    }
    if (PyBool_Check(timeout) ||
        !(PyLong_Check(timeout) || PyFloat_Check(timeout))) {
        PyErr_Format(PyExc_TypeError,
                     "timeout must be a number of seconds or None, not "
                     "%.100s",
                     Py_TYPE(timeout)->tp_name);
        return -1;
    }
    double secs = PyFloat_AsDouble(timeout);
    if (secs == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(secs >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be >= 0 or None");
        return -1;
    }
    *out_ms = secs * 1000.0 >= (double)INT32_MAX ? -1 : (int)(secs * 1000.0);
    return 0;
}

int
akc_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames, PyObject *const *names, Py_ssize_t npos,
               Py_ssize_t nreq, PyObject **out)
{
    Py_ssize_t nnames = 0;
    while (names[nnames] != NULL) {
        nnames++;
    }
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes at most %zd positional arguments (%zd given)",
                     fname, npos, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        /* Interned names: identity first, then equality. */
        while (i < nnames && names[i] != kw) {
            i++;
        }
        if (i == nnames) {
            for (i = 0; i < nnames; i++) {
                int eq = PyUnicode_Compare(names[i], kw);
                if (eq == 0) {
                    break;
                }
                if (eq == -1 && PyErr_Occurred()) {
                    return -1;
                }
            }
        }
        if (i == nnames) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument %R", fname,
                         kw);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got multiple values for argument %R", fname,
                         kw);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < nreq; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError,
                         "%s() missing required argument %R", fname,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

static PyStructSequence_Field throttle_fields[] = {
    {"broker_name", "name of the throttling broker"},
    {"broker_id", "its node id"},
    {"throttle_time", "throttle time, in seconds"},
    {NULL, NULL},
};

static PyStructSequence_Desc throttle_desc = {
    "aiokafka_c.ThrottleEvent",
    "A broker throttled the client: passed to throttle_cb.",
    throttle_fields,
    3,
};

/* ---- module functions --------------------------------------------- */

static PyObject *
module_atexit(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    akc_state *st = PyModule_GetState(module);
    return PyLong_FromLong(akc_pollers_stop_all(st));
}

/* os.register_at_fork(after_in_child=...): the child has none of the
 * threads its clients need. */
static PyObject *
module_after_fork(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    akc_state *st = PyModule_GetState(module);
    akc_pollers_after_fork(st);
    Py_RETURN_NONE;
}

static PyObject *
module_librdkafka_version(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return Py_BuildValue("(si)", rd_kafka_version_str(), rd_kafka_version());
}

#ifdef AKC_LATENCY_PROBE
_Atomic int64_t akc_probe_ns[AKC_PROBE_POINTS];

static PyObject *
module_latency_probe(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    PyObject *t = PyTuple_New(AKC_PROBE_POINTS);
    for (int i = 0; t != NULL && i < AKC_PROBE_POINTS; i++) {
        PyObject *v = PyLong_FromLongLong(atomic_load_explicit(
            &akc_probe_ns[i], memory_order_relaxed));
        if (v == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}
#endif

static PyMethodDef module_methods[] = {
#ifdef AKC_LATENCY_PROBE
    {"_latency_probe", module_latency_probe, METH_NOARGS,
     "Probe build only: the last CLOCK_MONOTONIC ns stamp of each point "
     "(event taken, GIL held, waking the loop, dispatcher run)."},
#endif
    {"_atexit", module_atexit, METH_NOARGS,
     "Stop every client's poll thread (registered with atexit)."},
    {"_after_fork", module_after_fork, METH_NOARGS,
     "Disown every client inherited by a forked child (registered with "
     "os.register_at_fork)."},
    {"librdkafka_version", module_librdkafka_version, METH_NOARGS,
     "librdkafka_version()\n--\n\n"
     "(version string, version int) of the librdkafka in use."},
    {NULL, NULL, 0, NULL},
};

static int
module_intern_names(akc_state *st)
{
    struct {
        PyObject **slot;
        const char *s;
    } names[] = {
        {&st->str_create_future, "create_future"},
        {&st->str_call_soon_threadsafe, "call_soon_threadsafe"},
        {&st->str_set_result, "set_result"},
        {&st->str_set_exception, "set_exception"},
        {&st->str_done, "done"},
        {&st->str_log, "log"},
        {&st->str_create_task, "create_task"},
        {&st->str_add_done_callback, "add_done_callback"},
        {&st->str_discard, "discard"},
        {&st->str_is_closed, "is_closed"},
        {&st->str__closed, "_closed"},
        {&st->str_is_running, "is_running"},
        {&st->str_topic, "topic"},
        {&st->str_value, "value"},
        {&st->str_key, "key"},
        {&st->str_partition, "partition"},
        {&st->str_messages, "messages"},
        {&st->str_thread_id, "_thread_id"},
        {&st->str_timestamp, "timestamp"},
        {&st->str_headers, "headers"},
        {&st->str_on_delivery, "on_delivery"},
        {&st->str_dispatch, "dispatch"},
        {&st->str_loop, "loop"},
        {&st->str_poll_thread, "poll_thread"},
        {&st->str_timeout, "timeout"},
        {&st->str_config, "config"},
        {&st->str_call_soon, "call_soon"},
        {&st->str_close, "close"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].s);
        if (*names[i].slot == NULL) {
            return -1;
        }
    }
    return 0;
}

/* Returns a new reference to module.attr, or NULL. */
static PyObject *
module_import_attr(const char *module, const char *attr)
{
    PyObject *m = PyImport_ImportModule(module);
    if (m == NULL) {
        return NULL;
    }
    PyObject *a = PyObject_GetAttrString(m, attr);
    Py_DECREF(m);
    return a;
}

static int
module_import_helpers(akc_state *st)
{
    st->empty_tuple = PyTuple_New(0);
    st->get_running_loop = module_import_attr("asyncio.events",
                                              "_get_running_loop");
    st->iscoroutine = module_import_attr("asyncio", "iscoroutine");
    st->future_type = module_import_attr("asyncio", "Future");
    PyObject *bel = module_import_attr("asyncio.base_events", "BaseEventLoop");
    st->base_create_future = bel ? PyObject_GetAttrString(bel, "create_future")
                                 : NULL;
    Py_XDECREF(bel);
    st->invalid_state = module_import_attr("asyncio", "InvalidStateError");
    st->future_set_result = st->future_type
                                ? PyObject_GetAttrString(st->future_type,
                                                         "set_result")
                                : NULL;
    st->future_set_exception = st->future_type
                                   ? PyObject_GetAttrString(st->future_type,
                                                            "set_exception")
                                   : NULL;
    PyObject *get_logger = module_import_attr("logging", "getLogger");
    st->default_logger = get_logger ? PyObject_CallFunction(get_logger, "s",
                                                            "aiokafka_c")
                                    : NULL;
    Py_XDECREF(get_logger);
    return st->empty_tuple && st->get_running_loop && st->iscoroutine &&
                   st->future_type && st->base_create_future &&
                   st->invalid_state &&
                   st->future_set_result && st->future_set_exception &&
                   st->default_logger
               ? 0
               : -1;
}

static int
module_setup_types(PyObject *module, akc_state *st)
{
    st->ThrottleEventType = PyStructSequence_NewType(&throttle_desc);
    if (st->ThrottleEventType == NULL ||
        PyModule_AddObjectRef(module, "ThrottleEvent",
                              (PyObject *)st->ThrottleEventType) < 0) {
        return -1;
    }
    if (akc_errors_setup_types(module, st) < 0 ||
        akc_message_setup_types(module, st) < 0 ||
        akc_topic_partition_setup_types(module, st) < 0 ||
        akc_metadata_setup_types(module, st) < 0 ||
        akc_groupmeta_setup_types(module, st) < 0 ||
        akc_selftest_setup(module, st) < 0 ||
        akc_dispatcher_setup_types(module, st) < 0 ||
        akc_lifecycle_setup_types(module, st) < 0 ||
        akc_producer_setup_types(module, st) < 0 ||
        akc_batch_setup_types(module, st) < 0 ||
        akc_consumer_setup_types(module, st) < 0 ||
        akc_admin_setup_types(module, st) < 0) {
        return -1;
    }
    return PyModule_AddStringConstant(module, "LIBRDKAFKA_MIN_VERSION",
                                      AKC_MIN_RDKAFKA_VERSION_STR);
}

/* Calls register(module.<hook>) (kwname: as that keyword).  Returns 0 or
 * -1. */
static int
module_register_hook(PyObject *module, const char *where, const char *kwname,
                     const char *hook)
{
    PyObject *reg = module_import_attr(where, kwname ? "register_at_fork"
                                                     : "register");
    PyObject *fn = reg ? PyObject_GetAttrString(module, hook) : NULL;
    PyObject *r = NULL;
    if (fn != NULL && kwname == NULL) {
        r = PyObject_CallOneArg(reg, fn);
    }
    else if (fn != NULL) {
        PyObject *kw = Py_BuildValue("{sO}", kwname, fn);
        r = kw ? PyObject_Call(reg, module_empty_tuple(module), kw) : NULL;
        Py_XDECREF(kw);
    }
    Py_XDECREF(fn);
    Py_XDECREF(reg);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int
module_exec(PyObject *module)
{
    akc_state *st = PyModule_GetState(module);
    if (rd_kafka_version() < AKC_MIN_RDKAFKA_VERSION) {
        PyErr_Format(PyExc_ImportError,
                     "aiokafka_c needs librdkafka %s or newer at run time, "
                     "found %s",
                     AKC_MIN_RDKAFKA_VERSION_STR, rd_kafka_version_str());
        return -1;
    }
    if (module_intern_names(st) < 0 || module_import_helpers(st) < 0 ||
        module_setup_types(module, st) < 0) {
        return -1;
    }
    /* Stop poll threads before the interpreter finalizes (a native thread
     * must not take the GIL from a finalizing interpreter), and disown
     * them in a forked child (where they do not exist). */
    if (module_register_hook(module, "atexit", NULL, "_atexit") < 0 ||
        module_register_hook(module, "os", "after_in_child",
                             "_after_fork") < 0) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    akc_state *st = PyModule_GetState(module);
    Py_VISIT(st->KafkaErrorType);
    Py_VISIT(st->KafkaException);
    Py_VISIT(st->MessageType);
    Py_VISIT(st->DispatcherType);
    Py_VISIT(st->ProducerType);
    Py_VISIT(st->CloseWaiterType);
    Py_VISIT(st->ThrottleEventType);
    Py_VISIT(st->ConsumerType);
    Py_VISIT(st->ReadyType);
    Py_VISIT(st->BatchType);
    Py_VISIT(st->RebalanceType);
    Py_VISIT(st->in_consumer_callback);
    Py_VISIT(st->TopicPartitionType);
    Py_VISIT(st->ClusterMetadataType);
    Py_VISIT(st->BrokerMetadataType);
    Py_VISIT(st->TopicMetadataType);
    Py_VISIT(st->PartitionMetadataType);
    Py_VISIT(st->ConsumerGroupMetadataType);
    Py_VISIT(st->TransactionType);
    Py_VISIT(st->get_running_loop);
    Py_VISIT(st->future_type);
    Py_VISIT(st->base_create_future);
    Py_VISIT(st->invalid_state);
    Py_VISIT(st->future_set_result);
    Py_VISIT(st->future_set_exception);
    Py_VISIT(st->iscoroutine);
    Py_VISIT(st->default_logger);
    return 0;
}

static int
module_clear(PyObject *module)
{
    akc_state *st = PyModule_GetState(module);
    Py_CLEAR(st->KafkaErrorType);
    Py_CLEAR(st->KafkaException);
    Py_CLEAR(st->MessageType);
    Py_CLEAR(st->DispatcherType);
    Py_CLEAR(st->ProducerType);
    Py_CLEAR(st->CloseWaiterType);
    Py_CLEAR(st->ThrottleEventType);
    Py_CLEAR(st->ConsumerType);
    Py_CLEAR(st->ReadyType);
    Py_CLEAR(st->BatchType);
    Py_CLEAR(st->RebalanceType);
    Py_CLEAR(st->in_consumer_callback);
    Py_CLEAR(st->TopicPartitionType);
    Py_CLEAR(st->ClusterMetadataType);
    Py_CLEAR(st->BrokerMetadataType);
    Py_CLEAR(st->TopicMetadataType);
    Py_CLEAR(st->PartitionMetadataType);
    Py_CLEAR(st->ConsumerGroupMetadataType);
    Py_CLEAR(st->TransactionType);
    Py_CLEAR(st->get_running_loop);
    Py_CLEAR(st->future_type);
    Py_CLEAR(st->base_create_future);
    Py_CLEAR(st->invalid_state);
    Py_CLEAR(st->future_set_result);
    Py_CLEAR(st->future_set_exception);
    Py_CLEAR(st->iscoroutine);
    Py_CLEAR(st->default_logger);
    Py_CLEAR(st->empty_tuple);
    Py_CLEAR(st->str_create_future);
    Py_CLEAR(st->str_call_soon_threadsafe);
    Py_CLEAR(st->str_set_result);
    Py_CLEAR(st->str_set_exception);
    Py_CLEAR(st->str_done);
    Py_CLEAR(st->str_log);
    Py_CLEAR(st->str_create_task);
    Py_CLEAR(st->str_add_done_callback);
    Py_CLEAR(st->str_discard);
    Py_CLEAR(st->str_is_closed);
    Py_CLEAR(st->str__closed);
    Py_CLEAR(st->str_is_running);
    Py_CLEAR(st->str_topic);
    Py_CLEAR(st->str_value);
    Py_CLEAR(st->str_key);
    Py_CLEAR(st->str_partition);
    Py_CLEAR(st->str_messages);
    Py_CLEAR(st->str_thread_id);
    Py_CLEAR(st->str_timestamp);
    Py_CLEAR(st->str_headers);
    Py_CLEAR(st->str_on_delivery);
    Py_CLEAR(st->str_dispatch);
    Py_CLEAR(st->str_loop);
    Py_CLEAR(st->str_poll_thread);
    Py_CLEAR(st->str_timeout);
    Py_CLEAR(st->str_config);
    Py_CLEAR(st->str_call_soon);
    Py_CLEAR(st->str_close);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* Subinterpreters that share the main GIL are supported: all state is
     * per module, and each poll thread runs in its client's interpreter.
     * A per-interpreter GIL is not: librdkafka callbacks are not tied to
     * one interpreter's lock.  Importing there raises ImportError. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED},
#endif
    {0, NULL},
};

PyModuleDef akc_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aiokafka_c._core",
    .m_doc = "asyncio Kafka client over librdkafka (C core).",
    .m_size = sizeof(akc_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&akc_module_def);
}
