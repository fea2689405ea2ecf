/* futex_wake_op: FUTEX_WAKE_OP applies the encoded operation to the second word (SET,
 * ADD, OR, ANDN, XOR, OPARG_SHIFT), wakes nr_wake waiters of the first word and, when
 * the comparison of the second word's old value holds, nr_wake2 waiters of the second;
 * it answers the total woken. An unknown operation answers ENOSYS and leaves the word
 * alone; an unknown comparison answers ENOSYS after the operation was applied; an
 * unmapped or read-only second word answers EFAULT, a misaligned one EINVAL.
 * Pins: futex(2) FUTEX_WAKE_OP; kernel/futex/waitwake.c futex_wake_op,
 * futex_atomic_op_inuser (the op runs before the comparison is decoded; nr_wake2 0
 * wakes one, the count is checked after the wake). */
#include "rawfutex.h"
#include <sys/mman.h>

int main(void)
{
    static unsigned a, b;
    struct waiter w[2];
    int op = FUTEX_WAKE_OP_PRIVATE;

    CHECK_EQ(futex(&a, op, 1, VAL2(1), &b, FUTEX_OP(FUTEX_OP_SET, 5, FUTEX_OP_CMP_EQ, 0)), 0);
    CHECK_EQ(b, 5);
    CHECK_EQ(futex(&a, op, 1, VAL2(1), &b, FUTEX_OP(FUTEX_OP_ADD, 3, FUTEX_OP_CMP_GT, 100)),
             0);
    CHECK_EQ(b, 8);
    CHECK_EQ(futex(&a, op, 1, VAL2(1), &b, FUTEX_OP(FUTEX_OP_OR, 0x30, FUTEX_OP_CMP_LT, 0)),
             0);
    CHECK_EQ(b, 0x38);
    CHECK_EQ(futex(&a, op, 1, VAL2(1), &b, FUTEX_OP(FUTEX_OP_ANDN, 0x8, FUTEX_OP_CMP_NE, 0)),
             0);
    CHECK_EQ(b, 0x30);
    CHECK_EQ(futex(&a, op, 1, VAL2(1), &b, FUTEX_OP(FUTEX_OP_XOR, 0x11, FUTEX_OP_CMP_GE, 0)),
             0);
    CHECK_EQ(b, 0x21);
    CHECK_EQ(futex(&a, op, 1, VAL2(1), &b,
                   FUTEX_OP((FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT), 4, FUTEX_OP_CMP_LE, 0)),
             0);
    CHECK_EQ(b, 16);
    /* oparg is a signed 12-bit field */
    CHECK_EQ(futex(&a, op, 1, VAL2(1), &b, FUTEX_OP(FUTEX_OP_ADD, 0xfff, FUTEX_OP_CMP_EQ, 0)),
             0);
    CHECK_EQ(b, 15);
    printf("ops: SET ADD OR ANDN XOR OPARG_SHIFT signed-oparg applied, 0 woken\n");

    /* comparison holds: one from each word */
    b = 16;
    start_waiter(&w[0], &a, FUTEX_WAIT_PRIVATE, 0, 0);
    start_waiter(&w[1], &b, FUTEX_WAIT_PRIVATE, 16, 0);
    wait_queued(&a, 1);
    wait_queued(&b, 1);
    CHECK_EQ(futex(&a, op, 1, VAL2(1), &b, FUTEX_OP(FUTEX_OP_SET, 7, FUTEX_OP_CMP_EQ, 16)), 2);
    CHECK_EQ(b, 7);
    join_waiters(w, 2, 0);
    printf("cmp holds: woke 2\n");

    /* comparison fails: only the first word's waiter */
    start_waiter(&w[0], &a, FUTEX_WAIT_PRIVATE, 0, 0);
    start_waiter(&w[1], &b, FUTEX_WAIT_PRIVATE, 7, 0);
    wait_queued(&a, 1);
    wait_queued(&b, 1);
    CHECK_EQ(futex(&a, op, 1, VAL2(1), &b, FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)), 1);
    CHECK_EQ(b, 8);
    wait_done(w, 1, 1);
    wait_queued(&b, 1);
    /* nr_wake2 0 with the comparison holding still wakes one: the kernel counts
     * "if (++op_ret >= nr_wake2) break" after the wake */
    CHECK_EQ(futex(&a, op, 1, VAL2(0), &b, FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 8)), 1);
    CHECK_EQ(b, 9);
    join_waiters(w, 2, 0);
    printf("cmp fails: woke 1; nr_wake2 0: woke 1\n");

    b = 3;
    CHECK_ERRNO(futex(&a, op, 1, VAL2(1), &b, (5u << 28) | (1 << 12)), ENOSYS);
    CHECK_EQ(b, 3);
    CHECK_ERRNO(futex(&a, op, 1, VAL2(1), &b, (FUTEX_OP_ADD << 28) | (9u << 24) | (1 << 12)),
                ENOSYS);
    CHECK_EQ(b, 4);
    printf("bad op: ENOSYS untouched; bad cmp: ENOSYS applied\n");

    CHECK_ERRNO(futex(&a, op, 1, VAL2(1), (void *)16, FUTEX_OP(FUTEX_OP_SET, 1, 0, 0)),
                EFAULT);
    unsigned *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ro != MAP_FAILED);
    CHECK_ERRNO(futex(&a, op, 1, VAL2(1), ro, FUTEX_OP(FUTEX_OP_SET, 1, 0, 0)), EFAULT);
    CHECK_EQ(*ro, 0);
    CHECK_ERRNO(futex(&a, op, 1, VAL2(1), (char *)&b + 2, FUTEX_OP(FUTEX_OP_SET, 1, 0, 0)),
                EINVAL);
    printf("second word unmapped/read-only: EFAULT; misaligned: EINVAL\n");
    return 0;
}
