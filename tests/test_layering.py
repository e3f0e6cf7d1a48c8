"""The package's layers: pure logic imports without Dagster or gRPC, and no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "generia_pipelines"

#: Modules that must import with neither Dagster nor gRPC installed.
PURE = [
    "generia_pipelines.errors",
    "generia_pipelines.world_keys",
    "generia_pipelines.budget",
    "generia_pipelines.settings_env",
    "generia_pipelines.clients.runware.settings",
    "generia_pipelines.units.keys",
    *sorted(
        f"generia_pipelines.generation.{path.stem}"
        for path in (PACKAGE / "generation").glob("*.py")
        if path.stem != "__init__"
    ),
]

_BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

class Blocked(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"dagster", "grpc", "grpc_reflection"}:
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, Blocked())
import importlib
for module in sys.argv[1:]:
    importlib.import_module(module)
"""


def test_pure_modules_import_without_dagster_and_grpc() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER, *PURE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    """Package modules ``path`` imports when it loads (not those under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in ast.walk(node):
            if isinstance(child, ast.Import):
                found |= {a.name for a in child.names}
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    target = f"{base}.{child.module}" if child.module else base
                else:
                    target = child.module or ""
                found.add(target)
                found |= {f"{target}.{a.name}" for a in child.names}
    return {name for name in found if name.startswith("generia_pipelines")}


def test_the_package_has_no_import_cycle() -> None:
    files = {
        _module_name(p): p
        for p in PACKAGE.rglob("*.py")
        if "proto" not in p.relative_to(PACKAGE).parts
    }
    graph = {
        name: {dep for dep in _imports(path, name) if dep in files and dep != name}
        for name, path in files.items()
    }
    # A package's __init__ re-exporting its own modules is not a cycle of files.
    for name in graph:
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*trail[trail.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles[:10])
