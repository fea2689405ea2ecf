"""The child interpreter tests/native/test_native_hostile.py runs its cases in: ``CHILD`` (the
script: builds each hostile argument, makes the call, reports one JSON line per case, and
for cases that must succeed the reference call's outcome too) and :func:`run_child`, which
runs a batch and starts a fresh child after a case that killed one (naming that case).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

#: Generous bound on one child (a few hundred cases take well under a second).
CHILD_TIMEOUT = 120.0


# -- the child: runs cases, one JSON line per case ---------------------------------------

CHILD = textwrap.dedent(
    r"""
    import gc, json, mmap, sys
    from multiprocessing import shared_memory
    import futex.native as native
    from futex.native import Word, waitv

    class Boom(Exception):
        pass

    class Env:
        '''Fresh memory for one call: the word w (offset 0 of its own buffer) and the
        other word o (an mmap of its own), unless the case wants no Words.'''

        def __init__(self, source, words):
            self.src = {
                "w": bytearray(4096) if source == "bytearray" else mmap.mmap(-1, 4096),
                "o": mmap.mmap(-1, 4096),
            }
            self.w = Word(self.src["w"]) if words else None
            self.o = Word(self.src["o"]) if words else None
            self.released = Word(bytearray(8))
            self.released.release()

        def state(self):
            '''The words' values after the call (through the Word while it is live: its
            buffer may have no other reference left); none without Words.'''
            out = []
            for word, key in ((self.w, "w"), (self.o, "o")):
                if word is None:
                    return []
                buf = self.src.get(key)
                if not word.released:
                    out.append(word.load())
                elif buf is None or getattr(buf, "closed", False):
                    out.append(None)
                else:
                    out.append(int.from_bytes(buf[0:4], sys.byteorder))
            return out

        def close(self):
            for word in (self.w, self.o):
                if word is not None:
                    word.release()
            for buf in self.src.values():
                if isinstance(buf, mmap.mmap):
                    buf.close()

    def act(env, kind):
        if kind == "raises":
            raise Boom("boom")
        if kind.startswith("release_other"):
            env.o.release()
            if kind == "release_other_close":
                env.src["o"].close()
            return
        if kind.startswith("release"):
            env.w.release()
        if kind in ("close", "release_close"):
            env.src["w"].close()
        elif kind in ("resize", "release_resize"):
            env.src["w"].extend(bytes(65536))
        elif kind in ("mremap", "release_mremap"):
            env.src["w"].resize(1 << 20)  # may move the mapping
        elif kind in ("delete", "release_delete"):
            env.src["w"] = None  # the last reference but the Word's, if any
            gc.collect()

    class Hostile:
        '''Runs its action in every conversion, then returns the value (or, for
        bad_return, something that is not what the protocol wants).'''

        def __init__(self, env, kind, value):
            self.env, self.kind, self.value = env, kind, value

        def __index__(self):
            act(self.env, self.kind)
            return "x" if self.kind == "bad_return" else int(self.value)

        def __float__(self):
            act(self.env, self.kind)
            return "x" if self.kind == "bad_return" else float(self.value)

        def __bool__(self):
            act(self.env, self.kind)
            return "x" if self.kind == "bad_return" else bool(self.value)

    class Idx:
        '''Only __index__ (no __float__, no __bool__): a plain index-able object.'''

        def __init__(self, value):
            self.value = value

        def __index__(self):
            return self.value

    SHM = []  # made on first use (attach): a child that crashes leaves none behind

    def shm_name():
        if not SHM:
            SHM.append(shared_memory.SharedMemory(create=True, size=4096))
        return SHM[0].name

    def waiters(env, kind):
        if kind == "gen_release":
            def gen():
                yield (env.w, 1)
                env.w.release()
                env.src["w"].close()
                yield (env.o, 0)
            return gen()
        if kind == "gen_raises":
            def gen():
                yield (env.w, 1)
                raise Boom("boom")
            return gen()
        return {
            "not_iterable": 5,
            "list_pair": [[env.w, 1]],
            "short_pair": [(env.w,)],
            "empty": [],
            "too_many": [(env.w, 1)] * 129,
        }[kind]

    def resolve(env, x):
        '''Tokens ("$w", ...) become objects; "$tuple" lists stay lists until freeze.'''
        if isinstance(x, list):
            return [resolve(env, y) for y in x]
        if isinstance(x, dict):
            return {k: resolve(env, v) for k, v in x.items()}
        if isinstance(x, str) and x.startswith("$"):
            if x == "$tuple":
                return x
            return {
                "$w": lambda: env.w,
                "$o": lambda: env.o,
                "$w.address": lambda: env.w.address,
                "$src_w": lambda: env.src["w"],
                "$released": lambda: env.released,
                "$SYS_futex": lambda: native.SYS_futex,
                "$shm_name": shm_name,
            }[x]()
        return x

    def replace(tree, path, value):
        node = tree
        for step in path[:-1]:
            node = node[step]
        if isinstance(node, tuple):
            raise AssertionError("paths go through lists, not tuples")
        node[path[-1]] = value

    def plant(env, call, path, kind, value):
        '''Put the hostile (or plain) value at path; tuples are built after.'''
        value = resolve(env, value)
        if kind == "plain":
            obj = value
        elif kind in ("gen_release", "gen_raises", "not_iterable", "list_pair",
                      "short_pair", "empty", "too_many"):
            obj = waiters(env, kind)
        elif kind == "not_word":
            obj = 5
        elif kind == "released_word":
            obj = env.released
        elif kind == "index_huge":
            obj = Idx(2**100)
        else:
            obj = Hostile(env, kind, value)
        replace(call, path, obj)

    def freeze(x):
        if isinstance(x, list) and x and x[0] == "$tuple":
            return tuple(freeze(y) for y in x[1:])
        if isinstance(x, list):
            return [freeze(y) for y in x]
        if isinstance(x, dict):
            return {k: freeze(v) for k, v in x.items()}
        return x

    def encode(result):
        if isinstance(result, Word):
            out = {"word": result.offset, "private": result.private, "value": result.load()}
            result.release()
            return out
        return result

    def run(case, kind, value):
        env = Env(case["source"], case["words"])
        try:
            call = {"args": resolve(env, case["args"]), "kwargs": resolve(env, case["kwargs"])}
            # waitv's pairs: a list [w, e] marked "$tuple" becomes a tuple after planting
            plant(env, call, case["path"], kind, value)
            call = freeze(call)
            if case["setup"] == "lock":
                assert env.w.lock_pi() is True
            target = {
                "waitv": waitv,
                "syscall_futex": native.syscall_futex,
                "syscall6": native.syscall6,
                "Word": Word,
                "attach": Word.attach,
            }.get(case["method"]) or getattr(env.w, case["method"])
            try:
                out = {"ok": encode(target(*call["args"], **call["kwargs"]))}
            except Exception as e:
                out = {"exc": type(e).__name__, "msg": str(e)}
            return out, env.state()
        finally:
            try:
                env.close()
            except Exception:
                pass

    cases = json.load(sys.stdin)
    try:
        for case in cases:
            print(json.dumps({"start": case["id"]}), flush=True)
            out, state = run(case, case["kind"], case["value"])
            line = {"id": case["id"], "out": out, "state": state}
            if case["ref"] is not None:
                line["ref"], line["ref_state"] = run(case, "plain", case["ref"][0])
            print(json.dumps(line), flush=True)
    finally:
        for shm in SHM:
            shm.close()
            shm.unlink()
    """
)


def _run_batch(cases: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], str | None, str]:
    """One child over the cases: its reports, the case it died in (if it did), and
    what went wrong (empty if nothing)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    reports: dict[str, dict[str, Any]] = {}
    running = None
    try:
        proc = subprocess.run(
            [sys.executable, "-X", "faulthandler", "-c", CHILD],
            input=json.dumps(cases),
            capture_output=True,
            text=True,
            env=env,
            timeout=CHILD_TIMEOUT,
        )
        stdout, returncode, stderr = proc.stdout, proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        stdout = out.decode() if isinstance(out, bytes) else out
        returncode, stderr = None, ""
    for line in stdout.splitlines():
        data = json.loads(line)
        if "start" in data:
            running = data["start"]
        else:
            reports[data["id"]] = data
            running = None
    if returncode is None:
        return reports, running, f"hung (no answer in {CHILD_TIMEOUT:.0f} s)"
    if returncode < 0:
        return reports, running, f"killed by {signal.Signals(-returncode).name}: {stderr[-1500:]}"
    if returncode != 0:
        return reports, running, f"exit status {returncode}: {stderr[-1500:]}"
    return reports, None, ""


def run_child(cases: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Run the cases in fresh interpreters: the reports by id, and the problems (each
    case a child died in, by name; the cases after it run in a new child)."""
    reports: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    todo = list(cases)
    while todo:
        got, died_in, wrong = _run_batch(todo)
        reports.update(got)
        if not wrong:
            break
        problems.append(f"{died_in or 'the child'}: the child died, {wrong}")
        ids = [c["id"] for c in todo]
        if died_in not in ids:
            break
        todo = todo[ids.index(died_in) + 1 :]
    return reports, problems
