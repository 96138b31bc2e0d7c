"""Fixtures of the server tests: a device enrolled at the seeded venue."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.simulators.device import RawDevice
from tests.support.app import Seed


@pytest.fixture
def device(client: TestClient, seeded: Seed) -> RawDevice:
    """A raw protocol device, enrolled with the seeded venue's code (it holds its first grant)."""
    dev = RawDevice()
    dev.enroll(client, seeded.code)
    return dev
