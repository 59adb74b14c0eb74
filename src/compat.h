/* The few C-API calls whose spelling differs across CPython 3.10-3.13.
 *
 * Each shim has the newest API's name and meaning, with an akc_ prefix,
 * so the code reads the same on every version and drops the shim when
 * the oldest supported version gains the API. */
#ifndef AKC_COMPAT_H
#define AKC_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* PyType_GetModuleByDef() (3.11): the module of the first heap type in
 * tp's MRO that was made from def (a borrowed reference), or NULL with
 * TypeError. */
#if PY_VERSION_HEX >= 0x030B0000
#define akc_type_module_by_def PyType_GetModuleByDef
#else
static inline PyObject *
akc_type_module_by_def(PyTypeObject *tp, PyModuleDef *def)
{
    PyObject *mro = tp->tp_mro;
    Py_ssize_t n = mro ? PyTuple_GET_SIZE(mro) : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            continue;
        }
        PyObject *m = ((PyHeapTypeObject *)t)->ht_module;
        if (m != NULL && PyModule_GetDef(m) == def) {
            return m;
        }
    }
    PyErr_Format(PyExc_TypeError, "no module of %s in the MRO of '%s'",
                 def->m_name, tp->tp_name);
    return NULL;
}
#endif

/* Py_IsFinalizing() is public since 3.13; before, _Py_IsFinalizing(). */
static inline int
akc_is_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* PyErr_GetRaisedException() (3.12): takes the raised exception,
 * normalized and with its traceback, clearing the indicator.  Returns a
 * new reference or NULL when nothing was raised. */
static inline PyObject *
akc_err_take(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* PyErr_SetRaisedException() (3.12): raises exc (stealing it; NULL
 * clears the indicator). */
static inline void
akc_err_restore(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL) {
        PyErr_Clear();
        return;
    }
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, tb);
#endif
}

/* PyWeakref_GetRef() (3.13): *out is a new reference to the referent, or
 * NULL when it is dead.  Returns 1, 0, or -1 with an exception. */
static inline int
akc_weakref_get(PyObject *ref, PyObject **out)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyWeakref_GetRef(ref, out);
#else
    PyObject *o = PyWeakref_GetObject(ref);
    if (o == NULL) {
        *out = NULL;
        return -1;
    }
    if (o == Py_None) {
        *out = NULL;
        return 0;
    }
    *out = Py_NewRef(o);
    return 1;
#endif
}

/* PyMemberDef's type codes and flags (Py_T_INT, Py_READONLY, ...) are in
 * Python.h since 3.12; before, structmember.h spelled them T_INT,
 * READONLY, ... */
#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_INT T_INT
#define Py_T_LONGLONG T_LONGLONG
#define Py_T_OBJECT_EX T_OBJECT_EX
#define Py_READONLY READONLY
#endif

#endif
