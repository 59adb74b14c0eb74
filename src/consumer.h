/* AIOConsumer: the asyncio consumer, a handler on the client core. */
#ifndef AKC_CONSUMER_H
#define AKC_CONSUMER_H

#include "lifecycle.h"
#include "fetch.h"

typedef struct {
    PyObject_HEAD
    akc_core core;
    akc_fetch *fetch;          /* shared with the poll thread */
    rd_kafka_queue_t *cq;      /* our handle on the consumer queue */
    PyObject *waiters;         /* list of (future, kind, max, timer) */
    PyObject *commits;         /* dict: int id -> future */
    PyObject *on_assign, *on_revoke, *on_lost, *on_commit;
    PyObject *subscription;    /* list of str */
    PyObject *rebalance;       /* the rebalance being handled, or NULL */
    PyObject *weakreflist;
    akc_tp **dirty;            /* handed out since the last release */
    size_t ndirty, capdirty;
    long long commit_seq;
    int auto_store;            /* the user's enable.auto.offset.store */
    int rebalance_assigned;    /* the callback called assign itself */
    int close_started;
    int close_skip_rebalance;  /* close() came from the callback */
    int64_t close_started_ms;
    int sticky;                /* cooperative-sticky assignor */
    int streak;                /* anext calls served without a yield */
} ConsumerObject;

int akc_consumer_setup_types(PyObject *module, akc_state *st);

#endif
