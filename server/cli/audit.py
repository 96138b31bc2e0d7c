"""``tombola audit``: verify, checkpoint, prove, ship and archive the tamper-evident audit log.

``verify`` checks the whole log (the database, or with ``--archive`` the sealed segments of the
configured archive) against every signed checkpoint, and each checkpoint against the previous
one; it prints the first entry or checkpoint that fails and exits 1. See ``docs/audit-log.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from server.cli._common import _emit, json_option, with_app
from server.context import Tombola


@click.group("audit")
def audit_group() -> None:
    """The audit log: verify it, sign checkpoints, serve proofs, ship and archive it."""


def _verifiers(app: Tombola, keys: tuple[str, ...]) -> list[Any]:
    from gli_core.api import NoteVerifier

    return [NoteVerifier.parse(k) for k in keys] if keys else app.core.audit_verifiers()


@audit_group.command("verify")
@click.option("--key", "keys", multiple=True, help="Trust only this verifier key (vkey); repeatable.")
@click.option("--archive", is_flag=True, help="Verify the archive's sealed segments instead of the database.")
@click.option(
    "--segments",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Verify a local segment directory (a copy of var/audit) instead of the database.",
)
@json_option
@with_app
def audit_verify(app: Tombola, keys: tuple[str, ...], archive: bool, segments: Path | None, as_json: bool) -> None:
    """Check every entry against the signed checkpoints, and each checkpoint against the last."""
    from gli_core.api import LocalSegmentStore, read_archive, verify_log
    from server import status

    verifiers = _verifiers(app, keys)
    log = app.core.audit
    source = "database"
    if segments is not None or archive:
        stores = [LocalSegmentStore(segments)] if segments is not None else app.core.audit_stores()
        if not stores:
            raise click.UsageError("no archive is configured (TOMBOLA_AUDIT_ARCHIVE)")
        entries_iter, notes = read_archive(stores[0])
        source = stores[0].name
        report = verify_log(
            ((e, None) for e in entries_iter), [n for _, n in notes], verifiers, origin=log.origin, archive=True
        )
        out = report.to_dict() | {"source": source, "origin": log.origin}
    else:  # the one check of the database the portal's audit page shows too
        out = status.verify_audit(app, verifiers)
        out.pop("checked_at_ms")
        out.pop("took_ms")
    _emit(
        out,
        as_json,
        lambda: (
            f"OK: {out['entries']} entries and {out['checkpoints']} checkpoints of {log.origin} verify ({source}); "
            f"latest checkpoint {out['latest_checkpoint_size']}, {out['entries_after_latest_checkpoint']} entries since"
            if out["ok"]
            else f"FAILED ({source}): {status.failure_text(out['failure'])}"
        ),
    )
    if not out["ok"]:
        sys.exit(1)


@audit_group.command("checkpoint")
@json_option
@with_app
def audit_checkpoint(app: Tombola, as_json: bool) -> None:
    """Sign a checkpoint of the log as it is now and print it (a C2SP signed note)."""
    cp = app.core.audit.checkpoint("on-demand:cli")
    _emit(cp.to_dict(), as_json, cp.note.rstrip("\n"))


@audit_group.command("keys")
@json_option
@with_app
def audit_keys(app: Tombola, as_json: bool) -> None:
    """The verifier keys of the log's checkpoints (publish them; auditors pin them)."""
    keys = [k.vkey for k in app.core.audit_verifiers()]
    _emit({"origin": app.core.audit.origin, "keys": keys}, as_json, "\n".join(keys))


@audit_group.command("tail")
@click.option("--after", type=int, default=-1, help="Entries after this index.")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--type", "type_prefix", default=None, help="Event type or family, e.g. draw. or grant.issued")
@click.option("--tenant", default=None, help="Only this organisation's entries.")
@json_option
@with_app
def audit_tail(
    app: Tombola, after: int, limit: int, type_prefix: str | None, tenant: str | None, as_json: bool
) -> None:
    """Print entries of the log (the newest ``--limit`` unless ``--after`` is given)."""
    log = app.core.audit
    if after < 0:
        after = max(-1, log.size() - limit - 1) if type_prefix is None and tenant is None else -1
    rows = log.entries(tenant=tenant, type_prefix=type_prefix, after=after, limit=limit if after >= 0 else 10**9)
    rows = rows[-limit:]
    _emit(
        [json.loads(d) for _, d in rows],
        as_json,
        lambda: "\n".join(d for _, d in rows) or "(no entries)",
    )


@audit_group.command("prove")
@click.argument("index", type=int)
@click.option("--size", type=int, default=None, help="Tree size (default: the latest checkpoint's).")
@json_option
@with_app
def audit_prove(app: Tombola, index: int, size: int | None, as_json: bool) -> None:
    """The RFC 9162 inclusion proof of entry INDEX, with the checkpoint it verifies against."""
    log = app.core.audit
    checkpoint = log.latest_checkpoint() if size is None else log.checkpoint_at(size)
    tree = checkpoint.size if checkpoint is not None else (size or log.size())
    proof = log.inclusion_proof(index, tree)
    out = {
        "index": index,
        "tree_size": tree,
        "leaf_data": log.entry(index)[1],
        "proof": [h.hex() for h in proof],
        "checkpoint": None if checkpoint is None else checkpoint.note,
    }
    _emit(out, as_json, lambda: json.dumps(out, indent=2))


@audit_group.command("ship")
@json_option
@with_app
def audit_ship(app: Tombola, as_json: bool) -> None:
    """Ship sealed segments and checkpoints to the configured archive now (retried)."""
    if not app.core.audit_stores():
        raise click.UsageError("no archive is configured (TOMBOLA_AUDIT_ARCHIVE=local|s3)")
    report = app.core.audit_shipper().ship_once()
    stores: dict[str, dict[str, Any]] = {
        name: {
            "shipped": len(r.shipped),
            "already_present": len(r.already_present),
            "pending": len(r.pending),
            "errors": [{"key": e.key, "code": e.code, "detail": e.detail} for e in r.errors],
        }
        for name, r in report.stores.items()
    }
    _emit(
        {"ok": report.ok, "stores": stores},
        as_json,
        lambda: "\n".join(
            f"{name}: {s['shipped']} shipped, {s['already_present']} already there, {s['pending']} pending"
            + "".join(f"\n  {e['key']}: {e['code']} {e['detail']}" for e in s["errors"])
            for name, s in stores.items()
        ),
    )
    if not report.ok:
        sys.exit(1)


@audit_group.command("setup-bucket")
@click.argument("bucket", required=False)
@click.option("--retention-days", type=int, default=None, help="COMPLIANCE retention (default 2557 = 7 years).")
@click.option("--region", default=None)
@json_option
def audit_setup_bucket(bucket: str | None, retention_days: int | None, region: str | None, as_json: bool) -> None:
    """Create (or check) the S3 bucket of the audit archive: Object Lock COMPLIANCE and lifecycle."""
    from gli_core.api import AuditConfig, setup_bucket

    config = AuditConfig.from_env()
    name = bucket or config.bucket
    if not name:
        raise click.UsageError("give BUCKET or set TOMBOLA_AUDIT_BUCKET")
    result = setup_bucket(
        config.aws_client("s3"),
        name,
        retention_days=retention_days or config.retention_days,
        region=region or config.aws_region,
    )
    _emit(result, as_json, lambda: json.dumps(result, indent=2, default=str))


@audit_group.command("create-kms-key")
@click.option("--alias", default="alias/tombola-audit", show_default=True)
@json_option
def audit_create_kms_key(alias: str, as_json: bool) -> None:
    """Create (or find) the KMS ECC_NIST_P256 key that signs checkpoints (TOMBOLA_AUDIT_SIGNER=kms)."""
    from gli_core.api import AuditConfig, create_kms_audit_key

    key_id = create_kms_audit_key(AuditConfig.from_env().aws_client("kms"), alias)
    _emit({"key_id": key_id, "alias": alias}, as_json, key_id)


@click.group("keys")
def keys_group() -> None:
    """The HSM's keys: grant signing, the draw VRF, audit checkpoints."""


@keys_group.command("rotate")
@click.argument("purpose", type=click.Choice(["grant", "vrf", "audit"]))
@json_option
@with_app
def keys_rotate(app: Tombola, purpose: str, as_json: bool) -> None:
    """Generate a new key for PURPOSE in the HSM; old keys stay so that what they signed verifies.

    Restart the other server processes afterwards so that they sign with the new key.
    """
    out = app.core.rotate_key(purpose)
    _emit(out, as_json, f"{purpose}: {out['old_key_id']} -> {out['new_key_id']} (logged as key.rotated)")
