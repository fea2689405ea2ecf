/* futex.native._native — shared declarations of the C extension.
 *
 * The extension is three translation units:
 *   _native.c     the module: raw entries (syscall_futex, syscall6), gettid, waitv,
 *                 argument parsing, errors, deadlines;
 *   _word.c       the Word type: a 32-bit futex word inside a buffer it holds
 *                 exported; its lifetime, atomics and attributes;
 *   _wordcalls.c  the Word's futex calls.
 *
 * Blocking rule (the one invariant every call keeps): the GIL is released only around
 * a syscall that can sleep (FUTEX_WAIT*, FUTEX_LOCK_PI*, futex_waitv); calls that cannot
 * sleep (wake, requeue, wake_op, unlock/trylock PI, atomics) keep it, so a program with
 * other Python threads never queues for the GIL after a call that did not block.
 * A sleep in a process that has never had a second thread (glibc's
 * __libc_single_threaded) keeps the GIL too: no thread exists that could take it, and
 * none can be started while the only one sleeps.  Handing the GIL over costs four
 * mutex operations and two condition signals per wait.  Signals need no GIL (EINTR
 * wakes the sleeper, which then runs the handlers); glibc never sets the flag back to
 * true, not even in a fork child, so it can only err towards releasing.
 * A Word's memory stays mapped while a blocking call uses it: the call holds a
 * reference to the Word and bumps Word.busy, and Word.release() refuses while busy.
 *
 * Arguments first, memory second (the other invariant): converting an argument can run
 * Python code (__index__, __float__, __bool__, a waitv iterable) that releases the Word
 * and then closes, resizes or frees its memory.  So every method converts all of its
 * arguments, then checks that the Word (and any other Word it uses) is still live
 * (STILL_LIVE), and only then reads self->addr; nothing between that check and the
 * memory access runs Python code, and from there a blocking call is covered by busy.
 *
 * Timeouts become absolute deadlines once, before the first syscall; a wait that a
 * signal interrupts (EINTR) runs the Python signal handlers and, if none raised,
 * goes back to sleep with the same deadline.
 *
 * FUTEX_LOCK_PI and FUTEX_LOCK_PI2 never fail with EINTR: the kernel restarts them
 * after a signal handler (-ERESTARTNOINTR), so the C-level handler Python installs runs
 * but the Python one never gets its turn.  In the thread that runs Python's handlers
 * (the main thread, taken to be the process's first thread: tid == pid, also in a fork
 * child), lock_pi and lock_pi2 therefore sleep in slices of at most NF_PI_SLICE_NS,
 * each an absolute deadline min(the call's deadline, now + slice) on the call's clock;
 * a slice that ends (ETIMEDOUT before the call's deadline) counts as EINTR: the
 * handlers run, and an exception they raise ends the call, else it locks again with
 * the same deadline.  The kernel never loses a grant to a timeout: a waiter that is
 * given the lock as its slice expires returns 0 (futex_lock_pi's fixup_pi_owner).
 * After a grant the handlers run once more; if one raises, FUTEX_UNLOCK_PI hands the
 * lock on and the call ends with the exception, so that a Ctrl-C that raced the grant
 * does not leave the caller holding a lock it was never told about (only a signal
 * after that last check still lands after the return, as with threading.Lock).  A
 * signal that landed on another thread (whose C handler only records it) is run too,
 * at the next slice's end.  Between two slices the thread is briefly off the lock's
 * wait list (an unlock meanwhile leaves the word 0, and the next slice takes it); a
 * step of CLOCK_REALTIME backwards lengthens that LOCK_PI slice by the step.  Other
 * threads, where Python runs no handlers, sleep unsliced.  Both first take a free lock
 * without sleeping, exactly as the call would (FUTEX_TRYLOCK_PI for LOCK_PI; LOCK_PI2
 * itself with a deadline long past, so that a kernel without it still says ENOSYS), so
 * an uncontended lock costs one syscall and no slicing.
 */
#ifndef FUTEX_NATIVE_H
#define FUTEX_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Kernel ABI values, spelled out so that old uapi headers still build. */
#define NF_WAIT 0
#define NF_WAKE 1
#define NF_REQUEUE 3
#define NF_CMP_REQUEUE 4
#define NF_WAKE_OP 5
#define NF_LOCK_PI 6
#define NF_UNLOCK_PI 7
#define NF_TRYLOCK_PI 8
#define NF_WAIT_BITSET 9
#define NF_WAKE_BITSET 10
#define NF_WAIT_REQUEUE_PI 11
#define NF_LOCK_PI2 13
#define NF_PRIVATE 128
#define NF_CLOCK_REALTIME 256
#define NF_CMD_MASK 127
#define NF_BITSET_ANY 0xffffffffu
#define NF_INT_MAX 0x7fffffff
#define NF_WAITV_MAX 128
#define NF_FUTEX2_SIZE_U32 0x02

#define NF_SYS_futex_waitv 449
#define NF_SYS_futex_wake 454
#define NF_SYS_futex_wait 455
#define NF_SYS_futex_requeue 456

/* struct futex_waitv of <linux/futex.h> (5.16). */
typedef struct {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
} nf_waitv;

typedef struct {
    PyObject_HEAD
    uint32_t *addr;       /* the word; NULL once released */
    Py_buffer view;       /* the export that keeps the memory mapped (view.obj) */
    PyObject *source;     /* what the caller passed (e.g. a SharedMemory); may be view.obj */
    Py_ssize_t offset;    /* byte offset of the word in the buffer */
    Py_ssize_t busy;      /* blocking calls in flight (GIL released) using addr */
    int private_flag;     /* default: 0 (shared) or NF_PRIVATE */
    PyObject *weakrefs;
} WordObject;

extern PyTypeObject NativeWord_Type;
#define Word_Check(op) PyObject_TypeCheck((op), &NativeWord_Type)

/* -- _word.c and _wordcalls.c: the Word ------------------------------------------- */

#define SC __ATOMIC_SEQ_CST
#define NF_RAISED (-100000L) /* a signal handler raised: the exception is set */
#define NF_PI_SLICE_NS 20000000L /* 20 ms: longest lock_pi sleep between signal checks */

/* ValueError("operation on a released Word"); returns NULL. */
PyObject *nf_released(void);
#define LIVE(self)                                                                          \
    do {                                                                                    \
        if ((self)->addr == NULL) {                                                         \
            return nf_released();                                                           \
        }                                                                                   \
    } while (0)

/* ValueError: fname()'s Word ("the other Word" when other) was released by Python code
 * that converting the arguments ran; returns NULL. */
PyObject *nf_released_meanwhile(const char *fname, int other);
/* After the last argument conversion, before the first use of self->addr. */
#define STILL_LIVE(self, fname)                                                             \
    do {                                                                                    \
        if ((self)->addr == NULL) {                                                         \
            return nf_released_meanwhile((fname), 0);                                       \
        }                                                                                   \
    } while (0)

#define NF_CALL(name)                                                                       \
    PyObject *name(WordObject *self, PyObject *const *args, Py_ssize_t nargs,              \
                   PyObject *kwnames)
NF_CALL(Word_wait);
NF_CALL(Word_wake);
NF_CALL(Word_requeue);
NF_CALL(Word_cmp_requeue);
NF_CALL(Word_wake_op);
NF_CALL(Word_lock_pi);
NF_CALL(Word_lock_pi2);
NF_CALL(Word_trylock_pi);
NF_CALL(Word_unlock_pi);

/* -- _synclock.c and _syncsem.c: futex.sync's native cores ---------------------- */

/* Add LockCore (and the robust-list owner functions) / SemCore and EventCore to the
 * module; 0 on success, -1 with an exception. */
int nf_sync_lock_init(PyObject *module);
int nf_sync_sem_init(PyObject *module);

/* -- _native.c: helpers shared with _word.c --------------------------------------- */

/* Positional-or-keyword argument parsing for METH_FASTCALL | METH_KEYWORDS.
 * kw->names: NULL-terminated; the first npos may be given positionally, the first
 * nreq are required; out[i] is NULL when not given. Returns -1 with an exception.
 * kw->interned is filled on first use (a static nf_kwlist per method). */
#define NF_MAXARGS 8
typedef struct {
    const char *names[NF_MAXARGS + 1];
    PyObject *interned[NF_MAXARGS];
} nf_kwlist;
int nf_parse(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
             nf_kwlist *kw, int npos, int nreq, PyObject **out);

/* A u32 argument: an int in [-2**31, 2**32), negative values wrapping. */
int nf_u32(PyObject *o, const char *what, uint32_t *out);

/* nf_u32 with the common case inline: an exact int of one digit (|v| < 2**30) is read
 * straight from the object; anything else goes through nf_u32. */
static inline int
nf_u32_arg(PyObject *o, const char *what, uint32_t *out)
{
    if (PyLong_CheckExact(o)) {
#if PY_VERSION_HEX >= 0x030C0000
        if (PyUnstable_Long_IsCompact((PyLongObject *)o)) {
            *out = (uint32_t)PyUnstable_Long_CompactValue((PyLongObject *)o);
            return 0;
        }
#else
        Py_ssize_t size = Py_SIZE(o);
        if (size >= -1 && size <= 1) {
            *out = (uint32_t)((long)size * (long)((PyLongObject *)o)->ob_digit[0]);
            return 0;
        }
#endif
    }
    return nf_u32(o, what, out);
}

/* A word's value as a Python int (uint32 fits a long: PyLong_FromLong's fast path). */
#define NF_U32_OBJ(v) PyLong_FromLong((long)(uint32_t)(v))
/* A count (of waiters): an int >= 0, clamped to INT_MAX. */
int nf_count(PyObject *o, const char *what, int dflt, int *out);
/* A bitset: None (match any) or an int in [1, 2**32). */
int nf_bitset(PyObject *o, uint32_t *out);
/* The private argument: None (the default dflt), or a bool. */
int nf_private(PyObject *o, int dflt, int *out);

/* A timeout in seconds (None or inf: forever) turned into an absolute deadline on
 * clock; *has is 0 for "no deadline". */
int nf_deadline(PyObject *timeout, clockid_t clock, struct timespec *ts, int *has);

/* NF_SLEEP(stmt): run stmt, a syscall that may sleep, with the GIL released unless the
 * process is single-threaded (the blocking rule above). */
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define NF_ALONE() (__libc_single_threaded != 0)
#endif
#endif
#ifndef NF_ALONE
#define NF_ALONE() 0
#endif
#define NF_SLEEP(stmt)                                                                      \
    do {                                                                                    \
        if (NF_ALONE()) {                                                                   \
            stmt;                                                                           \
        }                                                                                   \
        else {                                                                              \
            Py_BEGIN_ALLOW_THREADS stmt;                                                    \
            Py_END_ALLOW_THREADS                                                            \
        }                                                                                   \
    } while (0)

/* futex(2); returns >= 0 or -errno.  The caller handles the GIL (NF_SLEEP). */
static inline long
nf_futex(uint32_t *uaddr, int op, uint32_t val, const void *utime, uint32_t *uaddr2,
         uint32_t val3)
{
    long r = syscall(SYS_futex, uaddr, op, val, utime, uaddr2, val3);
    return r < 0 ? -errno : r;
}

/* Raise OSError (the errno subclass) for -ret, naming the call. Returns NULL. */
PyObject *nf_oserror(long neg_errno, const char *call);

#endif
