/* A client's worker thread for blocking librdkafka calls.  See worker.h. */
#include "worker.h"
#include "errors.h"

#include <stdlib.h>
#include <string.h>

struct akc_worker {
    akc_state *st;
    PyInterpreterState *interp;
    DispatcherObject *dispatcher; /* strong */
    rd_kafka_t *rk;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    akc_job *jobs, **tail;
    pthread_t thread;
    int started, stopping, joined;
};

akc_worker *
akc_worker_new(akc_state *st, DispatcherObject *d)
{
    akc_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        PyErr_NoMemory();
        return NULL;
    }
    if (pthread_cond_init(&w->cond, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        PyErr_NoMemory();
        return NULL;
    }
    w->st = st;
    w->dispatcher = (DispatcherObject *)Py_NewRef(d);
    w->tail = &w->jobs;
    return w;
}

static void
job_free(akc_job *job)
{
    if (job->clear != NULL) {
        job->clear(job);
    }
    Py_XDECREF(job->future);
    free(job);
}

/* GIL held: resolves the job's future through the dispatcher. */
static void
job_answer(akc_worker *w, akc_job *job)
{
    PyObject *res = job->result(job, w->st);
    if (res == NULL) {
        PyObject *exc = akc_err_take();
        res = exc;
    }
    if (res != NULL && job->future != NULL) {
        if (akc_dispatcher_push_kind(w->dispatcher, AKC_ITEM_RESULT,
                                     job->future, res) < 0) {
            PyErr_WriteUnraisable((PyObject *)w->dispatcher);
        }
        akc_dispatcher_schedule(w->dispatcher);
    }
    Py_XDECREF(res);
    job_free(job);
}

static void *
worker_main(void *arg)
{
    akc_worker *w = arg;
    PyThreadState *tstate = PyThreadState_New(w->interp);
    if (tstate == NULL) {
        return NULL;
    }
    PyThreadState *saved = tstate; /* not current until restored */
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (w->jobs == NULL && !w->stopping) {
            pthread_cond_wait(&w->cond, &w->lock);
        }
        akc_job *job = w->jobs;
        if (job != NULL) {
            w->jobs = job->next;
            if (w->jobs == NULL) {
                w->tail = &w->jobs;
            }
            job->next = NULL;
        }
        int stopping = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (job == NULL) {
            break; /* stopping, nothing left */
        }
        if (stopping) {
            job->cancelled = 1;
            job->err = RD_KAFKA_RESP_ERR__DESTROY;
            snprintf(job->errstr, sizeof(job->errstr),
                     "the client was closed before the call ran");
        }
        else {
            job->run(job, w->rk);
        }
        if (akc_is_finalizing()) {
            continue; /* taking the GIL would never return: leak it */
        }
        PyEval_RestoreThread(saved);
        job_answer(w, job);
        saved = PyEval_SaveThread();
    }
    if (akc_is_finalizing()) {
        return NULL;
    }
    PyEval_RestoreThread(saved);
    PyThreadState_Clear(saved);
    PyThreadState_DeleteCurrent();
    return NULL;
}

int
akc_worker_submit(akc_worker *w, rd_kafka_t *rk, akc_job *job)
{
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        job_free(job);
        PyErr_SetString(PyExc_RuntimeError, "the client is closing");
        return -1;
    }
    if (!w->started) {
        w->rk = rk;
        w->interp = PyInterpreterState_Get();
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            pthread_mutex_unlock(&w->lock);
            job_free(job);
            errno = rc;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        w->started = 1;
    }
    job->next = NULL;
    *w->tail = job;
    w->tail = &job->next;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

void
akc_worker_stop(akc_worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    int join = w->started && !w->joined;
    w->joined = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    if (join) {
        pthread_join(w->thread, NULL);
    }
}

void
akc_worker_free(akc_worker *w, int forked)
{
    if (w == NULL) {
        return;
    }
    if (forked) {
        /* The thread is gone and may have held the lock: leak it all. */
        return;
    }
    akc_job *job = w->jobs;
    while (job != NULL) {
        akc_job *next = job->next;
        job_free(job);
        job = next;
    }
    Py_CLEAR(w->dispatcher);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
