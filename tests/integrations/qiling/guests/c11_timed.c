/* c11_timed: ISO C11 timed waits (TIME_UTC deadlines, i.e. CLOCK_REALTIME):
 * cnd_timedwait with nobody signalling answers thrd_timedout once the deadline passed,
 * and thrd_success when signalled before a far deadline; mtx_timedlock on an mtx_timed
 * mutex another thread holds answers thrd_timedout after the deadline and thrd_success
 * once the holder lets go; thrd_sleep sleeps at least its duration.
 * Pins: ISO C11 7.26.3.5 cnd_timedwait, 7.26.4.4 mtx_timedlock (thrd_timedout),
 * 7.26.5.7 thrd_sleep, timespec_get(TIME_UTC); glibc maps them to
 * pthread_cond_timedwait / pthread_mutex_timedlock. */
#include "check.h"
#include <threads.h>

static mtx_t m, tm;
static cnd_t cv;
static int flag, state;

static struct timespec utc_in(long long ns)
{
    struct timespec t;
    CHECK_EQ(timespec_get(&t, TIME_UTC), TIME_UTC);
    return ns_ts(ts_ns(t) + ns);
}

static int signaller(void *arg)
{
    (void)arg;
    CHECK_RC(mtx_lock(&m), thrd_success);
    flag = 1;
    CHECK_RC(cnd_signal(&cv), thrd_success);
    CHECK_RC(mtx_unlock(&m), thrd_success);
    return 0;
}

static int holder(void *arg)
{
    (void)arg;
    CHECK_RC(mtx_lock(&tm), thrd_success);
    __atomic_store_n(&state, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&state, __ATOMIC_SEQ_CST) != 2)
        thrd_yield();
    for (int i = 0; i < 10; i++)
        thrd_yield();
    CHECK_RC(mtx_unlock(&tm), thrd_success);
    return 0;
}

int main(void)
{
    CHECK_RC(mtx_init(&m, mtx_plain), thrd_success);
    CHECK_RC(mtx_init(&tm, mtx_timed), thrd_success);
    CHECK_RC(cnd_init(&cv), thrd_success);

    CHECK_RC(mtx_lock(&m), thrd_success);
    struct timespec dl = utc_in(30 * MS);
    int rc;
    do
        rc = cnd_timedwait(&cv, &m, &dl);
    while (rc == thrd_success);
    CHECK_RC(rc, thrd_timedout);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    thrd_t t;
    CHECK_RC(thrd_create(&t, signaller, NULL), thrd_success);
    struct timespec far = utc_in(60 * SEC);
    rc = thrd_success;
    while (!flag && rc == thrd_success)
        rc = cnd_timedwait(&cv, &m, &far);
    CHECK_RC(rc, thrd_success);
    CHECK_RC(mtx_unlock(&m), thrd_success);
    CHECK_RC(thrd_join(t, NULL), thrd_success);
    printf("cnd_timedwait: thrd_timedout, then signalled thrd_success\n");

    CHECK_RC(thrd_create(&t, holder, NULL), thrd_success);
    while (__atomic_load_n(&state, __ATOMIC_SEQ_CST) != 1)
        thrd_yield();
    dl = utc_in(30 * MS);
    CHECK_RC(mtx_timedlock(&tm, &dl), thrd_timedout);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    CHECK_RC(mtx_trylock(&tm), thrd_busy);
    __atomic_store_n(&state, 2, __ATOMIC_SEQ_CST);
    far = utc_in(60 * SEC);
    CHECK_RC(mtx_timedlock(&tm, &far), thrd_success);
    CHECK_RC(mtx_unlock(&tm), thrd_success);
    CHECK_RC(thrd_join(t, NULL), thrd_success);
    printf("mtx_timedlock: thrd_timedout, then thrd_success\n");

    long long t0 = now_ns(CLOCK_MONOTONIC);
    struct timespec d = { 0, 20 * MS };
    CHECK_RC(thrd_sleep(&d, NULL), 0);
    EXPECT_ELAPSED(CLOCK_MONOTONIC, t0, 20 * MS);
    printf("thrd_sleep: slept\n");
    return 0;
}
