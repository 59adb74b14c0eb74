/* Client configuration: a dict of librdkafka properties plus optional
 * Python callables. */
#ifndef AKC_CONF_H
#define AKC_CONF_H

#include "module.h"

typedef struct {
    PyObject *error_cb;    /* callable or NULL */
    PyObject *stats_cb;    /* callable or NULL */
    PyObject *throttle_cb; /* callable or NULL */
    PyObject *logger;      /* logging.Logger-like; never NULL on success */
    int idempotence_set;   /* the config names enable.idempotence */
    int acks_set;          /* ... acks or request.required.acks */
} akc_callbacks;

/* Builds a librdkafka configuration from config (any mapping; a snapshot
 * of its items is taken first, so user code run meanwhile, such as a
 * value's __str__, cannot pull an entry from under us).  Values may be
 * str, int, float or bool; an unknown or invalid property raises
 * KafkaException with librdkafka's message, which names it.  On success
 * returns a conf the caller owns and fills cbs with new references.
 * Returns NULL with an exception set on failure (cbs left empty). */
rd_kafka_conf_t *akc_conf_build(akc_state *st, PyObject *config,
                                akc_callbacks *cbs);

void akc_callbacks_clear(akc_callbacks *cbs);

/* A new list of the (key, value) pairs of a config mapping, or NULL with
 * TypeError naming what config was instead. */
PyObject *akc_conf_items(PyObject *config);

/* An integer property of a built conf, or dflt if it has none. */
int64_t akc_conf_get_int(rd_kafka_conf_t *conf, const char *name,
                         int64_t dflt);

#endif
