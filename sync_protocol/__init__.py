"""Tombola sync protocol: the wire format shared by POS devices, the server and the core.

Everything a device and a server exchange is defined here, and nothing here imports the rest of
the project (an import-linter contract enforces it), so an independent implementation can be
checked against this package and the vectors under ``tests/vectors/``.

- :mod:`sync_protocol.canonical`: canonical bytes (RFC 8785, JCS) and domain separation.
- :mod:`sync_protocol.signing`: Ed25519 signatures, key ids, the :class:`Signer` protocol.
- :mod:`sync_protocol.chain`: the per-device hash chain of sale and void records.
- :mod:`sync_protocol.codes`: ticket verification codes.
- :mod:`sync_protocol.messages`: the wire objects (enrollment, grant, records, batch, ack).
- :mod:`sync_protocol.errors`: device-facing error codes.

The full specification is ``docs/sync-protocol.md``.
"""

from sync_protocol.version import PROTOCOL_VERSION, check_version

__all__ = ["PROTOCOL_VERSION", "check_version"]
