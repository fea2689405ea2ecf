/* barrier: four threads cross one pthread_barrier_t 50 times; in every round exactly
 * one of them gets PTHREAD_BARRIER_SERIAL_THREAD and every thread sees the writes all
 * threads made before the round's barrier.
 * Pins: pthread_barrier_wait(3p) ("PTHREAD_BARRIER_SERIAL_THREAD to one unspecified
 * thread and zero to each of the remaining threads"); nptl's barrier waits with
 * FUTEX_WAIT on its round counter and wakes with FUTEX_WAKE INT_MAX. */
#include "check.h"
#include <pthread.h>

enum { THREADS = 4, ROUNDS = 50 };

static pthread_barrier_t b;
static int slot[THREADS];
static int serial[ROUNDS];

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        slot[me] = r + 1;
        int rc = pthread_barrier_wait(&b);
        CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            __atomic_add_fetch(&serial[r], 1, __ATOMIC_SEQ_CST);
        for (int i = 0; i < THREADS; i++)
            CHECK_EQ(slot[i], r + 1);
        /* nobody writes the next round's value before everybody has read this one */
        rc = pthread_barrier_wait(&b);
        CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    CHECK_RC(pthread_barrier_init(&b, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_RC(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_RC(pthread_join(t[i], NULL), 0);
    for (int r = 0; r < ROUNDS; r++)
        CHECK_EQ(serial[r], 1);
    CHECK_RC(pthread_barrier_destroy(&b), 0);
    printf("%d rounds x %d threads, one serial thread per round\n", ROUNDS, THREADS);
    return 0;
}
