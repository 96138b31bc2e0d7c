"""Shared pytest fixtures for the whole Tombola test suite.

Keep this file to fixture registrations: write fixtures and helpers in a module under
``tests/support/`` and import them here (listing them in ``__all__``), so that every test
directory sees them and helpers stay importable as ``tests.support.<module>``.

Fixtures available everywhere:

``pg_admin_dsn`` (session)
    SQLAlchemy URL base of the PostgreSQL test server (``TOMBOLA_TEST_PG_DSN``); skips when it
    is unavailable, fails instead when ``CI`` is set. ``make test`` starts and exports it.
``db_backend``
    ``DbUrls(core, business, backend)`` of two fresh empty databases; parametrized so the test
    runs on ``sqlite`` (files in ``tmp_path``) and ``postgresql`` (marked ``postgres``).
    See ``tests/support/postgres.py``, which also has ``create_pg_database()``.

``core_engine``
    An engine on the migrated core database of ``db_backend``.

``tombola``, ``client``, ``clock``, ``seeded``
    The application services over ``db_backend`` with a :class:`FakeClock` (server time),
    a ``TestClient`` of the HTTP app, and a venue + open raffle + enrollment code
    (``tests/support/app.py``).

``hsm_token`` (session, autouse), ``hsm``
    One SoftHSM2 token for the run, exported through ``TOMBOLA_HSM_*`` and ``SOFTHSM2_CONF`` so
    every ``Tombola.open`` and ``tombola`` subprocess finds it; ``hsm`` is an open ``Hsm`` on it
    with a key prefix of its own (``tests/support/hsm.py``).

``moto_server`` (session)
    moto's standalone server (S3, KMS) on a loopback port; ``.client("s3")`` gives a boto3
    client for it; ``tests/support/moto.py`` also has ``TcpCut``, a proxy whose link can be cut.

Markers (declared in pyproject.toml): ``postgres``, ``slow``, ``hsm``, ``kivy``.
"""

from tests.support.app import client, clock, seeded, tombola
from tests.support.hsm import hsm, hsm_token
from tests.support.moto import moto_server
from tests.support.postgres import core_engine, db_backend, pg_admin_dsn

__all__ = [
    "client",
    "clock",
    "core_engine",
    "db_backend",
    "hsm",
    "hsm_token",
    "moto_server",
    "pg_admin_dsn",
    "seeded",
    "tombola",
]
