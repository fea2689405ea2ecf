"""The fuzz harness's Linux personality: futex(2), robust lists, futex_waitv and futex2,
prctl(PR_FUTEX_HASH) over every modelled release, with their documented errnos."""

from __future__ import annotations

import struct
from typing import Any

from futex.kernel import ClockId
from futex.linux import LinuxKernel
from futex.linux import abi as lx
from futex.linux.facts import TASK_SIZE_MAX_4LEVEL, LinuxFacts
from futex.linux.pi_exit import FutexState
from tests.fuzz.fuzz_engine import BOUNDS, FAULT, SPAN, TICKS, U32, U64, Fuzz, Op, R

# -- Linux ----------------------------------------------------------------------------------

_WAITS = {lx.EAGAIN, lx.EFAULT, lx.EINTR, lx.EINVAL, lx.ENOSYS, lx.ETIMEDOUT}
_PI = {lx.EAGAIN, lx.EDEADLK, lx.EFAULT, lx.EINVAL, lx.ENOMEM, lx.ENOSYS, lx.EPERM, lx.ESRCH,
       lx.ETIMEDOUT}
_WAKES = {lx.EFAULT, lx.EINVAL, lx.ENOSYS}
_RQ = _WAKES | {lx.EAGAIN}
#: futex(2) command -> the errnos futex(2)'s manual lists for it (unknown ones: ENOSYS).
FUTEX_ERRS = {0: _WAITS, 9: _WAITS, 1: _WAKES, 10: _WAKES, 5: _WAKES, 3: _RQ, 4: _RQ, 6: _PI,
              13: _PI, 8: _PI - {lx.ETIMEDOUT}, 7: _RQ | {lx.EPERM}, 11: _PI | {lx.EINTR},
              12: _PI - {lx.ETIMEDOUT}}
_ZERO = {0, 6, 7, 8, 9, 11, 13}  # commands whose success is 0
NR_ERRS = {273: {lx.EINVAL}, 274: {lx.EFAULT, lx.ESRCH, lx.EPERM}, 449: _WAITS | {lx.ENOMEM},
           454: _WAKES, 455: _WAITS, 456: _RQ, 157: {lx.EINVAL, lx.EBUSY, lx.ENOMEM}}
CMDS = (0, 0, 0, 0, 1, 1, 1, 1, 3, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
        12, 13, 13, 2, 14, 15)
RELEASES = ("5.10", "5.15", "6.6", "6.12", "6.16", "6.18")


class Linux(Fuzz):
    name = "linux"
    CALLS = frozenset({"syscall_nb"})
    killed = -lx.EINTR

    def make_kernel(self) -> LinuxKernel:
        i = self.seed % (2 * len(RELEASES))  # consecutive seeds: every release, both CPUs
        rel, pk = RELEASES[i // 2], bool(i % 2)
        buckets = None if self.seed % 37 == 5 else self.rng.choice((1, 4, 16))
        self.facts = LinuxFacts.for_release(rel, protection_keys=pk)
        self.releasing: dict[str, str] = {}  # task -> "exit" / "exec" begun, not finished
        self.pairs: dict[int, tuple[int, bool]] = {}  # WAIT_REQUEUE_PI: uaddr -> uaddr2
        self.prelude = ("from futex.linux import LinuxKernel\nfrom futex.linux.facts import "
                        f"LinuxFacts\nclock = ManualClock()\nk = LinuxKernel(clock=clock, facts="
                        f"LinuxFacts.for_release({rel!r}, protection_keys={pk}), "
                        f"buckets={buckets})")
        return LinuxKernel(clock=self.clock, facts=self.facts, buckets=buckets)

    def kernel_top(self) -> int:
        return TASK_SIZE_MAX_4LEVEL

    def full_check(self) -> None:
        for p in self.kernel.processes.values():
            p.futex.check_invariants()
            for t in list(p.tasks.values()):
                p.futex.pi.check_task(t)

    def stuck(self, task: Any) -> str:
        w = task.pi_blocked_on
        owner = None if w is None else w.state.owner
        if w is not None and (owner is None or not owner.alive):
            return f"it waits for a PI futex whose owner is {owner and owner.tid} (gone)"
        return ""

    def live(self, task: Any) -> bool:
        return bool(task.alive)

    def gone(self, task: Any) -> bool:
        return not task.alive or task.futex_state is not FutexState.OK

    def ready(self, task: Any) -> bool:
        return task.blocked is None and task.futex_state is FutexState.OK

    def status_key(self, args: list[Any]) -> str:
        cmd = args[2] & U32 & lx.FUTEX_CMD_MASK if args[0] == 202 else 0
        return f"202:{cmd if cmd < 14 else '?'}" if args[0] == 202 else str(args[0])

    def allowed(self, op: Op, args: list[Any], r: int, task: Any) -> bool:
        nr, regs = args[0], [int(v) for v in (*args[1:], 0, 0, 0, 0, 0, 0)]
        if nr == 202:
            cmd = regs[1] & U32 & lx.FUTEX_CMD_MASK
            if r >= 0:
                return cmd in FUTEX_ERRS and (r == 0 if cmd in _ZERO else r <= self.queued)
            return -r in FUTEX_ERRS.get(cmd, {lx.ENOSYS})
        if r >= 0:
            if nr == 449:
                return r < min(regs[1] & U32, 128)
            if nr == 157:
                return not r & (r - 1)
            return r <= self.queued if nr in (454, 456) else r == 0 and nr in NR_ERRS
        if nr == 274 and self.facts.get_robust_list_is_err and r >= -4095:
            return True  # IS_ERR(head): a stored head in [-4095, -1] comes back as the errno
        return -r in NR_ERRS.get(nr, {lx.ENOSYS})

    def apply(self, op: Op) -> None:
        if op.method in ("begin_exit", "begin_exec"):
            self.releasing[op.target] = op.method[6:]
        elif op.method in ("exit", "exec"):
            self.releasing.pop(op.target, None)
        super().apply(op)

    def spawn(self, p: str) -> list[Op]:
        kw = (("clear_child_tid", self.word() & U64),) * (self.rng.random() < 0.3)
        return [Op(self.fresh("t"), p, "new_task", (), kw)]

    def finish(self) -> list[Op]:
        execs = [Op("", t, "exec") for t, what in self.releasing.items() if what == "exec"]
        return [*execs, *super().finish()]

    def event(self, tasks: list[str], ready: list[str]) -> list[Op]:
        rng, env = self.rng, self.env
        blocked = [n for n in tasks if env[n].blocked is not None]
        free = [n for n in tasks if n not in self.releasing]
        t = rng.choice(ready or tasks)
        p, y = self.owner[t], rng.random()
        if self.releasing and (y < 0.06 or (not ready and y < 0.4)):
            t = rng.choice(sorted(self.releasing))
            return [Op("", t, self.releasing[t])]
        if blocked and y < (0.16 if ready else 0.55):
            kw = (("handler", rng.random() < 0.7), ("restart", rng.random() < 0.5))
            return [Op("", rng.choice(blocked), "interrupt", (), kw)]
        if len(tasks) < 8 and (y < 0.4 or (not ready and y < 0.8)):
            return self.spawn(p) if y < 0.3 or not ready else self.fork(p) if y < 0.37 else (
                self.new_process())
        if y < 0.7 or len(free) < 3:
            real = self.clock.now(ClockId.REALTIME) + rng.choice((-(10**12), 10**9))
            return self.advance() if y < 0.66 else [Op("", "clock", "set_realtime", (real,))]
        if y < 0.78:
            fifo = rng.random() < 0.4
            prio, nice = rng.randint(1, 99) * fifo, 0 if fifo else rng.randint(-20, 19)
            return [Op("", rng.choice(tasks), "set_scheduler", (int(fifo), prio, nice))]
        if y < 0.92 or not ready:
            return [Op("", rng.choice(free), "exit" if y < 0.88 else "begin_exit")]
        others = [n for n in tasks if self.owner[n] == p and n != t]  # de_thread, then exec
        if any(self.releasing.get(n) == "exec" for n in others):
            return self.advance()
        return [Op("", n, "exit") for n in others] + [Op("", t, rng.choice(("exec", "begin_exec")))]

    def timespec(self, p: str) -> tuple[list[Op], int]:
        rng, s0, x = self.rng, self.slots[0], self.rng.random()
        if x < 0.58:
            return [], 0 if x < 0.55 else rng.choice((8, s0 + 0x1FF8, s0 + 0x2000, 2**63))
        mono, real = self.clock.now(ClockId.MONOTONIC), self.clock.now(ClockId.REALTIME)
        d = rng.choice((0, *TICKS))
        ok = (divmod(d, 10**9), divmod(mono + d, 10**9), divmod(real + d, 10**9))
        sec, ns = rng.choice(ok * 5 + (divmod(mono - 10**9, 10**9), (-1, 0), (0, 10**9),
                                       (0, -1), (2**63 - 1, 999_999_999), (lx.KTIME_SEC_MAX, 0)))
        ptr = s0 + 0x100 + 16 * rng.randrange(8)
        return [Op("", p, "write", (ptr, struct.pack("<qq", sec, ns)), (), FAULT)], ptr

    def f2flags(self) -> int:
        rng = self.rng
        if rng.random() < 0.04:
            return rng.choice((0, 1, 3, 0x10, U32, 0x82 | 0x100))
        return (2 | 128 * (rng.random() < self.priv) | 4 * (rng.random() < 0.1)
                | 8 * (rng.random() < 0.05))

    def entries(self, p: str, n: int, same: bool = False) -> bytes:
        """``n`` struct futex_waitv (``same``: mostly one flags value, for futex_requeue)."""
        out, flags = b"", self.f2flags()
        for _ in range(n):
            flags = flags if same and self.rng.random() < 0.9 else self.f2flags()
            ua = self.waits_on(self.word(), p, bool(flags & 128))
            val = self.value(p, ua) | (1 << 32) * (self.rng.random() < 0.04)
            out += struct.pack("<QQII", val & U64, ua & U64, flags, self.rng.random() < 0.03)
        return out

    def call(self, t: str, p: str) -> list[Op]:
        rng, s0, x = self.rng, self.slots[0], self.rng.random()
        pre: list[Op] = []
        regs: list[Any]
        if x < 0.6:
            nr, (pre, regs) = 202, self.futex(p, t)
        elif x < 0.76:
            arr, n = s0 + 0x400, rng.choice((1, 1, 1, 2, 3, 4, 0, 128, 129))
            nr = rng.choice((449, 449, 454, 455, 456))
            pre = [Op("", p, "write", (arr, self.entries(p, 2 if nr == 456 else min(n, 4),
                                                         nr == 456)), (), FAULT)]
            tpre, ts = self.timespec(p)
            clk, mask = rng.choice((1, 1, 0, 2, -1, 1 | 1 << 32)), rng.choice((U32, 1, 0, 2**32))
            ua, fl, count = self.word(), self.f2flags(), rng.choice((1, 1, 2, 0, -1, 2**31 - 1))
            tg = self.target(p) if nr == 454 else None
            if tg:
                ua, fl = tg[0], fl & ~128 | 128 * tg[1]
            elif nr == 455:
                self.waits_on(ua, p, bool(fl & 128))
            pre += tpre
            regs = {449: [arr, n, int(rng.random() < 0.03), ts, clk],
                    454: [ua, mask, count, fl],
                    455: [ua, self.value(p, ua), mask, fl, ts, clk],
                    456: [arr, int(rng.random() < 0.03), count, rng.choice((0, 1, 2, -1))]}[nr]
        elif x < 0.85:
            nr, regs, pre = 273, *self.robust(t, p)
        elif x < 0.9:
            pid = rng.choice((0, 0, R(t, "tid"), R(rng.choice(self.everyone), "tid"), -1, 99999))
            nr, regs = 274, [pid, rng.choice((s0 + 0x200, s0 + 0x200, s0 + 0x1FFC, 8, s0 + SPAN)),
                             rng.choice((s0 + 0x208, s0 + 0x208, s0 + 0x1FFC, 8, 2**63))]
        elif x < 0.96:
            nr, regs = 157, [rng.choice((78, 78, 78, 77, 78 | 1 << 32, -1)),
                             rng.choice((1, 2, 2, 3, 0)),
                             rng.choice((0, 2, 4, 16, 1, 3, 2**25, 1 << 32, -2, 128)),
                             int(rng.random() < 0.1), 5]
        elif x < 0.98:
            nr, regs = rng.choice((0, 1, 203, 448, 450, 453, 457, 158, -1, 2**31)), [self.word()]
        else:
            nr = rng.choice((202, 273, 274, 449, 454, 455, 456, 157))
            regs = [rng.choice((*BOUNDS, self.word())) for _ in range(6)]
        regs = [self.reg(v) if isinstance(v, int) else v for v in regs]
        return [*pre, Op("", t, "syscall_nb", (nr, *regs))]

    def futex(self, p: str, t: str) -> tuple[list[Op], list[Any]]:
        rng = self.rng
        cmd = rng.choice(CMDS)
        ua, ua2, priv = self.word(), self.word(), rng.random() < self.priv
        tg = self.target(p) if cmd in (1, 3, 4, 5, 7, 10, 12) else None
        tid = self.env[t].tid
        if rng.random() < 0.3 and (owned := [(a, pv) for a, q, pv in self.hot if q == p and (
                self.value(p, a, 1) & lx.FUTEX_TID_MASK == tid)]):  # the owner unlocks
            cmd, (ua, priv) = 7, rng.choice(owned)
        elif cmd == 12 and self.pairs and rng.random() < 0.7:  # where the waiters said
            ua, (ua2, priv) = rng.choice(sorted(self.pairs.items()))
        elif tg:
            ua, priv = tg
        elif cmd in (0, 6, 9, 11, 13):
            self.waits_on(ua, p, priv)
            if cmd == 11:  # its uaddr2: a PI word next to it, mostly
                ua2 = ua2 if rng.random() < 0.3 else (ua & ~0xFFF) + 0x30
                self.pairs[ua] = ua2, priv
        op = cmd | 128 * priv | 256 * (rng.random() < 0.1)
        if rng.random() < 0.02:
            op |= rng.getrandbits(32) & ~0x1FF
        pre: list[Op] = []
        if cmd in (6, 7, 8, 11, 12, 13) and rng.random() < 0.35 and not ua & 3:
            pre.append(Op("", p, "store_u32", (rng.choice((ua, ua2)) & ~3, self.word_value()),
                          (), FAULT))
        val = self.value(p, ua) if cmd in (0, 9, 11) else rng.choice((1, 1, 2, 0, 2**31 - 1, U32))
        val = 1 if cmd == 12 and rng.random() < 0.8 else val  # CMP_REQUEUE_PI wakes one
        if cmd in (3, 4, 5, 12):  # utime is val2, a count
            utime = rng.choice((0, 1, 1, 2, U32, 2**31 - 1))
        else:
            tpre, utime = self.timespec(p)
            pre += tpre
        bitset = rng.choice((U32, U32, 1, 2, 0))
        val3 = {9: bitset, 10: bitset, 4: self.value(p, ua), 12: self.value(p, ua),
                5: lx.FUTEX_OP(rng.randrange(16), rng.randrange(-2048, 2048), rng.randrange(8),
                               rng.randrange(-2048, 2048))}.get(cmd, rng.choice((0, U32, 1)))
        return pre, [ua, op, val, utime, ua2, val3]

    def robust(self, t: str, p: str) -> tuple[list[Any], list[Op]]:
        """A robust list of 0-3 entries (PI bit, cycles, a bad pointer, a pending op) over
        the words of one slot, mostly owned by ``t``: set_robust_list's registers."""
        rng, s0 = self.rng, self.slots[0]
        head, ent, slot = s0 + 0x800, s0 + 0x900, rng.choice(self.slots)
        ents = [ent + 0x10 * i | (rng.random() < 0.3) for i in range(rng.randrange(4))]
        last = rng.choice((head,) * 8 + (ents[0] if ents else head, 8))
        ops = [Op("", p, "write", (e & ~1, struct.pack("<Q", n)), (), FAULT)
               for e, n in zip(ents, [*ents[1:], last], strict=False)]
        pending = rng.choice((0, 0, ent + 0x30, *ents)) | (rng.random() < 0.2)
        raw = struct.pack("<QQQ", ents[0] if ents else head, (slot - ent) & U64, pending)
        ops.append(Op("", p, "write", (head, raw), (), FAULT))
        ops += [Op("", p, "store_u32", (slot + 0x10 * i, R(t, "tid", rng.choice((0, 1 << 31)))),
                   (), FAULT) for i in range(len(ents) + 1) if rng.random() < 0.6]
        return [head, rng.choice((24,) * 9 + (0, 16, 25))], ops
