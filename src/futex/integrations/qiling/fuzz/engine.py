"""The fuzz loop: batches of calls, their checks, parks undone or run, the report."""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from futex.integrations.qiling.fuzz.args import ArgGen
from futex.integrations.qiling.fuzz.guest import (
    FUZZED,
    HELPER_TIDS,
    HOT,
    MASK64,
    NOTHING,
    RO_WORDS,
    ROBUST,
    TS,
    U32,
    WAITV,
    WORDS,
    HandlerEscape,
    Harness,
    ours,
    signed,
    with_guest,
)
from futex.linux import abi

__all__ = ["EXPECTED", "FuzzReport", "fuzz", "main"]

_E = errno
#: The errnos each call's man page / kernel source can answer (others: a warning).
EXPECTED: dict[str, frozenset[int]] = {
    "futex": frozenset({_E.EAGAIN, _E.EDEADLK, _E.EFAULT, _E.EINVAL, _E.ENOMEM, _E.ENOSYS,
                        _E.EPERM, _E.ESRCH, _E.ETIMEDOUT, _E.EINTR, _E.EBUSY}),
    "set_robust_list": frozenset({_E.EINVAL, _E.ENOSYS}),
    "get_robust_list": frozenset({_E.EFAULT, _E.EPERM, _E.ESRCH, _E.ENOSYS}),
    "futex_waitv": frozenset({_E.EAGAIN, _E.EFAULT, _E.EINVAL, _E.ENOMEM, _E.ETIMEDOUT,
                              _E.EINTR, _E.ENOSYS}),
    "futex_wake": frozenset({_E.EINVAL, _E.EFAULT, _E.ENOMEM, _E.ENOSYS}),
    "futex_wait": frozenset({_E.EAGAIN, _E.EFAULT, _E.EINVAL, _E.ENOMEM, _E.ETIMEDOUT,
                             _E.EINTR, _E.ENOSYS}),
    "futex_requeue": frozenset({_E.EAGAIN, _E.EFAULT, _E.EINVAL, _E.ENOMEM, _E.ENOSYS}),
    "set_tid_address": frozenset(),
    "clock_gettime": frozenset({_E.EINVAL, _E.EFAULT}),
    "clock_nanosleep": frozenset({_E.EINVAL, _E.EFAULT, _E.EOPNOTSUPP, _E.EINTR}),
    "nanosleep": frozenset({_E.EINVAL, _E.EFAULT, _E.EINTR}),
    "clone3": frozenset({_E.ENOSYS}),
    "rseq": frozenset({_E.ENOSYS}),
}  # fmt: skip
_ERRNO_NAMES = {**errno.errorcode, errno.EDEADLK: "EDEADLK", errno.EOPNOTSUPP: "EOPNOTSUPP"}


def result_name(r: int) -> str:
    return f"-{_ERRNO_NAMES.get(-r, str(-r))}" if r < 0 else ("0" if r == 0 else ">0")


@dataclass
class FuzzReport:
    """What a fuzz run did and found; ``ok`` when every check held."""

    seed: int
    seconds: float
    calls: int = 0
    elapsed: float = 0.0
    parked: int = 0
    honest: Counter[str] = field(default_factory=Counter)
    histogram: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    unexpected: Counter[str] = field(default_factory=Counter)
    failure_count: int = 0

    @property
    def ok(self) -> bool:
        return self.failure_count == 0 and self.calls > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "seed": self.seed, "seconds": self.seconds, "calls": self.calls,
            "elapsed": round(self.elapsed, 3),
            "calls_per_s": round(self.calls / self.elapsed) if self.elapsed else 0,
            "parked": self.parked, "real_parks": dict(self.honest),
            "histogram": {k: dict(v.most_common()) for k, v in sorted(self.histogram.items())},
            "unexpected_errnos": dict(self.unexpected), "failure_count": self.failure_count,
            "failures": self.failures,
        }  # fmt: skip

    def lines(self) -> list[str]:
        d = self.as_dict()
        out = [f"futex fuzz: seed {self.seed}, {self.calls} calls in {d['elapsed']} s "
               f"({d['calls_per_s']}/s), {self.parked} parked "
               f"(real parks: {dict(self.honest) or 'none'})"]  # fmt: skip
        for name, hist in d["histogram"].items():
            total = sum(hist.values())
            out.append(f"  {name:16} {total:7}  " + ", ".join(f"{k} {v}" for k, v in hist.items()))
        if self.unexpected:
            out.append(f"  errnos outside the man pages (warning): {dict(self.unexpected)}")
        for f in self.failures:
            out.append(f"  FAILURE: {json.dumps(f)}")
        out.append("OK: every check held" if self.ok else
                   f"FAILED: {self.failure_count} check(s) broken")  # fmt: skip
        return out


class _Fuzzer:
    BATCH = 64
    HONEST_SHARE = 0.05
    PATIENCE = 0.002

    def __init__(self, seconds: float, seed: int, max_failures: int) -> None:
        self.rng = random.Random(seed)
        self.report = FuzzReport(seed, seconds)
        self.deadline = 0.0
        self.start = 0.0
        self.honest_time = 0.0
        self.max_failures = max_failures
        self.gen: ArgGen | None = None
        self.helpers: list[Any] = []
        self.nrs = list(FUZZED)
        self.before: dict[int, bytes] = {}

    def fail(self, what: str, h: Harness | None, nr: int | None = None,
             regs: tuple[int, ...] = (), **extra: Any) -> None:  # fmt: skip
        self.report.failure_count += 1
        if len(self.report.failures) >= self.max_failures:
            return
        f: dict[str, Any] = {"what": what}
        if nr is not None:
            f["syscall"] = f"{FUZZED.get(nr, nr)} ({nr})"
            f["regs"] = [hex(v & MASK64) for v in regs]
            if self.before:  # the fuzzer's memory the registers pointed at
                f["memory_before"] = {hex(v): b.hex() for v, b in self.before.items()}
        f.update(extra)
        self.report.failures.append(f)

    def step(self, h: Harness) -> bool:
        if self.gen is None:
            self.setup(h)
        assert self.gen is not None
        if time.monotonic() >= self.deadline:
            self.finish(h)
            return True
        self.gen.refresh()
        self.block_helpers(h)
        for _ in range(self.BATCH):
            nr = self.rng.choice(self.nrs)
            if self.one(h, nr, self.gen.regs(nr)):
                break  # a real park: Qiling must run the thread's sched_cb now
        return False

    def setup(self, h: Harness) -> None:
        self.gen = ArgGen(self.rng, h)
        for addr in (*WORDS, *RO_WORDS):
            h.poke(addr, U32.pack(self.gen.word_value()))
        for i, tid in enumerate(HELPER_TIDS):
            task = h.integ.process.new_task(tid)
            if i != 1 and h.integ.kernel.facts.rt_sched:
                task.set_scheduler(abi.SCHED_FIFO, 10 + 30 * i)
            self.helpers.append(task)
        self.start = time.monotonic()
        self.deadline = self.start + self.report.seconds

    def one(self, h: Harness, nr: int, regs: tuple[int, ...]) -> bool:
        """Make one call and check it; True if it parked for real (end the batch)."""
        rep = self.report
        rep.calls += 1
        self.before = h.snapshot(regs)
        errors = len(h.integ.internal_errors)
        try:
            ret = h.call(nr, *regs)
        except HandlerEscape as exc:
            self.fail("exception escaped the handler", h, nr, regs, error=str(exc),
                      traceback=traceback.format_exception(exc.__cause__)[-3:])  # fmt: skip
            self.recover(h)
            return False
        if len(h.integ.internal_errors) > errors:
            self.fail("internal error (Integration._guarded caught it)", h, nr, regs,
                      error=h.integ.internal_errors[errors:])  # fmt: skip
        name = FUZZED[nr]
        if ret is NOTHING:
            self.fail("no handler answered", h, nr, regs)
            return False
        if isinstance(ret, bool) or not isinstance(ret, int):
            self.fail("handler returned a non-int", h, nr, regs, value=repr(ret))
            self.recover(h)
            return False
        if not (-4095 <= ret < 1 << 63):
            self.fail("result is neither >= 0 nor -1..-4095", h, nr, regs, value=ret)
        elif signed(h.ql.arch.regs.rax) != ret:
            self.fail("rax does not hold the result", h, nr, regs, value=ret)
        label = result_name(ret)
        if ret < 0 and -ret not in EXPECTED[name]:
            if self.err_head(h, nr, regs, ret):
                label = "IS_ERR head"
            else:
                rep.unexpected[f"{name} {label}"] += 1
        rep.histogram.setdefault(name, Counter())[label] += 1
        if not h.parked():
            if h.task.blocked is not None:
                self.fail("task left blocked without a sched_cb to wait", h, nr, regs)
                h.unpark()
            return False
        rep.parked += 1
        if ret != 0:
            self.fail("parked yet returned a result", h, nr, regs, value=ret)
        if self.honest_time < self.HONEST_SHARE * (time.monotonic() - self.start) and (
            self.near(h, nr, regs) or self.rng.random() < 0.1
        ):
            self.park_for_real(h, nr, regs)
            return True
        h.unpark()
        if h.task.blocked is not None or h.parked():
            self.fail("park not undone", h, nr, regs)
        return False

    def near(self, h: Harness, nr: int, regs: tuple[int, ...]) -> bool:
        """Whether the parked call ends within PATIENCE: a futex wait whose deadline is
        that close, or a relative sleep that short (timespec in the fuzzer's pages)."""
        pending = h.task.blocked
        if pending is not None:
            if pending.deadline is None:
                return False
            clock, when = pending.deadline
            return bool(when - h.integ.kernel.clock.now(clock) < self.PATIENCE * 1e9)
        req, relative = (regs[0], True) if nr == 35 else (regs[2], not regs[1] & 1)
        if not relative or not ours(req, 16):
            return False
        sec, nsec = TS.unpack(h.ql.mem.read(req, 16))
        # sleeps are most of the parks: a quarter of them, to leave the futex waits time
        return sec == 0 and nsec < self.PATIENCE * 1e9 and self.rng.random() < 0.25

    @staticmethod
    def err_head(h: Harness, nr: int, regs: tuple[int, ...], ret: int) -> bool:
        """get_robust_list answering a head that IS_ERR: Linux 6.x returns the head
        itself (``futex_get_robust_list_common``'s ERR_PTR; the host's fact
        ``get_robust_list_is_err``), a value in -4095..-1 that is no errno."""
        if nr != abi.SYS_get_robust_list:
            return False
        pid = regs[0] & 0xFFFFFFFF
        task = h.task if pid == 0 else h.integ.kernel.task(pid)
        return task is not None and signed(task.robust_list) == ret

    def park_for_real(self, h: Harness, nr: int, regs: tuple[int, ...]) -> None:
        """Let Qiling run the parked thread's sched_cb, bounded by PATIENCE; check the
        late result it writes into the saved rax, or that the cut-off wait was killed."""
        import gevent

        original = h.thread.sched_cb
        rep = self.report

        def bounded(th: Any) -> None:
            t0 = time.monotonic()
            finished = False
            try:
                with gevent.Timeout(self.PATIENCE, False):
                    original(th)
                    finished = True
            except Exception as exc:
                self.fail("the parked wait raised", h, nr, regs, error=repr(exc))
            self.honest_time += time.monotonic() - t0
            if finished:
                th.restore()
                late = signed(h.ql.arch.regs.rax)
                h.ql.arch.regs.rax = 0  # the guest's getpid: 0 = go on looping
                th.save()
                rep.honest[f"{FUZZED[nr]} {result_name(late)}"] += 1
                if not -4095 <= late < 1 << 62:
                    self.fail("late result is not a result", h, nr, regs, value=late)
            else:
                rep.honest[f"{FUZZED[nr]} cut off"] += 1
            if h.task.blocked is not None:
                self.fail("task still blocked after its wait ended", h, nr, regs)
                h.task.blocked.kill()

        h.thread.sched_cb = bounded

    def recover(self, h: Harness) -> None:
        h.unpark()

    def block_helpers(self, h: Harness, words: tuple[int, ...] = HOT) -> None:
        """Give each running helper task a wait: plain, bitset, PI, requeue-PI, waitv."""
        assert self.gen is not None
        rng, gen = self.rng, self.gen
        for task in self.helpers:
            if task.blocked is not None and rng.random() < 0.25:
                task.blocked.kill()  # churn: a PI waiter is woken by no WAKE
            if task.blocked is not None or not task.alive:
                continue
            word = rng.choice(words)
            val = h.word(word) or 0
            priv = abi.FUTEX_PRIVATE_FLAG if rng.random() < 0.7 else 0
            kind = rng.randrange(5)
            if kind == 0:
                args: tuple[int, ...] = (word, abi.FUTEX_WAIT | priv, val, 0, 0, 0)
            elif kind == 1:
                args = (word, abi.FUTEX_WAIT_BITSET | priv, val, 0, 0, gen.mask())
            elif kind == 2:
                args = (word, abi.FUTEX_LOCK_PI | priv, 0, 0, 0, 0)
            elif kind == 3:
                args = (word, abi.FUTEX_WAIT_REQUEUE_PI | priv, val, 0, rng.choice(HOT), 0)
            else:
                nr = abi.SYS_futex_waitv
                try:
                    task.syscall_nb(nr, WAITV + 24 * 8 * rng.randrange(3), 2, 0, 0, 0)
                except Exception as exc:
                    self.fail("a helper's futex_waitv raised", h, error=repr(exc))
                continue
            try:
                task.syscall_nb(abi.SYS_futex, *args)
            except Exception as exc:
                self.fail("a helper's futex call raised", h, abi.SYS_futex, args, error=repr(exc))

    def finish(self, h: Harness) -> None:
        """A tidy robust list over PI-owned and waited-on words, then the guest's
        exit_group (run by the guest itself after this returns)."""
        assert self.gen is not None
        rep = self.report
        rep.elapsed = time.monotonic() - self.start
        for addr in WORDS[:32]:
            h.poke(addr, U32.pack(h.main_tid | abi.FUTEX_WAITERS))
        h.poke(ROBUST, self.gen.robust_list(tidy=True))
        for task in self.helpers:  # wait on the words the list names, owned by main
            if task.blocked is not None:
                task.blocked.kill()
        self.block_helpers(h, WORDS[:32:4])
        self.one(h, abi.SYS_set_robust_list, (ROBUST, 24))
        h.unpark()

    def after(self, h: Harness | None, exc: BaseException | None) -> None:
        """After ql.run(): the exit path's errors, the helpers' exits, the invariants."""
        if exc is not None:
            self.fail("ql.run() raised", h, error=repr(exc),
                      traceback=traceback.format_exception(exc)[-4:])  # fmt: skip
        if h is None:
            self.fail("the guest never reached the fuzzer", None)
            return
        if h.integ.internal_errors:
            self.fail("internal errors at exit", h, error=h.integ.internal_errors[-5:])
        if h.main_tid in h.integ.process.tasks:
            self.fail("the main thread's task did not exit", h)
        for task in self.helpers:
            try:
                if task.alive:
                    task.exit()
            except Exception as exc:
                self.fail("a helper's exit raised", h, error=repr(exc))
        try:
            h.integ.process.futex.check_invariants()
        except AssertionError as exc:
            self.fail("futex queues inconsistent", h, error=str(exc))
        if any(t.blocked is not None for t in h.integ.kernel.tasks.values()):
            self.fail("a task is still blocked after the run", h)


def fuzz(seconds: float = 60.0, seed: int | None = None, *, max_failures: int = 20,
         prepare: Callable[[Any, Any], None] | None = None) -> FuzzReport:  # fmt: skip
    """Fuzz the handlers for ``seconds`` (see the module docstring).  ``prepare(ql, integ)``
    runs after ``install`` and before the run (a test's way to break a handler)."""
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    fz = _Fuzzer(seconds, seed, max_failures)
    box: list[Harness] = []

    def step(h: Harness) -> bool:
        if not box:
            box.append(h)
        return fz.step(h)

    exc = with_guest(step, prepare)
    fz.after(box[0] if box else None, exc)
    return fz.report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m futex.integrations.qiling.fuzz",
        description="Fuzz futex.integrations.qiling's syscall handlers with random registers.",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="how long (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    ns = parser.parse_args(argv)
    import logging

    logging.getLogger("futex").setLevel(logging.CRITICAL)  # failures are in the report
    report = fuzz(ns.seconds, ns.seed)
    if ns.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
