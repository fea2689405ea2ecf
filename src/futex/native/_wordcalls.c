/* futex.native._native — the futex calls of a Word (the type itself is in _word.c).
 *
 * Each method is one futex(2) call on the word, except wait, which first compares the
 * word with the expected value (a mismatch returns True at once, as the kernel's EAGAIN
 * would, without a syscall), and lock_pi / lock_pi2, which first take a free lock
 * without sleeping (pi_try) and only sleep when it is held.
 * Only wait, lock_pi and lock_pi2 can sleep; they go through sleep_on, which drops the
 * GIL, marks the Word busy (release() refuses) and handles EINTR by running the signal
 * handlers and sleeping again until the same absolute deadline; in the main thread the
 * PI locks sleep in slices (pi_sleep; the design is in _native.h).  The others keep the
 * GIL.  Every method converts all of its arguments before it checks the Word (and the
 * other Word) live and touches memory (STILL_LIVE; the rule in _native.h).
 *
 * Outcomes (the table in futex/native/__init__.py):
 *   wait, lock_pi, lock_pi2 -> True, or False when the deadline passed (ETIMEDOUT);
 *     wait also returns True on a value mismatch (EAGAIN) and on a spurious wake-up.
 *   trylock_pi -> True, or False when the lock is held (EWOULDBLOCK).
 *   every other errno -> OSError with that errno (cmp_requeue's EAGAIN included).
 */
#include "_native.h"

#include <errno.h>
#include <stdint.h>

/* -- futex calls -------------------------------------------------------------------------- */

/* Sleep in futex(2), the GIL dropped unless the process is single-threaded (NF_SLEEP).
 * EINTR: run the signal handlers; if one raised, return NF_RAISED; else sleep again with
 * the same absolute deadline.  FUTEX_LOCK_PI never fails with EINTR (the kernel restarts
 * it), but an EINTR is handled alike; pi_sleep is what makes the PI locks interruptible. */
static long
sleep_on(WordObject *self, int op, uint32_t val, const struct timespec *deadline,
         uint32_t val3)
{
    uint32_t *addr = self->addr;
    long r;
    self->busy++;
    for (;;) {
        NF_SLEEP(r = nf_futex(addr, op, val, deadline, NULL, val3));
        if (r != -EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            r = NF_RAISED;
            break;
        }
    }
    self->busy--;
    return r;
}

static inline void
ts_add_ns(struct timespec *ts, long ns)
{
    ts->tv_nsec += ns;
    while (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static inline int
ts_le(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

/* Whether this thread runs Python's signal handlers: CPython's main thread, taken to be
 * the process's first thread (tid == pid; a fork child's only thread is both). */
static int
runs_signal_handlers(void)
{
    return (pid_t)syscall(SYS_gettid) == getpid();
}

/* FUTEX_LOCK_PI(2) until deadline (NULL: none) on clock, for a lock that was held a
 * moment ago.  The kernel restarts these ops after a signal instead of failing with
 * EINTR, so in the thread that runs the Python handlers it sleeps in slices of at most
 * NF_PI_SLICE_NS and runs the handlers after each (the design in _native.h); a slice's
 * ETIMEDOUT never hides a grant (the kernel then returns 0).  After a grant the
 * handlers run once more: if one raises, the lock is unlocked again and NF_RAISED
 * returned, so that an exception never leaves the caller holding a lock it cannot know
 * it has.  Other threads sleep in one call (sleep_on). */
static long
pi_sleep(WordObject *self, int op, clockid_t clock, const struct timespec *deadline)
{
    if (!runs_signal_handlers()) {
        return sleep_on(self, op, 0, deadline, 0);
    }
    uint32_t *addr = self->addr;
    long r;
    self->busy++;
    for (;;) {
        struct timespec until;
        clock_gettime(clock, &until);
        ts_add_ns(&until, NF_PI_SLICE_NS);
        int last = deadline != NULL && ts_le(deadline, &until);
        if (last) {
            until = *deadline;
        }
        NF_SLEEP(r = nf_futex(addr, op, 0, &until, NULL, 0));
        if (r == -ETIMEDOUT && !last) {
            r = -EINTR; /* the slice ended, not the call: as if interrupted */
        }
        if (r != -EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            r = NF_RAISED;
            break;
        }
    }
    if (r == 0 && PyErr_CheckSignals() < 0) {
        /* Granted as a handler raised (a signal during the last slice): hand the lock
         * on rather than return an exception while holding it.  Only a word that user
         * code changed meanwhile could make this fail, and then it is not ours. */
        (void)nf_futex(addr, NF_UNLOCK_PI | (op & NF_PRIVATE), 0, NULL, NULL, 0);
        r = NF_RAISED;
    }
    self->busy--;
    return r;
}

PyObject *
Word_wait(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static nf_kwlist names = {{"expected", "timeout", "bitset", "private", NULL}, {NULL}};
    PyObject *a[4] = {NULL, NULL, NULL, NULL};
    uint32_t expected, bitset = NF_BITSET_ANY;
    int priv = self->private_flag;
    struct timespec deadline;
    int has_deadline = 0;
    LIVE(self);
    if (nargs == 1 && kwnames == NULL) { /* wait(expected): no more to parse */
        if (nf_u32_arg(args[0], "expected", &expected) < 0) {
            return NULL;
        }
    }
    else if (nf_parse("wait", args, nargs, kwnames, &names, 2, 1, a) < 0 ||
             nf_u32_arg(a[0], "expected", &expected) < 0 || nf_bitset(a[2], &bitset) < 0 ||
             nf_private(a[3], priv, &priv) < 0 ||
             nf_deadline(a[1], CLOCK_MONOTONIC, &deadline, &has_deadline) < 0) {
        return NULL;
    }
    STILL_LIVE(self, "wait");
    if (__atomic_load_n(self->addr, SC) != expected) {
        Py_RETURN_TRUE; /* what the kernel's EAGAIN would say, without the syscall */
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline: a retry after EINTR
     * keeps it.  With NF_BITSET_ANY it is exactly FUTEX_WAIT. */
    long r = sleep_on(self, NF_WAIT_BITSET | priv, expected, has_deadline ? &deadline : NULL,
                      bitset);
    if (r == 0 || r == -EAGAIN) {
        Py_RETURN_TRUE;
    }
    if (r == -ETIMEDOUT) {
        Py_RETURN_FALSE;
    }
    if (r == NF_RAISED) {
        return NULL;
    }
    return nf_oserror(r, "FUTEX_WAIT_BITSET");
}

PyObject *
Word_wake(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static nf_kwlist names = {{"n", "bitset", "private", NULL}, {NULL}};
    PyObject *a[3] = {NULL, NULL, NULL};
    int n, priv = self->private_flag, op = NF_WAKE;
    uint32_t bitset = NF_BITSET_ANY;
    LIVE(self);
    if (kwnames == NULL && nargs == 0) { /* wake(): one waiter, the Word's default */
        n = 1;
    }
    else if (kwnames == NULL && nargs == 1) {
        if (nf_count(args[0], "n", 1, &n) < 0) {
            return NULL;
        }
    }
    else if (nf_parse("wake", args, nargs, kwnames, &names, 1, 0, a) < 0 ||
             nf_count(a[0], "n", 1, &n) < 0 || nf_private(a[2], priv, &priv) < 0) {
        return NULL;
    }
    if (a[1] != NULL && a[1] != Py_None) {
        if (nf_bitset(a[1], &bitset) < 0) {
            return NULL;
        }
        op = NF_WAKE_BITSET;
    }
    STILL_LIVE(self, "wake");
    if (n == 0) {
        return PyLong_FromLong(0); /* FUTEX_WAKE with val 0 would wake one */
    }
    long r = nf_futex(self->addr, op | priv, (uint32_t)n, NULL, NULL, bitset);
    if (r < 0) {
        return nf_oserror(r, op == NF_WAKE ? "FUTEX_WAKE" : "FUTEX_WAKE_BITSET");
    }
    return PyLong_FromLong(r);
}

/* The other Word of requeue / cmp_requeue / wake_op: a live Word (checked again after
 * the conversions, with STILL_LIVE_OTHER). */
static WordObject *
other_word(PyObject *o, const char *fname)
{
    if (!Word_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s() needs a Word as the other word, not '%.200s'",
                     fname, Py_TYPE(o)->tp_name);
        return NULL;
    }
    WordObject *w = (WordObject *)o;
    if (w->addr == NULL) {
        PyErr_Format(PyExc_ValueError, "%s(): the other Word is released", fname);
        return NULL;
    }
    return w;
}

#define STILL_LIVE_OTHER(self, other, fname)                                                \
    do {                                                                                    \
        STILL_LIVE(self, fname);                                                            \
        if ((other)->addr == NULL) {                                                        \
            return nf_released_meanwhile((fname), 1);                                       \
        }                                                                                   \
    } while (0)

/* requeue(to, wake=1, requeue=ALL, *, private=None) and
 * cmp_requeue(to, expected, wake=1, requeue=ALL, *, private=None) */
static PyObject *
do_requeue(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
           int cmp)
{
    static nf_kwlist rq_names = {{"to", "wake", "requeue", "private", NULL}, {NULL}};
    static nf_kwlist crq_names = {{"to", "expected", "wake", "requeue", "private", NULL},
                                  {NULL}};
    const char *fname = cmp ? "cmp_requeue" : "requeue";
    PyObject *a[5] = {NULL, NULL, NULL, NULL, NULL};
    uint32_t expected = 0;
    int nwake, nrequeue, priv = self->private_flag;
    LIVE(self);
    if (nf_parse(fname, args, nargs, kwnames, cmp ? &crq_names : &rq_names, cmp ? 4 : 3,
                 cmp ? 2 : 1, a) < 0) {
        return NULL;
    }
    PyObject **rest = cmp ? a + 2 : a + 1;
    WordObject *to = other_word(a[0], fname);
    if (to == NULL || (cmp && nf_u32_arg(a[1], "expected", &expected) < 0) ||
        nf_count(rest[0], "wake", 1, &nwake) < 0 ||
        nf_count(rest[1], "requeue", NF_INT_MAX, &nrequeue) < 0 ||
        nf_private(rest[2], priv, &priv) < 0) {
        return NULL;
    }
    STILL_LIVE_OTHER(self, to, fname);
    /* The count to requeue travels in the timeout register (val2). */
    int op = (cmp ? NF_CMP_REQUEUE : NF_REQUEUE) | priv;
    long r = nf_futex(self->addr, op, (uint32_t)nwake, (const void *)(uintptr_t)nrequeue,
                      to->addr, expected);
    if (r < 0) {
        return nf_oserror(r, cmp ? "FUTEX_CMP_REQUEUE" : "FUTEX_REQUEUE");
    }
    return PyLong_FromLong(r);
}

PyObject *
Word_requeue(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return do_requeue(self, args, nargs, kwnames, 0);
}

PyObject *
Word_cmp_requeue(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return do_requeue(self, args, nargs, kwnames, 1);
}

static int
small_int(PyObject *o, const char *what, long lo, long hi, long *out)
{
    PyObject *i = PyIndex_Check(o) ? PyNumber_Index(o) : NULL;
    if (i == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError, "%s must be an int, not '%.200s'", what,
                         Py_TYPE(o)->tp_name);
        }
        return -1;
    }
    int overflow = 0;
    long v = PyLong_AsLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s must be in %ld..%ld", what, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

PyObject *
Word_wake_op(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static nf_kwlist names = {
        {"other", "op", "oparg", "cmp", "cmparg", "wake", "wake_other", "private", NULL}, {NULL}};
    PyObject *a[8];
    long op, oparg, cmp, cmparg;
    int nwake, nwake2, priv = self->private_flag;
    LIVE(self);
    if (nf_parse("wake_op", args, nargs, kwnames, &names, 5, 5, a) < 0) {
        return NULL;
    }
    WordObject *other = other_word(a[0], "wake_op");
    if (other == NULL || small_int(a[1], "op", 0, 15, &op) < 0 ||
        small_int(a[3], "cmp", 0, 5, &cmp) < 0 ||
        small_int(a[4], "cmparg", -2048, 2047, &cmparg) < 0 ||
        nf_count(a[5], "wake", 1, &nwake) < 0 || nf_count(a[6], "wake_other", 1, &nwake2) < 0 ||
        nf_private(a[7], priv, &priv) < 0) {
        return NULL;
    }
    if ((op & 7) > 4) {
        PyErr_SetString(PyExc_ValueError,
                        "op must be OP_SET, OP_ADD, OP_OR, OP_ANDN or OP_XOR, optionally "
                        "| OP_OPARG_SHIFT");
        return NULL;
    }
    if (op & 8 ? small_int(a[2], "oparg (a shift, with OP_OPARG_SHIFT)", 0, 31, &oparg) < 0
               : small_int(a[2], "oparg", -2048, 2047, &oparg) < 0) {
        return NULL;
    }
    STILL_LIVE_OTHER(self, other, "wake_op");
    uint32_t encoded = ((uint32_t)op << 28) | ((uint32_t)cmp << 24) |
                       (((uint32_t)oparg & 0xfff) << 12) | ((uint32_t)cmparg & 0xfff);
    long r = nf_futex(self->addr, NF_WAKE_OP | priv, (uint32_t)nwake,
                      (const void *)(uintptr_t)nwake2, other->addr, encoded);
    if (r < 0) {
        return nf_oserror(r, "FUTEX_WAKE_OP");
    }
    return PyLong_FromLong(r);
}

/* The lock's first step, without sleeping for it: 0 (locked), -EAGAIN (held: sleep for
 * it) or the -errno the whole call would fail with. */
static long
pi_try(WordObject *self, int cmd, int priv)
{
    if (cmd == NF_LOCK_PI) {
        /* FUTEX_TRYLOCK_PI is futex_lock_pi(trylock): LOCK_PI's own first step, errors
         * included; it cannot sleep, so the GIL stays. */
        return nf_futex(self->addr, NF_TRYLOCK_PI | priv, 0, NULL, NULL, 0);
    }
    /* LOCK_PI2 itself (so a kernel before 5.14 answers ENOSYS, as the call would), with a
     * deadline long past (the clock's zero): on a held lock it naps until the timer
     * fires, so through sleep_on. */
    static const struct timespec past = {0, 0};
    long r = sleep_on(self, cmd | priv, 0, &past, 0);
    return r == -ETIMEDOUT ? -EAGAIN : r;
}

/* lock_pi / lock_pi2 (timeout=None, *, private=None) */
static PyObject *
do_lock_pi(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
           int cmd)
{
    static nf_kwlist names = {{"timeout", "private", NULL}, {NULL}};
    const char *fname = cmd == NF_LOCK_PI ? "lock_pi" : "lock_pi2";
    const char *opname = cmd == NF_LOCK_PI ? "FUTEX_LOCK_PI" : "FUTEX_LOCK_PI2";
    PyObject *a[2];
    int priv = self->private_flag, has_deadline;
    struct timespec deadline;
    LIVE(self);
    if (nf_parse(fname, args, nargs, kwnames, &names, 1, 0, a) < 0 ||
        nf_private(a[1], priv, &priv) < 0) {
        return NULL;
    }
    /* FUTEX_LOCK_PI measures its absolute timeout on CLOCK_REALTIME, LOCK_PI2 on
     * CLOCK_MONOTONIC (futex_lock_pi; FLAGS_CLOCKRT is forced for LOCK_PI). */
    clockid_t clock = cmd == NF_LOCK_PI ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    if (nf_deadline(a[0], clock, &deadline, &has_deadline) < 0) {
        return NULL;
    }
    STILL_LIVE(self, fname);
    long r = pi_try(self, cmd, priv);
    if (r == -EAGAIN) {
        r = pi_sleep(self, cmd | priv, clock, has_deadline ? &deadline : NULL);
    }
    if (r == 0) {
        Py_RETURN_TRUE;
    }
    if (r == -ETIMEDOUT) {
        Py_RETURN_FALSE;
    }
    if (r == NF_RAISED) {
        return NULL;
    }
    return nf_oserror(r, opname);
}

PyObject *
Word_lock_pi(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return do_lock_pi(self, args, nargs, kwnames, NF_LOCK_PI);
}

PyObject *
Word_lock_pi2(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return do_lock_pi(self, args, nargs, kwnames, NF_LOCK_PI2);
}

static int
private_only(WordObject *self, const char *fname, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames, int *priv)
{
    static nf_kwlist names = {{"private", NULL}, {NULL}};
    PyObject *a[1];
    *priv = self->private_flag;
    if (nargs == 0 && kwnames == NULL) {
        return 0;
    }
    if (nf_parse(fname, args, nargs, kwnames, &names, 0, 0, a) < 0) {
        return -1;
    }
    return nf_private(a[0], *priv, priv);
}

PyObject *
Word_trylock_pi(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    int priv;
    LIVE(self);
    if (private_only(self, "trylock_pi", args, nargs, kwnames, &priv) < 0) {
        return NULL;
    }
    STILL_LIVE(self, "trylock_pi");
    long r = nf_futex(self->addr, NF_TRYLOCK_PI | priv, 0, NULL, NULL, 0);
    if (r == 0) {
        Py_RETURN_TRUE;
    }
    if (r == -EAGAIN) {
        Py_RETURN_FALSE;
    }
    return nf_oserror(r, "FUTEX_TRYLOCK_PI");
}

PyObject *
Word_unlock_pi(WordObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    int priv;
    LIVE(self);
    if (private_only(self, "unlock_pi", args, nargs, kwnames, &priv) < 0) {
        return NULL;
    }
    STILL_LIVE(self, "unlock_pi");
    long r = nf_futex(self->addr, NF_UNLOCK_PI | priv, 0, NULL, NULL, 0);
    if (r < 0) {
        return nf_oserror(r, "FUTEX_UNLOCK_PI");
    }
    Py_RETURN_NONE;
}
