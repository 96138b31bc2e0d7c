"""``tombola-pos``: the POS SDK from a terminal.

One parser (the click group below), one handler per subcommand, and one ``except
TombolaError`` at the top (:class:`_Cli`) that prints ``code: detail`` to stderr and exits 1
(usage errors exit 2).
Every command that prints a result takes ``--json`` and then prints one JSON object with
stable keys. The database is ``--db FILE``, else ``$TOMBOLA_POS_DB``, else ``./pos.db``.

Examples::

    tombola-pos --db pos.db enroll ABCD-EFGH-JKMN --server https://tombola.example
    tombola-pos sell --raffle rf_1 --quantity 5 --payment cash --json
    tombola-pos void 0193f0c2-... --reason "customer changed their mind"
    tombola-pos sync
    tombola-pos status --json
    tombola-pos export pos-export.ndjson
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
import orjson

from pos_client.client import PosClient
from pos_client.selling import PAYMENT_METHODS, Sale
from sync_protocol.codes import parse_ticket_check_url
from sync_protocol.errors import EXIT_REFUSED, TombolaError


class _Cli(click.Group):
    """The group that turns every :class:`TombolaError` into ``code: detail`` and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TombolaError as exc:
            click.echo(exc.diagnostics(), err=True)
            ctx.exit(EXIT_REFUSED)


def _client(ctx: click.Context) -> PosClient:
    """The one :class:`PosClient` of this invocation (``ctx.obj`` may inject ``http``, ``clock``, ``retry``)."""
    root = ctx.find_root()
    obj: dict[str, Any] = root.obj
    client = obj.get("client")
    if client is None:
        client = PosClient(obj["db"], http=obj.get("http"), clock=obj.get("clock"), retry=obj.get("retry"))
        root.call_on_close(client.close)
        obj["client"] = client
    return client


def _print_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _duration(seconds: int) -> str:
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object with stable keys.")


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="TOMBOLA_POS_DB",
    default="./pos.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The device database (env TOMBOLA_POS_DB).",
)
@click.pass_context
def cli(ctx: click.Context, db: str) -> None:
    """Sell Tombola raffle tickets offline and sync them to the server."""
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


@cli.command()
@click.argument("code")
@click.option("--server", "server_url", required=True, help="The server's base URL.")
@click.option("--name", "device_name", default="", help="A name for this device.")
@click.option(
    "--server-key",
    default=None,
    metavar="KEY",
    help="The server's grant key (key id or public key, as `tombola init` prints it): refuse an answer without it.",
)
@json_option
@click.pass_context
def enroll(
    ctx: click.Context, code: str, server_url: str, device_name: str, server_key: str | None, as_json: bool
) -> None:
    """Enroll this device with a one-time CODE from an admin.

    With --server-key the device pins that grant key, read from the server out of band, instead
    of trusting the keys of the answer it gets. A failed enrollment leaves no database behind
    (unless the server may have enrolled the device: then the key stays for the same command).
    """
    result = _client(ctx).enroll(code, server_url, device_name, server_key=server_key)
    if as_json:
        _print_json(
            {
                "device_id": result.device_id,
                "venue_id": result.venue_id,
                "grants": result.grants,
                "refused_grants": [{"grant_id": g.grant_id, "reason": g.reason} for g in result.refused_grants],
                "raffles": result.raffles,
                "lease_s": result.lease_s,
                "server_time_ms": result.server_time_ms,
            }
        )
        return
    click.echo(f"enrolled as device {result.device_id} at venue {result.venue_id}")
    click.echo(f"raffles: {', '.join(result.raffles) or 'none'}; grants: {len(result.grants)}")
    for refused in result.refused_grants:
        click.echo(f"refused grant {refused.grant_id}: {refused.reason}", err=True)


@cli.command()
@click.option("--raffle", "raffle_id", required=True, help="Raffle id.")
@click.option("--quantity", type=int, required=True, help="Number of tickets.")
@click.option("--payment", type=click.Choice(PAYMENT_METHODS), default="cash", show_default=True)
@click.option("--reference", default=None, help="Card terminal reference.")
@click.option("--seller", "seller_id", default="", help="Seller id.")
@json_option
@click.pass_context
def sell(
    ctx: click.Context,
    raffle_id: str,
    quantity: int,
    payment: str,
    reference: str | None,
    seller_id: str,
    as_json: bool,
) -> None:
    """Sell tickets at the raffle's price; prints the amount, the numbers and their verification codes.

    The price is the raffle's: the price point of the quantity, else the quantity times the
    single-ticket price (unless the raffle sells bundles only). When a printer is set
    (`tombola-pos printer set`), the receipt prints; a print failure exits 1 with print_failed (the
    sale stands) and blocks the next sale until `tombola-pos receipt SALE_ID` prints it or the sale is voided.
    """
    client = _client(ctx)
    sale = client.sell(raffle_id, quantity, payment=payment, reference=reference, seller_id=seller_id)
    printed: TombolaError | bool | None = None
    if client.printer() is not None:
        try:
            printed = client.print_receipt(sale.sale_id).printed
        except TombolaError as exc:
            printed = exc
    _show_sale(sale, as_json, printed is True if printed is not None else None)
    if isinstance(printed, TombolaError):
        raise printed


def _show_sale(sale: Sale, as_json: bool, printed: bool | None) -> None:
    if as_json:
        _print_json(
            {
                "id": sale.sale_id,
                "seq": sale.seq,
                "raffle_id": sale.raffle_id,
                "numbers": sale.numbers,
                "codes": sale.codes,
                "amount_cents": sale.amount_cents,
                "amount": sale.amount,
                "currency": sale.currency,
                "payment": sale.payment,
                "printed": printed,
            }
        )
        return
    click.echo(f"sale {sale.sale_id} (seq {sale.seq})")
    click.echo(f"raffle {sale.raffle_id}: {len(sale.numbers)} ticket(s), {sale.amount}")
    for number, code in zip(sale.numbers, sale.codes, strict=True):
        click.echo(f"  #{number:<8} {code}")
    if printed is not None:
        click.echo("receipt printed" if printed else "receipt NOT printed")


@cli.group()
def printer() -> None:
    """The receipt printer of this device."""


@printer.command("set")
@click.argument("spec", metavar="file:PATH | network:HOST[:PORT] | usb:VID:PID | serial:DEV")
@json_option
@click.pass_context
def printer_set(ctx: click.Context, spec: str, as_json: bool) -> None:
    """Set the receipt printer (USB ids in hexadecimal; a network printer's port is 9100 by default)."""
    result = _client(ctx).set_printer(spec)
    if as_json:
        _print_json({"printer": str(result), "kind": result.kind})
        return
    click.echo(f"printer: {result}")


@printer.command("show")
@json_option
@click.pass_context
def printer_show(ctx: click.Context, as_json: bool) -> None:
    """Show the receipt printer, and the receipt that blocks selling if one failed to print."""
    client = _client(ctx)
    spec, blocked = client.printer(), client.printer_blocked()
    if as_json:
        _print_json(
            {
                "printer": str(spec) if spec else None,
                "blocked_by": {"sale_id": blocked[0], "error": blocked[1]} if blocked else None,
            }
        )
        return
    click.echo(f"printer: {spec or 'none set'}")
    if blocked:
        click.echo(f"selling blocked: the receipt of sale {blocked[0]} did not print ({blocked[1]})")
        click.echo(f"  reprint it: tombola-pos receipt {blocked[0]}   or void the sale")


@cli.command()
@click.argument("sale_id")
@click.option("--copy", is_flag=True, help="Mark it COPY (a reprint of a receipt that printed is marked COPY anyway).")
@click.option("--text", "as_text", is_flag=True, help="Show the receipt as text instead of printing it.")
@json_option
@click.pass_context
def receipt(ctx: click.Context, sale_id: str, copy: bool, as_text: bool, as_json: bool) -> None:
    """Print the receipt of SALE_ID on the device's printer (or show it with --text)."""
    client = _client(ctx)
    if as_text:
        click.echo(client.receipt(sale_id, copy=copy).text(), nl=False)
        return
    outcome = client.print_receipt(sale_id, copy=copy)
    if as_json:
        _print_json(
            {"sale_id": outcome.sale_id, "printed": outcome.printed, "copy": outcome.copy, "printer": outcome.printer}
        )
        return
    click.echo(f"receipt of sale {outcome.sale_id} printed{' (COPY)' if outcome.copy else ''} on {outcome.printer}")


@cli.command()
@click.argument("sale_id")
@click.option("--reason", required=True, help="Why the sale is voided.")
@click.option("--seller", "seller_id", default="", help="Seller id.")
@json_option
@click.pass_context
def void(ctx: click.Context, sale_id: str, reason: str, seller_id: str, as_json: bool) -> None:
    """Void an earlier sale of this device."""
    result = _client(ctx).void(sale_id, reason, seller_id=seller_id)
    if as_json:
        _print_json({"id": result.void_id, "seq": result.seq, "voids": result.voids, "raffle_id": result.raffle_id})
        return
    click.echo(f"voided sale {result.voids} (void {result.void_id}, seq {result.seq})")


@cli.command()
@click.option("--max-batches", type=int, default=None, help="Stop after this many batches.")
@json_option
@click.pass_context
def sync(ctx: click.Context, max_batches: int | None, as_json: bool) -> None:
    """Upload pending records; fetch grants, raffle changes and time."""
    result = _client(ctx).sync(max_batches=max_batches)
    if as_json:
        _print_json(
            {
                "batches": result.batches,
                "sent": result.sent,
                "acked_seq": result.acked_seq,
                "pending": result.pending,
                "new_grants": result.new_grants,
                "refused_grants": [{"grant_id": g.grant_id, "reason": g.reason} for g in result.refused_grants],
                "rejections": [
                    {"seq": r.seq, "sale_id": r.sale_id, "code": r.code, "detail": r.detail} for r in result.rejections
                ],
                "revoked_grants": result.revoked_grants,
                "device_status": result.device_status,
                "server_time_ms": result.server_time_ms,
            }
        )
        return
    click.echo(
        f"synced: {result.sent} record(s) acknowledged in {result.batches} batch(es), up to seq {result.acked_seq}; "
        f"{result.pending} pending"
    )
    if result.new_grants:
        click.echo(f"new grants: {', '.join(result.new_grants)}")
    for refused in result.refused_grants:
        click.echo(f"refused grant {refused.grant_id}: {refused.reason}", err=True)
    for rejection in result.rejections:
        click.echo(f"rejected seq {rejection.seq} (sale {rejection.sale_id}): {rejection.code}: {rejection.detail}")
    if result.revoked_grants:
        click.echo(f"revoked grants: {', '.join(result.revoked_grants)}")
    if result.device_status != "active":
        click.echo(f"device status: {result.device_status}")


@cli.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Pending records, lease, numbers per raffle, rejected records and alerts."""
    state = _client(ctx).status()
    if as_json:
        _print_json(state.to_dict())
        return
    if state.device_id is None:
        click.echo("not enrolled")
        return
    click.echo(f"device {state.device_id} at venue {state.venue_id}: {state.device_status}")
    click.echo(
        f"records: {state.last_seq}, acknowledged up to {state.acked_seq}, {state.pending} pending; "
        f"last sync {_when(state.last_sync_ms)}"
    )
    if state.lease_left_s is not None:
        click.echo(f"lease left: {_duration(state.lease_left_s)}")
    for raffle in state.raffles:
        click.echo(
            f"raffle {raffle.raffle_id} ({raffle.name}) {raffle.status}: {raffle.numbers_used} used of "
            f"{raffle.numbers_granted}, {raffle.numbers_left} left; closes {_when(raffle.sales_close_at_ms)}"
        )
    for record in state.rejected:
        click.echo(f"rejected: seq {record.seq} {record.kind} {record.sale_id}: {record.code}: {record.detail}")
    for alert in state.alerts:
        click.echo(f"alert: {alert}")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@json_option
@click.pass_context
def export(ctx: click.Context, path: str, as_json: bool) -> None:
    """Write every record to PATH as signed NDJSON (for a server to ingest)."""
    result = _client(ctx).export(path)
    if as_json:
        _print_json(
            {
                "path": str(result.path),
                "records": result.record_count,
                "first_seq": result.first_seq,
                "last_seq": result.last_seq,
                "head_hash": result.head_hash,
            }
        )
        return
    click.echo(f"wrote {result.record_count} record(s) to {result.path} (head {result.head_hash})")


@cli.command()
@click.option("--raffle", "raffle_id", default=None, help="The raffle id (with --number and --code).")
@click.option("--number", type=int, default=None, help="The ticket number.")
@click.option("--code", default=None, help="The verification code as printed (XXXX-XXXX; case and dash optional).")
@click.option("--url", default=None, help="The ticket-check URL of the receipt's QR code, instead of the three.")
@click.option("--offline", is_flag=True, help="Answer from this device's records only; do not ask the server.")
@json_option
@click.pass_context
def check(
    ctx: click.Context,
    raffle_id: str | None,
    number: int | None,
    code: str | None,
    url: str | None,
    offline: bool,
    as_json: bool,
) -> None:
    """Check a ticket: the server's answer when it is reachable, else this device's own records."""
    if url is not None:
        ref = parse_ticket_check_url(url)
        raffle_id, number, code = ref.raffle_id, ref.number, ref.code
    if raffle_id is None or number is None or code is None:
        raise click.UsageError("give --raffle, --number and --code, or --url")
    answer = _client(ctx).check_ticket(raffle_id, number, code, online=not offline)
    if as_json:
        _print_json(answer.to_dict())
        return
    click.echo(f"{answer.headline}: ticket {answer.number} of {answer.raffle_name or answer.raffle_id}")
    click.echo(f"({answer.source}) {answer.note}")


def _parse_since(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}", param_hint="--since") from exc
    if when.tzinfo is None:
        when = when.astimezone()  # the device's local time, as people type it
    return int(when.timestamp() * 1000)


@cli.command()
@click.option("--float", "opening_float", type=click.IntRange(min=0), default=None, help="Opening float in cents "
              "(default: the started shift's, else 0).")  # fmt: skip
@click.option("--since", default=None, help="ISO 8601 start of the shift (default: the started shift's, else all).")
@click.option("--start", "start", is_flag=True, help="Start a shift now with --float (kept in the device's settings).")
@click.option("--currency", default=None, help="The currency to report when the shift sold in several.")
@click.option("--print", "print_it", is_flag=True, help="Also print the report on the device's receipt printer.")
@json_option
@click.pass_context
def shift(
    ctx: click.Context,
    opening_float: int | None,
    since: str | None,
    start: bool,
    currency: str | None,
    print_it: bool,
    as_json: bool,
) -> None:
    """End of shift: sales, voids, cash expected, card total and unsynced count, per seller and device."""
    client = _client(ctx)
    if start:
        started = client.start_shift(opening_float or 0)
        if as_json:
            _print_json({"opening_float_cents": started.opening_float_cents, "started_at_ms": started.started_at_ms})
        else:
            click.echo(f"shift started at {_when(started.started_at_ms)} with a float of {started.opening_float_cents}")
        return
    report = client.shift_report(opening_float, _parse_since(since), currency=currency)
    printed = client.print_shift_report(report) if print_it else None
    if as_json:
        _print_json(report.to_dict() | {"printed_on": printed})
        return
    click.echo(report.text(), nl=False)
    if printed:
        click.echo(f"printed on {printed}")


@cli.command()
@click.option("--sync-interval", type=float, default=15.0, show_default=True, help="Seconds between background syncs.")
@click.pass_context
def app(ctx: click.Context, sync_interval: float) -> None:
    """Start the POS app (Kivy) on this desktop over the --db file."""
    try:
        from pos_client.app.main import run  # Kivy is imported only here: the CLI works without it
    except ImportError as exc:
        raise click.ClickException(f"the app needs Kivy: pip install 'tombola[pos]' ({exc})") from exc
    run(ctx.find_root().obj["db"], sync_interval_s=sync_interval)


def main() -> None:
    """Console entry point of ``tombola-pos``."""
    cli(prog_name="tombola-pos")
