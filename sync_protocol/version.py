"""Protocol versioning: ``MAJOR.MINOR``; a peer refuses an unknown major version.

Minor versions only add optional fields. Unknown fields are kept by every message model, so a
signature made by a newer minor version still verifies on an older peer.
"""

from sync_protocol.errors import UnsupportedVersion

#: the version a message declares unless it carries a member of a later minor version; every
#: 1.x peer reads it (docs/sync-protocol.md section 3)
PROTOCOL_VERSION = "1.0"
SUPPORTED_MAJOR = 1
#: 1.1 adds device events: ``SyncBatch.events`` and ``SyncAck.events_acked_seq``/``events_head_hash``
EVENTS_VERSION = "1.1"
#: the newest minor version this implementation speaks
LATEST_VERSION = EVENTS_VERSION


def minor_of(version: str) -> int:
    """The minor part of a checked ``MAJOR.MINOR`` version (0 for a bare ``MAJOR``)."""
    _, _, minor = version.partition(".")
    return int(minor) if minor else 0


def check_version(version: str) -> str:
    """Return ``version`` if its major part is supported, else raise :class:`UnsupportedVersion`."""
    major, _, minor = version.partition(".")
    # ASCII digits only (str.isdigit() is also true for "²", which int() refuses), and compared
    # as text, so a very long or odd version is refused as unsupported rather than crashing.
    if not (major.isascii() and major.isdigit()) or (minor and not (minor.isascii() and minor.isdigit())):
        raise UnsupportedVersion(f"protocol version {version!r} is not of the form MAJOR.MINOR")
    if major.lstrip("0") != str(SUPPORTED_MAJOR):
        raise UnsupportedVersion(
            f"protocol version {version} is not supported: this peer speaks major version {SUPPORTED_MAJOR}"
        )
    return version
