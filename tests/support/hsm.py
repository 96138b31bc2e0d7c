"""The test session's SoftHSM2 token.

``hsm_token`` (session, autouse) creates ONE SoftHSM2 token for the whole run under pytest's
temporary directory, with its own ``softhsm2.conf``, and exports the settings every part of
Tombola reads: ``SOFTHSM2_CONF``, ``TOMBOLA_HSM_MODULE``, ``TOMBOLA_HSM_TOKEN_LABEL``,
``TOMBOLA_HSM_PIN_FILE`` and ``TOMBOLA_HSM_DIR``. ``Settings()``, ``Core.open`` and the
``tombola`` processes tests start (they inherit ``os.environ``) therefore all find the token.
The suite's grant and VRF keys are generated once here, before any test, so that concurrent
server processes never race to create them. The environment is restored at the end.

``hsm`` (function) is an open :class:`~gli_core.hsm.Hsm` on that token whose key prefix is unique
to the test, so keys a test generates or rotates never touch the suite's ``tombola-*`` keys.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gli_core.hsm import DEFAULT_MODULE, Hsm, HsmConfig, ensure_softhsm_token, open_hsm

TOKEN_LABEL = "tombola-test"
_ENV_NAMES = (
    "TOMBOLA_HSM_MODULE",
    "TOMBOLA_HSM_TOKEN_LABEL",
    "TOMBOLA_HSM_PIN",
    "TOMBOLA_HSM_PIN_FILE",
    "TOMBOLA_HSM_DIR",
)


@dataclass(frozen=True)
class HsmToken:
    """The session token: where it is and how to open it."""

    directory: Path
    conf: Path
    label: str
    pin_file: Path
    module: str

    @property
    def pin(self) -> str:
        return self.pin_file.read_text().strip()

    def config(self, **changes: object) -> HsmConfig:
        cfg = HsmConfig(module=self.module, token_label=self.label, pin_file=self.pin_file, softhsm_dir=self.directory)
        return replace(cfg, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="session", autouse=True)
def hsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HsmToken | None]:
    """One SoftHSM2 token for the run, found through the environment (see the module docstring)."""
    module = os.environ.get("TOMBOLA_HSM_MODULE") or DEFAULT_MODULE
    if not Path(module).exists():  # tests that need the token fail with hsm_unavailable
        yield None
        return
    directory = tmp_path_factory.mktemp("hsm")
    pin_file = directory / "pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(16) + "\n")
    saved = {k: os.environ.get(k) for k in ("SOFTHSM2_CONF", *_ENV_NAMES)}
    token = HsmToken(directory, directory / "softhsm2.conf", TOKEN_LABEL, pin_file, module)
    try:
        ensure_softhsm_token(directory, TOKEN_LABEL, token.pin, secrets.token_urlsafe(16))  # sets SOFTHSM2_CONF
        os.environ.update(
            TOMBOLA_HSM_MODULE=module,
            TOMBOLA_HSM_TOKEN_LABEL=TOKEN_LABEL,
            TOMBOLA_HSM_PIN_FILE=str(pin_file),
            TOMBOLA_HSM_DIR=str(directory),
        )
        os.environ.pop("TOMBOLA_HSM_PIN", None)
        with open_hsm(token.config()) as h:
            h.grant_signer()
            h.vrf_key()
            h.current("audit")
        yield token
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def hsm(hsm_token: HsmToken | None) -> Iterator[Hsm]:
    """An open Hsm on the session token, with a key prefix of its own."""
    if hsm_token is None:
        pytest.fail(f"no PKCS#11 module at {DEFAULT_MODULE}: run scripts/bootstrap.sh (installs softhsm2)")
    h = open_hsm(hsm_token.config(key_prefix="t" + secrets.token_hex(4)))
    yield h
    h.close()
