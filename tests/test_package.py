"""The package as a whole: its import structure and its public docstrings, read from the source
with `ast` (nothing is imported)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aecluster"


def may_import_the_command_line(name: str) -> bool:
    """The command line itself and the `python -m` entry points; not the library."""
    return name == "aecluster.cli" or name.startswith("aecluster.cli.") or name.endswith("__main__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """The package's modules that `path` imports anywhere (module level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in MODULES)
    return found


IMPORTS = {name: imported_modules(path) - {name} for name, path in MODULES.items()}


def test_the_import_graph_has_no_cycle():
    # A package's __init__ runs before its modules: importing a sibling from it is not a cycle.
    graph = {name: {target for target in targets if not name.startswith(target + ".")}
             for name, targets in IMPORTS.items()}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_a_cycle_would_be_found():
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter({"a": {"b"}, "b": {"c"}, "c": {"a"}}).prepare()


def test_the_library_does_not_import_the_command_line():
    upward = {name: sorted(target for target in targets if target.startswith("aecluster.cli"))
              for name, targets in IMPORTS.items() if not may_import_the_command_line(name)}
    assert {name: targets for name, targets in upward.items() if targets} == {}


def test_the_package_uses_relative_imports_nowhere():
    relative = [f"{name}:{node.lineno}" for name, path in MODULES.items()
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert relative == []


def missing_sections(function: ast.FunctionDef | ast.AsyncFunctionDef, owner: ast.ClassDef | None) -> list[str]:
    """The numpydoc sections a public function's docstring lacks: Parameters when it takes
    arguments (a class may document its constructor's in the class docstring), Returns (or Yields)
    when it is annotated to return something."""
    decorators = [ast.unparse(decorator) for decorator in function.decorator_list]
    if "property" in decorators or any(decorator.endswith(".setter") for decorator in decorators):
        return []
    doc = ast.get_docstring(function) or ""
    if function.name == "__init__" and owner is not None:
        doc += ast.get_docstring(owner) or ""
    arguments = [arg.arg for arg in function.args.posonlyargs + function.args.args + function.args.kwonlyargs
                 if arg.arg not in ("self", "cls")]
    arguments += [arg.arg for arg in (function.args.vararg, function.args.kwarg) if arg is not None]
    missing = []
    if arguments and "Parameters\n" not in doc:
        missing.append("Parameters")
    returns = function.returns is not None and ast.unparse(function.returns) not in ("None", "NoReturn")
    if returns and function.name != "__init__" and not any(f"{section}\n" in doc for section in ("Returns", "Yields")):
        missing.append("Returns")
    return missing


def public_functions(tree: ast.Module):
    """(function, owning class or None) for every public function and method, and each public
    class's __init__."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            yield node, None
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                        member.name == "__init__" or not member.name.startswith("_")):
                    yield member, node


def test_every_public_function_has_numpydoc_sections():
    gaps = [f"{name}:{function.lineno} {function.name}: {', '.join(missing)}"
            for name, path in MODULES.items()
            for function, owner in public_functions(ast.parse(path.read_text()))
            if (missing := missing_sections(function, owner))]
    assert gaps == [], "\n".join(gaps)


def test_the_docstring_check_sees_a_missing_section():
    tree = ast.parse('def f(x: int) -> int:\n    """Twice x."""\n    return 2 * x\n\n'
                     'def g(x: int) -> int:\n    """Twice x.\n\n    Parameters\n    ----------\n'
                     '    x : int\n\n    Returns\n    -------\n    int\n    """\n    return 2 * x\n')
    assert [missing_sections(function, owner) for function, owner in public_functions(tree)] == [
        ["Parameters", "Returns"], []]
