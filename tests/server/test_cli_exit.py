"""Exit statuses of ``tombola`` as a process (docs/operations.md): 0 done, 1 refused or failed
verification (``code: detail`` on stderr), 2 usage; ``-h`` is ``--help``, as in ``tombola-pos``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.processes import TOMBOLA, server_env


def _tombola(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = server_env(tmp_path / "var", f"sqlite:///{tmp_path}/core.db", f"sqlite:///{tmp_path}/business.db")
    return subprocess.run([TOMBOLA, *args], env=env, capture_output=True, text=True, timeout=120)


def test_short_help_is_help(tmp_path: Path) -> None:
    short, long = _tombola(tmp_path, "-h"), _tombola(tmp_path, "--help")
    assert (short.returncode, short.stdout) == (0, long.stdout)
    assert "Usage: tombola" in short.stdout
    assert _tombola(tmp_path, "raffle", "-h").stdout.startswith("Usage: tombola raffle")


def test_usage_error_exits_2(tmp_path: Path) -> None:
    out = _tombola(tmp_path, "raffle", "create", "--no-such-option")
    assert out.returncode == 2 and "No such option" in out.stderr


def test_refusal_and_failed_verification_exit_1(tmp_path: Path) -> None:
    assert _tombola(tmp_path, "init").returncode == 0
    out = _tombola(tmp_path, "raffle", "close", "rf-NOPE")
    assert out.returncode == 1 and out.stderr.startswith("not_found: ") and out.stdout == ""
    bogus = tmp_path / "proof.json"
    bogus.write_text(json.dumps({"version": 2, "raffle_id": "rf-x"}))
    out = _tombola(tmp_path, "verify-draw", str(bogus))
    assert out.returncode == 1 and out.stderr.split(":")[0].isidentifier()
