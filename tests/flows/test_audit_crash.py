"""Invariant I7 under SIGKILL: a state change and its audit entry commit together, or neither does.

A real process issues grants (core transaction: grant row + ``grant.issued`` entry) and creates
enrollment codes (business transaction: code row + outbox row, then drained into the core log)
in a loop, and is killed with SIGKILL at random moments, three times, on SQLite and PostgreSQL.
Afterwards every grant has exactly one entry and every entry its grant; every enrollment code
has exactly one ``enrollment.code_created`` entry once the outbox is drained (never two, even
when the kill fell between the core append and the outbox delete); and the log verifies.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gli_core.audit.verify import verify_log
from server import audit
from tests.support.app import open_tombola, seed
from tests.support.postgres import DbUrls

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from server import audit
    from server.context import Tombola
    from server.enrollment import service as enrollment
    from tests.support.app import make_settings
    from tests.support.postgres import DbUrls

    home, core, business, raffle, venue = sys.argv[1:6]
    app = Tombola.open(make_settings(Path(home), DbUrls(core, business, "x")))
    print("ready", flush=True)
    n = 0
    while True:
        app.core.issue_grant(raffle, f"dev-{n % 7}", numbers=3, enforce_cap=False)
        enrollment.create_enrollment_code(app, venue)
        if n % 3 == 0:
            audit.drain(app)
        n += 1
    """
)


def test_kill_9_never_separates_a_change_from_its_audit_entry(db_backend: DbUrls, tmp_path: Path) -> None:
    home = tmp_path / "var"
    app = open_tombola(home, db_backend)
    s = seed(app, numbers=10_000_000)
    app.close()
    rng = random.Random(7)
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(home), db_backend.core, db_backend.business, s.raffle_id, s.venue_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready", proc.stderr.read()  # type: ignore[union-attr]
        time.sleep(rng.uniform(0.3, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

    app = open_tombola(home, db_backend)
    try:
        audit.drain(app)
        assert audit.pending(app) == 0
        core = create_engine(db_backend.core)
        business = create_engine(db_backend.business)
        with core.connect() as conn:
            grants = set(
                conn.execute(text("SELECT id FROM core_grant WHERE raffle_id = :r"), {"r": s.raffle_id}).scalars()
            )
            issued = Counter(
                json.loads(d)["payload"]["grant_id"]
                for d in conn.execute(text("SELECT data FROM core_audit_entry WHERE type = 'grant.issued'")).scalars()
            )
            created = [
                json.loads(d)["payload"]["code_sha256"]
                for d in conn.execute(
                    text("SELECT data FROM core_audit_entry WHERE type = 'enrollment.code_created'")
                ).scalars()
            ]
        with business.connect() as conn:
            codes = [h[:16] for h in conn.execute(text("SELECT code_hash FROM enrollment_code")).scalars()]
        core.dispose()
        business.dispose()
        assert len(grants) > 10, "the worker made too little progress to test anything"
        assert set(issued) == grants and max(issued.values()) == 1
        assert sorted(created) == sorted(codes) and len(set(created)) == len(created)
        log = app.core.audit
        report = verify_log(((d, h) for _, d, h in log.iter_entries()), [], [])
        assert report.ok and report.entries == log.size()
    finally:
        app.close()
