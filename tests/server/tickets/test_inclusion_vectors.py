"""Ticket inclusion proofs (``docs/draw-proof.md`` 4.1): the committed vectors verify (valid ones)
or are refused naming their ``wantErr`` field, the file does not drift from its generator, and a
hypothesis property over random ticket sets: every ticket's path verifies against the set's root
and equals RFC 9162 PATH, and no ticket outside the set (or a changed one) verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gli_core import merkle
from gli_core.draw.inclusion import TicketInclusionInvalid, TicketTree, ticket_inclusion, verify_ticket_inclusion
from gli_core.draw.proof import ticket_leaf, ticket_root
from gli_core.draw.selection import DrawTicket

ROOT = Path(__file__).resolve().parents[3]
VECTORS = json.loads((ROOT / "tests/vectors/ticket-inclusion/ticket-inclusion.json").read_text())


def _verify(doc: Any, number: int | None = None) -> None:
    verify_ticket_inclusion(
        doc,
        raffle_id=VECTORS["raffle_id"],
        ticket_root=VECTORS["ticket_root"],
        ticket_count=VECTORS["ticket_count"],
        number=number,
    )


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: f"ticket-{c['document']['ticket'][0]}")
def test_valid_vectors_verify(case: dict[str, Any]) -> None:
    doc = case["document"]
    _verify(doc, number=doc["ticket"][0])
    assert merkle.leaf_hash(bytes.fromhex(case["leaf"])).hex() == case["leaf_hash"]
    assert ticket_leaf(DrawTicket(*doc["ticket"])).hex() == case["leaf"]


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["description"])
def test_invalid_vectors_are_refused_naming_the_field(case: dict[str, Any]) -> None:
    with pytest.raises(TicketInclusionInvalid) as exc:
        _verify(case["document"])
    assert exc.value.field == case["wantErr"] and exc.value.code == "ticket_inclusion_invalid"


def test_a_document_about_another_ticket_than_the_one_held_is_refused() -> None:
    doc = VECTORS["valid"][0]["document"]
    with pytest.raises(TicketInclusionInvalid) as exc:
        _verify(doc, number=doc["ticket"][0] + 1)
    assert exc.value.field == "ticket[0]"


def test_vectors_drift() -> None:
    script = ROOT / "tests/vectors/generate_ticket_inclusion_vectors.py"
    subprocess.run([sys.executable, str(script), "--check"], check=True, cwd=ROOT)


_ids = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=12)


@st.composite
def ticket_sets(draw: st.DrawFn) -> list[DrawTicket]:
    numbers = sorted(draw(st.sets(st.integers(0, 2**40), min_size=1, max_size=70)))
    return [DrawTicket(n, draw(_ids), draw(_ids), draw(st.integers(0, 10**9))) for n in numbers]


@settings(max_examples=150, deadline=None)
@given(tickets=ticket_sets(), outsider=st.integers(0, 2**40), data=st.data())
def test_every_ticket_of_a_random_set_proves_inclusion_and_nothing_else_does(
    tickets: list[DrawTicket], outsider: int, data: st.DataObject
) -> None:
    tree = TicketTree(tickets)
    root = ticket_root(tickets)
    assert tree.root == root
    hashes = [merkle.leaf_hash(ticket_leaf(t)) for t in tickets]
    i = data.draw(st.integers(0, len(tickets) - 1))
    doc = ticket_inclusion("r", tree, tickets[i].number)
    assert doc is not None and doc["leaf_index"] == i
    assert doc["inclusion_proof"] == [h.hex() for h in merkle.inclusion_proof(hashes, i)]
    verify_ticket_inclusion(doc, raffle_id="r", ticket_root=root.hex(), ticket_count=len(tickets))
    # A ticket not in the set has no document, and one claimed with any path of the set is refused.
    if outsider not in tree.numbers:
        assert ticket_inclusion("r", tree, outsider) is None
        forged = doc | {"ticket": [outsider, *doc["ticket"][1:]]}
        with pytest.raises(TicketInclusionInvalid):
            verify_ticket_inclusion(forged, raffle_id="r", ticket_root=root.hex(), ticket_count=len(tickets))
    changed = doc | {"ticket": [*doc["ticket"][:3], doc["ticket"][3] + 1]}
    with pytest.raises(TicketInclusionInvalid):
        verify_ticket_inclusion(changed, raffle_id="r", ticket_root=root.hex(), ticket_count=len(tickets))
