"""The import structure: data flows one way (schedules -> runs -> laws -> design -> report ->
study -> cli), and no module imports one that imports it back. Read from the source (every
``import``, those inside functions too), so a lazy import cannot hide a wrong direction."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lrlab"

# A module may import from its own part or from a part of a lower rank.
RANK = {
    "errors": 0,
    "atomic": 0,
    "locks": 0,
    "settings": 0,
    "mapping_file": 0,
    "schedules": 1,
    "adapters": 2,
    "runs": 2,
    "tunnel": 2,
    "laws": 3,
    "design": 4,
    # Live forecasting uses the laws and design; the trainer integrations use it. Neither is
    # used by the report, the study or the CLI's parser, hence ranks between design and report.
    "live": 4.5,
    "integrations": 4.75,
    "report": 5,
    "study": 6,
    # Reproducing published claims trains runs and fits laws, as a study does; only the CLI
    # uses it.
    "reproduce": 6.5,
    "cli": 7,
    "__main__": 8,
}


def _module_name(path: Path) -> str:
    parts = ["lrlab", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_names() -> set[str]:
    return {_module_name(path) for path in PACKAGE.rglob("*.py")}


def _imports() -> dict[str, set[tuple[str, tuple[str, ...]]]]:
    """Each module's lrlab imports: (module imported, names imported from it)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    found: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
    for name, path in modules.items():
        found[name] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lrlab"):
                names = tuple(alias.name for alias in node.names)
                found[name].add((node.module, names))
                # ``from lrlab.laws import registry`` imports the module lrlab.laws.registry
                found[name] |= {
                    (f"{node.module}.{n}", ()) for n in names if f"{node.module}.{n}" in modules
                }
            elif isinstance(node, ast.Import):
                found[name] |= {(a.name, ()) for a in node.names if a.name.startswith("lrlab")}
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def test_every_part_has_a_rank() -> None:
    assert {_part(module) for module in _imports()} - {"<root>"} <= set(RANK)


def test_no_module_imports_up_the_flow() -> None:
    wrong = []
    for module, imported in _imports().items():
        for target, names in imported:
            if _part(target) == "<root>":
                plain = [n for n in names if f"lrlab.{n}" not in _module_names()]
                if plain not in ([], ["__version__"]) and _part(module) != "<root>":
                    wrong.append(f"{module} imports {names} from lrlab itself")
            elif _part(module) != "<root>" and RANK[_part(target)] > RANK[_part(module)]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_import_cycles() -> None:
    graph = {module: {target for target, _ in imported} for module, imported in _imports().items()}
    graph.pop("lrlab", None)  # the top-level names are loaded lazily, on first use
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, set()) - {module}):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target in graph and target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
