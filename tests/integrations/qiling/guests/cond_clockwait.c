/* cond_clockwait: pthread_cond_clockwait (glibc 2.30) takes the clock per call,
 * whatever the condvar's attribute: CLOCK_MONOTONIC and CLOCK_REALTIME deadlines time
 * out on their own clock (ETIMEDOUT, deadline passed), a signal before a far deadline
 * answers 0, and an unsupported clock (CLOCK_PROCESS_CPUTIME_ID) answers EINVAL.
 * Pins: glibc pthread_cond_clockwait (POSIX.1-2024 pthread_cond_clockwait(3p)), the call
 * libstdc++'s condition_variable::wait_for/wait_until use for steady_clock. */
#include "check.h"
#include <pthread.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int flag;

static void *signaller(void *arg)
{
    (void)arg;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    flag = 1;
    CHECK_RC(pthread_cond_broadcast(&cv), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    return NULL;
}

static void run(clockid_t clock, const char *name)
{
    CHECK_RC(pthread_mutex_lock(&m), 0);
    struct timespec dl = deadline_in(clock, 40 * MS);
    int rc;
    do
        rc = pthread_cond_clockwait(&cv, &m, clock, &dl);
    while (rc == 0);
    CHECK_RC(rc, ETIMEDOUT);
    EXPECT_PASSED(clock, dl);
    CHECK_RC(pthread_mutex_unlock(&m), 0);

    pthread_t t;
    flag = 0;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    CHECK_RC(pthread_create(&t, NULL, signaller, NULL), 0);
    struct timespec far = deadline_in(clock, 60 * SEC);
    rc = 0;
    while (!flag && rc == 0)
        rc = pthread_cond_clockwait(&cv, &m, clock, &far);
    CHECK_RC(rc, 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("%s: ETIMEDOUT, signalled 0\n", name);
}

int main(void)
{
    run(CLOCK_MONOTONIC, "monotonic");
    run(CLOCK_REALTIME, "realtime");
    struct timespec dl = deadline_in(CLOCK_MONOTONIC, 10 * MS);
    CHECK_RC(pthread_mutex_lock(&m), 0);
    CHECK_RC(pthread_cond_clockwait(&cv, &m, CLOCK_PROCESS_CPUTIME_ID, &dl), EINVAL);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    printf("cputime clock: EINVAL\n");
    return 0;
}
