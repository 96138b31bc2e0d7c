"""The app's software identity: name, version and a SHA-256 of its files and of the protocol's.

Ontario AGCO POS 1.3.1 and WAC 230-11-310 ask a POS device to show what software it runs. The
digest of a package is SHA-256 over, for each ``*.py`` and ``*.kv`` file under it in sorted
order of its ``/``-separated path relative to the package folder, the path (UTF-8), a zero
byte, the file's SHA-256 (32 bytes). Anyone with the same files computes the same digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pos_client
import sync_protocol

APP_NAME = "Tombola POS"
_SUFFIXES = (".py", ".kv")


def package_digest(folder: Path) -> str:
    """SHA-256 (hex) of the ``*.py`` and ``*.kv`` files under ``folder`` (see the module docstring)."""
    outer = hashlib.sha256()
    files = sorted(
        (p.relative_to(folder).as_posix(), p)
        for p in folder.rglob("*")
        if p.suffix in _SUFFIXES and p.is_file() and "__pycache__" not in p.parts
    )
    for rel, path in files:
        outer.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return outer.hexdigest()


def version() -> str:
    """The installed distribution's version (``0+unknown`` when run from a bare source tree)."""
    try:
        return metadata.version("tombola")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class Identity:
    name: str
    version: str
    app_sha256: str
    protocol_sha256: str


def identity() -> Identity:
    """What the about screen shows: ``pos_client`` (SDK and app) and ``sync_protocol`` digests."""
    return Identity(
        name=APP_NAME,
        version=version(),
        app_sha256=package_digest(Path(pos_client.__file__).parent),
        protocol_sha256=package_digest(Path(sync_protocol.__file__).parent),
    )
