"""Zircon futexes under random operation sequences, against the contract.

A hypothesis state machine drives threads of one process through zx_futex_wait (naming
owners, with or without deadlines), wake, wake_single_owner, requeue(_single_owner),
suspension, priority changes, thread exit and time, on a manual clock.  After every step
it checks the kernel's own invariants and, independently, the contract of
``docs/reference/kernel_objects/futex.md``:

- a futex without waiters has no owner; an owner is a live thread that does not wait on
  the futex it owns;
- every thread's effective priority is the highest of its base priority and the effective
  priorities of the waiters of every futex it owns (computed here from what the API shows:
  who waits where, who owns what);
- every wait ends exactly once, and a woken wait reports ZX_OK.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from futex.kernel import ClockId, ManualClock
from futex.zircon import Thread, ThreadState, ZirconKernel, ZirconPendingWait
from futex.zircon.abi import (
    ZX_ERR_BAD_STATE,
    ZX_ERR_INTERNAL_INTR_KILLED,
    ZX_ERR_INVALID_ARGS,
    ZX_ERR_TIMED_OUT,
    ZX_HANDLE_INVALID,
    ZX_OK,
    ZX_TIME_INFINITE,
)

THREADS = 6
FUTEXES = 3
MS = 1_000_000


class ZirconFutexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.kernel = ZirconKernel(clock=self.clock)
        self.p = self.kernel.new_process()
        self.base = self.p.mmap(4096)
        self.threads = [
            self.p.new_thread(f"t{i}", priority=8 + 4 * (i % 4)) for i in range(THREADS)
        ]
        self.main = self.p.new_thread("main")  # makes the wake/requeue calls; never waits
        for t in [*self.threads, self.main]:
            t.start()
        self.handles = [self.p.handle(t) for t in self.threads]
        self.pending: dict[int, ZirconPendingWait] = {}
        self.ended: list[int] = []

    def addr(self, f: int) -> int:
        return self.base + 4 * f

    def live(self, i: int) -> bool:
        return self.threads[i].state is ThreadState.RUNNING

    def idle(self, i: int) -> bool:
        return self.live(i) and i not in self.pending

    def _collect(self) -> None:
        for i, pw in list(self.pending.items()):
            if pw.done():
                r = pw.result()
                assert r in (ZX_OK, ZX_ERR_TIMED_OUT, ZX_ERR_INTERNAL_INTR_KILLED), r
                del self.pending[i]
                self.ended.append(r)

    # -- rules -----------------------------------------------------------------------------

    @rule(
        i=st.integers(0, THREADS - 1),
        f=st.integers(0, FUTEXES - 1),
        owner=st.integers(-1, THREADS - 1),
        timeout=st.sampled_from([None, 0, 1, 5]),
        mismatch=st.booleans(),
    )
    def wait(self, i: int, f: int, owner: int, timeout: int | None, mismatch: bool) -> None:
        if not self.idle(i):
            return
        t = self.threads[i]
        h = ZX_HANDLE_INVALID if owner < 0 else self.handles[owner]
        now = self.clock.now(ClockId.MONOTONIC)
        deadline = ZX_TIME_INFINITE if timeout is None else now + timeout * MS
        value = self.p.load_u32(self.addr(f)) + (1 if mismatch else 0)
        r = t.futex_wait_nb(self.addr(f), value, h, deadline)
        if isinstance(r, ZirconPendingWait):
            assert not mismatch
            self.pending[i] = r
            if owner >= 0 and self.live(owner):
                # assigned, unless that would close a cycle
                got = self.p.owner_of(self.addr(f))
                assert got is None or got is self.threads[owner]
            return
        if mismatch:
            assert r == ZX_ERR_BAD_STATE
        elif owner == i or (owner >= 0 and self.threads[owner].blocking_futex == self.addr(f)):
            assert r == ZX_ERR_INVALID_ARGS
        else:
            assert r == ZX_ERR_TIMED_OUT and timeout == 0, r

    @rule(f=st.integers(0, FUTEXES - 1), n=st.sampled_from([0, 1, 2, 0xFFFFFFFF]))
    def wake(self, f: int, n: int) -> None:
        waiters = self._waiters(f)
        assert self._caller().futex_wake(self.addr(f), n) == ZX_OK
        self._collect()
        assert len(self._waiters(f)) == max(0, len(waiters) - n)
        assert self.p.owner_of(self.addr(f)) is None  # RELEASE: always unowned

    @rule(f=st.integers(0, FUTEXES - 1))
    def wake_single_owner(self, f: int) -> None:
        before = set(self._waiters(f))
        assert self._caller().futex_wake_single_owner(self.addr(f)) == ZX_OK
        self._collect()
        after = set(self._waiters(f))
        woken = before - after
        assert len(woken) == min(1, len(before))
        owner = self.p.owner_of(self.addr(f))
        if woken and after:
            assert owner is self.threads[woken.pop()]
        else:
            assert owner is None

    @rule(
        f1=st.integers(0, FUTEXES - 1),
        f2=st.integers(0, FUTEXES - 1),
        nwake=st.sampled_from([0, 1, 2]),
        nreq=st.sampled_from([0, 1, 0xFFFFFFFF]),
        owner=st.integers(-1, THREADS - 1),
        single=st.booleans(),
    )
    def requeue(self, f1: int, f2: int, nwake: int, nreq: int, owner: int, single: bool) -> None:
        caller = self._caller()
        h = ZX_HANDLE_INVALID if owner < 0 else self.handles[owner]
        value = self.p.load_u32(self.addr(f1))
        before1, before2 = self._waiters(f1), self._waiters(f2)
        if single:
            r = caller.futex_requeue_single_owner(self.addr(f1), value, self.addr(f2), nreq, h)
            nwake = 1
        else:
            r = caller.futex_requeue(self.addr(f1), nwake, value, self.addr(f2), nreq, h)
        self._collect()
        if f1 == f2:
            assert r == ZX_ERR_INVALID_ARGS
            return
        if owner >= 0 and self.threads[owner].blocking_futex in (self.addr(f1), self.addr(f2)):
            assert r == ZX_ERR_INVALID_ARGS
            return
        assert r == ZX_OK
        woken = min(nwake, len(before1))
        moved = min(nreq, len(before1) - woken)
        assert len(self._waiters(f1)) == len(before1) - woken - moved
        assert len(self._waiters(f2)) == len(before2) + moved

    @rule(i=st.integers(0, THREADS - 1), prio=st.integers(0, 31))
    def set_priority(self, i: int, prio: int) -> None:
        if self.live(i):
            self.threads[i].set_priority(prio)

    @rule(i=st.integers(0, THREADS - 1))
    def suspend(self, i: int) -> None:
        if self.live(i):
            self.threads[i].suspend()
            self._collect()

    @rule(ms=st.sampled_from([1, 3, 10]))
    def advance(self, ms: int) -> None:
        self.clock.advance(ms * MS)
        self._collect()

    @precondition(lambda self: sum(t.state is ThreadState.RUNNING for t in self.threads) > 2)
    @rule(i=st.integers(1, THREADS - 1))
    def exit(self, i: int) -> None:
        if not self.live(i):
            return
        t = self.threads[i]
        t.exit()
        self._collect()
        assert t not in [self.p.owner_of(self.addr(f)) for f in range(FUTEXES)]

    # -- helpers and invariants -------------------------------------------------------------

    def _caller(self) -> Thread:
        return self.main

    def _waiters(self, f: int) -> list[int]:
        return [i for i in self.pending if self.threads[i].blocking_futex == self.addr(f)]

    @invariant()
    def kernel_invariants(self) -> None:
        self.kernel.check_invariants()

    @invariant()
    def ownership_contract(self) -> None:
        for f in range(FUTEXES):
            owner = self.p.owner_of(self.addr(f))
            if owner is not None:
                assert self._waiters(f), "a futex without waiters has an owner"
                assert owner.state is ThreadState.RUNNING
                assert owner.blocking_futex != self.addr(f)

    @invariant()
    def inheritance_contract(self) -> None:
        """Effective = max(base, effective of every waiter of every owned futex), solved
        as a fixpoint over the owner graph (it is acyclic: cycles are refused)."""
        eff = {i: t.priority for i, t in enumerate(self.threads)}
        changed = True
        rounds = 0
        while changed:
            changed = False
            rounds += 1
            assert rounds <= THREADS + 2, "the owner graph has a cycle"
            for f in range(FUTEXES):
                owner = self.p.owner_of(self.addr(f))
                if owner is None:
                    continue
                o = self.threads.index(owner)
                for w in self._waiters(f):
                    if eff[w] > eff[o]:
                        eff[o] = eff[w]
                        changed = True
        for i, t in enumerate(self.threads):
            if t.state is ThreadState.RUNNING:
                assert t.effective_priority == eff[i], (i, t.effective_priority, eff[i])

    @invariant()
    def blocked_means_pending(self) -> None:
        for i, t in enumerate(self.threads):
            assert (t.blocked is not None) == (i in self.pending and not self.pending[i].done())


ZirconFutexMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, derandomize=True
)
test_zircon_futex_contract = ZirconFutexMachine.TestCase
