"""The device never takes money the server will refuse, as a property (issue 9).

Hypothesis generates raffles (price points with or without a single price, ``bundles_only``,
sales windows, status, currency), devices (time anchor, elapsed time, lease, grants partly
used) and sales (quantity, a stated amount or none) or voids. The device's judgement
(:func:`pos_client.selling.decide_sale`, :func:`pos_client.voids.decide_void`: its rule layer,
sans I/O) is compared with the server's (:func:`server.sync.rules.judge`) on the record the
device makes, or would have had to make: the device accepts exactly what the server accepts,
and when both refuse, the device's code is the server's code as the device names it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from pos_client.clock import Anchor, Reading
from pos_client.errors import SaleRefused
from pos_client.selling import SaleContext, decide_sale
from pos_client.store import EnrolledDevice
from pos_client.voids import decide_void
from pos_client.wallet import GrantSlice
from server.sync.rules import BatchContext, KnownSale, RaffleTerms, judge
from sync_protocol import rules
from sync_protocol.messages import GENESIS_HASH, Payment, PricePoint, RaffleInfo, SaleRecord, VoidRecord

HOUR_MS = 3_600_000
T0 = 1_767_225_600_000  # the device's last anchor (server time)
#: the server's rejection code -> the device's refusal code (pos_client.selling.local_refusal)
DEVICE_CODE = {
    "unknown_raffle": {"raffle_not_known"},
    "lease_expired": {"offline_lease_expired"},
    "sale_after_close": {"raffle_closed"},
    "sale_before_open": {"sales_not_open"},
    "amount_mismatch": {"bad_amount", "bad_quantity"},
    "outside_grant": {"numbers_exhausted"},
}


@st.composite
def raffle_infos(draw: st.DrawFn, sale_at_ms: int = T0) -> RaffleInfo:
    """A raffle whose sales window lies mostly around ``sale_at_ms`` (the record's anchored time)."""
    single = draw(st.sampled_from([True, True, True, False]))  # a raffle may have no single price
    quantities = [1] * single + draw(st.lists(st.integers(2, 40), min_size=1 - single, max_size=3, unique=True))
    points = [PricePoint(quantity=q, amount_cents=draw(st.integers(0, 50_000))) for q in quantities]
    length = draw(st.integers(HOUR_MS, 12 * HOUR_MS))
    where = draw(st.sampled_from(["inside", "inside", "inside", "before", "after"]))
    if where == "inside":  # open <= sale < close, the edges included
        opens = sale_at_ms - draw(st.integers(0, length - 1))
    elif where == "before":
        opens = sale_at_ms + draw(st.integers(1, HOUR_MS))
    else:  # at or after close
        opens = sale_at_ms - length - draw(st.integers(0, HOUR_MS))
    return RaffleInfo(
        raffle_id="rf-P",
        name="property",
        currency=draw(st.sampled_from(["USD", "EUR", "JPY"])),
        price_points=points,
        sales_open_at_ms=opens,
        sales_close_at_ms=opens + length,
        status=draw(st.sampled_from(["scheduled", "open", "open", "open", "closed", "cancelled"])),
        bundles_only=draw(st.sampled_from([None, False, True])),
    )


@dataclass(frozen=True)
class Grant:
    first: int
    last: int
    used: int  # numbers of it the device already used (sold, voided or rejected)

    @property
    def slice(self) -> GrantSlice:
        return GrantSlice(f"g{self.first}", self.first + self.used, self.last)


@st.composite
def grant_sets(draw: st.DrawFn) -> list[Grant]:
    grants, start = [], 1
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):
        start += draw(st.integers(0, 50))
        size = draw(st.integers(1, 60))
        grants.append(Grant(start, start + size - 1, draw(st.integers(0, size))))
        start += size
    return grants


@dataclass(frozen=True)
class Device:
    elapsed_ms: int
    lease_s: int
    grants: list[Grant]
    knows_raffle: bool

    def context(self, info: RaffleInfo) -> SaleContext:
        anchor = Anchor(server_time_ms=T0, wall_ms=T0, monotonic_ms=10**9, boot_id="boot")
        device = EnrolledDevice(
            device_id="dv-P",
            venue_id="vn-P",
            server_url="http://server",
            status="active",
            lease_s=self.lease_s,
            anchor=anchor,
            acked_seq=0,
            acked_hash=GENESIS_HASH,
            key_pem="",
            last_sync_ms=None,
        )
        now = Reading(wall_ms=T0 + self.elapsed_ms, monotonic_ms=10**9 + self.elapsed_ms, boot_id="boot")
        return SaleContext(
            device=device,
            now=now,
            raffle_id=info.raffle_id,
            raffle=info if self.knows_raffle else None,
            last_device_time_ms=None,
        )

    def server(self, info: RaffleInfo, delay_ms: int) -> BatchContext:
        """The server's view of the same device: the raffle (unless not at its venue), its grants."""
        return BatchContext(
            device_id="dv-P",
            now_ms=T0 + self.elapsed_ms + delay_ms,
            skew_ms=300_000,
            lease_s=self.lease_s,
            raffles={info.raffle_id: RaffleTerms.of(info)} if self.knows_raffle else {},
            grants={info.raffle_id: [(g.first, g.last) for g in self.grants]},
            anchors={T0},
        )


devices = st.builds(
    Device,
    elapsed_ms=st.integers(0, 2 * HOUR_MS)
    | st.sampled_from([HOUR_MS, 8 * HOUR_MS]).flatmap(
        lambda lease: st.integers(lease - 2, lease + 2)  # the lease's edge
    ),
    lease_s=st.sampled_from([3600, 8 * 3600]),
    grants=grant_sets(),
    knows_raffle=st.sampled_from([True, True, True, True, False]),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RaffleInfo, Device]:
    device = draw(devices)
    return draw(raffle_infos(T0 + device.elapsed_ms)), device


def _would_pick(grants: list[Grant], quantity: int) -> list[int]:
    """The numbers a device picks (lowest free first); past its grants when it has too few."""
    free = [n for g in grants for n in range(g.first + g.used, g.last + 1)][:quantity]
    beyond = max((g.last for g in grants), default=0)
    return free + list(range(beyond + 1, beyond + 1 + quantity - len(free)))


def _record_fields(info: RaffleInfo, device: Device) -> dict[str, object]:
    return {
        "device_id": "dv-P",
        "seq": 2,
        "raffle_id": info.raffle_id,
        "device_time_ms": T0 + device.elapsed_ms,
        "anchor_ms": T0,
        "elapsed_ms": device.elapsed_ms,
        "prev_hash": GENESIS_HASH,
    }


def _assert_same_verdict(device_refusal: SaleRefused | None, server_verdict: object) -> None:
    event(device_refusal.code if device_refusal else "accepted")
    if device_refusal is None:
        assert server_verdict is None, f"the device sold, the server rejects: {server_verdict}"
        return
    assert server_verdict is not None, f"the device refused ({device_refusal.diagnostics()}), the server accepts"
    code = getattr(server_verdict, "code", "")
    assert device_refusal.code in DEVICE_CODE[code], (device_refusal.diagnostics(), code)


@settings(max_examples=400, deadline=None)
@given(
    scenario=scenarios(),
    quantity=st.integers(1, 6) | st.integers(1, 60),
    stated=st.sampled_from([None, "price"]) | st.integers(0, 100_000),
    delay_ms=st.integers(0, HOUR_MS),
)
@example(  # issue 9: priced 5.00, no bundles; 3 tickets sell as singles at 15.00
    scenario=(
        RaffleInfo(
            raffle_id="rf-P",
            name="seen",
            currency="USD",
            price_points=[PricePoint(quantity=1, amount_cents=500)],
            sales_open_at_ms=T0 - HOUR_MS,
            sales_close_at_ms=T0 + 6 * HOUR_MS,
            status="open",
        ),
        Device(elapsed_ms=1000, lease_s=8 * 3600, grants=[Grant(1, 100, 0)], knows_raffle=True),
    ),
    quantity=3,
    stated=None,
    delay_ms=0,
)
def test_the_device_sells_exactly_what_the_server_accepts(
    scenario: tuple[RaffleInfo, Device], quantity: int, stated: int | str | None, delay_ms: int
) -> None:
    """``stated``: no amount, the raffle's price for the quantity (``"price"``), or any amount."""
    info, device = scenario
    ctx = device.context(info)
    if stated == "price":
        stated = rules.sale_amount(RaffleTerms.of(info), quantity)
    assert not isinstance(stated, str)
    refusal: SaleRefused | None = None
    try:
        decision = decide_sale(ctx, [g.slice for g in device.grants], quantity=quantity, amount_cents=stated)
    except SaleRefused as exc:
        refusal = exc
        # what the device would have had to write: the amount asked, else any amount
        numbers, amount = _would_pick(device.grants, quantity), stated if stated is not None else 0
        if stated is None and ctx.terms is not None:
            amount = rules.sale_amount(ctx.terms, quantity) or 0
    else:
        numbers, amount = decision.numbers, decision.amount_cents
        assert len(numbers) == quantity
        assert ctx.terms is not None and amount == rules.sale_amount(ctx.terms, quantity)
    record = SaleRecord(
        sale_id="sale-P",
        numbers=numbers,
        amount_cents=amount,
        currency=info.currency,
        payment=Payment(method="cash"),
        **_record_fields(info, device),
    ).sealed()
    [verdict] = judge([record], device.server(info, delay_ms))
    _assert_same_verdict(refusal, verdict)


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios(), delay_ms=st.integers(0, HOUR_MS))
def test_the_device_voids_exactly_what_the_server_accepts(scenario: tuple[RaffleInfo, Device], delay_ms: int) -> None:
    info, device = scenario
    refusal: SaleRefused | None = None
    try:
        decide_void(device.context(info))
    except SaleRefused as exc:
        refusal = exc
    record = VoidRecord(
        sale_id="void-P",
        voids="sale-1",
        reason="changed mind",
        **_record_fields(info, device),
    ).sealed()
    server = device.server(info, delay_ms)
    server.sales["sale-1"] = KnownSale("dv-P", info.raffle_id, accepted=True, voided=False)
    [verdict] = judge([record], server)
    _assert_same_verdict(refusal, verdict)
