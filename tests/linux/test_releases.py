"""The kernel-release knob: ``LinuxKernel(release="5.15")`` answers as that mainline release.

Every change of :data:`futex.linux.facts.CHANGES` is pinned here on both sides of the release
it landed in, on the emulator only (the host is one release; it is compared with the emulator
elsewhere).  Each test names the kernel commit or function whose behaviour it pins.  Time is a
:class:`ManualClock`'s; blocking calls use the cooperative form (:class:`PendingWait`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from futex.linux.facts import (
    ACCESS_OK_BELOW_MAX,
    ACCESS_OK_SIGN_BIT,
    ACCESS_OK_SIZED,
    CHANGES,
    NEWEST,
    OLDEST,
    Change,
    LinuxFacts,
    parse_release,
    release_values,
)
from futex.linux.host import probe
from futex.memory import USER_PTR_MAX_X86_64

#: The releases every generic test runs on: the window's ends and the LTS releases in it.
RELEASES = ["5.10", "5.15", "6.1", "6.6", "6.12", NEWEST]

SEC = abi.NSEC_PER_SEC
U64 = 0xFFFFFFFFFFFFFFFF
PRIV = abi.FUTEX_PRIVATE_FLAG
RT = abi.FUTEX_CLOCK_REALTIME
WAIT_PRIVATE = abi.FUTEX_WAIT | PRIV
WAKE_PRIVATE = abi.FUTEX_WAKE | PRIV
U32F_PRIV = abi.FUTEX2_SIZE_U32 | abi.FUTEX2_PRIVATE
SET_ROBUST = abi.SYS_set_robust_list
GET_ROBUST = abi.SYS_get_robust_list

Make = Callable[[str], LinuxKernel]


@pytest.fixture
def make(clock: ManualClock) -> Iterator[Make]:
    """``make("5.15")``: an emulated kernel of that release on the test's clock; every
    process's queues must be consistent at the end."""
    made: list[LinuxKernel] = []

    def build(release: str) -> LinuxKernel:
        k = LinuxKernel(clock=clock, release=release)
        made.append(k)
        return k

    yield build
    for k in made:
        for p in list(k.processes.values()):
            p.futex.check_invariants()


@dataclass(frozen=True)
class OneTask:
    """A process, a task in it and a fresh zeroed page."""

    process: Process
    task: Task
    page: int


def one_task(k: LinuxKernel) -> OneTask:
    """A new process of ``k`` with one task and a fresh zeroed page (:class:`OneTask`)."""
    p = k.new_process()
    return OneTask(process=p, task=p.new_task(), page=p.mmap(4096))


def timespec(p: Process, sec: int, nsec: int = 0) -> int:
    a = p.mmap(4096)
    p.write(a, struct.pack("<qq", sec, nsec))
    return a


def before(release: str) -> str:
    """The release just before ``release`` (``6.0`` -> ``5.19``)."""
    major, minor = parse_release(release)
    return f"{major}.{minor - 1}" if minor else f"{major - 1}.19"


# -- the facts themselves -----------------------------------------------------------------


def test_default_facts_are_the_newest_release() -> None:
    """``LinuxFacts()`` is 6.18 on a CPU with protection keys; ``LinuxKernel()`` uses it."""
    assert LinuxFacts() == LinuxFacts.for_release(NEWEST)
    assert LinuxFacts().protection_keys
    assert LinuxKernel(clock=ManualClock()).facts == LinuxFacts()


def test_changes_are_ordered_and_inside_the_window() -> None:
    """CHANGES is data: oldest first, every release inside OLDEST..NEWEST, every field a
    LinuxFacts field whose newest value is the default."""
    since = [parse_release(c.since) for c in CHANGES]
    assert since == sorted(since)
    assert all(parse_release(OLDEST) < s <= parse_release(NEWEST) for s in since)
    newest = LinuxFacts()
    for field, value in release_values(NEWEST).items():
        assert getattr(newest, field) == value, field


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: f"{c.field}@{c.since}")
def test_each_change_flips_at_its_release(change: Change) -> None:
    """``for_release`` takes each field's value from the first release that has it."""
    at = LinuxFacts.for_release(change.since)
    prior = LinuxFacts.for_release(before(change.since))
    assert getattr(at, change.field) == change.value
    assert getattr(prior, change.field) != change.value


def test_for_release_rejects_releases_outside_the_window() -> None:
    for release in ("5.9", "4.19", "6.19", "7.0"):
        with pytest.raises(ValueError, match="outside"):
            LinuxFacts.for_release(release)
    with pytest.raises(ValueError, match="not a Linux release"):
        LinuxFacts.for_release("latest")
    assert LinuxFacts.for_release("6.1.158-lts").release == "6.1"


def test_for_release_takes_machine_fields_only() -> None:
    """A release field passed as a machine field is a TypeError; so is a field that does not
    exist."""
    with pytest.raises(TypeError, match="follow from the release"):
        LinuxFacts.for_release("6.1", lock_pi2=True)
    with pytest.raises(TypeError, match="unexpected keyword"):
        LinuxFacts.for_release("6.1", paging_levels=5)
    with pytest.raises(TypeError, match="follow from the release"):
        LinuxFacts.for_release("6.6", waitv_validates_val=True)
    f = LinuxFacts.for_release("5.15", protection_keys=False, online_cpus=2)
    assert (f.protection_keys, f.online_cpus, f.futex_waitv) == (False, 2, False)


def test_kernel_takes_facts_or_release_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        LinuxKernel(facts=LinuxFacts(), release="6.1")
    k = LinuxKernel(clock=ManualClock(), release="5.15")
    assert k.facts == LinuxFacts.for_release("5.15")


def test_probed_facts_build_a_kernel() -> None:
    """The host probe's facts are self-consistent: they construct a kernel whose processes
    work.  (Their values are the host's; none is asserted.)"""
    facts = probe().facts
    for c in CHANGES:
        assert isinstance(getattr(facts, c.field), type(c.value)), c.field
    parse_release(facts.release)  # a release string, whatever the host's is
    assert facts.futex_waitv or not facts.waitv_validates_val  # no call, no check
    assert facts.futex2 or not facts.futex2_numa
    k = LinuxKernel(clock=ManualClock(), facts=facts)
    one = one_task(k)
    t, a = one.task, one.page
    assert t.syscall_futex(a, WAKE_PRIVATE, 1, 0, 0, 0) == 0
    assert t.syscall_futex(a, WAIT_PRIVATE, 1, 0, 0, 0) == -abi.EAGAIN


# -- 5.13: FUTEX_WAIT | FUTEX_CLOCK_REALTIME ---------------------------------------------------


@pytest.mark.parametrize("release", ["5.13", "6.1", NEWEST])
def test_wait_clock_realtime_enosys_since_5_13(make: Make, release: str) -> None:
    """4fbf5d6837bf (5.13) reverted 337f13046ff0: do_futex gives ENOSYS -- after
    sys_futex has read and checked the timeout."""
    one = one_task(make(release))
    p, t, a = one.process, one.task, one.page
    assert t.syscall_futex(a, WAIT_PRIVATE | RT, 0, 0, 0, 0) == -abi.ENOSYS
    assert t.syscall_futex(a, WAIT_PRIVATE | RT, 0, timespec(p, 1), 0, 0) == -abi.ENOSYS
    assert t.syscall_futex(a, WAIT_PRIVATE | RT, 0, timespec(p, 0, SEC), 0, 0) == -abi.EINVAL
    assert t.syscall_futex(a, WAIT_PRIVATE | RT, 0, 8, 0, 0) == -abi.EFAULT


@pytest.mark.parametrize("release", ["5.10", "5.12"])
def test_wait_clock_realtime_accepted_before_5_13(make: Make, release: str) -> None:
    """337f13046ff0 (4.5): FUTEX_WAIT takes FUTEX_CLOCK_REALTIME like WAIT_BITSET."""
    one = one_task(make(release))
    p, t, a = one.process, one.task, one.page
    assert t.syscall_futex(a, WAIT_PRIVATE | RT, 1, 0, 0, 0) == -abi.EAGAIN
    w = t.syscall_futex_nb(a, WAIT_PRIVATE | RT, 0, 0, 0, 0)
    assert isinstance(w, PendingWait) and not w.done()
    assert p.new_task().syscall_futex(a, WAKE_PRIVATE, 1, 0, 0, 0) == 1
    assert w.result() == 0


def test_wait_clock_realtime_timeout_before_5_13(make: Make, clock: ManualClock) -> None:
    """The bug 4fbf5d6837bf names: sys_futex adds the relative timeout to ktime_get()
    (CLOCK_MONOTONIC), futex_wait arms it as an absolute CLOCK_REALTIME deadline.  With the
    wall clock ahead of the uptime the wait times out at once, after the value check."""
    one = one_task(make("5.10"))
    p, t, a = one.process, one.task, one.page
    five = timespec(p, 5)
    assert t.syscall_futex(a, WAIT_PRIVATE | RT, 1, five, 0, 0) == -abi.EAGAIN
    assert t.syscall_futex(a, WAIT_PRIVATE | RT, 0, five, 0, 0) == -abi.ETIMEDOUT
    # A wall clock set back to the uptime: the deadline is uptime + 5 s on CLOCK_REALTIME.
    mono = clock.now(ClockId.MONOTONIC)
    clock.set_realtime(mono)
    w = t.syscall_futex_nb(a, WAIT_PRIVATE | RT, 0, five, 0, 0)
    assert isinstance(w, PendingWait)
    assert clock.next_deadline(ClockId.REALTIME) == mono + 5 * SEC
    clock.advance(5 * SEC - 1)
    assert not w.done()
    clock.set_realtime(mono + 5 * SEC)  # the wall clock alone reaches it
    assert w.result() == -abi.ETIMEDOUT


def test_wait_timeout_stays_monotonic_since_5_13(make: Make, clock: ManualClock) -> None:
    """Without the flag FUTEX_WAIT's timeout is relative on CLOCK_MONOTONIC in every
    release (futex_init_timeout)."""
    for release in ("5.10", NEWEST):
        one = one_task(make(release))
        p, t, a = one.process, one.task, one.page
        w = t.syscall_futex_nb(a, WAIT_PRIVATE, 0, timespec(p, 2), 0, 0)
        assert isinstance(w, PendingWait)
        assert clock.next_deadline(ClockId.MONOTONIC) == clock.now(ClockId.MONOTONIC) + 2 * SEC
        clock.advance(2 * SEC)
        assert w.result() == -abi.ETIMEDOUT


# -- 5.14: FUTEX_LOCK_PI2 ----------------------------------------------------------------------


@pytest.mark.parametrize("release", ["5.10", "5.13"])
def test_lock_pi2_enosys_before_5_14(make: Make, release: str) -> None:
    """bf22a6976897 (5.14) added LOCK_PI2; before, command 13 is unknown: ENOSYS, and
    futex_cmd_has_timeout does not know it, so a bad timeout pointer is never read."""
    one = one_task(make(release))
    t, a = one.task, one.page
    assert t.syscall_futex(a, abi.FUTEX_LOCK_PI2 | PRIV, 0, 0, 0, 0) == -abi.ENOSYS
    assert t.syscall_futex(a, abi.FUTEX_LOCK_PI2 | PRIV, 0, 8, 0, 0) == -abi.ENOSYS


@pytest.mark.parametrize("release", ["5.14", "5.15", "6.6", NEWEST])
def test_lock_pi2_since_5_14(make: Make, release: str) -> None:
    one = one_task(make(release))
    p, t, a = one.process, one.task, one.page
    assert t.syscall_futex(a, abi.FUTEX_LOCK_PI2 | PRIV, 0, 8, 0, 0) == -abi.EFAULT
    assert t.syscall_futex(a, abi.FUTEX_LOCK_PI2 | PRIV, 0, 0, 0, 0) == 0
    assert p.load_u32(a) == t.tid
    assert t.syscall_futex(a, abi.FUTEX_UNLOCK_PI | PRIV, 0, 0, 0, 0) == 0


# -- 5.16 futex_waitv, 6.7 futex2, 6.16 NUMA ------------------------------------------------


def waitv(p: Process, *entries: tuple[int, int, int]) -> int:
    """``struct futex_waitv[]`` from ``(val, uaddr, flags)`` triples."""
    a = p.mmap(4096)
    p.write(a, b"".join(struct.pack("<QQII", v, u, f, 0) for v, u, f in entries))
    return a


@pytest.mark.parametrize("release", RELEASES)
def test_futex_waitv_since_5_16(make: Make, release: str) -> None:
    """bf69bad38cf6 (5.16): futex_waitv (449); before, ENOSYS as any unknown number."""
    one = one_task(make(release))
    p, t, a = one.process, one.task, one.page
    r = t.syscall(abi.SYS_futex_waitv, waitv(p, (1, a, U32F_PRIV)), 1, 0, 0, 0)
    has = parse_release(release) >= (5, 16)
    assert r == (-abi.EAGAIN if has else -abi.ENOSYS)
    assert t.calls["futex_waitv"] == (1 if has else 0)


@pytest.mark.parametrize("release", RELEASES)
def test_futex2_calls_since_6_7(make: Make, release: str) -> None:
    """9f6c532f59b2 / cb8c4312afca (6.7): futex_wake / futex_wait / futex_requeue; before,
    ENOSYS whatever the arguments."""
    one = one_task(make(release))
    t, a = one.task, one.page
    has = parse_release(release) >= (6, 7)
    wake = t.syscall(abi.SYS_futex_wake, a, 0xFFFFFFFF, 1, U32F_PRIV)
    wait = t.syscall(abi.SYS_futex_wait, a, 1, 0xFFFFFFFF, U32F_PRIV, 0, 0)
    requeue = t.syscall(abi.SYS_futex_requeue, 0, 1, 0, 0)
    if has:
        assert (wake, wait, requeue) == (0, -abi.EAGAIN, -abi.EINVAL)
    else:
        assert wake == wait == requeue == -abi.ENOSYS


@pytest.mark.parametrize("release", ["6.7", "6.15", "6.16", NEWEST])
def test_futex2_numa_since_6_16(make: Make, release: str) -> None:
    """cec199c5e39b (6.16): FUTEX2_NUMA; before, an unknown flag bit (EINVAL).  Since,
    FUTEX_NO_NODE in the node word becomes the local node."""
    one = one_task(make(release))
    p, t, a = one.process, one.task, one.page
    p.store_u32(a + 4, 0xFFFFFFFF)
    r = t.syscall(abi.SYS_futex_wake, a, 0xFFFFFFFF, 1, U32F_PRIV | abi.FUTEX2_NUMA)
    if parse_release(release) >= (6, 16):
        assert (r, p.load_u32(a + 4)) == (0, 0)
    else:
        assert (r, p.load_u32(a + 4)) == (-abi.EINVAL, 0xFFFFFFFF)
    mpol = t.syscall(abi.SYS_futex_wake, a, 0xFFFFFFFF, 1, U32F_PRIV | abi.FUTEX2_MPOL)
    assert mpol == (0 if parse_release(release) >= (6, 16) else -abi.EINVAL)


# -- 6.7: futex_waitv's val -------------------------------------------------------------------


@pytest.mark.parametrize("release", ["5.16", "6.1", "6.6"])
def test_waitv_wide_val_truncated_before_6_7(make: Make, release: str) -> None:
    """5.16 .. 6.6: futex_wait_multiple_setup compares ``(u32)vs[i].w.val``, so a val with
    bits above 31 matches on its low half and sleeps (698eb8263836's changelog: "the value
    would be truncated to a u32")."""
    one = one_task(make(release))
    p, t, a = one.process, one.task, one.page
    p.store_u32(a, 7)
    mismatch = waitv(p, (1 << 32 | 8, a, U32F_PRIV))
    assert t.syscall(abi.SYS_futex_waitv, mismatch, 1, 0, 0, 0) == -abi.EAGAIN
    w = t.syscall_nb(abi.SYS_futex_waitv, waitv(p, (0xFFFF_FFFF << 32 | 7, a, U32F_PRIV)), 1)
    assert isinstance(w, PendingWait) and not w.done()
    assert p.new_task().syscall_futex(a, WAKE_PRIVATE, 1, 0, 0, 0) == 1
    assert w.result() == 0


@pytest.mark.parametrize("release", ["6.7", "6.12", NEWEST])
def test_waitv_wide_val_einval_since_6_7(make: Make, release: str) -> None:
    """698eb8263836 (6.7): futex_parse_waitv rejects a val that does not fit the size
    (futex_validate_input), after the flag checks and before any key is taken."""
    one = one_task(make(release))
    p, t, a = one.process, one.task, one.page
    p.store_u32(a, 7)
    arr = waitv(p, (1, a, U32F_PRIV), (1 << 32 | 7, a + 1, U32F_PRIV))
    assert t.syscall(abi.SYS_futex_waitv, arr, 2, 0, 0, 0) == -abi.EINVAL
    assert t.syscall(abi.SYS_futex_waitv, waitv(p, (1 << 32 | 7, a, 1)), 1) == -abi.EINVAL


# -- 6.4 / 6.12 / 6.13: x86-64 access_ok --------------------------------------------------------

TOP_SIZED = 0x7FFFFFFFEFFC  # TASK_SIZE_MAX - 4
GUARD = 0x7FFFFFFFF000  # TASK_SIZE_MAX, the base of the guard page
SIGN = 0x7FFFFFFFFFFFFFFC  # the last aligned word below 2**63


@pytest.mark.parametrize(
    ("release", "top"),
    [
        ("5.10", ACCESS_OK_SIZED),
        ("6.3", ACCESS_OK_SIZED),
        ("6.4", ACCESS_OK_SIGN_BIT),
        ("6.11", ACCESS_OK_SIGN_BIT),
        ("6.12", ACCESS_OK_BELOW_MAX),
        ("6.13", USER_PTR_MAX_X86_64),
        (NEWEST, USER_PTR_MAX_X86_64),
    ],
)
def test_access_ok_limit_by_release(make: Make, release: str, top: int) -> None:
    """A private FUTEX_WAKE touches no memory, so only access_ok can fail it: up to 6.3
    ``addr <= TASK_SIZE_MAX - 4``; 6014bc27561f (6.4) any address below 2**63;
    86e6b1547b3d (6.12) ``addr <= TASK_SIZE_MAX - 1``; 573f45a9f9a4 (6.13)
    ``addr <= TASK_SIZE_MAX``."""
    k = make(release)
    assert k.facts.user_ptr_max == top
    one = one_task(k)
    t = one.task
    for addr in (TOP_SIZED, GUARD, SIGN, 1 << 63):
        want = 0 if addr <= top else -abi.EFAULT
        assert t.syscall_futex(addr, WAKE_PRIVATE, 1, 0, 0, 0) == want, hex(addr)


def test_access_ok_sign_bit_era_still_faults_on_the_read(make: Make) -> None:
    """6.4 .. 6.11: a non-canonical word passes access_ok but its read faults (EFAULT), and
    a shared key needs a mapping there (get_futex_key: EFAULT)."""
    one = one_task(make("6.6"))
    t = one.task
    assert t.syscall_futex(SIGN, WAIT_PRIVATE, 0, 0, 0, 0) == -abi.EFAULT
    assert t.syscall_futex(SIGN, abi.FUTEX_WAKE, 1, 0, 0, 0) == -abi.EFAULT


def test_user_ptr_max_given_overrides_the_release() -> None:
    """5-level paging has another TASK_SIZE_MAX: the caller names the limit."""
    la57 = (1 << 56) - 4096
    assert LinuxFacts.for_release("6.13", user_ptr_max=la57).user_ptr_max == la57
    assert LinuxFacts.for_release("5.10", user_ptr_max=la57 - 4).user_ptr_max == la57 - 4


# -- 6.2 / 6.18: robust lists ----------------------------------------------------------------


@dataclass(frozen=True)
class DyingWithPending:
    """A process whose task ``dying`` registered a robust list with one pending entry
    (``list_op_pending``) on ``word``."""

    process: Process
    dying: Task
    word: int


def dying_with_pending(k: LinuxKernel, word_value: int) -> DyingWithPending:
    """A process whose first task registered a robust list with one pending entry on a
    word holding ``word_value`` (:class:`DyingWithPending`)."""
    one = one_task(k)
    p, dying, page = one.process, one.task, one.page
    head, entry, word = page, page + 64, page + 128
    p.write(head, struct.pack("<QqQ", head, word - entry, entry))  # empty list, pending
    p.store_u32(word, word_value)
    assert dying.syscall(SET_ROBUST, head, abi.ROBUST_LIST_HEAD_SIZE) == 0
    return DyingWithPending(process=p, dying=dying, word=word)


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("word", [abi.FUTEX_OWNER_DIED, abi.FUTEX_WAITERS, 0])
def test_exit_wakes_pending_entry_without_tid(make: Make, release: str, word: int) -> None:
    """handle_futex_death, pending non-PI entry with no owner: a shared wake of one waiter
    and nothing else.  90d758896787 (6.2) tests the TID bits; before, the whole word had to
    be 0 (ca16d5bee598), so OWNER_DIED or WAITERS without a TID left the waiter asleep."""
    k = make(release)
    scene = dying_with_pending(k, word)
    p, dying, uaddr = scene.process, scene.dying, scene.word
    waiter = p.new_task()
    w = waiter.syscall_futex_nb(uaddr, abi.FUTEX_WAIT, word, 0, 0, 0)
    assert isinstance(w, PendingWait)
    dying.exit()
    assert p.load_u32(uaddr) == word  # never written: the entry has no owner
    woken = word == 0 or parse_release(release) >= (6, 2)
    assert w.done() == woken
    if not woken:
        assert p.new_task().syscall_futex(uaddr, abi.FUTEX_WAKE, 1, 0, 0, 0) == 1
    assert w.result() == 0


@pytest.mark.parametrize("release", ["6.6", "6.17", NEWEST])
def test_get_robust_list_error_pointer_head(make: Make, release: str) -> None:
    """6b54082c3ed4 (6.18): futex_get_robust_list_common returns the head or an ERR_PTR, so
    a stored head in [-4095, -1] is answered as that errno with nothing written; before, it
    is an ordinary head: the length, then the head, and 0."""
    one = one_task(make(release))
    p, t, a = one.process, one.task, one.page
    assert t.syscall(SET_ROBUST, -abi.EFAULT & U64, abi.ROBUST_LIST_HEAD_SIZE) == 0
    r = t.syscall(GET_ROBUST, 0, a, a + 8)
    if release == NEWEST:
        assert (r, p.read(a, 16)) == (-abi.EFAULT, bytes(16))
    else:
        assert r == 0
        assert struct.unpack("<QQ", p.read(a, 16)) == (-abi.EFAULT & U64, 24)
    assert t.syscall(SET_ROBUST, -4096 & U64, abi.ROBUST_LIST_HEAD_SIZE) == 0
    assert t.syscall(GET_ROBUST, 0, a, a + 8) == 0  # -4096 is a pointer in every release
