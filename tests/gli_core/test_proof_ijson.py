"""A draw proof is I-JSON: a proof with a member given twice ("beta" twice) does not verify, in the
verifier and in ``tombola verify-draw`` (exit 1, never VALID), instead of the last one winning."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from gli_core.draw.proof import ProofInvalid
from gli_core.draw.verify import verify_proof
from tests.gli_core.test_proof import make_proof


def _beta_twice() -> tuple[bytes, bytes]:
    """(the proof's bytes, the same with a forged ``beta`` before the real one)."""
    proof = make_proof()
    good = orjson.dumps(proof)
    forged = "00" * (len(proof["beta"]) // 2)
    bad = good.replace(b'"beta":', b'"beta":"' + forged.encode() + b'","beta":', 1)
    assert bad != good
    return good, bad


def test_the_verifier_refuses_a_proof_with_a_duplicate_member() -> None:
    good, bad = _beta_twice()
    assert verify_proof(good).ticket_count == verify_proof(orjson.loads(good)).ticket_count
    with pytest.raises(ProofInvalid) as err:
        verify_proof(bad)
    assert err.value.extra["field"] == "beta"


def test_verify_draw_fails_on_a_proof_with_beta_twice(tmp_path: Path) -> None:
    from server.cli import cli

    good, bad = _beta_twice()
    (tmp_path / "good.json").write_bytes(good)
    (tmp_path / "bad.json").write_bytes(bad)
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify-draw", str(tmp_path / "good.json"), "--json"])
    assert ok.exit_code == 0, ok.output
    out = runner.invoke(cli, ["verify-draw", str(tmp_path / "bad.json"), "--json"])
    assert out.exit_code != 0
    assert '"valid": false' in out.output and "draw_proof_invalid" in out.output
    assert "VALID" not in runner.invoke(cli, ["verify-draw", str(tmp_path / "bad.json")]).output
