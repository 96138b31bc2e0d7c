"""Protocol versioning: ``MAJOR.MINOR``; a peer refuses an unknown major version.

Minor versions only add optional fields. Unknown fields are kept by every message model, so a
signature made by a newer minor version still verifies on an older peer.
"""

from sync_protocol.errors import UnsupportedVersion

PROTOCOL_VERSION = "1.0"
SUPPORTED_MAJOR = 1


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
