"""Response models of the routes in :mod:`server.endpoints` (devices, venues, ingest, the interface
layer): what ``/openapi.json`` shows a client generator. The services return plain dicts; FastAPI
checks each answer against its model, so a service that drifts from its documented shape fails
its tests instead of surprising a client.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sync_protocol.messages import RejectedRecord


class Venue(BaseModel):
    """A venue of an organisation (it owns raffles, devices and sellers)."""

    id: str
    organisation_id: str = Field(description="the organisation (tenant) that owns the venue")
    name: str
    created_at_ms: int = Field(description="Unix ms")


class EnrollmentCode(BaseModel):
    """A one-time enrollment code: shown once, only its hash is kept."""

    code: str = Field(description="the code a device sends to POST /v1/devices/enroll (XXXX-XXXX-XXXX)")
    venue_id: str
    expires_at_ms: int = Field(description="Unix ms; the code is refused after it")


class Device(BaseModel):
    """An enrolled device and where its sync stands."""

    id: str
    venue_id: str
    name: str
    public_key: str = Field(description="the device's Ed25519 public key, base64url")
    key_id: str
    status: str = Field(description="`active` or `revoked`")
    enrolled_at_ms: int
    acked_seq: int = Field(description="the last record the server acknowledged")
    head_hash: str = Field(description="the hash of that record (the chain's head), hex")
    last_seen_seq: int
    last_sync_ms: int | None = Field(description="the last sync, Unix ms; null before the first")
    revoked_at_ms: int | None
    revoke_reason: str


class VoidedGrant(BaseModel):
    """A grant whose unsold numbers a revocation voided."""

    grant_id: str
    raffle_id: str
    device_id: str
    first_number: int
    last_number: int
    unsold: int = Field(description="how many of its numbers were voided unsold")


class RevokedDevice(Device):
    """The device after a revocation."""

    revoked_now: bool = Field(description="false: it was revoked already and nothing changed")
    voided_grants: list[VoidedGrant] = Field(description="what this call voided")


class RemainderVoided(BaseModel):
    """A device's remainder of one raffle, voided."""

    device_id: str
    raffle_id: str
    grants_voided: int


class IngestResult(BaseModel):
    """What one export file brought in (docs/sync-protocol.md, nightly reconciliation)."""

    file: str = Field(description="the server's name of the uploaded file")
    device_id: str
    records: int = Field(description="records in the file")
    applied: int = Field(description="records new to the server, applied")
    duplicates: int = Field(description="records the server held already")
    rejected: list[RejectedRecord] = Field(description="records refused, each with its code")
    last_seq: int


class GeneratedTickets(BaseModel):
    """Tickets sold online through the interface layer."""

    tickets: list[str] = Field(description="the ids of the tickets sold")
