/* The producer's outbox: handing messages to librdkafka, the in-flight
 * list and the overflow ring.  See outbox.c. */
#ifndef AKC_OUTBOX_H
#define AKC_OUTBOX_H

#include "producer.h"

/* Hands m to librdkafka, or to the overflow ring when librdkafka's queue
 * is full (or others already wait).  Returns 0, or -1 with an exception
 * (KafkaException for librdkafka's refusals, _QUEUE_FULL when the ring is
 * full too). */
int akc_producer_enqueue(ProducerObject *self, ProducedMessage *m);

/* Moves waiting messages into librdkafka while it has room; fails those
 * that waited longer than message.timeout.ms. */
void akc_producer_drain_overflow(ProducerObject *self);

/* Makes (or finds) the topic handle of name, a str: 0, or -1 with the
 * error a produce() to it would raise (a NUL in the name, say). */
int akc_producer_check_topic(ProducerObject *self, PyObject *name);

/* Drops m without a report (interpreter exit, forked child), taking the
 * caller's reference; a batch it is part of lets go of it. */
void akc_message_drop(ProducedMessage *m);

/* Messages not yet reported: in flight or waiting for room. */
Py_ssize_t akc_producer_pending(ProducerObject *self);

/* Fails m (taking the caller's reference) and queues it for the loop. */
void akc_producer_fail(ProducerObject *self, ProducedMessage *m,
                       rd_kafka_resp_err_t code, const char *reason);

/* The same without a producer (for orphans): marks m failed and hands it
 * to d, taking the caller's reference.  Never raises. */
void akc_message_fail(DispatcherObject *d, ProducedMessage *m,
                      rd_kafka_resp_err_t code, const char *reason);

void akc_inflight_link(ProducerObject *self, ProducedMessage *m);
/* Removes m; the caller inherits the list's reference. */
void akc_inflight_unlink(ProducerObject *self, ProducedMessage *m);
/* Returns the oldest waiting message (the ring's reference). */
ProducedMessage *akc_overflow_pop(ProducerObject *self);

/* Asks the poll thread to tick while something waits on time (overflow,
 * flush, close), and wakes it at once when that starts. */
void akc_producer_update_tick(ProducerObject *self);

#endif
