"""The draw engine: the state machine applied to the core database, the reconciliation gate,
the frozen ticket set, and the verifiable draw in the HSM.

Every transition is a compare-and-set (``UPDATE core_draw ... WHERE state = <before>``) in the
transaction that does its work, so two concurrent requests, in one process or several, give
exactly one transition; the loser reads what the winner wrote. The draw itself is
deterministic (RSA-FDH-VRF over committed inputs), so executing again after a crash yields the
same winners, never different ones.
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol, cast

import orjson
from sqlalchemy import Engine, and_, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from dbkit import reader
from gli_core import merkle
from gli_core.audit.entry import AuditEvent, current_actor, parse_entry
from gli_core.audit.note import verifier_key
from gli_core.draw import proof as proofs
from gli_core.draw.inclusion import TicketTree
from gli_core.draw.selection import DrawTicket, RedrawRequest, TicketList, parse_prize_table
from gli_core.draw.state_machine import FROZEN, DrawEvent, DrawState, InvalidTransition, decide
from gli_core.draw.vrf import VrfPublicKey
from gli_core.errors import CoreError, RaffleNotFound, TicketSetFrozen
from gli_core.tables import DEVICE_SYNC, DRAW, GRANT, ONLINE_DEVICE, RAFFLE, TICKET

if TYPE_CHECKING:
    from gli_core.audit.log import AuditLog

__all__ = [
    "DEFAULT_PRIZE_TABLE",
    "FROZEN",
    "AuditHolder",
    "DrawNotReady",
    "DrawService",
    "ReconciliationBlocked",
    "TicketLeafMismatch",
    "TicketSetFrozen",
    "VrfSigner",
]

DEFAULT_PRIZE_TABLE: list[dict[str, Any]] = [{"tier": "50/50", "count": 1, "kind": "percent_of_sales", "percent": 50}]


class AuditHolder(Protocol):
    """What the draw engine needs of the registry: the audit log its transitions append to (the
    draw engine imports nothing of :mod:`gli_core.registry`, which uses the draw's encodings)."""

    audit: AuditLog | None


class ReconciliationBlocked(CoreError):
    """Devices holding numbers of the raffle have not synced since sales closed."""

    code = "reconciliation_blocked"
    status = 409


class DrawNotReady(CoreError):
    code = "draw_not_ready"
    status = 409


class TicketLeafMismatch(CoreError):
    """A ticket's stored leaf hash is not the hash of its leaf: the draw refuses to run."""

    code = "ticket_leaf_mismatch"
    status = 409


def _now() -> int:
    return int(time.time() * 1000)


class VrfSigner:
    """What the draw needs of the VRF key: its public half and the raw RSA operation."""

    def __init__(self, n: int, e: int, raw_rsa: Callable[[int], int]) -> None:
        self.public = VrfPublicKey(n, e)
        self.raw_rsa = raw_rsa


#: frozen ticket trees a draw service keeps (the latest raffles asked about)
_TREES_KEPT = 4
_VERSION = select(DRAW.c.state, DRAW.c.updated_at_ms).where(DRAW.c.raffle_id == bindparam("raffle_id"))


class DrawService:
    def __init__(
        self,
        engine: Engine,
        registry: AuditHolder,
        vrf_key: Callable[[str | None], VrfSigner],
        random_bytes: Callable[[int, str, str], bytes],
        clock: Callable[[], int] = _now,
    ) -> None:
        self.engine = engine
        self.reads = reader(engine)
        self.registry = registry
        self.vrf_key = vrf_key
        self.random_bytes = random_bytes
        self.clock = clock
        self._trees: dict[tuple[str, str], TicketTree] = {}

    # -- set-up -----------------------------------------------------------------
    def create(self, raffle_id: str, *, opens_at_ms: int, prize_table: Sequence[Mapping[str, Any]] | None) -> None:
        """The draw of a new raffle: the nonce is drawn now and only its commitment is public."""
        table = [t.to_dict() for t in parse_prize_table(prize_table or DEFAULT_PRIZE_TABLE)]
        nonce = self.random_bytes(proofs.NONCE_SIZE, "draw_nonce", raffle_id)
        now = self.clock()
        key = self.vrf_key(None).public  # the current key; the raffle keeps it through rotations
        with self.engine.begin() as conn:
            conn.execute(
                insert(DRAW).values(
                    raffle_id=raffle_id,
                    state=(DrawState.SALES_OPEN if opens_at_ms <= now else DrawState.SCHEDULED).value,
                    prize_table=json.dumps(table),
                    vrf_key_id=key.key_id,
                    nonce=nonce.hex(),
                    nonce_commitment=proofs.nonce_commitment(nonce).hex(),
                    updated_at_ms=now,
                )
            )
            self._log(
                conn,
                raffle_id,
                "draw.committed",
                {
                    "raffle_id": raffle_id,
                    "nonce_commitment": proofs.nonce_commitment(nonce).hex(),
                    "vrf_key_id": key.key_id,
                    "vrf_fingerprint": key.fingerprint,
                    "prize_table": table,
                },
            )

    # -- audit --------------------------------------------------------------------
    def _log(self, conn: Connection, raffle_id: str, type_: str, payload: Mapping[str, Any]) -> int | None:
        """Append the event on ``conn``'s transaction (I7); its index, or None without a log."""
        audit = self.registry.audit
        if audit is None:
            return None
        tenant = conn.execute(select(RAFFLE.c.tenant).where(RAFFLE.c.id == raffle_id)).scalar_one_or_none()
        event = AuditEvent(type=type_, actor=current_actor(), payload=payload, tenant=tenant or "")
        return audit.append(conn, [event])[0]

    def _checkpoint(self, reason: str) -> None:
        """Sign a checkpoint after a draw transition (when the log has a signer)."""
        audit = self.registry.audit
        if audit is not None and audit.signer is not None:
            audit.checkpoint(reason)

    def audit_checkpoint(self, raffle_id: str) -> dict[str, Any] | None:
        """The audit checkpoint a draw's alpha binds: the earliest signed checkpoint containing the
        draw's RECONCILED transition, with the inclusion proof of the draw's commitment entry.

        It is fixed once the first such checkpoint exists, so executing again after a crash binds
        the same one (no second, different draw). None when the core has no audit signer.
        """
        audit = self.registry.audit
        row = self._row(raffle_id)
        if audit is None or audit.signer is None or row.audit_index is None:
            return None
        reconciled = int(row.audit_index)
        candidates = audit.checkpoints(after_size=reconciled, limit=1)
        checkpoint = candidates[0] if candidates else audit.checkpoint(f"draw:{raffle_id}:reconciled")
        committed = audit.entries(type_prefix="draw.committed", tenant=None, after=-1, limit=1_000_000)
        for index, data in committed:
            entry = parse_entry(data.encode())
            if entry["payload"].get("raffle_id") == raffle_id and index < checkpoint.size:
                return {
                    "tree_size": checkpoint.size,
                    "root_hash": checkpoint.root_hash.hex(),
                    "leaf_index": index,
                    "inclusion_proof": [h.hex() for h in audit.inclusion_proof(index, checkpoint.size)],
                    "entry": entry,
                    "note": checkpoint.note,
                    "key": verifier_key(audit.signer),
                }
        return None

    # -- reads --------------------------------------------------------------------
    def _row(self, raffle_id: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(DRAW).where(DRAW.c.raffle_id == raffle_id)).first()
        if row is None:
            raise RaffleNotFound(f"raffle {raffle_id} has no draw in the core")
        return row

    def version(self, raffle_id: str) -> tuple[str, int] | None:
        """(state, updated_at_ms) as recorded, or None: no proof read, the clock not followed."""
        with self.reads.connect() as conn:
            row = conn.execute(_VERSION, {"raffle_id": raffle_id}).first()
        return (str(row.state), int(row.updated_at_ms)) if row is not None else None

    def state(self, raffle_id: str) -> DrawState:
        """The state as of now (a raffle whose sales time has come or passed moves on first)."""
        self._follow_clock(raffle_id)
        return DrawState(self._row(raffle_id).state)

    def _follow_clock(self, raffle_id: str) -> None:
        with self.engine.connect() as conn:
            r = conn.execute(select(RAFFLE).where(RAFFLE.c.id == raffle_id)).first()
            d = conn.execute(select(DRAW.c.state).where(DRAW.c.raffle_id == raffle_id)).scalar()
        if r is None or d is None:
            return
        now = self.clock()
        if d == DrawState.SCHEDULED and now >= r.sales_open_at_ms:
            self._cas(raffle_id, DrawState.SCHEDULED, DrawEvent.OPEN, quiet=True)
            d = DrawState.SALES_OPEN
        if d == DrawState.SALES_OPEN and (now >= r.sales_close_at_ms or r.status == "closed"):
            self._cas(raffle_id, DrawState.SALES_OPEN, DrawEvent.CLOSE, quiet=True)

    def status(self, raffle_id: str) -> dict[str, Any]:
        state = self.state(raffle_id)
        row = self._row(raffle_id)
        key = self.vrf_key(row.vrf_key_id).public
        out: dict[str, Any] = {
            "raffle_id": raffle_id,
            "state": state.value,
            "reason": row.reason,
            "prize_table": json.loads(row.prize_table),
            "nonce_commitment": row.nonce_commitment,
            "vrf": key.to_dict(),
            "ticket_root": row.ticket_root or None,
            "ticket_count": row.ticket_count if state in FROZEN else None,
        }
        if state is DrawState.SALES_CLOSED:
            out["blocking_devices"] = self.blocking_devices(raffle_id)
        return out

    def blocking_devices(self, raffle_id: str) -> list[dict[str, Any]]:
        """Devices holding an active grant of the raffle that have not synced since sales closed."""
        with self.engine.connect() as conn:
            close_at = conn.execute(select(RAFFLE.c.sales_close_at_ms).where(RAFFLE.c.id == raffle_id)).scalar_one()
            rows = conn.execute(
                select(GRANT.c.device_id, DEVICE_SYNC.c.last_sync_ms)
                .select_from(GRANT.outerjoin(DEVICE_SYNC, DEVICE_SYNC.c.device_id == GRANT.c.device_id))
                .where(
                    and_(GRANT.c.raffle_id == raffle_id, GRANT.c.status == "active", GRANT.c.device_id != ONLINE_DEVICE)
                )
                .distinct()
            ).all()
        return [
            {"device_id": r.device_id, "last_sync_ms": r.last_sync_ms}
            for r in rows
            if r.last_sync_ms is None or r.last_sync_ms < close_at
        ]

    # -- transitions --------------------------------------------------------------
    def _cas(
        self,
        raffle_id: str,
        before: DrawState,
        event: DrawEvent,
        *,
        reason: str = "",
        quiet: bool = False,
        conn: Connection | None = None,
        drawn: proofs.DrawProof | None = None,
        drawn_sha256: str = "",
        **values: Any,
    ) -> bool:
        """Compare-and-set ``before`` -> the event's state, with its audit entry, in one transaction
        (``conn``'s when given: the caller commits, and issues the checkpoint after)."""
        if conn is None:
            with self.engine.begin() as own:
                done = self._cas(
                    raffle_id,
                    before,
                    event,
                    reason=reason,
                    quiet=True,
                    conn=own,
                    drawn=drawn,
                    drawn_sha256=drawn_sha256,
                    **values,
                )
            if done and not quiet:
                self._checkpoint(f"draw:{raffle_id}:{decide(before, event, reason=reason).after.value.lower()}")
            if not done and not quiet:
                raise InvalidTransition(f"the draw of {raffle_id} moved on concurrently; it is no longer {before}")
            return done
        t = decide(before, event, reason=reason)
        changed = conn.execute(
            update(DRAW)
            .where(and_(DRAW.c.raffle_id == raffle_id, DRAW.c.state == before.value))
            .values(state=t.after.value, updated_at_ms=self.clock(), **({"reason": reason} if reason else {}), **values)
        ).rowcount
        done = bool(changed)
        if done:
            payload: dict[str, Any] = {"raffle_id": raffle_id, "from": before.value, "to": t.after.value}
            if reason:
                payload["reason"] = reason
            if "ticket_root" in values:
                payload.update(ticket_root=values["ticket_root"], ticket_count=values.get("ticket_count"))
            index = self._log(conn, raffle_id, "draw.state_changed", payload)
            if drawn is not None:
                payload = _winners_payload(raffle_id, drawn_sha256 or _sha256(values["proof"]), drawn)
                self._log(conn, raffle_id, "draw.winners_determined", payload)
            if t.after is DrawState.RECONCILED and index is not None:
                conn.execute(update(DRAW).where(DRAW.c.raffle_id == raffle_id).values(audit_index=index))
        return bool(done)

    def _sold_rows(self, raffle_id: str, conn: Connection | None = None) -> list[tuple[Any, ...]]:
        """The sold tickets' rows by number, as plain tuples (the driver's, no row objects: a
        draw reads up to millions): ``(number, id, sale_id, amount_cents, leaf_hash)``."""
        if conn is None:
            with self.engine.connect() as own:
                return self._sold_rows(raffle_id, own)
        result = conn.execute(
            select(TICKET.c.number, TICKET.c.id, TICKET.c.sale_id, TICKET.c.amount_cents, TICKET.c.leaf_hash)
            .where(and_(TICKET.c.raffle_id == raffle_id, TICKET.c.status == "sold"))
            .order_by(TICKET.c.number)
        )
        rows = list(result.cursor.fetchall())
        result.close()
        return rows

    def eligible_tickets(self, raffle_id: str) -> tuple[list[DrawTicket], int]:
        """Sold tickets by number (voided and refunded never enter), and gross sales (their sum)."""
        tickets = _draw_tickets(self._sold_rows(raffle_id))
        return tickets, sum(t.amount_cents for t in tickets)

    def _stored_leaf_hashes(self, raffle_id: str, conn: Connection) -> tuple[list[bytes], int]:
        """The sold tickets' leaf hashes as stored when they were recorded (the freeze uses them), by
        number, and gross sales (the sum of their amounts).

        A ticket recorded before they were stored (NULL) gets its leaf hash computed from its row;
        a ticket without a leaf encoding is refused here as the proof would refuse it.
        """
        result = conn.execute(
            select(TICKET.c.amount_cents, TICKET.c.leaf_hash)
            .where(and_(TICKET.c.raffle_id == raffle_id, TICKET.c.status == "sold"))
            .order_by(TICKET.c.number)
        )
        pairs = result.cursor.fetchall()
        result.close()
        hashes: list[bytes | None] = list(map(itemgetter(1), pairs))
        gross = sum(map(itemgetter(0), pairs))
        if None in hashes:
            for i, r in enumerate(self._sold_rows(raffle_id, conn)):
                if hashes[i] is None:
                    hashes[i] = merkle.leaf_hash(proofs.ticket_leaf(_draw_ticket(r)))
        return cast(list[bytes], hashes), gross

    def _check_against_frozen(self, raffle_id: str, row: Any, tickets: TicketList, stored: list[bytes | None]) -> bytes:
        """Recompute every leaf from the ticket rows, as the proof and its verifier do, and refuse to
        draw when a stored leaf hash does not match its ticket or the set differs from the frozen one.

        Each leaf is encoded and hashed once here; the root returned goes into the proof
        (:func:`gli_core.draw.proof.build_draw_proof`), which therefore hashes no leaf again.

        Raises:
            TicketLeafMismatch: a stored leaf hash is not the hash of its ticket's leaf (``tickets``
                names the first few numbers): the core database was altered.
            TicketSetFrozen: the ticket set (or gross) is not the one committed at the freeze.
        """
        computed = proofs.ticket_leaf_hashes(tickets)
        if stored != computed:
            bad = [t.number for t, s, c in zip(tickets, stored, computed, strict=True) if s is not None and s != c]
            if bad:
                raise TicketLeafMismatch(
                    f"the stored leaf hash of {len(bad)} ticket(s) of {raffle_id} does not match the ticket "
                    f"(first: number {bad[0]}): the core database was altered; refusing to draw",
                    tickets=bad[:20],
                )
        root = merkle.root(computed)
        if root.hex() != row.ticket_root:
            raise TicketSetFrozen(f"the tickets of {raffle_id} changed after they were frozen; refusing to draw")
        return root

    def initiate(self, raffle_id: str) -> dict[str, Any]:
        """Check the reconciliation gate and freeze the ticket set (RECONCILED)."""
        state = self.state(raffle_id)
        if state in FROZEN:
            return self.status(raffle_id)
        if state is not DrawState.SALES_CLOSED:
            raise DrawNotReady(f"raffle {raffle_id} is {state}: close sales first")
        blocking = self.blocking_devices(raffle_id)
        if blocking:
            names = ", ".join(d["device_id"] for d in blocking)
            raise ReconciliationBlocked(
                f"{len(blocking)} device(s) hold numbers and have not synced since sales closed: {names}; sync them "
                "or void their unsynced remainder with a reason",
                devices=[d["device_id"] for d in blocking],
            )
        # One transaction holding the draw row (FOR UPDATE): ticket recording holds it FOR SHARE
        # (Registry.record), so no ticket can land between reading the set and freezing it.
        with _bulk(), self.engine.begin() as conn:
            conn.execute(select(DRAW.c.state).where(DRAW.c.raffle_id == raffle_id).with_for_update()).scalar_one()
            # The root from the leaf hashes stored at record time: only the interior nodes are hashed
            # here. Execute recomputes every leaf from the ticket rows before deriving any randomness.
            hashes, gross = self._stored_leaf_hashes(raffle_id, conn)
            root = merkle.root(hashes).hex()
            done = self._cas(
                raffle_id,
                state,
                DrawEvent.RECONCILE,
                quiet=True,
                conn=conn,
                ticket_root=root,
                ticket_count=len(hashes),
                gross_cents=gross,
            )
        if not done:
            raise InvalidTransition(f"the draw of {raffle_id} moved on concurrently; it is no longer {state}")
        self._checkpoint(f"draw:{raffle_id}:reconciled")
        return self.status(raffle_id)

    def execute(self, raffle_id: str) -> dict[str, Any]:
        """Derive the randomness in the HSM and select the winners (DRAWN); idempotent."""
        with _bulk():
            return self._execute(raffle_id)

    def _execute(self, raffle_id: str) -> dict[str, Any]:
        state = self.state(raffle_id)
        if state in (DrawState.DRAWN, DrawState.PUBLISHED):
            return self.results(raffle_id)
        if state is not DrawState.RECONCILED:
            raise DrawNotReady(f"raffle {raffle_id} is {state}: initiate the draw first")
        row = self._row(raffle_id)
        rows = self._sold_rows(raffle_id)
        tickets = TicketList(_draw_tickets(rows))
        gross = sum(map(_AMOUNT, rows))
        root = self._check_against_frozen(raffle_id, row, tickets, list(map(_LEAF_HASH, rows)))
        del rows
        if gross != row.gross_cents:
            raise TicketSetFrozen(f"the tickets of {raffle_id} changed after they were frozen; refusing to draw")
        proof = self._build_proof(row, tickets, gross, root=root, audit_checkpoint=self.audit_checkpoint(raffle_id))
        data = proof.to_bytes()
        digest, text = hashlib.sha256(data).hexdigest(), data.decode()  # the proof hashed once
        del data
        if self._cas(raffle_id, state, DrawEvent.EXECUTE, quiet=True, drawn=proof, drawn_sha256=digest, proof=text):
            self._checkpoint(f"draw:{raffle_id}:drawn")
            return _results(raffle_id, DrawState.DRAWN, _summary(proof), digest)
        return self.results(raffle_id)

    def _build_proof(
        self,
        row: Any,
        tickets: Sequence[DrawTicket],
        gross: int,
        *,
        redraws: Sequence[RedrawRequest] = (),
        audit_checkpoint: Mapping[str, Any] | None,
        root: bytes | None = None,
    ) -> proofs.DrawProof:
        """The draw's proof from its row's committed inputs, with the raffle's committed VRF key."""
        key = self.vrf_key(row.vrf_key_id)
        return proofs.build_draw_proof(
            raffle_id=row.raffle_id,
            public_key=key.public,
            nonce=bytes.fromhex(row.nonce),
            tickets=tickets,
            prize_table=json.loads(row.prize_table),
            gross_sales_cents=gross,
            rsasp1=key.raw_rsa,
            redraws=redraws,
            audit_checkpoint=audit_checkpoint,
            root=root,
        )

    def redraw(self, raffle_id: str, tier: str, ticket_number: int, reason: str) -> dict[str, Any]:
        """A declined prize, or one unclaimed by its deadline, is drawn again from the same stream,
        with its reason: before or after ``publish`` (a prize's claim deadline runs after the
        results are public). The redraw is appended to the proof (re-issued: the same draw, the
        same winners before it) and logged (``draw.redrawn``, with the new ``proof_sha256``) in one
        transaction; the state does not change.

        The ticket set is the proof's own (the one frozen and drawn), whatever happened to the
        ticket rows since: the redraw continues that draw's stream and never changes the others.

        Raises:
            DrawNotReady: the draw is neither DRAWN nor PUBLISHED, or the reason is empty.
            TicketSetFrozen: the proof's tickets are not the frozen set (the stored proof was altered).
            InvalidTransition: another redraw or transition changed the draw meanwhile (nothing written).
        """
        state = self.state(raffle_id)
        if state not in (DrawState.DRAWN, DrawState.PUBLISHED):
            raise DrawNotReady(f"prizes can be redrawn once the draw is DRAWN or PUBLISHED, not {state}")
        if not reason.strip():
            raise DrawNotReady("a redraw needs a reason")
        row = self._row(raffle_id)
        old = proofs.load_proof(orjson.loads(row.proof))
        assert old.tickets is not None  # the core always embeds the ticket list
        tickets = TicketList(old.tickets)
        root = merkle.root(proofs.ticket_leaf_hashes(tickets))
        if root.hex() != row.ticket_root:
            raise TicketSetFrozen(f"the stored proof of {raffle_id} does not hold the frozen ticket set")
        requests = [r.request() for r in old.redraws] + [RedrawRequest(tier, ticket_number, reason)]
        checkpoint = None if old.audit_checkpoint is None else old.audit_checkpoint.to_dict()
        proof = self._build_proof(
            row, tickets, old.gross_sales_cents, redraws=requests, audit_checkpoint=checkpoint, root=root
        )
        data = proof.to_bytes()
        digest, text = hashlib.sha256(data).hexdigest(), data.decode()
        del data
        with self.engine.begin() as conn:
            done = conn.execute(
                update(DRAW)
                .where(and_(DRAW.c.raffle_id == raffle_id, DRAW.c.state == state.value, DRAW.c.proof == row.proof))
                .values(proof=text, updated_at_ms=self.clock())
            ).rowcount
            if done:
                latest = proof.redraws[-1]
                self._log(
                    conn,
                    raffle_id,
                    "draw.redrawn",
                    {
                        "raffle_id": raffle_id,
                        "state": state.value,
                        "index": len(proof.redraws) - 1,
                        "tier": latest.tier,
                        "replaced_ticket_number": latest.replaced_ticket_number,
                        "ticket_number": latest.ticket_number,
                        "reason": latest.reason,
                        "proof_sha256": digest,
                    },
                )
        if not done:
            raise InvalidTransition(f"the draw of {raffle_id} changed meanwhile; nothing was redrawn, try again")
        self._checkpoint(f"draw:{raffle_id}:redrawn")
        return _results(raffle_id, state, _summary(proof), digest)

    def publish(self, raffle_id: str) -> dict[str, Any]:
        state = self.state(raffle_id)
        if state is not DrawState.PUBLISHED:
            self._cas(raffle_id, state, DrawEvent.PUBLISH)
        return self.results(raffle_id)

    def cancel(self, raffle_id: str, reason: str) -> dict[str, Any]:
        state = self.state(raffle_id)
        self._cas(raffle_id, state, DrawEvent.CANCEL, reason=reason)
        with self.engine.begin() as conn:
            conn.execute(update(RAFFLE).where(RAFFLE.c.id == raffle_id).values(status="cancelled"))
        return self.status(raffle_id)

    def results(self, raffle_id: str) -> dict[str, Any]:
        row = self._row(raffle_id)
        if row.state not in (DrawState.DRAWN.value, DrawState.PUBLISHED.value):
            raise DrawNotReady(f"raffle {raffle_id} has not been drawn (it is {row.state})")
        return _results(raffle_id, DrawState(row.state), orjson.loads(row.proof), _sha256(row.proof))

    def proof(self, raffle_id: str) -> dict[str, Any]:
        """The proof document (parsed); :meth:`proof_bytes` is the file to publish."""
        result: dict[str, Any] = orjson.loads(self.proof_bytes(raffle_id))
        return result

    def proof_bytes(self, raffle_id: str) -> bytes:
        """The proof exactly as stored and published: its RFC 8785 bytes, whose SHA-256 is the
        ``proof_sha256`` of :meth:`results` (``docs/draw-proof.md`` section 11)."""
        row = self._row(raffle_id)
        if not row.proof:
            raise DrawNotReady(f"raffle {raffle_id} has no proof yet (it is {row.state})")
        return str(row.proof).encode()

    def ticket_tree(self, raffle_id: str) -> TicketTree | None:
        """The frozen ticket set as a tree for inclusion proofs (``docs/draw-proof.md`` 4.1), or None
        before the freeze. The drawn proof's own ticket list once there is one, else the sold tickets
        (checked against the frozen root); kept per (raffle, root), so a path costs O(log n)."""
        row = self._row(raffle_id)
        if DrawState(row.state) not in FROZEN or not row.ticket_root:
            return None
        key = (raffle_id, str(row.ticket_root))
        tree = self._trees.get(key)
        if tree is None:
            listed = proofs.load_proof(orjson.loads(row.proof)).tickets if row.proof else None
            tree = TicketTree(listed if listed is not None else self.eligible_tickets(raffle_id)[0])
            if tree.root.hex() != row.ticket_root:
                raise TicketSetFrozen(f"the tickets of {raffle_id} changed after they were frozen")
            while len(self._trees) >= _TREES_KEPT:
                self._trees.pop(next(iter(self._trees)))
            self._trees[key] = tree
        return tree

    def void_remainder(self, device_id: str, raffle_id: str, reason: str) -> int:
        """An admin voids a lost device's unsynced remainder: its grants leave the gate and any
        later sale from them is refused. Returns the number of grants voided."""
        if not reason.strip():
            raise DrawNotReady("voiding a device's remainder needs a reason")
        if self.state(raffle_id) in FROZEN:
            raise TicketSetFrozen(f"the ticket set of {raffle_id} is frozen")
        with self.engine.begin() as conn:
            count = conn.execute(
                update(GRANT)
                .where(and_(GRANT.c.raffle_id == raffle_id, GRANT.c.device_id == device_id, GRANT.c.status == "active"))
                .values(status="voided", reason=reason)
            ).rowcount
            self._log(
                conn,
                raffle_id,
                "draw.remainder_voided",
                {"raffle_id": raffle_id, "device_id": device_id, "grants_voided": int(count), "reason": reason},
            )
        return int(count)

    def frozen_raffles(self, raffle_ids: Sequence[str]) -> set[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(DRAW.c.raffle_id).where(
                    and_(DRAW.c.raffle_id.in_(list(raffle_ids)), DRAW.c.state.in_([s.value for s in FROZEN]))
                )
            ).all()
        return {r.raffle_id for r in rows}


def _draw_ticket(row: Sequence[Any]) -> DrawTicket:
    """A ``core_ticket`` row as the draw sees it: number, id, sale id and amount (the leaf's fields)."""
    return DrawTicket(row[0], row[1], row[2], row[3])


_AMOUNT = itemgetter(3)
_LEAF_HASH = itemgetter(4)
_NEW_TICKET = partial(tuple.__new__, DrawTicket)


def _draw_tickets(rows: Sequence[tuple[Any, ...]]) -> list[DrawTicket]:
    """``(number, id, sale_id, amount_cents, ...)`` rows as tickets (built in C: a draw has millions)."""
    return list(map(_NEW_TICKET, map(itemgetter(slice(0, 4)), rows)))


@contextmanager
def _bulk() -> Iterator[None]:
    """No cyclic garbage collection while a draw builds millions of rows, tickets and proof rows.

    None of them is part of a reference cycle, but each full collection walks all of them: at a
    million tickets the collector took 4.7 of 12 s of ``execute``. Reference counting still frees
    everything; the collector runs again (and catches up) when the block ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _summary(proof: proofs.DrawProof) -> dict[str, Any]:
    """The members of a proof that ``results`` shows (the ticket list left out)."""
    return {
        "winners": [w.to_dict() for w in proof.winners],
        "redraws": [r.to_dict() for r in proof.redraws],
        "tickets": {"count": proof.ticket_count},
    }


def _sha256(text: str) -> str:
    """``proof_sha256`` of a proof's stored text: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode()).hexdigest()


def _results(raffle_id: str, state: DrawState, proof: Mapping[str, Any], proof_sha256: str) -> dict[str, Any]:
    """What ``results`` answers for a drawn raffle, from its proof and the SHA-256 of its bytes."""
    return {
        "raffle_id": raffle_id,
        "state": state.value,
        "winners": proof["winners"],
        "redraws": proof.get("redraws", []),
        "holders": holders(proof),
        "ticket_count": proof["tickets"]["count"],
        "proof_sha256": proof_sha256,
    }


def holders(proof: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Who holds each prize after the redraws: ``winners`` with each redrawn prize's holder
    replaced, in order, by its redraw's ticket (``docs/draw-proof.md`` section 9)."""
    current = [dict(w) for w in proof["winners"]]
    for r in proof.get("redraws", []):
        for w in current:
            if w["tier"] == r["tier"] and w["ticket_number"] == r["replaced_ticket_number"]:
                w.update(position=r["position"], ticket_number=r["ticket_number"], ticket_id=r["ticket_id"])
                break
    return current


def _winners_payload(raffle_id: str, proof_sha256: str, proof: proofs.DrawProof) -> dict[str, Any]:
    """What the log keeps of an executed draw: enough to match the published proof."""
    checkpoint = proof.audit_checkpoint
    return {
        "raffle_id": raffle_id,
        "proof_sha256": proof_sha256,
        "beta": proof.beta.hex(),
        "ticket_root": proof.ticket_root.hex(),
        "ticket_count": proof.ticket_count,
        "winners": [{"tier": w.tier, "position": w.position, "ticket_number": w.ticket_number} for w in proof.winners],
        "audit_checkpoint_size": None if checkpoint is None else checkpoint.tree_size,
    }
