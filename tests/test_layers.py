"""The packages form a stack, each importing only those below it.

core (``rtms_proto``) <- conformance kit (``rtms_conformance``) <- drivers
(``rtms_transports``) <- fleet (``rtms_fleet``) <- application (``rtms_app``).
The drivers plug their conformance adapters into the kit by entry point
(``rtms_transports.conformance``, the only driver module that imports the kit),
so no arrow points back up.
Every import counts, those inside functions too.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import pytest

STACK = ("rtms_proto", "rtms_conformance", "rtms_transports", "rtms_fleet", "rtms_app")


def _root(package: str) -> pathlib.Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, package
    return pathlib.Path(spec.origin).parent


def imported_packages(path: pathlib.Path) -> set[str]:
    """The top-level packages ``path`` imports by absolute name, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[pathlib.Path]:
    root = _root(package)
    modules = sorted(root.rglob("*.py"))
    assert modules, package
    return modules


@pytest.mark.parametrize("package", STACK)
def test_no_package_imports_one_above_it(package: str) -> None:
    above = set(STACK[STACK.index(package) + 1 :])
    root = _root(package)
    offenders = [
        f"{path.relative_to(root)} imports {sorted(imported_packages(path) & above)}"
        for path in _modules(package)
        if imported_packages(path) & above
    ]
    assert offenders == []


def test_only_the_adapters_module_of_the_drivers_imports_the_conformance_kit() -> None:
    root = _root("rtms_transports")
    users = [
        str(path.relative_to(root))
        for path in _modules("rtms_transports")
        if "rtms_conformance" in imported_packages(path)
    ]
    assert users == ["conformance.py"]


def test_the_import_check_sees_every_kind_of_import(tmp_path: pathlib.Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import rtms_app.cli\n"
        "from rtms_transports import asyncio\n"
        "from . import sibling\n"
        "def later():\n"
        "    import rtms_conformance.harness as h\n"
    )
    assert imported_packages(sample) == {"rtms_app", "rtms_transports", "rtms_conformance"}
