"""The OpenAPI 3.1 document of the HTTP API, as served at ``/openapi.json`` and committed as
``docs/openapi.json`` (a client generator needs no running server). After changing a route::

    make openapi        # = .venv/bin/python -m server.openapi docs/openapi.json

The output is deterministic (sorted keys, two-space indent, UTF-8, one trailing newline), so two
engineers adding routes at once get a plain diff of the file, never noise.
``tests/server/test_openapi.py`` fails when the committed file is stale (printing
:data:`REGENERATE`) and when a JSON route declares no response model; what each route declares
comes from :mod:`server.contract`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from fastapi import FastAPI

from server.app import create_app
from server.config import Settings

#: the one command that rewrites docs/openapi.json (the stale-document test prints it)
REGENERATE = "make openapi  (or: .venv/bin/python -m server.openapi docs/openapi.json)"


def document(app: FastAPI | None = None) -> dict[str, Any]:
    """The OpenAPI document of ``app`` (default: the app ``tombola serve`` runs)."""
    return (app or create_app(Settings())).openapi()


def render(doc: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, UTF-8, a trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m server.openapi [FILE]``: write the document to FILE (or print it)."""
    args = sys.argv[1:] if argv is None else argv
    text = render(document())
    if args:
        with open(args[0], "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
