// C++ side of check.h: the same CHECK macros (they print "FAIL <line>: ..." and exit 1),
// plus a steady-clock helper for the timed waits of <mutex>, <condition_variable>,
// <semaphore> and <shared_mutex> (libstdc++ waits on CLOCK_MONOTONIC for steady_clock).
#ifndef FUTEX_CORPUS_CHECK_HPP
#define FUTEX_CORPUS_CHECK_HPP

#include "check.h"
#include <chrono>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// After a timed-out wait that started at `start`: at least `d` has passed on steady_clock.
#define EXPECT_STEADY_ELAPSED(start, d)                                             \
    do {                                                                            \
        auto el_ = steady::now() - (start);                                         \
        if (el_ < (d)) {                                                            \
            printf("FAIL %d: timed out after %lld ns < %lld ns\n", __LINE__,        \
                   (long long)std::chrono::nanoseconds(el_).count(),                \
                   (long long)std::chrono::nanoseconds(d).count());                 \
            fflush(stdout);                                                         \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

#endif
