"""The dependency graph of the package: module-level imports between vdm modules form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

VDM = Path(__file__).resolve().parents[1] / "vdm"


def module_name(path: Path) -> str:
    parts = path.relative_to(VDM.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """vdm modules imported by the top-level statements of ``path`` (not inside functions or classes)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from vdm.x import y": y may be a submodule or a name defined in vdm.x
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                     for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(VDM.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): module_level_imports(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_vdm_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_part_configs_import_their_base_at_module_level():
    graph = import_graph()
    for part in ("data", "diffusion", "metrics", "model", "sampling", "train"):
        assert "vdm.config_base" in graph[f"vdm.{part}.config"], part
        assert "vdm.config" not in graph[f"vdm.{part}.config"], part
        src = (VDM / part / "config.py").read_text()
        assert "    from vdm" not in src, f"vdm/{part}/config.py imports a vdm module inside a function"
