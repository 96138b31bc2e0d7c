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
    if not major.isdigit() or (minor and not minor.isdigit()):
        raise UnsupportedVersion(f"protocol version {version!r} is not of the form MAJOR.MINOR")
    if int(major) != SUPPORTED_MAJOR:
        raise UnsupportedVersion(
            f"protocol version {version} is not supported: this peer speaks major version {SUPPORTED_MAJOR}"
        )
    return version
