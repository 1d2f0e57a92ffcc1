"""The import graph points down: services → libs → core, read from the sources without Pants.

Every module under ``libs/`` (tests included) is parsed with ``ast``; an import of a module that
lives under ``services/`` fails, as does an import cycle between libraries or any I/O or
third-party import in the core beyond pydantic and PyYAML (the core holds the rules, not the I/O).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] if (Path(__file__).parents[2] / "libs").is_dir() else Path.cwd()
#: The core may import the standard library (minus I/O), itself, and these.
CORE_THIRD_PARTY = frozenset({"pydantic", "yaml"})
#: Standard-library modules that do I/O, keep time or run threads: the shells' business.
IO_MODULES = frozenset(
    {
        "asyncio",
        "http",
        "io",
        "logging",
        "os",
        "pathlib",
        "select",
        "shutil",
        "socket",
        "ssl",
        "subprocess",
        "tempfile",
        "threading",
        "time",
        "urllib",
    }
)


def roots(top: str) -> list[Path]:
    """The source roots under ``top`` (``libs/*``, ``services/*``)."""
    return sorted(p for p in (ROOT / top).iterdir() if p.is_dir())


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def service_modules() -> frozenset[str]:
    """Modules and regular packages that live under ``services/`` (a namespace package shared with a
    library, ``katib_dbmanager``, is not one; its service-side modules are)."""
    return frozenset(name for root in roots("services") for name, _ in modules(root))


def imports(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import of ``path`` (module ``name``), relative ones resolved; for
    ``from m import a`` both ``m`` and ``m.a`` (``a`` may be a submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*")


def within(module: str, names: frozenset[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in names for i in range(1, len(parts) + 1))


def lib_of(module: str, owners: dict[str, str]) -> str | None:
    parts = module.split(".")
    return next((owners[".".join(parts[:i])] for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in owners), None)


def test_the_sources_are_here() -> None:
    assert (ROOT / "libs" / "core" / "katib_core" / "__init__.py").is_file(), ROOT
    assert "katib_webhook.server" in service_modules()
    assert "katib_dbmanager.main" in service_modules()
    assert "katib_dbmanager.server" not in service_modules()


def test_no_library_imports_a_service() -> None:
    services = service_modules()
    upward = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for root in roots("libs")
        for name, path in modules(root)
        for line, module in imports(name, path)
        if within(module, services)
    ]
    assert not upward, "libraries import services:\n" + "\n".join(upward)


def test_the_libraries_form_no_cycle() -> None:
    owners = {name: root.name for root in roots("libs") for name, _ in modules(root)}
    edges: dict[str, set[str]] = {root.name: set() for root in roots("libs")}
    for root in roots("libs"):
        for name, path in modules(root):
            if path.name.endswith("_test.py") or path.name == "conftest.py":
                continue
            for _, module in imports(name, path):
                target = lib_of(module, owners)
                if target is not None and target != root.name:
                    edges[root.name].add(target)
    done: set[str] = set()

    def visit(lib: str, trail: list[str]) -> None:
        if lib in trail:
            pytest.fail("import cycle between libraries: " + " → ".join([*trail[trail.index(lib) :], lib]))
        if lib not in done:
            for target in sorted(edges[lib]):
                visit(target, [*trail, lib])
            done.add(lib)

    for lib in sorted(edges):
        visit(lib, [])


def test_the_core_imports_only_itself_the_standard_library_pydantic_and_yaml() -> None:
    allowed = (set(sys.stdlib_module_names) - IO_MODULES) | CORE_THIRD_PARTY | {"katib_core", "__future__"}
    found = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for name, path in modules(ROOT / "libs" / "core")
        if not (path.name.endswith("_test.py") or path.name == "conftest.py")
        for line, module in imports(name, path)
        if module and module.split(".")[0] not in allowed
    ]
    assert not found, "the core imports I/O or third-party modules:\n" + "\n".join(found)
