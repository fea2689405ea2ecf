/* c11_threads: ISO C11 <threads.h> (glibc 2.28, implemented over nptl): thrd_create /
 * thrd_join returns each thread's result; an mtx_plain mutex keeps a counter exact;
 * mtx_trylock answers thrd_busy while another thread holds it; an mtx_recursive mutex
 * nests; cnd_broadcast hands over through cnd_wait; call_once runs its
 * function once across four threads; tss_t values are per thread.
 * Pins: ISO C11 7.26 (thrd_join, mtx_lock, mtx_trylock -> thrd_busy, cnd_wait,
 * cnd_broadcast, call_once), glibc's C11 threads over pthread_mutex/cond. */
#include "check.h"
#include <threads.h>

enum { THREADS = 4, ROUNDS = 200 };

static mtx_t m;
static cnd_t cv;
static long counter;
static int ready, go;
static once_flag once = ONCE_FLAG_INIT;
static int once_runs;
static tss_t key;

static void init_once(void)
{
    once_runs++;
}

static int worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    call_once(&once, init_once);
    CHECK_RC(tss_set(key, (void *)(intptr_t)(me + 100)), thrd_success);
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_RC(mtx_lock(&m), thrd_success);
        long c = counter;
        if (i % 16 == 0)
            thrd_yield();
        counter = c + 1;
        CHECK_RC(mtx_unlock(&m), thrd_success);
    }
    CHECK_RC(mtx_lock(&m), thrd_success);
    ready++;
    /* main and the workers share cv: broadcast so main is among the woken */
    CHECK_RC(cnd_broadcast(&cv), thrd_success);
    while (!go)
        CHECK_RC(cnd_wait(&cv, &m), thrd_success);
    CHECK_RC(mtx_unlock(&m), thrd_success);
    CHECK_EQ((intptr_t)tss_get(key), me + 100);
    return me * 3;
}

static int try_lock(void *arg)
{
    return mtx_trylock((mtx_t *)arg);
}

int main(void)
{
    CHECK_RC(mtx_init(&m, mtx_plain), thrd_success);
    CHECK_RC(cnd_init(&cv), thrd_success);
    CHECK_RC(tss_create(&key, NULL), thrd_success);
    thrd_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK_RC(thrd_create(&t[i], worker, (void *)(intptr_t)i), thrd_success);
    CHECK_RC(mtx_lock(&m), thrd_success);
    while (ready < THREADS)
        CHECK_RC(cnd_wait(&cv, &m), thrd_success);
    go = 1;
    CHECK_RC(cnd_broadcast(&cv), thrd_success);
    CHECK_RC(mtx_unlock(&m), thrd_success);
    for (int i = 0; i < THREADS; i++) {
        int res;
        CHECK_RC(thrd_join(t[i], &res), thrd_success);
        CHECK_EQ(res, i * 3);
    }
    CHECK_EQ(counter, THREADS * ROUNDS);
    CHECK_EQ(once_runs, 1);
    printf("counter %ld, call_once ran %d, results joined\n", counter, once_runs);

    int res;
    CHECK_RC(mtx_lock(&m), thrd_success);
    CHECK_RC(thrd_create(&t[0], try_lock, &m), thrd_success);
    CHECK_RC(thrd_join(t[0], &res), thrd_success);
    CHECK_RC(res, thrd_busy);
    CHECK_RC(mtx_unlock(&m), thrd_success);
    mtx_t r;
    CHECK_RC(mtx_init(&r, mtx_plain | mtx_recursive), thrd_success);
    CHECK_RC(mtx_lock(&r), thrd_success);
    CHECK_RC(mtx_lock(&r), thrd_success);
    CHECK_RC(thrd_create(&t[0], try_lock, &r), thrd_success);
    CHECK_RC(thrd_join(t[0], &res), thrd_success);
    CHECK_RC(res, thrd_busy);
    CHECK_RC(mtx_unlock(&r), thrd_success);
    CHECK_RC(mtx_unlock(&r), thrd_success);
    printf("mtx_trylock held: thrd_busy; recursive nests\n");
    mtx_destroy(&r);
    mtx_destroy(&m);
    cnd_destroy(&cv);
    return 0;
}
