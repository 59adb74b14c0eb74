/* produce_batch(): many messages, one future.  See batch.c. */
#ifndef AKC_BATCH_H
#define AKC_BATCH_H

#include "producer.h"

PyObject *akc_producer_produce_batch(ProducerObject *self,
                                     PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames);

/* A message of a batch is reported (delivered or failed; GIL held, poll
 * thread or loop): it leaves the batch, and the last one hands the batch
 * to the dispatcher.  Never raises. */
void akc_batch_message_done(DispatcherObject *d, ProducedMessage *pm);

/* The dispatcher's item for a finished batch, on the loop. */
void akc_batch_deliver(DispatcherObject *d, PyObject *item);

int akc_batch_setup_types(PyObject *module, akc_state *st);

#endif
