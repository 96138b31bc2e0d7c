"""The orjson fast path of ``canonical_bytes`` gives exactly the RFC 8785 bytes, or is not taken."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_protocol.canonical import _orjson_is_jcs, canonical_bytes

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=1500)
@given(json_values)
def test_fast_path_equals_rfc8785(value: object) -> None:
    try:
        reference = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        assert not _orjson_is_jcs(value)
        return
    assert canonical_bytes(value) == reference


def test_fast_path_refuses_what_it_cannot_spell() -> None:
    assert not _orjson_is_jcs({"a": 1.5})
    assert not _orjson_is_jcs({"é": 1})
    assert not _orjson_is_jcs({"a": "\x01"})
    assert not _orjson_is_jcs({"a": 2**53})
    assert _orjson_is_jcs({"a": ["b", 1, None, True, {"c": "ü 𝄞"}]})


class _Str(str):
    pass


class _Int(int):
    pass


mixed_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=True)
    | st.text()
    | st.text().map(_Str)
    | st.integers(-(2**60), 2**60).map(_Int),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner)
        | st.dictionaries(st.text(max_size=8) | st.text(max_size=3).map(_Str) | st.integers(), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=1500)
@given(mixed_values)
def test_the_loop_judges_as_the_definition(value: object) -> None:
    """``_orjson_is_jcs`` (one loop over exact types) agrees with the recursive definition."""
    from sync_protocol.canonical import _is_jcs_walk

    assert _orjson_is_jcs(value) == _is_jcs_walk(value)
