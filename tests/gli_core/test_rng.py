"""The RNG service: SP 800-90B 4.4 health tests (cutoffs, stuck and biased sources), failing
closed, unbiased integers (chi-square on the real token, exact counts on a source that would
show modulo bias), and the record of every call."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import binom, chisquare

from gli_core.hsm import Hsm, HsmConfig, HsmUnavailable, open_hsm
from gli_core.rng import (
    ADAPTIVE_PROPORTION,
    REJECTION_SAMPLING,
    REPETITION_COUNT,
    HealthParams,
    HealthTests,
    RngCall,
    RngService,
    RngUnhealthy,
    apt_cutoff,
    false_alarm_rates,
    int_output_sha256,
    rct_cutoff,
)
from gli_core.rng.health import binomial_tail, critbinom

pytestmark = pytest.mark.hsm


class Shake:
    """A deterministic stand-in for a healthy source: SHAKE-256 of a seed, read in order."""

    def __init__(self, seed: bytes = b"tombola") -> None:
        self._xof = hashlib.shake_256(seed)
        self._pos = 0
        self._buf = b""

    def __call__(self, n: int) -> bytes:
        while len(self._buf) < self._pos + n:
            self._buf = self._xof.digest(2 * len(self._buf) + n + 4096)
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out


class Counting:
    """Bytes 0, 1, ..., 255, 0, 1, ...: a perfectly balanced source, on which ``byte % n`` is biased."""

    def __init__(self) -> None:
        self.served = 0

    def __call__(self, n: int) -> bytes:
        out = bytes((self.served + i) % 256 for i in range(n))
        self.served += n
        return out


@pytest.fixture
def records() -> list[RngCall]:
    return []


@pytest.fixture
def rng(hsm: Hsm, records: list[RngCall]) -> RngService:
    return RngService(hsm.generate_random, records.append)


# -- cutoffs ------------------------------------------------------------------------------------


def test_cutoffs_follow_the_formulas_of_sp_800_90b() -> None:
    assert rct_cutoff(8, 2.0**-20) == 4  # 1 + ceil(20 / 8)
    assert rct_cutoff(8, 2.0**-40) == 6
    assert apt_cutoff(8, 2.0**-20) == 13  # the table value of SP 800-90B 4.4.2 for W = 512, H = 8
    assert apt_cutoff(8, 2.0**-40) == 19
    assert HealthParams().rct_cutoff == 6 and HealthParams().apt_cutoff == 19  # default alpha = 2^-40
    for alpha_log2 in (20, 30, 40):
        for h in (0.5, 1, 2, 3.3, 4, 6, 7, 8):
            alpha = 2.0**-alpha_log2
            expected = int(binom.ppf(1 - alpha, 512, 2.0**-h)) + 1
            assert apt_cutoff(h, alpha) == expected, (alpha_log2, h)
            k = critbinom(512, 2.0**-h, alpha)
            assert binom.sf(k, 512, 2.0**-h) <= alpha * (1 + 1e-9) < binom.sf(k - 1, 512, 2.0**-h)
    assert binomial_tail(511, 1 / 256, 17) == pytest.approx(binom.sf(17, 511, 1 / 256), rel=1e-9)
    with pytest.raises(ValueError):
        rct_cutoff(9, 2.0**-20)


def test_documented_false_alarm_rates() -> None:
    rct20, apt20 = false_alarm_rates(HealthParams(alpha=2.0**-20))
    rct40, apt40 = false_alarm_rates(HealthParams())
    assert rct20 == pytest.approx(5.9e-8, rel=0.01) and apt20 == pytest.approx(2.4e-9, rel=0.02)
    assert rct40 == pytest.approx(9.1e-13, rel=0.01) and apt40 == pytest.approx(9.2e-15, rel=0.02)
    assert 2**24 > 1 / (rct20 + apt20) > 2**23  # about one false alarm per 16 MiB at alpha = 2^-20
    assert 2**41 > 1 / (rct40 + apt40) > 2**39.9  # about one per TiB at alpha = 2^-40
    for rate in (rct20, apt20):
        assert rate <= 2.0**-20
    for rate in (rct40, apt40):
        assert rate <= 2.0**-40


# -- the tests themselves -------------------------------------------------------------------------


def test_rct_counts_runs_across_calls() -> None:
    tests = HealthTests()
    for _ in range(5):
        assert tests.check(b"\x07") is None
    failure = tests.check(b"\x07")
    assert failure is not None and failure.test == REPETITION_COUNT and failure.offset == 5
    tests.reset()
    assert tests.check(b"ab\x01\x01\x01") is None and tests.check(b"\x01\x01x") is None  # run of 5
    failure = tests.check(b"zz\x02\x02\x02\x02\x02\x02")
    assert failure is not None and failure.offset == 8 + 2 + 5


def test_apt_counts_the_first_symbol_of_each_window() -> None:
    tests = HealthTests()
    window = bytearray(Shake()(512))
    window[0] = 0xAA
    others = [i for i in range(1, 512) if window[i] == 0xAA]
    for i in others:
        window[i] = 0xAB
    for i in range(1, 18):
        window[i * 20] = 0xAA  # 18 occurrences: one below the cutoff of 19
    assert tests.check(bytes(window)) is None
    window[400] = 0xAA  # the 19th
    tests.reset()
    failure = tests.check(bytes(window))
    assert failure is not None and failure.test == ADAPTIVE_PROPORTION and failure.offset == 400


@given(st.data())
def test_health_tests_give_the_same_verdict_however_the_stream_is_cut(data: st.DataObject) -> None:
    stream = bytearray(Shake(data.draw(st.binary(max_size=8)))(3000))
    for pos in data.draw(st.lists(st.integers(0, 2999), max_size=60)):
        stream[pos] = 0  # some zero bytes: occasional runs and skewed windows
    whole = HealthTests().check(bytes(stream))
    cuts = sorted(data.draw(st.lists(st.integers(0, 3000), max_size=20)))
    tests, found = HealthTests(), None
    for a, b in itertools.pairwise([0, *cuts, 3000]):
        found = tests.check(bytes(stream[a:b]))
        if found is not None:
            break
    assert found == whole


# -- failing closed -------------------------------------------------------------------------------


def test_a_stuck_source_trips_the_rct_and_the_service_fails_closed(records: list[RngCall]) -> None:
    stuck = False
    good = Shake()

    def source(n: int) -> bytes:
        return b"\x5a" * n if stuck else good(n)

    rng = RngService(source, records.append)
    assert len(rng.random_bytes(32, purpose="test")) == 32
    stuck = True
    with pytest.raises(RngUnhealthy) as exc:
        rng.random_bytes(32, purpose="draw_nonce", raffle_id="rf-1")
    assert exc.value.test == REPETITION_COUNT and exc.value.status == 503 and exc.value.code == "rng_unhealthy"
    stuck = False  # the source recovers, but the service stays failed until an operator resets it
    for call in (
        lambda: rng.random_bytes(1, purpose="x"),
        lambda: rng.randbelow(10, purpose="x"),
        lambda: rng.randrange(5, 9, purpose="x"),
    ):
        with pytest.raises(RngUnhealthy, match="operator"):
            call()
    assert not rng.healthy and rng.failure is not None and rng.failure.test == REPETITION_COUNT
    metrics = rng.metrics.snapshot()
    assert metrics["rng_health_failures_total"] == 1 and metrics["rng_health_failures_repetition_count"] == 1
    assert metrics["rng_refused_total"] == 3 and metrics["rng_calls_total"] == 1
    assert [r.outcome for r in records] == ["startup", "ok", "health_failure", "refused", "refused", "refused"]
    failed = records[2]
    assert failed.output_sha256 is None and failed.raffle_id == "rf-1" and "repetition_count" in failed.detail
    assert rng.status()["healthy"] is False
    rng.reset(operator="alice", reason="token replaced")
    assert rng.healthy and records[-1].outcome == "reset" and "alice" in records[-1].detail
    assert len(rng.random_bytes(32, purpose="after reset")) == 32
    assert [r.outcome for r in records[-2:]] == ["startup", "ok"]  # the start-up test runs again


def test_a_source_stuck_from_the_start_fails_the_startup_test(records: list[RngCall]) -> None:
    rng = RngService(lambda n: b"\0" * n, records.append)
    with pytest.raises(RngUnhealthy):
        rng.randbelow(6, purpose="die")
    assert records[-1].outcome == "health_failure" and records[-1].n_bytes == 1024


def test_a_biased_source_trips_the_apt() -> None:
    """One byte in 16 is 0x00, never twice in a row: the RCT sees nothing, the APT does."""
    shake = Shake(b"biased")
    served = 0

    def biased(n: int) -> bytes:
        nonlocal served
        out = bytearray(shake(n))
        for i in range(n):
            if (served + i) % 16 == 0:
                out[i] = 0
            elif out[i] == 0:
                out[i] = 1
        served += n
        return bytes(out)

    rng = RngService(biased)
    with pytest.raises(RngUnhealthy) as exc:
        rng.random_bytes(32, purpose="x")  # caught by the start-up test already
    assert exc.value.test == ADAPTIVE_PROPORTION
    assert rng.metrics.snapshot()["rng_health_failures_adaptive_proportion"] == 1


def test_a_source_that_makes_rejection_sampling_loop_fails_closed() -> None:
    values = itertools.cycle(range(129, 256))  # every draw for randbelow(129) is rejected
    rng = RngService(lambda n: bytes(next(values) for _ in range(n)))
    with pytest.raises(RngUnhealthy) as exc:
        rng.randbelow(129, purpose="x")
    assert exc.value.test == REJECTION_SAMPLING and not rng.healthy


def test_a_good_source_passes_many_calls(rng: RngService, records: list[RngCall]) -> None:
    """Far more calls than a draw makes; with alpha = 2^-40 a false alarm here has a probability
    below 1e-6 (false_alarm_rates times the bytes drawn)."""
    for i in range(10_000):
        rng.random_bytes(32, purpose="bulk")
        rng.randbelow(1_000_003 + i, purpose="bulk")
    drawn = rng.metrics.snapshot()["rng_bytes_total"]
    assert drawn > 10_000 * 35
    assert sum(false_alarm_rates(rng.tests.params)) * drawn < 1e-6
    assert rng.healthy and len(records) == 1 + 20_000


def test_hsm_unavailable_propagates_without_latching(hsm: Hsm, records: list[RngCall]) -> None:
    rng = RngService(hsm.generate_random, records.append)
    rng.random_bytes(8, purpose="x")
    hsm._login.session().close()  # the token drops the session
    with pytest.raises(HsmUnavailable) as exc:
        rng.random_bytes(8, purpose="x", raffle_id="rf-9")
    assert exc.value.status == 503
    assert records[-1].outcome == "unavailable" and records[-1].raffle_id == "rf-9"
    assert rng.healthy and rng.metrics.snapshot()["rng_unavailable_total"] == 1
    assert len(rng.random_bytes(8, purpose="x")) == 8  # the token is back: so is the service


# -- integers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 7, 10, 100, 1000])
def test_randbelow_is_uniform_on_the_token(rng: RngService, n: int) -> None:
    samples = 200 * n if n <= 100 else 100_000
    counts = Counter(rng.randbelow(n, purpose="uniformity") for _ in range(samples))
    assert set(counts) <= set(range(n))
    observed = [counts[i] for i in range(n)]
    assert chisquare(observed).pvalue > 1e-4


def test_no_modulo_bias_by_construction() -> None:
    """On bytes 0..255 in turn, ``byte % 100`` gives 0..55 three times a cycle and 56..99 twice;
    rejection sampling gives each value exactly as often."""
    naive = Counter(b % 100 for b in range(256))
    assert {naive[v] for v in range(56)} == {3} and {naive[v] for v in range(56, 100)} == {2}
    for n in (100, 200, 129, 256):
        source = Counting()
        rng = RngService(source)
        cycles = 8
        boundary = 1024 + 256 * cycles  # after the start-up test's 1024 bytes, 8 full cycles
        counts: Counter[int] = Counter()
        while source.served < boundary + 256:
            value = rng.randbelow(n, purpose="bias")
            if source.served <= boundary:  # calls that ended inside the full cycles
                counts[value] += 1
        per_cycle = 2 ** (8 - (n - 1).bit_length())  # how often each k-bit value comes in a cycle
        assert set(counts) == set(range(n))
        assert {counts[v] for v in range(n)} == {per_cycle * cycles}, n


def test_randbelow_draws_the_fewest_bytes(records: list[RngCall]) -> None:
    rng = RngService(Shake(), records.append)
    assert rng.randbelow(1, purpose="x") == 0
    assert records[-1].n_bytes == 0
    rng.randbelow(256, purpose="x")
    assert records[-1].n_bytes == 1  # never rejected: 256 is a power of two
    rng.randbelow(2**64, purpose="x")
    assert records[-1].n_bytes == 8
    rng.randbelow(2**64 + 1, purpose="x")
    assert records[-1].n_bytes % 9 == 0  # 65 bits: 9 bytes a draw
    with pytest.raises(ValueError):
        rng.randbelow(0, purpose="x")
    with pytest.raises(ValueError):
        rng.randrange(3, 3, purpose="x")


@pytest.fixture(scope="module")
def token_rng(hsm_token: object) -> Iterator[RngService]:
    with open_hsm(HsmConfig.from_env()) as h:
        yield RngService(h.generate_random)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(min_value=1, max_value=2**300))
def test_randbelow_stays_in_range(token_rng: RngService, n: int) -> None:
    assert 0 <= token_rng.randbelow(n, purpose="property") < n


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lo=st.integers(-(2**80), 2**80), size=st.integers(1, 2**70))
def test_randrange_stays_in_range(token_rng: RngService, lo: int, size: int) -> None:
    assert lo <= token_rng.randrange(lo, lo + size, purpose="property") < lo + size


# -- records --------------------------------------------------------------------------------------


def test_every_call_is_recorded_with_the_hash_of_its_output(rng: RngService, records: list[RngCall]) -> None:
    nonce = rng.random_bytes(32, purpose="draw_nonce", raffle_id="rf-7")
    winner = rng.randbelow(5000, purpose="tie_break", raffle_id="rf-7")
    ball = rng.randrange(1, 91, purpose="bingo")
    empty = rng.random_bytes(0, purpose="nothing")
    startup, *calls = records
    assert startup.outcome == "startup" and startup.n_bytes == 1024 and startup.output_sha256 is None
    assert [c.operation for c in calls] == ["bytes", "randbelow", "randrange", "bytes"]
    assert [c.outcome for c in calls] == ["ok"] * 4
    assert calls[0].output_sha256 == hashlib.sha256(nonce).hexdigest() and calls[0].n_bytes == 32
    assert (calls[0].purpose, calls[0].raffle_id, calls[0].lo, calls[0].hi) == ("draw_nonce", "rf-7", None, None)
    assert calls[1].output_sha256 == int_output_sha256(winner) == hashlib.sha256(str(winner).encode()).hexdigest()
    assert (calls[1].lo, calls[1].hi, calls[1].raffle_id) == (0, 5000, "rf-7") and calls[1].n_bytes >= 2
    assert calls[2].output_sha256 == int_output_sha256(ball) and (calls[2].lo, calls[2].hi) == (1, 91)
    assert calls[3].output_sha256 == hashlib.sha256(empty).hexdigest() and calls[3].n_bytes == 0
    assert len({r.request_id for r in records}) == len(records)
    assert all(r.at_ms > 0 for r in records)
    assert calls[0].to_dict()["output_sha256"] == calls[0].output_sha256


def test_a_recorder_failure_withholds_the_output() -> None:
    def broken(call: RngCall) -> None:
        if call.outcome == "ok":
            raise RuntimeError("audit log down")

    rng = RngService(Shake(), broken)
    with pytest.raises(RuntimeError, match="audit log down"):
        rng.random_bytes(32, purpose="x")


def test_concurrent_callers_each_get_a_recorded_call(rng: RngService, records: list[RngCall]) -> None:
    outputs: list[bytes] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(300):
            out = rng.random_bytes(16, purpose="threads")
            with lock:
                outputs.append(out)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(outputs)) == 2400
    ok = [r for r in records if r.outcome == "ok"]
    assert sorted(r.output_sha256 for r in ok) == sorted(hashlib.sha256(o).hexdigest() for o in outputs)
    assert rng.metrics.snapshot()["rng_calls_total"] == 2400


def test_no_python_random_in_the_core() -> None:
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "gli_core"
    pattern = re.compile(r"^\s*(import random\b|from random import)", re.M)
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert not offenders
