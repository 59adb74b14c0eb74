/* AIOAdminClient.list_topics(): librdkafka's blocking metadata call, a
 * job for the client's worker thread (never the loop, never the poll
 * thread), converted to the consumer's ClusterMetadata. */
#include "admin.h"
#include "errors.h"
#include "metadata.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

/* list_topics() with timeout=None. */
#define DEFAULT_CALL_TIMEOUT_MS 60000

typedef struct {
    akc_job base;
    char *topic;
    const rd_kafka_metadata_t *md;
    char *cluster_id;
    int32_t controller_id;
    rd_kafka_t *rk;
} metadata_job;

/* Worker thread, no GIL. */
static void
metadata_job_run(akc_job *base, rd_kafka_t *rk)
{
    metadata_job *j = (metadata_job *)base;
    j->rk = rk;
    rd_kafka_topic_t *rkt = j->topic ? rd_kafka_topic_new(rk, j->topic, NULL)
                                     : NULL;
    if (j->topic != NULL && rkt == NULL) {
        /* A name librdkafka refuses (too long, say): never all topics. */
        base->err = rd_kafka_last_error();
        if (base->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            base->err = RD_KAFKA_RESP_ERR__INVALID_ARG;
        }
        return;
    }
    base->err = rd_kafka_metadata(rk, rkt == NULL, rkt, &j->md,
                                  base->timeout_ms);
    if (rkt != NULL) {
        rd_kafka_topic_destroy(rkt);
    }
    if (base->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        j->cluster_id = rd_kafka_clusterid(rk, 0);
        j->controller_id = rd_kafka_controllerid(rk, 0);
    }
}

static PyObject *
metadata_job_result(akc_job *base, akc_state *st)
{
    metadata_job *j = (metadata_job *)base;
    if (base->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return akc_admin_exc(st, base->err,
                             base->errstr[0] ? base->errstr : NULL);
    }
    return akc_metadata_to_py(st, j->md, j->cluster_id, j->controller_id);
}

static void
metadata_job_clear(akc_job *base)
{
    metadata_job *j = (metadata_job *)base;
    free(j->topic);
    if (j->md != NULL) {
        rd_kafka_metadata_destroy(j->md);
    }
    if (j->cluster_id != NULL && j->rk != NULL) {
        rd_kafka_mem_free(j->rk, j->cluster_id);
    }
}

PyObject *
akc_admin_list_topics(AdminObject *self, PyObject *const *args,
                      Py_ssize_t nargs, PyObject *kwnames)
{
    akc_state *st = self->core.st;
    PyObject *names[] = {st->str_topic, st->str_timeout, NULL};
    PyObject *a[2] = {NULL};
    const char *topic = NULL;
    int ms;
    if (akc_parse_args("list_topics", args, nargs, kwnames, names, 2, 0, a) <
        0) {
        return NULL;
    }
    /* confluent-kafka's timeout=-1 (its default) means no timeout of the
     * caller's: the call's own bound then applies, as for None. */
    PyObject *timeout = a[1] ? a[1] : Py_None;
    if ((PyLong_CheckExact(timeout) || PyFloat_CheckExact(timeout)) &&
        PyFloat_AsDouble(timeout) < 0.0) {
        timeout = Py_None; /* (an int too big for a double: OverflowError) */
    }
    if (PyErr_Occurred() || akc_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
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
    rd_kafka_t *rk = akc_admin_handle(self, "list_topics");
    if (rk == NULL) {
        return NULL;
    }
    metadata_job *j = calloc(1, sizeof(*j));
    if (j == NULL || (topic != NULL && (j->topic = strdup(topic)) == NULL)) {
        free(j);
        return PyErr_NoMemory();
    }
    PyObject *fut = akc_dispatcher_new_future(self->core.dispatcher);
    akc_worker *worker = akc_admin_worker(self);
    if (fut == NULL || worker == NULL ||
        akc_core_check_open(&self->core, "list_topics") < 0) {
        free(j->topic);
        free(j);
        Py_XDECREF(fut);
        return NULL;
    }
    j->controller_id = -1;
    j->base.run = metadata_job_run;
    j->base.result = metadata_job_result;
    j->base.clear = metadata_job_clear;
    j->base.future = Py_NewRef(fut);
    j->base.timeout_ms = ms < 0 ? DEFAULT_CALL_TIMEOUT_MS : ms;
    if (akc_worker_submit(worker, rk, &j->base) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    /* Known until done, so close() can fail it without waiting. */
    PyObject *discard = PyObject_GetAttrString(self->calls, "discard");
    PyObject *r = NULL;
    if (discard != NULL && PySet_Add(self->calls, fut) == 0) {
        r = PyObject_CallMethodOneArg(
            fut, self->core.st->str_add_done_callback, discard);
    }
    Py_XDECREF(discard);
    if (r == NULL) {
        PySet_Discard(self->calls, fut);
        PyErr_Clear(); /* the call is under way: only close() won't see it */
    }
    Py_XDECREF(r);
    return fut;
}
