/* The producer's outbox: see outbox.c. */
#ifndef AKC_OUTBOX_H
#define AKC_OUTBOX_H

#include "producer.h"

/* produce()/produce_nowait() parameters, in order. */
enum {
    ARG_TOPIC,
    ARG_VALUE,
    ARG_KEY,
    ARG_PARTITION,
    ARG_TIMESTAMP,
    ARG_HEADERS,
    ARG_ON_DELIVERY,
    ARG_DISPATCH,
    NARGS
};

/* Builds the message for produce()/produce_nowait() from parsed
 * arguments (a[ARG_*], NULL when not given).  Returns a new message or
 * NULL with TypeError/ValueError. */
MessageObject *akc_producer_build_message(ProducerObject *self, PyObject **a,
                                          int nowait);

/* Hands m to librdkafka, or to the overflow ring when librdkafka's queue
 * is full (or others already wait).  Returns 0, or -1 with an exception
 * (KafkaException for librdkafka's refusals, _QUEUE_FULL when the ring is
 * full too). */
int akc_producer_enqueue(ProducerObject *self, MessageObject *m);

/* Moves waiting messages into librdkafka while it has room; fails those
 * that waited longer than message.timeout.ms. */
void akc_producer_drain_overflow(ProducerObject *self);

/* Messages not yet reported: in flight or waiting for room. */
Py_ssize_t akc_producer_pending(ProducerObject *self);

/* Fails m (taking the caller's reference) and queues it for the loop. */
void akc_producer_fail(ProducerObject *self, MessageObject *m,
                       rd_kafka_resp_err_t code, const char *reason);

void akc_inflight_link(ProducerObject *self, MessageObject *m);
/* Removes m; the caller inherits the list's reference. */
void akc_inflight_unlink(ProducerObject *self, MessageObject *m);
/* Returns the oldest waiting message (the ring's reference). */
MessageObject *akc_overflow_pop(ProducerObject *self);

/* Asks the poll thread to tick while something waits on time (overflow,
 * flush, close), and wakes it at once when that starts. */
void akc_producer_update_tick(ProducerObject *self);

#endif
