/* futex.native._native — the module: raw entries, gettid, waitv, and the helpers that
 * the Word type (_word.c) shares.  Invariants: see _native.h.
 *
 * Raw entries (syscall_futex, syscall6) are for differential tests: they take integer
 * addresses, so a wrong one faults or scribbles on memory.  They are METH_FASTCALL,
 * convert their arguments with wrap-around (any int, as a register would hold it), and
 * return a cached int for every result in [-4095, 256], so a call allocates nothing.
 */
#include "_native.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* -- argument parsing ----------------------------------------------------------------- */

int
nf_parse(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
         nf_kwlist *kw, int npos, int nreq, PyObject **out)
{
    int nnames = 0;
    while (kw->names[nnames] != NULL) {
        out[nnames] = NULL;
        nnames++;
    }
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional argument%s (%zd given)",
                     fname, npos, npos == 1 ? "" : "s", nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nkw > 0 && kw->interned[0] == NULL) {
        for (int j = 0; j < nnames; j++) {
            kw->interned[j] = PyUnicode_InternFromString(kw->names[j]); /* kept for good */
            if (kw->interned[j] == NULL) {
                return -1;
            }
        }
    }
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int found = -1;
        for (int j = 0; j < nnames && found < 0; j++) {
            if (key == kw->interned[j]) { /* keyword names in calls are interned */
                found = j;
            }
        }
        for (int j = 0; j < nnames && found < 0; j++) {
            if (PyUnicode_Compare(key, kw->interned[j]) == 0) {
                found = j;
            }
        }
        if (found < 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                         key);
            return -1;
        }
        if (out[found] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         kw->names[found]);
            return -1;
        }
        out[found] = args[nargs + k];
    }
    for (int j = 0; j < nreq; j++) {
        if (out[j] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname,
                         kw->names[j]);
            return -1;
        }
    }
    return 0;
}

static PyObject *
as_index(PyObject *o, const char *what)
{
    if (PyLong_Check(o)) {
        Py_INCREF(o);
        return o;
    }
    if (PyIndex_Check(o)) {
        return PyNumber_Index(o);
    }
    PyErr_Format(PyExc_TypeError, "%s must be an int, not '%.200s'", what, Py_TYPE(o)->tp_name);
    return NULL;
}

int
nf_u32(PyObject *o, const char *what, uint32_t *out)
{
    int overflow = 0;
    long long v;
    if (PyLong_CheckExact(o)) {
        v = PyLong_AsLongLongAndOverflow(o, &overflow);
    }
    else {
        PyObject *i = as_index(o, what);
        if (i == NULL) {
            return -1;
        }
        v = PyLong_AsLongLongAndOverflow(i, &overflow);
        Py_DECREF(i);
    }
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow || v < -0x80000000LL || v > 0xffffffffLL) {
        PyErr_Format(PyExc_OverflowError,
                     "%s does not fit in a 32-bit word (-2**31 <= value < 2**32)", what);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int
nf_count(PyObject *o, const char *what, int dflt, int *out)
{
    if (o == NULL || o == Py_None) {
        *out = dflt;
        return 0;
    }
    PyObject *i = as_index(o, what);
    if (i == NULL) {
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (!overflow && v < 0)) {
        PyErr_Format(PyExc_ValueError, "%s must be >= 0", what);
        return -1;
    }
    *out = (overflow || v > NF_INT_MAX) ? NF_INT_MAX : (int)v;
    return 0;
}

int
nf_bitset(PyObject *o, uint32_t *out)
{
    if (o == NULL || o == Py_None) {
        *out = NF_BITSET_ANY;
        return 0;
    }
    PyObject *i = as_index(o, "bitset");
    if (i == NULL) {
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow || v < 1 || v > 0xffffffffLL) {
        PyErr_SetString(PyExc_ValueError,
                        "bitset must be in 1..2**32-1 (the kernel refuses an empty bitset)");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int
nf_private(PyObject *o, int dflt, int *out)
{
    if (o == NULL || o == Py_None) {
        *out = dflt;
        return 0;
    }
    int t = PyObject_IsTrue(o);
    if (t < 0) {
        return -1;
    }
    *out = t ? NF_PRIVATE : 0;
    return 0;
}

/* Longest timeout taken literally: beyond it (~31.7 million years) means "no timeout". */
#define NF_TIMEOUT_FOREVER 1e15

int
nf_deadline(PyObject *timeout, clockid_t clock, struct timespec *ts, int *has)
{
    *has = 0;
    if (timeout == NULL || timeout == Py_None) {
        return 0;
    }
    double t;
    if (PyLong_Check(timeout)) {
        /* An int of any size: beyond a long long it is forever, or long expired. */
        int overflow = 0;
        long long whole = PyLong_AsLongLongAndOverflow(timeout, &overflow);
        if (whole == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (overflow > 0) {
            return 0;
        }
        t = overflow < 0 ? -1.0 : (double)whole;
    }
    else {
        t = PyFloat_AsDouble(timeout); /* may run Python code: __float__ or __index__ */
        if (t == -1.0 && PyErr_Occurred()) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) { /* not a number: say what is */
                PyErr_Format(PyExc_TypeError,
                             "timeout must be a number of seconds or None, not '%.200s'",
                             Py_TYPE(timeout)->tp_name);
            }
            return -1; /* else what the conversion raised, unchanged */
        }
    }
    if (isnan(t)) {
        PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
        return -1;
    }
    if (t >= NF_TIMEOUT_FOREVER) {
        return 0;
    }
    if (t < 0) {
        t = 0; /* already expired: the call still checks the value once */
    }
    struct timespec now;
    clock_gettime(clock, &now);
    double whole = floor(t);
    long nsec = (long)ceil((t - whole) * 1e9); /* round up: never wake before the deadline */
    ts->tv_sec = now.tv_sec + (time_t)whole;
    ts->tv_nsec = now.tv_nsec + nsec;
    while (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
    *has = 1;
    return 0;
}

/* -- syscalls and errors -------------------------------------------------------------- */

PyObject *
nf_oserror(long neg_errno, const char *call)
{
    /* OSError(errno, msg) picks the errno's subclass (BlockingIOError, PermissionError,
     * ...); str() reads "[Errno N] <call>: <strerror>". */
    int e = (int)-neg_errno;
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s", call, strerror(e));
    PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", e, msg);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* Results of raw calls: ints in [-4095, -1], created once on first use.  (CPython
 * itself caches -5..256.) */
static PyObject *neg_cache[4096];

static inline PyObject *
raw_result(long r)
{
    if (r >= 0 || r < -4095) {
        return PyLong_FromLong(r);
    }
    PyObject *v = neg_cache[-r];
    if (v == NULL) {
        v = PyLong_FromLong(r);
        if (v == NULL) {
            return NULL;
        }
        neg_cache[-r] = v; /* the cache keeps this reference for good */
    }
    Py_INCREF(v);
    return v;
}

static inline int
futex_cmd_may_block(unsigned long op)
{
    switch (op & NF_CMD_MASK) {
    case NF_WAIT:
    case NF_WAIT_BITSET:
    case NF_LOCK_PI:
    case NF_LOCK_PI2:
    case NF_WAIT_REQUEUE_PI:
        return 1;
    default:
        return 0;
    }
}

/* A register value: any int, wrapped modulo 2**64 (so -1 and 2**64-1 are the same). */
static inline int
reg(PyObject *o, unsigned long *out)
{
    unsigned long v = PyLong_AsUnsignedLongMask(o);
    if (v == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
    *out = v;
    return 0;
}

/* syscall(nr, a[0], ..., a[5]) as >= 0 or -errno. */
static long
raw_syscall(long nr, const unsigned long *a)
{
    long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    return r < 0 ? -errno : r;
}

PyDoc_STRVAR(syscall_futex_doc,
"syscall_futex($module, uaddr, op, val, utime, uaddr2, val3, /)\n--\n\n"
"UNSAFE: futex(2) on raw integer addresses, for differential tests only.\n\n"
"Returns the kernel's raw answer: >= 0, or -errno.  Arguments are register values\n"
"(ints, wrapped modulo 2**64).  No EINTR retry.  The GIL is released for the ops\n"
"that can sleep (WAIT, WAIT_BITSET, LOCK_PI, LOCK_PI2, WAIT_REQUEUE_PI) and kept for\n"
"the others.  A wrong address crashes the process or corrupts memory.");

static PyObject *
native_syscall_futex(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[6];
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "syscall_futex() takes exactly 6 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    for (int i = 0; i < 6; i++) {
        if (reg(args[i], &a[i]) < 0) {
            return NULL;
        }
    }
    long r;
    if (futex_cmd_may_block(a[1])) {
        NF_SLEEP(r = raw_syscall(SYS_futex, a));
    }
    else {
        r = raw_syscall(SYS_futex, a);
    }
    return raw_result(r);
}

static int
syscall_may_block(unsigned long nr, unsigned long a2)
{
    switch (nr) {
    case SYS_futex:
        return futex_cmd_may_block(a2);
    case NF_SYS_futex_wake:
    case NF_SYS_futex_requeue:
    case SYS_gettid:
    case SYS_getpid:
    case SYS_set_robust_list:
    case SYS_get_robust_list:
        return 0;
    default:
        return 1;
    }
}

PyDoc_STRVAR(syscall6_doc,
"syscall6($module, nr, a1=0, a2=0, a3=0, a4=0, a5=0, a6=0, /)\n--\n\n"
"UNSAFE: any system call with raw register arguments, for differential tests only\n"
"(futex_waitv, futex2, robust lists).\n\n"
"Returns >= 0, or -errno.  No EINTR retry.  The GIL is kept for calls that cannot\n"
"sleep (futex(2) wake-type ops, futex_wake, futex_requeue, gettid, getpid,\n"
"set/get_robust_list) and released for every other call.  Pointers are raw integers:\n"
"a wrong one crashes the process or corrupts memory.");

static PyObject *
native_syscall6(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[7] = {0, 0, 0, 0, 0, 0, 0};
    if (nargs < 1 || nargs > 7) {
        PyErr_Format(PyExc_TypeError, "syscall6() takes 1 to 7 arguments (%zd given)", nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (reg(args[i], &a[i]) < 0) {
            return NULL;
        }
    }
    long r;
    if (syscall_may_block(a[0], a[2])) {
        NF_SLEEP(r = raw_syscall((long)a[0], a + 1));
    }
    else {
        r = raw_syscall((long)a[0], a + 1);
    }
    return raw_result(r);
}

PyDoc_STRVAR(gettid_doc,
"gettid($module, /)\n--\n\n"
"The calling thread's kernel thread id (the value FUTEX_LOCK_PI stores in a word).");

static PyObject *
native_gettid(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(syscall(SYS_gettid));
}

PyDoc_STRVAR(sleeps_release_gil_doc,
"sleeps_release_gil($module, /)\n--\n\n"
"Whether a call that sleeps (wait, lock_pi, lock_pi2, waitv) releases the GIL here.\n\n"
"True once this process has had a second thread (glibc never resets the flag, not\n"
"even in a fork child).  False in a process that never had one: no thread exists\n"
"to take the GIL and none can start while the only one sleeps, so the sleep skips\n"
"the hand-over.  Signals still interrupt the sleep and run their handlers.  Always\n"
"True where the C library does not say (no __libc_single_threaded).");

static PyObject *
native_sleeps_release_gil(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(!NF_ALONE());
}

/* -- waitv ------------------------------------------------------------------------------ */

PyDoc_STRVAR(waitv_doc,
"waitv($module, /, waiters, timeout=None)\n--\n\n"
"futex_waitv(2): sleep until one of several words is woken.\n\n"
"waiters is a sequence of (Word, expected) pairs, 1 to 128 of them; each word is\n"
"shared or private as its Word's default says.  Returns the index of the pair whose\n"
"word was woken; -1 without sleeping if a word did not hold its expected value (the\n"
"kernel's EAGAIN: re-read the words); None if the timeout (seconds, measured on\n"
"CLOCK_MONOTONIC as one absolute deadline) expired.  Signals: as Word.wait.");

static PyObject *
native_waitv(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    static nf_kwlist names = {{"waiters", "timeout", NULL}, {NULL}};
    PyObject *a[2];
    if (nf_parse("waitv", args, nargs, kwnames, &names, 2, 1, a) < 0) {
        return NULL;
    }
    /* A tuple of our own: nothing can change it under us (converting an expected value
     * may run Python code). */
    PyObject *seq = PySequence_Tuple(a[0]);
    if (seq == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError,
                         "waitv() needs an iterable of (Word, expected) pairs, not '%.200s'",
                         Py_TYPE(a[0])->tp_name);
        }
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    WordObject *words[NF_WAITV_MAX];
    nf_waitv vs[NF_WAITV_MAX];
    PyObject *result = NULL;
    if (n < 1 || n > NF_WAITV_MAX) {
        PyErr_Format(PyExc_ValueError, "waitv() takes 1 to %d words (%zd given)", NF_WAITV_MAX,
                     n);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(seq, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !Word_Check(PyTuple_GET_ITEM(pair, 0))) {
            PyErr_Format(PyExc_TypeError, "waitv() waiter %zd must be a (Word, expected) tuple",
                         i);
            goto done;
        }
        WordObject *w = (WordObject *)PyTuple_GET_ITEM(pair, 0);
        uint32_t expected;
        if (w->addr == NULL) {
            PyErr_Format(PyExc_ValueError, "waitv() waiter %zd: the Word is released", i);
            goto done;
        }
        if (nf_u32_arg(PyTuple_GET_ITEM(pair, 1), "expected", &expected) < 0) {
            goto done;
        }
        words[i] = w;
        vs[i].val = expected;
        vs[i].flags = NF_FUTEX2_SIZE_U32 | (uint32_t)w->private_flag;
        vs[i].reserved = 0;
    }
    struct timespec deadline;
    int has_deadline;
    if (nf_deadline(a[1], CLOCK_MONOTONIC, &deadline, &has_deadline) < 0) {
        goto done;
    }
    /* Every conversion is done (each could have run Python code that released a Word,
     * or unmapped its memory): only now read the addresses (the rule in _native.h). */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (words[i]->addr == NULL) {
            PyErr_Format(PyExc_ValueError,
                         "waitv() waiter %zd: the Word was released while the arguments were "
                         "converted (by Python code that a conversion ran)",
                         i);
            goto done;
        }
        vs[i].uaddr = (uint64_t)(uintptr_t)words[i]->addr;
    }
    /* As the kernel would answer EAGAIN; saves dropping the GIL for nothing. */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (__atomic_load_n(words[i]->addr, __ATOMIC_SEQ_CST) != (uint32_t)vs[i].val) {
            result = PyLong_FromLong(-1);
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        /* The tuple keeps the words alive; busy makes release() refuse, so the memory
         * stays mapped while the kernel may touch it. */
        Py_INCREF(words[i]);
        words[i]->busy++;
    }
    long r;
    for (;;) {
        NF_SLEEP(r = syscall(NF_SYS_futex_waitv, vs, (unsigned int)n, 0,
                             has_deadline ? &deadline : NULL, CLOCK_MONOTONIC);
                 r = r < 0 ? -errno : r);
        if (r != -EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            break;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        words[i]->busy--;
        Py_DECREF(words[i]);
    }
    if (r == -EINTR) {
        goto done; /* a signal handler raised */
    }
    if (r >= 0) {
        result = PyLong_FromLong(r);
    }
    else if (r == -ETIMEDOUT) {
        result = Py_NewRef(Py_None);
    }
    else if (r == -EAGAIN) {
        result = PyLong_FromLong(-1);
    }
    else {
        nf_oserror(r, "futex_waitv");
    }
done:
    Py_DECREF(seq);
    return result;
}

/* -- module ----------------------------------------------------------------------------- */

static PyMethodDef native_methods[] = {
    {"syscall_futex", (PyCFunction)(void (*)(void))native_syscall_futex, METH_FASTCALL,
     syscall_futex_doc},
    {"syscall6", (PyCFunction)(void (*)(void))native_syscall6, METH_FASTCALL, syscall6_doc},
    {"gettid", native_gettid, METH_NOARGS, gettid_doc},
    {"sleeps_release_gil", native_sleeps_release_gil, METH_NOARGS, sleeps_release_gil_doc},
    {"waitv", (PyCFunction)(void (*)(void))native_waitv, METH_FASTCALL | METH_KEYWORDS,
     waitv_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(module_doc,
"Host futex(2) and 32-bit atomics for futex.native (Linux).  Use futex.native.");

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "futex.native._native",
    .m_doc = module_doc,
    .m_size = -1,
    .m_methods = native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    if (PyType_Ready(&NativeWord_Type) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "SYS_futex", SYS_futex) < 0 ||
        PyModule_AddIntConstant(m, "SYS_gettid", SYS_gettid) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&NativeWord_Type);
    if (PyModule_AddObject(m, "Word", (PyObject *)&NativeWord_Type) < 0) {
        Py_DECREF(&NativeWord_Type);
        Py_DECREF(m);
        return NULL;
    }
    if (nf_sync_lock_init(m) < 0 || nf_sync_sem_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
