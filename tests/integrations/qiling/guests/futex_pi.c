/* futex_pi: the PI futex commands on a raw word.
 * - FUTEX_LOCK_PI on 0 stores the caller's tid; again: EDEADLK; FUTEX_TRYLOCK_PI by the
 *   owner EDEADLK; FUTEX_UNLOCK_PI stores 0; UNLOCK_PI of a word one does not own EPERM;
 * - held by another thread: TRYLOCK_PI EAGAIN (EWOULDBLOCK), UNLOCK_PI EPERM, LOCK_PI with
 *   an absolute CLOCK_REALTIME deadline ETIMEDOUT after it, FUTEX_LOCK_PI2 with a
 *   CLOCK_MONOTONIC deadline ETIMEDOUT after it (Linux >= 5.14; "LOCK_PI2: ENOSYS"
 *   otherwise);
 * - a blocked LOCK_PI sets FUTEX_WAITERS; the owner's UNLOCK_PI hands the lock over: the
 *   word becomes the waiter's tid | FUTEX_WAITERS (kept while the kernel has PI state);
 *   a waiter that timed out leaves FUTEX_WAITERS set, and UNLOCK_PI with no waiter left
 *   stores 0 (so the hand-over uses a second word nobody waited on before: its
 *   FUTEX_WAITERS bit says the main thread is blocked there);
 * - a word with FUTEX_OWNER_DIED and no tid is taken keeping the bit; a word naming a tid
 *   that does not exist: ESRCH;
 * - a read-only or unmapped word EFAULT, a misaligned one EINVAL.
 * Pins: futex(2) "Priority-inheritance futexes" and ERRORS; kernel/futex/pi.c
 * futex_lock_pi_atomic, attach_to_pi_owner / handle_exit_race (ESRCH), wake_futex_pi
 * ("The WAITERS bit is always kept enabled while there is PI state around"); LTP
 * futex_lock_pi / futex_unlock_pi cases. */
#include "rawfutex.h"
#include <sys/mman.h>

#define TID_MASK 0x3fffffffu

static unsigned pw, pw2;
static int state; /* 1: helper owns pw and pw2; 2: helper may unlock */
static long helper_tid;

static void *helper(void *arg)
{
    (void)arg;
    helper_tid = gettid_();
    CHECK_ERRNO(futex(&pw, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pw, helper_tid);
    CHECK_ERRNO(futex(&pw2, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    __atomic_store_n(&state, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&state, __ATOMIC_SEQ_CST) != 2)
        sched_yield();
    /* pw: the main thread's timed-out waits left FUTEX_WAITERS set, nobody waits now */
    CHECK_ERRNO(futex(&pw, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    /* pw2: unlock only once the main thread is blocked in LOCK_PI on it */
    while (!(__atomic_load_n(&pw2, __ATOMIC_SEQ_CST) & FUTEX_WAITERS))
        sched_yield();
    CHECK_ERRNO(futex(&pw2, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    return NULL;
}

int main(void)
{
    long me = gettid_();
    CHECK_ERRNO(futex(&pw, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pw, me);
    CHECK_ERRNO(futex(&pw, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), EDEADLK);
    CHECK_ERRNO(futex(&pw, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EDEADLK);
    CHECK_ERRNO(futex(&pw, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pw, 0);
    CHECK_ERRNO(futex(&pw, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EPERM);
    CHECK_ERRNO(futex(&pw, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pw, me);
    CHECK_ERRNO(futex(&pw, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    printf("owner: LOCK_PI tid, again EDEADLK, TRYLOCK EDEADLK, UNLOCK 0, unowned EPERM\n");

    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, helper, NULL), 0);
    while (__atomic_load_n(&state, __ATOMIC_SEQ_CST) != 1)
        sched_yield();
    CHECK_ERRNO(futex(&pw, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EAGAIN);
    CHECK_ERRNO(futex(&pw, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EPERM);
    struct timespec dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_ERRNO(futex(&pw, FUTEX_LOCK_PI_PRIVATE, 0, &dl, NULL, 0), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    long r = futex(&pw, FUTEX_LOCK_PI2 | FUTEX_PRIVATE_FLAG, 0, &dl, NULL, 0);
    int e = r == -1 ? errno : 0;
    if (e == ENOSYS) {
        printf("LOCK_PI2: ENOSYS\n");
    } else {
        CHECK_RC(e, ETIMEDOUT);
        EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    }
    CHECK_EQ(pw & TID_MASK, helper_tid);
    printf("held: TRYLOCK EAGAIN, UNLOCK EPERM, LOCK_PI/LOCK_PI2 ETIMEDOUT\n");

    CHECK(pw & FUTEX_WAITERS); /* left by the timed-out waits: kernel/futex/pi.c */
    __atomic_store_n(&state, 2, __ATOMIC_SEQ_CST);
    CHECK_ERRNO(futex(&pw2, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pw2, (unsigned)me | FUTEX_WAITERS);
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK_EQ(pw, 0); /* UNLOCK_PI with no waiter stored 0 despite FUTEX_WAITERS */
    CHECK_ERRNO(futex(&pw2, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pw2, 0);
    printf("handed over: word = tid | FUTEX_WAITERS, then 0\n");

    pw = FUTEX_OWNER_DIED;
    CHECK_ERRNO(futex(&pw, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pw, (unsigned)me | FUTEX_OWNER_DIED);
    CHECK_ERRNO(futex(&pw, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    CHECK_EQ(pw, 0);
    pw = 0x3ffffff0; /* above any pid_max */
    CHECK_ERRNO(futex(&pw, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), ESRCH);
    CHECK_ERRNO(futex(&pw, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), ESRCH);
    pw = 0;
    printf("OWNER_DIED word taken keeping the bit; dead tid ESRCH\n");

    unsigned *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ro != MAP_FAILED);
    CHECK_ERRNO(futex(ro, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), EFAULT);
    CHECK_ERRNO(futex((void *)16, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), EFAULT);
    CHECK_ERRNO(futex((char *)&pw + 1, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), EINVAL);
    printf("read-only/unmapped EFAULT, misaligned EINVAL\n");
    return 0;
}
