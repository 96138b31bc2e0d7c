"""The one I-JSON loader (``sync_protocol.strict_json``): duplicates refused, all else as orjson."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.errors import Malformed
from sync_protocol.strict_json import loads_strict
from tests.sync_protocol.strategies import json_values

DUPLICATES = [
    b'{"device_id": "a", "device_id": "b"}',
    b'{"device_id":"a","device_id":"a"}',  # same value twice is still two members
    b'{"records": [{"seq": 1, "x": {"beta": "00", "beta": "11"}}]}',
    '{"caf\\u00e9": 1, "café": 2}'.encode(),  # one name, spelt two ways
]


@pytest.mark.parametrize("body", DUPLICATES)
def test_a_duplicate_member_name_is_malformed(body: bytes) -> None:
    with pytest.raises(Malformed) as err:
        loads_strict(body)
    assert err.value.code == "malformed" and "two members" in err.value.detail


@pytest.mark.parametrize("body", [b"", b"{", b'{"a": NaN}', b'{"a": "\\ud800"}', b"\xff", b"[" * 2000 + b"]" * 2000])
def test_what_is_not_i_json_is_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        loads_strict(body)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_any_object_without_duplicates_parses_as_orjson_does(obj: dict[str, Any]) -> None:
    compact = orjson.dumps(obj)
    for text in (compact, json.dumps(obj, indent=1).encode(), json.dumps(obj)):
        assert loads_strict(text) == orjson.loads(compact)
