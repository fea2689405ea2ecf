"""Generators that run two ways: as Hypothesis strategies (shrinking, the example
database) or straight from a seeded :class:`random.Random` (about twenty times cheaper
per sequence, for the bulk of the differential runs).

One description serves both.  The combinators mirror Hypothesis's (``just``,
``sampled_from``, ``integers``, ``booleans``, ``builds``, ``tuples``, ``lists``,
``permutations``, ``composite``, ``.map``) plus ``weighted``; a composite function takes a
``draw`` and draws from generators with it, whichever way it runs.

>>> pair = tuples(integers(0, 3), sampled_from("ab"))
>>> pair.example(random.Random(1)) == pair.example(random.Random(1))
True
>>> strategy = pair.strategy()  # the Hypothesis strategy, built once
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from hypothesis import strategies as st

__all__ = [
    "Draw",
    "Gen",
    "booleans",
    "builds",
    "composite",
    "integers",
    "just",
    "lists",
    "permutations",
    "sampled_from",
    "tuples",
    "weighted",
]

T = TypeVar("T")
U = TypeVar("U")
T_co = TypeVar("T_co", covariant=True)


class Gen(Generic[T_co]):
    """A generator of values: :meth:`example` draws one from a ``random.Random``;
    :meth:`strategy` is the equivalent Hypothesis strategy (built once)."""

    _strategy: st.SearchStrategy[T_co] | None = None

    def example(self, rng: random.Random) -> T_co:
        raise NotImplementedError

    def build(self) -> st.SearchStrategy[T_co]:
        raise NotImplementedError

    def strategy(self) -> st.SearchStrategy[T_co]:
        if self._strategy is None:
            self._strategy = self.build()
        return self._strategy

    def map(self, fn: Callable[[T_co], U]) -> Gen[U]:
        return _Mapped(self, fn)


class Draw(Protocol):
    """What a composite function draws with."""

    def __call__(self, gen: Gen[T], /) -> T: ...


class _Just(Gen[T]):
    def __init__(self, value: T) -> None:
        self.value = value

    def example(self, rng: random.Random) -> T:
        return self.value

    def build(self) -> st.SearchStrategy[T]:
        return st.just(self.value)


class _Sampled(Gen[T]):
    def __init__(self, values: Sequence[T]) -> None:
        self.values = tuple(values)
        assert self.values, "sampled_from needs values"

    def example(self, rng: random.Random) -> T:
        return self.values[int(rng.random() * len(self.values))]

    def build(self) -> st.SearchStrategy[T]:
        return st.sampled_from(self.values)


class _Integers(Gen[int]):
    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def example(self, rng: random.Random) -> int:
        return rng.randint(self.lo, self.hi)

    def build(self) -> st.SearchStrategy[int]:
        return st.integers(self.lo, self.hi)


class _Booleans(Gen[bool]):
    def example(self, rng: random.Random) -> bool:
        return rng.random() < 0.5

    def build(self) -> st.SearchStrategy[bool]:
        return st.booleans()


class _Mapped(Gen[U], Generic[T, U]):
    def __init__(self, inner: Gen[T], fn: Callable[[T], U]) -> None:
        self.inner, self.fn = inner, fn

    def example(self, rng: random.Random) -> U:
        return self.fn(self.inner.example(rng))

    def build(self) -> st.SearchStrategy[U]:
        return self.inner.strategy().map(self.fn)


class _Weighted(Gen[Any]):
    def __init__(self, choices: Sequence[tuple[int, Gen[Any]]]) -> None:
        self.gens = [g for _, g in choices]
        self.index = [i for i, (w, _) in enumerate(choices) for _ in range(w)]

    def example(self, rng: random.Random) -> Any:
        return self.gens[self.index[int(rng.random() * len(self.index))]].example(rng)

    def build(self) -> st.SearchStrategy[Any]:
        # Hypothesis flattens nested one_of and merges equal branches, so repeating a
        # branch would not weight it: draw the branch's index first.
        strategies = [g.strategy() for g in self.gens]
        return st.sampled_from(self.index).flatmap(lambda i: strategies[i])


class _Builds(Gen[T]):
    def __init__(
        self, fn: Callable[..., T], args: Sequence[Gen[Any]], kwargs: dict[str, Gen[Any]]
    ) -> None:
        self.fn, self.args, self.kwargs = fn, tuple(args), kwargs

    def example(self, rng: random.Random) -> T:
        args = [g.example(rng) for g in self.args]
        kwargs = {k: g.example(rng) for k, g in self.kwargs.items()}
        return self.fn(*args, **kwargs)

    def build(self) -> st.SearchStrategy[T]:
        return st.builds(
            self.fn,
            *(g.strategy() for g in self.args),
            **{k: g.strategy() for k, g in self.kwargs.items()},
        )


class _Lists(Gen[list[T]]):
    def __init__(self, inner: Gen[T], min_size: int, max_size: int) -> None:
        self.inner, self.min_size, self.max_size = inner, min_size, max_size

    def example(self, rng: random.Random) -> list[T]:
        n = rng.randint(self.min_size, self.max_size)
        return [self.inner.example(rng) for _ in range(n)]

    def build(self) -> st.SearchStrategy[list[T]]:
        return st.lists(self.inner.strategy(), min_size=self.min_size, max_size=self.max_size)


class _Permutations(Gen[list[T]]):
    def __init__(self, values: Sequence[T]) -> None:
        self.values = list(values)

    def example(self, rng: random.Random) -> list[T]:
        return rng.sample(self.values, len(self.values))

    def build(self) -> st.SearchStrategy[list[T]]:
        return st.permutations(self.values)


class _Composite(Gen[T]):
    def __init__(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args

    def example(self, rng: random.Random) -> T:
        def draw(gen: Gen[Any]) -> Any:
            return gen.example(rng)

        return self.fn(draw, *self.args)

    def build(self) -> st.SearchStrategy[T]:
        fn, args = self.fn, self.args

        @st.composite
        def strategy(hdraw: st.DrawFn) -> T:
            def draw(gen: Gen[Any]) -> Any:
                return hdraw(gen.strategy())

            return fn(draw, *args)

        return strategy()


def just(value: T) -> Gen[T]:
    return _Just(value)


def sampled_from(values: Sequence[T]) -> Gen[T]:
    """One of ``values``, uniformly (repeats weight a value)."""
    return _Sampled(values)


def integers(lo: int, hi: int) -> Gen[int]:
    return _Integers(lo, hi)


def booleans() -> Gen[bool]:
    return _Booleans()


def weighted(*choices: tuple[int, Gen[Any]]) -> Gen[Any]:
    """One of the generators, picked with the given integer weights."""
    return _Weighted(choices)


def builds(fn: Callable[..., T], *args: Gen[Any], **kwargs: Gen[Any]) -> Gen[T]:
    return _Builds(fn, args, kwargs)


def tuples(*gens: Gen[Any]) -> Gen[tuple[Any, ...]]:
    return _Builds(lambda *xs: xs, gens, {})


def lists(inner: Gen[T], *, min_size: int = 0, max_size: int) -> Gen[list[T]]:
    return _Lists(inner, min_size, max_size)


def permutations(values: Sequence[T]) -> Gen[list[T]]:
    return _Permutations(values)


def composite(fn: Callable[..., T]) -> Callable[..., Gen[T]]:
    """``@composite def f(draw, *args) -> T``: ``f(*args)`` is a generator."""

    def make(*args: Any) -> Gen[T]:
        return _Composite(fn, args)

    make.__name__ = fn.__name__
    make.__doc__ = fn.__doc__
    return make
