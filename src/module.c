/* aiokafka_c._core: module state, the exec slot that chains every type's
 * setup, and small shared helpers. */
#include "module.h"
#include "poller.h"

#include <time.h>

int64_t
akc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* ---- Done: an awaitable that is already complete (result None) -----
 * close() returns one when it had to close synchronously, outside any
 * event loop, so `await producer.close()` and a bare `producer.close()`
 * both work everywhere. */

static PyObject *
done_await(PyObject *self)
{
    akc_state *st = akc_state_from_type(Py_TYPE(self));
    return st ? PyObject_GetIter(st->empty_tuple) : NULL;
}

static PyObject *
done_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    return type->tp_alloc(type, 0);
}

static void
done_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot done_slots[] = {
    {Py_tp_new, done_new},
    {Py_tp_dealloc, done_dealloc},
    {Py_am_await, done_await},
    {Py_tp_doc, "An awaitable that has already completed with None."},
    {0, NULL},
};

static PyType_Spec done_spec = {
    .name = "aiokafka_c._core._Done",
    .basicsize = sizeof(PyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = done_slots,
};

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

static PyObject *
module_librdkafka_version(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return Py_BuildValue("(si)", rd_kafka_version_str(), rd_kafka_version());
}

static PyMethodDef module_methods[] = {
    {"_atexit", module_atexit, METH_NOARGS,
     "Stop every client's poll thread (registered with atexit)."},
    {"librdkafka_version", module_librdkafka_version, METH_NOARGS,
     "librdkafka_version()\n--\n\n"
     "(version string, version int) of the librdkafka in use."},
    {NULL, NULL, 0, NULL},
};

static int
module_intern(PyObject **slot, const char *s)
{
    *slot = PyUnicode_InternFromString(s);
    return *slot ? 0 : -1;
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
    if (module_intern(&st->str_create_future, "create_future") < 0 ||
        module_intern(&st->str_call_soon_threadsafe,
                      "call_soon_threadsafe") < 0 ||
        module_intern(&st->str_set_result, "set_result") < 0 ||
        module_intern(&st->str_set_exception, "set_exception") < 0 ||
        module_intern(&st->str_done, "done") < 0 ||
        module_intern(&st->str_log, "log") < 0 ||
        module_intern(&st->str_create_task, "create_task") < 0 ||
        module_intern(&st->str_add_done_callback, "add_done_callback") < 0 ||
        module_intern(&st->str_discard, "discard") < 0 ||
        module_intern(&st->str_is_closed, "is_closed") < 0 ||
        module_intern(&st->str_is_running, "is_running") < 0 ||
        module_intern(&st->str_topic, "topic") < 0 ||
        module_intern(&st->str_value, "value") < 0 ||
        module_intern(&st->str_key, "key") < 0 ||
        module_intern(&st->str_partition, "partition") < 0 ||
        module_intern(&st->str_timestamp, "timestamp") < 0 ||
        module_intern(&st->str_headers, "headers") < 0 ||
        module_intern(&st->str_on_delivery, "on_delivery") < 0 ||
        module_intern(&st->str_dispatch, "dispatch") < 0 ||
        module_intern(&st->str_loop, "loop") < 0 ||
        module_intern(&st->str_poll_thread, "poll_thread") < 0 ||
        module_intern(&st->str_timeout, "timeout") < 0 ||
        module_intern(&st->str_config, "config") < 0) {
        return -1;
    }
    st->empty_tuple = PyTuple_New(0);
    if (st->empty_tuple == NULL) {
        return -1;
    }
    PyObject *events = PyImport_ImportModule("asyncio.events");
    if (events == NULL) {
        return -1;
    }
    st->get_running_loop = PyObject_GetAttrString(events, "_get_running_loop");
    Py_DECREF(events);
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    if (asyncio == NULL) {
        return -1;
    }
    st->iscoroutine = PyObject_GetAttrString(asyncio, "iscoroutine");
    Py_DECREF(asyncio);
    PyObject *logging = PyImport_ImportModule("logging");
    if (logging == NULL) {
        return -1;
    }
    st->default_logger = PyObject_CallMethod(logging, "getLogger", "s",
                                             "aiokafka_c");
    Py_DECREF(logging);
    if (st->get_running_loop == NULL || st->iscoroutine == NULL ||
        st->default_logger == NULL) {
        return -1;
    }

    st->DoneType = (PyTypeObject *)PyType_FromModuleAndSpec(module,
                                                           &done_spec, NULL);
    if (st->DoneType == NULL) {
        return -1;
    }
    st->ThrottleEventType = PyStructSequence_NewType(&throttle_desc);
    if (st->ThrottleEventType == NULL ||
        PyModule_AddObjectRef(module, "ThrottleEvent",
                              (PyObject *)st->ThrottleEventType) < 0) {
        return -1;
    }
    if (akc_errors_setup_types(module, st) < 0 ||
        akc_message_setup_types(module, st) < 0 ||
        akc_dispatcher_setup_types(module, st) < 0 ||
        akc_producer_setup_types(module, st) < 0) {
        return -1;
    }
    if (PyModule_AddStringConstant(module, "LIBRDKAFKA_MIN_VERSION",
                                   AKC_MIN_RDKAFKA_VERSION_STR) < 0) {
        return -1;
    }

    /* Stop poll threads before the interpreter finalizes: a native thread
     * must not try to take the GIL from a finalizing interpreter. */
    PyObject *atexit = PyImport_ImportModule("atexit");
    if (atexit == NULL) {
        return -1;
    }
    PyObject *hook = PyObject_GetAttrString(module, "_atexit");
    PyObject *r = hook ? PyObject_CallMethod(atexit, "register", "O", hook)
                       : NULL;
    Py_XDECREF(hook);
    Py_DECREF(atexit);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
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
    Py_VISIT(st->DoneType);
    Py_VISIT(st->ThrottleEventType);
    Py_VISIT(st->get_running_loop);
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
    Py_CLEAR(st->DoneType);
    Py_CLEAR(st->ThrottleEventType);
    Py_CLEAR(st->get_running_loop);
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
    Py_CLEAR(st->str_is_running);
    Py_CLEAR(st->str_topic);
    Py_CLEAR(st->str_value);
    Py_CLEAR(st->str_key);
    Py_CLEAR(st->str_partition);
    Py_CLEAR(st->str_timestamp);
    Py_CLEAR(st->str_headers);
    Py_CLEAR(st->str_on_delivery);
    Py_CLEAR(st->str_dispatch);
    Py_CLEAR(st->str_loop);
    Py_CLEAR(st->str_poll_thread);
    Py_CLEAR(st->str_timeout);
    Py_CLEAR(st->str_config);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
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
