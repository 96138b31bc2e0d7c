"""The ``tombola`` command line: operators script it, so names and ``--json`` keys are stable.

One module per command group (``setup``: init, serve, demo; ``venues``; ``raffles``; ``devices``;
``records``: ingest, report, tickets; ``draws``: draw and verify-draw; ``compliance``; ``access``;
``audit``: audit and keys), one handler per subcommand, each calling the one service function of
its state change. Shared helpers live in :mod:`server.cli._common`. :func:`main` catches
:class:`~sync_protocol.errors.TombolaError` once and prints ``code: detail``. Everything acts on
the installation under ``TOMBOLA_HOME`` (``./var``).
"""

from __future__ import annotations

import sys

import click

from server.cli import access, audit, compliance, devices, draws, records, setup, venues
from server.cli import raffles as raffle_commands
from sync_protocol.errors import TombolaError


@click.group()
def cli() -> None:
    """Tombola: offline-first raffles with verifiable draws."""


for command in (
    setup.init,
    setup.serve,
    setup.demo,
    venues.venue,
    raffle_commands.raffle,
    devices.device,
    records.ingest,
    records.report,
    records.tickets,
    draws.draw,
    draws.verify_draw,
    compliance.compliance,
    access.access_group,
    audit.audit_group,
    audit.keys_group,
):
    cli.add_command(command)


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
