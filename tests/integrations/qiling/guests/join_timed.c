/* join_timed: pthread_join returns the thread's value once the kernel clears its tid
 * word (CLONE_CHILD_CLEARTID + a shared FUTEX_WAKE at exit); while the thread runs,
 * pthread_tryjoin_np answers EBUSY, pthread_timedjoin_np (CLOCK_REALTIME) and
 * pthread_clockjoin_np (CLOCK_MONOTONIC) answer ETIMEDOUT once the deadline has passed;
 * after it is released they answer 0 with its value; joining oneself is EDEADLK.
 * Pins: pthread_join(3p), glibc pthread_tryjoin_np(3) / pthread_timedjoin_np(3) /
 * pthread_clockjoin_np; clone(2) CLONE_CHILD_CLEARTID and set_tid_address(2) ("a wake-up
 * on the futex at that address"). */
#include "check.h"
#include <pthread.h>

enum { THREADS = 4 };

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go;

static void *runner(void *arg)
{
    CHECK_RC(pthread_mutex_lock(&m), 0);
    while (!go)
        CHECK_RC(pthread_cond_wait(&cv, &m), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    return arg;
}

static void *quick(void *arg) { return (void *)((intptr_t)arg * 10); }

static void release(void)
{
    CHECK_RC(pthread_mutex_lock(&m), 0);
    go = 1;
    CHECK_RC(pthread_cond_broadcast(&cv), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
}

int main(void)
{
    pthread_t t[THREADS];
    void *res;
    for (int i = 0; i < THREADS; i++)
        CHECK_RC(pthread_create(&t[i], NULL, quick, (void *)(intptr_t)(i + 1)), 0);
    for (int i = 0; i < THREADS; i++) {
        CHECK_RC(pthread_join(t[i], &res), 0);
        CHECK_EQ((intptr_t)res, (i + 1) * 10);
    }
    CHECK_RC(pthread_join(pthread_self(), NULL), EDEADLK);
    printf("join: %d values, self EDEADLK\n", THREADS);

    go = 0;
    CHECK_RC(pthread_create(&t[0], NULL, runner, (void *)7), 0);
    CHECK_RC(pthread_tryjoin_np(t[0], &res), EBUSY);
    struct timespec dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_RC(pthread_timedjoin_np(t[0], &res, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_RC(pthread_clockjoin_np(t[0], &res, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_RC(pthread_clockjoin_np(t[0], &res, CLOCK_REALTIME, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    printf("running: tryjoin EBUSY, timedjoin ETIMEDOUT, clockjoin ETIMEDOUT\n");
    release();
    struct timespec far = deadline_in(CLOCK_REALTIME, 60 * SEC);
    CHECK_RC(pthread_timedjoin_np(t[0], &res, &far), 0);
    CHECK_EQ((intptr_t)res, 7);

    go = 0;
    CHECK_RC(pthread_create(&t[0], NULL, runner, (void *)8), 0);
    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_RC(pthread_clockjoin_np(t[0], &res, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    release();
    far = deadline_in(CLOCK_MONOTONIC, 60 * SEC);
    CHECK_RC(pthread_clockjoin_np(t[0], &res, CLOCK_MONOTONIC, &far), 0);
    CHECK_EQ((intptr_t)res, 8);
    printf("released: timedjoin 0, clockjoin 0\n");
    return 0;
}
