"""Futex keys: what makes two futex words "the same futex".

Three kinds, as Linux ``get_futex_key`` and gVisor ``futex.Key`` have them:

========================  ==================================  ==============================
kind                      made for                            matches
========================  ==================================  ==============================
``PRIVATE``               an op with the private flag          the same address, same manager
``SHARED_PRIVATE``        a shared op on a MAP_PRIVATE page    the same address, same address
                                                              space (``FUT_OFF_MMSHARED``)
``SHARED_MAPPABLE``       a shared op on MAP_SHARED / a file   the same (object, offset), in
                                                              any process
========================  ==================================  ==============================

A private key never matches a shared one, even for the same address.

Keys are plain hashable values so that the hot paths hash and compare them at C speed:
a private key is the address itself (an ``int``; private keys are scoped to one
:class:`~futex.kernel.FutexManager`, which is per address space); a shared-private key is
``(SHARED_PRIVATE_TAG, space, address)``; a mappable key is ``(object, offset)``, where the
object's identity is the file or shared-memory object (Linux: inode + page index).
"""

from __future__ import annotations

import enum
from typing import Any, Final

__all__ = [
    "Key",
    "KeyKind",
    "key_address",
    "key_kind",
    "mappable_key",
    "private_key",
    "shared_private_key",
]

#: A futex key; build it with the constructors below, never by hand.
Key = int | tuple[Any, ...]


class KeyKind(enum.IntEnum):
    PRIVATE = 0
    SHARED_PRIVATE = 1
    SHARED_MAPPABLE = 2


class _SharedPrivateTag:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SHARED_PRIVATE"


SHARED_PRIVATE_TAG: Final = _SharedPrivateTag()


def private_key(addr: int) -> Key:
    """The key of a private futex at ``addr``."""
    return addr


def shared_private_key(space: object, addr: int) -> Key:
    """The key of a shared op on a private mapping of ``space`` at ``addr``."""
    return (SHARED_PRIVATE_TAG, space, addr)


def mappable_key(obj: object, offset: int) -> Key:
    """The key of a shared op on ``obj`` (a file or shared memory object) at ``offset``."""
    return (obj, offset)


def key_kind(key: Key) -> KeyKind:
    """Which of the three kinds ``key`` is."""
    if isinstance(key, int):
        return KeyKind.PRIVATE
    return KeyKind.SHARED_PRIVATE if len(key) == 3 else KeyKind.SHARED_MAPPABLE


def key_address(key: Key) -> int:
    """The address (private kinds) or object offset (mappable) that ``key`` names."""
    if isinstance(key, int):
        return key
    offset: int = key[-1]
    return offset
