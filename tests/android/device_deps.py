"""What the point-of-sale device needs, computed from the code and the installed metadata (offline).

Three sources, each read the way the tools read it:
- pyproject.toml (``tomllib``): the device's declared requirements, the base dependencies plus the
  ``pos`` extra;
- the device code (``ast``): the top-level modules that ``sync_protocol`` and ``pos_client``
  (with ``pos_client/app``) import, anywhere in a file, lazy imports included, ``TYPE_CHECKING``
  blocks excluded since they never run;
- the installed distributions (``importlib.metadata``): each requirement's own requirements,
  recursively, with their environment markers and extras evaluated as pip evaluates them.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import sys
import tomllib
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "tombola"
#: the packages that run on the device (pos_client/app is a subpackage of pos_client)
DEVICE_PACKAGES = ("sync_protocol", "pos_client")
#: the project's packages that must never reach the device
SERVER_PACKAGES = ("server", "gli_core", "admin", "dbkit")
#: distributions of the server side that a device install must not pull
SERVER_DISTRIBUTIONS = frozenset(
    canonicalize_name(n)
    for n in (
        "fastapi",
        "sqlalchemy",
        "python-pkcs11",
        "psycopg",
        "psycopg-binary",
        "boto3",
        "uvicorn",
        "sqlmodel",
        "alembic",
        "starlette",
        "fastapi-offline",
    )
)


@cache
def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def declared(extra: str | None = None) -> list[Requirement]:
    """The base dependencies of pyproject.toml, or those of one extra."""
    project = pyproject()["project"]
    texts = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(t) for t in texts]


def device_requirements() -> list[Requirement]:
    """What ``pip install 'tombola[pos]'`` asks for: the base dependencies and the pos extra."""
    return declared() + declared("pos")


def _applies(req: Requirement, extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in ("", *extras))


def closure(
    requirements: Iterable[Requirement], *, stop_at: Iterable[str] = ()
) -> dict[NormalizedName, set[NormalizedName]]:
    """Every distribution ``requirements`` pull, each with who asked for it (``"<root>"`` first).

    Recursion goes through the installed metadata; it does not go below a distribution named in
    ``stop_at`` (one whose build brings its own dependencies, like a python-for-android recipe).
    A requirement on the project itself (``tombola[server]``) is followed into pyproject.toml.
    Raises LookupError for a distribution that is not installed: the answer would be partial.
    """
    stops = {canonicalize_name(s) for s in stop_at}
    found: dict[NormalizedName, set[NormalizedName]] = {}
    expanded: dict[NormalizedName, set[str]] = {}
    todo: list[tuple[Requirement, NormalizedName]] = [(r, NormalizedName("<root>")) for r in requirements]
    while todo:
        req, parent = todo.pop()
        name = canonicalize_name(req.name)
        if name == PROJECT:
            todo.extend((r, parent) for e in sorted(req.extras) for r in declared(e))
            continue
        found.setdefault(name, set()).add(parent)
        if name in stops:
            continue
        extras = set(req.extras)
        if name in expanded and extras <= expanded[name]:
            continue
        expanded[name] = expanded.get(name, set()) | extras
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            raise LookupError(f"{name} (asked for by {parent}) is not installed: run scripts/bootstrap.sh") from None
        for text in requires:
            sub = Requirement(text)
            if _applies(sub, expanded[name]):
                todo.append((sub, name))
    return found


def python_files(packages: Iterable[str]) -> Iterator[Path]:
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names.update(alias.name.partition(".")[0] for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.names.add(node.module.partition(".")[0])


def imported_modules(packages: Iterable[str] = DEVICE_PACKAGES) -> dict[str, set[str]]:
    """Top-level module name -> the files (repo-relative) that import it, for ``packages``."""
    found: dict[str, set[str]] = {}
    for path in python_files(packages):
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for name in visitor.names:
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def third_party(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    """Only the modules that are neither the standard library nor the project's own packages."""
    own = {*DEVICE_PACKAGES, *SERVER_PACKAGES, "__future__"}
    return {m: files for m, files in modules.items() if m not in sys.stdlib_module_names and m not in own}


def distributions_of(module: str) -> set[NormalizedName]:
    """The installed distributions that provide top-level ``module`` (empty when none does)."""
    return {canonicalize_name(d) for d in md.packages_distributions().get(module, [])}


def compiled(distribution: str) -> bool:
    """True when the installed distribution ships extension modules (it needs a cross-compiled build)."""
    files = md.distribution(distribution).files or []
    return any(f.suffix in {".so", ".pyd"} or ".so." in f.name for f in files)
