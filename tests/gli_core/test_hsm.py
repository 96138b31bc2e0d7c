"""The PKCS#11 layer on a real SoftHSM2 token (no mock of PKCS#11): keys generated inside the
token and unable to leave it (I8), Ed25519 and raw RSA operations, rotation, the grant key of
the core, and failing closed with ``hsm_unavailable`` when the token cannot be used."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11.exceptions import AttributeReadOnly, AttributeSensitive, KeyUnextractable, PKCS11Error

from gli_core.api import Core
from gli_core.draw.vrf import VrfPublicKey
from gli_core.hsm import (
    PURPOSES,
    Hsm,
    HsmConfig,
    HsmEd25519Signer,
    HsmRsaKey,
    HsmUnavailable,
    KeyLabel,
    ensure_softhsm_token,
    open_hsm,
    rotation_due,
)
from gli_core.hsm.softhsm import token_labels
from gli_core.hsm.token import ed25519_public_from_ec_point
from server.context import Tombola
from sync_protocol.errors import GrantInvalid
from sync_protocol.messages import RangeGrant
from sync_protocol.signing import KeyRing, key_id_for
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, Seed
from tests.support.hsm import HsmToken

pytestmark = pytest.mark.hsm

BIN = Path(sys.executable).parent


def _label(hsm: Hsm, name: str) -> str:
    return f"{hsm.config.key_prefix}-{name}"


# -- keys never leave the token (I8) ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_keys_are_generated_sensitive_and_non_extractable(hsm: Hsm, kind: str) -> None:
    label = _label(hsm, kind)
    key = hsm.ensure_ed25519_key(label) if kind == "ed25519" else hsm.ensure_rsa_key(label)
    assert key.label == label
    assert hsm.private_key_attributes(label) == {
        "token": True,
        "private": True,
        "sensitive": True,
        "always_sensitive": True,
        "extractable": False,
        "never_extractable": True,
        "local": True,  # generated in the token, not imported
    }


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_a_private_key_cannot_be_read_wrapped_or_made_extractable(hsm: Hsm, kind: str) -> None:
    label = _label(hsm, kind)
    hsm.ensure_ed25519_key(label) if kind == "ed25519" else hsm.ensure_rsa_key(label)
    secret_attr = Attribute.VALUE if kind == "ed25519" else Attribute.PRIVATE_EXPONENT

    def attempts(session: object) -> list[type[Exception]]:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)  # type: ignore[attr-defined]
        wrapping = session.generate_key(  # type: ignore[attr-defined]
            KeyType.AES, 256, store=False, capabilities=MechanismFlag.WRAP | MechanismFlag.ENCRYPT
        )
        failures: list[type[Exception]] = []
        for attempt in (
            lambda: key[secret_attr],
            lambda: wrapping.wrap_key(key),
            lambda: key.__setitem__(Attribute.EXTRACTABLE, True),
            lambda: key.__setitem__(Attribute.SENSITIVE, False),
        ):
            try:
                attempt()
            except PKCS11Error as exc:
                failures.append(type(exc))
            else:
                failures.append(type(None))  # type: ignore[arg-type]
        return failures

    read, wrap, extractable, sensitive = hsm._run("export attempts", attempts)
    assert read is AttributeSensitive
    assert wrap is KeyUnextractable
    assert extractable is AttributeReadOnly
    assert sensitive is AttributeReadOnly
    assert hsm.private_key_attributes(label)["extractable"] is False


# -- Ed25519 ------------------------------------------------------------------------------------


def test_ed25519_signatures_verify_with_cryptography(hsm: Hsm) -> None:
    signer = hsm.ensure_ed25519_key(_label(hsm, "sig"))
    assert len(signer.public_key) == 32
    assert signer.key_id == key_id_for(signer.public_key)
    public = Ed25519PublicKey.from_public_bytes(signer.public_key)
    for message in (b"", b"grant", secrets.token_bytes(10_000)):
        signature = signer.sign(message)
        assert len(signature) == 64
        public.verify(signature, message)
        with pytest.raises(InvalidSignature):
            public.verify(signature, message + b"x")
    # Ed25519 is deterministic: the token signs the same message the same way
    assert signer.sign(b"again") == signer.sign(b"again")


def test_ensure_finds_the_key_it_made(hsm: Hsm) -> None:
    label = _label(hsm, "same")
    first = hsm.ensure_ed25519_key(label)
    again = hsm.ensure_ed25519_key(label)
    assert again.public_key == first.public_key
    with pytest.raises(HsmUnavailable, match="not rsa"):
        hsm.ensure_rsa_key(label)


def test_ec_point_decoding() -> None:
    raw = bytes(range(32))
    assert ed25519_public_from_ec_point(b"\x04\x20" + raw) == raw  # DER OCTET STRING (PKCS#11 3.0)
    assert ed25519_public_from_ec_point(raw) == raw  # some modules give the bare point
    with pytest.raises(HsmUnavailable):
        ed25519_public_from_ec_point(b"\x04\x21" + raw + b"\0")


def test_grants_signed_in_the_token_verify_with_the_keyring(tombola: Tombola, seeded: Seed) -> None:
    signer = tombola.core.registry.signer
    assert isinstance(signer, HsmEd25519Signer)  # no software key anywhere in the running core
    grant = tombola.core.issue_grant(seeded.raffle_id, "dv-hsm-test")
    keys = KeyRing(tombola.core.public_keys())
    assert grant.signer_key_id == signer.key_id
    grant.verify(keys)
    RangeGrant.verified(grant.to_dict(), keys)
    tampered = grant.to_dict() | {"last_number": grant.last_number + 1}
    with pytest.raises(GrantInvalid, match="does not verify"):
        RangeGrant.verified(tampered, keys)


def test_devices_verify_hsm_grants_at_enrollment(client: TestClient, seeded: Seed) -> None:
    device = RawDevice()
    device.enroll(client, seeded.code)  # verifies every grant with the pinned server keys
    assert device.grants and all(g.signer_key_id in device.keys for g in device.grants)


# -- raw RSA (what RSA-FDH-VRF proving needs) ---------------------------------------------------


def test_raw_rsa_is_rsasp1_in_the_token(hsm: Hsm) -> None:
    key = hsm.ensure_rsa_key(_label(hsm, "vrf"))
    assert key.bits == 2048 and key.size == 256 and key.e == 65537
    public = VrfPublicKey(key.n, key.e)
    assert key.key_id == public.key_id == "rsa-fdh-vrf-sha256:" + public.fingerprint[:16]  # one key, one id
    assert key.public().key_id == public.key_id and hashlib.sha256(key.public().public_key).hexdigest() == (
        public.fingerprint
    )
    for m in (0, 1, 2, 65537, key.n - 1, int.from_bytes(secrets.token_bytes(255), "big")):
        s = key.raw_rsa(m)
        assert 0 <= s < key.n
        assert pow(s, key.e, key.n) == m  # s = m^d mod n, d never leaves the token
    for bad in (-1, key.n, key.n + 5):
        with pytest.raises(ValueError):
            key.raw_rsa(bad)


def test_raw_rsa_makes_a_pkcs1_signature_cryptography_accepts(hsm: Hsm) -> None:
    """RSASP1 over an EMSA-PKCS1-v1_5 encoding (RFC 8017 9.2) is an RSASSA-PKCS1-v1_5 signature."""
    key = hsm.ensure_rsa_key(_label(hsm, "pkcs1"))
    message = b"ticket set root"
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(message).digest()
    em = b"\x00\x01" + b"\xff" * (key.size - len(digest_info) - 3) + b"\x00" + digest_info
    signature = key.raw_rsa_bytes(em)
    public = serialization.load_der_public_key(key.public_key_der())
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]


# -- rotation -----------------------------------------------------------------------------------


def test_rotation_keeps_old_public_keys(hsm: Hsm) -> None:
    first = hsm.grant_signer()  # generated on first use
    assert first.purpose == "grant" and first.created_at is not None
    old_signature = first.sign(b"old grant")
    second = hsm.rotate("grant")
    assert isinstance(second, HsmEd25519Signer)
    assert hsm.grant_signer().key_id == second.key_id != first.key_id
    assert [k.key_id for k in hsm.grant_signers()] == [first.key_id, second.key_id]
    published = {k.key_id: k for k in hsm.public_keys("grant")}
    assert set(published) == {first.key_id, second.key_id}
    Ed25519PublicKey.from_public_bytes(published[first.key_id].public_key).verify(old_signature, b"old grant")
    assert first.sign(b"still usable") != second.sign(b"still usable")  # the old key stays in the token


def test_rotation_of_each_purpose_and_labels(hsm: Hsm) -> None:
    assert set(PURPOSES) == {"grant", "vrf", "audit"}
    vrf = hsm.vrf_key()
    rotated = hsm.rotate("vrf")
    assert isinstance(rotated, HsmRsaKey) and rotated.key_id != vrf.key_id
    assert hsm.vrf_key().key_id == rotated.key_id
    labels = [k.label for k in hsm.keys()]
    assert labels == sorted(labels)
    parsed = KeyLabel.parse(rotated.label)
    assert parsed is not None and parsed.prefix == hsm.config.key_prefix and parsed.purpose == "vrf"
    assert str(parsed) == rotated.label
    with pytest.raises(ValueError):
        hsm.rotate("coffee")
    with pytest.raises(HsmUnavailable) as exc:
        hsm.current("audit", create=False)
    assert exc.value.reason == "key"


def test_rotation_due_after_ninety_days(hsm: Hsm) -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    assert not rotation_due(created, now=created + timedelta(days=89, hours=23))
    assert rotation_due(created, now=created + timedelta(days=90))
    assert rotation_due(created, days=30, now=created + timedelta(days=30))
    assert hsm.rotation_due("audit")  # no key at all
    key = hsm.current("audit")
    assert key.created_at is not None
    assert not hsm.rotation_due("audit", now=key.created_at + timedelta(days=89))
    assert hsm.rotation_due("audit", now=key.created_at + timedelta(days=90))
    later = hsm.rotate("audit", now=key.created_at + timedelta(days=90))
    assert not hsm.rotation_due("audit", now=key.created_at + timedelta(days=91))
    assert later.created_at == key.created_at + timedelta(days=90)


def test_rotation_in_the_same_second_keeps_generation_order(hsm: Hsm) -> None:
    now = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
    keys = [hsm.rotate("grant", now=now) for _ in range(3)]
    assert [k.label for k in hsm.keys("grant")] == [k.label for k in keys]
    assert hsm.grant_signer().key_id == keys[-1].key_id


def test_core_records_every_grant_key_generation(hsm_token: HsmToken, tmp_path: Path) -> None:
    """A grant signed before a rotation still verifies with the keys the core publishes after it."""
    config = hsm_token.config(key_prefix="c" + secrets.token_hex(4))
    db = f"sqlite:///{tmp_path}/core.db"
    core = Core.open(db, tmp_path / "keys", hsm=config)
    try:
        from gli_core.api import RaffleSpec

        core.register_raffle(RaffleSpec("rf-rot", 10_000, 0, 2**52))
        before = core.issue_grant("rf-rot", "dv-1")
        assert core.hsm is not None
        core.hsm.rotate("grant")
    finally:
        core.close()
    core = Core.open(db, tmp_path / "keys", hsm=config, run_migrations=False)
    try:
        after = core.issue_grant("rf-rot", "dv-1")
        assert after.signer_key_id != before.signer_key_id
        keys = KeyRing(core.public_keys())
        before.verify(keys)
        after.verify(keys)
        with pytest.raises(GrantInvalid, match="not pinned"):
            before.verify(KeyRing([k for k in core.public_keys() if k.key_id != before.signer_key_id]))
    finally:
        core.close()


# -- failing closed -----------------------------------------------------------------------------


def test_missing_module(tmp_path: Path) -> None:
    with pytest.raises(HsmUnavailable) as exc:
        Hsm.open(HsmConfig(module=str(tmp_path / "libnothere.so"), pin="1234"))
    assert exc.value.reason == "module" and exc.value.status == 503 and exc.value.code == "hsm_unavailable"
    not_a_module = tmp_path / "libfake.so"
    not_a_module.write_bytes(b"not an ELF file")
    with pytest.raises(HsmUnavailable) as exc:
        Hsm.open(HsmConfig(module=str(not_a_module), pin="1234"))
    assert exc.value.reason == "module"


def test_missing_token(hsm_token: HsmToken, hsm: Hsm) -> None:
    with pytest.raises(HsmUnavailable) as exc:
        Hsm.open(hsm_token.config(token_label="no-such-token", softhsm_dir=None))
    assert exc.value.reason == "token" and "no-such-token" in exc.value.detail
    with pytest.raises(HsmUnavailable, match="tombola init") as exc:
        open_hsm(hsm_token.config(token_label="no-such-token"))  # never created behind one's back
    assert "no-such-token" not in token_labels(hsm_token.conf)
    assert len(hsm.generate_random(16)) == 16  # the other sessions logged in again


def test_wrong_or_missing_pin(hsm_token: HsmToken, hsm: Hsm, tmp_path: Path) -> None:
    ensure_softhsm_token(hsm_token.directory, "pin-test", "right-pin", "so-pin-1234")
    with pytest.raises(HsmUnavailable) as exc:
        Hsm.open(hsm_token.config(token_label="pin-test", pin="wrong-pin"))
    assert exc.value.reason == "login" and "wrong-pin" not in exc.value.detail
    with Hsm.open(hsm_token.config(token_label="pin-test", pin="right-pin")) as other:
        assert len(other.generate_random(8)) == 8
        with pytest.raises(HsmUnavailable, match="another PIN"):
            Hsm.open(hsm_token.config(token_label="pin-test", pin="wrong-pin"))
    with pytest.raises(HsmUnavailable) as exc:
        Hsm.open(HsmConfig(token_label="pin-test"))
    assert exc.value.reason == "pin" and "TOMBOLA_HSM_PIN" in exc.value.detail
    with pytest.raises(HsmUnavailable) as exc:
        Hsm.open(HsmConfig(token_label="pin-test", pin_file=tmp_path / "absent"))
    assert exc.value.reason == "pin"
    assert len(hsm.generate_random(8)) == 8


def test_a_failing_call_raises_hsm_unavailable_and_the_next_logs_in_again(hsm: Hsm) -> None:
    signer = hsm.ensure_ed25519_key(_label(hsm, "reconnect"))
    hsm._login.session().close()  # the token drops the session (as a restarted HSM would)
    with pytest.raises(HsmUnavailable) as exc:
        hsm.generate_random(32)
    assert exc.value.reason == "call"
    assert len(hsm.generate_random(32)) == 32
    hsm._module.lib.finalize()  # the whole module goes away under the process
    Ed25519PublicKey.from_public_bytes(signer.public_key).verify(signer.sign(b"back"), b"back")


def test_a_closed_handle_refuses(hsm_token: HsmToken) -> None:
    h = open_hsm(hsm_token.config())
    signer = h.grant_signer()
    h.close()
    h.close()  # idempotent
    with pytest.raises(HsmUnavailable, match="closed"):
        signer.sign(b"after close")


def test_hsm_failure_is_a_503_and_rolls_back_the_grant(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    device = RawDevice()
    device.enroll(client, seeded.code)
    assert tombola.core.hsm is not None
    tombola.core.hsm._login.session().close()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"raffle_id": seeded.raffle_id, "numbers": 10, "reason": "lost roll"}
    resp = client.post(f"/v1/admin/devices/{device.device_id}/extend", json=body, headers=headers)
    assert resp.status_code == 503
    assert resp.json()["error"] == "hsm_unavailable" and resp.json()["reason"] == "call"
    resp = client.post(f"/v1/admin/devices/{device.device_id}/extend", json=body, headers=headers)
    assert resp.status_code == 201
    grant = RangeGrant.verified(resp.json(), device.keys)
    assert grant.first_number == device.grants[-1].last_number + 1  # the failed grant took no numbers


# -- threads ------------------------------------------------------------------------------------


def test_concurrent_threads_share_the_token_safely(hsm: Hsm) -> None:
    signer = hsm.ensure_ed25519_key(_label(hsm, "threads"))
    public = Ed25519PublicKey.from_public_bytes(signer.public_key)
    errors: list[BaseException] = []
    randoms: list[bytes] = []

    def work(i: int) -> None:
        try:
            for j in range(150):
                message = f"{i}:{j}".encode()
                public.verify(signer.sign(message), message)
                randoms.append(hsm.generate_random(32))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(randoms)) == len(randoms) == 8 * 150


def test_generate_random_counts_bytes_not_bits(hsm: Hsm) -> None:
    assert [len(hsm.generate_random(n)) for n in (0, 1, 7, 32, 4096)] == [0, 1, 7, 32, 4096]
    with pytest.raises(ValueError):
        hsm.generate_random(-1)


# -- embedded set-up ----------------------------------------------------------------------------


def test_ensure_softhsm_token_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTHSM2_CONF", os.environ.get("SOFTHSM2_CONF", ""))  # restored after the test
    conf = ensure_softhsm_token(tmp_path / "hsm", "idem", "1234", "5678")
    assert os.environ["SOFTHSM2_CONF"] == str(conf)
    text = conf.read_text()
    assert f"directories.tokendir = {tmp_path / 'hsm' / 'tokens'}" in text
    assert "objectstore.backend = file" in text and "log.level = ERROR" in text
    tokens = sorted(p.name for p in (tmp_path / "hsm" / "tokens").iterdir())
    assert ensure_softhsm_token(tmp_path / "hsm", "idem", "1234", "5678") == conf
    assert sorted(p.name for p in (tmp_path / "hsm" / "tokens").iterdir()) == tokens
    assert token_labels(conf) == ["idem"]
    with pytest.raises(ValueError):
        ensure_softhsm_token(tmp_path / "hsm", "x" * 33, "1234", "5678")


def test_tombola_init_creates_the_embedded_token_pin_and_keys(tmp_path: Path) -> None:
    """``tombola init`` with no HSM settings at all: SoftHSM2 token, PIN file and keys under var/hsm."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOMBOLA_") and k != "SOFTHSM2_CONF"}
    env["TOMBOLA_HOME"] = str(tmp_path / "var")

    def init() -> dict:  # type: ignore[type-arg]
        out = subprocess.run([str(BIN / "tombola"), "init", "--json"], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    first = init()
    pin_file = tmp_path / "var" / "hsm" / "pin"
    assert first["hsm"]["pin_file"] == str(pin_file) and pin_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "var" / "hsm" / "so-pin").stat().st_mode & 0o777 == 0o600
    assert pin_file.read_text().strip() not in json.dumps(first)
    assert first["hsm"]["token_label"] == "tombola"
    assert {k["purpose"] for k in first["hsm"]["keys"]} == {"grant", "vrf", "audit"}
    grant_key = next(k for k in first["hsm"]["keys"] if k["purpose"] == "grant")
    assert [k["key_id"] for k in first["server_keys"]] == [grant_key["key_id"]]
    assert not (tmp_path / "var" / "keys" / "grant-signing.pem").exists()
    second = init()
    assert second["server_keys"] == first["server_keys"] and second["hsm"]["keys"] == first["hsm"]["keys"]
    env["TOMBOLA_HSM_TOKEN_LABEL"] = "wrong-label"
    out = subprocess.run([str(BIN / "tombola"), "venue", "list"], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.startswith("hsm_unavailable:")
