/* AIOConsumer's methods: group membership and assignment, pause, seek,
 * offsets and close.  State changes are commands the poll thread runs
 * between batches (fetch.c); their futures complete through the
 * dispatcher. */
#include "consumer.h"
#include "consume.h"
#include "errors.h"
#include "message.h"
#include "topic_partition.h"

#include <string.h>

/* ---- methods: group membership and assignment ------------------------ */

/* Like akc_core_check_open(), but close()'s own on_revoke may still
 * commit, store and read positions while the consumer closes. */
int
akc_consumer_check_usable(ConsumerObject *self, const char *method)
{
    akc_core *core = &self->core;
    if (core->state == AKC_CLOSING && self->rebalance != NULL &&
        core->rk != NULL && self->cq != NULL) {
        return 0;
    }
    return akc_core_check_open(core, method);
}

/* Returns a new future and queues kind with parts (taken) for the poll
 * thread, or NULL with an exception. */
static PyObject *
consumer_command(ConsumerObject *self, const char *method, int kind,
                 rd_kafka_topic_partition_list_t *parts)
{
    akc_core *core = &self->core;
    if (akc_core_check_open(core, method) < 0 ||
        akc_core_check_loop(core, method) < 0) {
        if (parts != NULL) {
            rd_kafka_topic_partition_list_destroy(parts);
        }
        return NULL;
    }
    PyObject *fut = akc_dispatcher_new_future(core->dispatcher);
    akc_cmd *c = fut ? akc_cmd_new(kind, parts, fut) : NULL;
    if (c == NULL) {
        if (parts != NULL) {
            rd_kafka_topic_partition_list_destroy(parts);
        }
        Py_XDECREF(fut);
        return NULL;
    }
    if (self->rebalance != NULL &&
        (kind == AKC_CMD_ASSIGN || kind == AKC_CMD_INCR_ASSIGN ||
         kind == AKC_CMD_INCR_UNASSIGN)) {
        self->rebalance_assigned = 1; /* confluent's rule: no auto-answer */
    }
    akc_consumer_queue(self, c);
    return fut;
}

PyObject *
akc_consumer_subscribe(ConsumerObject *self, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    akc_state *st = self->core.st;
    static PyObject *names[5];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("topics");
        names[1] = PyUnicode_InternFromString("on_assign");
        names[2] = PyUnicode_InternFromString("on_revoke");
        names[3] = PyUnicode_InternFromString("on_lost");
    }
    PyObject *a[4] = {NULL};
    if (akc_parse_args("subscribe", args, nargs, kwnames, names, 1, 1, a) <
        0) {
        return NULL;
    }
    for (int i = 1; i < 4; i++) {
        if (a[i] == Py_None) {
            a[i] = NULL;
        }
        if (a[i] != NULL && !PyCallable_Check(a[i])) {
            return PyErr_Format(PyExc_TypeError,
                                "subscribe(): %U must be callable, not %.100s",
                                names[i], Py_TYPE(a[i])->tp_name);
        }
    }
    if (PyUnicode_Check(a[0]) || !PySequence_Check(a[0])) {
        return PyErr_Format(PyExc_TypeError,
                            "subscribe(): topics must be a list of str, not "
                            "%.100s",
                            Py_TYPE(a[0])->tp_name);
    }
    PyObject *topics = PySequence_List(a[0]);
    if (topics == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(topics);
    if (n == 0) {
        Py_DECREF(topics);
        PyErr_SetString(PyExc_ValueError,
                        "subscribe(): topics is empty (use unsubscribe())");
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new((int)n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(topics, i);
        if (!PyUnicode_Check(t)) {
            PyErr_Format(PyExc_TypeError,
                         "subscribe(): topics must be str, not %.100s",
                         Py_TYPE(t)->tp_name);
            goto fail;
        }
        const char *s = PyUnicode_AsUTF8(t);
        if (s == NULL || akc_check_c_string(t, "topic") < 0) {
            goto fail;
        }
        if (*s == '\0') {
            PyErr_SetString(PyExc_ValueError, "subscribe(): empty topic name");
            goto fail;
        }
        rd_kafka_topic_partition_list_add(l, s, RD_KAFKA_PARTITION_UA);
    }
    PyObject *fut = consumer_command(self, "subscribe", AKC_CMD_SUBSCRIBE, l);
    if (fut == NULL) {
        Py_DECREF(topics);
        return NULL;
    }
    if (self->sticky) {
        pthread_mutex_lock(&self->fetch->lock);
        self->fetch->sticky_hazard = !self->fetch->seen_assign;
        pthread_mutex_unlock(&self->fetch->lock);
    }
    Py_XSETREF(self->subscription, topics);
    Py_XSETREF(self->on_assign, Py_XNewRef(a[1]));
    Py_XSETREF(self->on_revoke, Py_XNewRef(a[2]));
    Py_XSETREF(self->on_lost, Py_XNewRef(a[3]));
    (void)st;
    return fut;
fail:
    rd_kafka_topic_partition_list_destroy(l);
    Py_DECREF(topics);
    return NULL;
}

PyObject *
akc_consumer_unsubscribe(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *fut = consumer_command(self, "unsubscribe",
                                     AKC_CMD_UNSUBSCRIBE, NULL);
    if (fut != NULL) {
        Py_CLEAR(self->subscription);
    }
    return fut;
}

static PyObject *
consumer_parts_command(ConsumerObject *self, PyObject *parts,
                       const char *method, int kind)
{
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(self->core.st, parts, "partitions");
    if (l == NULL) {
        return NULL;
    }
    return consumer_command(self, method, kind, l);
}

PyObject *
akc_consumer_assign(ConsumerObject *self, PyObject *parts)
{
    return consumer_parts_command(self, parts, "assign", AKC_CMD_ASSIGN);
}

PyObject *
akc_consumer_unassign(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    return consumer_command(self, "unassign", AKC_CMD_ASSIGN, NULL);
}

PyObject *
akc_consumer_incremental_assign(ConsumerObject *self, PyObject *parts)
{
    return consumer_parts_command(self, parts, "incremental_assign",
                                  AKC_CMD_INCR_ASSIGN);
}

PyObject *
akc_consumer_incremental_unassign(ConsumerObject *self, PyObject *parts)
{
    return consumer_parts_command(self, parts, "incremental_unassign",
                                  AKC_CMD_INCR_UNASSIGN);
}

PyObject *
akc_consumer_assignment(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_consumer_check_usable(self, "assignment") < 0) {
        return NULL;
    }
    akc_fetch *f = self->fetch;
    pthread_mutex_lock(&f->lock);
    rd_kafka_topic_partition_list_t *a =
        akc_plain_list(f->assignment);
    pthread_mutex_unlock(&f->lock);
    PyObject *r = akc_tplist_to_py(self->core.st, a);
    if (a != NULL) {
        rd_kafka_topic_partition_list_destroy(a);
    }
    return r;
}

PyObject *
akc_consumer_subscription(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->subscription == NULL) {
        return PyList_New(0);
    }
    return PyList_GetSlice(self->subscription, 0, PY_SSIZE_T_MAX);
}

PyObject *
akc_consumer_memberid(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_core_check_open(&self->core, "memberid") < 0) {
        return NULL;
    }
    char *id = rd_kafka_memberid(self->core.rk);
    if (id == NULL || *id == '\0') {
        if (id != NULL) {
            rd_kafka_mem_free(self->core.rk, id);
        }
        Py_RETURN_NONE;
    }
    PyObject *r = PyUnicode_FromString(id);
    rd_kafka_mem_free(self->core.rk, id);
    return r;
}

/* ---- pause, resume, seek ---------------------------------------------- */

static PyObject *
consumer_pause_resume(ConsumerObject *self, PyObject *parts, int pause)
{
    const char *method = pause ? "pause" : "resume";
    akc_core *core = &self->core;
    if (akc_core_check_open(core, method) < 0 ||
        akc_core_check_loop(core, method) < 0) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(core->st, parts, "partitions");
    if (l == NULL) {
        return NULL;
    }
    /* Our part is immediate: from now on nothing of a paused partition
     * is handed out; the poll thread tells librdkafka. */
    akc_fetch *f = self->fetch;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < l->cnt; i++) {
        akc_tp *tp = akc_fetch_tp(f, l->elems[i].topic, l->elems[i].partition);
        if (tp == NULL) {
            continue;
        }
        tp->user_paused = pause;
        if (!pause) {
            akc_fetch_unhold(f, tp);
        }
    }
    pthread_mutex_unlock(&f->lock);
    PyObject *fut = consumer_command(self, method,
                                     pause ? AKC_CMD_PAUSE : AKC_CMD_RESUME,
                                     l);
    if (fut != NULL && !pause) {
        akc_consume_serve(self); /* held messages may be ready now */
    }
    return fut;
}

PyObject *
akc_consumer_pause(ConsumerObject *self, PyObject *parts)
{
    return consumer_pause_resume(self, parts, 1);
}

PyObject *
akc_consumer_resume(ConsumerObject *self, PyObject *parts)
{
    return consumer_pause_resume(self, parts, 0);
}

PyObject *
akc_consumer_paused(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_core_check_open(&self->core, "paused") < 0) {
        return NULL;
    }
    akc_fetch *f = self->fetch;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->ntps; i++) {
        if (f->tps[i]->user_paused) {
            rd_kafka_topic_partition_list_add(l, f->tps[i]->topic,
                                              f->tps[i]->partition);
        }
    }
    pthread_mutex_unlock(&f->lock);
    PyObject *r = akc_tplist_to_py(self->core.st, l);
    rd_kafka_topic_partition_list_destroy(l);
    return r;
}

PyObject *
akc_consumer_seek(ConsumerObject *self, PyObject *partition)
{
    akc_state *st = self->core.st;
    if (!akc_tp_check(st, partition)) {
        return PyErr_Format(PyExc_TypeError,
                            "seek(): expected a TopicPartition, not %.100s",
                            Py_TYPE(partition)->tp_name);
    }
    PyObject *one = PyTuple_Pack(1, partition);
    if (one == NULL) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l = akc_tplist_from_py(st, one,
                                                            "partition");
    Py_DECREF(one);
    if (l == NULL) {
        return NULL;
    }
    if (l->elems[0].partition < 0) {
        rd_kafka_topic_partition_list_destroy(l);
        PyErr_SetString(PyExc_ValueError, "seek(): partition must be >= 0");
        return NULL;
    }
    int64_t off = l->elems[0].offset;
    PyObject *fut = consumer_command(self, "seek", AKC_CMD_SEEK, l);
    if (fut != NULL) {
        /* The user's position is the seek's from now on. */
        akc_fetch *f = self->fetch;
        TopicPartitionObject *tpo = (TopicPartitionObject *)partition;
        pthread_mutex_lock(&f->lock);
        akc_tp *tp = akc_fetch_tp(f, PyUnicode_AsUTF8(tpo->topic),
                                  tpo->partition);
        if (tp != NULL) {
            /* Nothing fetched before the seek is handed out after it; the
             * poll thread drops it again at its barrier. */
            akc_fetch_purge(f, tp);
            tp->handed = off >= 0 ? off : -1;
        }
        pthread_mutex_unlock(&f->lock);
    }
    return fut;
}

/* ---- offsets ---------------------------------------------------------- */

/* The list a commit or store of message/offsets is about, or NULL with
 * *none = 1 when neither was given. */
static rd_kafka_topic_partition_list_t *
offsets_arg(akc_state *st, const char *fname, PyObject *message,
            PyObject *offsets, int *none)
{
    *none = 0;
    if (message != NULL && message != Py_None && offsets != NULL &&
        offsets != Py_None) {
        PyErr_Format(PyExc_TypeError,
                     "%s(): give message or offsets, not both", fname);
        return NULL;
    }
    if (offsets != NULL && offsets != Py_None) {
        return akc_tplist_from_py(st, offsets, "offsets");
    }
    if (message == NULL || message == Py_None) {
        *none = 1;
        return NULL;
    }
    if (!Py_IS_TYPE(message, st->MessageType)) {
        PyErr_Format(PyExc_TypeError, "%s(): message must be a Message, not "
                     "%.100s", fname, Py_TYPE(message)->tp_name);
        return NULL;
    }
    MessageObject *m = (MessageObject *)message;
    if (m->topic == NULL || m->partition < 0 || m->offset < 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): the message has no topic, partition and offset",
                     fname);
        return NULL;
    }
    const char *t = PyUnicode_AsUTF8(m->topic);
    if (t == NULL) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t, m->partition)->offset =
        m->offset + 1;
    return l;
}

PyObject *
akc_consumer_commit(ConsumerObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    akc_core *core = &self->core;
    akc_state *st = core->st;
    static PyObject *names[3];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("message");
        names[1] = PyUnicode_InternFromString("offsets");
    }
    PyObject *a[2] = {NULL};
    if (akc_parse_args("commit", args, nargs, kwnames, names, 0, 0, a) < 0 ||
        akc_consumer_check_usable(self, "commit") < 0 ||
        akc_core_check_loop(core, "commit") < 0) {
        return NULL;
    }
    int none;
    rd_kafka_topic_partition_list_t *l = offsets_arg(st, "commit", a[0], a[1],
                                                     &none);
    if (l == NULL && !none) {
        return NULL;
    }
    if (none) {
        /* "What I have received": everything handed out is done. */
        akc_fetch *f = self->fetch;
        pthread_mutex_lock(&f->lock);
        akc_consume_release_locked(self);
        rd_kafka_topic_partition_list_t *s = akc_fetch_take_store(f);
        pthread_mutex_unlock(&f->lock);
        if (s != NULL) {
            rd_kafka_offsets_store(core->rk, s);
            rd_kafka_topic_partition_list_destroy(s);
        }
    }
    PyObject *fut = akc_dispatcher_new_future(core->dispatcher);
    PyObject *id = fut ? PyLong_FromLongLong(++self->commit_seq) : NULL;
    if (id == NULL || PyDict_SetItem(self->commits, id, fut) < 0) {
        goto fail;
    }
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(
        core->rk, l, self->cq, NULL, (void *)(intptr_t)self->commit_seq);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        PyDict_DelItem(self->commits, id);
        PyObject *e = akc_error_from_code(st, err, NULL);
        PyObject *exc = e ? akc_exception_new(st, e) : NULL;
        Py_XDECREF(e);
        if (exc == NULL || akc_dispatcher_resolve(core->dispatcher, fut,
                                                  exc) < 0) {
            Py_XDECREF(exc);
            goto fail;
        }
        Py_DECREF(exc);
    }
    Py_DECREF(id);
    if (l != NULL) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    return fut;
fail:
    Py_XDECREF(id);
    Py_XDECREF(fut);
    if (l != NULL) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    return NULL;
}

PyObject *
akc_consumer_store_offsets(ConsumerObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    akc_core *core = &self->core;
    akc_state *st = core->st;
    static PyObject *names[3];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("message");
        names[1] = PyUnicode_InternFromString("offsets");
    }
    PyObject *a[2] = {NULL};
    if (akc_parse_args("store_offsets", args, nargs, kwnames, names, 0, 0,
                       a) < 0 ||
        akc_consumer_check_usable(self, "store_offsets") < 0) {
        return NULL;
    }
    int none;
    rd_kafka_topic_partition_list_t *l = offsets_arg(st, "store_offsets", a[0],
                                                     a[1], &none);
    if (none) {
        PyErr_SetString(PyExc_TypeError,
                        "store_offsets(): give message or offsets");
    }
    if (l == NULL) {
        return NULL;
    }
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(core->rk, l);
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++) {
        err = l->elems[i].err;
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return akc_raise(st, err,
                         err == RD_KAFKA_RESP_ERR__STATE
                             ? "store_offsets(): the partition is not "
                               "assigned to this consumer"
                             : NULL);
    }
    Py_RETURN_NONE;
}

PyObject *
akc_consumer_position(ConsumerObject *self, PyObject *parts)
{
    akc_core *core = &self->core;
    if (akc_consumer_check_usable(self, "position") < 0) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(core->st, parts, "partitions");
    if (l == NULL) {
        return NULL;
    }
    /* librdkafka's position is the poll thread's; the user's is the first
     * message not handed out yet. */
    rd_kafka_position(core->rk, l);
    akc_fetch *f = self->fetch;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < l->cnt; i++) {
        akc_tp *tp = akc_fetch_find(f, l->elems[i].topic,
                                    l->elems[i].partition);
        if (tp == NULL) {
            continue;
        }
        int64_t pos = akc_consume_first_offset_locked(self, tp);
        if (pos < 0) {
            pos = tp->handed;
        }
        if (pos >= 0) {
            l->elems[i].offset = pos;
            l->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
    }
    pthread_mutex_unlock(&f->lock);
    PyObject *r = akc_tplist_to_py(core->st, l);
    rd_kafka_topic_partition_list_destroy(l);
    return r;
}

/* ---- close ------------------------------------------------------------ */

PyObject *
akc_consumer_close(ConsumerObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    PyObject *timeout = NULL;
    PyObject *names[] = {self->core.st->str_timeout, NULL};
    if (akc_parse_args("close", args, nargs, kwnames, names, 1, 0,
                       &timeout) < 0) {
        return NULL;
    }
    int ms;
    if (akc_timeout_ms(timeout ? timeout : Py_None, &ms) < 0) {
        return NULL;
    }
    PyObject *in_cb = NULL;
    if (PyContextVar_Get(self->core.st->in_consumer_callback, NULL,
                         &in_cb) < 0) {
        return NULL;
    }
    if (in_cb == Py_True) {
        /* Called from a rebalance callback: the close must not wait for
         * the callback that waits for it. */
        self->close_skip_rebalance = 1;
    }
    Py_XDECREF(in_cb);
    return akc_core_close(&self->core, (PyObject *)self, ms);
}

PyObject *
akc_consumer_aenter(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (akc_core_check_open(&self->core, "__aenter__") < 0 ||
        akc_core_check_loop(&self->core, "__aenter__") < 0) {
        return NULL;
    }
    return akc_dispatcher_done_future(self->core.dispatcher,
                                      (PyObject *)self);
}

PyObject *
akc_consumer_aexit(ConsumerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return akc_core_close(&self->core, (PyObject *)self, -1);
}
