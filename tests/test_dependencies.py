"""Which package may import which: read from the source (ast), so nothing is imported or run.

The contracts both sides share live in a few `knyang_cam` modules (CONTRACTS, the one list of them).
Training imports only those; the live app never imports training (it runs it as a subprocess); and no
app module pulls TensorFlow in when it is imported (classify loads it inside its GPU backend only).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP, TRAIN = "knyang_cam", "train"

# The knyang_cam modules training may import: data types, files and messages both sides agree on.
CONTRACTS = frozenset(f"{APP}.{name}" for name in
                      ("config", "model_dir", "finder_model", "results", "errors", "atomic", "events", "paths",
                       "model_out", "bundled", "extras", "litert"))
# `from knyang_cam import config` names the package too: its __init__ is held to the contracts' rule.
SHARED = CONTRACTS | {APP}
MODEL_LIBRARIES = ("tensorflow", "keras")


def module_name(path: Path) -> str:
    """`knyang_cam/config.py` -> `knyang_cam.config` (a package's __init__ is the package)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(folder: str) -> list[Path]:
    """Every module file under `folder`, in its sub-packages too (knyang_cam/sources/)."""
    return sorted((ROOT / folder).rglob("*.py"))


def parent_package(module: str, is_package: bool = False) -> str:
    """What a relative import in `module` starts from: the package that holds it, or itself for an __init__."""
    return module if is_package or "." not in module else module.rsplit(".", 1)[0]


def imports(source: str, module: str, top_level_only: bool = False, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`; an __init__ when `is_package`) imports, dotted and absolute.

    `from pkg import name` counts as `pkg.name` as well as `pkg`, since `name` may be a submodule.
    With `top_level_only`, imports inside functions (run on first call, not on import) are left out.
    """
    package = parent_package(module, is_package)
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(source))
    return found


def package_imports(package: str, top_level_only: bool = False) -> dict[str, set[str]]:
    files = modules_of(package)
    assert files, f"no modules found under {ROOT / package}"
    return {module_name(f): imports(f.read_text(encoding="utf-8"), module_name(f), top_level_only,
                                    f.name == "__init__.py")
            for f in files}


def app_modules() -> set[str]:
    return {module_name(f) for f in modules_of(APP)}


def within(names: set[str], package: str) -> set[str]:
    """The names that are `package` itself or inside it."""
    return {n for n in names if n == package or n.startswith(package + ".")}


def offenders(found: dict[str, set[str]]) -> dict[str, list[str]]:
    """The modules with something forbidden, and what."""
    return {module: sorted(names) for module, names in found.items() if names}


def test_training_imports_only_the_contract_modules_of_the_app():
    known = app_modules()
    wrong = offenders({module: (within(found, APP) & known) - SHARED
                       for module, found in package_imports(TRAIN).items()})
    assert not wrong, \
        f"train imports app modules that are not contracts ({sorted(CONTRACTS)}): {wrong}"


def test_contract_modules_import_only_other_contracts():
    # Otherwise training would pull a live-loop module in through a contract.
    known = app_modules()
    wrong = offenders({module: (within(found, APP) & known) - SHARED - {module}
                       for module, found in package_imports(APP).items() if module in SHARED})
    assert not wrong, f"contract modules import live-loop modules: {wrong}"


def test_no_app_module_imports_training():
    wrong = offenders({module: within(found, TRAIN) for module, found in package_imports(APP).items()})
    assert not wrong, \
        f"the app reaches training only as a subprocess (python -m train...): {wrong}"


def test_no_app_module_imports_a_model_library_when_imported():
    wrong = offenders({module: {n for lib in MODEL_LIBRARIES for n in within(found, lib)}
                       for module, found in package_imports(APP, top_level_only=True).items()})
    assert not wrong, \
        f"import TensorFlow/Keras inside the function that needs it: {wrong}"


def bound_names(init: Path) -> set[str]:
    """The names a package's __init__ binds at its top level (assigned, defined or imported): `from pkg import
    name` may name those as well as submodules."""
    if not init.is_file():
        return set()
    names = set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def missing_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """The project modules `source` imports (at any depth, lazily too) that have no file."""
    def exists(name: str) -> bool:
        path = ROOT.joinpath(*name.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    package = parent_package(module, is_package)
    missing = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            # A name imported from a package is a module, unless the package's __init__ binds it.
            init = ROOT / target.replace(".", "/") / "__init__.py"
            bound = bound_names(init)
            targets = [target] + [f"{target}.{alias.name}" for alias in node.names
                                  if init.is_file() and alias.name not in bound]
        else:
            continue
        missing.update(t for t in targets if t.split(".")[0] in (APP, TRAIN) and not exists(t))
    return missing


def test_every_project_import_names_a_module_that_exists():
    # Imports inside functions run only on their first call: a renamed module would break them
    # in the middle of a run (say, on --report), not at start-up where any test would notice.
    files = [f for folder in (APP, TRAIN, "tests", "bench") for f in modules_of(folder)]
    wrong = offenders({module_name(f): missing_modules(f.read_text(encoding="utf-8"), module_name(f),
                                                       f.name == "__init__.py")
                       for f in files})
    assert not wrong, f"imports of modules that do not exist: {wrong}"


def test_the_contract_list_names_modules_that_exist_or_are_announced():
    missing = CONTRACTS - app_modules()
    assert not missing, f"CONTRACTS names modules that do not exist: {sorted(missing)}"


@pytest.mark.parametrize("source, module, is_package, expected", [
    ("def f():\n    from .report import VideoReport\n", "knyang_cam.app", False, {"knyang_cam.report"}),
    ("from knyang_cam import config, nosuch\n", "tests.test_x", False, {"knyang_cam.nosuch"}),
    ("from . import events, model_dir\nfrom .config import X\nimport numpy\n", "knyang_cam.app", False, set()),
    ("from .model import infer\nfrom knyang_cam.errors import UserError\n", "train.fit", False, set()),
    # A sub-package: the names its __init__ imports from its modules are not modules themselves.
    ("from knyang_cam.sources import Frame, open_source, nosuch\n", "tests.test_x", False,
     {"knyang_cam.sources.nosuch"}),
    # Its __init__'s relative imports start from the package itself, its modules' from the package too.
    ("from .camera import Camera\nfrom .nosuch import X\n", "knyang_cam.sources", True, {"knyang_cam.sources.nosuch"}),
    ("from .base import Frame\nfrom ..errors import UserError\n", "knyang_cam.sources.files", False, set()),
])
def test_the_module_check_finds_imports_of_missing_modules(source, module, is_package, expected):
    assert missing_modules(source, module, is_package) == expected


@pytest.mark.parametrize("source, module, top_level_only, expected, absent", [
    ("from . import events, model_dir\nfrom .config import TrainConfig\n", "knyang_cam.app", False,
     {"knyang_cam.events", "knyang_cam.model_dir", "knyang_cam.config"}, set()),
    ("from knyang_cam.app import run\nimport knyang_cam.sources\n", "train.pipeline", False,
     {"knyang_cam.app", "knyang_cam.sources"}, set()),
    ("def f():\n    import tensorflow as tf\nclass C:\n    import keras\n", "knyang_cam.classify", True,
     {"keras"}, {"tensorflow"}),
    ("try:\n    import tensorflow\nexcept ImportError:\n    pass\n", "knyang_cam.x", True, {"tensorflow"}, set()),
    ("from .model import infer\n", "train.fit", False, {"train.model", "train.model.infer"}, set()),
])
def test_the_import_reader_sees_what_the_rules_forbid(source, module, top_level_only, expected, absent):
    found = imports(source, module, top_level_only)
    assert expected <= found and not (absent & found), found
