"""FastAPI dependencies: the application services and admin authentication."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from server.context import Tombola
from server.errors import Unauthorized


def get_app(request: Request) -> Tombola:
    app: Tombola = request.app.state.tombola
    return app


AppDep = Annotated[Tombola, Depends(get_app)]


def require_admin(app: AppDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """Admin API calls carry ``Authorization: Bearer <admin token>`` (``var/admin-token``)."""
    token = app.settings.effective_admin_token()
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized("this call needs the admin token: Authorization: Bearer <token>")


AdminDep = Depends(require_admin)
