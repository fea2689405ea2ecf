/* futex.native._native.Word — a 32-bit futex word inside a writable buffer.
 *
 * Lifetime: the constructor takes a writable, contiguous buffer export (Py_buffer) and
 * holds it until release() or deallocation, so the exporter refuses to close or resize
 * the memory meanwhile (mmap.close() and bytearray resizing raise BufferError).
 * release() refuses while a blocking call (busy > 0) has the GIL dropped on the word.
 *
 * Atomics are sequentially consistent (__atomic builtins).  The futex calls are in
 * _wordcalls.c.  The type is the public futex.native.Word itself, not a base class:
 * CPython 3.11 specialises calls of C methods only on instances of the exact type.
 */
#include "_native.h"

#include <errno.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

PyObject *
nf_released(void)
{
    PyErr_SetString(PyExc_ValueError, "operation on a released Word");
    return NULL;
}

PyObject *
nf_released_meanwhile(const char *fname, int other)
{
    PyErr_Format(PyExc_ValueError,
                 "%s(): the %sWord was released while the arguments were converted (by "
                 "Python code that a conversion ran)",
                 fname, other ? "other " : "");
    return NULL;
}

/* -- construction and lifetime ------------------------------------------------------ */

static int
acquire(WordObject *self, PyObject *bufobj, Py_ssize_t offset)
{
    Py_buffer probe;
    /* First a read-only request, to say precisely what is wrong with the buffer. */
    if (PyObject_GetBuffer(bufobj, &probe, PyBUF_FULL_RO) < 0) {
        return -1;
    }
    int readonly = probe.readonly;
    int contiguous = PyBuffer_IsContiguous(&probe, 'A');
    PyBuffer_Release(&probe);
    if (readonly) {
        PyErr_Format(PyExc_TypeError,
                     "Word needs a writable buffer: this '%.200s' is read-only",
                     Py_TYPE(bufobj)->tp_name);
        return -1;
    }
    if (!contiguous) {
        PyErr_Format(PyExc_TypeError,
                     "Word needs a contiguous buffer: this '%.200s' is strided "
                     "(non-contiguous)",
                     Py_TYPE(bufobj)->tp_name);
        return -1;
    }
    if (PyObject_GetBuffer(bufobj, &self->view, PyBUF_FULL) < 0) {
        return -1;
    }
    Py_ssize_t len = self->view.len;
    if (len < 4) {
        PyErr_Format(PyExc_ValueError,
                     "buffer too small: %zd byte%s, a futex word needs 4", len,
                     len == 1 ? "" : "s");
        goto fail;
    }
    if (offset < 0 || offset > len - 4) {
        PyErr_Format(PyExc_ValueError,
                     "offset %zd out of range: the buffer has %zd bytes, so a word fits at "
                     "offsets 0..%zd",
                     offset, len, len - 4);
        goto fail;
    }
    char *base = (char *)self->view.buf;
    uintptr_t where = (uintptr_t)(base + offset);
    if (where & 3) {
        if ((uintptr_t)base & 3) {
            PyErr_Format(PyExc_ValueError,
                         "offset %zd is misaligned: the buffer starts at %p, so the word would "
                         "be at %p, not a multiple of 4",
                         offset, (void *)base, (void *)where);
        }
        else {
            PyErr_Format(PyExc_ValueError,
                         "offset %zd is misaligned: a futex word needs a multiple of 4",
                         offset);
        }
        goto fail;
    }
    self->addr = (uint32_t *)where;
    self->offset = offset;
    return 0;
fail:
    PyBuffer_Release(&self->view);
    return -1;
}

static PyObject *
Word_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buffer", "offset", "private", NULL};
    PyObject *source;
    Py_ssize_t offset = 0;
    int private_ = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n$p:Word", kwlist, &source, &offset,
                                     &private_)) {
        return NULL;
    }
    PyObject *bufobj = source;
    Py_INCREF(bufobj);
    if (!PyObject_CheckBuffer(source)) {
        /* multiprocessing.shared_memory.SharedMemory and alikes: use .buf, keep the owner */
        Py_DECREF(bufobj);
        bufobj = PyObject_GetAttrString(source, "buf");
        if (bufobj == Py_None) {
            Py_DECREF(bufobj);
            PyErr_Format(PyExc_ValueError, "this '%.200s' is closed (its .buf is None)",
                         Py_TYPE(source)->tp_name);
            return NULL;
        }
        if (bufobj == NULL || !PyObject_CheckBuffer(bufobj)) {
            Py_XDECREF(bufobj);
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "Word needs a writable buffer (bytearray, mmap, SharedMemory, ctypes or "
                         "numpy array, ...), not '%.200s'",
                         Py_TYPE(source)->tp_name);
            return NULL;
        }
    }
    WordObject *self = (WordObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(bufobj);
        return NULL;
    }
    if (acquire(self, bufobj, offset) < 0) {
        Py_DECREF(bufobj);
        Py_DECREF(self);
        return NULL;
    }
    Py_DECREF(bufobj); /* the view holds its own reference (view.obj) */
    Py_INCREF(source);
    self->source = source;
    self->private_flag = private_ ? NF_PRIVATE : 0;
    return (PyObject *)self;
}

/* Drop the export (memory may then be closed) and the source. */
static void
drop(WordObject *self)
{
    if (self->addr != NULL) {
        self->addr = NULL;
        PyBuffer_Release(&self->view);
    }
    Py_CLEAR(self->source);
}

static int
Word_traverse(WordObject *self, visitproc visit, void *arg)
{
    if (self->addr != NULL) {
        Py_VISIT(self->view.obj);
    }
    Py_VISIT(self->source);
    return 0;
}

static int
Word_clear(WordObject *self)
{
    if (self->busy == 0) {
        drop(self);
    }
    return 0;
}

static void
Word_dealloc(WordObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    drop(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(release_doc,
"release($self, /)\n--\n\n"
"Drop the buffer export now (the memory can then be closed or resized).  Idempotent.\n"
"Raises BufferError while another thread is blocked in a call on this word.");

static PyObject *
Word_release(WordObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->busy > 0) {
        PyErr_Format(PyExc_BufferError,
                     "cannot release a Word while %zd blocking call%s use%s it", self->busy,
                     self->busy == 1 ? "" : "s", self->busy == 1 ? "s" : "");
        return NULL;
    }
    drop(self);
    Py_RETURN_NONE;
}

static PyObject *
Word_enter(WordObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef((PyObject *)self);
}

static PyObject *
Word_exit(WordObject *self, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    return Word_release(self, NULL);
}

/* -- atomics ---------------------------------------------------------------------------- */

static PyObject *
Word_load(WordObject *self, PyObject *Py_UNUSED(ignored))
{
    LIVE(self);
    return NF_U32_OBJ(__atomic_load_n(self->addr, SC));
}

/* Converting an argument may run Python code that releases the Word: each method
 * checks again (STILL_LIVE) after its conversions (the rule in _native.h). */
static PyObject *
Word_store(WordObject *self, PyObject *arg)
{
    uint32_t v;
    LIVE(self);
    if (nf_u32_arg(arg, "value", &v) < 0) {
        return NULL;
    }
    STILL_LIVE(self, "store");
    __atomic_store_n(self->addr, v, SC);
    Py_RETURN_NONE;
}

static PyObject *
Word_cas(WordObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t expected, desired;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "cas() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    LIVE(self);
    if (nf_u32_arg(args[0], "expected", &expected) < 0 ||
        nf_u32_arg(args[1], "new", &desired) < 0) {
        return NULL;
    }
    STILL_LIVE(self, "cas");
    __atomic_compare_exchange_n(self->addr, &expected, desired, 0, SC, SC);
    return NF_U32_OBJ(expected); /* the old value, whether or not it swapped */
}

#define RMW(name, builtin)                                                                  \
    static PyObject *Word_##name(WordObject *self, PyObject *arg)                           \
    {                                                                                       \
        uint32_t v;                                                                         \
        LIVE(self);                                                                         \
        if (nf_u32_arg(arg, "value", &v) < 0) {                                             \
            return NULL;                                                                    \
        }                                                                                   \
        STILL_LIVE(self, #name);                                                            \
        return NF_U32_OBJ(builtin(self->addr, v, SC));                                      \
    }

RMW(swap, __atomic_exchange_n)
RMW(fetch_add, __atomic_fetch_add)
RMW(fetch_sub, __atomic_fetch_sub)
RMW(fetch_or, __atomic_fetch_or)
RMW(fetch_and, __atomic_fetch_and)
RMW(fetch_xor, __atomic_fetch_xor)

/* -- sharing with other processes (policy in futex/native/_shm.py) ---------------------- */

static PyObject *
shm_helper(const char *name)
{
    PyObject *mod = PyImport_ImportModule("futex.native._shm");
    if (mod == NULL) {
        return NULL;
    }
    PyObject *f = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return f;
}

PyDoc_STRVAR(attach_doc,
"attach($type, /, name, offset=0, *, private=False)\n--\n\n"
"The Word at offset in the POSIX shared memory object name (a SharedMemory's .name),\n"
"mapped afresh in this process for as long as the Word lives.  The object is not\n"
"registered with multiprocessing's resource tracker: this process's exit does not\n"
"unlink it.  Unpickling a Word on shared memory calls this.");

static PyObject *
Word_attach(PyObject *cls, PyObject *args, PyObject *kwds)
{
    PyObject *f = shm_helper("attach");
    if (f == NULL) {
        return NULL;
    }
    PyObject *full = PyTuple_New(PyTuple_GET_SIZE(args) + 1);
    if (full == NULL) {
        Py_DECREF(f);
        return NULL;
    }
    PyTuple_SET_ITEM(full, 0, Py_NewRef(cls));
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    }
    PyObject *r = PyObject_Call(f, full, kwds);
    Py_DECREF(full);
    Py_DECREF(f);
    return r;
}

static PyObject *
Word_reduce(WordObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *f = shm_helper("reduce_word");
    if (f == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallOneArg(f, (PyObject *)self);
    Py_DECREF(f);
    return r;
}

/* -- attributes ------------------------------------------------------------------------- */

static PyObject *
Word_get_address(WordObject *self, void *Py_UNUSED(closure))
{
    LIVE(self);
    return PyLong_FromVoidPtr(self->addr);
}

static PyObject *
Word_get_offset(WordObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->offset);
}

static PyObject *
Word_get_private(WordObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->private_flag != 0);
}

static PyObject *
Word_get_obj(WordObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->source != NULL ? self->source : Py_None);
}

static PyObject *
Word_get_released(WordObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->addr == NULL);
}

static PyObject *
Word_repr(WordObject *self)
{
    const char *name = Py_TYPE(self)->tp_name;
    if (self->addr == NULL) {
        return PyUnicode_FromFormat("<%s (released)>", name);
    }
    return PyUnicode_FromFormat("<%s offset=%zd %s value=%lu at %p>", name, self->offset,
                                self->private_flag ? "private" : "shared",
                                (unsigned long)__atomic_load_n(self->addr, SC),
                                (void *)self->addr);
}

/* -- type ------------------------------------------------------------------------------- */

#define FAST(f) (PyCFunction)(void (*)(void))(f)

PyDoc_STRVAR(load_doc, "load($self, /)\n--\n\nThe word's value (an atomic load).");
PyDoc_STRVAR(store_doc, "store($self, value, /)\n--\n\nSet the word (an atomic store).");
PyDoc_STRVAR(cas_doc,
"cas($self, expected, new, /)\n--\n\n"
"Compare-and-swap: store new if the word holds expected.  Returns the old value\n"
"(== expected when it swapped).");
PyDoc_STRVAR(swap_doc, "swap($self, value, /)\n--\n\nExchange; returns the old value.");
PyDoc_STRVAR(fetch_add_doc, "fetch_add($self, value, /)\n--\n\nAdd (mod 2**32); the old value.");
PyDoc_STRVAR(fetch_sub_doc,
"fetch_sub($self, value, /)\n--\n\nSubtract (mod 2**32); the old value.");
PyDoc_STRVAR(fetch_or_doc, "fetch_or($self, value, /)\n--\n\nBitwise or; the old value.");
PyDoc_STRVAR(fetch_and_doc, "fetch_and($self, value, /)\n--\n\nBitwise and; the old value.");
PyDoc_STRVAR(fetch_xor_doc, "fetch_xor($self, value, /)\n--\n\nBitwise xor; the old value.");
PyDoc_STRVAR(wait_doc,
"wait($self, /, expected, timeout=None, *, bitset=None, private=None)\n--\n\n"
"FUTEX_WAIT_BITSET: sleep while the word holds expected, until woken or the timeout\n"
"(seconds, one absolute CLOCK_MONOTONIC deadline) expires.  Returns False on timeout;\n"
"True otherwise: woken, the value was not expected (no sleep), or a spurious wake-up.\n"
"Drops the GIL while asleep; signal handlers run on EINTR and an exception they\n"
"raise ends the wait.  bitset: only wakes whose bitset intersects wake this waiter.");
PyDoc_STRVAR(wake_doc,
"wake($self, /, n=1, *, bitset=None, private=None)\n--\n\n"
"FUTEX_WAKE (FUTEX_WAKE_BITSET with a bitset): wake up to n waiters; returns how many\n"
"woke.  n=0 wakes none; n above INT_MAX means all.");
PyDoc_STRVAR(requeue_doc,
"requeue($self, /, to, wake=1, requeue=2147483647, *, private=None)\n--\n\n"
"FUTEX_REQUEUE: wake up to `wake` waiters, move up to `requeue` others to the Word\n"
"`to` (default: all, abi.ALL); returns woken + moved.");
PyDoc_STRVAR(cmp_requeue_doc,
"cmp_requeue($self, /, to, expected, wake=1, requeue=2147483647, *,\n"
"            private=None)\n--\n\n"
"FUTEX_CMP_REQUEUE: as requeue, if the word holds expected; else BlockingIOError\n"
"(EAGAIN) and nothing happens.");
PyDoc_STRVAR(wake_op_doc,
"wake_op($self, /, other, op, oparg, cmp, cmparg, *, wake=1, wake_other=1,\n"
"        private=None)\n--\n\n"
"FUTEX_WAKE_OP: wake up to `wake` waiters here; atomically apply op (abi.OP_*, maybe\n"
"| abi.OP_OPARG_SHIFT) with oparg to other; if other's old value compares (abi.CMP_*)\n"
"true against cmparg, wake up to `wake_other` waiters there.  Returns the total woken.\n"
"oparg and cmparg are 12-bit signed (-2048..2047); a shift is 0..31.");
PyDoc_STRVAR(lock_pi_doc,
"lock_pi($self, /, timeout=None, *, private=None)\n--\n\n"
"FUTEX_LOCK_PI: take the priority-inheritance lock (the word becomes this thread's tid,\n"
"| FUTEX_WAITERS when contended).  The timeout is one absolute CLOCK_REALTIME deadline.\n"
"Returns True when locked, False on timeout; OSError otherwise (EDEADLK: already\n"
"ours; ESRCH: the owner tid does not exist).  The kernel restarts it after a signal,\n"
"so the main thread sleeps in 20 ms slices and runs the signal handlers after each:\n"
"an exception they raise ends the call (a lock granted meanwhile is unlocked again).");
PyDoc_STRVAR(lock_pi2_doc,
"lock_pi2($self, /, timeout=None, *, private=None)\n--\n\n"
"FUTEX_LOCK_PI2 (Linux 5.14): lock_pi with the deadline on CLOCK_MONOTONIC.");
PyDoc_STRVAR(trylock_pi_doc,
"trylock_pi($self, /, *, private=None)\n--\n\n"
"FUTEX_TRYLOCK_PI: True if locked now, False if another thread holds it.");
PyDoc_STRVAR(unlock_pi_doc,
"unlock_pi($self, /, *, private=None)\n--\n\n"
"FUTEX_UNLOCK_PI: release the lock, handing it to the top waiter if any.\n"
"PermissionError (EPERM) unless this thread owns it.");

static PyMethodDef Word_methods[] = {
    {"load", (PyCFunction)Word_load, METH_NOARGS, load_doc},
    {"store", (PyCFunction)Word_store, METH_O, store_doc},
    {"cas", FAST(Word_cas), METH_FASTCALL, cas_doc},
    {"swap", (PyCFunction)Word_swap, METH_O, swap_doc},
    {"fetch_add", (PyCFunction)Word_fetch_add, METH_O, fetch_add_doc},
    {"fetch_sub", (PyCFunction)Word_fetch_sub, METH_O, fetch_sub_doc},
    {"fetch_or", (PyCFunction)Word_fetch_or, METH_O, fetch_or_doc},
    {"fetch_and", (PyCFunction)Word_fetch_and, METH_O, fetch_and_doc},
    {"fetch_xor", (PyCFunction)Word_fetch_xor, METH_O, fetch_xor_doc},
    {"wait", FAST(Word_wait), METH_FASTCALL | METH_KEYWORDS, wait_doc},
    {"wake", FAST(Word_wake), METH_FASTCALL | METH_KEYWORDS, wake_doc},
    {"requeue", FAST(Word_requeue), METH_FASTCALL | METH_KEYWORDS, requeue_doc},
    {"cmp_requeue", FAST(Word_cmp_requeue), METH_FASTCALL | METH_KEYWORDS, cmp_requeue_doc},
    {"wake_op", FAST(Word_wake_op), METH_FASTCALL | METH_KEYWORDS, wake_op_doc},
    {"lock_pi", FAST(Word_lock_pi), METH_FASTCALL | METH_KEYWORDS, lock_pi_doc},
    {"lock_pi2", FAST(Word_lock_pi2), METH_FASTCALL | METH_KEYWORDS, lock_pi2_doc},
    {"trylock_pi", FAST(Word_trylock_pi), METH_FASTCALL | METH_KEYWORDS, trylock_pi_doc},
    {"unlock_pi", FAST(Word_unlock_pi), METH_FASTCALL | METH_KEYWORDS, unlock_pi_doc},
    {"attach", (PyCFunction)(void (*)(void))Word_attach,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS, attach_doc},
    {"__reduce__", (PyCFunction)Word_reduce, METH_NOARGS, NULL},
    {"release", (PyCFunction)Word_release, METH_NOARGS, release_doc},
    {"__enter__", (PyCFunction)Word_enter, METH_NOARGS, NULL},
    {"__exit__", FAST(Word_exit), METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Word_getset[] = {
    {"address", (getter)Word_get_address, NULL, "The word's address (an int).", NULL},
    {"offset", (getter)Word_get_offset, NULL, "The word's byte offset in the buffer.", NULL},
    {"private", (getter)Word_get_private, NULL,
     "Whether futex calls default to FUTEX_PRIVATE_FLAG.", NULL},
    {"obj", (getter)Word_get_obj, NULL,
     "The object the Word was made from (None once released).", NULL},
    {"released", (getter)Word_get_released, NULL, "Whether release() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Word_doc,
"Word(buffer, offset=0, *, private=False)\n--\n\n"
"The 32-bit futex word at byte offset of a writable, contiguous buffer (bytearray,\n"
"mmap, SharedMemory or its .buf, ctypes or numpy array, ...), held exported until\n"
"release().  private is the default of every call's private= argument: False keys\n"
"futexes by memory object (works across processes), True by address in this process.\n"
"See the futex.native module documentation for outcomes and errors.");

PyTypeObject NativeWord_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "futex.native.Word",
    .tp_basicsize = sizeof(WordObject),
    .tp_dealloc = (destructor)Word_dealloc,
    .tp_repr = (reprfunc)Word_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Word_doc,
    .tp_traverse = (traverseproc)Word_traverse,
    .tp_clear = (inquiry)Word_clear,
    .tp_weaklistoffset = offsetof(WordObject, weakrefs),
    .tp_methods = Word_methods,
    .tp_getset = Word_getset,
    .tp_new = Word_new,
};
