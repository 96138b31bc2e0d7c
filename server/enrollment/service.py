"""Device enrollment, revocation and range extension.

An enrollment code is single-use and expiring; only its SHA-256 is stored. A device proves it
holds the private key of the public key it enrols (the request is signed), and receives its
id, the server's public keys to pin, a time anchor, and a grant for every open raffle of its
venue.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

import orjson
from sqlalchemy import bindparam, insert, select, update

from dbkit import upsert
from gli_core.api import acting_as
from gli_core.errors import CoreError, DeviceCapReached, NumbersExhausted
from server import audit
from server.context import Tombola, new_id
from server.errors import (
    DeviceRevoked,
    EnrollmentCodeExpired,
    EnrollmentCodeInvalid,
    EnrollmentCodeUsed,
    InvalidRequest,
    NotFound,
    UnknownDevice,
)
from server.models import Device, DeviceAnchor, EnrollmentCode, Sale
from server.raffles.service import get_raffle, get_venue, grant_refusal, issuer, list_raffles, raffle_info
from server.sellers.service import roster
from server.two_person import check_extension_cap
from sync_protocol.messages import EnrollmentRequest, EnrollmentResponse, RangeGrant
from sync_protocol.signing import b64u_encode, key_id_for

CODE = EnrollmentCode.__table__  # type: ignore[attr-defined]
DEVICE = Device.__table__  # type: ignore[attr-defined]
ANCHOR = DeviceAnchor.__table__  # type: ignore[attr-defined]
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
log = logging.getLogger("tombola.enrollment")


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace("-", "").encode()).hexdigest()


def create_enrollment_code(app: Tombola, venue_id: str) -> dict[str, Any]:
    """A new single-use code for ``venue_id``, valid for ``enrollment_code_ttl_s``."""
    get_venue(app, venue_id)
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))
    now = app.now_ms()
    expires = now + app.settings.enrollment_code_ttl_s * 1000
    with app.engine.begin() as conn:
        conn.execute(
            insert(CODE).values(code_hash=_hash_code(code), venue_id=venue_id, created_at_ms=now, expires_at_ms=expires)
        )
        audit.record(
            conn,
            app,
            "enrollment.code_created",
            {"venue_id": venue_id, "code_sha256": _hash_code(code)[:16], "expires_at_ms": expires},
            tenant=audit.tenant_of_venue(conn, venue_id),
        )
    return {"code": code, "venue_id": venue_id, "expires_at_ms": expires}


def record_anchor(conn: Any, device_id: str, anchor_ms: int) -> None:
    upsert(conn, ANCHOR, {"device_id": device_id, "anchor_ms": anchor_ms}, key=["device_id", "anchor_ms"])


def enroll(app: Tombola, request: EnrollmentRequest) -> EnrollmentResponse:
    public_key = request.verify()
    if len(public_key) != 32:
        raise InvalidRequest("the device public key must be 32 bytes of Ed25519")
    now = app.now_ms()
    device_id = new_id("dv")
    with app.engine.begin() as conn:
        row = conn.execute(select(CODE).where(CODE.c.code_hash == _hash_code(request.code)).with_for_update()).first()
        if row is None:
            raise EnrollmentCodeInvalid("this enrollment code is not known; ask an admin for a new one")
        if row.used_at_ms is not None:
            existing = conn.execute(select(DEVICE).where(DEVICE.c.id == row.device_id)).first()
            if existing is None or existing.public_key != b64u_encode(public_key):
                raise EnrollmentCodeUsed("this enrollment code was already used; each code enrols one device")
            # The same device asking again (its first answer was lost on the way): same identity.
            device_id = existing.id
        if row.used_at_ms is None and row.expires_at_ms <= now:
            raise EnrollmentCodeExpired("this enrollment code has expired; ask an admin for a new one")
        venue_id = row.venue_id
        if row.used_at_ms is None:
            _register(conn, row.code_hash, device_id, venue_id, request, public_key, now)
            audit.record(
                conn,
                app,
                "device.enrolled",
                {
                    "device_id": device_id,
                    "venue_id": venue_id,
                    "device_name": request.device_name,
                    "key_id": key_id_for(public_key),
                    "code_sha256": row.code_hash[:16],
                },
                tenant=audit.tenant_of_venue(conn, venue_id),
                actor=f"device:{device_id}",
            )
        record_anchor(conn, device_id, now)
    raffles = list_raffles(app, venue_id)
    with acting_as(f"device:{device_id}"):
        grants, _, no_grant = ensure_grants(app, device_id, raffles)
    by = issuer(app, venue_id)
    return EnrollmentResponse(
        device_id=device_id,
        venue_id=venue_id,
        server_keys=[k.to_dict() for k in app.core.public_keys()],
        server_time_ms=now,
        lease_s=app.settings.lease_s,
        grants=grants,
        raffles=[raffle_info(r, no_grant.get(r["id"]), by=by) for r in raffles],
        sellers=roster(app, venue_id),
    )


def _register(
    conn: Any, code_hash: str, device_id: str, venue_id: str, request: EnrollmentRequest, public_key: bytes, now: int
) -> None:
    conn.execute(update(CODE).where(CODE.c.code_hash == code_hash).values(used_at_ms=now, device_id=device_id))
    conn.execute(
        insert(DEVICE).values(
            id=device_id,
            venue_id=venue_id,
            name=request.device_name,
            public_key=b64u_encode(public_key),
            key_id=key_id_for(public_key),
            status="active",
            enrolled_at_ms=now,
        )
    )


_SALE = Sale.__table__  # type: ignore[attr-defined]
_REJECTED_SALES = select(_SALE.c.raffle_id, _SALE.c.numbers).where(
    (_SALE.c.device_id == bindparam("device_id"))
    & (_SALE.c.status == "rejected")
    & (_SALE.c.kind == "sale")
    & _SALE.c.raffle_id.in_(bindparam("raffle_ids", expanding=True))
)


def rejected_numbers(app: Tombola, device_id: str, raffle_ids: list[str]) -> dict[str, list[int]]:
    """``raffle_id -> numbers`` of the device's sales the server rejected: spent on the device
    (it never sells a number twice), so they count as used for top-ups (docs/sync-protocol.md
    section 9)."""
    if not raffle_ids:
        return {}
    spent: dict[str, list[int]] = {}
    with app.engine.connect() as conn:
        for raffle_id, numbers in conn.execute(_REJECTED_SALES, {"device_id": device_id, "raffle_ids": raffle_ids}):
            spent.setdefault(raffle_id, []).extend(orjson.loads(numbers))
    return spent


def ensure_grants(
    app: Tombola, device_id: str, raffles: list[dict[str, Any]]
) -> tuple[list[RangeGrant], list[str], dict[str, str]]:
    """Top up: a new grant for every open raffle where the device has used >= the threshold of
    its numbers (or holds none). Returns, from one read of the device's grants, its active grants
    for open raffles and the ids of its voided grants; and, for each raffle where the device was
    due a grant and got none, the core's code saying why (``RaffleInfo.no_grant``), so the device
    can tell its seller instead of "sync to get more"."""
    threshold = app.settings.topup_threshold
    # the jurisdiction rules a POS sells under (server/jurisdictions.py): no grant for a raffle breaking them
    no_grant: dict[str, str] = {r["id"]: code for r in raffles if r["status"] == "open" and (code := grant_refusal(r))}
    open_ids = [r["id"] for r in raffles if r["status"] == "open" and r["id"] not in no_grant]
    spent = rejected_numbers(app, device_id, open_ids)
    for raffle_id, (granted, used) in app.core.device_usage(device_id, open_ids, spent).items():
        if used >= threshold * granted:
            # cap reached, numbers exhausted or raffle closed: the ack carries what exists
            try:
                app.core.issue_grant(raffle_id, device_id, kind="initial" if granted == 0 else "topup")
            except (NumbersExhausted, DeviceCapReached) as exc:
                # every number is granted (a grant is sized to what is left, down to the last one),
                # or the device holds its most: the device hears why, the operator reads the log
                log.warning("raffle %s: no grant for device %s: %s", raffle_id, device_id, exc.code)
                no_grant[raffle_id] = exc.code
            except CoreError:
                pass  # the raffle stopped selling meanwhile: no grant is due
    views = app.core.grants(device_id=device_id, status=None)
    active = [g.grant for g in views if g.status == "active" and g.grant.raffle_id in open_ids]
    return active, [g.grant.grant_id for g in views if g.status == "voided"], no_grant


def get_device(app: Tombola, device_id: str) -> dict[str, Any]:
    with app.engine.connect() as conn:
        row = conn.execute(select(DEVICE).where(DEVICE.c.id == device_id)).first()
    if row is None:
        raise NotFound(f"no device {device_id}")
    return dict(row._mapping)


def list_devices(app: Tombola, venue_id: str | None = None) -> list[dict[str, Any]]:
    query = select(DEVICE).order_by(DEVICE.c.enrolled_at_ms)
    if venue_id:
        query = query.where(DEVICE.c.venue_id == venue_id)
    with app.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def revoke_device(app: Tombola, device_id: str, reason: str) -> dict[str, Any]:
    """Revoke a device (lost, stolen, broken): its syncs are refused from now on and the unsold
    numbers of its grants are voided, so no sale from them is ever recorded and it no longer
    holds up a draw. Its synced sales stay on record. The one revocation of the CLI
    (``tombola device revoke``) and the admin API (``POST /v1/admin/devices/{id}/revoke``).

    The core voids the grants' remainders (``grant.voided``, with the reason and the unsold count)
    inside the business transaction that holds the device's row and then marks it revoked
    (``device.revoked``). A second revoke changes nothing and logs nothing. Ingest a broken
    device's export file before revoking it: after, its unsynced sales are rejected
    (``outside_grant``). Returns the device, with ``revoked_now`` (False: it was revoked
    already) and ``voided_grants`` (what this call voided).

    Raises:
        InvalidRequest: no reason.
        NotFound: no such device.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidRequest("revoking a device needs a reason (lost, stolen, broken...)", field="reason")
    get_device(app, device_id)
    voided: list[dict[str, Any]] = []
    with app.engine.begin() as conn:
        device = conn.execute(select(DEVICE).where(DEVICE.c.id == device_id).with_for_update()).one()
        if device.status == "revoked":
            conn.rollback()
            return get_device(app, device_id) | {"revoked_now": False, "voided_grants": voided}
        voided = app.core.void_device_grants(device_id, f"device revoked: {reason}")
        conn.execute(
            update(DEVICE)
            .where(DEVICE.c.id == device_id)
            .values(status="revoked", revoked_at_ms=app.now_ms(), revoke_reason=reason)
        )
        audit.record(
            conn,
            app,
            "device.revoked",
            {
                "device_id": device_id,
                "venue_id": device.venue_id,
                "reason": reason,
                "grants_voided": len(voided),
                "numbers_voided": sum(v["unsold"] for v in voided),
            },
            tenant=audit.tenant_of_venue(conn, device.venue_id),
        )
    return get_device(app, device_id) | {"revoked_now": True, "voided_grants": voided}


def void_remainder(app: Tombola, device_id: str, raffle_id: str, reason: str) -> dict[str, Any]:
    """Void a device's unsynced remainder of one raffle so its draw can go ahead (the device is
    lost, but not revoked); the one such void of the CLI (``tombola draw void-remainder``) and the
    admin API (``POST /v1/admin/devices/{id}/void-remainder``). Returns the count of grants voided.
    """
    if not reason.strip():
        raise InvalidRequest("voiding a device's remainder needs a reason", field="reason")
    get_device(app, device_id)
    get_raffle(app, raffle_id)
    voided = app.core.void_remainder(device_id, raffle_id, reason.strip())
    return {"device_id": device_id, "raffle_id": raffle_id, "grants_voided": voided}


def extend_device(
    app: Tombola, device_id: str, raffle_id: str, numbers: int, reason: str, *, approval_id: str = ""
) -> RangeGrant:
    """An admin's emergency extension: a grant of exactly ``numbers`` at once, delivered on the
    device's next sync; more than the raffle has left is refused (``not_enough_numbers``, with the
    count ``left``), never cut short. Above the venue's cap it needs ``approval_id``, a second
    admin's approval (``second_approval_required``; :mod:`server.two_person`)."""
    device = get_device(app, device_id)
    if device["status"] != "active":
        raise DeviceRevoked(f"device {device_id} is revoked")
    if not reason.strip():
        raise InvalidRequest("an extension needs a reason")
    if numbers < 1:
        raise InvalidRequest("an extension needs at least one number")
    raffle = get_raffle(app, raffle_id)
    if raffle["venue_id"] != device["venue_id"]:
        raise InvalidRequest(f"raffle {raffle_id} is not sold at the device's venue")
    check_extension_cap(app, device["venue_id"], device_id, raffle_id, numbers, approval_id)
    return app.core.issue_grant(
        raffle_id, device_id, numbers=numbers, kind="extension", reason=reason, enforce_cap=False, exact=True
    )


def require_active_device(device: dict[str, Any] | None, device_id: str) -> dict[str, Any]:
    if device is None:
        raise UnknownDevice(f"device {device_id} is not enrolled here")
    if device["status"] != "active":
        raise DeviceRevoked(f"device {device_id} was revoked: {device['revoke_reason'] or 'no reason given'}")
    return device
