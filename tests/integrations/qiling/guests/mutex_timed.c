/* mutex_timed: pthread_mutex_timedlock (CLOCK_REALTIME deadline) and
 * pthread_mutex_clocklock (CLOCK_MONOTONIC and CLOCK_REALTIME) on a mutex another thread
 * holds answer ETIMEDOUT once the deadline has passed on that clock; a deadline in the
 * past ETIMEDOUT at once; an invalid tv_nsec EINVAL; and a far deadline answers 0 when
 * the holder lets go.
 * Pins: pthread_mutex_timedlock(3p), glibc pthread_mutex_clocklock (2.30); nptl
 * __lll_clocklock: FUTEX_WAIT_BITSET with an absolute timeout on the chosen clock. */
#include "check.h"
#include <pthread.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int state; /* 1: holder has m; 2: holder may release */

static void *holder(void *arg)
{
    (void)arg;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    CHECK_RC(pthread_mutex_lock(&gate), 0);
    state = 1;
    CHECK_RC(pthread_cond_broadcast(&cv), 0);
    while (state != 2)
        CHECK_RC(pthread_cond_wait(&cv, &gate), 0);
    CHECK_RC(pthread_mutex_unlock(&gate), 0);
    /* let the main thread block in its far-deadline lock before letting go; a wake of
     * that lock or an uncontended take both answer 0 */
    for (int i = 0; i < 10; i++)
        sched_yield();
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    return NULL;
}

int main(void)
{
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, holder, NULL), 0);
    CHECK_RC(pthread_mutex_lock(&gate), 0);
    while (state != 1)
        CHECK_RC(pthread_cond_wait(&cv, &gate), 0);
    CHECK_RC(pthread_mutex_unlock(&gate), 0);

    struct timespec dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_RC(pthread_mutex_timedlock(&m, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    printf("timedlock: ETIMEDOUT\n");

    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_RC(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_RC(pthread_mutex_clocklock(&m, CLOCK_REALTIME, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    printf("clocklock monotonic/realtime: ETIMEDOUT\n");

    struct timespec past = ns_ts(now_ns(CLOCK_REALTIME) - SEC);
    CHECK_RC(pthread_mutex_timedlock(&m, &past), ETIMEDOUT);
    struct timespec bad = { .tv_sec = past.tv_sec + 100, .tv_nsec = -1 };
    CHECK_RC(pthread_mutex_timedlock(&m, &bad), EINVAL);
    CHECK_RC(pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &dl), EINVAL);
    printf("past: ETIMEDOUT, bad nsec: EINVAL, bad clock: EINVAL\n");

    CHECK_RC(pthread_mutex_lock(&gate), 0);
    state = 2;
    CHECK_RC(pthread_cond_broadcast(&cv), 0);
    CHECK_RC(pthread_mutex_unlock(&gate), 0);
    struct timespec far = deadline_in(CLOCK_MONOTONIC, 60 * SEC);
    CHECK_RC(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &far), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("released: 0\n");
    return 0;
}
