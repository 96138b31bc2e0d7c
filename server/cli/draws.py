"""``tombola draw`` and ``tombola verify-draw``: run a draw through the core; check a proof offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy import update

from server.cli._common import _emit, json_option, with_app
from server.context import Tombola
from server.errors import InvalidRequest
from server.raffles import service as raffles


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
_draw_command("execute", "Draw the winners with the HSM's VRF (idempotent).", lambda a, r: a.core.draw_execute(r))
_draw_command("status", "The draw's state, commitments and blocking devices.", lambda a, r: a.core.draw_status(r))
_draw_command("results", "The winners.", lambda a, r: a.core.draw_results(r))
_draw_command("publish", "Make the results public.", lambda a, r: a.core.draw_publish(r))


@draw.command("cancel")
@click.argument("raffle_id")
@click.option("--reason", required=True)
@json_option
@with_app
def draw_cancel(app: Tombola, raffle_id: str, reason: str, as_json: bool) -> None:
    """Cancel the raffle before its draw (tickets stay on record for refunds)."""
    out = app.core.draw_cancel(raffle_id, reason)
    with app.engine.begin() as conn:
        conn.execute(update(raffles.RAFFLE).where(raffles.RAFFLE.c.id == raffle_id).values(status="cancelled"))
    _emit(out, as_json, f"raffle {raffle_id} cancelled: {reason}")


@draw.command("proof")
@click.argument("raffle_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_app
def draw_proof(app: Tombola, raffle_id: str, output: Path) -> None:
    """Write the draw proof (one JSON file anyone can check with `tombola verify-draw`)."""
    output.write_text(json.dumps(app.core.draw_proof(raffle_id), indent=2, sort_keys=True) + "\n")
    click.echo(f"proof written to {output}")


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
    n = app.core.void_remainder(device_id, raffle_id, reason)
    _emit(
        {"device_id": device_id, "raffle_id": raffle_id, "grants_voided": n},
        as_json,
        f"{n} grant(s) of {device_id} voided for {raffle_id}: {reason}",
    )


@click.command("verify-draw")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tickets", "tickets_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option(
    "--audit-key",
    "audit_keys",
    multiple=True,
    help="The audit log's published verifier key (tombola audit keys); the proof's checkpoint must be signed by it.",
)
@json_option
def verify_draw(proof_file: Path, tickets_file: Path | None, audit_keys: tuple[str, ...], as_json: bool) -> None:
    """Check a draw proof with no access to the server or its databases."""
    from gli_core.api import verify_proof

    try:
        document = json.loads(proof_file.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{proof_file} is not JSON: {exc}") from exc
    result = verify_proof(document, tickets_file, audit_keys=list(audit_keys) or None)
    out = {
        "valid": True,
        "raffle_id": result.raffle_id,
        "ticket_count": result.ticket_count,
        "ticket_root": result.ticket_root,
        "gross_sales_cents": result.gross_sales_cents,
        "nonce_commitment": result.nonce_commitment,
        "key_fingerprint": result.key_fingerprint,
        "audit_checkpoint_size": result.audit_checkpoint_size,
        "audit_key": result.audit_key,
        "audit_key_pinned": bool(audit_keys),
        "winners": [
            {"tier": w.tier, "position": w.position, "ticket_number": w.ticket.number, "amount_cents": w.amount_cents}
            for w in result.winners
        ],
    }
    _emit(
        out,
        as_json,
        lambda: (
            (
                f"VALID draw of {result.raffle_id}: {result.ticket_count} tickets, root "
                f"{result.ticket_root[:16]}..., winners " + ", ".join(str(w.ticket.number) for w in result.winners)
            )
            + (
                ""
                if result.audit_key is None
                else f"\n  bound to audit checkpoint of size {result.audit_checkpoint_size} "
                f"signed by {result.audit_key}"
                + ("" if audit_keys else " (pass --audit-key to require the log's published key)")
            )
        ),
    )

