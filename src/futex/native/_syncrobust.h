/* futex.native._native — the calling thread's robust-list owner context, part of
 * _synclock.c (included by it alone: LockCore's fast path inlines all of this).
 *
 * The TID is cached in initial-exec TLS (the default TLS model costs a __tls_get_addr
 * call per access); so is the thread's robust-list head, glibc's own: get_robust_list(0),
 * validated (length 24, futex_offset -32), else there is no glibc head to join and the
 * mode is "pid-liveness" (so too when the call fails: ENOSYS, or EPERM from seccomp).
 * set_robust_list is never called: the kernel keeps one head per thread, and glibc's
 * robust mutexes need theirs.  A fork child has a new TID and (glibc's _Fork) an emptied
 * list: a pthread_atfork child handler forgets every cached value, so nothing on the fast
 * path makes a syscall.
 *
 * List protocol: glibc's nptl/descr.h (ENQUEUE_MUTEX_BOTH / DEQUEUE_MUTEX), with compiler
 * barriers, since the kernel may walk the list at any instruction if the thread dies.
 * An entry is a node's `next` field (node+32; futex_offset -32 leads back to the word);
 * its `prev` sits 8 bytes before it, as glibc's robust_prev sits before the head, so the
 * head acts as an entry too.  Bit 0 of a pointer marks a PI entry (glibc's).
 */
#ifndef FUTEX_SYNCROBUST_H
#define FUTEX_SYNCROBUST_H

#include "_native.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

/* The robust TID word (Linux uapi futex.h) */
#define LK_W 0x80000000u       /* FUTEX_WAITERS */
#define LK_OD 0x40000000u      /* FUTEX_OWNER_DIED */
#define LK_TID_MASK 0x3fffffffu
/* node fields, offsets from the lock word (node+0) */
#define LK_COUNT 4
#define LK_STATE 8
#define LK_PREV 24
#define LK_NEXT 32
#define LK_SPIN 40
/* node+16 (the pid-liveness start time, unused in robust-list mode): while the node is
 * linked, a pointer to the object whose reference the link holds (process-local, read
 * only by the owner thread that unlinks it) */
#define LK_KEEP 16
/* glibc's struct robust_list_head: list +0, futex_offset +8, list_op_pending +16 */
#define LK_HEAD_LEN 24
#define LK_FUTEX_OFFSET (-32)
#define LK_PENDING 16

#define LK_TLS __thread __attribute__((tls_model("initial-exec")))
static LK_TLS uint32_t t_tid;   /* 0: not cached yet */
static LK_TLS uintptr_t t_head; /* this thread's glibc head; 0: not probed, 1: none */
static pid_t g_pid;             /* 0: not cached yet */
static int g_mode;              /* 0: not probed, 1: robust-list, 2: pid-liveness */
static int g_spin;              /* 0: not probed, 1: may spin, 2: one CPU, no spin */

#define RELAXED __ATOMIC_RELAXED
#define LK_BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#define LK_UNTAG(a) ((a) & ~(uintptr_t)1)
#define LK_SET(at, v) __atomic_store_n((uintptr_t *)(at), (uintptr_t)(v), RELAXED)
#define LK_GET(at) __atomic_load_n((uintptr_t *)(at), RELAXED)

/* While a node is linked, the list holds a reference to an object (a lock object, which
 * holds the buffer export) so that the memory under the node stays mapped whatever
 * objects the program drops.  The pointer sits in the node itself, so whichever object
 * attached to the same memory releases the lock drops the reference the link took.  A
 * thread that dies holding the lock leaks it (the memory stays mapped): harmless. */
static inline void
lk_keep(uintptr_t node, PyObject *o)
{
    Py_INCREF(o);
    LK_SET(node + LK_KEEP, o);
}

/* The reference lk_keep took (NULL if none); the caller drops it once done with the node. */
static inline PyObject *
lk_kept(uintptr_t node)
{
    PyObject *o = (PyObject *)LK_GET(node + LK_KEEP);
    LK_SET(node + LK_KEEP, 0);
    return o;
}

static void
lk_after_fork_child(void)
{
    t_tid = 0;
    t_head = 0;
    __atomic_store_n(&g_pid, 0, RELAXED);
    __atomic_store_n(&g_mode, 0, RELAXED);
    __atomic_store_n(&g_spin, 0, RELAXED);
}

/* glibc's robust-list head of the calling thread, or 1 if it has none we can join. */
static uintptr_t
lk_probe_head(void)
{
#ifdef SYS_get_robust_list
    void *head = NULL;
    size_t len = 0;
    if (sizeof(void *) != 8 || syscall(SYS_get_robust_list, 0, &head, &len) != 0 ||
        head == NULL || len != LK_HEAD_LEN) {
        return 1;
    }
    int64_t off;
    memcpy(&off, (char *)head + 8, sizeof off);
    return off == LK_FUTEX_OFFSET ? (uintptr_t)head : 1;
#else
    return 1;
#endif
}

static uint32_t
lk_tid(void)
{
    if (t_tid == 0) {
        t_tid = (uint32_t)syscall(SYS_gettid);
    }
    return t_tid;
}

static int
lk_ctx_slow(uint32_t *tid, uintptr_t *head)
{
    *tid = lk_tid();
    if (t_head == 0) {
        t_head = lk_probe_head();
    }
    if (t_head == 1) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this thread has no glibc robust list to join (robust_mode() is "
                        "'pid-liveness')");
        return -1;
    }
    *head = t_head;
    return 0;
}

/* The calling thread's TID and robust head; -1 with RuntimeError if it has no head. */
static inline int
lk_ctx(uint32_t *tid, uintptr_t *head)
{
    uint32_t t = t_tid;
    uintptr_t h = t_head;
    if (__builtin_expect(t != 0 && h > 1, 1)) {
        *tid = t;
        *head = h;
        return 0;
    }
    return lk_ctx_slow(tid, head);
}

/* 1: robust-list, 2: pid-liveness (probed in the first thread that asks). */
static int
lk_mode(void)
{
    int m = __atomic_load_n(&g_mode, RELAXED);
    if (m == 0) {
        if (t_head == 0) {
            t_head = lk_probe_head();
        }
        m = t_head > 1 ? 1 : 2;
        __atomic_store_n(&g_mode, m, RELAXED);
    }
    return m;
}

/* Whether this thread runs Python's signal handlers: the process's first thread. */
static int
lk_main_thread(uint32_t tid)
{
    pid_t p = __atomic_load_n(&g_pid, RELAXED);
    if (p == 0) {
        p = getpid();
        __atomic_store_n(&g_pid, p, RELAXED);
    }
    return (pid_t)tid == p;
}

/* Whether a spin can help: the process may run on more than one CPU. */
static int
lk_may_spin(void)
{
    int s = __atomic_load_n(&g_spin, RELAXED);
    if (s == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        s = sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1 ? 2 : 1;
        __atomic_store_n(&g_spin, s, RELAXED);
    }
    return s == 1;
}

/* list_op_pending <- entry (0 clears), ordered against the word's change by barriers. */
static inline void
lk_pending(uintptr_t head, uintptr_t entry)
{
    LK_BARRIER();
    LK_SET(head + LK_PENDING, entry);
    LK_BARRIER();
}

/* Put node (its word's address) first on the list: ENQUEUE_MUTEX_BOTH's order. */
static inline void
lk_link(uintptr_t head, uintptr_t node)
{
    uintptr_t entry = node + LK_NEXT, first = LK_GET(head);
    LK_SET(LK_UNTAG(first) - 8, entry); /* the first entry's (or the head's) prev */
    LK_SET(entry, first);
    LK_SET(entry - 8, head);
    LK_BARRIER(); /* the entry is complete before the kernel can reach it */
    LK_SET(head, entry);
}

/* Take node off its list: DEQUEUE_MUTEX's order.  A node on no list is left alone. */
static inline void
lk_unlink(uintptr_t node)
{
    uintptr_t entry = node + LK_NEXT, next = LK_GET(entry), prev = LK_GET(entry - 8);
    if (next == 0 || prev == 0) {
        return;
    }
    LK_SET(LK_UNTAG(next) - 8, prev);
    LK_SET(LK_UNTAG(prev), next);
    LK_BARRIER();
    LK_SET(entry - 8, 0);
    LK_SET(entry, 0);
}

/* -- module functions ------------------------------------------------------------------- */

PyDoc_STRVAR(sync_tid_doc,
"sync_tid($module, /)\n--\n\n"
"The calling thread's TID (cached per thread, refreshed in a fork child).");

static PyObject *
lk_sync_tid(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLong(lk_tid());
}

PyDoc_STRVAR(robust_mode_doc,
"robust_mode($module, /)\n--\n\n"
"'robust-list' when lock nodes can join glibc's per-thread robust list (the kernel\n"
"marks a dead owner's words OWNER_DIED and wakes a waiter), else 'pid-liveness'.\n"
"Probed once per process (again in a fork child).");

static PyObject *
lk_robust_mode(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(lk_mode() == 1 ? "robust-list" : "pid-liveness");
}

/* robust_link (op 0), robust_unlink (1), robust_pending (2) of the node at arg.
 * keep (link; may be NULL): the object whose reference the list holds while the node
 * is linked (lk_keep); unlink drops whatever reference the node holds. */
static PyObject *
lk_robust_op(PyObject *arg, PyObject *keep, const char *fname, int op)
{
    uint32_t tid;
    uintptr_t head;
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s() needs an int address, not '%.200s'", fname,
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    unsigned long long a = PyLong_AsUnsignedLongLong(arg);
    if (a == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL; /* OverflowError: negative or above 2**64 */
    }
    if ((a == 0 && op != 2) || (a & 7) || a > UINTPTR_MAX - 64) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): the node address must be a nonzero multiple of 8, not %#llx",
                     fname, a);
        return NULL;
    }
    if (lk_ctx(&tid, &head) < 0) {
        return NULL;
    }
    uintptr_t node = (uintptr_t)a;
    if (op == 0) {
        lk_link(head, node);
        if (keep != NULL) {
            lk_keep(node, keep);
        }
    }
    else if (op == 1) {
        if (LK_GET(node + LK_NEXT) == 0 || LK_GET(node + LK_PREV) == 0) {
            PyErr_Format(PyExc_ValueError, "robust_unlink(): the node at %#llx is on no list", a);
            return NULL;
        }
        lk_unlink(node);
        Py_XDECREF(lk_kept(node));
    }
    else {
        lk_pending(head, node == 0 ? 0 : node + LK_NEXT);
    }
    Py_RETURN_NONE;
}

/* robust_link(node_addr, keep=None) / robust_unlink(node_addr, keep=None) */
#define LK_ROBUST_KEEP_FN(name, op, doc)                                                    \
    PyDoc_STRVAR(name##_doc, #name "($module, node_addr, keep=None, /)\n--\n\n" doc);       \
    static PyObject *lk_##name(PyObject *Py_UNUSED(module), PyObject *const *args,          \
                               Py_ssize_t nargs)                                            \
    {                                                                                       \
        if (nargs < 1 || nargs > 2) {                                                       \
            PyErr_Format(PyExc_TypeError, #name "() takes 1 or 2 arguments (%zd given)",     \
                         nargs);                                                            \
            return NULL;                                                                    \
        }                                                                                   \
        PyObject *keep = nargs == 2 && args[1] != Py_None ? args[1] : NULL;                 \
        return lk_robust_op(args[0], keep, #name, op);                                      \
    }

LK_ROBUST_KEEP_FN(robust_link, 0,
                  "Put the lock node whose word is at node_addr first on the calling\n"
                  "thread's robust list (glibc's order); the list holds a reference to\n"
                  "keep (the lock object) while linked (node+16 points at it).  RuntimeError\n"
                  "in pid-liveness mode.")
LK_ROBUST_KEEP_FN(robust_unlink, 1,
                  "Take the node whose word is at node_addr off the calling thread's robust\n"
                  "list, dropping the reference its link took (keep is ignored).")

PyDoc_STRVAR(robust_pending_doc, "robust_pending($module, node_addr, /)\n--\n\n"
             "Set the calling thread's list_op_pending to the node whose word is at\n"
             "node_addr (0 clears it).");

static PyObject *
lk_robust_pending(PyObject *Py_UNUSED(module), PyObject *arg)
{
    return lk_robust_op(arg, NULL, "robust_pending", 2);
}

static PyMethodDef lk_robust_functions[] = {
    {"sync_tid", lk_sync_tid, METH_NOARGS, sync_tid_doc},
    {"robust_mode", lk_robust_mode, METH_NOARGS, robust_mode_doc},
    {"robust_link", (PyCFunction)(void (*)(void))lk_robust_link, METH_FASTCALL,
     robust_link_doc},
    {"robust_unlink", (PyCFunction)(void (*)(void))lk_robust_unlink, METH_FASTCALL,
     robust_unlink_doc},
    {"robust_pending", lk_robust_pending, METH_O, robust_pending_doc},
    {NULL, NULL, 0, NULL},
};

#endif
