"""What operators check: the audit log's verification and its latest signed checkpoint, entries of
the log as a role may read them, the system's health and the software identity.

One function per question, called by ``tombola audit verify`` and the portal's audit and health
pages alike (``docs/portal.md``, ``docs/audit-log.md``). Nothing here changes state.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

import gli_core.api
import server
import sync_protocol
from gli_core.api import NoteVerifier, verify_checkpoint_chain, verify_chunks
from server.auth import AUDIT_ROLES, Principal
from server.context import Tombola
from server.db import MIGRATIONS as BUSINESS_MIGRATIONS
from server.errors import Forbidden, InvalidRequest
from sync_protocol.identity import package_digest

#: where the core's Alembic history lives (beside its public module; the server does not import gli_core.db)
CORE_MIGRATIONS = Path(gli_core.api.__file__).parent / "migrations"
#: a checkpoint older than this while entries wait for one is a warning on the health page
CHECKPOINT_STALE_MS = 2 * 3_600_000
#: entries of one page of the audit log (the portal's)
MAX_PAGE = 200
#: the signature lines of a C2SP signed note start with an em dash and a space
_SIGNATURE_PREFIX = "\u2014 "
_SEGMENT_KEY = re.compile(r"segments/([0-9]{12})-([0-9]{12})\.jsonl")
_CHECKPOINT_KEY = re.compile(r"checkpoints/([0-9]{12})\.note")


# --- the audit log -------------------------------------------------------------------------------


def verify_audit(app: Tombola, verifiers: list[NoteVerifier] | None = None) -> dict[str, Any]:
    """Check every entry of the log's database against its signed checkpoints, and each checkpoint
    against the previous one (RFC 9162 consistency): ``tombola audit verify`` without ``--archive``.

    The answer is the verifier's report (``ok``, ``entries``, ``checkpoints``,
    ``latest_checkpoint_size``, ``entries_after_latest_checkpoint``, ``verified_by``, ``failure``)
    with ``source`` ``database``, ``origin``, ``checked_at_ms`` and ``took_ms``.
    """
    started = time.monotonic()
    keys = verifiers if verifiers is not None else app.core.audit_verifiers()
    log = app.core.audit
    notes = [c.note for c in log.checkpoints()]
    report = verify_chunks(log.iter_chunks(), notes, keys, origin=log.origin)
    if report.ok:
        report.failure = verify_checkpoint_chain(notes, keys, log.consistency_proof)
    took = int((time.monotonic() - started) * 1000)
    out: dict[str, Any] = report.to_dict()
    return out | {"source": "database", "origin": log.origin, "checked_at_ms": app.now_ms(), "took_ms": took}


def failure_text(failure: dict[str, Any] | None) -> str:
    """A verification failure of :func:`verify_audit` as a sentence: where, then why."""
    if failure is None:
        return ""
    where = f"entry {failure['index']}" if failure["kind"] == "entry" else f"checkpoint of size {failure['size']}"
    return f"{where}: {failure['reason']}"


def signature_key_ids(note: str) -> list[str]:
    """``<name>+<8 hex digits>`` of each signature line of a C2SP signed note (the key hash is the
    first four bytes of the line's base64 signature). Lines that do not parse are left out."""
    found = []
    _, _, signatures = note.partition("\n\n")
    for line in signatures.splitlines():
        if not line.startswith(_SIGNATURE_PREFIX):
            continue
        name, _, sig64 = line[len(_SIGNATURE_PREFIX) :].rpartition(" ")
        try:
            raw = base64.b64decode(sig64, validate=True)
        except ValueError:
            continue
        if name and len(raw) > 4:
            found.append(f"{name}+{raw[:4].hex()}")
    return found


def latest_checkpoint(app: Tombola) -> dict[str, Any] | None:
    """The log's latest signed checkpoint: ``size``, ``root_hash``, ``note`` (the C2SP signed note,
    as signed), ``reason``, ``signed_at_ms``, ``age_ms``, ``key_ids`` (of its signature lines) and
    ``known_key_ids`` (those among them that are the log's own verifier keys), plus ``log_size``
    (entries now; those above ``size`` wait for the next checkpoint). None before the first."""
    log = app.core.audit
    cp = log.latest_checkpoint()
    if cp is None:
        return None
    own = {v.key_id: v.vkey for v in app.core.audit_verifiers()}
    ids = signature_key_ids(cp.note)
    return cp.to_dict() | {
        "age_ms": max(0, app.now_ms() - cp.signed_at_ms),
        "key_ids": ids,
        "known_key_ids": [k for k in ids if k in own],
        "verifier_keys": [own[k] for k in ids if k in own],
        "log_size": log.size(),
    }


def audit_tenant(principal: Principal) -> str | None:
    """Whose entries ``principal`` reads: None every tenant's (installation-wide admin or auditor),
    else its organisation's. :class:`Forbidden` for the roles without the audit log."""
    if principal.role not in AUDIT_ROLES:
        raise Forbidden(f"the {principal.role} role may not read the audit log")
    return principal.tenant


def audit_entries(
    app: Tombola,
    principal: Principal,
    *,
    type_prefix: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    after: int = -1,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of entries ``principal`` may read (:func:`audit_tenant`), oldest first: after index
    ``after``, of a type or family (``type_prefix``, e.g. ``draw.`` or ``grant.issued``), with
    ``time_ms`` in ``[since_ms, until_ms)``. ``entries`` are the parsed entries with their ``index``;
    ``next_after`` is the index to ask after for the next page (None on the last); ``size`` the log's."""
    tenant = audit_tenant(principal)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"a page holds 1 to {MAX_PAGE} entries, not {limit}", field="limit")
    if after < -1:
        raise InvalidRequest("after is an entry index (or -1 for the start)", field="after")
    log = app.core.audit
    rows = log.entries(
        tenant=tenant,
        type_prefix=type_prefix or None,
        after=after,
        limit=limit + 1,
        since_ms=since_ms,
        until_ms=until_ms,
    )
    entries = [json.loads(data) | {"index": index} for index, data in rows[:limit]]
    next_after = rows[limit - 1][0] if len(rows) > limit else None
    return {"entries": entries, "next_after": next_after, "size": log.size()}


def audit_latest_after(app: Tombola, principal: Principal, *, limit: int = 50) -> int:
    """The ``after`` of the page holding the newest ``limit`` entries ``principal`` reads."""
    tenant = audit_tenant(principal)
    log = app.core.audit
    if tenant is None:
        return max(-1, log.size() - limit - 1)
    recent = log.entries(tenant=tenant, after=-1, limit=10**9)
    return recent[-limit - 1][0] if len(recent) > limit else -1


# --- health --------------------------------------------------------------------------------------


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        out = check() | {"ok": True}
    except Exception as exc:  # a health page reports any failure, it does not raise it
        out = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return out | {"took_ms": round((time.monotonic() - started) * 1000, 1)}


def _database(engine: Engine, migrations: Path) -> dict[str, Any]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    expected = sorted(ScriptDirectory(str(migrations)).get_heads())
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        current = sorted(MigrationContext.configure(conn).get_current_heads())
    return {
        "dialect": engine.dialect.name,
        "revision": current,
        "head": expected,
        "at_head": current == expected,
    }


def _hsm(app: Tombola) -> dict[str, Any]:
    token = app.core.hsm
    if token is None:
        raise RuntimeError("the core was opened without an HSM token")
    keys = [k.to_dict() for k in token.public_keys()]
    info = token.token_info()
    current = {purpose: token.current(purpose, create=False).public().key_id for purpose in ("grant", "vrf", "audit")}
    return {
        "token": info,
        "keys": [{k: v for k, v in key.items() if k in ("purpose", "key_id", "algorithm", "label")} for key in keys],
        "current": current,
    }


def _shipped(keys: set[str]) -> dict[str, Any]:
    """How far an archive reaches, from its object names (docs/audit-storage.md: segments
    ``segments/START-END.jsonl`` hold entries START..END-1, ``checkpoints/SIZE.note``)."""
    ends = [int(m[2]) for m in map(_SEGMENT_KEY.fullmatch, keys) if m]
    sizes = [int(m[1]) for m in map(_CHECKPOINT_KEY.fullmatch, keys) if m]
    return {
        "segments": len(ends),
        "entries_through": max(ends, default=0),
        "checkpoints": len(sizes),
        "checkpoint_size": max(sizes, default=None),
    }


def _audit_backend(app: Tombola) -> dict[str, Any]:
    log = app.core.audit
    config = app.core.audit_config
    where = str(config.local_dir) if config.archive == "local" else (config.bucket or "")
    stores = {store.name: _shipped(log.shipped_keys(store.name)) for store in app.core.audit_stores()}
    return {
        "archive": config.archive,
        "where": where,
        "signer": config.signer,
        "stores": stores,
        "log_size": log.size(),
    }


def _checkpoint_health(app: Tombola) -> dict[str, Any]:
    cp = app.core.audit.latest_checkpoint()
    size = app.core.audit.size()
    if cp is None:
        return {"size": None, "signed_at_ms": None, "age_ms": None, "waiting": size, "stale": size > 0}
    age = max(0, app.now_ms() - cp.signed_at_ms)
    waiting = size - cp.size
    return {
        "size": cp.size,
        "signed_at_ms": cp.signed_at_ms,
        "age_ms": age,
        "waiting": waiting,
        "stale": waiting > 0 and age > CHECKPOINT_STALE_MS,
    }


def health(app: Tombola) -> dict[str, Any]:
    """The system's health as a system admin reads it; each part has ``ok`` and ``took_ms`` (and
    ``error`` when its check failed): ``hsm`` (the token answers: its info, key ids, the current
    key of each purpose), ``business_db`` and ``core_db`` (reachable, Alembic revision and head),
    ``audit`` (archive ``local``/``s3``/``none``, where, the last segment or checkpoint shipped),
    ``checkpoint`` (size, age, entries waiting, ``stale`` past :data:`CHECKPOINT_STALE_MS`) and
    ``identity`` (:func:`software_identity`)."""
    return {
        "hsm": _timed(lambda: _hsm(app)),
        "business_db": _timed(lambda: _database(app.engine, BUSINESS_MIGRATIONS)),
        "core_db": _timed(lambda: _database(app.core.engine, CORE_MIGRATIONS)),
        "audit": _timed(lambda: _audit_backend(app)),
        "checkpoint": _timed(lambda: _checkpoint_health(app)),
        "identity": software_identity(),
        "checked_at_ms": app.now_ms(),
    }


#: the packages a server installation runs, by what the health page calls them
PACKAGES = {
    "server": Path(server.__file__).parent,
    "gli_core": Path(gli_core.api.__file__).parent,
    "sync_protocol": Path(sync_protocol.__file__).parent,
}


def software_identity() -> dict[str, Any]:
    """Name, version and the :func:`sync_protocol.identity.package_digest` of each package the
    server runs (the certified core, ``gli_core``, apart), as the POS app's About screen shows its
    own. ``admin`` (the portal) and ``dbkit`` are added when installed beside the server."""
    from importlib import metadata
    from importlib.util import find_spec

    try:
        version = metadata.version("tombola")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    folders = dict(PACKAGES)
    for extra in ("admin", "dbkit"):
        spec = find_spec(extra)
        if spec is not None and spec.origin:
            folders[extra] = Path(spec.origin).parent
    digests = {name: package_digest(folder) for name, folder in sorted(folders.items())}
    return {"name": "Tombola server", "version": version, "sha256": digests}
