"""I1 across processes: two real server processes on one PostgreSQL, 60 concurrent grant
requests (admin extensions and enrollments), and no number is ever in two grants."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from server.enrollment import service as enrollment
from sync_protocol.messages import EnrollmentRequest
from sync_protocol.signing import SoftwareSigner, b64u_encode
from tests.support.app import ADMIN_TOKEN, open_tombola, seed
from tests.support.postgres import DbUrls, create_pg_database, drop_pg_database
from tests.support.processes import running_server, server_env

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_concurrent_grants_across_two_processes_never_overlap(pg_admin_dsn: str, tmp_path: Path) -> None:
    urls = DbUrls(
        core=create_pg_database(pg_admin_dsn, "mp_core"),
        business=create_pg_database(pg_admin_dsn, "mp_business"),
        backend="postgresql",
    )
    try:
        app = open_tombola(tmp_path / "var", urls)
        seeded = seed(app, grant_size=100)
        devices = []
        for _ in range(5):
            signer = SoftwareSigner.generate()
            code = enrollment.create_enrollment_code(app, seeded.venue_id)["code"]
            req = EnrollmentRequest(code=code, public_key=b64u_encode(signer.public_key)).signed_by(signer)
            devices.append(enrollment.enroll(app, req).device_id)
        codes = [enrollment.create_enrollment_code(app, seeded.venue_id)["code"] for _ in range(20)]
        env = server_env(tmp_path / "var", urls.core, urls.business)
        with running_server(env) as a, running_server(env) as b:

            def extend(i: int) -> int:
                r = httpx.post(
                    f"{(a, b)[i % 2]}/v1/admin/devices/{devices[i % 5]}/extend",
                    json={"raffle_id": seeded.raffle_id, "numbers": 7 + i % 13, "reason": "load test"},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                    timeout=30,
                )
                return r.status_code

            def enrol(i: int) -> int:
                signer = SoftwareSigner.generate()
                req = EnrollmentRequest(code=codes[i], public_key=b64u_encode(signer.public_key)).signed_by(signer)
                return httpx.post(f"{(a, b)[i % 2]}/v1/devices/enroll", json=req.to_dict(), timeout=30).status_code

            with ThreadPoolExecutor(max_workers=16) as pool:
                futures = [pool.submit(extend, i) for i in range(40)] + [pool.submit(enrol, i) for i in range(20)]
                statuses = [f.result() for f in futures]
        assert statuses.count(201) == 60, statuses
        grants = sorted(
            (g.grant.first_number, g.grant.last_number)
            for g in app.core.grants(raffle_id=seeded.raffle_id, status=None)
        )
        assert len(grants) == 5 + 40 + 20
        for (_, last), (first, _) in itertools.pairwise(grants):
            assert first == last + 1, "grants overlap or leave a hole"
        app.close()
    finally:
        drop_pg_database(pg_admin_dsn, "mp_core")
        drop_pg_database(pg_admin_dsn, "mp_business")


def test_two_processes_execute_one_draw(pg_admin_dsn: str, tmp_path: Path) -> None:
    """Concurrent execute requests to two server processes on one PostgreSQL: one draw."""
    urls = DbUrls(
        core=create_pg_database(pg_admin_dsn, "mpd_core"),
        business=create_pg_database(pg_admin_dsn, "mpd_business"),
        backend="postgresql",
    )
    try:
        app = open_tombola(tmp_path / "var", urls)
        seeded = seed(app)
        tickets = app.core.generate_tickets(seeded.raffle_id, 50, amount_cents=5000)
        assert len(tickets) == 50
        from server.raffles import service as raffles

        raffles.close_raffle(app, seeded.raffle_id)
        app.core.draw_initiate(seeded.raffle_id)
        env = server_env(tmp_path / "var", urls.core, urls.business)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with running_server(env) as a, running_server(env) as b:

            def execute(i: int) -> dict:  # type: ignore[type-arg]
                r = httpx.post(
                    f"{(a, b)[i % 2]}/core/draw/execute",
                    json={"raffle_id": seeded.raffle_id},
                    headers=headers,
                    timeout=60,
                )
                assert r.status_code == 200, r.text
                return r.json()  # type: ignore[no-any-return]

            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(execute, range(8)))
        assert all(r == results[0] for r in results)
        assert app.core.draw_status(seeded.raffle_id)["state"] == "DRAWN"
        app.close()
    finally:
        drop_pg_database(pg_admin_dsn, "mpd_core")
        drop_pg_database(pg_admin_dsn, "mpd_business")
