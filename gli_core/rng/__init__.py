"""The core's RNG: C_GenerateRandom behind continuous SP 800-90B 4.4 health tests, unbiased
integers by rejection sampling, every call recorded, failing closed.

>>> rng = RngService(hsm.generate_random, recorder=audit.append)  # doctest: +SKIP
>>> nonce = rng.random_bytes(32, purpose="draw_nonce", raffle_id="rf-1")  # doctest: +SKIP
>>> index = rng.randbelow(10_000, purpose="tie_break", raffle_id="rf-1")  # doctest: +SKIP

``docs/hsm-and-rng.md`` gives the formulas, cutoffs and false-alarm rates.
"""

from gli_core.rng.errors import RngUnhealthy
from gli_core.rng.health import (
    ADAPTIVE_PROPORTION,
    REPETITION_COUNT,
    HealthFailure,
    HealthParams,
    HealthTests,
    apt_cutoff,
    false_alarm_rates,
    rct_cutoff,
)
from gli_core.rng.service import REJECTION_SAMPLING, Metrics, RngCall, RngService, int_output_sha256

__all__ = [
    "ADAPTIVE_PROPORTION",
    "REJECTION_SAMPLING",
    "REPETITION_COUNT",
    "HealthFailure",
    "HealthParams",
    "HealthTests",
    "Metrics",
    "RngCall",
    "RngService",
    "RngUnhealthy",
    "apt_cutoff",
    "false_alarm_rates",
    "int_output_sha256",
    "rct_cutoff",
]
