/* futex_bitset: FUTEX_WAKE_BITSET wakes only waiters whose FUTEX_WAIT_BITSET mask
 * shares a bit with its own; the others stay asleep on the queue (not lost): waiters with
 * masks 0x1, 0x2 and a plain FUTEX_WAIT (mask MATCH_ANY): WAKE_BITSET 0x4 wakes the plain
 * one, 0x2 the second, 0x2 again nobody, plain FUTEX_WAKE the first.
 * Pins: futex(2) FUTEX_WAIT_BITSET / FUTEX_WAKE_BITSET ("the bit-wise AND ... is nonzero");
 * kernel/futex/waitwake.c futex_wake (skips non-matching waiters). */
#include "rawfutex.h"

int main(void)
{
    static unsigned a;
    struct waiter w[3];
    start_waiter(&w[0], &a, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x1);
    start_waiter(&w[1], &a, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x2);
    start_waiter(&w[2], &a, FUTEX_WAIT_PRIVATE, 0, 0);
    wait_queued(&a, 3);

    CHECK_EQ(futex(&a, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x4), 1);
    wait_done(w, 3, 1);
    CHECK_EQ(w[2].done, 1);
    wait_queued(&a, 2);
    printf("wake 0x4: the plain waiter\n");

    CHECK_EQ(futex(&a, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x2), 1);
    wait_done(w, 3, 2);
    CHECK_EQ(w[1].done, 1);
    wait_queued(&a, 1);
    CHECK_EQ(futex(&a, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x2), 0);
    CHECK_EQ(w[0].done, 0);
    printf("wake 0x2: the 0x2 waiter, then nobody\n");

    CHECK_EQ(futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    join_waiters(w, 3, 0);
    printf("plain WAKE: the 0x1 waiter\n");
    return 0;
}
