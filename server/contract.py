"""What every route of the HTTP API declares for its OpenAPI document (``server/openapi.py``
renders it): the error answers (:data:`ERROR_RESPONSES`, body :class:`ErrorBody`), bodies a route
reads itself (:func:`json_body`, :func:`raw_body`), and the 422 ``malformed`` body of a request that
breaks its model (:func:`malformed`).

Routes whose body is not read by FastAPI (the device protocol parses I-JSON itself, with
:func:`sync_protocol.strict_json.loads_strict`, so a duplicate member name is refused) declare their
body with :func:`json_body`; its model's schema joins the document's components here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from gli_core.router import ERROR_RESPONSES, ErrorBody

__all__ = ["ERROR_RESPONSES", "ErrorBody", "Health", "install", "json_body", "malformed", "raw_body"]

#: models of bodies declared with :func:`json_body`, by component name
_BODIES: dict[str, type[BaseModel]] = {}
_REF = "#/components/schemas/{model}"


class Health(BaseModel):
    """``GET /healthz``: the process answers."""

    status: str = Field(description="`ok`")


def json_body(model: type[BaseModel], description: str, media_type: str = "application/json") -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its own body: the body is ``model`` (a component)."""
    _BODIES[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media_type: {"schema": {"$ref": _REF.format(model=model.__name__)}}},
        }
    }


def raw_body(description: str, media_type: str) -> dict[str, Any]:
    """``openapi_extra`` of a route whose body is not JSON (an NDJSON file, say): a string body."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media_type: {"schema": {"type": "string"}}},
        }
    }


def _with_bodies(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, model in sorted(_BODIES.items()):
        schema = model.model_json_schema(ref_template=_REF, mode="validation")
        defs: dict[str, Any] = schema.pop("$defs", {})
        for key, value in sorted({**defs, name: schema}.items()):
            if key in schemas and schemas[key] != value:
                # the response side of the same model (FastAPI names both sides alike only
                # when they are equal): keep the request's schema under its own name
                key = f"{key}-Input"
            schemas[key] = value
    return doc


_ERROR_REF = {"$ref": _REF.format(model="ErrorBody")}
#: statuses only a caller that sends credentials (an ``authorization`` header) can get
_AUTH_STATUSES = {"401", "403"}


def _with_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Every operation declares the error answers it can give, with the ErrorBody body: FastAPI's
    own 422 (``HTTPValidationError``, a body this app never sends) becomes ``malformed``'s; 401
    and 403 where the operation takes credentials, 413 where it takes a body."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template=_REF)
    for operations in doc.get("paths", {}).values():
        for op in operations.values():
            responses: dict[str, Any] = op.setdefault("responses", {})
            takes_credentials = any(
                p.get("in") == "header" and p.get("name", "").lower() == "authorization"
                for p in op.get("parameters", ())
            )
            for status, spec in ERROR_RESPONSES.items():
                code = str(status)
                if code in _AUTH_STATUSES and not takes_credentials:
                    continue
                if code == "413" and "requestBody" not in op:
                    continue
                current = responses.get(code)
                schema = (current or {}).get("content", {}).get("application/json", {}).get("schema", {})
                if current is None or schema.get("$ref", "").endswith("/HTTPValidationError"):
                    responses[code] = {
                        "description": spec["description"],
                        "content": {"application/json": {"schema": _ERROR_REF}},
                    }
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused not in json.dumps(doc.get("paths", {})):
            schemas.pop(unused, None)
    return doc


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) the complete document, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = _with_errors(_with_bodies(doc))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def malformed(errors: Sequence[Any], content_type: str | None) -> dict[str, Any]:
    """The 422 ``malformed`` body of a request that breaks its model (FastAPI's ``errors()``).

    ``field`` names the first bad member (``body``, ``body.name``, ``query.limit``...), ``detail``
    is a sentence about it, and ``errors`` lists every problem as ``{field, detail}``. A body that
    is not JSON, or not sent as JSON, says so rather than naming a character position.
    """
    problems = [_problem(e, content_type) for e in errors] or [{"field": "", "detail": "the request is invalid"}]
    first = problems[0]
    return {"error": "malformed", "detail": first["detail"], "field": first["field"], "errors": problems}


def _problem(error: Any, content_type: str | None) -> dict[str, str]:
    loc = tuple(str(p) for p in error.get("loc", ()))
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid"))
    if kind == "json_invalid":
        why = (error.get("ctx") or {}).get("error", "it does not parse")
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return {"field": "body", "detail": f"the body is not valid JSON: {why}{at}"}
    where = ".".join(loc)
    media = (content_type or "").split(";")[0].strip().lower()
    if loc == ("body",) and media != "application/json" and not media.endswith("+json"):
        sent = f"'{media}'" if media else "no Content-Type"
        return {"field": "body", "detail": f"the body must be JSON sent as Content-Type: application/json, not {sent}"}
    if loc == ("body",) and kind in ("model_attributes_type", "dict_type", "model_type"):
        return {"field": "body", "detail": "the body must be a JSON object (the model's members by name)"}
    if kind == "missing":
        return {"field": where, "detail": f"{where} is required"}
    return {"field": where, "detail": f"{where}: {msg}"}
