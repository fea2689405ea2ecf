// cxx_timed_mutex: std::timed_mutex::try_lock_for / try_lock_until while another thread
// holds it return false after at least the duration (steady_clock / system_clock) and
// true once it lets go; std::recursive_timed_mutex nests and times out for others;
// std::shared_timed_mutex: try_lock_for and try_lock_shared_for time out against an
// exclusive owner, try_lock_for times out against a shared owner while
// try_lock_shared_for succeeds, and both succeed once the owners leave;
// std::shared_mutex lock_shared from two threads at once.
// Pins: [thread.timedmutex.class], [thread.sharedtimedmutex.class]; libstdc++ uses
// pthread_mutex_clocklock / pthread_rwlock_clock{rd,wr}lock (CLOCK_MONOTONIC) for
// steady_clock and the timed variants (CLOCK_REALTIME) for system_clock.
#include "check.hpp"
#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>

template <class Lock, class Unlock>
static std::thread hold(std::atomic<int> &state, Lock lock, Unlock unlock)
{
    state = 0;
    std::thread t([&state, lock, unlock] {
        lock();
        state = 1;
        while (state != 2)
            std::this_thread::yield();
        unlock();
    });
    while (state != 1)
        std::this_thread::yield();
    return t;
}

int main()
{
    std::atomic<int> state{0};
    std::timed_mutex tm;
    auto t = hold(state, [&] { tm.lock(); }, [&] { tm.unlock(); });
    auto t0 = steady::now();
    CHECK(!tm.try_lock_for(30ms));
    EXPECT_STEADY_ELAPSED(t0, 30ms);
    auto until = std::chrono::system_clock::now() + 30ms;
    CHECK(!tm.try_lock_until(until));
    CHECK(std::chrono::system_clock::now() >= until);
    CHECK(!tm.try_lock());
    state = 2;
    CHECK(tm.try_lock_for(60s));
    tm.unlock();
    t.join();
    printf("timed_mutex: try_lock_for/until false while held, true after\n");

    std::recursive_timed_mutex rm;
    CHECK(rm.try_lock_for(10ms));
    CHECK(rm.try_lock_for(10ms));
    bool got = true;
    std::thread([&] {
        auto s = steady::now();
        got = rm.try_lock_for(30ms);
        EXPECT_STEADY_ELAPSED(s, 30ms);
    }).join();
    CHECK(!got);
    rm.unlock();
    rm.unlock();
    printf("recursive_timed_mutex: nests, others time out\n");

    std::shared_timed_mutex sm;
    t = hold(state, [&] { sm.lock(); }, [&] { sm.unlock(); });
    t0 = steady::now();
    CHECK(!sm.try_lock_for(30ms));
    EXPECT_STEADY_ELAPSED(t0, 30ms);
    t0 = steady::now();
    CHECK(!sm.try_lock_shared_for(30ms));
    EXPECT_STEADY_ELAPSED(t0, 30ms);
    until = std::chrono::system_clock::now() + 30ms;
    CHECK(!sm.try_lock_shared_until(until));
    CHECK(std::chrono::system_clock::now() >= until);
    state = 2;
    CHECK(sm.try_lock_shared_for(60s));
    sm.unlock_shared();
    t.join();
    printf("shared_timed_mutex exclusive-held: try_lock_for, try_lock_shared_for/until "
           "time out\n");

    t = hold(state, [&] { sm.lock_shared(); }, [&] { sm.unlock_shared(); });
    t0 = steady::now();
    CHECK(!sm.try_lock_for(30ms));
    EXPECT_STEADY_ELAPSED(t0, 30ms);
    CHECK(sm.try_lock_shared_for(60s));
    sm.unlock_shared();
    state = 2;
    CHECK(sm.try_lock_for(60s));
    sm.unlock();
    t.join();
    printf("shared_timed_mutex shared-held: try_lock_for times out, shared joins\n");

    std::shared_mutex shm;
    t = hold(state, [&] { shm.lock_shared(); }, [&] { shm.unlock_shared(); });
    shm.lock_shared();
    CHECK(!shm.try_lock());
    shm.unlock_shared();
    state = 2;
    t.join();
    shm.lock();
    shm.unlock();
    printf("shared_mutex: two shared owners, exclusive after\n");
    return 0;
}
