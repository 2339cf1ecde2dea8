"""The type stubs shipped in the package (python/backprop/**/*.pyi) name exactly what the module defines:
every function, class and method of a stub exists at run time, and every public name of the module has a stub.
After a change to the bindings, python/make_stubs regenerates them."""
import ast
import importlib
import pathlib

import pytest

import backprop

STUBS = pathlib.Path(backprop.__file__).parent
MODULES = {"__init__.pyi": "backprop", "_backprop/__init__.pyi": "backprop._backprop"}
MODULES.update({f"_backprop/{n}.pyi": f"backprop._backprop.{n}" for n in ("nn", "loss", "optim", "callbacks")})


def stub_names(tree):
    """Top-level names a stub defines (functions, classes, assignments, imports) and each class's members."""
    names, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            members[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("backprop"):
            names.update(a.asname or a.name for a in node.names)
    return names, members


@pytest.mark.parametrize("stub, module", sorted(MODULES.items()))
def test_stub_matches_module(stub, module):
    path = STUBS / stub
    assert path.exists(), f"{path} is missing: run python/make_stubs"
    mod = importlib.import_module(module)
    names, members = stub_names(ast.parse(path.read_text()))
    names.discard("__all__")
    missing_at_run_time = sorted(n for n in names if not hasattr(mod, n))
    assert not missing_at_run_time, f"{stub} names what {module} lacks: {missing_at_run_time}"
    public = {n for n in dir(mod) if not n.startswith("_") and not isinstance(getattr(mod, n), type(ast))}
    without_stub = sorted(public - names)
    assert not without_stub, f"{module} defines what {stub} lacks (run python/make_stubs): {without_stub}"
    for cls, methods in members.items():
        absent = sorted(m for m in methods if not hasattr(getattr(mod, cls), m))
        assert not absent, f"{stub}: {cls} has no {absent} at run time"
