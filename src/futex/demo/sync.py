"""The demo's synchronization, written once for every kernel: a futex mutex, a
sequence-counter condition variable, and a bounded ring buffer guarded by them.

Everything lives in one emulated process's memory and every sleep or wake is a futex call
through a :class:`~futex.demo.kernels.FutexOps` adapter (Linux futex(2), Zircon
``zx_futex_*`` or LiteOS-A ``SysFutex``), exactly as a C program would make it:

- :class:`FutexMutex` — Drepper's "Mutex, Take 2" ("Futexes Are Tricky"), the algorithm
  Fuchsia's libsync mutex uses; the adapter says what the word holds when locked (1, or
  the owner's thread handle on Zircon) and how it is marked contested;
- :class:`FutexCondvar` — a sequence-counter condition variable whose ``notify_all``
  wakes one waiter and requeues the others onto the mutex word (``FUTEX_CMP_REQUEUE``,
  ``zx_futex_requeue`` or LiteOS's plain ``FUTEX_REQUEUE``), and whose ``notify_one`` is a
  wake;
- :class:`Ring` — a bounded FIFO guarded by one mutex and two condition variables
  (``not_empty`` for consumers, ``not_full`` for producers).

Memory layout of a :class:`Ring` (one page; all words little-endian u32)
--------------------------------------------------------------------------

======  ======================  ===================================================
offset  word                    meaning
======  ======================  ===================================================
0       ``mutex``               :class:`FutexMutex` word (below)
4       ``not_empty.seq``       :class:`FutexCondvar` sequence counter (futex word)
8       ``not_empty.waiters``   tasks inside ``not_empty.wait`` (under the mutex)
12      ``not_full.seq``        sequence counter (futex word)
16      ``not_full.waiters``    tasks inside ``not_full.wait`` (under the mutex)
20      ``head``                items taken so far (under the mutex)
24      ``tail``                items put so far (under the mutex)
28      ``producers``           producers still running (under the mutex)
32...   ``slot[i]``             ``capacity`` item slots; item ``n`` is at
                                ``slot[n % capacity]``; items in the ring:
                                ``tail - head``
======  ======================  ===================================================

Why no wakeup can be lost
-------------------------
The kernel half, the same in all three kernels: a wait compares the word with the value
the caller expects and queues the caller under the same bucket lock that a wake or a
requeue takes to find waiters (Linux ``futex_wait_setup``, Zircon's thread lock, LiteOS's
bucket ``listLock``).  So a waker that *changes the word first* and then calls the kernel
either finds the waiter queued, or the waiter's compare sees the new value and returns at
once (``EAGAIN`` / ``ZX_ERR_BAD_STATE`` / ``EBADF``) instead of sleeping.  Both
user-space halves are built so that every wake is preceded by such a change of the word
the sleeper compared:

- mutex: a task sleeps only on a contested value that is in the word (it saw it or
  stored it); only an unlock takes a contested value away, and it then wakes;
- condvar: a waiter reads ``seq`` while it holds the mutex; a notifier holds the mutex too
  (so it comes after that read) and increments ``seq`` before it calls the kernel.

The details are in the docstrings of :class:`FutexMutex` and :class:`FutexCondvar`.
"""

from __future__ import annotations

from typing import Generic

from futex.demo.kernels import INT_MAX, FutexOps, TaskT

__all__ = ["FutexCondvar", "FutexMutex", "Ring"]

_U32 = 0xFFFFFFFF


def _unlocked(_old: int) -> int:
    return 0


def _increment(old: int) -> int:
    return (old + 1) & _U32


def _decrement(old: int) -> int:
    return (old - 1) & _U32


# -- the mutex --------------------------------------------------------------------------


class FutexMutex(Generic[TaskT]):
    """Drepper's "Mutex, Take 2" on the u32 word at ``addr``, as Fuchsia's libsync has it
    (``sync_mutex_lock`` / ``sync_mutex_unlock``); ``ops`` says what the word holds:

    ====================  ================  ======================================
    word                  Linux, LiteOS     Zircon (libsync)
    ====================  ================  ======================================
    unlocked              0                 0
    locked                1                 the owner's thread handle
    locked, contested     2                 the handle with bit 0 cleared
    ====================  ================  ======================================

    "Contested" means tasks may be asleep on the word, so the unlock must wake one.

    ``lock``: compare-and-swap 0 -> *locked* (the uncontested fast path, no system call).
    If the word was not 0, the slow path: mark the value seen contested (a CAS, unless it
    already is), sleep on the contested value — telling the kernel whom the word names as
    owner, which only Zircon records — and, woken or not, try 0 -> *locked, contested*;
    if that fails, start over with the value it saw.
    ``unlock``: exchange the word with 0; if the old value was contested, wake one waiter
    (Zircon: ``zx_futex_wake_single_owner``, which makes the woken thread the owner).

    No lost wakeup: a task only sleeps on a contested value that is in the word (it stored
    it or saw it), and the kernel queues it only if the word still holds it, under the
    bucket lock.  Nothing but an unlock stores a value that is not contested over a
    contested one, and that unlock wakes; so either the wake finds the task queued, or
    the task's compare sees the word changed and it does not sleep.  A task that leaves
    the slow path takes the lock *contested* (it cannot know whether others still sleep),
    so its own unlock wakes the next one.  The cost: a lock taken through the slow path
    always unlocks with a (possibly needless) wake.

    The lock is not recursive.
    """

    def __init__(self, ops: FutexOps[TaskT], addr: int) -> None:
        self.ops = ops
        self.addr = addr

    def __repr__(self) -> str:
        return f"<FutexMutex {self.addr:#x} word={self.word:#x}>"

    @property
    def word(self) -> int:
        """The current value of the mutex word."""
        return self.ops.load(self.addr)

    def contested(self, value: int) -> bool:
        """Whether a locked word ``value`` says tasks may sleep on it."""
        return self.ops.contested(value) == value

    def try_lock(self, task: TaskT) -> bool:
        """Take the lock if it is free; never blocks, never calls the kernel."""
        return self.ops.cas(self.addr, 0, self.ops.locked_value(task)) == 0

    def lock(self, task: TaskT) -> None:
        """Take the lock, sleeping in the kernel while another task holds it."""
        ops = self.ops
        mine = ops.locked_value(task)
        old = ops.cas(self.addr, 0, mine)
        if old != 0:
            self._lock_slow(task, ops.contested(mine), old)

    def lock_contended(self, task: TaskT) -> None:
        """Take the lock marked contested — the path for a task that was woken or
        requeued by a condition variable: other tasks may have been requeued onto this
        word with it, so its unlock must wake (libsync's ``sync_mutex_lock_with_waiter``;
        see :class:`FutexCondvar`)."""
        mine = self.ops.contested(self.ops.locked_value(task))
        old = self.ops.cas(self.addr, 0, mine)
        if old != 0:
            self._lock_slow(task, mine, old)

    def _lock_slow(self, task: TaskT, mine: int, old: int) -> None:
        """libsync's ``lock_slow_path``: ``old`` is the locked value last seen, ``mine``
        the word this task stores when it takes the lock."""
        ops, addr = self.ops, self.addr
        while True:
            contested = ops.contested(old)
            if contested == old or ops.cas(addr, old, contested) == old:
                ops.wait(task, addr, contested, ops.owner_of_word(old))
            old = ops.cas(addr, 0, mine)
            if old == 0:
                return

    def unlock(self, task: TaskT) -> None:
        """Release the lock; wake one sleeper if the word said there might be one."""
        prev = self.ops.update(self.addr, _unlocked)
        if prev == 0:
            raise RuntimeError(f"unlock of {self!r}, which was not locked")
        if self.contested(prev):
            self.ops.wake_owner(task, self.addr)


# -- the condition variable -------------------------------------------------------------


class FutexCondvar(Generic[TaskT]):
    """A sequence-counter condition variable at ``addr`` (two u32 words), tied to
    ``mutex``.

    ======  ===========  =========================================================
    offset  word         meaning
    ======  ===========  =========================================================
    0       ``seq``      the futex word: incremented (mod 2**32) by every notify
                         that finds waiters
    4       ``waiters``  tasks between the start and the end of :meth:`wait`;
                         read and written only with the mutex held
    ======  ===========  =========================================================

    ``wait`` (mutex held): read ``seq``, count itself in ``waiters``, unlock, then wait
    on ``seq`` for the value read; on return (woken, or at once because ``seq`` moved
    before the task was queued) re-take the mutex with :meth:`FutexMutex.lock_contended`
    and uncount itself.  Like every condition variable it may return without a notify;
    callers re-check their predicate in a loop.

    ``notify_one`` / ``notify_all`` must be called **with the mutex held**.  They do
    nothing (no system call) when ``waiters`` is 0; otherwise they increment ``seq`` and
    then call the kernel: ``notify_one`` wakes one waiter, ``notify_all`` wakes one and
    requeues all others onto the mutex word, where they are woken one per unlock instead
    of all at once only to fight over the mutex (the thundering herd).  The requeue names
    the owner the mutex word shows (Zircon records it; libsync's ``signal_requeue``).
    A task stays counted in ``waiters`` until it has re-taken the mutex, so a notify may
    call the kernel for waiters that were already woken (a wasted wake that finds nobody,
    never a missed one).

    No lost wakeup:

    - *Notify before the waiter sleeps.*  The waiter read ``seq`` and counted itself in
      ``waiters`` while holding the mutex; the notifier holds the mutex as well, so it sees
      the count and increments ``seq`` after the read.  If the waiter is not yet queued,
      the kernel's compare (under the bucket lock) sees the new ``seq`` and returns at
      once; if it is queued, the wake or requeue (same bucket lock) finds it.  (Only
      exactly 2**32 notifies between the read and the compare could fool it.)
    - *Requeued waiters.*  They sleep on the mutex word, and only a mutex unlock that takes
      a contested value away wakes them.  The requeue always wakes one waiter as well, and
      moves waiters only after waking one; the woken task re-takes the mutex with
      :meth:`FutexMutex.lock_contended`, which stores a contested value before it can own
      the mutex or sleep.  From then on the mutex argument holds: the word is contested
      while anyone is queued on it, each unlock wakes one, and each woken task stores a
      contested value again.  (Had the woken task taken the fast path, its unlock would
      not wake, and the requeued tasks would sleep forever.)
    - *The compare of the requeue.*  It cannot fail while notifiers hold the mutex
      (``seq`` changes only under it); if it does (a notify without the mutex), the
      fallback is a wake of all, which is always correct.  LiteOS's requeue has no
      compare, and needs none for the same reason (:mod:`futex.demo.liteos`).
    """

    def __init__(self, ops: FutexOps[TaskT], addr: int, mutex: FutexMutex[TaskT]) -> None:
        self.ops = ops
        self.addr = addr
        self.mutex = mutex

    def __repr__(self) -> str:
        seq = self.ops.load(self.addr)
        return f"<FutexCondvar {self.addr:#x} seq={seq} waiters={self.waiters}>"

    @property
    def waiters(self) -> int:
        """Tasks currently inside :meth:`wait` (meaningful with the mutex held)."""
        return self.ops.load(self.addr + 4)

    def wait(self, task: TaskT) -> None:
        """Release the mutex, sleep until notified (or spuriously), re-take the mutex."""
        ops = self.ops
        seq = ops.load(self.addr)
        ops.update(self.addr + 4, _increment)
        self.mutex.unlock(task)
        ops.wait(task, self.addr, seq)
        self.mutex.lock_contended(task)
        ops.update(self.addr + 4, _decrement)

    def notify_one(self, task: TaskT) -> int | None:
        """Wake one waiter (mutex held).  Returns how many the kernel woke (0 or 1), or
        None if the kernel does not say (Zircon)."""
        self._check_mutex_held()
        if not self.waiters:
            return 0
        self.ops.update(self.addr, _increment)
        return self.ops.wake(task, self.addr, 1)

    def notify_all(self, task: TaskT) -> int | None:
        """Wake every waiter (mutex held): one now, the others requeued onto the mutex.
        Returns woken + requeued where the kernel says, else None."""
        self._check_mutex_held()
        if not self.waiters:
            return 0
        ops = self.ops
        seq = (ops.update(self.addr, _increment) + 1) & _U32
        owner = ops.owner_of_word(self.mutex.word)
        done, n = ops.requeue(task, self.addr, seq, self.mutex.addr, owner)
        if not done:  # seq moved under us: only if someone notified unlocked
            return ops.wake(task, self.addr, INT_MAX)
        return n

    def _check_mutex_held(self) -> None:
        if self.mutex.word == 0:
            raise RuntimeError(f"notify on {self!r} without holding its mutex")


# -- the ring buffer --------------------------------------------------------------------

_MUTEX, _NOT_EMPTY, _NOT_FULL, _HEAD, _TAIL, _PRODUCERS, _SLOTS = 0, 4, 12, 20, 24, 28, 32
_PAGE = 4096


class Ring(Generic[TaskT]):
    """A bounded FIFO of u32 items in the memory of ``ops``'s process (layout: module
    docstring), guarded by a :class:`FutexMutex` with two :class:`FutexCondvar` s.

    ``producers`` is how many producers will call :meth:`producer_done`; once all have,
    :meth:`take` on an empty ring returns ``None`` instead of waiting.

    Nobody waits for a change that already happened: each predicate is checked with the
    mutex held, and each change that can make one true is followed, under the same
    mutex, by a notify that wakes as many of the tasks waiting for it as it can satisfy:

    ==========================  ==========================  ==============================
    waiter waits for            change                      notify
    ==========================  ==========================  ==============================
    consumer: ring not empty    :meth:`put`                 ``not_empty.notify_one`` (one
                                                            item satisfies one consumer)
    consumer: producers done    last :meth:`producer_done`  ``not_empty.notify_all``
    producer: ring not full     :meth:`take` from a full    ``not_full.notify_all`` (only
                                ring                        a take changes a full ring)
    ==========================  ==========================  ==============================
    """

    def __init__(self, ops: FutexOps[TaskT], capacity: int, producers: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.ops = ops
        self.capacity = capacity
        size = _SLOTS + 4 * capacity
        self.base = ops.mmap((size + _PAGE - 1) // _PAGE * _PAGE)
        self.mutex = FutexMutex(ops, self.base + _MUTEX)
        self.not_empty = FutexCondvar(ops, self.base + _NOT_EMPTY, self.mutex)
        self.not_full = FutexCondvar(ops, self.base + _NOT_FULL, self.mutex)
        ops.store(self.base + _PRODUCERS, producers)

    @property
    def futex_words(self) -> dict[str, int]:
        """The futex words by name (``mutex``, ``not_empty``, ``not_full``)."""
        return {
            "mutex": self.mutex.addr,
            "not_empty": self.not_empty.addr,
            "not_full": self.not_full.addr,
        }

    @property
    def produced(self) -> int:
        """Items put so far (an unlocked read: exact once the workers have finished)."""
        return self.ops.load(self.base + _TAIL)

    @property
    def consumed(self) -> int:
        """Items taken so far (an unlocked read: exact once the workers have finished)."""
        return self.ops.load(self.base + _HEAD)

    def _count(self) -> int:
        ops = self.ops
        return (ops.load(self.base + _TAIL) - ops.load(self.base + _HEAD)) & _U32

    def put(self, task: TaskT, item: int) -> None:
        """Append ``item``, waiting while the ring is full."""
        ops, base = self.ops, self.base
        self.mutex.lock(task)
        while self._count() == self.capacity:
            self.not_full.wait(task)
        tail = ops.load(base + _TAIL)
        ops.store(base + _SLOTS + 4 * (tail % self.capacity), item)
        ops.store(base + _TAIL, tail + 1)
        self.not_empty.notify_one(task)
        self.mutex.unlock(task)

    def take(self, task: TaskT) -> int | None:
        """Remove the oldest item, waiting while the ring is empty; ``None`` when it is
        empty and every producer is done.

        Taking from a full ring notifies *all* producers (a requeue): any of them may be
        waiting for the slot.
        """
        ops, base = self.ops, self.base
        self.mutex.lock(task)
        while (count := self._count()) == 0:
            if ops.load(base + _PRODUCERS) == 0:
                self.mutex.unlock(task)
                return None
            self.not_empty.wait(task)
        head = ops.load(base + _HEAD)
        item = ops.load(base + _SLOTS + 4 * (head % self.capacity))
        ops.store(base + _HEAD, head + 1)
        if count == self.capacity:
            self.not_full.notify_all(task)
        self.mutex.unlock(task)
        return item

    def producer_done(self, task: TaskT) -> None:
        """A producer has put its last item; the last one wakes every waiting consumer."""
        self.mutex.lock(task)
        if self.ops.update(self.base + _PRODUCERS, _decrement) == 1:
            self.not_empty.notify_all(task)
        self.mutex.unlock(task)

    def words(self) -> dict[str, int]:
        """The control words by name (for reports and tests)."""
        ops, base = self.ops, self.base
        return {
            "mutex": ops.load(base + _MUTEX),
            "not_empty.seq": ops.load(base + _NOT_EMPTY),
            "not_empty.waiters": ops.load(base + _NOT_EMPTY + 4),
            "not_full.seq": ops.load(base + _NOT_FULL),
            "not_full.waiters": ops.load(base + _NOT_FULL + 4),
            "head": ops.load(base + _HEAD),
            "tail": ops.load(base + _TAIL),
            "producers": ops.load(base + _PRODUCERS),
        }
