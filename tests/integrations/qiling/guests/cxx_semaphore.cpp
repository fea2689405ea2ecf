// cxx_semaphore: std::counting_semaphore / std::binary_semaphore (C++20): try_acquire is
// false at 0; try_acquire_for at 0 returns false after at least the duration on
// steady_clock, try_acquire_until likewise on system_clock; a release from another thread
// wakes acquire and try_acquire_for with a far timeout; release(n) lets n acquirers
// through; two binary semaphores ping-pong 200 times.
// Pins: [thread.sema.cnt] (try_acquire_for: "false if the timeout expired"); libstdc++'s
// __atomic_semaphore waits with futex(FUTEX_WAIT_BITSET) through __atomic_wait.
#include "check.hpp"
#include <semaphore>
#include <thread>
#include <vector>

int main()
{
    std::counting_semaphore<8> s(0);
    CHECK(!s.try_acquire());
    auto t0 = steady::now();
    CHECK(!s.try_acquire_for(30ms));
    EXPECT_STEADY_ELAPSED(t0, 30ms);
    auto until = std::chrono::system_clock::now() + 30ms;
    CHECK(!s.try_acquire_until(until));
    CHECK(std::chrono::system_clock::now() >= until);
    printf("empty: try_acquire false, try_acquire_for/until false after the timeout\n");

    std::thread t([&] {
        for (int i = 0; i < 10; i++)
            std::this_thread::yield();
        s.release();
    });
    s.acquire();
    t.join();
    std::thread t2([&] {
        for (int i = 0; i < 10; i++)
            std::this_thread::yield();
        s.release();
    });
    CHECK(s.try_acquire_for(60s));
    t2.join();
    printf("released by another thread: acquire, try_acquire_for true\n");

    std::vector<std::thread> ts;
    int through = 0;
    for (int i = 0; i < 4; i++)
        ts.emplace_back([&] {
            s.acquire();
            __atomic_add_fetch(&through, 1, __ATOMIC_SEQ_CST);
        });
    s.release(4);
    for (auto &th : ts)
        th.join();
    CHECK_EQ(through, 4);
    CHECK(!s.try_acquire());
    printf("release(4): 4 acquirers through\n");

    std::binary_semaphore ping(0), pong(0);
    int rounds = 0;
    std::thread p([&] {
        for (int i = 0; i < 200; i++) {
            ping.acquire();
            pong.release();
        }
    });
    for (int i = 0; i < 200; i++) {
        ping.release();
        pong.acquire();
        rounds++;
    }
    p.join();
    printf("binary_semaphore ping-pong: %d rounds\n", rounds);
    return 0;
}
