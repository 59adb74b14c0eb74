/* Transactions on AIOProducer (a producer with a transactional.id).
 *
 * librdkafka's transactional calls block (commit flushes first, and in
 * event mode waits for another thread to serve the delivery reports), so
 * init, send_offsets, commit and abort run as jobs on the producer's
 * worker thread: never on the loop, never on the poll thread, which keeps
 * serving delivery reports meanwhile.  begin_transaction() is a quick op
 * round trip and runs on the loop.  See transactions.c. */
#ifndef AKC_TRANSACTIONS_H
#define AKC_TRANSACTIONS_H

#include "producer.h"

/* The part of a transactional producer the poll thread uses without the
 * GIL (the poller's ctx, freed by akc_txn_ctx_free). */
typedef struct akc_txn akc_txn;

/* GIL held.  NULL with MemoryError. */
akc_txn *akc_txn_new(akc_state *st, DispatcherObject *d,
                     int64_t txn_timeout_ms);

/* The poller hooks of a transactional producer (see poller.h). */
void akc_txn_teardown(akc_poller *p);
int akc_txn_before_destroy(akc_poller *p, int64_t *destroy_by);
void akc_txn_ctx_free(void *ctx, int forked);

/* Poll thread, GIL held: the close's orderly part is over (the worker
 * may run on until the close's deadline, then is left behind). */
void akc_txn_closing(ProducerObject *self);

/* Poll thread, GIL held, after the overflow was drained: hands the calls
 * that waited for it to the worker. */
void akc_txn_on_events(ProducerObject *self);

/* GIL held, the handle is gone or the producer dropped: fails the calls
 * still waiting for the overflow (quiet: drops them). */
void akc_txn_release(ProducerObject *self, int quiet);

/* Loop thread: produce() on a transactional producer outside a
 * transaction, or after a fatal error, raises at once.  Returns 0 or -1
 * with KafkaException. */
int akc_txn_check_produce(ProducerObject *self, const char *method);

PyObject *akc_producer_init_transactions(ProducerObject *self,
                                         PyObject *const *args,
                                         Py_ssize_t nargs, PyObject *kwnames);
PyObject *akc_producer_begin_transaction(ProducerObject *self,
                                         PyObject *unused);
PyObject *akc_producer_send_offsets(ProducerObject *self,
                                    PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames);
PyObject *akc_producer_commit_transaction(ProducerObject *self,
                                          PyObject *const *args,
                                          Py_ssize_t nargs,
                                          PyObject *kwnames);
PyObject *akc_producer_abort_transaction(ProducerObject *self,
                                         PyObject *const *args,
                                         Py_ssize_t nargs, PyObject *kwnames);
PyObject *akc_producer_transaction(ProducerObject *self, PyObject *unused);

int akc_txn_setup_types(PyObject *module, akc_state *st);

#endif
