"""Signed checkpoints of the audit log: C2SP tlog-checkpoint bodies in C2SP signed notes.

This module is pure (no I/O): it formats, parses, signs through a :class:`NoteSigner` and
verifies. ``docs/audit-checkpoints.md`` is the normative description; the formats are those of
c2sp.org/signed-note and c2sp.org/tlog-checkpoint, byte for byte compatible with Go's
``golang.org/x/mod/sumdb/note`` (Ed25519) and ``github.com/transparency-dev/formats/note``
(ECDSA).

**Checkpoint body** (tlog-checkpoint "Note text"), every line ending in ``\\n``::

    <origin>                  e.g. tombola.local/audit/3f9a0c1d2e4b
    <tree size>               ASCII decimal, no leading zero (``0`` for the empty tree)
    <root hash>               standard base64 (RFC 4648 section 4) of the 32-byte RFC 9162 root
    <extension line>...       optional, opaque, non-empty (Tombola writes none)

**Signed note**: the body, one empty line, then one or more signature lines::

    — <key name> <base64(4-byte key ID || signature)>\\n

with ``—`` the em dash U+2014 followed by a space. The signature covers the body's UTF-8 bytes,
final newline included. The whole note is UTF-8 with no control character below U+0020 except
the newline; key names are non-empty with no Unicode space and no ``+``.

**Key types** (the signature type byte of c2sp.org/signed-note):

=======  ===========================  ==============================  =========================
type     signature                    encoded public key              key ID (4 bytes)
=======  ===========================  ==============================  =========================
``01``   Ed25519 (RFC 8032) over the  the raw 32-byte key             SHA-256(name || 0x0A ||
         body, 64 bytes                                               0x01 || key)[:4]
``02``   ECDSA P-256 over SHA-256 of  DER SubjectPublicKeyInfo        SHA-256(SPKI DER)[:4]
         the body, ASN.1 DER          (uncompressed point, 91 bytes)
=======  ===========================  ==============================  =========================

``0x02`` is the signed-note registration "ECDSA signatures as implemented by
github.com/transparency-dev/witness" (also the Sigstore Rekor checkpoint key): exactly what AWS
KMS returns for ``ECDSA_SHA_256``. Its key ID is the spec's, which hashes the SPKI alone and not
the name and type byte. A verifier key is ``<name>+<8 hex digits of key ID>+<base64(type ||
encoded public key)>``; its type byte is how a verifier tells the algorithms apart.

**Opening** (:func:`open_note`) follows the signed-note rules: signatures by keys the caller does
not know are ignored; a known key's signature that fails refuses the whole note; a note that no
known key signed is refused; at most :data:`MAX_SIGNATURES` signature lines are read. Tombola is
stricter than the Go reference in three ways, so that no byte of a note can change without the
note being refused or its body changing: base64 must be canonical (no stray padding bits), one
key signs at most once (repeated signature lines are refused, not dropped), and ECDSA keys are
P-256 in canonical SPKI only.

Every failure raises a :class:`NoteInvalid` (subclasses: :class:`NoteSignatureInvalid`,
:class:`NoteUnverified`, :class:`CheckpointInvalid`, :class:`NoteKeyInvalid`) whose ``code`` says
what kind of failure it is and whose detail names what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol, overload

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gli_core.errors import CoreError
from gli_core.merkle import HASH_SIZE

__all__ = [
    "MAX_SIGNATURES",
    "ORIGIN_PREFIX",
    "SIG_ECDSA",
    "SIG_ED25519",
    "Checkpoint",
    "CheckpointInvalid",
    "NoteInvalid",
    "NoteKey",
    "NoteKeyInvalid",
    "NoteSignatureInvalid",
    "NoteSigner",
    "NoteUnverified",
    "NoteVerifier",
    "OpenedNote",
    "SoftwareNoteSigner",
    "audit_origin",
    "check_key_name",
    "checkpoint_body",
    "key_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
]

#: Signature type byte of Ed25519 signatures (c2sp.org/signed-note).
SIG_ED25519: Final = 0x01
#: Signature type byte of ECDSA signatures over SHA-256 in ASN.1 DER, key as DER SPKI
#: (c2sp.org/signed-note: "as implemented by github.com/transparency-dev/witness").
SIG_ECDSA: Final = 0x02
#: The most signature lines :func:`open_note` reads (the spec asks for at least 16; Go's 100).
MAX_SIGNATURES: Final = 100
#: Origin of a Tombola installation's audit log: ``ORIGIN_PREFIX + <installation id>``.
ORIGIN_PREFIX: Final = "tombola.local/audit/"

_DASH: Final = "\u2014 "
_ED25519_KEY_SIZE: Final = 32
_ED25519_SIG_SIZE: Final = 64
_KEY_ID_SIZE: Final = 4
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_HEX8 = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)
_MAX_TREE_SIZE: Final = 2**64 - 1
_TYPE_NAMES: Final = {SIG_ED25519: "Ed25519", SIG_ECDSA: "ECDSA P-256"}


# -- errors ----------------------------------------------------------------------------------


class NoteInvalid(CoreError):
    """A signed note is malformed: not UTF-8, a control character, no blank line before the
    signatures, a bad signature line or key name, non-canonical base64, a key that signs twice,
    too many signatures, or no signer at all when signing."""

    code = "audit_note_invalid"
    status = 422


class NoteSignatureInvalid(NoteInvalid):
    """A signature by a known key does not verify: the note was altered or signed by another key."""

    code = "audit_note_bad_signature"
    status = 422


class NoteUnverified(NoteInvalid):
    """The note is well formed but no key the caller trusts signed it."""

    code = "audit_note_unverified"
    status = 422


class CheckpointInvalid(NoteInvalid):
    """The note's text is not a tlog checkpoint (origin, tree size, root hash, extensions), or its
    origin is not the one expected."""

    code = "audit_checkpoint_invalid"
    status = 422


class NoteKeyInvalid(NoteInvalid):
    """A key cannot be used for notes: a malformed verifier key string, a key ID that does not
    match the key, an unknown signature type, a public key of the wrong size or curve, a key name
    with a space or ``+``, or two different keys with one name and key ID."""

    code = "audit_note_key_invalid"
    status = 422


# -- keys --------------------------------------------------------------------------------------


class NoteKey(Protocol):
    """The public identity of a note key: name, signature type byte, encoded public key."""

    @property
    def key_name(self) -> str: ...

    @property
    def sig_type(self) -> int: ...

    @property
    def public_key(self) -> bytes:
        """Ed25519 (0x01): the raw 32 bytes; ECDSA P-256 (0x02): DER SubjectPublicKeyInfo."""
        ...


class NoteSigner(NoteKey, Protocol):
    """A note key that can sign (in software, in the HSM, in KMS)."""

    def sign(self, message: bytes) -> bytes:
        """The signature of ``message`` for the key's type: 64 raw bytes (Ed25519) or ASN.1 DER
        ECDSA over SHA-256(message) (ECDSA P-256)."""
        ...


def check_key_name(name: str) -> str:
    """``name`` if it is a valid key name: non-empty UTF-8, no Unicode space, no ``+``, no control
    character.

    Raises:
        NoteKeyInvalid: it is not.
    """
    if not isinstance(name, str) or not name:
        raise NoteKeyInvalid("a note key name must be a non-empty string")
    if "+" in name:
        raise NoteKeyInvalid(f"the note key name {name!r} contains a '+'")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in name):
        raise NoteKeyInvalid(f"the note key name {name!r} contains a space or control character")
    if not _is_utf8(name):
        raise NoteKeyInvalid(f"the note key name {name!r} is not valid UTF-8")
    return name


def key_hash(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID of a note key.

    ``SHA-256(name || 0x0A || type || public key)[:4]`` (the signed-note recommendation, Ed25519),
    except for type 0x02 (ECDSA), whose key ID the spec defines as ``SHA-256(SPKI DER)[:4]``.
    """
    if sig_type == SIG_ECDSA:
        return hashlib.sha256(public_key).digest()[:_KEY_ID_SIZE]
    if not 0 <= sig_type <= 0xFF:
        raise NoteKeyInvalid(f"a signature type is one byte, not {sig_type}")
    data = name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key
    return hashlib.sha256(data).digest()[:_KEY_ID_SIZE]


@overload
def verifier_key(key: NoteKey, /) -> str: ...


@overload
def verifier_key(name: str, sig_type: int, public_key: bytes, /) -> str: ...


def verifier_key(key: NoteKey | str, sig_type: int | None = None, public_key: bytes | None = None, /) -> str:
    """The verifier key string ``<name>+<hex key ID>+<base64(type || public key)>`` of a signer,
    a verifier or the three parts; the key is checked (:class:`NoteVerifier`) first.

    Raises:
        NoteKeyInvalid: the name or the key is not acceptable.
    """
    if isinstance(key, str):
        if sig_type is None or public_key is None:
            raise TypeError("verifier_key(name, sig_type, public_key) needs all three parts")
        return NoteVerifier(key, sig_type, bytes(public_key)).vkey
    return NoteVerifier.from_key(key).vkey


@dataclass(frozen=True)
class NoteVerifier:
    """A public note key that verifies signatures; valid on construction.

    Build one from a verifier key string with :meth:`parse`, or from any :class:`NoteKey` (a
    signer) with :meth:`from_key`.
    """

    key_name: str
    sig_type: int
    public_key: bytes
    _key: Ed25519PublicKey | ec.EllipticCurvePublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.key_name)
        object.__setattr__(self, "public_key", bytes(self.public_key))
        object.__setattr__(self, "_key", _load_public_key(self.key_name, self.sig_type, self.public_key))

    @classmethod
    def from_key(cls, key: NoteKey) -> NoteVerifier:
        """The verifier of a signer (or of any object with ``key_name``, ``sig_type``, ``public_key``)."""
        return cls(key.key_name, key.sig_type, bytes(key.public_key))

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hex key ID>+<base64(type || public key)>``.

        Raises:
            NoteKeyInvalid: malformed, unknown type, bad key, or a key ID that does not match.
        """
        if not isinstance(vkey, str):
            raise NoteKeyInvalid("a verifier key is a string")
        parts = vkey.split("+", 2)  # base64 may contain '+': split at the first two only
        if len(parts) != 3:
            raise NoteKeyInvalid(f"the verifier key {vkey[:80]!r} is not <name>+<key ID>+<key>")
        name, hash16, key64 = parts
        check_key_name(name)
        if not _HEX8.fullmatch(hash16):
            raise NoteKeyInvalid(f"the verifier key of {name!r} has a key ID {hash16!r} that is not 8 hex digits")
        raw = _b64decode(key64)
        if raw is None or len(raw) < 2:
            raise NoteKeyInvalid(f"the verifier key of {name!r} does not end in the base64 of a type byte and a key")
        verifier = cls(name, raw[0], raw[1:])
        if verifier.key_hash != bytes.fromhex(hash16):
            raise NoteKeyInvalid(
                f"the verifier key of {name!r} gives key ID {hash16.lower()} but its key hashes to "
                f"{verifier.key_hash.hex()}"
            )
        return verifier

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key ID (:func:`key_hash`)."""
        return key_hash(self.key_name, self.sig_type, self.public_key)

    @property
    def key_id(self) -> str:
        """``<name>+<hex key ID>``: how the key is named in messages."""
        return f"{self.key_name}+{self.key_hash.hex()}"

    @property
    def vkey(self) -> str:
        """The verifier key string."""
        encoded = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode("ascii")
        return f"{self.key_id}+{encoded}"

    @property
    def algorithm(self) -> str:
        """``Ed25519`` or ``ECDSA P-256``."""
        return _TYPE_NAMES[self.sig_type]

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` (without the key ID) is this key's signature of ``message``."""
        key = self._key
        try:
            if isinstance(key, Ed25519PublicKey):
                if len(signature) != _ED25519_SIG_SIZE:
                    return False
                key.verify(signature, message)
            else:
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def __str__(self) -> str:
        return self.vkey


def _load_public_key(name: str, sig_type: int, public_key: bytes) -> Ed25519PublicKey | ec.EllipticCurvePublicKey:
    if sig_type == SIG_ED25519:
        if len(public_key) != _ED25519_KEY_SIZE:
            raise NoteKeyInvalid(f"the Ed25519 key of {name!r} has {len(public_key)} bytes, not 32")
        return Ed25519PublicKey.from_public_bytes(public_key)
    if sig_type == SIG_ECDSA:
        try:
            key = serialization.load_der_public_key(public_key)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise NoteKeyInvalid(f"the ECDSA key of {name!r} is not a DER SubjectPublicKeyInfo") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise NoteKeyInvalid(f"the ECDSA key of {name!r} is not on the curve P-256 (secp256r1)")
        if _spki(key) != public_key:
            raise NoteKeyInvalid(
                f"the ECDSA key of {name!r} is not in canonical form (DER SPKI with the uncompressed point)"
            )
        return key
    raise NoteKeyInvalid(
        f"the key of {name!r} has signature type 0x{sig_type:02x}; "
        f"known types are 0x01 (Ed25519) and 0x02 (ECDSA P-256)"
    )


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- text helpers ----------------------------------------------------------------------------


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _check_text(text: str, what: str, error: type[NoteInvalid] = NoteInvalid) -> None:
    """Refuse control characters other than newline, and strings that are not UTF-8."""
    for index, ch in enumerate(text):
        if ord(ch) < 0x20 and ch != "\n":
            raise error(f"{what} contains the control character U+{ord(ch):04X} at character {index}")
    if not _is_utf8(text):
        raise error(f"{what} is not valid UTF-8 (it contains a lone surrogate)")


def _b64decode(text: str) -> bytes | None:
    """Canonical standard base64 (RFC 4648 section 4, padded), or None."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    if base64.b64encode(raw).decode("ascii") != text:  # stray padding bits, missing padding
        return None
    return raw


# -- checkpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The text of a tlog checkpoint (c2sp.org/tlog-checkpoint); valid on construction.

    Attributes:
        origin: the log's identity, ``tombola.local/audit/<installation id>`` for Tombola.
        tree_size: the number of leaves, 0 <= tree_size < 2**64.
        root_hash: the 32-byte RFC 9162 root of the first ``tree_size`` leaves.
        extensions: opaque non-empty extension lines (Tombola writes none).
    """

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise CheckpointInvalid("a checkpoint's origin must be a non-empty string")
        if "\n" in self.origin:
            raise CheckpointInvalid("a checkpoint's origin must be one line")
        _check_text(self.origin, "the checkpoint origin", CheckpointInvalid)
        if isinstance(self.tree_size, bool) or not isinstance(self.tree_size, int):
            raise CheckpointInvalid(f"a checkpoint's tree size is an integer, not {type(self.tree_size).__name__}")
        if not 0 <= self.tree_size <= _MAX_TREE_SIZE:
            raise CheckpointInvalid(f"the tree size {self.tree_size} is outside 0 .. 2**64 - 1")
        if not isinstance(self.root_hash, bytes | bytearray) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointInvalid(f"a checkpoint's root hash is {HASH_SIZE} bytes (SHA-256)")
        object.__setattr__(self, "root_hash", bytes(self.root_hash))
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for number, line in enumerate(self.extensions, start=1):
            if not isinstance(line, str) or not line or "\n" in line:
                raise CheckpointInvalid(f"extension line {number} must be a non-empty single line")
            _check_text(line, f"extension line {number}", CheckpointInvalid)


def checkpoint_body(cp: Checkpoint) -> str:
    """The note text of ``cp``: origin, tree size, base64 root hash, extension lines, each + ``\\n``."""
    lines = [cp.origin, str(cp.tree_size), base64.b64encode(cp.root_hash).decode("ascii"), *cp.extensions]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(body: str) -> Checkpoint:
    """The checkpoint whose note text is ``body`` (exactly; :func:`checkpoint_body` gives it back).

    Raises:
        CheckpointInvalid: fewer than three lines, an empty line, a tree size that is not
            canonical decimal, a root hash that is not canonical base64 of 32 bytes, or a text
            that does not end in a newline.
    """
    if not isinstance(body, str) or not body.endswith("\n"):
        raise CheckpointInvalid("a checkpoint's text must end with a newline")
    _check_text(body, "the checkpoint text", CheckpointInvalid)
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointInvalid(f"a checkpoint has at least 3 lines (origin, size, root hash), not {len(lines)}")
    for number, line in enumerate(lines, start=1):
        if not line:
            raise CheckpointInvalid(f"line {number} of the checkpoint is empty")
    origin, size, root64, *extensions = lines
    if len(size) > 20 or not _TREE_SIZE.fullmatch(size) or int(size) > _MAX_TREE_SIZE:
        raise CheckpointInvalid(
            f"the tree size {size[:40]!r} is not a decimal number below 2**64 without leading zeros"
        )
    root = _b64decode(root64)
    if root is None or len(root) != HASH_SIZE:
        raise CheckpointInvalid(f"the root hash {root64[:60]!r} is not the canonical base64 of {HASH_SIZE} bytes")
    return Checkpoint(origin, int(size), root, tuple(extensions))


def audit_origin(installation_id: str) -> str:
    """``tombola.local/audit/<installation id>``: the origin (and key name) of an installation's log.

    Raises:
        NoteKeyInvalid: the id is empty or has a space, ``+``, ``/`` or control character.
    """
    if not installation_id or "/" in installation_id:
        raise NoteKeyInvalid(f"an installation id is non-empty and has no '/': {installation_id!r}")
    return check_key_name(ORIGIN_PREFIX + installation_id)


# -- notes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked.

    Attributes:
        body: the note text (what was signed), final newline included.
        verified_by: the verifier key strings (``<name>+<hex>+<key>``, canonical: lower-case hex)
            whose signatures verified, in the order of the signature lines.
        ignored: ``<name>+<hex key ID>`` of the signatures by keys the caller did not give.
    """

    body: str
    verified_by: tuple[str, ...]
    ignored: tuple[str, ...] = ()


def sign_note(body: str, signers: Iterable[NoteSigner]) -> str:
    """The signed note: ``body``, an empty line, one signature line per signer (in order).

    Each signature is checked with the signer's own public key before it is written, so a
    signer whose key and signature do not match (a misconfigured KMS key, a faulty token) is
    caught here and not by the first verifier.

    Raises:
        NoteInvalid: ``body`` does not end with a newline, has a control character, or there are
            no signers or more than :data:`MAX_SIGNATURES`.
        NoteKeyInvalid: a signer's name or key is not acceptable, or two signers share a key.
        NoteSignatureInvalid: a signer returned a signature its public key does not verify.
    """
    if not isinstance(body, str) or not body.endswith("\n"):
        raise NoteInvalid("a note's text must end with a newline")
    _check_text(body, "the note text")
    message = body.encode("utf-8")
    lines: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for signer in signers:
        verifier = NoteVerifier.from_key(signer)
        ident = (verifier.key_name, verifier.key_hash)
        if ident in seen:
            raise NoteKeyInvalid(f"two signers have the same key {verifier.key_id}")
        seen.add(ident)
        signature = bytes(signer.sign(message))
        if not verifier.verify(message, signature):
            raise NoteSignatureInvalid(
                f"the signer {verifier.key_id} returned a signature that its own {verifier.algorithm} "
                f"public key does not verify"
            )
        lines.append(f"{_DASH}{verifier.key_name} {base64.b64encode(verifier.key_hash + signature).decode('ascii')}\n")
    if not lines:
        raise NoteInvalid("a signed note needs at least one signer")
    if len(lines) > MAX_SIGNATURES:
        raise NoteInvalid(f"a note carries at most {MAX_SIGNATURES} signatures, not {len(lines)}")
    return body + "\n" + "".join(lines)


def open_note(text: str | bytes, verifiers: Iterable[NoteVerifier | str]) -> OpenedNote:
    """Check the signed note ``text`` against the trusted ``verifiers`` (objects or vkey strings).

    Raises:
        NoteInvalid: the note is malformed (see the module docstring).
        NoteSignatureInvalid: a signature by one of ``verifiers`` does not verify.
        NoteUnverified: none of ``verifiers`` signed the note.
        NoteKeyInvalid: a verifier key string is malformed, or two different ``verifiers`` share
            a name and key ID that a signature line names.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteInvalid(f"the note is not valid UTF-8 (byte {exc.start})") from exc
    if not isinstance(text, str):
        raise NoteInvalid("a note is text")
    _check_text(text, "the note")
    known = _index(verifiers)

    split = text.rfind("\n\n")
    if split < 0:
        raise NoteInvalid("the note has no empty line between its text and its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block:
        raise NoteInvalid("the note has no signature lines after its empty line")
    if not block.endswith("\n"):
        raise NoteInvalid("the note's last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteInvalid(f"the note has {len(lines)} signature lines; at most {MAX_SIGNATURES} are read")

    message = body.encode("utf-8")
    verified: list[str] = []
    ignored: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for number, line in enumerate(lines, start=1):
        name, key_id, signature = _signature_line(line, number)
        ident = (name, key_id)
        if ident in seen:
            raise NoteInvalid(f"signature line {number} repeats a signature by key {name}+{key_id.hex()}")
        seen.add(ident)
        candidates = known.get(ident)
        if candidates is None:
            ignored.append(f"{name}+{key_id.hex()}")
            continue
        if len(candidates) > 1:
            raise NoteKeyInvalid(f"{len(candidates)} different verifier keys are named {name}+{key_id.hex()}")
        verifier = candidates[0]
        if not verifier.verify(message, signature):
            raise NoteSignatureInvalid(
                f"the {verifier.algorithm} signature by key {verifier.key_id} (line {number}) does not verify: "
                f"the note was altered or signed by another key"
            )
        verified.append(verifier.vkey)
    if not verified:
        names = ", ".join(ignored)
        raise NoteUnverified(f"no trusted key signed the note (signed by: {names})")
    return OpenedNote(body, tuple(verified), tuple(ignored))


def _index(verifiers: Iterable[NoteVerifier | str]) -> dict[tuple[str, bytes], list[NoteVerifier]]:
    known: dict[tuple[str, bytes], list[NoteVerifier]] = {}
    for item in verifiers:
        verifier = NoteVerifier.parse(item) if isinstance(item, str) else item
        same = known.setdefault((verifier.key_name, verifier.key_hash), [])
        if verifier not in same:  # the same key given twice is one key
            same.append(verifier)
    return known


def _signature_line(line: str, number: int) -> tuple[str, bytes, bytes]:
    """Name, key ID and signature of ``— <name> <base64>``."""
    if not line.startswith(_DASH):
        raise NoteInvalid(f"signature line {number} does not start with an em dash and a space")
    name, space, b64 = line[len(_DASH) :].partition(" ")
    if not space or not b64:
        raise NoteInvalid(f"signature line {number} has no space between the key name and the signature")
    try:
        check_key_name(name)
    except NoteKeyInvalid as exc:
        raise NoteInvalid(f"signature line {number}: {exc.detail}") from exc
    raw = _b64decode(b64)
    if raw is None:
        raise NoteInvalid(f"signature line {number} ({name}) is not canonical base64")
    if len(raw) <= _KEY_ID_SIZE:
        raise NoteInvalid(f"signature line {number} ({name}) has a key ID but no signature")
    return name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:]


def sign_checkpoint(cp: Checkpoint, signers: Iterable[NoteSigner]) -> str:
    """``sign_note(checkpoint_body(cp), signers)``."""
    return sign_note(checkpoint_body(cp), signers)


def open_checkpoint(
    text: str | bytes, verifiers: Iterable[NoteVerifier | str], *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint of a signed note that one of ``verifiers`` signed.

    Args:
        text: the signed note.
        verifiers: the trusted keys (every generation of the log's key).
        origin: when given, the origin the checkpoint must name (a client pins its log's origin).

    Raises:
        NoteInvalid: as :func:`open_note`; :class:`CheckpointInvalid` when the text is not a
            checkpoint or names another origin.
    """
    cp = parse_checkpoint(open_note(text, verifiers).body)
    if origin is not None and cp.origin != origin:
        raise CheckpointInvalid(f"the checkpoint is of the log {cp.origin!r}, not {origin!r}")
    return cp


# -- software signer (tests and vectors) -----------------------------------------------------


class SoftwareNoteSigner:
    """An Ed25519 :class:`NoteSigner` over an in-memory key: for tests and test vectors only
    (production keys live in the HSM or in KMS, see :mod:`gli_core.audit.signers`)."""

    def __init__(self, key_name: str, private_key: Ed25519PrivateKey) -> None:
        self._name = check_key_name(key_name)
        self._private = private_key
        self._public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @classmethod
    def from_seed(cls, key_name: str, seed: bytes) -> SoftwareNoteSigner:
        """The signer of the 32-byte Ed25519 ``seed`` (RFC 8032 private key)."""
        if len(seed) != _ED25519_KEY_SIZE:
            raise NoteKeyInvalid(f"an Ed25519 seed has 32 bytes, not {len(seed)}")
        return cls(key_name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls, key_name: str) -> SoftwareNoteSigner:
        """A signer with a fresh random key."""
        return cls(key_name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> SoftwareNoteSigner:
        """The signer of a Go ``sumdb/note`` signer key ``PRIVATE+KEY+<name>+<hex>+<base64(0x01 || seed)>``.

        Raises:
            NoteKeyInvalid: malformed, not Ed25519, or a key ID that does not match.
        """
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _HEX8.fullmatch(parts[3]):
            raise NoteKeyInvalid("a signer key is PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>")
        raw = _b64decode(parts[4])
        if raw is None or len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != SIG_ED25519:
            raise NoteKeyInvalid("the signer key is not an Ed25519 seed (type 0x01 and 32 bytes)")
        signer = cls.from_seed(parts[2], raw[1:])
        if NoteVerifier.from_key(signer).key_hash != bytes.fromhex(parts[3]):
            raise NoteKeyInvalid("the signer key's key ID does not match its key")
        return signer

    @property
    def key_name(self) -> str:
        return self._name

    @property
    def sig_type(self) -> int:
        return SIG_ED25519

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        """Ed25519 (RFC 8032) signature of ``message``, 64 bytes."""
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"SoftwareNoteSigner({self._name!r})"
