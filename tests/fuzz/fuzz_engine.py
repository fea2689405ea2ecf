"""The fuzz harness's engine (see ``fuzz_kernels``): the op model (:class:`R`, :class:`Op`,
rendered as Python), findings, and :class:`Fuzz`, a personality's world -- op execution,
the checks after every step, and the generators of registers, words and memory ops that
every personality shares."""

from __future__ import annotations

import enum
import logging
import random
import re
import traceback
from dataclasses import dataclass
from logging.handlers import BufferingHandler
from typing import Any, ClassVar, NamedTuple

from futex.kernel import ManualClock
from futex.kernel.blocking import PendingWait
from futex.linux import abi as lx
from futex.linux.pi_exit import FutexState
from futex.memory import PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE, File

U32, U64 = (1 << 32) - 1, (1 << 64) - 1
BOUNDS = (0, 1, 2, 4, -1, -4, 2**31 - 1, 2**31, U32, 2**32, 2**63 - 1, 2**63, U64, 2**64,
          2**65 + 4, -(2**63), -(2**64) - 8)
BASE, STRIDE, SPAN = 0x20000000, 0x4000, 0x2000  # slot i at BASE + i*STRIDE, SPAN long
WORDS = (0, 4, 0x10, 0x20, 0x30, 0xFFC, 0x1000)  # futex words in a slot
ODD = (1, 2, 3, 0xFFE, 0x1FFC, 0x2000, 0x2FFC)  # misaligned, straddling, in the gap
PROTS = (PROT_READ | PROT_WRITE,) * 12 + (PROT_READ, PROT_NONE, PROT_EXEC, PROT_WRITE,
                                          PROT_READ | PROT_EXEC, 7)
TICKS = (1, 10**3, 10**6, 10**9, 10**12)
#: Ops that cannot change a wait queue: no invariant check after them.
QUIET = frozenset({"write", "store_u32", "mmap", "mprotect", "munmap", "truncate", "handle",
                   "new_event", "close", ""})
FAULT, MAPERR = ("MemoryFault",), ("MemoryFault", "MappingError")
LOGGED = BufferingHandler(10_000)  # what the kernels log (the callbacks they isolate)
LOGGED.setLevel(logging.ERROR)
logging.getLogger("futex").addHandler(LOGGED)


class R(NamedTuple):
    """An op argument naming a bound object, or ``name.attr | bits``."""

    name: str
    attr: str = ""
    bits: int = 0


class Op(NamedTuple):
    """``bind = target.method(*args, **kw)``: method "" calls the target, ".x" assigns its
    attribute x; ``tolerate`` names the exceptions that are answers, not findings."""

    bind: str
    target: str
    method: str
    args: tuple[Any, ...] = ()
    kw: tuple[tuple[str, Any], ...] = ()
    tolerate: tuple[str, ...] = ()


FILES = [Op(f"f{i}", "File", "", (f"f{i}", n)) for i, n in ((1, SPAN), (2, 0x1000))]


def _src(v: Any) -> str:
    if isinstance(v, R):
        ref = f"{v.name}.{v.attr}" if v.attr else v.name
        return f"({ref} | {v.bits:#x})" if v.bits else ref
    if isinstance(v, bytes):
        return f"bytes.fromhex({v.hex()!r})"
    if isinstance(v, enum.Enum):
        return f"{type(v).__name__}.{v.name}"
    return hex(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 4096 else repr(v)


def render(op: Op) -> str:
    """The op as Python."""
    if op.method.startswith("."):
        return f"{op.target}{op.method} = {_src(op.args[0])}"
    fn = f"{op.target}.{op.method}" if op.method else op.target
    args = ", ".join([_src(a) for a in op.args] + [f"{k}={_src(v)}" for k, v in op.kw])
    line = f"{op.bind + ' = ' if op.bind else ''}{fn}({args})"
    return f"with suppress({', '.join(op.tolerate)}):\n    {line}" if op.tolerate else line


@dataclass
class Finding:
    personality: str
    seed: int  # the episode's: --replay
    kind: str  # exception | invariant | status | stuck
    detail: str
    signature: str  # what shrinking keeps: the kind, the exception and where, the message
    reproducer: str = ""

    def describe(self) -> str:
        return (f"{self.personality} {self.kind}: {self.detail}\n  replay: python -m tests.fuzz."
                f"fuzz_kernels --personality {self.personality} --replay {self.seed}")


class Fail(Exception):
    """A failed check, out of a step: ``Fail(kind, detail, signature)``."""


def _shape(text: str) -> str:
    return re.sub(r"0x[0-9a-f]+|\d+", "N", text)[:90]


class Fuzz:
    """A personality's world: kernel, bound objects, op execution and checks, generation.
    Execution only reads ops, so a replay (or the shrinker) needs no generator state."""

    name: ClassVar[str]
    CALLS: ClassVar[frozenset[str]]
    killed: ClassVar[int]  # what a call its task's exit ended answers
    id_attr: ClassVar[str] = "tid"
    forks: ClassVar[bool] = True
    prelude: str

    def __init__(self, seed: int, check_every: int = 16) -> None:
        self.seed, self.check_every, self.rng = seed, check_every, random.Random(seed)
        self.clock = ManualClock()
        self.env: dict[str, Any] = {"clock": self.clock, "File": File}
        self.kernel = self.env["k"] = self.make_kernel()
        self.top = self.kernel_top()
        self.slots = [BASE + i * STRIDE for i in range(5)] + [self.top - SPAN]
        self.pending: dict[int, tuple[PendingWait, Op, list[Any], Any]] = {}
        self.done: list[PendingWait] = []
        self.steps = self.calls = self.queued = 0
        self.counter: dict[str, int] = {}
        self.owner: dict[str, str] = {}  # task name -> process name
        self.procs: list[str] = []
        self.tnames: list[str] = []  # live tasks (pruned by the generator)
        self.everyone: list[str] = []  # every task ever made
        self.hot: list[tuple[int, str, bool]] = []  # (word, process, private) waited on
        self.priv = self.rng.choice((0.1, 0.5, 0.9))  # how often calls say private

    # personality hooks
    def make_kernel(self) -> Any: raise NotImplementedError
    def kernel_top(self) -> int: raise NotImplementedError
    def full_check(self) -> None: raise NotImplementedError
    def allowed(self, op: Op, args: list[Any], r: int, task: Any) -> bool: raise NotImplementedError
    def live(self, task: Any) -> bool: raise NotImplementedError
    def spawn(self, p: str) -> list[Op]: raise NotImplementedError
    def call(self, t: str, p: str) -> list[Op]: raise NotImplementedError
    def event(self, tasks: list[str], ready: list[str]) -> list[Op]: raise NotImplementedError

    def gone(self, task: Any) -> bool:
        return not self.live(task)

    def stuck(self, task: Any) -> str:
        """Why the blocked ``task`` can never be woken ("" when it can)."""
        return ""

    def status_key(self, args: list[Any]) -> str:
        return ""

    def managers(self, live: bool = False) -> list[Any]:
        """Every process's futex manager (``live``: of the processes with tasks left)."""
        return [p.futex for p in self.kernel.processes.values()
                if not live or getattr(p, "tasks", None) or getattr(p, "threads", None)]

    # -- execution --------------------------------------------------------------------------

    def resolve(self, v: Any) -> Any:
        if isinstance(v, R):
            obj = self.env[v.name]
            return getattr(obj, v.attr) | v.bits if v.attr else obj
        return v

    def apply(self, op: Op) -> None:
        """Run one op, then the checks (raises :class:`Fail`).  An op naming an object never
        bound (the shrinker left its creator out) is skipped."""
        try:
            target = self.env[op.target]
            args = [self.resolve(a) for a in op.args]
            kw = {k: self.resolve(v) for k, v in op.kw}
        except KeyError:
            return
        self.steps += 1
        LOGGED.flush()
        call = op.method in self.CALLS
        if call:  # at most this many waiters are queued (futex_waitv: one per entry)
            self.calls += 1
            self.queued = sum(len(getattr(pw._request, "words", "1"))
                              for pw, *_ in self.pending.values())
        r: Any = None
        try:
            if op.method.startswith("."):
                setattr(target, op.method[1:], args[0])
            else:
                r = (getattr(target, op.method) if op.method else target)(*args, **kw)
        except Exception as exc:
            if not any(c.__name__ in op.tolerate for c in type(exc).__mro__):
                raise self._exc_fail(op, exc, "raised") from exc
            r = None
        if op.bind and r is not None:
            self.env[op.bind] = r
            if hasattr(r, "blocked"):
                self.tnames.append(op.bind)
                self.everyone.append(op.bind)
                self.owner[op.bind] = op.target
            elif op.method in ("new_process", "fork"):
                self.procs.append(op.bind)
        if call and isinstance(r, PendingWait):
            self.pending[id(r)] = (r, op, args, target)
            r.add_done_callback(self.done.append)
        elif call and r is not None and not self.allowed(op, args, r, target):
            raise Fail("status", f"{render(op)} -> {r}",
                       f"status {op.method} {self.status_key(args)} -> {r}")
        while self.done:
            _, o, a, task = self.pending.pop(id(pw := self.done.pop()))
            r = pw.result()
            if not self.allowed(o, a, r, task) and not (r == self.killed and self.gone(task)):
                raise Fail("status", f"{render(o)} settled with {r}",
                           f"settled {o.method} {self.status_key(a)} -> {r}")
        for rec in LOGGED.buffer:
            err = rec.exc_info[1] if rec.exc_info else None
            if isinstance(err, Exception):
                raise self._exc_fail(op, err, f"logged {rec.getMessage()!r}:")
            raise Fail("exception", f"{render(op)} logged {rec.getMessage()}",
                       f"logged {_shape(rec.getMessage())}")
        if op.method not in QUIET:
            self.check()

    @staticmethod
    def _exc_fail(op: Op, exc: Exception, how: str) -> Fail:
        tb = traceback.extract_tb(exc.__traceback__)
        where = tb[-1].name if tb else "?"
        return Fail("exception", f"{render(op)} {how} {type(exc).__name__} in {where}: {exc}",
                    f"exception {type(exc).__name__} in {where}")

    def check(self, full: bool = False) -> None:
        seen: set[int] = set()
        try:
            for m in self.managers(not full):
                for table in m.layout.tables():
                    if id(table) not in seen:
                        seen.add(id(table))
                        for b in [b for b in table.buckets if b.count or b.queues]:
                            with b.lock:
                                m._check_bucket_locked(table, b)
            if full or self.steps % self.check_every == 0:
                self.full_check()
        except AssertionError as exc:
            raise Fail("invariant", str(exc), f"invariant {_shape(str(exc))}") from exc
        for pw, op, _, task in self.pending.values():
            req = pw._request
            ew = getattr(req, "exit_wait", None)
            ws = [w for w in (getattr(req, "waiter", None), getattr(req, "node", None)) if w]
            ws += [w.waiter for w in getattr(req, "words", ())[: getattr(req, "queued", 0)]]
            if task.blocked is not pw:
                why = "its task does not show it as the call it is blocked in"
            elif ew is not None:
                why = "" if ew.owner.futex_state is FutexState.EXITING else (
                    f"it waits for the exit of task {ew.owner.tid}, which is over")
            elif ws and all(w.bucket is None for w in ws) and not getattr(ws[0], "orphaned", 0):
                why = "it is queued nowhere: nothing can wake it"
            else:
                why = self.stuck(task)
            if why:
                raise Fail("stuck", f"{render(op)} pending: {why}", f"stuck {_shape(why)}")

    def final(self) -> None:
        """After every task exited: nothing pending, nothing queued, invariants hold."""
        for _, op, _, _ in self.pending.values():
            raise Fail("stuck", f"{render(op)} still pending after its task exited",
                       f"stuck: pending after exit {op.method}")
        for m in self.managers():
            if m.queues():
                raise Fail("stuck", f"waiters queued with every task gone: {m.queues()}",
                           "stuck: waiters queued after exit")
        self.check(full=True)

    # -- generation -------------------------------------------------------------------------

    def setup(self) -> list[Op]:
        return [*FILES, *self.new_process(), Op("", "p1", "mmap", (SPAN,), (
            ("shared", True), ("addr", self.slots[1]))), *self.spawn("p1"), *self.fork("p1")]

    def generate(self) -> list[Op]:
        tasks, x = self.prune(), self.rng.random()
        ready = [n for n in tasks if self.ready(self.env[n])]
        if ready and x > 0.07:
            t = self.rng.choice(ready)
            return self.mem_op(self.owner[t]) if x < 0.15 else self.call(t, self.owner[t])
        return self.event(tasks, ready) if tasks else self.new_process()

    def finish(self) -> list[Op]:
        return [Op("", "clock", "advance", (10**13,))] + [Op("", t, "exit") for t in self.prune()]

    def ready(self, task: Any) -> bool:
        return task.blocked is None

    def new_process(self, kw: tuple[tuple[str, Any], ...] = ()) -> list[Op]:
        p = self.fresh("p")
        return [Op(p, "k", "new_process", (), kw), *self.scratch(p), *self.spawn(p)]

    def fork(self, p: str) -> list[Op]:
        c = self.fresh("p")
        return [Op(c, p, "fork"), *self.spawn(c)] if self.forks else self.new_process()

    def scratch(self, p: str) -> list[Op]:
        s = self.slots
        return [Op("", p, "mmap", (SPAN,), (("addr", s[0]),)),
                Op("", p, "mmap", (SPAN,), (("addr", s[2]), ("shared", True), ("file", R("f1")))),
                Op("", p, "mmap", (SPAN,), (("addr", s[3]),))]

    def prune(self) -> list[str]:
        self.tnames = [n for n in self.tnames if self.live(self.env[n])]
        return self.tnames

    def advance(self) -> list[Op]:
        return [Op("", "clock", "advance", (self.rng.choice(TICKS),))]

    def fresh(self, prefix: str) -> str:
        n = self.counter[prefix] = self.counter.get(prefix, 0) + 1
        return f"{prefix}{n}"

    def reg(self, v: int, bits: int = 64) -> int:
        """A register value, now and then moved to an edge, past ``bits`` or negative."""
        x = self.rng.random()
        if x < 0.94:
            return v
        if x < 0.97:
            return self.rng.choice(BOUNDS)
        return v + (self.rng.randrange(1, 4) << bits) if x < 0.985 else v - (1 << bits)

    def word(self) -> int:
        x, rng = self.rng.random(), self.rng
        if x < 0.4 and self.hot:
            return rng.choice(self.hot)[0]
        if x < 0.86:
            return rng.choice(self.slots[:4] if x < 0.8 else self.slots) + rng.choice(WORDS)
        if x < 0.94:
            return rng.choice(self.slots) + rng.choice(ODD)
        return rng.choice((0, 4, 0x1000, self.top, self.top - 4, self.top + 0x1000, 2**47,
                           2**63, U64 - 3, 0xFFFFFFFC, BASE - 0x1000))

    def waits_on(self, addr: int, p: str, private: bool) -> int:
        """``addr``, remembered as a word a call of ``p`` waits on (wakes aim there)."""
        self.hot = [*self.hot[-7:], (addr, p, private)]
        return addr

    def target(self, p: str) -> tuple[int, bool] | None:
        """Mostly a word some call of ``p`` (or a shared one) waited on: (addr, private)."""
        near = [(a, pv) for a, q, pv in self.hot if q == p or not pv]
        return self.rng.choice(near) if near and self.rng.random() < 0.7 else None

    def value(self, p: str, addr: int, odds: float = 0.75) -> int:
        """Mostly the word's current value (so that waits sleep)."""
        if odds == 1 or self.rng.random() < odds:
            try:
                return int.from_bytes(self.env[p].peek(addr, 4), "little")
            except Exception:
                pass
        return self.rng.choice((0, 1, 2, U32, 0x80000000, self.rng.getrandbits(32)))

    def word_value(self) -> Any:
        rng = self.rng
        if rng.random() < 0.5:
            bits = rng.choice((0, 0, lx.FUTEX_WAITERS, lx.FUTEX_OWNER_DIED, 0xC0000000))
            return R(rng.choice(self.everyone), self.id_attr, bits)
        return rng.choice((0, 1, lx.FUTEX_WAITERS, lx.FUTEX_OWNER_DIED, U32, rng.getrandbits(32)))

    def mem_op(self, p: str) -> list[Op]:
        rng = self.rng
        slot, x = rng.choice(self.slots[1:] if rng.random() < 0.9 else self.slots), rng.random()
        if x < 0.3:
            kind = rng.randrange(4)  # private anonymous, shared anonymous, file shared/private
            kw = (("prot", rng.choice(PROTS)), ("addr", slot), *(("shared", kind != 3),) * bool(
                kind), *(("file", R(rng.choice(("f1", "f2")))),) * (kind >= 2))
            return [Op("", p, "mmap", (SPAN,), kw)]
        at, n = slot + rng.choice((0, 0x1000)), rng.choice((0x1000, SPAN))
        if x < 0.5:
            return [Op("", p, "mprotect", (at, n, rng.choice(PROTS)), (), MAPERR) if x < 0.42
                    else Op("", p, "munmap", (at, n), (), MAPERR)]
        if x < 0.54:
            return [Op("", rng.choice(("f1", "f2")), "truncate", (rng.choice((0, 99, 4096)),))]
        if x < 0.58:  # a refused mapping, or one the kernel places (which must succeed)
            return [Op("", p, "mmap", (1 << 47,), (), ("MappingError", "MemoryError"))
                    if x < 0.56 else Op("", p, "mmap", (0x1000,))]
        addr = rng.choice(self.slots) + rng.choice(WORDS)
        return [Op("", p, "store_u32", (addr, self.word_value()), (), FAULT)]
