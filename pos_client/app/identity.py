"""The app's software identity: name, version and a SHA-256 of its files and of the protocol's.

Ontario AGCO POS 1.3.1 and WAC 230-11-310 ask a POS device to show what software it runs. The
digest of a package is :func:`sync_protocol.identity.package_digest` (the server's health page
computes its own packages' digests with the same function).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pos_client
import sync_protocol
from sync_protocol.identity import package_digest

APP_NAME = "Tombola POS"
__all__ = ["APP_NAME", "Identity", "identity", "package_digest", "version"]


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
