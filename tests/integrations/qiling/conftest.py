"""Fixtures of the Qiling guest corpus (issue 14, point 3).

- ``corpus`` (session): every program of ``guests/`` (one ``.c`` or ``.cpp`` file each)
  compiled with ``gcc -static -pthread`` / ``g++ -std=c++20 -static -pthread``, two at a
  time, into a temporary directory that is the guests' rootfs (Qiling runs only binaries
  inside its rootfs directory). Everything skips when ``qiling`` does not import; the C or
  C++ programs skip when the probe compile of that language fails, the reason naming
  what is missing ("no C compiler", "no static libstdc++ (g++ -static failed: ...)").
- ``corpus_table`` (session): each program's outcome natively, under stock Qiling and
  under ``install(ql)``, filled by ``test_corpus.py``; printed as a table at the end of the
  session (``pytest_terminal_summary``) and written as JSON to ``$FUTEX_QILING_TABLE`` when
  that is set -- the table of the issue's note, measured in one run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

GUESTS = Path(__file__).parent / "guests"

#: Every guest program: the stem of each ``.c`` / ``.cpp`` file in ``guests/``.
PROGRAMS: list[str] = sorted(p.stem for p in GUESTS.iterdir() if p.suffix in (".c", ".cpp"))

QILING_MISSING = "qiling is not installed: pip install 'futex[qiling]'"

C_FLAGS = ["-std=gnu11", "-O2", "-Wall", "-static", "-pthread"]
CXX_FLAGS = ["-std=c++20", "-O2", "-Wall", "-static", "-pthread"]

#: What the probe compiles: static linking of the thread library (and of libstdc++ with
#: its <thread> / <semaphore> for C++), the parts every guest needs.
C_PROBE = "#include <pthread.h>\nint main(void) { return pthread_self() == 0; }\n"
CXX_PROBE = (
    "#include <semaphore>\n#include <thread>\n"
    "int main() { std::binary_semaphore s(0); std::thread t([&] { s.release(); });"
    " s.acquire(); t.join(); }\n"
)

COMPILE_TIMEOUT = 300


@dataclass
class Corpus:
    """The compiled guests: ``rootfs`` holds one binary per program that compiled."""

    rootfs: Path
    binaries: dict[str, Path] = field(default_factory=dict)
    #: program -> why it cannot be built here (a missing compiler or static library)
    skipped: dict[str, str] = field(default_factory=dict)
    #: program -> the compiler's complaint (a broken guest: its test fails)
    errors: dict[str, str] = field(default_factory=dict)

    def binary(self, name: str) -> Path:
        if name in self.skipped:
            pytest.skip(self.skipped[name])
        if name in self.errors:
            pytest.fail(f"guest {name} does not compile:\n{self.errors[name]}")
        return self.binaries[name]


def _source(name: str) -> Path:
    c = GUESTS / f"{name}.c"
    return c if c.exists() else GUESTS / f"{name}.cpp"


def _compile(cmd: list[str], src: Path, out: Path) -> str | None:
    """Compile ``src`` to ``out``; the compiler's output on failure, else None."""
    try:
        r = subprocess.run(
            [*cmd, "-o", str(out), str(src)],
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if r.returncode != 0:
        return (r.stderr or r.stdout).strip() or f"exit status {r.returncode}"
    return None


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error" in line or "cannot find" in line or "undefined reference" in line:
            return line.strip()
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else text


def _probe(compiler: str, flags: list[str], probe: str, suffix: str, work: Path) -> str | None:
    """None if ``compiler`` builds a static threaded program here, else the skip reason."""
    cxx = suffix == ".cpp"
    if shutil.which(compiler) is None:
        return f"no C{'++' if cxx else ''} compiler ({compiler} not found)"
    src = work / f"probe{suffix}"
    src.write_text(probe)
    err = _compile([compiler, *flags], src, work / f"probe{suffix}.bin")
    if err is None:
        return None
    lib = "libstdc++" if cxx else "libc/libpthread"
    return f"no static {lib} ({compiler} -static failed: {_first_error(err)})"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    try:
        import qiling  # noqa: F401
    except ImportError:
        pytest.skip(QILING_MISSING)
    except Exception as e:  # e.g. unicorn's shared library missing
        pytest.skip(f"qiling does not import: {type(e).__name__}: {e}")

    machine = platform.machine()
    if machine not in ("x86_64", "AMD64"):
        # the guests are compiled by the host's compiler and compared with their native run
        pytest.skip(
            f"the corpus needs an x86-64 host (the guests futex.integrations.qiling models); "
            f"this one is {machine}"
        )
    work = tmp_path_factory.mktemp("qiling-probe")
    cc = os.environ.get("CC", "gcc")
    cxx = os.environ.get("CXX", "g++")
    langs = {
        ".c": ([cc, *C_FLAGS], _probe(cc, C_FLAGS, C_PROBE, ".c", work)),
        ".cpp": ([cxx, *CXX_FLAGS], _probe(cxx, CXX_FLAGS, CXX_PROBE, ".cpp", work)),
    }
    corpus = Corpus(rootfs=tmp_path_factory.mktemp("qiling-rootfs"))
    jobs: dict[str, tuple[list[str], Path, Path]] = {}
    for name in PROGRAMS:
        src = _source(name)
        cmd, missing = langs[src.suffix]
        if missing is not None:
            corpus.skipped[name] = missing
        else:
            jobs[name] = (cmd, src, corpus.rootfs / name)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = {name: pool.submit(_compile, *job) for name, job in jobs.items()}
        for name, fut in results.items():
            err = fut.result()
            if err is None:
                corpus.binaries[name] = jobs[name][2]
            else:
                corpus.errors[name] = err
    return corpus


# --- the table ------------------------------------------------------------------------

TABLE_KEY = pytest.StashKey[dict[str, dict[str, Any]]]()


@pytest.fixture(scope="session")
def corpus_table(request: pytest.FixtureRequest) -> Iterator[dict[str, dict[str, Any]]]:
    """program -> {"native", "stock", "install": outcome, "detail": {...}, "seconds": {...},
    "report": [...]}, filled by the corpus test, reported at the end of the session."""
    table = request.config.stash.setdefault(TABLE_KEY, {})
    yield table


def _summary(table: dict[str, dict[str, Any]], column: str) -> str:
    counts: dict[str, int] = {}
    for row in table.values():
        counts[row[column]] = counts.get(row[column], 0) + 1
    passed = counts.pop("pass", 0)
    rest = ", ".join(f"{n} {what}" for what, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{column}: {passed}/{len(table)} pass" + (f" ({rest})" if rest else "")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    table = config.stash.get(TABLE_KEY, None)
    if not table:
        return
    tr = terminalreporter
    tr.section("Qiling guest corpus: stock Qiling vs install(ql)")
    width = max(len(n) for n in table) + 2
    tr.write_line(
        f"{'program':<{width}}{'native':<10}{'stock':<16}{'install':<16}"
        f"{'stock s':>8}{'install s':>10}"
    )
    for name in sorted(table):
        row = table[name]
        s = row["seconds"]
        tr.write_line(
            f"{name:<{width}}{row['native']:<10}{row['stock']:<16}{row['install']:<16}"
            f"{s.get('stock', 0.0):>8.1f}{s.get('install', 0.0):>10.1f}"
        )
    stock, install = _summary(table, "stock"), _summary(table, "install")
    tr.write_line(f"{stock}; {install}")
    path = os.environ.get("FUTEX_QILING_TABLE")
    if path:
        import qiling

        doc = {
            "qiling": getattr(qiling, "__version__", "?"),
            "python": sys.version.split()[0],
            "summary": {"stock": stock, "install": install},
            "programs": {name: table[name] for name in sorted(table)},
        }
        Path(path).write_text(json.dumps(doc, indent=2) + "\n")
        tr.write_line(f"table written to {path}")
