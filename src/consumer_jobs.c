/* AIOConsumer's blocking calls (committed offsets, watermarks, offsets
 * for times, metadata, group metadata): jobs for the client's worker
 * thread, never run on the loop or on the poll thread. */
#include "consumer.h"
#include "errors.h"
#include "groupmeta.h"
#include "metadata.h"
#include "topic_partition.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

/* A blocking call with timeout=None. */
#define DEFAULT_CALL_TIMEOUT_MS 60000

/* ---- blocking calls, on the worker ----------------------------------- */

enum { JOB_COMMITTED = 1, JOB_WATERMARKS, JOB_OFFSETS_FOR_TIMES, JOB_METADATA,
       JOB_GROUP_METADATA };

typedef struct {
    akc_job base;
    int op;
    rd_kafka_topic_partition_list_t *parts;
    char *topic;
    int32_t partition;
    int64_t lo, hi;
    const rd_kafka_metadata_t *md;
    char *cluster_id;
    int32_t controller_id;
    rd_kafka_consumer_group_metadata_t *cgm;
    rd_kafka_t *rk;
} consumer_job;

static void
job_run(akc_job *base, rd_kafka_t *rk)
{
    consumer_job *j = (consumer_job *)base;
    int t = base->timeout_ms;
    j->rk = rk;
    switch (j->op) {
    case JOB_COMMITTED:
        base->err = rd_kafka_committed(rk, j->parts, t);
        break;
    case JOB_WATERMARKS:
        base->err = rd_kafka_query_watermark_offsets(rk, j->topic,
                                                     j->partition, &j->lo,
                                                     &j->hi, t);
        break;
    case JOB_OFFSETS_FOR_TIMES:
        base->err = rd_kafka_offsets_for_times(rk, j->parts, t);
        break;
    case JOB_METADATA: {
        rd_kafka_topic_t *rkt = j->topic ? rd_kafka_topic_new(rk, j->topic,
                                                              NULL)
                                         : NULL;
        base->err = rd_kafka_metadata(rk, rkt == NULL, rkt, &j->md, t);
        if (rkt != NULL) {
            rd_kafka_topic_destroy(rkt);
        }
        if (base->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            j->cluster_id = rd_kafka_clusterid(rk, 0);
            j->controller_id = rd_kafka_controllerid(rk, 0);
        }
        break;
    }
    case JOB_GROUP_METADATA:
        j->cgm = rd_kafka_consumer_group_metadata(rk);
        if (j->cgm == NULL) {
            base->err = RD_KAFKA_RESP_ERR__STATE;
            snprintf(base->errstr, sizeof(base->errstr),
                     "not a group consumer (no group.id)");
        }
        break;
    }
}

static PyObject *
job_result(akc_job *base, akc_state *st)
{
    consumer_job *j = (consumer_job *)base;
    if (base->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        PyObject *e = akc_error_from_code(st, base->err,
                                          base->errstr[0] ? base->errstr
                                                          : NULL);
        PyObject *exc = e ? akc_exception_new(st, e) : NULL;
        Py_XDECREF(e);
        return exc;
    }
    switch (j->op) {
    case JOB_COMMITTED:
    case JOB_OFFSETS_FOR_TIMES:
        return akc_tplist_to_py(st, j->parts);
    case JOB_WATERMARKS:
        return Py_BuildValue("(LL)", (long long)j->lo, (long long)j->hi);
    case JOB_METADATA:
        return akc_metadata_to_py(st, j->md, j->cluster_id, j->controller_id);
    case JOB_GROUP_METADATA: {
        rd_kafka_consumer_group_metadata_t *cgm = j->cgm;
        j->cgm = NULL;
        return akc_cgm_new(st, cgm);
    }
    }
    Py_RETURN_NONE;
}

static void
job_clear(akc_job *base)
{
    consumer_job *j = (consumer_job *)base;
    if (j->parts != NULL) {
        rd_kafka_topic_partition_list_destroy(j->parts);
    }
    free(j->topic);
    if (j->md != NULL) {
        rd_kafka_metadata_destroy(j->md);
    }
    if (j->cluster_id != NULL && j->rk != NULL) {
        rd_kafka_mem_free(j->rk, j->cluster_id);
    }
    if (j->cgm != NULL) {
        rd_kafka_consumer_group_metadata_destroy(j->cgm);
    }
}

/* Starts a job; parts and topic are taken.  Returns its future. */
static PyObject *
consumer_job_start(ConsumerObject *self, const char *method, int op,
                   rd_kafka_topic_partition_list_t *parts, const char *topic,
                   int32_t partition, PyObject *timeout)
{
    akc_core *core = &self->core;
    int ms;
    consumer_job *j = NULL;
    PyObject *fut = NULL;
    if (akc_core_check_open(core, method) < 0 ||
        akc_core_check_loop(core, method) < 0 ||
        akc_timeout_ms(timeout ? timeout : Py_None, &ms) < 0) {
        goto fail;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (topic != NULL && (j->topic = strdup(topic)) == NULL)) {
        PyErr_NoMemory();
        goto fail;
    }
    fut = akc_dispatcher_new_future(core->dispatcher);
    if (fut == NULL) {
        goto fail;
    }
    j->op = op;
    j->parts = parts;
    j->partition = partition;
    j->controller_id = -1;
    j->base.run = job_run;
    j->base.result = job_result;
    j->base.clear = job_clear;
    j->base.future = Py_NewRef(fut);
    j->base.timeout_ms = ms < 0 ? DEFAULT_CALL_TIMEOUT_MS : ms;
    if (akc_worker_submit(self->fetch->worker, core->rk, &j->base) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
fail:
    if (j != NULL) {
        free(j->topic);
        free(j);
    }
    if (parts != NULL) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    return NULL;
}

static PyObject *names_parts_timeout[3];

static int
parse_parts_timeout(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames, PyObject **a)
{
    if (names_parts_timeout[0] == NULL) {
        names_parts_timeout[0] = PyUnicode_InternFromString("partitions");
        names_parts_timeout[1] = PyUnicode_InternFromString("timeout");
    }
    return akc_parse_args(fname, args, nargs, kwnames, names_parts_timeout, 2,
                          1, a);
}

PyObject *
akc_consumer_committed(ConsumerObject *self, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2] = {NULL};
    if (parse_parts_timeout("committed", args, nargs, kwnames, a) < 0) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(self->core.st, a[0], "partitions");
    if (l == NULL) {
        return NULL;
    }
    return consumer_job_start(self, "committed", JOB_COMMITTED, l, NULL, 0,
                              a[1]);
}

PyObject *
akc_consumer_offsets_for_times(ConsumerObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2] = {NULL};
    if (parse_parts_timeout("offsets_for_times", args, nargs, kwnames, a) <
        0) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l =
        akc_tplist_from_py(self->core.st, a[0], "partitions");
    if (l == NULL) {
        return NULL;
    }
    return consumer_job_start(self, "offsets_for_times",
                              JOB_OFFSETS_FOR_TIMES, l, NULL, 0, a[1]);
}

PyObject *
akc_consumer_get_watermark_offsets(ConsumerObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    akc_core *core = &self->core;
    static PyObject *names[4];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("partition");
        names[1] = PyUnicode_InternFromString("timeout");
        names[2] = PyUnicode_InternFromString("cached");
    }
    PyObject *a[3] = {NULL};
    if (akc_parse_args("get_watermark_offsets", args, nargs, kwnames, names,
                       3, 1, a) < 0) {
        return NULL;
    }
    if (!akc_tp_check(core->st, a[0])) {
        return PyErr_Format(PyExc_TypeError,
                            "get_watermark_offsets(): expected a "
                            "TopicPartition, not %.100s",
                            Py_TYPE(a[0])->tp_name);
    }
    TopicPartitionObject *tpo = (TopicPartitionObject *)a[0];
    const char *topic = PyUnicode_AsUTF8(tpo->topic);
    if (topic == NULL) {
        return NULL;
    }
    int cached = a[2] != NULL ? PyObject_IsTrue(a[2]) : 0;
    if (cached < 0) {
        return NULL;
    }
    if (cached) {
        int unused_ms; /* not waited for, but checked like the others */
        if (akc_timeout_ms(a[1] ? a[1] : Py_None, &unused_ms) < 0) {
            return NULL;
        }
        if (akc_core_check_open(core, "get_watermark_offsets") < 0 ||
            akc_core_check_loop(core, "get_watermark_offsets") < 0) {
            return NULL;
        }
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t err = rd_kafka_get_watermark_offsets(
            core->rk, topic, tpo->partition, &lo, &hi);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return akc_raise(core->st, err, NULL);
        }
        PyObject *r = Py_BuildValue("(LL)", (long long)lo, (long long)hi);
        if (r == NULL) {
            return NULL;
        }
        PyObject *fut = akc_dispatcher_done_future(core->dispatcher, r);
        Py_DECREF(r);
        return fut;
    }
    return consumer_job_start(self, "get_watermark_offsets", JOB_WATERMARKS,
                              NULL, topic, tpo->partition, a[1]);
}

PyObject *
akc_consumer_list_topics(ConsumerObject *self, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames)
{
    static PyObject *names[3];
    if (names[0] == NULL) {
        names[0] = PyUnicode_InternFromString("topic");
        names[1] = PyUnicode_InternFromString("timeout");
    }
    PyObject *a[2] = {NULL};
    if (akc_parse_args("list_topics", args, nargs, kwnames, names, 2, 0, a) <
        0) {
        return NULL;
    }
    const char *topic = NULL;
    if (a[0] != NULL && a[0] != Py_None) {
        if (!PyUnicode_Check(a[0])) {
            return PyErr_Format(PyExc_TypeError,
                                "list_topics(): topic must be str, not %.100s",
                                Py_TYPE(a[0])->tp_name);
        }
        if (akc_check_c_string(a[0], "topic") < 0 ||
            (topic = PyUnicode_AsUTF8(a[0])) == NULL) {
            return NULL;
        }
    }
    return consumer_job_start(self, "list_topics", JOB_METADATA, NULL, topic,
                              0, a[1]);
}

PyObject *
akc_consumer_group_metadata(ConsumerObject *self, PyObject *Py_UNUSED(ignored))
{
    return consumer_job_start(self, "consumer_group_metadata",
                              JOB_GROUP_METADATA, NULL, NULL, 0, NULL);
}
