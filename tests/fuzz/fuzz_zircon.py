"""The fuzz harness's Zircon personality: the ``zx_futex_*`` calls with owner handles,
deadlines, thread and process lifecycles, and their ZX_ statuses."""

from __future__ import annotations

from typing import Any

from futex.kernel import ClockId
from futex.memory import USER_PTR_MAX_X86_64
from futex.zircon import ZirconKernel
from futex.zircon import abi as zx
from futex.zircon.kernel import BadHandlePolicy, ThreadState
from tests.fuzz.fuzz_engine import U32, Fuzz, Op, R

# -- Zircon ---------------------------------------------------------------------------------

_ZW = {zx.ZX_OK, zx.ZX_ERR_INVALID_ARGS}
_ZH = _ZW | {zx.ZX_ERR_BAD_HANDLE, zx.ZX_ERR_WRONG_TYPE, zx.ZX_ERR_BAD_STATE}
ZX_STATUS = {"futex_wait_nb": _ZH | {zx.ZX_ERR_TIMED_OUT}, "futex_wake": _ZW,
             "futex_wake_single_owner": _ZW, "futex_requeue": _ZH,
             "futex_requeue_single_owner": _ZH, "futex_get_owner": _ZW}


class Zircon(Fuzz):
    name = "zircon"
    CALLS = frozenset(ZX_STATUS)
    killed = zx.ZX_ERR_INTERNAL_INTR_KILLED
    id_attr = "koid"
    forks = False

    def make_kernel(self) -> ZirconKernel:
        self.handles: dict[str, list[str]] = {}
        self.closed: set[str] = set()
        self.prelude = ("from futex.zircon import ZirconKernel\nfrom futex.zircon.kernel import "
                        "BadHandlePolicy, ProcessKilled\nclock = ManualClock()\n"
                        "k = ZirconKernel(clock=clock)")
        return ZirconKernel(clock=self.clock)

    def kernel_top(self) -> int:
        return USER_PTR_MAX_X86_64

    def full_check(self) -> None:
        self.kernel.check_invariants()

    def live(self, task: Any) -> bool:
        return task.state is not ThreadState.DEAD

    def ready(self, task: Any) -> bool:
        return task.blocked is None and task.state is ThreadState.RUNNING

    def allowed(self, op: Op, args: list[Any], r: int, task: Any) -> bool:
        return r in ZX_STATUS[op.method]

    def new_process(self, kw: tuple[tuple[str, Any], ...] = ()) -> list[Op]:
        rng = self.rng
        policy = BadHandlePolicy.ALLOW if rng.random() < 0.7 else rng.choice(list(BadHandlePolicy))
        p = f"p{self.counter.get('p', 0) + 1}"
        return [*super().new_process((("bad_handle", policy),)), *self.spawn(p)]

    def spawn(self, p: str) -> list[Op]:
        t = self.fresh("t")
        ops = [Op(t, p, "new_thread", (t,), (("priority", self.rng.randrange(32)),))]
        return ops + [Op("", t, "start")] * (self.rng.random() < 0.85)

    def handle_op(self, p: str) -> list[Op]:
        rng, h, x = self.rng, self.fresh("h"), self.rng.random()
        mine = [n for n in self.handles.get(p, ()) if n not in self.closed]
        if x < 0.15 and mine:
            self.closed.add(c := rng.choice(mine))
            return [Op("", p, "close", (R(c),))]
        self.handles.setdefault(p, []).append(h)
        if x > 0.75:
            return [Op(h, p, "new_event")]
        ours = [n for n in self.tnames if self.owner[n] == p]
        return [Op(h, p, "handle", (R(rng.choice(ours if ours and x < 0.6 else self.everyone)),))]

    def owner_handle(self, p: str) -> Any:
        rng, x = self.rng, self.rng.random()
        mine, every = self.handles.get(p), [h for hs in self.handles.values() for h in hs]
        if x < 0.4:
            return 0
        if x < 0.8 and mine:
            return R(rng.choice(mine))
        if x < 0.9 and every:
            return R(rng.choice(every))
        return rng.choice((1, 3, 7, U32, -1, 2**40 | 3))

    def call(self, t: str, p: str) -> list[Op]:
        rng, g, x = self.rng, self.reg, self.rng.random()
        if x < 0.05:
            return self.handle_op(p)
        ptr, rptr = self.word(), self.word()
        tg = self.target(p) if x >= 0.4 else None
        ptr = tg[0] if tg else self.waits_on(ptr, p, True)
        val = self.value(p, ptr)
        tol = ("ProcessKilled",) * (self.env[p].bad_handle is not BadHandlePolicy.ALLOW)
        now = self.clock.now(ClockId.MONOTONIC)
        if x < 0.4:
            when = rng.choice((zx.ZX_TIME_INFINITE,) * 3 + (zx.ZX_TIME_INFINITE_PAST, 0, now - 1,
                                                            now + 1, now + 10**6, now + 10**9, -1))
            args = (g(ptr), g(val), self.owner_handle(p), g(when))
            return [Op("", t, "futex_wait_nb", args, (), tol)]
        n, rn = (g(rng.choice((1, 1, 2, 0, U32, -1, 2**32 + 1))) for _ in range(2))
        if x < 0.68:
            return [Op("", t, "futex_wake", (g(ptr), n)) if x < 0.6 else
                    Op("", t, "futex_wake_single_owner", (g(ptr),))]
        if x < 0.92:
            one = x >= 0.82
            args = (g(ptr), *(() if one else (n,)), g(val), g(rptr), rn, self.owner_handle(p))
            name = "futex_requeue_single_owner" if one else "futex_requeue"
            return [Op("", t, name, args, (), tol)]
        s0 = self.slots[0]
        koid_ptr = rng.choice((s0 + 0x200, s0 + 0x200, 0, s0 + 0x201, s0 + 0x1FFC, self.word()))
        return [Op("", t, "futex_get_owner", (g(ptr), g(koid_ptr)))]

    def event(self, tasks: list[str], ready: list[str]) -> list[Op]:
        rng, env, x = self.rng, self.env, self.rng.random()
        blocked = [n for n in tasks if env[n].blocked is not None]
        new = [n for n in tasks if env[n].state is ThreadState.NEW]
        procs = [p for p in self.procs if env[p].retcode is None]
        if blocked and x < 0.2:
            return [Op("", rng.choice(blocked), "suspend")]
        if new and x < 0.3:
            return [Op("", rng.choice(new), "start")]
        if x < 0.4:
            return [Op("", rng.choice(tasks), "set_priority", (rng.randrange(32),))]
        if len(tasks) < 8 and x < 0.6:
            return self.spawn(rng.choice(procs)) if procs and x < 0.5 else self.new_process()
        if len(tasks) > 2 and x < 0.7:
            return [Op("", rng.choice(tasks), "exit")]
        if len(procs) > 1 and x < 0.73:
            return [Op("", rng.choice(procs), "kill", (-1,))]
        if not ready and blocked and len(tasks) >= 8:
            return [Op("", rng.choice(blocked), "exit")]
        return self.advance()
