/* Shared helpers of the Qiling guest corpus (tests/integrations/qiling/guests).
 *
 * Every guest checks itself: CHECK* print "FAIL <line>: <what>" and exit(1) on the first
 * failed check. Guests print only deterministic lines (no tids, addresses or times) so
 * the native run and the emulated run can be compared line for line.
 *
 * Timed waits: a wait that answers ETIMEDOUT must have let at least its timeout pass on
 * the clock it used (EXPECT_PASSED); no upper bound is asserted (the emulator is slow).
 *
 * settle(): the waits that must happen "after the other thread is asleep" never sleep and
 * hope; they poll a fact (a futex word, a counter under a lock) and sched_yield between
 * polls, which under Qiling hands the CPU to the next guest thread.
 */
#ifndef FUTEX_CORPUS_CHECK_H
#define FUTEX_CORPUS_CHECK_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            printf("FAIL %d: %s\n", __LINE__, #cond);                       \
            fflush(stdout);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

#define CHECK_EQ(a, b)                                                      \
    do {                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        if (a_ != b_) {                                                     \
            printf("FAIL %d: %s == %s (%lld != %lld)\n", __LINE__, #a, #b,  \
                   a_, b_);                                                 \
            fflush(stdout);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* A pthread-style call (returns 0 or an errno value) must answer `want`. */
#define CHECK_RC(call, want)                                                \
    do {                                                                    \
        int rc_ = (call);                                                   \
        if (rc_ != (want)) {                                                \
            printf("FAIL %d: %s -> %s (wanted %s)\n", __LINE__, #call,      \
                   errname(rc_), errname(want));                            \
            fflush(stdout);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* A raw syscall (returns -1 and sets errno) must fail with `want` (0: must succeed). */
#define CHECK_ERRNO(call, want)                                             \
    do {                                                                    \
        long r_ = (long)(call);                                             \
        int e_ = r_ == -1 ? errno : 0;                                      \
        if (e_ != (want)) {                                                 \
            printf("FAIL %d: %s -> %ld %s (wanted %s)\n", __LINE__, #call,  \
                   r_, errname(e_), errname(want));                         \
            fflush(stdout);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static inline const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case EAGAIN: return "EAGAIN";
    case EBUSY: return "EBUSY";
    case EDEADLK: return "EDEADLK";
    case EFAULT: return "EFAULT";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    case EOWNERDEAD: return "EOWNERDEAD";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EOVERFLOW: return "EOVERFLOW";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno %d", e);
        return buf;
    }
    }
}

#define MS 1000000LL
#define SEC 1000000000LL

static inline long long ts_ns(struct timespec t)
{
    return (long long)t.tv_sec * SEC + t.tv_nsec;
}

static inline struct timespec ns_ts(long long ns)
{
    struct timespec t = { .tv_sec = ns / SEC, .tv_nsec = ns % SEC };
    return t;
}

static inline long long now_ns(clockid_t clock)
{
    struct timespec t;
    CHECK(clock_gettime(clock, &t) == 0);
    return ts_ns(t);
}

/* An absolute deadline `ns` from now on `clock`. */
static inline struct timespec deadline_in(clockid_t clock, long long ns)
{
    return ns_ts(now_ns(clock) + ns);
}

/* After a timed-out wait: `clock` has reached `deadline`. */
#define EXPECT_PASSED(clock, deadline)                                      \
    do {                                                                    \
        long long now_ = now_ns(clock), dl_ = ts_ns(deadline);              \
        if (now_ < dl_) {                                                   \
            printf("FAIL %d: timed out %lld ns before its deadline\n",      \
                   __LINE__, dl_ - now_);                                   \
            fflush(stdout);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* After a timed-out relative wait that started at `start_ns` on `clock`. */
#define EXPECT_ELAPSED(clock, start_ns, want_ns)                            \
    do {                                                                    \
        long long el_ = now_ns(clock) - (start_ns);                         \
        if (el_ < (want_ns)) {                                              \
            printf("FAIL %d: timed out after %lld ns < %lld ns\n",          \
                   __LINE__, el_, (long long)(want_ns));                    \
            fflush(stdout);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static inline long gettid_(void) { return syscall(SYS_gettid); }

#endif
