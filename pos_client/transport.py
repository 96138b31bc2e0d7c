"""HTTP to the server: JSON over an ``httpx.Client``, with bounded retries.

Policy (``docs/pos-client.md``, "Sync policy"):

- 2xx: the answer.
- 4xx other than 429: returned to the caller, never retried (the caller decides whether it is
  a sale rejection or a hard error).
- 5xx, 429, timeouts, refused or dropped connections: retried with exponential backoff plus random
  jitter (tenacity), at most :attr:`RetryPolicy.attempts` tries in all; then
  :class:`~pos_client.errors.ServerError` or :class:`~pos_client.errors.NetworkError`.

Retrying is always safe: the server is idempotent (a re-sent batch writes nothing new and gets
the same acknowledgement; enrollment is retried with the same signed request).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import tenacity

from pos_client.errors import NetworkError, ServerError
from sync_protocol.errors import Malformed
from sync_protocol.strict_json import loads_strict


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on a request.

    Args:
        attempts: tries in all (1 = no retry).
        initial_s: first backoff.
        max_s: backoff ceiling.
        jitter_s: random extra of up to this much on each backoff.
        sleep: how to wait (tests pass a no-op).
    """

    attempts: int = 5
    initial_s: float = 0.5
    max_s: float = 30.0
    jitter_s: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)


@dataclass(frozen=True)
class Answer:
    """A 2xx or non-retryable 4xx answer."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str:
        return str(self.body.get("error") or f"http_{self.status}")

    @property
    def detail(self) -> str:
        return str(self.body.get("detail") or f"the server answered HTTP {self.status}")


class _RetryableStatus(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(f"HTTP {answer.status}")
        self.answer = answer


def _is_retryable(status: int) -> bool:
    return status >= 500 or status == 429


class Transport:
    """Posts JSON to ``base_url`` + path through ``http`` with the retry policy."""

    def __init__(self, http: httpx.Client, base_url: str, retry: RetryPolicy) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.retry = retry

    def post(self, path: str, body: Mapping[str, Any]) -> Answer:
        """POST ``body``; return a 2xx or 4xx answer.

        Raises:
            ServerError: 5xx (or 429) until the attempts ran out.
            NetworkError: no answer (connection, timeout) until the attempts ran out.
        """
        content = orjson.dumps(body)
        delivered = False  # some try got past connecting: the server may have acted on it

        def attempt() -> Answer:
            nonlocal delivered
            try:
                return self._attempt(path, content)
            except _RetryableStatus:
                delivered = True
                raise
            except httpx.TransportError as exc:
                delivered = delivered or not isinstance(exc, httpx.ConnectError)
                raise

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.retry.attempts)),
            wait=tenacity.wait_exponential(multiplier=self.retry.initial_s, max=self.retry.max_s)
            + tenacity.wait_random(0, self.retry.jitter_s),
            retry=tenacity.retry_if_exception_type((_RetryableStatus, httpx.TransportError)),
            sleep=self.retry.sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _RetryableStatus as exc:
            answer = exc.answer
            raise ServerError(
                f"{self.base_url}{path} answered HTTP {answer.status} ({answer.error_code}: {answer.detail}) "
                f"{self.retry.attempts} times",
                http_status=answer.status,
                server_code=answer.error_code,
            ) from exc
        except httpx.TransportError as exc:
            error = NetworkError(
                f"no answer from {self.base_url}{path} after {self.retry.attempts} tries: {type(exc).__name__}: {exc}"
            )
            error.maybe_delivered = delivered
            raise error from exc

    def _attempt(self, path: str, content: bytes) -> Answer:
        response = self.http.post(
            f"{self.base_url}{path}", content=content, headers={"content-type": "application/json"}
        )
        try:  # I-JSON: an answer with a duplicate member is as unusable as one that is not JSON
            data = loads_strict(response.content, "the answer") if response.content else {}
        except Malformed:
            data = {}
        body = data if isinstance(data, dict) else {"value": data}
        answer = Answer(status=response.status_code, body=body)
        if _is_retryable(response.status_code):
            raise _RetryableStatus(answer)
        if answer.ok and not body:
            raise ServerError(
                f"{self.base_url}{path} answered HTTP {response.status_code} without a JSON object",
                http_status=response.status_code,
            )
        return answer
