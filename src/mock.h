/* Fault injection on librdkafka's embedded mock cluster, for tests: what
 * a real broker cannot be made to do on demand. */
#ifndef AKC_MOCK_H
#define AKC_MOCK_H

#include "producer.h"

/* _mock_push_errors(errors, api_key=0): the next len(errors) requests of
 * api_key (0 = Produce) to the mock cluster get these error codes. */
PyObject *akc_mock_push_errors(ProducerObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames);

/* _mock_set_broker_up(broker_id, up): take a mock broker down or up. */
PyObject *akc_mock_set_broker_up(ProducerObject *self, PyObject *const *args,
                                 Py_ssize_t nargs);

#endif
