"""The core's tables as the registry and the draw engine use them, and the SQL helpers they share.

Both :mod:`gli_core.registry` and :mod:`gli_core.draw.service` import this module; it imports
neither of them, so the draw engine needs nothing of the registry package (which uses the draw's
encodings), and the import-linter contract on sibling cycles holds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Text, any_, bindparam, cast, func, select
from sqlalchemy.engine import Connection

from gli_core.models import CoreRaffle, DeviceSync, Draw, Grant, SigningKey, Ticket

__all__ = [
    "DEVICE_SYNC",
    "DRAW",
    "GRANT",
    "HOLD_DRAWS",
    "KEY",
    "ONLINE_DEVICE",
    "RAFFLE",
    "TICKET",
    "among",
    "among_value",
    "chunks",
    "now_ms",
]

RAFFLE = CoreRaffle.__table__  # type: ignore[attr-defined]
GRANT = Grant.__table__  # type: ignore[attr-defined]
TICKET = Ticket.__table__  # type: ignore[attr-defined]
KEY = SigningKey.__table__  # type: ignore[attr-defined]
DEVICE_SYNC = DeviceSync.__table__  # type: ignore[attr-defined]
DRAW = Draw.__table__  # type: ignore[attr-defined]

#: the device id of the online channel's grants and tickets (no POS device)
ONLINE_DEVICE = "online"

#: the draw rows of the given raffles, held FOR SHARE: what records tickets or voids grants holds
#: them, and the freeze and the cancel change them, so neither interleaves with a recording
HOLD_DRAWS = (
    select(DRAW.c.raffle_id, DRAW.c.state)
    .where(DRAW.c.raffle_id.in_(bindparam("raffle_ids", expanding=True)))
    .order_by(DRAW.c.raffle_id)
    .with_for_update(read=True)
)


def now_ms() -> int:
    return int(time.time() * 1000)


def chunks(conn: Connection, values: Sequence[Any], size: int) -> list[list[Any]]:
    """``values`` in one piece on PostgreSQL (one array parameter), in pieces of ``size`` elsewhere."""
    if conn.dialect.name == "postgresql":
        return [list(values)] if values else []
    return [list(values[i : i + size]) for i in range(0, len(values), size)]


def among(dialect: str, column: Any, name: str) -> Any:
    """``column IN :name``: ``IN (...)`` (an expanding parameter) on SQLite; on PostgreSQL one
    JSON text parameter, ``column = ANY(ARRAY(SELECT json_array_elements_text(:name)::type))``.

    One parameter whatever the length, so the statement text (and its prepared plan, an index
    scan) is the same for every batch; JSON rather than a driver array because dumping a list of
    500 values element by element costs the client milliseconds, encoding it as JSON microseconds.
    Pass the values through :func:`among_value`.
    """
    if dialect == "postgresql":
        elements = func.json_array_elements_text(cast(bindparam(name, type_=Text), JSON))
        return column == any_(func.array(select(cast(elements, column.type)).scalar_subquery()))
    return column.in_(bindparam(name, expanding=True))


def among_value(conn: Connection, values: Sequence[Any]) -> Any:
    return orjson.dumps(list(values)).decode() if conn.dialect.name == "postgresql" else list(values)
