/* ConsumerGroupMetadata: an opaque handle on librdkafka's
 * rd_kafka_consumer_group_metadata_t, passed from a consumer to a
 * transactional producer's send_offsets_to_transaction(). */
#ifndef AKC_GROUPMETA_H
#define AKC_GROUPMETA_H

#include "module.h"

/* Returns a new ConsumerGroupMetadata that owns cgm (destroyed with the
 * object), or NULL with an exception, having destroyed cgm: ownership is
 * taken in every case.  GIL held. */
PyObject *akc_cgm_new(akc_state *st, rd_kafka_consumer_group_metadata_t *cgm);

/* Returns o's metadata, borrowed (valid while o lives), or NULL with
 * TypeError if o is not a ConsumerGroupMetadata. */
rd_kafka_consumer_group_metadata_t *akc_cgm_get(akc_state *st, PyObject *o);

#endif
