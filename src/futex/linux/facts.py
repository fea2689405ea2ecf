"""What varies between Linux hosts, as named options of the emulated kernel.

The emulated kernel answers as one Linux on one machine.  Two things make real Linux hosts
answer differently to the same futex call: **the release** (a command or system call that
does not exist yet is ENOSYS; a flag it does not know is EINVAL) and **the machine** (a CPU
with protection keys makes ``PROT_EXEC`` alone execute-only; the top of the user address
space; the NUMA nodes).  :class:`LinuxFacts` names each of them, so that a test pins one
variant on purpose and a differential test builds the emulator the host it runs on is
(:func:`futex.linux.host.probe`, :meth:`futex.linux.LinuxKernel.like_host`).

The default, ``LinuxFacts()``, is the newest modelled release (:data:`NEWEST`) on an x86-64
CPU with protection keys, 4-level paging, one NUMA node, 8 CPUs, and a user allowed
real-time scheduling.  ``LinuxFacts.for_release("5.15")`` is the same machine running an
older kernel: every field that depends on the release takes its value from
:data:`CHANGES`.

Release model
-------------
Modelled: mainline releases from :data:`OLDEST` to :data:`NEWEST`, and for each of them
what :data:`CHANGES` lists — the futex-family calls and flags that appeared in that window.
Each change names the release it landed in and what an older kernel answers instead.
Not modelled: stable backports (a distribution kernel whose release predates a feature
may still have it: :func:`futex.linux.host.probe` measures features rather than parse
the release), and changes with no effect an emulated process can see (hash tables,
locking, performance).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from futex.memory import USER_PTR_MAX_X86_64

__all__ = [
    "CHANGES",
    "NEWEST",
    "OLDEST",
    "Change",
    "LinuxFacts",
    "parse_release",
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


@dataclass(frozen=True)
class Change:
    """One change of the futex family: the :class:`LinuxFacts` field it sets (true from
    ``since`` on), the mainline release it landed in, and what older kernels answer."""

    field: str
    since: str
    what: str
    before: str


#: What changed in the futex family between :data:`OLDEST` and :data:`NEWEST`, oldest
#: first; data only.
CHANGES: tuple[Change, ...] = (
    Change(
        "lock_pi2",
        "5.14",
        "FUTEX_LOCK_PI2 (13): LOCK_PI on CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME",
        "ENOSYS, as for an unknown command",
    ),
    Change(
        "futex_waitv",
        "5.16",
        "the futex_waitv system call (449)",
        "ENOSYS",
    ),
    Change(
        "futex2",
        "6.7",
        "the futex_wake, futex_wait and futex_requeue system calls (454-456)",
        "ENOSYS",
    ),
    Change(
        "futex2_numa",
        "6.16",
        "FUTEX2_NUMA and FUTEX2_MPOL in the futex2 flags",
        "EINVAL, as for any unknown flag bit",
    ),
    Change(
        "futex_hash",
        "6.16",
        "prctl(PR_FUTEX_HASH): the per-process private futex hash, set and read",
        "EINVAL, as for an unknown prctl option",
    ),
)

_CHANGE_FIELDS = frozenset(c.field for c in CHANGES)


@dataclass(frozen=True)
class LinuxFacts:
    """The host facts the emulated Linux kernel answers by (see the module docstring).

    Release-dependent fields (set together by :meth:`for_release`):

    - ``release``: the release modelled, ``"major.minor"`` (informational once the fields
      below are set; :meth:`for_release` derives them from it);
    - ``lock_pi2``, ``futex_waitv``, ``futex2``, ``futex2_numa``, ``futex_hash``: whether
      that part of the futex family exists (:data:`CHANGES` says since when).

    Machine fields:

    - ``protection_keys``: the CPU has protection keys, so ``PROT_EXEC`` alone is
      execute-only: user and kernel reads of such memory fault.  Without them (older x86,
      AMD before Zen 3, most VMs, arm64 before FEAT_EPAN...) such memory reads, and a
      shared futex key on it exists where the page is present (see
      :mod:`futex.memory`);
    - ``user_ptr_max``: the highest address ``access_ok`` accepts for a futex word;
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
        machine, or on the machine ``machine`` describes (fields by name).

        Raises ValueError for a release outside the modelled window and TypeError for a
        field that is not a machine field.
        """
        want = parse_release(release)
        if not parse_release(OLDEST) <= want <= parse_release(NEWEST):
            raise ValueError(f"release {release} is outside the modelled {OLDEST}..{NEWEST}")
        bad = set(machine) & (_CHANGE_FIELDS | {"release"})
        if bad:
            raise TypeError(f"{sorted(bad)} follow from the release; pass machine fields only")
        fields: dict[str, Any] = {c.field: want >= parse_release(c.since) for c in CHANGES}
        return cls(release=f"{want[0]}.{want[1]}", **fields, **machine)

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
