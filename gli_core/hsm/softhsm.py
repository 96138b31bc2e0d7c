"""The embedded token: a SoftHSM2 token directory with its own configuration file.

This is the only SoftHSM2-specific module: it writes ``softhsm2.conf`` (``directories.tokendir``,
``objectstore.backend = file``, ``log.level = ERROR``), points ``SOFTHSM2_CONF`` at it and runs
``softhsm2-util --init-token`` when the token is missing. Everything else talks PKCS#11 through
:mod:`gli_core.hsm.token` and runs unchanged on another module.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from gli_core.hsm.config import HsmConfig, is_softhsm
from gli_core.hsm.errors import HsmUnavailable

CONF_NAME = "softhsm2.conf"
TOKENS_DIR = "tokens"
SO_PIN_FILE_NAME = "so-pin"
TOKEN_LABEL_MAX = 32  # CK_TOKEN_INFO.label is 32 bytes


def _util() -> str:
    util = shutil.which("softhsm2-util")
    if util is None:
        raise HsmUnavailable("softhsm2-util is not installed (Debian package softhsm2)", reason="module")
    return util


def configure_softhsm(directory: Path) -> Path:
    """Write ``directory/softhsm2.conf`` (if missing) and point ``SOFTHSM2_CONF`` at it.

    SoftHSM2 reads the file when the module is initialised, so call this before the module is
    first opened in the process (:class:`~gli_core.hsm.token.Hsm` re-initialises it once when a
    token it looks for is missing).
    """
    directory = directory.resolve()
    tokens = directory / TOKENS_DIR
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = directory / CONF_NAME
    text = f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    if not conf.exists() or conf.read_text(encoding="utf-8") != text:
        tmp = conf.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, conf)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


def token_labels(conf: Path) -> list[str]:
    """Labels of the initialised tokens of the SoftHSM2 configuration ``conf``."""
    out = subprocess.run(
        [_util(), "--show-slots"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise HsmUnavailable(f"softhsm2-util --show-slots failed: {out.stderr.strip()}", reason="token")
    labels = []
    for line in out.stdout.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Label" and value.strip():
            labels.append(value.strip())
    return labels


def ensure_softhsm_token(directory: Path, label: str, pin: str, so_pin: str) -> Path:
    """Make sure a SoftHSM2 token labelled ``label`` exists under ``directory`` (idempotent).

    Writes the configuration, sets ``SOFTHSM2_CONF`` and runs
    ``softhsm2-util --init-token --free --label L --pin P --so-pin S`` only when no token has that
    label. A lock file serialises concurrent callers (two processes starting at once).

    Returns:
        The path of the configuration file.
    """
    if not label or len(label.encode("utf-8")) > TOKEN_LABEL_MAX:
        raise ValueError(f"a token label has 1 to {TOKEN_LABEL_MAX} bytes: {label!r}")
    conf = configure_softhsm(directory)
    with open(conf.parent / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if label in token_labels(conf):
            return conf
        out = subprocess.run(
            [_util(), "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
            env={**os.environ, "SOFTHSM2_CONF": str(conf)},
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise HsmUnavailable(
                f"softhsm2-util could not create token {label!r}: {out.stderr.strip()}", reason="token"
            )
    return conf


def read_or_create_secret(path: Path, nbytes: int = 24) -> str:
    """The secret in ``path``, creating it (mode 0600, random URL-safe text) if missing."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return secret


def prepare_softhsm(config: HsmConfig, *, create_pin: bool) -> HsmConfig:
    """Point SoftHSM2 at ``config.softhsm_dir`` and make sure the token exists there.

    With ``create_pin`` (``tombola init``) a missing PIN is generated into ``softhsm_dir/pin``
    (0600); otherwise the PIN must be configured. The SO PIN is generated into
    ``softhsm_dir/so-pin`` (0600). A configuration for another module is returned unchanged.

    Returns:
        ``config`` with the PIN resolved.
    """
    if config.softhsm_dir is None or not is_softhsm(config.module):
        return config
    pin_file = config.embedded_pin_file
    if create_pin and not config.pin and config.pin_file is None and pin_file is not None:
        read_or_create_secret(pin_file)
    pin = config.resolve_pin()
    so_pin = read_or_create_secret(config.softhsm_dir / SO_PIN_FILE_NAME)
    ensure_softhsm_token(config.softhsm_dir, config.token_label, pin, so_pin)
    return config.with_pin(pin)
