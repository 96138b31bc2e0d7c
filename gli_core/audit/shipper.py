"""Shipping the audit log's sealed segments and signed checkpoints to write-once archives.

The local log (the core database) is the source of truth until an object is shipped; the
shipment ledger (in the same database) records, per store, each key that is known to be in the
archive with its SHA-256. A pass (:meth:`Shipper.ship_once`) sends every full segment and every
checkpoint that the ledger lacks, in order, segment by segment (never the whole log at once):

1. ``store.digest(key)`` equals the expected SHA-256: the object is there already (a put whose
   answer was lost, or a ledger write that failed after the put): mark it in the ledger only,
   never send it twice;
2. the digest is another one: :class:`AuditStoreConflict`, reported, never overwritten;
3. no object: ``store.put`` and then mark it in the ledger.

Each step is retried with exponential backoff (``tenacity``) on :class:`AuditStoreUnavailable`;
when the retries run out, the store is left alone for the rest of the pass and what remains is
reported pending, to be sent by the next pass. Attempts are at-least-once, the effect is
exactly once: the digest check makes a repeated attempt a no-op, and S3's first version is
the archive's truth anyway. ``docs/audit-storage.md`` describes the layout and its operation.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from gli_core.audit.store import (
    AuditArchiveInvalid,
    AuditStoreConflict,
    AuditStoreError,
    AuditStoreUnavailable,
    SegmentStore,
    sha256_hex,
)

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "AuditSource",
    "BackgroundShipper",
    "RetryPolicy",
    "ShipError",
    "ShipReport",
    "ShipmentLedger",
    "Shipper",
    "StoreReport",
    "checkpoint_key",
    "parse_checkpoint_key",
    "parse_segment_key",
    "read_archive",
    "seal",
    "segment_key",
    "unseal",
]

log = logging.getLogger(__name__)

#: Entries per sealed segment: a power of two, so a segment is a complete RFC 9162 subtree.
DEFAULT_SEGMENT_SIZE = 4096

_SEGMENT_KEY = re.compile(r"segments/(\d{12})-(\d{12})\.jsonl")
_CHECKPOINT_KEY = re.compile(r"checkpoints/(\d{12})\.note")
_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------
# what the lead's database side provides


class AuditSource(Protocol):
    """The audit log as the shipper reads it (implemented over the core database)."""

    def size(self) -> int:
        """Number of entries in the log (entries are numbered 0..size-1)."""
        ...

    def entry_bytes(self, start: int, end: int) -> list[bytes]:
        """The leaf data (RFC 8785 canonical JSON) of entries start..end-1, in order."""
        ...

    def checkpoint_notes(self, after_size: int = 0) -> list[tuple[int, str]]:
        """``(tree_size, signed note text)`` of every checkpoint with tree_size > after_size."""
        ...


class ShipmentLedger(Protocol):
    """Which keys are known to be in which store (implemented over the core database).

    ``mark_shipped`` must be idempotent: the same key may be marked again after a crash."""

    def shipped_keys(self, store: str) -> set[str]: ...

    def mark_shipped(self, store: str, key: str, sha256: str, nbytes: int) -> None: ...


# --------------------------------------------------------------------------------------------
# object names and segment bytes


def segment_key(start: int, end: int) -> str:
    """``segments/{start:012d}-{end:012d}.jsonl``: entries start..end-1."""
    if not 0 <= start < end < 10**12:
        raise ValueError(f"not a segment range: {start}..{end}")
    return f"segments/{start:012d}-{end:012d}.jsonl"


def checkpoint_key(size: int) -> str:
    """``checkpoints/{tree_size:012d}.note``."""
    if not 0 <= size < 10**12:
        raise ValueError(f"not a tree size: {size}")
    return f"checkpoints/{size:012d}.note"


def parse_segment_key(key: str) -> tuple[int, int]:
    match = _SEGMENT_KEY.fullmatch(key)
    if not match or int(match[1]) >= int(match[2]):
        raise AuditArchiveInvalid(f"{key} is not a segment name (segments/START-END.jsonl, START < END)", key=key)
    return int(match[1]), int(match[2])


def parse_checkpoint_key(key: str) -> int:
    match = _CHECKPOINT_KEY.fullmatch(key)
    if not match:
        raise AuditArchiveInvalid(f"{key} is not a checkpoint name (checkpoints/TREE_SIZE.note)", key=key)
    return int(match[1])


def seal(entries: Sequence[bytes]) -> bytes:
    """A segment's bytes: each entry's leaf data followed by ``b"\\n"``."""
    for offset, entry in enumerate(entries):
        if not entry or b"\n" in entry:
            raise ValueError(f"entry {offset} of the segment is empty or holds a newline; leaf data is canonical JSON")
    return b"".join(entry + b"\n" for entry in entries)


def unseal(data: bytes) -> list[bytes]:
    """The entries of a segment's bytes (the inverse of :func:`seal`)."""
    if not data:
        return []
    if not data.endswith(b"\n"):
        raise AuditArchiveInvalid("a segment does not end with a newline (truncated?)")
    return data[:-1].split(b"\n")


# --------------------------------------------------------------------------------------------
# reports


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one archive operation: up to ``attempts`` tries, waiting ``initial_s``,
    then twice as long each time, at most ``max_s`` between two tries."""

    attempts: int = 5
    initial_s: float = 0.5
    max_s: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_s < 0 or self.max_s < self.initial_s:
            raise ValueError(f"bad retry policy: {self}")


@dataclass(frozen=True)
class ShipError:
    key: str
    code: str
    detail: str


@dataclass
class StoreReport:
    """What a pass did for one store; each list holds keys."""

    store: str
    shipped: list[str] = field(default_factory=list)  #: put by this pass
    already_present: list[str] = field(default_factory=list)  #: found in the store with the right digest
    pending: list[str] = field(default_factory=list)  #: due, left for the next pass (store unavailable)
    errors: list[ShipError] = field(default_factory=list)  #: conflicts and failures

    @property
    def ok(self) -> bool:
        return not self.errors and not self.pending


@dataclass
class ShipReport:
    tree_size: int  #: the log size the pass worked from
    stores: dict[str, StoreReport]

    @property
    def ok(self) -> bool:
        return all(report.ok for report in self.stores.values())

    @property
    def conflicts(self) -> list[ShipError]:
        return [e for r in self.stores.values() for e in r.errors if e.code == AuditStoreConflict.code]

    def __getitem__(self, store: str) -> StoreReport:
        return self.stores[store]


# --------------------------------------------------------------------------------------------
# the shipper


class Shipper:
    """Ships full segments of ``segment_size`` entries and every checkpoint to each store.

    Thread-safe: passes never overlap. Keeps per store an in-memory floor (the first segment
    and the largest checkpoint size up to which the ledger is complete) so a pass reads the
    source from there on only; a new ``Shipper`` starts from the ledger again.
    """

    def __init__(
        self,
        source: AuditSource,
        stores: Sequence[SegmentStore],
        ledger: ShipmentLedger,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        retry: RetryPolicy | None = None,
    ) -> None:
        if segment_size < 1 or segment_size & (segment_size - 1):
            raise ValueError(f"segment_size must be a power of two, not {segment_size}")
        names = [store.name for store in stores]
        if len(set(names)) != len(names):
            raise ValueError(f"stores need distinct names: {names}")
        self.source = source
        self.stores = list(stores)
        self.ledger = ledger
        self.segment_size = segment_size
        self.retry = retry or RetryPolicy()
        self._lock = threading.Lock()
        self._segment_floor = {name: 0 for name in names}
        self._checkpoint_floor = {name: 0 for name in names}

    def ship_once(self) -> ShipReport:
        """One pass over every store; see the module's docstring."""
        with self._lock:
            size = self.source.size()
            report = ShipReport(size, {s.name: StoreReport(s.name) for s in self.stores})
            shipped = {s.name: set(self.ledger.shipped_keys(s.name)) for s in self.stores}
            down: set[str] = set()
            self._ship_segments(size, report, shipped, down)
            self._ship_checkpoints(report, shipped, down)
            return report

    def run_in_background(self, interval_s: float) -> BackgroundShipper:
        """Run :meth:`ship_once` every ``interval_s`` seconds in a daemon thread."""
        return BackgroundShipper(self, interval_s)

    # -- internals ----------------------------------------------------------------------------

    def _ship_segments(self, size: int, report: ShipReport, shipped: dict[str, set[str]], down: set[str]) -> None:
        step = self.segment_size
        count = size // step  # only full segments are sealed
        for index in range(min(self._segment_floor.values(), default=count), count):
            start, end = index * step, (index + 1) * step
            key = segment_key(start, end)
            needing = [s for s in self.stores if key not in shipped[s.name]]
            for store in needing:
                if store.name in down:
                    report[store.name].pending.append(key)
            active = [s for s in needing if s.name not in down]
            if not active:
                continue
            entries = self.source.entry_bytes(start, end)
            if len(entries) != step:
                raise ValueError(f"the audit source gave {len(entries)} entries for {start}..{end - 1}, not {step}")
            data = seal(entries)
            sha = sha256_hex(data)
            for store in active:
                self._ship(store, key, data, sha, report[store.name], shipped[store.name], down)
        for store in self.stores:
            floor = self._segment_floor[store.name]
            while floor < count and segment_key(floor * step, (floor + 1) * step) in shipped[store.name]:
                floor += 1
            self._segment_floor[store.name] = floor

    def _ship_checkpoints(self, report: ShipReport, shipped: dict[str, set[str]], down: set[str]) -> None:
        after = min(self._checkpoint_floor.values(), default=0)
        notes = sorted(self.source.checkpoint_notes(after))
        for tree_size, note in notes:
            key = checkpoint_key(tree_size)
            data = note.encode("utf-8")
            sha = sha256_hex(data)
            for store in self.stores:
                if key in shipped[store.name]:
                    continue
                if store.name in down:
                    report[store.name].pending.append(key)
                    continue
                self._ship(store, key, data, sha, report[store.name], shipped[store.name], down)
        for store in self.stores:
            floor = self._checkpoint_floor[store.name]
            for tree_size, _note in notes:
                if checkpoint_key(tree_size) not in shipped[store.name]:
                    break
                floor = max(floor, tree_size)
            self._checkpoint_floor[store.name] = floor

    def _ship(
        self,
        store: SegmentStore,
        key: str,
        data: bytes,
        sha: str,
        report: StoreReport,
        shipped: set[str],
        down: set[str],
    ) -> None:
        try:
            outcome = self._retrying(lambda: self._ship_one(store, key, data, sha), store, key)
        except AuditStoreConflict as exc:
            log.error("audit archive %s: %s", store.name, exc.detail)
            report.errors.append(ShipError(key, exc.code, exc.detail))
            return
        except AuditStoreError as exc:  # unavailable after every retry, or refused (access denied...)
            log.warning("audit archive %s unavailable, shipping resumes on the next pass: %s", store.name, exc.detail)
            report.errors.append(ShipError(key, exc.code, exc.detail))
            report.pending.append(key)
            down.add(store.name)
            return
        self.ledger.mark_shipped(store.name, key, sha, len(data))
        shipped.add(key)
        (report.shipped if outcome == "shipped" else report.already_present).append(key)

    @staticmethod
    def _ship_one(store: SegmentStore, key: str, data: bytes, sha: str) -> Literal["shipped", "present"]:
        existing = store.digest(key)
        if existing == sha:
            return "present"  # the put landed but its answer was lost, or the ledger write failed
        if existing is not None:
            raise AuditStoreConflict(
                f"{store.name}: {key} holds other bytes (sha256 {existing}) than the log's ({sha})",
                key=key,
                stored_sha256=existing,
                sha256=sha,
            )
        store.put(key, data)
        return "shipped"

    def _retrying(self, call: Callable[[], _T], store: SegmentStore, key: str) -> _T:
        def before_sleep(state: RetryCallState) -> None:
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            log.info("audit archive %s: %s failed (attempt %d): %s", store.name, key, state.attempt_number, error)

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait_exponential(multiplier=self.retry.initial_s, min=self.retry.initial_s, max=self.retry.max_s),
            retry=retry_if_exception_type(AuditStoreUnavailable),
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(call)


class BackgroundShipper:
    """A daemon thread running :meth:`Shipper.ship_once` every ``interval_s`` (see
    :meth:`Shipper.run_in_background`). A pass that raises is logged and retried next time."""

    def __init__(self, shipper: Shipper, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.shipper = shipper
        self.interval_s = interval_s
        self.last_report: ShipReport | None = None
        self.last_error: BaseException | None = None
        self.passes = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-shipper", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        """Start the next pass now instead of at the end of the interval."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the current pass; wait up to ``timeout_s`` for it."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.last_report = self.shipper.ship_once()
                self.last_error = None
            except Exception as exc:
                log.exception("audit shipping pass failed")
                self.last_error = exc
            self.passes += 1
            self._wake.wait(self.interval_s)
            self._wake.clear()


# --------------------------------------------------------------------------------------------
# reading an archive back


def read_archive(store: SegmentStore) -> tuple[Iterator[bytes], list[tuple[int, str]]]:
    """The entries of every sealed segment of ``store`` in order, and its checkpoint notes.

    The segment names are checked at once: they must cover 0..N-1 without a gap or an overlap
    (:class:`AuditArchiveInvalid` names the missing range). The entries are then read segment
    by segment as the iterator is consumed, each checked against its SHA-256 by the store and
    for a line count equal to its name's range. Checkpoints come back sorted by tree size; a
    checkpoint may be larger than the archived entries (the rest is still in the database).
    """
    ranges = sorted((*parse_segment_key(key), key) for key in store.keys("segments/"))
    expected = 0
    for start, end, key in ranges:
        if start > expected:
            raise AuditArchiveInvalid(
                f"the archive has no segment for entries {expected}..{start - 1} (the next segment is {key})",
                missing_start=expected,
                missing_end=start,
            )
        if start < expected:
            raise AuditArchiveInvalid(
                f"segment {key} overlaps entries up to {expected - 1} that an earlier segment holds", key=key
            )
        expected = end

    checkpoints: list[tuple[int, str]] = []
    for key in store.keys("checkpoints/"):
        tree_size = parse_checkpoint_key(key)
        try:
            checkpoints.append((tree_size, store.get(key).decode("utf-8")))
        except UnicodeDecodeError:
            raise AuditArchiveInvalid(f"checkpoint {key} is not UTF-8 text", key=key) from None
    checkpoints.sort()

    def entries() -> Iterator[bytes]:
        for start, end, key in ranges:
            lines = unseal(store.get(key))
            if len(lines) != end - start:
                raise AuditArchiveInvalid(
                    f"segment {key} holds {len(lines)} entries, its name says {end - start}", key=key
                )
            yield from lines

    return entries(), checkpoints
