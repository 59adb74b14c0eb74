/* The consumer's fetch buffer and poll-thread commands.  See fetch.h. */
#include "fetch.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

/* ---- deque ---------------------------------------------------------- */

static int
deque_reserve(akc_deque *d, size_t need)
{
    if (need <= d->cap) {
        return 0;
    }
    size_t cap = d->cap ? d->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    akc_entry *v = malloc(cap * sizeof(*v));
    if (v == NULL) {
        return -1;
    }
    for (size_t i = 0; i < d->len; i++) {
        v[i] = d->v[(d->head + i) % d->cap];
    }
    free(d->v);
    d->v = v;
    d->cap = cap;
    d->head = 0;
    return 0;
}

static int
deque_push(akc_deque *d, const akc_entry *e)
{
    if (deque_reserve(d, d->len + 1) < 0) {
        return -1;
    }
    d->v[(d->head + d->len) % d->cap] = *e;
    d->len++;
    return 0;
}

static akc_entry *
deque_at(akc_deque *d, size_t i)
{
    return &d->v[(d->head + i) % d->cap];
}

static void
deque_pop_front(akc_deque *d, akc_entry *out)
{
    *out = d->v[d->head];
    d->head = (d->head + 1) % d->cap;
    d->len--;
}

void
akc_entry_destroy(akc_entry *e)
{
    if (e->etp != NULL) {
        rd_kafka_topic_partition_destroy(e->etp);
    }
    rd_kafka_event_destroy(e->ev);
}

/* Keeps the entries for which drop() is false, in order; destroys the
 * others.  Returns how many went. */
static size_t
deque_filter(akc_deque *d, akc_tp *tp, size_t *bytes)
{
    size_t w = 0, gone = 0;
    for (size_t i = 0; i < d->len; i++) {
        akc_entry e = *deque_at(d, i);
        if (tp == NULL || e.tp == tp) {
            if (bytes != NULL) {
                *bytes -= e.bytes;
            }
            akc_entry_destroy(&e);
            gone++;
            continue;
        }
        *deque_at(d, w++) = e;
    }
    d->len = w;
    return gone;
}

/* ---- partitions ----------------------------------------------------- */

static uint32_t
tp_hash(const char *topic, int32_t partition)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)topic; *s; s++) {
        h = (h ^ *s) * 16777619u;
    }
    return (h ^ (uint32_t)partition) * 2654435761u;
}

akc_tp *
akc_fetch_find(akc_fetch *f, const char *topic, int32_t partition)
{
    akc_tp *last = f->last;
    if (last != NULL && last->partition == partition &&
        strcmp(last->topic, topic) == 0) {
        return last;
    }
    if (f->idxcap == 0) {
        return NULL;
    }
    uint32_t h = tp_hash(topic, partition);
    for (size_t i = h & (f->idxcap - 1);; i = (i + 1) & (f->idxcap - 1)) {
        akc_tp *tp = f->index[i];
        if (tp == NULL) {
            return NULL;
        }
        if (tp->hash == h && tp->partition == partition &&
            strcmp(tp->topic, topic) == 0) {
            f->last = tp;
            return tp;
        }
    }
}

static int
index_grow(akc_fetch *f)
{
    size_t cap = f->idxcap ? f->idxcap * 2 : 64;
    akc_tp **idx = calloc(cap, sizeof(*idx));
    if (idx == NULL) {
        return -1;
    }
    for (size_t k = 0; k < f->ntps; k++) {
        size_t i = f->tps[k]->hash & (cap - 1);
        while (idx[i] != NULL) {
            i = (i + 1) & (cap - 1);
        }
        idx[i] = f->tps[k];
    }
    free(f->index);
    f->index = idx;
    f->idxcap = cap;
    return 0;
}

akc_tp *
akc_fetch_tp(akc_fetch *f, const char *topic, int32_t partition)
{
    akc_tp *tp = akc_fetch_find(f, topic, partition);
    if (tp != NULL) {
        return tp;
    }
    if ((f->ntps + 1) * 2 > f->idxcap && index_grow(f) < 0) {
        return NULL;
    }
    if (f->ntps == f->captps) {
        size_t cap = f->captps ? f->captps * 2 : 16;
        akc_tp **v = realloc(f->tps, cap * sizeof(*v));
        if (v == NULL) {
            return NULL;
        }
        f->tps = v;
        f->captps = cap;
    }
    tp = calloc(1, sizeof(*tp));
    if (tp == NULL || (tp->topic = strdup(topic)) == NULL) {
        free(tp);
        return NULL;
    }
    tp->partition = partition;
    tp->hash = tp_hash(topic, partition);
    tp->handed = tp->released = tp->stored = -1;
    f->tps[f->ntps++] = tp;
    size_t i = tp->hash & (f->idxcap - 1);
    while (f->index[i] != NULL) {
        i = (i + 1) & (f->idxcap - 1);
    }
    f->index[i] = tp;
    f->last = tp;
    return tp;
}

rd_kafka_topic_partition_list_t *
akc_plain_list(const rd_kafka_topic_partition_list_t *l)
{
    if (l == NULL) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *c =
        rd_kafka_topic_partition_list_new(l->cnt > 0 ? l->cnt : 1);
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_list_add(c, l->elems[i].topic,
                                          l->elems[i].partition)
            ->offset = l->elems[i].offset;
    }
    return c;
}

/* ---- lifetime --------------------------------------------------------- */

akc_fetch *
akc_fetch_new(size_t max_msgs, size_t max_bytes)
{
    akc_fetch *f = calloc(1, sizeof(*f));
    if (f == NULL || pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        PyErr_NoMemory();
        return NULL;
    }
    if (pthread_cond_init(&f->lent_cond, NULL) != 0) {
        pthread_mutex_destroy(&f->lock);
        free(f);
        PyErr_NoMemory();
        return NULL;
    }
    atomic_init(&f->refs, 1);
    f->max_msgs = max_msgs;
    f->max_bytes = max_bytes;
    f->cmds_tail = &f->cmds;
    f->done_tail = &f->done;
    return f;
}

akc_fetch *
akc_fetch_ref(akc_fetch *f)
{
    atomic_fetch_add(&f->refs, 1);
    return f;
}

static void
cmd_list_free(akc_cmd *c)
{
    while (c != NULL) {
        akc_cmd *next = c->next;
        akc_cmd_free(c);
        c = next;
    }
}

void
akc_fetch_unref(akc_fetch *f, int forked)
{
    if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1 || forked) {
        return;
    }
    akc_fetch_close(f);
    if (f->worker != NULL) {
        Py_BEGIN_ALLOW_THREADS
        akc_worker_stop(f->worker);
        Py_END_ALLOW_THREADS
        akc_worker_free(f->worker, 0);
    }
    cmd_list_free(f->cmds);
    cmd_list_free(f->done);
    if (f->assignment != NULL) {
        rd_kafka_topic_partition_list_destroy(f->assignment);
    }
    for (size_t i = 0; i < f->ntps; i++) {
        Py_XDECREF(f->tps[i]->pytopic);
        free(f->tps[i]->topic);
        free(f->tps[i]);
    }
    free(f->tps);
    free(f->index);
    free(f->ring.v);
    free(f->held.v);
    pthread_cond_destroy(&f->lent_cond);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void
akc_fetch_close(akc_fetch *f)
{
    pthread_mutex_lock(&f->lock);
    f->closed = 1;
    if (f->fetchq != NULL) {
        rd_kafka_queue_cb_event_enable(f->fetchq, NULL, NULL);
        rd_kafka_queue_destroy(f->fetchq);
        f->fetchq = NULL;
    }
    /* An entry the loop is turning into a Message still points into the
     * handle: wait until it is done with it. */
    while (f->lent > 0) {
        pthread_cond_wait(&f->lent_cond, &f->lock);
    }
    deque_filter(&f->ring, NULL, NULL);
    deque_filter(&f->held, NULL, NULL);
    f->ring_bytes = 0;
    /* Partition lists librdkafka made hold references to its partitions,
     * which keep its threads from ending: they go before the handle. */
    if (f->assignment != NULL) {
        rd_kafka_topic_partition_list_destroy(f->assignment);
        f->assignment = NULL;
    }
    akc_cmd *lists[2] = {f->cmds, f->done};
    for (int i = 0; i < 2; i++) {
        for (akc_cmd *c = lists[i]; c != NULL; c = c->next) {
            if (c->parts != NULL) {
                rd_kafka_topic_partition_list_destroy(c->parts);
                c->parts = NULL;
            }
        }
    }
    pthread_mutex_unlock(&f->lock);
}

/* ---- ring --------------------------------------------------------------- */

static int
ring_add(akc_fetch *f, akc_entry *e)
{
    if (f->closed) {
        return -1;
    }
    if (e->tp != NULL && e->tp->user_paused) {
        return deque_push(&f->held, e);
    }
    if (deque_push(&f->ring, e) < 0) {
        return -1;
    }
    f->ring_bytes += e->bytes;
    return 0;
}

int
akc_fetch_pop(akc_fetch *f, akc_entry *out)
{
    while (f->ring.len > 0) {
        deque_pop_front(&f->ring, out);
        f->ring_bytes -= out->bytes;
        if (out->tp != NULL && out->tp->user_paused) {
            if (deque_push(&f->held, out) == 0) {
                continue;
            }
            akc_entry_destroy(out); /* out of memory: refetched after resume */
            continue;
        }
        f->lent++;
        return 1;
    }
    return 0;
}

void
akc_fetch_return(akc_fetch *f, akc_entry *e)
{
    akc_entry_destroy(e);
    if (--f->lent == 0 && f->closed) {
        pthread_cond_broadcast(&f->lent_cond);
    }
}

size_t
akc_fetch_purge(akc_fetch *f, akc_tp *tp)
{
    size_t n = deque_filter(&f->ring, tp, &f->ring_bytes);
    return n + deque_filter(&f->held, tp, NULL);
}

void
akc_fetch_unhold(akc_fetch *f, akc_tp *tp)
{
    size_t k = 0;
    for (size_t i = 0; i < f->held.len; i++) {
        k += deque_at(&f->held, i)->tp == tp;
    }
    if (k == 0 || deque_reserve(&f->ring, f->ring.len + k) < 0) {
        return;
    }
    /* Walk backwards so the oldest ends up first. */
    size_t w = f->held.len;
    for (size_t i = f->held.len; i-- > 0;) {
        akc_entry e = *deque_at(&f->held, i);
        if (e.tp == tp) {
            f->ring.head = (f->ring.head + f->ring.cap - 1) % f->ring.cap;
            f->ring.v[f->ring.head] = e;
            f->ring.len++;
            f->ring_bytes += e.bytes;
        }
        else {
            *deque_at(&f->held, --w) = e;
        }
    }
    /* The kept entries now sit at [w, len): move them to the front. */
    size_t keep = f->held.len - w;
    for (size_t i = 0; i < keep; i++) {
        *deque_at(&f->held, i) = *deque_at(&f->held, w + i);
    }
    f->held.len = keep;
}

/* ---- the poll thread's pass ---------------------------------------------- */

/* Consumer errors that belong in the message stream even without a
 * partition (a subscribed topic that does not exist, say). */
static int
stream_error(rd_kafka_resp_err_t code)
{
    switch (code) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
        return 1;
    default:
        return 0;
    }
}

/* Lock held.  Returns 1 if ev went into the ring (or was dropped), 0 if
 * it stays for the GIL pass. */
static int
take_event(akc_fetch *f, rd_kafka_event_t *ev)
{
    akc_entry e = {ev, NULL, NULL, NULL, 0};
    int type = rd_kafka_event_type(ev);
    if (type == RD_KAFKA_EVENT_FETCH) {
        /* This is where librdkafka counts the message as consumed (its
         * app offset); our own positions move only at hand-out. */
        e.m = rd_kafka_event_message_next(ev);
        if (e.m == NULL) {
            rd_kafka_event_destroy(ev);
            return 1;
        }
        e.tp = akc_fetch_tp(f, rd_kafka_topic_name(e.m->rkt), e.m->partition);
        e.bytes = e.m->len + e.m->key_len + 64;
    }
    else if (type == RD_KAFKA_EVENT_ERROR && !rd_kafka_event_error_is_fatal(ev)) {
        e.etp = rd_kafka_event_topic_partition(ev);
        if (e.etp == NULL && !stream_error(rd_kafka_event_error(ev))) {
            return 0;
        }
        if (e.etp != NULL) {
            e.tp = akc_fetch_tp(f, e.etp->topic, e.etp->partition);
        }
    }
    else {
        return 0;
    }
    if (ring_add(f, &e) < 0) {
        akc_entry_destroy(&e);
    }
    return 1;
}

static void
cmd_set_error(akc_cmd *c, rd_kafka_error_t *error)
{
    if (error == NULL) {
        return;
    }
    c->err = rd_kafka_error_code(error);
    snprintf(c->errstr, sizeof(c->errstr), "%s", rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
}

/* Lock held: the pause flag in librdkafka follows ours. */
static void
sync_pause(akc_fetch *f, rd_kafka_t *rk, akc_tp **tps, size_t n)
{
    rd_kafka_topic_partition_list_t *pause = NULL, *resume = NULL;
    for (size_t i = 0; i < n; i++) {
        akc_tp *tp = tps[i];
        int want = tp->user_paused;
        if (want == tp->rk_paused || !tp->assigned) {
            continue;
        }
        rd_kafka_topic_partition_list_t **l = want ? &pause : &resume;
        if (*l == NULL) {
            *l = rd_kafka_topic_partition_list_new((int)n);
        }
        rd_kafka_topic_partition_list_add(*l, tp->topic, tp->partition);
        tp->rk_paused = want;
    }
    if (pause != NULL) {
        rd_kafka_pause_partitions(rk, pause);
        rd_kafka_topic_partition_list_destroy(pause);
        f->pause_cycles++;
    }
    if (resume != NULL) {
        rd_kafka_resume_partitions(rk, resume);
        rd_kafka_topic_partition_list_destroy(resume);
    }
}

/* Lock held: the assignment mirror (taking a) and each partition's
 * flags, after an assign call. */
static void
refresh_assignment(akc_fetch *f, rd_kafka_t *rk,
                   rd_kafka_topic_partition_list_t *a)
{
    if (f->assignment != NULL) {
        rd_kafka_topic_partition_list_destroy(f->assignment);
    }
    f->assignment = a;
    for (size_t i = 0; i < f->ntps; i++) {
        f->tps[i]->assigned = 0;
    }
    for (int i = 0; i < a->cnt; i++) {
        akc_tp *tp = akc_fetch_tp(f, a->elems[i].topic, a->elems[i].partition);
        if (tp == NULL) {
            continue;
        }
        tp->assigned = 1;
        /* Every time: librdkafka's assign stops and restarts a partition
         * kept across it, and the stop drops our forwarding. */
        if (f->fetchq != NULL) {
            rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(
                rk, tp->topic, tp->partition);
            if (pq != NULL) {
                rd_kafka_queue_forward(pq, f->fetchq);
                rd_kafka_queue_destroy(pq);
                tp->forwarded = 1;
            }
        }
    }
    for (size_t i = 0; i < f->ntps; i++) {
        akc_tp *tp = f->tps[i];
        if (!tp->assigned) {
            /* Gone: its state starts afresh if it comes back. */
            akc_fetch_purge(f, tp);
            tp->handed = tp->released = tp->stored = -1;
            tp->user_paused = tp->rk_paused = tp->forwarded = 0;
        }
    }
    sync_pause(f, rk, f->tps, f->ntps);
}

/* Lock held. */
static void
purge_listed(akc_fetch *f, const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; l != NULL && i < l->cnt; i++) {
        akc_tp *tp = akc_fetch_find(f, l->elems[i].topic,
                                    l->elems[i].partition);
        if (tp != NULL) {
            akc_fetch_purge(f, tp);
        }
    }
}

/* Lock held. */
static void
pause_listed(akc_fetch *f, rd_kafka_t *rk,
             const rd_kafka_topic_partition_list_t *l)
{
    akc_tp *tps[64];
    for (int i = 0; l != NULL && i < l->cnt; i += 64) {
        size_t k = 0;
        for (int j = i; j < l->cnt && j < i + 64; j++) {
            akc_tp *tp = akc_fetch_find(f, l->elems[j].topic,
                                        l->elems[j].partition);
            if (tp != NULL) {
                tps[k++] = tp;
            }
        }
        sync_pause(f, rk, tps, k);
    }
}

/* What a command does to the ring before librdkafka is called: a seek,
 * an unassign or a new eager assignment drops what was fetched before it
 * (this thread polls nothing meanwhile, so the drop is exact). */
static void
cmd_purge(akc_fetch *f, akc_cmd *c)
{
    pthread_mutex_lock(&f->lock);
    int all = c->kind == AKC_CMD_ASSIGN ||
              (c->kind == AKC_CMD_REBALANCE && !c->cooperative);
    if (all) {
        akc_fetch_purge(f, NULL);
    }
    else {
        purge_listed(f, c->parts);
    }
    pthread_mutex_unlock(&f->lock);
}

/* Lock NOT held: librdkafka's assign and subscribe calls are round trips
 * to its own thread, and the loop must never wait for them on the lock. */
static void
run_cmd(akc_fetch *f, rd_kafka_t *rk, akc_cmd *c)
{
    int refresh = 1;
    switch (c->kind) {
    case AKC_CMD_SUBSCRIBE:
        c->err = rd_kafka_subscribe(rk, c->parts);
        refresh = 0;
        break;
    case AKC_CMD_UNSUBSCRIBE:
        c->err = rd_kafka_unsubscribe(rk);
        refresh = 0;
        break;
    case AKC_CMD_ASSIGN:
        cmd_purge(f, c);
        c->err = rd_kafka_assign(rk, c->parts);
        break;
    case AKC_CMD_INCR_ASSIGN:
        cmd_set_error(c, rd_kafka_incremental_assign(rk, c->parts));
        break;
    case AKC_CMD_INCR_UNASSIGN:
        cmd_purge(f, c);
        cmd_set_error(c, rd_kafka_incremental_unassign(rk, c->parts));
        break;
    case AKC_CMD_REBALANCE:
        if (c->assign != 1) {
            cmd_purge(f, c);
        }
        if (c->assign == 1 && c->cooperative) {
            cmd_set_error(c, rd_kafka_incremental_assign(rk, c->parts));
        }
        else if (c->assign == 1) {
            c->err = rd_kafka_assign(rk, c->parts);
        }
        else if (c->assign == 0 && c->cooperative) {
            cmd_set_error(c, rd_kafka_incremental_unassign(rk, c->parts));
        }
        else {
            c->err = rd_kafka_assign(rk, NULL);
        }
        break;
    case AKC_CMD_PAUSE:
    case AKC_CMD_RESUME:
        pthread_mutex_lock(&f->lock);
        pause_listed(f, rk, c->parts);
        pthread_mutex_unlock(&f->lock);
        refresh = 0;
        break;
    case AKC_CMD_SEEK:
        cmd_purge(f, c);
        /* Asynchronous (timeout 0): 2.0.2 waits a thousandth of a blocking
         * seek's timeout (librdkafka#4230). */
        cmd_set_error(c, rd_kafka_seek_partitions(rk, c->parts, 0));
        refresh = 0;
        break;
    default:
        refresh = 0;
        break;
    }
    rd_kafka_topic_partition_list_t *a = NULL;
    if (refresh && rd_kafka_assignment(rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_t *plain = akc_plain_list(a);
        rd_kafka_topic_partition_list_destroy(a);
        a = plain;
        pthread_mutex_lock(&f->lock);
        refresh_assignment(f, rk, a);
        pthread_mutex_unlock(&f->lock);
    }
}

/* Lock NOT held.  Returns 1 if any command ran. */
static int
run_cmds(akc_fetch *f, rd_kafka_t *rk)
{
    pthread_mutex_lock(&f->lock);
    akc_cmd *c = f->cmds;
    int closed = f->closed;
    f->cmds = NULL;
    f->cmds_tail = &f->cmds;
    pthread_mutex_unlock(&f->lock);
    if (c == NULL) {
        return 0;
    }
    akc_cmd *first = c, **tail = NULL;
    for (; c != NULL; c = c->next) {
        if (!closed) {
            run_cmd(f, rk, c);
        }
        else {
            c->err = RD_KAFKA_RESP_ERR__DESTROY;
            snprintf(c->errstr, sizeof(c->errstr), "the consumer was closed");
        }
        tail = &c->next;
    }
    pthread_mutex_lock(&f->lock);
    *f->done_tail = first;
    f->done_tail = tail;
    pthread_mutex_unlock(&f->lock);
    return 1;
}

/* Lock held: reads the fetch queue while the ring has room (the demand
 * gate, see fetch.h).  Returns 1 if anything came in. */
static int
pull(akc_fetch *f)
{
    int any = 0;
    f->ungate_sent = 0;
    while (!f->closed && f->fetchq != NULL) {
        if (f->ring.len >= f->max_msgs || f->ring_bytes >= f->max_bytes) {
            f->gated = 1;
            break;
        }
        rd_kafka_event_t *ev = rd_kafka_queue_poll(f->fetchq, 0);
        if (ev == NULL) {
            f->gated = 0;
            break;
        }
        any = 1;
        if (!take_event(f, ev)) {
            rd_kafka_event_destroy(ev); /* nothing else goes there */
        }
    }
    return any;
}

int
akc_fetch_nogil_pass(akc_fetch *f, rd_kafka_event_t **evs, size_t *n)
{
    rd_kafka_topic_partition_list_t *store = NULL;
    size_t keep = 0;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < *n; i++) {
        if (!take_event(f, evs[i])) {
            evs[keep++] = evs[i];
        }
    }
    *n = keep;
    pthread_mutex_unlock(&f->lock);
    int need = run_cmds(f, f->rk);
    pthread_mutex_lock(&f->lock);
    pull(f);
    if (f->want_wake && f->ring.len > 0) {
        f->want_wake = 0;
        need = 1;
    }
    if (f->want_store) {
        store = akc_fetch_take_store(f);
    }
    need |= f->done != NULL;
    pthread_mutex_unlock(&f->lock);
    if (store != NULL) {
        rd_kafka_offsets_store(f->rk, store);
        rd_kafka_topic_partition_list_destroy(store);
    }
    return need;
}

/* ---- commands and stores ------------------------------------------------ */

akc_cmd *
akc_cmd_new(int kind, rd_kafka_topic_partition_list_t *parts,
            PyObject *future)
{
    akc_cmd *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    c->kind = kind;
    c->parts = parts;
    c->future = Py_XNewRef(future);
    return c;
}

void
akc_cmd_free(akc_cmd *c)
{
    if (c->parts != NULL) {
        rd_kafka_topic_partition_list_destroy(c->parts);
    }
    Py_XDECREF(c->future);
    free(c);
}

void
akc_fetch_queue_cmd(akc_fetch *f, akc_cmd *c)
{
    c->next = NULL;
    *f->cmds_tail = c;
    f->cmds_tail = &c->next;
}

akc_cmd *
akc_fetch_take_done(akc_fetch *f)
{
    akc_cmd *c = f->done;
    f->done = NULL;
    f->done_tail = &f->done;
    return c;
}

rd_kafka_topic_partition_list_t *
akc_fetch_take_store(akc_fetch *f)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    f->want_store = 0;
    for (size_t i = 0; i < f->ntps; i++) {
        akc_tp *tp = f->tps[i];
        if (!tp->assigned || tp->released < 0 || tp->released == tp->stored) {
            continue;
        }
        if (l == NULL) {
            l = rd_kafka_topic_partition_list_new(8);
        }
        rd_kafka_topic_partition_list_add(l, tp->topic, tp->partition)
            ->offset = tp->released;
        tp->stored = tp->released;
    }
    return l;
}
