"""The package's shape: its imports, read from the source, run one way down the pipeline, form
no circle, and keep torch out of the stages that never run a network."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "emonet_cli"

# Bottom to top: a module may import its own unit and the units below it, never one above.
LAYERS = (
    "errors",
    "constants",
    "devices",
    "formats",
    "media",
    "faces",
    "models",
    "outputs",
    "analysis",
    "views",
    "evaluate",
    "finetune",
    "run",
    "discover",
    "cli",
    "demo",
    "__main__",
)
RANK = {unit: rank for rank, unit in enumerate(LAYERS)}

# Modules whose import, at module level and through everything they import so, loads no torch.
# The whole package but the networks and what runs them: those are named by exception.
RUNS_A_NETWORK = (
    "emonet_cli.models.emonet.model",
    "emonet_cli.models.emonet.checkpoint",
    "emonet_cli.models.emonet.inference",
    "emonet_cli.models.rbdm.",
    "emonet_cli.models.emotic.",
    "emonet_cli.devices",
    "emonet_cli.faces.detection.blazeface",
    "emonet_cli.faces.detection.benchmark",
    "emonet_cli.finetune.",
    "emonet_cli.discover.processor",
)
TORCH_FREE_STAGES = (
    "emonet_cli.formats",
    "emonet_cli.media",
    "emonet_cli.faces",
    "emonet_cli.models.registry",
    "emonet_cli.models.published",
    "emonet_cli.models.weights",
    "emonet_cli.models.predictions",
    "emonet_cli.analysis",
    "emonet_cli.models.download",
    "emonet_cli.outputs",
    "emonet_cli.views.plot",
    "emonet_cli.views.painter",
    "emonet_cli.views.report",
    "emonet_cli.evaluate.labels",
    "emonet_cli.evaluate.metrics",
    "emonet_cli.evaluate.affectnet",
    "emonet_cli.cli",
    "emonet_cli.constants",
    "emonet_cli.errors",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, tree: ast.AST, *, module_level_only: bool) -> set[str]:
    """The package's modules (and outside top-level packages) that `name`'s source imports.
    With `module_level_only`, imports inside functions or under `if TYPE_CHECKING` are left
    out: those are what loading the module runs."""
    is_package = MODULES[name].name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST, in_body: bool) -> None:
        for child in ast.iter_child_nodes(node):
            deferred = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            deferred |= isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            if isinstance(child, ast.Import) and (in_body or not module_level_only):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and (in_body or not module_level_only):
                base = child.module or ""
                if child.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child, in_body and not deferred)

    visit(tree, True)
    inside = {m for m in found if m in MODULES and m != name}
    outside = {m.split(".")[0] for m in found if not m.startswith("emonet_cli")}
    return inside | outside


TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}
ALL_IMPORTS = {name: imported(name, tree, module_level_only=False) for name, tree in TREES.items()}
LOADED = {name: imported(name, tree, module_level_only=True) for name, tree in TREES.items()}


def unit(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None  # the root package has no unit


def test_every_module_belongs_to_a_layer():
    strays = sorted(name for name in MODULES if unit(name) is not None and unit(name) not in RANK)
    assert strays == [], "modules outside the layer table; add their folder to LAYERS"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_down_the_pipeline(name):
    """Every import, also a deferred one, goes to the module's own unit or one below it."""
    if unit(name) is None:
        return
    upward = sorted(
        target
        for target in ALL_IMPORTS[name]
        if target.startswith("emonet_cli.") and RANK[unit(target)] > RANK[unit(name)]
    )
    assert upward == [], f"{name} imports from above its layer"


def test_no_import_circles():
    graph = {name: {t for t in targets if t in MODULES} for name, targets in ALL_IMPORTS.items()}
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if target == "emonet_cli":
                continue  # the root only names modules by string (see its __getattr__)
            if state.get(target) == 1:
                circles.append(path[path.index(target) :] + [target])
            elif target not in state:
                walk(target, path + [target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def loads(name: str, seen: set[str] | None = None) -> set[str]:
    """Everything that importing `name` loads: the modules named at module level, the packages
    above each of them, and so on down."""
    seen = set() if seen is None else seen
    if name in seen:
        return seen
    seen.add(name)
    parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
    for target in [*LOADED.get(name, ()), *parents]:
        if target in MODULES:
            loads(target, seen)
        else:
            seen.add(target)
    return seen


TORCH_FREE = sorted(
    name
    for name in MODULES
    if name.startswith(TORCH_FREE_STAGES) and not name.startswith(RUNS_A_NETWORK)
)


@pytest.mark.parametrize("name", TORCH_FREE)
def test_stages_that_run_no_network_load_no_torch(name):
    assert "torch" not in loads(name)


def test_the_torch_free_check_sees_torch_where_it_is():
    assert "torch" in loads("emonet_cli.models.emonet.inference")
    assert "torch" in loads("emonet_cli.views.render")  # through what it imports
    assert len(TORCH_FREE) > 40  # the stages above, module by module


def test_only_the_face_descriptor_imports_dlib_and_only_when_called():
    """dlib (the `identity` extra) is optional: one module imports it, inside a function, so
    that nothing else needs it and importing the package never loads it."""
    importers = sorted(name for name, targets in ALL_IMPORTS.items() if "dlib" in targets)
    assert importers == ["emonet_cli.faces.identity.descriptor"]
    assert [name for name in MODULES if "dlib" in loads(name)] == []
