"""futex.integrations.qiling's parts, without a guest program: the guest-memory target
(EFAULT where the guest's pages refuse, Linux ``get_futex_key``), the gevent clock, and
install / uninstall on a Qiling instance (shellcode mode: no compiler needed)."""

from __future__ import annotations

import ast
import pathlib

import pytest

from futex.integrations.qiling.memory import GuestMemory
from futex.kernel import MemoryFault

NO_QILING = "qiling is not installed: pip install 'futex[qiling]'"
SRC = pathlib.Path(__file__).resolve().parents[3] / "src" / "futex"
PAGE = 0x1000
R, W, X = 1, 2, 4


class FakeUnicorn:
    """unicorn's three calls GuestMemory makes: regions, read, write (which, like
    unicorn's, ignores page protection -- the check is GuestMemory's)."""

    def __init__(self, regions: list[tuple[int, int, int]]) -> None:
        self.regions = regions  # (begin, size, perms)
        self.bytes: dict[int, int] = {}
        self.writes = 0

    def mem_regions(self) -> list[tuple[int, int, int]]:
        return [(b, b + n - 1, p) for b, n, p in self.regions]

    def _mapped(self, addr: int, n: int) -> bool:
        return all(any(b <= a < b + s for b, s, _ in self.regions) for a in range(addr, addr + n))

    def mem_read(self, addr: int, n: int) -> bytearray:
        if not self._mapped(addr, n):
            raise RuntimeError("UcError: unmapped read")  # what must never escape
        return bytearray(self.bytes.get(a, 0) for a in range(addr, addr + n))

    def mem_write(self, addr: int, data: bytes) -> None:
        if not self._mapped(addr, len(data)):
            raise RuntimeError("UcError: unmapped write")
        self.writes += 1
        for i, b in enumerate(data):
            self.bytes[addr + i] = b


class FakeQl:
    def __init__(self, uc: FakeUnicorn) -> None:
        self.uc = uc


def memory(*regions: tuple[int, int, int]) -> tuple[GuestMemory, FakeUnicorn]:
    uc = FakeUnicorn(list(regions))
    return GuestMemory(FakeQl(uc)), uc


# -- the guest-memory target ------------------------------------------------------------------


def test_guest_memory_answers_every_call_futex_linux_makes_on_a_process_memory() -> None:
    """Process.space is typed AddressSpace and handed a GuestMemory: every attribute the
    personality and the core use on ``space`` must exist here (a missing one would be an
    AttributeError inside a syscall handler, i.e. a crashed guest)."""
    used: set[str] = set()
    for pkg in ("linux", "kernel"):
        for path in (SRC / pkg).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Attribute):
                    continue
                base = node.value
                name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
                if name == "space":
                    used.add(node.attr)
    used.discard("fork")  # Process.fork: a guest fork is not modelled (documented)
    assert used, "found no use of space.<attr>: the scan is broken"
    missing = sorted(a for a in used if not hasattr(GuestMemory, a) and a != "user_ptr_max")
    assert missing == []
    assert hasattr(memory()[0], "user_ptr_max")


def test_unmapped_and_unreadable_words_fault_and_nothing_reaches_unicorn() -> None:
    """EFAULT (MemoryFault) for an unmapped word and a PROT_NONE page, as Linux's
    get_user faults; unicorn is never asked to read there (its UcError would end the run)."""
    mem, _ = memory((0x10000, PAGE, R | W), (0x20000, PAGE, 0))  # its reads raise if unmapped
    for addr in (0x0, 0x11000, 0x20000, (1 << 64) - 4, 0xFFFFFFFFFF600000):
        with pytest.raises(MemoryFault):
            mem.load_u32(addr)
    with pytest.raises(MemoryFault):
        mem.read(0x10FFC, 8)  # runs off the end into a hole
    assert mem.load_u32(0x10FFC) == 0


def test_a_read_only_page_reads_but_every_write_faults_and_changes_nothing() -> None:
    """ql.mem.write ignores protection; GuestMemory must not: LOCK_PI's CAS, WAKE_OP and the
    robust walk's OWNER_DIED store on a read-only page are EFAULT on Linux."""
    mem, uc = memory((0x10000, PAGE, R), (0x11000, PAGE, R | W))
    uc.bytes.update({0x10000: 7})
    assert mem.load_u32(0x10000) == 7
    for write in (
        lambda: mem.store_u32(0x10000, 1),
        lambda: mem.cas_u32(0x10000, 7, 1),
        lambda: mem.update_u32(0x10000, lambda v: v + 1),
        lambda: mem.swap_u32(0x10000, 1),
        lambda: mem.write(0x10FFE, b"\1\2\3\4"),  # straddles into the writable page
    ):
        with pytest.raises(MemoryFault):
            write()
    assert uc.writes == 0
    assert mem.mapping_at(0x10000) is not None and not mem.mapping_at(0x10000).writable
    assert mem.mapping_at(0x11000).writable and mem.mapping_at(0x12000) is None


def test_atomics_on_a_writable_word() -> None:
    mem, _ = memory((0x10000, PAGE, R | W))
    assert mem.cas_u32(0x10004, 0, 5) == 0
    assert mem.cas_u32(0x10004, 0, 9) == 5  # failed CAS: unchanged
    assert mem.update_u32(0x10004, lambda v: v * 2) == 5
    assert mem.swap_u32(0x10004, 0xFFFFFFFF) == 10
    assert mem.load_u32(0x10004) == 0xFFFFFFFF
    mem.store_u32(0x10004, 1 << 32 | 3)  # modulo 2**32, as a u32 store
    assert mem.read(0x10004, 4) == b"\3\0\0\0"
    with pytest.raises(ValueError):
        mem.load_u32(0x10002)


def test_futex_keys_follow_get_futex_key() -> None:
    """A private key is the address alone (no fault: the value check faults later); a
    shared key never equals a private one at the same address, faults on an unmapped
    word, and -- asked for writing (WAKE_OP's second word) -- on a read-only page."""
    mem, _ = memory((0x10000, PAGE, R | W), (0x11000, PAGE, R))
    assert mem.futex_key(0x10000, True) == 0x10000
    assert mem.futex_key(0x30000, True) == 0x30000
    shared = mem.futex_key(0x10000, False)
    assert shared != mem.futex_key(0x10000, True)
    assert shared == mem.futex_key(0x10000, False, write=True)
    assert mem.futex_key(0x11000, False) != mem.futex_key(0x11004, False)
    with pytest.raises(MemoryFault):
        mem.futex_key(0x30000, False)
    with pytest.raises(MemoryFault):
        mem.futex_key(0x11000, False, write=True)


def test_the_kernel_half_faults_even_where_qiling_maps_it() -> None:
    """access_ok: Linux x86-64 refuses every address past the user range (EFAULT), even
    the vsyscall page that Qiling maps rwx; the default range is 5-level paging's, because
    Qiling's stack sits just above 4-level paging's 2**47 (found by the handler fuzz)."""
    stack, vsyscall = 0x7FFFFFFDE000, 0xFFFFFFFFFF600000
    mem, uc = memory((stack, 0x30000, R | W), (vsyscall, PAGE, R | W | X))
    assert mem.load_u32(0x80000000DC70) == 0  # Qiling's stack, above 2**47
    for access in (lambda: mem.load_u32(vsyscall), lambda: mem.store_u32(vsyscall, 1),
                   lambda: mem.futex_key(vsyscall, True), lambda: mem.read(vsyscall, 16),
                   lambda: mem.futex_key(1 << 56, True)):  # fmt: skip
        with pytest.raises(MemoryFault):
            access()
    assert uc.writes == 0


def test_the_range_check_can_model_linux_task_size() -> None:
    """user_ptr_max bounds every access: here 4-level paging's measured limit."""
    uc = FakeUnicorn([(0x7FFFFFFFF000, PAGE, R | W)])
    mem = GuestMemory(FakeQl(uc), user_ptr_max=0x7FFFFFFFF000)
    assert mem.load_u32(0x7FFFFFFFF000) == 0
    with pytest.raises(MemoryFault):
        mem.load_u32(0x7FFFFFFFF004)
    with pytest.raises(MemoryFault):
        mem.futex_key(0x7FFFFFFFF004, True)


# -- the gevent clock ---------------------------------------------------------------------------


def test_gevent_clock_fires_on_the_loop_and_a_cancelled_timer_stops_its_watcher() -> None:
    """Timers run in gevent's hub (never on another OS thread); a cancelled one no longer
    keeps the loop alive, so an all-waiting guest still ends in LoopExit."""
    gevent = pytest.importorskip("gevent", reason="gevent is not installed (qiling extra)")
    import threading

    from futex.integrations.qiling.clock import GeventClock
    from futex.kernel import ClockId

    clock = GeventClock()
    fired: list[int] = []
    done = gevent.event.Event()

    def fn() -> None:
        fired.append(threading.get_ident())
        done.set()

    timer = clock.call_at(ClockId.MONOTONIC, clock.now(ClockId.MONOTONIC) + 1_000_000, fn)
    assert done.wait(timeout=30)
    assert fired == [threading.get_ident()]
    assert clock.now(ClockId.MONOTONIC) >= timer.deadline

    late = clock.call_at(ClockId.REALTIME, clock.now(ClockId.REALTIME) + 3600 * 10**9, fn)
    watcher = late.watcher
    assert watcher is not None and watcher.active
    late.cancel()
    assert not watcher.active and late.watcher is None and not late.active
    with pytest.raises(gevent.exceptions.LoopExit):
        gevent.get_hub().switch()  # nothing left to run: the loop ends at once
    assert fired == [threading.get_ident()]


# -- install / uninstall --------------------------------------------------------------------------


@pytest.fixture
def ql():  # type: ignore[no-untyped-def]
    qiling = pytest.importorskip("qiling", reason=NO_QILING)
    from qiling.const import QL_ARCH, QL_OS, QL_VERBOSE

    return qiling.Qiling(code=b"\x90" * 16, archtype=QL_ARCH.X8664, ostype=QL_OS.LINUX,
                         multithread=True, verbose=QL_VERBOSE.DISABLED)  # fmt: skip


def test_install_then_uninstall_gives_qiling_back_exactly(ql) -> None:  # type: ignore[no-untyped-def]
    from qiling.const import QL_INTERCEPT

    from futex.integrations.qiling import install, installed, uninstall

    hooks = ql.os.posix_syscall_hooks
    ql.os.set_syscall("futex", print)  # a user's own hook: must come back
    before = {k: dict(v) for k, v in hooks.items()}
    mapper, futexm = ql.os.syscall_mapper, ql.os.futexm
    integ = install(ql)
    assert installed(ql) is integ
    calls = hooks[QL_INTERCEPT.CALL]
    for name in ("futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
                 "set_robust_list", "get_robust_list", "set_tid_address", "exit",
                 "exit_group", "clone3", "rseq", "clock_gettime", "clock_nanosleep",
                 "nanosleep"):  # fmt: skip
        assert "ql_syscall_" + name in calls, name
    assert calls["ql_syscall_futex"] is not print
    assert "ql_syscall_clone" in hooks[QL_INTERCEPT.EXIT]
    # Qiling's table ends at 448: the wrapper names the four numbers past it
    assert [ql.os.syscall_mapper(n) for n in (449, 454, 455, 456)] == [
        "ql_syscall_futex_waitv", "ql_syscall_futex_wake", "ql_syscall_futex_wait",
        "ql_syscall_futex_requeue",
    ]  # fmt: skip
    assert ql.os.syscall_mapper(202) == mapper(202)
    with pytest.raises(KeyError):
        mapper(449)
    with pytest.raises(RuntimeError, match="already installed"):
        install(ql)
    assert uninstall(ql) is integ
    assert {k: dict(v) for k, v in hooks.items()} == before
    assert ql.os.syscall_mapper is mapper and ql.os.futexm is futexm
    assert installed(ql) is None
    with pytest.raises(RuntimeError, match="not installed"):
        uninstall(ql)
    install(ql)  # and again, after an uninstall


def test_install_refuses_what_it_cannot_serve() -> None:
    """multithread=False: Qiling runs no guest thread and its own futex raises
    AttributeError (qiling.md); install says so instead of half-working."""
    qiling = pytest.importorskip("qiling", reason=NO_QILING)
    from qiling.const import QL_ARCH, QL_OS, QL_VERBOSE

    from futex.integrations.qiling import install

    single = qiling.Qiling(code=b"\x90", archtype=QL_ARCH.X8664, ostype=QL_OS.LINUX,
                           verbose=QL_VERBOSE.DISABLED)  # fmt: skip
    with pytest.raises(ValueError, match="multithread=True"):
        install(single)
    arm = qiling.Qiling(code=b"\x00" * 4, archtype=QL_ARCH.ARM64, ostype=QL_OS.LINUX,
                        multithread=True, verbose=QL_VERBOSE.DISABLED)  # fmt: skip
    with pytest.raises(ValueError, match="x86-64"):
        install(arm)
