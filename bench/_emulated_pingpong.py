"""Section 6b of ``bench_emulated.py``: a PI hand-off ping-pong between two threads.

One PI word is bounced between the timing thread and a helper thread, on the host kernel
and on the emulated one: each UNLOCK_PI hands the word to the other thread, blocked in
FUTEX_LOCK_PI (:class:`PingPong` states how every unlock is made a hand-off).  Both
threads are pinned to one CPU (where the platform lets the process choose) and take turns
on it, so a sample's on-CPU check uses the process's CPU time; unpinned, the round trips
are not checked.  Nothing can hang: the host's LOCK_PI has an absolute timeout refreshed
before every sample, the emulated threads' blocked calls are ended by a
:class:`_Watchdog`, and every join is bounded (``PI_TIMEOUT_S``, ``JOIN_TIMEOUT_S``).
"""

from __future__ import annotations

import ctypes
import os
import resource
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from _emulated_common import (
    EINVAL,
    JOIN_TIMEOUT_S,
    LOCK_PI_PRIVATE,
    PAGE,
    PI_TIMEOUT_S,
    PROT_RW,
    UNLOCK_PI_PRIVATE,
    WAKE_PRIVATE,
    Config,
    FutexCall,
    new_process,
)
from _host import hostfutex as _hostfutex
from _timing import RETRIES, BenchError, Runner, call_loop, expect, interleaved, log, paired_ratio

from tests.support.hostfutex import MAP_ANONYMOUS, MAP_PRIVATE, host_futex, host_mmap, host_munmap


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Watchdog:
    """Calls ``on_expiry()`` once if :meth:`refresh` is not called for ``seconds``."""

    def __init__(self, on_expiry: Callable[[], None], seconds: float) -> None:
        self.on_expiry = on_expiry
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pi-watchdog", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def _run(self) -> None:
        while not self._done.wait(max(0.01, self.deadline - time.monotonic())):
            if time.monotonic() >= self.deadline:
                self.fired = True
                self.on_expiry()
                return

    def close(self) -> None:
        self._done.set()
        self._thread.join(JOIN_TIMEOUT_S)


_syscall_gil = ctypes.PyDLL(None, use_errno=True).syscall  # PyDLL: keeps the GIL
_syscall_gil.restype = ctypes.c_long
_syscall_gil.argtypes = [ctypes.c_long] * 7


def host_futex_gil(uaddr: int, op: int, val: int, utime: int, uaddr2: int, val3: int) -> int:
    """``host_futex`` without dropping the GIL around the syscall (for calls that never
    block: the ping-pong's UNLOCK_PI, made with the GIL held like the emulated one)."""
    as_long = _hostfutex.host_libc().as_long
    r: int = _syscall_gil(
        _hostfutex.SYS_futex,
        as_long(uaddr),
        as_long(op),
        as_long(val),
        as_long(utime),
        as_long(uaddr2),
        as_long(val3),
    )
    return r if r >= 0 else -ctypes.get_errno()


#: A ping-pong thread gives up after this many sched_yields waiting for the other thread
#: to queue in LOCK_PI (seconds), or sooner once the other thread is gone.
SPIN_LIMIT = 10_000_000


class PingPong:
    """One PI word bounced between two threads: the calling (timing) thread and a helper.

    Between samples the calling thread holds the word and the helper is blocked in
    FUTEX_LOCK_PI on it.  A round trip: the caller's UNLOCK_PI hands the word to the
    helper and the caller's LOCK_PI blocks; the helper wakes owning it, and its UNLOCK_PI
    hands it back before it blocks in LOCK_PI again.  Both threads run the same Python.

    Every UNLOCK_PI must find the other thread queued, or it would just clear the word
    (no hand-off) and the other's LOCK_PI would take it without sleeping.  With the GIL,
    the thread woken by a hand-off (or by the GIL the other drops on its way into
    LOCK_PI) can run before the other has entered the kernel, so before each UNLOCK_PI a
    thread probes with FUTEX_WAKE_PRIVATE, which is EINVAL exactly when a PI waiter is
    queued on the word (``futex_wake`` meets its PI state), and yields the CPU until it
    is (``spins``).  The UNLOCK_PI is made with the GIL held (``unlock``), as the
    emulated kernel's is.  A non-zero result anywhere fails the sample.
    """

    def __init__(
        self,
        tag: str,
        calls: tuple[FutexCall, FutexCall],
        unlocks: tuple[FutexCall, FutexCall],
        uaddr: int,
        utime: int,
        round_trips: int,
        cap: int,
        cpu: int | None,
        unstick: Callable[[], None] | None = None,
    ) -> None:
        self.tag = tag
        self.unstick = unstick  # ends the threads' blocked calls (emulated)
        self.calls = calls  # (caller's, helper's) blocking calls: LOCK_PI and the probe
        self.unlocks = unlocks  # (caller's, helper's) UNLOCK_PI
        self.uaddr = uaddr
        self.utime = utime  # LOCK_PI's timeout pointer (0: none)
        self.round_trips = round_trips
        self.cap = cap  # the helper's iteration limit
        self.cpu = cpu  # pin the helper to this CPU
        self.stop = [False]
        self.spins = [0]  # yields waiting for the other thread to queue
        self.errors: list[str] = []
        self.thread: threading.Thread | None = None

    def _helper(self) -> None:
        f, unlock = self.calls[1], self.unlocks[1]
        a, utime, stop, spins, errors = self.uaddr, self.utime, self.stop, self.spins, self.errors
        yield_cpu = os.sched_yield
        try:
            if self.cpu is not None:
                os.sched_setaffinity(0, {self.cpu})
            for _ in range(self.cap):
                r = f(a, LOCK_PI_PRIVATE, 0, utime, 0, 0)
                if r:
                    errors.append(f"helper LOCK_PI returned {r}")
                    return
                if stop[0]:
                    r = unlock(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)
                    if r:
                        errors.append(f"helper's last UNLOCK_PI returned {r}")
                    return
                n = 0
                while f(a, WAKE_PRIVATE, 1, 0, 0, 0) != EINVAL:
                    n += 1
                    if not n & 0x3FF and (stop[0] or n > SPIN_LIMIT):
                        errors.append("the timing thread never queued in LOCK_PI")
                        return
                    yield_cpu()
                if n:
                    spins[0] += n
                r = unlock(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)
                if r:
                    errors.append(f"helper UNLOCK_PI returned {r}")
                    return
            errors.append("the helper reached its iteration limit")
        except BaseException as exc:  # reported by the timing thread
            errors.append(f"helper raised {exc!r}")

    def start(self) -> None:
        """Take the word, start the helper, and wait until it is blocked on the word."""
        f, a = self.calls[0], self.uaddr
        expect(f(a, LOCK_PI_PRIVATE, 0, 0, 0, 0), 0, f"{self.tag} LOCK_PI")
        self.thread = threading.Thread(target=self._helper, name=f"pi-{self.tag}", daemon=True)
        self.thread.start()
        until = time.monotonic() + JOIN_TIMEOUT_S
        while f(a, WAKE_PRIVATE, 1, 0, 0, 0) != EINVAL:
            self.check()
            if time.monotonic() > until:
                raise BenchError(f"{self.tag}: the helper thread never blocked in LOCK_PI")
            time.sleep(0.001)

    def runner(self) -> Runner:
        f, unlock, a, utime = self.calls[0], self.unlocks[0], self.uaddr, self.utime
        spins, errors = self.spins, self.errors
        yield_cpu = os.sched_yield
        rng = range(self.round_trips)

        def run() -> None:
            for _ in rng:
                n = 0
                while f(a, WAKE_PRIVATE, 1, 0, 0, 0) != EINVAL:
                    n += 1
                    if not n & 0x3FF and (n > SPIN_LIMIT or not self.helper_alive()):
                        raise BenchError(f"{self.tag}: the helper never queued; {errors}")
                    yield_cpu()
                if n:
                    spins[0] += n
                if unlock(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0) or f(
                    a, LOCK_PI_PRIVATE, 0, utime, 0, 0
                ):
                    raise BenchError(f"{self.tag}: a PI call failed; {errors}")

        return run

    def probe_runner(self, n: int) -> Runner:
        """``n`` probes, as the round trips make them (the helper is queued): their cost."""
        return call_loop(self.calls[0], (self.uaddr, WAKE_PRIVATE, 1, 0, 0, 0), n)

    def helper_alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and not self.errors

    def check(self) -> None:
        if self.errors:
            raise BenchError(f"{self.tag} ping-pong: {'; '.join(self.errors)}")

    def close(self) -> None:
        """Hand the word to the helper with the stop flag set; it unlocks and exits."""
        th = self.thread
        if th is None:
            return
        self.thread = None
        self.stop[0] = True
        if th.is_alive():
            self.unlocks[0](self.uaddr, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)
        th.join(JOIN_TIMEOUT_S)
        if th.is_alive() and self.unstick is not None:
            self.unstick()
            th.join(JOIN_TIMEOUT_S)
        if th.is_alive():
            raise BenchError(f"{self.tag}: the helper thread did not finish")


def _pin_cpu() -> tuple[int | None, set[int] | None]:
    """A CPU for both ping-pong threads, and the affinity to restore afterwards."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return None, None
    return max(allowed), set(allowed)


def bench_pi_pingpong(cfg: Config) -> dict[str, Any]:
    k_rt = cfg.pi_round_trips
    log(f"6b. PI hand-off ping-pong between two threads ({k_rt:,} round trips per sample)")
    # Round trips the helper may make: warm-up and every sample with all its retries.
    cap = (1 + cfg.repeats * (RETRIES + 1)) * k_rt + 10
    cpu, restore = _pin_cpu()
    pongs: dict[str, PingPong] = {}
    switches: dict[str, list[float]] = {}  # per run: context switches per round trip
    queued: list[float] = []  # emulated, per run: LOCK_PIs that queued, per round trip
    spins: dict[str, list[float]] = {}  # per run: yields per round trip

    _, p, ta = new_process()
    tb = p.new_task()
    e_word = p.mmap(PAGE)
    e_bucket = p.futex.bucket_of(p.futex.key(p.space, e_word, True))

    def kill_blocked() -> None:
        for task in (ta, tb):
            pending = task.blocked
            if pending is not None:
                pending.kill()

    watchdog = _Watchdog(kill_blocked, PI_TIMEOUT_S)
    emu_calls = (ta.syscall_futex, tb.syscall_futex)
    pongs["emu"] = PingPong(
        "emu", emu_calls, emu_calls, e_word, 0, k_rt, cap, cpu, unstick=kill_blocked
    )
    host = _hostfutex.available()
    r_page = 0
    ts = Timespec(0, 0)

    def refresh() -> None:
        watchdog.refresh()
        ts.tv_sec = int(time.time() + PI_TIMEOUT_S)

    refresh()
    if host:
        r_page = host_mmap(0, PAGE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        ctypes.c_uint32.from_address(r_page).value = 0
        pongs["real"] = PingPong(
            "real",
            (host_futex, host_futex),
            (host_futex_gil, host_futex_gil),
            r_page,
            ctypes.addressof(ts),
            k_rt,
            cap,
            cpu,
        )
    last: dict[str, int] = {}

    def counters() -> dict[str, int]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out = {"csw": ru.ru_nvcsw + ru.ru_nivcsw, "queued": e_bucket.waits}
        for tag, pp in pongs.items():
            out[tag] = pp.spins[0]
        return out

    def between(name: str) -> None:
        refresh()
        now = counters()
        if name in pongs:  # a round-trip sample: what it did, per round trip
            pongs[name].check()
            switches.setdefault(name, []).append((now["csw"] - last["csw"]) / k_rt)
            spins.setdefault(name, []).append((now[name] - last[name]) / k_rt)
            if name == "emu":
                queued.append((now["queued"] - last["queued"]) / k_rt)
        last.update(now)

    n_probe = cfg.call_n
    runners: dict[str, tuple[Runner, int]] = {}
    clocks: dict[str, Callable[[], int] | None] = {}
    for tag, pp in pongs.items():
        runners[tag] = (pp.runner(), k_rt)
        # Two threads taking turns on one CPU: the process's CPU time is the on-CPU
        # measure (unpinned, no check).
        clocks[tag] = time.process_time_ns if cpu is not None else None
        runners[tag + " probe"] = (pp.probe_runner(n_probe), n_probe)
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        for pp in pongs.values():
            pp.start()
        last.update(counters())
        stats = interleaved(runners, cfg.repeats, between, clocks)
        for pp in pongs.values():
            pp.close()
    finally:
        try:
            for pp in pongs.values():
                pp.close()
        finally:
            watchdog.close()
            if restore is not None:
                os.sched_setaffinity(0, restore)
            if r_page:
                host_munmap(r_page, PAGE)
    if watchdog.fired:
        raise BenchError("the emulated ping-pong hit its watchdog")
    expect(p.load_u32(e_word), 0, "emulated PI word after the ping-pong")
    p.futex.check_invariants()

    e, r = stats["emu"], stats.get("real")
    ep, rp = stats["emu probe"], stats.get("real probe")
    e_net = [rt - 2 * pr for rt, pr in zip(e.samples, ep.samples, strict=True)]
    r_net = [rt - 2 * pr for rt, pr in zip(r.samples, rp.samples, strict=True)] if r and rp else []
    net_ratio = (
        statistics.median(a / b for a, b in zip(e_net, r_net, strict=True)) if r_net else None
    )
    return {
        "call": "round trip: UNLOCK_PI hands off to the thread blocked in LOCK_PI, "
        "which hands it back",
        "round_trips_per_sample": k_rt,
        "pinned_cpu": cpu,
        "emulated": e.as_json(),
        "real": r.as_json() if r else None,
        "ratio": paired_ratio(e, r) if r else None,
        "ratio_of_medians": e.median / r.median if r else None,
        "ratio_of_mins": e.min / r.min if r else None,
        "probe": {
            "emulated": ep.as_json(),
            "real": rp.as_json() if rp else None,
            "ratio": paired_ratio(ep, rp) if rp else None,
            "ratio_of_mins": ep.min / rp.min if rp else None,
        },
        "net_of_probes": {
            "emulated_median_ns": statistics.median(e_net),
            "emulated_min_ns": min(e_net),
            "real_median_ns": statistics.median(r_net) if r_net else None,
            "real_min_ns": min(r_net) if r_net else None,
            "ratio": net_ratio,
            "ratio_of_mins": min(e_net) / min(r_net) if r_net else None,
        },
        "context_switches_per_round_trip": {k: statistics.median(v) for k, v in switches.items()},
        "yields_per_round_trip": {k: statistics.median(v) for k, v in spins.items()},
        "emulated_lock_pi_queued_per_round_trip": statistics.median(queued),
    }
