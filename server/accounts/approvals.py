"""Two-person approvals (spec 5.2): break-glass GLI-admin access, and range extensions above a
venue's cap.

One person asks (:func:`request_break_glass`, :func:`request_extension`), a *different* person
holding the system admin role approves (:func:`approve`) or denies (:func:`deny`) before the
request expires (:data:`REQUEST_TTL_MS`). Both steps are logged (``auth.break_glass`` with
``action`` ``requested`` / ``approved`` / ``denied`` / ``failed``) in the transaction of the change.
:func:`server.two_person.require_second_approval` is the rule itself, for any other two-person action.

* **break-glass**: approved, the requester holds the ``admin`` role installation-wide (a role
  grant tied to the approval) for the asked minutes, at most :data:`BREAK_GLASS_MAX_MINUTES`
  (four hours); its normal role comes back when the grant expires. Every request while it holds
  the grant is the principal ``via`` ``break_glass``.
* **extension**: a venue may have a cap (:func:`set_extension_cap`); an emergency extension of
  more numbers than the cap goes through a request, and the approval runs the one extension
  service (:func:`server.enrollment.service.extend_device`), which refuses an extension above the
  cap without an approved request (``second_approval_required``, :mod:`server.two_person`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from server import audit
from server.accounts.errors import ApprovalNotPending, MfaRequired
from server.accounts.models import RoleGrant, TotpSecret
from server.auth import BREAK_GLASS_MAX_MINUTES, SYSTEM_ADMIN, Principal
from server.context import Tombola, new_id
from server.enrollment import service as enrollment
from server.errors import Forbidden, InvalidRequest, NotFound
from server.models import Approval, Venue, VenueExtensionCap
from server.two_person import extension_cap, is_person, require_second_approval
from sync_protocol.errors import TombolaError

APPROVAL = Approval.__table__  # type: ignore[attr-defined]
GRANT = RoleGrant.__table__  # type: ignore[attr-defined]
TOTP = TotpSecret.__table__  # type: ignore[attr-defined]
CAP = VenueExtensionCap.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]

REQUEST_TTL_MS = 3_600_000  # a request not decided within an hour lapses
KINDS = ("break_glass", "extension")
#: who may ask for break-glass access (a person: a logged-in user)
BREAK_GLASS_REQUESTERS = frozenset({"admin", "business_admin"})


def _view(row: Any, now: int) -> dict[str, Any]:
    data = dict(row._mapping)
    data["subject"] = json.loads(row.subject)
    data["result"] = json.loads(row.result)
    if data["status"] == "pending" and row.expires_at_ms <= now:
        data["status"] = "expired"
    return data


def _create(
    conn: Connection, app: Tombola, *, kind: str, requested_by: str, reason: str, subject: dict[str, Any], org: str
) -> str:
    now = app.now_ms()
    approval_id = new_id("ap")
    conn.execute(
        insert(APPROVAL).values(
            id=approval_id,
            kind=kind,
            status="pending",
            organisation_id=org,
            requested_by=requested_by,
            requested_at_ms=now,
            reason=reason,
            subject=json.dumps(subject, sort_keys=True),
            expires_at_ms=now + REQUEST_TTL_MS,
            decided_by="",
            decided_at_ms=None,
            result="{}",
        )
    )
    payload = {"action": "requested", "approval_id": approval_id, "kind": kind, "reason": reason} | subject
    audit.record(conn, app, "auth.break_glass", payload, tenant=org, actor=requested_by)
    return approval_id


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidRequest("a two-person request needs a reason", field="reason")
    return reason[:500]


def request_break_glass(app: Tombola, requester: Principal, *, reason: str, minutes: int = 60) -> dict[str, Any]:
    """Ask for the system admin role for ``minutes`` (1 to 240); a second admin approves it.

    The requester's account must have TOTP on (``mfa_required``): a system admin logs in with it.
    """
    if not is_person(requester) or requester.role not in BREAK_GLASS_REQUESTERS:
        raise Forbidden("break-glass access is asked for by a person logged in as a system or business admin")
    user_id = requester.id.removeprefix("user:")
    with app.engine.connect() as conn:
        confirmed = conn.execute(
            select(TOTP.c.confirmed_at_ms).where(TOTP.c.user_id == user_id, TOTP.c.confirmed_at_ms.is_not(None))
        ).first()
    if confirmed is None:
        raise MfaRequired(
            "break-glass access is for accounts with a second factor: set TOTP up first (/auth/mfa/setup)"
        )
    if not 1 <= minutes <= BREAK_GLASS_MAX_MINUTES:
        raise InvalidRequest(f"break-glass access lasts 1 to {BREAK_GLASS_MAX_MINUTES} minutes", field="minutes")
    reason = _reason(reason)
    with app.engine.begin() as conn:
        subject = {"user_id": user_id, "minutes": minutes}
        approval_id = _create(
            conn,
            app,
            kind="break_glass",
            requested_by=requester.id,
            reason=reason,
            subject=subject,
            org=requester.tenant or "",
        )
        return _view(conn.execute(select(APPROVAL).where(APPROVAL.c.id == approval_id)).one(), app.now_ms())


def list_approvals(app: Tombola, *, pending_only: bool = False) -> list[dict[str, Any]]:
    """Two-person requests, newest first (``expired`` when one lapsed undecided)."""
    now = app.now_ms()
    with app.engine.connect() as conn:
        rows = conn.execute(select(APPROVAL).order_by(APPROVAL.c.requested_at_ms.desc(), APPROVAL.c.id)).all()
    views = [_view(r, now) for r in rows]
    return [v for v in views if v["status"] == "pending"] if pending_only else views


def get_approval(app: Tombola, approval_id: str) -> dict[str, Any]:
    with app.engine.connect() as conn:
        row = conn.execute(select(APPROVAL).where(APPROVAL.c.id == approval_id)).first()
    if row is None:
        raise NotFound(f"no request {approval_id}")
    return _view(row, app.now_ms())


def _decide(app: Tombola, approval_id: str, approver: Principal, status: str, note: str = "") -> Any:
    """Move a pending, unexpired request to ``status`` (once: a conditional update) and log it."""
    now = app.now_ms()
    with app.engine.begin() as conn:
        row = conn.execute(select(APPROVAL).where(APPROVAL.c.id == approval_id)).first()
        if row is None:
            raise NotFound(f"no request {approval_id}")
        require_second_approval(row.requested_by, approver)
        if row.status != "pending" or row.expires_at_ms <= now:
            state = "expired" if row.status == "pending" else row.status
            raise ApprovalNotPending(f"request {approval_id} is {state}", status=state)
        moved = conn.execute(
            update(APPROVAL)
            .where(APPROVAL.c.id == approval_id, APPROVAL.c.status == "pending")
            .values(status=status, decided_by=approver.id, decided_at_ms=now)
        ).rowcount
        if not moved:
            raise ApprovalNotPending(f"request {approval_id} was decided a moment ago")
        subject = json.loads(row.subject)
        if status == "approved" and row.kind == "break_glass":
            expires = now + int(subject["minutes"]) * 60_000
            conn.execute(
                insert(GRANT).values(
                    id=new_id("rg"),
                    user_id=subject["user_id"],
                    role=SYSTEM_ADMIN,
                    organisation_id="",
                    venue_id="",
                    created_at_ms=now,
                    created_by=approver.id,
                    expires_at_ms=expires,
                    approval_id=approval_id,
                    revoked_at_ms=None,
                    revoked_by="",
                )
            )
            conn.execute(
                update(APPROVAL)
                .where(APPROVAL.c.id == approval_id)
                .values(result=json.dumps({"expires_at_ms": expires}))
            )
        payload = {"action": status, "approval_id": approval_id, "kind": row.kind, "requested_by": row.requested_by}
        if note:
            payload["reason"] = note[:500]
        audit.record(conn, app, "auth.break_glass", payload | subject, tenant=row.organisation_id, actor=approver.id)
        return conn.execute(select(APPROVAL).where(APPROVAL.c.id == approval_id)).one()


def approve(app: Tombola, approval_id: str, approver: Principal) -> dict[str, Any]:
    """Approve a pending request as a second admin; a break-glass grant starts now, an extension
    is issued now through the extension service (its grant in ``result``)."""
    row = _decide(app, approval_id, approver, "approved")
    if row.kind == "extension":
        _run_extension(app, row, approver)
    return get_approval(app, approval_id)


def deny(app: Tombola, approval_id: str, approver: Principal, *, reason: str) -> dict[str, Any]:
    _decide(app, approval_id, approver, "denied", _reason(reason))
    return get_approval(app, approval_id)


# --- extensions above a venue's cap --------------------------------------------------------------


def set_extension_cap(app: Tombola, venue_id: str, cap: int | None, *, by: str) -> dict[str, Any]:
    """Set (or, with None, lift) the most numbers one extension at ``venue_id`` may hold without a
    second admin's approval (``auth.permission_changed``, ``extension_cap_set``)."""
    if cap is not None and not 0 <= cap <= 10_000_000:
        raise InvalidRequest("a cap is 0 to 10,000,000 numbers", field="cap")
    with app.engine.begin() as conn:
        if conn.execute(select(VENUE.c.id).where(VENUE.c.id == venue_id)).first() is None:
            raise NotFound(f"no venue {venue_id}")
        conn.execute(CAP.delete().where(CAP.c.venue_id == venue_id))
        if cap is not None:
            conn.execute(insert(CAP).values(venue_id=venue_id, cap=cap, set_at_ms=app.now_ms(), set_by=by))
        payload = {"action": "extension_cap_set", "venue_id": venue_id, "cap": cap}
        tenant = audit.tenant_of_venue(conn, venue_id)
        audit.record(conn, app, "auth.permission_changed", payload, tenant=tenant, actor=by)
    return {"venue_id": venue_id, "cap": cap}


def request_extension(
    app: Tombola, requester: Principal, device_id: str, raffle_id: str, numbers: int, reason: str
) -> dict[str, Any]:
    """An emergency extension: issued at once up to the venue's cap (``status`` ``granted``,
    ``grant``), else a pending request for a second admin (``status`` ``pending``, ``approval``)."""
    reason = _reason(reason)
    device = enrollment.get_device(app, device_id)
    cap = extension_cap(app, device["venue_id"])
    if cap is None or numbers <= cap:
        grant = enrollment.extend_device(app, device_id, raffle_id, numbers, reason)
        return {"status": "granted", "grant": grant.to_dict()}
    with app.engine.begin() as conn:
        subject = {"device_id": device_id, "raffle_id": raffle_id, "numbers": numbers, "venue_id": device["venue_id"]}
        org = audit.tenant_of_venue(conn, device["venue_id"])
        approval_id = _create(
            conn, app, kind="extension", requested_by=requester.id, reason=reason, subject=subject, org=org
        )
    return {"status": "pending", "approval": get_approval(app, approval_id)}


def _run_extension(app: Tombola, row: Any, approver: Principal) -> None:
    subject = json.loads(row.subject)
    try:
        grant = enrollment.extend_device(
            app, subject["device_id"], subject["raffle_id"], int(subject["numbers"]), row.reason, approval_id=row.id
        )
    except TombolaError as exc:
        result: dict[str, Any] = {"error": exc.code, "detail": exc.detail}
        status = "failed"
    else:
        result = {"grant_id": grant.grant_id, "first_number": grant.first_number, "last_number": grant.last_number}
        status = "approved"
    with app.engine.begin() as conn:
        conn.execute(update(APPROVAL).where(APPROVAL.c.id == row.id).values(status=status, result=json.dumps(result)))
        if status == "failed":
            payload = {"action": "failed", "approval_id": row.id, "kind": row.kind, "error": result["error"]}
            audit.record(conn, app, "auth.break_glass", payload, tenant=row.organisation_id, actor=approver.id)
