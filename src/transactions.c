/* Transactions on AIOProducer.  See transactions.h.
 *
 * Ordering: a commit's future resolves after the futures of all of its
 * messages.  The worker's commit returns only once librdkafka's message
 * count is zero, which happens as the poll thread destroys each delivery
 * report event, after it handed the message's future to the dispatcher;
 * the worker then hands the commit's answer to the same dispatcher FIFO.
 *
 * Messages waiting in our overflow ring are not in librdkafka yet: a call
 * made while some wait is held back (in call order) until the poll thread
 * has moved them in, so that a commit covers them; abort fails them
 * first.
 *
 * State kept here is only what makes misuse fail at once and clearly:
 * txn_open (produce only inside a transaction) and librdkafka's own fatal
 * error (every later transactional call raises).  Everything else is
 * librdkafka's transaction state machine, whose errors come back as they
 * are. */
#include "transactions.h"
#include "errors.h"
#include "groupmeta.h"
#include "outbox.h"
#include "topic_partition.h"
#include "worker.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* How long a worker still inside a call may hold a teardown that has no
 * deadline of its own (a dropped producer, atexit). */
#define WORKER_GRACE_MS 1000

struct akc_txn {
    akc_worker *worker;
    int64_t txn_timeout_ms; /* transaction.timeout.ms */
    int64_t deadline;       /* poll thread: the close's deadline, -1 none */
    int closing;            /* poll thread: a close() set deadline */
    int busy;               /* the worker was abandoned inside a call */
    atomic_int inflight;    /* calls submitted and not yet run to the end */
};

akc_txn *
akc_txn_new(akc_state *st, DispatcherObject *d, int64_t txn_timeout_ms)
{
    akc_txn *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    t->worker = akc_worker_new(st, d);
    if (t->worker == NULL) {
        free(t);
        return NULL;
    }
    t->txn_timeout_ms = txn_timeout_ms > 0 ? txn_timeout_ms : 60000;
    t->deadline = -1;
    atomic_init(&t->inflight, 0);
    return t;
}

/* ---- poller hooks --------------------------------------------------- */

/* Poll thread, no GIL, before the handle goes: a transactional call
 * still running may hold a close only until its deadline (with none,
 * each call is bounded by its own timeout). */
void
akc_txn_teardown(akc_poller *p)
{
    akc_txn *t = p->ctx;
    if (t == NULL) {
        return;
    }
    /* A close() without a timeout waits for a call at most as long as a
     * call can take (twice transaction.timeout.ms, see txn_start). */
    int64_t by = !t->closing ? akc_now_ms() + WORKER_GRACE_MS
                 : t->deadline >= 0
                     ? t->deadline
                     : akc_now_ms() + 2 * t->txn_timeout_ms + WORKER_GRACE_MS;
    t->busy |= akc_worker_stop_by(t->worker, by);
}

/* Any path, no GIL: a worker still inside a call uses the handle, which
 * is then left behind. */
int
akc_txn_before_destroy(akc_poller *p, int64_t *destroy_by)
{
    (void)destroy_by;
    akc_txn *t = p->ctx;
    if (t == NULL) {
        return 0;
    }
    t->busy |= akc_worker_stop_by(t->worker, akc_now_ms() + WORKER_GRACE_MS);
    return t->busy;
}

void
akc_txn_ctx_free(void *ctx, int forked)
{
    akc_txn *t = ctx;
    if (!forked) {
        Py_BEGIN_ALLOW_THREADS
        akc_worker_stop_by(t->worker, 0); /* idle by now, or abandoned */
        Py_END_ALLOW_THREADS
    }
    akc_worker_free(t->worker, forked);
    free(t);
}

static akc_txn *
txn_ctx(ProducerObject *self)
{
    akc_poller *p = self->core.poller;
    return self->transactional && p != NULL ? p->ctx : NULL;
}

void
akc_txn_closing(ProducerObject *self)
{
    akc_txn *t = txn_ctx(self);
    if (t != NULL) {
        t->deadline = self->core.close_deadline;
        t->closing = 1;
    }
}

/* ---- jobs ------------------------------------------------------------ */

enum { TXN_INIT = 1, TXN_SEND_OFFSETS, TXN_COMMIT, TXN_ABORT };

static const char *const txn_method[] = {
    NULL, "init_transactions", "send_offsets_to_transaction",
    "commit_transaction", "abort_transaction",
};

typedef struct {
    akc_job base;
    akc_txn *txn;
    DispatcherObject *d; /* borrowed: the worker holds the dispatcher */
    int op;
    int abort_on_fail; /* commit: abort when the error requires it */
    int aborted;       /* ... and that abort succeeded */
    int exit_false;    /* answer False: an __aexit__ that re-raises */
    rd_kafka_topic_partition_list_t *offsets;
    rd_kafka_consumer_group_metadata_t *cgm;
    rd_kafka_error_t *error;
} txn_job;

/* Worker thread, no GIL. */
static void
txn_job_run(akc_job *base, rd_kafka_t *rk)
{
    txn_job *j = (txn_job *)base;
    int ms = base->timeout_ms;
    switch (j->op) {
    case TXN_INIT:
        j->error = rd_kafka_init_transactions(rk, ms);
        break;
    case TXN_SEND_OFFSETS:
        j->error = rd_kafka_send_offsets_to_transaction(rk, j->offsets,
                                                        j->cgm, ms);
        break;
    case TXN_COMMIT:
        j->error = rd_kafka_commit_transaction(rk, ms);
        break;
    case TXN_ABORT:
        j->error = rd_kafka_abort_transaction(rk, ms);
        break;
    }
    if (j->error != NULL && j->abort_on_fail &&
        rd_kafka_error_txn_requires_abort(j->error)) {
        /* Never -1: with the broker gone 2.0.2 would wait forever. */
        rd_kafka_error_t *e = rd_kafka_abort_transaction(rk, ms);
        j->aborted = e == NULL;
        if (e != NULL) {
            rd_kafka_error_destroy(e);
        }
    }
    atomic_fetch_sub(&j->txn->inflight, 1);
}

/* GIL held: None (or False), or a KafkaException instance. */
static PyObject *
txn_job_result(akc_job *base, akc_state *st)
{
    txn_job *j = (txn_job *)base;
    const char *method = txn_method[j->op];
    char context[320];
    if (base->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(context, sizeof(context), "%s(): %s", method, base->errstr);
        PyObject *e = akc_error_from_code(st, base->err, context);
        PyObject *exc = e ? akc_exception_new(st, e) : NULL;
        Py_XDECREF(e);
        return exc;
    }
    if (j->error != NULL && j->exit_false) {
        /* transaction()'s abort after the block raised: the block's own
         * exception propagates (a CancelledError must stay one); the
         * abort's failure is logged. */
        akc_dispatcher_logf(j->d, AKC_LOG_WARNING,
                            "aiokafka_c: transaction(): aborting after the "
                            "block's exception failed: %s: %s",
                            rd_kafka_err2name(rd_kafka_error_code(j->error)),
                            rd_kafka_error_string(j->error));
        Py_RETURN_FALSE;
    }
    if (j->error != NULL) {
        snprintf(context, sizeof(context), "%s() failed%s%s", method,
                 j->aborted ? " and the transaction was aborted" : "",
                 rd_kafka_error_is_fatal(j->error)
                     ? " (fatal: the producer cannot be used any more; "
                       "close it)"
                     : "");
        return akc_exception_from_error(st, j->error, context);
    }
    if (j->exit_false) {
        Py_RETURN_FALSE;
    }
    Py_RETURN_NONE;
}

static void
txn_job_clear(akc_job *base)
{
    txn_job *j = (txn_job *)base;
    if (j->offsets != NULL) {
        rd_kafka_topic_partition_list_destroy(j->offsets);
    }
    if (j->cgm != NULL) {
        rd_kafka_consumer_group_metadata_destroy(j->cgm);
    }
    if (j->error != NULL) {
        rd_kafka_error_destroy(j->error);
    }
}

/* GIL held: a job that never reached the worker. */
static void
txn_job_free(akc_job *job)
{
    txn_job_clear(job);
    Py_XDECREF(job->future);
    free(job);
}

/* GIL held: queues job (taken either way) for the worker, or behind the
 * messages still waiting for room in librdkafka (and the calls already
 * waiting for them).  Returns 0, or -1 with an exception. */
static int
txn_submit(ProducerObject *self, akc_txn *t, akc_job *job)
{
    atomic_fetch_add(&t->inflight, 1);
    if (self->txn_waiting == NULL && self->ovf_len == 0) {
        if (akc_worker_submit(t->worker, self->core.rk, job) < 0) {
            atomic_fetch_sub(&t->inflight, 1);
            return -1;
        }
        return 0;
    }
    akc_job **tail = &self->txn_waiting;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    job->next = NULL;
    *tail = job;
    akc_producer_update_tick(self);
    return 0;
}

/* GIL held: answers fut with the current exception. */
static void
txn_answer_error(ProducerObject *self, PyObject *fut)
{
    PyObject *exc = akc_err_take();
    if (exc != NULL && fut != NULL &&
        akc_dispatcher_push_kind(self->core.dispatcher, AKC_ITEM_RESULT, fut,
                                 exc) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(exc);
    akc_dispatcher_schedule(self->core.dispatcher);
}

void
akc_txn_on_events(ProducerObject *self)
{
    akc_txn *t = txn_ctx(self);
    while (self->txn_waiting != NULL && self->ovf_len == 0 && t != NULL &&
           self->core.rk != NULL) {
        akc_job *job = self->txn_waiting;
        self->txn_waiting = job->next;
        job->next = NULL;
        PyObject *fut = Py_XNewRef(job->future);
        if (akc_worker_submit(t->worker, self->core.rk, job) < 0) {
            atomic_fetch_sub(&t->inflight, 1);
            txn_answer_error(self, fut);
        }
        Py_XDECREF(fut);
    }
}

void
akc_txn_release(ProducerObject *self, int quiet)
{
    while (self->txn_waiting != NULL) {
        akc_job *job = self->txn_waiting;
        self->txn_waiting = job->next;
        if (!quiet) {
            txn_job *j = (txn_job *)job;
            char reason[160];
            snprintf(reason, sizeof(reason),
                     "%s(): the producer was closed before the call ran",
                     txn_method[j->op]);
            akc_raise(self->core.st, RD_KAFKA_RESP_ERR__DESTROY, reason);
            txn_answer_error(self, job->future);
        }
        txn_job_free(job);
    }
    PyErr_Clear();
}

/* ---- checks ---------------------------------------------------------- */

/* Sets KafkaException(KafkaError(code, formatted reason, fatal)) and
 * returns NULL. */
static PyObject *
txn_raise(akc_state *st, rd_kafka_resp_err_t code, int fatal,
          const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    PyObject *reason = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    const char *text = reason ? PyUnicode_AsUTF8(reason) : NULL;
    PyObject *e = text ? akc_error_new(st, code, text, fatal, 0, 0) : NULL;
    PyObject *exc = e ? akc_exception_new(st, e) : NULL;
    if (exc != NULL) {
        PyErr_SetObject(st->KafkaException, exc);
    }
    Py_XDECREF(exc);
    Py_XDECREF(e);
    Py_XDECREF(reason);
    return NULL;
}

/* Raises the producer's fatal error, if it has one: after it, every
 * transactional call fails at once.  Returns 0 or -1. */
static int
txn_check_fatal(ProducerObject *self, const char *method)
{
    char buf[512];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(self->core.rk, buf,
                                                   sizeof(buf));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return 0;
    }
    txn_raise(self->core.st, err, 1,
              "%s(): the producer has hit a fatal error and cannot be used "
              "any more (close it and make a new one): %s",
              method, buf);
    return -1;
}

/* Loop thread: the producer is open, on its loop, transactional and not
 * failed.  Returns its transaction context, or NULL with an exception. */
static akc_txn *
txn_check(ProducerObject *self, const char *method)
{
    akc_core *core = &self->core;
    if (akc_core_check_open(core, method) < 0 ||
        akc_core_check_loop(core, method) < 0) {
        return NULL;
    }
    akc_txn *t = txn_ctx(self);
    if (t == NULL) {
        txn_raise(core->st, RD_KAFKA_RESP_ERR__NOT_CONFIGURED, 0,
                  "%s(): not a transactional producer (set "
                  "\"transactional.id\" in its config)",
                  method);
        return NULL;
    }
    return txn_check_fatal(self, method) < 0 ? NULL : t;
}

int
akc_txn_check_produce(ProducerObject *self, const char *method)
{
    if (self->txn_open || !self->transactional ||
        self->core.state != AKC_OPEN) {
        return 0; /* the core's own checks speak for a closed producer */
    }
    if (txn_check_fatal(self, method) < 0) {
        return -1;
    }
    txn_raise(self->core.st, RD_KAFKA_RESP_ERR__STATE, 0,
              "%s(): no transaction in progress: a transactional producer "
              "produces only between begin_transaction() and "
              "commit_transaction() or abort_transaction()",
              method);
    return -1;
}

/* ---- the calls -------------------------------------------------------- */

/* Starts a job of op; offsets and cgm are taken (may be NULL).  ms < 0:
 * twice transaction.timeout.ms for init, transaction.timeout.ms for the
 * others; never librdkafka's -1, which with the broker gone waits for
 * ever in 2.0.2.  Returns its future. */
static PyObject *
txn_start(ProducerObject *self, akc_txn *t, int op, int ms, int flags,
          rd_kafka_topic_partition_list_t *offsets,
          rd_kafka_consumer_group_metadata_t *cgm)
{
    PyObject *fut = NULL;
    txn_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    fut = akc_dispatcher_new_future(self->core.dispatcher);
    if (fut == NULL) {
        goto fail;
    }
    if (ms < 0) {
        int64_t bound = (op == TXN_INIT ? 2 : 1) * t->txn_timeout_ms;
        ms = bound > INT32_MAX ? INT32_MAX : (int)bound;
    }
    j->txn = t;
    j->d = self->core.dispatcher;
    j->op = op;
    j->abort_on_fail = flags & 1;
    j->exit_false = (flags & 2) != 0;
    j->offsets = offsets;
    j->cgm = cgm;
    j->base.run = txn_job_run;
    j->base.result = txn_job_result;
    j->base.clear = txn_job_clear;
    j->base.future = Py_NewRef(fut);
    j->base.timeout_ms = ms;
    /* Making the future ran Python code, which may have closed us. */
    if (akc_core_check_open(&self->core, txn_method[op]) < 0) {
        txn_job_free(&j->base);
        Py_DECREF(fut);
        return NULL;
    }
    if (txn_submit(self, t, &j->base) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
fail:
    free(j);
    if (offsets != NULL) {
        rd_kafka_topic_partition_list_destroy(offsets);
    }
    if (cgm != NULL) {
        rd_kafka_consumer_group_metadata_destroy(cgm);
    }
    return NULL;
}

/* Parses the one optional timeout argument of method.  Returns 0 or -1. */
static int
txn_parse_timeout(ProducerObject *self, const char *method,
                  PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                  int *ms)
{
    PyObject *names[] = {self->core.st->str_timeout, NULL};
    PyObject *timeout = NULL;
    if (akc_parse_args(method, args, nargs, kwnames, names, 1, 0,
                       &timeout) < 0) {
        return -1;
    }
    return akc_timeout_ms(timeout ? timeout : Py_None, ms);
}

PyObject *
akc_producer_init_transactions(ProducerObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    int ms;
    if (txn_parse_timeout(self, "init_transactions", args, nargs, kwnames,
                          &ms) < 0) {
        return NULL;
    }
    akc_txn *t = txn_check(self, "init_transactions");
    return t ? txn_start(self, t, TXN_INIT, ms, 0, NULL, NULL) : NULL;
}

PyObject *
akc_producer_begin_transaction(ProducerObject *self,
                               PyObject *Py_UNUSED(unused))
{
    akc_txn *t = txn_check(self, "begin_transaction");
    if (t == NULL) {
        return NULL;
    }
    if (atomic_load(&t->inflight) > 0) {
        /* librdkafka would fail either this or the call before it with
         * _CONFLICT, whichever reached its thread second. */
        txn_raise(self->core.st, RD_KAFKA_RESP_ERR__STATE, 0,
                  "begin_transaction(): a transactional call "
                  "(init/send_offsets/commit/abort) is still running: "
                  "await it first");
        return NULL;
    }
    /* An op round trip to librdkafka's main thread, which never waits
     * for us: quick, so it runs here with the GIL held. */
    rd_kafka_error_t *error = rd_kafka_begin_transaction(self->core.rk);
    if (error != NULL) {
        PyObject *exc = akc_exception_from_error(self->core.st, error,
                                                 "begin_transaction() "
                                                 "failed");
        rd_kafka_error_destroy(error);
        if (exc != NULL) {
            PyErr_SetObject(self->core.st->KafkaException, exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    self->txn_open = 1;
    Py_RETURN_NONE;
}

/* A copy of the metadata of o (a ConsumerGroupMetadata) that the job can
 * own, or NULL with an exception. */
static rd_kafka_consumer_group_metadata_t *
txn_copy_cgm(akc_state *st, PyObject *o)
{
    rd_kafka_consumer_group_metadata_t *cgm = akc_cgm_get(st, o);
    if (cgm == NULL) {
        return NULL;
    }
    void *buf = NULL;
    size_t size = 0;
    rd_kafka_consumer_group_metadata_t *copy = NULL;
    rd_kafka_error_t *error = rd_kafka_consumer_group_metadata_write(
        cgm, &buf, &size);
    if (error == NULL) {
        error = rd_kafka_consumer_group_metadata_read(&copy, buf, size);
    }
    rd_kafka_mem_free(NULL, buf);
    if (error != NULL) {
        PyObject *exc = akc_exception_from_error(st, error,
                                                 "group_metadata");
        rd_kafka_error_destroy(error);
        if (exc != NULL) {
            PyErr_SetObject(st->KafkaException, exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    return copy;
}

PyObject *
akc_producer_send_offsets(ProducerObject *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *method = "send_offsets_to_transaction";
    akc_state *st = self->core.st;
    static PyObject *names[4];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("offsets");
        names[1] = PyUnicode_InternFromString("group_metadata");
        names[2] = PyUnicode_InternFromString("timeout");
        if (names[0] == NULL || names[1] == NULL || names[2] == NULL) {
            return NULL;
        }
    }
    PyObject *a[3] = {NULL};
    int ms;
    if (akc_parse_args(method, args, nargs, kwnames, names, 3, 2, a) < 0 ||
        akc_timeout_ms(a[2] ? a[2] : Py_None, &ms) < 0) {
        return NULL;
    }
    if (!Py_IS_TYPE(a[1], st->ConsumerGroupMetadataType)) {
        return PyErr_Format(PyExc_TypeError,
                            "%s(): group_metadata must be the "
                            "ConsumerGroupMetadata of "
                            "AIOConsumer.consumer_group_metadata(), not "
                            "%.100s",
                            method, Py_TYPE(a[1])->tp_name);
    }
    rd_kafka_topic_partition_list_t *offsets =
        akc_tplist_from_py(st, a[0], "offsets");
    if (offsets == NULL) {
        return NULL;
    }
    akc_txn *t = txn_check(self, method);
    rd_kafka_consumer_group_metadata_t *cgm = t ? txn_copy_cgm(st, a[1])
                                                : NULL;
    if (cgm == NULL) {
        rd_kafka_topic_partition_list_destroy(offsets);
        return NULL;
    }
    if (ms < 0) {
        ms = (int)t->txn_timeout_ms;
    }
    return txn_start(self, t, TXN_SEND_OFFSETS, ms, 0, offsets, cgm);
}

/* commit (flags 1: abort when the error requires it). */
static PyObject *
txn_commit(ProducerObject *self, int ms, int flags)
{
    akc_txn *t = txn_check(self, "commit_transaction");
    if (t == NULL) {
        return NULL;
    }
    self->txn_open = 0;
    return txn_start(self, t, TXN_COMMIT, ms, flags, NULL, NULL);
}

/* abort (flags 2: answer False).  Messages still waiting for room fail
 * first: they were never part of the transaction. */
static PyObject *
txn_abort(ProducerObject *self, int ms, int flags)
{
    akc_txn *t = txn_check(self, "abort_transaction");
    if (t == NULL) {
        return NULL;
    }
    if (self->txn_waiting != NULL) {
        /* A commit held back behind the waiting messages would go on
         * without the ones failed here: a partial commit. */
        txn_raise(self->core.st, RD_KAFKA_RESP_ERR__STATE, 0,
                  "abort_transaction(): a commit_transaction() (or another "
                  "call) is still waiting for the messages ahead of it: "
                  "await it first");
        return NULL;
    }
    self->txn_open = 0;
    while (self->ovf_len > 0) {
        akc_producer_fail(self, akc_overflow_pop(self),
                          RD_KAFKA_RESP_ERR__PURGE_QUEUE,
                          "the transaction was aborted before the message "
                          "could be queued");
    }
    akc_dispatcher_schedule(self->core.dispatcher);
    if (akc_core_check_open(&self->core, "abort_transaction") < 0) {
        return NULL;
    }
    return txn_start(self, t, TXN_ABORT, ms, flags, NULL, NULL);
}

PyObject *
akc_producer_commit_transaction(ProducerObject *self, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames)
{
    int ms;
    if (txn_parse_timeout(self, "commit_transaction", args, nargs, kwnames,
                          &ms) < 0) {
        return NULL;
    }
    return txn_commit(self, ms, 0);
}

PyObject *
akc_producer_abort_transaction(ProducerObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    int ms;
    if (txn_parse_timeout(self, "abort_transaction", args, nargs, kwnames,
                          &ms) < 0) {
        return NULL;
    }
    return txn_abort(self, ms, 0);
}

/* ---- async with producer.transaction() ------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *producer; /* strong */
} TransactionObject;

PyObject *
akc_producer_transaction(ProducerObject *self, PyObject *Py_UNUSED(unused))
{
    if (txn_check(self, "transaction") == NULL) {
        return NULL;
    }
    TransactionObject *tx = PyObject_GC_New(TransactionObject,
                                            self->core.st->TransactionType);
    if (tx == NULL) {
        return NULL;
    }
    tx->producer = Py_NewRef(self);
    PyObject_GC_Track(tx);
    return (PyObject *)tx;
}

static PyObject *
transaction_aenter(TransactionObject *tx, PyObject *Py_UNUSED(ignored))
{
    ProducerObject *p = (ProducerObject *)tx->producer;
    PyObject *r = akc_producer_begin_transaction(p, NULL);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    return akc_dispatcher_done_future(p->core.dispatcher, Py_None);
}

/* Commits on a normal exit (a commit error that requires it aborts
 * first, then raises); aborts on an exception and lets it propagate.  A
 * producer that can no longer abort (closed, fatal) lets the block's own
 * exception through unchanged. */
static PyObject *
transaction_aexit(TransactionObject *tx, PyObject *const *args,
                  Py_ssize_t nargs)
{
    ProducerObject *p = (ProducerObject *)tx->producer;
    if (nargs != 3) {
        return PyErr_Format(PyExc_TypeError,
                            "__aexit__ expected 3 arguments, got %zd", nargs);
    }
    if (args[0] == Py_None) {
        return txn_commit(p, -1, 1);
    }
    PyObject *fut = txn_abort(p, -1, 2);
    if (fut != NULL || p->core.dispatcher == NULL) {
        return fut;
    }
    PyErr_Clear();
    return akc_dispatcher_done_future(p->core.dispatcher, Py_False);
}

static int
transaction_traverse(TransactionObject *tx, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(tx));
    Py_VISIT(tx->producer);
    return 0;
}

static int
transaction_clear(TransactionObject *tx)
{
    Py_CLEAR(tx->producer);
    return 0;
}

static void
transaction_dealloc(TransactionObject *tx)
{
    PyTypeObject *tp = Py_TYPE(tx);
    PyObject_GC_UnTrack(tx);
    Py_CLEAR(tx->producer);
    PyObject_GC_Del(tx);
    Py_DECREF(tp);
}

static PyMethodDef transaction_methods[] = {
    {"__aenter__", (PyCFunction)transaction_aenter, METH_NOARGS, NULL},
    {"__aexit__", (PyCFunction)(void (*)(void))transaction_aexit,
     METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot transaction_slots[] = {
    {Py_tp_dealloc, transaction_dealloc},
    {Py_tp_traverse, transaction_traverse},
    {Py_tp_clear, transaction_clear},
    {Py_tp_methods, transaction_methods},
    {Py_tp_doc, "The async context manager of AIOProducer.transaction()."},
    {0, NULL},
};

static PyType_Spec transaction_spec = {
    .name = "aiokafka_c._Transaction",
    .basicsize = sizeof(TransactionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = transaction_slots,
};

int
akc_txn_setup_types(PyObject *module, akc_state *st)
{
    st->TransactionType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &transaction_spec, NULL);
    return st->TransactionType ? 0 : -1;
}
