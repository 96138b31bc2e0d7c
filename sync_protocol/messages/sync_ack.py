"""SyncAck: the server's answer to a batch, and RaffleInfo, what a device knows of a raffle."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sync_protocol.bounds import NO_NUL, SAFE_INT_MAX
from sync_protocol.messages._base import Message
from sync_protocol.messages.grant import RangeGrant
from sync_protocol.messages.sellers import SellerInfo
from sync_protocol.version import PROTOCOL_VERSION


class PricePoint(Message):
    """``quantity`` tickets for ``amount_cents`` (50/50 bundles: 1 for 500, 5 for 1000...)."""

    quantity: int = Field(ge=1)
    amount_cents: int = Field(ge=0)


class RaffleInfo(Message):
    """A raffle as devices see it: prices and when sales open and close.

    What a sale costs is :func:`sync_protocol.rules.sale_amount` of these terms.
    """

    raffle_id: str
    name: str
    currency: str
    price_points: list[PricePoint]
    sales_open_at_ms: int
    sales_close_at_ms: int
    status: Literal["scheduled", "open", "closed", "cancelled"]
    #: only the price points may be sold; otherwise any quantity also sells as singles
    #: (``sync_protocol.rules.sale_amount``). Optional: absent (``None``) means false, and an
    #: absent member stays absent when the message is encoded again.
    bundles_only: bool | None = None
    #: why the server handed this device no new grant of the raffle when it was due one: the
    #: core's code ``raffle_numbers_exhausted`` (every number of the number space is granted to
    #: some device) or ``device_cap_reached`` (the device holds the most numbers one device may
    #: hold). Optional: absent when the device got its grant or needed none.
    no_grant: str | None = Field(default=None, max_length=64)
    # What a receipt prints that the device cannot know (docs/sync-protocol.md section 7,
    # "Receipt members"; WAC 230-11-365). Each optional: absent when the server has none.
    #: the organisation that runs the raffle
    organisation: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    #: the raffle's licence (or the organisation's, when the raffle has none of its own)
    licence_number: str | None = Field(default=None, max_length=64, pattern=NO_NUL)
    #: the name of the venue the raffle is sold at (the device's venue), as receipts print it
    venue_name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    #: where the results are published
    results_url: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    #: prizes must be claimed before this time (ms since the epoch)
    claim_by_ms: int | None = Field(default=None, ge=0, le=SAFE_INT_MAX)
    #: the public ticket-check page; a ticket's URL is :func:`sync_protocol.codes.ticket_check_url`
    check_url: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    #: whether a device may sell this raffle while it cannot reach the server (Ontario AGCO POS
    #: 1.1.5). Optional: absent means true; the server writes it only as ``false``. When false a
    #: device sells only while the server answered recently (``pos_client.online``).
    offline_sales: bool | None = None


class RejectedRecord(Message):
    """A record the server refused and recorded as rejected, with the reason."""

    seq: int
    sale_id: str
    code: str
    detail: str


class SyncAck(Message):
    """What the server acknowledges and hands back after a sync."""

    protocol_version: str = PROTOCOL_VERSION
    device_id: str
    acked_seq: int = Field(ge=0)
    head_hash: str
    applied: int = 0
    duplicates: int = 0
    rejected: list[RejectedRecord] = Field(default_factory=list)
    grants: list[RangeGrant] = Field(default_factory=list)
    raffles: list[RaffleInfo] = Field(default_factory=list)
    revoked_grants: list[str] = Field(default_factory=list)
    device_status: Literal["active", "revoked"] = "active"
    server_time_ms: int
    lease_s: int
    #: protocol 1.1, present only when the batch carried ``events``: the last event of the device's
    #: event chain the server holds, and its hash (sync-protocol section 19)
    events_acked_seq: int | None = Field(default=None, ge=0)
    events_head_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    #: the full roster of the device's venue (active sellers, PIN hashes); optional: absent
    #: (an older server) means the device keeps the roster it has (docs/sync-protocol.md section 7)
    sellers: list[SellerInfo] | None = None
