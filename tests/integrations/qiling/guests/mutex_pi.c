/* mutex_pi: a PTHREAD_PRIO_INHERIT mutex excludes: two threads take it 150 times each,
 * yielding inside, and never find each other inside; trylock by another thread answers
 * EBUSY; timedlock (CLOCK_REALTIME) and clocklock (CLOCK_MONOTONIC) against the holder
 * answer ETIMEDOUT; the lock word holds the owner's tid while taken and 0 when free; an
 * ERRORCHECK PI mutex answers EDEADLK to its owner.  Where the kernel lacks FUTEX_LOCK_PI2
 * (before 5.14, or filtered) glibc answers the MONOTONIC clocklock with EINVAL instead: the
 * program probes LOCK_PI2 and expects that (native and emulated agree either way).
 * Pins: pthread_mutexattr_setprotocol(3p) PTHREAD_PRIO_INHERIT; nptl's PI path uses
 * FUTEX_LOCK_PI / FUTEX_UNLOCK_PI / FUTEX_TRYLOCK_PI (clocklock on CLOCK_MONOTONIC:
 * FUTEX_LOCK_PI2) and the kernel keeps the owner tid in the word (futex(2), "Priority-
 * inheritance futexes"). */
#include "check.h"
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2 13
#endif

enum { ROUNDS = 150 };

static pthread_mutex_t m;
static int inside;
static long counter;
static int clocklock_rc; /* what a MONOTONIC clocklock of a held PI mutex answers here */

/* FUTEX_LOCK_PI2 on a free private word: 0 (taken, then released) or ENOSYS. */
static int have_lock_pi2(void)
{
    static unsigned int word;
    if (syscall(SYS_futex, &word, FUTEX_LOCK_PI2 | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0) != 0) {
        CHECK_EQ(errno, ENOSYS);
        return 0;
    }
    CHECK_EQ(syscall(SYS_futex, &word, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0), 0);
    return 1;
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_RC(pthread_mutex_lock(&m), 0);
        CHECK_EQ(__atomic_add_fetch(&inside, 1, __ATOMIC_SEQ_CST), 1);
        CHECK_EQ(m.__data.__lock & 0x3fffffff, gettid_());
        long c = counter;
        if (i % 4 == 0)
            sched_yield();
        counter = c + 1;
        __atomic_sub_fetch(&inside, 1, __ATOMIC_SEQ_CST);
        CHECK_RC(pthread_mutex_unlock(&m), 0);
    }
    return NULL;
}

static void *contender(void *arg)
{
    (void)arg;
    int r = pthread_mutex_trylock(&m);
    if (r == 0)
        return (void *)1;
    CHECK_RC(r, EBUSY);
    struct timespec dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_RC(pthread_mutex_timedlock(&m, &dl), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_RC(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &dl), clocklock_rc);
    if (clocklock_rc == ETIMEDOUT)
        EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    return NULL;
}

int main(void)
{
    pthread_mutexattr_t a;
    CHECK_RC(pthread_mutexattr_init(&a), 0);
    CHECK_RC(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT), 0);
    CHECK_RC(pthread_mutex_init(&m, &a), 0);

    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK_RC(pthread_create(&t[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 2; i++)
        CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK_EQ(counter, 2 * ROUNDS);
    CHECK_EQ(m.__data.__lock, 0);
    printf("counter: %ld, never two owners\n", counter);

    void *res;
    clocklock_rc = have_lock_pi2() ? ETIMEDOUT : EINVAL;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    CHECK_RC(pthread_create(&t[0], NULL, contender, NULL), 0);
    CHECK_RC(pthread_join(t[0], &res), 0);
    CHECK(res == NULL);
    CHECK_EQ(m.__data.__lock & 0x3fffffff, gettid_());
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_EQ(m.__data.__lock, 0);
    printf("held: trylock EBUSY, timedlock ETIMEDOUT, clocklock %s\n", errname(clocklock_rc));

    pthread_mutex_t ec;
    CHECK_RC(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK), 0);
    CHECK_RC(pthread_mutex_init(&ec, &a), 0);
    CHECK_RC(pthread_mutex_lock(&ec), 0);
    CHECK_RC(pthread_mutex_lock(&ec), EDEADLK);
    CHECK_RC(pthread_mutex_trylock(&ec), EDEADLK); /* glibc: the owner gets EDEADLK */
    CHECK_RC(pthread_mutex_unlock(&ec), 0);
    CHECK_RC(pthread_mutex_unlock(&ec), EPERM);
    printf("errorcheck pi: lock EDEADLK, trylock EDEADLK, unlock EPERM\n");
    return 0;
}
