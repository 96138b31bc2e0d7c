"""Ticket check on the device: is ticket ``number`` of ``raffle_id`` with ``code`` genuine?

Two sources, one answer (:class:`TicketCheck`):

- **the server** (:func:`ask_server`), online: the public ``GET /v1/tickets/check`` (no login;
  ``docs/operations.md``), which knows every device's synced tickets and the raffle's state. It
  answers ``valid``, ``void`` or ``unknown``.
- **the device's own records** (:func:`check_local`), offline: the sales this device made. It
  answers ``valid`` (sold here, not voided, not rejected), ``void`` (sold here and voided),
  ``rejected`` (sold here, the server rejected the sale: refund it) or ``unknown`` (this device did
  not sell that number, or the code does not match it).

The code is compared in constant time by :func:`sync_protocol.codes.codes_match`, as the server
does, after the same normalisation (lower case, no dash, O for 0, I/L for 1). A wrong code is
``unknown`` from both sources; on the device the note says the number was sold here with
another code (mistyped, or not a genuine ticket). :meth:`PosClient.check_ticket` asks the server
first when it can, and falls back to the device's records with a note saying which answered.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from pos_client import wallet
from pos_client.errors import BadInput
from pos_client.receipt import when_text
from pos_client.store import Store
from sync_protocol.bounds import INT32_MAX
from sync_protocol.codes import codes_match, ticket_codes
from sync_protocol.messages import SaleRecord, parse_record

#: what a check answers
RESULTS = ("valid", "void", "rejected", "unknown")
#: the path of the server's public ticket check
CHECK_PATH = "/v1/tickets/check"
_HEADLINES = {"valid": "VALID", "void": "VOID", "rejected": "REJECTED", "unknown": "NOT FOUND"}


@dataclass(frozen=True)
class TicketCheck:
    """The answer to one ticket check.

    Attributes:
        result: one of :data:`RESULTS`.
        source: ``server`` or ``device``: who answered.
        note: a sentence for the person checking (why, and which source answered).
        raffle_name: the raffle's name when the answering side knows it.
        raffle_state: the server's public raffle state (``selling``, ``drawn``...), server answers only.
        synced: a device answer about a sale of its own: whether the server has that sale yet.
    """

    raffle_id: str
    number: int
    result: str
    source: str
    note: str
    raffle_name: str | None = None
    raffle_state: str | None = None
    synced: bool | None = None

    @property
    def headline(self) -> str:
        """One or two words, shown big: ``VALID``, ``VOID``, ``REJECTED``, ``NOT FOUND``."""
        return _HEADLINES[self.result]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"headline": self.headline}


def check_input(raffle_id: str, number: int, code: str) -> tuple[str, int, str]:
    """The three values stripped and within the server's bounds (``bad_input`` otherwise)."""
    raffle_id, code = raffle_id.strip(), code.strip()
    if not 1 <= len(raffle_id) <= 64 or "\x00" in raffle_id:
        raise BadInput("a raffle id has 1 to 64 characters")
    if type(number) is not int or not 1 <= number <= INT32_MAX:
        raise BadInput(f"a ticket number is a whole number from 1 to {INT32_MAX}")
    if not 1 <= len(code) <= 32 or "\x00" in code:
        raise BadInput("type the ticket's verification code (8 characters, like 7K3M-Q9TX)")
    return raffle_id, number, code


def _sale_with(conn: sqlite3.Connection, raffle_id: str, number: int) -> tuple[Any, ...] | None:
    """The sale row of this device that sold ``number`` of ``raffle_id`` (a number is sold once)."""
    row: tuple[Any, ...] | None = conn.execute(
        "SELECT r.seq, r.body, r.voided_by, r.rejected_code FROM records r, json_each(r.numbers) n "
        "WHERE r.kind = 'sale' AND r.raffle_id = ? AND n.value = ? LIMIT 1",
        (raffle_id, number),
    ).fetchone()
    return row


def check_local(store: Store, raffle_id: str, number: int, code: str) -> TicketCheck:
    """The device's own answer, from its records (works offline, and before enrollment: ``unknown``)."""
    state = store.device()
    acked = state.acked_seq if state is not None else 0
    with store.read() as conn:
        row = _sale_with(conn, raffle_id, number)
        raffle = wallet.raffle(conn, raffle_id)
    name = raffle.name if raffle is not None else None
    shown = f"ticket {number} of {name or raffle_id}"
    if row is None:
        return TicketCheck(
            raffle_id,
            number,
            "unknown",
            "device",
            f"This device did not sell {shown}; another device may have: check again online.",
            raffle_name=name,
        )
    seq, body, voided_by, rejected_code = row
    record = parse_record(orjson.loads(body))
    assert isinstance(record, SaleRecord)
    (expected,) = ticket_codes(record.raffle_id, [number], record.hash)
    synced = int(seq) <= acked
    if not codes_match(code, expected):
        return TicketCheck(
            raffle_id,
            number,
            "unknown",
            "device",
            f"This device sold {shown}, but with another code: mistyped, or not a genuine ticket.",
            raffle_name=name,
        )
    sold = f"sold by this device on {when_text(record.anchored_time_ms)}"
    if rejected_code:
        return TicketCheck(
            raffle_id,
            number,
            "rejected",
            "device",
            f"{_first_up(shown)} was {sold}, but the server rejected the sale ({rejected_code}): "
            "it is not in the draw; refund the buyer.",
            raffle_name=name,
            synced=True,
        )
    if voided_by:
        return TicketCheck(
            raffle_id,
            number,
            "void",
            "device",
            f"{_first_up(shown)} was {sold} and voided since: it is not in the draw.",
            raffle_name=name,
            synced=synced,
        )
    waiting = "the server has it" if synced else "waiting to sync to the server"
    return TicketCheck(
        raffle_id,
        number,
        "valid",
        "device",
        f"{_first_up(shown)} was {sold}; {waiting}.",
        raffle_name=name,
        synced=synced,
    )


def _first_up(text: str) -> str:
    """``ticket 5 of Demo 50/50`` -> ``Ticket 5 of Demo 50/50`` (the rest as it is, unlike ``capitalize``)."""
    return text[:1].upper() + text[1:]


def from_server(answer: dict[str, Any], raffle_id: str, number: int) -> TicketCheck | None:
    """A :class:`TicketCheck` from the server's JSON answer; ``None`` when it is not one."""
    result = answer.get("result")
    raffle = answer.get("raffle")
    if result not in ("valid", "void", "unknown") or not (raffle is None or isinstance(raffle, dict)):
        return None
    name = str(raffle.get("name")) if raffle and raffle.get("name") else None
    state = str(raffle.get("state")) if raffle and raffle.get("state") else None
    shown = f"ticket {number} of {name or raffle_id}"
    notes = {
        "valid": f"The server has {shown} on record: it is in the draw.",
        "void": f"The server has {shown} as voided: it is not in the draw.",
        "unknown": f"The server has no {shown} with that code.",
    }
    note = notes[str(result)]
    if raffle is None:
        note = f"The server knows no raffle {raffle_id}."
    elif state:
        note += f" Raffle: {state.replace('_', ' ')}."
    return TicketCheck(raffle_id, number, str(result), "server", note, raffle_name=name, raffle_state=state)


def combine(server: TicketCheck, local: TicketCheck) -> TicketCheck:
    """The server's answer, unless it does not know a sale of this device that has not synced yet."""
    if server.result == "unknown" and local.result != "unknown" and local.synced is False:
        return TicketCheck(
            local.raffle_id,
            local.number,
            local.result,
            "device",
            local.note + " The server does not have this sale yet; this device's records answered.",
            raffle_name=local.raffle_name,
            raffle_state=server.raffle_state,
            synced=False,
        )
    return server


def offline(local: TicketCheck, why: str) -> TicketCheck:
    """The device's answer with a note that the server did not answer (and why)."""
    return TicketCheck(
        local.raffle_id,
        local.number,
        local.result,
        "device",
        f"{local.note} The server did not answer ({why}), so this device's own records answered.",
        raffle_name=local.raffle_name,
        synced=local.synced,
    )
