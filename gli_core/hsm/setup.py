"""Opening the configured token, and the embedded set-up ``tombola init`` does."""

from __future__ import annotations

from gli_core.hsm.config import HsmConfig, is_softhsm
from gli_core.hsm.errors import HsmUnavailable
from gli_core.hsm.softhsm import configure_softhsm, prepare_softhsm
from gli_core.hsm.token import Hsm


def open_hsm(config: HsmConfig) -> Hsm:
    """Open the token of ``config``.

    For the embedded SoftHSM2 token (``config.softhsm_dir``) SoftHSM2 is first pointed at its
    directory. A missing token is never created here (a mistyped label would otherwise get new
    keys that no device pins): ``tombola init`` creates it.

    Raises:
        HsmUnavailable: the token cannot be used.
    """
    if config.softhsm_dir is None or not is_softhsm(config.module):
        return Hsm.open(config)
    configure_softhsm(config.softhsm_dir)
    try:
        return Hsm.open(config)
    except HsmUnavailable as exc:
        if exc.reason != "token":
            raise
        raise HsmUnavailable(
            f"{exc.detail} (SoftHSM2 directory {config.softhsm_dir}; run `tombola init` to create the token)",
            reason="token",
        ) from exc


def init_hsm(config: HsmConfig) -> Hsm:
    """``tombola init``: for the embedded SoftHSM2 token, generate the PIN into
    ``softhsm_dir/pin`` (0600) when none is configured and create the token; then open it and
    make sure the current grant, VRF and audit-checkpoint keys exist (generated in the token)."""
    hsm = Hsm.open(prepare_softhsm(config, create_pin=True))
    try:
        hsm.grant_signer()
        hsm.vrf_key()
        hsm.current("audit")
    except BaseException:
        hsm.close()
        raise
    return hsm
