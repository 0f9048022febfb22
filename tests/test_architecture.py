"""The shape of the code, checked from its source: no import circles, domains that do not
import each other both ways, `src/vision` standing alone, and a web process that starts
without the worker's heavy libraries.

The import graph is built with `ast` from every file under src/ (module-level and
function-level imports alike, `if TYPE_CHECKING:` ones included: a function-level import is
still a dependency, only a hidden one). A *domain* is a package directly under src/
(auth, videos, datasets, ...); the modules directly in src/ (main, worker, jobs, config,
database, ...) are the frame the domains live in, not a domain.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# Imports that go back up the domain graph (read as "importer -> imported"): none are left.
# The layering, bottom first: vision, auth, quotas, billing, videos, datasets (its drafts in
# datasets.draft), review, detectors, admin. What a lower domain needs from a higher one is a
# port it names (src/datasets/ports.py, src/videos/ports.py, auth's AfterRegister, quotas'
# UsageOf) that src/main.py (app.state) and src/worker.py (the job context) plug in. Never
# add an entry: a new cycle is fixed, not listed (issue 19).
ALLOWED_BACK_EDGES: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(imported src module, line) for every import in the file, at any depth."""
    known = modules()
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from src.x import service` names the module src.x.service
                full = f"{base}.{alias.name}"
                found.append((full if full in known else base, node.lineno))
    return [(name, line) for name, line in found if name == "src" or name.startswith("src.")]


def domain_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (SRC / parts[1]).is_dir() else None


@cache
def domain_edges() -> dict[tuple[str, str], list[str]]:
    """(importer domain, imported domain) -> the imports that make the arrow ("module:line -> module")."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, path in modules().items():
        for target, line in imports_of(path):
            a, b = domain_of(module), domain_of(target)
            if a and b and a != b:
                if (arrow := f"{module}:{line} -> {target}") not in edges[(a, b)]:
                    edges[(a, b)].append(arrow)
    return dict(edges)


def find_cycle(edges: set[tuple[str, str]]) -> list[str] | None:
    """One cycle of the directed graph, as a path that ends where it starts; None when there is none."""
    graph: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(edges):
        graph[a].append(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_cycles():
    assert find_cycle({("a", "b"), ("b", "c")}) is None
    assert find_cycle({("a", "b"), ("b", "c"), ("c", "a")}) == ["a", "b", "c", "a"]
    assert find_cycle({("x", "y"), ("y", "x"), ("x", "z")}) == ["x", "y", "x"]


def test_no_new_domain_cycle():
    edges = domain_edges()
    remaining = set(edges) - ALLOWED_BACK_EDGES
    cycle = find_cycle(remaining)
    if cycle:
        arrows = "\n".join(f"  {a} -> {b}: {'; '.join(edges[(a, b)][:3])}" for a, b in zip(cycle, cycle[1:]))
        raise AssertionError(f"domains import each other in a circle {' -> '.join(cycle)}:\n{arrows}\n"
                             "Move the shared piece down (or into src/vision), or call the other way.")


def test_allowed_back_edges_still_exist():
    """The allow-list only shrinks: an arrow that is gone is taken off it."""
    gone = sorted(ALLOWED_BACK_EDGES - set(domain_edges()))
    assert not gone, f"no import makes these arrows any more; remove them from ALLOWED_BACK_EDGES: {gone}"


def test_domain_cycle_count_does_not_grow():
    """Pairs of domains importing each other both ways: no more than the allow-list's."""
    edges = domain_edges()
    mutual = {tuple(sorted(edge)) for edge in edges if edge[::-1] in edges}
    allowed = {tuple(sorted(edge)) for edge in ALLOWED_BACK_EDGES}
    assert mutual <= allowed, f"new pairs importing each other both ways: {sorted(mutual - allowed)}"


def test_vision_imports_nothing_outside_itself():
    outside = [f"{module}:{line} -> {target}"
               for module, path in modules().items() if domain_of(module) == "vision"
               for target, line in imports_of(path) if domain_of(target) != "vision"]
    assert not outside, "src/vision must stand alone:\n" + "\n".join(sorted(set(outside)))


def test_only_the_worker_imports_tasks():
    """Task modules are imported by the worker (and by each other), never by the web side;
    src.worker only by the CLI that starts it."""
    wrong = []
    for module, path in modules().items():
        worker_side = module in ("src.worker", "src.cli") or module.endswith(".tasks")
        for target, line in imports_of(path):
            if (target.endswith(".tasks") and not worker_side) or (target == "src.worker" and module != "src.cli"):
                wrong.append(f"{module}:{line} -> {target}")
    assert not wrong, ("task modules are imported only by src.worker (and each other), src.worker only by "
                       "src.cli; task modules take the job context from src.jobs, and the web enqueues jobs "
                       "by name:\n" + "\n".join(sorted(set(wrong))))


# One fresh interpreter imports the third-party libraries src imports at module level, then
# forks a child per src module: each child starts with no src module loaded and imports just
# its own, so an import circle or a missing import shows, at a few ms per module instead of
# a second (the libraries are what an interpreter spends its start on).
_EACH_ON_ITS_OWN = textwrap.dedent("""
    import importlib, json, os, sys, traceback
    modules, libraries = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    for library in libraries:
        try:
            importlib.import_module(library)
        except Exception:
            pass  # optional (ml.txt): the module that needs it reports it
    assert not [m for m in sys.modules if m == "src" or m.startswith("src.")]
    failures = {}
    for module in modules:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                importlib.import_module(module)
                message = ""
            except BaseException:
                message = traceback.format_exc(limit=-6)
            os.write(write, message.encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            message = pipe.read()
        _, status = os.waitpid(pid, 0)
        if message or status:
            failures[module] = message or f"exit status {status}"
    print(json.dumps(failures))
""")


def _third_party_module_level_imports() -> list[str]:
    names = set()
    for path in modules().values():
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module)
    return sorted(n for n in names if n.split(".")[0] not in ("src", "__future__"))


def test_every_module_imports_on_its_own():
    names = sorted(modules())
    result = subprocess.run(
        [sys.executable, "-c", _EACH_ON_ITS_OWN, json.dumps(names), json.dumps(_third_party_module_level_imports())],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"exit status {result.returncode}: {result.stderr[-3000:]}"
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failures, "modules that do not import on their own:\n" + "\n".join(
        f"--- {module}\n{message}" for module, message in failures.items())
    assert len(names) > 50  # the walk found the source


HEAVY = ("cv2", "numba", "torch", "cvat_sdk", "ultralytics")


def test_web_process_starts_without_worker_libraries():
    """`import src.main; create_app()` in a fresh interpreter: no OpenCV, numba, torch,
    cvat-sdk or ultralytics, no task module and no worker (they load in the worker, or
    in the web only on the request that needs them)."""
    script = textwrap.dedent(f"""
        import json, sys
        import src.main
        src.main.create_app()
        loaded = [m for m in sys.modules if m.split(".")[0] in {HEAVY!r}
                  or m == "src.worker" or (m.startswith("src.") and m.endswith(".tasks"))]
        print(json.dumps(sorted({{m if m.startswith("src.") else m.split(".")[0] for m in loaded}})))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=os.environ.copy(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_worker_does_load_its_tasks():
    """The other half of the check above: the same probe sees the worker's libraries when they load."""
    script = ("import json, sys; import src.worker; "
              f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=os.environ.copy(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cv2" in json.loads(result.stdout.strip().splitlines()[-1])
