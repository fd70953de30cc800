"""The import rules of docs/architecture.md, read from the source with ``ast``: ``core`` names no family and no torch,
``nn`` names no family, families import each other only through ``core`` and ``nn``, the shared code names no
family, no import cycles, and no function-level ``adaptstep`` import outside ``cli.py`` without a comment saying why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "adaptstep"
FAMILIES = ("threebody", "diffusion", "flow", "planning", "policies")
SHARED = ("_version", "core", "nn", "agents", "bench", "cli", "evaluation", "io", "plotting", "specs", "analysis",
          "zoo", "enjoy")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, top_level: bool, runtime_only: bool = False) -> list[tuple[str, int]]:
    """The adaptstep modules ``path`` imports (with line numbers): at module level, or inside functions; with
    ``runtime_only`` without those under ``if TYPE_CHECKING:`` (type annotations only)."""
    tree = ast.parse(path.read_text())
    nested = {id(node) for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
              for node in ast.walk(function) if node is not function}
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                   for node in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        if (id(node) in nested) == top_level or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if runtime_only and id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(name, node.lineno) for name in names if name.split(".")[0] in ("adaptstep", "torch")]
    return found


def part(module: str) -> str:
    """``adaptstep.flow.env`` -> ``flow``; ``adaptstep`` -> ``adaptstep``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


MODULES = modules()


def resolve(name: str) -> str | None:
    """The module an imported name belongs to (``adaptstep.flow.env.BudgetForcingEnv`` -> ``adaptstep.flow.env``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module: str) -> None:
    owner = part(module)
    for name, line in imports(MODULES[module], top_level=True) + imports(MODULES[module], top_level=False):
        if name.startswith("torch"):
            assert owner != "core", f"{module}:{line} imports torch: core stays free of torch"
            continue
        target = part(resolve(name))
        if owner in ("core", "nn"):
            assert target not in FAMILIES, f"{module}:{line} imports family {name}: {owner} names no family"
        elif owner in FAMILIES:
            assert target in (owner, *SHARED, "adaptstep"), f"{module}:{line}: family {owner} imports family {name}"
        elif owner in SHARED:
            assert target not in FAMILIES, f"{module}:{line} imports family {name}: shared code names no family"


def test_shared_code_names_no_env_id() -> None:
    for module, path in MODULES.items():
        if part(module) in SHARED and part(module) not in ("core",):
            for env_id in ("ThreeBody-v0", "DiffusionSampler-v0", "BudgetForcing-v0", "PlannerBudget-v0",
                           "DualSystem-v0"):
                assert env_id not in path.read_text(), f"{module} names the env id {env_id}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if part(m) != "cli"))
def test_function_level_imports_say_why(module: str) -> None:
    lines = MODULES[module].read_text().splitlines()
    for name, line in imports(MODULES[module], top_level=False):
        if name.startswith("adaptstep"):
            assert "#" in lines[line - 1], f"{module}:{line} imports {name} inside a function without a comment"


def test_no_import_cycles() -> None:
    graph = {module: {resolve(name) for name, _ in imports(path, top_level=True, runtime_only=True)} - {None, module}
             for module, path in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
