"""The package's shape: no import cycles (imports inside functions and under TYPE_CHECKING
count too), and only the faces (CLI, pytest plugin, supervisor and its adoption, demo,
benchmarks) import the Environment; everything else types against `peerlab.api`."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import peerlab

SRC = Path(peerlab.__file__).parent.parent
FACES = (
    "peerlab.cli",
    "peerlab.pytest_plugin",
    "peerlab.supervisor",
    "peerlab.handover",  # the supervisor's adoption of a handed-over network
    "peerlab.demo",
    "peerlab.bench",
    "peerlab.sim.runs",  # the simulator's runs: a fresh Environment per plan
)


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "peerlab").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every peerlab module `name` imports, wherever the import statement stands."""

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {owner(alias.name) for alias in node.names if alias.name.startswith("peerlab")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if base.startswith("peerlab"):
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in known else owner(base))
    return {module for module in found if module is not None and module != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_src_peerlab_has_no_import_cycle() -> None:
    try:
        tuple(TopologicalSorter(graph()).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_cycle_check_sees_a_cycle() -> None:
    cyclic = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    try:
        tuple(TopologicalSorter(cyclic).static_order())
    except CycleError:
        return
    raise AssertionError("a cycle went unseen")


def test_only_the_faces_import_the_environment() -> None:
    importers = sorted(
        name
        for name, deps in graph().items()
        if "peerlab.env" in deps and not name.startswith(FACES)
    )
    assert importers == [], f"type against peerlab.api instead: {importers}"
