"""/docs and /redoc work offline: their HTML names no other host, their assets come from the server."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']|@import\s+["']([^"']+)""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_reference_no_external_host(client: TestClient, page: str) -> None:
    resp = client.get(page)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert "://" not in html  # no CDN (cdn.jsdelivr.net), no Google Fonts, no absolute URL at all
    assert not re.search(r"""["']//""", html)  # nor a protocol-relative one
    refs = [next(g for g in m.groups() if g) for m in URL.finditer(html)]
    assert re.search(r"""["']/openapi\.json["']""", html)  # the schema, from the server too
    assets = [r for r in refs if r != "/openapi.json"]
    assert assets, html
    for ref in assets:  # each script, style sheet and icon is served by the server itself
        assert ref.startswith("/"), ref
        asset = client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 0, ref


def test_openapi_json_is_kept(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == "Tombola"
