// cxx_atomic_wait: std::atomic<int>::wait / notify_one / notify_all (C++20): wait returns
// at once when the value already differs; two threads ping-pong 200 times through
// wait/notify_one; four waiters are all released by one notify_all; std::atomic_flag
// wait/notify and std::atomic<long> (not a futex-sized type) work the same.
// Pins: [atomics.wait] ("blocks until it is unblocked by a notify and the value
// changed"); libstdc++ __atomic_wait: FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE on the word
// for 4-byte types, a proxy word of its waiter pool otherwise.
#include "check.hpp"
#include <atomic>
#include <thread>
#include <vector>

int main()
{
    std::atomic<int> a{5};
    a.wait(4); // differs: returns at once
    printf("wait on a different value: returns\n");

    std::atomic<int> turn{0};
    int rounds = 0;
    std::thread p([&] {
        for (int i = 0; i < 200; i++) {
            turn.wait(0);
            turn.store(0);
            turn.notify_one();
        }
    });
    for (int i = 0; i < 200; i++) {
        turn.store(1);
        turn.notify_one();
        turn.wait(1);
        rounds++;
    }
    p.join();
    printf("notify_one ping-pong: %d rounds\n", rounds);

    std::atomic<int> gate{0};
    std::atomic<int> woken{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; i++)
        ts.emplace_back([&] {
            gate.wait(0);
            woken.fetch_add(1);
        });
    for (int i = 0; i < 10; i++)
        std::this_thread::yield();
    gate.store(1);
    gate.notify_all();
    for (auto &t : ts)
        t.join();
    CHECK_EQ(woken.load(), 4);
    printf("notify_all: %d waiters released\n", woken.load());

    std::atomic_flag f;
    std::thread ft([&] {
        f.wait(false);
        CHECK(f.test());
    });
    f.test_and_set();
    f.notify_one();
    ft.join();

    std::atomic<long> big{0};
    std::thread bt([&] {
        big.wait(0);
        CHECK_EQ(big.load(), 1L << 40);
    });
    big.store(1L << 40);
    big.notify_all();
    bt.join();
    printf("atomic_flag and atomic<long>: wait/notify\n");
    return 0;
}
