/* mutex_robust: a PTHREAD_MUTEX_ROBUST mutex whose owner thread exits holding it.
 * - a waiter asleep in pthread_mutex_lock when the owner dies gets EOWNERDEAD (the kernel
 *   walks the dead thread's robust list, sets FUTEX_OWNER_DIED and wakes one waiter);
 *   pthread_mutex_consistent makes it usable again: unlock, lock answer 0;
 * - a waiter asleep in pthread_mutex_timedlock gets EOWNERDEAD the same way;
 * - after the owner is gone, trylock answers EOWNERDEAD;
 * - unlocked without pthread_mutex_consistent, the mutex is ENOTRECOVERABLE for lock and
 *   trylock;
 * - two waiters on a dead owner: exactly one gets EOWNERDEAD, the other 0 after it.
 * Pins: pthread_mutexattr_setrobust(3p), pthread_mutex_consistent(3p); the kernel's
 * robust-list walk at thread exit (Documentation/locking/robust-futexes.rst,
 * robust-futex-ABI.rst; kernel/futex/core.c handle_futex_death). mutex_robust_pi.c
 * compiles this file again with PTHREAD_PRIO_INHERIT (exit_pi_state_list). */
#include "check.h"
#include <pthread.h>

#ifndef ROBUST_PI
#define ROBUST_PI 0
#endif
#define NAME (ROBUST_PI ? "robust pi" : "robust")
#define FUTEX_WAITERS_BIT 0x80000000u

static pthread_mutex_t m;
static int owner_in;
static int wait_for_waiters; /* owner dies only once somebody waits (FUTEX_WAITERS) */

static void init(void)
{
    pthread_mutexattr_t a;
    CHECK_RC(pthread_mutexattr_init(&a), 0);
    CHECK_RC(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), 0);
    if (ROBUST_PI)
        CHECK_RC(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT), 0);
    CHECK_RC(pthread_mutex_init(&m, &a), 0);
    CHECK_RC(pthread_mutexattr_destroy(&a), 0);
}

static void *owner(void *arg)
{
    (void)arg;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    __atomic_store_n(&owner_in, 1, __ATOMIC_SEQ_CST);
    if (wait_for_waiters)
        while (!(__atomic_load_n((unsigned *)&m.__data.__lock, __ATOMIC_SEQ_CST) &
                 FUTEX_WAITERS_BIT))
            sched_yield();
    return NULL; /* exits holding m */
}

static pthread_t start_owner(int wait)
{
    pthread_t t;
    owner_in = 0;
    wait_for_waiters = wait;
    CHECK_RC(pthread_create(&t, NULL, owner, NULL), 0);
    while (!__atomic_load_n(&owner_in, __ATOMIC_SEQ_CST))
        sched_yield();
    return t;
}

static int results[3];

static void *second_waiter(void *arg)
{
    (void)arg;
    int rc = pthread_mutex_lock(&m);
    CHECK(rc == 0 || rc == EOWNERDEAD);
    __atomic_add_fetch(&results[rc == EOWNERDEAD], 1, __ATOMIC_SEQ_CST);
    if (rc == EOWNERDEAD)
        CHECK_RC(pthread_mutex_consistent(&m), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    return NULL;
}

int main(void)
{
    /* asleep in lock when the owner dies */
    init();
    pthread_t t = start_owner(1);
    CHECK_RC(pthread_mutex_lock(&m), EOWNERDEAD);
    CHECK_RC(pthread_mutex_consistent(&m), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_mutex_lock(&m), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("%s: waiter gets EOWNERDEAD, consistent, lock 0\n", NAME);

    /* asleep in timedlock when the owner dies */
    t = start_owner(1);
    struct timespec far = deadline_in(CLOCK_REALTIME, 60 * SEC);
    CHECK_RC(pthread_mutex_timedlock(&m, &far), EOWNERDEAD);
    CHECK_RC(pthread_mutex_consistent(&m), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("%s: timedlock waiter gets EOWNERDEAD\n", NAME);

    /* owner already gone: trylock */
    t = start_owner(0);
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK_RC(pthread_mutex_trylock(&m), EOWNERDEAD);
    CHECK_RC(pthread_mutex_consistent(&m), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    printf("%s: trylock after death EOWNERDEAD\n", NAME);

    /* two waiters: one EOWNERDEAD, then 0 */
    t = start_owner(1);
    pthread_t w;
    CHECK_RC(pthread_create(&w, NULL, second_waiter, NULL), 0);
    second_waiter(NULL);
    CHECK_RC(pthread_join(w, NULL), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK_EQ(results[1], 1);
    CHECK_EQ(results[0], 1);
    printf("%s: two waiters: one EOWNERDEAD, one 0\n", NAME);

    /* never made consistent: ENOTRECOVERABLE */
    t = start_owner(0);
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK_RC(pthread_mutex_lock(&m), EOWNERDEAD);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_mutex_lock(&m), ENOTRECOVERABLE);
    CHECK_RC(pthread_mutex_trylock(&m), ENOTRECOVERABLE);
    printf("%s: unlocked inconsistent: ENOTRECOVERABLE\n", NAME);
    return 0;
}
