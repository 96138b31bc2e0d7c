"""The production signers of audit checkpoints: the HSM's audit key and an AWS KMS key.

Both are :class:`~gli_core.audit.note.NoteSigner` objects; ``docs/audit-checkpoints.md`` gives
the note format and the key types.

- :class:`HsmNoteSigner`: the token's current ``audit`` key (Ed25519, signature type 0x01),
  generated inside the token and never leaving it (CKM_EDDSA through
  :class:`~gli_core.hsm.keys.HsmEd25519Signer`). Rotation (``Hsm.rotate("audit")``) adds a
  generation and keeps the old ones: :func:`hsm_audit_verifiers` lists the verifier keys of all
  of them, which is what a verifier of old checkpoints needs. Token failures raise
  :class:`~gli_core.hsm.errors.HsmUnavailable` (``hsm_unavailable``, 503) as everywhere in the core.
- :class:`KmsNoteSigner`: an asymmetric KMS key of spec ``ECC_NIST_P256`` (signature type 0x02,
  ECDSA over SHA-256, ASN.1 DER, exactly what ``kms.sign(..., SigningAlgorithm="ECDSA_SHA_256")``
  returns). KMS has no Ed25519 in moto, and type 0x02 is the registered signed-note type for
  this signature. :func:`create_kms_audit_key` creates the key and its alias once.
  KMS failures raise :class:`AuditSignerUnavailable` (503) when they may pass (endpoint down,
  throttled, KMS internal error) and :class:`AuditSignerMisconfigured` (500) when an operator
  must act (no such key, wrong key spec or usage, key disabled, access denied).

The boto3 client is passed in (``Any``: boto3 is the optional ``aws`` extra and has no types);
this module imports botocore only when it has to classify an error a client raised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gli_core.audit.note import SIG_ECDSA, SIG_ED25519, NoteVerifier, check_key_name
from gli_core.errors import CoreError
from gli_core.hsm.errors import HsmUnavailable
from gli_core.hsm.keys import HsmEd25519Signer
from gli_core.hsm.token import Hsm

__all__ = [
    "AUDIT_PURPOSE",
    "DEFAULT_KMS_ALIAS",
    "KMS_KEY_SPEC",
    "KMS_SIGNING_ALGORITHM",
    "AuditSignerMisconfigured",
    "AuditSignerUnavailable",
    "HsmNoteSigner",
    "KmsNoteSigner",
    "create_kms_audit_key",
    "hsm_audit_verifiers",
]

T = TypeVar("T")

#: The HSM key purpose of checkpoint keys (``gli_core.hsm.keys.PURPOSES``).
AUDIT_PURPOSE: Final = "audit"
DEFAULT_KMS_ALIAS: Final = "alias/tombola-audit"
KMS_KEY_SPEC: Final = "ECC_NIST_P256"
KMS_SIGNING_ALGORITHM: Final = "ECDSA_SHA_256"
#: The largest message ``kms.sign`` takes with ``MessageType="RAW"``; longer ones are sent as
#: their SHA-256 digest (``MessageType="DIGEST"``), which yields the same ECDSA signature.
KMS_RAW_MESSAGE_LIMIT: Final = 4096

#: KMS error codes that will not go away by retrying: an operator must fix the key or the policy.
_MISCONFIGURED_CODES: Final = frozenset(
    {
        "AccessDeniedException",
        "DisabledException",
        "IncorrectKeyException",
        "InvalidArnException",
        "InvalidKeyUsageException",
        "KMSInvalidStateException",
        "NotFoundException",
        "UnsupportedOperationException",
        "ValidationException",
    }
)


class AuditSignerUnavailable(CoreError):
    """The checkpoint signer cannot be reached now (KMS endpoint down, throttled, KMS internal
    error); no checkpoint is issued. Retry later."""

    code = "audit_signer_unavailable"
    status = 503


class AuditSignerMisconfigured(CoreError):
    """The checkpoint signer's key cannot be used: no such KMS key or alias, a key that is not
    ``ECC_NIST_P256`` / ``SIGN_VERIFY``, a disabled key, or access denied."""

    code = "audit_signer_misconfigured"
    status = 500


# -- HSM ---------------------------------------------------------------------------------------


class HsmNoteSigner:
    """Signs notes with the token's current ``audit`` key (Ed25519, CKM_EDDSA).

    The signer is bound to the key that is current when it is made (so its ``public_key`` is
    always the key that signs); after a rotation make a new one.

    Raises (on construction):
        NoteKeyInvalid: ``key_name`` is not a valid note key name.
        HsmUnavailable: the token cannot be used, or (``create=False``) has no audit key.
    """

    def __init__(self, hsm: Hsm, key_name: str, *, create: bool = True) -> None:
        self._name = check_key_name(key_name)
        key = hsm.current(AUDIT_PURPOSE, create=create)
        if not isinstance(key, HsmEd25519Signer):
            raise HsmUnavailable(f"the audit key {key.label!r} is not an Ed25519 key", reason="key")
        self._key = key

    @property
    def key_name(self) -> str:
        return self._name

    @property
    def sig_type(self) -> int:
        return SIG_ED25519

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._key.public_key

    @property
    def label(self) -> str:
        """The token label of the key (``{prefix}-audit-{stamp}-{tag}``)."""
        return self._key.label

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message`` made inside the token.

        Raises:
            HsmUnavailable: the token cannot be used.
        """
        return self._key.sign(message)

    def verifier(self) -> NoteVerifier:
        """The verifier of this key (``.vkey`` is the string to publish)."""
        return NoteVerifier.from_key(self)

    def __repr__(self) -> str:
        return f"HsmNoteSigner({self._name!r}, {self._key.label!r})"


def hsm_audit_verifiers(hsm: Hsm, key_name: str) -> list[NoteVerifier]:
    """The verifiers of every generation of the token's audit key under ``key_name``, oldest
    first (``[v.vkey for v in ...]`` gives the verifier key strings to publish).

    Raises:
        HsmUnavailable: the token cannot be used.
    """
    check_key_name(key_name)
    return [
        NoteVerifier(key_name, SIG_ED25519, key.public_key)
        for key in hsm.keys(AUDIT_PURPOSE)
        if isinstance(key, HsmEd25519Signer)
    ]


# -- AWS KMS -----------------------------------------------------------------------------------


def _error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError``, else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    return str(code) if code else None


def _translate(exc: Exception, what: str, key_id: str) -> CoreError | None:
    """The Tombola error for a botocore error ``exc`` raised by a KMS call, or None for others."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = _error_code(exc) or "unknown"
        if code in _MISCONFIGURED_CODES:
            return AuditSignerMisconfigured(f"KMS refused {what} for key {key_id!r}: {exc}", kms_error=code)
        return AuditSignerUnavailable(f"KMS failed {what} for key {key_id!r}: {exc}", kms_error=code)
    if isinstance(exc, BotoCoreError):
        return AuditSignerUnavailable(
            f"KMS cannot be reached for {what} with key {key_id!r}: {type(exc).__name__}: {exc}"
        )
    return None


def _kms(what: str, key_id: str, call: Callable[[], T]) -> T:
    """Run one KMS call; botocore errors become :class:`AuditSignerUnavailable` or
    :class:`AuditSignerMisconfigured`."""
    try:
        return call()
    except Exception as exc:
        error = _translate(exc, what, key_id)
        if error is None:
            raise
        raise error from exc


def _check_key_metadata(key_id: str, spec: object, usage: object, algorithms: object = None) -> None:
    if spec != KMS_KEY_SPEC:
        raise AuditSignerMisconfigured(
            f"the KMS key {key_id!r} has key spec {spec!r}; audit checkpoints need {KMS_KEY_SPEC} (ECDSA P-256)"
        )
    if usage != "SIGN_VERIFY":
        raise AuditSignerMisconfigured(f"the KMS key {key_id!r} has key usage {usage!r}, not SIGN_VERIFY")
    if isinstance(algorithms, list | tuple) and KMS_SIGNING_ALGORITHM not in algorithms:
        raise AuditSignerMisconfigured(f"the KMS key {key_id!r} cannot sign with {KMS_SIGNING_ALGORITHM}")


class KmsNoteSigner:
    """Signs notes with an AWS KMS key of spec ``ECC_NIST_P256`` (signature type 0x02).

    On construction it reads the public key (``kms.get_public_key``), checks the key spec, usage
    and algorithm, and from then on signs with the key's ARN as KMS reported it, so that moving
    an alias to another key cannot make this signer sign with a key that is not its
    ``public_key``.

    Args:
        kms_client: a boto3 KMS client.
        key_id: key id, ARN, alias name (``alias/...``) or alias ARN.
        key_name: the note key name (Tombola: the log's origin).

    Raises (on construction):
        NoteKeyInvalid: ``key_name`` is not a valid note key name.
        AuditSignerMisconfigured: no such key, or not an ECC_NIST_P256 signing key.
        AuditSignerUnavailable: KMS cannot be reached.
    """

    def __init__(self, kms_client: Any, key_id: str, key_name: str) -> None:
        self._name = check_key_name(key_name)
        self._kms = kms_client
        response: dict[str, Any] = _kms("GetPublicKey", key_id, lambda: kms_client.get_public_key(KeyId=key_id))
        spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec")
        _check_key_metadata(key_id, spec, response.get("KeyUsage"), response.get("SigningAlgorithms"))
        try:
            key = serialization.load_der_public_key(bytes(response["PublicKey"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise AuditSignerMisconfigured(f"KMS returned no readable public key for {key_id!r}") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise AuditSignerMisconfigured(f"the public key KMS returned for {key_id!r} is not on P-256")
        self._public = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._key_id = str(response.get("KeyId") or key_id)

    @property
    def key_name(self) -> str:
        return self._name

    @property
    def sig_type(self) -> int:
        return SIG_ECDSA

    @property
    def public_key(self) -> bytes:
        """DER SubjectPublicKeyInfo of the P-256 key (uncompressed point)."""
        return self._public

    @property
    def kms_key_id(self) -> str:
        """The key's ARN (or id) that every ``kms.sign`` names."""
        return self._key_id

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 signature of SHA-256(``message``) by KMS, ASN.1 DER.

        Raises:
            AuditSignerUnavailable: KMS cannot be reached or failed.
            AuditSignerMisconfigured: KMS refuses the key.
        """
        if len(message) <= KMS_RAW_MESSAGE_LIMIT:
            params = {"Message": message, "MessageType": "RAW"}
        else:
            params = {"Message": hashlib.sha256(message).digest(), "MessageType": "DIGEST"}
        response: dict[str, Any] = _kms(
            "Sign",
            self._key_id,
            lambda: self._kms.sign(KeyId=self._key_id, SigningAlgorithm=KMS_SIGNING_ALGORITHM, **params),
        )
        signature = response.get("Signature")
        if not isinstance(signature, bytes | bytearray) or not signature:
            raise AuditSignerUnavailable(f"KMS returned no signature for key {self._key_id!r}")
        return bytes(signature)

    def verifier(self) -> NoteVerifier:
        """The verifier of this key (``.vkey`` is the string to publish; no KMS call needed)."""
        return NoteVerifier.from_key(self)

    def __repr__(self) -> str:
        return f"KmsNoteSigner({self._name!r}, {self._key_id!r})"


def create_kms_audit_key(kms_client: Any, alias: str = DEFAULT_KMS_ALIAS) -> str:
    """The key id behind ``alias``, creating an ``ECC_NIST_P256`` / ``SIGN_VERIFY`` key and the
    alias first if the alias does not exist. Idempotent; when two processes race, the one whose
    alias lost schedules its own new key for deletion and both return the alias's key.

    Raises:
        AuditSignerMisconfigured: the alias names a key that is not an enabled ECC_NIST_P256
            signing key, or KMS refuses the calls.
        AuditSignerUnavailable: KMS cannot be reached.
    """
    if not alias.startswith("alias/") or alias == "alias/":
        raise ValueError(f"a KMS alias starts with 'alias/': {alias!r}")
    existing = _describe(kms_client, alias)
    if existing is not None:
        return existing
    created: dict[str, Any] = _kms(
        "CreateKey",
        alias,
        lambda: kms_client.create_key(
            KeySpec=KMS_KEY_SPEC,
            KeyUsage="SIGN_VERIFY",
            Description="Tombola audit log checkpoints (C2SP signed note, ECDSA P-256)",
            Tags=[{"TagKey": "tombola:purpose", "TagValue": "audit"}],
        ),
    )
    key_id = str(created["KeyMetadata"]["KeyId"])
    try:
        kms_client.create_alias(AliasName=alias, TargetKeyId=key_id)
    except Exception as exc:
        if _error_code(exc) != "AlreadyExistsException":
            error = _translate(exc, "CreateAlias", alias)
            if error is None:
                raise
            raise error from exc
        # Another process created the alias first: use its key, drop ours.
        _kms(
            "ScheduleKeyDeletion",
            key_id,
            lambda: kms_client.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7),
        )
        winner = _describe(kms_client, alias)
        if winner is None:
            raise AuditSignerUnavailable(f"KMS says the alias {alias!r} both exists and does not") from exc
        return winner
    return key_id


def _describe(kms_client: Any, alias: str) -> str | None:
    """The key id of ``alias`` after checking the key, or None when there is no such alias."""
    try:
        meta: dict[str, Any] = kms_client.describe_key(KeyId=alias)["KeyMetadata"]
    except Exception as exc:
        if _error_code(exc) == "NotFoundException":
            return None
        error = _translate(exc, "DescribeKey", alias)
        if error is None:
            raise
        raise error from exc
    key_id = str(meta["KeyId"])
    spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec")
    _check_key_metadata(f"{alias} ({key_id})", spec, meta.get("KeyUsage"), meta.get("SigningAlgorithms"))
    if meta.get("KeyState", "Enabled") != "Enabled":
        raise AuditSignerMisconfigured(f"the KMS key {alias} ({key_id}) is {meta.get('KeyState')}, not Enabled")
    return key_id
