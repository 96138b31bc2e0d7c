"""The enrollment link (docs/sync-protocol.md section 8.1) against its vectors in
tests/vectors/enrollment-link/, and made then read back for any server address and code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.enrollment_link import BadEnrollmentLink, EnrollmentLink, enrollment_link, parse_enrollment_link

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "enrollment-link" / "enrollment-links.json").read_text("utf-8")
)


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["text"].strip()[:40])
def test_valid_links_read_as_the_vectors_say(case: dict[str, Any]) -> None:
    assert parse_enrollment_link(case["text"]) == EnrollmentLink(case["server_url"], case["code"], case["server_key"])


@pytest.mark.parametrize("case", VECTORS["made"], ids=lambda c: c["link"])
def test_links_are_made_as_the_vectors_say(case: dict[str, Any]) -> None:
    assert enrollment_link(case["server_url"], case["code"], case["server_key"]) == case["link"]


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["why"])
def test_invalid_links_are_refused_with_their_code_and_a_sentence(case: dict[str, Any]) -> None:
    with pytest.raises(BadEnrollmentLink) as caught:
        parse_enrollment_link(case["text"])
    assert caught.value.code == case["expect_error"]
    assert caught.value.detail.startswith("that ")


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){0,2}", fullmatch=True)
prefixes = st.lists(st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True), max_size=3).map(
    lambda parts: "".join("/" + p for p in parts)
)
codes = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=4, max_size=64).filter(
    lambda c: c.strip() == c
)
keys = st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=128)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=hosts,
    port=st.none() | st.integers(1, 65535),
    prefix=prefixes,
    code=codes,
    key=keys,
)
def test_a_made_link_reads_back(
    scheme: str, host: str, port: int | None, prefix: str, code: str, key: str | None
) -> None:
    server_url = f"{scheme}://{host}{'' if port is None else f':{port}'}{prefix}"
    assert parse_enrollment_link(enrollment_link(server_url, code, key)) == EnrollmentLink(server_url, code, key)
