"""The two-person rule (spec 5.2) where the services need it: who may approve another person's
request, and the venue cap above which an emergency range extension needs an approved request.

:mod:`server.accounts.approvals` keeps the requests (``approval`` table) and runs them;
:func:`server.enrollment.service.extend_device` calls :func:`check_extension_cap`, so no path
issues an extension above the cap without a second admin's approval.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from server.auth import SYSTEM_ADMIN, Principal
from server.context import Tombola
from server.errors import Forbidden, SecondApprovalRequired, SecondPersonRequired
from server.models import Approval, VenueExtensionCap

APPROVAL = Approval.__table__  # type: ignore[attr-defined]
CAP = VenueExtensionCap.__table__  # type: ignore[attr-defined]


def is_person(principal: Principal) -> bool:
    """Whether the principal is a person logged in with ``/auth/login`` (not a token)."""
    return principal.via in ("user", "break_glass") and principal.token_id is not None


def require_second_approval(requested_by: str, approver: Principal) -> None:
    """The two-person rule: ``approver`` is a person (logged in, not a token) holding the system
    admin role installation-wide in its own right (not through break-glass), other than
    ``requested_by`` (an audit actor, ``user:<id>``).

    Raises:
        SecondPersonRequired: the approver is the requester, or not a person.
        Forbidden: the approver is not an installation-wide system admin.
    """
    if not is_person(approver) or approver.via == "break_glass":
        raise SecondPersonRequired("an approval is given by a person logged in as a system admin, not by a token")
    if approver.role != SYSTEM_ADMIN or approver.tenant is not None:
        raise Forbidden("only an installation-wide system admin approves two-person requests")
    if approver.id == requested_by:
        raise SecondPersonRequired("the approver must be another person than the requester")


def extension_cap(app: Tombola, venue_id: str) -> int | None:
    """The most numbers one extension at ``venue_id`` may hold without a second admin (None: no cap)."""
    with app.engine.connect() as conn:
        found = conn.execute(select(CAP.c.cap).where(CAP.c.venue_id == venue_id)).scalar_one_or_none()
    return None if found is None else int(found)


def check_extension_cap(
    app: Tombola, venue_id: str, device_id: str, raffle_id: str, numbers: int, approval_id: str = ""
) -> None:
    """Above the venue's cap an extension needs ``approval_id``: an approved, not yet carried out
    request for exactly this extension (device, raffle, numbers).

    Raises:
        SecondApprovalRequired: above the cap without such an approval (``cap``).
    """
    cap = extension_cap(app, venue_id)
    if cap is None or numbers <= cap:
        return
    if approval_id:
        with app.engine.connect() as conn:
            row = conn.execute(select(APPROVAL).where(APPROVAL.c.id == approval_id)).first()
        wanted = {"device_id": device_id, "raffle_id": raffle_id, "numbers": numbers}
        if (
            row is not None
            and row.kind == "extension"
            and row.status == "approved"
            and json.loads(row.result) == {}
            and {k: json.loads(row.subject).get(k) for k in wanted} == wanted
        ):
            return
    raise SecondApprovalRequired(
        f"an extension of {numbers} numbers is above venue {venue_id}'s cap of {cap}: ask for it "
        f"(POST /v1/admin/devices/{device_id}/extension-requests or tombola approval extension) "
        "and have a second admin approve it",
        cap=cap,
    )
