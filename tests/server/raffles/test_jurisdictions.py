"""Jurisdiction profiles: each rule refused and allowed at creation and edit, at the POS grant and
at the RNG draw; the public list of profiles; a hypothesis property: any raffle the service
accepts satisfies its profile."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from server import jurisdictions
from server.context import Tombola
from server.errors import InvalidRequest, JurisdictionRule
from server.models import Organisation, Raffle
from server.raffles import service as raffles
from tests.simulators.device import RawDevice
from tests.support.app import HOUR_MS, Seed

ORG = Organisation.__table__  # type: ignore[attr-defined]
RAFFLE = Raffle.__table__  # type: ignore[attr-defined]
ND_ONLINE: dict[str, Any] = {"jurisdiction": "north-dakota", "online_sales": True}
FIXED = ({"tier": "car", "count": 1, "kind": "fixed", "amount_cents": 100_000},)


def spec(app: Tombola, venue_id: str, **kw: Any) -> raffles.RaffleCreate:
    base: dict[str, Any] = {
        "venue_id": venue_id,
        "name": "Spring raffle",
        "price_cents": 500,
        "number_space": 10_000,
        "sales_close_at_ms": app.now_ms() + 12 * HOUR_MS,
        "licence_number": "L-1",
        "claim_by_ms": app.now_ms() + 48 * HOUR_MS,
    }
    return raffles.RaffleCreate(**(base | kw))


def refused(app: Tombola, venue_id: str, rule: str, **kw: Any) -> JurisdictionRule:
    with pytest.raises(JurisdictionRule) as caught:
        raffles.create_raffle(app, spec(app, venue_id, **kw))
    assert caught.value.extra["rule"] == rule
    assert caught.value.to_dict()["error"] == "jurisdiction_rule"
    return caught.value


@pytest.fixture
def venue(tombola: Tombola) -> str:
    return str(raffles.create_venue(tombola, "Rule Hall")["id"])


def test_washington_refuses_internet_sales_and_allows_pos_only(tombola: Tombola, venue: str) -> None:
    err = refused(tombola, venue, "online_sales", jurisdiction="washington", online_sales=True)
    assert "WAC 230-11-030(4)(a)" in err.detail
    r = raffles.create_raffle(tombola, spec(tombola, venue, jurisdiction="washington"))
    assert (r["jurisdiction"], r["online_sales"]) == ("washington", False)  # the default follows the profile
    with pytest.raises(JurisdictionRule, match="WAC 230-11-030"):
        jurisdictions.check_online_sale(jurisdictions.profile_of(tombola, r["id"]))


def test_washington_allows_three_bundle_levels_not_four(tombola: Tombola, venue: str) -> None:
    three = ((5, 2000), (10, 3500), (25, 7500))
    err = refused(tombola, venue, "max_bundle_levels", jurisdiction="washington", bundles=(*three, (50, 14000)))
    assert "WAC 230-11-025" in err.detail
    assert raffles.create_raffle(tombola, spec(tombola, venue, jurisdiction="washington", bundles=three))
    # the default profile has no limit
    assert raffles.create_raffle(tombola, spec(tombola, venue, bundles=(*three, (50, 14000))))


def test_north_dakota_online_raffles_are_drawn_from_barrel_tickets(tombola: Tombola, venue: str) -> None:
    err = refused(tombola, venue, "rng_draw_for_online", **ND_ONLINE, prize_table=FIXED)
    assert "99-01.3-16-09.5" in err.detail
    refused(tombola, venue, "online_fifty_fifty", jurisdiction="north-dakota", online_sales=True, draw_method="barrel")
    online = raffles.create_raffle(tombola, spec(tombola, venue, **ND_ONLINE, draw_method="barrel", prize_table=FIXED))
    assert online["draw_method"] == "barrel"
    # sold at the venue only, the RNG draw is allowed; the default keeps a 50/50 off the internet
    pos = raffles.create_raffle(tombola, spec(tombola, venue, jurisdiction="north-dakota"))
    assert (pos["online_sales"], pos["draw_method"]) == (False, "rng")
    refused(tombola, venue, "receipt_fields", jurisdiction="north-dakota", claim_by_ms=None)


def test_ontario_refuses_offline_pos_selling(tombola: Tombola, venue: str) -> None:
    err = refused(tombola, venue, "offline_pos", jurisdiction="ontario")
    assert "POS 1.1.5" in err.detail
    r = raffles.create_raffle(tombola, spec(tombola, venue, jurisdiction="ontario", offline_sales=False))
    assert r["offline_sales"] is False
    assert raffles.raffle_info(r).offline_sales is False  # what the device applies


def test_a_receipt_licence_comes_from_the_raffle_or_the_organisation(tombola: Tombola, venue: str) -> None:
    with tombola.engine.begin() as conn:
        conn.execute(update(ORG).values(licence_number=""))
    refused(tombola, venue, "receipt_fields", jurisdiction="alberta", licence_number="")
    with tombola.engine.begin() as conn:
        conn.execute(update(ORG).values(licence_number="AGLC-77", jurisdiction="alberta"))
    r = raffles.create_raffle(tombola, spec(tombola, venue, licence_number=""))
    assert r["jurisdiction"] == "alberta"  # the organisation's licence names the profile


def test_an_unknown_jurisdiction_is_refused_by_name(tombola: Tombola, venue: str) -> None:
    with pytest.raises(InvalidRequest, match="unknown jurisdiction") as caught:
        raffles.create_raffle(tombola, spec(tombola, venue, jurisdiction="narnia"))
    assert caught.value.extra["field"] == "jurisdiction"


def test_an_edit_that_breaks_the_profile_is_refused_and_changes_nothing(tombola: Tombola, venue: str) -> None:
    r = raffles.create_raffle(tombola, spec(tombola, venue, jurisdiction="ontario", offline_sales=False))
    with pytest.raises(JurisdictionRule):
        raffles.edit_raffle(tombola, r["id"], raffles.RaffleEdit(offline_sales=True))
    assert raffles.get_raffle(tombola, r["id"])["offline_sales"] is False
    w = raffles.create_raffle(tombola, spec(tombola, venue, jurisdiction="washington"))
    with pytest.raises(JurisdictionRule):
        raffles.edit_raffle(tombola, w["id"], raffles.RaffleEdit(online_sales=True))
    edited = raffles.edit_raffle(tombola, w["id"], raffles.RaffleEdit(bundles=((5, 2000),)))
    assert [p["quantity"] for p in edited["price_points"]] == [1, 5]


def test_the_pos_grant_consults_the_profile(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    # a raffle that breaks its profile (changed behind the service's back) gets no grant
    with tombola.engine.begin() as conn:
        conn.execute(update(RAFFLE).where(RAFFLE.c.id == seeded.raffle_id).values(jurisdiction="ontario"))
    dev = RawDevice()
    resp = dev.enroll(client, seeded.code)
    assert not [g for g in resp.grants if g.raffle_id == seeded.raffle_id]
    info = next(r for r in resp.raffles if r.raffle_id == seeded.raffle_id)
    assert info.no_grant == "jurisdiction_rule"
    with tombola.engine.begin() as conn:
        conn.execute(update(RAFFLE).where(RAFFLE.c.id == seeded.raffle_id).values(offline_sales=False))
    ack = dev.sync(client, 1)
    assert [g.raffle_id for g in ack.grants] == [seeded.raffle_id]


def test_the_rng_draw_of_a_barrel_raffle_is_refused(tombola: Tombola, venue: str) -> None:
    r = raffles.create_raffle(tombola, spec(tombola, venue, **ND_ONLINE, draw_method="barrel", prize_table=FIXED))
    with pytest.raises(JurisdictionRule, match="barrel"):
        raffles.execute_draw(tombola, r["id"])


def test_alberta_needs_the_sales_threshold_for_an_rng_draw(tombola: Tombola, venue: str) -> None:
    r = raffles.create_raffle(tombola, spec(tombola, venue, jurisdiction="alberta"))
    with pytest.raises(JurisdictionRule) as caught:
        raffles.execute_draw(tombola, r["id"])
    assert caught.value.extra["rule"] == "min_rng_gross_cents"


def test_get_jurisdictions_lists_every_profile_with_sources(client: TestClient) -> None:
    resp = client.get("/jurisdictions")
    assert resp.status_code == 200 and "max-age" in resp.headers["cache-control"]
    profiles = {p["name"]: p for p in resp.json()}
    assert set(profiles) == {"default", "north-dakota", "washington", "ontario", "alberta"}
    wa = {r["rule"]: r for r in profiles["washington"]["rules"]}
    assert wa["online_sales"]["value"] is False and "230-11-030" in wa["online_sales"]["source"]["cite"]
    assert wa["max_bundle_levels"]["value"] == 3
    on = {r["rule"]: r for r in profiles["ontario"]["rules"]}
    assert on["offline_pos"]["value"] is False and "1.1.5" in on["offline_pos"]["source"]["cite"]


# --- the property: whatever the service accepts satisfies its profile -----------------------

terms = st.fixed_dictionaries(
    {
        "jurisdiction": st.sampled_from(sorted(jurisdictions.PROFILES)),
        "online_sales": st.sampled_from([None, True, False]),
        "offline_sales": st.booleans(),
        "draw_method": st.sampled_from(["rng", "barrel"]),
        "bundles": st.lists(st.integers(2, 60), max_size=5, unique=True).map(
            lambda qs: tuple((q, q * 400) for q in qs)
        ),
        "prize_table": st.sampled_from([(), FIXED]),
        "licence_number": st.sampled_from(["", "L-9"]),
        "claim_by": st.booleans(),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(t=terms)
def test_any_raffle_the_service_accepts_satisfies_its_profile(tombola: Tombola, venue: str, t: dict[str, Any]) -> None:
    claim = t.pop("claim_by")
    try:
        r = raffles.create_raffle(
            tombola, spec(tombola, venue, **t, claim_by_ms=(tombola.now_ms() + 48 * HOUR_MS) if claim else None)
        )
    except JurisdictionRule as err:
        assert err.extra["jurisdiction"] == t["jurisdiction"]
        return
    profile = jurisdictions.PROFILES[r["jurisdiction"]]
    assert r["jurisdiction"] == t["jurisdiction"]
    printed = raffles.raffle_info(r, by=raffles.issuer(tombola, venue))  # what the receipt carries
    assert jurisdictions.raffle_violations(profile, r | {"licence_number": printed.licence_number}) == []
    assert raffles.grant_refusal(r) is None
