"""Settings of the audit log: who signs checkpoints, where sealed segments go, how often.

Read from ``TOMBOLA_AUDIT_*`` (the names :class:`server.config.Settings` documents) so that the
core, the server and the ``tombola`` commands see the same configuration:

==================================  ==============================================================
``TOMBOLA_AUDIT_SIGNER``            ``hsm`` (default: the token's Ed25519 audit key) or ``kms``
``TOMBOLA_AUDIT_KMS_KEY_ID``        KMS key id or alias of an ``ECC_NIST_P256`` signing key
``TOMBOLA_AUDIT_ARCHIVE``           ``local`` (default: ``$TOMBOLA_HOME/audit``), ``s3`` or ``none``
``TOMBOLA_AUDIT_DIR``               the local archive directory
``TOMBOLA_AUDIT_BUCKET``            the S3 bucket (Object Lock, see ``tombola audit setup-bucket``)
``TOMBOLA_AUDIT_RETENTION_DAYS``    COMPLIANCE retention of each S3 object (default 2557, 7 years)
``TOMBOLA_AUDIT_SEGMENT_SIZE``      entries per sealed segment (a power of two, default 4096)
``TOMBOLA_AUDIT_CHECKPOINT_S``      checkpoint interval in seconds (default 300)
``TOMBOLA_AUDIT_SHIP_S``            shipping interval in seconds (default 60)
``TOMBOLA_AWS_ENDPOINT_URL``        S3/KMS endpoint (tests: moto's server); AWS_* as usual
``TOMBOLA_AWS_REGION``              region (default ``us-east-1``)
==================================  ==============================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gli_core.errors import CoreError


class AuditConfigInvalid(CoreError):
    code = "audit_config_invalid"
    status = 500


@dataclass(frozen=True)
class AuditConfig:
    signer: str = "hsm"
    kms_key_id: str | None = None
    archive: str = "local"
    local_dir: Path | None = None
    bucket: str | None = None
    retention_days: int = 2557
    segment_size: int = 4096
    checkpoint_interval_s: float = 300.0
    ship_interval_s: float = 60.0
    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"

    def __post_init__(self) -> None:
        if self.signer not in ("hsm", "kms"):
            raise AuditConfigInvalid(f"TOMBOLA_AUDIT_SIGNER is hsm or kms, not {self.signer!r}")
        if self.signer == "kms" and not self.kms_key_id:
            raise AuditConfigInvalid("TOMBOLA_AUDIT_SIGNER=kms needs TOMBOLA_AUDIT_KMS_KEY_ID")
        if self.archive not in ("local", "s3", "none"):
            raise AuditConfigInvalid(f"TOMBOLA_AUDIT_ARCHIVE is local, s3 or none, not {self.archive!r}")
        if self.archive == "s3" and not self.bucket:
            raise AuditConfigInvalid("TOMBOLA_AUDIT_ARCHIVE=s3 needs TOMBOLA_AUDIT_BUCKET")
        if self.segment_size < 1 or self.segment_size & (self.segment_size - 1):
            raise AuditConfigInvalid("TOMBOLA_AUDIT_SEGMENT_SIZE must be a power of two")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, home: Path | None = None) -> AuditConfig:
        env = os.environ if environ is None else environ
        local = env.get("TOMBOLA_AUDIT_DIR")
        try:
            return cls(
                signer=env.get("TOMBOLA_AUDIT_SIGNER") or "hsm",
                kms_key_id=env.get("TOMBOLA_AUDIT_KMS_KEY_ID") or None,
                archive=env.get("TOMBOLA_AUDIT_ARCHIVE") or "local",
                local_dir=Path(local) if local else (home / "audit" if home is not None else None),
                bucket=env.get("TOMBOLA_AUDIT_BUCKET") or None,
                retention_days=int(env.get("TOMBOLA_AUDIT_RETENTION_DAYS") or 2557),
                segment_size=int(env.get("TOMBOLA_AUDIT_SEGMENT_SIZE") or 4096),
                checkpoint_interval_s=float(env.get("TOMBOLA_AUDIT_CHECKPOINT_S") or 300),
                ship_interval_s=float(env.get("TOMBOLA_AUDIT_SHIP_S") or 60),
                aws_endpoint_url=env.get("TOMBOLA_AWS_ENDPOINT_URL") or None,
                aws_region=env.get("TOMBOLA_AWS_REGION") or "us-east-1",
            )
        except ValueError as exc:
            raise AuditConfigInvalid(f"an audit setting is not a number: {exc}") from None

    def aws_client(self, service: str) -> Any:
        """A boto3 client for ``service`` at the configured endpoint and region."""
        import boto3

        return boto3.client(service, endpoint_url=self.aws_endpoint_url, region_name=self.aws_region)
