/* AIOConsumer's consume calls: poll(), consume() and `async for`, over
 * the fetch ring.  A ready message is handed out at once (an awaitable
 * that is already done: no future, no loop round trip); otherwise the
 * call waits on a future that the poll thread's wake-up resolves with no
 * messages in it: the call pops the ring itself when its task runs again,
 * so a task cancelled while waiting, or at the moment it is woken, never
 * takes a message (a woken call that is cancelled wakes the next). */
#ifndef AKC_CONSUME_H
#define AKC_CONSUME_H

#include "consumer.h"

PyObject *akc_consumer_poll(ConsumerObject *self, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames);
PyObject *akc_consumer_consume(ConsumerObject *self, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames);
PyObject *akc_consumer_aiter(PyObject *self);
PyObject *akc_consumer_anext(PyObject *self);

/* Loop thread: wakes waiting calls, in call order, while entries are
 * ready for them; arms the poll thread's wake-up when none are. */
void akc_consume_serve(ConsumerObject *self);
/* Poll thread, GIL held: schedules akc_consume_serve() on the loop if a
 * call waits and entries are ready. */
void akc_consume_wake(ConsumerObject *self);
/* Fails every waiting call (why NULL: drops them, interpreter exit). */
void akc_consume_fail_waiters(ConsumerObject *self, const char *why);
/* Fetch lock held: what was handed out is done (the user came back). */
void akc_consume_release_locked(ConsumerObject *self);
/* Fetch lock held: offset of tp's first buffered message, or -1. */
int64_t akc_consume_first_offset_locked(ConsumerObject *self, akc_tp *tp);

int akc_consume_setup_types(PyObject *module, akc_state *st);

#endif
