/* TopicPartition: a (topic, partition) with an offset, commit metadata and
 * a per-partition error, and its conversions to and from librdkafka's
 * rd_kafka_topic_partition_list_t.
 *
 * topic and partition are fixed at construction (they are the hash and
 * equality key, so a TopicPartition can be a dict key); offset and
 * metadata are writable, as in confluent-kafka. */
#ifndef AKC_TOPIC_PARTITION_H
#define AKC_TOPIC_PARTITION_H

#include "module.h"

typedef struct {
    PyObject_HEAD
    PyObject *topic;    /* exact str, never NULL */
    PyObject *metadata; /* exact str or NULL (None) */
    PyObject *error;    /* KafkaError or NULL (None) */
    int64_t offset;
    int32_t partition;
} TopicPartitionObject;

/* Returns a new TopicPartition, or NULL with an exception.  topic is
 * UTF-8 (invalid bytes are replaced).  metadata NULL means None;
 * otherwise its metadata_size bytes (possibly 0) become a str.  err != 0
 * sets .error to KafkaError(err).  GIL held. */
PyObject *akc_tp_new(akc_state *st, const char *topic, int32_t partition,
                     int64_t offset, const void *metadata,
                     size_t metadata_size, rd_kafka_resp_err_t err);

/* Returns a new list[TopicPartition] copied from l (NULL: an empty list),
 * or NULL with an exception.  l stays owned by the caller.  GIL held. */
PyObject *akc_tplist_to_py(akc_state *st,
                           const rd_kafka_topic_partition_list_t *l);

/* Returns a new librdkafka list (the caller destroys it with
 * rd_kafka_topic_partition_list_destroy) copied from any iterable of
 * TopicPartition: topic, partition, offset and metadata (UTF-8).  A single
 * TopicPartition is refused; what names the argument in error messages.
 * Returns NULL with TypeError (not an iterable of TopicPartition) or
 * ValueError (empty topic or one with a NUL).  GIL held. */
rd_kafka_topic_partition_list_t *akc_tplist_from_py(akc_state *st,
                                                    PyObject *iterable,
                                                    const char *what);

/* 1 if o is a TopicPartition (or a subclass's instance), else 0. */
int akc_tp_check(akc_state *st, PyObject *o);

#endif
