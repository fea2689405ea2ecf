"""The host's answers: futex(2) and futex2 calls made on the host kernel, those that may
block under the watchdog (``BLOCKED`` when it had to end one), and a call the host sleeps
in while the peer makes its calls.

A host call the emulator answered at once is still run under the watchdog: if the host
blocks after all, a signal ends it and the disagreement is reported as ``BLOCKED``.  A PI
lock restarts after a signal (ERESTARTNOINTR): the watchdog has the peer unlock the word
instead; a requeue-PI wait, the peer takes its target for it (:meth:`requeue_pi_rescue`).
"""

from __future__ import annotations

import functools
import signal
import struct
import threading
import time
from collections.abc import Callable, Sequence

from futex.linux import abi
from tests.differential.harness.host import host_futex, host_syscall
from tests.differential.harness.host_layout import HostLayout, poke
from tests.differential.harness.peer import PEER_PATIENCE_SECONDS, PeerJob
from tests.differential.harness.steps import (
    PI_COMMANDS,
    PI_LOCK_COMMANDS,
    SYS_FUTEX,
    SYS_WAIT,
    SYS_WAITV,
)
from tests.differential.harness.watchdog import WATCHDOG_SECONDS, Watchdog

__all__ = [
    "BLOCKED",
    "HostOracle",
]


#: Commands that may block (non-PI): the host runs them under the watchdog.
BLOCKING_COMMANDS = frozenset({abi.FUTEX_WAIT, abi.FUTEX_WAIT_BITSET, abi.FUTEX_WAIT_REQUEUE_PI})
#: futex2 calls that may block.
FUTEX2_WAITS = frozenset({SYS_WAITV, SYS_WAIT})


class _Blocked:
    def __repr__(self) -> str:
        return "BLOCKED"


#: What the harness reports for a host call that blocked (the watchdog ended it).
BLOCKED = _Blocked()


class HostOracle:
    """The host's answers to a run's calls, in this process: the calling thread is the
    caller, ``layout.peer`` the peer."""

    def __init__(self, layout: HostLayout, watchdog: Watchdog) -> None:
        assert layout.peer is not None
        self.layout = layout
        self.peer = layout.peer
        self.watchdog = watchdog
        self.self_tid = layout.self_tid

    def futex(self, uaddr: int, op: int, val: int, utime: int, uaddr2: int, val3: int) -> object:
        """The host's answer to futex(2), or BLOCKED."""
        cmd = op & abi.FUTEX_CMD_MASK
        guard = cmd in BLOCKING_COMMANDS or cmd in PI_COMMANDS
        if guard:
            rescue: Callable[[], None] | None = None
            if cmd in PI_LOCK_COMMANDS:
                flags = op & abi.FUTEX_PRIVATE_FLAG
                rescue = functools.partial(self.peer.unlock, uaddr, flags)
            elif cmd == abi.FUTEX_WAIT_REQUEUE_PI:
                rescue = self.requeue_pi_rescue(uaddr, op, utime, uaddr2)
            self.watchdog.arm(WATCHDOG_SECONDS, rescue)
        try:
            r = host_futex(uaddr, op, val, utime, uaddr2, val3)
        finally:
            fired = self.watchdog.disarm() if guard else False
        if fired and (
            r == -abi.EINTR or cmd in PI_LOCK_COMMANDS or cmd == abi.FUTEX_WAIT_REQUEUE_PI
        ):
            return BLOCKED
        return r

    def futex2(self, nr: int, args: Sequence[int]) -> object:
        """The host's answer to futex2 call ``nr``, or BLOCKED."""
        guard = nr in FUTEX2_WAITS
        if guard:
            self.watchdog.arm(WATCHDOG_SECONDS)
        try:
            r = host_syscall(nr, *args)
        finally:
            fired = self.watchdog.disarm() if guard else False
        return BLOCKED if fired and r == -abi.EINTR else r

    def with_peer(self, nr: int, args: Sequence[int], job: PeerJob) -> object:
        """The host's answer to call ``nr(args)``, made for real while the peer runs
        ``job`` (its calls once the caller sleeps in it), or BLOCKED."""
        rescue = None
        if nr == SYS_FUTEX and args[1] & abi.FUTEX_CMD_MASK == abi.FUTEX_WAIT_REQUEUE_PI:
            rescue = self.requeue_pi_rescue(args[0], args[1], args[3], args[4])
        self.watchdog.arm(WATCHDOG_SECONDS + PEER_PATIENCE_SECONDS, rescue)
        self.peer.submit(job)
        try:
            got: object = host_syscall(nr, *args)
        finally:
            fired = self.watchdog.disarm()
            job.returned.set()
        job.finished.wait()
        return BLOCKED if fired else got

    def requeue_pi_rescue(self, uaddr: int, op: int, utime: int, uaddr2: int) -> Callable[[], None]:
        """For a host WAIT_REQUEUE_PI that blocked although it should not have (a signal
        only restarts it): the watchdog has the peer take ``uaddr2`` for it
        (CMP_REQUEUE_PI) and hand it over (UNLOCK_PI); if it still sleeps, its restart is
        made to fail (its word flipped, or its timeout zeroed, where writable) and it gets
        a signal.  The harness reports BLOCKED whatever it answers then."""
        layout, peer = self.layout, self.peer
        private = op & abi.FUTEX_PRIVATE_FLAG
        job = PeerJob(self.self_tid, SYS_FUTEX, (uaddr, op), ())

        def rescue() -> None:
            raw = layout.peek(uaddr, 4)
            cur = struct.unpack("<I", raw)[0] if raw is not None else 0
            cmp_requeue_pi = abi.FUTEX_CMP_REQUEUE_PI | private
            host_futex(uaddr, cmp_requeue_pi, 1, 0, uaddr2, cur)
            host_futex(uaddr2, abi.FUTEX_UNLOCK_PI | private, 0, 0, 0, 0)
            time.sleep(0.05)
            if not job.asleep():
                return
            if layout.word_at(uaddr) is not None:
                layout.store(uaddr, cur ^ 1)
            elif utime and layout.writable_range(utime, 16):
                poke(utime, bytes(16))
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)

        return functools.partial(peer.submit, rescue)
