"""Decoding written once: register truncation and sign extension as a C prototype does
them, and the answer a personality gives for each error of the core.

No ABI here: a personality names its registers and widths (:class:`RegisterLayout`) and
its codes (the fields of its :class:`~futex.kernel.policy.FutexPolicy`); its own
``decode`` module adds what only it has (timespecs, tick conversions, argument layouts).

Registers arrive as Python ints of any size and are cut to the C type of the argument:
``u32``/``u64`` keep the low bits, ``s32``/``s64`` then read the top bit as a sign (so
``-1`` as an ``unsigned int`` is ``0xFFFFFFFF`` and ``0xFFFFFFFF`` as an ``int`` is
``-1``).  Anything that is not an int raises ``TypeError`` naming the argument.

The error ladder (:func:`error_code`):

=====================  ================================  ==============================
core error             policy field                      Linux / Zircon / LiteOS-A
=====================  ================================  ==============================
``MisalignedAddress``  ``misaligned``                    EINVAL / INVALID_ARGS / EINVAL
``MemoryFault``        ``fault``                         EFAULT / INVALID_ARGS / EINVAL
``ValueMismatch``      ``value_mismatch``                EAGAIN / BAD_STATE / EBADF
``PiWaiterConflict``   ``pi_conflict``                   EINVAL / - / -
=====================  ================================  ==============================

A field that is ``None`` (or an error not in the table) re-raises the error: the kernel
has no answer for it there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn

from futex.kernel.errors import (
    FutexError,
    MemoryFault,
    MisalignedAddress,
    PiWaiterConflict,
    ValueMismatch,
)

if TYPE_CHECKING:
    from futex.kernel.policy import FutexPolicy

__all__ = [
    "U32_MASK",
    "U64_MASK",
    "RegisterLayout",
    "Width",
    "error_code",
    "s32",
    "s64",
    "sign_extend",
    "u32",
    "u64",
]

U32_MASK: Final = 0xFFFFFFFF
U64_MASK: Final = 0xFFFFFFFFFFFFFFFF

#: A C argument type: unsigned or signed, 32 or 64 bits.
Width = Literal["u32", "s32", "u64", "s64"]

_BITS: dict[str, int] = {"u32": 32, "s32": 32, "u64": 64, "s64": 64}


def u32(v: int) -> int:
    """``(u32)v``."""
    return v & U32_MASK


def u64(v: int) -> int:
    """``(u64)v``."""
    return v & U64_MASK


def s32(v: int) -> int:
    """``(int)v``: the low 32 bits, two's complement."""
    v &= U32_MASK
    return v - (1 << 32) if v & 0x80000000 else v


def s64(v: int) -> int:
    """``(s64)v``: the low 64 bits, two's complement."""
    v &= U64_MASK
    return v - (1 << 64) if v >> 63 else v


def sign_extend(v: int, bits: int) -> int:
    """``v`` (already ``bits`` wide) read as a signed ``bits``-bit number."""
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


class RegisterLayout:
    """The register arguments of one call: their names and C types, in order.

    ``decode(*values)`` truncates them all at once and returns them as a tuple; a value
    that is not an int raises ``TypeError`` naming it, as ``"{what} {name} must be an int,
    got {type}: {value!r}"``.  The hot paths call it on every system call, so it is
    compiled once per layout into a plain function of the arguments (one expression per
    register, as the C prototype's casts would be written by hand).
    """

    __slots__ = ("_names", "decode", "what")

    def __init__(self, what: str, **fields: Width) -> None:
        #: How the error message names an argument: ``"futex register"``.
        self.what = what
        self._names = tuple(fields)
        for name, width in fields.items():
            if not name.isidentifier() or width not in _BITS:
                raise ValueError(f"bad register {name!r}: {width!r}")
        #: ``decode(*values) -> tuple[int, ...]``: the arguments truncated to their types.
        self.decode: Callable[..., tuple[int, ...]] = _compile(fields, self.reject)

    def __repr__(self) -> str:
        return f"<RegisterLayout {self.what}: {', '.join(self._names)}>"

    def reject(self, values: Sequence[object]) -> NoReturn:
        """Raise the ``TypeError`` for the first of ``values`` that is not an int."""
        for name, value in zip(self._names, values, strict=True):
            if not isinstance(value, int):
                raise TypeError(
                    f"{self.what} {name} must be an int, got {type(value).__name__}: {value!r}"
                )
        raise TypeError(f"{self.what}s must be ints")


def _compile(
    fields: dict[str, Width], reject: Callable[[Sequence[object]], NoReturn]
) -> Callable[..., tuple[int, ...]]:
    """``def decode(a, b, ...): return (a & MASK, s32(b), ...)``, a ``TypeError`` handed
    to ``reject``."""
    args = ", ".join(fields)
    casts = {"u32": "{} & 0xFFFFFFFF", "u64": "{} & 0xFFFFFFFFFFFFFFFF",
             "s32": "s32({})", "s64": "s64({})"}  # fmt: skip
    body = ", ".join(casts[w].format(name) for name, w in fields.items())
    source = (
        f"def decode({args}):\n"
        f"    try:\n"
        f"        return ({body},)\n"
        f"    except TypeError:\n"
        f"        reject(({args},))\n"
    )
    namespace: dict[str, Any] = {"s32": s32, "s64": s64, "reject": reject}
    exec(source, namespace)  # built from the identifiers checked in __init__
    decode: Callable[..., tuple[int, ...]] = namespace["decode"]
    return decode


def error_code(exc: FutexError, policy: FutexPolicy) -> int:
    """The personality's answer to ``exc`` (see the module table); re-raises ``exc``
    when the policy has none."""
    code: int | None
    if isinstance(exc, MisalignedAddress):
        code = policy.misaligned
    elif isinstance(exc, MemoryFault):
        code = policy.fault
    elif isinstance(exc, ValueMismatch):
        code = policy.value_mismatch
    elif isinstance(exc, PiWaiterConflict):
        code = policy.pi_conflict
    else:
        code = None
    if code is None:
        raise exc
    return code
