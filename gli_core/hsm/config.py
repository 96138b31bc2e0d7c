"""Settings of the PKCS#11 token, shared by the embedded SoftHSM2 set-up and any other module.

Only the settings differ between SoftHSM2 (embedded, tests) and a hardware module such as
CloudHSM's PKCS#11 library (production): the code paths are the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gli_core.hsm.errors import HsmUnavailable

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
DEFAULT_TOKEN_LABEL = "tombola"  # noqa: S105 - a label, not a secret
DEFAULT_KEY_PREFIX = "tombola"
PIN_FILE_NAME = "pin"

ENV_MODULE = "TOMBOLA_HSM_MODULE"
ENV_TOKEN_LABEL = "TOMBOLA_HSM_TOKEN_LABEL"  # noqa: S105 - a variable name
ENV_PIN = "TOMBOLA_HSM_PIN"
ENV_PIN_FILE = "TOMBOLA_HSM_PIN_FILE"
ENV_DIR = "TOMBOLA_HSM_DIR"


def is_softhsm(module: str) -> bool:
    """True when ``module`` is SoftHSM2's library (the embedded token we may create ourselves)."""
    return "softhsm" in Path(module).name.lower()


@dataclass(frozen=True)
class HsmConfig:
    """Where the token is and how to log in.

    Attributes:
        module: path of the PKCS#11 library (``TOMBOLA_HSM_MODULE``).
        token_label: label of the token (``TOMBOLA_HSM_TOKEN_LABEL``); tokens are found by
            label, never by slot number.
        pin: the user PIN (``TOMBOLA_HSM_PIN``), if given directly.
        pin_file: a file holding the PIN (``TOMBOLA_HSM_PIN_FILE``), e.g. a mounted secret.
        softhsm_dir: the embedded SoftHSM2 token directory (``TOMBOLA_HSM_DIR``, default
            ``$TOMBOLA_HOME/hsm``); only used when ``module`` is SoftHSM2. Its ``pin`` file is
            the PIN of last resort, written by ``tombola init``.
        key_prefix: first part of every key label (``tombola-grant-...``).
        rotation_days: age after which a key is due for rotation.
    """

    module: str = DEFAULT_MODULE
    token_label: str = DEFAULT_TOKEN_LABEL
    pin: str | None = field(default=None, repr=False)
    pin_file: Path | None = None
    softhsm_dir: Path | None = None
    key_prefix: str = DEFAULT_KEY_PREFIX
    rotation_days: int = 90

    @classmethod
    def for_installation(
        cls,
        *,
        home: Path | None,
        module: str = DEFAULT_MODULE,
        token_label: str = DEFAULT_TOKEN_LABEL,
        pin: str | None = None,
        pin_file: Path | None = None,
        hsm_dir: Path | None = None,
    ) -> HsmConfig:
        """The configuration of an installation under ``home``.

        For SoftHSM2 the token directory is ``hsm_dir``, else ``home/hsm``; Tombola writes its own
        ``softhsm2.conf`` there and points ``SOFTHSM2_CONF`` at it. Other modules get none.
        """
        softhsm_dir: Path | None = None
        if is_softhsm(module):
            softhsm_dir = hsm_dir if hsm_dir is not None else (home / "hsm" if home is not None else None)
        return cls(
            module=module,
            token_label=token_label,
            pin=pin or None,
            pin_file=pin_file,
            softhsm_dir=softhsm_dir,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, home: Path | None = None) -> HsmConfig:
        """The configuration from ``TOMBOLA_HSM_*`` variables (the same names ``Settings`` reads)."""
        env = os.environ if environ is None else environ
        return cls.for_installation(
            home=home,
            module=env.get(ENV_MODULE) or DEFAULT_MODULE,
            token_label=env.get(ENV_TOKEN_LABEL) or DEFAULT_TOKEN_LABEL,
            pin=env.get(ENV_PIN) or None,
            pin_file=Path(env[ENV_PIN_FILE]) if env.get(ENV_PIN_FILE) else None,
            hsm_dir=Path(env[ENV_DIR]) if env.get(ENV_DIR) else None,
        )

    @property
    def embedded_pin_file(self) -> Path | None:
        """``softhsm_dir/pin``: where ``tombola init`` keeps the embedded token's PIN."""
        return self.softhsm_dir / PIN_FILE_NAME if self.softhsm_dir is not None else None

    def resolve_pin(self) -> str:
        """The PIN: ``pin``, else the content of ``pin_file``, else the embedded PIN file.

        Raises:
            HsmUnavailable: no PIN is configured or the PIN file cannot be read.
        """
        if self.pin:
            return self.pin
        for path in (self.pin_file, self.embedded_pin_file):
            if path is None:
                continue
            try:
                text = path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                if path is self.pin_file:
                    raise HsmUnavailable(f"the HSM PIN file {path} does not exist", reason="pin") from None
                continue
            except OSError as exc:
                raise HsmUnavailable(f"the HSM PIN file {path} cannot be read: {exc.strerror}", reason="pin") from exc
            if not text:
                raise HsmUnavailable(f"the HSM PIN file {path} is empty", reason="pin")
            return text
        raise HsmUnavailable(
            f"no PIN for token {self.token_label!r}: set TOMBOLA_HSM_PIN or TOMBOLA_HSM_PIN_FILE "
            "(embedded mode: run `tombola init`)",
            reason="pin",
        )

    def with_pin(self, pin: str) -> HsmConfig:
        return replace(self, pin=pin)
