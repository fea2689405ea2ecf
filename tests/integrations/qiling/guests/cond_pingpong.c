/* cond_pingpong: two threads hand a token back and forth 200 times through one mutex
 * and two condition variables; every hand-over is a pthread_cond_signal to a thread
 * that is (or is about to be) asleep in pthread_cond_wait.
 * Pins: glibc pthread_cond_wait(3p) / pthread_cond_signal(3p) (nptl's G1/G2 condvar
 * over FUTEX_WAIT_BITSET / FUTEX_WAKE, private). */
#include "check.h"
#include <pthread.h>

enum { ROUNDS = 200 };

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t to_ping = PTHREAD_COND_INITIALIZER;
static pthread_cond_t to_pong = PTHREAD_COND_INITIALIZER;
static int turn; /* 0: ping's turn, 1: pong's turn */
static int pings, pongs;

static void *pong(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_RC(pthread_mutex_lock(&m), 0);
        while (turn != 1)
            CHECK_RC(pthread_cond_wait(&to_pong, &m), 0);
        CHECK_EQ(pongs, pings - 1);
        pongs++;
        turn = 0;
        CHECK_RC(pthread_cond_signal(&to_ping), 0);
        CHECK_RC(pthread_mutex_unlock(&m), 0);
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, pong, NULL), 0);
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_RC(pthread_mutex_lock(&m), 0);
        while (turn != 0)
            CHECK_RC(pthread_cond_wait(&to_ping, &m), 0);
        CHECK_EQ(pings, pongs);
        pings++;
        turn = 1;
        CHECK_RC(pthread_cond_signal(&to_pong), 0);
        CHECK_RC(pthread_mutex_unlock(&m), 0);
    }
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK_EQ(pongs, ROUNDS);
    printf("pings %d pongs %d\n", pings, pongs);
    return 0;
}
