"""Tables of the business database (organisations, venues, raffles, devices, sales).

The core's tables (grants, tickets) are not here: the server reaches them through
:mod:`gli_core.api` only. Times are integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, UniqueConstraint
from sqlmodel import Field, SQLModel

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class BusinessBase(SQLModel):
    metadata = MetaData(naming_convention=NAMING)


def _ms(nullable: bool = False) -> Column[int]:
    return Column(BigInteger, nullable=nullable)


class Organisation(BusinessBase, table=True):
    __tablename__ = "organisation"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    licence_number: str = Field(default="", max_length=64)
    #: the rule profile the licence names (server/jurisdictions.py PROFILES)
    jurisdiction: str = Field(default="default", max_length=32)


class Venue(BusinessBase, table=True):
    __tablename__ = "venue"

    id: str = Field(primary_key=True, max_length=32)
    organisation_id: str = Field(foreign_key="organisation.id", max_length=32)
    name: str = Field(max_length=200)
    created_at_ms: int = Field(sa_column=_ms())


class Raffle(BusinessBase, table=True):
    __tablename__ = "raffle"

    id: str = Field(primary_key=True, max_length=32)
    venue_id: str = Field(foreign_key="venue.id", max_length=32, index=True)
    name: str = Field(max_length=200)
    currency: str = Field(default="USD", max_length=3)
    price_points: str = Field(description="JSON list of {quantity, amount_cents}")
    #: only the price points may be sold (no quantity x the single price); see sync_protocol.rules
    bundles_only: bool = False
    #: whether devices may sell while they cannot reach the server (RaffleInfo.offline_sales)
    offline_sales: bool = True
    #: what receipts print (RaffleInfo): the raffle's own licence ("" = the organisation's),
    #: where results are published, and the time prizes must be claimed by
    licence_number: str = Field(default="", max_length=64)
    results_url: str = Field(default="", max_length=500)
    claim_by_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    number_space: int
    grant_size: int
    lease_s: int
    max_numbers_per_device: int
    event_number: int = 1
    sales_open_at_ms: int = Field(sa_column=_ms())
    sales_close_at_ms: int = Field(sa_column=_ms())
    status: str = Field(default="open", max_length=16, index=True)
    created_at_ms: int = Field(sa_column=_ms())
    #: the rule profile the raffle runs under (its licence's; server/jurisdictions.py)
    jurisdiction: str = Field(default="default", max_length=32)
    #: whether tickets are also sold online (POST /raffles/{id}/purchase)
    online_sales: bool = False
    #: how winners are drawn: ``rng`` (the HSM VRF draw) or ``barrel`` (printed barrel tickets by hand)
    draw_method: str = Field(default="rng", max_length=16)
    #: the prize table as given to the core (JSON list of tiers); ``share_percent`` the sum of its
    #: percent-of-sales prizes (the 50/50 share), what GET /raffles computes the jackpot from
    prize_table: str = Field(default="[]")
    share_percent: int = 50
    #: the most tickets one customer may buy online; None: no limit
    purchase_limit: int | None = None
    rules_text: str = Field(default="")
    updated_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))


class Device(BusinessBase, table=True):
    __tablename__ = "device"

    id: str = Field(primary_key=True, max_length=32)
    venue_id: str = Field(foreign_key="venue.id", max_length=32, index=True)
    name: str = Field(default="", max_length=100)
    public_key: str = Field(max_length=64)
    key_id: str = Field(max_length=64)
    status: str = Field(default="active", max_length=16)
    enrolled_at_ms: int = Field(sa_column=_ms())
    acked_seq: int = 0
    head_hash: str = Field(default="0" * 64, max_length=64)
    last_seen_seq: int = 0
    last_sync_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    revoked_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    revoke_reason: str = Field(default="", max_length=500)


class DeviceAnchor(BusinessBase, table=True):
    """Every server time a device was handed; a sale's time counts only from these."""

    __tablename__ = "device_anchor"

    device_id: str = Field(primary_key=True, max_length=32)
    anchor_ms: int = Field(sa_column=Column(BigInteger, primary_key=True))


class Seller(BusinessBase, table=True):
    """A seller of a venue: who signs in on its devices with a PIN (only the PIN's hash is kept).

    ``pin_scheme``, ``pin_salt`` and ``pin_hash`` are :mod:`sync_protocol.pins`' stored form, sent
    as they are to the venue's devices (``SellerInfo``). A disabled seller stays on record (sales
    name it) and is no longer sent.
    """

    __tablename__ = "seller"

    id: str = Field(primary_key=True, max_length=32)
    venue_id: str = Field(foreign_key="venue.id", max_length=32, index=True)
    name: str = Field(max_length=100)
    supervisor: bool = False
    pin_scheme: str = Field(max_length=64)
    pin_salt: str = Field(max_length=64)
    pin_hash: str = Field(max_length=64)
    status: str = Field(default="active", max_length=16)
    created_at_ms: int = Field(sa_column=_ms())
    disabled_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))


class EnrollmentCode(BusinessBase, table=True):
    __tablename__ = "enrollment_code"

    code_hash: str = Field(primary_key=True, max_length=64)
    venue_id: str = Field(foreign_key="venue.id", max_length=32)
    created_at_ms: int = Field(sa_column=_ms())
    expires_at_ms: int = Field(sa_column=_ms())
    used_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    device_id: str | None = Field(default=None, max_length=32)


class Sale(BusinessBase, table=True):
    """Every chain record a device sent: sales and voids, accepted or rejected with a reason."""

    __tablename__ = "sale"
    __table_args__ = (
        UniqueConstraint("device_id", "seq"),
        Index("ix_sale_raffle", "raffle_id", "kind"),
    )

    id: str = Field(primary_key=True, max_length=64)
    device_id: str = Field(max_length=32)
    seq: int
    kind: str = Field(max_length=8)
    raffle_id: str = Field(max_length=64)
    numbers: str = Field(default="[]")
    quantity: int = 0
    amount_cents: int = 0
    currency: str = Field(default="", max_length=3)
    payment_method: str = Field(default="", max_length=8)
    payment_reference: str = Field(default="", max_length=128)
    seller_id: str = Field(default="", max_length=64)
    device_time_ms: int = Field(sa_column=_ms())
    anchor_ms: int = Field(sa_column=_ms())
    elapsed_ms: int = Field(sa_column=_ms())
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    status: str = Field(default="accepted", max_length=16)
    reject_code: str = Field(default="", max_length=32)
    reject_detail: str = Field(default="", max_length=500)
    voids_sale_id: str = Field(default="", max_length=64)
    void_reason: str = Field(default="", max_length=500)
    voided: bool = False
    source: str = Field(default="sync", max_length=8)
    received_at_ms: int = Field(sa_column=_ms())


class OnlineOrder(BusinessBase, table=True):
    """A customer's online purchase of ``quantity`` tickets of one raffle, paid through Stripe
    (``server/payments``, migration 0010; here beside ``sale`` because the raffle's jackpot and
    the reports count ticketed orders with the POS sales). ``state``: ``ORDER_STATES`` of
    ``server.payments.models``."""

    __tablename__ = "online_order"
    __table_args__ = (
        UniqueConstraint("customer", "request_id", name="uq_online_order_customer_request"),
        Index("ix_online_order_customer", "customer", "created_at_ms"),
        Index("ix_online_order_raffle", "raffle_id", "customer"),
        Index("ix_online_order_payment_intent", "payment_intent_id"),
    )

    id: str = Field(primary_key=True, max_length=32)
    #: the principal id of the buyer (``user:...``), the audit actor of the purchase
    customer: str = Field(max_length=100)
    #: the customer's own id of the purchase request: a retry with the same id is the same order
    request_id: str = Field(max_length=64)
    raffle_id: str = Field(max_length=32)
    #: the organisation of the raffle (the audit tenant; what a business admin may list)
    tenant: str = Field(default="", max_length=32)
    quantity: int
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    email: str = Field(default="", max_length=320)
    state: str = Field(default="pending", max_length=16)
    payment_intent_id: str = Field(default="", max_length=255)
    charge_id: str = Field(default="", max_length=255)
    refund_id: str = Field(default="", max_length=255)
    #: the tickets (JSON list of ``{"number", "code"}``) once ticketed
    tickets: str = Field(default="[]")
    #: the receipt as stored and mailed (JSON), once ticketed
    receipt: str = Field(default="")
    #: why the order is where it is (a refund's cause...)
    reason: str = Field(default="", max_length=500)
    created_at_ms: int = Field(sa_column=_ms())
    updated_at_ms: int = Field(sa_column=_ms())
    mailed_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))


class AuditOutbox(BusinessBase, table=True):
    """An audit event written in the same transaction as the business change it records.

    :func:`server.audit.drain` moves rows into the core's audit log (the id becomes the entry's
    ``source_id``, so a row drained twice is appended once) and deletes them (invariant I7).
    """

    __tablename__ = "audit_outbox"

    id: str = Field(primary_key=True, max_length=40)
    time_ms: int = Field(sa_column=_ms())
    actor: str = Field(max_length=100)
    tenant: str = Field(default="", max_length=64)
    type: str = Field(max_length=64)
    payload: str


class ApiToken(BusinessBase, table=True):
    """A bearer token of the HTTP API with one role, installation-wide or bound to one organisation.

    Only the SHA-256 of the token is stored (the token is shown once, when created); a token is
    found by its hash. ``tenant`` is ``""`` for an installation-wide token, else an organisation id
    (the audit log's tenant). ``kind`` is ``api`` or ``break_glass`` (a short-lived emergency admin
    token). ``server/auth.py`` has the roles and the lifecycle.
    """

    __tablename__ = "api_token"
    __table_args__ = (UniqueConstraint("token_sha256"),)

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    role: str = Field(max_length=16)
    tenant: str = Field(default="", max_length=32)
    kind: str = Field(default="api", max_length=16)
    token_sha256: str = Field(max_length=64)
    created_at_ms: int = Field(sa_column=_ms())
    created_by: str = Field(max_length=100)
    expires_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    revoked_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    revoked_by: str = Field(default="", max_length=100)
    revoke_reason: str = Field(default="", max_length=500)
    last_used_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    login_logged_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))


class Approval(BusinessBase, table=True):
    """A two-person request: one person asks (``requested_by``, ``reason``), a different admin
    approves or denies it before ``expires_at_ms``. ``kind`` is ``break_glass`` (a GLI-admin grant
    of ``minutes``, at most 240) or ``extension`` (a range extension above its venue's cap);
    ``subject`` is the request's JSON (what is to be done), ``result`` what was done."""

    __tablename__ = "approval"
    __table_args__ = (Index("ix_approval_status", "status", "requested_at_ms"),)

    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=16)
    status: str = Field(default="pending", max_length=16)
    organisation_id: str = Field(default="", max_length=32)
    requested_by: str = Field(max_length=100)
    requested_at_ms: int = Field(sa_column=_ms())
    reason: str = Field(max_length=500)
    subject: str = Field(default="{}")
    expires_at_ms: int = Field(sa_column=_ms())
    decided_by: str = Field(default="", max_length=100)
    decided_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    result: str = Field(default="{}")


class VenueExtensionCap(BusinessBase, table=True):
    """The most numbers one emergency extension at a venue may hold without a second admin."""

    __tablename__ = "venue_extension_cap"

    venue_id: str = Field(primary_key=True, foreign_key="venue.id", max_length=32)
    cap: int
    set_at_ms: int = Field(sa_column=_ms())
    set_by: str = Field(max_length=100)
