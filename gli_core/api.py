"""The core's public interface: the only part of :mod:`gli_core` the server calls.

``Core.open(db_url, key_dir, hsm=...)`` runs the core in-process (embedded mode); the same object
backs the core's HTTP router (:mod:`gli_core.router`) when the core runs as its own service. Its
keys live in the PKCS#11 token (:mod:`gli_core.hsm`); ``init_hsm`` is the set-up ``tombola init``
runs.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from dbkit import make_engine
from gli_core.audit.config import AuditConfig
from gli_core.audit.entry import AuditEvent, acting_as, current_actor, set_actor
from gli_core.audit.log import AuditLog, SignedCheckpoint
from gli_core.audit.note import NoteSigner, NoteVerifier, audit_origin
from gli_core.audit.shipper import read_archive
from gli_core.audit.signers import create_kms_audit_key
from gli_core.audit.store import LocalSegmentStore, setup_bucket
from gli_core.audit.verify import verify_checkpoint_chain, verify_chunks, verify_log
from gli_core.db import migrate
from gli_core.draw.inclusion import (
    TicketInclusionInvalid,
    VerifiedInclusion,
    ticket_inclusion,
    verify_ticket_inclusion,
)
from gli_core.draw.proof import build_proof
from gli_core.draw.selection import DrawTicket
from gli_core.draw.service import DEFAULT_PRIZE_TABLE, DrawService, VrfSigner
from gli_core.draw.verify import verify_proof
from gli_core.draw.vrf import VrfPublicKey
from gli_core.errors import RaffleNotFound, RaffleNotOpen
from gli_core.hsm import Hsm, HsmConfig, HsmUnavailable, init_hsm, open_hsm
from gli_core.models import RngCall as RngCallRow
from gli_core.registry import (
    GrantView,
    RaffleSpec,
    RecordResult,
    Registry,
    TicketSale,
    TicketView,
)
from gli_core.rng.service import RngCall, RngService
from sync_protocol.codes import codes_match
from sync_protocol.messages import RangeGrant
from sync_protocol.signing import PublicKey, Signer

RNG_CALL = RngCallRow.__table__  # type: ignore[attr-defined]

__all__ = [
    "AuditConfig",
    "AuditEvent",
    "AuditLog",
    "Core",
    "DrawTicket",
    "GrantView",
    "HsmConfig",
    "HsmUnavailable",
    "LocalSegmentStore",
    "NoteVerifier",
    "RaffleSpec",
    "RecordResult",
    "SignedCheckpoint",
    "TicketInclusionInvalid",
    "TicketLookup",
    "TicketSale",
    "TicketView",
    "VerifiedInclusion",
    "VrfPublicKey",
    "acting_as",
    "build_proof",
    "create_kms_audit_key",
    "current_actor",
    "init_hsm",
    "read_archive",
    "set_actor",
    "setup_bucket",
    "verify_checkpoint_chain",
    "verify_chunks",
    "verify_log",
    "verify_proof",
    "verify_ticket_inclusion",
]


class Core:
    """The certified core: ticket registry and grant signing (draws and audit come with their issues)."""

    def __init__(self, engine: Engine, signer: Signer, audit_signer: NoteSigner | None = None) -> None:
        self.engine = engine
        #: the append-only audit log; every core state change appends to it in its own transaction
        self.audit = AuditLog(engine, audit_signer, origin=audit_origin(secrets.token_hex(6)))
        self.registry = Registry(engine, signer, self.audit)
        self.audit_config = AuditConfig(archive="none")
        #: the token, when the core was opened with one (unit tests pass a software signer)
        self.hsm: Hsm | None = None
        self.rng: RngService | None = None
        self.draws: DrawService | None = None

    def _attach(self, token: Hsm) -> None:
        """Wire the token: the RNG service (health-tested, every call recorded) and the draw engine."""
        self.hsm = token
        rng = RngService(token.generate_random, self._record_rng)
        self.rng = rng

        def vrf_key(key_id: str | None) -> VrfSigner:
            """The current VRF key, or the generation a raffle committed to (``key_id``)."""
            from gli_core.draw.vrf import VrfPublicKey
            from gli_core.hsm import HsmRsaKey

            if key_id is None:
                key = token.vrf_key()
                return VrfSigner(key.n, key.e, key.raw_rsa)
            for k in token.keys("vrf"):
                if isinstance(k, HsmRsaKey) and VrfPublicKey(k.n, k.e).key_id == key_id:
                    return VrfSigner(k.n, k.e, k.raw_rsa)
            raise HsmUnavailable(f"the token has no VRF key {key_id} (the raffle's committed key)", reason="key")

        def random_bytes(n: int, purpose: str, raffle_id: str) -> bytes:
            return rng.random_bytes(n, purpose=purpose, raffle_id=raffle_id)

        self.draws = DrawService(self.engine, self.registry, vrf_key, random_bytes)

    def _record_rng(self, call: RngCall) -> None:
        detail = {
            k: v for k, v in call.to_dict().items() if k in ("operation", "lo", "hi", "n_bytes", "outcome", "detail")
        }
        event = AuditEvent(
            type="rng.health_failure" if call.outcome in ("health_failure", "refused") else "rng.call",
            actor=current_actor(),
            payload={"request_id": call.request_id, "purpose": call.purpose, "raffle_id": call.raffle_id, **detail}
            | ({"output_sha256": call.output_sha256} if call.output_sha256 else {}),
        )
        with self.engine.begin() as conn:
            self.audit.append(conn, [event])
            conn.execute(
                insert(RNG_CALL).values(
                    id=call.request_id,
                    purpose=call.purpose,
                    raffle_id=call.raffle_id,
                    request=json.dumps(detail)[:200],
                    output_sha256=call.output_sha256 or "",
                    at_ms=call.at_ms,
                )
            )

    def _draws(self) -> DrawService:
        if self.draws is None:
            raise HsmUnavailable("the draw engine needs the HSM; this core was opened without one", reason="token")
        return self.draws

    @classmethod
    def open(
        cls,
        db_url: str,
        key_dir: Path,
        *,
        run_migrations: bool = True,
        hsm: HsmConfig | None = None,
        audit: AuditConfig | None = None,
    ) -> Core:
        """Open (and migrate) the core database at ``db_url``; sign grants with the HSM's key.

        ``hsm`` defaults to the ``TOMBOLA_HSM_*`` environment, with the embedded SoftHSM2 token
        under ``key_dir.parent / "hsm"`` (the installation's home). The current grant and VRF keys
        are generated in the token if it has none; the public part of every grant-key generation
        is recorded so that grants signed before a rotation still verify.

        Raises:
            HsmUnavailable: the token cannot be used (the core does not open without it).
        """
        if run_migrations:
            migrate(db_url)
        token = open_hsm(hsm or HsmConfig.from_env(home=key_dir.parent))
        try:
            signer = token.grant_signer()
            token.vrf_key()
            core = cls(make_engine(db_url), signer)
            core.audit_config = audit or AuditConfig.from_env(home=key_dir.parent)
            core.audit.signer = core._audit_signer(token, core.audit_config)
            core._attach(token)
            for old in token.grant_signers():
                Registry(core.engine, old, core.audit).record_signer()
            core._log_new_keys(token)
        except BaseException:
            token.close()
            raise
        return core

    def _log_new_keys(self, token: Hsm) -> None:
        """``key.generated`` for every key of the token the log has not recorded yet."""
        import orjson

        known = {
            orjson.loads(data)["payload"].get("key_id")
            for _, data in self.audit.entries(type_prefix="key.generated", after=-1, limit=1_000_000)
        }
        new = [k for k in token.public_keys() if k.key_id not in known]
        self.audit.append_now(
            [
                AuditEvent(
                    type="key.generated",
                    actor="service:core",
                    payload={
                        "purpose": k.purpose or "",
                        "algorithm": k.algorithm,
                        "key_id": k.key_id,
                        "label": k.label,
                        "public_key": k.public_key.hex(),
                    },
                )
                for k in new
            ]
        )

    def _audit_signer(self, token: Hsm, config: AuditConfig) -> NoteSigner:
        from gli_core.audit.signers import HsmNoteSigner, KmsNoteSigner

        if config.signer == "kms":
            assert config.kms_key_id is not None
            return KmsNoteSigner(config.aws_client("kms"), config.kms_key_id, self.audit.origin)
        return HsmNoteSigner(token, self.audit.origin)

    def audit_verifiers(self) -> list[NoteVerifier]:
        """The verifier keys of every checkpoint key this log has used (all HSM generations, or KMS)."""
        from gli_core.audit.signers import hsm_audit_verifiers

        keys: list[NoteVerifier] = []
        if self.hsm is not None:
            keys += hsm_audit_verifiers(self.hsm, self.audit.origin)
        signer = self.audit.signer
        if signer is not None and hasattr(signer, "verifier"):
            keys.append(signer.verifier())
        unique = {k.vkey: k for k in keys}
        return list(unique.values())

    def rotate_key(self, purpose: str) -> dict[str, str]:
        """Generate a new HSM key for ``purpose`` (``grant``, ``vrf``, ``audit``); it becomes current.

        Old keys stay in the token: grants and checkpoints they signed still verify, and each
        raffle's draw keeps the VRF key it committed to when it was created. The rotation and the
        new key are logged together. Other server processes take the new key when they restart.
        """
        from gli_core.audit.signers import HsmNoteSigner

        if self.hsm is None:
            raise HsmUnavailable("rotation needs the HSM; this core was opened without one", reason="token")
        old = self.hsm.current(purpose)
        new = self.hsm.rotate(purpose)
        with self.engine.begin() as conn:
            self.audit.append(
                conn,
                [
                    AuditEvent(
                        type="key.rotated",
                        actor=current_actor(),
                        payload={
                            "purpose": purpose,
                            "old_key_id": old.public().key_id,
                            "new_key_id": new.public().key_id,
                        },
                    )
                ],
            )
        self._log_new_keys(self.hsm)
        if purpose == "grant":
            signer = self.hsm.grant_signer()
            self.registry.signer = signer
            self.registry.record_signer()
        elif purpose == "audit" and isinstance(self.audit.signer, HsmNoteSigner):
            self.audit.signer = HsmNoteSigner(self.hsm, self.audit.origin)
        return {"purpose": purpose, "old_key_id": old.public().key_id, "new_key_id": new.public().key_id}

    def audit_stores(self) -> list[Any]:
        """The archive stores the configuration names (local segment directory, S3 Object Lock)."""
        from gli_core.audit.store import LocalSegmentStore, S3SegmentStore

        config = self.audit_config
        if config.archive == "local" and config.local_dir is not None:
            return [LocalSegmentStore(config.local_dir)]
        if config.archive == "s3" and config.bucket:
            return [S3SegmentStore(config.aws_client("s3"), config.bucket, retention_days=config.retention_days)]
        return []

    def audit_shipper(self, stores: Sequence[Any] | None = None) -> Any:
        """A :class:`~gli_core.audit.shipper.Shipper` of this log to ``stores`` (default: configured)."""
        from gli_core.audit.shipper import Shipper

        chosen = self.audit_stores() if stores is None else list(stores)
        return Shipper(self.audit, chosen, self.audit, segment_size=self.audit_config.segment_size)

    def audit_append(self, events: Sequence[AuditEvent]) -> list[int]:
        """Append events that have no core state change of their own (outbox drains, logins)."""
        return self.audit.append_now(events)

    def close(self) -> None:
        self.engine.dispose()
        if self.hsm is not None:
            self.hsm.close()

    # keys
    def public_keys(self) -> list[PublicKey]:
        return self.registry.public_keys()

    # raffles
    def register_raffle(self, spec: RaffleSpec, prize_table: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Register the raffle and its draw (nonce drawn, commitment public; default: one 50/50 prize)."""
        if self.draws is not None:
            from gli_core.draw.selection import parse_prize_table

            parse_prize_table(prize_table or DEFAULT_PRIZE_TABLE)  # refuse a bad table before anything is written
        self.registry.register_raffle(spec)
        if self.draws is not None:
            self.draws.create(spec.raffle_id, opens_at_ms=spec.sales_open_at_ms, prize_table=prize_table)

    def update_raffle(
        self,
        raffle_id: str,
        *,
        sales_close_at_ms: int | None = None,
        status: str | None = None,
        sales_open_at_ms: int | None = None,
    ) -> RaffleSpec:
        """Change the sales window or status (logged ``raffle.changed`` with before and after)."""
        return self.registry.update_raffle(
            raffle_id, sales_close_at_ms=sales_close_at_ms, status=status, sales_open_at_ms=sales_open_at_ms
        )

    def raffle(self, raffle_id: str) -> RaffleSpec:
        return self.registry.raffle(raffle_id)

    # grants
    def issue_grant(
        self,
        raffle_id: str,
        device_id: str,
        *,
        numbers: int | None = None,
        kind: str = "initial",
        reason: str = "",
        enforce_cap: bool = True,
        exact: bool = False,
    ) -> RangeGrant:
        """A signed grant of the next free numbers; ``exact``: exactly ``numbers`` or
        ``not_enough_numbers`` with the count left (an admin's extension), never a shorter grant."""
        return self.registry.issue_grant(
            raffle_id, device_id, numbers=numbers, kind=kind, reason=reason, enforce_cap=enforce_cap, exact=exact
        )

    def grants(
        self, *, device_id: str | None = None, raffle_id: str | None = None, status: str | None = "active"
    ) -> list[GrantView]:
        return self.registry.grants(device_id=device_id, raffle_id=raffle_id, status=status)

    def void_grants(self, grant_ids: Sequence[str], reason: str) -> None:
        self.registry.set_grants_status(grant_ids, "voided", reason)

    def void_device_grants(self, device_id: str, reason: str) -> list[dict[str, Any]]:
        """Void the unsold remainder of every active grant of a device (revocation), logged with the
        reason; grants of raffles frozen for their draw are left. Returns what was voided
        (``grant_id``, ``raffle_id``, ``first_number``, ``last_number``, ``unsold``)."""
        return self.registry.void_device_grants(device_id, reason)

    def device_synced(self, device_id: str, at_ms: int) -> None:
        self.registry.device_synced(device_id, at_ms)

    def device_usage(
        self, device_id: str, raffle_ids: Sequence[str], spent: Mapping[str, Iterable[int]] | None = None
    ) -> dict[str, tuple[int, int]]:
        """``raffle_id -> (numbers granted, numbers used)`` of the device's active grants: used are
        its recorded tickets and ``spent``, the numbers of its rejected records (by raffle)."""
        return self.registry.device_usage(device_id, raffle_ids, spent)

    def batch_view(
        self, device_id: str, numbers: Mapping[str, Iterable[int]]
    ) -> tuple[dict[str, list[tuple[int, int]]], dict[tuple[str, int], str]]:
        """The device's grant ranges by raffle, and which of ``numbers`` (by raffle) are on record
        and by which sale: what judging one batch needs from the core, read in one go."""
        return self.registry.batch_view(device_id, numbers)

    # tickets
    def record(self, sales: Sequence[TicketSale], voided_sale_ids: Sequence[str] = ()) -> RecordResult:
        """Record sales and voids; refused once the raffle's ticket set is frozen for its draw.

        The server's sync rules reject such records first (``ticket_set_frozen`` through the
        rejection protocol); this is the core's own guard, voids included.
        """
        # The registry holds the draw rows FOR SHARE while it records and refuses a frozen set
        # there: that one check, inside the recording's transaction, is the guard.
        return self.registry.record(sales, voided_sale_ids)

    def frozen_raffles(self, raffle_ids: Iterable[str]) -> set[str]:
        """Which of ``raffle_ids`` have their ticket set frozen for the draw (RECONCILED or later)."""
        wanted = sorted(set(raffle_ids))
        if self.draws is None or not wanted:
            return set()
        return self.draws.frozen_raffles(wanted)

    # draws (spec 1.2): POST /draw/initiate, /draw/execute; GET /draw/{id}/status, /results; cancel
    def draw_status(self, raffle_id: str) -> dict[str, Any]:
        return self._draws().status(raffle_id)

    def draw_initiate(self, raffle_id: str) -> dict[str, Any]:
        return self._draws().initiate(raffle_id)

    def draw_execute(self, raffle_id: str) -> dict[str, Any]:
        return self._draws().execute(raffle_id)

    def draw_results(self, raffle_id: str) -> dict[str, Any]:
        return self._draws().results(raffle_id)

    def draw_publish(self, raffle_id: str) -> dict[str, Any]:
        return self._draws().publish(raffle_id)

    def draw_cancel(self, raffle_id: str, reason: str) -> dict[str, Any]:
        return self._draws().cancel(raffle_id, reason)

    def cancel_raffle(self, raffle_id: str, reason: str) -> dict[str, Any]:
        """Cancel a raffle in the core: its draw CANCELLED (with the reason, logged) and the raffle
        cancelled, so the core records no sale of it any more (``sale_after_close``). Idempotent:
        a raffle cancelled already is left as it is. Returns the draw's status.

        Raises:
            InvalidTransition: the raffle was drawn already (``invalid_draw_transition``), or no reason.
        """
        if self.draws is None:
            if self.registry.raffle(raffle_id).status != "cancelled":
                if not reason.strip():
                    raise RaffleNotOpen("cancelling a raffle needs a reason")
                self.registry.update_raffle(raffle_id, status="cancelled")
            return {"raffle_id": raffle_id, "state": "CANCELLED", "reason": reason}
        status = self.draws.status(raffle_id)
        if status["state"] != "CANCELLED":
            return self.draws.cancel(raffle_id, reason)
        if self.registry.raffle(raffle_id).status != "cancelled":  # the cancel stopped half way
            self.registry.update_raffle(raffle_id, status="cancelled")
        return status

    def draw_redraw(self, raffle_id: str, tier: str, ticket_number: int, reason: str) -> dict[str, Any]:
        return self._draws().redraw(raffle_id, tier, ticket_number, reason)

    def draw_proof(self, raffle_id: str) -> dict[str, Any]:
        return self._draws().proof(raffle_id)

    def ticket_inclusion(self, raffle_id: str, number: int) -> dict[str, Any] | None:
        """Ticket ``number``'s inclusion proof in the raffle's frozen ticket set (``docs/draw-proof.md``
        4.1): None before the freeze or when the ticket is not in the set."""
        tree = self._draws().ticket_tree(raffle_id)
        return None if tree is None else ticket_inclusion(raffle_id, tree, number)

    def draw_proof_bytes(self, raffle_id: str) -> bytes:
        """The proof file to publish (RFC 8785 bytes; its SHA-256 is the results' ``proof_sha256``)."""
        return self._draws().proof_bytes(raffle_id)

    def void_remainder(self, device_id: str, raffle_id: str, reason: str) -> int:
        return self._draws().void_remainder(device_id, raffle_id, reason)

    def generate_tickets(
        self, raffle_id: str, quantity: int, *, sale_id: str | None = None, amount_cents: int = 0
    ) -> list[TicketView]:
        return self.registry.generate_online(raffle_id, quantity, sale_id=sale_id, amount_cents=amount_cents)

    def ticket(self, ticket_id: str) -> TicketView:
        return self.registry.ticket(ticket_id)

    def ticket_by_number(self, raffle_id: str, number: int) -> TicketView:
        return self.registry.ticket_by_number(raffle_id, number)

    def recorded_draw_state(self, raffle_id: str) -> str | None:
        """The raffle's draw state as recorded (``DRAWN``, ``PUBLISHED``...), read only: unlike
        :meth:`draw_status` the clock is not followed, nothing is written and no key is read.
        ``None`` when this core has no draw engine or the raffle no draw."""
        version = self.draw_version(raffle_id)
        return version[0] if version is not None else None

    def draw_version(self, raffle_id: str) -> tuple[str, int] | None:
        """The recorded draw state and the time of its last change (a transition, a redraw), read
        from two small columns (never the proof): what a cache of published results is keyed by.
        ``None`` when this core has no draw engine or the raffle no draw."""
        if self.draws is None:
            return None
        return self.draws.version(raffle_id)

    def validate_ticket(self, ticket_id: str, code: str | None = None) -> tuple[TicketView, bool]:
        """The ticket and whether it is valid: sold (not voided) and, if given, the code matches
        (:func:`sync_protocol.codes.codes_match`: as typed, compared in constant time)."""
        ticket = self.registry.ticket(ticket_id)
        return ticket, _valid(ticket, code)

    def lookup_ticket(self, raffle_id: str, number: int, code: str) -> TicketLookup:
        """A public ticket check's whole read, in one transaction: the raffle (None when the core
        does not know it), its recorded draw state, the ticket (None when the number is not on
        record) and whether it is valid with ``code`` (the rule of :meth:`validate_ticket`)."""
        try:
            spec, state, ticket = self.registry.lookup(raffle_id, number)
        except RaffleNotFound:
            return TicketLookup(None, None, None, False)
        return TicketLookup(spec, state, ticket, ticket is not None and _valid(ticket, code))

    def validate_number(self, raffle_id: str, number: int, code: str | None = None) -> tuple[TicketView, bool]:
        """:meth:`validate_ticket` of ticket ``number`` of ``raffle_id`` (one read); raises
        ``TicketNotFound`` when the number is not on record."""
        ticket = self.registry.ticket_by_number(raffle_id, number)
        return ticket, _valid(ticket, code)

    def tickets(self, raffle_id: str, *, after_number: int = 0, limit: int | None = None) -> Iterator[TicketView]:
        return self.registry.iter_tickets(raffle_id, after_number=after_number, limit=limit)

    def count_tickets(self, raffle_id: str) -> dict[str, int]:
        return self.registry.count_tickets(raffle_id)

    def set_ticket_status(self, ticket_id: str, status: str) -> TicketView:
        return self.registry.set_ticket_status(ticket_id, status)


@dataclass(frozen=True)
class TicketLookup:
    """What :meth:`Core.lookup_ticket` read: ``raffle`` None when the core does not know it;
    ``ticket`` None when the number is not on record; ``valid`` per :meth:`Core.validate_ticket`."""

    raffle: RaffleSpec | None
    draw_state: str | None
    ticket: TicketView | None
    valid: bool


def _valid(ticket: TicketView, code: str | None) -> bool:
    """A ticket counts when it is sold (not voided) and, if a code is given, the code matches."""
    return ticket.status == "sold" and (code is None or codes_match(code, ticket.verification_code))
