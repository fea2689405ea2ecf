/* futex_requeue_pi: FUTEX_WAIT_REQUEUE_PI / FUTEX_CMP_REQUEUE_PI (the condvar-to-PI-mutex
 * hand-off).
 * - argument checks: nr_wake other than 1 EINVAL, the two words the same EINVAL, a stale
 *   val3 EAGAIN, WAIT_REQUEUE_PI on a changed word EAGAIN, and with an absolute
 *   CLOCK_MONOTONIC / CLOCK_REALTIME deadline ETIMEDOUT after it;
 * - a requeue-PI waiter cannot be woken by FUTEX_WAKE nor moved by FUTEX_CMP_REQUEUE
 *   (EINVAL: the kernel refuses to treat it as a plain waiter);
 * - PI word free: CMP_REQUEUE_PI takes it for the waiter and wakes it (answers 1), the
 *   waiter returns 0 owning the word;
 * - PI word held: CMP_REQUEUE_PI moves the waiter onto the PI word (answers 1); the
 *   owner's FUTEX_UNLOCK_PI hands it over, the waiter returns 0 owning it.
 * Pins: futex(2) FUTEX_WAIT_REQUEUE_PI / FUTEX_CMP_REQUEUE_PI; kernel/futex/requeue.c
 * futex_requeue (requeue_pi: nr_wake == 1, distinct keys), futex_wake's "pi_state ||
 * rt_waiter: -EINVAL"; LTP futex_cmp_requeue cases; tools/testing/selftests/futex
 * futex_requeue_pi.c. */
#include "rawfutex.h"

#define TID_MASK 0x3fffffffu

static unsigned c, p, other;

struct rq_waiter {
    pthread_t thread;
    long result;
    int owned; /* the PI word named this thread when its wait returned */
};

static void *rq_main(void *arg)
{
    struct rq_waiter *w = arg;
    long r = futex(&c, FUTEX_WAIT_REQUEUE_PI_PRIVATE, 0, NULL, &p, 0);
    w->result = r == -1 ? -errno : r;
    w->owned = (__atomic_load_n(&p, __ATOMIC_SEQ_CST) & TID_MASK) == (unsigned)gettid_();
    if (w->owned)
        CHECK_ERRNO(futex(&p, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    return NULL;
}

/* Once the waiter sleeps on c, FUTEX_WAKE on c answers EINVAL instead of 0. */
static void wait_rq_queued(void)
{
    long r;
    while ((r = futex(&c, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)) == 0)
        sched_yield();
    CHECK_ERRNO(r, EINVAL);
}

int main(void)
{
    int cmp = FUTEX_CMP_REQUEUE_PI_PRIVATE;
    CHECK_ERRNO(futex(&c, cmp, 2, VAL2(1), &p, 0), EINVAL);
    CHECK_ERRNO(futex(&c, cmp, 1, VAL2(1), &c, 0), EINVAL);
    CHECK_ERRNO(futex(&c, cmp, 1, VAL2(1), &p, 1), EAGAIN);
    CHECK_EQ(futex(&c, cmp, 1, VAL2(1), &p, 0), 0);
    CHECK_ERRNO(futex(&c, FUTEX_WAIT_REQUEUE_PI_PRIVATE, 0, NULL, &c, 0), EINVAL);
    CHECK_ERRNO(futex(&c, FUTEX_WAIT_REQUEUE_PI_PRIVATE, 1, NULL, &p, 0), EAGAIN);
    struct timespec dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_ERRNO(futex(&c, FUTEX_WAIT_REQUEUE_PI_PRIVATE, 0, &dl, &p, 0), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_ERRNO(futex(&c, FUTEX_WAIT_REQUEUE_PI_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &dl, &p, 0),
                ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    CHECK_EQ(p, 0);
    printf("checks: nr_wake 2 EINVAL, same word EINVAL, stale EAGAIN, timeouts ETIMEDOUT\n");

    struct rq_waiter w = { 0 };
    CHECK_RC(pthread_create(&w.thread, NULL, rq_main, &w), 0);
    wait_rq_queued();
    CHECK_ERRNO(futex(&c, FUTEX_CMP_REQUEUE_PRIVATE, 0, VAL2(1), &other, 0), EINVAL);
    CHECK_EQ(futex(&c, cmp, 1, VAL2(0), &p, 0), 1);
    CHECK_RC(pthread_join(w.thread, NULL), 0);
    CHECK_EQ(w.result, 0);
    CHECK_EQ(w.owned, 1);
    CHECK_EQ(p, 0);
    printf("free PI word: WAKE/CMP_REQUEUE EINVAL, CMP_REQUEUE_PI 1, waiter owns it\n");

    long me = gettid_();
    CHECK_ERRNO(futex(&p, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    w = (struct rq_waiter){ 0 };
    CHECK_RC(pthread_create(&w.thread, NULL, rq_main, &w), 0);
    wait_rq_queued();
    CHECK_EQ(futex(&c, cmp, 1, VAL2(INT_MAX), &p, 0), 1);
    CHECK_EQ(p, (unsigned)me | FUTEX_WAITERS);
    CHECK_ERRNO(futex(&p, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_RC(pthread_join(w.thread, NULL), 0);
    CHECK_EQ(w.result, 0);
    CHECK_EQ(w.owned, 1);
    CHECK_EQ(p, 0);
    printf("held PI word: CMP_REQUEUE_PI 1, UNLOCK_PI hands it to the waiter\n");
    return 0;
}
