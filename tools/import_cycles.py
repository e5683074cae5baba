"""List the import cycles among the modules of a package, and imports of its modules that do
not exist (a module moved or renamed; imports inside functions are only seen here). Exit 1
when there is either.

Every import counts, at module level or inside a function, except those under
``if TYPE_CHECKING:``. ``from pkg import name`` counts as an import of ``pkg.name`` when that
is a module, else of ``pkg``. Usage: python tools/import_cycles.py [src/resnets [tests ...]]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def missing(tree: ast.Module, modules: set[str], package: str) -> list[str]:
    """``package.*`` modules imported by ``tree`` that are not among ``modules``."""
    out = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        out += [n for n in names if (n == package or n.startswith(package + ".")) and n not in modules]
    return out


def imports(tree: ast.Module, name: str, is_package: bool, modules: set[str]) -> set[str]:
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    return {m for m in found if m in modules and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "src/resnets")
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    graph = {
        name: imports(ast.parse(path.read_text()), name, path.name == "__init__.py", modules)
        for name, path in files.items()
    }
    # a package imports its submodules; a submodule importing its own package's __init__ is the
    # usual re-export pattern, not a cycle to fix: drop parent-package edges
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    found = cycles(graph)
    for comp in found:
        print("import cycle: " + " <-> ".join(comp))
    package = root.name
    extra = [Path(p) for p in argv[2:]]  # more files or folders whose imports of the package are checked
    scanned = list(files.values()) + [p for e in extra for p in ([e] if e.is_file() else sorted(e.rglob("*.py")))]
    absent = [(path, m) for path in scanned for m in missing(ast.parse(path.read_text()), modules, package)]
    for path, m in absent:
        print(f"{path}: imports {m}, which does not exist")
    print(f"{len(files)} modules, {sum(len(v) for v in graph.values())} imports, {len(found)} cycle(s), "
          f"{len(absent)} missing module(s)")
    return 1 if found or absent else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
