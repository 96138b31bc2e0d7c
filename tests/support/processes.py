"""Real server processes for multi-process tests: ``tombola serve`` on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

TOMBOLA = str(Path(sys.executable).with_name("tombola"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(home: Path, core_url: str, business_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TOMBOLA_HOME=str(home),
        TOMBOLA_CORE_DB_URL=core_url,
        TOMBOLA_BUSINESS_DB_URL=business_url,
        TOMBOLA_ADMIN_TOKEN="test-admin-token",
        **extra,
    )
    return env


@contextmanager
def running_server(env: dict[str, str], port: int | None = None, timeout_s: float = 30) -> Iterator[str]:
    """Start ``tombola serve`` and yield its base URL once /healthz answers; stop it after."""
    port = port or free_port()
    proc = subprocess.Popen(
        [TOMBOLA, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in time")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
