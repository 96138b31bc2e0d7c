"""The device-facing errors of sync_protocol: wire form, statuses, rejection codes."""

from __future__ import annotations

import re

import pytest

from sync_protocol import errors
from sync_protocol.errors import SALE_REJECTION_CODES, SaleRejected, SequenceGap, TombolaError


def all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *all_subclasses(sub)]
    return out


PROTOCOL_ERRORS = [TombolaError, *(c for c in all_subclasses(TombolaError) if c.__module__ == errors.__name__)]


@pytest.mark.parametrize("cls", PROTOCOL_ERRORS, ids=lambda c: c.__name__)
def test_code_and_status(cls: type[TombolaError]) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.code)
    assert 400 <= cls.status < 600
    assert "code" in vars(cls), f"{cls.__name__} must name its own code"


def test_wire_form() -> None:
    error = SequenceGap("record 4 is missing", missing_seq=4, seq=5)
    assert error.to_dict() == {"error": "sequence_gap", "detail": "record 4 is missing", "missing_seq": 4, "seq": 5}
    assert error.diagnostics() == "sequence_gap: record 4 is missing"
    assert str(error) == "record 4 is missing"
    assert error.status == 409


def test_sale_rejection_codes_are_the_sale_rejected_subclasses() -> None:
    subclasses = {c.code for c in all_subclasses(SaleRejected) if c.__module__ == errors.__name__}
    assert subclasses == SALE_REJECTION_CODES
    assert "sale_rejected" not in SALE_REJECTION_CODES
    assert all(400 <= c.status < 500 for c in all_subclasses(SaleRejected))
