/* rwlock_timed: against a writer in another thread, pthread_rwlock_timedrdlock /
 * timedwrlock (CLOCK_REALTIME) and pthread_rwlock_clockrdlock / clockwrlock
 * (CLOCK_MONOTONIC) answer ETIMEDOUT once the deadline has passed; against a reader,
 * timedwrlock times out while timedrdlock succeeds at once; once the writer leaves a far
 * deadline answers 0.
 * Pins: pthread_rwlock_timedrdlock(3p), pthread_rwlock_timedwrlock(3p), glibc
 * pthread_rwlock_clock{rd,wr}lock (2.30); nptl pthread_rwlock_common.c's timed
 * FUTEX_WAIT_BITSET on __readers / __writers_futex. */
#include "check.h"
#include <pthread.h>

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static int state; /* 1: holder in; 2: holder may leave */
static int as_writer;

static void *holder(void *arg)
{
    (void)arg;
    if (as_writer)
        CHECK_RC(pthread_rwlock_wrlock(&rw), 0);
    else
        CHECK_RC(pthread_rwlock_rdlock(&rw), 0);
    __atomic_store_n(&state, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&state, __ATOMIC_SEQ_CST) != 2)
        sched_yield();
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    return NULL;
}

static pthread_t start_holder(int writer)
{
    pthread_t t;
    as_writer = writer;
    state = 0;
    CHECK_RC(pthread_create(&t, NULL, holder, NULL), 0);
    while (__atomic_load_n(&state, __ATOMIC_SEQ_CST) != 1)
        sched_yield();
    return t;
}

int main(void)
{
    pthread_t t = start_holder(1);
    struct timespec dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_RC(pthread_rwlock_timedrdlock(&rw, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_RC(pthread_rwlock_timedwrlock(&rw, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_RC(pthread_rwlock_clockrdlock(&rw, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_RC(pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    struct timespec bad = { .tv_sec = dl.tv_sec, .tv_nsec = 1000000000 };
    CHECK_RC(pthread_rwlock_timedwrlock(&rw, &bad), EINVAL);
    printf("write-held: timedrdlock timedwrlock clockrdlock clockwrlock ETIMEDOUT\n");
    __atomic_store_n(&state, 2, __ATOMIC_SEQ_CST);
    struct timespec far = deadline_in(CLOCK_MONOTONIC, 60 * SEC);
    CHECK_RC(pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &far), 0);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("writer gone: clockwrlock 0\n");

    t = start_holder(0);
    dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_RC(pthread_rwlock_timedwrlock(&rw, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_RC(pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    far = deadline_in(CLOCK_REALTIME, 60 * SEC);
    CHECK_RC(pthread_rwlock_timedrdlock(&rw, &far), 0);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    printf("read-held: timedwrlock clockwrlock ETIMEDOUT, timedrdlock 0\n");
    __atomic_store_n(&state, 2, __ATOMIC_SEQ_CST);
    far = deadline_in(CLOCK_REALTIME, 60 * SEC);
    CHECK_RC(pthread_rwlock_timedwrlock(&rw, &far), 0);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("reader gone: timedwrlock 0\n");
    return 0;
}
