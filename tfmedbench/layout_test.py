"""The house rules of the layout, checked on the source: floors import only from below, and no
function grows past 80 lines (the redesign's limit; a longer one must say why in a comment
containing "one piece")."""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("datasets_tfds", "tfmedbench", "weights_converter")
MAX_FUNCTION_LINES = 80

# module prefix -> prefixes it must never import (at any depth, lazily or not)
FORBIDDEN = {
    "datasets_tfds": ("tfmedbench", "weights_converter"),
    "tfmedbench.models": ("tfmedbench.train", "tfmedbench.study", "tfmedbench.data",
                          "tfmedbench.cli", "tfmedbench.tasks", "weights_converter"),
    "tfmedbench.metrics": ("tfmedbench.train", "tfmedbench.study", "weights_converter"),
    "tfmedbench.fileutil": ("tfmedbench", "weights_converter"),
    "tfmedbench.errors": ("tfmedbench", "weights_converter"),
    "weights_converter": ("tfmedbench.train", "tfmedbench.study", "tfmedbench.data",
                          "tfmedbench.cli", "tfmedbench.tasks"),
    "tfmedbench.data": ("tfmedbench.train", "tfmedbench.study", "tfmedbench.cli"),
    "tfmedbench.train": ("tfmedbench.study", "tfmedbench.cli"),
    "tfmedbench.study": ("tfmedbench.cli",),
}  # fmt: skip


def sources():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if not path.name.endswith("_test.py") and "testing" not in path.parts:
                yield path


def module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("path", list(sources()), ids=lambda p: str(p.relative_to(REPO)))
def test_floors_import_only_from_below(path):
    name = module_name(path)
    tree = ast.parse(path.read_text())
    for floor, banned in FORBIDDEN.items():
        if name == floor or name.startswith(floor + "."):
            bad = [m for m in imports(tree)
                   if any(m == b.rstrip(".") or m.startswith(b.rstrip(".") + ".") for b in banned)]
            assert not bad, f"{name} (floor {floor}) imports {bad}"


def test_no_function_over_80_lines():
    long = []
    for path in sources():
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                body = "\n".join(text.splitlines()[node.lineno - 1 : node.end_lineno])
                if n > MAX_FUNCTION_LINES and "one piece" not in body:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def import_graph():
    """{module: modules of the three packages it imports, lazily or not}. `from pkg import mod`
    counts as an import of `pkg.mod` only (a package's `__init__` listing its submodules is not
    a circle)."""
    paths = {module_name(p): p for p in sources()}
    graph = {}
    for name, path in paths.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                found = [s for s in subs if s in paths]
                deps.update(found if found else [node.module])
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        graph[name] = {d for d in deps if d in paths and d != name}
    return graph


def test_no_import_circles():
    """No module reaches itself through imports (lazy ones included): e.g. the sweep's local
    loop and its Ray executor both import `study.cells`, never each other."""
    graph = import_graph()
    state, circles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                circles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)
