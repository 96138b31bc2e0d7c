"""Enrollment: the device trades a one-time code and its public key for an identity.

The device key is an Ed25519 key generated here and kept (PKCS#8 PEM) in the device's SQLite
file; it never leaves the device. It is stored *before* the request goes out, so an enrollment
whose answer was lost is retried with the same key (the server can recognise it). The answer
pins the server keys, sets the first time anchor and lease, and brings the raffles and first
grants (each verified with the pinned keys before it is stored).
"""

from __future__ import annotations

from dataclasses import dataclass

from pos_client import wallet
from pos_client.clock import Anchor, Clock, Reading
from pos_client.errors import AlreadyEnrolled, ServerRefused
from pos_client.store import Store
from pos_client.transport import Transport
from pos_client.wallet import RefusedGrant
from sync_protocol.errors import Malformed
from sync_protocol.messages import EnrollmentRequest, EnrollmentResponse
from sync_protocol.signing import KeyRing, PublicKey, SoftwareSigner, b64u_encode

ENROLL_PATH = "/v1/devices/enroll"


@dataclass(frozen=True)
class Enrollment:
    """What enrollment gave the device."""

    device_id: str
    venue_id: str
    server_key_ids: list[str]
    grants: list[str]
    refused_grants: list[RefusedGrant]
    raffles: list[str]
    lease_s: int
    server_time_ms: int


def device_key(store: Store, *, device_name: str = "") -> SoftwareSigner:
    """The device's signing key, generated and stored on first use.

    Raises:
        AlreadyEnrolled: asked for a key to enroll with, but the device is enrolled.
    """
    with store.write() as conn:
        state = store.device()
        if state is not None:
            if state.enrolled:
                raise AlreadyEnrolled(f"this database already belongs to device {state.device_id}")
            conn.execute("UPDATE device SET device_name = ? WHERE id = 1", (device_name,))
            return SoftwareSigner.from_pem(state.key_pem.encode("ascii"))
        signer = SoftwareSigner.generate()
        conn.execute(
            "INSERT INTO device (id, key_pem, public_key, key_id, device_name) VALUES (1, ?, ?, ?, ?)",
            (signer.to_pem().decode("ascii"), b64u_encode(signer.public_key), signer.key_id, device_name),
        )
        return signer


def enroll(
    store: Store,
    clock: Clock,
    transport: Transport,
    *,
    code: str,
    server_url: str,
    device_name: str = "",
) -> Enrollment:
    """Enroll this device with ``code`` at ``server_url``.

    Raises:
        AlreadyEnrolled: the database already has an identity.
        ServerRefused: the server refused the code (its own error code).
        ServerError, NetworkError: the server could not be reached.
        Malformed: the answer is not a valid enrollment response.
    """
    signer = device_key(store, device_name=device_name)
    request = EnrollmentRequest.from_dict(
        {"code": code, "public_key": b64u_encode(signer.public_key), "device_name": device_name}
    ).signed_by(signer)
    answer = transport.post(ENROLL_PATH, request.to_dict())
    at = Reading.of(clock)
    if not answer.ok:
        raise ServerRefused(answer.detail, server_code=answer.error_code, http_status=answer.status)
    response = EnrollmentResponse.from_dict(answer.body)
    keys = [PublicKey.from_dict(k) for k in response.server_keys]
    if not keys:
        raise Malformed("the enrollment response pins no server key")

    with store.write() as conn:
        state = store.device()
        if state is None or state.enrolled:
            raise AlreadyEnrolled("this database was enrolled by another process meanwhile")
        wallet.pin_keys(conn, keys)
        conn.execute(
            "UPDATE device SET device_id = ?, venue_id = ?, server_url = ?, status = 'active', enrolled_at_ms = ?, "
            "last_sync_ms = ? WHERE id = 1",
            (response.device_id, response.venue_id, server_url, at.wall_ms, at.wall_ms),
        )
        store.set_anchor(Anchor.received(response.server_time_ms, at), response.lease_s)
        wallet.store_raffles(conn, response.raffles)
        intake = wallet.store_grants(
            conn, response.grants, keys=KeyRing(keys), device_id=response.device_id, now_ms=at.wall_ms
        )
    return Enrollment(
        device_id=response.device_id,
        venue_id=response.venue_id,
        server_key_ids=[k.key_id for k in keys],
        grants=intake.stored,
        refused_grants=intake.refused,
        raffles=[r.raffle_id for r in response.raffles],
        lease_s=response.lease_s,
        server_time_ms=response.server_time_ms,
    )
