/* cond_broadcast: six threads wait on one condvar; pthread_cond_broadcast wakes every
 * one of them (each sees the new generation exactly once); then six single
 * pthread_cond_signal calls, each handing out one token, let all six leave.
 * Pins: pthread_cond_broadcast(3p) "unblock all threads currently blocked" and
 * pthread_cond_signal(3p) "at least one"; nptl wakes with FUTEX_WAKE INT_MAX / 1. */
#include "check.h"
#include <pthread.h>

enum { WAITERS = 6 };

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t arrived = PTHREAD_COND_INITIALIZER;
static int generation, waiting, woken, tokens, taken;

static void *waiter(void *arg)
{
    (void)arg;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    int gen = generation;
    waiting++;
    CHECK_RC(pthread_cond_signal(&arrived), 0);
    while (generation == gen)
        CHECK_RC(pthread_cond_wait(&cv, &m), 0);
    woken++;
    waiting--;
    /* phase 2: wait for a token of our own */
    waiting++;
    CHECK_RC(pthread_cond_signal(&arrived), 0);
    while (tokens == 0)
        CHECK_RC(pthread_cond_wait(&cv, &m), 0);
    tokens--;
    taken++;
    waiting--;
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    return NULL;
}

int main(void)
{
    pthread_t t[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        CHECK_RC(pthread_create(&t[i], NULL, waiter, NULL), 0);

    CHECK_RC(pthread_mutex_lock(&m), 0);
    while (waiting < WAITERS) /* all six are inside pthread_cond_wait */
        CHECK_RC(pthread_cond_wait(&arrived, &m), 0);
    generation++;
    CHECK_RC(pthread_cond_broadcast(&cv), 0);
    while (woken < WAITERS || waiting < WAITERS)
        CHECK_RC(pthread_cond_wait(&arrived, &m), 0);
    printf("broadcast woke %d of %d\n", woken, WAITERS);

    for (int i = 0; i < WAITERS; i++) {
        tokens++;
        CHECK_RC(pthread_cond_signal(&cv), 0);
        CHECK_RC(pthread_mutex_unlock(&m), 0);
        sched_yield();
        CHECK_RC(pthread_mutex_lock(&m), 0);
    }
    /* POSIX allows spurious wake-ups: a waiter may have taken another's token and left
     * the signalled one asleep again; broadcast until every token is gone */
    while (taken < WAITERS) {
        CHECK_RC(pthread_cond_broadcast(&cv), 0);
        CHECK_RC(pthread_mutex_unlock(&m), 0);
        sched_yield();
        CHECK_RC(pthread_mutex_lock(&m), 0);
    }
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    for (int i = 0; i < WAITERS; i++)
        CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK_EQ(taken, WAITERS);
    CHECK_EQ(tokens, 0);
    printf("signal x%d: %d tokens taken\n", WAITERS, taken);
    return 0;
}
