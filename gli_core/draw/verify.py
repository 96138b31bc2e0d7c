"""Verify a draw proof with nothing but the proof (and its ticket file, if it names one).

No server, database or HSM: :func:`verify_proof` recomputes every derived value of the proof
from its inputs and stops at the first difference with :class:`ProofInvalid`, whose ``field``
names the member that is wrong. The checks, in order (``docs/draw-proof.md`` section
"Verification"):

1. shape: members, types, lengths, schema and algorithm versions (:func:`load_proof`);
2. ``vrf.fingerprint`` and ``vrf.key_id`` derive from ``vrf.n`` and ``vrf.e`` (and equal the
   published fingerprint when the caller gives it);
3. ``nonce_commitment`` is SHA-256 of ``nonce`` (and equals the published commitment when given);
4. the ticket file (if any) has the SHA-256 ``tickets.file_sha256``; the tickets are sorted by
   unique number and well-formed; ``tickets.count`` is their number and ``tickets.root`` their
   RFC 9162 root (the leaves carry the amounts); ``gross_sales_cents`` is the sum of their
   ``amount_cents``;
5. ``audit_checkpoint`` (if present) shows the commitment and key in the audit log;
6. ``alpha`` is the encoding of the committed inputs;
7. ``pi`` verifies for ``alpha`` under ``(n, e)`` (RFC 9381) and ``beta`` is its hash;
8. the selection re-run from ``beta`` gives exactly ``winners``; each redraw is authorised by its
   ``pi`` and gives exactly its ticket, position and amount.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gli_core.draw import vrf
from gli_core.draw.proof import (
    ClaimedWinner,
    DrawProof,
    ProofInvalid,
    alpha_bytes,
    check_audit_checkpoint,
    load_proof,
    nonce_commitment,
    parse_tickets_file,
    redraw_alpha_bytes,
    ticket_root,
)
from gli_core.draw.selection import (
    DrawInputInvalid,
    DrawTicket,
    NotEnoughTickets,
    Redraw,
    Selection,
    TicketList,
    Winner,
    select,
)
from sync_protocol.errors import Malformed
from sync_protocol.strict_json import loads_strict

__all__ = ["ProofInvalid", "VerifiedDraw", "verify_proof"]


@dataclass(frozen=True)
class VerifiedDraw:
    """What a valid proof establishes.

    Attributes:
        raffle_id: the raffle drawn.
        key_fingerprint: SHA-256 (hex) of the VRF public key; compare with the one published
            when sales opened.
        nonce_commitment: hex; compare with the commitment published when sales opened.
        ticket_count: eligible tickets in the draw.
        ticket_root: hex RFC 9162 root of the ticket set.
        gross_sales_cents: gross sales, the sum of the tickets' amounts (the base of the
            ``percent_of_sales`` prizes).
        beta: hex VRF output the winners derive from.
        selection: the re-derived winners, redraws and current prize holders.
        audit_checkpoint_size: size of the signed audit checkpoint the draw binds (None: none).
        audit_key: the verifier key (C2SP vkey) that signed it; compare with the log's published key.
        proof_sha256: hex SHA-256 of the proof's RFC 8785 bytes (``docs/draw-proof.md`` section 11):
            the ``proof_sha256`` the core reports and logs, and ``sha256sum`` of the exported file.
        published_checked: both the key fingerprint and the nonce commitment were compared with
            published values given by the caller.
    """

    raffle_id: str
    key_fingerprint: str
    nonce_commitment: str
    ticket_count: int
    ticket_root: str
    gross_sales_cents: int
    beta: str
    selection: Selection
    audit_checkpoint_size: int | None = None
    audit_key: str | None = None
    proof_sha256: str = ""
    published_checked: bool = False

    @property
    def winners(self) -> tuple[Winner, ...]:
        return self.selection.winners

    @property
    def redraws(self) -> tuple[Redraw, ...]:
        return self.selection.redraws

    @property
    def holders(self) -> tuple[Winner, ...]:
        """Who holds each prize after the redraws."""
        return self.selection.holders


def _tickets(proof: DrawProof, tickets_file: Path | bytes | None) -> Sequence[DrawTicket]:
    if proof.tickets is not None:
        if tickets_file is not None:
            raise ProofInvalid("the proof embeds its tickets; it takes no ticket file", field="tickets.list")
        return proof.tickets
    assert proof.tickets_file_sha256 is not None
    if tickets_file is None:
        raise ProofInvalid(
            f"the proof names its ticket file tickets-{proof.tickets_file_sha256.hex()}.json; give it to check",
            field="tickets.file_sha256",
        )
    data = tickets_file.read_bytes() if isinstance(tickets_file, Path) else tickets_file
    digest = hashlib.sha256(data).digest()
    if digest != proof.tickets_file_sha256:
        raise ProofInvalid(
            f"the ticket file has SHA-256 {digest.hex()}, not the one the proof names", field="tickets.file_sha256"
        )
    return parse_tickets_file(data)


def _ticket_root(tickets: Sequence[DrawTicket], where: str) -> tuple[TicketList, bytes]:
    try:
        checked = TicketList(tickets)
        root = ticket_root(checked)
    except DrawInputInvalid as exc:
        index = exc.extra.get("index")
        raise ProofInvalid(exc.detail, field=where if index is None else f"{where}[{index}]") from None
    return checked, root


def _compare(claimed: object, actual: object, field: str, what: str) -> None:
    if claimed != actual:
        raise ProofInvalid(f"the proof says {claimed!r}; re-deriving {what} gives {actual!r}", field=field)


def _check_winners(claimed: Sequence[ClaimedWinner], actual: Sequence[Winner]) -> None:
    if len(claimed) != len(actual):
        raise ProofInvalid(
            f"the proof lists {len(claimed)} winners; the prize table gives {len(actual)}", field="winners"
        )
    for i, (c, w) in enumerate(zip(claimed, actual, strict=True)):
        where = f"winners[{i}]"
        _compare(c.tier, w.tier, f"{where}.tier", "the tier of this draw")
        _compare(c.position, w.position, f"{where}.position", "the draw position")
        _compare(c.ticket_number, w.ticket.number, f"{where}.ticket_number", "the winning ticket")
        _compare(c.ticket_id, w.ticket.ticket_id, f"{where}.ticket_id", "the winning ticket's id")
        _compare(c.amount_cents, w.amount_cents, f"{where}.amount_cents", "the prize amount")


def _check_redraws(proof: DrawProof, beta: bytes, actual: Sequence[Redraw]) -> None:
    key = proof.public_key
    for i, (c, r) in enumerate(zip(proof.redraws, actual, strict=True)):
        where = f"redraws[{i}]"
        redraw_alpha = redraw_alpha_bytes(
            raffle_id=proof.raffle_id,
            beta=beta,
            index=i,
            tier=c.tier,
            replaced_ticket_number=c.replaced_ticket_number,
            reason=c.reason,
        )
        try:
            vrf.verify(redraw_alpha, c.pi, n=key.n, e=key.e)
        except vrf.VrfInvalid as exc:
            raise ProofInvalid(
                f"the draw key did not authorise this redraw (tier, replaced_ticket_number, reason): {exc.detail}",
                field=f"{where}.pi",
            ) from None
        _compare(c.position, r.position, f"{where}.position", "the redraw's draw position")
        _compare(c.ticket_number, r.ticket.number, f"{where}.ticket_number", "the redraw's ticket")
        _compare(c.ticket_id, r.ticket.ticket_id, f"{where}.ticket_id", "the redraw's ticket id")
        _compare(c.amount_cents, r.amount_cents, f"{where}.amount_cents", "the prize amount")


def _select(proof: DrawProof, beta: bytes, tickets: Sequence[DrawTicket]) -> Selection:
    requests = []
    for i, c in enumerate(proof.redraws):
        try:
            requests.append(c.request())
        except DrawInputInvalid as exc:
            raise ProofInvalid(exc.detail, field=f"redraws[{i}].reason") from None
    try:
        return select(beta, tickets, proof.prize_table, gross_sales_cents=proof.gross_sales_cents, redraws=requests)
    except NotEnoughTickets as exc:
        raise ProofInvalid(exc.detail, field="prize_table") from None
    except DrawInputInvalid as exc:
        where = str(exc.extra.get("field", "winners"))
        if where.startswith("redraws["):
            # The replaced ticket holds no prize of the tier at that point.
            raise ProofInvalid(exc.detail, field=f"{where}.replaced_ticket_number") from None
        raise ProofInvalid(exc.detail, field=where) from None


def _parse(data: bytes) -> Any:
    try:
        return loads_strict(data, "the proof")
    except Malformed as exc:
        raise ProofInvalid(exc.detail, field=str(exc.extra.get("field", ""))) from None


def verify_proof(
    proof: Mapping[str, Any] | bytes,
    tickets_file: Path | bytes | None = None,
    *,
    published_key_fingerprint: str | None = None,
    published_nonce_commitment: str | None = None,
    audit_keys: Sequence[str] | None = None,
) -> VerifiedDraw:
    """Check a draw proof and return the draw it proves.

    Args:
        proof: the proof: its bytes, parsed as I-JSON (two members of one name are refused,
            ``draw-proof.md``), or its parsed JSON.
        tickets_file: the ticket file (path or bytes) when the proof names one instead of
            embedding its tickets.
        published_key_fingerprint: the VRF key fingerprint published when sales opened (hex),
            to compare with the proof's.
        published_nonce_commitment: the nonce commitment published when sales opened (hex).
        audit_keys: the audit log's published verifier keys (C2SP vkeys); when given, the proof
            must carry an audit checkpoint signed by one of them.

    Raises:
        ProofInvalid: the first check that fails; ``field`` names the member that is wrong.
    """
    p = load_proof(proof if isinstance(proof, Mapping) else _parse(proof))
    key = p.public_key

    _compare(p.fingerprint, key.fingerprint, "vrf.fingerprint", "SHA-256 of the key (DER SubjectPublicKeyInfo)")
    _compare(p.key_id, key.key_id, "vrf.key_id", "the key id from the fingerprint")
    if published_key_fingerprint is not None and published_key_fingerprint.strip().lower() != key.fingerprint:
        raise ProofInvalid(
            f"the key's fingerprint {key.fingerprint} is not the one published at raffle creation "
            f"({published_key_fingerprint}): the draw was not made with the raffle's key",
            field="vrf.fingerprint",
        )

    commitment = nonce_commitment(p.nonce)
    _compare(p.nonce_commitment.hex(), commitment.hex(), "nonce_commitment", "SHA-256 of the nonce")
    if published_nonce_commitment is not None and published_nonce_commitment.strip().lower() != commitment.hex():
        raise ProofInvalid(
            f"the nonce commitment {commitment.hex()} is not the one published at raffle creation "
            f"({published_nonce_commitment}): the nonce was not the one committed before sales",
            field="nonce_commitment",
        )

    tickets = _tickets(p, tickets_file)
    where = "tickets.list" if p.tickets is not None else "tickets.file"
    _compare(p.ticket_count, len(tickets), "tickets.count", "the number of tickets listed")
    tickets, root = _ticket_root(tickets, where)
    _compare(p.ticket_root.hex(), root.hex(), "tickets.root", "the RFC 9162 root of the tickets")
    gross = sum(t.amount_cents for t in tickets)
    _compare(p.gross_sales_cents, gross, "gross_sales_cents", "the sum of the tickets' amount_cents")

    if audit_keys is not None:
        if p.audit_checkpoint is None:
            raise ProofInvalid(
                "the proof carries no audit checkpoint to check against the log's keys", field="audit_checkpoint"
            )
        if not _same_key(p.audit_checkpoint.key, audit_keys):
            raise ProofInvalid(
                "the checkpoint is signed by a key that is not one of the log's published keys",
                field="audit_checkpoint.key",
            )
    if p.audit_checkpoint is not None:
        check_audit_checkpoint(
            p.audit_checkpoint, raffle_id=p.raffle_id, nonce_commitment=commitment, fingerprint=key.fingerprint
        )
    alpha = alpha_bytes(
        raffle_id=p.raffle_id,
        ticket_root=root,
        ticket_count=len(tickets),
        nonce=p.nonce,
        prize_table=p.prize_table,
        gross_sales_cents=p.gross_sales_cents,
        audit_checkpoint=p.audit_checkpoint,
        algorithm=p.algorithm,
    )
    if p.alpha != alpha:
        raise ProofInvalid(
            "is not the encoding of raffle_id, tickets.root, tickets.count, nonce, prize_table, "
            "gross_sales_cents, audit_checkpoint and algorithm: one of them was changed",
            field="alpha",
        )
    try:
        beta = vrf.verify(alpha, p.pi, n=key.n, e=key.e)
    except vrf.VrfInvalid as exc:
        raise ProofInvalid(f"the VRF proof does not verify: {exc.detail}", field="pi") from None
    _compare(p.beta.hex(), beta.hex(), "beta", "the VRF output of pi")

    selection = _select(p, beta, tickets)
    _check_winners(p.winners, selection.winners)
    _check_redraws(p, beta, selection.redraws)
    verified = dataclasses.replace(p, tickets=tickets) if p.tickets is not None else p
    return VerifiedDraw(
        proof_sha256=verified.sha256(),
        published_checked=published_key_fingerprint is not None and published_nonce_commitment is not None,
        audit_checkpoint_size=None if p.audit_checkpoint is None else p.audit_checkpoint.tree_size,
        audit_key=None if p.audit_checkpoint is None else p.audit_checkpoint.key,
        raffle_id=p.raffle_id,
        key_fingerprint=key.fingerprint,
        nonce_commitment=commitment.hex(),
        ticket_count=len(tickets),
        ticket_root=root.hex(),
        gross_sales_cents=gross,
        beta=beta.hex(),
        selection=selection,
    )


def _same_key(key: str, published: Sequence[str]) -> bool:
    """Whether ``key`` is one of ``published`` (compared parsed, so spelling cannot differ)."""
    from gli_core.audit.note import NoteInvalid, NoteVerifier

    try:
        wanted = NoteVerifier.parse(key).vkey
        return any(NoteVerifier.parse(k).vkey == wanted for k in published)
    except NoteInvalid:
        return False
