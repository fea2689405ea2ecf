/* futex_wake_requeue: FUTEX_WAKE answers how many it woke (3 asleep: WAKE 2 -> 2, then
 * WAKE INT_MAX -> 1); FUTEX_CMP_REQUEUE with a stale val3 answers EAGAIN and moves
 * nobody, with the right one wakes nr_wake, moves up to nr_requeue waiters to the second
 * word and answers the sum; FUTEX_REQUEUE moves without comparing; a private FUTEX_WAKE
 * does not wake a shared (non-PRIVATE) waiter of the same word, a shared one does;
 * FUTEX_WAKE with nr_wake 0 wakes one (the count is checked after the wake).
 * Pins: futex(2) FUTEX_WAKE / FUTEX_REQUEUE / FUTEX_CMP_REQUEUE RETURN VALUE; LTP
 * futex_wake02, futex_cmp_requeue01; kernel/futex/core.c get_futex_key (private keys
 * (mm, address) vs shared keys FUT_OFF_MMSHARED). */
#include "rawfutex.h"

int main(void)
{
    static unsigned a, b;
    struct waiter w[4];

    for (int i = 0; i < 3; i++)
        start_waiter(&w[i], &a, FUTEX_WAIT_PRIVATE, 0, 0);
    wait_queued(&a, 3);
    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0), 2);
    wait_done(w, 3, 2);
    wait_queued(&a, 1);
    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    join_waiters(w, 3, 0);
    printf("WAKE: 3 asleep, woke 2 then 1\n");

    for (int i = 0; i < 4; i++)
        start_waiter(&w[i], &a, FUTEX_WAIT_PRIVATE, 0, 0);
    wait_queued(&a, 4);
    CHECK_ERRNO(futex(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(2), &b, 1), EAGAIN);
    wait_queued(&a, 4);
    CHECK_EQ(futex(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(2), &b, 0), 3);
    wait_done(w, 4, 1);
    wait_queued(&a, 1);
    wait_queued(&b, 2);
    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    CHECK_EQ(futex(&b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 2);
    join_waiters(w, 4, 0);
    printf("CMP_REQUEUE: stale val3 EAGAIN; woke 1, moved 2, answered 3\n");

    for (int i = 0; i < 2; i++)
        start_waiter(&w[i], &a, FUTEX_WAIT_PRIVATE, 0, 0);
    wait_queued(&a, 2);
    CHECK_EQ(futex(&a, FUTEX_REQUEUE_PRIVATE, 0, VAL2(INT_MAX), &b, 0), 2);
    CHECK_EQ(queued(&a), 0);
    CHECK_EQ(futex(&b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 2);
    join_waiters(w, 2, 0);
    printf("REQUEUE: moved 2\n");

    start_waiter(&w[0], &a, FUTEX_WAIT, 0, 0);
    wait_queued_(&a, 1, 0);
    CHECK_EQ(queued(&a), 0); /* the private key is another queue */
    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 0);
    CHECK_EQ(count_done(w, 1), 0);
    CHECK_EQ(futex(&a, FUTEX_WAKE, INT_MAX, NULL, NULL, 0), 1);
    join_waiters(w, 1, 0);
    printf("shared waiter: private WAKE 0, shared WAKE 1\n");

    /* nr_wake 0 still wakes one: futex_wake checks "if (++ret >= nr_wake) break" after
     * the wake */
    for (int i = 0; i < 2; i++)
        start_waiter(&w[i], &a, FUTEX_WAIT_PRIVATE, 0, 0);
    wait_queued(&a, 2);
    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, 0, NULL, NULL, 0), 1);
    wait_done(w, 2, 1);
    wait_queued(&a, 1);
    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, 0, NULL, NULL, 0), 1);
    join_waiters(w, 2, 0);
    printf("WAKE 0 with waiters: woke 1\n");
    return 0;
}
