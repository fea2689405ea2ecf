"""What varies between Linux hosts, as named options of the emulated kernel.

The emulated kernel answers as one Linux on one machine.  Two things make real Linux hosts
answer differently to the same futex call: **the release** (a command or system call that
does not exist yet is ENOSYS; a flag it does not know is EINVAL; a check that came later)
and **the machine** (a CPU with protection keys makes ``PROT_EXEC`` alone execute-only; the
top of the user address space; the NUMA nodes).  :class:`LinuxFacts` names each of them, so
that a test pins one variant on purpose and a differential test builds the emulator the host
it runs on is (:func:`futex.linux.host.probe`, :meth:`futex.linux.LinuxKernel.like_host`).

The default, ``LinuxFacts()``, is the newest modelled release (:data:`NEWEST`) on an x86-64
CPU with protection keys, 4-level paging, one NUMA node, 8 CPUs, and a user allowed
real-time scheduling.  ``LinuxFacts.for_release("5.15")`` is the same machine running an
older kernel: every field that depends on the release takes its value from
:data:`CHANGES`.

Release model
-------------
Modelled: mainline releases ``major.minor`` from :data:`OLDEST` to :data:`NEWEST` (the
``.0`` release: a change counts from the first release whose merge window took it), and for
each of them what :data:`CHANGES` lists, every entry with the commit it mirrors:

- 5.13, 4fbf5d6837bf (revert of 4.5's 337f13046ff0): FUTEX_WAIT | FUTEX_CLOCK_REALTIME is
  ENOSYS (``do_futex``).  Before, it was accepted, and the relative timeout, added to
  CLOCK_MONOTONIC's now (``ktime_get``), was armed as an *absolute CLOCK_REALTIME*
  deadline: on a machine whose wall clock is ahead of its uptime it expires at once;
- 5.14, bf22a6976897: FUTEX_LOCK_PI2;
- 5.16: futex_waitv;
- 6.2, 90d758896787: at exit, a pending non-PI robust entry whose TID bits are 0 gets a
  wake whatever its other bits (``handle_futex_death``); before, only a word that was 0;
- 6.4, 6014bc27561f / 6.12, 86e6b1547b3d / 6.13, 573f45a9f9a4: x86-64 ``access_ok`` for a
  futex word (``user_ptr_max``): ``addr + 4 <= TASK_SIZE_MAX`` up to 6.3; any address
  below 2**63 from 6.4; ``addr <= TASK_SIZE_MAX - 1`` in 6.12; ``addr <= TASK_SIZE_MAX``
  from 6.13 (the values in :data:`CHANGES` are for 4-level paging, ``TASK_SIZE_MAX`` =
  2**47 - 4096; with 5-level paging pass ``user_ptr_max``);
- 6.7: futex_wake / futex_wait / futex_requeue; and 698eb8263836: a futex_waitv entry's
  ``val`` wider than 32 bits is EINVAL (``futex_validate_input``) -- before, 5.16 to 6.6,
  ``futex_wait_multiple_setup`` compared only its low 32 bits (``(u32)vs[i].w.val``), so
  such an entry could match and sleep;
- 6.16: FUTEX2_NUMA / FUTEX2_MPOL, prctl(PR_FUTEX_HASH) -- with the private hash itself
  disabled (9a57c3773152) until 6.17 (``private_hash``; :mod:`futex.linux.futexhash`);
- 6.18, 6b54082c3ed4: get_robust_list answers a stored head in ``[-4095, -1]`` as that
  errno (``futex_get_robust_list_common`` returns an ``ERR_PTR``); before, it stored the
  head like any other pointer and returned 0.

Checked and unchanged over the window (so not modelled as changes): the order of
futex(2)'s checks (timeout read, then the FUTEX_CLOCK_REALTIME gate, then the command);
futex_waitv's argument, clock and per-entry flag checks (before 6.7 ``FUTEXV_WAITER_MASK``
and ``!(flags & FUTEX_32)`` reject exactly the flags 6.7's ``futex_flags_valid`` does);
set_robust_list, and get_robust_list's ESRCH / EPERM / EFAULT order.

Not modelled:

- stable backports: a distribution kernel whose release predates a change may have it
  (4fbf5d6837bf, 90d758896787, 86e6b1547b3d, 573f45a9f9a4 and 6b54082c3ed4 all went to
  older stable trees; :func:`futex.linux.host.probe` measures every fact rather than parse
  the release);
- time namespaces (5.13's cdf78db40709 stopped offsetting FUTEX_LOCK_PI's CLOCK_REALTIME
  timeout by the namespace's monotonic offset): the emulator has no namespaces, so it is
  not observable here;
- Linear Address Masking (tagged pointers, 6.4+ with a LAM CPU) and 5-level paging's
  ``TASK_SIZE_MAX`` (pass ``user_ptr_max``);
- fixes of races with no deterministic answer a process can ask for (such as 6.18's
  requeue-PI use-after-free fix, b549113738e8) and changes with no effect an emulated
  process can see (hash tables, locking, performance).  Unverified: the PI and requeue-PI
  fixes of 5.11 .. 5.15 (fault handling, the requeue-PI rework for PREEMPT_RT) were not
  read line by line; none is known to change an errno this model answers.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from futex.memory import USER_PTR_MAX_X86_64

__all__ = [
    "ACCESS_OK_BELOW_MAX",
    "ACCESS_OK_SIGN_BIT",
    "ACCESS_OK_SIZED",
    "CHANGES",
    "NEWEST",
    "OLDEST",
    "Change",
    "LinuxFacts",
    "TASK_SIZE_MAX_4LEVEL",
    "parse_release",
    "release_values",
]

#: The oldest and newest releases the model covers (``major.minor``).
OLDEST = "5.10"
NEWEST = "6.18"


def parse_release(release: str) -> tuple[int, int]:
    """``"5.15"``, ``"6.18.44-fc-v1272"`` -> ``(major, minor)``; ValueError otherwise."""
    m = re.match(r"(\d+)\.(\d+)", release)
    if m is None:
        raise ValueError(f"not a Linux release: {release!r} (expected e.g. '5.15' or '6.18')")
    return int(m.group(1)), int(m.group(2))


#: x86-64 ``TASK_SIZE_MAX`` with 4-level paging: the end of the user address space.
TASK_SIZE_MAX_4LEVEL = (1 << 47) - 4096
#: The highest 4-aligned address ``access_ok(addr, 4)`` accepts, by era (4-level paging).
ACCESS_OK_SIZED = TASK_SIZE_MAX_4LEVEL - 4  # addr <= TASK_SIZE_MAX - size (up to 6.3)
ACCESS_OK_SIGN_BIT = (1 << 63) - 4  # (long)addr >= 0 (6.4 .. 6.11)
ACCESS_OK_BELOW_MAX = (TASK_SIZE_MAX_4LEVEL - 1) & ~3  # addr <= TASK_SIZE_MAX - 1 (6.12)
assert USER_PTR_MAX_X86_64 == TASK_SIZE_MAX_4LEVEL  # addr <= TASK_SIZE_MAX (6.13+)


@dataclass(frozen=True)
class Change:
    """One change of the futex family: the :class:`LinuxFacts` field it sets, the mainline
    release it landed in, what it does and what older kernels answer instead.

    ``value`` is the field's value from ``since`` on; ``old`` its value before the first
    change of that field (booleans by default: the feature is absent, then present).
    """

    field: str
    since: str
    what: str
    before: str
    value: object = True
    old: object = False


#: What changed in the futex family between :data:`OLDEST` and :data:`NEWEST`, oldest
#: first; data only.
CHANGES: tuple[Change, ...] = (
    Change(
        "wait_rejects_clock_realtime",
        "5.13",
        "FUTEX_WAIT | FUTEX_CLOCK_REALTIME is ENOSYS (4fbf5d6837bf, do_futex)",
        "accepted: the relative timeout plus CLOCK_MONOTONIC's now is armed as an absolute "
        "CLOCK_REALTIME deadline (337f13046ff0, 4.5)",
    ),
    Change(
        "lock_pi2",
        "5.14",
        "FUTEX_LOCK_PI2 (13): LOCK_PI on CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME "
        "(bf22a6976897)",
        "ENOSYS, as for an unknown command",
    ),
    Change(
        "futex_waitv",
        "5.16",
        "the futex_waitv system call (449; bf69bad38cf6)",
        "ENOSYS",
    ),
    Change(
        "robust_pending_wake_tid0",
        "6.2",
        "exit: a pending non-PI robust entry whose TID bits are 0 gets a wake, whatever its "
        "other bits (90d758896787, handle_futex_death)",
        "only a word that is 0 gets it; FUTEX_OWNER_DIED or FUTEX_WAITERS without a TID is "
        "left alone, its waiter asleep",
    ),
    Change(
        "user_ptr_max",
        "6.4",
        "access_ok: any address below 2**63 (6014bc27561f, valid_user_address is the sign bit)",
        "addr + 4 <= TASK_SIZE_MAX (__chk_range_not_ok / __access_ok)",
        value=ACCESS_OK_SIGN_BIT,
        old=ACCESS_OK_SIZED,
    ),
    Change(
        "futex2",
        "6.7",
        "the futex_wake, futex_wait and futex_requeue system calls (454-456; 9f6c532f59b2, "
        "cb8c4312afca)",
        "ENOSYS",
    ),
    Change(
        "waitv_validates_val",
        "6.7",
        "futex_waitv: an entry's val wider than 32 bits is EINVAL (698eb8263836, "
        "futex_validate_input)",
        "only its low 32 bits are compared ((u32)vs[i].w.val): such an entry can match",
    ),
    Change(
        "user_ptr_max",
        "6.12",
        "access_ok: addr <= TASK_SIZE_MAX - 1 (86e6b1547b3d, USER_PTR_MAX)",
        "any address below 2**63",
        value=ACCESS_OK_BELOW_MAX,
    ),
    Change(
        "user_ptr_max",
        "6.13",
        "access_ok: addr <= TASK_SIZE_MAX (573f45a9f9a4, the off-by-one fix)",
        "addr <= TASK_SIZE_MAX - 1",
        value=USER_PTR_MAX_X86_64,
    ),
    Change(
        "futex2_numa",
        "6.16",
        "FUTEX2_NUMA and FUTEX2_MPOL in the futex2 flags (cec199c5e39b, c042c505210d)",
        "EINVAL, as for any unknown flag bit",
    ),
    Change(
        "futex_hash",
        "6.16",
        "prctl(PR_FUTEX_HASH): the per-process private futex hash, set and read",
        "EINVAL, as for an unknown prctl option",
    ),
    Change(
        "private_hash",
        "6.17",
        "processes get a private futex hash (at the first thread, or by PR_FUTEX_HASH); "
        "FH_FLAG_IMMUTABLE and PR_FUTEX_HASH_GET_IMMUTABLE gone",
        "6.16: PR_FUTEX_HASH exists, but the private hash is disabled (9a57c3773152): "
        "SET_SLOTS is EINVAL, GET_SLOTS 0 (futex.linux.futexhash)",
    ),
    Change(
        "get_robust_list_is_err",
        "6.18",
        "get_robust_list answers a stored head in [-4095, -1] as that errno, writing "
        "nothing (6b54082c3ed4, futex_get_robust_list_common)",
        "the head is stored like any pointer and the call returns 0",
    ),
)

#: Fields of :data:`CHANGES` that also depend on the machine: :meth:`LinuxFacts.for_release`
#: takes them from the release unless the caller gives them.
_MACHINE_DEFAULTS = frozenset({"user_ptr_max"})
_CHANGE_FIELDS = frozenset(c.field for c in CHANGES)
_RELEASE_FIELDS = _CHANGE_FIELDS - _MACHINE_DEFAULTS


def release_values(release: str) -> dict[str, Any]:
    """Every :data:`CHANGES` field's value in mainline ``release`` (no window check)."""
    want = parse_release(release)
    out: dict[str, Any] = {}
    for c in CHANGES:
        out.setdefault(c.field, c.old)
        if want >= parse_release(c.since):
            out[c.field] = c.value
    return out


@dataclass(frozen=True)
class LinuxFacts:
    """The host facts the emulated Linux kernel answers by (see the module docstring).

    Release-dependent fields (set together by :meth:`for_release`; :data:`CHANGES` says
    since when and what older kernels answer instead):

    - ``release``: the release modelled, ``"major.minor"`` (informational once the fields
      below are set; :meth:`for_release` derives them from it);
    - ``lock_pi2``, ``futex_waitv``, ``futex2``, ``futex2_numa``, ``futex_hash``: whether
      that part of the futex family exists;
    - ``wait_rejects_clock_realtime``: FUTEX_WAIT with FUTEX_CLOCK_REALTIME is ENOSYS
      (else accepted, its timeout armed on CLOCK_REALTIME; :mod:`futex.linux.decode`);
    - ``waitv_validates_val``: a futex_waitv entry's ``val`` wider than 32 bits is EINVAL
      (else truncated; :mod:`futex.linux.futex2`);
    - ``robust_pending_wake_tid0``: the exit walk wakes a waiter of a pending non-PI entry
      whose TID bits are 0 (else only of a word that is 0; :mod:`futex.linux.robust`);
    - ``get_robust_list_is_err``: get_robust_list answers a head in ``[-4095, -1]`` as
      that errno (:mod:`futex.linux.robust`);
    - ``private_hash``: processes get private futex hashes (6.16 has PR_FUTEX_HASH with
      them disabled; :mod:`futex.linux.futexhash`).

    Machine fields:

    - ``protection_keys``: the CPU has protection keys, so ``PROT_EXEC`` alone is
      execute-only: user and kernel reads of such memory fault.  Without them (older x86,
      AMD before Zen 3, most VMs, arm64 before FEAT_EPAN...) such memory reads, and a
      shared futex key on it exists where the page is present (see
      :mod:`futex.memory`);
    - ``user_ptr_max``: the highest 4-aligned address ``access_ok`` accepts for a futex
      word: the machine's ``TASK_SIZE_MAX`` and the release's rule (:data:`CHANGES`;
      :meth:`for_release` takes it from the release unless given);
    - ``numa_nodes``: the possible NUMA nodes (FUTEX2_NUMA's node word must name one);
      ``local_node``: the node the caller runs on (what FUTEX_NO_NODE becomes);
    - ``online_cpus``: sizes the private futex hash a process gets at its first thread;
    - ``pid_max``: the largest pid a task can have;
    - ``rt_sched``: this user may make tasks SCHED_FIFO / SCHED_RR.
    """

    release: str = NEWEST
    lock_pi2: bool = True
    futex_waitv: bool = True
    futex2: bool = True
    futex2_numa: bool = True
    futex_hash: bool = True
    wait_rejects_clock_realtime: bool = True
    waitv_validates_val: bool = True
    robust_pending_wake_tid0: bool = True
    get_robust_list_is_err: bool = True
    private_hash: bool = True
    protection_keys: bool = True
    user_ptr_max: int = USER_PTR_MAX_X86_64
    numa_nodes: frozenset[int] = frozenset({0})
    local_node: int = 0
    online_cpus: int = 8
    pid_max: int = 4_194_304
    rt_sched: bool = True

    def __post_init__(self) -> None:
        parse_release(self.release)
        if not self.numa_nodes or self.local_node not in self.numa_nodes:
            raise ValueError(
                f"local_node {self.local_node} must be one of numa_nodes {set(self.numa_nodes)}"
            )
        if self.online_cpus < 1 or self.pid_max < 2 or self.user_ptr_max < 0:
            raise ValueError("online_cpus >= 1, pid_max >= 2 and user_ptr_max >= 0 please")

    @classmethod
    def for_release(cls, release: str, **machine: Any) -> LinuxFacts:
        """The facts of mainline ``release`` (``"5.10"`` .. ``"6.18"``) on the default
        machine, or on the machine ``machine`` describes (fields by name).  ``user_ptr_max``
        follows the release (4-level paging) unless given.

        Raises ValueError for a release outside the modelled window and TypeError for a
        field that follows from the release (or is no field at all).
        """
        want = parse_release(release)
        if not parse_release(OLDEST) <= want <= parse_release(NEWEST):
            raise ValueError(f"release {release} is outside the modelled {OLDEST}..{NEWEST}")
        bad = set(machine) & (_RELEASE_FIELDS | {"release"})
        if bad:
            raise TypeError(f"{sorted(bad)} follow from the release; pass machine fields only")
        fields = release_values(release)
        fields.update(machine)
        return cls(release=f"{want[0]}.{want[1]}", **fields)

    def replace(self, **changes: Any) -> LinuxFacts:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> list[str]:
        """One ``name: value`` line per fact, for reports and the pytest header."""
        out = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, frozenset):
                v = ",".join(str(n) for n in sorted(v))
            elif f.name == "user_ptr_max":
                v = f"{v:#x}"
            out.append(f"{f.name}: {v}")
        return out
