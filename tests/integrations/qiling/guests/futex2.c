/* futex2: the futex2 syscalls futex_wake (454), futex_wait (455), futex_requeue (456),
 * Linux >= 6.7. futex_wait: mismatch EAGAIN, absolute CLOCK_MONOTONIC / CLOCK_REALTIME
 * deadline ETIMEDOUT after it, a value wider than 32 bits EINVAL, mask 0 EINVAL, other
 * clocks EINVAL; futex_wake: answers how many it woke, only waiters whose mask matches,
 * nr 0 wakes nobody (FLAGS_STRICT, unlike futex(2)'s FUTEX_WAKE), a waiter from futex(2)
 * on the same word is the same queue; futex_requeue: stale value EAGAIN, wakes nr_wake
 * and moves nr_requeue, answering the sum; unknown flags EINVAL. If futex_wait answers
 * ENOSYS the program prints "futex2: ENOSYS" and stops.
 * Pins: kernel/futex/syscalls.c sys_futex_wake / sys_futex_wait / sys_futex_requeue
 * (FLAGS_STRICT, futex_validate_input), Documentation/userspace-api/futex2.rst;
 * tools/testing/selftests/futex. */
#include "rawfutex.h"

#define NR_futex_wake 454
#define NR_futex_wait 455
#define NR_futex_requeue 456
#define F2_SIZE_U32 0x02
#define F2_PRIVATE 128
#define F2 (F2_SIZE_U32 | F2_PRIVATE)

struct fwv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

static long f2_wake(void *uaddr, unsigned long mask, int nr, unsigned flags)
{
    return syscall(NR_futex_wake, uaddr, mask, nr, flags);
}

static long f2_wait(void *uaddr, unsigned long val, unsigned long mask, unsigned flags,
                    const struct timespec *to, clockid_t clock)
{
    return syscall(NR_futex_wait, uaddr, val, mask, flags, to, clock);
}

static long f2_requeue(struct fwv *w, unsigned flags, int nr_wake, int nr_requeue)
{
    return syscall(NR_futex_requeue, w, flags, nr_wake, nr_requeue);
}

struct w2 {
    pthread_t thread;
    unsigned *uaddr;
    unsigned long mask;
    long result;
    int done;
};

static void *w2_main(void *arg)
{
    struct w2 *w = arg;
    long r = f2_wait(w->uaddr, 0, w->mask, F2, NULL, 0);
    w->result = r == -1 ? -errno : r;
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void start_w2(struct w2 *w, unsigned *uaddr, unsigned long mask)
{
    *w = (struct w2){ .uaddr = uaddr, .mask = mask, .result = 1 };
    CHECK_RC(pthread_create(&w->thread, NULL, w2_main, w), 0);
}

int main(void)
{
    static unsigned a, b;
    long r = f2_wait(&a, 1, FUTEX_BITSET_MATCH_ANY, F2, NULL, 0);
    int e = r == -1 ? errno : 0;
    if (e == ENOSYS) {
        printf("futex2: ENOSYS\n");
        return 0;
    }
    CHECK_RC(e, EAGAIN);
    struct timespec dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_ERRNO(f2_wait(&a, 0, FUTEX_BITSET_MATCH_ANY, F2, &dl, CLOCK_MONOTONIC), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_ERRNO(f2_wait(&a, 0, FUTEX_BITSET_MATCH_ANY, F2, &dl, CLOCK_REALTIME), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    CHECK_ERRNO(f2_wait(&a, 1ul << 32, FUTEX_BITSET_MATCH_ANY, F2, NULL, 0), EINVAL);
    CHECK_ERRNO(f2_wait(&a, 0, 0, F2, NULL, 0), EINVAL);
    CHECK_ERRNO(f2_wait(&a, 0, FUTEX_BITSET_MATCH_ANY, F2, &dl, CLOCK_BOOTTIME), EINVAL);
    CHECK_ERRNO(f2_wait(&a, 0, FUTEX_BITSET_MATCH_ANY, F2_PRIVATE, NULL, 0), EINVAL);
    CHECK_ERRNO(f2_wait(&a, 0, FUTEX_BITSET_MATCH_ANY, F2 | 0x1000, NULL, 0), EINVAL);
    CHECK_ERRNO(f2_wait((char *)&a + 2, 0, FUTEX_BITSET_MATCH_ANY, F2, NULL, 0), EINVAL);
    CHECK_ERRNO(f2_wait((void *)16, 0, FUTEX_BITSET_MATCH_ANY, F2, NULL, 0), EFAULT);
    printf("futex_wait: EAGAIN, ETIMEDOUT x2, bad val/mask/clock/flags/alignment EINVAL, "
           "EFAULT\n");

    CHECK_EQ(f2_wake(&a, FUTEX_BITSET_MATCH_ANY, 1, F2), 0);
    CHECK_ERRNO(f2_wake(&a, 0, 1, F2), EINVAL);
    CHECK_ERRNO(f2_wake(&a, FUTEX_BITSET_MATCH_ANY, 1, F2 | 0x1000), EINVAL);

    struct w2 w[3];
    start_w2(&w[0], &a, 0x1);
    start_w2(&w[1], &a, 0x2);
    start_w2(&w[2], &a, 0x2);
    wait_queued(&a, 3); /* futex(2) and futex2 share the queue */
    CHECK_EQ(f2_wake(&a, FUTEX_BITSET_MATCH_ANY, 0, F2), 0);
    CHECK_EQ(f2_wake(&a, 0x2, INT_MAX, F2), 2);
    while (!__atomic_load_n(&w[1].done, __ATOMIC_SEQ_CST) ||
           !__atomic_load_n(&w[2].done, __ATOMIC_SEQ_CST))
        sched_yield();
    CHECK_EQ(w[0].done, 0);
    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 1);
    for (int i = 0; i < 3; i++) {
        CHECK_RC(pthread_join(w[i].thread, NULL), 0);
        CHECK_EQ(w[i].result, 0);
    }
    printf("futex_wake: nr 0 wakes 0, mask 0x2 wakes 2, futex(2) WAKE the last\n");

    struct fwv rq[2] = {
        { .val = 1, .uaddr = (uintptr_t)&a, .flags = F2 },
        { .val = 0, .uaddr = (uintptr_t)&b, .flags = F2 },
    };
    CHECK_ERRNO(f2_requeue(rq, 0, 1, 1), EAGAIN);
    rq[0].val = 0;
    CHECK_ERRNO(f2_requeue(rq, 1, 1, 1), EINVAL);
    for (int i = 0; i < 3; i++)
        start_w2(&w[i], &a, FUTEX_BITSET_MATCH_ANY);
    wait_queued(&a, 3);
    CHECK_EQ(f2_requeue(rq, 0, 1, 1), 2);
    while (!(__atomic_load_n(&w[0].done, __ATOMIC_SEQ_CST) +
             __atomic_load_n(&w[1].done, __ATOMIC_SEQ_CST) +
             __atomic_load_n(&w[2].done, __ATOMIC_SEQ_CST)))
        sched_yield();
    wait_queued(&a, 1);
    wait_queued(&b, 1);
    CHECK_EQ(f2_wake(&a, FUTEX_BITSET_MATCH_ANY, INT_MAX, F2), 1);
    CHECK_EQ(f2_wake(&b, FUTEX_BITSET_MATCH_ANY, INT_MAX, F2), 1);
    for (int i = 0; i < 3; i++) {
        CHECK_RC(pthread_join(w[i].thread, NULL), 0);
        CHECK_EQ(w[i].result, 0);
    }
    printf("futex_requeue: stale EAGAIN, flags EINVAL, woke 1 moved 1 answered 2\n");
    return 0;
}
