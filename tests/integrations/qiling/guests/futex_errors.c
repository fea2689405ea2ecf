/* futex_errors: futex(2)'s answers to a single thread, no wake-up ever coming:
 * value mismatch EAGAIN (private and shared); relative FUTEX_WAIT timeout ETIMEDOUT after
 * at least the timeout on CLOCK_MONOTONIC; absolute FUTEX_WAIT_BITSET on CLOCK_MONOTONIC
 * and with FUTEX_CLOCK_REALTIME ETIMEDOUT once the deadline passed; zero and past
 * timeouts ETIMEDOUT at once; invalid timespecs EINVAL; bitset 0 EINVAL; a misaligned
 * word EINVAL; an unmapped word or timeout EFAULT (a private FUTEX_WAKE never touches the
 * word: 0); unknown commands, FUTEX_FD and FUTEX_CLOCK_REALTIME on FUTEX_WAKE ENOSYS;
 * FUTEX_WAKE without waiters 0; CMP_REQUEUE with a wrong val3 EAGAIN and a negative count
 * EINVAL.
 * Pins: futex(2) ERRORS; kernel/futex/syscalls.c do_futex / futex_init_timeout,
 * kernel/futex/core.c get_futex_key (alignment, EFAULT), LTP futex_wait02/03/05,
 * futex_wake01 (invalid arguments), futex_cmp_requeue02. */
#include "rawfutex.h"

#define BAD ((unsigned *)16) /* the zero page: never mapped */

int main(void)
{
    static unsigned w;
    __attribute__((aligned(8))) static unsigned char bytes[8];
    unsigned *misaligned = (unsigned *)(bytes + 1);

    CHECK_ERRNO(futex(&w, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0), EAGAIN);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT, 1, NULL, NULL, 0), EAGAIN);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 1, NULL, NULL, 0x1), EAGAIN);
    printf("value mismatch: EAGAIN\n");

    struct timespec rel = { 0, 30 * MS };
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0), ETIMEDOUT);
    EXPECT_ELAPSED(CLOCK_MONOTONIC, t0, 30 * MS);
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT, 0, &rel, NULL, 0), ETIMEDOUT);
    EXPECT_ELAPSED(CLOCK_MONOTONIC, t0, 30 * MS);
    struct timespec dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &dl, NULL, FUTEX_BITSET_MATCH_ANY),
                ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &dl, NULL,
                      FUTEX_BITSET_MATCH_ANY),
                ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    printf("timeouts: relative, absolute monotonic, absolute realtime: ETIMEDOUT\n");

    struct timespec zero = { 0, 0 };
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_PRIVATE, 0, &zero, NULL, 0), ETIMEDOUT);
    struct timespec past = ns_ts(now_ns(CLOCK_MONOTONIC) - SEC);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &past, NULL, FUTEX_BITSET_MATCH_ANY),
                ETIMEDOUT);
    struct timespec big_nsec = { 0, 1000000000 }, neg_nsec = { 0, -1 }, neg_sec = { -1, 0 };
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_PRIVATE, 0, &big_nsec, NULL, 0), EINVAL);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_PRIVATE, 0, &neg_nsec, NULL, 0), EINVAL);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_PRIVATE, 0, &neg_sec, NULL, 0), EINVAL);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &big_nsec, NULL, 1), EINVAL);
    /* the timespec is checked before the word: EINVAL even on a mismatch */
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_PRIVATE, 1, &big_nsec, NULL, 0), EINVAL);
    printf("zero/past timeout: ETIMEDOUT; bad timespec: EINVAL\n");

    CHECK_ERRNO(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0), EINVAL);
    CHECK_ERRNO(futex(&w, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0), EINVAL);
    printf("bitset 0: EINVAL\n");

    CHECK_ERRNO(futex(misaligned, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EINVAL);
    CHECK_ERRNO(futex(misaligned, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), EINVAL);
    CHECK_ERRNO(futex(misaligned, FUTEX_WAKE, 1, NULL, NULL, 0), EINVAL);
    printf("misaligned: EINVAL\n");

    CHECK_ERRNO(futex(BAD, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EFAULT);
    CHECK_ERRNO(futex(BAD, FUTEX_WAIT, 0, NULL, NULL, 0), EFAULT);
    CHECK_ERRNO(futex(&w, FUTEX_WAIT_PRIVATE, 0, (const void *)16, NULL, 0), EFAULT);
    CHECK_ERRNO(futex(BAD, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 0);
    CHECK_ERRNO(futex(BAD, FUTEX_WAKE, 1, NULL, NULL, 0), EFAULT);
    printf("unmapped: EFAULT (private WAKE: 0)\n");

    CHECK_ERRNO(futex(&w, 15, 0, NULL, NULL, 0), ENOSYS);
    CHECK_ERRNO(futex(&w, 15 | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0), ENOSYS);
    CHECK_ERRNO(futex(&w, 2 /* FUTEX_FD, removed in 2.6.26 */, 0, NULL, NULL, 0), ENOSYS);
    CHECK_ERRNO(futex(&w, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0), ENOSYS);
    CHECK_ERRNO(futex(&w, FUTEX_REQUEUE | FUTEX_CLOCK_REALTIME, 1, VAL2(1), &w, 0), ENOSYS);
    printf("unknown command, FUTEX_FD, CLOCK_REALTIME on WAKE/REQUEUE: ENOSYS\n");

    static unsigned other;
    CHECK_ERRNO(futex(&w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 0);
    CHECK_EQ(futex(&w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 0);
    CHECK_EQ(futex(&w, FUTEX_WAKE_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_ERRNO(futex(&w, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(1), &other, 1), EAGAIN);
    CHECK_EQ(futex(&w, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(1), &other, 0), 0);
    CHECK_ERRNO(futex(&w, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(-1), &other, 0), EINVAL);
    CHECK_ERRNO(futex(&w, FUTEX_CMP_REQUEUE_PRIVATE, -1, VAL2(1), &other, 0), EINVAL);
    CHECK_ERRNO(futex(&w, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(1), misaligned, 0), EINVAL);
    CHECK_ERRNO(futex(BAD, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(1), &other, 0), EFAULT);
    printf("no waiters: WAKE 0, CMP_REQUEUE 0; wrong val3 EAGAIN; bad counts EINVAL\n");
    return 0;
}
