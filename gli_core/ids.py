"""UUIDv7 identifiers (RFC 9562 section 5.7) made in batches for the ticket rows of a sync.

``uuid6.uuid7()`` costs a few microseconds per id in Python; a sync records hundreds of tickets
at once, so :func:`uuid7_batch` draws the randomness once per batch. Layout::

    unix_ts_ms (48) | ver 0b0111 (4) | rand_a (12) | var 0b10 (2) | rand_b (62)

``rand_a || rand_b`` (74 bits) starts at a random 73-bit value and counts up by one per id
(RFC 9562 section 6.2, method 2: monotonic random), so the ids of one batch sort in the order
they were made and two batches collide only if 73 random bits do. The primary key is the last
guard: a collision aborts the recording transaction, and the device's retry records it.
"""

from __future__ import annotations

import os
import time

__all__ = ["uuid7_batch"]

_RAND_B = (1 << 62) - 1


def uuid7_batch(count: int, *, now_ms: int | None = None) -> list[str]:
    """``count`` UUIDv7 strings (lower-case, 8-4-4-4-12), increasing, of the current millisecond."""
    ms = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) & 0xFFFF_FFFF_FFFF
    high = ms << 80 | 0x7 << 76 | 0x2 << 62
    start = int.from_bytes(os.urandom(10), "big") >> 7  # 73 random bits
    out = []
    for r in range(start, start + count):
        h = "%032x" % (high | (r >> 62) << 64 | (r & _RAND_B))
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out
