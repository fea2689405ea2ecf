"""futex.kernel: the core against a naive reference model, and its concurrency contract.

The model is a dictionary from (key kind, address) to a list of waiters in Linux's queue
order (``__futex_queue``: priority, FIFO within a priority).  Hypothesis drives random
sequences of prepare / complete / wake / requeue / wake_op / stores on private and shared
keys; after every step the core must agree with the model on every result, every woken
waiter and every queue's order, and ``check_invariants()`` must hold.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from futex.kernel import (
    FIFO,
    MATCH_ANY,
    FutexManager,
    MisalignedAddress,
    ValueMismatch,
    Waiter,
)
from futex.memory import PAGE_SIZE, AddressSpace
from tests.support import STATE_TIMEOUT

WORDS = 3  # futex words per mapping

ModelKey = tuple[str, int]


class CoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.space = AddressSpace()
        self.priv = self.space.mmap(PAGE_SIZE)
        self.shm = self.space.mmap(PAGE_SIZE, shared=True)
        self.m = FutexManager(buckets=4)  # few buckets: keys collide and must not mix
        self.queues: dict[ModelKey, list[Waiter]] = {}
        self.live: list[Waiter] = []
        self.woken: set[Waiter] = set()

    # -- helpers ----------------------------------------------------------------------------

    def addr(self, shared_mapping: bool, i: int) -> int:
        return (self.shm if shared_mapping else self.priv) + 4 * i

    @staticmethod
    def mkey(addr: int, private: bool) -> ModelKey:
        return ("private" if private else "shared", addr)

    def model_insert(self, k: ModelKey, w: Waiter) -> None:
        q = self.queues.setdefault(k, [])
        pos = len(q)
        while pos > 0 and q[pos - 1].prio > w.prio:
            pos -= 1
        q.insert(pos, w)

    def model_wake(self, k: ModelKey, bitset: int, n: int) -> list[Waiter]:
        q = self.queues.get(k, [])
        out = [w for w in q if w.bitset & bitset][: max(n, 0)]
        for w in out:
            q.remove(w)
            self.woken.add(w)
        return out

    # -- rules ------------------------------------------------------------------------------

    @rule(
        shared_mapping=st.booleans(),
        i=st.integers(0, WORDS - 1),
        private=st.booleans(),
        match=st.booleans(),
        bitset=st.sampled_from([MATCH_ANY, 1, 2, 3]),
        prio=st.sampled_from([50, 100, 100, 120]),
    )
    def prepare(
        self, shared_mapping: bool, i: int, private: bool, match: bool, bitset: int, prio: int
    ) -> None:
        a = self.addr(shared_mapping, i)
        cur = self.space.load_u32(a)
        w = Waiter(prio=prio)
        if not match:
            with pytest.raises(ValueMismatch):
                self.m.wait_prepare(w, self.space, a, private, cur + 1, bitset)
            return
        self.m.wait_prepare(w, self.space, a, private, cur, bitset)
        self.live.append(w)
        self.model_insert(self.mkey(a, private), w)

    @rule(shared_mapping=st.booleans(), i=st.integers(0, WORDS - 1), v=st.integers(0, 3))
    def store(self, shared_mapping: bool, i: int, v: int) -> None:
        self.space.store_u32(self.addr(shared_mapping, i), v)

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from(self.live))
        self.live.remove(w)
        expected = w in self.woken
        self.woken.discard(w)
        if not expected:
            for q in self.queues.values():
                if w in q:
                    q.remove(w)
        assert self.m.wait_complete(w) is expected
        assert not w.queued

    @rule(
        shared_mapping=st.booleans(),
        i=st.integers(0, WORDS - 1),
        private=st.booleans(),
        bitset=st.sampled_from([MATCH_ANY, 1, 2, 4]),
        n=st.integers(-1, 4),
    )
    def wake(self, shared_mapping: bool, i: int, private: bool, bitset: int, n: int) -> None:
        a = self.addr(shared_mapping, i)
        expected = self.model_wake(self.mkey(a, private), bitset, n)
        assert self.m.wake(self.space, a, private, bitset, n) == len(expected)
        assert all(w.woken for w in expected)

    @rule(
        shared_mapping=st.booleans(),
        i=st.integers(0, WORDS - 1),
        j=st.integers(0, WORDS - 1),
        private=st.booleans(),
        nwake=st.integers(0, 3),
        nreq=st.integers(0, 4),
        cmp=st.sampled_from(["none", "match", "mismatch"]),
    )
    def requeue(
        self,
        shared_mapping: bool,
        i: int,
        j: int,
        private: bool,
        nwake: int,
        nreq: int,
        cmp: str,
    ) -> None:
        a1, a2 = self.addr(shared_mapping, i), self.addr(shared_mapping, j)
        cur = self.space.load_u32(a1)
        cmpval = {"none": None, "match": cur, "mismatch": cur + 1}[cmp]
        if cmp == "mismatch":
            with pytest.raises(ValueMismatch):
                self.m.requeue(self.space, a1, a2, private, nwake, nreq, cmpval)
            return
        k1, k2 = self.mkey(a1, private), self.mkey(a2, private)
        woken = self.model_wake(k1, MATCH_ANY, nwake)
        q1 = self.queues.get(k1, [])
        if k1 == k2:
            moved = min(nreq, len(q1))
        else:
            movers = q1[:nreq]
            del q1[: len(movers)]
            for w in movers:
                self.model_insert(k2, w)
            moved = len(movers)
        got = self.m.requeue(self.space, a1, a2, private, nwake, nreq, cmpval)
        assert got == (len(woken), moved)

    @rule(
        i=st.integers(0, WORDS - 1),
        j=st.integers(0, WORDS - 1),
        private=st.booleans(),
        n1=st.integers(0, 3),
        n2=st.integers(0, 3),
        newval=st.integers(0, 3),
        threshold=st.integers(0, 3),
    )
    def wake_op(
        self, i: int, j: int, private: bool, n1: int, n2: int, newval: int, threshold: int
    ) -> None:
        a1, a2 = self.addr(False, i), self.addr(False, j)
        old = self.space.load_u32(a2)
        woken = self.model_wake(self.mkey(a1, private), MATCH_ANY, n1)
        if old >= threshold:
            woken += self.model_wake(self.mkey(a2, private), MATCH_ANY, n2)
        got = self.m.wake_op(
            self.space, a1, a2, private, n1, n2, lambda _v: newval, lambda v: v >= threshold
        )
        assert got == len(woken)
        assert self.space.load_u32(a2) == newval

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def queues_agree_with_the_model(self) -> None:
        self.m.check_invariants()
        actual = self.m.queues()
        for (kind, a), q in self.queues.items():
            key = self.space.futex_key(a, kind == "private")
            assert actual.get(key, []) == q, f"queue of {kind} {a:#x} differs from the model"
        assert sum(map(len, actual.values())) == sum(map(len, self.queues.values()))


TestCoreModel = CoreModel.TestCase
TestCoreModel.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


def test_private_and_shared_keys_never_match() -> None:
    """Linux FUT_OFF_MMSHARED / gVisor WakeWrongKind at the core level."""
    s = AddressSpace()
    a = s.mmap(PAGE_SIZE)
    m = FutexManager()
    w = Waiter()
    m.wait_prepare(w, s, a, True, 0)
    assert m.wake(s, a, False, MATCH_ANY, 1) == 0
    assert m.wake(s, a, True, MATCH_ANY, 1) == 1


def test_misaligned_addresses_are_refused_before_memory() -> None:
    s = AddressSpace()
    m = FutexManager()
    with pytest.raises(MisalignedAddress):
        m.wake(s, 0x1002, True, MATCH_ANY, 1)  # unmapped too: alignment is checked first


def test_fifo_order_policy_ignores_priority() -> None:
    """gVisor's bucket lists are FIFO; Linux's plist is priority-ordered."""
    s = AddressSpace()
    a = s.mmap(PAGE_SIZE)
    for order, expected in ((FIFO, [100, 10]), (None, [10, 100])):
        m = FutexManager() if order is None else FutexManager(order=order)
        ws = [Waiter(prio=100), Waiter(prio=10)]
        for w in ws:
            m.wait_prepare(w, s, a, True, 0)
        assert [w.prio for w in m.queues()[a]] == expected
        m.check_invariants()


def test_forked_managers_share_only_shared_futexes() -> None:
    s = AddressSpace()
    shm = s.mmap(PAGE_SIZE, shared=True)
    priv = s.mmap(PAGE_SIZE)
    parent = FutexManager()
    child_space, child = s.fork(), parent.fork()
    ws, wp = Waiter(), Waiter()
    parent.wait_prepare(ws, s, shm, False, 0)
    parent.wait_prepare(wp, s, priv, True, 0)
    assert child.wake(child_space, priv, True, MATCH_ANY, 1) == 0
    assert child.wake(child_space, shm, False, MATCH_ANY, 1) == 1
    assert parent.wait_complete(wp) is False and parent.wait_complete(ws) is True


def test_concurrent_wait_wake_loses_no_waiter() -> None:
    """Many threads park and wake through the core while a waker keeps waking: every
    queued waiter is woken (its notify runs: none is lost), and the tables stay
    consistent."""
    s = AddressSpace()
    a = s.mmap(PAGE_SIZE)
    m = FutexManager(buckets=2)
    rounds = 300
    errors: list[BaseException] = []
    stop = threading.Event()

    def waiter() -> None:
        try:
            for _ in range(rounds):
                done = threading.Event()
                w = Waiter(lambda _w, done=done: done.set())
                try:
                    m.wait_prepare(w, s, a, True, 0)
                except ValueMismatch:
                    continue
                # the waker never stops while we wait: a generous bound, never reached
                assert done.wait(STATE_TIMEOUT), "a queued waiter was never woken"
                assert m.wait_complete(w) is True
        except BaseException as exc:
            errors.append(exc)

    def waker() -> None:
        while not stop.is_set():
            m.wake(s, a, True, MATCH_ANY, 2)

    waiters = [threading.Thread(target=waiter) for _ in range(4)]
    wakers = [threading.Thread(target=waker)]
    for t in waiters + wakers:
        t.start()
    for t in waiters:
        t.join()
    stop.set()
    for t in wakers:
        t.join()
    assert not errors
    m.check_invariants()
    assert m.stats().queued == 0
