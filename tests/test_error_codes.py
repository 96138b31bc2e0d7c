"""Every error code of Tombola is unique and listed in ``docs/errors.md``.

Error codes are part of the contract with devices and callers (``{"error": code, ...}``), so
two classes may not share one (except a subclass that inherits its parent's code unchanged: the
same error), and each needs a row in ``docs/errors.md``:

    | `code` | HTTP status | `package.module.Class` | what it means |

The test imports every Tombola package that exists yet (``sync_protocol`` must; ``gli_core``,
``server``, ``pos_client`` and ``admin`` when they are there) and every ``errors.py`` module in
them, then walks ``TombolaError.__subclasses__()`` recursively. Classes defined outside the
Tombola packages (in tests, say) are left out.
"""

from __future__ import annotations

import importlib
import re
from collections import defaultdict
from pathlib import Path

import pytest

from sync_protocol.errors import TombolaError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"
PACKAGES = ("sync_protocol", "gli_core", "server", "pos_client", "admin")
#: A table row of docs/errors.md: | `code` | status | ...
ROW = re.compile(r"^\|\s*`(?P<code>[^`]+)`\s*\|\s*(?P<status>\d{3})\s*\|")


def _load_packages() -> list[str]:
    """Import each Tombola package and its ``errors.py`` modules; return those found."""
    found = []
    for package in PACKAGES:
        try:
            importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name == package:  # not written yet
                continue
            raise
        found.append(package)
        for path in sorted((ROOT / package).rglob("errors.py")):
            if "migrations" in path.parts:
                continue
            importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


LOADED = _load_packages()
ERROR_CLASSES: list[type[TombolaError]] = sorted(
    {c for c in [TombolaError, *_subclasses(TombolaError)] if c.__module__.split(".")[0] in PACKAGES},
    key=lambda c: (c.__module__, c.__qualname__),
)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _documented() -> dict[str, set[int]]:
    """code -> the HTTP statuses its rows in docs/errors.md give."""
    rows: dict[str, set[int]] = defaultdict(set)
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line.strip())
        if match:
            rows[match["code"]].add(int(match["status"]))
    return rows


def test_the_packages_and_their_errors_are_found() -> None:
    assert "sync_protocol" in LOADED
    codes = {c.code for c in ERROR_CLASSES}
    assert {"malformed", "bad_signature", "broken_chain", "sale_after_close"} <= codes


def _same_error(classes: list[type]) -> bool:
    """One class defines the code and the others are its subclasses inheriting it unchanged: one
    error seen from two packages (e.g. the core's guard of a sale rejection), not two meanings."""
    owners = [c for c in classes if "code" in vars(c)]
    return len(owners) == 1 and all(issubclass(c, owners[0]) and "code" not in vars(c) for c in classes[1:])


def test_codes_are_unique() -> None:
    by_code: dict[str, list[type]] = defaultdict(list)
    for cls in ERROR_CLASSES:
        by_code[cls.code].append(cls)
    for classes in by_code.values():
        classes.sort(key=lambda c: "code" not in vars(c))  # the defining class first
    shared = {
        code: [_name(c) for c in classes]
        for code, classes in sorted(by_code.items())
        if len(classes) > 1 and not _same_error(classes)
    }
    assert not shared, "error codes must be unique; give each class its own `code`:\n" + "\n".join(
        f"  code {code!r} is used by {', '.join(names)}" for code, names in shared.items()
    )


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=_name)
def test_code_and_status_are_well_formed(cls: type[TombolaError]) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.code), f"{_name(cls)}: code {cls.code!r} is not snake_case"
    assert isinstance(cls.status, int) and 400 <= cls.status <= 599, f"{_name(cls)}: status {cls.status!r}"


def test_every_code_is_in_docs_errors_md() -> None:
    documented = _documented()
    missing = [cls for cls in ERROR_CLASSES if cls.code not in documented]
    assert not missing, "docs/errors.md lacks a row for these codes; add them to its table:\n" + "\n".join(
        f"  | `{cls.code}` | {cls.status} | `{_name(cls)}` | <meaning> |" for cls in missing
    )


def test_docs_errors_md_gives_the_right_status() -> None:
    documented = _documented()
    wrong = [cls for cls in ERROR_CLASSES if cls.code in documented and cls.status not in documented[cls.code]]
    assert not wrong, "docs/errors.md gives another HTTP status than the class:\n" + "\n".join(
        f"  `{cls.code}`: the doc says {sorted(documented[cls.code])}, {_name(cls)}.status is {cls.status}"
        for cls in wrong
    )
