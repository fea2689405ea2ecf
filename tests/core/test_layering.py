"""The layering, enforced: code outside the core reaches the futex queues only through the
core's locked-bucket handles, and no package imports itself in a circle.

1. **Bucket and queue internals stay in the core** (issue 12; ``futex.kernel.locked``).
   Every module of ``src/futex`` outside ``futex/kernel`` (the personalities, memory,
   word, native, demo, cli...) is parsed and fails if it touches what only the core may:
   a bucket, its lock, its per-key queues or its counters, a queue's links, the
   manager's ``*_locked`` primitives, ``lock_two`` / ``unlock_two``.  The rules are
   checked against snippets that break each of them, so the guard cannot pass by
   finding nothing.
2. **No runtime import cycle** inside ``futex.kernel``, ``futex.linux``, ``futex.zircon``,
   ``futex.liteos`` or ``futex.integrations``: the import graph is built from the AST
   (function-level imports count; imports under ``if TYPE_CHECKING:`` do not) and any cycle
   fails.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

import pytest

import futex

SRC = pathlib.Path(futex.__file__).parent
CORE = SRC / "kernel"
NON_CORE = sorted(p for p in SRC.rglob("*.py") if CORE not in p.parents)

#: Names of the core's internals a module outside it must not import at run time.
FORBIDDEN_IMPORTS = frozenset({"Bucket", "WaitQueue", "lock_two", "unlock_two", "ManagerBase"})
#: ... of which these may be imported for annotations (under ``if TYPE_CHECKING:``): a
#: bucket layout policy (LiteOS's) names the type its ``bucket_of`` returns.
TYPE_ONLY_IMPORTS = frozenset({"Bucket"})
#: Attributes that exist only on core internals: the queue primitives, a waiter's links
#: and bucket, a bucket's record, the handles' insides.
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "enqueue_locked",
        "dequeue_locked",
        "move_locked",
        "unlink_locked",
        "wake_locked",
        "bucket_of",
        "bucket",
        "queue",
        "prev",
        "next",
        "tail",
        "longest",
        "_bucket",
        "_order",
        "_check_bucket_locked",
        "_tables",
    }
)
#: Fields of a queue or bucket that share their name with a handle method: reading the
#: field (not calling the method) is what is forbidden.  (A queue's ``head`` is not
#: listed: robust lists have heads too, and no queue can be reached without one of the
#: accesses flagged here.)
FIELDS_NAMED_LIKE_METHODS = frozenset({"count"})
#: A bucket's counters (``b.waits += 1``): never written outside the core (reading the
#: manager's ``FutexStats`` fields of the same names is fine).
COUNTERS = frozenset({"waits", "wakes", "requeues", "count", "queues", "bucket", "queue"})
#: What a bucket's ``queues`` dictionary is used with.
_DICT_METHODS = frozenset({"get", "items", "values", "keys", "pop", "setdefault", "clear"})
#: Attributes through which a table's buckets are reached (``manager.private.buckets``).
_TABLE_HOLDERS = frozenset({"private", "shared", "table"})


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """The ids of the statements under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else (
                test.attr if isinstance(test, ast.Attribute) else None
            )
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    out.update(id(n) for n in ast.walk(stmt))
    return out


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def internals_touched(source: str) -> list[str]:
    """Every place ``source`` touches a core internal, as ``"line: what"``."""
    tree = ast.parse(source)
    type_only = _type_checking_blocks(tree)
    parent = _parents(tree)
    found: list[str] = []

    def hit(node: ast.AST, what: str) -> None:
        found.append(f"{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("futex.kernel"):
            for alias in node.names:
                if alias.name in FORBIDDEN_IMPORTS and not (
                    alias.name in TYPE_ONLY_IMPORTS and id(node) in type_only
                ):
                    hit(node, f"imports {alias.name} from {node.module}")
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        up = parent.get(id(node))
        called = isinstance(up, ast.Call) and up.func is node
        if attr in FORBIDDEN_ATTRIBUTES:
            hit(node, f".{attr}")
        elif attr in FIELDS_NAMED_LIKE_METHODS and not called:
            hit(node, f".{attr} read as a field")
        if attr in COUNTERS and isinstance(node.ctx, ast.Store | ast.Del):
            hit(node, f".{attr} written")
        if attr == "queues" and not called and (
            (isinstance(up, ast.Attribute) and up.attr in _DICT_METHODS)
            or (isinstance(up, ast.Subscript) and up.value is node)
            or (
                isinstance(up, ast.Compare)
                and node in up.comparators
                and any(isinstance(op, ast.In | ast.NotIn) for op in up.ops)
            )
        ):
            hit(node, ".queues used as a bucket's dictionary")
        if attr == "buckets" and isinstance(node.value, ast.Attribute) and (
            node.value.attr in _TABLE_HOLDERS
        ):
            hit(node, f".{node.value.attr}.buckets")
    return found


# -- the guard finds what it must ---------------------------------------------------------------

#: One snippet per rule, each the shape the personalities had before the handles.
VIOLATIONS = {
    "bucket lock by hand": "b = manager.bucket_of(key)\nwith b.lock:\n    pass\n",
    "queue dictionary": "q = b.queues.get(key)\n",
    "queue dictionary, subscript": "q = b.queues[key]\n",
    "queue dictionary, membership": "if key in b.queues:\n    pass\n",
    "waiter's queue": "top = w.queue\n",
    "queue count field": "n = q.count\n",
    "waiter links": "nxt = w.next\n",
    "waiter's bucket": "b = w.bucket\n",
    "counter by hand": "b.waits += 1\n",
    "wake counter by hand": "b.wakes = b.wakes + 1\n",
    "queue primitive": "manager.enqueue_locked(b, key, w)\n",
    "move primitive": "manager.move_locked(b1, b2, w, key)\n",
    "dequeue primitive": "manager.dequeue_locked(b, w)\n",
    "lock_two": "from futex.kernel.buckets import lock_two\n",
    "unlock_two": "from futex.kernel.buckets import Bucket, unlock_two\n",
    "WaitQueue, even for annotations": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from futex.kernel.waiter import WaitQueue\n"
    ),
    "a table's buckets": "for b in manager.private.buckets:\n    pass\n",
    "a layout's buckets": "b = layout.table.buckets[3]\n",
    "a handle's insides": "h._bucket.lock.release()\n",
}

#: What code outside the core may do (the handles, snapshots, stats, a layout policy).
ALLOWED = """
from typing import TYPE_CHECKING
from futex.kernel import notify_all
from futex.kernel.buckets import BucketTable, SplitLayout
if TYPE_CHECKING:
    from futex.kernel.buckets import Bucket

with manager.lock_key(key) as h:
    top = h.head(key)
    n = h.count(key)
    for w in h.waiters(key):
        h.wake(w, woken)
with manager.lock_keys(k1, k2) as (h1, h2):
    h1.move(w, h2, k2)
for s in manager.bucket_snapshots():
    for key, waiters in s.queues:
        pass
stats = manager.stats()
assert stats.waits == stats.wakes and stats.requeues == 0
snapshot = manager.queues()
index = manager.bucket_index(key)
n = itertools.count(1)
table = BucketTable(80, fn, rank=0, name="t")
for view in futex_table.buckets:
    pass

class Layout:
    def bucket_of(self, key: Key) -> Bucket:
        return self.table.bucket_for(key)
"""


@pytest.mark.parametrize("source", VIOLATIONS.values(), ids=list(VIOLATIONS))
def test_the_guard_flags_each_internal(source: str) -> None:
    assert internals_touched(source), "the guard let a core internal through"


def test_the_guard_lets_the_handles_through() -> None:
    assert internals_touched(ALLOWED) == []


def test_the_guard_sees_modules_outside_the_core() -> None:
    """The modules it checks are the ones outside futex.kernel, the three personalities
    among them (a glob that found nothing would pass every module)."""
    names = {p.relative_to(SRC).parts[0] for p in NON_CORE}
    assert {"linux", "zircon", "liteos", "memory"} <= names
    assert not any(CORE in p.parents for p in NON_CORE)
    assert len(NON_CORE) > 40


# -- the guard over the tree --------------------------------------------------------------------


@pytest.mark.parametrize("path", NON_CORE, ids=lambda p: str(p.relative_to(SRC)))
def test_no_core_internals_outside_the_core(path: pathlib.Path) -> None:
    """futex.kernel.locked: personalities (and every other package) reach the queues
    through ``manager.lock_key`` / ``lock_keys`` / ``lock_waiter`` handles only."""
    touched = internals_touched(path.read_text())
    assert not touched, f"{path.relative_to(SRC)} touches core internals: {touched}"


# -- import cycles ------------------------------------------------------------------------------

PACKAGES = ("futex.kernel", "futex.linux", "futex.zircon", "futex.liteos", "futex.integrations")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _runtime_imports(path: pathlib.Path) -> Iterator[str]:
    """The futex modules ``path`` imports when it runs (module level or in a function),
    leaving out imports under ``if TYPE_CHECKING:``.  ``from P import X`` imports the
    module ``P.X`` when there is one, else the package ``P`` itself."""
    tree = ast.parse(path.read_text())
    type_only = _type_checking_blocks(tree)
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in MODULES:
                    yield sub
                elif node.module in MODULES:
                    yield node.module


def import_graph() -> dict[str, set[str]]:
    """Module -> the futex modules it imports at run time."""
    return {name: set(_runtime_imports(path)) - {name} for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_the_packages() -> None:
    graph = import_graph()
    for package in PACKAGES:
        assert package in graph
    assert "futex.linux.abi" in graph["futex.linux.syscalls"]
    assert "futex.kernel.request" in graph["futex.kernel.blocking"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_runtime_import_cycle(package: str) -> None:
    """Annotation-only imports sit under ``if TYPE_CHECKING:``; no module of the package
    is in an import cycle at run time (a function-level import is a run-time import)."""
    inside = [
        c for c in cycles(import_graph())
        if any(m == package or m.startswith(package + ".") for m in c)
    ]
    assert not inside, f"runtime import cycles through {package}: {inside}"


# -- layers ------------------------------------------------------------------------------------

#: The README's layout: a package may import its own layer and the ones below, never above.
#: ``futex.memory`` implements the core's target protocol and sits beside the personalities
#: (they build on it; it builds on none of them).  The order above futex.sync is
#: shared/ARCHITECTURE.md's: futex.check, then futex.integrations, then the demo and the CLI.
#: The analysis is static (the AST), so futex.integrations.qiling is checked without qiling.
LAYERS = {
    "futex": 0,
    "futex.kernel": 0,
    "futex.uapi": 0,
    "futex.word": 0,
    "futex._argtypes": 0,
    "futex.memory": 1,
    "futex.linux": 1,
    "futex.zircon": 1,
    "futex.liteos": 1,
    "futex.native": 1,
    "futex.sync": 2,
    # the schedule checker: runs futex.sync's primitives on the emulated kernel
    "futex.check": 3,
    # Qiling: the emulated Linux kernel behind a real emulator's system calls.
    "futex.integrations": 4,
    "futex.demo": 5,
    "futex.benchcli": 5,
    "futex.cli": 5,
    "futex.__main__": 5,
}
PERSONALITIES = ("futex.linux", "futex.zircon", "futex.liteos")
#: Below futex.integrations, yet not for it: a guest's futex words live in the guest's
#: memory and are answered by the emulated kernel (futex.linux over futex.kernel and
#: futex.memory), never by the host's futex (futex.native) nor by futex.sync's primitives.
NOT_FOR_INTEGRATIONS = ("futex.sync", "futex.native")


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of ``graph`` that breaks the layers (or memory reaching into a
    personality, its neighbour in layer 1, or an integration reaching the host's futex or
    futex.sync)."""
    bad = []
    for module, imported in sorted(graph.items()):
        src = _package(module)
        for target in sorted(imported):
            dst = _package(target)
            if (
                LAYERS[dst] > LAYERS[src]
                or (src == "futex.memory" and dst in PERSONALITIES)
                or (src == "futex.integrations" and dst in NOT_FOR_INTEGRATIONS)
            ):
                bad.append(f"{module} imports {target}")
    return bad


def test_every_package_has_a_layer() -> None:
    assert {_package(m) for m in MODULES} == set(LAYERS)
    # the integration is seen (static analysis: no qiling needed)
    assert any(m.startswith("futex.integrations.qiling.") for m in MODULES)


def test_the_layer_check_sees_an_upward_import() -> None:
    assert upward_imports({"futex.kernel.core": {"futex.linux.abi"}}) == [
        "futex.kernel.core imports futex.linux.abi"
    ]
    assert upward_imports({"futex.memory.space": {"futex.zircon.kernel"}}) != []
    assert upward_imports({"futex.linux.kernel": {"futex.memory.space"}}) == []
    qiling = "futex.integrations.qiling.integration"
    assert upward_imports({qiling: {"futex.linux.kernel", "futex.memory.space"}}) == []
    for above_or_aside in ("futex.demo.report", "futex.cli", "futex.sync.mutex", "futex.native"):
        assert upward_imports({qiling: {above_or_aside}}) != [], above_or_aside
    assert upward_imports({"futex.demo.report": {qiling}}) == []


def test_no_package_imports_upwards() -> None:
    assert upward_imports(import_graph()) == []
