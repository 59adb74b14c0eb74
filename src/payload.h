/* Turning produce() arguments into what librdkafka sends. */
#ifndef AKC_PAYLOAD_H
#define AKC_PAYLOAD_H

#include "message.h"

/* produce()/produce_nowait() parameters, in order; the names are in
 * akc_produce_arg_names(). */
enum {
    ARG_TOPIC,
    ARG_VALUE,
    ARG_KEY,
    ARG_PARTITION,
    ARG_TIMESTAMP,
    ARG_HEADERS,
    ARG_ON_DELIVERY,
    ARG_DISPATCH,
    NARGS
};

/* Fills names[NARGS + 1] (NULL-terminated, interned, borrowed) with the
 * parameter names of produce() (nowait: produce_nowait(), which also has
 * dispatch). */
void akc_produce_arg_names(akc_state *st, int nowait, PyObject **names);

/* Builds the message for produce()/produce_nowait() from parsed
 * arguments (a[ARG_*], NULL when not given).  Returns a new message or
 * NULL with TypeError/ValueError (nothing is half-built). */
ProducedMessage *akc_produce_build_message(akc_state *st, PyObject **a,
                                           int nowait);

/* Returns the object to keep for a value or key: NULL for None, a new
 * reference to bytes or str as given (their buffers are immutable and are
 * sent without a copy), or a new bytes copy of any other buffer
 * (bytearray, memoryview, ...: these may change after produce()).  Raises
 * TypeError for anything else, naming what (e.g. "value"). */
int akc_payload_take(PyObject *obj, const char *what, PyObject **out);

/* Pointer and length of a value taken by akc_payload_take(). */
static inline int
akc_payload_buffer(PyObject *obj, const void **ptr, size_t *len)
{
    if (obj == NULL) {
        *ptr = NULL;
        *len = 0;
        return 0;
    }
    if (PyBytes_CheckExact(obj)) {
        *ptr = PyBytes_AS_STRING(obj);
        *len = (size_t)PyBytes_GET_SIZE(obj);
        return 0;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
    if (s == NULL) {
        return -1;
    }
    *ptr = s;
    *len = (size_t)n;
    return 0;
}

/* Builds headers from a list/tuple of (str, bytes|str|None) pairs or a
 * dict.  On success *pylist is a new list of (str, bytes|None) tuples (for
 * Message.headers()) and *chdrs a new librdkafka header list; both NULL
 * when headers is None.  Returns 0, or -1 with TypeError/ValueError. */
int akc_headers_build(PyObject *headers, PyObject **pylist,
                      rd_kafka_headers_t **chdrs);

#endif
