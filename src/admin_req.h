/* Building an admin request (admin_ops.c, admin_groups.c): checking and
 * converting the arguments, the caller's dict of futures and the result
 * lookup, the AdminOptions, and the hand-over to librdkafka.  Loop
 * thread, GIL held. */
#ifndef AKC_ADMIN_REQ_H
#define AKC_ADMIN_REQ_H

#include "admin.h"

/* What a request is being built with; freed by akc_adm_clear(). */
typedef struct {
    AdminObject *self;
    const char *fname;
    rd_kafka_t *rk;
    PyObject *seq;    /* the items, as a fast sequence */
    PyObject *keep;   /* list: objects whose UTF-8 the request borrows */
    PyObject *fs;     /* what the caller gets: user key -> future */
    PyObject *lookup; /* result key -> future */
    void **objs;      /* librdkafka request objects */
    size_t nobjs;
    void (*destroy)(void *);
    rd_kafka_AdminOptions_t *options;
    intptr_t id;
} akc_admin_req;

/* The options an operation may take (see akc_adm_parse). */
enum { OPT_REQUEST = 0, OPT_OPERATION, OPT_VALIDATE, OPT_STABLE,
       OPT_STATES, NOPTS };

#define ITEMS(r) PySequence_Fast_ITEMS((r)->seq)
#define NITEMS(r) ((size_t)PySequence_Fast_GET_SIZE((r)->seq))

/* Parses (first, options...) with `first` positional; opts lists the
 * options the method takes (-1 terminated) and gets their values in
 * optv[OPT_*] (NULL: not given).  Returns 0 or -1 with TypeError. */
int akc_adm_parse(const char *fname, const char *first, const int *opts,
                  PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                  PyObject **firstv, PyObject **optv);
/* Starts a request: the handle, the item list (a non-empty list or
 * tuple, or, items_name == NULL, none), the result dicts and the
 * options.  On failure the caller still calls akc_adm_fail().  Returns 0
 * or -1. */
int akc_adm_start(akc_admin_req *r, AdminObject *self, const char *fname,
                  rd_kafka_admin_op_t api, PyObject *items,
                  const char *items_name, PyObject **optv);
/* Adds a future under user key ukey (in fs) and result key rkey (in
 * lookup; borrowed).  A key given twice is a ValueError.  Returns 0 or
 * -1. */
int akc_adm_future(akc_admin_req *r, PyObject *ukey, PyObject *rkey);
/* Registers the request just before the librdkafka call (the client is
 * checked again).  Returns the queue to pass, or NULL with an
 * exception. */
rd_kafka_queue_t *akc_adm_submit(akc_admin_req *r, int op);
/* After the librdkafka call: the caller's dict (or, single, its one
 * future); frees the request's C parts. */
PyObject *akc_adm_done(akc_admin_req *r, rd_kafka_queue_t *q, int single);
/* Frees the request's parts; returns NULL (the exception stays set). */
PyObject *akc_adm_fail(akc_admin_req *r);
void akc_adm_clear(akc_admin_req *r);

/* Argument checks; what names the argument in messages. */
int akc_adm_check_type(akc_admin_req *r, PyObject *o, const char *type,
                       const char *what);
/* o.attr as a C string kept alive by r->keep (its last item); NULL for
 * None when optional; *ok is 1 on success either way. */
const char *akc_adm_attr_str(akc_admin_req *r, PyObject *o,
                             const char *attr, int optional, int *ok);
int akc_adm_attr_int(akc_admin_req *r, PyObject *o, const char *attr,
                     int *out);
/* A non-empty str item of the list (a topic or a group name). */
const char *akc_adm_item_str(akc_admin_req *r, PyObject *o,
                             const char *what);

#endif
