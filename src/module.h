/* Module state and declarations shared by every file of aiokafka_c._core.
 *
 * Every type is a heap type created in the module's exec slot; all state
 * lives in akc_state, reached through PyType_GetModuleByDef() or through
 * the state pointer cached on each instance.  There are no mutable C
 * globals. */
#ifndef AKC_MODULE_H
#define AKC_MODULE_H

#include "compat.h"

#include <librdkafka/rdkafka.h>

/* Keep in step with MIN_RDKAFKA in setup.py. */
#define AKC_MIN_RDKAFKA_VERSION 0x020002ff
#define AKC_MIN_RDKAFKA_VERSION_STR "2.0.2"

#if RD_KAFKA_VERSION < 0x02000200
#error "aiokafka_c needs librdkafka 2.0.2 or newer (apt-get install librdkafka-dev)"
#endif

struct akc_poller;

typedef struct {
    PyTypeObject *KafkaErrorType;
    PyObject *KafkaException;
    PyTypeObject *MessageType;
    PyTypeObject *DispatcherType;
    PyTypeObject *ProducerType;
    PyTypeObject *CloseWaiterType;
    PyTypeObject *ThrottleEventType;
    PyTypeObject *TopicPartitionType;
    PyTypeObject *ClusterMetadataType;
    PyTypeObject *BrokerMetadataType;
    PyTypeObject *TopicMetadataType;
    PyTypeObject *PartitionMetadataType;
    PyTypeObject *ConsumerGroupMetadataType;
    PyTypeObject *ConsumerType;
    PyTypeObject *TransactionType; /* producer.transaction()'s manager */
    PyTypeObject *ReadyType;      /* consumer: a consume call's awaitable */
    PyTypeObject *BatchType;      /* producer: a produce_batch() call */
    PyTypeObject *RebalanceType;  /* consumer: a rebalance for the loop */
    PyObject *in_consumer_callback; /* ContextVar: inside on_assign & co */

    /* asyncio / logging helpers, imported once. */
    PyObject *get_running_loop; /* asyncio.events._get_running_loop */
    PyObject *future_type;      /* asyncio.Future (the C one, usually) */
    PyObject *base_create_future; /* BaseEventLoop.create_future */
    PyObject *invalid_state;    /* asyncio.InvalidStateError */
    PyObject *future_set_result;    /* asyncio.Future.set_result */
    PyObject *future_set_exception; /* asyncio.Future.set_exception */
    PyObject *iscoroutine;      /* asyncio.iscoroutine */
    PyObject *default_logger;   /* logging.getLogger("aiokafka_c") */
    PyObject *empty_tuple;

    /* Interned names used on hot paths. */
    PyObject *str_create_future;
    PyObject *str_call_soon_threadsafe;
    PyObject *str_set_result;
    PyObject *str_set_exception;
    PyObject *str_done;
    PyObject *str_log;
    PyObject *str_create_task;
    PyObject *str_add_done_callback;
    PyObject *str_discard;
    PyObject *str_is_closed;
    PyObject *str__closed;
    PyObject *str_is_running;
    PyObject *str_topic;
    PyObject *str_value;
    PyObject *str_key;
    PyObject *str_partition;
    PyObject *str_messages;
    PyObject *str_thread_id;
    PyObject *str_timestamp;
    PyObject *str_headers;
    PyObject *str_on_delivery;
    PyObject *str_dispatch;
    PyObject *str_loop;
    PyObject *str_poll_thread;
    PyObject *str_timeout;
    PyObject *str_config;
    PyObject *str_call_soon;
    PyObject *str_close;

    /* Live pollers, so the atexit hook can stop their threads before the
     * interpreter finalizes and a forked child can disown them.  Touched
     * only with the GIL held. */
    struct akc_poller *pollers;
    /* Set by the atexit hook: no new client may start a thread after it. */
    int shutting_down;
} akc_state;

extern PyModuleDef akc_module_def;

static inline akc_state *
akc_state_from_type(PyTypeObject *tp)
{
    PyObject *mod = akc_type_module_by_def(tp, &akc_module_def);
    return mod ? (akc_state *)PyModule_GetState(mod) : NULL;
}

/* Small FASTCALL argument parser for hot methods.  names[] lists every
 * parameter (NULL-terminated); the first npos may be given positionally,
 * the first nreq are required.  out[] receives borrowed references or
 * NULL for parameters not given.  Returns 0, or -1 with TypeError set. */
int akc_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                   PyObject *kwnames, PyObject *const *names, Py_ssize_t npos,
                   Py_ssize_t nreq, PyObject **out);

/* Converts a timeout argument (None = forever, or seconds as int/float
 * >= 0) to milliseconds; -1 means forever.  Returns 0 or -1 with an
 * exception set. */
int akc_timeout_ms(PyObject *timeout, int *out_ms);

/* Raises ValueError if s (a str) has an embedded NUL character, which a
 * C string would silently cut there; what names it.  Returns 0 or -1. */
int akc_check_c_string(PyObject *s, const char *what);

/* Milliseconds on a monotonic clock. */
int64_t akc_now_ms(void);

int akc_errors_setup_types(PyObject *module, akc_state *st);
int akc_message_setup_types(PyObject *module, akc_state *st);
int akc_dispatcher_setup_types(PyObject *module, akc_state *st);
int akc_producer_setup_types(PyObject *module, akc_state *st);
int akc_lifecycle_setup_types(PyObject *module, akc_state *st);
int akc_topic_partition_setup_types(PyObject *module, akc_state *st);
int akc_metadata_setup_types(PyObject *module, akc_state *st);
int akc_groupmeta_setup_types(PyObject *module, akc_state *st);
/* Private functions for tests (src/selftest.c). */
int akc_selftest_setup(PyObject *module, akc_state *st);
int akc_consumer_setup_types(PyObject *module, akc_state *st);

#endif
