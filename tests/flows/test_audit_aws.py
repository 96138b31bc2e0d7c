"""The production audit set-up, as an operator runs it, against moto's standalone server:
``tombola audit create-kms-key`` and ``setup-bucket``, checkpoints signed in KMS (ECDSA P-256),
sealed segments shipped to S3 Object Lock, and ``tombola audit verify`` over the database and
over the S3 archive, all through real ``tombola`` processes and boto3."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from gli_core.audit.note import SIG_ECDSA, NoteVerifier
from tests.support.moto import CREDENTIALS, MotoServer, unique_name
from tests.support.postgres import DbUrls
from tests.support.processes import TOMBOLA


def _run(env: dict[str, str], *args: str) -> Any:
    out = subprocess.run([TOMBOLA, *args, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_kms_signed_checkpoints_and_an_object_locked_s3_archive(
    db_backend: DbUrls, moto_server: MotoServer, tmp_path: Path
) -> None:
    bucket = unique_name("tombola-audit")
    env = dict(os.environ)
    env.update(
        TOMBOLA_HOME=str(tmp_path / "var"),
        TOMBOLA_CORE_DB_URL=db_backend.core,
        TOMBOLA_BUSINESS_DB_URL=db_backend.business,
        TOMBOLA_AWS_ENDPOINT_URL=moto_server.endpoint,
        TOMBOLA_AWS_REGION=CREDENTIALS["region_name"],
        AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
        TOMBOLA_AUDIT_SEGMENT_SIZE="8",
    )
    key = _run(env, "audit", "create-kms-key", "--alias", f"alias/{bucket}")
    assert _run(env, "audit", "create-kms-key", "--alias", f"alias/{bucket}")["key_id"] == key["key_id"]
    setup = _run(env, "audit", "setup-bucket", bucket, "--retention-days", "30")
    assert "COMPLIANCE" in json.dumps(setup["object_lock"]) and "GLACIER" in json.dumps(setup["lifecycle"]), setup
    env.update(
        TOMBOLA_AUDIT_SIGNER="kms",
        TOMBOLA_AUDIT_KMS_KEY_ID=f"alias/{bucket}",
        TOMBOLA_AUDIT_ARCHIVE="s3",
        TOMBOLA_AUDIT_BUCKET=bucket,
    )
    _run(env, "init")
    _run(env, "demo")  # a venue, a raffle, an enrollment code: entries in the log
    checkpoint = _run(env, "audit", "checkpoint")
    keys = _run(env, "audit", "keys")["keys"]
    kms_keys = [k for k in keys if NoteVerifier.parse(k).sig_type == SIG_ECDSA]
    assert kms_keys, keys  # the checkpoint key is the KMS ECDSA P-256 key (type byte 0x02)
    assert checkpoint["size"] >= 8

    shipped = _run(env, "audit", "ship")
    assert shipped["ok"] and shipped["stores"][f"s3://{bucket}"]["shipped"] >= 2
    assert _run(env, "audit", "ship")["stores"][f"s3://{bucket}"]["shipped"] == 0  # nothing is sent twice

    by_db = _run(env, "audit", "verify", "--key", kms_keys[0])
    by_archive = _run(env, "audit", "verify", "--archive", "--key", kms_keys[0])
    assert by_db["ok"] and by_archive["ok"], (by_db, by_archive)
    assert by_archive["entries"] == (by_db["entries"] // 8) * 8  # only sealed segments are archived
    # checkpoints ship at once, segments once sealed: those beyond the archive are counted, not failed
    assert by_archive["latest_checkpoint_size"] <= by_archive["entries"]
    assert by_archive["checkpoints_beyond_entries"] == (1 if checkpoint["size"] > by_archive["entries"] else 0)

    s3 = moto_server.client("s3")
    listed = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert {v["Key"] for v in listed} >= {f"checkpoints/{checkpoint['size']:012d}.note"}
    head = s3.head_object(Bucket=bucket, Key=listed[0]["Key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
