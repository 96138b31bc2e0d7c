"""Jurisdiction profiles: what the licence a raffle runs under allows, in one place.

A licence names a profile (:data:`PROFILES`: ``default``, ``north-dakota``, ``washington``,
``ontario``, ``alberta``). The organisation's licence names the installation's profile
(``organisation.jurisdiction``); a raffle with its own licence may name another, and each raffle
keeps the profile it was created under (``raffle.jurisdiction``). ``docs/jurisdictions.md``
cites each rule's source and says what Tombola does about it; ``GET /jurisdictions`` lists them.

The rules are plain data (:class:`Profile`) and pure functions over a raffle's terms
(:func:`raffle_violations`, :func:`check_raffle`, :func:`check_online_sale`,
:func:`check_rng_draw`), each refusal a :class:`server.errors.JurisdictionRule` (code
``jurisdiction_rule``) naming the rule (``rule``) and citing its source in the sentence. Who
consults them:

* raffle creation and edit (:mod:`server.raffles.service`): a raffle that breaks its profile is
  never stored;
* the POS grants (:func:`server.enrollment.service.ensure_grants`): no grant for a raffle that
  breaks its profile (``RaffleInfo.no_grant`` = ``jurisdiction_rule``) — a second line of defence;
* online sales (the purchase service and the interface route): :func:`check_online_sale`;
* the RNG draw (:func:`server.raffles.service.execute_draw`): :func:`check_rng_draw`.

The rules a device applies itself (selling offline, bundles) reach it as the raffle's terms in
``RaffleInfo`` (``offline_sales``, ``price_points``), which the server only lets be set within
the profile: no device-side rule is added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select

from server.context import Tombola
from server.errors import InvalidRequest, JurisdictionRule, NotFound
from server.models import Raffle

RAFFLE = Raffle.__table__  # type: ignore[attr-defined]
_JURISDICTION_OF = select(RAFFLE.c.jurisdiction).where(RAFFLE.c.id == bindparam("raffle_id"))

#: The draw methods a raffle can name: Tombola's RNG draw (HSM VRF), or printed barrel tickets
#: drawn by hand (the system prints one ticket per number; the RNG draw is then refused).
DRAW_METHODS = ("rng", "barrel")
#: Receipt fields a profile can require the raffle to fill (``RaffleInfo`` members).
RECEIPT_FIELDS = ("licence_number", "results_url", "claim_by_ms")


@dataclass(frozen=True)
class Source:
    """Where a rule comes from: the instrument and section, and a public URL of its text."""

    cite: str
    url: str

    def to_dict(self) -> dict[str, str]:
        return {"cite": self.cite, "url": self.url}


@dataclass(frozen=True)
class Profile:
    """The rules of one jurisdiction (a licence names one). ``sources`` maps a rule name
    (:data:`RULES`) to where it comes from; a rule the profile does not restrict has none."""

    name: str
    title: str
    #: whether tickets may be sold over the internet at all
    online_sales_allowed: bool = True
    #: whether a raffle sold online may be drawn by the RNG (else: printed barrel tickets)
    rng_draw_for_online_allowed: bool = True
    #: whether a raffle sold online may be a 50/50 (a prize that is a share of sales)
    online_fifty_fifty_allowed: bool = True
    #: whether a POS may go on selling while it cannot reach the server
    offline_pos_allowed: bool = True
    #: the most bundle (discount) levels beside the single ticket; None: no limit
    max_bundle_levels: int | None = None
    #: raffle fields receipts must carry (of :data:`RECEIPT_FIELDS`); the licence may be the organisation's
    receipt_fields: tuple[str, ...] = ()
    #: least gross sales (minor units) for an RNG draw; 0: any
    min_rng_gross_cents: int = 0
    sources: Mapping[str, Source] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The public view (``GET /jurisdictions``): every rule with its value and source."""
        values: dict[str, Any] = {
            "online_sales": self.online_sales_allowed,
            "rng_draw_for_online": self.rng_draw_for_online_allowed,
            "online_fifty_fifty": self.online_fifty_fifty_allowed,
            "offline_pos": self.offline_pos_allowed,
            "max_bundle_levels": self.max_bundle_levels,
            "receipt_fields": list(self.receipt_fields),
            "min_rng_gross_cents": self.min_rng_gross_cents,
        }
        return {
            "name": self.name,
            "title": self.title,
            "rules": [
                {
                    "rule": rule,
                    "value": values[rule],
                    "text": RULES[rule],
                    "source": self.sources[rule].to_dict() if rule in self.sources else None,
                }
                for rule in RULES
            ],
        }


#: Every rule a profile can set, with what it governs.
RULES: dict[str, str] = {
    "online_sales": "tickets may be sold over the internet",
    "rng_draw_for_online": "a raffle sold online may be drawn by the random number generator",
    "online_fifty_fifty": "a raffle sold online may have a prize that is a share of sales (50/50)",
    "offline_pos": "a point of sale may sell while it cannot reach the server",
    "max_bundle_levels": "the most bundle (discount) levels beside the single ticket",
    "receipt_fields": "raffle details every receipt must carry",
    "min_rng_gross_cents": "the least gross sales (minor units) for a draw by the random number generator",
}

_WAC = "https://app.leg.wa.gov/WAC/default.aspx?cite="
_ND = "https://www.ndlegis.gov/information/acdata/pdf/"
_AGCO = "https://www.agco.ca/lottery-and-gaming/guides/electronic-raffle-systems-minimum-technical-standards"
_AGLC = "https://aglc.ca/documents/raffle-terms-conditions"

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(name="default", title="No jurisdiction-specific restriction (Tombola's own checks only)"),
        Profile(
            name="north-dakota",
            title="North Dakota (N.D. Cent. Code ch. 53-06.1; N.D. Admin. Code art. 99-01.3)",
            rng_draw_for_online_allowed=False,
            online_fifty_fifty_allowed=False,
            receipt_fields=("licence_number", "claim_by_ms"),
            sources={
                "rng_draw_for_online": Source(
                    "N.D. Admin. Code 99-01.3-16-09.5 (online raffle ticket sale systems may not use a random "
                    "number generator to determine the winner; they print a barrel ticket for a manual draw)",
                    _ND + "99-01.3-16.pdf",
                ),
                "online_fifty_fifty": Source(
                    "N.D. Cent. Code 53-06.1-10.1(3) (fifty-fifty raffles may not be conducted online over the "
                    "internet)",
                    "https://www.ndlegis.gov/cencode/t53c06-1.pdf",
                ),
                "receipt_fields": Source(
                    "N.D. Admin. Code 99-01.3-05.1-03(4) (the time of the drawing and the redemption period on "
                    "all promotional material); 99-01.3-05-01 (licence)",
                    _ND + "99-01.3-05-1.pdf",
                ),
            },
        ),
        Profile(
            name="washington",
            title="Washington (RCW 9.46; WAC chapter 230-11)",
            online_sales_allowed=False,
            max_bundle_levels=3,
            receipt_fields=("licence_number",),
            sources={
                "online_sales": Source(
                    "WAC 230-11-030(4)(a) (organisations must not sell raffle tickets via the internet)",
                    _WAC + "230-11-030",
                ),
                "max_bundle_levels": Source(
                    "WAC 230-11-025(1)(d) (up to three discount levels for each raffle, set before any ticket is sold)",
                    _WAC + "230-11-025",
                ),
                "receipt_fields": Source("WAC 230-11-005 (display the raffle license)", _WAC + "230-11-005"),
            },
        ),
        Profile(
            name="ontario",
            title="Ontario (AGCO Electronic Raffle Systems Minimum Technical Standards)",
            offline_pos_allowed=False,
            receipt_fields=("licence_number",),
            sources={
                "offline_pos": Source(
                    "AGCO ERS Minimum Technical Standards, POS 1.1.5 (impacted POS functions must be disabled "
                    "in case of the loss of communication with the Backend System)",
                    _AGCO + "/part-point-sale-pos",
                ),
                "receipt_fields": Source(
                    "AGCO ERS Minimum Technical Standards 2.3.1 (what a Raffle Ticket must display, "
                    "including the licence number)",
                    _AGCO + "/part-b-raffle-game",
                ),
            },
        ),
        Profile(
            name="alberta",
            title="Alberta (AGLC Raffle Terms & Conditions; Electronic Raffle Handbook)",
            receipt_fields=("licence_number",),
            min_rng_gross_cents=10_000_000,
            sources={
                "min_rng_gross_cents": Source(
                    "AGLC Electronic Raffle Handbook s. 6.1 (draws by a random number generator only where ticket "
                    "sales reach $100,000, lowered from $1,000,000 in 2020)",
                    _AGLC,
                ),
                "receipt_fields": Source("AGLC Raffle Terms & Conditions (the licence number on every ticket)", _AGLC),
            },
        ),
    )
}
DEFAULT = "default"


def profile(name: str) -> Profile:
    """The profile called ``name``.

    Raises:
        InvalidRequest: no such profile (``field`` ``jurisdiction``).
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidRequest(
            f"unknown jurisdiction {name[:40]!r}; known: {', '.join(PROFILES)}", field="jurisdiction"
        ) from None


def profile_of(app: Tombola, raffle_id: str) -> Profile:
    """The profile the raffle runs under (the one it was created with).

    Raises:
        NotFound: no such raffle.
    """
    with app.engine.connect() as conn:
        name = conn.execute(_JURISDICTION_OF, {"raffle_id": raffle_id}).scalar_one_or_none()
    if name is None:
        raise NotFound(f"no raffle {raffle_id}")
    return PROFILES.get(str(name) or DEFAULT, PROFILES[DEFAULT])


def _refusal(p: Profile, rule: str, sentence: str) -> JurisdictionRule:
    source = p.sources.get(rule)
    cite = f" ({source.cite})" if source else ""
    return JurisdictionRule(f"{p.title}: {sentence}{cite}", rule=rule, jurisdiction=p.name)


def _is_fifty_fifty(prize_table: Sequence[Mapping[str, Any]]) -> bool:
    """A raffle whose prizes include a share of sales; no table given is the core's default 50/50."""
    return not prize_table or any(t.get("kind") == "percent_of_sales" for t in prize_table)


def raffle_violations(p: Profile, raffle: Mapping[str, Any]) -> list[JurisdictionRule]:
    """Every rule of ``p`` the raffle's terms break (empty: the raffle satisfies its profile).

    ``raffle`` has the members of a stored raffle: ``price_points`` (list of ``{quantity,
    amount_cents}``), ``offline_sales``, ``online_sales``, ``draw_method``, ``prize_table`` and the
    receipt fields (``licence_number`` may be empty when the organisation's licence is printed:
    ``organisation_licence`` then says whether there is one).
    """
    out: list[JurisdictionRule] = []
    online = bool(raffle.get("online_sales", False))
    if online and not p.online_sales_allowed:
        out.append(_refusal(p, "online_sales", "raffle tickets may not be sold over the internet"))
    if online and not p.rng_draw_for_online_allowed and raffle.get("draw_method", "rng") == "rng":
        out.append(
            _refusal(
                p,
                "rng_draw_for_online",
                "a raffle sold online is drawn from printed barrel tickets, not by the random number generator "
                "(give draw_method barrel)",
            )
        )
    if online and not p.online_fifty_fifty_allowed and _is_fifty_fifty(raffle.get("prize_table") or ()):
        out.append(_refusal(p, "online_fifty_fifty", "a 50/50 raffle may not be sold online"))
    if raffle.get("offline_sales", True) and not p.offline_pos_allowed:
        out.append(
            _refusal(
                p, "offline_pos", "a point of sale may not sell while it cannot reach the server (offline_sales false)"
            )
        )
    levels = sum(1 for pp in raffle.get("price_points") or () if int(pp["quantity"]) != 1)
    if p.max_bundle_levels is not None and levels > p.max_bundle_levels:
        out.append(_refusal(p, "max_bundle_levels", f"at most {p.max_bundle_levels} bundle levels, not {levels}"))
    missing = [
        f
        for f in p.receipt_fields
        if not raffle.get(f) and not (f == "licence_number" and raffle.get("organisation_licence"))
    ]
    if missing:
        out.append(_refusal(p, "receipt_fields", f"receipts must carry {', '.join(missing)}: give them"))
    return out


def check_raffle(p: Profile, raffle: Mapping[str, Any]) -> None:
    """Refuse a raffle that breaks its profile (the first rule broken).

    Raises:
        JurisdictionRule: ``rule`` names the rule, the sentence cites its source.
    """
    violations = raffle_violations(p, raffle)
    if violations:
        raise violations[0]


def check_online_sale(p: Profile, raffle: Mapping[str, Any] | None = None) -> None:
    """Refuse an online sale the profile (or, given, the raffle: ``online_sales`` false) forbids.

    Raises:
        JurisdictionRule: ``rule`` ``online_sales``.
    """
    if not p.online_sales_allowed:
        raise _refusal(p, "online_sales", "raffle tickets may not be sold over the internet")
    if raffle is not None and not raffle.get("online_sales", False):
        raise JurisdictionRule(
            f"raffle {raffle.get('id', '')} is not sold online (online_sales false)",
            rule="online_sales",
            jurisdiction=p.name,
        )


def check_rng_draw(p: Profile, raffle: Mapping[str, Any], gross_cents: int) -> None:
    """Refuse a draw by the random number generator the raffle or its profile forbids.

    Raises:
        JurisdictionRule: the raffle is drawn from printed barrel tickets (``rule``
            ``rng_draw_for_online``), or its sales are below the profile's RNG threshold.
    """
    if raffle.get("draw_method", "rng") == "barrel":
        raise _refusal(
            p,
            "rng_draw_for_online",
            f"raffle {raffle.get('id', '')} is drawn by hand from printed barrel tickets, not by the random "
            "number generator",
        )
    check_raffle(p, raffle)
    if gross_cents < p.min_rng_gross_cents:
        raise _refusal(
            p,
            "min_rng_gross_cents",
            f"a draw by the random number generator needs gross sales of at least {p.min_rng_gross_cents} "
            f"(minor units), not {gross_cents}: draw by hand",
        )


def public_list() -> list[dict[str, Any]]:
    """Every profile with its rules and their sources (``GET /jurisdictions``)."""
    return [p.to_dict() for p in PROFILES.values()]
