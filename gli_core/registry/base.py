"""What every part of the registry shares: the core engine, the grant signer and the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from dbkit import reader
from gli_core.audit.entry import AuditEvent, current_actor
from sync_protocol.messages import RangeGrant
from sync_protocol.signing import Signer

if TYPE_CHECKING:
    from gli_core.audit.log import AuditLog


class RegistryBase:
    """The state the registry's parts (raffles, grants, devices, tickets) work on."""

    def __init__(self, engine: Engine, signer: Signer, audit: AuditLog | None = None) -> None:
        self.engine = engine
        #: the same pool for transactions that only read (no write lock on SQLite)
        self.reads = reader(engine)
        self.signer = signer
        #: every state change appends its audit entry in its own transaction (I7)
        self.audit = audit
        #: grant id -> (signed payload, parsed grant); the parsed grants are shared: never mutate them
        self._grant_cache: dict[str, tuple[str, RangeGrant]] = {}

    def _log(self, conn: Connection, type_: str, payload: Mapping[str, Any], tenant: str = "") -> None:
        if self.audit is not None:
            self.audit.append(conn, [AuditEvent(type=type_, actor=current_actor(), payload=payload, tenant=tenant)])
