"""Outgoing mail: one interface (:class:`Mailer`), and the embedded outbox that writes each message
to a file under ``var/outbox/`` instead of sending it.

Every part that mails someone (a password reset, an online purchase's receipt) calls
:func:`send_mail`; which :class:`Mailer` carries the message is a setting, not the caller's
business. The embedded mode (the default, ``make run``) uses :class:`OutboxMailer`: one file per
message, named ``<UTC time>-<message id>.eml``, in RFC 5322 form (headers ``From``, ``To``,
``Subject``, ``Date``, ``Message-ID``, then a blank line and the UTF-8 text body), written to a
temporary name and renamed, so a reader never sees half a message. ``docs/operations.md`` names the
folder. A production installation plugs another :class:`Mailer` in with :func:`set_mailer`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from server.context import Tombola
from server.errors import InvalidRequest

__all__ = ["MailMessage", "Mailer", "OutboxMailer", "mailer_of", "read_outbox", "send_mail", "set_mailer"]

SUBJECT_MAX = 200
BODY_MAX = 100_000


@dataclass(frozen=True)
class MailMessage:
    """One message to one recipient, in plain text."""

    sender: str
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    """Carries a message to its recipient (or to where an operator collects it)."""

    def send(self, message: MailMessage, *, now_ms: int) -> None:
        """Send ``message``; raise on failure (the caller decides whether that fails its request)."""


class OutboxMailer:
    """The embedded mailer: writes each message as an ``.eml`` file into ``folder`` (mode 0600)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: MailMessage, *, now_ms: int) -> None:
        mail = EmailMessage()
        mail["From"] = message.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        when = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        mail["Date"] = format_datetime(when)
        msgid = make_msgid(domain="tombola.local")
        mail["Message-ID"] = msgid
        # 8bit keeps the file readable as it is (an operator reads the outbox); QP only for overlong lines
        readable = all(len(line.encode()) < 990 for line in message.body.splitlines())
        mail.set_content(message.body, cte="8bit" if readable else "quoted-printable")
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = when.strftime("%Y%m%dT%H%M%S") + f"{now_ms % 1000:03d}Z-" + msgid.strip("<>").split("@")[0]
        final = self.folder / f"{stem}.eml"
        temp = self.folder / f".{stem}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(bytes(mail))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, final)


_lock = threading.Lock()
_mailers: dict[int, Mailer] = {}


def set_mailer(app: Tombola, mailer: Mailer | None) -> None:
    """Use ``mailer`` for ``app`` (None: back to the outbox under ``home/outbox``)."""
    with _lock:
        if mailer is None:
            _mailers.pop(id(app), None)
        else:
            _mailers[id(app)] = mailer


def mailer_of(app: Tombola) -> Mailer:
    """The mailer of ``app``: the one set with :func:`set_mailer`, else the outbox of its home."""
    with _lock:
        found = _mailers.get(id(app))
    return found if found is not None else OutboxMailer(app.settings.outbox_dir)


def send_mail(app: Tombola, to: str, subject: str, body: str) -> None:
    """Send a plain-text message to ``to`` through the app's mailer (in embedded mode: a file in
    ``var/outbox/``).

    Raises:
        InvalidRequest: an address or subject with a line break (header injection), or a subject
            or body over its bound.
    """
    for name, value in (("to", to), ("subject", subject)):
        if "\r" in value or "\n" in value or "\x00" in value:
            raise InvalidRequest(f"a mail's {name} may not hold a line break", field=name)
    if "@" not in to or len(to) > 320:
        raise InvalidRequest("a mail needs an address such as name@example.org", field="to")
    if len(subject) > SUBJECT_MAX or len(body) > BODY_MAX:
        raise InvalidRequest("a mail's subject or body is too long", field="body")
    message = MailMessage(sender=app.settings.mail_from, to=to, subject=subject, body=body)
    mailer_of(app).send(message, now_ms=app.now_ms())


def read_outbox(folder: Path) -> list[EmailMessage]:
    """The messages in an outbox folder, oldest first (for operators' tools and tests)."""
    from email import policy
    from email.parser import BytesParser

    parser = BytesParser(policy=policy.default)
    messages = []
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        parsed = parser.parsebytes(path.read_bytes())
        assert isinstance(parsed, EmailMessage)  # policy.default makes EmailMessage
        messages.append(parsed)
    return messages
