"""Canonical bytes (RFC 8785) and domain separation: properties over arbitrary JSON."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.canonical import canonical_bytes, domain_bytes
from sync_protocol.errors import Malformed
from tests.sync_protocol.reference import jcs_reference
from tests.sync_protocol.strategies import json_objects, json_values, relaxed

PURPOSES = ["grant", "record", "batch", "enroll", "export", "ticket-code"]


def reorder(value: Any, rnd: random.Random) -> Any:
    """The same JSON value with every object's members inserted in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: reorder(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [reorder(v, rnd) for v in value]
    return value


@relaxed
@given(json_values)
def test_equals_rfc8785_and_an_independent_encoder(value: Any) -> None:
    data = canonical_bytes(value)
    assert data == rfc8785.dumps(value)
    assert data == jcs_reference(value)


@relaxed
@given(json_objects, st.randoms(use_true_random=False))
def test_key_order_independent_and_deterministic(obj: dict[str, Any], rnd: random.Random) -> None:
    shuffled = reorder(obj, rnd)
    assert canonical_bytes(shuffled) == canonical_bytes(obj)
    assert canonical_bytes(obj) == canonical_bytes(obj)


@relaxed
@given(json_values)
def test_canonical_text_is_json_of_the_same_value(value: Any) -> None:
    data = canonical_bytes(value)
    assert json.loads(data.decode("utf-8")) == value
    # Canonical of canonical: parsing and encoding again changes nothing.
    assert canonical_bytes(json.loads(data)) == data


@relaxed
@given(json_objects)
def test_object_members_are_sorted_by_utf16_code_units(obj: dict[str, Any]) -> None:
    decoded = json.loads(canonical_bytes(obj))
    keys = list(decoded)
    assert keys == sorted(keys, key=lambda k: k.encode("utf-16-be"))


def test_utf16_order_is_not_code_point_order() -> None:
    obj = {"\uff61": 1, "\U0001f600": 2}
    assert canonical_bytes(obj).decode("utf-8") == '{"\U0001f600":2,"\uff61":1}'


def test_no_whitespace_and_utf8() -> None:
    assert canonical_bytes({"b": [1, 2], "a": {"é": "€"}}) == '{"a":{"é":"€"},"b":[1,2]}'.encode()


@relaxed
@given(st.sampled_from(PURPOSES), json_values)
def test_domain_bytes_is_prefix_nul_canonical(purpose: str, value: Any) -> None:
    data = domain_bytes(purpose, value)
    assert data == f"tombola/{purpose}/v1".encode() + b"\x00" + canonical_bytes(value)


@relaxed
@given(st.sampled_from(PURPOSES), st.sampled_from(PURPOSES), json_values, json_values)
def test_domains_never_collide(p: str, q: str, x: Any, y: Any) -> None:
    """Bytes made for one purpose are never the bytes of another purpose."""
    if p != q:
        assert domain_bytes(p, x) != domain_bytes(q, y)
        assert domain_bytes(p, x).split(b"\x00", 1)[0] != domain_bytes(q, y).split(b"\x00", 1)[0]


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        -(2**53),
        {"a": 10**30},
        float("nan"),
        float("inf"),
        {"s": "\ud800"},
        {"\udfff": 1},
        {1, 2},
        b"bytes",
        object(),
        {1: "non-string key"},
    ],
    ids=lambda v: type(v).__name__ if type(v) is object else repr(v),  # stable ids: pytest-xdist workers compare them
)
def test_what_has_no_canonical_form_is_malformed(value: Any) -> None:
    with pytest.raises(Malformed):
        canonical_bytes(value)
