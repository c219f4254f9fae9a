"""The package's layering, read from the source with ``ast`` (nothing is executed).

Every import must point down a layer or stay inside its own package; the
siblings of a layer (bus and sim; studies and viewer) must not import each other; no two modules may
import each other, directly or through a cycle. Modules and functions stay
small. The layer table below is the one in docs/architecture.md.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "robot_mirror"

# Lowest first. A "unit" is the first name under robot_mirror (a subpackage or a top-level module).
LAYERS: list[set[str]] = [
    {"errors", "geometry", "files"},
    {"config"},
    {"common"},
    {"bus", "sim"},
    {"env", "env_checker"},
    {"policies"},
    {"mirror"},
    {"studies", "viewer", "envs"},
    {"nodes"},
    {"launch"},
    {"cli", "cli_studies", "client", "__main__"},
]
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}
# Units on one layer that must not import each other (in either direction).
SIBLINGS = [{"bus", "sim"}, {"studies", "viewer"}]

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50
# Functions allowed past MAX_FUNCTION_LINES. Every entry names its reason; keep
# this list short and declarative only (tables, not logic).
#   "module:qualname": "reason"
FUNCTION_ALLOW: dict[str, str] = {}
MODULE_ALLOW: dict[str, str] = {}


# --------------------------------------------------------------------------- the module graph


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def sources() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@lru_cache(maxsize=None)
def trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(), str(path)) for name, path in sources().items()}


def is_package(module: str) -> bool:
    return sources()[module].name == "__init__.py"


def resolve(name: str) -> str | None:
    """The most specific project module ``name`` refers to (``a.b.func`` -> ``a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in sources():
            return candidate
        parts.pop()
    return None


def imports_of(module: str, tree: ast.Module) -> set[str]:
    """Every project module ``module`` imports, anywhere in its body (functions,
    ``if TYPE_CHECKING`` blocks, try/except included)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package(module) else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module.
            names = [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = resolve(name)
            if target is not None and target != module:
                found.add(target)
    return found


def dynamic_imports_of(tree: ast.Module) -> set[str]:
    """Module names passed as strings to ``importlib.import_module`` (kept as a
    table, e.g. the node kinds): they must respect the layers too."""
    if not any(isinstance(n, (ast.Import, ast.ImportFrom)) and "importlib" in ast.dump(n) for n in ast.walk(tree)):
        return set()
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in sources()}


@lru_cache(maxsize=None)
def graph() -> dict[str, set[str]]:
    return {name: imports_of(name, tree) for name, tree in trees().items()}


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(module: str) -> int:
    u = unit(module)
    if u == "__init__":  # the root package: holds nothing but a docstring, sits at the bottom
        return 0
    assert u in LAYER_OF, f"{module}: its unit {u!r} is missing from the layer table"
    return LAYER_OF[u]


def layer_offenders(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                  if unit(a) != unit(b) and layer(b) > layer(a))


def sibling_offenders(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                  if unit(a) != unit(b) and any({unit(a), unit(b)} == pair for pair in SIBLINGS))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def cycle_offenders(edges: dict[str, set[str]]) -> list[str]:
    return [f"{a} -> {b}" for component in cycles(edges) for a in component
            for b in sorted(edges[a] & set(component))]


# --------------------------------------------------------------------------- the checker checks itself


def test_the_checker_sees_every_kind_of_import() -> None:
    tree = ast.parse(
        "import robot_mirror.sim.arm\n"
        "from robot_mirror.bus import wire\n"
        "from robot_mirror.config.scenario import load_scenario\n"
        "from ..common import turns\n"
        "from . import base\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from robot_mirror.mirror.model import X\n"
        "def f():\n    import robot_mirror.studies.metrics as m\n"
    )
    assert imports_of("robot_mirror.nodes.sim", tree) == {
        "robot_mirror.sim.arm", "robot_mirror.bus.wire", "robot_mirror.config.scenario",
        "robot_mirror.common.turns", "robot_mirror.nodes.base", "robot_mirror.mirror.model",
        "robot_mirror.studies.metrics"}


def test_the_checker_flags_upward_sibling_and_cyclic_imports() -> None:
    edges = {
        "robot_mirror.common.turns": {"robot_mirror.env"},         # up
        "robot_mirror.bus.wire": {"robot_mirror.sim.arm"},         # sibling
        "robot_mirror.env": {"robot_mirror.common.turns"},         # down, but closes a cycle
        "robot_mirror.sim.arm": {"robot_mirror.sim.world"},
        "robot_mirror.sim.world": {"robot_mirror.sim"},
        "robot_mirror.sim": {"robot_mirror.sim.arm"},              # an __init__ inside a cycle
    }
    assert layer_offenders(edges) == ["robot_mirror.common.turns -> robot_mirror.env"]
    assert sibling_offenders(edges) == ["robot_mirror.bus.wire -> robot_mirror.sim.arm"]
    assert cycles(edges) == [["robot_mirror.common.turns", "robot_mirror.env"],
                             ["robot_mirror.sim", "robot_mirror.sim.arm", "robot_mirror.sim.world"]]


def test_every_unit_is_in_the_layer_table() -> None:
    units = {unit(m) for m in sources()} - {"__init__"}
    assert units == set(LAYER_OF), f"in the package, not the table: {sorted(units - set(LAYER_OF))}; " \
                                   f"in the table, not the package: {sorted(set(LAYER_OF) - units)}"


# --------------------------------------------------------------------------- the package


def module_sizes() -> list[str]:
    return sorted(f"{name}: {n} lines" for name, path in sources().items()
                  if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES and name not in MODULE_ALLOW)


def function_sizes() -> list[str]:
    out = []
    for name, tree in trees().items():
        def walk(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    qualname = f"{prefix}{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        n = child.end_lineno - child.lineno + 1
                        if n > MAX_FUNCTION_LINES and f"{name}:{qualname}" not in FUNCTION_ALLOW:
                            out.append(f"{name}:{qualname}: {n} lines")
                    walk(child, qualname + ".")
                else:
                    walk(child, prefix)
        walk(tree, "")
    return sorted(out)


WHAT = {
    "layers": "imports of a higher layer",
    "siblings": "imports between the layer-3 siblings (bus, sim)",
    "cycles": "import cycles (every edge inside a cycle)",
    "module_size": f"modules over {MAX_MODULE_LINES} lines",
    "function_size": f"functions over {MAX_FUNCTION_LINES} lines",
}
CHECKS = {
    "layers": lambda: layer_offenders(graph()),
    "siblings": lambda: sibling_offenders(graph()),
    "cycles": lambda: cycle_offenders(graph()),
    "module_size": module_sizes,
    "function_size": function_sizes,
}

# Violations in the code as it stands (found by these checks, not yet fixed).
# Each is an xfail(strict=True) below: fixing one makes its test pass
# unexpectedly, which fails the run until the entry is removed here. A NEW
# offender fails test_no_new_offenders at once.
KNOWN = {
    "layers": [],
    "siblings": [],
    "cycles": [],
    "module_size": [],
    "function_size": [],
}


def key(offender: str) -> str:
    """``mod:func: 56 lines`` -> ``mod:func`` (sizes change; names identify)."""
    return offender.rsplit(": ", 1)[0] if offender.endswith(" lines") else offender


def check_param(what: str):
    known = KNOWN[what]
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason="known: " + "; ".join(known))] if known else []
    return pytest.param(what, marks=marks, id=what)


@pytest.mark.parametrize("what", [check_param(w) for w in CHECKS])
def test_package_has_no(what: str) -> None:
    offenders = CHECKS[what]()
    assert not offenders, f"{WHAT[what]}:\n" + "\n".join(offenders)


@pytest.mark.parametrize("what", list(CHECKS))
def test_no_new_offenders(what: str) -> None:
    new = [o for o in CHECKS[what]() if key(o) not in KNOWN[what]]
    assert not new, f"new {WHAT[what]}:\n" + "\n".join(new)


def test_dynamic_imports_point_down_too() -> None:
    edges = {name: dynamic_imports_of(tree) for name, tree in trees().items()}
    assert edges["robot_mirror.nodes"], "the node-kind table was not seen"
    offenders = layer_offenders(edges) + sibling_offenders(edges)
    assert not offenders, "import_module of a higher layer:\n" + "\n".join(offenders)


def test_allow_lists_name_a_reason_and_a_real_target() -> None:
    for entry, reason in {**FUNCTION_ALLOW, **MODULE_ALLOW}.items():
        assert isinstance(reason, str) and len(reason.split()) >= 3, f"{entry}: give a reason"
        assert entry.split(":")[0] in sources(), f"{entry}: no such module"


# --------------------------------------------------------------------------- what loads pybullet

NO_PYBULLET = ["robot_mirror.nodes.perception", "robot_mirror.nodes.policy", "robot_mirror.bus.wire",
               "robot_mirror.client"]


@pytest.mark.parametrize("module", NO_PYBULLET)
def test_module_does_not_load_pybullet(module: str) -> None:
    code = (f"import importlib, json, sys; importlib.import_module({module!r}); "
            "print(json.dumps(sorted(m for m in sys.modules if m == 'pybullet' or m.startswith('robot_mirror.sim'))))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "pybullet" not in loaded, f"importing {module} loads pybullet (with {loaded})"


def test_architecture_doc_matches_the_layer_table() -> None:
    """docs/architecture.md's layer table names each unit on the layer this
    test enforces (the doc is the map; this keeps the map true)."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    rows: dict[int, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*(\d+)\s+(.*?)\|", line)
        if m:
            rows.setdefault(int(m.group(1)), set()).update(re.findall(r"`([a-z_]+)(?:\.py|/)?`", m.group(2)))
    for i, units in enumerate(LAYERS):
        documented = rows.get(i, set())
        missing = {u for u in units if u != "__main__"} - documented
        assert not missing, f"docs/architecture.md layer {i} does not name {sorted(missing)}"
