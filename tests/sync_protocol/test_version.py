"""Protocol versions: MAJOR.MINOR, the major version decides, and it is judged first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol import PROTOCOL_VERSION, check_version
from sync_protocol.errors import UnsupportedVersion
from tests.sync_protocol.strategies import MESSAGES, relaxed


def test_own_version_is_supported() -> None:
    assert check_version(PROTOCOL_VERSION) == PROTOCOL_VERSION
    assert PROTOCOL_VERSION.split(".")[0] == "1"


@relaxed
@given(st.integers(min_value=0, max_value=10**6))
def test_any_minor_of_major_1_is_accepted(minor: int) -> None:
    assert check_version(f"1.{minor}") == f"1.{minor}"


@relaxed
@given(st.integers(min_value=0, max_value=10**6).filter(lambda m: m != 1), st.integers(0, 99))
def test_other_majors_are_refused(major: int, minor: int) -> None:
    with pytest.raises(UnsupportedVersion):
        check_version(f"{major}.{minor}")


@pytest.mark.parametrize(
    "version", ["", "1.0.0", "v1.0", "1.x", " 1.0", "1.0 ", "-1.0", "\u00b9.0", "\u0661.0", "1" * 5000 + ".0"]
)
def test_odd_versions_are_refused(version: str) -> None:
    with pytest.raises(UnsupportedVersion):
        check_version(version)


@relaxed
@given(st.text())
def test_any_text_is_accepted_or_refused_never_crashes(version: str) -> None:
    try:
        assert check_version(version) == version
    except UnsupportedVersion:
        return
    major = version.split(".")[0]
    assert major.isascii() and major.lstrip("0") == "1"


@pytest.mark.parametrize(
    "cls", [cls for cls in MESSAGES if "protocol_version" in cls.model_fields], ids=lambda c: c.__name__
)
def test_version_is_judged_before_the_shape(cls: type) -> None:
    """A 2.0 message may look different: its sender must learn unsupported_version."""
    with pytest.raises(UnsupportedVersion):
        cls.from_dict({"protocol_version": "2.0", "something": "else"})  # type: ignore[attr-defined]
    with pytest.raises(UnsupportedVersion):
        cls.from_dict({"protocol_version": "2.0"})  # type: ignore[attr-defined]
