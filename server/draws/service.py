"""Published draw results: what anyone may read of a draw once the operator has published it.

A draw is public only in state ``PUBLISHED`` (``tombola draw publish``): before that the results
exist for the operator (``/core/draw/{id}/results``) but not for the public, so a draw cannot be
looked at and quietly re-run. What is shown is the raffle (name, venue, currency), the size of
the frozen ticket set, the winners and any redraws (tier, position, ticket number), the SHA-256 of
the proof file and where to download it: ticket numbers only, never a buyer. Anyone can then check
the draw with ``tombola verify-draw PROOF`` (``docs/draw-proof.md``).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from server.context import Tombola
from server.errors import NotFound
from server.models import Raffle, Venue

RAFFLE = Raffle.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]
PUBLISHED = "PUBLISHED"
_CACHE_KEPT = 64
_RAFFLE_AND_VENUE = select(
    RAFFLE.c.id, RAFFLE.c.name, RAFFLE.c.currency, RAFFLE.c.sales_close_at_ms, VENUE.c.name.label("venue_name")
).join(VENUE, VENUE.c.id == RAFFLE.c.venue_id)


def _not_published(raffle_id: str) -> NotFound:
    return NotFound(f"raffle {raffle_id} has no published draw results (yet)")


class _Cache:
    """Public results by raffle, each kept with the draw's version (state, time of its last change)
    it was built from: a published draw changes only by a redraw, which moves that time, so an
    answer costs one two-column read of the draw row instead of parsing the proof."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[tuple[str, int], dict[str, Any]]] = {}

    def get(self, raffle_id: str, version: tuple[str, int]) -> dict[str, Any] | None:
        kept = self._kept.get(raffle_id)
        return kept[1] if kept is not None and kept[0] == version else None

    def put(self, raffle_id: str, version: tuple[str, int], results: dict[str, Any]) -> None:
        with self._lock:
            while len(self._kept) >= _CACHE_KEPT and raffle_id not in self._kept:
                self._kept.pop(next(iter(self._kept)))
            self._kept[raffle_id] = (version, results)


_cache = _Cache()


def published_results(app: Tombola, raffle_id: str) -> dict[str, Any]:
    """The public results of ``raffle_id``'s published draw, or 404 ``not_found``."""
    version = app.core.draw_version(raffle_id)
    if version is None or version[0] != PUBLISHED:
        raise _not_published(raffle_id)
    key = f"{id(app.core)}:{raffle_id}"  # one cache per process, shared by every app over its own core
    cached = _cache.get(key, version)
    if cached is not None:
        return cached
    with app.reads.connect() as conn:
        raffle = conn.execute(_RAFFLE_AND_VENUE.where(RAFFLE.c.id == raffle_id)).first()
    if raffle is None:
        raise _not_published(raffle_id)
    results = app.core.draw_results(raffle_id)
    public = {
        "raffle_id": raffle_id,
        "raffle_name": raffle.name,
        "venue_name": raffle.venue_name,
        "currency": raffle.currency,
        "sales_closed_at_ms": raffle.sales_close_at_ms,
        "ticket_count": results["ticket_count"],
        "winners": [_prize(w) for w in results["holders"]],
        "redraws": [_redraw(r) for r in results["redraws"]],
        "proof_sha256": results["proof_sha256"],
        "proof_url": f"/draws/{raffle_id}/proof",
    }
    _cache.put(key, version, public)
    return public


def _prize(w: dict[str, Any]) -> dict[str, Any]:
    return {
        "tier": w["tier"],
        "position": w["position"],
        "ticket_number": w["ticket_number"],
        "amount_cents": w["amount_cents"],
    }


def _redraw(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "tier": r["tier"],
        "position": r["position"],
        "replaced_ticket_number": r["replaced_ticket_number"],
        "ticket_number": r["ticket_number"],
        "amount_cents": r["amount_cents"],
        "reason": r["reason"],
    }


def published_proof(app: Tombola, raffle_id: str) -> bytes:
    """The proof file of a published draw, byte for byte as stored (its SHA-256 is ``proof_sha256``)."""
    if app.core.recorded_draw_state(raffle_id) != PUBLISHED:
        raise _not_published(raffle_id)
    return app.core.draw_proof_bytes(raffle_id)


def published_draws(app: Tombola) -> list[dict[str, Any]]:
    """Every published draw, newest sales close first: raffle, venue, ticket count and proof hash."""
    with app.reads.connect() as conn:
        raffles = conn.execute(_RAFFLE_AND_VENUE.order_by(RAFFLE.c.sales_close_at_ms.desc())).all()
    listed = []
    for raffle in raffles:
        if app.core.recorded_draw_state(raffle.id) == PUBLISHED:
            results = published_results(app, raffle.id)
            listed.append(
                {
                    k: results[k]
                    for k in (
                        "raffle_id",
                        "raffle_name",
                        "venue_name",
                        "ticket_count",
                        "sales_closed_at_ms",
                        "proof_sha256",
                        "proof_url",
                    )
                }
            )
    return listed
