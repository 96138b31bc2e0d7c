"""The certified core of Tombola (GLI-31): ticket registry, grant signing, the HSM, the RNG, the
draw engine and the audit log.

Its public modules are :mod:`gli_core.api` (the in-process interface :class:`~gli_core.api.Core`,
and the offline verifiers of draw proofs and audit logs), :mod:`gli_core.router` (the same
interface over HTTP) and :mod:`gli_core.errors` (coded errors). The import-linter contract
"server reaches gli_core only through its public modules" in ``pyproject.toml`` names them and
forbids the server everything else, directly or indirectly.
"""
