/* AIOProducer: the asyncio producer. */
#ifndef AKC_PRODUCER_H
#define AKC_PRODUCER_H

#include "dispatcher.h"
#include "message.h"
#include "poller.h"

enum { AKC_OPEN = 0, AKC_CLOSING = 1, AKC_CLOSED = 2 };

typedef struct {
    PyObject_HEAD
    akc_state *st;
    rd_kafka_t *rk;          /* NULL once the handle is being destroyed */
    akc_poller *poller;      /* NULL once joined */
    DispatcherObject *dispatcher;
    PyObject *topics;        /* dict: str -> capsule(rd_kafka_topic_t *) */
    PyObject *flush_waiters; /* list of [future, deadline_ms or -1] */
    PyObject *close_future;
    PyObject *weakreflist;

    /* Messages handed to librdkafka and not yet reported: the list owns
     * one reference to each (the librdkafka opaque). */
    MessageObject *inflight;
    Py_ssize_t ninflight;

    /* Messages waiting for room in librdkafka's queue, in produce order:
     * a ring buffer owning one reference to each. */
    MessageObject **ovf;
    Py_ssize_t ovf_head, ovf_len, ovf_cap, ovf_max;

    int64_t message_timeout_ms;
    int64_t close_flush_deadline; /* -1: none */
    int64_t close_deadline;       /* -1: none */
    int state;
    int close_purged;
} ProducerObject;

#endif
