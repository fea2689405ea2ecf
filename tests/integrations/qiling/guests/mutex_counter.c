/* mutex_counter: pthread_mutex_lock/unlock keeps a non-atomic counter exact under
 * contention (a sched_yield inside the critical section forces other threads onto the
 * futex path), trylock answers EBUSY for a lock held by another thread, and the
 * ERRORCHECK and RECURSIVE types answer as POSIX says.
 * Pins: glibc pthread_mutex_lock(3p) / pthread_mutex_trylock(3p) over FUTEX_WAIT/WAKE
 * (nptl lowlevellock.h: 0 free, 1 locked, 2 contended). */
#include "check.h"
#include <pthread.h>

enum { THREADS = 4, ROUNDS = 200 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static int inside;

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_RC(pthread_mutex_lock(&lock), 0);
        CHECK_EQ(++inside, 1);
        long c = counter;
        if (i % 16 == 0)
            sched_yield();
        counter = c + 1;
        inside--;
        CHECK_RC(pthread_mutex_unlock(&lock), 0);
    }
    return NULL;
}

static void *try_held(void *arg)
{
    return (void *)(intptr_t)pthread_mutex_trylock((pthread_mutex_t *)arg);
}

int main(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK_RC(pthread_create(&t[i], NULL, worker, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK_EQ(counter, THREADS * ROUNDS);
    printf("counter: %ld\n", counter);

    /* trylock by another thread while held: EBUSY */
    void *res;
    CHECK_RC(pthread_mutex_lock(&lock), 0);
    CHECK_RC(pthread_create(&t[0], NULL, try_held, &lock), 0);
    CHECK_RC(pthread_join(t[0], &res), 0);
    CHECK_RC((int)(intptr_t)res, EBUSY);
    CHECK_RC(pthread_mutex_unlock(&lock), 0);
    printf("trylock while held: EBUSY\n");

    pthread_mutexattr_t a;
    pthread_mutex_t ec, rec;
    CHECK_RC(pthread_mutexattr_init(&a), 0);
    CHECK_RC(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK), 0);
    CHECK_RC(pthread_mutex_init(&ec, &a), 0);
    CHECK_RC(pthread_mutex_unlock(&ec), EPERM);
    CHECK_RC(pthread_mutex_lock(&ec), 0);
    CHECK_RC(pthread_mutex_lock(&ec), EDEADLK);
    CHECK_RC(pthread_mutex_unlock(&ec), 0);
    printf("errorcheck: EDEADLK EPERM\n");

    CHECK_RC(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE), 0);
    CHECK_RC(pthread_mutex_init(&rec, &a), 0);
    CHECK_RC(pthread_mutex_lock(&rec), 0);
    CHECK_RC(pthread_mutex_lock(&rec), 0);
    CHECK_RC(pthread_create(&t[0], NULL, try_held, &rec), 0);
    CHECK_RC(pthread_join(t[0], &res), 0);
    CHECK_RC((int)(intptr_t)res, EBUSY);
    CHECK_RC(pthread_mutex_unlock(&rec), 0);
    CHECK_RC(pthread_mutex_unlock(&rec), 0);
    CHECK_RC(pthread_mutex_unlock(&rec), EPERM);
    printf("recursive: depth 2, EBUSY to others\n");
    return 0;
}
