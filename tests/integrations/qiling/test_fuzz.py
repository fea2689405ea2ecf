"""The fuzz of futex.integrations.qiling's system call handlers (issue 14's acceptance: "no
Python exception escapes a syscall handler for any register values: the guest sees
-errno"), and single answers it pins against Linux.

- A short fuzz with a fixed seed is clean: every fuzzed call answered an int in Linux's
  return range, rax held it, ``Integration.internal_errors`` stayed empty, parks undone,
  the exit path and the queues sane (the full minute: ``python -m
  futex.integrations.qiling.fuzz --seconds 60``).
- Negative controls: a handler that raises, one whose bug ``Integration._guarded`` hides as
  -EINVAL, one that answers no errno -- the fuzz reports each (it can fail).
- Pinned answers, each naming the Linux source it follows (``kernel/futex/*.c``,
  ``kernel/time/posix-timers.c``, ``kernel/time/hrtimer.c``).

All run in a real Qiling on the fuzzer's hand-assembled static guest: no compiler needed.
"""

from __future__ import annotations

import errno
import json
import struct
import subprocess
import sys
from typing import Any

import pytest

NO_QILING = "qiling is not installed: pip install 'futex[qiling]'"
try:
    import gevent  # noqa: F401 - qiling's dependency, the scheduler of its threads
    import qiling  # noqa: F401
except ImportError:
    pytest.skip(NO_QILING, allow_module_level=True)

from futex.integrations.qiling import fuzz as F  # noqa: E402 - after the skip
from futex.linux import abi  # noqa: E402

P = abi.FUTEX_PRIVATE_FLAG
SEED = 1414


# -- the fuzz -------------------------------------------------------------------------------


def test_short_fuzz_with_a_fixed_seed_is_clean() -> None:
    report = F.fuzz(3.0, SEED)
    assert report.ok, "\n".join(report.lines())
    # every registered handler (but exit / exit_group / clone) was called, and some waited
    assert set(report.histogram) == set(F.FUZZED.values())
    assert report.parked > 0
    # the answers are Linux's kinds: WAKE on a known word succeeds, bad pointers fault
    assert report.histogram["futex"]["-EFAULT"] > 0
    assert report.histogram["clock_gettime"]["0"] > 0


def test_cli_runs_and_reports_json() -> None:
    """``python -m futex.integrations.qiling.fuzz``: exit status 0 and an ``ok`` report."""
    out = subprocess.run(
        [sys.executable, "-m", "futex.integrations.qiling.fuzz", "--seconds", "1",
         "--seed", str(SEED), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] and report["calls"] > 0 and report["failures"] == []


def _break_futex(fn: Any) -> Any:
    def prepare(ql: Any, integ: Any) -> None:
        ql.os.set_syscall("futex", fn)  # QL_INTERCEPT.CALL: replaces the integration's

    return prepare


def _raising(ql: Any, *args: int) -> int:
    raise KeyError("a handler bug")


def test_fuzz_catches_an_exception_escaping_a_handler() -> None:
    """Negative control: an exception out of a handler ends ``ql.run()`` in stock Qiling
    (its ``load_syscall`` re-raises); the fuzz reports it with the registers."""
    report = F.fuzz(0.5, SEED, prepare=_break_futex(_raising))
    assert not report.ok
    first = report.failures[0]
    assert first["what"] == "exception escaped the handler"
    assert first["syscall"] == "futex (202)" and len(first["regs"]) == 6
    assert "KeyError" in first["error"]


def test_fuzz_catches_a_bug_hidden_as_einval() -> None:
    """Negative control: ``Integration._guarded`` turns a bug into -EINVAL for users; the
    fuzz counts any entry in ``internal_errors`` as a failure."""

    def prepare(ql: Any, integ: Any) -> None:
        def load_u32(addr: int) -> int:
            raise RuntimeError("a memory bug")

        integ.memory.load_u32 = load_u32

    report = F.fuzz(0.5, SEED, prepare=prepare)
    assert not report.ok
    assert any(f["what"].startswith("internal error") for f in report.failures)


@pytest.mark.parametrize(
    ("answer", "what"),
    [(-5000, "result is neither >= 0 nor -1..-4095"), (None, "handler returned a non-int")],
)
def test_fuzz_catches_an_answer_that_is_no_errno(answer: Any, what: str) -> None:
    """Negative control: -5000 is no errno; None leaves rax = the system call number
    (Qiling writes no result: what an unanswered clone3 "returns")."""
    report = F.fuzz(0.5, SEED, prepare=_break_futex(lambda ql, a0: answer))
    assert not report.ok
    assert any(f["what"] == what for f in report.failures)


# -- pinned answers -------------------------------------------------------------------------

WORD = F.WORDS[0]
TS_BAD_NSEC, TS_NEG_SEC = F.TIMESPECS, F.TIMESPECS + 16


def _script(h: F.Harness) -> dict[str, int]:
    h.poke(F.RO, struct.pack("<I", 0))
    h.poke(WORD, struct.pack("<I", 7))
    h.poke(TS_BAD_NSEC, struct.pack("<qqqq", 0, 1_000_000_000, -1, 0))
    c = h.call
    return {
        "wait_unmapped": c(202, F.HOLE, abi.FUTEX_WAIT | P, 0, 0, 0, 0),
        "wait_misaligned": c(202, WORD + 2, abi.FUTEX_WAIT | P, 7, 0, 0, 0),
        "wait_page_straddle": c(202, F.RO - 2, abi.FUTEX_WAIT | P, 0, 0, 0, 0),
        "wait_read_only_mismatch": c(202, F.RO, abi.FUTEX_WAIT | P, 1, 0, 0, 0),
        "wait_timeout_unreadable": c(202, WORD, abi.FUTEX_WAIT | P, 7, F.RO + F.PAGE - 8, 0, 0),
        "wait_no_permissions": c(202, F.NONE, abi.FUTEX_WAIT | P, 0, 0, 0, 0),
        "lock_pi_read_only": c(202, F.RO, abi.FUTEX_LOCK_PI | P, 0, 0, 0, 0),
        "trylock_pi_read_only": c(202, F.RO, abi.FUTEX_TRYLOCK_PI | P, 0, 0, 0, 0),
        "wake_op_read_only": c(202, WORD, abi.FUTEX_WAKE_OP | P, 1, 1, F.RO, 0),
        "wake_unmapped_private": c(202, F.HOLE, abi.FUTEX_WAKE | P, 1, 0, 0, 0),
        "futex_fd": c(202, WORD, abi.FUTEX_FD, 0, 0, 0, 0),
        "gettime_bad_clock": c(228, 99, F.OUT),
        "gettime_unmapped": c(228, 1, F.HOLE),
        "gettime_read_only": c(228, 1, F.RO),
        "gettime_ok": c(228, 1, F.OUT),
        "clock_nanosleep_bad_nsec": c(230, 1, 0, TS_BAD_NSEC, 0),
        "clock_nanosleep_negative_sec": c(230, 1, 0, TS_NEG_SEC, 0),
        "clock_nanosleep_raw": c(230, 4, 0, TS_BAD_NSEC, 0),
        "nanosleep_null": c(35, 0, 0),
        "set_robust_list_len_23": c(273, F.ROBUST, 23),
        "get_robust_list_len_unmapped": c(274, 0, F.OUT, F.HOLE),
        "waitv_none": c(449, F.SCRATCH + 0x100, 0, 0, 0, 0),
        "futex_wake_mask_0": c(454, WORD, 0, 1, 2 | abi.FUTEX2_PRIVATE),
        "set_tid_address": c(218, 0),
        "main_tid": h.main_tid,
        # the kernel is like_host: a call the host's kernel lacks (probed) answers ENOSYS
        "has_futex_waitv": int(h.integ.kernel.facts.futex_waitv),
        "has_futex2": int(h.integ.kernel.facts.futex2),
        # Linux: every address past TASK_SIZE_MAX faults (access_ok), mapped or not
        "wake_kernel_half": c(202, F.KERNEL_HALF, abi.FUTEX_WAKE | P, 1, 0, 0, 0),
        "wait_vsyscall": c(202, F.VSYSCALL, abi.FUTEX_WAIT | P, 12345, 0, 0, 0),
        "gettime_vsyscall": c(228, 1, F.VSYSCALL),
    }


@pytest.fixture(scope="module")
def pinned() -> dict[str, int]:
    got: dict[str, int] = F.answers(_script)
    return got


EFAULT, EINVAL, EAGAIN, ENOSYS = -abi.EFAULT, -abi.EINVAL, -abi.EAGAIN, -abi.ENOSYS

# (answer, expected, the Linux behaviour it pins)
PINS = [
    ("wait_unmapped", EFAULT,
     "futex_wait_setup: futex_get_value_locked faults, get_user() -> -EFAULT"),
    ("wait_misaligned", EINVAL, "get_futex_key: address % sizeof(u32) != 0 -> -EINVAL"),
    ("wait_page_straddle", EINVAL, "get_futex_key: the alignment test comes before any read"),
    ("wait_read_only_mismatch", EAGAIN,
     "a wait only reads: a read-only page is fine; value mismatch -> -EAGAIN"),
    ("wait_timeout_unreadable", EFAULT,
     "sys_futex: get_timespec64 of the timeout faults before do_futex"),
    ("wait_no_permissions", EFAULT, "get_user on a PROT_NONE page -> -EFAULT"),
    ("lock_pi_read_only", EFAULT,
     "futex_lock_pi_atomic: the cmpxchg faults, fault_in_user_writeable fails -> -EFAULT"),
    ("trylock_pi_read_only", EFAULT, "futex_lock_pi(trylock): the same cmpxchg fault"),
    ("wake_op_read_only", EFAULT,
     "futex_wake_op: the op on uaddr2 faults, fault_in_user_writeable fails -> -EFAULT"),
    ("wake_unmapped_private", 0,
     "get_futex_key of a private futex reads no memory: WAKE on a hole wakes 0"),
    ("futex_fd", -abi.ENOSYS, "do_futex: FUTEX_FD was removed (2.6.26) -> -ENOSYS"),
    ("gettime_bad_clock", EINVAL, "posix-timers.c clockid_to_kclock: no clock 99 -> -EINVAL"),
    ("gettime_unmapped", EFAULT, "clock_gettime: put_timespec64 faults -> -EFAULT"),
    ("gettime_read_only", EFAULT, "clock_gettime: copy_to_user to a read-only page faults"),
    ("gettime_ok", 0, "clock_gettime(CLOCK_MONOTONIC) into writable memory -> 0"),
    ("clock_nanosleep_bad_nsec", EINVAL, "hrtimer_nanosleep: !timespec64_valid -> -EINVAL"),
    ("clock_nanosleep_negative_sec", EINVAL, "timespec64_valid: tv_sec < 0 -> -EINVAL"),
    ("clock_nanosleep_raw", -errno.EOPNOTSUPP,
     "CLOCK_MONOTONIC_RAW has no nsleep: -EOPNOTSUPP, before the request is read"),
    ("nanosleep_null", EFAULT, "nanosleep: get_timespec64(NULL) -> -EFAULT"),
    ("set_robust_list_len_23", EINVAL, "set_robust_list: len != sizeof(*head) -> -EINVAL"),
    ("get_robust_list_len_unmapped", EFAULT, "get_robust_list: put_user(len) faults"),
    ("waitv_none", EINVAL, "futex_waitv: nr_futexes == 0 -> -EINVAL"),
    ("futex_wake_mask_0", EINVAL, "futex_wake: an empty bitset -> -EINVAL"),
]  # fmt: skip


#: Answers that exist only where the host's kernel has the call (Linux 5.16 / 6.7).
NEEDS = {"waitv_none": "has_futex_waitv", "futex_wake_mask_0": "has_futex2"}


@pytest.mark.parametrize(("name", "expected", "linux"), PINS, ids=[p[0] for p in PINS])
def test_pinned_answer(pinned: dict[str, int], name: str, expected: int, linux: str) -> None:
    needs = NEEDS.get(name)
    if needs is not None and not pinned[needs]:  # the host's kernel lacks the call
        expected, linux = ENOSYS, f"the call is missing (facts: not {needs}) -> -ENOSYS"
    assert pinned[name] == expected, f"{name}: Linux {linux}; got {pinned[name]}"


def test_set_tid_address_returns_the_callers_tid(pinned: dict[str, int]) -> None:
    """set_tid_address(2) "always returns the caller's thread ID": Qiling's tid."""
    assert pinned["set_tid_address"] == pinned["main_tid"]


KERNEL_HALF = ["wake_kernel_half", "wait_vsyscall", "gettime_vsyscall"]


@pytest.mark.parametrize("name", KERNEL_HALF)
def test_kernel_half_addresses_fault(pinned: dict[str, int], name: str) -> None:
    """Linux x86-64: ``access_ok`` refuses every address past TASK_SIZE_MAX (even with
    5-level paging, 2**56 - 4096), so get_futex_key and copy_to_user answer -EFAULT there,
    the vsyscall page at 0xffffffffff600000 included (Qiling maps it rwx: found by this
    fuzz, fixed by GuestMemory's 5-level USER_PTR_MAX)."""
    assert pinned[name] == EFAULT
