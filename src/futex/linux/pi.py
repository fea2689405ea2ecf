"""PI futexes: FUTEX_LOCK_PI / LOCK_PI2 / TRYLOCK_PI / UNLOCK_PI (Linux ``kernel/futex/pi.c``).

The word
--------
==========================  ===========================================================
bits                        meaning
==========================  ===========================================================
``FUTEX_TID_MASK``          the owner's TID; 0 = unlocked
``FUTEX_WAITERS`` (bit 31)  the kernel may hold waiters: unlock must go through the kernel
``FUTEX_OWNER_DIED`` (30)   the previous owner died holding the lock (robust futexes)
==========================  ===========================================================

The uncontended paths are user-space CASes (0 -> TID, TID -> 0); the kernel sees the rest.

LOCK_PI (``futex_lock_pi`` + ``futex_lock_pi_atomic``), under the bucket lock:

1. the key, for writing (EINVAL misaligned, EFAULT); the word (EFAULT);
2. TID == caller: EDEADLK;
3. kernel waiters exist: validate the word against their PI state (table below), attach;
4. TID 0, no waiters: take it (CAS to ``TID | (word & OWNER_DIED)``), return 0;
5. else set WAITERS (CAS; a lost race retries, a fault is EFAULT), then find the owner
   (``attach_to_pi_owner``): a task whose futex state is OK gets a new PI state; one in
   the middle of its futex exit (EXITING) makes the call wait until that exit is over and
   run again (see :mod:`futex.linux.pi_exit`); no task, or a DEAD one, is
   ``handle_exit_race``: the word read again -> ESRCH if unchanged (it keeps WAITERS, as
   the host shows), else the attempt runs again;
6. TRYLOCK_PI stops here: EWOULDBLOCK (the owner holds the rt_mutex);
7. block on the PI state (EDEADLK if the owner chain leads back here), boosting the owner
   chain; sleep until the unlocker hands the lock over, or the timeout (absolute
   CLOCK_REALTIME for LOCK_PI, the chosen clock for LOCK_PI2).  A signal restarts the call
   (ERESTARTNOINTR); a hand-off that races a timeout wins (``rt_mutex_cleanup_proxy_lock``).

Validation of the word against an existing PI state (``attach_to_pi_state``'s table):

=====  ===============  ===========  ==========  ====================================
row    OWNER_DIED       state owner  word TID    result
=====  ===============  ===========  ==========  ====================================
[3]    -                (a non-PI waiter is queued on the key)      EINVAL
[4]    set              none         0           attach
[5]    set              none         != 0        EINVAL
[6]    set              some         0           attach
[7]    clear            none         any         EINVAL
[8]    any              some         == owner    attach
[9]    any              some         != owner    EINVAL
=====  ===============  ===========  ==========  ====================================

UNLOCK_PI (``futex_unlock_pi``): read the word without alignment (EFAULT); TID != caller:
EPERM; the key (EINVAL, EFAULT); with kernel waiters, the state must be the caller's
(EINVAL otherwise) and the word becomes ``WAITERS | new TID`` for the top waiter, who
owns the lock when it wakes (``wake_futex_pi``; a word changed under us: EAGAIN if only
WAITERS appeared, else EINVAL); without waiters the word becomes 0 (EAGAIN if it changed).

Exit and exec (``exit_pi_state_list``): every PI state the task owns is handed to its top
waiter, which, waking, fixes the word to ``OWNER_DIED | WAITERS | its TID``
(``fixup_pi_state_owner`` of a state left without an owner).  The state may be keyed in
another process (a private PI futex whose word names this task): the hand-off happens in
the bucket its waiters are queued in, never the exiting task's.  An owner that is
exiting is looked at only by the first waiter (step 5): later ones attach to the PI state
the first one made, whatever the owner's state (``attach_to_pi_state`` does not look),
and are handed the lock in turn.

Locks: a bucket lock (through the core's locked-bucket handles), then the PI domain lock
(which stands for the owner's ``pi_lock`` and the rt_mutex's ``wait_lock``); functions
named ``*_pi_locked`` need both, the PI domain lock innermost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from futex.kernel import (
    FutexError,
    Key,
    LockedBucket,
    MemoryFault,
    PiDeadlock,
    PiState,
    PiWaiter,
    Waiter,
    notify_all,
)
from futex.kernel.blocking import PendingWait
from futex.kernel.locking import DEBUG_LOCKS
from futex.kernel.request import Deadline
from futex.linux import abi
from futex.linux.decode import errno_of, reread_timeout
from futex.linux.pi_exit import (
    ExitAwareRequest,
    FutexState,
    OwnerExiting,
    wait_for_owner_exiting,
)
from futex.linux.policy import LINUX_POLICY

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = [
    "PiLockRequest",
    "attach_to_pi_owner",
    "exit_pi_state_list",
    "finish_pi_wait",
    "futex_lock_pi",
    "futex_unlock_pi",
    "lock_pi_atomic_pi_locked",
    "release_if_idle_pi_locked",
]

_TID = abi.FUTEX_TID_MASK
_WAITERS = abi.FUTEX_WAITERS
_OWNER_DIED = abi.FUTEX_OWNER_DIED


class Retry(Exception):
    """The word changed under a CAS: run the attempt again (Linux ``goto retry``)."""


def _cas(task: Task, uaddr: int, old: int, new: int) -> None:
    """CAS the word; a lost race retries, a fault is EFAULT (after
    ``fault_in_user_writeable`` fails)."""
    if task.process.space.cas_u32(uaddr, old, new) != old:
        raise Retry


class PiLockRequest(ExitAwareRequest):
    """One LOCK_PI / LOCK_PI2 / TRYLOCK_PI call, as a pending wait's request.

    ``waiter`` is the futex waiter of the attempt that queued (``None`` before, and while
    the call waits for an exiting owner, ``exit_wait``); ``deadline`` is the call's
    absolute timeout, read again only when the system call restarts, not when it runs
    again after an owner's exit (``futex_lock_pi``'s ``goto retry`` keeps its hrtimer).
    """

    restart_code = abi.ERESTARTNOINTR

    __slots__ = (
        "_exit_retry",
        "deadline",
        "op",
        "private",
        "task",
        "trylock",
        "uaddr",
        "utime",
        "waiter",
    )

    def __init__(
        self,
        task: Task,
        uaddr: int,
        private: bool,
        trylock: bool,
        op: int = 0,
        utime: int = 0,
        deadline: Deadline | None = None,
    ) -> None:
        self.exit_wait = None
        self.task = task
        self.uaddr = uaddr
        self.private = private
        self.trylock = trylock
        self.op = op
        self.utime = utime
        self.deadline = deadline
        self.waiter: Waiter | None = None
        self._exit_retry = False

    def refresh_deadline(self, deadline: Deadline | None) -> Deadline | int | None:
        """ERESTARTNOINTR runs the system call again: its timeout is read again.  A run
        after an owner's exit keeps the deadline it had."""
        if self._exit_retry:
            self._exit_retry = False
            return self.deadline
        got = reread_timeout(self.task, self.op, self.utime)
        if not isinstance(got, int):
            self.deadline = got
        return got

    # -- Request protocol ---------------------------------------------------------------------

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        task = self.task
        manager = task.process.futex
        self.waiter = None
        while True:  # futex_lock_pi's retry: label
            try:
                key = manager.key(task.process.space, self.uaddr, self.private, write=True)
            except FutexError as exc:
                return errno_of(exc)
            try:
                while True:
                    try:
                        with manager.lock_key(key) as h:
                            return self._attempt_locked(h, key, notify)
                    except Retry:
                        continue
            except MemoryFault:
                return -abi.EFAULT
            except OwnerExiting as busy:  # EBUSY: every lock dropped; wait, then retry
                if wait_for_owner_exiting(self, busy.owner, notify):
                    return None

    def complete(self) -> int | None:
        """0 if the lock was handed to us (fixing the word if an exit handed it on),
        else leave the PI state (or stop waiting for an exiting owner) and answer
        ``None``."""
        if self.exit_wait is not None:
            ew = self.end_exit_wait()
            assert ew is not None
            self._exit_retry = ew.over
            return None
        return finish_pi_wait(self.task, self.waiter, self.uaddr)

    def detach(self) -> None:
        if self.waiter is not None:
            self.waiter.notify = None
        if self.exit_wait is not None:
            super().detach()

    # -- the attempt --------------------------------------------------------------------------

    def _attempt_locked(
        self, h: LockedBucket, key: Key, notify: Callable[[Waiter], None]
    ) -> int | None:
        task = self.task
        domain = task.process.futex.pi
        with domain.lock:
            got = lock_pi_atomic_pi_locked(task, self.uaddr, h, key, task, set_waiters=False)
            if isinstance(got, int):
                return 0 if got == 1 else got
            state = got
            if state.owner is task:
                # Row [6] reached by the state's own owner (the word lost its TID):
                # rt_mutex_futex_trylock fails on our own rt_mutex and fixup_pi_owner
                # rewrites the word; LOCK_PI's EDEADLK is undone by
                # rt_mutex_cleanup_proxy_lock finding us the owner: 0, word untouched.
                if self.trylock:
                    _fixup_word(task, self.uaddr, owner_died=False)
                    return -abi.EWOULDBLOCK
                return 0
            if self.trylock:
                release_if_idle_pi_locked(task, state)
                return -abi.EWOULDBLOCK
            try:
                pw = domain.block(state, task)
            except PiDeadlock:
                release_if_idle_pi_locked(task, state)
                return -abi.EDEADLK
            w = Waiter(notify, owner=task, prio=task.queue_prio, tid=task.tid)
            w.pi = pw
            pw.waiter = w
            h.enqueue(key, w)
            self.waiter = w
        return None


def finish_pi_wait(task: Task, w: Waiter | None, uaddr: int) -> int | None:
    """End a PI wait (LOCK_PI, or WAIT_REQUEUE_PI on either side of its requeue).

    If a hand-off or an atomic take already dequeued ``w``, the task owns the PI futex at
    ``uaddr``: fix the word up (``fixup_pi_owner``; OWNER_DIED when a dying owner handed it
    on) and answer 0.  Else dequeue it (following requeues), leave the PI state it blocks
    on, if any, and answer ``None``.
    """
    if w is None:
        return None
    if not w.woken:  # else dequeued for good by a hand-off or an atomic take: no lock
        manager = task.process.futex
        with manager.lock_waiter(w) as h:
            if h is not None:
                with manager.pi.lock:
                    h.dequeue(w)
                    pw = w.pi
                    if isinstance(pw, PiWaiter):
                        manager.pi.unblock(pw)
                        release_if_idle_pi_locked(task, pw.state)
                return None
    died = isinstance(w.pi, PiWaiter) and w.pi.owner_died
    _fixup_word(task, uaddr, owner_died=died)
    return 0


def _fixup_word(task: Task, uaddr: int, *, owner_died: bool) -> None:
    """``__fixup_pi_state_owner`` for ``task``: unless the word already names it, CAS it to
    ``(word & OWNER_DIED) | WAITERS | tid`` (plus OWNER_DIED when the previous owner
    died).  A fault leaves the word as it is."""
    space = task.process.space
    newtid = _WAITERS | task.tid | (_OWNER_DIED if owner_died else 0)
    try:
        uval = space.load_u32(uaddr)
        if uval & _TID == task.tid and not owner_died:
            return
        while True:
            prev = space.cas_u32(uaddr, uval, (uval & _OWNER_DIED) | newtid)
            if prev == uval:
                return
            uval = prev
    except MemoryFault:
        return


def lock_pi_atomic_pi_locked(
    caller: Task, uaddr: int, h: LockedBucket, key: Key, task: Task, *, set_waiters: bool
) -> int | PiState:
    """``futex_lock_pi_atomic`` for ``task`` (the caller, or a requeued waiter): 1 when
    ``task`` took the word, the PI state to block on when it is owned, or -errno.

    The bucket lock of ``key`` (``h``) and the PI-domain lock held.  Raises
    :class:`Retry` when a CAS lost a race, :class:`MemoryFault` when the word cannot be
    read or written, and :class:`~futex.linux.pi_exit.OwnerExiting` when the owner is in
    its futex exit.  With ``set_waiters`` (requeue-PI moving more waiters) a free word is
    taken with WAITERS set and a PI state attached to ``task``.
    """
    space = caller.process.space
    domain = caller.process.futex.pi
    tid = task.tid
    uval = space.load_u32_nofault(uaddr)  # futex_get_value_locked, fault_in_user_writeable
    if uval & _TID == tid:
        return -abi.EDEADLK
    top = h.head(key)
    if top is not None:
        if not isinstance(top.pi, PiWaiter):
            return -abi.EINVAL  # [3] a plain waiter on a PI futex
        state: PiState = top.pi.state
        bad = _validate(uval, state)
        return bad if bad else state
    if not uval & _TID:
        newval = (uval & _OWNER_DIED) | tid | (_WAITERS if set_waiters else 0)
        _cas(caller, uaddr, uval, newval)
        if set_waiters:
            domain.attach(PiState(key, None), task)
        return 1
    _cas(caller, uaddr, uval, uval | _WAITERS)
    return attach_to_pi_owner(caller, uaddr, uval | _WAITERS, key)


def attach_to_pi_owner(caller: Task, uaddr: int, uval: int, key: Key) -> int | PiState:
    """``attach_to_pi_owner``: a new PI state owned by the task the word ``uval`` names,
    or ``handle_exit_race``'s answer (bucket and PI-domain locks held; the domain lock
    is the owner's ``pi_lock``, under which its futex state changes).

    No task with that TID, or a DEAD one: the word is read again -- changed, run the
    attempt again (:class:`Retry`); unchanged, ESRCH (no robust list named the lock, or
    the TID is bogus).  A task whose exit is under way (EXITING): raise
    :class:`~futex.linux.pi_exit.OwnerExiting` (EBUSY), before the word is read again.
    """
    owner = caller.kernel.tasks.get(uval & _TID)
    if owner is not None and owner.futex_state is FutexState.OK:
        state = PiState(key, None)
        caller.process.futex.pi.attach(state, owner)
        return state
    if owner is not None and owner.futex_state is not FutexState.DEAD:
        raise OwnerExiting(owner)
    if caller.process.space.load_u32(uaddr) != uval:
        raise Retry  # the exiting task changed the word (robust list): look again
    return -abi.ESRCH


def release_if_idle_pi_locked(task: Task, state: PiState) -> None:
    """Drop a PI state nobody waits on (``put_pi_state`` of the last reference)."""
    if not state.waiters:
        task.process.futex.pi.attach(state, None)


def _validate(uval: int, state: PiState) -> int:
    """``attach_to_pi_state``: 0 to attach, or -EINVAL (rows of the module table)."""
    pid = uval & _TID
    owner = state.owner
    if uval & _OWNER_DIED:
        if owner is None:
            return -abi.EINVAL if pid else 0  # [5] / [4]
        if not pid:
            return 0  # [6]
    elif owner is None:
        return -abi.EINVAL  # [7]
    assert owner is not None
    return 0 if pid == owner.tid else -abi.EINVAL  # [8] / [9]


def futex_lock_pi(
    task: Task,
    uaddr: int,
    private: bool,
    deadline: Deadline | None,
    trylock: bool,
    op: int = 0,
    utime: int = 0,
) -> int | PendingWait:
    """LOCK_PI / LOCK_PI2 / TRYLOCK_PI: 0 when the caller owns the lock, -errno, or a
    pending wait.  ``op`` and ``utime`` let a restart read the timeout again.

    TRYLOCK_PI never queues on the lock, but it too waits for an exiting owner (the
    EBUSY case of ``futex_lock_pi`` comes before the trylock): then it is pending."""
    request = PiLockRequest(task, uaddr, private, trylock, op, utime, deadline)
    return PendingWait(task, deadline, request, task.kernel.clock, LINUX_POLICY.outcomes).start()


def futex_unlock_pi(task: Task, uaddr: int, private: bool) -> int:
    """UNLOCK_PI; see the module docstring for the order of checks."""
    space = task.process.space
    try:  # get_user: any alignment (a misaligned word is EPERM or EINVAL below)
        uval = space.load_u32(uaddr) if not uaddr & 3 else int.from_bytes(
            space.read(uaddr, 4), "little"
        )
    except MemoryFault:
        return -abi.EFAULT
    if uval & _TID != task.tid:
        return -abi.EPERM
    manager = task.process.futex
    try:
        key = manager.key(space, uaddr, private, write=True)
    except FutexError as exc:
        return errno_of(exc)
    while True:
        woken: list[Waiter] = []
        try:
            with manager.lock_key(key) as h:
                result = _unlock_locked(task, h, key, uaddr, uval, woken)
        except MemoryFault:
            return -abi.EFAULT
        except Retry:  # the word changed before we held the bucket: start over
            try:
                uval = space.load_u32(uaddr)
            except MemoryFault:
                return -abi.EFAULT
            if uval & _TID != task.tid:
                return -abi.EPERM
            continue
        finally:
            if woken:
                notify_all(woken)
        return result


def _unlock_locked(
    task: Task, h: LockedBucket, key: Key, uaddr: int, uval: int, woken: list[Waiter]
) -> int:
    space = task.process.space
    top = h.head(key)
    if top is None:
        prev = space.cas_u32(uaddr, uval, 0)
        return 0 if prev == uval else -abi.EAGAIN
    if not isinstance(top.pi, PiWaiter) or top.pi.state.owner is not task:
        return -abi.EINVAL
    state: PiState = top.pi.state
    with task.process.futex.pi.lock:
        nxt = state.top()
        assert nxt is not None
        newval = _WAITERS | nxt.task.tid
        prev = space.cas_u32(uaddr, uval, newval)
        if prev != uval:
            if prev & _TID == uval:  # only WAITERS appeared: an unconditional unlock raced
                raise Retry
            return -abi.EINVAL
        _hand_off_pi_locked(h, state, woken)
    return 0


def _hand_off_pi_locked(h: LockedBucket, state: PiState, woken: list[Waiter]) -> None:
    """Give ``state`` to its top waiter and dequeue that waiter from ``h``, the bucket it
    is queued in (bucket and PI-domain locks held); the waiter is told after the locks
    are released.  Only the waiter's own bucket is touched: whose process keyed the
    futex does not matter here."""
    top = state.top()
    assert top is not None
    w: Waiter = top.waiter
    if DEBUG_LOCKS:
        assert h.holds(w), "a PI waiter is handed the lock in the bucket it is queued in"
    waiter: Task = w.owner  # top.task, typed (w's owner is the task its PI wait is for)
    waiter.process.futex.pi.hand_off(state)  # the waiter's: its process keyed the futex
    h.wake(w, woken)
    release_if_idle_pi_locked(waiter, state)


def exit_pi_state_list(task: Task) -> None:
    """Hand on every PI futex the exiting (or exec-ing) ``task`` still owns (Linux
    ``exit_pi_state_list``, ``kernel/futex/core.c``).

    For each PI state on the task's list, under the lock of the bucket its waiters are
    queued in and then the PI-domain lock (the lock order), the state loses its owner
    (``pi_state->owner = NULL``) and ``rt_mutex_futex_unlock`` hands the lock to the top
    waiter.  That waiter, waking, writes its TID into the word with WAITERS and
    OWNER_DIED (``__fixup_pi_state_owner``: ``/* Owner died? */ if (!pi_state->owner)
    newtid |= FUTEX_OWNER_DIED``); an OWNER_DIED the robust walk set stays.  A state
    nobody waits on is only dropped (``put_pi_state``).

    Which bucket: a PI state belongs to the futex its *waiters* keyed, in their own
    address space, which need not be the owner's -- a task of another process may block
    on a *private* PI futex of its own whose word names this task
    (``attach_to_pi_owner`` finds the TID kernel-wide).  Linux hashes ``pi_state->key``,
    whose private form carries the waiter's ``mm``, so it locks the waiters' bucket and
    never the owner's.  Here a private key is a bare address, scoped to the manager of
    the process that made it, so the bucket is the one the queued top waiter is in
    (``manager.lock_waiter``, which follows the waiter until it holds its bucket's lock),
    and the top waiter is checked again once the locks are held: a waiter that left, or
    a private-hash rehash that moved it, sends the loop round again (Linux's
    ``head->next != next`` recheck).  Another process's queues are touched only to
    dequeue the waiter handed the lock, exactly as its own unlock would.
    """
    manager = task.process.futex
    domain = manager.pi
    while True:
        with domain.lock:
            if not task.pi_states:
                return
            state = task.pi_states[0]
            top = state.top()
            if top is None:  # queued nowhere: nothing but the owner refers to it
                domain.attach(state, None)
                continue
            w: Waiter = top.waiter
            assert w.queued, "a waiter blocked on a PI state is queued"
        woken: list[Waiter] = []
        with manager.lock_waiter(w) as h, domain.lock:
            top = state.top()
            if state.owner is task and top is not None and h is not None and h.holds(top.waiter):
                top.owner_died = True  # pi_state->owner = NULL: its fixup adds OWNER_DIED
                _hand_off_pi_locked(h, state, woken)
        notify_all(woken)
