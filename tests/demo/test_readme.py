"""The README's Python snippets run as written.

Every ```python block of README.md runs on its own, in a fresh interpreter
(``sys.executable``, importing this checkout's ``futex``), and must exit 0 with nothing on
stderr.  A block that prints is followed in the README by a ```text block (blank lines
between allowed) holding exactly what it prints; the run's stdout must equal it (trailing
whitespace on each line and trailing blank lines aside).  A block with no ```text block
after it must print nothing: output the README does not show is output nobody checks.

A snippet that uses ``futex.native`` (the host's futex(2) through the C extension) skips
off Linux and where the extension does not import, with the reason; one that uses
``os.fork`` skips where there is none.

A snippet that uses ``futex.integrations.qiling`` runs a guest program under Qiling: the
last ```c block before it, built with the README's own command (``GUEST_BUILD``, which
must appear in the README as written) into ``rootfs/prog`` of the snippet's working
directory.  It skips, with the reason, where qiling does not import, where gcc cannot link
a static threaded program (no libc.a: Debian's libc6-dev) or where gcc does not build
x86-64 programs (the only guests the integration models); once the toolchain links a
probe, a README guest that fails to build fails the test.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
#: Generous: a snippet takes well under a second; a hang (a lost wakeup) fails, not blocks.
TIMEOUT = 60.0

_FENCE = re.compile(r"^```(\S*)\s*$")
#: How the README builds the Qiling guest, run in the snippet's working directory with the
#: guest's C source in prog.c (``rootfs`` made first, as the README's ``mkdir -p`` does).
GUEST_BUILD = ("gcc", "-static", "-pthread", "-o", "rootfs/prog", "prog.c")


@dataclass(frozen=True)
class Snippet:
    line: int
    """The line of README.md the ```python fence is on."""
    code: str
    expected: str | None
    """The ```text block right after it, or None."""


def _blocks(text: str) -> list[tuple[int, int, str, str]]:
    """The fenced blocks of ``text``: (fence line, closing line (0-based), language, body)."""
    lines = text.splitlines()
    blocks: list[tuple[int, int, str, str]] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            i += 1
        if i == len(lines):
            raise AssertionError(f"README.md:{start + 1}: unterminated ``` block")
        blocks.append((start, i, m.group(1), "\n".join(lines[start + 1 : i]) + "\n"))
        i += 1
    return blocks


def snippets(text: str) -> list[Snippet]:
    """The ```python blocks of ``text``, each with the ```text block following it."""
    lines = text.splitlines()
    blocks = _blocks(text)
    found = []
    for n, (start, end, lang, body) in enumerate(blocks):
        if lang != "python":
            continue
        expected = None
        if n + 1 < len(blocks):
            nstart, _, nlang, nbody = blocks[n + 1]
            between = lines[end + 1 : nstart]
            if nlang == "text" and all(not line.strip() for line in between):
                expected = nbody
        found.append(Snippet(start + 1, body, expected))
    return found


def guest_source(text: str, line: int) -> str | None:
    """The last ```c block of ``text`` before the fence on ``line`` (1-based), or None."""
    found = [body for start, _, lang, body in _blocks(text) if lang == "c" and start + 1 < line]
    return found[-1] if found else None


README_TEXT = README.read_text(encoding="utf-8")
SNIPPETS = snippets(README_TEXT)
QILING = "futex.integrations.qiling"


def _normalized(out: str) -> list[str]:
    lines = [line.rstrip() for line in out.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _skip_unless_runnable(code: str) -> None:
    if "futex.native" in code:
        if not sys.platform.startswith("linux"):
            pytest.skip(
                f"needs Linux: futex.native calls the host's futex(2) (this is {sys.platform})"
            )
        try:
            import futex.native  # noqa: F401
        except ImportError as exc:
            pytest.skip(f"needs the C extension futex.native, which does not import: {exc}")
    if "os.fork" in code and not hasattr(os, "fork"):
        pytest.skip(f"needs os.fork, which {sys.platform} does not have")
    if QILING in code:
        try:
            import qiling  # noqa: F401
        except ImportError as exc:
            pytest.skip(f"needs qiling (pip install 'futex[qiling]'), which does not import: {exc}")


_PROBE = "#include <pthread.h>\nint main(void) { return pthread_self() == 0; }\n"


def _build_guest(source: str, where: Path) -> None:
    """``source`` built into ``where/rootfs/prog`` by GUEST_BUILD; skips without a toolchain
    that links a static threaded program for x86-64 (probed by building one)."""
    machine = platform.machine()
    if machine not in ("x86_64", "AMD64"):
        pytest.skip(f"needs gcc building x86-64 programs, the guests modelled (host: {machine})")
    probe = where / "probe"
    probe.mkdir()
    (probe / "prog.c").write_text(_PROBE, encoding="utf-8")
    (probe / "rootfs").mkdir()
    try:
        built = subprocess.run(GUEST_BUILD, cwd=probe, capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("needs gcc, which is not on PATH (apt-get install gcc libc6-dev)")
    if built.returncode != 0:
        pytest.skip(
            "needs gcc that links -static -pthread (glibc's libc.a: apt-get install libc6-dev); "
            f"a probe program does not build: {built.stderr.strip()[-300:]}"
        )
    (where / "prog.c").write_text(source, encoding="utf-8")
    (where / "rootfs").mkdir()
    built = subprocess.run(GUEST_BUILD, cwd=where, capture_output=True, text=True)
    assert built.returncode == 0, f"the README's guest does not build:\n{built.stderr}"


def test_the_readme_has_its_snippets() -> None:
    """The parser finds them (a README reshuffle must not silently test nothing)."""
    assert len(SNIPPETS) >= 5
    firsts = [s.code.splitlines()[0] for s in SNIPPETS]
    assert "import threading" in firsts
    assert sum(s.expected is not None for s in SNIPPETS) >= 4
    qiling = [s for s in SNIPPETS if QILING in s.code]
    assert qiling, "the Qiling section's snippet is gone"
    assert all(guest_source(README_TEXT, s.line) for s in qiling), "its ```c guest is gone"
    assert " ".join(GUEST_BUILD) in README_TEXT, "the README builds its guest differently"


def test_the_parser() -> None:
    text = (
        "intro\n```python\nprint(1)\n```\n\n```text\n1\n```\n"
        "```sh\nls\n```\n```python\npass\n```\ntext between\n```text\nnot its output\n```\n"
    )
    assert snippets(text) == [
        Snippet(2, "print(1)\n", "1\n"),
        Snippet(12, "pass\n", None),
    ]
    guest = "```c\nint main(void) {}\n```\n```c\nint x;\n```\n```python\npass\n```\n"
    assert guest_source(guest, 7) == "int x;\n"
    assert guest_source(guest, 4) == "int main(void) {}\n"
    assert guest_source(guest, 1) is None


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"README.md:{s.line}" for s in SNIPPETS])
def test_snippet_runs_as_written(snippet: Snippet, tmp_path: Path) -> None:
    _skip_unless_runnable(snippet.code)
    if QILING in snippet.code:
        source = guest_source(README_TEXT, snippet.line)
        assert source is not None, f"README.md:{snippet.line}: no ```c guest before it"
        _build_guest(source, tmp_path)
    script = tmp_path / f"readme_line_{snippet.line}.py"
    script.write_text(snippet.code, encoding="utf-8")
    # the futex this test imports (this checkout), whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        run = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"README.md:{snippet.line}: still running after {TIMEOUT:g} s; "
            f"stdout so far: {exc.stdout!r}, stderr: {exc.stderr!r}"
        )
    where = f"README.md:{snippet.line}"
    assert run.returncode == 0, f"{where}: exit status {run.returncode}\n{run.stderr}"
    assert run.stderr == "", f"{where}: wrote to stderr:\n{run.stderr}"
    if snippet.expected is None:
        assert run.stdout == "", (
            f"{where}: the snippet prints, but no ```text block after it shows what:\n{run.stdout}"
        )
    else:
        assert _normalized(run.stdout) == _normalized(snippet.expected), (
            f"{where}: the output differs from the ```text block after it"
        )
