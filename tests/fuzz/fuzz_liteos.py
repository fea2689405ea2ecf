"""The fuzz harness's LiteOS-A personality: ``SysFutex`` with every command and flag,
timeouts, signals and interrupt context, on faithful and safe kernels."""

from __future__ import annotations

from typing import Any

from futex.liteos import LiteosKernel
from futex.liteos import abi as los
from tests.fuzz.fuzz_engine import U32, Fuzz, Op

# -- LiteOS-A -------------------------------------------------------------------------------

_LOS = {0, -los.LOS_EINVAL, -los.LOS_EBADF}


class Liteos(Fuzz):
    name = "liteos"
    CALLS = frozenset({"syscall_futex_nb"})
    killed = 0

    def make_kernel(self) -> LiteosKernel:
        faithful, tick = bool(self.seed % 2), (1000, 100, 10**7)[self.seed % 6 // 2]
        self.prelude = (f"from futex.liteos import LiteosKernel\nclock = ManualClock()\nk = "
                        f"LiteosKernel(clock=clock, tick_hz={tick}, faithful={faithful})")
        return LiteosKernel(clock=self.clock, tick_hz=tick, faithful=faithful)

    def kernel_top(self) -> int:
        return los.USER_ASPACE_TOP_MAX

    def managers(self, live: bool = False) -> list[Any]:
        return [self.kernel.futex]

    def full_check(self) -> None:
        self.kernel.futex.check_invariants()
        self.kernel.table()

    def live(self, task: Any) -> bool:
        return bool(task.alive)

    def allowed(self, op: Op, args: list[Any], r: int, task: Any) -> bool:
        if args[1] & 3 in (1, 3):  # WAKE, REQUEUE
            return r in _LOS
        return r in _LOS or r == -los.LOS_ETIMEDOUT or (r == -los.LOS_EINTR and task.in_interrupt)

    def spawn(self, p: str) -> list[Op]:
        return [Op(self.fresh("t"), p, "new_task", (self.rng.randrange(32),))]

    def event(self, tasks: list[str], ready: list[str]) -> list[Op]:
        rng, y = self.rng, self.rng.random()
        blocked = [n for n in tasks if self.env[n].blocked is not None]
        if blocked and y < 0.25:
            return [Op("", rng.choice(blocked), "interrupt", (rng.choice((9, 9, 2, 15)),))]
        if y < 0.4:
            t = rng.choice(tasks)
            return [Op("", t, "set_priority", (rng.randrange(32),)) if y < 0.32 else
                    Op("", t, ".in_interrupt", (rng.random() < 0.3,))]
        if len(tasks) < 8 and y < 0.6:
            p = self.owner[rng.choice(ready)] if ready and y < 0.5 else ""
            return (self.spawn(p) if y < 0.45 else self.fork(p)) if p else self.new_process()
        if (len(tasks) > 2 and y < 0.7) or (not ready and len(tasks) >= 8):
            return [Op("", rng.choice(tasks), "exit")]
        return self.advance()

    def call(self, t: str, p: str) -> list[Op]:
        rng = self.rng
        flags = rng.choice((0, 0, 0, 0, 1, 1, 1, 3, 3, 2, 5, 6, 9))
        ua, priv = self.word(), rng.random() < self.priv
        tg = self.target(p) if flags in (1, 3) else None
        if tg:
            ua, priv = tg
        elif flags in (0, 2):
            self.waits_on(ua, p, priv)
        flags = rng.getrandbits(32) if rng.random() < 0.03 else flags | 128 * priv
        val = self.value(p, ua) if flags & 3 in (0, 2) else rng.choice((1, 1, 2, 0, -1, 2**31 - 1))
        when = rng.choice((los.LOS_WAIT_FOREVER,) * 3 + (0, 1, 999, 10**6, U32 - 1,
                                                          rng.getrandbits(32)))
        regs = (self.reg(v, 32) for v in (ua, flags, val, when, self.word()))
        return [Op("", t, "syscall_futex_nb", tuple(regs))]
