"""Ingest benchmark: N devices x M sales through the real HTTP sync endpoint.

What it does, in order (progress on stderr, one JSON object as the last line of stdout):

1. Set-up (not timed): fresh databases (PostgreSQL ``tombola_bench_core`` and
   ``tombola_bench_business``, dropped first if they exist; or two SQLite files with
   ``--db sqlite``), a temporary ``TOMBOLA_HOME``, ``tombola init`` through the real CLI, then
   in-process: a venue, a raffle whose number space covers every device's grants, and one
   enrollment code per device.
2. ``tombola serve --workers W`` as a subprocess (the real uvicorn server), waited for on
   ``/healthz``.
3. Every device enrols over HTTP (Ed25519 key, signed request) and verifies its grant.
4. Every device's sales (one ticket each, quantity 1 at the raffle's price) and signed batches
   are built before the clock starts, on all cores: building them is the devices' cost, not
   the server's. The builder here uses :mod:`sync_protocol` directly (it does not import the
   tests); its records are checked against the protocol's own models first.
5. Timed: ``--clients`` concurrent clients post the batches (each device's in order, over
   keep-alive connections) and check every ack (``acked_seq``, ``applied``, nothing rejected).
   ``tickets_per_s`` = tickets / upload wall time.
6. The core must then hold exactly devices x sales tickets, or the benchmark fails.
7. Reference, same run, same database server: the same ticket rows (read back from the core)
   are COPYed (psycopg ``cursor.copy(...)`` + ``write_row``) into a fresh table made with
   ``CREATE TABLE ... (LIKE core_ticket INCLUDING ALL)``: same columns, primary key,
   ``UNIQUE(raffle_id, number)`` and sale_id index, empty at the start like the core's table.
   ``copy_rows_per_s`` = rows / (COPY + commit time). With ``--db sqlite`` there is no COPY:
   the reference is one ``executemany`` INSERT transaction into a same-shaped SQLite table
   (same DDL, WAL, ``synchronous=FULL``, as the server runs), still reported as
   ``copy_rows_per_s``.
8. Peer, with ``--peer`` only, same run, after the server above has stopped: pouchdb-server
   (the npm package pinned in ``bench/peer/package.json`` and its lock file; ``npm ci`` into
   ``bench/peer/node_modules`` first if it is not there) on a free loopback port, LevelDB in a
   temporary folder (``--peer-store memory``: its in-memory store), its log in a file. The same
   sales, one CouchDB document each (``_id`` = the sale id, then every field of the record),
   in the same batches, posted by the same upload loop (same ``--clients``, each device's
   batches in order) to ``POST /sales/_bulk_docs``; every answer must be 201 with ``ok`` for
   each document, and the database must then hold exactly devices x sales documents.
   ``peer_docs_per_s`` = documents / upload wall time. The peer is stopped at the end, also on
   error. Without ``--peer`` nothing is said about a peer (its keys are null).
9. Clean-up: the server process group is stopped, the bench databases dropped.

``ratio`` = tickets_per_s / copy_rows_per_s (target >= 0.25, stretch 0.5);
``ratio_vs_peer`` = tickets_per_s / peer_docs_per_s, both measured in this run.

Usage::

    .venv/bin/python bench/ingest.py                       # 1,000 devices x 1,000 sales, PostgreSQL
    .venv/bin/python bench/ingest.py --devices 20 --sales 200
    .venv/bin/python bench/ingest.py --db sqlite --devices 100 --sales 500
    .venv/bin/python bench/ingest.py --devices 100 --sales 1000 --peer   # and pouchdb-server
    .venv/bin/python bench/ingest.py --py-spy /tmp/ingest.svg   # sample the server while timed

``TOMBOLA_BENCH_SIZE=small`` (what ``make bench`` sets) makes the defaults 20 x 200.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import queue
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import uuid6
from psycopg import sql
from sqlalchemy.engine import make_url

from sync_protocol.canonical import domain_bytes
from sync_protocol.chain import verify_chain
from sync_protocol.messages import GENESIS_HASH, EnrollmentRequest, EnrollmentResponse, SyncBatch, parse_record
from sync_protocol.signing import KeyRing, PublicKey, SoftwareSigner, b64u_encode

DEFAULT_PG_DSN = "postgresql+psycopg://tombola_test:tombola_test@127.0.0.1:5432/"
CORE_DB = "tombola_bench_core"
BUSINESS_DB = "tombola_bench_business"
REFERENCE_TABLE = "bench_copy_ticket"
PEER_DIR = Path(__file__).resolve().parent / "peer"  # package.json + package-lock.json of the peer
PEER_PACKAGE = "pouchdb-server"
PEER_DB = "sales"
TARGET_RATIO = 0.25
STRETCH_RATIO = 0.5
TOMBOLA = str(Path(sys.executable).with_name("tombola"))
_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[ingest {time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


class BenchFailure(Exception):
    """The run is wrong (not merely slow): a refused batch, a bad ack, a missing ticket."""


# -- options -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    small = os.environ.get("TOMBOLA_BENCH_SIZE", "").lower() == "small"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=20 if small else 1000, help="devices (default 1000)")
    p.add_argument("--sales", type=int, default=200 if small else 1000, help="sales per device, one ticket each")
    p.add_argument("--batch", type=int, default=500, help="records per sync request (default 500, max 1000)")
    p.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--workers", type=int, default=None, help="uvicorn server processes (default 2; 1 for sqlite)")
    p.add_argument("--clients", type=int, default=4, help="concurrent uploading clients (default 4)")
    p.add_argument(
        "--pg-dsn",
        default=os.environ.get("TOMBOLA_TEST_PG_DSN") or DEFAULT_PG_DSN,
        help="SQLAlchemy URL base of the PostgreSQL server (default $TOMBOLA_TEST_PG_DSN)",
    )
    p.add_argument(
        "--py-spy",
        metavar="OUT",
        default=None,
        help="sample the server with py-spy while timed "
        "(.svg flame graph, .txt collapsed stacks, .json speedscope); needs py-spy on PATH or $PY_SPY;\n"
        "$PY_SPY_ARGS adds options, e.g. --gil (only threads holding the GIL: Python CPU)",
    )
    p.add_argument(
        "--peer",
        action="store_true",
        help="also measure pouchdb-server's _bulk_docs ingest of the same sales in this run\n"
        "(installs bench/peer/node_modules with npm ci if absent; needs node and npm)",
    )
    p.add_argument(
        "--peer-store",
        choices=("leveldb", "memory"),
        default="leveldb",
        help="the peer's store: LevelDB in a temporary folder (its default), or in memory",
    )
    p.add_argument("--out", metavar="FILE", default=None, help="also write the JSON result to FILE")
    p.add_argument("--keep", action="store_true", help="keep the databases and TOMBOLA_HOME (for inspection)")
    args = p.parse_args(argv)
    if args.workers is None:
        args.workers = 1 if args.db == "sqlite" else 2
    if args.db == "sqlite" and args.workers != 1:
        p.error("--db sqlite runs one server process (--workers 1)")
    if not 1 <= args.batch <= 1000:
        p.error("--batch must be 1..1000 (the protocol's MAX_BATCH_RECORDS)")
    if args.devices < 1 or args.sales < 1 or args.clients < 1:
        p.error("--devices, --sales and --clients must be positive")
    return args


# -- databases -----------------------------------------------------------------------------------


def pg_conninfo(dsn: str, database: str) -> str:
    """A libpq conninfo for ``database`` on the server of the SQLAlchemy URL ``dsn``."""
    url = make_url(dsn).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


def sa_url(dsn: str, database: str) -> str:
    return make_url(dsn).set(database=database).render_as_string(hide_password=False)


def pg_recreate(dsn: str, names: Sequence[str], *, drop_only: bool = False) -> None:
    with psycopg.connect(pg_conninfo(dsn, "postgres"), autocommit=True, connect_timeout=5) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            if not drop_only:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# -- set-up --------------------------------------------------------------------------------------


@dataclass
class Install:
    home: Path
    env: dict[str, str]
    raffle_id: str
    amount_cents: int
    currency: str
    codes: list[str]


def set_up(args: argparse.Namespace, home: Path, core_url: str, business_url: str) -> Install:
    grant_size = max(args.sales, 1)
    # Each device holds its initial grant and, once it has used 80 % of it, one top-up: the
    # number space covers two grants per device with room to spare.
    number_space = args.devices * grant_size * 3 + 10 * grant_size
    env = dict(os.environ)
    env.update(
        TOMBOLA_HOME=str(home),
        TOMBOLA_GRANT_SIZE=str(grant_size),
        TOMBOLA_MAX_NUMBERS_PER_DEVICE=str(max(10_000, 4 * grant_size)),
    )
    if core_url:
        env.update(TOMBOLA_CORE_DB_URL=core_url, TOMBOLA_BUSINESS_DB_URL=business_url)
    else:
        env.pop("TOMBOLA_CORE_DB_URL", None)
        env.pop("TOMBOLA_BUSINESS_DB_URL", None)
    out = subprocess.run([TOMBOLA, "init", "--json"], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BenchFailure(f"tombola init failed: {out.stderr.strip()}")
    log(f"tombola init: {json.loads(out.stdout)['home']}")

    # In-process from here (the same services the CLI calls; one process is much faster than
    # one CLI process per enrollment code).
    from server.config import Settings
    from server.context import Tombola
    from server.enrollment import service as enrollment
    from server.raffles import service as raffles

    settings = Settings(
        home=home,
        core_db_url=core_url,
        business_db_url=business_url,
        grant_size=grant_size,
        max_numbers_per_device=int(env["TOMBOLA_MAX_NUMBERS_PER_DEVICE"]),
    )
    app = Tombola.open(settings)
    try:
        venue = raffles.create_venue(app, "Bench Hall")
        raffle = raffles.create_raffle(
            app,
            raffles.RaffleCreate(
                venue_id=venue["id"],
                name="Bench 50/50",
                price_cents=500,
                number_space=number_space,
                sales_close_at_ms=app.now_ms() + 24 * 3600 * 1000,
                grant_size=grant_size,
            ),
        )
        price = {p["quantity"]: p["amount_cents"] for p in raffle["price_points"]}[1]
        codes = [enrollment.create_enrollment_code(app, venue["id"])["code"] for _ in range(args.devices)]
    finally:
        app.close()
    log(
        f"venue {venue['id']}, raffle {raffle['id']} ({number_space} numbers, grants of {grant_size}), "
        f"{len(codes)} enrollment codes"
    )
    return Install(home, env, raffle["id"], price, raffle["currency"], codes)


# -- server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes], what: str) -> None:
    """Stop the process group we started (``start_new_session``): TERM, then KILL after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log(f"{what} stopped")


@contextlib.contextmanager
def running_server(env: dict[str, str], workers: int, log_path: Path) -> Iterator[tuple[str, int]]:
    """``tombola serve`` in its own process group; yields (base URL, pid); stops the group after."""
    port = free_port()
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [TOMBOLA, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise BenchFailure(f"the server exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchFailure("the server did not answer /healthz within 60 s")
            time.sleep(0.2)
        log(f"server up on {url} (pid {proc.pid}, {workers} worker(s))")
        yield url, proc.pid
    finally:
        stop_group(proc, "server")


# -- devices -------------------------------------------------------------------------------------


@dataclass
class Device:
    seed: bytes
    device_id: str = ""
    anchor_ms: int = 0
    first_number: int = 0
    bodies: list[bytes] = field(default_factory=list)
    last_seqs: list[int] = field(default_factory=list)


def enroll(client: httpx.Client, device: Device, code: str, raffle_id: str, sales: int) -> None:
    signer = SoftwareSigner.from_seed(device.seed)
    req = EnrollmentRequest(code=code, public_key=b64u_encode(signer.public_key), device_name="bench")
    resp = client.post(
        "/v1/devices/enroll",
        content=orjson.dumps(req.signed_by(signer).to_dict()),
        headers={"content-type": "application/json"},
    )
    if resp.status_code != 201:
        raise BenchFailure(f"enrollment refused ({resp.status_code}): {resp.text[:500]}")
    out = EnrollmentResponse.from_dict(resp.json())
    keys = KeyRing([PublicKey.from_dict(k) for k in out.server_keys])
    grants = [g for g in out.grants if g.raffle_id == raffle_id]
    for g in grants:
        g.verify(keys)
    if not grants or grants[0].size < sales:
        raise BenchFailure(f"device {out.device_id} got no grant of {sales} numbers: {grants}")
    device.device_id, device.anchor_ms, device.first_number = out.device_id, out.server_time_ms, grants[0].first_number


def build_device(job: tuple[bytes, str, int, int, str, int, str, int, int]) -> tuple[list[bytes], list[int]]:
    """Every sale record of one device, chained and sealed, cut into signed batches (JSON bodies).

    Records are built as wire dicts and hashed with :func:`sync_protocol.canonical.domain_bytes`,
    exactly what ``SaleRecord.compute_hash`` does; :func:`check_builder` proves the two agree.
    """
    seed, device_id, anchor_ms, first_number, raffle_id, amount, currency, sales, batch = job
    signer = SoftwareSigner.from_seed(seed)
    head = GENESIS_HASH
    records: list[dict[str, Any]] = []
    for i in range(sales):
        elapsed = 1000 + 10 * i
        rec: dict[str, Any] = {
            "sale_id": str(uuid6.uuid7()),
            "device_id": device_id,
            "seq": i + 1,
            "raffle_id": raffle_id,
            "seller_id": "s1",
            "device_time_ms": anchor_ms + elapsed,
            "anchor_ms": anchor_ms,
            "elapsed_ms": elapsed,
            "prev_hash": head,
            "kind": "sale",
            "numbers": [first_number + i],
            "amount_cents": amount,
            "currency": currency,
            "payment": {"method": "cash"},
        }
        head = rec["hash"] = hashlib.sha256(domain_bytes("record", rec)).hexdigest()
        records.append(rec)
    bodies: list[bytes] = []
    last_seqs: list[int] = []
    for start in range(0, sales, batch):
        chunk = records[start : start + batch]
        header = SyncBatch(
            device_id=device_id,
            first_seq=chunk[0]["seq"],
            last_seq=chunk[-1]["seq"],
            prev_hash=chunk[0]["prev_hash"],
            head_hash=chunk[-1]["hash"],
            sent_at_ms=anchor_ms + 1000 + 10 * sales,
        ).signed_by(signer)  # no records: signing the header costs what it costs a device
        bodies.append(orjson.dumps(header.to_dict() | {"records": chunk}))
        last_seqs.append(chunk[-1]["seq"])
    return bodies, last_seqs


def check_builder(device: Device) -> None:
    """The bench's records and batches are what the protocol's models make and the server checks."""
    signer = SoftwareSigner.from_seed(device.seed)
    body = orjson.loads(device.bodies[0])
    batch = SyncBatch.from_dict(body)
    batch.verify(signer.public_key)
    head = verify_chain(batch.records, device_id=device.device_id, prev_seq=0, prev_hash=GENESIS_HASH)
    if head != batch.head_hash:
        raise BenchFailure("the bench's batch head hash does not match its records")
    rec = body["records"][0]
    model = parse_record(rec)
    if model.to_dict() != rec or model.compute_hash() != rec["hash"]:
        raise BenchFailure("the bench's record dicts differ from sync_protocol's SaleRecord wire form")


# -- upload --------------------------------------------------------------------------------------


def check_sync_ack(device: Device, first: int, last: int, resp: httpx.Response) -> None:
    """Tombola's answer to one batch: 200, every record applied up to ``last``, nothing rejected."""
    if resp.status_code != 200:
        raise BenchFailure(
            f"sync of {device.device_id} {first}..{last} refused ({resp.status_code}): {resp.text[:500]}"
        )
    ack = orjson.loads(resp.content)
    if ack["acked_seq"] != last or ack["applied"] != last - first + 1 or ack["rejected"]:
        raise BenchFailure(
            f"bad ack for {device.device_id} {first}..{last}: "
            f"acked_seq={ack['acked_seq']} applied={ack['applied']} "
            f"rejected={ack['rejected'][:3]}"
        )


def upload(
    url: str,
    devices: list[Device],
    clients: int,
    total_records: int,
    *,
    path: str = "/v1/sync",
    check: Callable[[Device, int, int, httpx.Response], None] = check_sync_ack,
) -> tuple[float, list[float]]:
    """Post every batch to ``path``; each device's batches in order on one client; ``check`` judges
    each answer (raises :class:`BenchFailure`). Returns (wall s, latencies)."""
    work: queue.Queue[Device] = queue.Queue()
    for d in devices:
        work.put(d)
    latencies: list[float] = []
    errors: list[BaseException] = []
    done = [0]
    lock = threading.Lock()

    def client_loop() -> None:
        mine: list[float] = []
        try:
            with httpx.Client(base_url=url, timeout=600) as client:
                while not errors:
                    try:
                        device = work.get_nowait()
                    except queue.Empty:
                        break
                    first = 1
                    for body, last in zip(device.bodies, device.last_seqs, strict=True):
                        t = time.perf_counter()
                        resp = client.post(path, content=body, headers={"content-type": "application/json"})
                        mine.append(time.perf_counter() - t)
                        check(device, first, last, resp)
                        with lock:
                            done[0] += last - first + 1
                        first = last + 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=5)
        if any(t.is_alive() for t in threads):
            elapsed = time.perf_counter() - start
            log(f"  uploaded {done[0]}/{total_records} tickets, {done[0] / elapsed:,.0f}/s")
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return wall, latencies


# -- peer (--peer) -------------------------------------------------------------------------------


@dataclass
class Peer:
    node: str
    script: Path
    version: str
    node_version: str


def install_peer() -> Peer:
    """pouchdb-server as pinned in bench/peer (``npm ci`` from the lock file if not installed yet).

    ``--ignore-scripts``: the only install scripts are leveldown's (which loads the prebuilt
    binary it ships) and sqlite3's (``--sqlite``, which the bench does not use).
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node:
        raise BenchFailure("--peer needs node (Node.js 18 or later) on PATH")
    package = PEER_DIR / "node_modules" / PEER_PACKAGE / "package.json"
    if not package.exists():
        if not npm:
            raise BenchFailure("--peer needs npm on PATH to install pouchdb-server into bench/peer/node_modules")
        log(f"installing the peer: npm ci in {PEER_DIR}")
        out = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel", "error"],
            cwd=PEER_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0 or not package.exists():
            raise BenchFailure(f"npm ci in {PEER_DIR} failed ({out.returncode}):\n{(out.stdout + out.stderr)[-3000:]}")
    version = json.loads(package.read_text())["version"]
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return Peer(node, package.parent / "bin" / PEER_PACKAGE, version, node_version)


@contextlib.contextmanager
def running_peer(peer: Peer, store: str, workdir: Path) -> Iterator[tuple[str, int]]:
    """pouchdb-server in its own process group on a free loopback port, database ``sales`` created;
    yields (server URL, pid); stops the group after, also on error. Its log (requests at its
    default level, like ``tombola serve``'s access log) goes to ``workdir/log.txt``, never to
    our terminal."""
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps({"log": {"file": str(workdir / "log.txt")}}))
    port = free_port()
    cmd = [
        peer.node,
        str(peer.script),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(workdir / "data"),
        "--config",
        str(workdir / "config.json"),
        "--no-stdout-logs",
        "--no-color",
    ]
    if store == "memory":
        cmd.append("--in-memory")
    with open(workdir / "stdout.txt", "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                tail = (workdir / "stdout.txt").read_text(errors="replace")[-3000:]
                raise BenchFailure(f"pouchdb-server exited ({proc.returncode}):\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchFailure("pouchdb-server did not answer GET / within 60 s")
            time.sleep(0.2)
        resp = httpx.put(f"{url}/{PEER_DB}", timeout=30)
        if resp.status_code != 201:
            raise BenchFailure(f"pouchdb-server refused to create {PEER_DB} ({resp.status_code}): {resp.text[:500]}")
        log(f"peer: pouchdb-server {peer.version} ({store}) on node {peer.node_version}, {url} (pid {proc.pid})")
        yield url, proc.pid
    finally:
        stop_group(proc, "peer")


def peer_device(device: Device) -> Device:
    """The same device with its batches as ``_bulk_docs`` bodies: one document per record, ``_id``
    the sale id, then every field of the record as the device signed it (the batch header, i.e.
    the signature, has no place in a CouchDB document and is left out)."""
    bodies = [
        orjson.dumps({"docs": [{"_id": r["sale_id"], **r} for r in orjson.loads(body)["records"]]})
        for body in device.bodies
    ]
    return Device(device.seed, device.device_id, bodies=bodies, last_seqs=device.last_seqs)


def check_bulk_docs(device: Device, first: int, last: int, resp: httpx.Response) -> None:
    """The peer's answer to one batch: 201, one ``ok`` result per document, in order."""
    if resp.status_code != 201:
        raise BenchFailure(
            f"_bulk_docs of {device.device_id} {first}..{last} refused ({resp.status_code}): {resp.text[:500]}"
        )
    results = orjson.loads(resp.content)
    bad = [r for r in results if not r.get("ok")]
    if len(results) != last - first + 1 or bad:
        raise BenchFailure(
            f"bad _bulk_docs answer for {device.device_id} {first}..{last}: {len(results)} results, {bad[:3]}"
        )


def peer_doc_count(db_url: str) -> int:
    return int(httpx.get(db_url, timeout=60).json()["doc_count"])


# -- reference -----------------------------------------------------------------------------------


def count_tickets_pg(dsn: str) -> int:
    with psycopg.connect(pg_conninfo(dsn, CORE_DB)) as conn:
        row = conn.execute("SELECT count(*) FROM core_ticket").fetchone()
        return int(row[0]) if row else 0


def reference_pg(dsn: str) -> tuple[int, float, str]:
    """COPY the core's ticket rows into an empty table shaped like core_ticket; (rows, s, method)."""
    with psycopg.connect(pg_conninfo(dsn, CORE_DB)) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(REFERENCE_TABLE)))
        table = sql.Identifier(REFERENCE_TABLE)
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE core_ticket INCLUDING ALL)").format(table))
        indexes = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", (REFERENCE_TABLE,)
        ).fetchall()
        conn.commit()
        cur = conn.execute("SELECT * FROM core_ticket ORDER BY recorded_at_ms, id")
        columns = [c.name for c in cur.description or ()]
        rows = cur.fetchall()
        conn.commit()
    names = "; ".join(i[0].split(" ON ")[0] for i in indexes)
    log(f"reference table {REFERENCE_TABLE}: {len(indexes)} indexes ({names})")
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(REFERENCE_TABLE), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with psycopg.connect(pg_conninfo(dsn, CORE_DB)) as conn:
        oids: dict[str, int] = dict(
            conn.execute(
                "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                (REFERENCE_TABLE,),
            ).fetchall()
        )
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            copy.set_types([oids[c] for c in columns])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - start
        copied = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(REFERENCE_TABLE))).fetchone()
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(REFERENCE_TABLE)))
        conn.commit()
    if not copied or copied[0] != len(rows):
        raise BenchFailure(f"the reference COPY holds {copied} rows, not {len(rows)}")
    return len(rows), elapsed, "psycopg COPY FROM STDIN (binary, write_row), one transaction"


def reference_sqlite(core_db: Path, scratch: Path) -> tuple[int, float, str]:
    """One executemany INSERT transaction into a same-shaped table in a fresh SQLite file."""
    src = sqlite3.connect(core_db)
    ddl = [
        r[0]
        for r in src.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'core_ticket' AND sql IS NOT NULL ORDER BY type DESC"
        )
    ]  # the table first ("table" > "index"), then its explicit indexes
    cur = src.execute("SELECT * FROM core_ticket ORDER BY recorded_at_ms, id")
    columns = [c[0] for c in cur.description]
    rows = cur.fetchall()
    src.close()
    dst = sqlite3.connect(scratch, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        dst.execute(f"PRAGMA {pragma}")
    for stmt in ddl:
        dst.execute(stmt.replace("core_ticket", REFERENCE_TABLE))
    insert = f"INSERT INTO {REFERENCE_TABLE} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    start = time.perf_counter()
    dst.execute("BEGIN IMMEDIATE")
    dst.executemany(insert, rows)
    dst.execute("COMMIT")
    elapsed = time.perf_counter() - start
    copied = dst.execute(f"SELECT count(*) FROM {REFERENCE_TABLE}").fetchone()[0]
    dst.close()
    if copied != len(rows):
        raise BenchFailure(f"the reference table holds {copied} rows, not {len(rows)}")
    return len(rows), elapsed, "sqlite3 executemany INSERT, one transaction (WAL, synchronous=FULL)"


# -- CPU accounting ------------------------------------------------------------------------------
# The machine is shared (2 cores; other sessions run tests): CPU seconds per ticket of the server
# and of our PostgreSQL backends say more than wall time alone, and "other_cpu_s" shows the noise.

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(process group id, user+system CPU seconds) of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICK


def _machine_busy_s() -> float:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICK


class CpuMeter:
    """CPU seconds, while the block runs, of the server's process group, our PostgreSQL processes
    (backends of the bench databases, parallel workers included, and PostgreSQL's background
    processes), this process, and the whole machine.

    Processes are sampled every 0.5 s and each one's last reading counts, so a parallel worker
    that lives less than that may be missed: the PostgreSQL figure is a lower bound.
    """

    def __init__(self, server_pgid: int, dsn: str | None) -> None:
        self.pgid, self.dsn = server_pgid, dsn
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._last: dict[str, dict[int, float]] = {"server": {}, "pg": {}}

    def _pg_pids(self) -> set[int]:
        if self._conn is None:
            return set()
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) OR backend_type <> 'client backend'",
            ([CORE_DB, BUSINESS_DB],),
        ).fetchall()
        return {r[0] for r in rows}

    def _sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                st = _proc_stat(int(entry.name))
                if st and st[0] == self.pgid:
                    self._last["server"][int(entry.name)] = st[1]
        for pid in self._pg_pids():
            if st := _proc_stat(pid):
                self._last["pg"][pid] = st[1]

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):
                self._sample()

    def __enter__(self) -> CpuMeter:
        if self.dsn:
            with contextlib.suppress(psycopg.Error):
                self._conn = psycopg.connect(pg_conninfo(self.dsn, "postgres"), autocommit=True)
        self._sample()
        self.start = {kind: dict(pids) for kind, pids in self._last.items()}
        own = os.times()
        self.start_own, self.start_machine = own.user + own.system, _machine_busy_s()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(Exception):
            self._sample()
        if self._conn is not None:
            self._conn.close()
        own = os.times()

        def spent(kind: str) -> float:
            return sum(v - self.start[kind].get(pid, 0.0) for pid, v in self._last[kind].items())

        self.server_s = spent("server")
        self.pg_s = spent("pg")
        self.client_s = own.user + own.system - self.start_own
        self.machine_s = _machine_busy_s() - self.start_machine
        self.other_s = max(0.0, self.machine_s - self.server_s - self.pg_s - self.client_s)


# -- profiler ------------------------------------------------------------------------------------


@contextlib.contextmanager
def py_spy(out: str | None, pid: int) -> Iterator[None]:
    """Sample the server (and its worker subprocesses) with py-spy while the block runs."""
    if not out:
        yield
        return
    exe = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not exe:
        raise BenchFailure("--py-spy needs py-spy on PATH or $PY_SPY (pip install py-spy)")
    fmt = {".txt": "raw", ".json": "speedscope"}.get(Path(out).suffix, "flamegraph")
    proc = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            "100",
            "--format",
            fmt,
            "-o",
            out,
            *shlex.split(os.environ.get("PY_SPY_ARGS", "")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # let it attach
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        log(f"py-spy wrote {out}" if Path(out).exists() else f"py-spy failed: {err.decode()[-500:]}")


# -- main ----------------------------------------------------------------------------------------


def p99(sorted_values: list[float]) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(0.99 * len(sorted_values)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    total = args.devices * args.sales
    log(
        f"{args.devices} devices x {args.sales} sales = {total} tickets, batches of {args.batch}, "
        f"db {args.db}, {args.workers} server worker(s), {args.clients} client(s)"
    )
    peer = install_peer() if args.peer else None  # before the long part: a failed install fails fast
    tmp = Path(tempfile.mkdtemp(prefix="tombola-bench-"))
    home = tmp / "home"
    pg = args.db == "postgresql"
    try:
        if pg:
            try:
                pg_recreate(args.pg_dsn, [CORE_DB, BUSINESS_DB])
            except psycopg.OperationalError as exc:
                raise BenchFailure(
                    f"PostgreSQL is not reachable ({exc}); run `bash scripts/pg-setup.sh` or use --db sqlite"
                ) from exc
            core_url, business_url = sa_url(args.pg_dsn, CORE_DB), sa_url(args.pg_dsn, BUSINESS_DB)
        else:
            core_url = business_url = ""  # the embedded default: home/core.db and home/business.db
        setup_start = time.perf_counter()
        inst = set_up(args, home, core_url, business_url)
        setup_s = time.perf_counter() - setup_start

        with running_server(inst.env, args.workers, tmp / "server.log") as (url, pid):
            devices = [Device(seed=os.urandom(32)) for _ in range(args.devices)]
            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool, httpx.Client(base_url=url, timeout=120) as client:
                list(
                    pool.map(
                        lambda dc: enroll(client, dc[0], dc[1], inst.raffle_id, args.sales),
                        zip(devices, inst.codes, strict=True),
                    )
                )
            enroll_s = time.perf_counter() - start
            log(f"{len(devices)} devices enrolled in {enroll_s:.1f} s")

            start = time.perf_counter()
            jobs = [
                (
                    d.seed,
                    d.device_id,
                    d.anchor_ms,
                    d.first_number,
                    inst.raffle_id,
                    inst.amount_cents,
                    inst.currency,
                    args.sales,
                    args.batch,
                )
                for d in devices
            ]
            with ProcessPoolExecutor(os.cpu_count() or 1) as procs:
                for d, (bodies, last_seqs) in zip(devices, procs.map(build_device, jobs, chunksize=8), strict=True):
                    d.bodies, d.last_seqs = bodies, last_seqs
            check_builder(devices[0])
            build_s = time.perf_counter() - start
            n_requests = sum(len(d.bodies) for d in devices)
            mib = sum(len(b) for d in devices for b in d.bodies) / 2**20
            log(f"built {total} signed records in {n_requests} batches ({mib:.0f} MiB of JSON) in {build_s:.1f} s")

            log("uploading (timed)")
            load = os.getloadavg()[0]
            with CpuMeter(pid, args.pg_dsn if pg else None) as cpu, py_spy(args.py_spy, pid):
                upload_s, latencies = upload(url, devices, args.clients, total)
            tickets_per_s = total / upload_s
            log(f"uploaded {total} tickets in {upload_s:.2f} s: {tickets_per_s:,.0f} tickets/s")
            log(
                f"CPU while timed: server {cpu.server_s:.1f} s, PostgreSQL {cpu.pg_s:.1f} s, clients "
                f"{cpu.client_s:.1f} s, other processes {cpu.other_s:.1f} s of {cpu.machine_s:.1f} s busy "
                f"({os.cpu_count()} cores x {upload_s:.1f} s)"
            )
            # Not timed: the same batches as _bulk_docs bodies, for the peer after this server stops.
            peer_devices = [peer_device(d) for d in devices] if peer else []
            del devices, jobs

        if pg:
            held = count_tickets_pg(args.pg_dsn)
        else:
            with contextlib.closing(sqlite3.connect(home / "core.db")) as conn:
                held = conn.execute("SELECT count(*) FROM core_ticket").fetchone()[0]
        if held != total:
            raise BenchFailure(f"the core holds {held} tickets after the upload, not {total}")
        log(f"the core holds exactly {held} tickets")

        log("reference: " + ("COPY of the same rows" if pg else "SQLite executemany of the same rows"))
        if pg:
            rows, copy_s, method = reference_pg(args.pg_dsn)
        else:
            rows, copy_s, method = reference_sqlite(home / "core.db", tmp / "reference.db")
        copy_rows_per_s = rows / copy_s
        log(f"reference: {rows} rows in {copy_s:.2f} s: {copy_rows_per_s:,.0f} rows/s")

        peer_stats: dict[str, Any] = dict.fromkeys(
            (
                "peer",
                "peer_upload_s",
                "peer_docs_per_s",
                "peer_request_p50_ms",
                "peer_request_p99_ms",
                "peer_cpu_us_per_doc",
                "peer_other_cpu_s",
                "ratio_vs_peer",
            )
        )  # all null without --peer: no peer figure unless measured in this run
        if peer is not None:
            with running_peer(peer, args.peer_store, tmp / "peer") as (peer_url, peer_pid):
                log(f"peer: uploading the same {total} sales to /{PEER_DB}/_bulk_docs (timed)")
                with CpuMeter(peer_pid, None) as peer_cpu:
                    peer_s, peer_latencies = upload(
                        peer_url,
                        peer_devices,
                        args.clients,
                        total,
                        path=f"/{PEER_DB}/_bulk_docs",
                        check=check_bulk_docs,
                    )
                peer_docs_per_s = total / peer_s
                log(f"peer: {total} documents in {peer_s:.2f} s: {peer_docs_per_s:,.0f} docs/s")
                log(
                    f"peer CPU while timed: pouchdb-server {peer_cpu.server_s:.1f} s, clients "
                    f"{peer_cpu.client_s:.1f} s, other processes {peer_cpu.other_s:.1f} s"
                )
                docs = peer_doc_count(f"{peer_url}/{PEER_DB}")
                if docs != total:
                    raise BenchFailure(f"the peer holds {docs} documents after the upload, not {total}")
                log(f"the peer holds exactly {docs} documents")
            peer_latencies.sort()
            peer_stats.update(
                peer=f"{PEER_PACKAGE} {peer.version} ({args.peer_store}), node {peer.node_version}",
                peer_upload_s=round(peer_s, 3),
                peer_docs_per_s=round(peer_docs_per_s, 1),
                peer_request_p50_ms=round(1000 * statistics.median(peer_latencies), 1),
                peer_request_p99_ms=round(1000 * p99(peer_latencies), 1),
                peer_cpu_us_per_doc=round(1e6 * peer_cpu.server_s / total, 1),
                peer_other_cpu_s=round(peer_cpu.other_s, 1),
                ratio_vs_peer=round(tickets_per_s / peer_docs_per_s, 3),
            )
        del peer_devices

        latencies.sort()
        ratio = tickets_per_s / copy_rows_per_s
        return {
            "bench": "ingest",
            "db": args.db,
            "devices": args.devices,
            "sales": args.sales,
            "batch": args.batch,
            "workers": args.workers,
            "clients": args.clients,
            "tickets": total,
            "requests": len(latencies),
            "setup_s": round(setup_s, 2),
            "enroll_s": round(enroll_s, 2),
            "build_s": round(build_s, 2),
            "upload_s": round(upload_s, 3),
            "tickets_per_s": round(tickets_per_s, 1),
            "request_p50_ms": round(1000 * statistics.median(latencies), 1),
            "request_p99_ms": round(1000 * p99(latencies), 1),
            "server_cpu_us_per_ticket": round(1e6 * cpu.server_s / total, 1),
            "pg_cpu_us_per_ticket": round(1e6 * cpu.pg_s / total, 1) if pg else None,
            "client_cpu_s": round(cpu.client_s, 1),
            "other_cpu_s": round(cpu.other_s, 1),
            "loadavg_before": round(load, 2),
            "copy_s": round(copy_s, 3),
            "copy_rows_per_s": round(copy_rows_per_s, 1),
            "copy_method": method,
            "ratio": round(ratio, 4),
            "target_ratio": TARGET_RATIO,
            "stretch_ratio": STRETCH_RATIO,
            "meets_target": ratio >= TARGET_RATIO,
            **peer_stats,
        }
    finally:
        if args.keep:
            log(f"kept {tmp}" + (f" and databases {CORE_DB}, {BUSINESS_DB}" if pg else ""))
        else:
            if pg:
                with contextlib.suppress(psycopg.Error):
                    pg_recreate(args.pg_dsn, [CORE_DB, BUSINESS_DB], drop_only=True)
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except BenchFailure as exc:
        log(f"FAILED: {exc}")
        return 1
    line = json.dumps(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
