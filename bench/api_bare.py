"""The reference of ``bench/api.py``: a bare FastAPI app with one route answering a small constant
JSON document, served by the same uvicorn options as ``tombola serve``. Nothing else: no database,
no middleware, no authentication."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()
DOCUMENT = {"raffle_id": "rf-bare", "result": "valid", "number": 42, "raffle": {"name": "Bare", "state": "selling"}}


@app.get("/bare")
def bare() -> dict[str, object]:
    return DOCUMENT
