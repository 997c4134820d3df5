"""The import graph of dcli: no module imports itself back through others, the shell and the
printers import nothing of the CLI, and every module of dcli.cli, dcli.shell and dcli.output
imports on its own (first, in an interpreter that has loaded none of them).

An import inside a function counts as an edge too: it runs later, but a circle through it is a
circle all the same (and breaks as soon as the import moves to the top). `if TYPE_CHECKING:`
blocks do not count (they never run). A submodule's import of its own package's __init__ is not
an edge: Python runs the package first, and `from pkg import sibling` is how siblings meet.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "dcli"
CHECKED = ("dcli.cli", "dcli.shell", "dcli.output")


def modules() -> dict[str, Path]:
    """dotted name -> file, for every module of dcli (packages by their __init__)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The dcli modules `name` imports, wherever the import statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    edges = set()
    for target in found:
        while target and target not in known:          # `import dcli.x.y` -> the deepest module
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            edges.add(target)
    return edges


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported(name, path, set(mods)) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                connect(w)
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
                out.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            connect(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_imports_inside_functions():
    g = graph()
    assert "dcli.cli.table" in g["dcli.cli.shell_cmd"]          # imported inside the command
    assert "dcli.cli.kafka.options" in g["dcli.cli.kafka.topics"]


def test_no_module_of_dcli_imports_itself_back():
    assert cycles(graph()) == []


def test_the_shell_and_the_printers_import_nothing_of_the_cli():
    g = graph()
    bad = {m: sorted(t for t in targets if t == "dcli.cli" or t.startswith("dcli.cli."))
           for m, targets in g.items() if m.startswith(("dcli.shell", "dcli.output"))}
    assert {m: t for m, t in bad.items() if t} == {}


def test_every_cli_shell_and_output_module_imports_first():
    """Each module imported with none of dcli.cli, dcli.shell, dcli.output loaded yet: a circle
    that only bites from one entry point shows up as an ImportError here."""
    names = sorted(n for n in modules() if n.startswith(CHECKED))
    code = (
        "import importlib, sys\n"
        f"names = {names!r}\n"
        f"checked = {CHECKED!r}\n"
        "failed = []\n"
        "for name in names:\n"
        "    for loaded in [m for m in sys.modules if m.startswith(checked)]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        failed.append(f'{name}: {type(e).__name__}: {e}')\n"
        "print('\\n'.join(failed))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert r.stdout.decode().strip() == ""
    assert len(names) > 30
