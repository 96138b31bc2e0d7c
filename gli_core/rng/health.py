"""Continuous health tests on the RNG's output: NIST SP 800-90B (January 2018), section 4.4.

Samples are the output bytes, one 8-bit symbol each, tested in the order they leave the token,
across calls. ``H`` is the min-entropy per sample the tests assume (8 for full-entropy bytes,
configurable) and ``alpha`` the false-positive probability the cutoffs are designed for.

Repetition Count Test (4.4.1). ``C = 1 + ceil(-log2(alpha) / H)``. The test fails when a
symbol repeats ``C`` times in a row. For H = 8: C = 4 at alpha = 2^-20, C = 6 at alpha = 2^-40.

Adaptive Proportion Test (4.4.2). Windows of ``W = 512`` samples (the non-binary window). The
first sample A of a window is counted (B = 1), and every later sample of the window equal to A
adds one; the test fails when ``B >= C`` with ``C = 1 + CRITBINOM(W, 2^-H, 1 - alpha)``, the
binomial critical value: the smallest k with P(Binomial(W, 2^-H) <= k) >= 1 - alpha. For H = 8,
W = 512: C = 13 at alpha = 2^-20 (the value of the standard's table), C = 19 at alpha = 2^-40.
The critical value is computed here exactly from the binomial tail (no scipy needed in the
core); the tests compare it with ``scipy.stats.binom.ppf``.

False alarms of an ideal source (uniform bytes), per output byte (:func:`false_alarm_rates`):

======================  ==========================  ==========================
alpha                   RCT (C)                     APT (C)
======================  ==========================  ==========================
2^-20                   5.9e-8  (C = 4)             2.4e-9  (C = 13)
2^-40                   9.1e-13 (C = 6)             9.2e-15 (C = 19)
======================  ==========================  ==========================

With alpha = 2^-20 a healthy token trips the RCT about once every 16 MiB of output; because a
failure latches the RNG closed until an operator resets it, Tombola's default is alpha = 2^-40
(the other end of the range SP 800-90B recommends, 2^-20 to 2^-40): about one false alarm per
1 TiB. A stuck source is still caught after 6 equal bytes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DEFAULT_MIN_ENTROPY = 8.0
DEFAULT_ALPHA = 2.0**-40
WINDOW = 512

REPETITION_COUNT = "repetition_count"
ADAPTIVE_PROPORTION = "adaptive_proportion"


def rct_cutoff(min_entropy: float, alpha: float) -> int:
    """``C = 1 + ceil(-log2(alpha) / H)`` (SP 800-90B 4.4.1)."""
    if not 0 < min_entropy <= 8 or not 0 < alpha < 1:
        raise ValueError("need 0 < H <= 8 and 0 < alpha < 1")
    return 1 + math.ceil(-math.log2(alpha) / min_entropy)


def _log_pmf(n: int, k: int, log_p: float, log_q: float) -> float:
    return math.log(math.comb(n, k)) + k * log_p + (n - k) * log_q


def binomial_tail(n: int, p: float, k: int) -> float:
    """P(Binomial(n, p) > k), summed from the smallest terms up."""
    log_p, log_q = math.log(p), math.log1p(-p)
    return math.fsum(math.exp(_log_pmf(n, j, log_p, log_q)) for j in range(n, k, -1))


def critbinom(n: int, p: float, alpha: float) -> int:
    """CRITBINOM(n, p, 1 - alpha): the smallest k with P(Binomial(n, p) > k) <= alpha."""
    log_p, log_q = math.log(p), math.log1p(-p)
    tail, k = 0.0, n
    while k > 0:
        wider = tail + math.exp(_log_pmf(n, k, log_p, log_q))  # P(X > k - 1)
        if wider > alpha:
            break
        tail, k = wider, k - 1
    return k


def apt_cutoff(min_entropy: float, alpha: float, window: int = WINDOW) -> int:
    """``C = 1 + CRITBINOM(W, 2^-H, 1 - alpha)`` (SP 800-90B 4.4.2)."""
    if not 0 < min_entropy <= 8 or not 0 < alpha < 1 or window < 2:
        raise ValueError("need 0 < H <= 8, 0 < alpha < 1 and W >= 2")
    return 1 + critbinom(window, 2.0**-min_entropy, alpha)


@dataclass(frozen=True)
class HealthParams:
    """The assumed min-entropy per byte ``H``, the design false-positive rate ``alpha`` and the
    APT window ``W``; the cutoffs follow from them."""

    min_entropy: float = DEFAULT_MIN_ENTROPY
    alpha: float = DEFAULT_ALPHA
    window: int = WINDOW

    @property
    def rct_cutoff(self) -> int:
        return rct_cutoff(self.min_entropy, self.alpha)

    @property
    def apt_cutoff(self) -> int:
        return apt_cutoff(self.min_entropy, self.alpha, self.window)


def false_alarm_rates(params: HealthParams) -> tuple[float, float]:
    """Expected false alarms per output byte of an ideal source (uniform bytes): (RCT, APT).

    RCT: a byte ends a first run of ``C`` equal bytes with probability about
    ``(255/256) * 256^-(C-1)``. APT: once per window of ``W`` bytes, with probability
    ``P(1 + Binomial(W - 1, 1/256) >= C)``.
    """
    p = 1 / 256
    rct = (1 - p) * p ** (params.rct_cutoff - 1)
    apt = binomial_tail(params.window - 1, p, params.apt_cutoff - 2) / params.window
    return rct, apt


@dataclass(frozen=True)
class HealthFailure:
    """Which test failed, where in the output stream (byte offset since start or reset), why."""

    test: str
    offset: int
    detail: str


class HealthTests:
    """The RCT and the APT over a stream of bytes, with their state kept across :meth:`check`
    calls. Not thread-safe: the RNG service calls it under its lock."""

    def __init__(self, params: HealthParams | None = None) -> None:
        self.params = params or HealthParams()
        self.rct_c = self.params.rct_cutoff
        self.apt_c = self.params.apt_cutoff
        self.window = self.params.window
        self._run_re = re.compile(rb"(.)\1{%d}" % (self.rct_c - 1), re.DOTALL)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (after an operator reset)."""
        self.samples = 0
        self._last = -1  # last symbol seen, -1 for none
        self._run = 0  # length of the run of _last ending the stream
        self._apt_a = b""  # first symbol of the current window
        self._apt_b = 0  # occurrences of it in the window so far
        self._apt_i = 0  # samples of the current window seen so far (0: a new window starts)

    def check(self, data: bytes) -> HealthFailure | None:
        """Feed the next output bytes; the first failure found, or None."""
        found = [f for f in (self._rct(data), self._apt(data)) if f is not None]
        self.samples += len(data)
        return min(found, key=lambda f: f.offset) if found else None

    def _rct(self, data: bytes) -> HealthFailure | None:
        if not data:
            return None
        c, first = self.rct_c, data[0]
        lead = len(data) - len(data.lstrip(data[:1]))
        run = (self._run if first == self._last else 0) + lead
        if run >= c:
            return HealthFailure(
                REPETITION_COUNT, self.samples + lead - (run - c) - 1, f"byte 0x{first:02x} repeated {c} times in a row"
            )
        m = self._run_re.search(data, lead)
        if m is not None:
            return HealthFailure(
                REPETITION_COUNT,
                self.samples + m.start() + c - 1,
                f"byte 0x{data[m.start()]:02x} repeated {c} times in a row",
            )
        if lead == len(data):
            self._run = run
        else:
            self._run = len(data) - len(data.rstrip(data[-1:]))
        self._last = data[-1]
        return None

    def _apt(self, data: bytes) -> HealthFailure | None:
        pos, n, w = 0, len(data), self.window
        while pos < n:
            if self._apt_i == 0:
                self._apt_a, self._apt_b, self._apt_i = data[pos : pos + 1], 1, 1
                pos += 1
                continue
            take = min(w - self._apt_i, n - pos)
            end = pos + take
            count = data.count(self._apt_a, pos, end)
            if self._apt_b + count >= self.apt_c:
                at = pos - 1  # the sample at which B reaches the cutoff
                for _ in range(self.apt_c - self._apt_b):
                    at = data.index(self._apt_a, at + 1, end)
                return HealthFailure(
                    ADAPTIVE_PROPORTION,
                    self.samples + at,
                    f"byte 0x{self._apt_a.hex()} occurs {self.apt_c} times in a window of {w} (cutoff {self.apt_c})",
                )
            self._apt_b += count
            self._apt_i += take
            pos = end
            if self._apt_i == w:
                self._apt_i = 0
        return None
