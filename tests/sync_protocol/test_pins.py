"""PIN hashes (sync_protocol.pins): a PIN verifies against its own hash only, and only a PIN of
4 to 8 ASCII digits is one; the device's lock grows with each wrong PIN and never shrinks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_client.sellers import LOCK_MAX_MS, MAX_FAILURES, lock_ms
from sync_protocol.errors import Malformed
from sync_protocol.pins import PIN_SCHEME, PinHash, check_pin, hash_pin, verify_pin

PINS = st.text(alphabet="0123456789", min_size=4, max_size=8)
STORED_1234 = hash_pin("1234")


@settings(max_examples=15, deadline=None)
@given(pin=PINS, other=PINS, salt=st.binary(min_size=16, max_size=16))
def test_a_pin_matches_its_own_hash_only(pin: str, other: str, salt: bytes) -> None:
    stored = hash_pin(pin, salt=salt)
    assert stored.pin_scheme == PIN_SCHEME
    assert verify_pin(pin, stored)
    assert verify_pin(other, stored) == (other == pin)
    assert not verify_pin(pin, PinHash("scrypt-n1024-r8-p1", stored.pin_salt, stored.pin_hash))


@settings(max_examples=200)
@given(text=st.text(max_size=12))
def test_only_four_to_eight_ascii_digits_are_a_pin(text: str) -> None:
    is_pin = 4 <= len(text) <= 8 and all(c in "0123456789" for c in text)
    if is_pin:
        assert check_pin(text) == text
    else:
        with pytest.raises(Malformed):
            check_pin(text)
        assert not verify_pin(text, STORED_1234)


@given(n=st.integers(min_value=0, max_value=10_000))
def test_the_lock_grows_with_each_wrong_pin_up_to_an_hour(n: int) -> None:
    assert lock_ms(n) <= lock_ms(n + 1) <= LOCK_MAX_MS
    assert (lock_ms(n) > 0) == (n >= MAX_FAILURES)
