"""Software identity: the SHA-256 digest of a package's source files, as a device's About screen
and the server's health page show it (Ontario AGCO POS 1.3.1, WAC 230-11-310: software that says
what it runs).

The digest of a package folder is SHA-256 over, for each ``*.py`` and ``*.kv`` file under it in
sorted order of its ``/``-separated path relative to the folder (``__pycache__`` left out), the
path (UTF-8), a zero byte, and the file's SHA-256 (32 bytes). Anyone with the same files computes
the same digest. One function, called by the POS app (``pos_client.app.identity``) and the server
(``server.status``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SUFFIXES = (".py", ".kv")


def package_digest(folder: Path) -> str:
    """SHA-256 (hex) of the ``*.py`` and ``*.kv`` files under ``folder`` (see the module docstring)."""
    outer = hashlib.sha256()
    files = sorted(
        (p.relative_to(folder).as_posix(), p)
        for p in folder.rglob("*")
        if p.suffix in SUFFIXES and p.is_file() and "__pycache__" not in p.parts
    )
    for rel, path in files:
        outer.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return outer.hexdigest()
