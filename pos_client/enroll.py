"""Enrollment: the device trades a one-time code and its public key for an identity.

The device key is an Ed25519 key generated here and kept (PKCS#8 PEM) in the device's SQLite
file; it never leaves the device. It is stored *before* the request goes out, so an enrollment
whose answer may have been lost (a timeout, a 5xx) is retried with the same key and the server
recognises it. An enrollment that certainly did not enrol the device (the server refused the
code, it could not be reached at all, its answer is refused) forgets the key it generated: it
leaves nothing behind. The answer pins the server keys, sets the first time anchor and lease,
and brings the raffles and first grants (each verified with the pinned keys before it is stored).

Out-of-band pinning (``docs/sync-protocol.md`` section 8): given ``server_key``, the key id or
public key the operator read from ``tombola init`` on the server, the device refuses an answer
that does not carry that grant key (``server_key_not_pinned``) and pins only that key, instead
of trusting the keys of the first answer it gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from pos_client import sellers, wallet
from pos_client.clock import Anchor, Clock, Reading
from pos_client.errors import AlreadyEnrolled, NetworkError, ServerError, ServerKeyNotPinned, ServerRefused
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


def device_key(store: Store, *, device_name: str = "") -> tuple[SoftwareSigner, bool]:
    """The device's signing key, generated and stored on first use; ``True`` when generated now.

    Raises:
        AlreadyEnrolled: asked for a key to enroll with, but the device is enrolled.
    """
    with store.write() as conn:
        state = store.device()
        if state is not None:
            if state.enrolled:
                raise AlreadyEnrolled(f"this database already belongs to device {state.device_id}")
            conn.execute("UPDATE device SET device_name = ? WHERE id = 1", (device_name,))
            return SoftwareSigner.from_pem(state.key_pem.encode("ascii")), False
        signer = SoftwareSigner.generate()
        conn.execute(
            "INSERT INTO device (id, key_pem, public_key, key_id, device_name) VALUES (1, ?, ?, ?, ?)",
            (signer.to_pem().decode("ascii"), b64u_encode(signer.public_key), signer.key_id, device_name),
        )
        return signer, True


def matches(key: PublicKey, pinned: str) -> bool:
    """``pinned`` names ``key``: its key id (``ed25519:`` + 16 hex digits) or its public key (base64url)."""
    pinned = pinned.strip()
    return pinned in (key.key_id, b64u_encode(key.public_key))


def pin_out_of_band(keys: list[PublicKey], server_key: str | None) -> list[PublicKey]:
    """The keys to pin: all of the answer's, or only the one the operator gave out of band.

    Raises:
        Malformed: the answer pins no key.
        ServerKeyNotPinned: ``server_key`` is given and the answer does not carry it.
    """
    if not keys:
        raise Malformed("the enrollment response pins no server key")
    if server_key is None:
        return keys  # trust on first use (docs/sync-protocol.md section 8)
    pinned = [k for k in keys if matches(k, server_key)]
    if not pinned:
        raise ServerKeyNotPinned(
            f"the server's enrollment answer does not carry the grant key {server_key.strip()!r} given with "
            f"--server-key (it lists {', '.join(k.key_id for k in keys)}): another server, or an answer altered "
            "on the way; nothing was written. Check the key `tombola init` prints on the server",
            server_keys=[k.key_id for k in keys],
        )
    return pinned


def may_have_enrolled(exc: BaseException) -> bool:
    """Whether the server may have enrolled the device although the call failed: an answer was
    lost on any try (timeout, dropped connection, 5xx), so the key is kept for a retry with the
    same code. Only when no try ever got past connecting was nothing sent."""
    if isinstance(exc, ServerError):
        return True
    if isinstance(exc, NetworkError):
        return exc.maybe_delivered
    return False


def forget_key(store: Store) -> None:
    """Drop the key of a device that is not enrolled (the enrollment it was made for failed)."""
    with store.write() as conn:
        conn.execute("DELETE FROM device WHERE id = 1 AND device_id IS NULL")


def enroll(
    store: Store,
    clock: Clock,
    transport: Transport,
    *,
    code: str,
    server_url: str,
    device_name: str = "",
    server_key: str | None = None,
) -> Enrollment:
    """Enroll this device with ``code`` at ``server_url``.

    ``server_key``: the server's grant key as the operator read it out of band (key id or
    public key); the answer must carry it, and only it is pinned.

    Raises:
        AlreadyEnrolled: the database already has an identity.
        ServerRefused: the server refused the code (its own error code).
        ServerError, NetworkError: the server could not be reached.
        Malformed: the answer is not a valid enrollment response.
        ServerKeyNotPinned: the answer does not carry ``server_key``.
    """
    signer, generated = device_key(store, device_name=device_name)
    try:
        request = EnrollmentRequest.from_dict(
            {"code": code, "public_key": b64u_encode(signer.public_key), "device_name": device_name}
        ).signed_by(signer)
        answer = transport.post(ENROLL_PATH, request.to_dict())
        at = Reading.of(clock)
        if not answer.ok:
            raise ServerRefused(answer.detail, server_code=answer.error_code, http_status=answer.status)
        response = EnrollmentResponse.from_dict(answer.body)
        keys = pin_out_of_band([PublicKey.from_dict(k) for k in response.server_keys], server_key)
    except BaseException as exc:
        if generated and not may_have_enrolled(exc):
            forget_key(store)
        raise

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
        sellers.store_roster(conn, response.sellers)
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
