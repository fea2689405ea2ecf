/* futex_waitv: the vectored wait (syscall 449, Linux >= 5.16). It answers the index of
 * the futex that woke it (private and shared entries, each woken by the matching
 * FUTEX_WAKE, which counts it); EAGAIN if any word differs from its expected value;
 * ETIMEDOUT after an absolute CLOCK_MONOTONIC or CLOCK_REALTIME deadline; EINVAL for
 * flags, a count of 0 or over 128, a NULL array, an entry without FUTEX2_SIZE_U32, a
 * nonzero __reserved, a value wider than 32 bits, a misaligned word, another clock or a
 * bad timespec; EFAULT for an unmapped array or word. If the kernel answers ENOSYS the
 * program prints "futex_waitv: ENOSYS" and stops (native and emulated agree either way).
 * Pins: futex_waitv(2) (Documentation/userspace-api/futex2.rst); kernel/futex/syscalls.c
 * sys_futex_waitv, futex_parse_waitv, futex2_setup_timeout; kernel selftest
 * tools/testing/selftests/futex/functional/futex_waitv.c. */
#include "rawfutex.h"

#define NR_futex_waitv 449
#define F2_SIZE_U32 0x02
#define F2_PRIVATE 128

struct fwv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

static long waitv(struct fwv *w, unsigned n, unsigned flags, const struct timespec *to,
                  clockid_t clock)
{
    return syscall(NR_futex_waitv, w, n, flags, to, clock);
}

static unsigned words[3];
static struct fwv vec[3];

static void fill(uint32_t flags)
{
    for (int i = 0; i < 3; i++) {
        words[i] = 0;
        vec[i] = (struct fwv){ .val = 0, .uaddr = (uintptr_t)&words[i], .flags = flags };
    }
}

struct vwaiter {
    pthread_t thread;
    long result;
};

static void *vwaiter_main(void *arg)
{
    struct vwaiter *w = arg;
    long r = waitv(vec, 3, 0, NULL, 0);
    w->result = r == -1 ? -errno : r;
    return NULL;
}

/* Start a waiter on vec and wake it through word `which` (FUTEX_WAKE with `op`), polling
 * until the wake finds it queued; answers the index it returned. */
static long wake_through(int which, int op)
{
    struct vwaiter w = { 0 };
    CHECK_RC(pthread_create(&w.thread, NULL, vwaiter_main, &w), 0);
    long n;
    while ((n = futex(&words[which], op, 1, NULL, NULL, 0)) == 0)
        sched_yield();
    CHECK_EQ(n, 1);
    CHECK_RC(pthread_join(w.thread, NULL), 0);
    return w.result;
}

int main(void)
{
    fill(F2_SIZE_U32 | F2_PRIVATE);
    words[1] = 1;
    long r = waitv(vec, 3, 0, NULL, 0);
    int e = r == -1 ? errno : 0;
    if (e == ENOSYS) {
        printf("futex_waitv: ENOSYS\n");
        return 0;
    }
    CHECK_RC(e, EAGAIN);
    printf("mismatch: EAGAIN\n");

    fill(F2_SIZE_U32 | F2_PRIVATE);
    struct timespec dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_ERRNO(waitv(vec, 3, 0, &dl, CLOCK_MONOTONIC), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_MONOTONIC, dl);
    dl = deadline_in(CLOCK_REALTIME, 30 * MS);
    CHECK_ERRNO(waitv(vec, 3, 0, &dl, CLOCK_REALTIME), ETIMEDOUT);
    EXPECT_PASSED(CLOCK_REALTIME, dl);
    struct timespec past = ns_ts(now_ns(CLOCK_MONOTONIC) - SEC);
    CHECK_ERRNO(waitv(vec, 3, 0, &past, CLOCK_MONOTONIC), ETIMEDOUT);
    printf("deadline monotonic/realtime/past: ETIMEDOUT\n");

    CHECK_EQ(wake_through(1, FUTEX_WAKE_PRIVATE), 1);
    CHECK_EQ(wake_through(0, FUTEX_WAKE_PRIVATE), 0);
    CHECK_EQ(wake_through(2, FUTEX_WAKE_PRIVATE), 2);
    fill(F2_SIZE_U32);
    CHECK_EQ(wake_through(2, FUTEX_WAKE), 2);
    fill(F2_SIZE_U32 | F2_PRIVATE);
    vec[0].flags = F2_SIZE_U32; /* mixed: entry 0 shared */
    CHECK_EQ(wake_through(0, FUTEX_WAKE), 0);
    printf("woken through 1, 0, 2, shared 2, mixed shared 0: index answered\n");

    fill(F2_SIZE_U32 | F2_PRIVATE);
    CHECK_ERRNO(waitv(vec, 3, 1, NULL, 0), EINVAL);
    CHECK_ERRNO(waitv(vec, 0, 0, NULL, 0), EINVAL);
    CHECK_ERRNO(waitv(vec, 129, 0, NULL, 0), EINVAL);
    CHECK_ERRNO(waitv(NULL, 1, 0, NULL, 0), EINVAL);
    dl = deadline_in(CLOCK_MONOTONIC, 30 * MS);
    CHECK_ERRNO(waitv(vec, 3, 0, &dl, CLOCK_BOOTTIME), EINVAL);
    struct timespec bad = { .tv_sec = dl.tv_sec, .tv_nsec = 1000000000 };
    CHECK_ERRNO(waitv(vec, 3, 0, &bad, CLOCK_MONOTONIC), EINVAL);
    vec[1].flags = F2_PRIVATE; /* size u8: not supported */
    CHECK_ERRNO(waitv(vec, 3, 0, NULL, 0), EINVAL);
    fill(F2_SIZE_U32 | F2_PRIVATE);
    vec[2].reserved = 1;
    CHECK_ERRNO(waitv(vec, 3, 0, NULL, 0), EINVAL);
    fill(F2_SIZE_U32 | F2_PRIVATE);
    vec[2].val = 1ull << 32;
    CHECK_ERRNO(waitv(vec, 3, 0, NULL, 0), EINVAL);
    fill(F2_SIZE_U32 | F2_PRIVATE);
    vec[0].uaddr += 1;
    CHECK_ERRNO(waitv(vec, 3, 0, NULL, 0), EINVAL);
    printf("bad flags/count/array/entry/clock/timespec/alignment: EINVAL\n");

    fill(F2_SIZE_U32 | F2_PRIVATE);
    CHECK_ERRNO(waitv((struct fwv *)16, 1, 0, NULL, 0), EFAULT);
    vec[1].uaddr = 16;
    CHECK_ERRNO(waitv(vec, 3, 0, NULL, 0), EFAULT);
    printf("unmapped array/word: EFAULT\n");
    return 0;
}
