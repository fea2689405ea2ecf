"""What the checker tells its user: the failure report, the success certificate, JSON.

A failure report (:func:`text`) has five parts, in this order:

1. the verdict and how it was found — ``LOST WAKEUP after 1 schedule (0.00 s, dfs
   <=0 preemptions, seed 0)``;
2. the stuck task and why (the engine's message) — ``W2 sleeps forever in FUTEX_WAIT on
   sem (queued at 0, now 1); other tasks finished; no timer pending``;
3. the minimal trace as a table: step, task, operation, result, the words after the step,
   the tasks queued on each word;
4. the switches, as deviations from the default order ("run the current task until it
   blocks, then the lowest-numbered runnable one, except: preempt W->S after step 3");
5. the replay string, and the command that replays it in one run.

A success report says what was proved: the certificate of an exhausted DFS bound
("complete for <= 2 preemptions, <= 2000 steps: 1244 schedules"), or how many schedules
passed when the budget ran out first.

:func:`as_dict` gives the same as plain data (``--json``).  :func:`show` prints a report,
with rich tables when rich is installed and the output is a terminal, plain text
otherwise (rich is optional).

The functions read the explore :class:`~futex.check.exploring.Result` and the engine's
``Outcome`` by attribute, so a replayed ``Outcome`` alone (``--replay``) is reported too
(:func:`outcome_text`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

__all__ = ["as_dict", "as_json", "outcome_text", "show", "table_rows", "text"]

COLUMNS = ("step", "task", "operation", "result", "words after", "waiters")
POLICY = "run the current task until it blocks, then the lowest-numbered runnable one"


# -- pieces ----------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _words(words: Mapping[str, int]) -> str:
    from futex.check.trace import format_value

    return " ".join(f"{k}={format_value(v)}" for k, v in words.items())


def _waiters(waiters: Mapping[str, Sequence[str]]) -> str:
    queued = [f"{k}: {', '.join(v)}" for k, v in waiters.items() if v]
    return "; ".join(queued) if queued else "-"


def table_rows(trace: Iterable[Any]) -> list[tuple[str, ...]]:
    """The trace as rows of :data:`COLUMNS` (strings)."""
    rows: list[tuple[str, ...]] = []
    for s in trace:
        rows.append((str(s.step), str(s.task), str(s.operation), str(s.result),
                     _words(s.words), _waiters(s.waiters)))
    return rows


def _table(rows: Sequence[Sequence[str]], header: Sequence[str] = COLUMNS) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    right = {0}  # the step number

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w)
               for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(out).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _schedule(deviations: Sequence[str]) -> str:
    if not deviations:
        return f"{POLICY}, without exception"
    return f"{POLICY}, except: {', '.join(deviations)}"


def _kind(kind: str) -> str:
    return kind.upper().replace("-", " ")


def _replay_command(target: str | None, replay: str) -> str:
    where = target if target is not None else "<file.py:scenario>"
    return f"python -m futex check {where} --replay {replay}"


# -- text ------------------------------------------------------------------------------------


def text(result: Any, *, target: str | None = None) -> str:
    """The report of an explore ``Result`` as plain text (``target``: how the CLI names
    the scenario, for the replay command)."""
    if result.failure is None:
        return _success_text(result)
    f = result.failure
    lines = [result.summary(), f"  scenario {result.scenario}: {f.message}", ""]
    lines += _trace_part(f, result)
    lines += ["", "schedule: " + _schedule(result.deviations)]
    if result.replay:
        lines += [f"replay:   {result.replay}",
                  f"          {_replay_command(target, result.replay)}"]
    return "\n".join(lines)


def _trace_part(f: Any, result: Any | None) -> list[str]:
    steps = int(getattr(f, "steps", len(f.trace)))
    pre = int(getattr(f, "preemptions", 0))
    head = f"minimal trace: {_plural(steps, 'step')}, {_plural(pre, 'preemption')}"
    original = getattr(result, "original", None) if result is not None else None
    if result is not None and original is not None and original is not f:
        head += (f" (first found: {_plural(int(original.steps), 'step')}, "
                 f"{_plural(int(getattr(original, 'preemptions', 0)), 'preemption')}; "
                 f"minimized in {_plural(int(result.minimize_runs), 'run')})")
    return [head, *("  " + row for row in _table(table_rows(f.trace)))]


def _success_text(result: Any) -> str:
    lines = [result.summary()]
    lines.append(f"  scenario {result.scenario}: no failure in "
                 f"{_plural(int(result.schedules), 'schedule')} ({result.strategy})")
    if result.complete:
        lines.append(f"  certificate: {result.certificate}")
    elif not str(result.strategy).startswith(("dfs", "portfolio")):
        lines.append("  (a randomized strategy: no bound to exhaust, no certificate)")
    else:
        why = {"schedules": "the schedule budget", "seconds": "the time budget"}.get(
            result.stopped, result.stopped)
        lines.append(f"  not complete: {why} ran out before the bound was exhausted")
        if result.certificate:
            lines.append(f"  proved so far: {result.certificate}")
    return "\n".join(lines)


def outcome_text(outcome: Any, *, scenario: str, replay: str | None = None,
                 target: str | None = None) -> str:
    """The report of one replayed ``Outcome`` (``--replay``): its verdict, trace, string."""
    kind = str(outcome.kind)
    if kind == "ok":
        head = f"OK: the replayed schedule passes ({_plural(int(outcome.steps), 'step')})"
        return f"{head}\n  scenario {scenario}"
    lines = [f"{_kind(kind)} on replay (1 schedule)", f"  scenario {scenario}: {outcome.message}",
             ""]
    lines += _trace_part(outcome, None)
    if replay:
        lines += ["", f"replay:   {replay}", f"          {_replay_command(target, replay)}"]
    return "\n".join(lines)


# -- data ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` as JSON data (anything else as its repr)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return repr(value)


def _outcome_dict(f: Any) -> dict[str, Any]:
    return {
        "kind": str(f.kind),
        "message": str(f.message),
        "steps": int(f.steps),
        "preemptions": int(getattr(f, "preemptions", 0)),
        "ops_digest": str(getattr(f, "ops_digest", "")),
        "results": _plain(dict(getattr(f, "results", {}) or {})),
        "trace": [dict(zip(COLUMNS[:4], row[:4], strict=True))
                  | {"words": _plain(s.words), "waiters": _plain(s.waiters)}
                  for s, row in zip(f.trace, table_rows(f.trace), strict=True)],
    }


def as_dict(result: Any) -> dict[str, Any]:
    """The report as plain data: the verdict, how it was found, the failure (kind,
    message, trace), the deviations, the replay string; or the certificate."""
    out: dict[str, Any] = {
        "scenario": result.scenario,
        "ok": bool(result.ok),
        "summary": result.summary(),
        "strategy": result.strategy,
        "seed": result.seed,
        "schedules": result.schedules,
        "elapsed": round(float(result.elapsed), 6),
        "stopped": result.stopped,
        "complete": bool(result.complete),
        "certificate": result.certificate,
    }
    if result.failure is not None:
        out |= {
            "found_by": result.found_by,
            "failure": _outcome_dict(result.failure),
            "deviations": list(result.deviations),
            "schedule": _schedule(result.deviations),
            "replay": result.replay,
            "minimize_runs": result.minimize_runs,
            "minimize_seconds": round(float(result.minimize_seconds), 6),
        }
    return out


def outcome_dict(outcome: Any, *, scenario: str, replay: str | None = None) -> dict[str, Any]:
    """A replayed ``Outcome`` as plain data."""
    return {"scenario": scenario, "ok": str(outcome.kind) == "ok", "replay": replay,
            "failure": None if str(outcome.kind) == "ok" else _outcome_dict(outcome)}


def as_json(result: Any) -> str:
    return json.dumps(as_dict(result), indent=2)


# -- printing --------------------------------------------------------------------------------


def rich_console(file: TextIO | None = None) -> Any:
    """A rich Console for ``file`` when rich is installed and ``file`` is a terminal."""
    file = file if file is not None else sys.stdout
    try:
        isatty = file.isatty()
    except (AttributeError, ValueError):
        isatty = False
    if not isatty:
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(file=file, highlight=False)


def show(result: Any, *, target: str | None = None, file: TextIO | None = None,
         plain: bool = False) -> None:
    """Print the report of ``result``: rich tables on a terminal with rich, else text
    (``plain``: text anyway)."""
    file = file if file is not None else sys.stdout
    console = None if plain else rich_console(file)
    if console is None or result.failure is None:
        print(text(result, target=target), file=file, flush=True)
        return
    _show_rich(result, console, target)


def _show_rich(result: Any, console: Any, target: str | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    f = result.failure
    console.print(f"[bold red]{escape(result.summary())}[/]")
    console.print(f"  scenario [bold]{escape(result.scenario)}[/]: {escape(str(f.message))}")
    head = _trace_part(f, result)[0]
    table = Table(title=head, title_justify="left", show_lines=False)
    for col in COLUMNS:
        table.add_column(col, justify="right" if col == "step" else "left",
                         no_wrap=col in ("step", "task"))
    for row in table_rows(f.trace):
        table.add_row(*(escape(c) for c in row))
    console.print(table)
    console.print("schedule: " + escape(_schedule(result.deviations)))
    if result.replay:
        console.print(f"replay:   [bold]{escape(result.replay)}[/]")
        console.print("          " + escape(_replay_command(target, result.replay)))
