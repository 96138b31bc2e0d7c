"""The seller roster: add, list, disable, and the roster a device of the venue is sent.

One service for every caller (``tombola seller ...``, ``/v1/admin/sellers``). A PIN is never
stored: :func:`sync_protocol.pins.hash_pin` makes its salted scrypt hash, the form devices
verify offline (``SellerInfo``). Each change writes its audit event in its own transaction
(``seller.added``, ``seller.disabled``; invariant I7); neither event carries the PIN or its hash.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from server import audit
from server.context import Tombola, new_id
from server.errors import InvalidRequest, NotFound
from server.models import Seller, Venue
from sync_protocol.errors import Malformed
from sync_protocol.messages import SellerInfo
from sync_protocol.pins import hash_pin

SELLER = Seller.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]
NAME_MAX = 100
_ROSTER = (
    select(SELLER)
    .where((SELLER.c.venue_id == bindparam("venue_id")) & (SELLER.c.status == "active"))
    .order_by(SELLER.c.created_at_ms, SELLER.c.id)
)


def _public(row: Any) -> dict[str, Any]:
    """A seller as operators see it: no PIN hash."""
    data = dict(row._mapping)
    for secret in ("pin_scheme", "pin_salt", "pin_hash"):
        data.pop(secret, None)
    return data


def add_seller(app: Tombola, venue_id: str, name: str, pin: str, *, supervisor: bool = False) -> dict[str, Any]:
    """Add a seller to the venue's roster with ``pin`` (4 to 8 digits); its devices get it at their next sync.

    Raises:
        InvalidRequest: a blank or too long name, or a PIN that is not 4 to 8 digits (``field`` says which).
        NotFound: no such venue.
    """
    name = name.strip()
    if not name or len(name) > NAME_MAX or "\x00" in name:
        raise InvalidRequest(f"a seller needs a name of 1 to {NAME_MAX} characters", field="name")
    try:
        stored = hash_pin(pin)
    except Malformed as exc:
        raise InvalidRequest(exc.detail, field="pin") from exc
    now = app.now_ms()
    seller_id = new_id("sl")
    row: dict[str, Any] = {
        "id": seller_id,
        "venue_id": venue_id,
        "name": name,
        "supervisor": supervisor,
        "pin_scheme": stored.pin_scheme,
        "pin_salt": stored.pin_salt,
        "pin_hash": stored.pin_hash,
        "status": "active",
        "created_at_ms": now,
    }
    with app.engine.begin() as conn:
        if conn.execute(select(VENUE.c.id).where(VENUE.c.id == venue_id)).first() is None:
            raise NotFound(f"no venue {venue_id}")
        conn.execute(insert(SELLER).values(**row))
        audit.record(
            conn,
            app,
            "seller.added",
            {"seller_id": seller_id, "venue_id": venue_id, "name": name, "supervisor": supervisor},
            tenant=audit.tenant_of_venue(conn, venue_id),
        )
    return get_seller(app, seller_id)


def get_seller(app: Tombola, seller_id: str) -> dict[str, Any]:
    """One seller (without the PIN hash).

    Raises:
        NotFound: no such seller.
    """
    with app.engine.connect() as conn:
        row = conn.execute(select(SELLER).where(SELLER.c.id == seller_id)).first()
    if row is None:
        raise NotFound(f"no seller {seller_id}")
    return _public(row)


def list_sellers(app: Tombola, venue_id: str) -> list[dict[str, Any]]:
    """Every seller of the venue, active and disabled, oldest first (without PIN hashes).

    Raises:
        NotFound: no such venue.
    """
    with app.engine.connect() as conn:
        if conn.execute(select(VENUE.c.id).where(VENUE.c.id == venue_id)).first() is None:
            raise NotFound(f"no venue {venue_id}")
        rows = conn.execute(
            select(SELLER).where(SELLER.c.venue_id == venue_id).order_by(SELLER.c.created_at_ms, SELLER.c.id)
        )
        return [_public(r) for r in rows]


def disable_seller(app: Tombola, seller_id: str) -> dict[str, Any]:
    """Take the seller off the roster: the venue's devices drop it at their next sync. Idempotent.

    The seller stays on record (its sales name it). A device that has not synced since still
    lets the seller sign in until it does; revoke the device if that cannot wait.

    Raises:
        NotFound: no such seller.
    """
    with app.engine.begin() as conn:
        row = conn.execute(select(SELLER).where(SELLER.c.id == seller_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"no seller {seller_id}")
        if row.status != "disabled":
            conn.execute(
                update(SELLER).where(SELLER.c.id == seller_id).values(status="disabled", disabled_at_ms=app.now_ms())
            )
            audit.record(
                conn,
                app,
                "seller.disabled",
                {"seller_id": seller_id, "venue_id": row.venue_id},
                tenant=audit.tenant_of_venue(conn, row.venue_id),
            )
    return get_seller(app, seller_id)


def roster(app: Tombola, venue_id: str, *, conn: Connection | None = None) -> list[SellerInfo]:
    """The roster a device of ``venue_id`` is sent: every active seller with its PIN hash."""
    if conn is None:
        with app.engine.connect() as own:
            return roster(app, venue_id, conn=own)
    return [
        SellerInfo(
            seller_id=r.id,
            name=r.name,
            supervisor=bool(r.supervisor),
            pin_scheme=r.pin_scheme,
            pin_salt=r.pin_salt,
            pin_hash=r.pin_hash,
        )
        for r in conn.execute(_ROSTER, {"venue_id": venue_id})
    ]
