"""The C extension's copies of the futex uapi equal the Python ones.

``futex/native/_native.h`` spells the kernel values the extension uses (``#define NF_*``,
so that old uapi headers still build), and ``_wordcalls.c`` checks and encodes
FUTEX_WAKE_OP's operation with literal field widths and ranges.  On the Python side the one
source is :mod:`futex.uapi`; :mod:`futex.native.abi` and :mod:`futex.linux.abi` name its
values.  :func:`problems` parses the C sources into a table (every object-like ``NF_``
define, the ``nf_waitv`` layout, the WAKE_OP literals) and compares it with the Python
values: a value that differs, a uapi define that goes missing or is defined twice, or a new
``NF_`` define that is neither a kernel value nor one of the extension's own fails.  The
mutation tests feed deliberately altered C text through the same comparison to show that
each kind of drift is caught.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

import pytest

from futex import uapi
from futex.linux import abi as linux_abi

#: The extension's C sources (read as text: no build needed).
NATIVE_SRC = Path(__file__).resolve().parents[2] / "src" / "futex" / "native"
HEADER = "_native.h"

INT_MAX = 2**31 - 1

#: Each NF_ define that is a kernel value: the :mod:`futex.uapi` name it copies (None:
#: INT_MAX, the largest count) and its :mod:`futex.native.abi` name.
UAPI_DEFINES: dict[str, tuple[str | None, str]] = {
    "NF_WAIT": ("FUTEX_WAIT", "FUTEX_WAIT"),
    "NF_WAKE": ("FUTEX_WAKE", "FUTEX_WAKE"),
    "NF_REQUEUE": ("FUTEX_REQUEUE", "FUTEX_REQUEUE"),
    "NF_CMP_REQUEUE": ("FUTEX_CMP_REQUEUE", "FUTEX_CMP_REQUEUE"),
    "NF_WAKE_OP": ("FUTEX_WAKE_OP", "FUTEX_WAKE_OP"),
    "NF_LOCK_PI": ("FUTEX_LOCK_PI", "FUTEX_LOCK_PI"),
    "NF_UNLOCK_PI": ("FUTEX_UNLOCK_PI", "FUTEX_UNLOCK_PI"),
    "NF_TRYLOCK_PI": ("FUTEX_TRYLOCK_PI", "FUTEX_TRYLOCK_PI"),
    "NF_WAIT_BITSET": ("FUTEX_WAIT_BITSET", "FUTEX_WAIT_BITSET"),
    "NF_WAKE_BITSET": ("FUTEX_WAKE_BITSET", "FUTEX_WAKE_BITSET"),
    "NF_WAIT_REQUEUE_PI": ("FUTEX_WAIT_REQUEUE_PI", "FUTEX_WAIT_REQUEUE_PI"),
    "NF_LOCK_PI2": ("FUTEX_LOCK_PI2", "FUTEX_LOCK_PI2"),
    "NF_PRIVATE": ("FUTEX_PRIVATE_FLAG", "FUTEX_PRIVATE_FLAG"),
    "NF_CLOCK_REALTIME": ("FUTEX_CLOCK_REALTIME", "FUTEX_CLOCK_REALTIME"),
    "NF_BITSET_ANY": ("FUTEX_BITSET_MATCH_ANY", "BITSET_MATCH_ANY"),
    "NF_INT_MAX": (None, "ALL"),
    "NF_WAITV_MAX": ("FUTEX_WAITV_MAX", "WAITV_MAX"),
    "NF_FUTEX2_SIZE_U32": ("FUTEX2_SIZE_U32", "FUTEX2_SIZE_U32"),
    "NF_SYS_futex_waitv": ("SYS_futex_waitv", "SYS_futex_waitv"),
    "NF_SYS_futex_wake": ("SYS_futex_wake", "SYS_futex_wake"),
    "NF_SYS_futex_wait": ("SYS_futex_wait", "SYS_futex_wait"),
    "NF_SYS_futex_requeue": ("SYS_futex_requeue", "SYS_futex_requeue"),
}

#: NF_ defines that are the extension's own, not kernel values.
OWN_DEFINES = frozenset({"NF_RAISED", "NF_PI_SLICE_NS", "NF_MAXARGS", "NF_TIMEOUT_FOREVER"})


def expected_defines() -> dict[str, int]:
    """What each uapi NF_ define must be, from the Python side."""
    table = {c: INT_MAX if name is None else getattr(uapi, name)
             for c, (name, _) in UAPI_DEFINES.items()}
    # The command bits below the flags: the C classifies ``op & NF_CMD_MASK``.
    table["NF_CMD_MASK"] = uapi.FUTEX_PRIVATE_FLAG - 1
    return table


# FUTEX_WAKE_OP's fields, read off the Python encoder: op and cmp take 4 bits, oparg and
# cmparg 12 (signed).
_OP_FIELD = uapi.FUTEX_OP(-1, 0, 0, 0) >> 28
_ARG_BITS = uapi.FUTEX_OP(0, 0, 0, -1).bit_length()
_ARG_RANGE = (-(1 << (_ARG_BITS - 1)), (1 << (_ARG_BITS - 1)) - 1)

#: Kernel values the C sources spell as literals: a pattern whose groups are the values,
#: and what they must be (every occurrence; at least one).
LITERALS: list[tuple[str, tuple[int, ...]]] = [
    (r'"op", (-?\d+), (-?\d+)', (0, _OP_FIELD)),
    (r'"cmp", (-?\d+), (-?\d+)', (uapi.FUTEX_OP_CMP_EQ, uapi.FUTEX_OP_CMP_GE)),
    (r'"oparg", (-?\d+), (-?\d+)', _ARG_RANGE),
    (r'"cmparg", (-?\d+), (-?\d+)', _ARG_RANGE),
    (r"\(op & (\d+)\) > (\d+)", (uapi.FUTEX_OP_OPARG_SHIFT - 1, uapi.FUTEX_OP_XOR)),
    (r"op & (\d+) \?", (uapi.FUTEX_OP_OPARG_SHIFT,)),
    (r"1 to (\d+) of them", (uapi.FUTEX_WAITV_MAX,)),  # waitv's docstring
]

_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(NF_\w+)[ \t]+(.*?)[ \t]*(?:/\*.*)?$", re.M)
_INT = re.compile(r"(-?)(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*")
_WAITV = re.compile(r"typedef struct \{([^}]*)\} nf_waitv;")
_FIELD = re.compile(r"uint(8|16|32|64)_t (\w+);")
_ENCODED = re.compile(r"uint32_t encoded = ([^;]*);")


def read_sources() -> dict[str, str]:
    """The extension's C sources by file name."""
    paths = sorted([*NATIVE_SRC.glob("*.h"), *NATIVE_SRC.glob("*.c")])
    assert any(p.name == HEADER for p in paths), f"no {HEADER} in {NATIVE_SRC}"
    return {p.name: p.read_text() for p in paths}


def c_int(text: str) -> int | None:
    """An integer literal (parenthesized, with u/l suffixes), or None for anything else."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    m = _INT.fullmatch(text)
    return None if m is None else int(m[1] + m[2], 0 if m[2].lower().startswith("0x") else 10)


def parse_defines(sources: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The object-like NF_ defines (name -> value text), and the names defined twice."""
    defines: dict[str, str] = {}
    twice = []
    for text in sources.values():
        for name, value in _DEFINE.findall(text):
            if name in defines:
                twice.append(name)
            defines[name] = value
    return defines, twice


def problems(sources: dict[str, str]) -> list[str]:
    """Every way the C sources disagree with the Python values (empty: they agree)."""
    out: list[str] = []
    defines, twice = parse_defines(sources)
    out += [f"{name} is defined twice" for name in twice]
    for name, want in expected_defines().items():
        if name not in defines:
            out.append(f"{name} is missing from the C sources")
        elif c_int(defines[name]) != want:
            out.append(f"{name} is {defines[name]} in C, {want:#x} in Python")
    out += [
        f"{name} is a new NF_ define: list it as a kernel value or as the extension's own"
        for name in sorted(defines.keys() - expected_defines().keys() - OWN_DEFINES)
    ]
    code = "\n".join(sources.values())
    for pattern, want in LITERALS:
        found = [tuple(int(g) for g in m.groups()) for m in re.finditer(pattern, code)]
        if not found:
            out.append(f"no {pattern!r} in the C sources")
        out += [f"{pattern!r} reads {got} in C, {want} in Python" for got in found if got != want]
    out += _waitv_problems(code) + _encoding_problems(code)
    return out


def _waitv_problems(code: str) -> list[str]:
    m = _WAITV.search(code)
    if m is None:
        return ["no nf_waitv struct in the C sources"]
    fields = _FIELD.findall(m[1])
    size = sum(int(bits) // 8 for bits, _ in fields)
    shape = [int(bits) for bits, _ in fields]
    if size != uapi.FUTEX_WAITV_SIZE or shape != [64, 64, 32, 32]:
        return [f"nf_waitv is {fields} ({size} bytes), struct futex_waitv is u64 val, "
                f"u64 uaddr, u32 flags, u32 __reserved ({uapi.FUTEX_WAITV_SIZE} bytes)"]
    return []


def _encoding_problems(code: str) -> list[str]:
    """The C's FUTEX_WAKE_OP encoding, evaluated, against :func:`futex.uapi.FUTEX_OP`."""
    m = _ENCODED.search(code)
    if m is None:
        return ["no FUTEX_WAKE_OP encoding (uint32_t encoded = ...) in the C sources"]
    expr = "(" + m[1].replace("(uint32_t)", "") + ")"  # over several lines
    if not re.fullmatch(r"[\s()|&<>0-9a-fA-Fx]*", re.sub(r"\b(?:op|cmp|oparg|cmparg)\b", "", expr)):
        return [f"the FUTEX_WAKE_OP encoding is not plain bit arithmetic: {m[1]}"]
    out = []
    for op, oparg, cmp, cmparg in [(1, 5, 0, 7), (4 | 8, 31, 5, -2048), (2, -1, 3, 2047)]:
        env = {"op": op, "oparg": oparg, "cmp": cmp, "cmparg": cmparg}
        got = eval(expr, {"__builtins__": {}}, env) & 0xFFFFFFFF
        want = uapi.FUTEX_OP(op, oparg, cmp, cmparg)
        if got != want:
            out.append(f"FUTEX_WAKE_OP{(op, oparg, cmp, cmparg)} encodes as {got:#x} in C, "
                       f"{want:#x} in Python")
    return out


# -- the sources agree ------------------------------------------------------------------------


def test_c_sources_agree_with_the_python_uapi() -> None:
    assert problems(read_sources()) == []


def test_every_uapi_define_is_parsed_as_an_integer() -> None:
    defines, _ = parse_defines(read_sources())
    assert {name: c_int(defines[name]) for name in UAPI_DEFINES} == {
        name: expected_defines()[name] for name in UAPI_DEFINES
    }


def test_native_abi_names_the_same_values() -> None:
    native = pytest.importorskip("futex.native", reason="futex.native unavailable")
    want = expected_defines()
    assert {n: getattr(native.abi, n) for _, n in UAPI_DEFINES.values()} == {
        n: want[c] for c, (_, n) in UAPI_DEFINES.items()
    }


def test_linux_abi_names_the_same_values() -> None:
    names = [name for name, _ in UAPI_DEFINES.values() if name is not None]
    assert {n: getattr(linux_abi, n) for n in names} == {n: getattr(uapi, n) for n in names}
    args = (uapi.FUTEX_OP_OR | uapi.FUTEX_OP_OPARG_SHIFT, 3, uapi.FUTEX_OP_CMP_GT, -1)
    assert linux_abi.FUTEX_OP(*args) == uapi.FUTEX_OP(*args)


def test_host_syscall_numbers_equal_the_emulated_x86_64_ones() -> None:
    native = pytest.importorskip("futex.native", reason="futex.native unavailable")
    if platform.machine() != "x86_64":
        pytest.skip("futex.linux.abi has x86-64's system call numbers")
    assert native.SYS_futex == linux_abi.SYS_futex


# -- and a deliberately altered source is caught ---------------------------------------------


def _altered(name: str, old: str, new: str) -> dict[str, str]:
    sources = read_sources()
    assert sources[name].count(old) == 1, f"{old!r} not once in {name}"
    sources[name] = sources[name].replace(old, new)
    return sources


def _define_line(name: str) -> str:
    m = re.search(rf"^#define {name}[ \t]+\S+", read_sources()[HEADER], re.M)
    assert m is not None, name
    return m[0]


@pytest.mark.parametrize("name", sorted(expected_defines()))
def test_an_altered_define_is_caught(name: str) -> None:
    line = _define_line(name)
    value = c_int(line.split()[-1])
    assert value is not None
    found = problems(_altered(HEADER, line, f"#define {name} {value + 1}"))
    assert found == [f"{name} is {value + 1} in C, {expected_defines()[name]:#x} in Python"]


def test_a_missing_define_is_caught() -> None:
    found = problems(_altered(HEADER, _define_line("NF_LOCK_PI2") + "\n", ""))
    assert found == ["NF_LOCK_PI2 is missing from the C sources"]


def test_a_define_written_twice_is_caught() -> None:
    line = _define_line("NF_WAKE_OP")
    found = problems(_altered(HEADER, line, f"{line}\n#define NF_WAKE_OP 6"))
    assert "NF_WAKE_OP is defined twice" in found


def test_a_new_unlisted_define_is_caught() -> None:
    line = _define_line("NF_LOCK_PI2")
    found = problems(_altered(HEADER, line, f"{line}\n#define NF_CMP_REQUEUE_PI 12"))
    assert found == [
        "NF_CMP_REQUEUE_PI is a new NF_ define: list it as a kernel value or as the "
        "extension's own"
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"cmp", 0, 5', '"cmp", 0, 6'),
        ("(op & 7) > 4", "(op & 7) > 5"),
        ("op & 8 ?", "op & 4 ?"),
        ("1 to 128 of them", "1 to 64 of them"),
    ],
)
def test_an_altered_literal_is_caught(old: str, new: str) -> None:
    name = next(n for n, text in read_sources().items() if old in text)
    found = problems(_altered(name, old, new))
    assert len(found) == 1 and "in C" in found[0], found


def test_an_altered_wake_op_encoding_is_caught() -> None:
    found = problems(_altered("_wordcalls.c", "(uint32_t)cmp << 24", "(uint32_t)cmp << 20"))
    assert found and all("encodes as" in p for p in found), found


def test_an_altered_waitv_layout_is_caught() -> None:
    found = problems(_altered(HEADER, "uint32_t flags;", "uint64_t flags;"))
    assert len(found) == 1 and found[0].startswith("nf_waitv is"), found
