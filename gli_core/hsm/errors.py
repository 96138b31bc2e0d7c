"""Errors of the HSM layer (see ``docs/errors.md``)."""

from __future__ import annotations

from gli_core.errors import CoreError


class HsmUnavailable(CoreError):
    """The PKCS#11 token cannot be used: module missing, token missing, login refused, or a
    PKCS#11 call failed. The core fails closed: nothing that needs the token happens.

    ``reason`` (also on the wire) is one of ``module``, ``token``, ``pin``, ``login``, ``call``,
    ``key``; the detail names the module and token, never the PIN.
    """

    code = "hsm_unavailable"
    status = 503

    def __init__(self, detail: str, *, reason: str = "call") -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason
