"""``tombola ingest``, ``report`` and ``tickets``: export files, reconciliation reports, recorded tickets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from server.cli._common import _emit, json_option, with_app
from server.context import Tombola
from server.raffles import service as raffles
from server.reconcile import service as reconcile


@click.command()
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


@click.group()
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


@click.command()
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
