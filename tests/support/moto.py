"""moto's standalone server (S3 and KMS), started once per test session on a loopback port.

``moto_server`` (session) runs ``moto_server -H 127.0.0.1 -p PORT`` from the virtualenv and
yields a :class:`MotoServer`: its ``endpoint`` URL and ``client(service)``, a boto3 client with
dummy credentials pointed at it. moto keeps its state for the whole session, so each test makes
its own bucket or key (``unique_name``); ``reset()`` wipes everything (``POST /moto-api/reset``)
for a test that needs an empty account.

``TcpCut`` is a loopback TCP proxy in front of the server whose link can be cut and restored:
the fault-injection tool for "the S3 endpoint goes away mid-shipment".
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import free_port

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}


def unique_name(prefix: str = "tombola-test") -> str:
    """A bucket-safe name no other test uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes] = field(repr=False)

    def client(self, service: str, endpoint: str | None = None, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=endpoint or self.endpoint,
            config=Config(**config) if config else None,
            **CREDENTIALS,
        )

    def reset(self) -> None:
        httpx.post(self.endpoint + "/moto-api/reset", timeout=10).raise_for_status()


def start_moto(timeout_s: float = 20) -> MotoServer:
    port = free_port()
    proc = subprocess.Popen(
        [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **{k.upper(): v for k, v in CREDENTIALS.items() if k != "region_name"}},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/moto-api/", timeout=1).status_code == 200:
                return MotoServer(url, proc)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("moto_server did not start in time")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = start_moto()
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()


class TcpCut:
    """A loopback TCP proxy to ``target_port`` that can be cut (open connections reset, new ones
    refused at once) and restored. Use as a context manager; ``endpoint`` is its URL."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()
            except OSError:
                pass

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._listener.close()

    def __enter__(self) -> TcpCut:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
