/* Raw futex(2) helpers of the Qiling guest corpus: the syscall itself, a waiter thread,
 * and queued(), the count of tasks asleep on a futex word.
 *
 * queued() moves every waiter of `uaddr` to a scratch word and back with
 * FUTEX_CMP_REQUEUE (nr_wake 0): both calls answer how many they moved, which is how many
 * tasks are asleep there (futex(2): CMP_REQUEUE "returns the total number of waiters that
 * were woken up or requeued"). Waiters keep their bitset across a requeue. A guest that
 * must act "once N threads sleep on W" polls wait_queued(W, N) -- no sleep-and-hope --
 * and checks a count the same way (a woken thread may still be on its way out).
 * Under stock Qiling CMP_REQUEUE answers 0 doing nothing: these guests poll for good
 * there (the stock column's "hang"). */
#ifndef FUTEX_CORPUS_RAWFUTEX_H
#define FUTEX_CORPUS_RAWFUTEX_H

#include "check.h"
#include <linux/futex.h>
#include <pthread.h>

static inline long futex(void *uaddr, int op, unsigned val, const void *timeout_or_val2,
                         void *uaddr2, unsigned val3)
{
    return syscall(SYS_futex, uaddr, op, val, timeout_or_val2, uaddr2, val3);
}

/* A count passed in the timeout slot (nr_requeue / nr_wake2). */
#define VAL2(n) ((const void *)(uintptr_t)(n))

static unsigned scratch_word;

static inline int queued_(unsigned *uaddr, int priv)
{
    int flag = priv ? FUTEX_PRIVATE_FLAG : 0;
    for (;;) {
        long n = futex(uaddr, FUTEX_CMP_REQUEUE | flag, 0, VAL2(INT_MAX), &scratch_word,
                       __atomic_load_n(uaddr, __ATOMIC_SEQ_CST));
        CHECK(n >= 0);
        long back = futex(&scratch_word, FUTEX_CMP_REQUEUE | flag, 0, VAL2(INT_MAX), uaddr,
                          __atomic_load_n(&scratch_word, __ATOMIC_SEQ_CST));
        CHECK(back >= 0 && back <= n);
        if (back == n)
            return (int)n;
        /* a waiter moved to the scratch word went back to its own by itself: the kernel's
         * futex_wait retries on its original word after a spurious wake-up (seen on a
         * loaded host). Count again once things are still. */
        sched_yield();
    }
}

static inline int queued(unsigned *uaddr) { return queued_(uaddr, 1); }

/* Poll until exactly n tasks sleep on uaddr (more is a failure). */
static inline void wait_queued_(unsigned *uaddr, int n, int priv)
{
    int q;
    while ((q = queued_(uaddr, priv)) < n)
        sched_yield();
    CHECK_EQ(q, n);
}

static inline void wait_queued(unsigned *uaddr, int n) { wait_queued_(uaddr, n, 1); }

/* A thread that makes one futex wait call and records its answer. */
struct waiter {
    pthread_t thread;
    unsigned *uaddr;
    int op;
    unsigned val;
    unsigned bitset;
    long result; /* 0, or -errno */
    int done;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    long r = futex(w->uaddr, w->op, w->val, NULL, NULL, w->bitset);
    w->result = r == -1 ? -errno : r;
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static inline void start_waiter(struct waiter *w, unsigned *uaddr, int op, unsigned val,
                                unsigned bitset)
{
    w->uaddr = uaddr;
    w->op = op;
    w->val = val;
    w->bitset = bitset;
    w->result = 1;
    w->done = 0;
    CHECK_RC(pthread_create(&w->thread, NULL, waiter_main, w), 0);
}

static inline int count_done(struct waiter *w, int n)
{
    int d = 0;
    for (int i = 0; i < n; i++)
        d += __atomic_load_n(&w[i].done, __ATOMIC_SEQ_CST);
    return d;
}

static inline void wait_done(struct waiter *w, int n, int want)
{
    while (count_done(w, n) < want)
        sched_yield();
}

static inline void join_waiters(struct waiter *w, int n, long want)
{
    for (int i = 0; i < n; i++) {
        CHECK_RC(pthread_join(w[i].thread, NULL), 0);
        CHECK_EQ(w[i].result, want);
    }
}

#endif
