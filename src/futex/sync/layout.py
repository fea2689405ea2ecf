"""The common shape of every futex.sync primitive: a 16-byte header, then its words.

Header (little-endian; every primitive starts 8-aligned, 64 recommended):

====  =====  ==================================================================
off   type   field
====  =====  ==================================================================
0     u32    init word: 0 uninitialised; a TID: being initialised by that thread;
             :data:`COMPLETE` (0x3FFFFFFF, never a TID) once initialised
4     4s     magic ``b"FXSY"``
8     u16    version (:data:`VERSION`)
10    u16    type code (:data:`TYPES`)
12    u32    flags (per type)
====  =====  ==================================================================

``create`` claims the init word with a compare-and-swap (0 → its TID), writes the
fields, then the header, then stores COMPLETE and wakes whoever waits in ``attach``;
so two processes racing ``create_or_attach`` on fresh zeroed memory initialise it once.
``attach`` validates the header and names the field that is wrong.

:class:`Primitive` is the base of every primitive: the constructors (``X()`` with its
own shared memory, ``X.create``, ``X.attach``, ``X.create_or_attach``), pickling by
shared memory name, ``close()``.
"""

from __future__ import annotations

import contextlib
import os
import struct
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, Final, TypeVar

from futex.sync.errors import LayoutError
from futex.sync.region import NativeRegion, Region

__all__ = [
    "COMPLETE",
    "HEADER_SIZE",
    "MAGIC",
    "TYPES",
    "VERSION",
    "Primitive",
    "make_region",
    "native_class",
]

MAGIC: Final = b"FXSY"
VERSION: Final = 1
COMPLETE: Final = 0x3FFF_FFFF
HEADER_SIZE: Final = 16
_HEADER: Final = struct.Struct("<I4sHHI")
#: Type codes of the header.
TYPES: Final = {
    1: "Mutex",
    2: "RLock",
    3: "Condition",
    4: "Semaphore",
    5: "BoundedSemaphore",
    6: "RWLock",
    7: "Barrier",
    8: "Event",
    9: "Once",
}
_INIT_WAIT: Final = 2.0  # seconds attach waits for a creator that is initialising

P = TypeVar("P", bound="Primitive")


def make_region(buffer: Any, offset: int, size: int) -> Region:
    """The region for ``size`` bytes at ``offset`` of ``buffer`` (a writable buffer, a
    shared memory name, or a :class:`futex.sync.emulated.Memory`)."""
    from futex.sync.emulated import EmulatedRegion, Memory

    if isinstance(buffer, Memory):
        return EmulatedRegion(buffer, offset, size)
    return NativeRegion(buffer, offset, size)


def _cleanup(region: Region, shm: Any, creator: int) -> None:
    region.close()
    try:
        shm.close()
    except BufferError:  # pragma: no cover - a Word of the user's still exports it
        return
    if os.getpid() == creator:
        with contextlib.suppress(FileNotFoundError):
            shm.unlink()


def _reattach(cls: type[P], name: str, offset: int) -> P:
    return cls.attach(name, offset)


class Primitive:
    """Base of the futex.sync primitives (see the module docstring)."""

    #: Header type code.
    TYPE: ClassVar[int] = 0
    #: Bytes the primitive occupies in memory.
    SIZE: ClassVar[int] = HEADER_SIZE
    _region: Region
    _shm: Any = None

    # -- construction ---------------------------------------------------------------

    def __new__(cls: type[P], *args: Any, **opts: Any) -> P:
        """A primitive in shared memory of its own (like ``multiprocessing.Lock()``):
        it passes to child processes by fork or by pickling, and the memory is
        unlinked when this object is collected."""
        from multiprocessing.shared_memory import SharedMemory

        shm = SharedMemory(create=True, size=cls.SIZE)
        try:
            region = NativeRegion(shm, 0, cls.SIZE)
            obj = cls._build(region)
            obj._shm = shm
            weakref.finalize(obj, _cleanup, region, shm, os.getpid())
            obj._initialise(*args, **opts)
        except BaseException:
            shm.close()
            shm.unlink()
            raise
        return obj

    def __init__(self, *args: Any, **opts: Any) -> None:
        """See ``__new__``: the arguments are the primitive's options."""

    @classmethod
    def _impl(cls, region: Region) -> type[Primitive]:
        """The class to instantiate on ``region`` (a native fast path may take over)."""
        return cls

    @classmethod
    def _build(cls: type[P], region: Region) -> P:
        impl = cls._impl(region)
        obj: P = impl._raw_new(impl)
        obj._region = region
        obj._bind()
        return obj

    @staticmethod
    def _raw_new(cls: type[Any]) -> Any:
        return object.__new__(cls)

    def _bind(self) -> None:
        """Set up per-object state once the region is known (subclasses extend)."""

    @classmethod
    def create(cls: type[P], buffer: Any, offset: int = 0, *args: Any, **opts: Any) -> P:
        """Initialise the primitive at ``offset`` of ``buffer`` (zeroed memory or memory
        never used for a primitive); LayoutError if one is already there."""
        region = make_region(buffer, offset, cls.SIZE)
        try:
            obj = cls._build(region)
            if not obj._claim():
                raise LayoutError(
                    f"{region.describe()} is already initialised "
                    f"({obj._what_is_there()}): use {cls.__name__}.attach"
                )
            obj._initialise(*args, **opts)
        except BaseException:
            region.close()
            raise
        return obj

    @classmethod
    def attach(cls: type[P], buffer: Any, offset: int = 0) -> P:
        """The primitive already initialised at ``offset`` of ``buffer`` (or of the shared
        memory object named ``buffer``); LayoutError naming the field that is wrong."""
        region = make_region(buffer, offset, cls.SIZE)
        try:
            obj = cls._build(region)
            obj._validate()
        except BaseException:
            region.close()
            raise
        return obj

    @classmethod
    def create_or_attach(cls: type[P], buffer: Any, offset: int = 0, *args: Any,
                         **opts: Any) -> P:
        """Initialise the primitive unless it is there already (then attach): safe for
        processes that race to set up the same memory."""
        region = make_region(buffer, offset, cls.SIZE)
        try:
            obj = cls._build(region)
            if obj._claim() or obj._validate(rerun=True):
                obj._initialise(*args, **opts)
        except BaseException:
            region.close()
            raise
        return obj

    # -- the header -----------------------------------------------------------------

    def _claim(self) -> bool:
        """Take the init word (0 → this thread's TID) and note this process's pid where
        the magic goes, so that a waiter can tell a creator that died initialising."""
        r = self._region
        own = r.owner()
        if r.word(0).cas(0, own.tid) != 0:
            return False
        r.set_u32(4, own.pid)
        return True

    def _reclaim_from_dead(self, init: int) -> bool:
        """The creator (TID ``init``) died initialising: take the init word over."""
        r = self._region
        own = r.owner()
        pid = r.u32(4)
        if pid == 0 or own.alive(pid, init, 0):  # pid 0: not written yet, so alive
            return False
        if r.word(0).cas(init, own.tid) != init:
            return False
        r.set_u32(4, own.pid)
        return True

    def _initialise(self, *args: Any, **opts: Any) -> None:
        """Write the fields (the caller has claimed the init word), then the header."""
        r = self._region
        word = r.word(0)
        try:
            r.write(8, bytes(r.size - 8))  # +4 keeps the creator's pid until the magic
            self._init_fields(*args, **opts)
        except BaseException:  # a bad option: leave the memory as it was found
            r.write(4, bytes(4))
            word.store(0)
            word.wake(0x7FFF_FFFF)
            raise
        r.write(4, _HEADER.pack(0, MAGIC, VERSION, self.TYPE, self._flags())[4:])
        word.store(COMPLETE)
        word.wake(0x7FFF_FFFF)

    def _init_fields(self) -> None:
        """Write the primitive's initial fields (subclasses with options override)."""

    def _flags(self) -> int:
        return 0

    def _what_is_there(self) -> str:
        init, magic, version, kind, _ = _HEADER.unpack(self._region.read(0, HEADER_SIZE))
        if magic == MAGIC and init == COMPLETE:
            return f"a {TYPES.get(kind, f'type {kind}')}, version {version}"
        return f"init word {init:#x}, not a zeroed region"

    def _validate(self, rerun: bool = False) -> bool:
        """Check the header; True when ``rerun`` and the creator died initialising, so
        that this caller took the init word over and must initialise."""
        r = self._region
        init = r.word(0).load()
        if init not in (0, COMPLETE):  # a creator is initialising it: wait for it
            deadline = r.monotonic() + _INIT_WAIT
            while init not in (0, COMPLETE):
                if rerun and self._reclaim_from_dead(init):
                    return True
                left = deadline - r.monotonic()
                if left <= 0:
                    raise LayoutError(
                        f"{r.describe()} is being initialised by thread {init} and did not "
                        f"complete within {_INIT_WAIT} s (create_or_attach takes over from "
                        "a creator that died)"
                    )
                r.word(0).wait(init, min(left, 0.05))
                init = r.word(0).load()
        _, magic, version, kind, _ = _HEADER.unpack(r.read(0, HEADER_SIZE))
        name = self._public().__name__
        if init == 0 or magic != MAGIC:
            raise LayoutError(
                f"no futex.sync primitive at {r.describe()}: magic {magic!r}, "
                f"expected {MAGIC!r} (create it first)"
            )
        if version != VERSION:
            raise LayoutError(
                f"the primitive at {r.describe()} has layout version {version}; this "
                f"futex.sync reads version {VERSION}"
            )
        if kind != self.TYPE:
            raise LayoutError(
                f"the primitive at {r.describe()} is a "
                f"{TYPES.get(kind, f'primitive of unknown type {kind}')}, not a {name}"
            )
        self._check_flags(_HEADER.unpack(r.read(0, HEADER_SIZE))[4])
        return False

    def _check_flags(self, flags: int) -> None:
        """Adopt or check the header flags on attach (subclasses override)."""

    # -- sharing and lifetime -------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        where = self._region.reduce()
        if where is None:
            raise TypeError(
                f"cannot pickle a {self._public().__name__} on {self._region.describe()}: only "
                "one in a multiprocessing.shared_memory.SharedMemory (or attached by name, "
                "or made with no buffer) pickles; across os.fork, inherit it instead"
            )
        return (_reattach, (self._public(), *where))

    @classmethod
    def _public(cls) -> type[Primitive]:
        """The public class (not a native subclass) for pickling and messages."""
        for k in cls.__mro__:
            if k.__module__.startswith("futex.sync.") and not k.__name__.startswith("_"):
                return k
        return cls

    @property
    def name(self) -> str | None:
        """The shared memory name to attach to from another process, or None."""
        where = self._region.reduce()
        return None if where is None else str(where[0])

    @property
    def offset(self) -> int:
        return int(getattr(self._region, "offset", 0))

    def close(self) -> None:
        """Let go of the memory: later calls raise ValueError."""
        self._region.close()

    @property
    def closed(self) -> bool:
        return self._region.closed

    def __repr__(self) -> str:
        state = "closed" if self._region.closed else self._region.describe()
        return f"<futex.sync.{self._public().__name__} {state}>"


_native_classes: dict[type[Any], type[Any]] = {}


def native_class(
    cls: type[Primitive], core_name: str, core_args: Callable[[Any], tuple[Any, ...]]
) -> type[Primitive]:
    """``cls`` with the C core ``futex.native._native.<core_name>`` in front (its methods
    take over; the Python methods stay the reference: ``Mutex.acquire(m)`` runs them on
    the same memory), or ``cls`` itself when the extension has no such core.

    The subclass is made once per ``cls``: its ``_bind`` runs ``cls._bind``, then the
    core's ``__init__`` with ``core_args(obj)`` (the words it drives and its options)."""
    impl = _native_classes.get(cls)
    if impl is None:
        from futex.native import _native

        core: Any = getattr(_native, core_name, None)
        if core is None:
            return cls

        def __init__(self: Any, *args: Any, **opts: Any) -> None:
            pass

        def _bind(self: Any) -> None:
            cls._bind(self)
            core.__init__(self, *core_args(self))

        impl = type(f"_Native{cls.__name__}", (core, cls), {
            "__init__": __init__,
            "_bind": _bind,
            "_raw_new": staticmethod(core.__new__),
            "__module__": cls.__module__,
            "__doc__": cls.__doc__,
        })
        _native_classes[cls] = impl
    return impl
