"""UUIDv7 ticket ids made per batch (gli_core.ids): RFC 9562 layout, time, order, uniqueness."""

from __future__ import annotations

import time
import uuid

from gli_core.ids import uuid7_batch


def test_layout_time_order_and_uniqueness() -> None:
    before = time.time_ns() // 1_000_000
    ids = uuid7_batch(5000)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 5000 and ids == sorted(ids)
    for text in (ids[0], ids[-1]):
        u = uuid.UUID(text)
        assert str(u) == text  # canonical lower-case 8-4-4-4-12
        assert u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= u.int >> 80 <= after  # unix_ts_ms
    # Two batches of the same millisecond still differ (73 random bits each).
    again = uuid7_batch(5000, now_ms=before)
    assert not set(again) & set(uuid7_batch(5000, now_ms=before))
    assert uuid7_batch(0) == []
