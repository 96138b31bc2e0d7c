"""The test side of :mod:`tests.app.driver`: start the real app in a window, send it commands."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty, Queue
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class AppProcess:
    """One running app (``python -m tests.app.driver``) under the display in ``env``."""

    def __init__(self, db: Path, env: dict[str, str], *, size: str = "720x1280", sync_interval_s: float = 1.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.app.driver", "--db", str(db), "--size", size],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._answers: Queue[dict[str, Any]] = Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        ready = self._next(60)
        assert ready.get("ready"), ready

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                self._answers.put(json.loads(line[2:]))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            return self._answers.get(timeout=timeout)
        except Empty:
            raise AssertionError(
                f"the app did not answer in {timeout} s (exit {self.proc.poll()}):\n" + "".join(self._stderr[-40:])
            ) from None

    def send(self, op: str, timeout: float = 30, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        answer = self._next(timeout)
        assert answer.get("ok"), answer
        return answer

    def refused(self, wid: str) -> str:
        """Tap ``wid`` expecting the driver to refuse it (disabled, hidden, too small); the reason."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": "tap", "id": wid}) + "\n")
        self.proc.stdin.flush()
        answer = self._next(30)
        assert not answer.get("ok"), answer
        return str(answer["error"])

    def tap(self, wid: str, **args: Any) -> dict[str, Any]:
        return self.send("tap", id=wid, **args)

    def type(self, wid: str, value: str) -> None:
        self.send("text", id=wid, value=value)

    def state(self) -> dict[str, Any]:
        return self.send("state")["state"]  # type: ignore[no-any-return]

    def wait_for(self, what: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if what(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; last state: {state}")
            time.sleep(0.2)

    def kill_during(self, wid: str) -> None:
        """Tap ``wid`` and SIGKILL the app right after the touch is handled (no answer comes)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": "tap", "id": wid, "kill": True}) + "\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -9, self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("stop", timeout=10)
                self.proc.wait(timeout=15)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
