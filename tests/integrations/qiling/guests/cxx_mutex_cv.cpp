// cxx_mutex_cv: std::mutex keeps a counter exact across four std::threads;
// std::mutex::try_lock is false while another thread holds it;
// std::condition_variable ping-pong between two threads; wait_for with nobody
// notifying returns cv_status::timeout after at least the duration on steady_clock;
// wait_for with a predicate returns true when notified before a far timeout;
// notify_all wakes four waiters.
// Pins: [thread.mutex.requirements], [thread.condition.condvar] (wait_for: cv_status::
// timeout "if the relative timeout specified by rel_time expired"); libstdc++ implements
// wait_for on steady_clock with pthread_cond_clockwait(CLOCK_MONOTONIC).
#include "check.hpp"
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

int main()
{
    std::mutex m;
    long counter = 0;
    {
        std::vector<std::thread> ts;
        for (int i = 0; i < 4; i++)
            ts.emplace_back([&] {
                for (int j = 0; j < 200; j++) {
                    std::lock_guard g(m);
                    long c = counter;
                    if (j % 16 == 0)
                        std::this_thread::yield();
                    counter = c + 1;
                }
            });
        for (auto &t : ts)
            t.join();
    }
    CHECK_EQ(counter, 800);
    {
        std::unique_lock l(m);
        bool got = true;
        std::thread([&] { got = m.try_lock(); }).join();
        CHECK(!got);
    }
    printf("std::mutex: counter %ld, try_lock false while held\n", counter);

    std::condition_variable cv;
    int turn = 0, rounds = 0;
    std::thread pong([&] {
        for (int i = 0; i < 100; i++) {
            std::unique_lock l(m);
            cv.wait(l, [&] { return turn == 1; });
            turn = 0;
            cv.notify_one();
        }
    });
    for (int i = 0; i < 100; i++) {
        std::unique_lock l(m);
        cv.wait(l, [&] { return turn == 0; });
        turn = 1;
        rounds++;
        cv.notify_one();
    }
    pong.join();
    printf("condition_variable ping-pong: %d rounds\n", rounds);

    {
        std::unique_lock l(m);
        for (int i = 0; i < 2; i++) {
            auto t0 = steady::now();
            std::cv_status st;
            do
                st = cv.wait_for(l, 30ms);
            while (st == std::cv_status::no_timeout);
            CHECK(st == std::cv_status::timeout);
            EXPECT_STEADY_ELAPSED(t0, 30ms);
        }
        auto t0 = steady::now();
        CHECK(!cv.wait_for(l, 30ms, [] { return false; }));
        EXPECT_STEADY_ELAPSED(t0, 30ms);
    }
    printf("wait_for: timeout x2, predicate false after timeout\n");

    bool flag = false;
    {
        std::unique_lock l(m);
        std::thread t([&] {
            std::lock_guard g(m);
            flag = true;
            cv.notify_one();
        });
        CHECK(cv.wait_for(l, 60s, [&] { return flag; }));
        l.unlock();
        t.join();
    }
    printf("wait_for: notified before the timeout\n");

    int waiting = 0, woken = 0;
    bool go = false;
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; i++)
        ts.emplace_back([&] {
            std::unique_lock l(m);
            waiting++;
            cv.notify_all();
            cv.wait(l, [&] { return go; });
            woken++;
        });
    {
        std::unique_lock l(m);
        cv.wait(l, [&] { return waiting == 4; });
        go = true;
        cv.notify_all();
    }
    for (auto &t : ts)
        t.join();
    CHECK_EQ(woken, 4);
    printf("notify_all: %d woken\n", woken);
    return 0;
}
