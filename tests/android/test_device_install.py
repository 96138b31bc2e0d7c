"""The device install (``pip install 'tombola[pos]'``) pulls no server dependency.

pyproject.toml keeps the device's set as the base dependencies plus the ``pos`` extra and the
server's in the ``server`` extra; these tests resolve both sets through the installed metadata
(offline, well under a second) and check what each holds.
"""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.android.device_deps import (
    SERVER_DISTRIBUTIONS,
    closure,
    declared,
    device_requirements,
    distributions_of,
    imported_modules,
    third_party,
)


def test_device_set_has_no_server_dependency() -> None:
    pulled = closure(device_requirements())
    leaked = {name: sorted(pulled[name]) for name in SERVER_DISTRIBUTIONS & set(pulled)}
    assert leaked == {}, f"the device install pulls server dependencies (name: asked for by): {leaked}"


def test_the_server_extra_holds_the_server_dependencies() -> None:
    # The same resolver finds them where they belong, so the check above is not vacuous.
    server = set(closure(declared("server")))
    for name in ("fastapi", "sqlalchemy", "python-pkcs11", "psycopg", "uvicorn"):
        assert name in server
    assert "boto3" in closure(declared("aws"))


def test_dev_extra_installs_the_server() -> None:
    # scripts/bootstrap.sh and older instructions install '.[dev,aws]': that must still give a server.
    dev = declared("dev")
    assert Requirement("tombola[server]") in dev or any(
        canonicalize_name(r.name) == "tombola" and "server" in r.extras for r in dev
    )
    assert {"fastapi", "sqlalchemy", "python-pkcs11"} <= set(closure(dev))


def test_device_code_imports_only_what_the_device_set_installs() -> None:
    # A module that sync_protocol or pos_client imports but that only the server extra (or the dev
    # extra) installs would break the device install at run time.
    pulled = set(closure(device_requirements()))
    missing = {}
    for module, files in sorted(third_party(imported_modules()).items()):
        dists = distributions_of(module)
        if not dists & pulled:
            missing[module] = (sorted(dists), sorted(files))
    assert missing == {}, f"imported by device code but not in the base dependencies or the pos extra: {missing}"
