// cxx_latch_barrier: std::latch (C++20): wait blocks until count_down brought it to 0,
// try_wait is false before and true after, arrive_and_wait from four threads; std::barrier
// (C++20): four threads through 30 phases, the completion function runs exactly once per
// phase before anybody leaves it, arrive_and_drop shrinks later phases.
// Pins: [thread.latch], [thread.barrier]; libstdc++ implements both over
// std::atomic::wait / notify_all (futex wait/wake on the counter word).
#include "check.hpp"
#include <barrier>
#include <latch>
#include <thread>
#include <vector>

int main()
{
    std::latch done(4), start(1);
    int arrived = 0;
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; i++)
        ts.emplace_back([&] {
            start.wait();
            __atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
            done.count_down();
        });
    CHECK(!start.try_wait());
    CHECK(!done.try_wait());
    start.count_down();
    done.wait();
    CHECK(done.try_wait());
    CHECK_EQ(arrived, 4);
    for (auto &t : ts)
        t.join();
    ts.clear();
    std::latch all(4);
    for (int i = 0; i < 4; i++)
        ts.emplace_back([&] { all.arrive_and_wait(); });
    for (auto &t : ts)
        t.join();
    ts.clear();
    printf("latch: waited for 4 count_downs; arrive_and_wait x4\n");

    int phase = 0, completions = 0;
    int seen[4][30] = {};
    auto on_completion = [&]() noexcept {
        completions++;
        phase++;
    };
    std::barrier b(4, on_completion);
    for (int i = 0; i < 4; i++)
        ts.emplace_back([&, i] {
            for (int p = 0; p < 30; p++) {
                b.arrive_and_wait();
                seen[i][p] = phase;
            }
        });
    for (auto &t : ts)
        t.join();
    ts.clear();
    CHECK_EQ(completions, 30);
    for (int i = 0; i < 4; i++)
        for (int p = 0; p < 30; p++)
            CHECK_EQ(seen[i][p], p + 1);
    printf("barrier: 30 phases x 4 threads, completion once per phase\n");

    int completions2 = 0;
    auto count = [&]() noexcept { completions2++; };
    std::barrier b2(3, count);
    ts.emplace_back([&] { b2.arrive_and_drop(); });
    for (int i = 0; i < 2; i++)
        ts.emplace_back([&] {
            for (int p = 0; p < 5; p++)
                b2.arrive_and_wait();
        });
    for (auto &t : ts)
        t.join();
    CHECK_EQ(completions2, 5);
    printf("barrier: arrive_and_drop, 5 phases of 2\n");
    return 0;
}
