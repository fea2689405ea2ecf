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
"""

from __future__ import annotations

import os
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


@dataclass(frozen=True)
class Snippet:
    line: int
    """The line of README.md the ```python fence is on."""
    code: str
    expected: str | None
    """The ```text block right after it, or None."""


def snippets(text: str) -> list[Snippet]:
    """The ```python blocks of ``text``, each with the ```text block following it."""
    lines = text.splitlines()
    blocks: list[tuple[int, int, str, str]] = []  # (first line, end line, language, body)
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


SNIPPETS = snippets(README.read_text(encoding="utf-8"))


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


def test_the_readme_has_its_snippets() -> None:
    """The parser finds them (a README reshuffle must not silently test nothing)."""
    assert len(SNIPPETS) >= 5
    firsts = [s.code.splitlines()[0] for s in SNIPPETS]
    assert "import threading" in firsts
    assert sum(s.expected is not None for s in SNIPPETS) >= 4


def test_the_parser() -> None:
    text = (
        "intro\n```python\nprint(1)\n```\n\n```text\n1\n```\n"
        "```sh\nls\n```\n```python\npass\n```\ntext between\n```text\nnot its output\n```\n"
    )
    assert snippets(text) == [
        Snippet(2, "print(1)\n", "1\n"),
        Snippet(12, "pass\n", None),
    ]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"README.md:{s.line}" for s in SNIPPETS])
def test_snippet_runs_as_written(snippet: Snippet, tmp_path: Path) -> None:
    _skip_unless_runnable(snippet.code)
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
