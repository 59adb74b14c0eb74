/* Message: the result of a produce (and, later, of a consume).
 *
 * While a produced message is in flight, its MessageObject is the
 * librdkafka message opaque: the producer's in-flight list holds one
 * strong reference to it, and it holds the value/key objects whose
 * buffers librdkafka reads without copying, plus the future and the
 * delivery callback to complete. */
#ifndef AKC_MESSAGE_H
#define AKC_MESSAGE_H

#include "module.h"

typedef struct MessageObject {
    PyObject_HEAD
    PyObject *topic;       /* str */
    PyObject *value;       /* bytes, str or NULL (None) */
    PyObject *key;         /* bytes, str or NULL (None) */
    PyObject *headers;     /* list[tuple[str, bytes | None]] or NULL */
    PyObject *error;       /* KafkaError or NULL */
    PyObject *future;      /* asyncio.Future while in flight, or NULL */
    PyObject *on_delivery; /* callable while in flight, or NULL */
    int64_t offset;
    int64_t timestamp;
    int64_t latency_us;    /* -1 when unknown */
    int64_t deadline_ms;   /* overflow wait bound (monotonic ms) */
    rd_kafka_headers_t *c_headers; /* owned until handed to librdkafka */
    struct MessageObject *prev, *next; /* producer's in-flight list */
    int32_t partition;
    int tstype;
    char dispatch_poll_thread;
} MessageObject;

/* Returns a new, empty message for a produce.  Loop thread. */
MessageObject *akc_message_new(akc_state *st);

/* Fills the delivery result of a produced message from librdkafka's
 * report; sets msg->error on failure.  Any thread, GIL held.  Returns 0
 * or -1 with an exception set. */
int akc_message_set_delivery(akc_state *st, MessageObject *msg,
                             const rd_kafka_message_t *rkm);

/* Marks msg as failed with code/reason without a librdkafka report (purged
 * from our own overflow queue, producer destroyed).  Returns 0 or -1. */
int akc_message_set_failed(akc_state *st, MessageObject *msg,
                           rd_kafka_resp_err_t code, const char *reason);

#endif
