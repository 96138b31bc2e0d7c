"""Errors of the RNG service (see ``docs/errors.md``)."""

from __future__ import annotations

from gli_core.errors import CoreError


class RngUnhealthy(CoreError):
    """A continuous health test failed: the RNG refuses every request until an operator resets it.

    ``test`` (also on the wire) names the test that failed first: ``repetition_count``,
    ``adaptive_proportion`` or ``rejection_sampling``.
    """

    code = "rng_unhealthy"
    status = 503

    def __init__(self, detail: str, *, test: str) -> None:
        super().__init__(detail, test=test)
        self.test = test
