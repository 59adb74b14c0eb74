/* The consumer's fetch buffer: the part of an AIOConsumer that the poll
 * thread uses without the GIL.
 *
 * The poll thread moves every fetched message (and every partition-scoped
 * consumer error) from librdkafka's queue into the ring, in arrival
 * order, without creating a Python object and without the GIL; the loop
 * thread pops entries when a consume call hands them to the user and only
 * then turns them into Message objects.  Under load no wake-up is needed
 * at all: the loop finds the ring non-empty.
 *
 * Partition state lives here too (handed-out and released positions, the
 * pause flags), and the commands the loop queues for the poll thread
 * (seek, pause, resume, assign, subscribe, the answer to a rebalance): the
 * poll thread runs them between batches, when every message it popped is
 * already in the ring, so a seek or a pause is an exact barrier.
 *
 * Everything is under `lock`.  The loop thread takes it with the GIL held
 * and never calls Python while holding it; the poll thread takes it
 * without the GIL.  So the lock order is always GIL, then lock.
 *
 * Lifetime: shared by the consumer and its poller (refs); whichever lets
 * go last frees it, with the GIL held.  The ring is emptied (events
 * destroyed) before the handle is destroyed, on every path. */
#ifndef AKC_FETCH_H
#define AKC_FETCH_H

#include "module.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct akc_tp {
    char *topic;
    int32_t partition;
    uint32_t hash;
    int64_t handed;   /* offset after the last message handed out, or -1 */
    int64_t released; /* offset after the last message known done, or -1 */
    int64_t stored;   /* last offset given to rd_kafka_offsets_store */
    int user_paused;
    int rk_paused;    /* paused in librdkafka (by the user) */
    int forwarded;    /* its fetch queue goes to our fetch queue */
    int assigned;
    int dirty;        /* handed out since the last release */
    PyObject *pytopic; /* the topic as str, made once; GIL only */
} akc_tp;

typedef struct {
    rd_kafka_event_t *ev;
    const rd_kafka_message_t *m;     /* NULL: an error entry */
    rd_kafka_topic_partition_t *etp; /* error entry's partition, or NULL */
    akc_tp *tp;                      /* NULL for an error without one */
    size_t bytes;
} akc_entry;

typedef struct {
    akc_entry *v;
    size_t head, len, cap;
} akc_deque;

enum {
    AKC_CMD_SUBSCRIBE = 1,
    AKC_CMD_UNSUBSCRIBE,
    AKC_CMD_ASSIGN,
    AKC_CMD_INCR_ASSIGN,
    AKC_CMD_INCR_UNASSIGN,
    AKC_CMD_PAUSE,
    AKC_CMD_RESUME,
    AKC_CMD_SEEK,
    AKC_CMD_REBALANCE, /* the answer to a rebalance event */
};

typedef struct akc_cmd {
    struct akc_cmd *next;
    int kind;
    int assign;   /* AKC_CMD_REBALANCE: 1 assign, 0 revoke, -1 error */
    int cooperative;
    rd_kafka_topic_partition_list_t *parts; /* owned, may be NULL */
    PyObject *future;  /* strong, touched only with the GIL; may be NULL */
    rd_kafka_resp_err_t err;
    char errstr[256];
} akc_cmd;

typedef struct akc_fetch {
    pthread_mutex_t lock;
    atomic_int refs;
    akc_deque ring;  /* deliverable entries, arrival order */
    akc_deque held;  /* entries of user-paused partitions, arrival order */
    size_t ring_bytes;
    size_t max_msgs, max_bytes;   /* the ring's bound */
    /* The demand gate: every assigned partition's fetched messages go to
     * fetchq (not to the consumer queue), which the poll thread reads
     * only while the ring has room; when it has none, librdkafka's own
     * prefetch limits (queued.max.messages.kbytes) stop fetching, and
     * rebalances and commit results still flow on the consumer queue. */
    rd_kafka_queue_t *fetchq;
    int gated;                    /* no room: fetchq is not read */
    int ungate_sent;              /* the loop woke the thread to pull */
    int want_wake;                /* a consume call waits for entries */
    int want_store;               /* released positions to store */
    int closed;                   /* no more entries (handle going) */
    akc_tp **tps;                 /* every partition seen */
    size_t ntps, captps;
    akc_tp **index;               /* open addressing, size idxcap */
    size_t idxcap;
    akc_tp *last;                 /* lookup cache */
    akc_cmd *cmds, **cmds_tail;   /* queued for the poll thread */
    akc_cmd *done, **done_tail;   /* run, to be answered with the GIL */
    rd_kafka_topic_partition_list_t *assignment; /* mirror, or NULL */
    rd_kafka_t *rk;
    struct akc_worker *worker;    /* the client's blocking calls */
    int graceful;                 /* close() asked to leave the group */
    int seen_assign;              /* a rebalance assigned (even nothing) */
    int sticky_hazard;            /* see consumer_before_destroy() */
    int64_t close_deadline;       /* monotonic ms, for the teardown */
    size_t lent;                  /* entries popped, not yet destroyed */
    pthread_cond_t lent_cond;
    int64_t pause_cycles;
} akc_fetch;

/* A copy of l with topic, partition and offset only: lists librdkafka
 * makes hold references to its partitions, which keep the handle's
 * threads from ending, so none may outlive the handle.  NULL -> NULL. */
rd_kafka_topic_partition_list_t *
akc_plain_list(const rd_kafka_topic_partition_list_t *l);

/* GIL held.  Returns NULL with MemoryError. */
akc_fetch *akc_fetch_new(size_t max_msgs, size_t max_bytes);
akc_fetch *akc_fetch_ref(akc_fetch *f);
/* GIL held (queued commands may hold futures).  forked: leak it all. */
void akc_fetch_unref(akc_fetch *f, int forked);
/* Lock held: an entry popped with akc_fetch_pop is done (destroys it). */
void akc_fetch_return(akc_fetch *f, akc_entry *e);
/* Destroys an entry's event (no lock needed). */
void akc_entry_destroy(akc_entry *e);

/* Lock held: the partition's state, made on first sight; NULL on OOM. */
akc_tp *akc_fetch_tp(akc_fetch *f, const char *topic, int32_t partition);
/* Lock held: NULL if never seen. */
akc_tp *akc_fetch_find(akc_fetch *f, const char *topic, int32_t partition);

/* Poll thread, no GIL (the nogil_pass hook): moves fetched messages and
 * partition errors into the ring, keeps the rest in evs, runs queued
 * commands, reads the fetch queue while the ring has room.  Returns 1 if the GIL pass is needed
 * (a waiter to wake, commands to answer). */
int akc_fetch_nogil_pass(akc_fetch *f, rd_kafka_event_t **evs, size_t *n);

/* Lock held: pops the next deliverable entry (moving entries of
 * user-paused partitions aside).  Returns 1 or 0 if none. */
int akc_fetch_pop(akc_fetch *f, akc_entry *out);
/* Lock held: drops every entry of tp (NULL: every entry), destroying the
 * events.  Returns how many. */
size_t akc_fetch_purge(akc_fetch *f, akc_tp *tp);
/* Lock held: puts tp's withheld entries back in front of the ring. */
void akc_fetch_unhold(akc_fetch *f, akc_tp *tp);
/* Lock held: number of deliverable entries. */
static inline size_t
akc_fetch_ready(akc_fetch *f)
{
    return f->ring.len;
}

/* Lock held: queues a command (taking it) and wakes the poll thread
 * through queue (may be NULL). */
void akc_fetch_queue_cmd(akc_fetch *f, akc_cmd *c);
/* Lock held: takes the list of answered commands. */
akc_cmd *akc_fetch_take_done(akc_fetch *f);
/* Allocates a command; GIL held; NULL with MemoryError. */
akc_cmd *akc_cmd_new(int kind, rd_kafka_topic_partition_list_t *parts,
                     PyObject *future);
/* GIL held. */
void akc_cmd_free(akc_cmd *c);

/* Lock held: the list of released positions not yet stored, or NULL;
 * marks them stored. */
rd_kafka_topic_partition_list_t *akc_fetch_take_store(akc_fetch *f);

/* No GIL: empties the ring and the held entries (before the handle
 * goes); later entries are refused. */
void akc_fetch_close(akc_fetch *f);

#endif
