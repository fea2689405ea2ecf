"""futex.native under hostile arguments: no input crashes, corrupts or hangs.

Converting an argument can run Python code — an ``__index__``, ``__float__`` or
``__bool__``, a waitv iterable — and that code can release the Word, close or resize
its buffer, drop the last reference to it, raise, or return nonsense.  Every method
must convert all its arguments first and only then touch the word's memory, so each
such case ends in a precise exception (ValueError "released", the BufferError of the
refused close, the code's own exception) or in exactly the result of the same call
with the plain value (wrapped, clamped or defaulted as documented).

Every case runs in a child interpreter, one child per method (and a fresh one after a
case that killed it): a crash (SIGSEGV) or a hang fails that method's test, naming the
case that was running, instead of killing pytest.  The
child reports each case as a JSON line; for cases that must succeed it also runs the
reference call (the plain value in the hostile one's place, on fresh memory) and
reports both outcomes and the words' values afterwards.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.native.native_hostile_child import CHILD_TIMEOUT, run_child

try:
    import futex.native as native
    from futex.native import abi

    IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # the skip below says why
    IMPORT_ERROR = exc

pytestmark = pytest.mark.skipif(
    IMPORT_ERROR is not None, reason=f"futex.native unavailable: {IMPORT_ERROR}"
)

INT_MAX = 0x7FFF_FFFF
U32_MAX = 0xFFFF_FFFF

# -- the cases ---------------------------------------------------------------------------

#: Hostile objects: each conversion of the argument runs the action, then returns the
#: base value.  release_*: release the Word first, then close its mmap, resize the
#: bytearray, mremap the mmap (mmap.resize, which may move it) or free the bytearray;
#: close / resize / mremap: try that under the live Word (refused: BufferError);
#: delete: drop every reference to the buffer but the Word's.
HOSTILE = [
    "release",
    "release_close",
    "release_resize",
    "release_mremap",
    "release_delete",
    "close",
    "resize",
    "mremap",
    "delete",
    "raises",
    "bad_return",
]
OTHER_HOSTILE = ["release_other", "release_other_close"]
#: Plain values out of range or of the wrong type, and an __index__-only object that
#: returns 2**100.
VALUES: dict[str, Any] = {
    "neg": -1,
    "big": 1 << 32,
    "huge": 1 << 100,
    "neg_huge": -(1 << 100),
    "float": 1.5,
    "none": None,
    "str": "1",
    "nan": math.nan,
    "index_huge": None,
}
WAITERS_KINDS = [
    "gen_release",
    "gen_raises",
    "not_iterable",
    "list_pair",
    "short_pair",
    "empty",
    "too_many",
]


@dataclass(frozen=True)
class Slot:
    """One argument: where it is in the call, its kind of conversion and base value."""

    path: tuple[Any, ...]
    kind: str  # u32 count bitset timeout private small reg word waiters offset ctor_private name
    base: Any = None
    default: Any = None  # what None means (count, bitset, timeout, private)
    lo: int = 0  # small: the accepted range
    hi: int = 0


@dataclass(frozen=True)
class Method:
    name: str
    args: list[Any]
    slots: list[Slot]
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    words: bool = True
    other: bool = False  # the call uses the other Word too
    setup: str | None = None

    @property
    def id(self) -> str:
        return self.label or self.name


def _private(default: bool = False) -> Slot:
    return Slot(("kwargs", "private"), "private", False, default)


def _u32(i: int, base: int) -> Slot:
    return Slot(("args", i), "u32", base)


def _timeout(path: tuple[Any, ...]) -> Slot:
    return Slot(path, "timeout", 5.0, math.inf)


def _raw(args: list[Any]) -> list[Slot]:
    return [Slot(("args", i), "reg", a) for i, a in enumerate(args)]


#: waitv's waiters: lists marked "$tuple" (so that a path can reach inside) become
#: (Word, expected) tuples in the child once the hostile value is in place.
W_PAIRS: list[Any] = [["$tuple", "$w", 1], ["$tuple", "$o", 0]]
ATOMICS = ("store", "swap", "fetch_add", "fetch_sub", "fetch_or", "fetch_and", "fetch_xor")


def _methods() -> list[Method]:
    u32, timeout, raw = _u32, _timeout, _raw
    atomics = [Method(name, [1], [u32(0, 1)]) for name in ATOMICS]
    futex_args: list[Any] = ["$w.address", abi.FUTEX_WAKE, 1, 0, 0, 0]
    return [
        *atomics,
        Method("cas", [0, 1], [u32(0, 0), u32(1, 1)]),
        # wait(expected) and wake(n) take a shortcut past the keyword parser
        Method("wait", [1], [u32(0, 1)], label="wait(expected)"),
        Method(
            "wait",
            [1, 5.0],
            [
                u32(0, 1),
                timeout(("args", 1)),
                Slot(("kwargs", "bitset"), "bitset", 1, U32_MAX),
                _private(),
            ],
            {"bitset": 1, "private": False},
        ),
        Method("wake", [1], [Slot(("args", 0), "count", 1, 1)], label="wake(n)"),
        Method(
            "wake",
            [1],
            [
                Slot(("args", 0), "count", 1, 1),
                Slot(("kwargs", "bitset"), "bitset", 1, U32_MAX),
                _private(),
            ],
            {"bitset": 1, "private": False},
        ),
        Method(
            "requeue",
            ["$o", 1, 1],
            [
                Slot(("args", 0), "word"),
                Slot(("args", 1), "count", 1, 1),
                Slot(("args", 2), "count", 1, INT_MAX),
                _private(),
            ],
            {"private": False},
            other=True,
        ),
        Method(
            "cmp_requeue",
            ["$o", 0, 1, 1],
            [
                Slot(("args", 0), "word"),
                u32(1, 0),
                Slot(("args", 2), "count", 1, 1),
                Slot(("args", 3), "count", 1, INT_MAX),
                _private(),
            ],
            {"private": False},
            other=True,
        ),
        Method(
            "wake_op",
            ["$o", abi.OP_ADD, 1, abi.CMP_EQ, 0],
            [
                Slot(("args", 0), "word"),
                Slot(("args", 1), "small", abi.OP_ADD, lo=0, hi=15),
                Slot(("args", 2), "small", 1, lo=-2048, hi=2047),
                Slot(("args", 3), "small", abi.CMP_EQ, lo=0, hi=5),
                Slot(("args", 4), "small", 0, lo=-2048, hi=2047),
                Slot(("kwargs", "wake"), "count", 1, 1),
                Slot(("kwargs", "wake_other"), "count", 1, 1),
                _private(),
            ],
            {"wake": 1, "wake_other": 1, "private": False},
            other=True,
        ),
        Method("lock_pi", [5.0], [timeout(("args", 0)), _private()], {"private": False}),
        Method("lock_pi2", [5.0], [timeout(("args", 0)), _private()], {"private": False}),
        Method("trylock_pi", [], [_private()], {"private": False}),
        Method("unlock_pi", [], [_private()], {"private": False}, setup="lock"),
        Method(
            "waitv",
            [W_PAIRS, 5.0],
            [
                Slot(("args", 0), "waiters"),
                Slot(("args", 0, 0, 1), "word"),
                Slot(("args", 0, 0, 2), "u32", 1),
                Slot(("args", 0, 1, 2), "u32", 0),
                timeout(("args", 1)),
            ],
            other=True,
        ),
        Method("syscall_futex", futex_args, raw(futex_args)),
        Method("syscall6", ["$SYS_futex", *futex_args], raw(["$SYS_futex", *futex_args])),
        Method(
            "Word",
            ["$src_w", 0],
            [Slot(("args", 1), "offset", 0), Slot(("kwargs", "private"), "ctor_private", False)],
            {"private": False},
            words=False,
        ),
        Method(
            "attach",
            ["$shm_name", 0],
            [Slot(("args", 0), "name"), Slot(("args", 1), "offset", 0)],
            {"private": False},
            words=False,
        ),
    ]


METHODS = _methods() if IMPORT_ERROR is None else []

# An expectation: ("exc", type name, regex of the message), ("same", plain value): the
# outcome and the words afterwards equal those of the call with the plain value, or
# ("int",): any int result (a raw entry: its address is just a number).
Expect = tuple[Any, ...]

RELEASED: Expect = ("exc", "ValueError", "was released while the arguments were converted")
TYPE_ERROR: Expect = ("exc", "TypeError", "")
BOOM: Expect = ("exc", "Boom", "boom")

#: What each plain value means per kind of argument.
VALUE_RULES: dict[str, dict[str, Any]] = {
    # 32-bit words: -2**31..2**32-1, negative values wrap
    "u32": {
        "neg": U32_MAX,
        "big": ("exc", "OverflowError", "32-bit"),
        "huge": ("exc", "OverflowError", "32-bit"),
        "neg_huge": ("exc", "OverflowError", "32-bit"),
        "index_huge": ("exc", "OverflowError", "32-bit"),
    },
    # counts: >= 0, above INT_MAX means all; None: the default
    "count": {
        "neg": ("exc", "ValueError", ">= 0"),
        "big": INT_MAX,
        "huge": INT_MAX,
        "neg_huge": ("exc", "ValueError", ">= 0"),
        "index_huge": INT_MAX,
        "none": "default",
    },
    # bitsets: 1..2**32-1; None: match any
    "bitset": {
        **{
            k: ("exc", "ValueError", "bitset")
            for k in ("neg", "big", "huge", "neg_huge", "index_huge")
        },
        "none": "default",
    },
    # timeouts: seconds; negative: expired; beyond ~31.7 million years: forever
    "timeout": {
        "neg": 0,
        "big": float(1 << 32),
        "huge": math.inf,
        "neg_huge": 0,
        "index_huge": math.inf,
        "float": 1.5,
        "none": "default",
        "nan": ("exc", "ValueError", "NaN"),
    },
    # private=: any truth value; None: the Word's default
    "private": {
        "neg": True,
        "big": True,
        "huge": True,
        "neg_huge": True,
        "index_huge": True,
        "float": True,
        "str": True,
        "nan": True,
        "none": "default",
    },
    # registers of the raw entries: any int, modulo 2**64
    "reg": {
        "neg": (1 << 64) - 1,
        "big": 1 << 32,
        "huge": 0,
        "neg_huge": 0,
        "index_huge": 0,
    },
    # Word(buffer, offset): a Py_ssize_t in range
    "offset": {
        "neg": ("exc", "ValueError", "out of range"),
        "big": ("exc", "ValueError", "out of range"),
        "huge": ("exc", "OverflowError", ""),
        "neg_huge": ("exc", "OverflowError", ""),
        "index_huge": ("exc", "OverflowError", ""),
    },
    # Word(..., private=): truth value ("p")
    "ctor_private": {
        "neg": True,
        "big": True,
        "huge": True,
        "neg_huge": True,
        "index_huge": True,
        "float": True,
        "str": True,
        "nan": True,
        "none": False,
    },
}

WAITERS_RULES: dict[str, Expect] = {
    "gen_release": ("exc", "ValueError", "waiter 0: the Word is released"),
    "gen_raises": BOOM,
    "not_iterable": ("exc", "TypeError", "iterable"),
    "list_pair": ("exc", "TypeError", r"\(Word, expected\)"),
    "short_pair": ("exc", "TypeError", r"\(Word, expected\)"),
    "empty": ("exc", "ValueError", "1 to 128"),
    "too_many": ("exc", "ValueError", "1 to 128"),
}


def expectation(method: Method, slot: Slot, kind: str) -> Expect:
    """What the call must do with this kind of argument in this slot."""
    if slot.kind == "waiters":
        return WAITERS_RULES[kind]
    if slot.kind == "word":
        if kind == "not_word":
            return ("exc", "TypeError", "Word")
        return ("exc", "ValueError", "released")
    if slot.kind == "name":
        if kind == "bad_name":
            return ("exc", "ValueError", "not a shared memory name")
        return ("exc", "TypeError", "name must be a str")
    if kind.startswith("release"):
        if method.name == "waitv":  # a later pair's word may be found released on the way
            return ("exc", "ValueError", r"waiter \d: the Word (is|was) released")
        return ("int",) if slot.kind == "reg" else RELEASED
    if kind == "close":
        # under a live Word the mmap refuses; before any Word, the constructor sees it closed
        return ("exc", "ValueError", "closed") if not method.words else ("exc", "BufferError", "")
    if kind in ("resize", "mremap"):
        return ("same", slot.base) if not method.words else ("exc", "BufferError", "")
    if kind == "delete":
        return ("same", slot.base)
    if kind == "raises":
        return BOOM
    if kind == "bad_return":
        return TYPE_ERROR
    rule = VALUE_RULES.get(slot.kind, {}).get(kind)
    if rule is None:
        if slot.kind == "small":
            value = VALUES[kind]
            if isinstance(value, int) and kind != "index_huge":
                return (
                    ("same", value)
                    if slot.lo <= value <= slot.hi
                    else ("exc", "ValueError", "must be in")
                )
            if kind == "index_huge":
                return ("exc", "ValueError", "must be in")
        return TYPE_ERROR  # float, None, str, NaN where an int is required
    if rule == "default":
        return ("same", slot.default)
    if isinstance(rule, tuple):
        return rule
    return ("same", rule)


def kinds_for(method: Method, slot: Slot) -> list[str]:
    if slot.kind == "waiters":
        return WAITERS_KINDS
    if slot.kind == "word":
        return ["not_word", "released_word"]
    if slot.kind == "name":
        return list(NAME_VALUES)
    if slot.kind == "offset" and method.name == "attach":
        return ["raises", "bad_return", *VALUES]
    kinds = (
        list(HOSTILE)
        if method.words
        else ["close", "resize", "mremap", "delete", "raises", "bad_return"]
    )
    if method.other:
        kinds += OTHER_HOSTILE
    return kinds + list(VALUES)


NAME_VALUES = {"none": None, "int": 5, "bad_name": "a/b"}


def cases_for(method: Method) -> tuple[list[dict[str, Any]], dict[str, Expect]]:
    cases, expect = [], {}
    for slot in method.slots:
        for kind in kinds_for(method, slot):
            want = expectation(method, slot, kind)
            case_id = f"{method.id} {'/'.join(map(str, slot.path[1:]))} {kind}"
            if slot.kind == "name":
                planted, value = "plain", NAME_VALUES[kind]
            elif kind in VALUES and kind != "index_huge":
                planted, value = "plain", VALUES[kind]
            else:
                planted, value = kind, slot.base
            source = (
                "bytearray"
                if kind in ("resize", "release_resize", "delete", "release_delete")
                else "mmap"
            )
            cases.append(
                {
                    "id": case_id,
                    "method": method.name,
                    "args": method.args,
                    "kwargs": method.kwargs,
                    "path": list(slot.path),
                    "kind": planted,
                    "value": value,
                    "ref": [want[1]] if want[0] == "same" else None,
                    "source": source,
                    "words": method.words,
                    "setup": method.setup,
                }
            )
            expect[case_id] = want
    return cases, expect


def check(report: dict[str, Any] | None, want: Expect) -> str | None:
    """None if the report meets the expectation, else what is wrong."""
    if report is None:
        return "no report"
    out = report["out"]
    if want[0] == "exc":
        _, name, pattern = want
        if "exc" not in out:
            return f"returned {out['ok']!r}, wanted {name}"
        if out["exc"] != name:
            return f"raised {out['exc']}: {out['msg']}, wanted {name}"
        if not re.search(pattern, out["msg"]):
            return f"{name} says {out['msg']!r}, wanted /{pattern}/"
        return None
    if want[0] == "int":
        if "ok" not in out or not isinstance(out["ok"], int):
            return f"wanted an int, got {out}"
        return None
    if (out, report["state"]) != (report["ref"], report["ref_state"]):
        return (
            f"got {out} with words {report['state']}, but the plain value gives "
            f"{report['ref']} with words {report['ref_state']}"
        )
    return None


@pytest.mark.parametrize("method", METHODS, ids=[m.id for m in METHODS])
def test_hostile_arguments_get_a_precise_exception_or_the_plain_values_result(
    method: Method,
) -> None:
    """Every argument of the method, every hostile kind: a conversion that releases
    the Word (and unmaps or frees its memory) gives ValueError instead of a segfault or
    a write to freed memory; one that closes or resizes the live buffer gives the
    refusal's BufferError; one that raises keeps its exception; out-of-range and
    wrong-type values get the documented error or the documented meaning."""
    cases, expect = cases_for(method)
    reports, problems = run_child(cases)
    for case_id, want in expect.items():
        wrong = check(reports.get(case_id), want)
        if wrong is not None:
            problems.append(f"{case_id}: {wrong}")
    assert not problems, "\n".join(problems)


def _one(method: str, slot_kind: str, path: tuple[Any, ...], kind: str) -> dict[str, Any]:
    m = next(x for x in METHODS if x.id == method)
    slot = next(s for s in m.slots if s.path == path and s.kind == slot_kind)
    cases, _ = cases_for(
        Method(m.name, m.args, [slot], m.kwargs, m.label, m.words, m.other, m.setup)
    )
    reports, problems = run_child([c for c in cases if c["id"].endswith(" " + kind)])
    assert not problems, problems
    (report,) = reports.values()
    return report


def test_store_whose_index_releases_the_word_raises_value_error_not_sigsegv() -> None:
    """The issue's reproducer: Word(bytearray(4)).store(obj), obj.__index__ calling
    w.release() and returning 1, read the freed address (NULL) and crashed."""
    code = textwrap.dedent(
        """
        from futex.native import Word
        w = Word(bytearray(4))
        class I:
            def __index__(self):
                w.release()
                return 1
        try:
            w.store(I())
        except ValueError as e:
            print(e)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert "store(): the Word was released while the arguments were converted" in proc.stdout


def test_timeout_whose_conversion_raises_keeps_its_own_exception() -> None:
    """A timeout's __float__ that raised used to be replaced by a TypeError."""
    report = _one("wait", "timeout", ("args", 1), "raises")
    assert report["out"] == {"exc": "Boom", "msg": "boom"}


def test_int_timeout_too_big_for_a_float_means_forever() -> None:
    """timeout=2**100 (beyond a C long long) is "forever", like inf; a huge negative one
    has expired.  Neither is an OverflowError."""
    for kind in ("huge", "neg_huge"):
        report = _one("lock_pi", "timeout", ("args", 0), kind)
        assert report["out"] == report["ref"] == {"ok": True}


def test_waitv_expected_that_releases_an_earlier_word_is_refused() -> None:
    """waitv read each word's address before converting the later pairs' expected
    values; a conversion that released (and unmapped) an earlier word left a stale
    address for the kernel and for the value check."""
    report = _one("waitv", "u32", ("args", 0, 1, 2), "release_close")
    assert report["out"]["exc"] == "ValueError"
    assert (
        "waiter 0: the Word was released while the arguments were converted" in report["out"]["msg"]
    )


def test_requeue_count_that_releases_the_other_word_is_refused() -> None:
    report = _one("requeue", "count", ("args", 1), "release_other_close")
    assert report["out"]["exc"] == "ValueError"
    assert "the other Word was released" in report["out"]["msg"]


def test_attach_refuses_a_name_that_is_not_a_str() -> None:
    report = _one("attach", "name", ("args", 0), "none")
    assert report["out"]["exc"] == "TypeError" and "name must be a str" in report["out"]["msg"]


def test_every_method_of_word_is_covered() -> None:
    """A new method must get its hostile cases here."""
    covered = {m.name for m in METHODS}
    public = {
        n for n in dir(native.Word) if not n.startswith("_") and callable(getattr(native.Word, n))
    }
    no_arguments = {"load", "release"}
    assert public - no_arguments - covered == set()
