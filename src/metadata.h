/* Cluster metadata results (list_topics()): ClusterMetadata,
 * BrokerMetadata, TopicMetadata and PartitionMetadata, read-only types
 * with confluent-kafka's attribute names. */
#ifndef AKC_METADATA_H
#define AKC_METADATA_H

#include "module.h"

/* Returns a new ClusterMetadata copied from md (which stays owned by the
 * caller; NULL gives an empty one), or NULL with an exception.
 * cluster_id may be NULL (None); controller_id is -1 when unknown.  GIL
 * held. */
PyObject *akc_metadata_to_py(akc_state *st, const rd_kafka_metadata_t *md,
                             const char *cluster_id, int32_t controller_id);

#endif
