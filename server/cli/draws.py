"""``tombola draw`` and ``tombola verify-draw``: run a draw through the core; check a proof offline."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from server.cli._common import _emit, json_option, with_app
from server.context import Tombola
from server.enrollment import service as enrollment
from server.raffles import service as raffles
from sync_protocol.errors import TombolaError


@click.group()
def draw() -> None:
    """The draw: initiate (gate + freeze), execute (HSM VRF), results, proof, publish, cancel."""


def _draw_command(name: str, doc: str, call: Callable[[Tombola, str], dict[str, Any]]) -> None:
    @draw.command(name, help=doc)
    @click.argument("raffle_id")
    @json_option
    @with_app
    def handler(app: Tombola, raffle_id: str, as_json: bool) -> None:
        out = call(app, raffle_id)
        _emit(out, as_json, lambda: json.dumps(out, indent=2))


_draw_command(
    "initiate", "Check the reconciliation gate and freeze the ticket set.", lambda a, r: a.core.draw_initiate(r)
)
_draw_command("execute", "Draw the winners with the HSM's VRF (idempotent).", lambda a, r: raffles.execute_draw(a, r))
_draw_command("status", "The draw's state, commitments and blocking devices.", lambda a, r: a.core.draw_status(r))
_draw_command("results", "The winners.", lambda a, r: a.core.draw_results(r))
_draw_command("publish", "Make the results public.", lambda a, r: a.core.draw_publish(r))


@draw.command("cancel")
@click.argument("raffle_id")
@click.option("--reason", required=True)
@json_option
@with_app
def draw_cancel(app: Tombola, raffle_id: str, reason: str, as_json: bool) -> None:
    """Cancel the raffle before its draw, for devices and the core alike (tickets stay on record
    for refunds; a second cancel changes nothing)."""
    out = raffles.cancel_raffle(app, raffle_id, reason)
    _emit(out, as_json, f"raffle {raffle_id} cancelled: {out['draw'].get('reason') or reason}")


@draw.command("proof")
@click.argument("raffle_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_app
def draw_proof(app: Tombola, raffle_id: str, output: Path) -> None:
    """Write the draw proof (one JSON file anyone can check with `tombola verify-draw`).

    The file holds the proof's RFC 8785 bytes exactly as the core stores them: `sha256sum` of the
    file is the `proof_sha256` of `tombola draw results` and of the audit log."""
    data = app.core.draw_proof_bytes(raffle_id)
    output.write_bytes(data)
    click.echo(f"proof written to {output} (proof_sha256 {hashlib.sha256(data).hexdigest()})")


@draw.command("redraw")
@click.argument("raffle_id")
@click.option("--tier", required=True)
@click.option("--ticket", "ticket_number", required=True, type=int, help="Number of the ticket whose prize is redrawn.")
@click.option("--reason", required=True, help="declined, unclaimed by the deadline, ...")
@json_option
@with_app
def draw_redraw(app: Tombola, raffle_id: str, tier: str, ticket_number: int, reason: str, as_json: bool) -> None:
    """Redraw a declined or unclaimed prize from the same stream."""
    out = app.core.draw_redraw(raffle_id, tier, ticket_number, reason)
    _emit(out, as_json, lambda: json.dumps(out, indent=2))


@draw.command("void-remainder")
@click.argument("device_id")
@click.option("--raffle", "raffle_id", required=True)
@click.option("--reason", required=True)
@json_option
@with_app
def draw_void_remainder(app: Tombola, device_id: str, raffle_id: str, reason: str, as_json: bool) -> None:
    """Void a lost device's unsynced remainder so the draw can go ahead."""
    out = enrollment.void_remainder(app, device_id, raffle_id, reason)
    _emit(out, as_json, f"{out['grants_voided']} grant(s) of {device_id} voided for {raffle_id}: {reason}")


@click.command("verify-draw")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tickets", "tickets_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option(
    "--ticket",
    "ticket_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A ticket's inclusion proof (the answer of GET /tickets/check, or its 'inclusion' member): also check "
    "that this ticket is in the draw's ticket set (docs/draw-proof.md 4.1).",
)
@click.option(
    "--nonce-commitment",
    default=None,
    help="The nonce commitment published at raffle creation (tombola raffle create prints it); the proof's "
    "must equal it.",
)
@click.option(
    "--vrf-fingerprint",
    default=None,
    help="The VRF key fingerprint published at raffle creation (tombola raffle create prints it); the proof's key "
    "must have it.",
)
@click.option(
    "--audit-key",
    "audit_keys",
    multiple=True,
    help="The audit log's published verifier key (tombola audit keys); the proof's checkpoint must be signed by it.",
)
@json_option
def verify_draw(
    proof_file: Path,
    tickets_file: Path | None,
    ticket_file: Path | None,
    nonce_commitment: str | None,
    vrf_fingerprint: str | None,
    audit_keys: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check a draw proof with no access to the server or its databases (exit 1 when it does not verify).

    Shows the winners, the redraws and who holds each prize now, and the proof's proof_sha256.
    """
    from gli_core.api import verify_proof

    document = proof_file.read_bytes()  # parsed as I-JSON by verify_proof (a duplicate member is invalid)
    try:
        result = verify_proof(
            document,
            tickets_file,
            published_key_fingerprint=vrf_fingerprint,
            published_nonce_commitment=nonce_commitment,
            audit_keys=list(audit_keys) or None,
        )
        inclusion = _check_ticket(ticket_file, result) if ticket_file is not None else None
    except TombolaError as exc:
        if as_json:  # the failure as JSON on stdout too; main() prints `code: detail` and exits 1
            field = exc.extra.get("field")
            click.echo(json.dumps({"valid": False, "error": exc.code, "field": field, "detail": exc.detail}))
        raise

    def prize(w: Any) -> dict[str, Any]:
        return {
            "tier": w.tier,
            "position": w.position,
            "ticket_number": w.ticket.number,
            "ticket_id": w.ticket.ticket_id,
            "amount_cents": w.amount_cents,
        }

    out = {
        "valid": True,
        "raffle_id": result.raffle_id,
        "proof_sha256": result.proof_sha256,
        "ticket_count": result.ticket_count,
        "ticket_root": result.ticket_root,
        "gross_sales_cents": result.gross_sales_cents,
        "nonce_commitment": result.nonce_commitment,
        "key_fingerprint": result.key_fingerprint,
        "published_values_checked": result.published_checked,
        "audit_checkpoint_size": result.audit_checkpoint_size,
        "audit_key": result.audit_key,
        "audit_key_pinned": bool(audit_keys),
        "winners": [prize(w) for w in result.winners],
        "redraws": [
            prize(r) | {"replaced_ticket_number": r.replaced.number, "reason": r.reason} for r in result.redraws
        ],
        "holders": [prize(h) for h in result.holders],
    }
    if inclusion is not None:
        number = inclusion.ticket.number
        out["ticket"] = {
            "number": number,
            "ticket_id": inclusion.ticket.ticket_id,
            "amount_cents": inclusion.ticket.amount_cents,
            "leaf_index": inclusion.leaf_index,
            "in_ticket_set": True,
            "prizes": [prize(h) for h in result.holders if h.ticket.number == number],
        }

    def text() -> str:
        lines = _verified_text(result, nonce_commitment, vrf_fingerprint, audit_keys)
        if inclusion is None:
            return lines
        won = ", ".join(f"{h.tier}" for h in result.holders if h.ticket.number == inclusion.ticket.number)
        return (
            f"{lines}\n  ticket #{inclusion.ticket.number} is in the ticket set (leaf {inclusion.leaf_index} of "
            f"{inclusion.tree_size})" + (f" and holds: {won}" if won else "")
        )

    _emit(out, as_json, text)


def _check_ticket(ticket_file: Path, result: Any) -> Any:
    """The ticket's inclusion in the verified draw's ticket set (``TicketInclusionInvalid`` otherwise).

    The file is the answer of ``GET /tickets/check`` (its ``inclusion`` member) or the inclusion
    document itself."""
    from gli_core.api import TicketInclusionInvalid, verify_ticket_inclusion
    from sync_protocol.strict_json import loads_strict

    doc = loads_strict(ticket_file.read_bytes())
    if isinstance(doc, dict) and "inclusion" in doc:
        if doc["inclusion"] is None:
            raise TicketInclusionInvalid(
                "the ticket check answered no inclusion proof (the ticket is not in a frozen ticket set)",
                field="inclusion",
            )
        doc = doc["inclusion"]
    return verify_ticket_inclusion(
        doc, raffle_id=result.raffle_id, ticket_root=result.ticket_root, ticket_count=result.ticket_count
    )


def _verified_text(result: Any, nonce_commitment: str | None, vrf_fingerprint: str | None, audit_keys: Any) -> str:
    lines = [
        f"VALID draw of {result.raffle_id}: {result.ticket_count} tickets, root {result.ticket_root[:16]}..., "
        f"gross sales {result.gross_sales_cents} cents",
        f"  proof_sha256 {result.proof_sha256}",
        "  winners: " + ", ".join(f"{w.tier} #{w.ticket.number}" for w in result.winners),
    ]
    for r in result.redraws:
        lines.append(f"  redraw: {r.tier} #{r.replaced.number} -> #{r.ticket.number} ({r.reason})")
    lines.append("  holders: " + ", ".join(f"{h.tier} #{h.ticket.number}" for h in result.holders))
    missing = [
        o for o, v in (("--nonce-commitment", nonce_commitment), ("--vrf-fingerprint", vrf_fingerprint)) if not v
    ]
    if missing:
        lines.append(
            f"  nonce commitment {result.nonce_commitment} and key fingerprint {result.key_fingerprint} were not "
            f"compared with the values published at raffle creation: pass {' and '.join(missing)}"
        )
    else:
        lines.append("  nonce commitment and key fingerprint are the ones published at raffle creation")
    if result.audit_key is not None:
        lines.append(
            f"  bound to audit checkpoint of size {result.audit_checkpoint_size} signed by {result.audit_key}"
            + ("" if audit_keys else " (pass --audit-key to require the log's published key)")
        )
    return "\n".join(lines)
