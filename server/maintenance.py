"""Background upkeep of a serving process: drain the audit outbox, checkpoint, ship.

``tombola serve`` runs one :class:`AuditUpkeep` thread per process. Each tick (one second) it
drains the business outbox into the core's audit log; when a checkpoint is due (entries since
the last one and ``TOMBOLA_AUDIT_CHECKPOINT_S`` elapsed) it signs one; and a
:class:`~gli_core.audit.shipper.BackgroundShipper` ships sealed segments and checkpoints to the
archive every ``TOMBOLA_AUDIT_SHIP_S``. Several processes may run it at once: draining and
checkpointing are idempotent (unique source ids, one checkpoint per tree size) and shipping
checks each object's digest before writing it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from server import audit
from server.context import Tombola

log = logging.getLogger("tombola.upkeep")


class AuditUpkeep:
    def __init__(self, app: Tombola, tick_s: float = 1.0) -> None:
        self.app = app
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tombola-audit-upkeep", daemon=True)
        self._shipper: Any = None

    def start(self) -> AuditUpkeep:
        config = self.app.core.audit_config
        if self.app.core.audit_stores():
            self._shipper = self.app.core.audit_shipper().run_in_background(config.ship_interval_s)
        self._thread.start()
        return self

    def tick(self) -> None:
        audit.drain(self.app)
        core_audit = self.app.core.audit
        if core_audit.signer is not None and core_audit.checkpoint_due(
            int(self.app.core.audit_config.checkpoint_interval_s * 1000)
        ):
            core_audit.checkpoint("interval")

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:  # keep running: the next tick retries; the log is the source of truth
                log.exception("audit upkeep failed; retrying next tick")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._shipper is not None:
            self._shipper.stop()
