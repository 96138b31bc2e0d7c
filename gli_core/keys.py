"""A software grant-signing key, for unit tests only.

The core signs grants with an Ed25519 key generated inside the HSM (:mod:`gli_core.hsm`,
``Core.open``). This file-backed key remains for unit tests that build ``Core(engine, signer)``
directly with no token; nothing in the running core uses it.
"""

from __future__ import annotations

import os
from pathlib import Path

from sync_protocol.signing import SoftwareSigner

GRANT_KEY_FILE = "grant-signing.pem"


def load_or_create_grant_signer(key_dir: Path) -> SoftwareSigner:
    """Load the grant key from ``key_dir``, creating it (0600) on first use."""
    path = key_dir / GRANT_KEY_FILE
    if path.exists():
        return SoftwareSigner.from_pem(path.read_bytes())
    key_dir.mkdir(parents=True, exist_ok=True)
    signer = SoftwareSigner.generate()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(signer.to_pem())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return signer
