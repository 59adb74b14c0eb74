/* Private module functions that reach C conversions from tests without a
 * client: tests/test_topic_partition.py drives them.  Not public API. */
#include "module.h"
#include "errors.h"
#include "groupmeta.h"
#include "metadata.h"
#include "topic_partition.h"

#include <librdkafka/rdkafka_mock.h>

/* _tplist_roundtrip(partitions): list[TopicPartition] after a trip
 * through an rd_kafka_topic_partition_list_t. */
static PyObject *
selftest_tplist_roundtrip(PyObject *module, PyObject *partitions)
{
    akc_state *st = PyModule_GetState(module);
    rd_kafka_topic_partition_list_t *l = akc_tplist_from_py(st, partitions,
                                                            "partitions");
    if (l == NULL) {
        return NULL;
    }
    PyObject *r = akc_tplist_to_py(st, l);
    rd_kafka_topic_partition_list_destroy(l);
    return r;
}

/* _tp_with_error(topic, partition, offset, err): akc_tp_new with no
 * metadata, as a result list entry is made. */
static PyObject *
selftest_tp_with_error(PyObject *module, PyObject *args)
{
    const char *topic;
    int partition, err;
    long long offset;
    if (!PyArg_ParseTuple(args, "siLi:_tp_with_error", &topic, &partition,
                          &offset, &err)) {
        return NULL;
    }
    return akc_tp_new(PyModule_GetState(module), topic, partition, offset,
                      NULL, 0, (rd_kafka_resp_err_t)err);
}

/* Makes a producer handle on a mock cluster of nbrokers with topic
 * (npart partitions, replication min(3, nbrokers)), optionally failing
 * the topic with topic_err.  Returns it, or NULL with an exception. */
static rd_kafka_t *
selftest_mock_handle(akc_state *st, int nbrokers, const char *topic,
                     int npart, int topic_err)
{
    char errstr[256], n[16];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(n, sizeof(n), "%d", nbrokers);
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", n, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        akc_raise(st, RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                  sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        akc_raise(st, RD_KAFKA_RESP_ERR__FAIL, errstr);
        return NULL;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
        mc, topic, npart, nbrokers < 3 ? nbrokers : 3);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && topic_err != 0) {
        rd_kafka_mock_topic_set_error(mc, topic,
                                      (rd_kafka_resp_err_t)topic_err);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        Py_BEGIN_ALLOW_THREADS
        rd_kafka_destroy(rk);
        Py_END_ALLOW_THREADS
        akc_raise(st, err, NULL);
        return NULL;
    }
    return rk;
}

/* _mock_metadata(nbrokers, topic, partitions, topic_error=0):
 * ClusterMetadata of all topics of a fresh mock cluster. */
static PyObject *
selftest_mock_metadata(PyObject *module, PyObject *args)
{
    akc_state *st = PyModule_GetState(module);
    const char *topic;
    int nbrokers, npart, topic_err = 0;
    if (!PyArg_ParseTuple(args, "isi|i:_mock_metadata", &nbrokers, &topic,
                          &npart, &topic_err)) {
        return NULL;
    }
    rd_kafka_t *rk = selftest_mock_handle(st, nbrokers, topic, npart,
                                          topic_err);
    if (rk == NULL) {
        return NULL;
    }
    const rd_kafka_metadata_t *md = NULL;
    char *cluster_id = NULL;
    int32_t controller = -1;
    rd_kafka_resp_err_t err;
    Py_BEGIN_ALLOW_THREADS
    err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        cluster_id = rd_kafka_clusterid(rk, 10000);
        controller = rd_kafka_controllerid(rk, 10000);
    }
    Py_END_ALLOW_THREADS
    PyObject *r = err ? akc_raise(st, err, NULL)
                      : akc_metadata_to_py(st, md, cluster_id, controller);
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    if (cluster_id != NULL) {
        rd_kafka_mem_free(rk, cluster_id);
    }
    Py_BEGIN_ALLOW_THREADS
    rd_kafka_destroy(rk);
    Py_END_ALLOW_THREADS
    return r;
}

/* _cgm_new(group_id): a ConsumerGroupMetadata made without a consumer. */
static PyObject *
selftest_cgm_new(PyObject *module, PyObject *arg)
{
    const char *group = PyUnicode_AsUTF8(arg);
    if (group == NULL || akc_check_c_string(arg, "group_id") < 0) {
        return NULL;
    }
    rd_kafka_consumer_group_metadata_t *cgm =
        rd_kafka_consumer_group_metadata_new(group);
    if (cgm == NULL) {
        return PyErr_NoMemory();
    }
    return akc_cgm_new(PyModule_GetState(module), cgm);
}

/* _cgm_check(obj): True if akc_cgm_get accepts obj (else TypeError). */
static PyObject *
selftest_cgm_check(PyObject *module, PyObject *arg)
{
    if (akc_cgm_get(PyModule_GetState(module), arg) == NULL) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyMethodDef selftest_methods[] = {
    {"_tplist_roundtrip", selftest_tplist_roundtrip, METH_O, NULL},
    {"_tp_with_error", selftest_tp_with_error, METH_VARARGS, NULL},
    {"_mock_metadata", selftest_mock_metadata, METH_VARARGS, NULL},
    {"_cgm_new", selftest_cgm_new, METH_O, NULL},
    {"_cgm_check", selftest_cgm_check, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

int
akc_selftest_setup(PyObject *module, akc_state *st)
{
    (void)st;
    return PyModule_AddFunctions(module, selftest_methods);
}
