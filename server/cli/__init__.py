"""The ``tombola`` command line: operators script it, so names and ``--json`` keys are stable.

One module per command group (``setup``: init, serve, demo; ``venues``; ``raffles``; ``devices``;
``records``: ingest, report, tickets; ``draws``: draw and verify-draw; ``compliance``; ``access``;
``users``: user and approval;
``audit``: audit and keys), one handler per subcommand, each calling the one service function of
its state change. Shared helpers live in :mod:`server.cli._common`. :func:`main` catches
:class:`~sync_protocol.errors.TombolaError` once and prints ``code: detail``. Everything acts on
the installation under ``TOMBOLA_HOME`` (``./var``).
"""

from __future__ import annotations

import sys

import click

from server.cli import access, audit, compliance, devices, draws, records, sellers, setup, users, venues
from server.cli import raffles as raffle_commands
from server.cli import reports as _reports  # noqa: F401 - adds its commands to `tombola report`
from sync_protocol.errors import EXIT_REFUSED, EXIT_USAGE, TombolaError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tombola: offline-first raffles with verifiable draws."""


for command in (
    setup.init,
    setup.serve,
    setup.demo,
    venues.venue,
    raffle_commands.raffle,
    sellers.seller,
    devices.device,
    records.ingest,
    records.report,
    records.tickets,
    draws.draw,
    draws.verify_draw,
    compliance.compliance,
    access.access_group,
    users.user_group,
    users.approval_group,
    audit.audit_group,
    audit.keys_group,
):
    cli.add_command(command)


def main() -> None:
    """Entry point: exit 0 when done; 1 with ``code: detail`` on stderr when refused or a verification
    fails; 2 on a usage error (click's message)."""
    try:
        status = cli(standalone_mode=False)
    except TombolaError as exc:
        click.echo(exc.diagnostics(), err=True)
        sys.exit(EXIT_REFUSED)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(EXIT_REFUSED)
    sys.exit(status if isinstance(status, int) else 0)
