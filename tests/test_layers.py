"""The package's layers: every import points down (or within its own folder), and no module imports itself back.

Each module's imports are read with ``ast`` (imports inside functions included, since they load
at run time all the same). The layers and what each may import are the design's (DESIGN21.md):

    core                 nothing of ours
    psychometrics, llm, instruments    core (and their own folder)
    simulated            core, llm, instruments, psychometrics
    methods              the above and simulated
    plots, stages, app   every layer below

A module that has not moved into its folder yet sits in ``NOT_YET_PLACED`` with the folder it is
meant for, and is checked as if it were there: imports *into* it and *out of* it alike. The table
shrinks as modules move; a new flat module must be placed or listed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "valuelex"

#: Each layer and the layers it may import (its own included).
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "psychometrics": {"core", "psychometrics"},
    "llm": {"core", "llm"},
    "instruments": {"core", "instruments"},
    "simulated": {"core", "llm", "instruments", "psychometrics", "simulated"},
    "methods": {"core", "llm", "instruments", "psychometrics", "simulated", "methods"},
    "plots": {"core", "llm", "instruments", "psychometrics", "simulated", "methods", "plots"},
    "stages": {"core", "llm", "instruments", "psychometrics", "simulated", "methods", "plots", "stages"},
    "app": {"core", "llm", "instruments", "psychometrics", "simulated", "methods", "plots", "stages", "app"},
}
#: Top-level entry points: ``python -m valuelex`` is the app.
ENTRY = {"valuelex": "core", "valuelex.__main__": "app"}

#: Modules not moved into their layer's folder yet (issue 21), with the folder each is meant for: their layer.
#: Their imports, out and in, are checked against that layer as if they were in its folder. Remove a line when
#: its module moves.
NOT_YET_PLACED: dict[str, str] = {
    # statistics: psychometrics/ (pure estimators)
    # domain methods: methods/
    "valuelex.parse": "methods",
    "valuelex.lexicon": "methods",
    "valuelex.semantic": "methods",
    "valuelex.human_values": "methods",
    "valuelex.elicit": "methods",
    "valuelex.projective": "methods",
    "valuelex.projective.__main__": "methods",
    "valuelex.projective.embedding": "methods",
    "valuelex.projective.instrument": "methods",
    "valuelex.projective.judge": "methods",
    "valuelex.projective.plots": "methods",
    "valuelex.projective.reliability": "methods",
    "valuelex.projective.scorers": "methods",
    "valuelex.projective.scores": "methods",
    "valuelex.projective.validation": "methods",
    # inside simulated/ but above it: the recovery studies run the lexicon stage and the statistics with a
    # run's settings (methods/simulation.py), and ``python -m valuelex.simulated`` is a command (app/)
    "valuelex.simulated.recovery": "methods",
    "valuelex.simulated.stages": "methods",
    "valuelex.simulated.__main__": "app",
    # the run's settings: stages/run.py; each stage's closing findings (StageReport.findings())
    "valuelex.settings": "stages",
    "valuelex.findings": "stages",
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def imports(path: Path, known: set[str], package_dir: Path = PACKAGE) -> set[str]:
    """The valuelex modules a file imports, at module level or inside functions (``from x import name``
    counts as an import of ``x.name`` when that is a module, else of ``x``)."""
    name = module_name(path, package_dir)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "valuelex")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "valuelex":
                continue
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
    return {m for m in found if m != name}


def layer(module: str) -> str | None:
    """The layer a module is in (its folder), or is meant for (``NOT_YET_PLACED``); None: not known."""
    if module in ENTRY:
        return ENTRY[module]
    if module in NOT_YET_PLACED:
        return NOT_YET_PLACED[module]
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in ALLOWED else None


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the valuelex modules it imports."""
    found = modules(package)
    return {name: imports(path, set(found), package) for name, path in found.items()}


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Every import into a layer the importing module's layer may not import (a module of ``NOT_YET_PLACED``
    is in the layer it is meant for)."""
    wrong = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if layer(target) not in ALLOWED[layer(source)]:
                wrong.append(f"{source} ({layer(source)}) imports {target} ({layer(target)})")
    return wrong


def test_every_module_has_a_layer():
    unknown = [m for m in modules() if layer(m) is None]
    assert not unknown, f"put these in a layer's folder, or list them in NOT_YET_PLACED: {unknown}"


def test_every_import_names_a_module():
    """A relative import counted from the wrong folder (``from .core import x`` in ``plots/``) names no module;
    it fails only when the function holding it runs, so it is caught here."""
    found = modules()
    missing = [
        f"{source} imports {target}" for source, targets in graph().items() for target in targets if target not in found
    ]
    assert not missing, "imports of valuelex modules that do not exist:\n" + "\n".join(sorted(missing))


def test_imports_point_down():
    wrong = upward(graph())
    assert not wrong, "imports pointing up or sideways:\n" + "\n".join(wrong)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
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
            if w not in edges:
                continue
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
    return found


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_an_upward_import_in_a_function_and_a_cycle(tmp_path: Path):
    """The walk sees a function-level import, and the checks fail on what they are meant to catch."""
    package = tmp_path / "valuelex"
    for folder in (package / "core", package / "app"):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "core" / "low.py").write_text("def f():\n    from ..app import high\n")
    (package / "app" / "high.py").write_text("from valuelex.core import low\n")
    edges = graph(package)
    assert edges["valuelex.core.low"] == {"valuelex.app.high"}
    assert edges["valuelex.app.high"] == {"valuelex.core.low"}
    assert upward(edges) == ["valuelex.core.low (core) imports valuelex.app.high (app)"]
    assert cycles(edges) == [["valuelex.app.high", "valuelex.core.low"]]


def test_an_unplaced_module_is_checked_in_the_layer_it_is_meant_for(tmp_path: Path, monkeypatch):
    """A flat module listed in NOT_YET_PLACED is checked as if it were in its folder: its own upward import
    (a method drawing its figures with plots/) is caught, and so is an import into it from below."""
    package = tmp_path / "valuelex"
    for folder in (package / "core", package / "plots"):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "flat.py").write_text("def figure():\n    from .plots.labels import place_labels\n")
    (package / "plots" / "labels.py").write_text("")
    (package / "core" / "low.py").write_text("from valuelex import flat\n")
    monkeypatch.setitem(NOT_YET_PLACED, "valuelex.flat", "methods")
    edges = graph(package)
    assert edges["valuelex.flat"] == {"valuelex.plots.labels"}
    assert upward(edges) == [
        "valuelex.core.low (core) imports valuelex.flat (methods)",
        "valuelex.flat (methods) imports valuelex.plots.labels (plots)",
    ]


#: The comment a module over this many lines carries to say why (issue 21).
MAX_LINES = 600
WHY = "# Over 600 lines:"


def test_no_module_is_over_600_lines_without_saying_why():
    long = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    unexplained = [
        f"{name} ({n} lines)"
        for name, n in sorted(long.items())
        if n > MAX_LINES and WHY not in modules()[name].read_text(encoding="utf-8")
    ]
    assert not unexplained, f"split these, or say why under the docstring ({WHY!r}): {unexplained}"
