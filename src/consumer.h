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
    PyObject *waiters;         /* list of waiting calls (_Ready) */
    PyObject *commits;         /* dict: int id -> future */
    PyObject *on_assign, *on_revoke, *on_lost, *on_commit;
    PyObject *subscription;    /* list of str */
    PyObject *rebalance;       /* the rebalance being handled, or NULL */
    PyObject *weakreflist;
    akc_tp **dirty;            /* handed out since the last release */
    size_t ndirty, capdirty;
    long long commit_seq;
    int64_t last_store_ms;     /* last store by a consume call */
    int auto_store;            /* the user's enable.auto.offset.store */
    int rebalance_assigned;    /* the callback called assign itself */
    int close_started;
    int close_skip_rebalance;  /* close() came from the callback */
    int64_t close_started_ms;
    int sticky;                /* cooperative-sticky assignor */
    Py_ssize_t streak;         /* ready messages handed out since a yield */
    Py_ssize_t lazy;           /* calls yielding or woken, yet to take */
    Py_ssize_t owed;           /* ring entries set aside for woken calls */
    uint64_t call_seq;         /* consume calls made (their order) */
} ConsumerObject;

int akc_consumer_setup_types(PyObject *module, akc_state *st);

/* rebalance.c */
int akc_rebalance_setup_types(PyObject *module, akc_state *st);
/* Hands a rebalance to the loop: cb(consumer, parts) runs there, then
 * the answer c (taken on success; may be NULL) is queued.  closing: the
 * revoke of close(), which becomes self->rebalance.  Returns 0 or -1
 * with an exception (c is then still the caller's). */
int akc_rebalance_push(ConsumerObject *self, PyObject *cb,
                       const rd_kafka_topic_partition_list_t *parts,
                       akc_cmd *c, int closing);
void akc_consumer_queue(ConsumerObject *self, akc_cmd *c);
void akc_consumer_item(DispatcherObject *d, PyObject *item);
void akc_consumer_store_released(ConsumerObject *self, int release);
void akc_consumer_on_events(PyObject *client, rd_kafka_event_t **evs,
                            size_t n);
void akc_consumer_answer_cmds(ConsumerObject *self);

/* consumer_calls.c and consumer_jobs.c: methods (see the method table). */
#define AKC_METH(name) PyObject *akc_consumer_##name
#define AKC_FAST(name)                                                     \
    AKC_METH(name)(ConsumerObject * self, PyObject *const *args,           \
                   Py_ssize_t nargs, PyObject *kwnames)
AKC_FAST(subscribe);
AKC_FAST(commit);
AKC_FAST(store_offsets);
AKC_FAST(committed);
AKC_FAST(offsets_for_times);
AKC_FAST(get_watermark_offsets);
AKC_FAST(list_topics);
AKC_FAST(close);
AKC_METH(unsubscribe)(ConsumerObject *self, PyObject *ignored);
AKC_METH(unassign)(ConsumerObject *self, PyObject *ignored);
AKC_METH(assignment)(ConsumerObject *self, PyObject *ignored);
AKC_METH(subscription)(ConsumerObject *self, PyObject *ignored);
AKC_METH(memberid)(ConsumerObject *self, PyObject *ignored);
AKC_METH(paused)(ConsumerObject *self, PyObject *ignored);
AKC_METH(group_metadata)(ConsumerObject *self, PyObject *ignored);
AKC_METH(aenter)(ConsumerObject *self, PyObject *ignored);
AKC_METH(assign)(ConsumerObject *self, PyObject *parts);
AKC_METH(incremental_assign)(ConsumerObject *self, PyObject *parts);
AKC_METH(incremental_unassign)(ConsumerObject *self, PyObject *parts);
AKC_METH(pause)(ConsumerObject *self, PyObject *parts);
AKC_METH(resume)(ConsumerObject *self, PyObject *parts);
AKC_METH(seek)(ConsumerObject *self, PyObject *partition);
AKC_METH(position)(ConsumerObject *self, PyObject *parts);
AKC_METH(aexit)(ConsumerObject *self, PyObject *const *args,
                Py_ssize_t nargs);
#undef AKC_FAST
#undef AKC_METH

#endif
