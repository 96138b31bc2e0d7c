"""``tombola-pos app`` exists, and the CLI does not import Kivy until that command runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_cli_lists_app_and_imports_no_kivy() -> None:
    out = subprocess.run([str(BIN / "tombola-pos"), "app", "--help"], capture_output=True, text=True, check=True)
    assert "Start the POS app" in out.stdout
    code = "import sys, pos_client.cli; assert not [m for m in sys.modules if m.startswith('kivy')]"
    subprocess.run([sys.executable, "-c", code], check=True)
