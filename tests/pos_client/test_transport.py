"""The device parses the server's answers as I-JSON (docs/sync-protocol.md section 4)."""

from __future__ import annotations

import httpx
import pytest

from pos_client.errors import ServerError
from pos_client.transport import RetryPolicy, Transport


def _transport(body: bytes) -> Transport:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return Transport(http, "http://server", RetryPolicy(attempts=1, sleep=lambda _: None))


def test_an_answer_with_a_duplicate_member_is_refused() -> None:
    """The last member no longer silently wins: an ack naming two device ids is no answer."""
    with pytest.raises(ServerError):
        _transport(b'{"device_id": "dv-A", "device_id": "dv-B", "acked_seq": 0}').post("/v1/sync", {})


def test_a_plain_answer_is_read() -> None:
    answer = _transport(b'{"device_id": "dv-A", "acked_seq": 0}').post("/v1/sync", {})
    assert answer.body == {"device_id": "dv-A", "acked_seq": 0}
