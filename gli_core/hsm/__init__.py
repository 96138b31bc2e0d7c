"""The core's hardware security module through PKCS#11: random bytes, and signing keys that are
generated inside the token and never leave it (invariant I8).

>>> from gli_core.hsm import HsmConfig, open_hsm
>>> with open_hsm(HsmConfig.from_env(home=Path("var"))) as hsm:  # doctest: +SKIP
...     signer = hsm.grant_signer()          # Ed25519, CKM_EDDSA
...     vrf = hsm.vrf_key()                  # RSA-2048, CKM_RSA_X_509
...     nonce = hsm.generate_random(32)      # C_GenerateRandom

``docs/hsm-and-rng.md`` explains the set-up, settings, key labels and rotation.
"""

from gli_core.hsm.config import DEFAULT_MODULE, DEFAULT_TOKEN_LABEL, HsmConfig, is_softhsm
from gli_core.hsm.errors import HsmUnavailable
from gli_core.hsm.keys import PURPOSES, HsmEd25519Signer, HsmPublicKey, HsmRsaKey, KeyLabel, rotation_due, rsa_key_id
from gli_core.hsm.setup import init_hsm, open_hsm
from gli_core.hsm.softhsm import ensure_softhsm_token
from gli_core.hsm.token import Hsm

__all__ = [
    "DEFAULT_MODULE",
    "DEFAULT_TOKEN_LABEL",
    "PURPOSES",
    "Hsm",
    "HsmConfig",
    "HsmEd25519Signer",
    "HsmPublicKey",
    "HsmRsaKey",
    "HsmUnavailable",
    "KeyLabel",
    "ensure_softhsm_token",
    "init_hsm",
    "is_softhsm",
    "open_hsm",
    "rotation_due",
    "rsa_key_id",
]
