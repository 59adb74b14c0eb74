/* Message: a produced message's delivery result, or a consumed message.
 *
 * One Python type, Message, with confluent-kafka's accessors, over two C
 * layouts: MessageObject holds what every message has; a produced message
 * is allocated as the larger ProducedMessage (same type, same dealloc,
 * told apart by `produced`), which adds what only an in-flight produce
 * needs.  A consumed message never carries those fields.
 *
 * While a produced message is in flight, its object is the librdkafka
 * message opaque: the producer's in-flight list holds one strong reference
 * to it, and it holds the value/key objects whose buffers librdkafka reads
 * without copying, plus the future, callback and context to complete. */
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
    int64_t offset;
    int64_t timestamp;
    int64_t latency_us;    /* -1 when unknown */
    int32_t partition;
    int tstype;
    char produced;         /* allocated as a ProducedMessage */
} MessageObject;

typedef struct ProducedMessage {
    MessageObject base;
    PyObject *future;      /* asyncio.Future while in flight, or NULL */
    PyObject *on_delivery; /* callable while in flight, or NULL */
    PyObject *context;     /* contextvars.Context of the produce, or NULL */
    int64_t deadline_ms;   /* overflow wait bound (monotonic ms) */
    rd_kafka_headers_t *c_headers; /* owned until handed to librdkafka */
    struct ProducedMessage *prev, *next; /* producer's in-flight list */
    PyObject *batch;       /* the produce_batch() it is part of, or NULL */
    char dispatch_poll_thread;
} ProducedMessage;

/* Returns a new, empty message for a produce.  GIL held. */
ProducedMessage *akc_message_new_produced(akc_state *st);

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
