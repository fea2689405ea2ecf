"""Fixtures of the futex.sync tests (the environments live in :mod:`tests.sync.harness`).

- ``env``: an :class:`~tests.sync.harness.Env` for each of {native, emulated} kernel x
  {threads, processes} workers (ids ``native-threads`` ...): the generic bodies of
  issue 13 take it and run four times.
- ``kernel_env``: the same on each kernel with thread workers only, for bodies where the
  kind of worker does not matter.
- ``process_env``: each kernel with process workers only (races between processes).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync.harness import ENVS, KERNELS, Env, open_env


@pytest.fixture(params=ENVS, ids=[f"{k}-{c}" for k, c in ENVS])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    kernel, kind = request.param
    with open_env(kernel, kind) as e:
        yield e


@pytest.fixture(params=KERNELS)
def kernel_env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with open_env(request.param, "threads") as e:
        yield e


@pytest.fixture(params=KERNELS)
def process_env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with open_env(request.param, "processes") as e:
        yield e
