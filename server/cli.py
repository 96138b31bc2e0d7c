"""The ``tombola`` command line: operators script it, so names and ``--json`` keys are stable.

One handler per subcommand; one ``except TombolaError`` at the top prints ``code: detail`` and
exits with status 2. Everything acts on the installation under ``TOMBOLA_HOME`` (``./var``).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import update

from gli_core.api import acting_as, init_hsm
from server import audit
from server.config import Settings
from server.context import Tombola
from server.enrollment import service as enrollment
from server.errors import InvalidRequest
from server.raffles import service as raffles
from server.reconcile import service as reconcile
from sync_protocol.errors import TombolaError

F = TypeVar("F", bound=Callable[..., Any])


def _ms(text: str) -> int:
    """ISO 8601 (naive = UTC) to Unix milliseconds."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"{text!r} is not an ISO 8601 time such as 2026-12-31T22:00:00Z") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _emit(obj: Any, as_json: bool, text: str | Callable[[], str]) -> None:
    if as_json:
        click.echo(json.dumps(obj, indent=2, default=str))
    else:
        click.echo(text() if callable(text) else text)


json_option: Callable[[F], F] = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _cli_actor() -> str:
    """``user:<login>@cli``: who ran the command (the operating-system account)."""
    import getpass
    import re

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return "user:" + (re.sub(r"[^A-Za-z0-9._\-]", "_", login)[:60] or "unknown") + "@cli"


def with_app(fn: F) -> F:
    """Open the installation's services for the handler and close them after."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = Tombola.open(Settings())
        try:
            with acting_as(_cli_actor()):
                return fn(app, *args, **kwargs)
        finally:
            try:
                audit.drain(app)  # the command's business events reach the audit log before it exits
            finally:
                app.close()

    return wrapper  # type: ignore[return-value]


@click.group()
def cli() -> None:
    """Tombola: offline-first raffles with verifiable draws."""


@cli.command()
@json_option
def init(as_json: bool) -> None:
    """Create var/, the HSM token (embedded SoftHSM2: var/hsm/, PIN in var/hsm/pin) and its keys,
    migrate both databases and create the admin token (idempotent)."""
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    hsm_config = settings.hsm_config()
    token = init_hsm(hsm_config)
    try:
        hsm = token.token_info() | {"keys": [k.to_dict() for k in token.public_keys()]}
    finally:
        token.close()
    pin_file = hsm_config.pin_file or hsm_config.embedded_pin_file
    if not hsm_config.pin and pin_file is not None and pin_file.exists():
        hsm["pin_file"] = str(pin_file.resolve())
    app = Tombola.open(settings)
    try:
        org_id = raffles.ensure_organisation(app)
        keys = [k.to_dict() for k in app.core.public_keys()]
    finally:
        app.close()
    token_file = settings.admin_token_file
    if not token_file.exists():
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    result = {
        "home": str(settings.home.resolve()),
        "organisation_id": org_id,
        "server_keys": keys,
        "admin_token_file": str(token_file.resolve()),
        "hsm": hsm,
    }
    _emit(
        result,
        as_json,
        f"Tombola is ready in {result['home']} (token {hsm['token_label']!r}, grant key {keys[-1]['key_id']}).",
    )


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.option("--workers", default=1, type=int, help="Server processes (PostgreSQL only for more than one).")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the HTTP API (devices, admin, core tickets)."""
    import uvicorn

    settings = Settings()
    Tombola.open(settings).close()  # migrate once before the workers start
    uvicorn.run(
        "server.asgi:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
    )


@cli.command()
@json_option
@with_app
def demo(app: Tombola, as_json: bool) -> None:
    """Seed a demo venue and 50/50 raffle and print a fresh enrollment code with a walk-through."""
    venue = next((v for v in raffles.list_venues(app) if v["name"] == "Demo Hall"), None)
    venue = venue or raffles.create_venue(app, "Demo Hall")
    raffle = next((r for r in raffles.list_raffles(app, venue["id"]) if r["status"] == "open"), None)
    if raffle is None:
        raffle = raffles.create_raffle(
            app,
            raffles.RaffleCreate(
                venue_id=venue["id"],
                name="Demo 50/50",
                price_cents=500,
                number_space=1_000_000,
                sales_close_at_ms=app.now_ms() + 12 * 3600 * 1000,
                bundles=((5, 1000), (30, 2000)),
            ),
        )
    code = enrollment.create_enrollment_code(app, venue["id"])
    url = app.settings.url()
    result = {"venue_id": venue["id"], "raffle_id": raffle["id"], "code": code["code"], "server": url}
    walk = f"""
Demo data: venue {venue["id"]} "Demo Hall", raffle {raffle["id"]} "{raffle["name"]}" (1 for $5, 5 for $10, 30 for $20).

Try it (in a second terminal, from this folder):
  .venv/bin/tombola-pos --db var/pos-demo.db enroll {code["code"]} --server {url}
  .venv/bin/tombola-pos --db var/pos-demo.db sell --raffle {raffle["id"]} --quantity 5 --payment cash
  .venv/bin/tombola-pos --db var/pos-demo.db status
  .venv/bin/tombola-pos --db var/pos-demo.db sync
  .venv/bin/tombola tickets --raffle {raffle["id"]}
  .venv/bin/tombola report reconciliation --raffle {raffle["id"]}
The POS sells offline: stop the server, keep selling, start it again and sync.

Everything above is in the tamper-evident audit log (docs/audit-log.md):
  .venv/bin/tombola audit tail --limit 5
  .venv/bin/tombola audit checkpoint
  .venv/bin/tombola audit verify
"""
    _emit(result, as_json, walk)


@cli.group()
def venue() -> None:
    """Venues."""


@venue.command("create")
@click.argument("name")
@json_option
@with_app
def venue_create(app: Tombola, name: str, as_json: bool) -> None:
    """Create a venue."""
    v = raffles.create_venue(app, name)
    _emit(v, as_json, f"venue {v['id']} {v['name']!r}")


@venue.command("list")
@json_option
@with_app
def venue_list(app: Tombola, as_json: bool) -> None:
    """List venues."""
    vs = raffles.list_venues(app)
    _emit(vs, as_json, lambda: "\n".join(f"{v['id']}  {v['name']}" for v in vs) or "no venues")


def _bundle(text: str) -> tuple[int, int]:
    try:
        q, c = text.split(":")
        return int(q), int(c)
    except ValueError as exc:
        raise InvalidRequest(f"--bundle {text!r} is not QTY:CENTS, e.g. 5:1000") from exc


def _prize(text: str) -> dict[str, Any]:
    try:
        tier, count, kind, value = text.rsplit(":", 3)
        if kind == "fixed":
            return {"tier": tier, "count": int(count), "kind": "fixed", "amount_cents": int(value)}
        if kind == "percent":
            return {"tier": tier, "count": int(count), "kind": "percent_of_sales", "percent": int(value)}
    except ValueError:
        pass
    raise InvalidRequest(f"--prize {text!r} is not TIER:COUNT:fixed:CENTS or TIER:COUNT:percent:P")


@cli.group()
def raffle() -> None:
    """Raffles."""


@raffle.command("create")
@click.option("--venue", "venue_id", required=True)
@click.option("--name", required=True)
@click.option("--price-cents", required=True, type=int, help="Price of one ticket.")
@click.option("--numbers", required=True, type=int, help="Size of the raffle's number space.")
@click.option("--closes-at", required=True, help="ISO 8601 time sales close.")
@click.option("--opens-at", default=None, help="ISO 8601 time sales open (default now).")
@click.option("--bundle", "bundles", multiple=True, help="QTY:CENTS price point, repeatable.")
@click.option("--currency", default="USD")
@click.option("--grant-size", default=None, type=int, help="Numbers per device grant (default 1000).")
@click.option(
    "--prize",
    "prizes",
    multiple=True,
    help="TIER:COUNT:fixed:CENTS or TIER:COUNT:percent:P, repeatable, in draw order "
    "(default: one 50/50 prize of 50% of sales).",
)
@json_option
@with_app
def raffle_create(
    app: Tombola,
    venue_id: str,
    name: str,
    price_cents: int,
    numbers: int,
    closes_at: str,
    opens_at: str | None,
    bundles: tuple[str, ...],
    currency: str,
    grant_size: int | None,
    prizes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a raffle; sales open at once unless --opens-at is later."""
    r = raffles.create_raffle(
        app,
        raffles.RaffleCreate(
            venue_id=venue_id,
            name=name,
            price_cents=price_cents,
            number_space=numbers,
            sales_close_at_ms=_ms(closes_at),
            sales_open_at_ms=_ms(opens_at) if opens_at else None,
            bundles=tuple(_bundle(b) for b in bundles),
            currency=currency,
            grant_size=grant_size,
            prize_table=tuple(_prize(p) for p in prizes),
        ),
    )
    _emit(r, as_json, f"raffle {r['id']} {r['name']!r} {r['status']}, closes {_iso(r['sales_close_at_ms'])}")


@raffle.command("close")
@click.argument("raffle_id")
@json_option
@with_app
def raffle_close(app: Tombola, raffle_id: str, as_json: bool) -> None:
    """Close sales now."""
    r = raffles.close_raffle(app, raffle_id)
    _emit(r, as_json, f"raffle {r['id']} closed at {_iso(r['sales_close_at_ms'])}")


@raffle.command("list")
@json_option
@with_app
def raffle_list(app: Tombola, as_json: bool) -> None:
    """List raffles."""
    rs = raffles.list_raffles(app)
    _emit(rs, as_json, lambda: "\n".join(f"{r['id']}  {r['status']:<9} {r['name']}" for r in rs) or "no raffles")


@cli.group()
def device() -> None:
    """POS devices."""


@device.command("enroll-code")
@click.option("--venue", "venue_id", required=True)
@json_option
@with_app
def device_enroll_code(app: Tombola, venue_id: str, as_json: bool) -> None:
    """A single-use, expiring enrollment code for a venue."""
    c = enrollment.create_enrollment_code(app, venue_id)
    _emit(c, as_json, f"{c['code']}  (venue {venue_id}, expires {_iso(c['expires_at_ms'])})")


@device.command("revoke")
@click.argument("device_id")
@click.option("--reason", default="")
@json_option
@with_app
def device_revoke(app: Tombola, device_id: str, reason: str, as_json: bool) -> None:
    """Revoke a device: its syncs are refused from now on."""
    d = enrollment.revoke_device(app, device_id, reason)
    _emit(d, as_json, f"device {device_id} revoked")


@device.command("extend")
@click.argument("device_id")
@click.option("--raffle", "raffle_id", required=True)
@click.option("--numbers", required=True, type=int)
@click.option("--reason", required=True)
@json_option
@with_app
def device_extend(app: Tombola, device_id: str, raffle_id: str, numbers: int, reason: str, as_json: bool) -> None:
    """Extend a device's range at once (delivered on its next sync)."""
    g = enrollment.extend_device(app, device_id, raffle_id, numbers, reason)
    out = g.to_dict() | {"id": g.grant_id}
    _emit(out, as_json, f"grant {g.grant_id}: numbers {g.first_number}-{g.last_number} for {device_id}")


@device.command("list")
@json_option
@with_app
def device_list(app: Tombola, as_json: bool) -> None:
    """List devices."""
    ds = enrollment.list_devices(app)
    _emit(
        ds,
        as_json,
        lambda: (
            "\n".join(
                f"{d['id']}  {d['status']:<8} acked {d['acked_seq']:>6}  "
                f"last sync {_iso(d['last_sync_ms'])}  {d['name']}"
                for d in ds
            )
            or "no devices"
        ),
    )


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@with_app
def ingest(app: Tombola, files: tuple[Path, ...], as_json: bool) -> None:
    """Ingest device export files (NDJSON) and write reconciliation reports."""
    results = [reconcile.ingest_file(app, f, progress=not as_json and sys.stderr.isatty()) for f in files]
    raffle_ids = sorted({r["id"] for r in raffles.list_raffles(app)})
    reports = [str(p) for p in reconcile.write_reports(app, raffle_ids)]
    out = {"files": results, "reports": reports}
    _emit(
        out,
        as_json,
        lambda: (
            "\n".join(
                f"{r['file']}: device {r['device_id']}, {r['records']} records, {r['applied']} applied, "
                f"{r['duplicates']} already on record, {len(r['rejected'])} rejected"
                for r in results
            )
            + "\nreports: "
            + ", ".join(reports)
        ),
    )


@cli.group()
def report() -> None:
    """Reports."""


@report.command("reconciliation")
@click.option("--raffle", "raffle_id", required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@json_option
@with_app
def report_reconciliation(app: Tombola, raffle_id: str, output: Path | None, as_json: bool) -> None:
    """The reconciliation report of a raffle (per device and per raffle)."""
    rep = reconcile.report(app, raffle_id)
    text = json.dumps(rep, indent=2) if as_json else reconcile.render_text(rep)
    if output:
        output.write_text(text)
    click.echo(text.rstrip("\n"))


@cli.command()
@click.option("--raffle", "raffle_id", required=True)
@json_option
@with_app
def tickets(app: Tombola, raffle_id: str, as_json: bool) -> None:
    """Every recorded ticket of a raffle: number, sale id, device, sequence."""
    raffles.get_raffle(app, raffle_id)
    rows = [t.to_dict() for t in app.core.tickets(raffle_id)]
    _emit(
        rows,
        as_json,
        lambda: (
            "\n".join(
                f"{t['number']:>8}  {t['status']:<8} {t['verification_code']}  sale {t['sale_id']}  "
                f"{t['device_id']} #{t['seq']}"
                for t in rows
            )
            or "no tickets"
        ),
    )


@cli.group()
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


@cli.command("verify-draw")
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
    from gli_core.draw.verify import verify_proof

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


@cli.group()
def compliance() -> None:
    """Compliance evidence: draw fairness statistics and raw RNG samples (docs/compliance.md)."""


@compliance.command("fairness")
@click.option("--draws", required=True, type=int, help="Number of synthetic draws.")
@click.option("--tickets", default=100, show_default=True, type=int, help="Tickets in each synthetic raffle.")
@click.option("--winners", default=1, show_default=True, type=int, help="Fixed prizes drawn in each raffle.")
@click.option(
    "-o",
    "--output",
    "png",
    default="fairness.png",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Histogram PNG.",
)
@json_option
@with_app
def compliance_fairness(app: Tombola, draws: int, tickets: int, winners: int, png: Path, as_json: bool) -> None:
    """Run N draws through the real draw path and test winning positions for uniformity."""
    from server.compliance import fairness

    r = fairness(app, draws, tickets, winners, png)
    _emit(
        r,
        as_json,
        lambda: (
            f"{'PASS' if r['passed'] else 'FAIL'}: {r['draws']} draws x {r['winners_per_draw']} winner(s) over "
            f"{r['tickets']} tickets in {r['elapsed_s']} s ({r['ms_per_draw']} ms/draw)\n"
            f"  chi-square {r['chi2']:.3f} over {r['chi2_bins']} bins, p = {r['chi2_p']:.4g}\n"
            f"  Kolmogorov-Smirnov D = {r['ks']:.5f}, p = {r['ks_p']:.4g}\n"
            f"  (pass: both p >= {r['alpha']}); histogram {r['histogram']}"
        ),
    )
    if not r["passed"]:
        sys.exit(1)


@compliance.command("rng-sample")
@click.option("--bytes", "nbytes", required=True, type=int, help="Number of raw bytes to write.")
@click.option("-o", "--output", "path", required=True, type=click.Path(path_type=Path), help="Output file.")
@json_option
@with_app
def compliance_rng_sample(app: Tombola, nbytes: int, path: Path, as_json: bool) -> None:
    """Write N raw bytes from the RNG service (health-tested, recorded) for external batteries."""
    from server.compliance import rng_sample

    r = rng_sample(app, nbytes, path)
    _emit(r, as_json, lambda: f"wrote {r['bytes']} bytes to {r['file']} (sha256 {r['sha256']})")


def main() -> None:
    """Entry point: run the command; print ``code: detail`` and exit 2 on a Tombola error."""
    try:
        cli(standalone_mode=False)
    except TombolaError as exc:
        click.echo(exc.diagnostics(), err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)


# Command groups kept in modules of their own (they import the helpers above).
from server.cli_access import access_group  # noqa: E402
from server.cli_audit import audit_group, keys_group  # noqa: E402

cli.add_command(access_group)
cli.add_command(audit_group)
cli.add_command(keys_group)
