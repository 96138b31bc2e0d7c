"""The draw proof: built with a software RSA key it verifies with nothing else; changing any
single member (every leaf of the JSON, every key removed, an unknown key added) makes it fail
with ProofInvalid naming the member; gross sales are re-derived from the tickets' amounts; the
generated example proofs verify."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from gli_core import merkle
from gli_core.audit.note import Checkpoint, SoftwareNoteSigner, checkpoint_body, sign_note, verifier_key
from gli_core.draw import (
    ALGORITHM,
    SCHEMA,
    DrawInputInvalid,
    DrawTicket,
    NotEnoughTickets,
    ProofInvalid,
    RedrawRequest,
    TicketList,
    VrfInvalid,
    VrfPublicKey,
    alpha_bytes,
    build_proof,
    load_proof,
    nonce_commitment,
    ticket_leaves,
    ticket_root,
    tickets_file_bytes,
    tickets_file_name,
    verify_proof,
)
from gli_core.draw.proof import build_draw_proof, proof_bytes, proof_sha256, ticket_leaf_hashes, ticket_leaf_inputs
from sync_protocol.canonical import canonical_bytes

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DRAW_VECTORS = VECTORS / "draw"
RFC_KEY = json.loads((VECTORS / "rfc9381" / "rsa-fdh-vrf-sha256.json").read_text())["keys"]["2048"]
NONCE = bytes(range(100, 132))
TABLE = [
    {"tier": "grand", "count": 1, "kind": "fixed", "amount_cents": 100_000},
    {"tier": "50/50", "count": 1, "kind": "percent_of_sales", "percent": 50},
    {"tier": "small", "count": 3, "kind": "fixed", "amount_cents": 500},
]


@cache
def software_key() -> tuple[VrfPublicKey, Callable[[int], int]]:
    """A fresh 2048-bit RSA key held in software: what the HSM does, done in the test."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    return VrfPublicKey(n, numbers.public_numbers.e), lambda m: pow(m, d, n)


def rfc_key() -> tuple[VrfPublicKey, Callable[[int], int]]:
    n, e, d = (int(RFC_KEY[x], 16) for x in "ned")
    return VrfPublicKey(n, e), lambda m: pow(m, d, n)


def make_tickets(count: int = 15) -> list[DrawTicket]:
    """One ticket per sale, each sold for ``8000 + number`` cents."""
    return [DrawTicket(n, f"0190-ticket-{n}", f"0190-sale-{n // 2}", 8000 + n) for n in range(10, 10 + 3 * count, 3)]


GROSS = sum(t.amount_cents for t in make_tickets())  # 120465: odd, so the 50/50 is rounded down


AUDIT_SIGNER = SoftwareNoteSigner.generate("tombola.test/audit/proof")


def audit_checkpoint(raffle_id: str, key: VrfPublicKey, nonce: bytes) -> dict[str, Any]:
    """An audit log of five entries whose third publishes the commitment and the key, signed."""
    entries: list[dict[str, Any]] = [
        {
            "v": 1,
            "index": i,
            "time_ms": 1_700_000_000_000 + i,
            "actor": "service:core",
            "tenant": "",
            "type": "rng.call",
            "payload": {"n": i},
        }
        for i in range(5)
    ]
    entries[2].update(
        type="draw.committed",
        payload={
            "raffle_id": raffle_id,
            "nonce_commitment": nonce_commitment(nonce).hex(),
            "vrf_fingerprint": key.fingerprint,
            "vrf_key_id": key.key_id,
            "prize_table": [],
        },
    )
    leaves = [merkle.leaf_hash(canonical_bytes(e)) for e in entries]
    root = merkle.root(leaves)
    body = checkpoint_body(Checkpoint(AUDIT_SIGNER.key_name, 5, root, ()))
    return {
        "tree_size": 5,
        "root_hash": root.hex(),
        "leaf_index": 2,
        "inclusion_proof": [h.hex() for h in merkle.inclusion_proof(leaves, 2)],
        "entry": entries[2],
        "note": sign_note(body, [AUDIT_SIGNER]),
        "key": verifier_key(AUDIT_SIGNER),
    }


def make_proof(
    key: tuple[VrfPublicKey, Callable[[int], int]] | None = None, *, redraws: int = 2, **kwargs: Any
) -> dict[str, Any]:
    public, rsasp1 = key or rfc_key()
    tickets = kwargs.pop("tickets", make_tickets())
    args: dict[str, Any] = {
        "raffle_id": "raffle-1",
        "public_key": public,
        "nonce": NONCE,
        "tickets": tickets,
        "prize_table": TABLE,
        "gross_sales_cents": GROSS,
        "rsasp1": rsasp1,
        **kwargs,
    }
    requests: list[RedrawRequest] = []
    proof = build_proof(**args)
    for i in range(redraws):
        holder = [w for w in proof["winners"] if w["tier"] == "small"][i]
        requests.append(
            RedrawRequest("small", holder["ticket_number"], ["declined", "unclaimed by the deadline"][i % 2])
        )
        proof = build_proof(**args, redraws=requests)
    return proof


@cache
def full_proof() -> dict[str, Any]:
    public, _ = rfc_key()
    return make_proof(audit_checkpoint=audit_checkpoint("raffle-1", public, NONCE))


# --- building and verifying -------------------------------------------------------------------


def test_a_proof_made_with_a_software_key_verifies() -> None:
    key = software_key()
    proof = make_proof(key, redraws=1)
    draw = verify_proof(proof)
    assert draw.key_fingerprint == key[0].fingerprint
    assert draw.ticket_count == 15 and draw.ticket_root == ticket_root(make_tickets()).hex()
    assert [w.ticket.number for w in draw.winners] == [w["ticket_number"] for w in proof["winners"]]
    assert draw.winners[1].amount_cents == GROSS // 2  # 50/50, floored
    assert len(draw.redraws) == 1 and draw.holders[2].ticket == draw.redraws[0].ticket
    json.dumps(proof)  # JSON-ready as it is


def test_the_proof_has_exactly_the_documented_members() -> None:
    proof = full_proof()
    assert list(proof) == [
        "schema", "algorithm", "raffle_id", "vrf", "nonce", "nonce_commitment", "prize_table",
        "gross_sales_cents", "tickets", "alpha", "pi", "beta", "winners", "redraws", "audit_checkpoint",
    ]  # fmt: skip
    assert proof["schema"] == SCHEMA and proof["algorithm"] == ALGORITHM
    assert list(proof["tickets"]) == ["count", "root", "list"]
    assert proof["nonce_commitment"] == hashlib.sha256(NONCE).hexdigest()
    assert load_proof(proof).to_dict() == proof


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(lambda t: 1 <= len(t.encode()) <= 255),
        min_size=6,
        max_size=6,
    )
)
def test_the_published_bytes_are_the_jcs_of_the_proof(ids: list[str]) -> None:
    """``DrawProof.to_bytes`` (the fast splice of the ticket rows) is RFC 8785 of the document for
    any ids (controls, quotes, backslashes, DEL, C1, non-ASCII), and ``proof_sha256`` its SHA-256."""
    public, rsasp1 = rfc_key()
    tickets = TicketList(DrawTicket(10 + i, f"t{i}{x}", f"s{x}", 500 + i) for i, x in enumerate(ids))
    built = build_draw_proof(
        raffle_id="raffle-1", public_key=public, nonce=NONCE, tickets=tickets, prize_table=TABLE[:1], rsasp1=rsasp1
    )
    document = built.to_dict()
    assert built.to_bytes() == canonical_bytes(document) == proof_bytes(document)
    assert built.sha256() == proof_sha256(document) == hashlib.sha256(canonical_bytes(document)).hexdigest()
    assert verify_proof(json.loads(built.to_bytes())).proof_sha256 == built.sha256()


def test_proof_sha256_does_not_depend_on_the_formatting() -> None:
    proof = full_proof()
    pretty = json.loads(json.dumps(proof, indent=2, sort_keys=True))
    assert verify_proof(pretty).proof_sha256 == verify_proof(proof).proof_sha256 == proof_sha256(proof)
    assert proof_sha256(proof) == hashlib.sha256(canonical_bytes(proof)).hexdigest()


def test_building_is_deterministic_and_redraws_keep_the_original_winners() -> None:
    a = make_proof(redraws=0)
    assert make_proof(redraws=0) == a
    b = make_proof(redraws=2)
    assert b["winners"] == a["winners"] and b["pi"] == a["pi"] and len(b["redraws"]) == 2


def test_alpha_is_the_domain_separated_canonical_encoding() -> None:
    proof = full_proof()
    alpha = bytes.fromhex(proof["alpha"])
    assert alpha.startswith(b"tombola/draw-alpha/v1\x00")
    body = json.loads(alpha[len(b"tombola/draw-alpha/v1\x00") :])
    checkpoint = proof["audit_checkpoint"]
    assert body == {
        "algorithm": ALGORITHM,
        "audit_checkpoint": {"root_hash": checkpoint["root_hash"], "tree_size": checkpoint["tree_size"]},
        "gross_sales_cents": GROSS,
        "nonce": NONCE.hex(),
        "prize_table": TABLE,
        "raffle_id": "raffle-1",
        "ticket_count": 15,
        "ticket_root": proof["tickets"]["root"],
    }
    assert alpha == alpha_bytes(
        raffle_id="raffle-1",
        ticket_root=bytes.fromhex(proof["tickets"]["root"]),
        ticket_count=15,
        nonce=NONCE,
        prize_table=TABLE,
        gross_sales_cents=GROSS,
        audit_checkpoint=load_proof(proof).audit_checkpoint,
    )
    assert b'"audit_checkpoint":null' in bytes.fromhex(make_proof(redraws=0)["alpha"])


def test_ticket_leaf_encoding() -> None:
    leaf = ticket_leaves([DrawTicket(258, "ab", "é", 1501)])[0]
    assert leaf == bytes.fromhex("0000000000000102") + b"\x02ab" + b"\x02\xc3\xa9" + bytes.fromhex("00000000000005dd")
    assert ticket_leaves([DrawTicket(258, "ab", "é")])[0][-8:] == bytes(8)  # the amount defaults to 0
    assert ticket_leaves([DrawTicket(1, "t", "s", 2**53 - 1)])[0][-8:] == bytes.fromhex("001fffffffffffff")
    for bad in (
        [DrawTicket(1, "", "s")],
        [DrawTicket(1, "t", "")],
        [DrawTicket(1, "x" * 256, "s")],
        [DrawTicket(1, "\ud800", "s")],
        [DrawTicket(1, 5, "s")],  # type: ignore[arg-type]
        [DrawTicket(2, "a", "s"), DrawTicket(1, "b", "s")],
        [DrawTicket(1, "t", "s", -1)],
        [DrawTicket(1, "t", "s", 2**53)],
        [DrawTicket(1, "t", "s", True)],
        [DrawTicket(1, "t", "s", 1.0)],  # type: ignore[arg-type]
        [DrawTicket(1, "t", "s", None)],  # type: ignore[arg-type]
    ):
        with pytest.raises(DrawInputInvalid):
            ticket_leaves(bad)
    assert ticket_leaves([DrawTicket(1, "x" * 255, "é" * 127)])[0][9 : 9 + 255] == b"x" * 255


def test_the_leaf_separates_the_amount_from_the_ids() -> None:
    """Length-prefixed ids and a fixed 8-byte amount: no two tickets share a leaf."""
    leaves = {
        ticket_leaves([t])[0]
        for t in (
            DrawTicket(1, "t", "s", 0),
            DrawTicket(1, "t", "s", 1),
            DrawTicket(1, "t", "s" + "\x00" * 7 + "\x01", 0),
            DrawTicket(1, "t\x01s", "x", 0),
            DrawTicket(2**8, "t", "s", 0),
        )
    }
    assert len(leaves) == 5


def test_the_ticket_root_is_the_rfc9162_root_of_the_leaves() -> None:
    tickets = make_tickets(37)
    leaves = ticket_leaves(tickets)
    assert ticket_leaf_inputs(tickets) == [b"\x00" + leaf for leaf in leaves]
    assert ticket_root(tickets) == merkle.root(merkle.leaf_hashes(leaves))
    assert ticket_root(TicketList(tickets)) == ticket_root(tickets)
    assert ticket_root([]) == merkle.EMPTY_ROOT
    assert ticket_leaf_hashes(tickets) == merkle.leaf_hashes(leaves)


def test_a_root_given_by_the_caller_is_the_proofs_root() -> None:
    """The draw service passes the root it checked against the frozen one (each leaf hashed once)."""
    public, rsasp1 = rfc_key()
    tickets = TicketList(make_tickets())
    args: dict[str, Any] = dict(raffle_id="raffle-1", public_key=public, nonce=NONCE, tickets=tickets, rsasp1=rsasp1)
    root = merkle.root(ticket_leaf_hashes(tickets))
    given_root = build_draw_proof(**args, prize_table=TABLE, root=root)
    assert given_root.to_dict() == build_proof(**args, prize_table=TABLE)
    wrong = build_draw_proof(**args, prize_table=TABLE, root=bytes(32)).to_dict()
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(wrong)
    assert exc.value.field == "tickets.root"
    with pytest.raises(DrawInputInvalid):
        build_draw_proof(**args, prize_table=TABLE, root=b"short")


def test_the_ticket_file_variant() -> None:
    tickets = make_tickets()
    proof = make_proof(redraws=1, embed_tickets=False)
    assert "list" not in proof["tickets"]
    data = tickets_file_bytes(tickets)
    assert tickets_file_name(proof) == f"tickets-{hashlib.sha256(data).hexdigest()}.json"
    assert verify_proof(proof, data).winners == verify_proof(make_proof(redraws=1)).winners
    with pytest.raises(ProofInvalid) as missing:
        verify_proof(proof)
    assert missing.value.field == "tickets.file_sha256"
    other = tickets_file_bytes(tickets[:-1])
    with pytest.raises(ProofInvalid) as wrong:
        verify_proof(proof, other)
    assert wrong.value.field == "tickets.file_sha256"
    with pytest.raises(ProofInvalid) as extra:
        verify_proof(make_proof(redraws=0), data)
    assert extra.value.field == "tickets.list"


def test_a_ticket_file_can_be_given_as_a_path(tmp_path: Path) -> None:
    proof = make_proof(redraws=0, embed_tickets=False)
    path = tmp_path / tickets_file_name(proof)
    path.write_bytes(tickets_file_bytes(make_tickets()))
    assert verify_proof(proof, path).ticket_count == 15


def test_building_refuses_bad_inputs() -> None:
    public, rsasp1 = rfc_key()
    base: dict[str, Any] = {
        "raffle_id": "r",
        "public_key": public,
        "nonce": NONCE,
        "tickets": make_tickets(),
        "prize_table": TABLE,
    }
    with pytest.raises(DrawInputInvalid):
        build_proof(**{**base, "nonce": NONCE[:16]}, rsasp1=rsasp1)
    with pytest.raises(NotEnoughTickets):
        build_proof(**{**base, "tickets": make_tickets(4)}, rsasp1=rsasp1)
    with pytest.raises(VrfInvalid):  # the token holds another key
        build_proof(**base, rsasp1=software_key()[1])
    with pytest.raises(ProofInvalid):  # the checkpoint publishes another commitment
        build_proof(**base, rsasp1=rsasp1, audit_checkpoint=audit_checkpoint("r", public, bytes(32)))
    for gross in (0, GROSS - 1, GROSS + 1):  # gross sales are the sum of the tickets' amounts
        with pytest.raises(DrawInputInvalid) as exc:
            build_proof(**base, gross_sales_cents=gross, rsasp1=rsasp1)
        assert exc.value.extra["field"] == "gross_sales_cents"
    with pytest.raises(DrawInputInvalid):  # an amount the leaf cannot hold
        build_proof(**{**base, "tickets": [*make_tickets()[:-1], DrawTicket(99, "t", "s", -5)]}, rsasp1=rsasp1)
    assert build_proof(**base, rsasp1=rsasp1)["gross_sales_cents"] == GROSS
    assert build_proof(**base, rsasp1=rsasp1) == build_proof(**base, rsasp1=rsasp1, gross_sales_cents=GROSS)


def test_the_published_key_and_commitment_are_checked_when_given() -> None:
    proof = full_proof()
    public, _ = rfc_key()
    verify_proof(
        proof,
        published_key_fingerprint=public.fingerprint,
        published_nonce_commitment=nonce_commitment(NONCE).hex(),
    )
    with pytest.raises(ProofInvalid) as key:
        verify_proof(proof, published_key_fingerprint=software_key()[0].fingerprint)
    assert key.value.field == "vrf.fingerprint"
    with pytest.raises(ProofInvalid) as nonce:
        verify_proof(proof, published_nonce_commitment="00" * 32)
    assert nonce.value.field == "nonce_commitment"


def test_a_fully_re_signed_proof_under_another_key_fails_only_against_the_published_key() -> None:
    """Whoever holds *a* key can make a self-consistent proof: the published fingerprint is the anchor."""
    forged = make_proof(software_key())
    verify_proof(forged)
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(forged, published_key_fingerprint=rfc_key()[0].fingerprint)
    assert exc.value.field == "vrf.fingerprint"


def test_consistent_tampering_without_the_key_fails_at_pi() -> None:
    """Change an input and recompute every hash an attacker can: the VRF proof still fails."""
    proof = copy.deepcopy(full_proof())
    proof["tickets"]["list"][0][2] = "another-sale"
    tickets = [DrawTicket(*row) for row in proof["tickets"]["list"]]
    root = ticket_root(tickets)
    proof["tickets"]["root"] = root.hex()
    proof["alpha"] = alpha_bytes(
        raffle_id="raffle-1", ticket_root=root, ticket_count=15, nonce=NONCE, prize_table=TABLE,
        gross_sales_cents=GROSS, audit_checkpoint=load_proof(proof).audit_checkpoint,
    ).hex()  # fmt: skip
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(proof)
    assert exc.value.field == "pi"


def _forge(proof: dict[str, Any], *, amount_delta: int = 0, gross_delta: int = 0, root: bool, alpha: bool) -> None:
    """Change ticket 3's amount and/or the gross, recomputing the root and alpha when asked."""
    proof["tickets"]["list"][3][3] += amount_delta
    proof["gross_sales_cents"] += gross_delta
    tickets = [DrawTicket(*row) for row in proof["tickets"]["list"]]
    if root:
        proof["tickets"]["root"] = ticket_root(tickets).hex()
    if alpha:
        proof["alpha"] = alpha_bytes(
            raffle_id="raffle-1", ticket_root=bytes.fromhex(proof["tickets"]["root"]), ticket_count=15, nonce=NONCE,
            prize_table=TABLE, gross_sales_cents=proof["gross_sales_cents"],
            audit_checkpoint=load_proof(proof).audit_checkpoint,
        ).hex()  # fmt: skip


@pytest.mark.parametrize(
    ("forgery", "field"),
    [
        # A ticket's amount is in its leaf: changing it breaks the ticket root ...
        ({"amount_delta": 1, "root": False, "alpha": False}, "tickets.root"),
        ({"amount_delta": -8000, "gross_delta": -8000, "root": False, "alpha": True}, "tickets.root"),
        # ... and with the root recomputed, the gross no longer adds up.
        ({"amount_delta": 1, "root": True, "alpha": True}, "gross_sales_cents"),
        # The gross is re-derived from the amounts, before alpha: changing it names it.
        ({"gross_delta": 1, "root": False, "alpha": False}, "gross_sales_cents"),
        ({"gross_delta": 10_000, "root": False, "alpha": True}, "gross_sales_cents"),
        # Amount, root, gross and alpha all consistent: only the key holder could sign that alpha.
        ({"amount_delta": 10_000, "gross_delta": 10_000, "root": True, "alpha": True}, "pi"),
    ],
)
def test_gross_sales_are_re_derived_from_the_ticket_amounts(forgery: dict[str, Any], field: str) -> None:
    proof = copy.deepcopy(full_proof())
    assert verify_proof(proof).gross_sales_cents == GROSS == proof["gross_sales_cents"]
    _forge(proof, **forgery)
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(proof)
    assert exc.value.field == field


def test_the_gross_of_a_ticket_file_is_re_derived_from_the_file() -> None:
    proof = make_proof(redraws=0, embed_tickets=False)
    rows = json.loads(tickets_file_bytes(make_tickets()))
    assert [row[3] for row in rows] == [t.amount_cents for t in make_tickets()]
    assert verify_proof(proof, tickets_file_bytes(make_tickets())).gross_sales_cents == GROSS
    proof["gross_sales_cents"] -= 1
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(proof, tickets_file_bytes(make_tickets()))
    assert exc.value.field == "gross_sales_cents"


def test_proof_invalid_carries_a_stable_code_and_the_field() -> None:
    proof = copy.deepcopy(full_proof())
    proof["winners"][0]["amount_cents"] += 1
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(proof)
    assert exc.value.code == "draw_proof_invalid"
    assert exc.value.to_dict()["field"] == "winners[0].amount_cents"
    assert "winners[0].amount_cents" in exc.value.diagnostics()


# --- tampering with every member --------------------------------------------------------------

Path_ = tuple[str | int, ...]


def leaf_paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaf_paths(child, (*prefix, key))
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            yield from leaf_paths(child, (*prefix, index))
    else:
        yield prefix


def container_paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    if isinstance(value, dict):
        yield prefix
        for key, child in value.items():
            yield from container_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from container_paths(child, (*prefix, index))


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def get(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def put(doc: Any, path: Path_, value: Any) -> None:
    get(doc, path[:-1])[path[-1]] = value


def changed(value: Any) -> Any:
    """A different value of the same JSON type (hex stays hex of the same length)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 2 if value % 2 else value + 1
    if isinstance(value, str):
        if value and re.fullmatch(r"(?:[0-9a-f]{2})+", value):
            return value[:-1] + ("0" if value[-1] != "0" else "1")
        return value + "x"
    if isinstance(value, list):
        return [*value, value[-1]] if value else ["x"]
    return "x"


#: Members recomputed from the inputs: changing an input shows as a mismatch here.
DERIVED = {"alpha", "tickets.root", "tickets.count", "vrf.key_id", "vrf.fingerprint", "nonce_commitment", "pi"}


#: Inputs the audit entry repeats: a change there shows as the entry no longer matching.
ECHOED = {
    "raffle_id": "audit_checkpoint.entry.payload.raffle_id",
    "nonce": "audit_checkpoint.entry.payload.nonce_commitment",
    "vrf.n": "audit_checkpoint.entry.payload.vrf_fingerprint",
}


def assert_names_the_change(path: str, field: str) -> None:
    related = field == path or path.startswith(field) or field.startswith(path) or ECHOED.get(path) == field
    redraw = re.match(r"redraws\[\d+\]", path)
    same_redraw = bool(redraw) and field.startswith(redraw.group(0))  # type: ignore[union-attr]
    assert related or same_redraw or field in DERIVED, f"changing {path} was reported as {field}"


LEAVES = [dotted(p) for p in leaf_paths(full_proof())]


def test_the_tamper_walk_covers_every_kind_of_member() -> None:
    assert len(LEAVES) > 100
    for member in (
        "schema",
        "vrf.e",
        "nonce",
        "gross_sales_cents",
        "tickets.list[14][2]",
        "tickets.list[0][3]",
        "tickets.list[14][3]",
        "redraws[1].reason",
        "audit_checkpoint.entry.time_ms",
    ):
        assert member in LEAVES


@pytest.mark.parametrize("path", list(leaf_paths(full_proof())), ids=dotted)
def test_changing_any_leaf_fails(path: Path_) -> None:
    original = full_proof()
    for mutate in (changed, lambda v: None, lambda v: [v]):
        proof = copy.deepcopy(original)
        put(proof, path, mutate(get(proof, path)))
        with pytest.raises(ProofInvalid) as exc:
            verify_proof(proof)
        assert_names_the_change(dotted(path), exc.value.field)
    if re.fullmatch(r"tickets\.list\[\d+\]\[3\]", dotted(path)):
        # A ticket's amount is in its leaf: any change breaks the root (not only the gross).
        for amount in (0, get(original, path) - 1, 2**53 - 1):
            proof = copy.deepcopy(original)
            put(proof, path, amount)
            with pytest.raises(ProofInvalid) as exc:
                verify_proof(proof)
            assert exc.value.field == "tickets.root"


@pytest.mark.parametrize("path", list(container_paths(full_proof())), ids=lambda p: dotted(p) or "proof")
def test_removing_or_adding_a_member_fails(path: Path_) -> None:
    original = full_proof()
    for key in list(get(original, path)):
        proof = copy.deepcopy(original)
        del get(proof, path)[key]
        with pytest.raises(ProofInvalid):
            verify_proof(proof)
    proof = copy.deepcopy(original)
    get(proof, path)["comment"] = "looks harmless"
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(proof)
    # The audit entry is the log's own object: a new member there breaks its inclusion instead.
    expected = "audit_checkpoint" if dotted(path).startswith("audit_checkpoint.entry") else "comment"
    assert exc.value.field.endswith(expected)


@pytest.mark.parametrize(
    "member", ["tickets.list", "winners", "redraws", "prize_table", "audit_checkpoint.inclusion_proof"]
)
def test_dropping_or_reordering_list_items_fails(member: str) -> None:
    original = full_proof()
    path = tuple(member.split("."))
    items = get(original, path)
    variants = [items[1:], items[::-1], [*items, items[0]]]
    if member != "redraws":
        variants.append(items[:-1])
    for variant in variants:
        proof = copy.deepcopy(original)
        put(proof, path, copy.deepcopy(variant))
        with pytest.raises(ProofInvalid):
            verify_proof(proof)


def test_without_its_last_redraws_a_proof_is_the_proof_published_before_them() -> None:
    """Redraws only append: the shorter proof is the earlier, genuine one (the audit log dates each)."""
    longer = full_proof()
    shorter = copy.deepcopy(longer)
    del shorter["redraws"][-1]
    assert verify_proof(shorter).redraws == verify_proof(longer).redraws[:-1]


def test_not_an_object() -> None:
    with pytest.raises(ProofInvalid):
        verify_proof([])  # type: ignore[arg-type]


# --- generated examples -----------------------------------------------------------------------


def test_the_example_proof_verifies() -> None:
    example = json.loads((DRAW_VECTORS / "proof-example.json").read_text())
    draw = verify_proof(example["proof"])
    assert [w.ticket.number for w in draw.winners] == [3, 610, 5, 233]
    assert [(r.replaced.number, r.ticket.number, r.reason) for r in draw.redraws] == [(5, 55, "declined")]
    assert draw.gross_sales_cents == 6001 == sum(row[3] for row in example["proof"]["tickets"]["list"])
    assert draw.winners[1].amount_cents == 3000  # 50 % of 6001 cents, floored
    assert example["alpha_text"].startswith('tombola/draw-alpha/v1\\0{"algorithm":"tombola/draw/v2",')
    tickets = [DrawTicket(*row) for row in example["proof"]["tickets"]["list"]]
    assert [leaf.hex() for leaf in ticket_leaves(tickets)] == example["ticket_leaves"]


def test_the_example_with_a_ticket_file_verifies() -> None:
    proof = json.loads((DRAW_VECTORS / "proof-ticket-file.json").read_text())
    data = (DRAW_VECTORS / tickets_file_name(proof)).read_bytes()
    example = json.loads((DRAW_VECTORS / "proof-example.json").read_text())["proof"]
    assert verify_proof(proof, data).selection == verify_proof(example).selection
