"""schemathesis against the app, on SQLite and PostgreSQL: no generated request, valid for the
OpenAPI document or not, signed in as the admin or anonymous, is answered with a 5xx.

One hypothesis run per (backend, caller) over every operation of ``/openapi.json`` (schemathesis
picks the operation and its parameters, headers and body), bounded by :data:`EXAMPLES` so the
four runs stay well under a minute on two cores. A 5xx fails with the request as a curl command;
the 5xx these runs found are pinned as plain regression tests in ``test_openapi.py``.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from server.app import create_app
from server.context import Tombola
from tests.support.app import ADMIN_TOKEN, Seed

#: generated requests per operation and (backend, caller); each is one request through the ASGI app
EXAMPLES = 4
CALLERS = {"admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "anonymous": {}}

#: 503 codes that say a part of this installation is not set up (a server state, not a failure)
UNCONFIGURED = {"online_sales_unconfigured"}


def _code(text: str) -> object:
    try:
        return json.loads(text).get("error")
    except (ValueError, AttributeError):
        return None


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_: schemathesis.SerializationContext, value: object) -> dict[str, bytes]:
    """``POST /v1/ingest`` takes an export file: the generated string (or bytes) as it is."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
    return {"data": data}


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_no_generated_request_gets_a_5xx(tombola: Tombola, seeded: Seed, caller: str) -> None:
    app = create_app(tombola=tombola)
    with TestClient(app):  # runs the lifespan once, as a server would
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        headers = CALLERS[caller]
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 30
        for operation in operations:  # every operation gets its share, valid and invalid input

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,  # the same requests every run: a failure here is reproducible
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(
                case=st.one_of(
                    operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                    operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
                )
            )
            def no_5xx(case: schemathesis.Case) -> None:
                response = case.call(headers=headers)
                if response.status_code == 503 and _code(response.text) in UNCONFIGURED:
                    return
                assert response.status_code < 500, (
                    f"{response.status_code} for {case.as_curl_command(headers=headers)}\n{response.text[:2000]}"
                )

            no_5xx()
