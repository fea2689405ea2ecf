"""The guest corpus under Qiling (issue 14, point 3): real glibc / libstdc++ synchronization
in static x86-64 programs, each compared with its own native run.

Each program in ``guests/`` checks itself and prints only deterministic lines; its header
comment names the upstream behaviour it pins (a glibc function and its man page, an LTP
case, a kernel source path). For each program the test

1. runs it natively: it must exit 0 (else the guest is wrong on this host, not Qiling);
2. runs it under ``install(ql)`` through ``python -m futex.integrations.qiling.run``
   (a subprocess, so a hang is bounded): it must exit 0 with the native run's lines;
3. runs it under stock Qiling (``--stock``, the baseline, not a spec) at the same time
   and records the outcome -- pass / wrong output / exit N / deadlock / crash / hang --
   without asserting on it; ``conftest.py`` prints the program x {stock, install} table.

Runner exit statuses (``futex.integrations.qiling.run``): the guest's own, 70 when Qiling
reports a deadlock (gevent's LoopExit), 71 when the emulator raised.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integrations.qiling.conftest import GUESTS, PROGRAMS, Corpus

RUNNER = "futex.integrations.qiling.run"
NATIVE_TIMEOUT = 60.0
#: Under install(ql) a guest takes 1-3 s here; generous for a loaded CI machine.
INSTALL_TIMEOUT = 120.0
#: Stock Qiling either finishes within about 2 s here or never (a guest thread spinning
#: on a futex answer that never comes): past this it is a "hang".
STOCK_TIMEOUT = 10.0
DEADLOCK, EMULATOR_CRASH = 70, 71


@dataclass
class Run:
    status: int | None  # None: killed at its timeout
    out: str
    err: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def _start(argv: list[str]) -> subprocess.Popen[str]:
    # its own session, so a timeout kills the runner and anything it started
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen[str], started: float, timeout: float) -> Run:
    remaining = max(0.0, started + timeout - time.monotonic())
    try:
        out, err = proc.communicate(timeout=remaining)
        status: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        status = None
    return Run(status, out, err, time.monotonic() - started)


def _first_difference(got: list[str], want: list[str]) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"line {i + 1}: {g!r}, native {w!r}"
    if len(got) < len(want):
        return f"ends after {len(got)} lines, native has {len(want)}"
    return f"{len(got) - len(want)} more lines than native: {got[len(want)]!r}"


def outcome(run: Run, native: Run) -> tuple[str, str]:
    """(the table's word for ``run`` against the native run, a one-line detail)."""
    fail = next((ln for ln in run.lines if ln.startswith("FAIL")), "")
    if run.status is None:
        return "hang", fail or f"killed after {run.seconds:.0f} s"
    if run.status == DEADLOCK:
        return "deadlock", fail or "Qiling: every guest thread waits for good"
    if run.status == EMULATOR_CRASH:
        err = [ln for ln in run.err.splitlines() if ln.strip()]
        return "crash", err[-1].strip() if err else "emulator raised"
    if run.status != 0:
        return f"exit {run.status}", fail
    if run.lines != native.lines:
        return "wrong output", _first_difference(run.lines, native.lines)
    return "pass", ""


def _pins(name: str) -> str:
    """The guest's 'Pins:' sentence from its header comment."""
    src = GUESTS / f"{name}.c"
    if not src.exists():
        src = GUESTS / f"{name}.cpp"
    text = src.read_text()
    m = re.search(r"Pins:(.*?)(?:\*/|\n\s*\n|\n#)", text, re.S)
    return " ".join(re.sub(r"^\s*(//|\*)", "", m.group(1), flags=re.M).split()) if m else ""


def _report(err: str) -> list[str]:
    return [ln[len("futex: ") :] for ln in err.splitlines() if ln.startswith("futex: ")]


@pytest.mark.parametrize("name", PROGRAMS)
def test_guest_matches_native_under_install(
    name: str, corpus: Corpus, corpus_table: dict[str, dict[str, Any]]
) -> None:
    """The guest exits 0 under install(ql) and prints exactly its native lines (the
    behaviour each guest pins is named in its header comment, shown on failure)."""
    binary = corpus.binary(name)
    started = time.monotonic()
    native = _finish(_start([str(binary)]), started, NATIVE_TIMEOUT)
    assert native.status == 0, (
        f"{name} fails natively (status {native.status}): the guest is wrong on this host\n"
        f"{native.out}{native.err}"
    )
    runner = [sys.executable, "-m", RUNNER]
    rootfs = str(corpus.rootfs)
    # both emulated runs at once (two cores): each is waited for on its own thread, so
    # each run's time is its own
    started = time.monotonic()
    install_proc = _start([*runner, "--report", rootfs, str(binary)])
    stock_proc = _start([*runner, "--stock", rootfs, str(binary)])
    with ThreadPoolExecutor(max_workers=2) as pool:
        stock_f = pool.submit(_finish, stock_proc, started, STOCK_TIMEOUT)
        install_f = pool.submit(_finish, install_proc, started, INSTALL_TIMEOUT)
        stock, install = stock_f.result(), install_f.result()

    stock_word, stock_detail = outcome(stock, native)
    install_word, install_detail = outcome(install, native)
    corpus_table[name] = {
        "native": "pass",
        "stock": stock_word,
        "install": install_word,
        "detail": {"stock": stock_detail, "install": install_detail},
        "seconds": {
            "native": round(native.seconds, 2),
            "stock": round(stock.seconds, 2),
            "install": round(install.seconds, 2),
        },
        "report": _report(install.err),
        "pins": _pins(name),
    }
    assert install_word == "pass", (
        f"{name} under install(ql): {install_word} ({install_detail})\n"
        f"pins: {_pins(name)}\n"
        f"--- native stdout\n{native.out}--- install stdout\n{install.out}"
        f"--- install stderr (tail)\n{install.err[-3000:]}"
    )


def test_every_guest_names_what_it_pins() -> None:
    """Each guest's header comment says which upstream behaviour it pins."""
    missing = [name for name in PROGRAMS if not _pins(name)]
    assert not missing, f"guests without a 'Pins:' line: {missing}"
    assert len(PROGRAMS) >= 20, PROGRAMS


def test_outcome_words() -> None:
    """The table's words for the runner's statuses (70 deadlock, 71 crash, killed hang)."""
    native = Run(0, "a\nb\n", "", 0.1)
    assert outcome(Run(0, "a\nb\n", "", 1), native) == ("pass", "")
    assert outcome(Run(0, "a\nc\n", "", 1), native)[0] == "wrong output"
    assert outcome(Run(1, "a\nFAIL 3: x\n", "", 1), native) == ("exit 1", "FAIL 3: x")
    assert outcome(Run(DEADLOCK, "a\n", "", 1), native)[0] == "deadlock"
    assert outcome(Run(EMULATOR_CRASH, "", "Traceback\nKeyError: 449\n", 1), native) == (
        "crash",
        "KeyError: 449",
    )
    assert outcome(Run(None, "", "", 15), native)[0] == "hang"
