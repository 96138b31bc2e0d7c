"""Verify an audit log: every entry against the signed checkpoints, each checkpoint against the last.

:func:`verify_log` streams the entries once (constant memory: the Merkle frontier), so it
verifies a log of any size from the database, a directory of sealed segments or an S3 archive.
It stops at the first failure and names it:

* an entry that is not an entry (bad JSON, wrong version), whose ``index`` is not its position
  (an entry was removed, inserted or reordered before it), or whose stored leaf hash does not
  match its bytes;
* a checkpoint whose note does not open with the given keys, names another origin, or whose
  root differs from the root recomputed over the entries before it (an entry in the range since
  the previous checkpoint was changed), or that signs more entries than the log has (entries at
  the end were removed);
* two checkpoints of one size with different roots (a fork).

Because every checkpoint's root is recomputed from the same entry stream, each checkpoint is
consistent with the previous one exactly when both verify; :func:`verify_checkpoint_chain`
additionally checks the RFC 9162 consistency proofs a log serves between consecutive checkpoints,
which is what a monitor without the entries does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice, pairwise
from typing import Any

from gli_core import merkle
from gli_core.audit import note as notes
from gli_core.audit.entry import AuditEntryInvalid, parse_entry
from gli_core.audit.log import frontier_root, push_leaf, push_subtree

_sha256 = hashlib.sha256


@dataclass(frozen=True)
class VerifyFailure:
    """The first thing that failed: an entry (``index``) or a checkpoint (``size``)."""

    kind: str  # "entry" or "checkpoint"
    reason: str
    index: int | None = None
    size: int | None = None

    def __str__(self) -> str:
        where = f"entry {self.index}" if self.kind == "entry" else f"checkpoint of size {self.size}"
        return f"{where}: {self.reason}"


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    latest_size: int = 0
    latest_root: str = ""
    uncovered: int = 0
    beyond: int = 0
    failure: VerifyFailure | None = None
    verified_by: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "latest_checkpoint_size": self.latest_size,
            "latest_checkpoint_root": self.latest_root,
            "entries_after_latest_checkpoint": self.uncovered,
            "checkpoints_beyond_entries": self.beyond,
            "verified_by": sorted(set(self.verified_by)),
            "failure": None
            if self.failure is None
            else {
                "kind": self.failure.kind,
                "index": self.failure.index,
                "size": self.failure.size,
                "reason": self.failure.reason,
            },
        }


@dataclass(frozen=True)
class _Opened:
    size: int
    root: bytes
    origin: str


def _open_checkpoints(
    texts: Sequence[str], verifiers: Sequence[notes.NoteVerifier], origin: str | None, report: VerifyReport
) -> list[_Opened] | None:
    opened: dict[int, _Opened] = {}
    for text in texts:
        try:
            note = notes.open_note(text, verifiers)
            cp = notes.parse_checkpoint(note.body)
        except notes.NoteInvalid as exc:
            size = _claimed_size(text)
            report.failure = VerifyFailure("checkpoint", f"{exc.detail} ({exc.code})", size=size)
            return None
        report.verified_by.extend(note.verified_by)
        if origin is not None and cp.origin != origin:
            report.failure = VerifyFailure(
                "checkpoint", f"names origin {cp.origin!r}, not this log's {origin!r}", size=cp.tree_size
            )
            return None
        origin = cp.origin
        seen = opened.get(cp.tree_size)
        if seen is not None and seen.root != cp.root_hash:
            report.failure = VerifyFailure(
                "checkpoint",
                "two signed checkpoints of this size have different roots: the log forked",
                size=cp.tree_size,
            )
            return None
        opened[cp.tree_size] = _Opened(cp.tree_size, cp.root_hash, cp.origin)
    return [opened[s] for s in sorted(opened)]


def _claimed_size(text: str) -> int | None:
    lines = text.split("\n")
    try:
        return int(lines[1])
    except (IndexError, ValueError):
        return None


def verify_log(
    entries: Iterable[tuple[bytes, bytes | None]],
    checkpoint_notes: Sequence[str],
    verifiers: Sequence[notes.NoteVerifier],
    *,
    origin: str | None = None,
    archive: bool = False,
) -> VerifyReport:
    """Verify ``entries`` (leaf data and, when the store keeps one, its stored leaf hash) in order.

    Args:
        entries: every entry of the log from index 0, as ``(leaf data, stored leaf hash or None)``.
        checkpoint_notes: the signed checkpoint notes to check (any order).
        verifiers: the keys whose signature makes a checkpoint trusted.
        origin: the log's origin; None takes the first checkpoint's.
        archive: the entries are an archive's sealed segments, which lag behind the checkpoints
            shipped with them: checkpoints beyond the last sealed entry are counted
            (``report.beyond``), not failed. Over the live log (the default) such a checkpoint
            means entries at the end were removed.

    Returns:
        The report; ``report.failure`` is the first failure, None when everything verified.
    """
    it = iter(entries)

    def chunks() -> Iterator[tuple[list[bytes], list[bytes | None]]]:
        while batch := list(islice(it, CHUNK)):
            yield [d for d, _ in batch], [h for _, h in batch]

    return verify_chunks(chunks(), checkpoint_notes, verifiers, origin=origin, archive=archive)


#: Entries verified together: their shape by one pattern match, their leaves by ``map`` in C.
CHUNK = 16_384
#: Complete subtrees of 2**BLOCK_LEVEL leaves are reduced by ``merkle.root`` and pushed whole.
BLOCK_LEVEL = 10

#: The canonical shape of an entry (RFC 8785 orders the members), one per line of a chunk.
_SHAPE = re.compile(
    rb'^\{"actor":"(?:user|device|service):[^"\n]*","index":(0|[1-9][0-9]*),"payload":\{[^\n]*\},'
    rb'"tenant":"[^"\n]*","time_ms":(?:0|[1-9][0-9]*),"type":"[a-z_]+\.[a-z_]+","v":1\}$',
    re.MULTILINE,
)
_digest = type(hashlib.sha256()).digest


def _first_bad_entry(datas: Sequence[bytes], base: int) -> VerifyFailure:
    """Name the first entry of a chunk whose shape or index is wrong (the slow, exact pass)."""
    for offset, data in enumerate(datas):
        index = base + offset
        try:
            entry = parse_entry(data)
        except AuditEntryInvalid as exc:
            return VerifyFailure("entry", exc.detail, index=index)
        if entry["index"] != index:
            return VerifyFailure(
                "entry",
                f"says index {entry['index']} but is entry {index}: an entry was removed, inserted or "
                "reordered at or before this position",
                index=index,
            )
        if _SHAPE.fullmatch(data) is None:
            return VerifyFailure("entry", "is not in the canonical form of an entry (RFC 8785)", index=index)
    return VerifyFailure("entry", "a chunk of entries does not have the shape of the log", index=base)


def verify_chunks(
    chunks: Iterable[tuple[Sequence[bytes], Sequence[bytes | None]]],
    checkpoint_notes: Sequence[str],
    verifiers: Sequence[notes.NoteVerifier],
    *,
    origin: str | None = None,
    archive: bool = False,
) -> VerifyReport:
    """:func:`verify_log` over chunks ``(leaf data list, stored leaf hash list)`` of consecutive entries.

    Per chunk: every entry's shape and index are checked by one pattern over the newline-joined
    chunk (canonical JSON holds no newline); the leaf hashes are computed with ``map`` and
    compared with the stored ones as lists; complete aligned subtrees of 2**10 leaves are reduced
    by :func:`gli_core.merkle.root` and pushed onto the frontier whole. Any disagreement falls
    back to the entry-by-entry pass that names the first failing entry.
    """
    report = VerifyReport()
    checkpoints = _open_checkpoints(checkpoint_notes, verifiers, origin, report)
    if checkpoints is None:
        return report
    report.checkpoints = len(checkpoints)
    pending = iter(checkpoints)
    target = next(pending, None)
    previous = 0
    while target is not None and target.size == 0:
        if target.root != merkle.EMPTY_ROOT:
            report.failure = VerifyFailure("checkpoint", "the empty tree's root must be SHA-256 of nothing", size=0)
            return report
        target = next(pending, None)
    frontier: list[bytes] = []
    count = 0
    block = 1 << BLOCK_LEVEL
    for datas, stored in chunks:
        n = len(datas)
        indexes = _SHAPE.findall(b"\n".join(datas))
        if len(indexes) != n or indexes != [str(i).encode() for i in range(count, count + n)]:
            report.failure = _first_bad_entry(datas, count)
            return report
        leaves = list(map(_digest, map(_sha256, map(b"\x00".__add__, datas))))
        if any(h is not None for h in stored) and leaves != list(stored):
            bad = next(i for i, (a, b) in enumerate(zip(leaves, stored, strict=True)) if b is not None and a != b)
            report.failure = VerifyFailure(
                "entry", "its bytes do not match its stored leaf hash: the entry was changed", index=count + bad
            )
            return report
        pos = 0
        while pos < n:
            stop = n if target is None else min(n, pos + target.size - count)
            while pos < stop:
                if count % block == 0 and stop - pos >= block:
                    push_subtree(frontier, count, merkle.root(leaves[pos : pos + block]), BLOCK_LEVEL)
                    pos += block
                    count += block
                else:
                    push_leaf(frontier, count, leaves[pos])
                    pos += 1
                    count += 1
            if target is not None and count == target.size:
                if frontier_root(frontier) != target.root:
                    report.failure = VerifyFailure(
                        "checkpoint",
                        f"the entries do not hash to its signed root: an entry in {previous}..{count - 1} was changed",
                        size=target.size,
                    )
                    return report
                report.latest_size, report.latest_root = target.size, target.root.hex()
                previous = count
                target = next(pending, None)
    report.entries = count
    if target is not None and archive:
        report.beyond = 1 + sum(1 for _ in pending)
    elif target is not None:
        report.failure = VerifyFailure(
            "checkpoint",
            f"signs {target.size} entries but the log has {count}: entries {count}..{target.size - 1} were removed",
            size=target.size,
        )
        return report
    report.uncovered = count - report.latest_size
    return report


def verify_checkpoint_chain(
    checkpoint_notes: Sequence[str],
    verifiers: Sequence[notes.NoteVerifier],
    consistency: Callable[[int, int], Sequence[bytes]],
) -> VerifyFailure | None:
    """Check each checkpoint against the previous one with the log's RFC 9162 consistency proofs.

    ``consistency(first, second)`` returns the proof the log serves. Returns the first failure.
    """
    report = VerifyReport()
    opened = _open_checkpoints(checkpoint_notes, verifiers, None, report)
    if opened is None:
        return report.failure
    for older, newer in pairwise(opened):
        if older.size == 0:
            continue
        try:
            merkle.verify_consistency(
                older.size, newer.size, older.root, newer.root, consistency(older.size, newer.size)
            )
        except merkle.MerkleProofInvalid as exc:
            return VerifyFailure(
                "checkpoint",
                f"is not consistent with the checkpoint of size {older.size}: {exc.detail}",
                size=newer.size,
            )
    return None
