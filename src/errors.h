/* KafkaError (an immutable value type) and KafkaException. */
#ifndef AKC_ERRORS_H
#define AKC_ERRORS_H

#include "module.h"

typedef struct {
    PyObject_HEAD
    rd_kafka_resp_err_t code;
    PyObject *reason; /* str or NULL: librdkafka's text for code */
    char fatal;
    char retriable;
    char txn_requires_abort;
} KafkaErrorObject;

/* Returns a new KafkaError; reason may be NULL (librdkafka's description
 * of code is used).  Any thread holding the GIL. */
PyObject *akc_error_new(akc_state *st, rd_kafka_resp_err_t code,
                        const char *reason, int fatal, int retriable,
                        int txn_requires_abort);

/* Same, but guesses retriable from the code. */
PyObject *akc_error_from_code(akc_state *st, rd_kafka_resp_err_t code,
                              const char *reason);

/* Returns a new KafkaException instance wrapping a KafkaError. */
PyObject *akc_exception_new(akc_state *st, PyObject *kafka_error);

/* Returns a new KafkaException instance for a librdkafka error object
 * (not taken), with its retriable, fatal and txn_requires_abort flags;
 * context (may be NULL) goes before librdkafka's text.  GIL held. */
PyObject *akc_exception_from_error(akc_state *st,
                                   const rd_kafka_error_t *error,
                                   const char *context);

/* The one place librdkafka errors become Python exceptions: sets
 * KafkaException(KafkaError(code, reason)) and returns NULL. */
PyObject *akc_raise(akc_state *st, rd_kafka_resp_err_t code,
                    const char *reason);

#endif
