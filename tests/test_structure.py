"""The house rules of DESIGN.md that a machine can check: no import circle among the project's
packages, no module over 400 lines, no private name imported from another module, and the
one-way flow page -> (models | training | explain) -> viz.

The import graph is read from the source with ``ast`` (nothing is imported), counting every
import, including those inside functions: an import deferred into a function to dodge a circle
is still a circle.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app_pages", "models", "training", "explain", "viz", "lessons")
MAX_LINES = 400


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages (and app.py)."""
    modules = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else ():
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name an ``import from`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(modules: dict[str, Path]) -> dict[str, set[tuple[str, str | None]]]:
    """Module -> {(imported module, imported name or None)} for imports within the project."""
    graph: dict[str, set[tuple[str, str | None]]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[tuple[str, str | None]] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    edges.add((alias.name, None))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, path.name == "__init__.py", node)
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    # `from package import module` imports the module; otherwise a name
                    edges.add((submodule, None) if submodule in modules else (target, alias.name))
        graph[module] = {(target, name) for target, name in edges if target in modules}
    return graph


def _module_edges(graph) -> dict[str, set[str]]:
    return {module: {target for target, _ in edges if target != module} for module, edges in graph.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(edges, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if _is_parent_package(nxt, node):
                continue  # a package's __init__ re-exporting its own module is not a circle
            if colour.get(nxt) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for start in sorted(edges):
        if colour[start] == WHITE:
            found = visit(start)
            if found:
                return found
    return None


def _is_parent_package(candidate: str, module: str) -> bool:
    return module.startswith(candidate + ".")


def test_cycle_finder_finds_a_circle_and_ignores_a_package_init():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    # models/__init__ imports models.spec, which imports models (the package) for a sibling
    assert find_cycle({"pkg": {"pkg.a"}, "pkg.a": {"pkg"}}) is None


def test_no_import_circle_among_the_project_modules():
    cycle = find_cycle(_module_edges(imports_of(project_modules())))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in project_modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_private_name_is_imported_from_another_module():
    private = sorted(f"{module} imports {target}.{name}"
                     for module, edges in imports_of(project_modules()).items()
                     for target, name in edges
                     if name and name.startswith("_") and not name.startswith("__") and target != module)
    assert not private, "\n".join(private)


@pytest.mark.parametrize("package, forbidden", [
    ("viz", ("models", "training", "app_pages", "streamlit")),  # viz may read explain's record types
    ("explain", ("app_pages", "viz", "streamlit")),
    ("models", ("app_pages", "viz", "explain", "training", "streamlit")),
    ("training", ("app_pages", "viz", "streamlit")),
])
def test_requests_flow_one_way(package, forbidden):
    """page -> (models | training | explain) -> viz; only app.py and app_pages import streamlit."""
    wrong = []
    for module, path in project_modules().items():
        if module.split(".")[0] != package:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            wrong += [f"{module} imports {name}" for name in names if name.split(".")[0] in forbidden]
    assert not wrong, "\n".join(wrong)


def test_no_page_module_imports_another_page():
    """A page file (one given to st.Page) imports no other page file."""
    modules = project_modules()
    text = "".join(path.read_text(encoding="utf-8") for name, path in modules.items()
                   if name == "app" or name.startswith("app_pages"))
    listed = re.findall(r'"app_pages/(\w+)\.py"', text)  # the files given to st.Page
    pages = {f"app_pages.{stem}" for stem in listed}
    assert len(pages) >= 6, "the page list (app_pages/common.py PAGES) was not found"
    graph = _module_edges(imports_of(modules))
    wrong = [f"{page} imports {target}" for page in pages for target in graph.get(page, ()) if target in pages]
    assert not wrong, "\n".join(wrong)
