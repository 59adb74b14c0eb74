/* Building an admin request: see admin_req.h. */
#include "admin_req.h"
#include "errors.h"

#include <stdlib.h>
#include <string.h>

/* The shortest request_timeout delete_records() takes (see below). */
#define MIN_DELETE_RECORDS_MS 100

static int adm_future(akc_admin_req *r, PyObject *ukey, PyObject *rkey);


void
akc_adm_clear(akc_admin_req *r)
{
    for (size_t i = 0; i < r->nobjs; i++) {
        if (r->objs[i] != NULL) {
            r->destroy(r->objs[i]);
        }
    }
    free(r->objs);
    if (r->options != NULL) {
        rd_kafka_AdminOptions_destroy(r->options);
    }
    Py_XDECREF(r->seq);
    Py_XDECREF(r->keep);
    Py_XDECREF(r->fs);
    Py_XDECREF(r->lookup);
}

static const char *const opt_names[NOPTS] = {
    "request_timeout", "operation_timeout", "validate_only",
    "require_stable", "states"};

/* Parses (first, options...) with `first` positional; opts lists the
 * options the method takes (-1 terminated) and gets their values in
 * optv[OPT_*] (NULL: not given).  Returns 0 or -1 with TypeError. */
int
akc_adm_parse(const char *fname, const char *first, const int *opts,
              PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
              PyObject **firstv, PyObject **optv)
{
    PyObject *names[NOPTS + 2] = {NULL};
    PyObject *out[NOPTS + 1] = {NULL};
    int n = 0, rc = -1;
    if (first != NULL && (names[n++] = PyUnicode_InternFromString(first)) ==
                             NULL) {
        goto done;
    }
    for (int i = 0; opts[i] >= 0; i++) {
        if ((names[n++] = PyUnicode_InternFromString(opt_names[opts[i]])) ==
            NULL) {
            goto done;
        }
    }
    int npos = first != NULL;
    if (akc_parse_args(fname, args, nargs, kwnames, names, npos, npos,
                       out) < 0) {
        goto done;
    }
    if (first != NULL) {
        *firstv = out[0];
    }
    for (int i = 0; opts[i] >= 0; i++) {
        optv[opts[i]] = out[npos + i];
    }
    rc = 0;
done:
    for (int i = 0; i < n; i++) {
        Py_XDECREF(names[i]);
    }
    return rc;
}

/* A timeout option in ms: -1 when not given or None. */
static int
opt_ms(PyObject *v, int *ms)
{
    *ms = -1;
    return v == NULL ? 0 : akc_timeout_ms(v, ms);
}

/* Starts a request: the handle, the item list (a non-empty list or
 * tuple, or, items_name == NULL, none), the result dicts and the options
 * with the request's id as opaque.  Returns 0 or -1. */
int
akc_adm_start(akc_admin_req *r, AdminObject *self, const char *fname,
              rd_kafka_admin_op_t api, PyObject *items, const char *items_name,
              PyObject **optv)
{
    memset(r, 0, sizeof(*r));
    r->self = self;
    r->fname = fname;
    r->id = -1;
    int req_ms, op_ms;
    if (opt_ms(optv[OPT_REQUEST], &req_ms) < 0 ||
        opt_ms(optv[OPT_OPERATION], &op_ms) < 0) {
        return -1;
    }
    if (api == RD_KAFKA_ADMIN_OP_DELETERECORDS && req_ms >= 0 &&
        req_ms < MIN_DELETE_RECORDS_MS) {
        /* librdkafka 2.0.2 frees the request while rd_kafka_DeleteRecords()
         * still sets it up when its timeout expires that soon: a heap
         * corruption, every time at 0 ms. */
        PyErr_Format(PyExc_ValueError,
                     "%s(): request_timeout must be at least %d ms",
                     fname, MIN_DELETE_RECORDS_MS);
        return -1;
    }
    int validate = optv[OPT_VALIDATE] ? PyObject_IsTrue(optv[OPT_VALIDATE])
                                      : 0;
    if (validate < 0) {
        return -1;
    }
    if (items_name != NULL) {
        if (!PyList_Check(items) && !PyTuple_Check(items)) {
            PyErr_Format(PyExc_TypeError,
                         "%s(): %s must be a list, not %.100s", fname,
                         items_name, Py_TYPE(items)->tp_name);
            return -1;
        }
        /* A tuple of our own: the loops below run user code (attribute
         * getters, __hash__ and __eq__ of subclasses), which must not be
         * able to change or free what they iterate over. */
        r->seq = PySequence_Tuple(items);
        if (r->seq == NULL) {
            return -1;
        }
        if (PySequence_Fast_GET_SIZE(r->seq) == 0) {
            PyErr_Format(PyExc_ValueError, "%s(): %s must not be empty",
                         fname, items_name);
            return -1;
        }
        r->objs = calloc((size_t)PySequence_Fast_GET_SIZE(r->seq),
                         sizeof(void *));
        if (r->objs == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    r->keep = PyList_New(0);
    r->fs = PyDict_New();
    r->lookup = PyDict_New();
    if (r->keep == NULL || r->fs == NULL || r->lookup == NULL ||
        (r->rk = akc_admin_handle(self, fname)) == NULL) {
        return -1;
    }
    r->options = rd_kafka_AdminOptions_new(r->rk, api);
    if (r->options == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    char errstr[256];
    if ((req_ms >= 0 &&
         rd_kafka_AdminOptions_set_request_timeout(r->options, req_ms, errstr,
                                                   sizeof(errstr))) ||
        (op_ms >= 0 &&
         rd_kafka_AdminOptions_set_operation_timeout(r->options, op_ms,
                                                     errstr,
                                                     sizeof(errstr))) ||
        (validate && rd_kafka_AdminOptions_set_validate_only(
                         r->options, 1, errstr, sizeof(errstr)))) {
        PyErr_Format(PyExc_ValueError, "%s(): %s", fname, errstr);
        return -1;
    }
    return 0;
}

/* Adds a future under user key ukey (in fs) and result key rkey (in
 * lookup; borrowed).  A key given twice is a ValueError. */
int
akc_adm_future(akc_admin_req *r, PyObject *ukey, PyObject *rkey)
{
    /* The result is matched on the poll thread: by an exact str, whose
     * hash and equality run no user code. */
    PyObject *own = NULL;
    if (PyUnicode_Check(rkey) && !PyUnicode_CheckExact(rkey)) {
        own = PyUnicode_FromObject(rkey);
        if (own == NULL) {
            return -1;
        }
        rkey = own;
    }
    int rc = adm_future(r, ukey, rkey);
    Py_XDECREF(own);
    return rc;
}

static int
adm_future(akc_admin_req *r, PyObject *ukey, PyObject *rkey)
{
    int dup = PyDict_Contains(r->fs, ukey);
    if (dup == 0) {
        dup = PyDict_Contains(r->lookup, rkey);
    }
    if (dup != 0) {
        if (dup > 0) {
            PyErr_Format(PyExc_ValueError, "%s(): %R is given twice",
                         r->fname, ukey);
        }
        return -1;
    }
    PyObject *fut = akc_dispatcher_new_future(r->self->core.dispatcher);
    if (fut == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(r->fs, ukey, fut) < 0 ||
                     PyDict_SetItem(r->lookup, rkey, fut) < 0
                 ? -1
                 : 0;
    Py_DECREF(fut);
    return rc;
}

/* Registers the request and puts its id in the options, just before the
 * librdkafka call; the client is checked again (making futures ran the
 * loop's code).  Returns the queue to pass, or NULL with an exception. */
rd_kafka_queue_t *
akc_adm_submit(akc_admin_req *r, int op)
{
    if (akc_core_check_open(&r->self->core, r->fname) < 0) {
        return NULL;
    }
    r->id = akc_admin_register(r->self, op, r->lookup);
    if (r->id < 0) {
        return NULL;
    }
    rd_kafka_AdminOptions_set_opaque(r->options, (void *)r->id);
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(r->rk);
    if (q == NULL) {
        akc_admin_unregister(r->self, r->id);
        akc_raise(r->self->core.st, RD_KAFKA_RESP_ERR__STATE,
                  "the client has no queue");
    }
    return q;
}

/* The caller's dict (or, single, its one future), and the request's C
 * parts freed. */
PyObject *
akc_adm_done(akc_admin_req *r, rd_kafka_queue_t *q, int single)
{
    rd_kafka_queue_destroy(q);
    PyObject *out;
    if (single) {
        out = PyDict_GetItemWithError(r->lookup, Py_None);
        Py_XINCREF(out);
    }
    else {
        out = Py_NewRef(r->fs);
    }
    akc_adm_clear(r);
    return out;
}

PyObject *
akc_adm_fail(akc_admin_req *r)
{
    akc_adm_clear(r);
    return NULL;
}

/* ---- attribute helpers --------------------------------------------- */

int
akc_adm_check_type(akc_admin_req *r, PyObject *o, const char *type,
                   const char *what)
{
    PyObject *cls = PyObject_GetAttrString(r->self->types, type);
    if (cls == NULL) {
        return -1;
    }
    int ok = PyObject_IsInstance(o, cls);
    Py_DECREF(cls);
    if (ok == 0) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must hold %s, not %.100s",
                     r->fname, what, type, Py_TYPE(o)->tp_name);
    }
    return ok > 0 ? 0 : -1;
}

/* o.attr as a C string borrowed from r->keep; NULL for None when
 * optional (*ok set to 1 on success either way). */
const char *
akc_adm_attr_str(akc_admin_req *r, PyObject *o, const char *attr, int optional,
                 int *ok)
{
    *ok = 0;
    PyObject *v = PyObject_GetAttrString(o, attr);
    if (v == NULL) {
        return NULL;
    }
    const char *s = NULL;
    if (v == Py_None && optional) {
        *ok = 1;
    }
    else if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must be str, not %.100s",
                     r->fname, attr, Py_TYPE(v)->tp_name);
    }
    else if (akc_check_c_string(v, attr) == 0 &&
             PyList_Append(r->keep, v) == 0 &&
             (s = PyUnicode_AsUTF8(v)) != NULL) {
        *ok = 1;
    }
    Py_DECREF(v);
    return s;
}

int
akc_adm_attr_int(akc_admin_req *r, PyObject *o, const char *attr, int *out)
{
    PyObject *v = PyObject_GetAttrString(o, attr);
    if (v == NULL) {
        return -1;
    }
    int is_int = PyLong_Check(v) && !PyBool_Check(v);
    long x = is_int ? PyLong_AsLong(v) : -1;
    int range = is_int && ((x == -1 && PyErr_Occurred()) || x < INT32_MIN ||
                           x > INT32_MAX);
    Py_DECREF(v);
    if (!is_int || range) {
        PyErr_Clear();
        PyErr_Format(range ? PyExc_OverflowError : PyExc_TypeError,
                     "%s(): %s must be an int (32 bits)", r->fname, attr);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* A str item of the list (a topic or a group name). */
const char *
akc_adm_item_str(akc_admin_req *r, PyObject *o, const char *what)
{
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must hold str, not %.100s",
                     r->fname, what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(o) == 0) {
        PyErr_Format(PyExc_ValueError, "%s(): empty name in %s", r->fname,
                     what);
        return NULL;
    }
    if (akc_check_c_string(o, what) < 0) {
        return NULL;
    }
    return PyUnicode_AsUTF8(o);
}

