"""The enrollment link: the server address and a one-time enrollment code in one URL, for a QR code.

``<server_url>/enroll?code=<code>[&key=<grant key>]`` (``docs/sync-protocol.md`` section 8.1):
the device's server address (``http`` or ``https``, with any path prefix, without a trailing
slash) followed by the path segment ``enroll``; the query, ``application/x-www-form-urlencoded``,
carries exactly one ``code`` and at most one ``key``, the server's grant key to pin out of band
(its key id or public key, as ``tombola-pos enroll --server-key`` takes it). Other query members
are ignored, so a later version may add some. A device reads it when it scans the QR code an
admin shows; typing the address and the code stays the same enrollment.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from sync_protocol.errors import TombolaError

#: the last path segment of an enrollment link
ENROLL_SEGMENT = "enroll"
_MAX_LENGTH = 2048
_CODE_LENGTH = (4, 64)  # as EnrollmentRequest.code
_MAX_KEY_LENGTH = 128


class BadEnrollmentLink(TombolaError):
    """Text that is not an enrollment link: an http(s) URL whose path ends in ``/enroll`` and whose
    query has exactly one ``code`` (4..64 characters) and at most one ``key``."""

    code = "bad_enrollment_link"
    status = 422


@dataclass(frozen=True)
class EnrollmentLink:
    """What an enrollment link carries: where to enroll, the one-time code, the key to pin (or ``None``)."""

    server_url: str
    code: str
    server_key: str | None = None


def enrollment_link(server_url: str, code: str, server_key: str | None = None) -> str:
    """The enrollment link of ``code`` at ``server_url`` (the inverse of :func:`parse_enrollment_link`).

    ``https://tombola.example`` and ``ABCD-EFGH-JKMN`` give
    ``https://tombola.example/enroll?code=ABCD-EFGH-JKMN``; a trailing slash of ``server_url`` is
    dropped; ``server_key`` adds ``&key=...``.
    """
    query = {"code": code} if server_key is None else {"code": code, "key": server_key}
    return f"{server_url.rstrip('/')}/{ENROLL_SEGMENT}?{urlencode(query)}"


def parse_enrollment_link(text: str) -> EnrollmentLink:
    """The server address, code and optional pinned key of an enrollment link.

    Accepts what a QR scan or a handheld scanner types: surrounding white space is dropped, the
    scheme and host are compared without case, a fragment is ignored. The server address is the
    link up to (not including) ``/enroll``: scheme, host, port and any path prefix.

    Raises:
        BadEnrollmentLink: not such a link (``bad_enrollment_link``), with a sentence saying why.
    """
    stripped = text.strip()
    if not stripped or len(stripped) > _MAX_LENGTH:
        raise BadEnrollmentLink("that is not an enrollment link: it is empty or over 2048 characters")
    try:
        parts = urlsplit(stripped)
        parts.port  # noqa: B018  # a port that is not a number raises here
    except ValueError:
        raise BadEnrollmentLink("that is not an enrollment link: it is not a well-formed URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadEnrollmentLink("that is not an enrollment link: it needs to start with https:// and a server name")
    path = parts.path.rstrip("/")
    prefix, _, last = path.rpartition("/")
    if last != ENROLL_SEGMENT:
        raise BadEnrollmentLink("that is not an enrollment link: its address does not end in /enroll")
    values = parse_qs(parts.query, keep_blank_values=True)
    codes = [c.strip() for c in values.get("code", [])]
    if len(codes) != 1 or not _CODE_LENGTH[0] <= len(codes[0]) <= _CODE_LENGTH[1]:
        raise BadEnrollmentLink("that is not an enrollment link: it needs exactly one code of 4 to 64 characters")
    keys = [k.strip() for k in values.get("key", [])]
    if len(keys) > 1 or (keys and not 0 < len(keys[0]) <= _MAX_KEY_LENGTH):
        raise BadEnrollmentLink("that enrollment link carries more than one server key, or an empty or overlong one")
    server_url = f"{parts.scheme.lower()}://{parts.netloc.lower()}{prefix}"
    return EnrollmentLink(server_url=server_url, code=codes[0], server_key=keys[0] if keys else None)
