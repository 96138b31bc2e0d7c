"""A device that is due a grant and gets none hears why (``RaffleInfo.no_grant``), and its seller
reads it, instead of "sync to get more" on a raffle whose numbers are all with other devices.
Seen: a later device had nothing and no message; the reason was only in the server's log."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pos_client import PosClient
from pos_client.errors import NumbersExhausted
from server.context import Tombola
from server.enrollment import service as enrollment
from tests.support.app import seed


def test_a_device_enrolled_when_every_number_is_granted_is_told_why(
    client: TestClient, tombola: Tombola, tmp_path: Path
) -> None:
    seeded = seed(tombola, numbers=1500, grant_size=1000)
    codes = [seeded.code] + [enrollment.create_enrollment_code(tombola, seeded.venue_id)["code"] for _ in range(2)]
    devices = [PosClient(tmp_path / f"pos{i}.db", http=client) for i in range(3)]
    try:
        for pos, code in zip(devices, codes, strict=True):
            pos.enroll(code, str(client.base_url))
        granted = [[r.numbers_granted for r in pos.status().raffles] for pos in devices]
        assert granted == [[1000], [500], [0]]  # the second grant sized to what was left; then nothing
        assert not any(a.startswith("no_more_numbers:") for a in devices[0].status().alerts)

        with pytest.raises(NumbersExhausted) as refused:
            devices[2].sell(raffle_id=seeded.raffle_id, quantity=1)
        assert "every number of the raffle is granted" in refused.value.detail
        assert "sync to get more" not in refused.value.detail
        assert any(a.startswith("no_more_numbers:") for a in devices[2].status().alerts)

        # a sync says it again (the device still holds nothing)
        devices[2].sync()
        assert [r.numbers_left for r in devices[2].status().raffles] == [0]
        assert any(a.startswith("no_more_numbers:") for a in devices[2].status().alerts)
    finally:
        for pos in devices:
            pos.close()


def test_the_wire_names_the_reason_and_omits_it_otherwise(client: TestClient, tombola: Tombola) -> None:
    from tests.simulators.device import RawDevice

    seeded = seed(tombola, numbers=1000, grant_size=1000)
    first, second = RawDevice(), RawDevice()
    answers = [
        device.enroll(client, code).to_dict()
        for device, code in (
            (first, seeded.code),
            (second, enrollment.create_enrollment_code(tombola, seeded.venue_id)["code"]),
        )
    ]
    assert "no_grant" not in answers[0]["raffles"][0]  # an optional member: absent when there is nothing to say
    assert answers[1]["raffles"][0]["no_grant"] == "raffle_numbers_exhausted"
    assert answers[1]["grants"] == []
