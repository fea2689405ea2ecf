/* cond_timedwait: pthread_cond_timedwait on a condvar whose clock is CLOCK_REALTIME
 * (the default) and one set to CLOCK_MONOTONIC with pthread_condattr_setclock: with
 * nobody signalling it answers ETIMEDOUT once the deadline has passed on that clock;
 * signalled before a far deadline it answers 0; a deadline already in the past answers
 * ETIMEDOUT at once; tv_nsec out of range answers EINVAL.
 * Pins: pthread_cond_timedwait(3p), pthread_condattr_setclock(3p); the kernel side is
 * FUTEX_WAIT_BITSET with an absolute timeout, FUTEX_CLOCK_REALTIME for the realtime clock
 * (futex(2): "the timeout is absolute ... measured against CLOCK_REALTIME/MONOTONIC"). */
#include "check.h"
#include <pthread.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static int flag;

static void *signaller(void *arg)
{
    (void)arg;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    flag = 1;
    CHECK_RC(pthread_cond_signal(&cv), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    return NULL;
}

static void run(clockid_t clock, const char *name)
{
    pthread_condattr_t a;
    CHECK_RC(pthread_condattr_init(&a), 0);
    CHECK_RC(pthread_condattr_setclock(&a, clock), 0);
    CHECK_RC(pthread_cond_init(&cv, &a), 0);
    clockid_t got;
    CHECK_RC(pthread_condattr_getclock(&a, &got), 0);
    CHECK_EQ(got, clock);

    /* nobody signals: ETIMEDOUT after the deadline */
    CHECK_RC(pthread_mutex_lock(&m), 0);
    for (int i = 0; i < 2; i++) {
        struct timespec dl = deadline_in(clock, 30 * MS);
        int rc;
        do
            rc = pthread_cond_timedwait(&cv, &m, &dl);
        while (rc == 0); /* a spurious wake-up is allowed; the deadline still holds */
        CHECK_RC(rc, ETIMEDOUT);
        EXPECT_PASSED(clock, dl);
    }
    /* a deadline in the past */
    struct timespec past = ns_ts(now_ns(clock) - 1 * SEC);
    CHECK_RC(pthread_cond_timedwait(&cv, &m, &past), ETIMEDOUT);
    /* an invalid deadline */
    struct timespec bad = { .tv_sec = past.tv_sec + 100, .tv_nsec = 1000000000 };
    CHECK_RC(pthread_cond_timedwait(&cv, &m, &bad), EINVAL);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    printf("%s: ETIMEDOUT x2, past ETIMEDOUT, bad EINVAL\n", name);

    /* signalled long before a far deadline */
    pthread_t t;
    flag = 0;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    CHECK_RC(pthread_create(&t, NULL, signaller, NULL), 0);
    struct timespec far = deadline_in(clock, 60 * SEC);
    int rc = 0;
    while (!flag && rc == 0)
        rc = pthread_cond_timedwait(&cv, &m, &far);
    CHECK_RC(rc, 0);
    CHECK_EQ(flag, 1);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK_RC(pthread_cond_destroy(&cv), 0);
    printf("%s: signalled 0\n", name);
}

int main(void)
{
    run(CLOCK_REALTIME, "realtime");
    run(CLOCK_MONOTONIC, "monotonic");
    return 0;
}
