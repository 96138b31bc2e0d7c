"""Write-once archives of the audit log: sealed segments and signed checkpoints.

The audit log itself lives in the core database; this module keeps the copies that outlive it.
An archive is a flat set of objects named by the fixed layout of ``docs/audit-storage.md``::

    segments/{start:012d}-{end:012d}.jsonl   leaf data of entries start..end-1, each + b"\\n"
    checkpoints/{tree_size:012d}.note        a signed checkpoint (C2SP signed note), UTF-8

Every store obeys one rule, **write once**: putting a key that exists with the same bytes does
nothing, with other bytes raises :class:`AuditStoreConflict`; nothing is ever replaced or
deleted. Two stores exist:

* :class:`LocalSegmentStore` (embedded default, ``var/audit/``): files created with a hard link
  that cannot replace an existing file, fsynced, made read-only, and an append-only
  ``index.jsonl``; crash-tolerant on open.
* :class:`S3SegmentStore` (production): one object per key in a bucket with S3 Object Lock in
  COMPLIANCE mode (:func:`setup_bucket` makes it). The archive's truth for a key is the FIRST
  version of the key, because a COMPLIANCE-locked version cannot be deleted or changed by
  anyone until its retention ends, while later versions and delete markers can be stacked on
  top of it by whoever can write to the bucket.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from gli_core.errors import CoreError

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "LIFECYCLE_RULE_ID",
    "AuditArchiveInvalid",
    "AuditBucketUnlocked",
    "AuditStoreConflict",
    "AuditStoreError",
    "AuditStoreUnavailable",
    "LocalSegmentStore",
    "S3SegmentStore",
    "SegmentStore",
    "lifecycle_rule",
    "setup_bucket",
]

#: Seven years (365 * 7 + 2 leap days): how long S3 keeps every archived object locked.
DEFAULT_RETENTION_DAYS = 2557
#: The ID of the lifecycle rule :func:`setup_bucket` owns (other rules of the bucket are kept).
LIFECYCLE_RULE_ID = "tombola-audit-archive"
#: Days after which archived objects move to GLACIER, then to DEEP_ARCHIVE.
GLACIER_AFTER_DAYS = 90
DEEP_ARCHIVE_AFTER_DAYS = 365

#: What a key may look like: lower-case path segments, no dot-dot, no leading slash.
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*(?:/[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*)*")


# --------------------------------------------------------------------------------------------
# errors


class AuditStoreError(CoreError):
    """The archive refused or failed an operation for a reason retrying will not cure."""

    code = "audit_store_error"
    status = 502


class AuditStoreConflict(AuditStoreError):
    """A key of the write-once archive already holds other bytes than those being written."""

    code = "audit_store_conflict"
    status = 409


class AuditStoreUnavailable(AuditStoreError):
    """The archive cannot be reached (connection refused or reset, timeout, 5xx)."""

    code = "audit_store_unavailable"
    status = 503


class AuditBucketUnlocked(AuditStoreError):
    """An existing bucket named for the audit archive has no Object Lock."""

    code = "audit_bucket_unlocked"
    status = 409


class AuditArchiveInvalid(AuditStoreError):
    """The archive's content is not what was written: a gap, an overlap, a wrong line count,
    bytes that do not match their recorded SHA-256, a corrupt index."""

    code = "audit_archive_invalid"
    status = 422


# --------------------------------------------------------------------------------------------
# the protocol


@runtime_checkable
class SegmentStore(Protocol):
    """A write-once key -> bytes archive.

    ``name`` identifies the store in the shipment ledger, so it must stay the same for the same
    archive across restarts.
    """

    name: str

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` once: a no-op when the key holds the same bytes,
        :class:`AuditStoreConflict` when it holds other bytes."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key`` (checked against their SHA-256); ``KeyError`` when absent."""
        ...

    def digest(self, key: str) -> str | None:
        """Hex SHA-256 of the bytes stored under ``key``, or None when the key is absent."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every stored key starting with ``prefix``, sorted."""
        ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key) or len(key) > 512:
        raise ValueError(f"not an archive key: {key!r}")
    return key


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# local files


@dataclass(frozen=True)
class IndexLine:
    key: str
    sha256: str
    bytes: int
    time: str


class LocalSegmentStore:
    """Write-once objects as read-only files under ``root`` with an append-only ``index.jsonl``.

    ``put`` writes a temporary file, fsyncs it, makes it read-only, and hard-links it to its
    final name (``os.link`` fails instead of replacing an existing file, which a rename would
    not), fsyncs the directory, then appends ``{"key", "sha256", "bytes", "time"}`` to the
    index and fsyncs that. Opening the store repairs what a crash can leave: a torn last index
    line is cut off, an object whose index line never got written is indexed again (flagged
    ``"recovered": true``), leftover temporary files are removed. One process writes at a time
    (an ``flock`` on ``.lock`` serialises writers and recovery); any number may read.
    """

    INDEX = "index.jsonl"
    LOCK = ".lock"
    _TMP_PREFIX = ".tmp-"

    def __init__(self, root: Path, *, name: str = "local", clock: Callable[[], datetime] = _utcnow) -> None:
        self.root = Path(root)
        self.name = name
        self._clock = clock
        self._mutex = threading.Lock()
        self._index: dict[str, IndexLine] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        self.recovered: list[str] = []  #: what the last open repaired (for logs and tests)
        self._recover()

    # -- public API ---------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        path = self._path(key)
        sha = sha256_hex(data)
        with self._locked():
            if path.exists():
                self._same_or_conflict(key, sha)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f"{self._TMP_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                os.fchmod(fd, 0o444)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # never replaces: FileExistsError if the name is taken
            except FileExistsError:
                self._same_or_conflict(key, sha)
                return
            finally:
                tmp.unlink()
            self._fsync_dirs(path.parent)
            self._append_index(IndexLine(key, sha, len(data), self._now()))

    def get(self, key: str) -> bytes:
        check_key(key)
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            if key in self._index:
                raise AuditArchiveInvalid(f"{key} is in the archive's index but its file is missing", key=key) from None
            raise KeyError(key) from None
        self._check_against_index(key, sha256_hex(data))
        return data

    def digest(self, key: str) -> str | None:
        check_key(key)
        try:
            sha = _hash_file(self._path(key))
        except FileNotFoundError:
            if key in self._index:
                raise AuditArchiveInvalid(f"{key} is in the archive's index but its file is missing", key=key) from None
            return None
        self._check_against_index(key, sha)
        return sha

    def keys(self, prefix: str) -> list[str]:
        return sorted(key for key in self._files() if key.startswith(prefix))

    def index(self) -> list[IndexLine]:
        """The index lines, in the order they were written."""
        return list(self._index.values())

    # -- internals ----------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex, open(self.root / self.LOCK, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _same_or_conflict(self, key: str, sha: str) -> None:
        existing = _hash_file(self._path(key))
        if existing != sha:
            raise AuditStoreConflict(
                f"{key} already holds other bytes (sha256 {existing}, not {sha}); the archive is write-once",
                key=key,
                stored_sha256=existing,
                sha256=sha,
            )
        if key not in self._index:  # written by another process or before a crash: index it
            self._append_index(IndexLine(key, existing, self._path(key).stat().st_size, self._now()), recovered=True)

    def _check_against_index(self, key: str, sha: str) -> None:
        line = self._index.get(key)
        if line is not None and line.sha256 != sha:
            raise AuditArchiveInvalid(
                f"{key} no longer matches its index line (sha256 {sha}, indexed {line.sha256})", key=key
            )

    def _append_index(self, line: IndexLine, *, recovered: bool = False) -> None:
        record: dict[str, Any] = {"key": line.key, "sha256": line.sha256, "bytes": line.bytes, "time": line.time}
        if recovered:
            record["recovered"] = True
        fd = os.open(self.root / self.INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, orjson.dumps(record) + b"\n")  # one write with O_APPEND: a crash tears at most this line
            os.fsync(fd)
        finally:
            os.close(fd)
        self._index[line.key] = line

    def _fsync_dirs(self, directory: Path) -> None:
        """fsync ``directory`` and its parents up to the root, so new entries survive a crash."""
        current = directory
        while True:
            fd = os.open(current, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            if current == self.root or self.root not in current.parents:
                return
            current = current.parent

    def _files(self) -> Iterator[str]:
        for dirpath, _dirnames, filenames in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root)
            for filename in filenames:
                if rel == Path(".") and filename in (self.INDEX, self.LOCK):
                    continue
                if filename.startswith(self._TMP_PREFIX):
                    continue
                yield (rel / filename).as_posix()

    def _recover(self) -> None:
        with self._locked():
            self.recovered = []
            for dirpath, _dirnames, filenames in os.walk(self.root):
                for filename in filenames:
                    if filename.startswith(self._TMP_PREFIX):
                        (Path(dirpath) / filename).unlink()
                        self.recovered.append(f"removed temporary file {filename}")
            self._load_index()
            for key in sorted(self._files()):
                if key not in self._index:
                    path = self._path(key)
                    self._append_index(
                        IndexLine(key, _hash_file(path), path.stat().st_size, self._now()), recovered=True
                    )
                    self.recovered.append(f"indexed {key}, which had no index line")

    def _load_index(self) -> None:
        path = self.root / self.INDEX
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        good = 0  # length of the prefix made of complete, valid lines
        lines = raw.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        for number, chunk in enumerate(complete, start=1):
            line = _parse_index_line(chunk)
            if line is None:
                if number == len(complete) and not tail:
                    break  # the last line is garbage (a crash that extended the file): torn
                raise AuditArchiveInvalid(f"{path}: line {number} is not a valid index line", line=number)
            previous = self._index.get(line.key)
            if previous is not None and previous.sha256 != line.sha256:
                raise AuditArchiveInvalid(f"{path}: line {number} indexes {line.key} again with another sha256")
            if previous is None:
                self._index[line.key] = line
            good += len(chunk) + 1
        if good != len(raw):
            with open(path, "r+b") as handle:
                handle.truncate(good)
                handle.flush()
                os.fsync(handle.fileno())
            self.recovered.append(f"cut a torn last index line ({len(raw) - good} bytes)")


def _parse_index_line(chunk: bytes) -> IndexLine | None:
    try:
        record = orjson.loads(chunk)
        line = IndexLine(str(record["key"]), str(record["sha256"]), int(record["bytes"]), str(record["time"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if not _KEY.fullmatch(line.key) or not re.fullmatch(r"[0-9a-f]{64}", line.sha256):
        return None
    return line


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# S3 with Object Lock

#: S3 error codes that mean "try again later" rather than "no".
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed", "Throttling"}
)


def _is_transient(exc: BaseException) -> bool:
    from botocore import exceptions as bx

    if isinstance(exc, bx.ConnectionError | bx.HTTPClientError | bx.IncompleteReadError):
        return True
    if isinstance(exc, bx.ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or _error_code(exc) in _TRANSIENT_CODES
    return False


def _error_code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _translate(operation: str, exc: BaseException, where: str) -> AuditStoreError:
    """The Tombola error for a botocore failure: network trouble, timeouts and 5xx answers are
    :class:`AuditStoreUnavailable` (worth retrying), any other refusal :class:`AuditStoreError`."""
    if _is_transient(exc):
        return AuditStoreUnavailable(f"S3 {operation} on {where} failed: {exc}", operation=operation)
    return AuditStoreError(
        f"S3 {operation} on {where} was refused: {exc}", operation=operation, s3_code=_error_code(exc)
    )


def _s3_call(
    operation: str,
    call: Callable[[], Any],
    *,
    bucket: str,
    key: str | None = None,
    absent: frozenset[str] = frozenset(),
) -> Any:
    """Run one S3 call; None when S3 answers an error code listed in ``absent`` (a 404 the
    caller expects), the translated error (:func:`_translate`) for any other failure."""
    from botocore import exceptions as bx

    try:
        return call()
    except bx.ClientError as exc:
        if _error_code(exc) in absent:
            return None
        raise _translate(operation, exc, f"s3://{bucket}/{key or ''}") from exc
    except bx.BotoCoreError as exc:
        raise _translate(operation, exc, f"s3://{bucket}/{key or ''}") from exc


class S3SegmentStore:
    """Write-once objects in an S3 bucket with Object Lock (see :func:`setup_bucket`).

    ``put`` sends ``PutObject`` with ``ObjectLockMode`` (``mode``, COMPLIANCE by default) and
    ``ObjectLockRetainUntilDate`` (now + ``retention_days``), the SHA-256 of the body as the
    request checksum (``ChecksumAlgorithm="SHA256"`` with the value given, so S3 rejects a body
    damaged on the way and keeps the checksum; Object Lock puts need a checksum or Content-MD5),
    metadata ``sha256`` and ``If-None-Match: *`` (a conditional write: a second writer racing
    for the same key gets 412 instead of adding a version).

    Reads go to the FIRST version of a key (``ListObjectVersions`` lists the versions of a key
    newest first; the last one is the oldest). A COMPLIANCE-locked version can be neither
    deleted nor altered by anyone, the root account included, until its retention ends; a
    later ``PutObject`` only stacks a new version on top of it and a ``DeleteObject`` only a
    delete marker. So the first version is the original the shipper wrote, whatever the
    current version is, and the only one the archive trusts.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        mode: str = "COMPLIANCE",
        clock: Callable[[], datetime] = _utcnow,
        name: str | None = None,
    ) -> None:
        if mode not in ("COMPLIANCE", "GOVERNANCE"):
            raise ValueError(f"Object Lock mode must be COMPLIANCE or GOVERNANCE, not {mode!r}")
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self.client = client
        self.bucket = bucket
        self.retention_days = retention_days
        self.mode = mode
        self._clock = clock
        self.name = name or f"s3://{bucket}"

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        sha = sha256_hex(data)
        existing = self.digest(key)
        if existing is not None:
            self._same_or_conflict(key, existing, sha)
            return
        retain_until = self._clock() + timedelta(days=self.retention_days)
        from botocore import exceptions as bx

        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/jsonl" if key.endswith(".jsonl") else "text/plain; charset=utf-8",
                ObjectLockMode=self.mode,
                ObjectLockRetainUntilDate=retain_until,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha)).decode("ascii"),
                Metadata={"sha256": sha},
                IfNoneMatch="*",
            )
        except bx.ClientError as exc:
            if _error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise _translate("PutObject", exc, f"s3://{self.bucket}/{key}") from exc
            # another writer got there first (412), or a concurrent conditional write (409)
            existing = self.digest(key)
            if existing is None:
                raise AuditStoreUnavailable(
                    f"S3 PutObject on s3://{self.bucket}/{key} raced with another writer; retry", key=key
                ) from exc
            self._same_or_conflict(key, existing, sha)
        except bx.BotoCoreError as exc:
            raise _translate("PutObject", exc, f"s3://{self.bucket}/{key}") from exc

    def get(self, key: str) -> bytes:
        check_key(key)
        version = self._first_version(key)
        if version is None:
            raise KeyError(key)
        response = _s3_call(
            "GetObject",
            lambda: self.client.get_object(Bucket=self.bucket, Key=key, VersionId=version, ChecksumMode="ENABLED"),
            bucket=self.bucket,
            key=key,
        )
        data = _s3_call("GetObject", lambda: response["Body"].read(), bucket=self.bucket, key=key)
        expected = _sha_from_head(response)
        actual = sha256_hex(data)
        if expected is not None and expected != actual:
            raise AuditArchiveInvalid(
                f"s3://{self.bucket}/{key} (version {version}) does not match its SHA-256 {expected}", key=key
            )
        return bytes(data)

    def digest(self, key: str) -> str | None:
        check_key(key)
        version = self._first_version(key)
        if version is None:
            return None
        head = _s3_call(
            "HeadObject",
            lambda: self.client.head_object(Bucket=self.bucket, Key=key, VersionId=version, ChecksumMode="ENABLED"),
            bucket=self.bucket,
            key=key,
        )
        sha = _sha_from_head(head)
        if sha is None:  # not written by this store (no checksum, no metadata): hash the bytes
            return sha256_hex(self.get(key))
        return sha

    def keys(self, prefix: str) -> list[str]:
        found: set[str] = set()
        for page in self._version_pages(prefix):
            found.update(v["Key"] for v in page.get("Versions", []))  # delete markers alone are no object
        return sorted(found)

    def first_version_id(self, key: str) -> str | None:
        """The version id of the archive's copy of ``key`` (its first version), None when absent."""
        return self._first_version(check_key(key))

    # -- internals ----------------------------------------------------------------------------

    def _same_or_conflict(self, key: str, existing: str, sha: str) -> None:
        if existing != sha:
            raise AuditStoreConflict(
                f"s3://{self.bucket}/{key} already holds other bytes (sha256 {existing}, not {sha}); "
                "the archive is write-once",
                key=key,
                stored_sha256=existing,
                sha256=sha,
            )

    def _version_pages(self, prefix: str) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            page = _s3_call(
                "ListObjectVersions", lambda: self.client.list_object_versions(**params), bucket=self.bucket
            )
            yield page
            if not page.get("IsTruncated"):
                return
            params["KeyMarker"] = page.get("NextKeyMarker")
            if page.get("NextVersionIdMarker"):
                params["VersionIdMarker"] = page["NextVersionIdMarker"]

    def _first_version(self, key: str) -> str | None:
        # S3 lists the versions of a key newest first (LastModified has only second resolution,
        # so the order of the listing is what tells them apart): the last one is the oldest.
        oldest: str | None = None
        for page in self._version_pages(key):
            for version in page.get("Versions", []):
                if version["Key"] == key:
                    oldest = str(version["VersionId"])
        return oldest


def _sha_from_head(head: dict[str, Any]) -> str | None:
    """The SHA-256 S3 checked on upload (``ChecksumSHA256`` of a single-part object), else the
    ``sha256`` metadata this store wrote; None when neither is there."""
    checksum = head.get("ChecksumSHA256")
    if isinstance(checksum, str) and "-" not in checksum:  # "...-N" is a multipart composite
        try:
            raw = base64.b64decode(checksum, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 32:
            return raw.hex()
    metadata = head.get("Metadata") or {}
    value = metadata.get("sha256")
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
        return value
    return None


def _default_retention(config: dict[str, Any]) -> tuple[str | None, int | None, int | None]:
    """(mode, days, years) of a bucket's default retention; a 0 counts as absent (moto echoes
    ``"Years": 0`` next to ``Days``, S3 returns only the one that is set)."""
    retention = (config.get("Rule") or {}).get("DefaultRetention") or {}
    return retention.get("Mode"), retention.get("Days") or None, retention.get("Years") or None


def lifecycle_rule() -> dict[str, Any]:
    """The lifecycle rule of the audit bucket: every object (current and noncurrent versions)
    to GLACIER after 90 days and DEEP_ARCHIVE after 365; nothing expires (Object Lock keeps
    the objects for the retention period anyway)."""
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "Transitions": [
            {"Days": GLACIER_AFTER_DAYS, "StorageClass": "GLACIER"},
            {"Days": DEEP_ARCHIVE_AFTER_DAYS, "StorageClass": "DEEP_ARCHIVE"},
        ],
        "NoncurrentVersionTransitions": [
            {"NoncurrentDays": GLACIER_AFTER_DAYS, "StorageClass": "GLACIER"},
            {"NoncurrentDays": DEEP_ARCHIVE_AFTER_DAYS, "StorageClass": "DEEP_ARCHIVE"},
        ],
    }


def setup_bucket(
    client: Any, bucket: str, *, retention_days: int = DEFAULT_RETENTION_DAYS, region: str | None = None
) -> dict[str, Any]:
    """Create (or check) the audit archive bucket; idempotent. Returns what S3 reports back.

    * A missing bucket is created with ``ObjectLockEnabledForBucket=True`` (which also turns on
      versioning) in ``region`` (default: the client's region).
    * An existing bucket must already have Object Lock enabled, or :class:`AuditBucketUnlocked`
      is raised: enabling it on a bucket that already holds objects would leave those
      unprotected, so that is an operator's decision, never a side effect of this command.
    * The default retention is set to COMPLIANCE for ``retention_days`` (only when it differs,
      so a re-run changes nothing).
    * The lifecycle rule :data:`LIFECYCLE_RULE_ID` (:func:`lifecycle_rule`) is put in place;
      other rules of the bucket are kept.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    region = region or getattr(getattr(client, "meta", None), "region_name", None) or "us-east-1"
    created = False
    exists = _s3_call(
        "HeadBucket",
        lambda: client.head_bucket(Bucket=bucket),
        bucket=bucket,
        absent=frozenset({"404", "NoSuchBucket", "NotFound"}),
    )
    if exists is None:
        params: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
        if region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        made = _s3_call(
            "CreateBucket",
            lambda: client.create_bucket(**params),
            bucket=bucket,
            absent=frozenset({"BucketAlreadyOwnedByYou"}),
        )
        created = made is not None

    lock = _s3_call(
        "GetObjectLockConfiguration",
        lambda: client.get_object_lock_configuration(Bucket=bucket),
        bucket=bucket,
        absent=frozenset({"ObjectLockConfigurationNotFoundError"}),
    )
    config = (lock or {}).get("ObjectLockConfiguration", {})
    if config.get("ObjectLockEnabled") != "Enabled":
        raise AuditBucketUnlocked(
            f"bucket {bucket} exists without S3 Object Lock; the audit archive needs a bucket created with "
            "Object Lock (choose a new bucket name, or enable Object Lock on this bucket deliberately: "
            "objects already in it would stay unprotected)",
            bucket=bucket,
        )
    versioning = _s3_call("GetBucketVersioning", lambda: client.get_bucket_versioning(Bucket=bucket), bucket=bucket)
    if versioning.get("Status") != "Enabled":
        raise AuditBucketUnlocked(f"bucket {bucket} has Object Lock but versioning is not enabled", bucket=bucket)

    wanted_rule = {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": retention_days}}
    if _default_retention(config) != ("COMPLIANCE", retention_days, None):
        _s3_call(
            "PutObjectLockConfiguration",
            lambda: client.put_object_lock_configuration(
                Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": wanted_rule}
            ),
            bucket=bucket,
        )

    current = _s3_call(
        "GetBucketLifecycleConfiguration",
        lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket),
        bucket=bucket,
        absent=frozenset({"NoSuchLifecycleConfiguration"}),
    )
    rules = list((current or {}).get("Rules", []))
    ours = lifecycle_rule()
    if ours not in rules:
        rules = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID] + [ours]
        _s3_call(
            "PutBucketLifecycleConfiguration",
            lambda: client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules}),
            bucket=bucket,
        )

    lock_after = _s3_call(
        "GetObjectLockConfiguration", lambda: client.get_object_lock_configuration(Bucket=bucket), bucket=bucket
    )["ObjectLockConfiguration"]
    lifecycle_after = _s3_call(
        "GetBucketLifecycleConfiguration",
        lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket),
        bucket=bucket,
    )["Rules"]
    return {
        "bucket": bucket,
        "region": region,
        "created": created,
        "versioning": versioning.get("Status"),
        "object_lock": lock_after,
        "lifecycle": lifecycle_after,
    }
