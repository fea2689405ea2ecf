"""The demo's robust-futex scenario (owners exit holding robust mutexes, their waiters
recover them) and the glibc robust mutex it is told with."""

from __future__ import annotations

import threading

import pytest

from futex.cli import main
from futex.demo.robust import describe_word, run_robust_demo
from futex.demo.robust_mutex import EOWNERDEAD, PTHREAD_MUTEX_INCONSISTENT, RobustList, RobustMutex
from futex.kernel.pi import PiDomain
from futex.linux import LinuxKernel, Task, abi

# -- the robust-futex scenario ----------------------------------------------------------

W, OD = abi.FUTEX_WAITERS, abi.FUTEX_OWNER_DIED


def test_robust_demo_output_shows_recovery_and_boost(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--plain", "--robust-only"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "FAIL" not in out and "\x1b[" not in out
    lines = out.splitlines()
    assert lines[-1].startswith("result: PASS")
    a = out.index("(a) robust PI mutex")
    b = out.index("(b) plain robust mutex")
    pi, plain = out[a:b], out[b:]
    # (a): boosted while the SCHED_FIFO waiter blocks, back to normal once the owner exits
    assert "SCHED_FIFO 50, prio 49" in pi
    assert "owner prio 120 -> 49: boosted" in pi
    assert "owner prio 49 -> 120: the boost is gone" in pi
    # the waiter's FUTEX_LOCK_PI returned owning the lock with OWNER_DIED: EOWNERDEAD
    assert "FUTEX_LOCK_PI = 0, word on return 0xc000" in pi
    assert "(OWNER_DIED | WAITERS | tid" in pi
    assert f"pthread_mutex_lock = {EOWNERDEAD} (EOWNERDEAD)" in pi
    assert "pthread_mutex_consistent = 0" in pi and "FUTEX_UNLOCK_PI = 0" in pi
    assert "word 0x00000000 (unlocked)" in pi
    # (b): the exit walk left OWNER_DIED | WAITERS with the TID cleared, and woke the waiter
    assert "FUTEX_WAIT = 0 (woken by the exit walk), word when woken 0xc0000000" in plain
    assert f"pthread_mutex_lock = {EOWNERDEAD} (EOWNERDEAD)" in plain
    assert "FUTEX_WAKE = 0; word 0x00000000 (unlocked)" in plain
    # numbered steps
    assert "  1. owner" in pi and "  4. waiter FUTEX_LOCK_PI returned 0" in pi


def test_robust_demo_report() -> None:
    report = run_robust_demo()
    assert report.ok, "\n".join(report.lines())
    a, b = report.parts
    assert (a.label, b.label) == ("a", "b")
    assert a.calls == {"LOCK_PI": 1, "UNLOCK_PI": 1, "set_robust_list": 2}
    assert b.calls == {"WAIT": 1, "WAKE": 1, "set_robust_list": 2}
    assert len(report.checks) >= 30
    assert not [th for th in threading.enumerate() if th.name.startswith("robust-")]
    assert run_robust_demo("b").ok
    with pytest.raises(ValueError):
        run_robust_demo("c")


def test_robust_demo_fails_when_the_boost_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kernel without priority inheritance: every other step still works, but the checks
    of the boost fail, and so does the command."""
    monkeypatch.setattr(PiDomain, "effective_prio", lambda self, task: task.normal_prio)
    rc = main(["demo", "--plain", "--robust-only"])
    out = capsys.readouterr().out
    assert rc == 1
    fails = [line.strip() for line in out.splitlines() if line.lstrip().startswith("FAIL")]
    assert len(fails) == 2, out
    assert "owner prio 120 -> 120" in fails[0] and "expected (120, 49)" in fails[0]
    assert "expected (49, 120)" in fails[1]
    assert out.splitlines()[-1].startswith("result: FAIL (2 of")


def test_robust_demo_fails_on_a_wrong_word(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exit walk that forgets FUTEX_OWNER_DIED on plain robust words: the waiter is still
    woken but takes the lock as if it were free (no EOWNERDEAD): the checks say so."""
    import futex.linux.robust as robust

    real = robust.handle_futex_death

    def forgetful(task: Task, uaddr: int, pi: bool, pending_op: bool) -> bool:
        p = task.process
        uval = p.load_u32(uaddr)
        if pi or uval & abi.FUTEX_TID_MASK != task.tid:
            return real(task, uaddr, pi, pending_op)
        p.store_u32(uaddr, 0)  # unlocked, no OWNER_DIED
        robust.wake_shared_one(task, uaddr)
        return False

    monkeypatch.setattr(robust, "handle_futex_death", forgetful)
    report = run_robust_demo("b", timeout=5.0)
    assert not report.ok
    failed = [c.detail for c in report.checks if not c.ok]
    assert any("pthread_mutex_lock = 0" in d and f"expected {EOWNERDEAD}" in d for d in failed)
    assert any("word when woken 0x00000000" in d for d in failed), failed


def test_robust_demo_turns_a_lost_wake_into_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """No robust-list walk at exit: the plain waiter is never woken.  The step's bounded
    wait fails it, the blocked task is made to exit so no thread is left behind."""
    monkeypatch.setattr("futex.linux.exit.exit_robust_list", lambda task: None)
    report = run_robust_demo("b", timeout=1.0)
    assert not report.ok
    failed = [c.detail for c in report.checks if not c.ok]
    assert failed[0].startswith("stuck: timed out after 1 s waiting until the waiter's")
    assert "blocked tasks [" in failed[1]
    assert not [th for th in threading.enumerate() if th.name.startswith("robust-")]


def test_describe_word() -> None:
    assert describe_word(0) == "0x00000000 (unlocked)"
    assert describe_word(7) == "0x00000007 (tid 7)"
    assert describe_word(OD | W | 7) == "0xc0000007 (OWNER_DIED | WAITERS | tid 7)"
    assert describe_word(OD | W) == "0xc0000000 (OWNER_DIED | WAITERS)"


@pytest.mark.parametrize("pi", [False, True])
def test_robust_mutex_single_task(kernel: LinuxKernel, pi: bool) -> None:
    """Uncontended: no futex call; the robust list follows the mutex; an owner who dies
    without waiters leaves exactly OWNER_DIED, and the next locker gets EOWNERDEAD (PI:
    through FUTEX_LOCK_PI, then OWNER_DIED cleared by glibc; plain: the CAS drops it)."""
    p = kernel.new_process()
    mem = p.mmap(4096)
    t, u = p.new_task(), p.new_task()
    rt, ru = RobustList(t, mem), RobustList(u, mem + 0x40)
    assert rt.register() == 0 and ru.register() == 0
    m = RobustMutex(p, mem + 0x100, pi=pi)
    assert m.lock(rt).result == 0
    assert rt.entries() == [m.entry | pi] and rt.pending == 0
    assert m.value == t.tid and m.owner == t.tid
    assert m.unlock(rt) is None
    assert rt.entries() == [] and m.value == 0
    assert m.lock(rt).result == 0
    t.exit()
    assert m.value == OD
    out = m.lock(ru)
    # PI: the CAS 0 -> tid fails on OWNER_DIED, so glibc asks the kernel, which takes the
    # word for it (TID 0, no waiters) keeping OWNER_DIED
    assert (out.result, out.syscall) == (EOWNERDEAD, "LOCK_PI" if pi else None)
    assert m.value == u.tid and m.owner == PTHREAD_MUTEX_INCONSISTENT
    assert m.consistent(ru) == 0 and m.consistent(ru) == abi.EINVAL
    assert m.unlock(ru) is None and m.value == 0
    assert u.calls == ({"set_robust_list": 1, "LOCK_PI": 1} if pi else {"set_robust_list": 1})
