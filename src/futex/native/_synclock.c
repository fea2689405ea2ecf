/* futex.native._native — futex.sync's native lock: LockCore, the Mutex / RLock algorithm
 * of the futex.sync contract in C, and (from _syncrobust.h) the calling thread's
 * robust-list owner context: sync_tid, robust_mode, robust_link/unlink/pending.
 *
 * Robust list order (glibc's nptl/pthread_mutex_lock.c / pthread_mutex_unlock.c robust
 * path): acquire = set list_op_pending, take the word, link, clear pending (pending stays
 * set while the thread sleeps: the kernel wakes another waiter if it dies then); release
 * = set pending, unlink, release the word and wake, clear pending.
 *
 * Lock word: TID | W (FUTEX_WAITERS) | OD (FUTEX_OWNER_DIED).  W is kept in a free word
 * while waiters may remain (sync_design §8: glibc's release protocol loses a wakeup when a
 * woken waiter is SIGKILLed): release of TID|W stores W, wakes one, and takes W back to 0
 * only when the wake woke nobody.  A thread that has slept takes the lock with W
 * ("assume", glibc BZ #20973).  Waits use shared futex keys (the kernel's death wake is
 * shared).  Node fields (count, state, spin estimate) are owner-only or advisory.
 *
 * Contended acquire: a bounded adaptive spin (glibc's adaptive mutex estimate
 * spins += (cnt - spins) / 8, kept at node+40; skipped when the process may run on one
 * CPU only), stopped as soon as W shows; a few sched_yield; then FUTEX_WAIT with W.
 * lk_contend does all of it without Python, with the GIL released unless the process
 * never had a second thread (NF_ALONE, as _wordcalls.c) and busy bumped on the Word.  The
 * main thread sleeps in slices of at most LK_SLICE_NS and runs the signal handlers
 * between them.  A waiter that leaves after a wake (timeout, a raising handler, an
 * error) passes the wake on.  The deadline is absolute CLOCK_MONOTONIC, computed once.
 */
#include "_syncrobust.h"

#include <math.h>
#include <stddef.h>

#define LK_NOTREC 0x3fffffffu /* the word of a lock released while inconsistent */
#define LK_NODE_BYTES 48      /* from the word through the spin estimate and heir */
#define LK_INCONSISTENT 1u    /* node state: OwnerDied taken, not made consistent */
#define LK_SPIN_MAX 100       /* pauses: ~3 us at ~30 ns each */
#define LK_YIELDS 2           /* sched_yield calls after the spin */
#define LK_SLICE_NS 50000000L /* 50 ms: longest main-thread sleep between signal checks */
#define LK_FOREVER 1e15       /* timeouts at least this long never expire */

/* -- the contended path (no Python API: may run without the GIL) ------------------------- */

enum { LK_TAKEN, LK_TAKEN_OD, LK_NOTREC_SEEN, LK_MINE, LK_BUSY, LK_TIMEOUT, LK_SIGNAL,
       LK_ERROR };

typedef struct {
    uint32_t *w;
    uint32_t tid;
    uint32_t assume;   /* W once this thread has slept */
    int blocking;
    int spun;          /* the spin phase is over */
    int woken;         /* a wait returned 0: this thread may hold a wake to pass on */
    int sliced;        /* the main thread: sleep at most LK_SLICE_NS at a time */
    const struct timespec *deadline; /* NULL: none */
    long err;          /* LK_ERROR: -errno */
} lk_call;

static inline int
lk_held_quiet(uint32_t v) /* held by someone, nobody marked asleep */
{
    return (v & LK_TID_MASK) != 0 && v != LK_NOTREC && !(v & LK_W);
}

static inline void
lk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("isb" ::: "memory");
#else
    LK_BARRIER();
#endif
}

/* Spin until the word is free, shows W or the bound (adaptive) is reached; then yield. */
static void
lk_spin(uint32_t *w)
{
    uint32_t v = __atomic_load_n(w, RELAXED);
    if (lk_may_spin()) {
        uint32_t *est_p = (uint32_t *)((char *)w + LK_SPIN);
        int est = (int)(__atomic_load_n(est_p, RELAXED) & 0xffff);
        int max = est * 2 + 10, cnt = 0;
        if (max > LK_SPIN_MAX) {
            max = LK_SPIN_MAX;
        }
        while (cnt < max && lk_held_quiet(v)) {
            lk_cpu_relax();
            cnt++;
            v = __atomic_load_n(w, RELAXED);
        }
        if ((cnt - est) / 8 != 0) { /* the word's cache line: write only a change */
            __atomic_store_n(est_p, (uint32_t)(est + (cnt - est) / 8), RELAXED);
        }
    }
    for (int i = 0; i < LK_YIELDS && lk_held_quiet(v); i++) {
        sched_yield();
        v = __atomic_load_n(w, RELAXED);
    }
}

static inline void
lk_ts_add_ns(struct timespec *ts, long ns)
{
    ts->tv_nsec += ns;
    while (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int
lk_expired(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Sleep on the word while it holds val; the result as lk_contend's. */
static int
lk_sleep(lk_call *c, uint32_t val)
{
    const struct timespec *until = c->deadline;
    struct timespec slice;
    int last = 1;
    if (c->sliced) {
        clock_gettime(CLOCK_MONOTONIC, &slice);
        lk_ts_add_ns(&slice, LK_SLICE_NS);
        if (until == NULL || slice.tv_sec < until->tv_sec ||
            (slice.tv_sec == until->tv_sec && slice.tv_nsec < until->tv_nsec)) {
            until = &slice;
            last = 0;
        }
    }
    long r = nf_futex(c->w, NF_WAIT_BITSET, val, until, NULL, NF_BITSET_ANY);
    c->assume = LK_W;
    if (r == 0) {
        c->woken = 1;
    }
    if (r == 0 || r == -EAGAIN) {
        return -1; /* look again */
    }
    if (r == -ETIMEDOUT) {
        return last ? LK_TIMEOUT : LK_SIGNAL; /* a slice's end: check the signals */
    }
    if (r == -EINTR) {
        return LK_SIGNAL;
    }
    c->err = r;
    return LK_ERROR;
}

/* The acquire loop of the contract, from the first look at the word to an outcome. */
static int
lk_contend(lk_call *c)
{
    uint32_t *w = c->w;
    for (;;) {
        uint32_t v = __atomic_load_n(w, SC);
        if (v == 0 || v == LK_W) { /* free; a free W word keeps W */
            if (__atomic_compare_exchange_n(w, &v, c->tid | v | c->assume, 0, SC, SC)) {
                return LK_TAKEN;
            }
            continue;
        }
        if (v == LK_NOTREC) {
            return LK_NOTREC_SEEN;
        }
        uint32_t owner = v & LK_TID_MASK;
        if (owner == 0) { /* OD (| W): the owner died, the kernel marked it */
            if (__atomic_compare_exchange_n(w, &v, c->tid | (v & LK_W) | c->assume, 0, SC,
                                            SC)) {
                return LK_TAKEN_OD;
            }
            continue;
        }
        if (owner == c->tid) {
            return LK_MINE;
        }
        if (!c->blocking) {
            return LK_BUSY;
        }
        if (c->deadline != NULL && lk_expired(c->deadline)) {
            return LK_TIMEOUT; /* as the reference: no W set, no sleep once it passed */
        }
        if (!c->spun) {
            c->spun = 1;
            if (!(v & LK_W)) {
                lk_spin(w);
                continue;
            }
        }
        if (!(v & LK_W) && !__atomic_compare_exchange_n(w, &v, v | LK_W, 0, SC, SC)) {
            continue;
        }
        int r = lk_sleep(c, v | LK_W);
        if (r >= 0) {
            return r;
        }
    }
}

/* -- LockCore ------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    WordObject *word; /* the lock word (node+0); holds the buffer export */
    int recursive;
    PyObject *weakrefs;
} LockCoreObject;

static PyObject *s_owner_died, *s_owner_died_in_with, *s_not_recoverable, *s_not_owner,
    *s_deadlock, *s_release;

#define LK_U32(node, off) ((uint32_t *)((char *)(node) + (off)))

/* The live lock word of self, or NULL with an exception. */
static inline uint32_t *
lk_word(LockCoreObject *self)
{
    if (__builtin_expect(self->word == NULL, 0)) {
        PyErr_SetString(PyExc_ValueError,
                        "LockCore is not initialised (its __init__ was not called)");
        return NULL;
    }
    if (__builtin_expect(self->word->addr == NULL, 0)) {
        nf_released();
        return NULL;
    }
    return self->word->addr;
}

/* Call a hook that must raise; if it returns, say so. */
static PyObject *
lk_hook_raises(LockCoreObject *self, PyObject *name, PyObject *arg)
{
    PyObject *r = arg == NULL ? PyObject_CallMethodNoArgs((PyObject *)self, name)
                              : PyObject_CallMethodOneArg((PyObject *)self, name, arg);
    if (r != NULL) {
        Py_DECREF(r);
        PyErr_Format(PyExc_RuntimeError, "LockCore hook %U() returned instead of raising",
                     name);
    }
    return NULL;
}

/* The word was just taken (pending set): link the node, set the fields, clear pending. */
static inline void
lk_taken(LockCoreObject *self, uint32_t *w, uintptr_t head, int died)
{
    LK_BARRIER();
    lk_link(head, (uintptr_t)w);
    lk_keep((uintptr_t)w, (PyObject *)self); /* the memory stays mapped while linked */
    if (died) {
        __atomic_store_n(LK_U32(w, LK_STATE), LK_INCONSISTENT, RELAXED);
    }
    if (self->recursive) {
        __atomic_store_n(LK_U32(w, LK_COUNT), 1, RELAXED);
    }
    lk_pending(head, 0);
}

/* Re-entry by the owner: an RLock counts, a Mutex calls _deadlock. */
static int
lk_reenter(LockCoreObject *self, uint32_t *w)
{
    if (!self->recursive) {
        lk_hook_raises(self, s_deadlock, NULL);
        return -1;
    }
    uint32_t *cp = LK_U32(w, LK_COUNT);
    uint32_t n = __atomic_load_n(cp, RELAXED);
    if (n == UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "RLock recursion count overflowed");
        return -1;
    }
    __atomic_store_n(cp, n + 1, RELAXED);
    return 0;
}

/* Everything after a failed fast CAS; pending is set; returns 1, 0 or -1.  died: the
 * hook to call after a dead owner's word is taken (_owner_died from acquire,
 * _owner_died_in_with from __enter__, where on_owner_died may repair instead). */
static int
lk_acquire_slow(LockCoreObject *self, uint32_t *w, uint32_t tid, uintptr_t head, int blocking,
                const struct timespec *deadline, PyObject *died)
{
    WordObject *word = self->word;
    lk_call c = {.w = w, .tid = tid, .blocking = 0, .deadline = deadline};
    int rc = lk_contend(&c); /* first without spinning or sleeping, with the GIL */
    Py_INCREF(word); /* a signal handler may re-initialise self: keep the memory ours */
    if (rc == LK_BUSY && blocking) {
        c.blocking = 1;
        /* sliced only where another thread could take a signal meant for this one
         * (see _syncsem.c's sliced()) */
        c.sliced = lk_main_thread(tid) && !NF_ALONE();
        word->busy++;
        for (;;) {
            if (NF_ALONE()) {
                rc = lk_contend(&c);
            }
            else {
                Py_BEGIN_ALLOW_THREADS rc = lk_contend(&c);
                Py_END_ALLOW_THREADS
            }
            if (rc != LK_SIGNAL) {
                break;
            }
            if (PyErr_CheckSignals() < 0) {
                break;
            }
            lk_pending(head, (uintptr_t)w + LK_NEXT); /* a handler may have used the slot */
        }
        word->busy--;
    }
    if (rc == LK_TAKEN || rc == LK_TAKEN_OD) {
        lk_taken(self, w, head, rc == LK_TAKEN_OD);
    }
    else {
        if (c.woken && (rc == LK_TIMEOUT || rc == LK_SIGNAL || rc == LK_ERROR)) {
            (void)nf_futex(w, NF_WAKE, 1, NULL, NULL, 0); /* pass the wake on */
        }
        lk_pending(head, 0);
    }
    Py_DECREF(word);
    switch (rc) {
    case LK_TAKEN:
        return 1;
    case LK_TAKEN_OD: {
        PyObject *r = PyObject_CallMethodNoArgs((PyObject *)self, died);
        if (r == NULL) {
            return -1; /* OwnerDied, raised with the lock held */
        }
        Py_DECREF(r);
        return 1;
    }
    case LK_NOTREC_SEEN:
        lk_hook_raises(self, s_not_recoverable, NULL);
        return -1;
    case LK_MINE:
        return lk_reenter(self, w) < 0 ? -1 : 1;
    case LK_BUSY:
    case LK_TIMEOUT:
        return 0;
    case LK_SIGNAL:
        return -1;
    default:
        nf_oserror(c.err, "FUTEX_WAIT_BITSET");
        return -1;
    }
}

/* acquire with the arguments converted: 1 taken, 0 not, -1 exception. */
static inline int
lk_acquire(LockCoreObject *self, int blocking, const struct timespec *deadline, PyObject *died)
{
    uint32_t tid;
    uintptr_t head;
    uint32_t *w = lk_word(self);
    if (w == NULL || lk_ctx(&tid, &head) < 0) {
        return -1;
    }
    lk_pending(head, (uintptr_t)w + LK_NEXT);
    uint32_t v = 0;
    if (__builtin_expect(__atomic_compare_exchange_n(w, &v, tid, 0, SC, SC), 1)) {
        lk_taken(self, w, head, 0);
        return 1;
    }
    if ((v & LK_TID_MASK) == tid) { /* re-entry: no need for the slow path */
        lk_pending(head, 0);
        return lk_reenter(self, w) < 0 ? -1 : 1;
    }
    return lk_acquire_slow(self, w, tid, head, blocking, deadline, died);
}

/* threading's timeout rules (-1 or None: forever); fills *deadline (NULL: none). */
static int
lk_timeout(PyObject *o, int blocking, struct timespec *ts, const struct timespec **deadline)
{
    *deadline = NULL;
    if (o == NULL || o == Py_None) {
        return 0;
    }
    double t = PyFloat_AsDouble(o); /* may run Python code (__float__, __index__) */
    if (t == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError,
                         "timeout must be a number of seconds (-1 or None: forever), not "
                         "'%.200s'", Py_TYPE(o)->tp_name);
        }
        return -1;
    }
    if (isnan(t)) {
        PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
        return -1;
    }
    if (t == -1.0) {
        return 0;
    }
    if (!blocking) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return -1;
    }
    if (t < 0) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number (or -1)");
        return -1;
    }
    if (t >= LK_FOREVER) {
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, ts);
    double whole = floor(t);
    ts->tv_sec += (time_t)whole;
    lk_ts_add_ns(ts, (long)ceil((t - whole) * 1e9));
    *deadline = ts;
    return 0;
}

PyDoc_STRVAR(acquire_doc,
"acquire($self, /, blocking=True, timeout=-1)\n--\n\n"
"Take the lock; True when taken, False when not (non-blocking, or the timeout, in\n"
"seconds, expired).  After a dead owner's word is taken, self._owner_died() runs with\n"
"the lock held (it raises OwnerDied, or returns and acquire returns True).");

static PyObject *
LockCore_acquire(LockCoreObject *self, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *kwnames)
{
    static nf_kwlist names = {{"blocking", "timeout", NULL}, {NULL}};
    int blocking = 1, r;
    struct timespec ts;
    const struct timespec *deadline = NULL;
    if (nargs != 0 || kwnames != NULL) {
        PyObject *a[2] = {NULL, NULL};
        if (nf_parse("acquire", args, nargs, kwnames, &names, 2, 0, a) < 0) {
            return NULL;
        }
        if (a[0] != NULL && (blocking = PyObject_IsTrue(a[0])) < 0) {
            return NULL;
        }
        if (lk_timeout(a[1], blocking, &ts, &deadline) < 0) {
            return NULL;
        }
    }
    r = lk_acquire(self, blocking, deadline, s_owner_died);
    if (r < 0) {
        return NULL;
    }
    return Py_NewRef(r ? Py_True : Py_False);
}

static PyObject *
LockCore_enter(LockCoreObject *self, PyObject *Py_UNUSED(ignored))
{
    if (lk_acquire(self, 1, NULL, s_owner_died_in_with) < 0) {
        return NULL;
    }
    return Py_NewRef((PyObject *)self);
}

/* release: 0, or -1 with an exception. */
static inline int
lk_release(LockCoreObject *self)
{
    uint32_t tid;
    uintptr_t head;
    uint32_t *w = lk_word(self);
    if (w == NULL || lk_ctx(&tid, &head) < 0) {
        return -1;
    }
    if ((__atomic_load_n(w, SC) & LK_TID_MASK) != tid) { /* NOTRECOVERABLE is no TID */
        lk_hook_raises(self, s_not_owner, s_release);
        return -1;
    }
    uint32_t *cp = LK_U32(w, LK_COUNT);
    if (self->recursive) {
        uint32_t n = __atomic_load_n(cp, RELAXED);
        if (n > 1) {
            __atomic_store_n(cp, n - 1, RELAXED);
            return 0;
        }
        __atomic_store_n(cp, 0, RELAXED);
    }
    int inconsistent = __atomic_load_n(LK_U32(w, LK_STATE), RELAXED) == LK_INCONSISTENT;
    lk_pending(head, (uintptr_t)w + LK_NEXT);
    lk_unlink((uintptr_t)w);
    PyObject *kept = lk_kept((uintptr_t)w);
    LK_BARRIER();
    if (inconsistent) {
        __atomic_store_n(w, LK_NOTREC, SC);
        (void)nf_futex(w, NF_WAKE, NF_INT_MAX, NULL, NULL, 0);
    }
    else {
        uint32_t v = tid;
        if (!__atomic_compare_exchange_n(w, &v, 0, 0, SC, SC)) {
            /* TID|W: keep W in the free word; take it back only if nobody was asleep */
            __atomic_store_n(w, LK_W, SC);
            if (nf_futex(w, NF_WAKE, 1, NULL, NULL, 0) == 0) {
                v = LK_W;
                __atomic_compare_exchange_n(w, &v, 0, 0, SC, SC);
            }
        }
    }
    lk_pending(head, 0);
    Py_XDECREF(kept); /* last: it may free an object (never self: the caller holds it) */
    return 0;
}

PyDoc_STRVAR(release_doc,
"release($self, /)\n--\n\n"
"Release the lock (an RLock: one level).  Only the owner thread may: for any other,\n"
"self._not_owner('release') raises.  Released while inconsistent (OwnerDied taken,\n"
"not made consistent), the lock becomes NOTRECOVERABLE.");

static PyObject *
LockCore_release(LockCoreObject *self, PyObject *Py_UNUSED(ignored))
{
    if (lk_release(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
LockCore_exit(LockCoreObject *self, PyObject *const *Py_UNUSED(args),
              Py_ssize_t Py_UNUSED(nargs))
{
    return LockCore_release(self, NULL);
}

PyDoc_STRVAR(locked_doc,
"locked($self, /)\n--\n\nWhether the lock is held (a dead holder's and a NOTRECOVERABLE\n"
"lock count as held: the word is neither 0 nor W).");

static PyObject *
LockCore_locked(LockCoreObject *self, PyObject *Py_UNUSED(ignored))
{
    uint32_t *w = lk_word(self);
    if (w == NULL) {
        return NULL;
    }
    uint32_t v = __atomic_load_n(w, SC);
    return PyBool_FromLong(v != 0 && v != LK_W);
}

PyDoc_STRVAR(is_owned_doc, "_is_owned($self, /)\n--\n\nWhether the calling thread holds it.");

static PyObject *
LockCore_is_owned(LockCoreObject *self, PyObject *Py_UNUSED(ignored))
{
    uint32_t *w = lk_word(self);
    if (w == NULL) {
        return NULL;
    }
    return PyBool_FromLong((__atomic_load_n(w, SC) & LK_TID_MASK) == lk_tid());
}

static int
LockCore_init(LockCoreObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"word", "recursive", NULL};
    PyObject *word;
    int recursive;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Op:LockCore", kwlist, &word, &recursive)) {
        return -1;
    }
    if (!Word_Check(word)) {
        PyErr_Format(PyExc_TypeError, "LockCore needs a futex.native.Word, not '%.200s'",
                     Py_TYPE(word)->tp_name);
        return -1;
    }
    WordObject *wo = (WordObject *)word;
    if (wo->addr == NULL) {
        nf_released();
        return -1;
    }
    if ((uintptr_t)wo->addr & 7) {
        PyErr_Format(PyExc_ValueError,
                     "the lock word must be 8-aligned (a lock node holds pointers): it is at "
                     "%p", (void *)wo->addr);
        return -1;
    }
    if (wo->view.len - wo->offset < LK_NODE_BYTES) {
        PyErr_Format(PyExc_ValueError,
                     "the lock node needs %d bytes from the word: the buffer has %zd",
                     LK_NODE_BYTES, wo->view.len - wo->offset);
        return -1;
    }
    if (lk_mode() != 1) {
        PyErr_SetString(PyExc_RuntimeError,
                        "LockCore needs glibc's robust list (robust_mode() is "
                        "'pid-liveness')");
        return -1;
    }
    Py_INCREF(word);
    Py_XSETREF(self->word, wo);
    self->recursive = recursive;
    return 0;
}

static int
LockCore_traverse(LockCoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->word);
    return 0;
}

static int
LockCore_clear(LockCoreObject *self)
{
    Py_CLEAR(self->word);
    return 0;
}

static void
LockCore_dealloc(LockCoreObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Py_CLEAR(self->word);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef LockCore_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))LockCore_acquire, METH_FASTCALL | METH_KEYWORDS,
     acquire_doc},
    {"release", (PyCFunction)LockCore_release, METH_NOARGS, release_doc},
    {"__enter__", (PyCFunction)LockCore_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))LockCore_exit, METH_FASTCALL, NULL},
    {"locked", (PyCFunction)LockCore_locked, METH_NOARGS, locked_doc},
    {"_is_owned", (PyCFunction)LockCore_is_owned, METH_NOARGS, is_owned_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(LockCore_doc,
"LockCore(word, recursive)\n--\n\n"
"The Mutex (recursive=False) / RLock algorithm of futex.sync in C, on the lock node\n"
"whose word is the native Word word (8-aligned, 48 bytes of node from it).  Rare\n"
"paths call hooks a subclass defines: _owner_died() (_owner_died_in_with() from\n"
"__enter__), _not_recoverable(), _not_owner(what), _deadlock().");

static PyTypeObject LockCore_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "futex.native._native.LockCore",
    .tp_basicsize = sizeof(LockCoreObject),
    .tp_dealloc = (destructor)LockCore_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = LockCore_doc,
    .tp_traverse = (traverseproc)LockCore_traverse,
    .tp_clear = (inquiry)LockCore_clear,
    .tp_weaklistoffset = offsetof(LockCoreObject, weakrefs),
    .tp_methods = LockCore_methods,
    .tp_init = (initproc)LockCore_init,
    .tp_new = PyType_GenericNew,
};

int
nf_sync_lock_init(PyObject *module)
{
    static int registered;
    if (!registered) {
        if (pthread_atfork(NULL, NULL, lk_after_fork_child) != 0) {
            PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
            return -1;
        }
        registered = 1;
    }
    PyObject **names[] = {&s_owner_died, &s_owner_died_in_with, &s_not_recoverable,
                          &s_not_owner, &s_deadlock, &s_release};
    const char *texts[] = {"_owner_died", "_owner_died_in_with", "_not_recoverable",
                           "_not_owner", "_deadlock", "release"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (*names[i] == NULL && (*names[i] = PyUnicode_InternFromString(texts[i])) == NULL) {
            return -1;
        }
    }
    if (PyType_Ready(&LockCore_Type) < 0 ||
        PyModule_AddFunctions(module, lk_robust_functions) < 0) {
        return -1;
    }
    Py_INCREF(&LockCore_Type);
    if (PyModule_AddObject(module, "LockCore", (PyObject *)&LockCore_Type) < 0) {
        Py_DECREF(&LockCore_Type);
        return -1;
    }
    return 0;
}
