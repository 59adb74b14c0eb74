/* Delivery reports of produced messages: see delivery.c. */
#ifndef AKC_DELIVERY_H
#define AKC_DELIVERY_H

#include "producer.h"

/* Poll thread, GIL held: every report of a DR event (the event stays the
 * caller's).  Each message leaves the in-flight list here. */
void akc_producer_reports(ProducerObject *self, rd_kafka_event_t *ev);

/* The dispatcher's client item for a producer: completes one reported
 * message on the loop (future, on_delivery, or a log line for a failure
 * nobody waits for).  Never raises. */
void akc_producer_deliver(DispatcherObject *d, PyObject *item);

#endif
