/* sem_timed: POSIX semaphores. sem_trywait on 0 answers EAGAIN; sem_timedwait
 * (CLOCK_REALTIME) and sem_clockwait (CLOCK_MONOTONIC and CLOCK_REALTIME) on 0 answer
 * ETIMEDOUT once the deadline has passed; an invalid tv_nsec answers EINVAL; two
 * threads ping-pong 200 posts through two semaphores; a sem_timedwait with a far
 * deadline answers 0 when another thread posts; four waiters are released by four posts.
 * Pins: sem_timedwait(3p) / sem_clockwait (glibc 2.30) / sem_trywait(3p) EAGAIN;
 * nptl sem_waitcommon.c: FUTEX_WAIT_BITSET on the value word with an absolute timeout. */
#include "check.h"
#include <pthread.h>
#include <semaphore.h>

enum { ROUNDS = 200, WAITERS = 4 };

static sem_t ping, pong, s;

static void *ponger(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_ERRNO(sem_wait(&ping), 0);
        CHECK_ERRNO(sem_post(&pong), 0);
    }
    return NULL;
}

static void *poster(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        sched_yield();
    CHECK_ERRNO(sem_post(&s), 0);
    return NULL;
}

static void *timed_waiter(void *arg)
{
    (void)arg;
    struct timespec far = deadline_in(CLOCK_MONOTONIC, 60 * SEC);
    int rc;
    while ((rc = sem_clockwait(&s, CLOCK_MONOTONIC, &far)) == -1 && errno == EINTR)
        ;
    CHECK_ERRNO(rc, 0);
    return NULL;
}

int main(void)
{
    CHECK_ERRNO(sem_init(&s, 0, 0), 0);
    CHECK_ERRNO(sem_trywait(&s), EAGAIN);

    struct timespec dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_ERRNO(sem_timedwait(&s, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_ERRNO(sem_clockwait(&s, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_ERRNO(sem_clockwait(&s, CLOCK_REALTIME, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    struct timespec bad = { .tv_sec = dl.tv_sec + 100, .tv_nsec = 1000000000 };
    CHECK_ERRNO(sem_timedwait(&s, &bad), EINVAL);
    struct timespec past = ns_ts(now_ns(CLOCK_REALTIME) - SEC);
    CHECK_ERRNO(sem_timedwait(&s, &past), ETIMEDOUT);
    printf("empty: trywait EAGAIN, timedwait/clockwait ETIMEDOUT, bad EINVAL\n");

    /* a posted value is taken without waiting, even with a past deadline */
    CHECK_ERRNO(sem_post(&s), 0);
    CHECK_ERRNO(sem_timedwait(&s, &past), 0);

    pthread_t t[WAITERS];
    CHECK_ERRNO(sem_init(&ping, 0, 0), 0);
    CHECK_ERRNO(sem_init(&pong, 0, 0), 0);
    CHECK_RC(pthread_create(&t[0], NULL, ponger, NULL), 0);
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_ERRNO(sem_post(&ping), 0);
        CHECK_ERRNO(sem_wait(&pong), 0);
    }
    CHECK_RC(pthread_join(t[0], NULL), 0);
    printf("ping-pong: %d rounds\n", ROUNDS);

    CHECK_RC(pthread_create(&t[0], NULL, poster, NULL), 0);
    struct timespec far = deadline_in(CLOCK_REALTIME, 60 * SEC);
    CHECK_ERRNO(sem_timedwait(&s, &far), 0);
    CHECK_RC(pthread_join(t[0], NULL), 0);
    printf("timedwait posted by another thread: 0\n");

    for (int i = 0; i < WAITERS; i++)
        CHECK_RC(pthread_create(&t[i], NULL, timed_waiter, NULL), 0);
    for (int i = 0; i < WAITERS; i++) {
        sched_yield();
        CHECK_ERRNO(sem_post(&s), 0);
    }
    for (int i = 0; i < WAITERS; i++)
        CHECK_RC(pthread_join(t[i], NULL), 0);
    int v;
    CHECK_ERRNO(sem_getvalue(&s, &v), 0);
    CHECK_EQ(v, 0);
    printf("%d clockwait waiters released by %d posts\n", WAITERS, WAITERS);
    return 0;
}
