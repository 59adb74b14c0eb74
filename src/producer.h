/* AIOProducer: the asyncio producer, a handler on the client core. */
#ifndef AKC_PRODUCER_H
#define AKC_PRODUCER_H

#include "lifecycle.h"
#include "message.h"

typedef struct {
    PyObject_HEAD
    akc_core core;
    PyObject *topics;        /* dict: str -> capsule(rd_kafka_topic_t *) */
    PyObject *flush_waiters; /* dict: future -> deadline ms (-1: none) */
    PyObject *forget_flush;  /* done-callback removing a flush waiter */
    PyObject *weakreflist;

    /* Messages handed to librdkafka and not yet reported: the list owns
     * one reference to each (the librdkafka opaque). */
    ProducedMessage *inflight;
    Py_ssize_t ninflight;

    /* Messages waiting for room in librdkafka's queue, in produce order:
     * a ring buffer owning one reference to each. */
    ProducedMessage **ovf;
    Py_ssize_t ovf_head, ovf_len, ovf_cap, ovf_max;

    int64_t message_timeout_ms;
    int close_purged;

    /* Transactions (transactions.c): a transactional.id is configured;
     * begin_transaction() succeeded and no commit or abort was asked for
     * since (loop thread); calls held back until the overflow ring is
     * empty, in call order (owned jobs, GIL). */
    int transactional;
    int txn_open;
    struct akc_job *txn_waiting;
} ProducerObject;

#endif
