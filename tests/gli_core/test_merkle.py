"""gli_core.merkle against RFC 9162: every transparency-dev probe, the reference tree, and the
recursive definitions of MTH, PATH and SUBPROOF (section 2.1) as an executable reference."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gli_core import merkle
from gli_core.merkle import MerkleProofInvalid

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc9162-merkle"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))
REFERENCE = json.loads((VECTORS / "leaves.json").read_text())
LEAVES = [bytes.fromhex(x) for x in REFERENCE["leaves"]]
LEAF_HASHES = merkle.leaf_hashes(LEAVES)


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(h) for h in case["proof"] or []]


def _name(path: Path) -> str:
    return str(path.relative_to(VECTORS))


# --- the recursive definitions of RFC 9162 2.1, as the reference --------------------------------


def mth(leaves: list[bytes]) -> bytes:
    """MTH (2.1.1) over leaf hashes, recursively with the largest-power-of-two split."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (2.1.3.1)."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (2.1.4.1)."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, leaves[:k], b), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


# --- vectors --------------------------------------------------------------------------------------


def test_the_vector_sets_are_complete() -> None:
    # 98 probes of each kind in ../shared/vectors/rfc9162-merkle: 12 happy paths, 184 that must fail.
    assert len(INCLUSION) == 98 and len(CONSISTENCY) == 98
    assert sum(not json.loads(p.read_text())["wantErr"] for p in INCLUSION + CONSISTENCY) == 12


@pytest.mark.parametrize("vector", INCLUSION, ids=_name)
def test_inclusion_vector(vector: Path) -> None:
    case = json.loads(vector.read_text())
    args = (_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case), _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(MerkleProofInvalid):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("vector", CONSISTENCY, ids=_name)
def test_consistency_vector(vector: Path) -> None:
    case = json.loads(vector.read_text())
    args = (case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case))
    if case["wantErr"]:
        with pytest.raises(MerkleProofInvalid):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_reference_tree_roots() -> None:
    assert merkle.root([]) == merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()
    for size, expected in enumerate(REFERENCE["roots"], start=1):
        assert merkle.root(LEAF_HASHES[:size]).hex() == expected


def _happy_paths(kind: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((VECTORS / kind).glob("[0-9]*/happy-path.json"))]


@pytest.mark.parametrize("case", _happy_paths("inclusion"), ids=lambda c: f"{c['leafIdx']}-of-{c['treeSize']}")
def test_inclusion_proof_generation_matches_the_vectors(case: dict[str, Any]) -> None:
    leaves = LEAF_HASHES[: case["treeSize"]]
    assert merkle.leaf_hashes([LEAVES[case["leafIdx"]]])[0] == _b64(case["leafHash"])
    assert merkle.inclusion_proof(leaves, case["leafIdx"]) == _proof(case)


@pytest.mark.parametrize("case", _happy_paths("consistency"), ids=lambda c: f"{c['size1']}-to-{c['size2']}")
def test_consistency_proof_generation_matches_the_vectors(case: dict[str, Any]) -> None:
    assert merkle.consistency_proof(LEAF_HASHES[: case["size2"]], case["size1"]) == _proof(case)
    assert merkle.root(LEAF_HASHES[: case["size1"]]) == _b64(case["root1"])
    assert merkle.root(LEAF_HASHES[: case["size2"]]) == _b64(case["root2"])


# --- properties -----------------------------------------------------------------------------------


def _tree(n: int) -> list[bytes]:
    return merkle.leaf_hashes(i.to_bytes(4, "big") for i in range(n))


@given(st.integers(min_value=0, max_value=600))
@settings(max_examples=200, deadline=None)
def test_iterative_root_equals_the_recursive_definition(n: int) -> None:
    leaves = _tree(n)
    assert merkle.root(leaves) == mth(leaves)


def test_iterative_root_equals_the_recursive_definition_for_every_small_size() -> None:
    for n in range(0, 130):
        leaves = _tree(n)
        assert merkle.root(leaves) == mth(leaves), n


@pytest.mark.parametrize("chunk", [1, 2, 4, 8, 64])
def test_the_root_is_the_same_whatever_the_block_size(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """root() reduces aligned blocks of _CHUNK leaves first: any power of two gives MTH."""
    monkeypatch.setattr(merkle, "_CHUNK", chunk)
    for n in [*range(0, 70), 127, 128, 129, 200, 255, 256, 257, 1000]:
        data = [i.to_bytes(4, "big") for i in range(n)]
        leaves = merkle.leaf_hashes(data)
        expected = mth(leaves)
        assert merkle.root(leaves) == expected, (chunk, n)
        assert merkle.root_from_prefixed_leaves([merkle.LEAF_PREFIX + d for d in data]) == expected, (chunk, n)


def test_a_large_tree_across_many_blocks() -> None:
    leaves = _tree(5000)
    assert merkle.root(leaves) == mth(leaves)


def test_root_on_arbitrary_leaf_data() -> None:
    data = [b"", b"a", b"\x00" * 100, "é".encode()]
    leaves = merkle.leaf_hashes(data)
    assert leaves[0] == merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.root_from_prefixed_leaves([merkle.LEAF_PREFIX + d for d in data]) == merkle.root(leaves)
    assert merkle.node_hash(leaves[0], leaves[1]) == hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
    assert merkle.root(leaves) == mth(leaves)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 100])
def test_inclusion_proofs_for_every_leaf(n: int) -> None:
    leaves = _tree(n)
    top = merkle.root(leaves)
    for index in range(n):
        proof = merkle.inclusion_proof(leaves, index)
        assert proof == path(index, leaves)
        merkle.verify_inclusion(leaves[index], index, n, proof, top)
        with pytest.raises(MerkleProofInvalid):
            merkle.verify_inclusion(leaves[index], index, 2 * n, proof, top)
        if n > 1:
            with pytest.raises(MerkleProofInvalid):
                merkle.verify_inclusion(leaves[(index + 1) % n], index, n, proof, top)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 64, 100])
def test_consistency_proofs_for_every_prefix(n: int) -> None:
    leaves = _tree(n)
    top = merkle.root(leaves)
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(leaves, m)
        assert proof == subproof(m, leaves, True)
        old = merkle.root(leaves[:m])
        merkle.verify_consistency(m, n, old, top, proof)
        if m < n:
            with pytest.raises(MerkleProofInvalid):
                merkle.verify_consistency(m, n, top, old, proof)
            with pytest.raises(MerkleProofInvalid):
                merkle.verify_consistency(m, n, old, top, proof[:-1])


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_a_flipped_bit_in_any_proof_hash_fails(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=2, max_value=70))
    leaves = _tree(n)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = merkle.inclusion_proof(leaves, index)
    which = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    bad = list(proof)
    bad[which] = bytearray(bad[which])  # type: ignore[call-overload]
    bad[which][bit // 8] ^= 1 << (bit % 8)  # type: ignore[index]
    bad[which] = bytes(bad[which])
    with pytest.raises(MerkleProofInvalid):
        merkle.verify_inclusion(leaves[index], index, n, bad, merkle.root(leaves))


def test_proof_generation_refuses_out_of_range_arguments() -> None:
    leaves = _tree(4)
    for index in (-1, 4):
        with pytest.raises(ValueError):
            merkle.inclusion_proof(leaves, index)
    for m in (0, 5):
        with pytest.raises(ValueError):
            merkle.consistency_proof(leaves, m)
    assert merkle.consistency_proof(leaves, 4) == []


def test_wrong_hash_sizes_are_refused() -> None:
    leaves = _tree(4)
    proof = merkle.inclusion_proof(leaves, 1)
    with pytest.raises(MerkleProofInvalid):
        merkle.verify_inclusion(leaves[1][:31], 1, 4, proof, merkle.root(leaves))
    with pytest.raises(MerkleProofInvalid):
        merkle.verify_inclusion(leaves[1], 1, 4, [*proof[:-1], proof[-1] + b"\x00"], merkle.root(leaves))
