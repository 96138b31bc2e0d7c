"""PKCS#11 access to the core's token through python-pkcs11 (PKCS#11 v2.40 / 3.0).

Only standard PKCS#11 is used here (C_GenerateRandom, C_GenerateKeyPair with
CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_RSA_PKCS_KEY_PAIR_GEN, C_Sign with CKM_EDDSA and
CKM_RSA_X_509, C_FindObjects), so the same code runs on SoftHSM2 and on a hardware module such
as CloudHSM's PKCS#11 library: only :class:`~gli_core.hsm.config.HsmConfig` differs.

Threads. python-pkcs11 calls ``C_Initialize(NULL)``, which tells the module that the
application will not call it from several threads at once (SoftHSM2 then runs without its own
mutexes), and its sessions are not thread-safe either. So every call into a module goes through
one lock per module and process; uvicorn's thread pool serialises on it. The calls are short
(about 3 us for 32 random bytes, 0.3 ms for an Ed25519 signature on SoftHSM2).

Login. A PKCS#11 login belongs to the application, not to a session, so all :class:`Hsm`
objects of a process that use one token share one logged-in session (reference counted; the last
``close()`` logs out). A session that fails is dropped and the next call logs in again; a token
that is not found makes the module re-initialise once (tokens created after ``C_Initialize`` only
show up then), after which the other tokens' sessions log in again transparently.

Failure. Any failure to load the module, find the token, log in or complete a call raises
:class:`~gli_core.hsm.errors.HsmUnavailable` (HTTP 503): the core fails closed.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import (
    MultipleObjectsReturned,
    MultipleTokensReturned,
    NoSuchKey,
    NoSuchToken,
    PinExpired,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)
from pkcs11.util.ec import encode_named_curve_parameters

from gli_core.hsm.config import HsmConfig
from gli_core.hsm.errors import HsmUnavailable
from gli_core.hsm.keys import (
    ED25519,
    PURPOSES,
    RSA,
    RSA_BITS,
    HsmEd25519Signer,
    HsmPublicKey,
    HsmRsaKey,
    KeyLabel,
    rotation_due,
)

T = TypeVar("T")

#: RFC 8410 object identifier of Ed25519 (the CKA_EC_PARAMS of an Edwards key, PKCS#11 3.0 2.3.5)
ED25519_OID = "1.3.101.112"

_PIN_ERRORS = (PinIncorrect, PinInvalid, PinLenRange, PinExpired, PinLocked)

#: Private keys: generated in the token, never readable, never wrappable, only for signing.
_PRIVATE_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
_PUBLIC_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
}
#: Attributes reported by :meth:`Hsm.private_key_attributes` (what a key ceremony witnesses).
WITNESSED_ATTRIBUTES = (
    Attribute.TOKEN,
    Attribute.PRIVATE,
    Attribute.SENSITIVE,
    Attribute.ALWAYS_SENSITIVE,
    Attribute.EXTRACTABLE,
    Attribute.NEVER_EXTRACTABLE,
    Attribute.LOCAL,
)


def ed25519_public_from_ec_point(ec_point: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key from CKA_EC_POINT.

    PKCS#11 3.0 stores it as a DER OCTET STRING (``04 20`` + 32 bytes); some modules return the
    32 bytes bare, which is accepted too.
    """
    if len(ec_point) == 34 and ec_point[0] == 0x04 and ec_point[1] == 0x20:
        return bytes(ec_point[2:])
    if len(ec_point) == 32:
        return bytes(ec_point)
    raise HsmUnavailable(f"the token returned an Ed25519 EC_POINT of {len(ec_point)} bytes", reason="key")


class _Module:
    """One PKCS#11 library loaded in this process, with the lock every call takes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.lib: Any = None
        self.pid = 0
        #: bumped whenever the module is re-initialised: sessions of an older epoch are gone
        self.epoch = 0
        self.logins: dict[str, _Login] = {}

    def load(self) -> Any:
        if self.lib is not None and (self.pid != os.getpid() or not self.lib.initialized):
            # A forked child must initialise the module again (PKCS#11 v2.40 section 6.7.7);
            # so must a process in which something finalised it.
            self._reinitialize()
        if self.lib is None:
            if not os.path.exists(self.path):
                raise HsmUnavailable(f"the PKCS#11 module {self.path} does not exist", reason="module")
            try:
                self.lib = pkcs11.lib(self.path)
            except PKCS11Error as exc:
                raise HsmUnavailable(
                    f"the PKCS#11 module {self.path} cannot be loaded: {exc}", reason="module"
                ) from exc
            self.pid = os.getpid()
        return self.lib

    def _reinitialize(self) -> None:
        self.epoch += 1
        try:
            self.lib.reinitialize()
            self.pid = os.getpid()
        except PKCS11Error as exc:
            self.lib = None
            raise HsmUnavailable(
                f"the PKCS#11 module {self.path} cannot be initialised: {exc}", reason="module"
            ) from exc

    def token(self, label: str) -> Any:
        """The token labelled ``label``, re-initialising the module once if it is not found."""
        lib = self.load()
        for attempt in range(2):
            try:
                return lib.get_token(token_label=label)
            except NoSuchToken:
                if attempt:
                    break
                self._reinitialize()
            except MultipleTokensReturned as exc:
                raise HsmUnavailable(f"several tokens of {self.path} are labelled {label!r}", reason="token") from exc
            except PKCS11Error as exc:
                raise HsmUnavailable(f"the tokens of {self.path} cannot be listed: {exc!r}", reason="token") from exc
        raise HsmUnavailable(f"no token labelled {label!r} in the PKCS#11 module {self.path}", reason="token")


_MODULES: dict[str, _Module] = {}
_MODULES_LOCK = threading.Lock()


def _module(path: str) -> _Module:
    with _MODULES_LOCK:
        module = _MODULES.get(path)
        if module is None:
            module = _MODULES[path] = _Module(path)
        return module


class _Login:
    """The process's logged-in session on one token (shared by every :class:`Hsm` on it)."""

    def __init__(self, module: _Module, label: str, pin: str) -> None:
        self.module = module
        self.label = label
        self._pin = pin
        self.refs = 0
        self._session: Any = None
        self._epoch = -1
        #: key objects found in the current session, by (label, object class)
        self.objects: dict[tuple[str, ObjectClass], Any] = {}

    def same_pin(self, pin: str) -> bool:
        return hmac.compare_digest(pin.encode("utf-8"), self._pin.encode("utf-8"))

    def session(self) -> Any:
        """The logged-in session, logging in (again) if there is none. Call with the lock held."""
        self.module.load()  # re-initialises a module finalised or inherited through fork
        if self._session is not None and self._epoch == self.module.epoch:
            return self._session
        self._session = None
        self.objects.clear()
        token = self.module.token(self.label)
        try:
            session = token.open(rw=True, user_pin=self._pin)
        except UserAlreadyLoggedIn:
            # Someone else in this process logged in to the token: sessions share the login.
            try:
                session = token.open(rw=True)
            except PKCS11Error as exc:
                raise HsmUnavailable(f"cannot open a session on token {self.label!r}: {exc!r}", reason="login") from exc
        except _PIN_ERRORS as exc:
            raise HsmUnavailable(
                f"token {self.label!r} refused the PIN ({type(exc).__name__})", reason="login"
            ) from exc
        except PKCS11Error as exc:
            raise HsmUnavailable(f"cannot log in to token {self.label!r}: {exc!r}", reason="login") from exc
        self._session, self._epoch = session, self.module.epoch
        return session

    def drop(self) -> None:
        """Forget the session (closing it, which logs out, if the module still knows it)."""
        session, current = self._session, self._epoch == self.module.epoch
        self._session = None
        self.objects.clear()
        if session is not None and current:
            with contextlib.suppress(PKCS11Error):
                session.close()


class Hsm:
    """The core's token: random bytes, and keys generated inside it that never leave it.

    Open with :meth:`open`; close with :meth:`close` (or use as a context manager).
    """

    def __init__(self, config: HsmConfig, module: _Module, login: _Login) -> None:
        self.config = config
        self._module = module
        self._login = login
        self._closed = False

    @classmethod
    def open(cls, config: HsmConfig) -> Hsm:
        """Load the module, find the token by label and log in with the configured PIN.

        Raises:
            HsmUnavailable: no PIN, module missing, token missing or login refused.
        """
        pin = config.resolve_pin()
        module = _module(config.module)
        with module.lock:
            login = module.logins.get(config.token_label)
            if login is not None and not login.same_pin(pin):
                raise HsmUnavailable(
                    f"token {config.token_label!r} is already open in this process with another PIN", reason="login"
                )
            login = login or _Login(module, config.token_label, pin)
            login.session()
            module.logins[config.token_label] = login
            login.refs += 1
        return cls(config, module, login)

    def close(self) -> None:
        """Release the token; the process logs out when its last :class:`Hsm` on it closes."""
        with self._module.lock:
            if self._closed:
                return
            self._closed = True
            self._login.refs -= 1
            if self._login.refs <= 0:
                self._login.drop()
                if self._module.logins.get(self._login.label) is self._login:
                    del self._module.logins[self._login.label]

    def __enter__(self) -> Hsm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------
    def _run(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(session)`` under the module lock; PKCS#11 errors become HsmUnavailable."""
        with self._module.lock:
            if self._closed:
                raise HsmUnavailable(f"the HSM handle of token {self.config.token_label!r} is closed", reason="call")
            session = self._login.session()
            try:
                return fn(session)
            except (NoSuchKey, MultipleObjectsReturned) as exc:
                raise HsmUnavailable(
                    f"{what}: token {self.config.token_label!r} has no single such key ({type(exc).__name__})",
                    reason="key",
                ) from exc
            except PKCS11Error as exc:
                self._login.drop()
                raise HsmUnavailable(
                    f"{what} failed on token {self.config.token_label!r}: {type(exc).__name__} {exc}".rstrip(),
                    reason="call",
                ) from exc

    def generate_random(self, nbytes: int) -> bytes:
        """``nbytes`` bytes from the token's RNG (C_GenerateRandom)."""
        if nbytes < 0:
            raise ValueError("nbytes must not be negative")
        if nbytes == 0:
            return b""
        out = bytes(self._run("C_GenerateRandom", lambda s: s.generate_random(nbytes * 8)))  # takes bits
        if len(out) != nbytes:
            raise HsmUnavailable(f"C_GenerateRandom returned {len(out)} bytes, not {nbytes}", reason="call")
        return out

    def token_info(self) -> dict[str, str]:
        """Module and token identification (for ``tombola init`` and the audit log)."""

        def info(session: Any) -> dict[str, str]:
            token = session.token
            return {
                "module": self.config.module,
                "library": f"{self._module.lib.manufacturer_id} {self._module.lib.library_description}".strip(),
                "token_label": token.label,
                "token_serial": bytes(token.serial).decode("ascii", "replace").strip(),
                "token_model": token.model,
                "token_manufacturer": token.manufacturer_id,
            }

        return self._run("C_GetTokenInfo", info)

    def _private_op(self, label: str, mechanism: Mechanism, data: bytes) -> bytes:
        """C_Sign with the private key labelled ``label`` (used by the key handles)."""

        def op(session: Any) -> bytes:
            key = self._login.objects.get((label, ObjectClass.PRIVATE_KEY))
            if key is None:
                key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                self._login.objects[(label, ObjectClass.PRIVATE_KEY)] = key
            return bytes(key.sign(data, mechanism=mechanism))

        return self._run(f"C_Sign({mechanism.name})", op)

    # -- keys -------------------------------------------------------------------
    def _handle(self, obj: Any, label: str) -> HsmEd25519Signer | HsmRsaKey:
        key_type = obj[Attribute.KEY_TYPE]
        if key_type == KeyType.EC_EDWARDS:
            return HsmEd25519Signer(self, label, ed25519_public_from_ec_point(bytes(obj[Attribute.EC_POINT])))
        if key_type == KeyType.RSA:
            n = int.from_bytes(bytes(obj[Attribute.MODULUS]), "big")
            e = int.from_bytes(bytes(obj[Attribute.PUBLIC_EXPONENT]), "big")
            return HsmRsaKey(self, label, n, e)
        raise HsmUnavailable(f"key {label!r} is of an unexpected type {key_type!r}", reason="key")

    def _find(self, session: Any, label: str) -> HsmEd25519Signer | HsmRsaKey | None:
        objs = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: label}))
        if not objs:
            return None
        if len(objs) > 1:
            raise HsmUnavailable(
                f"token {self.config.token_label!r} has {len(objs)} keys labelled {label!r}", reason="key"
            )
        return self._handle(objs[0], label)

    def _generate(self, session: Any, label: str, algorithm: str, bits: int = RSA_BITS) -> HsmEd25519Signer | HsmRsaKey:
        ident = label.encode("utf-8")
        capabilities = MechanismFlag.SIGN | MechanismFlag.VERIFY
        if algorithm == ED25519:
            params = session.create_domain_parameters(
                KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)}, local=True
            )
            public, _ = params.generate_keypair(
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                store=True,
                label=label,
                id=ident,
                capabilities=capabilities,
                public_template=_PUBLIC_TEMPLATE,
                private_template=_PRIVATE_TEMPLATE,
            )
        elif algorithm == RSA:
            public, _ = session.generate_keypair(
                KeyType.RSA,
                bits,
                mechanism=Mechanism.RSA_PKCS_KEY_PAIR_GEN,
                store=True,
                label=label,
                id=ident,
                capabilities=capabilities,
                public_template=_PUBLIC_TEMPLATE,
                private_template=_PRIVATE_TEMPLATE,
            )
        else:
            raise ValueError(f"unknown key algorithm {algorithm!r}")
        return self._handle(public, label)

    def _ensure(self, label: str, algorithm: str, bits: int) -> HsmEd25519Signer | HsmRsaKey:
        def run(session: Any) -> HsmEd25519Signer | HsmRsaKey:
            found = self._find(session, label)
            return found if found is not None else self._generate(session, label, algorithm, bits)

        key = self._run(f"ensure key {label}", run)
        if key.algorithm != algorithm:
            raise HsmUnavailable(f"key {label!r} in the token is {key.algorithm}, not {algorithm}", reason="key")
        return key

    def ensure_ed25519_key(self, label: str) -> HsmEd25519Signer:
        """The Ed25519 key labelled ``label``, generated in the token (sensitive,
        non-extractable, CKM_EC_EDWARDS_KEY_PAIR_GEN) if there is none."""
        key = self._ensure(label, ED25519, 0)
        assert isinstance(key, HsmEd25519Signer)
        return key

    def ensure_rsa_key(self, label: str, bits: int = RSA_BITS) -> HsmRsaKey:
        """The RSA key labelled ``label``, generated in the token (sensitive, non-extractable,
        e = 65537) if there is none."""
        key = self._ensure(label, RSA, bits)
        assert isinstance(key, HsmRsaKey)
        return key

    def keys(self, purpose: str | None = None) -> list[HsmEd25519Signer | HsmRsaKey]:
        """Every generation of the purpose keys (of ``purpose``, or all), oldest first."""
        prefix = self.config.key_prefix

        def run(session: Any) -> list[HsmEd25519Signer | HsmRsaKey]:
            found = []
            for obj in list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY})):
                label = str(obj[Attribute.LABEL])
                parsed = KeyLabel.parse(label)
                if parsed is None or parsed.prefix != prefix or (purpose is not None and parsed.purpose != purpose):
                    continue
                found.append((label, obj))
            return [self._handle(obj, label) for label, obj in sorted(found, key=lambda f: f[0])]

        return self._run("list keys", run)

    def public_keys(self, purpose: str | None = None) -> list[HsmPublicKey]:
        """The public parts of every generation (old ones verify old grants and proofs)."""
        return [k.public() for k in self.keys(purpose)]

    def rotate(self, purpose: str, *, now: datetime | None = None) -> HsmEd25519Signer | HsmRsaKey:
        """Generate a new key for ``purpose``; it becomes the current key, the old ones stay."""
        algorithm = PURPOSES.get(purpose)
        if algorithm is None:
            raise ValueError(f"unknown key purpose {purpose!r}; known: {sorted(PURPOSES)}")
        created = (now or datetime.now(UTC)).replace(microsecond=0)
        with self._module.lock:
            latest = self.keys(purpose)
            if latest and latest[-1].created_at is not None and latest[-1].created_at >= created:
                created = latest[-1].created_at + timedelta(seconds=1)  # labels stay in generation order
            label = str(KeyLabel(self.config.key_prefix, purpose, created, self.generate_random(2).hex()))
            return self._ensure(label, algorithm, RSA_BITS)

    def current(self, purpose: str, *, create: bool = True) -> HsmEd25519Signer | HsmRsaKey:
        """The newest key of ``purpose``; with ``create``, generated if the token has none."""
        with self._module.lock:  # one process generates the first key once
            keys = self.keys(purpose)
            if keys:
                return keys[-1]
            if not create:
                raise HsmUnavailable(f"token {self.config.token_label!r} has no {purpose} key", reason="key")
            return self.rotate(purpose)

    def grant_signer(self) -> HsmEd25519Signer:
        """The current grant-signing key (Ed25519)."""
        key = self.current("grant")
        assert isinstance(key, HsmEd25519Signer)
        return key

    def grant_signers(self) -> list[HsmEd25519Signer]:
        """Every generation of the grant-signing key, oldest first."""
        return [k for k in self.keys("grant") if isinstance(k, HsmEd25519Signer)]

    def vrf_key(self) -> HsmRsaKey:
        """The current VRF key (RSA-2048 for RSA-FDH-VRF)."""
        key = self.current("vrf")
        assert isinstance(key, HsmRsaKey)
        return key

    def rotation_due(self, purpose: str, *, now: datetime | None = None) -> bool:
        """True when the current key of ``purpose`` is ``rotation_days`` old or more (or missing)."""
        keys = self.keys(purpose)
        if not keys or keys[-1].created_at is None:
            return True
        return rotation_due(keys[-1].created_at, days=self.config.rotation_days, now=now)

    def private_key_attributes(self, label: str) -> dict[str, bool]:
        """The protection attributes of the private key ``label`` (CKA_SENSITIVE, ...), as a key
        ceremony records them: what shows the key was generated in the token and cannot leave it."""

        def run(session: Any) -> dict[str, bool]:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            values = key.get_attributes(list(WITNESSED_ATTRIBUTES))
            return {attr.name.lower(): bool(values[attr]) for attr in WITNESSED_ATTRIBUTES}

        return self._run(f"read attributes of {label}", run)
