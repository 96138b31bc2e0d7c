"""The core's RNG service: random bytes and unbiased integers from the token, every call recorded,
continuously health-tested, failing closed.

``source(n)`` returns ``n`` bytes (``Hsm.generate_random``, i.e. C_GenerateRandom). Every byte
drawn from it passes the SP 800-90B 4.4 health tests (:mod:`gli_core.rng.health`) before
anything derived from it is released. The first call after start-up or an operator reset first
runs the start-up test of SP 800-90B 4.3 on 1024 bytes, which are discarded.

Integers. ``randbelow(n)`` draws ``ceil(k / 8)`` bytes for ``k = bitlength(n - 1)``, keeps the
top ``k`` bits of their big-endian value and rejects a value ``>= n`` by drawing again
(rejection sampling on the fewest bits: every value in ``[0, n)`` has probability ``1/n``
exactly, no modulo bias, under two draws on average). ``randrange(lo, hi)`` is
``lo + randbelow(hi - lo)``.

Records. Every call gives the recorder one :class:`RngCall`: request id, purpose, raffle, range,
the bytes drawn from the token, SHA-256 of the output (of the bytes; of an integer, of its ASCII
decimal digits), time and outcome. Refused and failed calls are recorded too. A recorder error
propagates: output that could not be recorded is not released.

Failure. A failed health test latches the service failed: that call and every later one raise
:class:`~gli_core.rng.errors.RngUnhealthy` (HTTP 503) until :meth:`RngService.reset`; the
metric ``rng_health_failures_total`` goes up and a ``health_failure`` record goes to the
recorder. :class:`~gli_core.hsm.errors.HsmUnavailable` from the source propagates (503) with an
``unavailable`` record, without latching: the token may come back.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import uuid6

from gli_core.hsm.errors import HsmUnavailable
from gli_core.rng.errors import RngUnhealthy
from gli_core.rng.health import HealthFailure, HealthParams, HealthTests

STARTUP_SAMPLES = 1024
#: Rejection sampling draws again with probability < 1/2 each time; 128 rejections in a row
#: (probability < 2^-128) mean a broken source.
MAX_REJECTIONS = 128
REJECTION_SAMPLING = "rejection_sampling"

OK = "ok"
HEALTH_FAILURE = "health_failure"
REFUSED = "refused"
UNAVAILABLE = "unavailable"
STARTUP = "startup"
RESET = "reset"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class RngCall:
    """One request to the RNG service, as the audit log records it.

    Attributes:
        request_id: a UUIDv7.
        purpose: what the randomness is for (``draw_nonce``, ``winner``, ``startup``...).
        raffle_id: the raffle it serves, if any.
        operation: ``bytes``, ``randbelow``, ``randrange``, ``startup`` or ``reset``.
        lo, hi: the half-open range ``[lo, hi)`` of an integer request.
        n_bytes: bytes drawn from the token for the request (rejected draws included).
        output_sha256: hex SHA-256 of the output released (None when nothing was released).
        at_ms: Unix time in milliseconds.
        outcome: ``ok``, ``health_failure``, ``refused`` (the service was failed),
            ``unavailable`` (the token failed), ``startup`` or ``reset``.
        detail: why, for anything but ``ok``.
    """

    request_id: str
    purpose: str
    raffle_id: str | None
    operation: str
    lo: int | None
    hi: int | None
    n_bytes: int
    output_sha256: str | None
    at_ms: int
    outcome: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Metrics:
    """In-process counters (``snapshot()`` for a metrics endpoint or a test)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def inc(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + by

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def int_output_sha256(value: int) -> str:
    """SHA-256 of an integer output as the records give it: over its ASCII decimal digits."""
    return hashlib.sha256(str(value).encode("ascii")).hexdigest()


class RngService:
    """Random bytes and integers from ``source``, health-tested, recorded, failing closed.

    Thread-safe: one lock orders the draws, so the health tests see the stream as the token
    produced it.
    """

    def __init__(
        self,
        source: Callable[[int], bytes],
        recorder: Callable[[RngCall], None] | None = None,
        *,
        health: HealthParams | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self._source = source
        self._recorder = recorder
        self.tests = HealthTests(health)
        self.metrics = metrics or Metrics()
        self._clock = clock
        self._lock = threading.Lock()
        self._failure: HealthFailure | None = None
        self._started = False

    # -- state ------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        return self._failure is None

    @property
    def failure(self) -> HealthFailure | None:
        """The health-test failure the service is latched on, if any."""
        return self._failure

    def status(self) -> dict[str, Any]:
        """For a health endpoint: healthy or not, why, the cutoffs and the counters."""
        f = self._failure
        return {
            "healthy": f is None,
            "failure": None if f is None else {"test": f.test, "offset": f.offset, "detail": f.detail},
            "rct_cutoff": self.tests.rct_c,
            "apt_cutoff": self.tests.apt_c,
            "apt_window": self.tests.window,
            "metrics": self.metrics.snapshot(),
        }

    def reset(self, *, operator: str, reason: str) -> None:
        """Clear a latched failure (an operator, after investigating). The health tests start
        over, and the next call runs the start-up test again."""
        with self._lock:
            previous = self._failure
            self._failure = None
            self._started = False
            self.tests.reset()
        self.metrics.inc("rng_resets_total")
        detail = f"reset by {operator}: {reason}" + (f" (was: {previous.test})" if previous else "")
        self._record(RESET, "reset", None, None, None, 0, None, RESET, detail)

    # -- requests ---------------------------------------------------------------
    def random_bytes(self, n: int, *, purpose: str, raffle_id: str | None = None) -> bytes:
        """``n`` random bytes."""
        if n < 0:
            raise ValueError("n must not be negative")
        out = self._request("bytes", purpose, raffle_id, None, None, lambda draw: draw(n))
        assert isinstance(out, bytes)
        return out

    def randbelow(self, n: int, *, purpose: str, raffle_id: str | None = None) -> int:
        """A uniform integer in ``[0, n)``."""
        if n < 1:
            raise ValueError("randbelow needs n >= 1")
        out = self._request("randbelow", purpose, raffle_id, 0, n, lambda draw: self._below(n, draw))
        assert isinstance(out, int)
        return out

    def randrange(self, lo: int, hi: int, *, purpose: str, raffle_id: str | None = None) -> int:
        """A uniform integer in ``[lo, hi)``."""
        if hi <= lo:
            raise ValueError("randrange needs lo < hi")
        out = self._request("randrange", purpose, raffle_id, lo, hi, lambda draw: lo + self._below(hi - lo, draw))
        assert isinstance(out, int)
        return out

    @staticmethod
    def _below(n: int, draw: Callable[[int], bytes]) -> int:
        k = (n - 1).bit_length()
        if k == 0:
            return 0
        nbytes = (k + 7) // 8
        shift = 8 * nbytes - k
        for _ in range(MAX_REJECTIONS):
            value = int.from_bytes(draw(nbytes), "big") >> shift
            if value < n:
                return value
        raise _Rejected(f"rejection sampling for n = {n} rejected {MAX_REJECTIONS} draws in a row")

    def _request(
        self,
        operation: str,
        purpose: str,
        raffle_id: str | None,
        lo: int | None,
        hi: int | None,
        produce: Callable[[Callable[[int], bytes]], bytes | int],
    ) -> bytes | int:
        drawn = 0
        output: bytes | int = b""
        digest = ""

        def draw(nbytes: int) -> bytes:
            nonlocal drawn
            if nbytes == 0:
                return b""
            data = self._source(nbytes)
            if len(data) != nbytes:
                raise HsmUnavailable(f"the RNG source returned {len(data)} bytes, not {nbytes}", reason="call")
            drawn += nbytes
            self.metrics.inc("rng_bytes_total", nbytes)
            failure = self.tests.check(data)
            if failure is not None:
                raise _Failed(failure)
            return data

        with self._lock:
            try:
                if self._failure is not None:
                    raise _Refused(self._failure)
                if not self._started:
                    self._startup(draw)
                    drawn = 0
                output = produce(draw)
            except _Refused as exc:
                self.metrics.inc("rng_refused_total")
                record = (REFUSED, f"{exc.failure.test}: {exc.failure.detail}")
                error: Exception | None = RngUnhealthy(
                    f"the RNG is failed since its {exc.failure.test.replace('_', ' ')} test failed "
                    f"({exc.failure.detail}); an operator must reset it",
                    test=exc.failure.test,
                )
            except (_Failed, _Rejected) as exc:
                failure = (
                    exc.failure
                    if isinstance(exc, _Failed)
                    else HealthFailure(REJECTION_SAMPLING, self.tests.samples, str(exc))
                )
                self._failure = failure
                self.metrics.inc("rng_health_failures_total")
                self.metrics.inc(f"rng_health_failures_{failure.test}")
                record = (HEALTH_FAILURE, f"{failure.test} at byte {failure.offset}: {failure.detail}")
                error = RngUnhealthy(
                    f"RNG health test {failure.test.replace('_', ' ')} failed: {failure.detail}; "
                    "the RNG refuses requests until an operator resets it",
                    test=failure.test,
                )
            except HsmUnavailable as exc:
                self.metrics.inc("rng_unavailable_total")
                record = (UNAVAILABLE, exc.detail)
                error = exc
            else:
                self.metrics.inc("rng_calls_total")
                digest = hashlib.sha256(output).hexdigest() if isinstance(output, bytes) else int_output_sha256(output)
                record, error = (OK, ""), None
        if error is not None:
            self._record(operation, purpose, raffle_id, lo, hi, drawn, None, *record)
            raise error
        self._record(operation, purpose, raffle_id, lo, hi, drawn, digest, *record)
        return output

    def _startup(self, draw: Callable[[int], bytes]) -> None:
        """SP 800-90B 4.3 start-up test: 1024 samples through the tests, then discarded."""
        draw(STARTUP_SAMPLES)
        self._started = True
        self._record(STARTUP, STARTUP, None, None, None, STARTUP_SAMPLES, None, STARTUP, "start-up health test passed")

    def _record(
        self,
        operation: str,
        purpose: str,
        raffle_id: str | None,
        lo: int | None,
        hi: int | None,
        n_bytes: int,
        output_sha256: str | None,
        outcome: str,
        detail: str,
    ) -> None:
        if self._recorder is None:
            return
        self._recorder(
            RngCall(
                request_id=str(uuid6.uuid7()),
                purpose=purpose,
                raffle_id=raffle_id,
                operation=operation,
                lo=lo,
                hi=hi,
                n_bytes=n_bytes,
                output_sha256=output_sha256,
                at_ms=self._clock(),
                outcome=outcome,
                detail=detail,
            )
        )


class _Failed(Exception):
    def __init__(self, failure: HealthFailure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


class _Refused(_Failed):
    pass


class _Rejected(Exception):
    pass
