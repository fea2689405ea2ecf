/* futex.native._native — futex.sync's native semaphore and event cores (the Python
 * reference and the memory layout: futex/sync/semaphore.py and event.py).
 *
 * SemCore(word, bounded): glibc's 32-bit sem_t (nptl sem_post.c, sem_waitcommon.c, the
 * !__HAVE_64B_ATOMICS variant), written anew.  word+0 value = count << 1 | WAITERS,
 * word+4 nwaiters (acquirers in the slow path), word+8 bound (read only when bounded).
 * release(n) adds 2n with a CAS and, if WAITERS was set, wakes n: every release wakes,
 * not only a 0 -> n transition (fastipc's lost wakeup).  acquire takes a token with a
 * CAS; with none it joins nwaiters, sets WAITERS and sleeps while the value is exactly
 * WAITERS.  Leaving, the waiter that looks last clears WAITERS before it drops out of
 * nwaiters, and if someone joined meanwhile sets it again and wakes as many as there
 * are tokens (glibc's __sem_wait_32_finish).  A waiter that leaves without a token
 * (timeout, a raising signal handler) while tokens remain and WAITERS is set wakes one:
 * the wake it may have been given passes on.
 *
 * EventCore(word): bit 0 SET, bit 1 WAITERS, bits 2..31 a generation.  set() CASes
 * v -> ((v + 4) | SET) & ~WAITERS and wakes all if WAITERS was set; clear() clears SET;
 * wait() returns True once SET is seen or the generation moved since its first read, so
 * a set() quickly followed by clear() still wakes every waiter with True.
 *
 * Blocking follows _native.h: arguments first, then the Word's liveness; one absolute
 * CLOCK_MONOTONIC deadline; the GIL dropped around a sleep unless the process never had
 * a second thread (NF_SLEEP); a reference to the Word and its busy count held while the
 * call may sleep.  In the thread that runs Python's signal handlers (the process's first
 * thread) a sleep lasts at most SEM_SLICE_NS and the handlers run after each: a SIGINT
 * that the kernel gave to another thread (whose C handler only records it), or that
 * landed just before the futex call, still ends the wait within 100 ms (a signal that
 * interrupts the sleep ends it at once: EINTR); the slice's timer costs ~0.3 us per
 * round trip of a pinned ping-pong.  Fast paths: a load and a CAS, no syscall, no
 * allocation.  No spin before a sleep: measured on 2 vCPUs, a 100-pause spin lengthened
 * the unpinned ping-pong (3.5 -> 6 us), the peers often sharing a CPU.
 */
#include "_native.h"

#include <pthread.h>
#include <stddef.h>

#define SEM_WAITERS 1u
#define SEM_UNIT 2u                  /* one token in the value word */
#define SEM_COUNT_MAX 0x3FFFFFFFu    /* largest count: the value stays below 2**31 */
#define EV_SET 1u
#define EV_WAITERS 2u
#define EV_GEN 4u                    /* one generation step */
#define EV_GEN_MASK (~3u)
#define SEM_SLICE_NS 50000000L       /* 50 ms: longest main-thread sleep between checks */

typedef struct {
    PyObject_HEAD
    WordObject *word; /* NULL until __init__ */
    int bounded;
    PyObject *weakrefs;
} CoreObject;

/* -- whether this thread runs Python's signal handlers (cached per thread) -------------- */

/* 0: unknown, 1: the process's first thread (tid == pid), 2: another thread.  A fork
 * child's only thread inherits its parent's cache; the atfork handler forgets it. */
static __thread int main_cache __attribute__((tls_model("initial-exec")));

/* Whether sleeps of this thread must be sliced: it runs the handlers, and another
 * thread exists that a process-directed signal could land on.  In a process that never
 * had a second thread every signal interrupts this sleep (EINTR), so it sleeps whole and
 * arms no timer (about 0.3 us per pinned round trip); the window between the last
 * signal check and the syscall stays, as in CPython's own lock waits. */
static inline int
sliced(void)
{
    int c = main_cache;
    if (c == 0) {
        c = (pid_t)syscall(SYS_gettid) == getpid() ? 1 : 2;
        main_cache = c;
    }
    return c == 1 && !NF_ALONE();
}

static void
forget_at_fork(void)
{
    main_cache = 0;
}

/* -- time --------------------------------------------------------------------------------- */

static inline int
ts_le(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

/* Whether the deadline has passed already. */
static inline int
expired(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return ts_le(deadline, &now);
}

/* One sleep on *uaddr while it holds val, until deadline (NULL: none) or, when sliced,
 * the end of a slice.  Returns 0 (woken, the value differed, a slice ended or a signal
 * interrupted and its handlers returned: the caller re-reads the word), -ETIMEDOUT
 * (the deadline passed), NF_RAISED (a handler raised) or another -errno. */
static long
sleep_once(WordObject *w, uint32_t *uaddr, uint32_t val, const struct timespec *deadline)
{
    int slice = sliced();
    const struct timespec *until = deadline;
    struct timespec end;
    int last = 1;
    if (slice) {
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_nsec += SEM_SLICE_NS;
        if (end.tv_nsec >= 1000000000L) {
            end.tv_sec++;
            end.tv_nsec -= 1000000000L;
        }
        if (deadline == NULL || !ts_le(deadline, &end)) {
            until = &end;
            last = 0;
        }
    }
    long r;
    /* FUTEX_WAIT_BITSET takes the absolute CLOCK_MONOTONIC deadline as it is. */
    NF_SLEEP(r = nf_futex(uaddr, NF_WAIT_BITSET | w->private_flag, val, until, NULL,
                          NF_BITSET_ANY));
    if (r == -ETIMEDOUT && !last) {
        r = -EINTR; /* the slice ended, not the call */
    }
    if (r == -EAGAIN) {
        return 0;
    }
    if (r == -EINTR) {
        return PyErr_CheckSignals() < 0 ? NF_RAISED : 0;
    }
    return r;
}

static inline void
wake(WordObject *w, uint32_t *uaddr, uint32_t n)
{
    /* Cannot fail on a mapped, aligned word; a count above INT_MAX means all. */
    (void)nf_futex(uaddr, NF_WAKE | w->private_flag, n > NF_INT_MAX ? NF_INT_MAX : n, NULL,
                   NULL, 0);
}

/* -- the core objects ------------------------------------------------------------------ */

/* The live Word of a core, or NULL with an exception (not initialised, or released). */
static inline WordObject *
core_word(CoreObject *self)
{
    WordObject *w = self->word;
    if (w == NULL) {
        PyErr_Format(PyExc_RuntimeError, "%s.__init__() was not called",
                     Py_TYPE(self)->tp_name);
        return NULL;
    }
    if (w->addr == NULL) {
        nf_released();
        return NULL;
    }
    return w;
}

/* Set the core's word from an __init__ argument, checking that need bytes fit. */
static int
core_set_word(CoreObject *self, PyObject *o, const char *tname, Py_ssize_t need)
{
    if (!Word_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s() needs a futex.native.Word, not '%.200s'", tname,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    WordObject *w = (WordObject *)o;
    if (w->addr == NULL) {
        nf_released();
        return -1;
    }
    if (w->view.len - w->offset < need) {
        PyErr_Format(PyExc_ValueError,
                     "%s() needs %zd bytes from the Word's offset %zd, but its buffer has "
                     "only %zd",
                     tname, need, w->offset, w->view.len - w->offset);
        return -1;
    }
    Py_INCREF(w);
    Py_XSETREF(self->word, w);
    return 0;
}

static int
core_traverse(CoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->word); /* a heap subclass's type is visited by subtype_traverse */
    return 0;
}

static int
core_clear(CoreObject *self)
{
    Py_CLEAR(self->word);
    return 0;
}

static void
core_dealloc(CoreObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    core_clear(self);
    /* a heap subclass's type reference is dropped by subtype_dealloc */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- SemCore ------------------------------------------------------------------------------- */

static int
Sem_init(CoreObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"word", "bounded", NULL};
    PyObject *word;
    int bounded;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Op:SemCore", kwlist, &word, &bounded)) {
        return -1;
    }
    if (core_set_word(self, word, "SemCore", 12) < 0) {
        return -1;
    }
    self->bounded = bounded;
    return 0;
}

/* Take a token if there is one: 1 taken, 0 none. */
static inline int
sem_try(uint32_t *val)
{
    uint32_t v = __atomic_load_n(val, SC);
    while (v >= SEM_UNIT) {
        if (__atomic_compare_exchange_n(val, &v, v - SEM_UNIT, 1, SC, SC)) {
            return 1;
        }
    }
    return 0;
}

/* Leave the slow path (after glibc's __sem_wait_32_finish): the waiter that looks last
 * clears WAITERS before it drops out of nwaiters; if someone joined meanwhile it sets
 * WAITERS again and wakes as many waiters as there are tokens. */
static void
sem_leave(WordObject *w, uint32_t *val)
{
    uint32_t *nwaiters = val + 1;
    uint32_t guess = __atomic_load_n(nwaiters, SC);
    if (guess == 1) {
        __atomic_fetch_and(val, ~SEM_WAITERS, SC);
    }
    uint32_t before = __atomic_fetch_sub(nwaiters, 1, SC);
    if (guess == 1 && before > 1) {
        uint32_t v = __atomic_fetch_or(val, SEM_WAITERS, SC);
        if (v >= SEM_UNIT) {
            wake(w, val, v >> 1);
        }
    }
}

/* The slow path of acquire: 1 taken, 0 timed out, -1 with an exception. */
static int
sem_wait_slow(WordObject *w, const struct timespec *deadline)
{
    uint32_t *val = w->addr;
    int result;
    Py_INCREF(w); /* a handler may re-__init__ the core: keep this Word */
    w->busy++;
    __atomic_fetch_add(val + 1, 1, SC);
    uint32_t v = __atomic_load_n(val, SC);
    for (;;) {
        if (v >= SEM_UNIT) {
            if (__atomic_compare_exchange_n(val, &v, v - SEM_UNIT, 1, SC, SC)) {
                result = 1;
                break;
            }
            continue;
        }
        if (v != SEM_WAITERS) { /* count 0 without WAITERS: announce the sleep */
            if (!__atomic_compare_exchange_n(val, &v, SEM_WAITERS, 0, SC, SC)) {
                continue;
            }
        }
        long r = sleep_once(w, val, SEM_WAITERS, deadline);
        if (r == 0) {
            v = __atomic_load_n(val, SC);
            continue;
        }
        if (r == -ETIMEDOUT) {
            result = sem_try(val); /* a token that came with the deadline still counts */
        }
        else {
            if (r != NF_RAISED) {
                nf_oserror(r, "FUTEX_WAIT_BITSET");
            }
            result = -1;
        }
        break;
    }
    sem_leave(w, val);
    if (result != 1) {
        v = __atomic_load_n(val, SC);
        if (v >= SEM_UNIT && (v & SEM_WAITERS)) {
            wake(w, val, 1); /* pass on a wake this waiter may have been given */
        }
    }
    w->busy--;
    Py_DECREF(w);
    return result;
}

PyDoc_STRVAR(Sem_acquire_doc,
"acquire($self, /, blocking=True, timeout=None)\n--\n\n"
"Take a token; True when taken.  Without one: blocking=False returns False at once;\n"
"else sleep until a release, or until timeout seconds passed (None: forever; <= 0:\n"
"just try) and then return False.  A timeout with blocking=False is a ValueError, as\n"
"for threading.Semaphore.");

static PyObject *
Sem_acquire(CoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static nf_kwlist names = {{"blocking", "timeout", NULL}, {NULL}};
    PyObject *a[2] = {NULL, NULL};
    int blocking = 1, has_deadline = 0;
    struct timespec deadline;
    if (nargs != 0 || kwnames != NULL) {
        if (nf_parse("acquire", args, nargs, kwnames, &names, 2, 0, a) < 0) {
            return NULL;
        }
        if (a[0] != NULL && (blocking = PyObject_IsTrue(a[0])) < 0) {
            return NULL;
        }
        if (!blocking && a[1] != NULL && a[1] != Py_None) {
            PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
            return NULL;
        }
        if (nf_deadline(a[1], CLOCK_MONOTONIC, &deadline, &has_deadline) < 0) {
            return NULL;
        }
    }
    WordObject *w = core_word(self);
    if (w == NULL) {
        return NULL;
    }
    if (sem_try(w->addr)) {
        Py_RETURN_TRUE;
    }
    if (!blocking || (has_deadline && expired(&deadline))) {
        Py_RETURN_FALSE;
    }
    int r = sem_wait_slow(w, has_deadline ? &deadline : NULL);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

/* Add n tokens (n >= 1), waking n if someone may sleep.  -1 with ValueError when the
 * count would pass the bound (bounded) or SEM_COUNT_MAX; nothing changes then. */
static int
sem_post(CoreObject *self, WordObject *w, unsigned long long n)
{
    uint32_t *val = w->addr;
    uint32_t max = SEM_COUNT_MAX;
    if (self->bounded) {
        uint32_t bound = __atomic_load_n(val + 2, SC);
        if (bound < max) {
            max = bound;
        }
    }
    uint32_t v = __atomic_load_n(val, SC);
    do {
        if ((unsigned long long)(v >> 1) + n > max) {
            PyErr_SetString(PyExc_ValueError,
                            self->bounded ? "Semaphore released too many times"
                                          : "Semaphore released too many times: the count "
                                            "cannot exceed 0x3fffffff");
            return -1;
        }
    } while (!__atomic_compare_exchange_n(val, &v, v + (uint32_t)n * SEM_UNIT, 1, SC, SC));
    if (v & SEM_WAITERS) {
        wake(w, val, (uint32_t)n); /* n, not only on 0 -> n: fastipc's lost wakeup */
    }
    return 0;
}

PyDoc_STRVAR(Sem_release_doc,
"release($self, /, n=1)\n--\n\n"
"Add n tokens (n >= 1) and wake up to n sleepers.  ValueError, changing nothing, when\n"
"the count would pass the bound (bounded) or 0x3FFFFFFF.");

static PyObject *
Sem_release(CoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static nf_kwlist names = {{"n", NULL}, {NULL}};
    PyObject *a[1] = {NULL};
    unsigned long long n = 1;
    if (nargs != 0 || kwnames != NULL) {
        if (nf_parse("release", args, nargs, kwnames, &names, 1, 0, a) < 0) {
            return NULL;
        }
        if (a[0] != NULL) {
            PyObject *idx = PyNumber_Index(a[0]);
            if (idx == NULL) {
                return NULL;
            }
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
            Py_DECREF(idx);
            if (v == -1 && PyErr_Occurred()) {
                return NULL;
            }
            if (overflow < 0 || (overflow == 0 && v < 1)) {
                PyErr_SetString(PyExc_ValueError, "n must be one or more");
                return NULL;
            }
            n = overflow > 0 || v > (long long)SEM_COUNT_MAX ? SEM_COUNT_MAX + 1ull
                                                             : (unsigned long long)v;
        }
    }
    WordObject *w = core_word(self);
    if (w == NULL || sem_post(self, w, n) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Sem_enter(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    return Sem_acquire(self, NULL, 0, NULL);
}

static PyObject *
Sem_exit(CoreObject *self, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    WordObject *w = core_word(self);
    if (w == NULL || sem_post(self, w, 1) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Sem_value(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    WordObject *w = core_word(self);
    if (w == NULL) {
        return NULL;
    }
    return PyLong_FromLong((long)(__atomic_load_n(w->addr, SC) >> 1));
}

static PyObject *
core_get_word(CoreObject *self, void *Py_UNUSED(closure))
{
    if (self->word == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef((PyObject *)self->word);
}

static PyObject *
Sem_get_bounded(CoreObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->bounded);
}

static PyMethodDef Sem_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))Sem_acquire, METH_FASTCALL | METH_KEYWORDS,
     Sem_acquire_doc},
    {"release", (PyCFunction)(void (*)(void))Sem_release, METH_FASTCALL | METH_KEYWORDS,
     Sem_release_doc},
    {"__enter__", (PyCFunction)Sem_enter, METH_NOARGS,
     "__enter__($self, /)\n--\n\nacquire(): returns True, as threading.Semaphore does."},
    {"__exit__", (PyCFunction)(void (*)(void))Sem_exit, METH_FASTCALL,
     "__exit__($self, /, *exc)\n--\n\nrelease()."},
    {"_value", (PyCFunction)Sem_value, METH_NOARGS,
     "_value($self, /)\n--\n\nThe count now (a snapshot)."},
    {NULL, NULL, 0, NULL},
};

/* Sem_getset + 1 is EventCore's: the word only. */
static PyGetSetDef Sem_getset[] = {
    {"bounded", (getter)Sem_get_bounded, NULL,
     "Whether release() refuses to pass the bound at word+8.", NULL},
    {"word", (getter)core_get_word, NULL, "The core's Word (None before __init__).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Sem_doc,
"SemCore(word, bounded)\n--\n\n"
"Counting semaphore on the futex word `word` (glibc's 32-bit sem_t layout: the value\n"
"count << 1 | waiters at +0, nwaiters at +4, the bound at +8; 12 bytes).  Shared\n"
"futex keys unless the Word is private.  Base class of futex.sync's Semaphore.");

static PyTypeObject SemCore_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "futex.native.SemCore",
    .tp_basicsize = sizeof(CoreObject),
    .tp_dealloc = (destructor)core_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Sem_doc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_weaklistoffset = offsetof(CoreObject, weakrefs),
    .tp_methods = Sem_methods,
    .tp_getset = Sem_getset,
    .tp_init = (initproc)Sem_init,
    .tp_new = PyType_GenericNew,
};

/* -- EventCore ------------------------------------------------------------------------------ */

static int
Ev_init(CoreObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"word", NULL};
    PyObject *word;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:EventCore", kwlist, &word)) {
        return -1;
    }
    return core_set_word(self, word, "EventCore", 4);
}

static PyObject *
Ev_set(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    WordObject *w = core_word(self);
    if (w == NULL) {
        return NULL;
    }
    uint32_t *word = w->addr;
    uint32_t v = __atomic_load_n(word, SC);
    do {
        if (v & EV_SET) {
            Py_RETURN_NONE; /* set already: no waiter can be asleep */
        }
    } while (!__atomic_compare_exchange_n(word, &v, ((v + EV_GEN) | EV_SET) & ~EV_WAITERS, 1,
                                          SC, SC));
    if (v & EV_WAITERS) {
        wake(w, word, NF_INT_MAX);
    }
    Py_RETURN_NONE;
}

static PyObject *
Ev_clear(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    WordObject *w = core_word(self);
    if (w == NULL) {
        return NULL;
    }
    if (__atomic_load_n(w->addr, SC) & EV_SET) {
        __atomic_fetch_and(w->addr, ~EV_SET, SC);
    }
    Py_RETURN_NONE;
}

static PyObject *
Ev_is_set(CoreObject *self, PyObject *Py_UNUSED(ignored))
{
    WordObject *w = core_word(self);
    if (w == NULL) {
        return NULL;
    }
    return PyBool_FromLong(__atomic_load_n(w->addr, SC) & EV_SET);
}

/* Whether a waiter that first read gen0 may return True on reading v. */
static inline int
ev_done(uint32_t v, uint32_t gen0)
{
    return (v & EV_SET) || (v & EV_GEN_MASK) != gen0;
}

/* The sleeping part of wait: 1 set (or pulsed), 0 timed out, -1 with an exception. */
static int
ev_wait_slow(WordObject *w, uint32_t v, const struct timespec *deadline)
{
    uint32_t *word = w->addr, gen0 = v & EV_GEN_MASK;
    int result;
    Py_INCREF(w);
    w->busy++;
    for (;;) {
        if (ev_done(v, gen0)) {
            result = 1;
            break;
        }
        if (!(v & EV_WAITERS)) {
            if (!__atomic_compare_exchange_n(word, &v, v | EV_WAITERS, 0, SC, SC)) {
                continue;
            }
            v |= EV_WAITERS;
        }
        long r = sleep_once(w, word, v, deadline);
        v = __atomic_load_n(word, SC);
        if (r == 0) {
            continue;
        }
        if (r == -ETIMEDOUT) {
            result = ev_done(v, gen0);
        }
        else {
            if (r != NF_RAISED) {
                nf_oserror(r, "FUTEX_WAIT_BITSET");
            }
            result = -1; /* set() wakes all: there is no wake to pass on */
        }
        break;
    }
    w->busy--;
    Py_DECREF(w);
    return result;
}

PyDoc_STRVAR(Ev_wait_doc,
"wait($self, /, timeout=None)\n--\n\n"
"True once the event is set, or was set since this call began (a set() quickly\n"
"followed by clear() still counts); False when timeout seconds passed first (None:\n"
"forever; <= 0: just look).");

static PyObject *
Ev_wait(CoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static nf_kwlist names = {{"timeout", NULL}, {NULL}};
    PyObject *a[1] = {NULL};
    int has_deadline = 0;
    struct timespec deadline;
    if (nargs != 0 || kwnames != NULL) {
        if (nf_parse("wait", args, nargs, kwnames, &names, 1, 0, a) < 0 ||
            nf_deadline(a[0], CLOCK_MONOTONIC, &deadline, &has_deadline) < 0) {
            return NULL;
        }
    }
    WordObject *w = core_word(self);
    if (w == NULL) {
        return NULL;
    }
    uint32_t v = __atomic_load_n(w->addr, SC);
    if (v & EV_SET) {
        Py_RETURN_TRUE;
    }
    if (has_deadline && expired(&deadline)) {
        Py_RETURN_FALSE;
    }
    int r = ev_wait_slow(w, v, has_deadline ? &deadline : NULL);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyMethodDef Ev_methods[] = {
    {"set", (PyCFunction)Ev_set, METH_NOARGS,
     "set($self, /)\n--\n\nSet the event (a new generation) and wake every waiter."},
    {"clear", (PyCFunction)Ev_clear, METH_NOARGS,
     "clear($self, /)\n--\n\nClear the event."},
    {"is_set", (PyCFunction)Ev_is_set, METH_NOARGS,
     "is_set($self, /)\n--\n\nWhether the event is set now."},
    {"wait", (PyCFunction)(void (*)(void))Ev_wait, METH_FASTCALL | METH_KEYWORDS,
     Ev_wait_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Ev_doc,
"EventCore(word)\n--\n\n"
"Event on the futex word `word` (bit 0 SET, bit 1 WAITERS, bits 2..31 a generation).\n"
"Shared futex keys unless the Word is private.  Base class of futex.sync's Event.");

static PyTypeObject EventCore_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "futex.native.EventCore",
    .tp_basicsize = sizeof(CoreObject),
    .tp_dealloc = (destructor)core_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Ev_doc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_weaklistoffset = offsetof(CoreObject, weakrefs),
    .tp_methods = Ev_methods,
    .tp_getset = Sem_getset + 1,
    .tp_init = (initproc)Ev_init,
    .tp_new = PyType_GenericNew,
};

/* -- module ------------------------------------------------------------------------------- */

int
nf_sync_sem_init(PyObject *module)
{
    static int atfork_done = 0;
    if (!atfork_done) {
        if (pthread_atfork(NULL, NULL, forget_at_fork) != 0) {
            PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
            return -1;
        }
        atfork_done = 1;
    }
    if (PyType_Ready(&SemCore_Type) < 0 || PyType_Ready(&EventCore_Type) < 0) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "SemCore", (PyObject *)&SemCore_Type) < 0 ||
        PyModule_AddObjectRef(module, "EventCore", (PyObject *)&EventCore_Type) < 0 ||
        PyModule_AddIntConstant(module, "SEM_VALUE_MAX", SEM_COUNT_MAX) < 0) {
        return -1;
    }
    return 0;
}
